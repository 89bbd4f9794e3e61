//! Load test of `wfc serve` on loopback: 64 concurrent clients post the
//! single-task `lab_report` workflow for a fixed number of requests; the
//! mock model server answers each in 50 ms. Reports requests per second and
//! the p50/p99 latency the server adds over the mock's own 50 ms (JWT
//! check, input binding, scheduling, rendering, HTTP both ways, audit
//! line, journal). Run with `cargo bench --bench serve`.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use wfc::mock::{MockConfig, MockServer};
use wfc::run::Deployment;
use wfc::serve::{AuditLog, Auth, ServeConfig, Server};

const CLIENTS: usize = 64;
const REQUESTS: usize = 4_000;
const MODEL_LATENCY: Duration = Duration::from_millis(50);
const SECRET: &[u8] = b"bench-secret-bench-secret-bench-secret";

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(bench());
}

async fn bench() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mock = MockServer::start(MockConfig {
        default_latency: MODEL_LATENCY,
        ..MockConfig::default()
    })
    .await
    .expect("the mock starts");
    let server = Server::start(ServeConfig {
        sources: vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows")],
        engine: wfc::serve::Engine::Local(Deployment::Everything(mock.base_url())),
        listen: "127.0.0.1:0".parse().expect("an address"),
        auth: Auth::shared_secret(SECRET, "wfc", None),
        rate_limit: None,
        max_runs: CLIENTS * 2,
        deadline: Duration::from_mins(1),
        max_body: 1 << 20,
        audit: AuditLog::to_file(&dir.path().join("audit.jsonl")).expect("an audit log"),
        runs_dir: Some(dir.path().join("runs")),
        shutdown_grace: Duration::from_secs(5),
        client_timeout: Duration::from_secs(10),
    })
    .await
    .expect("the server starts");
    let url = format!("http://{}/v1/workflows/lab_report", server.addr());
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock")
        .as_secs()
        + 3600;
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({ "sub": "bench", "aud": "wfc", "exp": exp }),
        &EncodingKey::from_secret(SECRET),
    )
    .expect("a token");
    let body = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/examples/lab_report.json"),
    )
    .expect("example inputs");

    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (client, url, token, body) = (client.clone(), url.clone(), token.clone(), body.clone());
        clients.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for _ in 0..REQUESTS / CLIENTS {
                let sent = Instant::now();
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .expect("the server answers");
                assert_eq!(response.status(), 200);
                response.bytes().await.expect("a body");
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for client in clients {
        latencies.extend(client.await.expect("a client"));
    }
    let wall = started.elapsed();
    latencies.sort();
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    let overhead = |latency: Duration| latency.saturating_sub(MODEL_LATENCY).as_secs_f64() * 1000.0;
    println!(
        "{} requests from {CLIENTS} clients in {:.2} s: {:.0} requests/s (at most {:.0}/s with {} ms answers)",
        latencies.len(),
        wall.as_secs_f64(),
        latencies.len() as f64 / wall.as_secs_f64(),
        CLIENTS as f64 / MODEL_LATENCY.as_secs_f64(),
        MODEL_LATENCY.as_millis()
    );
    println!(
        "latency over the mock's {} ms: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        MODEL_LATENCY.as_millis(),
        overhead(percentile(0.50)),
        overhead(percentile(0.99)),
        overhead(*latencies.last().expect("requests"))
    );
    server.stop().await;
}
