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
    assert_eq!(journal.len(), 2);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_logs_audits_counts_and_journals_no_phi() {
    let logs = Logs::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    // The claim's model fails, so the run has task errors to report.
    let mock = MockServer::start(MockConfig {
        faults: vec![Fault {
            model: Some("OpenInsurance-8B".into()),
            prompt_contains: None,
            times: None,
            kind: FaultKind::Status(500),
        }],
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let runs: PathBuf = dir.path().join("runs");
    let server = Server::start(ServeConfig {
        sources: vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows")],
        deployment: Deployment::Everything(mock.base_url()),
        listen: "127.0.0.1:0".parse().unwrap(),
        auth: Auth::shared_secret(SECRET, "wfc", None),
        rate_limit: NonZeroU32::new(1000),
        max_runs: 4,
        deadline: Duration::from_mins(1),
        max_body: 64 * 1024,
        audit: AuditLog::to_file(&audit).unwrap(),
        runs_dir: Some(runs.clone()),
        shutdown_grace: Duration::from_secs(5),
    })
    .await
    .unwrap();
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
