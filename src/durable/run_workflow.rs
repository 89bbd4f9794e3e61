//! A run on the durable engine: a Restate workflow keyed by the run's id.
//! It drives the same [`Conductor`] as the local engine. Each ready task
//! asks its agent's fleet-wide slots for a lease, then calls the task
//! service; all of these are durable futures awaited together, so a task
//! starts the moment its dependencies finish and its slot is granted, and
//! a replay after a crash sees the same order of events. Every time the
//! conductor sees comes from the journal (the task service's own clock),
//! so a replay takes the same steps.
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
use super::slots::{AgentSlotsClient, LeaseRequest};
use super::submission::Submission;
use super::task_service::{Attempted, WfcTaskClient, epoch_ms};
use crate::check::phi::Policy;
use crate::render::Renderer;
use crate::run::conduct::{Conductor, Engine};
use crate::run::{Failure, Finished, Job, Recorder, Report, RunEvent};

/// What the run awaits.
enum Step {
    /// A slot for the task was granted (or the wait ended in an error).
    Granted(usize, Result<(), TerminalError>),
    /// The task service answered for the task.
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
        let allows = |agent: &str| router.is_some_and(|r| r.phi_allowed(agent));
        let phi = match router {
            Some(_) => Policy::Deployment(&allows),
            None => Policy::Declared,
        };
        let (program, index) = submission.compile(phi).map_err(TerminalError::new)?;
        let workflow = &program.workflows[index];
        let renderer =
            Renderer::new(workflow).map_err(|err| TerminalError::new(err.to_string()))?;
        let start_ms = ctx.run(|| async { Ok(epoch_ms()) }).name("start").await?;
        let recorder = Recorder::default();
        // Slots are the fleet's, granted by each agent's object.
        let unlimited = |_: &str| None;
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
        // Each task's job and the lease (its awakeable) it asked for.
        let mut jobs: BTreeMap<usize, (Job, String)> = BTreeMap::new();
        let (mut now_ms, mut running, mut peak, mut events) = (0_u64, 0_usize, 0_usize, 0_u64);
        let mut interrupted = false;
        let stop = ctx.promise::<()>(STOP);
        pending.push(Box::pin(stop.map(|_| Step::Stop)));
        loop {
            for (task, job) in conductor.ready(now_ms) {
                let (priority, remaining_cost) = conductor.urgency(task);
                let (awakeable, granted) = ctx.awakeable::<()>();
                ctx.object_client::<AgentSlotsClient>(job.agent.clone())
                    .acquire(Json(LeaseRequest {
                        awakeable: awakeable.clone(),
                        run: run.clone(),
                        priority,
                        remaining_cost,
                        capacity: self.worker.capacity(&program.agents, &job.agent),
                    }))
                    .send();
                pending.push(Box::pin(granted.map(move |r| Step::Granted(task, r))));
                jobs.insert(task, (job, awakeable));
            }
            events = publish(&ctx, &recorder, events);
            if jobs.is_empty() {
                break;
            }
            let next = match pending.next().await {
                Ok(Some((_, step))) => step,
                Ok(None) => break,
                Err(_cancelled) => Step::Stop,
            };
            match next {
                Step::Stop => {
                    interrupted = true;
                    break;
                }
                Step::Granted(task, Ok(())) => {
                    let job = jobs[&task].0.clone();
                    let call = ctx.service_client::<WfcTaskClient>().exec(Json(job)).call();
                    pending.push(Box::pin(call.map(move |r| Step::Done(task, r))));
                    running += 1;
                    peak = peak.max(running);
                }
                Step::Granted(task, Err(error)) => {
                    let (job, _) = jobs.remove(&task).expect("a waiting task has a job");
                    let failure = Failure::permanent(error.message().to_string(), 0);
                    conductor.settle(task, job, Err(failure), now_ms);
                }
                Step::Done(task, result) => {
                    running -= 1;
                    let (job, lease) = jobs.remove(&task).expect("a running task has a job");
                    ctx.object_client::<AgentSlotsClient>(job.agent.clone())
                        .release(lease)
                        .send();
                    let attempted = match result {
                        Ok(Json(attempted)) => attempted,
                        Err(error) => Attempted {
                            result: Err(Failure::permanent(error.message().to_string(), 0)),
                            started_ms: 0,
                            finished_ms: 0,
                            events: Vec::new(),
                        },
                    };
                    if attempted.started_ms > 0 {
                        conductor.started_at(task, attempted.started_ms.saturating_sub(start_ms));
                    }
                    now_ms = now_ms.max(attempted.finished_ms.saturating_sub(start_ms));
                    for event in &attempted.events {
                        event.replay(&recorder);
                    }
                    conductor.settle(task, job, attempted.result, now_ms);
                }
            }
        }
        if interrupted {
            for agent in jobs
                .values()
                .map(|(job, _)| job.agent.clone())
                .collect::<std::collections::BTreeSet<_>>()
            {
                ctx.object_client::<AgentSlotsClient>(agent)
                    .release_run(run.clone())
                    .send();
            }
            conductor.abandon(now_ms);
        }
        publish(&ctx, &recorder, events);
        let (records, scope) = conductor.into_results();
        let output = renderer.output(&scope).map_err(|err| err.to_string());
        let finished = Finished {
            records,
            scope,
            wall: Duration::from_millis(now_ms),
            peak_parallelism: peak,
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
