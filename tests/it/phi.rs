//! Protected health information stays in the result: a unique marker in a
//! `@phi` input never shows up in the logs (at debug level), the audit log,
//! the metrics, the errors of failing tasks or the journal's metadata, for
//! `wfc run` and for `wfc serve` alike.

use std::io::Write;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::support::Wfc;
use wfc::mock::{Fault, FaultKind, MockConfig, MockServer};
use wfc::run::Deployment;
use wfc::serve::{AuditLog, Auth, ServeConfig, Server};

const MARKER: &str = "PHI-MARKER-5d1e0b";
const CLAIM: &str = "workflows/insurance_claim.wf";
const SECRET: &[u8] = b"a-test-secret-of-at-least-32-bytes!!";

fn record() -> String {
    format!("Patient: {MARKER}. 52-year-old man, 8 weeks of low back pain, L5 numbness.")
}

/// `wfc run` of the insurance claim on the marked record, logging everything.
fn run_claim(dir: &Path) -> Wfc {
    let path = dir.join("record.txt");
    std::fs::write(&path, record()).unwrap();
    Wfc::new()
        .env("WFC_LOG", "debug")
        .args(["run", CLAIM, "--json", "--run-dir"])
        .arg(dir.join("run"))
        .arg("-i")
        .arg(format!("patient_data=@{}", path.display()))
        .args(["-i", "requested_service=MRI lumbar spine (CPT 72148)"])
        .args(["-i", "service_date=2026-03-02"])
}

/// Each journal record without the answer itself.
fn journal_metadata(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let mut record: Value = serde_json::from_str(line).unwrap();
            record.as_object_mut().unwrap().remove("text");
            record
        })
        .collect()
}

/// The mock model server with the claim's model failing every request, so
/// a run has task errors to report.
fn claims_fail() -> MockConfig {
    MockConfig {
        faults: vec![Fault {
            model: Some("OpenInsurance-8B".into()),
            prompt_contains: None,
            times: None,
            kind: FaultKind::Status(500),
        }],
        ..MockConfig::default()
    }
}

fn assert_clean(channel: &str, text: &str) {
    assert!(!text.contains(MARKER), "PHI leaked into {channel}:\n{text}");
}

#[test]
fn a_run_logs_and_journals_no_phi() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_claim(dir.path()).arg("--mock").run();
    let stderr = &output.stderr;
    assert_eq!(output.code, Some(0), "{stderr}");
    assert!(stderr.contains("DEBUG"), "debug logs are on: {stderr}");
    assert_clean("the logs", stderr);
    let report: Value = output.json();
    assert_eq!(report["success"], true);
    assert_clean("the report's metadata", &report["metadata"].to_string());
    let journal = journal_metadata(&dir.path().join("run/journal.jsonl"));
    // The payer policy's passages, the assessment and the claim.
    assert_eq!(journal.len(), 3);
    assert_clean("the journal", &serde_json::to_string(&journal).unwrap());
}

#[test]
fn failing_tasks_name_no_phi() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let output = run_claim(dir.path())
        .env("WFC_ROUTE_MEDICALQA", &url)
        .env("WFC_ROUTE_CLAIMS", &url)
        .env("WFC_ROUTE_BILLING", &url)
        .run();
    let stderr = &output.stderr;
    assert_eq!(output.code, Some(3), "{stderr}");
    assert_clean("the logs", stderr);
    let report: Value = output.json();
    let errors = &report["metadata"]["errors"];
    assert!(
        errors["medical_necessity"]
            .as_str()
            .unwrap()
            .contains("cannot connect"),
        "{report}"
    );
    assert_clean("the errors", &report["metadata"].to_string());
    let journal = journal_metadata(&dir.path().join("run/journal.jsonl"));
    assert_clean("the journal", &serde_json::to_string(&journal).unwrap());
}

/// Everything the server logs, at debug level.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn token() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({ "sub": "dr-house", "aud": "wfc", "exp": now + 600 }),
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

/// What every server in this test binary has logged, at debug level (one
/// subscriber serves the whole process).
fn server_logs() -> &'static Logs {
    static LOGS: std::sync::OnceLock<Logs> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        logs
    })
}

/// `wfc serve` of `sources` on `mock`, its audit log and run journals in
/// `dir`: the server, the audit log's path and the runs folder.
async fn serve(dir: &Path, sources: PathBuf, mock: &MockServer) -> (Server, PathBuf, PathBuf) {
    let audit = dir.join("audit.jsonl");
    let runs = dir.join("runs");
    let server = Server::start(ServeConfig {
        sources: vec![sources],
        engine: wfc::serve::Engine::Local(Deployment::Everything(mock.base_url())),
        listen: "127.0.0.1:0".parse().unwrap(),
        auth: Auth::shared_secret(SECRET, "wfc", None),
        rate_limit: NonZeroU32::new(1000),
        max_runs: 4,
        deadline: Duration::from_mins(1),
        max_body: 64 * 1024,
        audit: AuditLog::to_file(&audit).unwrap(),
        runs_dir: Some(runs.clone()),
        shutdown_grace: Duration::from_secs(5),
        client_timeout: Duration::from_secs(10),
    })
    .await
    .unwrap();
    (server, audit, runs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_logs_audits_counts_and_journals_no_phi() {
    let logs = server_logs();

    // The claim's model fails, so the run has task errors to report.
    let mock = MockServer::start(claims_fail()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (server, audit, runs) = serve(
        dir.path(),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows"),
        &mock,
    )
    .await;
    let base = format!("http://{}", server.addr());
    let http = reqwest::Client::new();

    let response = http
        .post(format!("{base}/v1/workflows/execute"))
        .bearer_auth(token())
        .json(&json!({
            "workflow_type": "insurance_claim",
            "context": {
                "patient_data": record(),
                "requested_service": "MRI lumbar spine (CPT 72148)",
                "service_date": "2026-03-02",
            },
        }))
        .send()
        .await
        .unwrap();
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["success"], false, "{report}");
    assert!(
        report["metadata"]["errors"]["claim"]
            .as_str()
            .is_some_and(|error| error.contains("HTTP 500")),
        "{report}"
    );
    assert!(
        mock.requests().iter().any(|r| r.prompt.contains(MARKER)),
        "the PHI-allowed agent received the record"
    );
    assert_clean("the errors", &report["metadata"].to_string());
    for result in report["results"].as_array().unwrap() {
        let mut result = result.clone();
        result.as_object_mut().unwrap().remove("content");
        assert_clean("a task's report", &result.to_string());
    }

    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("wfc_tasks_total"), "{metrics}");
    assert_clean("the metrics", &metrics);
    let audited = std::fs::read_to_string(&audit).unwrap();
    assert!(audited.contains(&request_id), "{audited}");
    assert_clean("the audit log", &audited);
    let journal = journal_metadata(&runs.join(&request_id).join("journal.jsonl"));
    assert!(!journal.is_empty());
    assert_clean("the journal", &serde_json::to_string(&journal).unwrap());

    server.stop().await;
    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(logs.contains("DEBUG"), "debug logs are captured: {logs}");
    assert_clean("the server's logs", &logs);
}

#[test]
fn check_holds_workflows_to_the_router_file() {
    let dir = tempfile::tempdir().unwrap();
    let inside = "[[agents.Clinical.endpoints]]\nurl = \"http://gpu-1/v1\"\nphi_allowed = true\n\
        [[agents.MedicalQA.endpoints]]\nurl = \"http://gpu-2/v1\"\nphi_allowed = true\n\
        [[agents.Billing.endpoints]]\nurl = \"http://gpu-3/v1\"\nphi_allowed = true\n\
        [[agents.Claims.endpoints]]\nurl = \"https://payer.example/v1\"\n";
    let check = |router: &str| {
        let path = dir.path().join("wfc.toml");
        std::fs::write(&path, router).unwrap();
        Wfc::new()
            .args(["check", "--deny-warnings", "workflows/", "--router"])
            .arg(&path)
            .run()
    };
    let clean = check(inside);
    assert_eq!(clean.code, Some(0), "{clean:?}");

    // A Billing replica outside the boundary: every endpoint must say so.
    let outside =
        format!("{inside}[[agents.Billing.endpoints]]\nurl = \"https://cloud.example/v1\"\n");
    let leaky = check(&outside);
    let stdout = &leaky.stdout;
    assert_eq!(leaky.code, Some(1), "{stdout}");
    assert!(stdout.contains("wf::phi-flow"), "{stdout}");
    assert!(stdout.contains("reaches agent `Billing`"), "{stdout}");
    assert!(stdout.contains("every endpoint of `Billing`"), "{stdout}");

    let broken = check("[[agents.Clinical.endpoints]]\nurl = \"gpu-1\"\n");
    assert_eq!(broken.code, Some(2), "{broken:?}");
}

/// A typed task on a `@phi` record whose model repeats the record where a
/// date belongs, and a `@phi` date input.
const TYPED: &str = r#"
agent Clinical { model = "clinical" phi_allowed = true }
workflow typed {
  input record: text @phi
  input seen: date @phi
  task assess -> Clinical {
    prompt = "Seen {{ seen }}. When did it start? {{ record }}"
    output = json { when: date }
  }
  output = "{{ assess }}"
}
"#;

/// The mock's answer: the record where the date should be.
fn echoing_model() -> MockConfig {
    MockConfig {
        faults: vec![Fault {
            model: Some("clinical".into()),
            prompt_contains: None,
            times: None,
            kind: FaultKind::Answer(format!(r#"{{"when": "{}"}}"#, record())),
        }],
        ..MockConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_mismatches_and_ill_typed_inputs_name_no_phi_on_the_command_line() {
    let mock = MockServer::start(echoing_model()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("typed.wf");
    std::fs::write(&file, TYPED).unwrap();
    let record_file = dir.path().join("record.txt");
    std::fs::write(&record_file, record()).unwrap();
    let run = |seen: String, run_dir: &str| {
        Wfc::new()
            .env("WFC_LOG", "debug")
            .env("WFC_ROUTE_CLINICAL", mock.base_url())
            .arg("run")
            .arg(&file)
            .args(["--json", "--run-dir"])
            .arg(dir.path().join(run_dir))
            .arg("-i")
            .arg(format!("record=@{}", record_file.display()))
            .args(["-i", &format!("seen={seen}")])
    };

    let mismatch = run("2026-03-02".into(), "run").run_in_background().await;
    assert_eq!(mismatch.code, Some(3), "{}", mismatch.stderr);
    assert!(
        mismatch.stderr.contains("assess"),
        "progress lines are on: {}",
        mismatch.stderr
    );
    assert_clean("the progress lines and logs", &mismatch.stderr);
    let report = mismatch.json();
    let error = report["metadata"]["errors"]["assess"].as_str().unwrap();
    let length = record().chars().count();
    assert!(
        error.contains(&format!(
            "field `when`: a text of {length} characters is not a date"
        )),
        "{error}"
    );
    assert_clean("the report's errors", &report["metadata"].to_string());
    let journal = journal_metadata(&dir.path().join("run/journal.jsonl"));
    assert_clean("the journal", &serde_json::to_string(&journal).unwrap());

    let ill_typed = run(MARKER.into(), "run-2").run_in_background().await;
    assert_eq!(ill_typed.code, Some(2), "{}", ill_typed.stderr);
    assert!(
        ill_typed
            .stderr
            .contains("input `seen` should be a date such as 2026-01-04 or 01/04/2026, but a text of 17 characters is not a date"),
        "{}",
        ill_typed.stderr
    );
    assert_clean("the input errors", &ill_typed.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_mismatches_and_ill_typed_inputs_name_no_phi_over_http() {
    let logs = server_logs();
    let mock = MockServer::start(echoing_model()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sources = dir.path().join("workflows");
    std::fs::create_dir(&sources).unwrap();
    std::fs::write(sources.join("typed.wf"), TYPED).unwrap();
    let (server, audit, runs) = serve(dir.path(), sources, &mock).await;
    let base = format!("http://{}", server.addr());
    let http = reqwest::Client::new();
    let execute = |seen: &str, stream: bool| {
        http.post(format!(
            "{base}/v1/workflows/execute{}",
            if stream { "?stream=true" } else { "" }
        ))
        .bearer_auth(token())
        .json(&json!({
            "workflow_type": "typed",
            "context": { "record": record(), "seen": seen },
        }))
        .send()
    };

    let report: Value = execute("2026-03-02", false)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let error = report["metadata"]["errors"]["assess"].as_str().unwrap();
    assert!(error.contains("field `when`: a text of"), "{error}");
    assert_clean("the report's errors", &report["metadata"].to_string());

    let events = execute("2026-03-02", true)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        events.contains("event: retrying") && events.contains("event: failed"),
        "{events}"
    );
    // Streamed answer text goes to the caller by design; every other event
    // names and counts.
    let without_answers: Vec<&str> = events
        .split("\n\n")
        .filter(|event| !event.starts_with("event: text") && !event.starts_with("event: report"))
        .collect();
    assert_clean("the event stream", &without_answers.join("\n\n"));

    let refused = execute(MARKER, false).await.unwrap();
    assert_eq!(refused.status(), 400);
    let body = refused.text().await.unwrap();
    assert!(
        body.contains("a text of 17 characters is not a date"),
        "{body}"
    );
    assert_clean("the 400 answer", &body);

    server.stop().await;
    assert_clean("the audit log", &std::fs::read_to_string(&audit).unwrap());
    for entry in std::fs::read_dir(&runs).unwrap().flatten() {
        let journal = journal_metadata(&entry.path().join("journal.jsonl"));
        assert_clean("the journal", &serde_json::to_string(&journal).unwrap());
    }
    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert_clean("the server's logs", &logs);
}

/// The durable engine: Restate's journal holds the prompts (that is where
/// PHI lives with this engine), but its log, its invocations' metadata,
/// its promises, the fleet's slot objects, the worker's log, the serve
/// instance's log and its audit log hold none of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_durable_engine_keeps_phi_in_restates_journal_only() {
    use crate::durable::{Client, Fleet, library, serve_on};
    let logs = server_logs();
    let Some(Fleet {
        restate,
        mock,
        dir,
        router,
    }) = Fleet::with_mock("phi::the_durable_engine_keeps_phi", claims_fail()).await
    else {
        return;
    };
    let worker = restate.worker(&[&library()], &router, 0).await;
    let audit = dir.path().join("audit.jsonl");
    let server = serve_on(&restate, &audit, Duration::from_mins(1)).await;
    let context = json!({
        "patient_data": record(),
        "requested_service": "MRI lumbar spine (CPT 72148)",
        "service_date": "2026-03-02",
    });
    let client = Client::of(&server, "dr-house");
    let response = client
        .execute_with("insurance_claim", "claim-1", "", &context)
        .await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(
        report["success"], false,
        "the claim's model fails: {report}"
    );
    assert!(
        mock.requests().iter().any(|r| r.prompt.contains(MARKER)),
        "the marker reached the model"
    );
    let journal = restate
        .query("SELECT raw FROM sys_journal WHERE id IN (SELECT id FROM sys_invocation WHERE target_service_name = 'WfcTask')")
        .await;
    let marker_hex: String = MARKER.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(
        journal.contains(&marker_hex),
        "the prompts are in Restate's journal (the one place PHI lives with this engine)"
    );
    for (channel, sql) in [
        ("Restate's invocations", "SELECT * FROM sys_invocation"),
        ("Restate's promises", "SELECT * FROM sys_promise"),
        (
            "Restate's journal events",
            "SELECT * FROM sys_journal_events",
        ),
        (
            "the fleet's slots",
            "SELECT * FROM state WHERE service_name = 'ServerSlots'",
        ),
    ] {
        let rows = restate.query(sql).await;
        assert_clean(channel, &rows);
        assert!(
            !rows.contains(&marker_hex),
            "PHI leaked into {channel}:\n{rows}"
        );
    }
    assert_clean("Restate's log", &restate.log());
    let worker_log = worker.log();
    assert!(
        worker_log.contains("DEBUG"),
        "debug logs are captured: {worker_log}"
    );
    assert_clean("the worker's log", &worker_log);
    assert_clean("the audit log", &std::fs::read_to_string(&audit).unwrap());
    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert_clean("the serve instance's log", &logs);
}

/// Every file under `dir`, as text where it is text.
fn files_under(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            found.push((path, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    found
}

#[test]
fn a_search_with_a_phi_query_leaves_no_phi_in_logs_journal_or_index() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("corpora/prior_notes");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(
        notes.join("notes.md"),
        "# Prior notes\n\n## 2025 visit\n\nLow back pain treated with physical therapy for six weeks.\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("notes.wf"),
        r#"
/// The hospital's own notes, indexed on local disk inside the boundary.
corpus PriorNotes { phi_allowed = true }
agent Clinical {
  model = "clinical-model"
  phi_allowed = true
}
workflow history {
  input record: text @phi
  retrieve earlier from PriorNotes { query = "{{ record }}" }
  task summary -> Clinical { prompt = "{{ record }}\n{{ earlier }}" }
  output = "{{ summary }}"
}
"#,
    )
    .unwrap();
    let ran = Wfc::new()
        .current_dir(dir.path())
        .env("WFC_LOG", "debug")
        .args(["run", "notes.wf", "--mock", "--json", "--run-dir", "run"])
        .arg("-i")
        .arg(format!("record={}", record()))
        .run();
    assert_eq!(ran.code, Some(0), "{ran}");
    assert!(ran.stderr.contains("DEBUG"), "debug logs are on: {ran}");
    assert_clean("the logs", &ran.stderr);
    let report = ran.json();
    assert_eq!(report["results"][0]["passages"], json!(["notes#1"]));
    assert_clean("the report's metadata", &report["metadata"].to_string());
    let journal = journal_metadata(&dir.path().join("run/journal.jsonl"));
    assert_eq!(journal.len(), 2);
    assert_clean("the journal", &serde_json::to_string(&journal).unwrap());
    let index = files_under(&dir.path().join(".wfc/index/PriorNotes"));
    assert!(index.len() > 3, "the index was built: {index:?}");
    for (path, text) in index {
        assert_clean(&path.display().to_string(), &text);
    }
}

#[test]
fn a_corpus_indexed_on_disk_may_be_searched_with_phi_under_the_router_file() {
    let dir = tempfile::tempdir().unwrap();
    let workflow = dir.path().join("notes.wf");
    std::fs::write(
        &workflow,
        r#"
/// Not declared `phi_allowed`: only the deployment can say it may be.
corpus PriorNotes { }
workflow history {
  input record: text @phi
  retrieve earlier from PriorNotes { query = "{{ record }}" }
  output = "{{ earlier }}"
}
"#,
    )
    .unwrap();
    let declared = Wfc::new().arg("check").arg(&workflow).run();
    assert_eq!(declared.code, Some(1), "{declared}");
    assert!(
        declared
            .stdout
            .contains("protected health information from `record` reaches corpus `PriorNotes`"),
        "{declared}"
    );
    let router = dir.path().join("wfc.toml");
    std::fs::write(&router, "[corpora.PriorNotes]\npath = \"notes\"\n").unwrap();
    let deployed = Wfc::new()
        .arg("check")
        .arg(&workflow)
        .arg("--router")
        .arg(&router)
        .run();
    assert_eq!(
        deployed.code,
        Some(0),
        "an index on local disk is inside: {deployed}"
    );
}
