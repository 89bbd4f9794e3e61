//! OpenTelemetry: `wfc run` and `wfc serve` export their spans over
//! OTLP/HTTP to a receiver built on the official OTLP protobuf definitions
//! (`opentelemetry-proto`), started by the test: the span tree, the `GenAI`
//! attributes, `traceparent` sent to the model servers and taken from a
//! serve request, and no prompt or answer text (PHI) in any of it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;
use wfc::mock::{MockConfig, MockServer};

use crate::support::Wfc;

const MARKER: &str = "PHI-MARKER-07e1";

/// A span as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: BTreeMap<String, String>,
    /// Everything else it carried, events included, for the PHI check.
    whole: String,
    service: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(n)) => n.to_string(),
        Some(Value::DoubleValue(n)) => n.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::ArrayValue(array)) => array
            .values
            .iter()
            .map(|v| text(v.value.as_ref()))
            .collect::<Vec<_>>()
            .join(","),
        other => format!("{other:?}"),
    }
}

/// An OTLP/HTTP receiver on a free port: POST /v1/traces, protobuf.
struct Receiver {
    url: String,
    spans: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let spans: Arc<Mutex<Vec<Received>>> = Arc::default();
        let kept = spans.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: Bytes| {
                let kept = kept.clone();
                async move {
                    let request =
                        ExportTraceServiceRequest::decode(body).expect("an OTLP trace export");
                    for resource in request.resource_spans {
                        let service = resource
                            .resource
                            .iter()
                            .flat_map(|r| &r.attributes)
                            .find(|a| a.key == "service.name")
                            .map(|a| text(a.value.as_ref().and_then(|v| v.value.as_ref())))
                            .unwrap_or_default();
                        for scope in resource.scope_spans {
                            for span in scope.spans {
                                let attributes = span
                                    .attributes
                                    .iter()
                                    .map(|a| {
                                        (
                                            a.key.clone(),
                                            text(a.value.as_ref().and_then(|v| v.value.as_ref())),
                                        )
                                    })
                                    .collect();
                                kept.lock().unwrap().push(Received {
                                    name: span.name.clone(),
                                    trace_id: hex(&span.trace_id),
                                    span_id: hex(&span.span_id),
                                    parent_span_id: hex(&span.parent_span_id),
                                    attributes,
                                    whole: format!("{span:?}"),
                                    service: service.clone(),
                                });
                            }
                        }
                    }
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/x-protobuf")],
                        ExportTraceServiceResponse::default().encode_to_vec(),
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, spans }
    }

    fn spans(&self) -> Vec<Received> {
        self.spans.lock().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_one_trace_of_task_and_model_request_spans_without_phi() {
    let receiver = Receiver::start().await;
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let router = crate::durable::router(dir.path(), &mock);
    let ran = Wfc::new()
        .args(["run", "workflows/discharge_summary.wf", "-q", "--router"])
        .arg(&router)
        .args([
            "--input",
            &format!("patient_data=Patient {MARKER}: chest pain"),
        ])
        .args([
            "--input",
            "admission_date=2026-01-01",
            "--input",
            "discharge_date=2026-01-03",
        ])
        .args(["--otlp-endpoint", &receiver.url])
        .run_in_background()
        .await;
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let spans = receiver.spans();
    let named = |prefix: &str| -> Vec<&Received> {
        spans
            .iter()
            .filter(|s| s.name.starts_with(prefix))
            .collect()
    };
    let runs = named("invoke_workflow discharge_summary");
    assert_eq!(runs.len(), 1, "{spans:#?}");
    let run = runs[0];
    assert_eq!(run.parent_span_id, "", "the run is the trace's root");
    assert_eq!(run.service, "wfc");
    let tasks = named("task ");
    assert_eq!(tasks.len(), 2, "{spans:#?}");
    assert!(
        tasks
            .iter()
            .all(|t| t.parent_span_id == run.span_id && t.trace_id == run.trace_id)
    );
    let chats = named("chat ");
    assert_eq!(chats.len(), 2, "{spans:#?}");
    for chat in &chats {
        assert!(
            tasks.iter().any(|t| t.span_id == chat.parent_span_id),
            "{chat:#?}"
        );
        let a = &chat.attributes;
        assert_eq!(a["gen_ai.operation.name"], "chat");
        assert_eq!(chat.name, format!("chat {}", a["gen_ai.request.model"]));
        for key in [
            "gen_ai.provider.name",
            "gen_ai.request.max_tokens",
            "gen_ai.usage.output_tokens",
            "gen_ai.response.finish_reasons",
            "gen_ai.response.model",
            "server.address",
            "server.port",
        ] {
            assert!(a.contains_key(key), "{key} on {chat:#?}");
        }
        assert_eq!(a["server.address"], "127.0.0.1");
    }
    // The model servers were told the trace.
    for request in mock.requests() {
        let traceparent = request.traceparent.expect("a traceparent");
        assert!(traceparent.contains(&run.trace_id), "{traceparent}");
    }
    for span in &spans {
        assert!(!span.whole.contains(MARKER), "PHI in a span: {span:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_continues_the_callers_trace() {
    let receiver = Receiver::start().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let server = Wfc::new()
        .args([
            "serve",
            "workflows",
            "--mock",
            "--mock-latency",
            "10ms",
            "--insecure-no-auth",
        ])
        .args(["--listen", &format!("127.0.0.1:{port}"), "--audit-log"])
        .arg(dir.path().join("audit.jsonl"))
        .args(["--runs-dir"])
        .arg(dir.path().join("runs"))
        .args(["--otlp-endpoint", &receiver.url])
        .spawn();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "wfc serve did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (trace, parent) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let context = serde_json::json!({
        "patient_data": "A stay.", "admission_date": "2026-01-01", "discharge_date": "2026-01-03"
    });
    let response = http
        .post(format!("{base}/v1/workflows/discharge-summary"))
        .header("traceparent", format!("00-{trace}-{parent}-01"))
        .json(&context)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    crate::run_cli::signal(&server, "TERM");
    let mut server = server;
    let _ = tokio::task::spawn_blocking(move || server.wait()).await;
    let spans = receiver.spans();
    let request = spans
        .iter()
        .find(|s| s.name == "POST /v1/workflows/discharge_summary")
        .unwrap_or_else(|| panic!("{spans:#?}"));
    assert_eq!(request.trace_id, trace);
    assert_eq!(
        request.parent_span_id, parent,
        "the caller's span is its parent"
    );
    let run = spans
        .iter()
        .find(|s| s.name.starts_with("invoke_workflow"))
        .unwrap();
    assert_eq!(run.parent_span_id, request.span_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_runs_tasks_continue_the_submitters_trace_on_the_workers() {
    use crate::durable::{Fleet, library};
    let Some(Fleet {
        restate,
        mock,
        dir,
        router,
    }) = Fleet::with_mock(
        "telemetry::a_durable_runs_tasks_continue_the_submitters_trace",
        MockConfig::default(),
    )
    .await
    else {
        return;
    };
    let receiver = Receiver::start().await;
    let _worker = restate
        .worker_with(
            &[&library()],
            &router,
            0,
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url.as_str())],
        )
        .await;
    let ran = Wfc::new()
        .args(["run", "workflows/discharge_summary.wf", "--inputs"])
        .arg("workflows/examples/discharge_summary.json")
        .args(["--engine", "restate", "--restate", &restate.ingress])
        .args(["--run-id", "traced", "-q", "--run-dir"])
        .arg(dir.path().join("run"))
        .args(["--otlp-endpoint", &receiver.url])
        .run_in_background()
        .await;
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(mock.requests().len(), 2);
    // The worker exports in batches, on its own schedule.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (run, tasks) = loop {
        let spans = receiver.spans();
        let run = spans
            .iter()
            .find(|s| s.name == "invoke_workflow discharge_summary")
            .cloned();
        let tasks: Vec<Received> = spans
            .iter()
            .filter(|s| s.name.starts_with("task "))
            .cloned()
            .collect();
        if let Some(run) = run.filter(|_| tasks.len() == 2) {
            break (run, tasks);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the spans did not all arrive: {spans:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for task in &tasks {
        assert_eq!(task.trace_id, run.trace_id, "{task:#?}");
        assert_eq!(task.parent_span_id, run.span_id, "{task:#?}");
    }
    for request in mock.requests() {
        assert!(
            request
                .traceparent
                .is_some_and(|t| t.contains(&run.trace_id))
        );
    }
}
