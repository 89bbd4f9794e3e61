//! A mock OpenAI-compatible model server on 127.0.0.1.
//!
//! Tests, benchmarks and `wfc run --mock` need a model that answers instantly or
//! slowly on demand, says predictable things, and fails in the ways real servers
//! fail (rate limits, dropped connections, cut-off streams, full context windows),
//! all over real HTTP so that the client code under test is the code that ships.

mod clock;
mod conn;
mod handler;
mod reply;

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use reply::{Reply, reply_json, reply_text};

/// How the mock behaves: per-model speed, scripted failures, and authentication.
#[derive(Clone, Debug, Default)]
pub struct MockConfig {
    /// Total response time per model name (the request's `model` field).
    pub latency: HashMap<String, Duration>,
    /// Response time for models not in `latency`.
    pub default_latency: Duration,
    /// Scripted failures, tried in order; the first rule that matches a request
    /// and has uses left applies.
    pub faults: Vec<Fault>,
    /// When set, requests must carry `Authorization: Bearer <key>` (else 401).
    pub api_key: Option<String>,
}

/// One scripted failure: which requests it hits, how often, and how.
#[derive(Clone, Debug)]
pub struct Fault {
    /// Matches when `None` or equal to the request's model.
    pub model: Option<String>,
    /// Matches when `None` or the last user message contains it.
    pub prompt_contains: Option<String>,
    /// How many requests it applies to; `None` means every matching request.
    pub times: Option<u32>,
    pub kind: FaultKind,
}

/// The ways the mock can misbehave, each one a failure seen from real model servers.
#[derive(Clone, Debug)]
pub enum FaultKind {
    /// Replies at once with this status and an OpenAI-style error body.
    Status(u16),
    /// 429 with `Retry-After` in whole seconds, rounded up.
    RateLimited { retry_after: Duration },
    /// 200 with a body that is not JSON (a stream whose event is not JSON).
    MalformedJson,
    /// Streaming: some chunks, then the body ends without a `finish_reason` or
    /// `data: [DONE]`. Non-streaming: a body cut off mid-JSON.
    TruncatedStream,
    /// Drops the connection without any response.
    CloseConnection,
    /// Waits this long before answering normally, to provoke client timeouts.
    Delay(Duration),
    /// 400 shaped like llama-server's answer to a prompt longer than its context.
    ContextExceeded,
    /// 200 with JSON that does not match the requested schema.
    WrongShape,
    /// 200 with this answer, whatever was asked: a model that repeats its
    /// prompt, or answers in the wrong form.
    Answer(String),
}

impl FaultKind {
    /// The fault's name for logs, without a scripted answer's text.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Status(_) => "status",
            FaultKind::RateLimited { .. } => "rate_limited",
            FaultKind::MalformedJson => "malformed_json",
            FaultKind::TruncatedStream => "truncated_stream",
            FaultKind::CloseConnection => "close_connection",
            FaultKind::Delay(_) => "delay",
            FaultKind::ContextExceeded => "context_exceeded",
            FaultKind::WrongShape => "wrong_shape",
            FaultKind::Answer(_) => "answer",
        }
    }
}

/// What the mock saw of one chat request, for tests to assert on.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub model: String,
    pub system: Option<String>,
    /// Content of the last `user` message.
    pub prompt: String,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub stream: bool,
    /// Whether an `Authorization` header came; the key itself is never kept,
    /// so recorded requests are safe to print in test failures.
    pub authorization_present: bool,
    /// The W3C `traceparent` header, when the client sent one.
    pub traceparent: Option<String>,
    pub received: Instant,
    /// When the full response was written; `None` when a fault (other than
    /// `Delay`), a rejection or a shutdown kept the reply from completing.
    pub finished: Option<Instant>,
    /// The [`FaultKind`] applied, in its `Debug` form.
    pub fault: Option<String>,
}

/// A running mock server; dropping it stops the server.
pub struct MockServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Binds 127.0.0.1 on a free port, so parallel tests never collide.
    pub async fn start(config: MockConfig) -> std::io::Result<MockServer> {
        Self::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
    }

    /// Serves on `addr` (for `wfc mock-server --port N`).
    pub async fn bind(addr: SocketAddr, config: MockConfig) -> std::io::Result<MockServer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config));
        let app = handler::router(Arc::clone(&shared))
            .into_make_service_with_connect_info::<conn::Connection>();
        let stop = shared.shutdown.clone();
        let task = tokio::spawn(async move {
            let serve = axum::serve(conn::KillableListener(listener), app)
                .with_graceful_shutdown(stop.cancelled_owned());
            if let Err(err) = serve.await {
                tracing::error!("mock server on {addr} failed: {err}");
            }
        });
        tracing::info!("mock model server listening on http://{addr}/v1");
        Ok(MockServer {
            addr,
            shared,
            task: Some(task),
        })
    }

    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL a client appends `/chat/completions` to.
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every chat request received so far, in arrival order, faulted and
    /// rejected ones included; bodies too broken to parse have nothing to record.
    #[must_use]
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.log().clone()
    }

    /// The most chat requests that were in flight at one moment (a request
    /// from its arrival to the end of its reply; a reply cut short counts
    /// as over on arrival).
    #[must_use]
    pub fn peak_in_flight(&self) -> usize {
        peak_in_flight(&self.shared.log())
    }

    /// Stops accepting, cuts in-flight replies and waits for connections to close.
    pub async fn shutdown(mut self) {
        self.shared.shutdown.cancel();
        if let Some(mut task) = self.task.take() {
            // A client that stops reading can hold a connection open; do not
            // let it hold up shutdown too.
            if tokio::time::timeout(Duration::from_secs(1), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }

    /// Serves until the process gets Ctrl-C (for the CLI).
    pub async fn wait(self) {
        if let Err(err) = tokio::signal::ctrl_c().await {
            // Without a handler the server is still useful; it just ends with the process.
            tracing::error!("mock server: cannot listen for Ctrl-C ({err}); serving until killed");
            std::future::pending::<()>().await;
        }
        self.shutdown().await;
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

fn peak_in_flight(log: &[RecordedRequest]) -> usize {
    crate::overlap::most_at_once(log.iter().map(|request| {
        (
            request.received,
            request.finished.unwrap_or(request.received),
        )
    }))
}

/// How many prompts the mock keeps for its prefix cache: a llama.cpp
/// server keeps one per slot.
const CACHED_PROMPTS: usize = 8;

/// The whole words `a` and `b` begin with alike.
fn shared_words(a: &str, b: &str) -> u32 {
    let mut common = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    while !a.is_char_boundary(common) {
        common -= 1;
    }
    let prefix = &a[..common];
    let words = prefix.split_whitespace().count();
    // The prefix's last word is shared only where it ends in both texts.
    let ends_here = |text: &str| {
        text[common..]
            .chars()
            .next()
            .is_none_or(char::is_whitespace)
    };
    let cut = prefix.chars().last().is_some_and(|c| !c.is_whitespace())
        && !(ends_here(a) && ends_here(b));
    u32::try_from(words - usize::from(cut)).unwrap_or(u32::MAX)
}

/// State shared by all handlers; everything on the request path is O(1) or
/// O(number of fault rules).
struct Shared {
    latency: HashMap<String, Duration>,
    default_latency: Duration,
    faults: Vec<FaultRule>,
    api_key: Option<String>,
    log: Mutex<Vec<RecordedRequest>>,
    /// The last prompts answered (model, text), as llama.cpp's slots
    /// keep them for their KV cache.
    recent: Mutex<VecDeque<(String, String)>>,
    next_id: AtomicU64,
    shutdown: CancellationToken,
    clock: clock::Clock,
}

struct FaultRule {
    fault: Fault,
    /// Uses left; counted down atomically so concurrent requests never
    /// overspend a rule.
    remaining: Option<AtomicU32>,
}

impl Shared {
    fn new(config: MockConfig) -> Shared {
        let faults = config
            .faults
            .into_iter()
            .map(|fault| FaultRule {
                remaining: fault.times.map(AtomicU32::new),
                fault,
            })
            .collect();
        Shared {
            latency: config.latency,
            default_latency: config.default_latency,
            faults,
            api_key: config.api_key,
            log: Mutex::new(Vec::new()),
            recent: Mutex::new(VecDeque::with_capacity(CACHED_PROMPTS)),
            next_id: AtomicU64::new(1),
            shutdown: CancellationToken::new(),
            clock: clock::Clock::start(),
        }
    }

    fn latency(&self, model: &str) -> Duration {
        self.latency
            .get(model)
            .copied()
            .unwrap_or(self.default_latency)
    }

    /// The first rule that matches and still has a use left, spending that use.
    fn take_fault(&self, model: &str, prompt: &str) -> Option<FaultKind> {
        self.faults.iter().find_map(|rule| {
            let fault = &rule.fault;
            let matches = fault.model.as_deref().is_none_or(|m| m == model)
                && fault
                    .prompt_contains
                    .as_deref()
                    .is_none_or(|needle| prompt.contains(needle));
            let spent = matches
                && rule.remaining.as_ref().is_none_or(|left| {
                    left.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                        .is_ok()
                });
            spent.then(|| fault.kind.clone())
        })
    }

    /// How many of a prompt's `words` (`text`, to `model`) start like one
    /// of the recent prompts to the same model, as a server reuses the KV
    /// cache of a shared prefix; like llama.cpp, the last word is always
    /// evaluated again. The prompt becomes a recent one.
    fn cached_tokens(&self, model: &str, text: &str, words: u32) -> u32 {
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        let common = recent
            .iter()
            .filter(|(earlier_model, _)| earlier_model == model)
            .map(|(_, earlier)| shared_words(earlier, text))
            .max()
            .unwrap_or(0);
        if recent.len() == CACHED_PROMPTS {
            recent.pop_front();
        }
        recent.push_back((model.to_string(), text.to_string()));
        common.min(words.saturating_sub(1))
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A poisoned log only means a panic elsewhere; the records are still valid.
    fn log(&self) -> MutexGuard<'_, Vec<RecordedRequest>> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends a record and returns its index, for [`Shared::finish`].
    fn record(&self, request: RecordedRequest) -> usize {
        let mut log = self.log();
        log.push(request);
        log.len() - 1
    }

    fn finish(&self, index: usize) {
        if let Some(request) = self.log().get_mut(index) {
            request.finished = Some(Instant::now());
        }
    }
}
