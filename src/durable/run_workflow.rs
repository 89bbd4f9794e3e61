//! A run on the durable engine: a Restate workflow keyed by the run's id.
//! It drives the same [`Conductor`] as the local engine. Each ready task
//! gets an awakeable for its result and goes to its agent's fleet-wide
//! slots, which start the task service when a slot is free (or straight
//! to the task service, for an agent without a limit); the awakeables are
//! durable futures awaited together, so a task starts the moment its
//! dependencies finish and its slot is free, and a replay after a crash
//! sees the same order of events. Every time the conductor sees comes from
//! the submission and the journal (the task service's own clock), so a
//! replay takes the same steps.
//!
//! The run keeps its events in its state for `wfc run`, `wfc serve` and
//! their observers, readable at any time through the `events` handler.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use restate_sdk::context::DurableFuture;
use restate_sdk::prelude::*;

use super::Worker;
use super::slots::{Acquire, LeaseRequest, ServerSlotsClient};
use super::submission::Submission;
use super::task_service::{Attempted, TaskCall, WfcTaskClient};
use crate::check::phi::{Policy, Receiver};
use crate::render::Renderer;
use crate::router::Capacity;
use crate::run::conduct::{Conductor, Engine};
use crate::run::{Failure, Finished, Job, Recorder, Report, RunEvent};

/// What the run awaits.
enum Step {
    /// The task service resolved the task's awakeable.
    Done(usize, Result<Json<Attempted>, TerminalError>),
    /// Someone asked the run to stop (`stop`): it ends as if interrupted.
    Stop,
}

type Pending<'a> = Pin<Box<dyn DurableFuture<Output = Step> + Send + 'a>>;

const EVENT_COUNT: &str = "events";
/// The promise `stop` resolves.
const STOP: &str = "stop";

fn event_key(index: u64) -> String {
    format!("event/{index}")
}

pub struct WfcRun {
    pub worker: Arc<Worker>,
}

#[restate_sdk::workflow]
impl WfcRun {
    #[handler]
    async fn run(
        &self,
        ctx: WorkflowContext<'_>,
        Json(submission): Json<Submission>,
    ) -> HandlerResult<Json<Report>> {
        let router = self.worker.router.as_ref();
        let allows = |receiver: Receiver<'_>| router.is_some_and(|r| r.receives_phi(receiver));
        let phi = match router {
            Some(_) => Policy::Deployment(&allows),
            None => Policy::Declared,
        };
        let (program, index) = submission.compile(phi).map_err(TerminalError::new)?;
        let workflow = &program.workflows[index];
        let renderer = Renderer::new(workflow);
        let start_us = submission.submitted_us;
        let recorder = Recorder::default();
        // Slots are the fleet's, granted by each agent's object.
        let unlimited = |_: &str| Capacity::default();
        let engine = Engine {
            workflow,
            agents: &program.agents,
            renderer: &renderer,
            executor: &self.worker.executor,
            observer: &recorder,
            capacity: &unlimited,
        };
        let run = ctx.key().to_string();
        let mut conductor = Conductor::new(&engine, &submission.inputs);
        let mut pending: DurableFuturesUnordered<Pending<'_>> = DurableFuturesUnordered::new();
        // Each task's job, and the slots object it waits for (or holds) a
        // slot of, if any.
        let mut jobs: BTreeMap<usize, (Job, Option<String>)> = BTreeMap::new();
        // When each answered task's attempts began and ended.
        let mut spans: Vec<(u64, u64)> = Vec::new();
        let (mut now_us, mut events) = (0_u64, 0_u64);
        let mut interrupted = false;
        let stop = ctx.promise::<()>(STOP);
        pending.push(Box::pin(stop.map(|_| Step::Stop)));
        loop {
            for (task, mut job) in conductor.ready(now_us) {
                job.trace.clone_from(&submission.trace);
                let (done, result) = ctx.awakeable::<Json<Attempted>>();
                pending.push(Box::pin(result.map(move |r| Step::Done(task, r))));
                let slot = self.worker.slot(&program.agents, &job.agent);
                jobs.insert(task, (job.clone(), slot.as_ref().map(|s| s.key.clone())));
                // An agent without a limit needs no lease: the task starts now.
                let Some(slot) = slot else {
                    ctx.service_client::<WfcTaskClient>()
                        .exec(Json(TaskCall {
                            job,
                            done,
                            slot_of: None,
                        }))
                        .send();
                    continue;
                };
                let (priority, remaining_cost) = conductor.urgency(task);
                let request = LeaseRequest {
                    awakeable: done,
                    run: run.clone(),
                    priority,
                    remaining_cost,
                    agent: job.agent.clone(),
                    agent_limit: slot.agent_limit,
                    capacity: slot.capacity,
                };
                ctx.object_client::<ServerSlotsClient>(slot.key)
                    .acquire(Json(Acquire { request, job }))
                    .send();
            }
            events = publish(&ctx, &recorder, events);
            if jobs.is_empty() {
                break;
            }
            let (task, result) = match pending.next().await {
                Ok(Some((_, Step::Done(task, result)))) => (task, result),
                Ok(Some((_, Step::Stop))) | Err(_) => {
                    interrupted = true;
                    break;
                }
                Ok(None) => break,
            };
            let (job, _) = jobs.remove(&task).expect("a running task has a job");
            let attempted = match result {
                Ok(Json(attempted)) => attempted,
                Err(error) => Attempted {
                    result: Err(Failure::permanent(error.message().to_string(), 0)),
                    started_us: 0,
                    finished_us: 0,
                    events: Vec::new(),
                },
            };
            if attempted.started_us > 0 {
                conductor.started_at(task, attempted.started_us.saturating_sub(start_us));
                spans.push((attempted.started_us, attempted.finished_us));
            }
            now_us = now_us.max(attempted.finished_us.saturating_sub(start_us));
            for event in &attempted.events {
                event.replay(&recorder);
            }
            conductor.settle(task, job, attempted.result, now_us);
        }
        if interrupted {
            for key in jobs
                .values()
                .filter_map(|(_, slots)| slots.clone())
                .collect::<std::collections::BTreeSet<_>>()
            {
                ctx.object_client::<ServerSlotsClient>(key)
                    .release_run(run.clone())
                    .send();
            }
            conductor.abandon(now_us);
        }
        publish(&ctx, &recorder, events);
        let (records, scope) = conductor.into_results();
        let output = renderer.output(&scope).map_err(|err| err.to_string());
        let finished = Finished {
            records,
            scope,
            wall: Duration::from_micros(now_us),
            peak_parallelism: crate::overlap::most_at_once(spans),
            interrupted,
        };
        Ok(Json(Report::new(&workflow.name, &finished, output)))
    }

    /// Asks the run to stop: tasks running are abandoned (their answers
    /// are not waited for), the rest skipped, and the run returns its
    /// report of what finished. A run that has ended stays as it was.
    #[handler]
    #[allow(
        clippy::unused_async,
        reason = "the SDK's macro takes only async handlers"
    )]
    async fn stop(&self, ctx: SharedWorkflowContext<'_>) -> HandlerResult<()> {
        ctx.resolve_promise(STOP, ());
        Ok(())
    }

    /// The run's events from the `from`th on (none yet: an empty list).
    #[handler]
    async fn events(
        &self,
        ctx: SharedWorkflowContext<'_>,
        from: u64,
    ) -> HandlerResult<Json<Vec<RunEvent>>> {
        let count = ctx.get::<u64>(EVENT_COUNT).await?.unwrap_or(0);
        let mut events = Vec::new();
        for index in from..count {
            if let Some(Json(event)) = ctx.get::<Json<RunEvent>>(&event_key(index)).await? {
                events.push(event);
            }
        }
        Ok(Json(events))
    }
}

/// Keeps the events recorded since the last call in the run's state;
/// returns how many there are in all.
fn publish(ctx: &WorkflowContext<'_>, recorder: &Recorder, mut count: u64) -> u64 {
    let new = recorder.take();
    if new.is_empty() {
        return count;
    }
    for event in new {
        ctx.set(&event_key(count), Json(event));
        count += 1;
    }
    ctx.set(EVENT_COUNT, count);
    count
}
