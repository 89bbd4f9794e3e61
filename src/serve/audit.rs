//! The audit log: one JSON line per request with who asked for which
//! workflow, the outcome and the latency. It never holds patient data,
//! prompts, answers or tokens: only names, codes and numbers.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;

/// What a handler tells the audit log about its request, through the
/// response's extensions.
#[derive(Debug, Clone, Default)]
pub struct Note {
    pub caller: Option<String>,
    pub workflow: Option<String>,
    pub outcome: Option<&'static str>,
}

#[derive(Serialize)]
struct Record<'a> {
    time: String,
    request_id: &'a str,
    method: &'a str,
    path: &'a str,
    status: u16,
    caller: Option<&'a str>,
    workflow: Option<&'a str>,
    outcome: &'a str,
    latency_ms: f64,
}

#[derive(Clone)]
pub struct AuditLog {
    sink: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl AuditLog {
    pub fn to_file(path: &Path) -> std::io::Result<Self> {
        let file: File = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(AuditLog {
            sink: Arc::new(Mutex::new(Box::new(file))),
        })
    }

    fn write(&self, record: &Record<'_>) {
        let mut line = serde_json::to_vec(record).expect("audit records serialise");
        line.push(b'\n');
        let mut sink = self.sink.lock().expect("audit lock");
        if let Err(err) = sink.write_all(&line).and_then(|()| sink.flush()) {
            tracing::error!(%err, "cannot write the audit log");
        }
    }
}

/// Gives every request an id (`x-request-id`, echoed in the response) and
/// writes its audit record when the response is ready.
pub async fn layer(State(audit): State<AuditLog>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = format!("req-{:016x}", fastrand::u64(..));
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    request
        .extensions_mut()
        .insert(RequestId(request_id.clone()));
    let mut response = next.run(request).await;
    let note = response
        .extensions()
        .get::<Note>()
        .cloned()
        .unwrap_or_default();
    let status = response.status();
    audit.write(&Record {
        time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        request_id: &request_id,
        method: &method,
        path: &path,
        status: status.as_u16(),
        caller: note.caller.as_deref(),
        workflow: note.workflow.as_deref(),
        outcome: note
            .outcome
            .unwrap_or(if status.is_success() { "ok" } else { "error" }),
        latency_ms: crate::record::millis(started.elapsed().as_micros() as u64),
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// The id the audit layer gave the request.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);
