//! `wfc serve` over real HTTP on 127.0.0.1, with the mock model server
//! behind it: every endpoint, every way authentication fails, rate limits,
//! bad bodies, template injection, the audit log, busy and slow runs,
//! reloads and graceful shutdown.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use wfc::mock::{MockConfig, MockServer};
use wfc::run::Deployment;
use wfc::serve::{AuditLog, Auth, ServeConfig, Server};

pub(crate) const SECRET: &[u8] = b"a-test-secret-of-at-least-32-bytes!!";
const AUDIENCE: &str = "wfc";
const MARKER: &str = "PATIENT-MARKER-7f3a9c";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(claims: Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

pub(crate) fn valid_token(subject: &str) -> String {
    token(json!({ "sub": subject, "aud": AUDIENCE, "exp": now() + 600 }))
}

fn library() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows")
}

fn discharge_context() -> Value {
    json!({
        "patient_data": format!("{MARKER}: 65-year-old man with an inferior STEMI {{{{ 7 * 7 }}}}"),
        "admission_date": "01/01/2026",
        "discharge_date": "01/04/2026",
    })
}

struct Harness {
    server: Option<Server>,
    mock: MockServer,
    base: String,
    audit: PathBuf,
    runs: PathBuf,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

struct Options {
    auth: Auth,
    rate_limit: Option<NonZeroU32>,
    max_runs: usize,
    deadline: Duration,
    max_body: usize,
    mock: MockConfig,
    sources: Vec<PathBuf>,
    dead_models: bool,
    client_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            auth: Auth::shared_secret(SECRET, AUDIENCE, None),
            rate_limit: NonZeroU32::new(1000),
            max_runs: 8,
            deadline: Duration::from_secs(30),
            max_body: 64 * 1024,
            mock: MockConfig::default(),
            sources: vec![library()],
            dead_models: false,
            client_timeout: Duration::from_secs(10),
        }
    }
}

impl Harness {
    async fn start(options: Options) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mock = MockServer::start(options.mock).await.unwrap();
        let models = if options.dead_models {
            let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}/v1", closed.local_addr().unwrap())
        } else {
            mock.base_url()
        };
        let audit = dir.path().join("audit.jsonl");
        let runs = dir.path().join("runs");
        let server = Server::start(ServeConfig {
            sources: options.sources,
            engine: wfc::serve::Engine::Local(Deployment::Everything(models)),
            listen: "127.0.0.1:0".parse().unwrap(),
            auth: options.auth,
            rate_limit: options.rate_limit,
            max_runs: options.max_runs,
            deadline: options.deadline,
            max_body: options.max_body,
            audit: AuditLog::to_file(&audit).unwrap(),
            runs_dir: Some(runs.clone()),
            shutdown_grace: Duration::from_secs(5),
            client_timeout: options.client_timeout,
        })
        .await
        .unwrap();
        Harness {
            base: format!("http://{}", server.addr()),
            server: Some(server),
            mock,
            audit,
            runs,
            _dir: dir,
            http: reqwest::Client::new(),
        }
    }

    fn post(&self, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let request = self.http.post(format!("{}{path}", self.base));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    async fn execute(&self, token: Option<&str>, body: Value) -> (u16, Value) {
        let response = self
            .post("/v1/workflows/execute", token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    fn audit_records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.audit)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_in_the_seeds_shapes() {
    let harness = Harness::start(Options::default()).await;
    let token = valid_token("dr-house");

    let health = harness.get("/healthz", None).await;
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");

    let ready: Value = harness.get("/readyz", None).await.json().await.unwrap();
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["agents"]["Clinical"], true);
    assert_eq!(ready["corpora"]["PayerPolicies"], true, "{ready}");

    let types: Value = harness
        .get("/v1/workflows/types", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = types["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 10);
    assert!(names.contains(&"discharge_summary") && names.contains(&"insurance_claim"));
    let discharge = &types["workflows"][names
        .iter()
        .position(|n| *n == "discharge_summary")
        .unwrap()];
    assert_eq!(discharge["pattern"], "parallel");
    assert_eq!(discharge["inputs"][0]["name"], "patient_data");
    assert_eq!(
        discharge["file"], "discharge_summary.wf",
        "paths are relative to the served folder"
    );

    let (status, report) = harness
        .execute(
            Some(&token),
            json!({ "workflow_type": "discharge_summary", "context": discharge_context() }),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["workflow_type"], "discharge_summary");
    assert_eq!(report["success"], true);
    assert_eq!(report["metadata"]["num_tasks"], 2);
    assert!(
        report["aggregated_content"]
            .as_str()
            .unwrap()
            .starts_with("=== DISCHARGE SUMMARY ===")
    );
    for field in [
        "task_id",
        "agent_type",
        "model",
        "latency_ms",
        "tokens",
        "success",
    ] {
        assert!(!report["results"][0][field].is_null(), "{field}");
    }

    let named = harness
        .post("/v1/workflows/discharge-summary", Some(&token))
        .json(&discharge_context())
        .send()
        .await
        .unwrap();
    assert_eq!(named.status(), 200);
    let named: Value = named.json().await.unwrap();
    assert_eq!(named["workflow_type"], "discharge_summary");

    let response = harness.get("/metrics", None).await;
    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        "the content type matches the OpenMetrics body"
    );
    let metrics = response.text().await.unwrap();
    assert!(metrics.ends_with("# EOF\n"), "{metrics}");
    assert!(
        metrics.contains(
            r#"wfc_workflow_runs_total{workflow="discharge_summary",outcome="success"} 2"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains(r#"wfc_tasks_total{agent="Clinical",status="ok"} 2"#));
    assert!(metrics.contains("wfc_task_duration_seconds_bucket"));
    let count = |name: &str| -> u64 {
        let line = format!(r#"{name}{{agent="Clinical"}} "#);
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(line.as_str()))
            .unwrap_or_else(|| panic!("no {name}: {metrics}"))
            .parse()
            .unwrap()
    };
    // The second run asked Clinical the same prompt: the mock served all
    // but its last word from its cache.
    let (prompt, cached) = (
        count("wfc_prompt_tokens_total"),
        count("wfc_cached_prompt_tokens_total"),
    );
    assert_eq!(cached, prompt / 2 - 1, "{metrics}");
    assert!(metrics.contains("wfc_runs_in_flight 0"));

    let served: Value = harness
        .get("/openapi.json", None)
        .await
        .json()
        .await
        .unwrap();
    let stored: Value = serde_json::from_str(wfc::serve::OPENAPI).unwrap();
    assert_eq!(served, stored);
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, operations) in stored["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    documented.sort();
    let mut routes: Vec<(String, String)> = wfc::serve::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    routes.sort();
    assert_eq!(
        documented, routes,
        "the OpenAPI document lists exactly the routes"
    );

    let missing = harness.get("/v2/anything", None).await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_token_is_refused_with_the_reason() {
    let harness = Harness::start(Options::default()).await;
    let body = json!({ "workflow_type": "lab_report", "context": {} });
    let header_and_payload = |header: Value, claims: Value| {
        use base64_like::encode;
        format!(
            "{}.{}",
            encode(&header.to_string()),
            encode(&claims.to_string())
        )
    };
    let good_claims = json!({ "sub": "mallory", "aud": AUDIENCE, "exp": now() + 600 });
    let cases = [
        (None, "send a JWT"),
        (
            Some(token(
                json!({ "sub": "a", "aud": AUDIENCE, "exp": now() - 3600 }),
            )),
            "the token has expired",
        ),
        (
            Some(token(
                json!({ "sub": "a", "aud": "billing-portal", "exp": now() + 600 }),
            )),
            "another audience",
        ),
        (
            Some(
                jsonwebtoken::encode(
                    &Header::new(Algorithm::HS256),
                    &good_claims,
                    &EncodingKey::from_secret(b"someone-elses-secret-of-32-bytes!!"),
                )
                .unwrap(),
            ),
            "signature is not valid",
        ),
        (
            Some(format!(
                "{}.",
                header_and_payload(json!({ "alg": "none", "typ": "JWT" }), good_claims.clone())
            )),
            "not a valid JWT",
        ),
        (
            Some(token(json!({ "aud": AUDIENCE, "exp": now() + 600 }))),
            "has no `sub` claim",
        ),
        (
            Some(token(
                json!({ "sub": "a", "aud": AUDIENCE, "exp": now() + 7200, "nbf": now() + 3600 }),
            )),
            "not valid yet",
        ),
        (
            Some(token(json!({
                "sub": "a", "aud": AUDIENCE, "exp": now() + 600, "padding": "x".repeat(100 * 1024),
            }))),
            "tokens of more than 8192 bytes are refused",
        ),
    ];
    for (token, reason) in cases {
        let (status, error) = harness.execute(token.as_deref(), body.clone()).await;
        assert_eq!(status, 401, "{reason}: {error}");
        assert_eq!(error_code(&error), "unauthorized");
        assert!(
            error["error"]["message"].as_str().unwrap().contains(reason),
            "{reason}: {error}"
        );
    }
    assert!(
        harness.mock.requests().is_empty(),
        "nothing reached a model"
    );

    let limited = token(json!({
        "sub": "billing-clerk", "aud": AUDIENCE, "exp": now() + 600,
        "workflows": ["billing_with_justification"],
    }));
    let (status, error) = harness
        .execute(
            Some(&limited),
            json!({ "workflow_type": "discharge_summary", "context": discharge_context() }),
        )
        .await;
    // Not allowed looks exactly like not there, and names only what the
    // caller may run.
    assert_eq!(status, 404);
    assert_eq!(error_code(&error), "unknown_workflow");
    let message = error["error"]["message"].as_str().unwrap();
    assert_eq!(
        message,
        "there is no workflow `discharge_summary` you may run; yours: billing_with_justification"
    );
    let (_, unknown) = harness
        .execute(
            Some(&limited),
            json!({ "workflow_type": "no_such_flow", "context": {} }),
        )
        .await;
    assert_eq!(
        unknown["error"]["message"].as_str().unwrap(),
        message.replace("discharge_summary", "no_such_flow")
    );
    let types: Value = harness
        .get("/v1/workflows/types", Some(&limited))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(types["workflows"].as_array().unwrap().len(), 1);

    // The scheme is case-insensitive (RFC 7235).
    let response = harness
        .http
        .get(format!("{}/v1/workflows/types", harness.base))
        .header(
            "authorization",
            format!("bearer {}", valid_token("dr-house")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_issuer_configured_a_token_must_name_it() {
    let harness = Harness::start(Options {
        auth: Auth::shared_secret(SECRET, AUDIENCE, Some("https://idp.example")),
        ..Options::default()
    })
    .await;
    let body = json!({ "workflow_type": "lab_report", "context": {} });
    let without = token(json!({ "sub": "a", "aud": AUDIENCE, "exp": now() + 600 }));
    let (status, error) = harness.execute(Some(&without), body.clone()).await;
    assert_eq!(status, 401, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no `iss` claim"),
        "{error}"
    );
    let other = token(
        json!({ "sub": "a", "aud": AUDIENCE, "exp": now() + 600, "iss": "https://evil.example" }),
    );
    let (status, _) = harness.execute(Some(&other), body.clone()).await;
    assert_eq!(status, 401);
    let named = token(
        json!({ "sub": "a", "aud": AUDIENCE, "exp": now() + 600, "iss": "https://idp.example" }),
    );
    let (status, error) = harness.execute(Some(&named), body).await;
    assert_ne!(status, 401, "{error}");
}

/// The few lines of base64url a hand-made `alg: none` token needs.
mod base64_like {
    pub(crate) fn encode(text: &str) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bytes = text.as_bytes();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rs256_tokens_work_and_algorithm_confusion_does_not() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jwt");
    let public = std::fs::read(fixtures.join("rs256-public.pem")).unwrap();
    let private = std::fs::read(fixtures.join("rs256-private.pem")).unwrap();
    let harness = Harness::start(Options {
        auth: Auth::public_key(&public, Algorithm::RS256, AUDIENCE, Some("hospital-idp")).unwrap(),
        ..Options::default()
    })
    .await;
    let claims =
        json!({ "sub": "dr-grey", "aud": AUDIENCE, "iss": "hospital-idp", "exp": now() + 600 });
    let rs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims,
        &EncodingKey::from_rsa_pem(&private).unwrap(),
    )
    .unwrap();
    let types = harness.get("/v1/workflows/types", Some(&rs256)).await;
    assert_eq!(types.status(), 200);

    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&public),
    )
    .unwrap();
    let refused = harness.get("/v1/workflows/types", Some(&confused)).await;
    assert_eq!(refused.status(), 401);
    let error: Value = refused.json().await.unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("algorithm this server does not accept"),
        "{error}"
    );

    let wrong_issuer = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &json!({ "sub": "x", "aud": AUDIENCE, "iss": "elsewhere", "exp": now() + 600 }),
        &EncodingKey::from_rsa_pem(&private).unwrap(),
    )
    .unwrap();
    assert_eq!(
        harness
            .get("/v1/workflows/types", Some(&wrong_issuer))
            .await
            .status(),
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_caller_has_its_own_rate_limit() {
    let harness = Harness::start(Options {
        rate_limit: NonZeroU32::new(2),
        ..Options::default()
    })
    .await;
    let alice = valid_token("alice");
    for _ in 0..2 {
        assert_eq!(
            harness
                .get("/v1/workflows/types", Some(&alice))
                .await
                .status(),
            200
        );
    }
    let limited = harness.get("/v1/workflows/types", Some(&alice)).await;
    assert_eq!(limited.status(), 429);
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let error: Value = limited.json().await.unwrap();
    assert_eq!(error_code(&error), "rate_limited");
    let bob = valid_token("bob");
    assert_eq!(
        harness
            .get("/v1/workflows/types", Some(&bob))
            .await
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_and_bad_inputs_are_named() {
    let harness = Harness::start(Options {
        max_body: 2048,
        ..Options::default()
    })
    .await;
    let token = valid_token("dr-house");
    let big =
        json!({ "workflow_type": "lab_report", "context": { "lab_results": "x".repeat(4096) } });
    let (status, error) = harness.execute(Some(&token), big).await;
    assert_eq!(status, 413);
    assert_eq!(error_code(&error), "body_too_large");

    let malformed = harness
        .post("/v1/workflows/execute", Some(&token))
        .header("content-type", "application/json")
        .body("{\"workflow_type\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let error: Value = malformed.json().await.unwrap();
    assert_eq!(error_code(&error), "invalid_json");

    let (status, error) = harness
        .execute(
            Some(&token),
            json!({ "workflow_type": "lab_report", "context": {}, "endpoint": "http://evil" }),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `endpoint`")
    );

    let (status, error) = harness
        .execute(
            Some(&token),
            json!({ "workflow_type": "lab_reprt", "context": {} }),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(error_code(&error), "unknown_workflow");

    let (status, error) = harness
        .execute(
            Some(&token),
            json!({ "workflow_type": "discharge_summary", "context": { "patient_data": "x", "admission_date": "soon", "ward": 4 } }),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(error_code(&error), "invalid_inputs");
    let problems: Vec<&str> = error["error"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        problems.contains(&"workflow `discharge_summary` has no input `ward`"),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("input `admission_date` should be a date"))
    );
    assert!(
        problems
            .contains(&"input `discharge_date` is required (declared as `date`) but was not given")
    );
    assert!(harness.mock.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_stay_data_and_patient_text_stays_out_of_the_audit_log() {
    let harness = Harness::start(Options::default()).await;
    let token = valid_token("dr-house");
    let response = harness
        .post("/v1/workflows/execute", Some(&token))
        .json(&json!({ "workflow_type": "discharge_summary", "context": discharge_context() }))
        .send()
        .await
        .unwrap();
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["success"], true);
    for request in harness.mock.requests() {
        assert!(request.prompt.contains("{{ 7 * 7 }}"), "sent as written");
        assert!(!request.prompt.contains("49"));
    }
    let _ = harness.get("/v1/workflows/types", None).await;

    let records = harness.audit_records();
    let run = records
        .iter()
        .find(|r| r["request_id"] == request_id.as_str())
        .expect("the run is audited under its request id");
    assert_eq!(run["caller"], "dr-house");
    assert_eq!(run["workflow"], "discharge_summary");
    assert_eq!(run["outcome"], "success");
    assert_eq!(run["status"], 200);
    assert!(run["latency_ms"].is_number());
    assert!(
        records
            .iter()
            .any(|r| r["outcome"] == "unauthorized" && r["status"] == 401)
    );
    let audit = std::fs::read_to_string(&harness.audit).unwrap();
    assert!(!audit.contains(MARKER), "no patient text in the audit log");
    assert!(
        !audit.contains("Mock BioMistral"),
        "no model output in the audit log"
    );
    assert!(!audit.contains(&token), "no tokens in the audit log");
    let metrics = harness.get("/metrics", None).await.text().await.unwrap();
    assert!(!metrics.contains(MARKER));
    let journal =
        std::fs::read_to_string(harness.runs.join(&request_id).join("journal.jsonl")).unwrap();
    assert_eq!(
        journal.lines().count(),
        2,
        "the run's journal keeps both answers"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_says_so_and_a_slow_run_meets_its_deadline() {
    let slow = MockConfig {
        default_latency: Duration::from_millis(800),
        ..MockConfig::default()
    };
    let harness = Harness::start(Options {
        max_runs: 1,
        deadline: Duration::from_millis(300),
        mock: slow,
        ..Options::default()
    })
    .await;
    let token = valid_token("dr-house");
    let body = json!({ "workflow_type": "discharge_summary", "context": discharge_context() });
    let first = harness.execute(Some(&token), body.clone());
    let second = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        harness
            .post("/v1/workflows/execute", Some(&token))
            .json(&body)
            .send()
            .await
            .unwrap()
    };
    let ((status, report), busy) = tokio::join!(first, second);
    assert_eq!(busy.status(), 503);
    assert_eq!(busy.headers()["retry-after"], "1");
    let busy: Value = busy.json().await.unwrap();
    assert_eq!(error_code(&busy), "busy");

    assert_eq!(status, 504, "{report}");
    assert_eq!(report["metadata"]["interrupted"], true);
    assert_eq!(report["success"], false);
    assert!(
        harness
            .audit_records()
            .iter()
            .any(|r| r["outcome"] == "timeout")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_sends_task_events_then_the_report() {
    let harness = Harness::start(Options::default()).await;
    let token = valid_token("dr-house");
    let response = harness
        .post("/v1/workflows/execute?stream=true", Some(&token))
        .json(&json!({ "workflow_type": "insurance_claim", "context": {
            "patient_data": "Synthetic: 52-year-old man, lumbar radiculopathy.",
            "requested_service": "MRI lumbar spine (CPT 72148)",
            "service_date": "2026-03-02",
        } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = response.text().await.unwrap();
    let events: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("event: "))
        .filter(|event| *event != "text")
        .collect();
    // The payer policy's search, the assessment, the claim.
    assert_eq!(
        events,
        [
            "started", "finished", "started", "finished", "started", "finished", "report"
        ]
    );
    assert!(
        text.contains("event: text"),
        "answers stream as they are written"
    );
    let report = text
        .split("event: report\ndata: ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap();
    let report: Value = serde_json::from_str(report).unwrap();
    assert_eq!(report["success"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_when_the_model_servers_are_down() {
    let harness = Harness::start(Options {
        dead_models: true,
        ..Options::default()
    })
    .await;
    let response = harness.get("/readyz", None).await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["ready"], false);
    assert_eq!(body["agents"]["Billing"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_while_a_corpus_cannot_be_searched() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("coverage.wf"),
        "corpus Policies { }
workflow coverage {
  input service: text
  retrieve policy from Policies { query = \"{{ service }}\" }
}
",
    )
    .unwrap();
    let harness = Harness::start(Options {
        sources: vec![dir.path().to_path_buf()],
        ..Options::default()
    })
    .await;
    let response = harness.get("/readyz", None).await;
    assert_eq!(response.status(), 503, "its folder is missing");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["corpora"]["Policies"], false);

    let folder = dir.path().join("corpora/policies");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("knee.md"), "# Knee\n\nCovered.\n").unwrap();
    let response = harness.get("/readyz", None).await;
    assert_eq!(response.status(), 200, "indexed when asked");
    assert!(dir.path().join(".wfc/index/Policies").is_dir());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_with_errors_keeps_the_workflows_being_served() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("triage.wf");
    let good = "agent A { model = \"m\" }\nworkflow triage {\n  input note: text\n  task t -> A { prompt = \"{{ note }}\" }\n}\n";
    std::fs::write(&file, good).unwrap();
    let harness = Harness::start(Options {
        sources: vec![dir.path().to_path_buf()],
        ..Options::default()
    })
    .await;
    let server = harness.server.as_ref().unwrap();
    std::fs::write(&file, good.replace("{{ note }}", "{{ nothing }}")).unwrap();
    let refused = server.reload().unwrap_err();
    assert!(refused.contains("wf::unknown-name"), "{refused}");
    let token = valid_token("dr-house");
    let (status, _) = harness
        .execute(
            Some(&token),
            json!({ "workflow_type": "triage", "context": { "note": "x" } }),
        )
        .await;
    assert_eq!(status, 200, "the old workflow still runs");

    std::fs::write(&file, good.replace("workflow triage", "workflow intake")).unwrap();
    assert_eq!(server.reload(), Ok(1));
    let (status, _) = harness
        .execute(
            Some(&token),
            json!({ "workflow_type": "intake", "context": { "note": "x" } }),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_runs_in_flight_finish() {
    let mut harness = Harness::start(Options {
        mock: MockConfig {
            default_latency: Duration::from_millis(500),
            ..MockConfig::default()
        },
        ..Options::default()
    })
    .await;
    let token = valid_token("dr-house");
    let server = harness.server.take().unwrap();
    let run = harness.execute(
        Some(&token),
        json!({ "workflow_type": "discharge_summary", "context": discharge_context() }),
    );
    let stop = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        server.stop().await;
    };
    let ((status, report), ()) = tokio::join!(run, stop);
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["success"], true);
    let after = reqwest::get(format!("{}/healthz", harness.base)).await;
    assert!(after.is_err(), "no new connections after shutdown");
}

#[test]
fn only_the_agents_a_workflow_can_call_need_a_route() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("one.wf");
    std::fs::write(
        &file,
        r#"
agent Used { model = "used" fallback = Backup }
agent Backup { model = "backup" }
agent Unused { model = "unused" }
workflow w {
  task t -> Used { prompt = "t" }
}
"#,
    )
    .unwrap();
    let routed = |agents: &[&str]| {
        let mut text = String::new();
        for agent in agents {
            text.push_str(&format!(
                "[[agents.{agent}.endpoints]]\nurl = \"http://127.0.0.1:9/v1\"\n"
            ));
        }
        Deployment::Router(wfc::router::RouterConfig::parse(&file, &text).unwrap())
    };
    let library = wfc::serve::Library::load(std::slice::from_ref(&file)).unwrap();
    assert!(library.connect(&routed(&["Used", "Backup"]), true).is_ok());
    let Err(missing) = library.connect(&routed(&["Used"]), true) else {
        panic!("the fallback needs a route")
    };
    let missing = missing.to_string();
    assert!(missing.contains("Backup"), "{missing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_comes_before_the_query_and_the_body() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let harness = Harness::start(Options::default()).await;
    // A body far over the limit, without a token: refused for the token
    // before the body is read (only its first bytes are ever sent).
    let mut raw = tokio::net::TcpStream::connect(harness.base.trim_start_matches("http://"))
        .await
        .unwrap();
    raw.write_all(
        b"POST /v1/workflows/execute HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 1048576\r\n\r\n{",
    )
    .await
    .unwrap();
    let mut answer = vec![0; 1024];
    let read = raw.read(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    let response = harness
        .post("/v1/workflows/execute?stream=yes", None)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(error_code(&response.json().await.unwrap()), "unauthorized");

    let token = valid_token("dr-house");
    let response = harness
        .post("/v1/workflows/execute?stream=yes", Some(&token))
        .json(&json!({ "workflow_type": "lab_report", "context": {} }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error_code(&error), "invalid_query");
    assert_eq!(
        error["error"]["message"],
        "`stream` is `true` or `false`, not `yes`"
    );

    let response = harness.get("/v1/workflows/execute", Some(&token)).await;
    assert_eq!(response.status(), 405);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error_code(&error), "method_not_allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let harness = Harness::start(Options {
        client_timeout: Duration::from_millis(300),
        ..Options::default()
    })
    .await;
    let addr = harness.base.trim_start_matches("http://").to_string();

    // Headers that never end: the connection is closed.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"POST /v1/workflows/execute HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest)).await;
    assert!(
        closed.is_ok(),
        "a client that never finishes its headers is cut off"
    );

    // A body that never ends, from an authenticated caller: 408.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "POST /v1/workflows/execute HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{{\"workflow",
        valid_token("dr-house")
    );
    slow.write_all(request.as_bytes()).await.unwrap();
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut answer))
        .await
        .expect("the server answers a slow body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_run_that_fails_ends_with_an_error_event() {
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The runs directory cannot be made: a file stands in its place.
    let runs = dir.path().join("runs");
    std::fs::write(&runs, "not a folder").unwrap();
    let server = Server::start(ServeConfig {
        sources: vec![library()],
        engine: wfc::serve::Engine::Local(Deployment::Everything(mock.base_url())),
        listen: "127.0.0.1:0".parse().unwrap(),
        auth: Auth::shared_secret(SECRET, AUDIENCE, None),
        rate_limit: None,
        max_runs: 2,
        deadline: Duration::from_secs(30),
        max_body: 64 * 1024,
        audit: AuditLog::to_file(&dir.path().join("audit.jsonl")).unwrap(),
        runs_dir: Some(runs),
        shutdown_grace: Duration::from_secs(5),
        client_timeout: Duration::from_secs(10),
    })
    .await
    .unwrap();
    let events = reqwest::Client::new()
        .post(format!(
            "http://{}/v1/workflows/execute?stream=true",
            server.addr()
        ))
        .bearer_auth(valid_token("dr-house"))
        .json(&json!({ "workflow_type": "discharge_summary", "context": discharge_context() }))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let error = events
        .split("event: error\ndata: ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap_or_else(|| panic!("no error event in {events:?}"));
    let error: Value = serde_json::from_str(error).unwrap();
    assert_eq!(error_code(&error), "journal", "{error}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_leaves_no_run_counted_in_flight() {
    let harness = Harness::start(Options {
        mock: MockConfig {
            default_latency: Duration::from_secs(30),
            ..MockConfig::default()
        },
        ..Options::default()
    })
    .await;
    // The run would hold its place for 30 s; the client leaves first.
    let request = harness
        .post("/v1/workflows/execute", Some(&valid_token("dr-house")))
        .json(&json!({ "workflow_type": "discharge_summary", "context": discharge_context() }))
        .send();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), request)
            .await
            .is_err(),
        "the run takes longer than the client waits"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        let metrics = harness.get("/metrics", None).await.text().await.unwrap();
        if metrics.contains("wfc_runs_in_flight 0") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_each_workflow_the_caller_may_run() {
    let harness = Harness::start(Options::default()).await;
    let document = |token: Option<String>| {
        let harness = &harness;
        async move {
            harness
                .get("/openapi.json", token.as_deref())
                .await
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let public = document(None).await;
    assert!(
        public["paths"]
            .get("/v1/workflows/discharge_summary")
            .is_none(),
        "without a token no workflow is named"
    );

    let full = document(Some(valid_token("dr-house"))).await;
    let inputs = &full["components"]["schemas"]["Inputs.discharge_summary"];
    assert_eq!(
        inputs["required"],
        json!(["patient_data", "admission_date", "discharge_date"])
    );
    assert_eq!(inputs["additionalProperties"], false);
    assert_eq!(inputs["properties"]["patient_data"]["maxLength"], 3600);
    assert_eq!(inputs["properties"]["patient_data"]["type"], "string");
    let operation = &full["paths"]["/v1/workflows/discharge_summary"]["post"];
    assert_eq!(
        operation["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Inputs.discharge_summary"
    );
    let execute = &full["paths"]["/v1/workflows/execute"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"]["oneOf"];
    assert_eq!(execute.as_array().unwrap().len(), 10);

    let limited = token(json!({
        "sub": "billing-clerk", "aud": AUDIENCE, "exp": now() + 600,
        "workflows": ["billing_with_justification"],
    }));
    let narrow = document(Some(limited)).await;
    let named: Vec<&String> = narrow["paths"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|path| path.starts_with("/v1/workflows/") && !path.contains('{'))
        .filter(|path| !path.ends_with("/types") && !path.ends_with("/execute"))
        .collect();
    assert_eq!(named, ["/v1/workflows/billing_with_justification"]);
}
