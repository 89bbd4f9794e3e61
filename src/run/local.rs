//! The local engine: drives a run's [`Conductor`] to the end on tokio,
//! sending each job through the executor as its slot comes free. Times are
//! measured on the runtime's clock, so tests with paused time see exact
//! timings.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::conduct::{Conductor, Engine};
use super::job::{Answer, Failure, Job};
use crate::record::TaskRecord;
use crate::render::Scope;

/// How a run ended.
#[derive(Debug)]
pub struct Finished {
    /// One record per task, in the order the file declares them.
    pub records: Vec<Arc<TaskRecord>>,
    /// The answers, for rendering the output.
    pub scope: Scope,
    pub wall: Duration,
    /// The most tasks that were running at one moment.
    pub peak_parallelism: usize,
    /// Ctrl-C (or a caller) stopped the run before every task finished.
    pub interrupted: bool,
}

type Running<'a> = BoxFuture<'a, (usize, Job, Result<Answer, Failure>)>;

impl Engine<'_> {
    pub(super) async fn run(
        &self,
        inputs: &serde_json::Map<String, serde_json::Value>,
        cancel: &CancellationToken,
    ) -> Finished {
        let start = Instant::now();
        let now_us = || start.elapsed().as_micros() as u64;
        let mut conductor = Conductor::new(self, inputs);
        let mut running: FuturesUnordered<Running<'_>> = FuturesUnordered::new();
        let mut peak = 0;
        let mut interrupted = false;
        loop {
            for (task, job) in conductor.ready(now_us()) {
                let (executor, observer) = (self.executor, self.observer);
                let span = tracing::info_span!(
                    "task",
                    otel.name = %format!("task {}", job.task),
                    wfc.task = %job.task,
                    wfc.agent = %job.agent,
                    otel.status_code = tracing::field::Empty,
                    error.type = tracing::field::Empty,
                );
                running.push(Box::pin(
                    async move {
                        let result = executor.execute(&job, observer).await;
                        if let Err(failure) = &result {
                            let span = tracing::Span::current();
                            span.record("otel.status_code", "ERROR");
                            span.record("error.type", failure.error_type());
                        }
                        (task, job, result)
                    }
                    .instrument(span),
                ));
            }
            peak = peak.max(running.len());
            if running.is_empty() {
                break;
            }
            tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    interrupted = true;
                    break;
                }
                Some((task, job, result)) = running.next() => {
                    conductor.settle(task, job, result, now_us());
                }
            }
        }
        drop(running);
        if interrupted {
            conductor.abandon(now_us());
        }
        let (records, scope) = conductor.into_results();
        Finished {
            records,
            scope,
            wall: start.elapsed(),
            peak_parallelism: peak,
            interrupted,
        }
    }
}
