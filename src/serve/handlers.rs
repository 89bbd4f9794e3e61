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
use tracing::Instrument;

use super::audit::{Note, RequestId};
use super::auth::Caller;
use super::error::ApiError;
use super::library::Entry;
use super::metrics::{TaskMetrics, WorkflowLabels};
use super::stream::Streamer;
use super::{Runner, Served, State};
use crate::check::conform::Given;
use crate::durable::ingress::{Ingress, IngressError, RunState};
use crate::run::inputs;
use crate::run::{HttpExecutor, Observer, Report, Session};

type AppState = Shared<Arc<State>>;

pub(super) async fn healthz() -> &'static str {
    "ok"
}

/// Ready when every agent has an endpoint that answers; on the durable
/// engine, when the Restate server answers and knows the workers' services.
pub(super) async fn readyz(Shared(state): AppState) -> Response {
    let served = state.served();
    let (ready, body) = match &served.runner {
        Runner::Local(executor) => {
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
            let mut corpora = BTreeMap::new();
            for (corpus, passage_len) in served.library.corpora() {
                let searchable = executor.searchable(&corpus, passage_len).await;
                corpora.insert(corpus, searchable);
            }
            let ready = agents.values().chain(corpora.values()).all(|up| *up);
            (
                ready,
                json!({ "ready": ready, "agents": agents, "corpora": corpora }),
            )
        }
        Runner::Durable(ingress) => {
            let ready = ingress.workers_registered().await.unwrap_or(false);
            (ready, json!({ "ready": ready, "engine": "restate" }))
        }
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
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
    let served = state.served();
    let library = &served.library;
    let document = if headers.contains_key(header::AUTHORIZATION) {
        let caller = admit(&state, &headers)?;
        super::openapi::document(library, Some(&|name: &str| caller.may_run(name)))
    } else {
        super::openapi::document(library, None)
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
    let served = state.served();
    let visible: Vec<_> = served
        .library
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
    let run = run_id(&headers, &caller, id)?;
    let trace = trace_parent(&headers);
    let body: ExecuteBody = parse(&state, body, &caller).await?;
    start(
        state,
        caller,
        &body.workflow_type,
        body.context,
        (stream, trace),
        run,
    )
    .await
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
    let run = run_id(&headers, &caller, id)?;
    let trace = trace_parent(&headers);
    let context: Value = parse(&state, body, &caller).await?;
    start(state, caller, &name, context, (stream, trace), run).await
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

/// The header that names a run, so that a request sent again (after a
/// timeout, by a retrying load balancer) follows the run the first one
/// started instead of starting another.
const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The header that tells the caller which run answered: its id for
/// `/v1/runs/{run}`.
const RUN_HEADER: &str = "wfc-run";

/// A run's id, as its caller names it (`Idempotency-Key`), or the request
/// id when the caller does not.
#[derive(Clone)]
struct RunId(String);

impl RunId {
    /// The run's key on the durable engine: the caller's own namespace,
    /// so a caller can only ever reach its own runs.
    fn key(&self, caller: &str) -> String {
        let caller: String = url::form_urlencoded::byte_serialize(caller.as_bytes()).collect();
        format!("serve/{caller}/{}", self.0)
    }
}

fn run_id(headers: &HeaderMap, caller: &Caller, request: RequestId) -> Result<RunId, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(RunId(request.0));
    };
    valid_run_id(value.to_str().unwrap_or_default(), caller)
}

/// 1 to 128 letters, digits, `-`, `_`, `.` or `~`: safe in a path and a
/// header, and long enough for a UUID or an EHR's own request id.
fn valid_run_id(id: &str, caller: &Caller) -> Result<RunId, ApiError> {
    let fits = (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b));
    if fits {
        return Ok(RunId(id.to_string()));
    }
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_run_id",
        format!(
            "a run id (the `Idempotency-Key` header, or the path) is 1 to 128 letters, digits, `-`, `_`, `.` or `~`, not `{}`",
            id.chars().take(40).collect::<String>()
        ),
    )
    .with_note(note(caller, None)))
}

/// The trace a caller's `traceparent` header continues (an empty context
/// without one).
fn trace_parent(headers: &HeaderMap) -> opentelemetry::Context {
    let carried = ["traceparent", "tracestate"]
        .into_iter()
        .filter_map(|name| {
            Some((
                name.to_string(),
                headers.get(name)?.to_str().ok()?.to_string(),
            ))
        })
        .collect();
    crate::trace_context::continued(&carried)
}

/// Everything that can be refused before a run, then the run: with whether
/// the caller takes task events as they come, and the trace it continues.
async fn start(
    state: Arc<State>,
    caller: Caller,
    name: &str,
    context: Value,
    (stream, trace): (bool, opentelemetry::Context),
    run: RunId,
) -> Result<Response, ApiError> {
    let served = state.served();
    let library = &served.library;
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
    let durable = matches!(served.runner, Runner::Durable(_));
    let run = AcceptedRun {
        state,
        served,
        workflow,
        caller: caller.subject,
        inputs,
        run,
        stream,
        trace,
    };
    let note = Note {
        caller: Some(run.caller.clone()),
        workflow: Some(run.workflow.clone()),
        outcome: stream.then_some("stream_started"),
    };
    let run_header = durable.then(|| run.run.0.clone());
    let mut response = if stream {
        streamed(move |streamer| async move {
            let _slot = slot;
            run.execute(&streamer).await.map(|(report, _)| report)
        })
    } else {
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
            ..note.clone()
        });
        response
    };
    if let Some(id) = run_header
        && let Ok(value) = header::HeaderValue::from_str(&id)
    {
        response.headers_mut().insert(RUN_HEADER, value);
    }
    if stream {
        response.extensions_mut().insert(note);
    }
    Ok(response)
}

/// Server-sent events: the task events `follow` tells its streamer of,
/// then the report, or the error that ended the stream.
fn streamed<F, Fut>(follow: F) -> Response
where
    F: FnOnce(Streamer) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<Report, ApiError>> + Send,
{
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let last = match follow(Streamer(sender.clone())).await {
            Ok(report) => SseEvent::default()
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
    Sse::new(events).into_response()
}

/// The durable engine's ingress (runs are kept only there) and the key
/// there of the caller's run `run`.
fn run_key(served: &Served, caller: &Caller, run: &str) -> Result<(Ingress, String), ApiError> {
    match &served.runner {
        Runner::Durable(ingress) => Ok((
            ingress.clone(),
            valid_run_id(run, caller)?.key(&caller.subject),
        )),
        Runner::Local(_) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "runs_not_kept",
            "this server runs workflows in its own process and keeps no runs to look up; runs are kept on the durable engine (`wfc serve --engine restate`)",
        )
        .with_note(note(caller, None))),
    }
}

/// `GET /v1/runs/{run}`: the report of one of the caller's runs, from any
/// server of the engine: 200 with the report once it has ended, 202 while
/// it runs; with `stream=true`, its events from the first, then the report.
pub(super) async fn run_report(
    Shared(state): AppState,
    Path(run): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = admit(&state, &headers)?;
    let stream = stream_wanted(query.as_deref(), &caller)?;
    let (ingress, key) = run_key(&state.served(), &caller, &run)?;
    let failed = |err| engine_error(err, &run).with_note(note(&caller, None));
    let found = ingress.state(&key).await.map_err(failed)?;
    let mut response = match found {
        RunState::Missing => return Err(failed(IngressError::NoSuchRun(key))),
        RunState::Ended(report) if !stream => Json(report).into_response(),
        RunState::Running if !stream => still_running(&run),
        _ => {
            let run = run.clone();
            streamed(move |streamer| async move {
                ingress
                    .follow(&key, &streamer)
                    .await
                    .map_err(|err| engine_error(err, &run))
            })
        }
    };
    response.extensions_mut().insert(note(&caller, None));
    Ok(response)
}

/// `GET /v1/runs/{run}/timeline.svg`: an ended run of the caller's as a
/// timeline (202 while it runs).
pub(super) async fn run_timeline(
    Shared(state): AppState,
    Path(run): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = admit(&state, &headers)?;
    let served = state.served();
    let (ingress, key) = run_key(&served, &caller, &run)?;
    let failed = |err| engine_error(err, &run).with_note(note(&caller, None));
    let report = match ingress.state(&key).await.map_err(failed)? {
        RunState::Missing => return Err(failed(IngressError::NoSuchRun(key))),
        RunState::Running => return Ok(still_running(&run)),
        RunState::Ended(report) => report,
    };
    let Some(entry) = served.library.get(&report.workflow_type) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_workflow",
            format!(
                "run `{run}` ran workflow `{}`, which this server no longer serves; its report is still at /v1/runs/{run}",
                report.workflow_type
            ),
        )
        .with_note(note(&caller, None)));
    };
    let mut response = (
        [(header::CONTENT_TYPE, "image/svg+xml")],
        crate::timeline::svg(entry.workflow(), &report),
    )
        .into_response();
    response
        .extensions_mut()
        .insert(note(&caller, Some(&report.workflow_type)));
    Ok(response)
}

/// 202 for a run that has not ended: ask again in a second.
fn still_running(run: &str) -> Response {
    let mut response = (
        StatusCode::ACCEPTED,
        Json(json!({ "run": run, "status": "running" })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(1));
    response
}

/// `DELETE /v1/runs/{run}`: stops one of the caller's runs; it ends with
/// the report of what finished (`GET` it).
pub(super) async fn stop_run(
    Shared(state): AppState,
    Path(run): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = admit(&state, &headers)?;
    let (ingress, key) = run_key(&state.served(), &caller, &run)?;
    ingress
        .stop(&key)
        .await
        .map_err(|err| engine_error(err, &run).with_note(note(&caller, None)))?;
    let mut response = (
        StatusCode::ACCEPTED,
        Json(json!({ "run": run, "status": "stopping" })),
    )
        .into_response();
    response.extensions_mut().insert(note(&caller, None));
    Ok(response)
}

/// The durable engine's trouble as the API tells it: the caller's run id,
/// never the engine's internal key.
fn engine_error(err: IngressError, run: &str) -> ApiError {
    match err {
        IngressError::NoSuchRun(_) => ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_run",
            format!("there is no run `{run}` of yours"),
        ),
        IngressError::RunFailed { message, .. } => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "run_failed",
            format!("run `{run}` failed on the durable engine: {message}"),
        ),
        other => ApiError::new(StatusCode::BAD_GATEWAY, "durable_engine", other.to_string()),
    }
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
    served: Arc<Served>,
    workflow: String,
    caller: String,
    inputs: Map<String, Value>,
    run: RunId,
    /// Whether the caller takes task events as they come.
    stream: bool,
    /// The trace the caller's `traceparent` names.
    trace: opentelemetry::Context,
}

impl AcceptedRun {
    /// Runs to the end, the deadline or shutdown; the outcome is what the
    /// audit log and the metrics record.
    async fn execute(&self, extra: &dyn Observer) -> Result<(Report, &'static str), ApiError> {
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
        tracing::info!(run = %self.run.0, workflow = %self.workflow, caller = %self.caller, "run started");
        let span = tracing::info_span!(
            "request",
            otel.name = %format!("POST /v1/workflows/{}", self.workflow),
            otel.kind = "server",
            wfc.run = %self.run.0,
        );
        {
            use tracing_opentelemetry::OpenTelemetrySpanExt;
            let _ = span.set_parent(self.trace.clone());
        }
        let result = match &self.served.runner {
            Runner::Local(executor) => {
                self.local(executor, &observer, &cancel)
                    .instrument(span)
                    .await
            }
            Runner::Durable(ingress) => {
                self.durable(ingress, &observer, &cancel)
                    .instrument(span)
                    .await
            }
        };
        let timed_out = timer.is_finished() && !self.state.stopping.is_cancelled();
        timer.abort();
        let report = result?;
        let outcome = if report.metadata.interrupted {
            if timed_out {
                "timeout"
            } else if self.state.stopping.is_cancelled() {
                "interrupted"
            } else {
                // On the durable engine, by `DELETE /v1/runs/{run}`.
                "stopped"
            }
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

    fn entry(&self) -> &Entry {
        self.served
            .library
            .get(&self.workflow)
            .expect("found before")
    }

    /// In this process, its journal in the server's runs folder.
    async fn local(
        &self,
        executor: &HttpExecutor,
        observer: &dyn Observer,
        cancel: &CancellationToken,
    ) -> Result<Report, ApiError> {
        let entry = self.entry();
        let mut session = Session::new(&entry.program, entry.workflow(), executor);
        if let Some(dir) = &self.state.runs_dir {
            session = session.journal(&dir.join(&self.run.0)).map_err(|err| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "journal",
                    format!("cannot open the run's journal: {err}"),
                )
            })?;
        }
        Ok(session.run(&self.inputs, observer, cancel).await)
    }

    /// On the durable engine: submitted under the caller's run id (a run
    /// of that id already started is followed, not started again), then
    /// followed to its report. At the deadline the run is stopped; when
    /// this server shuts down, the run goes on and any server answers
    /// for it.
    async fn durable(
        &self,
        ingress: &Ingress,
        observer: &dyn Observer,
        cancel: &CancellationToken,
    ) -> Result<Report, ApiError> {
        let id = &self.run.0;
        let key = self.run.key(&self.caller);
        let submission = self.entry().submission(self.inputs.clone());
        ingress
            .submit(&key, &submission)
            .await
            .map_err(|err| engine_error(err, id))?;
        // Task events as they come only for a stream; the metrics take
        // them at the end.
        let follow = async {
            if self.stream {
                ingress.follow(&key, observer).await
            } else {
                ingress.outcome(&key, observer).await
            }
        };
        tokio::pin!(follow);
        tokio::select! {
            report = &mut follow => return report.map_err(|err| engine_error(err, id)),
            () = cancel.cancelled() => {}
        }
        if self.state.stopping.is_cancelled() {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                format!("this server is shutting down; run `{id}` goes on: GET /v1/runs/{id} from any server for its report"),
            )
            .retry_after(Duration::from_secs(1)));
        }
        ingress
            .stop(&key)
            .await
            .map_err(|err| engine_error(err, id))?;
        follow.await.map_err(|err| engine_error(err, id))
    }
}
