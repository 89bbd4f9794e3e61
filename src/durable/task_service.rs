//! One task's request on the durable engine: a stateless Restate service
//! whose every attempt is a durable step and every wait between attempts a
//! durable timer. An attempt that finished is never sent again, whichever
//! worker picks the invocation up after a crash; one cut off by a crash is
//! sent again. The task's `.wf` retry policy decides, as on the local
//! engine, through the same retry loop: which failures are tried again,
//! how long to wait (the server's Retry-After included), and the turns
//! that correct an answer of the wrong shape. A failure the policy does not
//! retry ends the task at once; it is data for the run, which falls back to
//! another agent or skips what depends on the task.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use restate_sdk::prelude::*;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use super::Worker;
use super::slots::ServerSlotsClient;
use crate::run::{Answer, Attempts, Executor, Failure, Job, Observer, Recorder, RunEvent, retried};

/// What came of a job, with when its first attempt began and its last
/// ended (microseconds since the Unix epoch, as the worker measured them).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempted {
    pub result: Result<Answer, Failure>,
    pub started_us: u64,
    pub finished_us: u64,
    /// The retries on the way, for the run's observers.
    pub events: Vec<RunEvent>,
}

/// One attempt, as the journal keeps it.
#[derive(Debug, Serialize, Deserialize)]
struct Timed {
    result: Result<Answer, Failure>,
    started_us: u64,
    finished_us: u64,
}

/// A task to run, and where its result goes.
#[derive(Debug, Serialize, Deserialize)]
pub struct TaskCall {
    pub job: Job,
    /// The run's awakeable, resolved with the [`Attempted`].
    pub done: String,
    /// The agent whose slot the task holds (lease `done`), given back when
    /// the task is done; `None` for an agent without a limit.
    pub slot_of: Option<String>,
}

pub struct WfcTask {
    pub worker: Arc<Worker>,
}

#[restate_sdk::service]
impl WfcTask {
    /// Runs the task's attempts, then resolves the run's awakeable with
    /// what came of them and gives the slot back.
    #[handler]
    async fn exec(&self, ctx: Context<'_>, Json(call): Json<TaskCall>) -> HandlerResult<()> {
        let span = tracing::info_span!(
            "task",
            otel.name = %format!("task {}", call.job.task),
            wfc.task = %call.job.task,
            wfc.agent = %call.job.agent,
        );
        {
            use tracing_opentelemetry::OpenTelemetrySpanExt;
            let _ = span.set_parent(crate::trace_context::continued(&call.job.trace));
        }
        let attempted = self.attempted(&ctx, &call.job).instrument(span).await;
        ctx.resolve_awakeable(&call.done, Json(attempted));
        if let Some(agent) = call.slot_of {
            ctx.object_client::<ServerSlotsClient>(agent)
                .release(call.done)
                .send();
        }
        Ok(())
    }
}

impl WfcTask {
    async fn attempted(&self, ctx: &Context<'_>, job: &Job) -> Attempted {
        let recorder = Recorder::default();
        let steps = Journaled {
            ctx,
            worker: &self.worker,
            times: Mutex::new(None),
        };
        let result = retried(&steps, job, &self.worker.backoff, &recorder).await;
        let (started_us, finished_us) = steps
            .times
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
            .unwrap_or_default();
        Attempted {
            result,
            started_us,
            finished_us,
            events: recorder.take(),
        }
    }
}

/// Attempts as durable steps and waits as durable timers.
struct Journaled<'c, 'ctx> {
    ctx: &'c Context<'ctx>,
    worker: &'c Worker,
    /// When the first attempt began and the last one ended.
    times: Mutex<Option<(u64, u64)>>,
}

impl Attempts for Journaled<'_, '_> {
    async fn attempt(
        &self,
        job: &Job,
        _streamed_text_stays_here: &dyn Observer,
    ) -> Result<Answer, Failure> {
        // The step outlives this borrow in the SDK's eyes: it gets its own copy.
        let (job, worker) = (job.clone(), self.worker);
        let step = self
            .ctx
            .run(move || async move {
                let started_us = epoch_us();
                let result = worker.executor.execute(&job, &()).await;
                Ok(Json(Timed {
                    result,
                    started_us,
                    finished_us: epoch_us(),
                }))
            })
            .name("attempt")
            .await;
        match step {
            Ok(Json(timed)) => {
                let mut times = self.times.lock().unwrap_or_else(PoisonError::into_inner);
                let first = times.map_or(timed.started_us, |(first, _)| first);
                *times = Some((first, timed.finished_us));
                timed.result
            }
            // Cancelled: nothing more is sent.
            Err(error) => Err(Failure::permanent(error.message().to_string(), 0)),
        }
    }

    async fn wait(&self, delay: Duration) {
        // A cancelled wait ends in the next attempt's own cancellation.
        let _ = self.ctx.sleep(delay).await;
    }
}

pub(super) fn epoch_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
