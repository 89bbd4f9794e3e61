//! The endpoints. Every workflow request goes through the same steps:
//! authenticate, rate-limit, find the workflow, check the caller may run
//! it, check the inputs, take a run slot, run, answer.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State as Shared};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::State;
use super::audit::{Note, RequestId};
use super::auth::Caller;
use super::error::ApiError;
use super::library::{Entry, Library};
use super::metrics::{TaskMetrics, WorkflowLabels};
use super::stream::Streamer;
use crate::check::conform::Given;
use crate::run::inputs;
use crate::run::{Observer, Report, Session};

type AppState = Shared<Arc<State>>;

pub(super) async fn healthz() -> &'static str {
    "ok"
}

/// Ready when every agent has an endpoint that answers.
pub(super) async fn readyz(Shared(state): AppState) -> Response {
    let library = state.library();
    let executor = &library.executor;
    let mut agents = BTreeMap::new();
    for (agent, endpoints) in executor.router.agents() {
        let mut up = false;
        for endpoint in endpoints {
            if executor
                .client
                .answers(endpoint.target(), Duration::from_secs(2))
                .await
            {
                up = true;
                break;
            }
        }
        agents.insert(agent.to_string(), up);
    }
    let ready = agents.values().all(|up| *up);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({ "ready": ready, "agents": agents }))).into_response()
}

/// The metrics in the `OpenMetrics` text format, under its own content type
/// (Prometheus negotiates it; under the classic type its counters would
/// read as untyped).
pub(super) async fn metrics(Shared(state): AppState) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// The `OpenAPI` document; with a token, it also describes the request of
/// each workflow the token allows.
pub(super) async fn openapi(
    Shared(state): AppState,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let library = state.library();
    let document = if headers.contains_key(header::AUTHORIZATION) {
        let caller = admit(&state, &headers)?;
        super::openapi::document(&library, Some(&|name: &str| caller.may_run(name)))
    } else {
        super::openapi::document(&library, None)
    };
    Ok(Json(document).into_response())
}

pub(super) async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; see /openapi.json",
    )
}

pub(super) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method; see /openapi.json",
    )
}

/// `GET /v1/workflows/types`: the workflows this caller may run.
pub(super) async fn types(
    Shared(state): AppState,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = admit(&state, &headers)?;
    let library = state.library();
    let visible: Vec<_> = library
        .infos()
        .filter(|info| caller.may_run(&info.name))
        .collect();
    let mut response = Json(json!({ "workflows": visible })).into_response();
    response.extensions_mut().insert(Note {
        caller: Some(caller.subject),
        ..Note::default()
    });
    Ok(response)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecuteBody {
    workflow_type: String,
    #[serde(default)]
    context: Value,
}

/// `POST /v1/workflows/execute` with `{"workflow_type", "context"}`.
/// The query and the body are read only once the caller is known.
pub(super) async fn execute(
    Shared(state): AppState,
    RawQuery(query): RawQuery,
    Extension(id): Extension<RequestId>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = admit(&state, &headers)?;
    let stream = stream_wanted(query.as_deref(), &caller)?;
    let body: ExecuteBody = parse(&state, body, &caller).await?;
    start(state, caller, &body.workflow_type, body.context, stream, id).await
}

/// `POST /v1/workflows/{name}` with the context as the body (the seed's
/// `/v1/workflows/discharge-summary`).
pub(super) async fn execute_named(
    Shared(state): AppState,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    Extension(id): Extension<RequestId>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = admit(&state, &headers)?;
    let stream = stream_wanted(query.as_deref(), &caller)?;
    let context: Value = parse(&state, body, &caller).await?;
    start(state, caller, &name, context, stream, id).await
}

/// `?stream=true` (or `1`); `false`, `0` or no `stream` for one answer.
fn stream_wanted(query: Option<&str>, caller: &Caller) -> Result<bool, ApiError> {
    let invalid = |message: String| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", message)
            .with_note(note(caller, None))
    };
    let mut stream = false;
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match (key.as_ref(), value.as_ref()) {
            ("stream", "true" | "1") => stream = true,
            ("stream", "false" | "0") => stream = false,
            ("stream", other) => {
                return Err(invalid(format!(
                    "`stream` is `true` or `false`, not `{}`",
                    other.chars().take(40).collect::<String>()
                )));
            }
            (other, _) => {
                return Err(invalid(format!(
                    "this endpoint takes only `stream` in its query, not `{}`",
                    other.chars().take(40).collect::<String>()
                )));
            }
        }
    }
    Ok(stream)
}

/// Authenticates the caller and takes one request from its rate limit.
fn admit(state: &State, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let caller = state.auth.authenticate(headers)?;
    if let Some(limiter) = &state.limiter
        && let Err(not_until) = limiter.check_key(&caller.subject)
    {
        let wait = not_until.wait_time_from(governor::clock::Clock::now(
            &governor::clock::DefaultClock::default(),
        ));
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "too many requests from `{}`; try again in {} s",
                caller.subject,
                wait.as_secs_f64().ceil().max(1.0)
            ),
        )
        .with_note(note(&caller, None))
        .retry_after(wait));
    }
    Ok(caller)
}

fn note(caller: &Caller, workflow: Option<&str>) -> Note {
    Note {
        caller: Some(caller.subject.clone()),
        workflow: workflow.map(str::to_string),
        outcome: None,
    }
}

/// Reads the body (at most the server's size limit, within its client
/// timeout) and parses it.
async fn parse<T: serde::de::DeserializeOwned>(
    state: &State,
    body: Body,
    caller: &Caller,
) -> Result<T, ApiError> {
    let read = tokio::time::timeout(
        state.client_timeout,
        axum::body::to_bytes(body, state.max_body),
    );
    let body = match read.await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!(
                    "the request body is larger than this server's limit of {} bytes, or broke off",
                    state.max_body
                ),
            )
            .with_note(note(caller, None)));
        }
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "the request body did not arrive within {}",
                    humantime::format_duration(state.client_timeout)
                ),
            )
            .with_note(note(caller, None)));
        }
    };
    serde_json::from_slice(&body).map_err(|err| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not the JSON this endpoint takes: {err}"),
        )
        .with_note(note(caller, None))
    })
}

/// Everything that can be refused before a run, then the run.
async fn start(
    state: Arc<State>,
    caller: Caller,
    name: &str,
    context: Value,
    stream: bool,
    id: RequestId,
) -> Result<Response, ApiError> {
    let library = state.library();
    // A workflow the token does not allow is answered like one that does
    // not exist, so a caller learns nothing of what it may not run.
    let entry = library
        .get(name)
        .filter(|entry| caller.may_run(&entry.workflow().name))
        .ok_or_else(|| {
            let known: Vec<&str> = library
                .names()
                .filter(|known| caller.may_run(known))
                .collect();
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_workflow",
                format!(
                    "there is no workflow `{name}` you may run; yours: {}",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            )
            .with_note(note(&caller, Some(name)))
        })?;
    let workflow = entry.workflow().name.clone();
    let refuse = |status, code, message: String| {
        ApiError::new(status, code, message).with_note(note(&caller, Some(&workflow)))
    };
    let Value::Object(context) = context else {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "invalid_inputs",
            "the context must be a JSON object of inputs".into(),
        ));
    };
    let given = context
        .into_iter()
        .map(|(k, v)| (k, Given::Json(v)))
        .collect();
    let inputs = inputs::bind(entry.workflow(), given).map_err(|errors| {
        refuse(
            StatusCode::BAD_REQUEST,
            "invalid_inputs",
            format!("the context does not fit workflow `{workflow}`'s inputs"),
        )
        .problems(errors.iter().map(ToString::to_string).collect())
    })?;
    let slot = state.runs.clone().try_acquire_owned().map_err(|_| {
        refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!(
                "all {} run slots are taken; try again shortly",
                state.max_runs
            ),
        )
        .retry_after(Duration::from_secs(1))
    })?;
    let run = AcceptedRun {
        state,
        library,
        workflow,
        caller: caller.subject,
        inputs,
        id,
    };
    let note = Note {
        caller: Some(run.caller.clone()),
        workflow: Some(run.workflow.clone()),
        outcome: stream.then_some("stream_started"),
    };
    if stream {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let _slot = slot;
            let streamer = Streamer(sender.clone());
            let last = match run.execute(&streamer).await {
                Ok((report, _)) => SseEvent::default()
                    .event("report")
                    .data(serde_json::to_string(&report).expect("reports serialise")),
                // The stream has begun, so a failure is told as its last
                // event, in the shape of every other error.
                Err(err) => SseEvent::default()
                    .event("error")
                    .data(err.body().to_string()),
            };
            let _ = sender.send(last);
        });
        let events = futures_util::stream::unfold(receiver, |mut receiver| async move {
            let event = receiver.recv().await?;
            Some((Ok::<_, Infallible>(event), receiver))
        });
        let mut response = Sse::new(events).into_response();
        response.extensions_mut().insert(note);
        return Ok(response);
    }
    let _slot = slot;
    let (report, outcome) = run
        .execute(&())
        .await
        .map_err(|err| err.with_note(note.clone()))?;
    let status = match outcome {
        "timeout" => StatusCode::GATEWAY_TIMEOUT,
        "interrupted" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    };
    let mut response = (status, Json(report)).into_response();
    response.extensions_mut().insert(Note {
        outcome: Some(outcome),
        ..note
    });
    Ok(response)
}

/// One run in the in-flight gauge while it lives.
struct InFlight<'m>(&'m super::metrics::Metrics);

impl<'m> InFlight<'m> {
    fn count(metrics: &'m super::metrics::Metrics) -> Self {
        metrics.in_flight.inc();
        InFlight(metrics)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

/// One accepted run.
struct AcceptedRun {
    state: Arc<State>,
    library: Arc<Library>,
    workflow: String,
    caller: String,
    inputs: Map<String, Value>,
    id: RequestId,
}

impl AcceptedRun {
    /// Runs to the end, the deadline or shutdown; the outcome is what the
    /// audit log and the metrics record.
    async fn execute(&self, extra: &dyn Observer) -> Result<(Report, &'static str), ApiError> {
        let entry: &Entry = self.library.get(&self.workflow).expect("found before");
        let mut session = Session::new(&entry.program, entry.workflow(), &self.library.executor);
        if let Some(dir) = &self.state.runs_dir {
            session = session.journal(&dir.join(&self.id.0)).map_err(|err| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "journal",
                    format!("cannot open the run's journal: {err}"),
                )
            })?;
        }
        let observer = (TaskMetrics(self.state.metrics.clone()), extra);
        let cancel: CancellationToken = self.state.stopping.child_token();
        let timer = {
            let cancel = cancel.clone();
            let deadline = self.state.deadline;
            tokio::spawn(async move {
                tokio::time::sleep(deadline).await;
                cancel.cancel();
            })
        };
        let started = Instant::now();
        // Counted down however the run ends, a client that hangs up
        // (dropping this future) included.
        let _in_flight = InFlight::count(&self.state.metrics);
        tracing::info!(request = %self.id.0, workflow = %self.workflow, caller = %self.caller, "run started");
        let result = session.run(&self.inputs, &observer, &cancel).await;
        let timed_out = timer.is_finished() && !self.state.stopping.is_cancelled();
        timer.abort();
        let report = result.map_err(|err| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "render", err.to_string())
        })?;
        let outcome = if report.metadata.interrupted {
            if timed_out { "timeout" } else { "interrupted" }
        } else if report.success {
            "success"
        } else {
            "partial"
        };
        let labels = WorkflowLabels {
            workflow: self.workflow.clone(),
            outcome: outcome.into(),
        };
        self.state.metrics.runs.get_or_create(&labels).inc();
        self.state
            .metrics
            .run_seconds
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
        Ok((report, outcome))
    }
}
