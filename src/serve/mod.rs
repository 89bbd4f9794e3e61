//! `wfc serve`: the seed's HTTP API over the same interpreter as `wfc run`,
//! with JWT authentication, per-caller rate limits, an audit log, metrics,
//! bounded concurrency, deadlines and graceful shutdown.

pub mod audit;
pub mod auth;
mod error;
mod handlers;
pub mod library;
mod listen;
mod metrics;
mod openapi;
mod stream;

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use governor::{DefaultKeyedRateLimiter, Quota};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::durable::ingress::Ingress;
use crate::run::{Deployment, HttpExecutor};
pub use audit::AuditLog;
pub use auth::Auth;
pub use library::Library;
use metrics::Metrics;

/// The routes, as the `OpenAPI` document (`docs/openapi.json`) lists them.
pub const ROUTES: [(&str, &str); 10] = [
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/v1/workflows/types"),
    ("post", "/v1/workflows/execute"),
    ("post", "/v1/workflows/{name}"),
    ("get", "/v1/runs/{run}"),
    ("delete", "/v1/runs/{run}"),
    ("get", "/v1/runs/{run}/timeline.svg"),
];

pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

/// Where a server's runs happen.
pub enum Engine {
    /// In this process, on the deployment's model servers.
    Local(Deployment),
    /// On the durable engine: runs are submitted to this Restate server,
    /// its workers run them, and any server of the same engine can answer
    /// for any run.
    Durable(Ingress),
}

/// What runs the library's workflows.
pub(crate) enum Runner {
    Local(Box<HttpExecutor>),
    Durable(Ingress),
}

impl Engine {
    fn load(&self, sources: &[PathBuf]) -> Result<Served, library::LoadError> {
        let library = Library::load(sources)?;
        let runner = match self {
            Engine::Local(deployment) => {
                Runner::Local(Box::new(library.connect(deployment, true)?))
            }
            Engine::Durable(ingress) => Runner::Durable(ingress.clone()),
        };
        Ok(Served { library, runner })
    }
}

/// The workflows served and what runs them, swapped together on reload
/// so a request never sees a workflow without the routes of its agents.
pub(crate) struct Served {
    library: Library,
    runner: Runner,
}

pub struct ServeConfig {
    /// The `.wf` files and folders to serve; read again on reload.
    pub sources: Vec<PathBuf>,
    pub engine: Engine,
    pub listen: SocketAddr,
    pub auth: Auth,
    /// Requests a caller may make per minute; unlimited when absent.
    pub rate_limit: Option<NonZeroU32>,
    /// Workflow runs at once; more get 503.
    pub max_runs: usize,
    /// The longest one run may take.
    pub deadline: Duration,
    /// The largest request body, in bytes.
    pub max_body: usize,
    pub audit: AuditLog,
    /// Where each run's journal goes (`<dir>/<request id>/`).
    pub runs_dir: Option<PathBuf>,
    /// How long shutdown waits for runs in flight before cancelling them.
    pub shutdown_grace: Duration,
    /// How long a client may take to send its request headers, and again
    /// its body: a slow client is cut off instead of holding a connection.
    pub client_timeout: Duration,
}

pub(crate) struct State {
    served: RwLock<Arc<Served>>,
    sources: Vec<PathBuf>,
    engine: Engine,
    auth: Auth,
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    runs: Arc<Semaphore>,
    max_runs: usize,
    deadline: Duration,
    runs_dir: Option<PathBuf>,
    /// The largest request body, in bytes.
    max_body: usize,
    client_timeout: Duration,
    metrics: Arc<Metrics>,
    /// Cancelled when shutdown's grace period ends: runs still going stop
    /// and answer with what they finished.
    stopping: CancellationToken,
}

impl State {
    fn served(&self) -> Arc<Served> {
        self.served.read().expect("library lock").clone()
    }

    fn reload(&self) -> Result<usize, String> {
        let served = self
            .engine
            .load(&self.sources)
            .map_err(|err| err.to_string())?;
        let count = served.library.names().count();
        *self.served.write().expect("library lock") = Arc::new(served);
        Ok(count)
    }

    /// Reloads on a blocking thread (reading and checking files must not
    /// hold up a runtime worker that serves requests) and says how it went.
    async fn report_reload(self: &Arc<Self>) {
        let state = self.clone();
        match tokio::task::spawn_blocking(move || state.reload()).await {
            Ok(Ok(count)) => eprintln!("reloaded: serving {count} workflows"),
            Ok(Err(report)) => {
                eprintln!("reload refused; still serving the previous workflows:\n{report}");
            }
            Err(err) => eprintln!("reload failed: {err}"),
        }
    }

    /// The files as they are now: a change in the set or in any
    /// modification time means a reload.
    fn fingerprint(&self) -> Vec<(PathBuf, Option<std::time::SystemTime>)> {
        crate::files::discover(&self.sources)
            .unwrap_or_default()
            .into_iter()
            .map(|path| {
                let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
                (path, modified)
            })
            .collect()
    }
}

impl From<library::LoadError> for StartError {
    fn from(err: library::LoadError) -> Self {
        match err {
            library::LoadError::Sources(unreadable) => StartError::Sources(unreadable),
            library::LoadError::Workflows(report) => StartError::Workflows(report),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the workflows have errors; the server did not start\n{0}")]
    Workflows(String),
    #[error("cannot find the workflow files: {0}")]
    Sources(#[from] crate::files::Unreadable),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

pub struct Server {
    addr: SocketAddr,
    state: Arc<State>,
    stop_accepting: CancellationToken,
    grace: Duration,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Loads and checks the workflows, binds, and serves in the background.
    pub async fn start(config: ServeConfig) -> Result<Server, StartError> {
        let served = config.engine.load(&config.sources)?;
        let state = Arc::new(State {
            served: RwLock::new(Arc::new(served)),
            sources: config.sources,
            engine: config.engine,
            auth: config.auth,
            limiter: config
                .rate_limit
                .map(|per_minute| DefaultKeyedRateLimiter::keyed(Quota::per_minute(per_minute))),
            runs: Arc::new(Semaphore::new(config.max_runs)),
            max_runs: config.max_runs,
            deadline: config.deadline,
            runs_dir: config.runs_dir,
            max_body: config.max_body,
            client_timeout: config.client_timeout,
            metrics: Arc::new(Metrics::default()),
            stopping: CancellationToken::new(),
        });
        let app = routes(state.clone(), config.audit);
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
        let client_timeout = config.client_timeout;
        let stop_accepting = CancellationToken::new();
        let stopped = stop_accepting.clone();
        let task = tokio::spawn(async move {
            listen::serve(listener, app, client_timeout, stopped).await;
        });
        Ok(Server {
            addr,
            state,
            stop_accepting,
            grace: config.shutdown_grace,
            task,
        })
    }

    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Loads the workflow files again; on any error the served set stays
    /// as it was and the error says why.
    pub fn reload(&self) -> Result<usize, String> {
        self.state.reload()
    }

    /// Reloads whenever a workflow file changes, checking every `every`.
    pub fn watch(&self, every: Duration) {
        let state = self.state.clone();
        tokio::spawn(async move {
            let fingerprint = |state: Arc<State>| async move {
                tokio::task::spawn_blocking(move || state.fingerprint())
                    .await
                    .unwrap_or_default()
            };
            let mut seen = fingerprint(state.clone()).await;
            loop {
                tokio::time::sleep(every).await;
                let now = fingerprint(state.clone()).await;
                if now != seen {
                    state.report_reload().await;
                    seen = now;
                }
            }
        });
    }

    /// Stops taking requests, lets runs in flight finish for the grace
    /// period, then cancels the rest (their journals keep what finished).
    pub async fn stop(self) {
        self.stop_accepting.cancel();
        let stopping = self.state.stopping.clone();
        let grace = self.grace;
        let deadline = tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            stopping.cancel();
        });
        let _ = self.task.await;
        deadline.abort();
    }

    /// Serves until SIGINT or SIGTERM, reloading on SIGHUP.
    pub async fn run_until_signalled(self) {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut hangup), Ok(mut terminate)) = (
            signal(SignalKind::hangup()),
            signal(SignalKind::terminate()),
        ) else {
            tracing::error!("cannot listen for signals; serving until killed");
            std::future::pending::<()>().await;
            return;
        };
        loop {
            tokio::select! {
                _ = hangup.recv() => self.state.report_reload().await,
                _ = terminate.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
            }
        }
        eprintln!(
            "shutting down: finishing runs in flight (up to {})",
            humantime::format_duration(self.grace)
        );
        self.stop().await;
    }
}

fn routes(state: Arc<State>, audit: AuditLog) -> Router {
    Router::new()
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/metrics", get(handlers::metrics))
        .route("/openapi.json", get(handlers::openapi))
        .route("/v1/workflows/types", get(handlers::types))
        .route("/v1/workflows/execute", post(handlers::execute))
        .route("/v1/workflows/{name}", post(handlers::execute_named))
        .route(
            "/v1/runs/{run}",
            get(handlers::run_report).delete(handlers::stop_run),
        )
        .route("/v1/runs/{run}/timeline.svg", get(handlers::run_timeline))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(audit, audit::layer))
}
