//! The HTTP side: routes, the `OpenAI` request and response shapes, faults and streaming.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::stream;
use serde::Deserialize;
use serde_json::{Value, json};

use super::conn::Connection;
use super::reply::{Reply, pieces, reply_json, reply_text, word_count};
use super::{FaultKind, RecordedRequest, Shared};

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/chat/completions", post(chat))
        .route(
            "/health",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .route("/v1/models", get(models))
        .route("/mock/stats", get(stats).delete(forget))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "no such route",
                "invalid_request_error",
            )
        })
        .with_state(shared)
}

#[derive(Deserialize)]
struct ChatRequest {
    #[serde(default = "default_model")]
    model: String,
    messages: Vec<Message>,
    max_tokens: Option<u32>,
    temperature: Option<f64>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    /// `{"type": "json_schema", "json_schema": {"schema": ...}}`: answer with
    /// JSON of that shape, as constrained decoding would.
    response_format: Option<Value>,
}

/// llama-server ignores the model name, so clients written against it may omit it.
fn default_model() -> String {
    "mock".to_owned()
}

#[derive(Deserialize)]
struct Message {
    role: String,
    /// Null for assistant messages that only carried tool calls.
    content: Option<String>,
}

#[derive(Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

impl ChatRequest {
    fn content_of_last(&self, role: &str) -> Option<&str> {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == role)
            .and_then(|m| m.content.as_deref())
    }

    fn prompt_tokens(&self) -> u32 {
        self.messages
            .iter()
            .filter_map(|m| m.content.as_deref())
            .map(word_count)
            .fold(0, u32::saturating_add)
    }

    /// The whole prompt as the server's cache sees it: every message in
    /// order.
    fn prompt_text(&self) -> String {
        let contents: Vec<&str> = self
            .messages
            .iter()
            .filter_map(|m| m.content.as_deref())
            .collect();
        contents.join("\n")
    }
}

/// What the server saw since it started or was last told to forget: for
/// benchmarks that run the mock in its own process.
async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    let log = shared.log();
    let first = log.iter().map(|r| r.received).min();
    let last = log.iter().map(|r| r.received).max();
    let first_answer = log.iter().filter_map(|r| r.finished).min();
    let ms = |from: Option<Instant>, to: Option<Instant>| {
        from.zip(to).map_or(0.0, |(from, to)| {
            to.saturating_duration_since(from).as_secs_f64() * 1000.0
        })
    };
    axum::Json(json!({
        "requests": log.len(),
        "peak_in_flight": super::peak_in_flight(&log),
        // From the first request's arrival to the last one's, and to the
        // first answer.
        "arrivals_ms": ms(first, last),
        "first_answer_ms": ms(first, first_answer),
    }))
    .into_response()
}

async fn forget(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.log().clear();
    StatusCode::NO_CONTENT
}

async fn models(State(shared): State<Arc<Shared>>) -> Response {
    let mut names: Vec<&str> = shared.latency.keys().map(String::as_str).collect();
    if names.is_empty() {
        names.push("mock");
    }
    names.sort_unstable();
    let data: Vec<Value> = names
        .into_iter()
        .map(|id| json!({"id": id, "object": "model", "owned_by": "wfc-mock"}))
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

async fn chat(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<Connection>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received = Instant::now();
    let authorization = headers.get(header::AUTHORIZATION);
    let authorized = shared.api_key.as_deref().is_none_or(|key| {
        authorization
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            == Some(key)
    });
    let parsed = serde_json::from_slice::<ChatRequest>(&body);
    let record = |request: &ChatRequest, fault: Option<&FaultKind>| RecordedRequest {
        model: request.model.clone(),
        system: request.content_of_last("system").map(str::to_owned),
        prompt: request.content_of_last("user").unwrap_or("").to_owned(),
        max_tokens: request.max_tokens,
        temperature: request.temperature,
        stream: request.stream.unwrap_or(false),
        authorization_present: authorization.is_some(),
        traceparent: headers
            .get("traceparent")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
        received,
        finished: None,
        fault: fault.map(|kind| format!("{kind:?}")),
    };
    if !authorized {
        if let Ok(request) = &parsed {
            shared.record(record(request, None));
        }
        tracing::debug!("mock server: rejected a request without the API key");
        return error(
            StatusCode::UNAUTHORIZED,
            "Incorrect API key provided",
            "invalid_request_error",
        );
    }
    let request = match parsed {
        Ok(request) => request,
        Err(err) => {
            tracing::debug!("mock server: bad request body: {err}");
            return error(
                StatusCode::BAD_REQUEST,
                &format!("invalid chat completion request: {err}"),
                "invalid_request_error",
            );
        }
    };

    let prompt = request.content_of_last("user").unwrap_or("");
    let fault = shared.take_fault(&request.model, prompt);
    let index = shared.record(record(&request, fault.as_ref()));
    let fault_name = fault.as_ref().map(FaultKind::name);
    tracing::debug!(model = %request.model, fault = ?fault_name, "mock server: chat request");

    if let Some(response) = fault.as_ref().and_then(|kind| refusal(kind, &conn)) {
        return response;
    }
    let start = match fault {
        Some(FaultKind::Delay(delay)) => later(received, delay),
        _ => received,
    };
    // Faults that imitate a reply still take the model's time, but never finish it.
    let complete = !matches!(
        fault,
        Some(FaultKind::MalformedJson | FaultKind::TruncatedStream)
    );

    let schema = request
        .response_format
        .as_ref()
        .and_then(|format| format.pointer("/json_schema/schema"));
    let reply = match (schema, &fault) {
        (_, Some(FaultKind::WrongShape)) => Reply {
            text: r#"{"unexpected": "shape"}"#.to_string(),
            completion_tokens: 3,
            finish_reason: "stop",
        },
        (_, Some(FaultKind::Answer(text))) => Reply {
            completion_tokens: text.split_whitespace().count() as u32,
            text: text.clone(),
            finish_reason: "stop",
        },
        (Some(schema), _) => reply_json(&request.model, schema),
        (None, _) => reply_text(&request.model, prompt, request.max_tokens),
    };
    let latency = shared.latency(&request.model);
    let meta = Meta {
        id: format!("chatcmpl-mock-{}", shared.next_id()),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        model: request.model.clone(),
    };
    let prompt_tokens = request.prompt_tokens();
    let usage = Usage {
        prompt: prompt_tokens,
        cached: shared.cached_tokens(&request.model, &request.prompt_text(), prompt_tokens),
        completion: reply.completion_tokens,
    };
    let stream = request.stream.unwrap_or(false);

    if !sleep_until(&shared, start).await {
        conn.kill();
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if stream {
        let include_usage = request
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
        let events = match fault {
            Some(FaultKind::MalformedJson) => vec![
                (
                    later(start, latency),
                    Bytes::from_static(b"data: {\"choices\": [{\"delta\"\n\n"),
                ),
                (
                    later(start, latency),
                    Bytes::from_static(b"data: [DONE]\n\n"),
                ),
            ],
            Some(FaultKind::TruncatedStream) => {
                let mut events = stream_events(&meta, &reply, &usage, start, latency, false);
                let words = pieces(&reply.text).len();
                // The role chunk and the first half of the words.
                events.truncate(1 + words.div_ceil(2));
                events
            }
            _ => stream_events(&meta, &reply, &usage, start, latency, include_usage),
        };
        return sse(shared, conn, index, complete, events);
    }

    if !sleep_until(&shared, later(start, latency)).await {
        conn.kill();
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let body = if let Some(FaultKind::MalformedJson) = fault {
        Bytes::from_static(b"<html>mock fault: not JSON</html>")
    } else {
        let full = Bytes::from(completion(&meta, &reply, &usage).to_string());
        if complete {
            full
        } else {
            full.slice(..full.len() / 2)
        }
    };
    if complete {
        shared.finish(index);
    }
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The answer to a fault that refuses the request outright, as real servers do
/// before spending any time on it; `None` for faults that shape a reply instead.
fn refusal(kind: &FaultKind, conn: &Connection) -> Option<Response> {
    let response = match *kind {
        FaultKind::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or_else(|_| {
                tracing::warn!("mock server: fault status {code} is not an HTTP status; using 500");
                StatusCode::INTERNAL_SERVER_ERROR
            });
            let kind = if status.is_client_error() {
                "invalid_request_error"
            } else {
                "server_error"
            };
            error(status, &format!("mock fault: HTTP {code}"), kind)
        }
        FaultKind::RateLimited { retry_after } => {
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "mock fault: rate limit reached",
                "rate_limit_error",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            response
        }
        FaultKind::ContextExceeded => {
            let body = json!({"error": {
                "code": 400,
                "message": "the request exceeds the available context size, try increasing it",
                "type": "exceed_context_size_error",
            }});
            (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
        }
        FaultKind::CloseConnection => {
            conn.kill();
            // Never written: the killed connection fails first.
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        FaultKind::Delay(_)
        | FaultKind::MalformedJson
        | FaultKind::TruncatedStream
        | FaultKind::WrongShape
        | FaultKind::Answer(_) => return None,
    };
    Some(response)
}

/// Sleeps until `deadline`, to the tenth of a millisecond; false when the
/// server shut down first.
async fn sleep_until(shared: &Shared, deadline: Instant) -> bool {
    tokio::select! {
        () = shared.clock.sleep_until(deadline) => true,
        () = shared.shutdown.cancelled() => false,
    }
}

/// Sleeps with tokio's timer, which may be a millisecond late: for the
/// words inside a stream, where the clock's precision would cost a wake-up
/// per word and no measurement depends on it.
async fn sleep_roughly_until(shared: &Shared, deadline: Instant) -> bool {
    tokio::select! {
        () = tokio::time::sleep_until(deadline.into()) => true,
        () = shared.shutdown.cancelled() => false,
    }
}

/// `start + by`, saturating: a configured `Duration::MAX` means "never", not a panic.
fn later(start: Instant, by: Duration) -> Instant {
    start
        .checked_add(by)
        .unwrap_or_else(|| start + Duration::from_hours(876_000))
}

struct Meta {
    id: String,
    created: u64,
    model: String,
}

struct Usage {
    prompt: u32,
    /// Prompt tokens (words) at the start of an earlier prompt.
    cached: u32,
    completion: u32,
}

impl Usage {
    fn json(&self) -> Value {
        json!({
            "prompt_tokens": self.prompt,
            "completion_tokens": self.completion,
            "total_tokens": self.prompt.saturating_add(self.completion),
            "prompt_tokens_details": {"cached_tokens": self.cached},
        })
    }
}

fn completion(meta: &Meta, reply: &Reply, usage: &Usage) -> Value {
    json!({
        "id": meta.id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": reply.text},
            "finish_reason": reply.finish_reason,
        }],
        "usage": usage.json(),
    })
}

fn chunk(meta: &Meta, choices: Value) -> Value {
    json!({
        "id": meta.id,
        "object": "chat.completion.chunk",
        "created": meta.created,
        "model": meta.model,
        "choices": choices,
    })
}

fn event(data: &Value) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}

/// The whole stream, each event with the instant it is due: the words spread
/// evenly so the last lands when the latency is up, the role chunk with the
/// first, as a server sends its first chunk with its first token.
fn stream_events(
    meta: &Meta,
    reply: &Reply,
    usage: &Usage,
    start: Instant,
    latency: Duration,
    include_usage: bool,
) -> Vec<(Instant, Bytes)> {
    let words = pieces(&reply.text);
    let count = u32::try_from(words.len()).unwrap_or(u32::MAX).max(1);
    let mut events = Vec::with_capacity(words.len() + 4);
    let due = |i: u32| later(start, latency.checked_mul(i).map_or(latency, |d| d / count));
    let role = json!([{"index": 0, "delta": {"role": "assistant", "content": null}, "finish_reason": null}]);
    events.push((due(1), event(&chunk(meta, role))));
    for (i, word) in (1..).zip(&words) {
        let choices = json!([{"index": 0, "delta": {"content": word}, "finish_reason": null}]);
        events.push((due(i), event(&chunk(meta, choices))));
    }
    let end = later(start, latency);
    let finish = json!([{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}]);
    events.push((end, event(&chunk(meta, finish))));
    if include_usage {
        let mut last = chunk(meta, json!([]));
        last["usage"] = usage.json();
        events.push((end, event(&last)));
    }
    events.push((end, Bytes::from_static(b"data: [DONE]\n\n")));
    events
}

/// Streams `events` on schedule. Reaching the end of a complete stream marks the
/// request finished; a shutdown cuts the connection instead of ending the body
/// cleanly, so the client cannot mistake a cut stream for a short reply.
fn sse(
    shared: Arc<Shared>,
    conn: Connection,
    index: usize,
    complete: bool,
    events: Vec<(Instant, Bytes)>,
) -> Response {
    // The last events (the end of the answer) leave on time; the words
    // before them only in order.
    let end = events.last().map(|(due, _)| *due);
    let body = stream::unfold(
        (events.into_iter(), shared, conn),
        move |(mut events, shared, conn)| async move {
            let (due, bytes) = events.next()?;
            let slept = if Some(due) == end {
                sleep_until(&shared, due).await
            } else {
                sleep_roughly_until(&shared, due).await
            };
            if !slept {
                conn.kill();
                return None;
            }
            if complete && events.len() == 0 {
                shared.finish(index);
            }
            Some((Ok::<_, Infallible>(bytes), (events, shared, conn)))
        },
    );
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

fn error(status: StatusCode, message: &str, kind: &str) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": null}});
    (status, axum::Json(body)).into_response()
}
