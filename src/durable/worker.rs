//! A worker process: serves the durable engine's services to a Restate
//! server over HTTP/2, and registers itself with it.
//!
//! Restate pins each invocation to the deployment (the address) it started
//! on, so workers that share the load share one address: on one host, each
//! binds the same port with `SO_REUSEPORT` and the kernel spreads Restate's
//! connections over them; across hosts, an L4 load balancer does. When a
//! worker dies, Restate reconnects to the address and its invocations go on
//! on the workers that are left.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use restate_sdk::endpoint::ServiceOptions;
use restate_sdk::prelude::*;
use tokio::net::TcpListener;

use super::Worker;
use super::run_workflow::WfcRun;
use super::slots::ServerSlots;
use super::task_service::WfcTask;

/// How long a task's step may go without a word to Restate before Restate
/// suspends it, and then aborts it: longer than any generation, so a long
/// answer is never cut off and asked again.
const STEP_TIMEOUT: Duration = Duration::from_mins(30);

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot reach the Restate admin API at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the Restate server at {url} refused to register {uri} ({status}): {body}")]
    Refused {
        url: String,
        uri: String,
        status: u16,
        body: String,
    },
}

/// A listener on `addr` that other workers on this host may share.
pub fn listen(addr: SocketAddr) -> Result<TcpListener, WorkerError> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    };
    let listening = socket.and_then(|socket| {
        socket.set_reuseport(true)?;
        socket.set_reuseaddr(true)?;
        // Accepted connections inherit it: without it, each small frame
        // a handler writes to Restate waits for Restate's delayed ACK
        // (40 ms on Linux), once per journal step.
        socket.set_nodelay(true)?;
        socket.bind(addr)?;
        socket.listen(1024)
    });
    listening.map_err(|source| WorkerError::Listen { addr, source })
}

/// Serves the services on `listener` until `shutdown` resolves.
pub async fn serve(worker: Arc<Worker>, listener: TcpListener, shutdown: impl Future) {
    // Prompts and answers (PHI) live in the journals, and reports in the
    // runs' results: both are kept only as long as the worker says.
    let retention = worker.retention;
    let task_options = ServiceOptions::new()
        .inactivity_timeout(STEP_TIMEOUT)
        .abort_timeout(STEP_TIMEOUT)
        .journal_retention(retention);
    let run_options = ServiceOptions::new().journal_retention(retention).handler(
        "run",
        HandlerOptions::new()
            .workflow_retention(retention)
            .journal_retention(retention),
    );
    let endpoint = Endpoint::builder()
        .bind(
            WfcRun {
                worker: worker.clone(),
            }
            .into_service_definition()
            .options(run_options),
        )
        .bind(
            WfcTask { worker }
                .into_service_definition()
                .options(task_options),
        )
        .bind(ServerSlots)
        .build();
    HttpServer::new(endpoint)
        .serve_with_cancel(listener, shutdown)
        .await;
}

/// Registers the workers at `uri` with the Restate server whose admin API
/// is at `admin`, trying again for up to `patience` while the server cannot
/// be reached or answers with a server error (a worker and its Restate
/// server are often started together, and Restate takes seconds to come
/// up); `waiting` hears each failure and how long until the next try.
/// Registering the same address again changes nothing.
pub async fn register(
    admin: &str,
    uri: &str,
    patience: Duration,
    waiting: &mut dyn FnMut(&WorkerError, Duration),
) -> Result<(), WorkerError> {
    let backoff = crate::policy::Backoff {
        base: Duration::from_millis(250),
        max: Duration::from_secs(2),
    };
    let deadline = tokio::time::Instant::now() + patience;
    let mut attempt = 0;
    loop {
        let err = match register_once(admin, uri).await {
            Ok(()) => return Ok(()),
            Err(err) => err,
        };
        let transient = match &err {
            WorkerError::Unreachable { .. } => true,
            WorkerError::Refused { status, .. } => *status >= 500,
            WorkerError::Listen { .. } => false,
        };
        let pause = backoff.delay(attempt, None);
        if !transient || tokio::time::Instant::now() + pause > deadline {
            return Err(err);
        }
        waiting(&err, pause);
        tokio::time::sleep(pause).await;
        attempt += 1;
    }
}

async fn register_once(admin: &str, uri: &str) -> Result<(), WorkerError> {
    let url = format!("{}/deployments", admin.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .post(&url)
        .json(&serde_json::json!({ "uri": uri, "force": false }))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|err| WorkerError::Unreachable {
            url: admin.to_string(),
            reason: crate::client::describe(&err),
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    Err(WorkerError::Refused {
        url: admin.to_string(),
        uri: uri.to_string(),
        status: status.as_u16(),
        body: response.text().await.unwrap_or_default(),
    })
}
