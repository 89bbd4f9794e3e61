//! The local engine: drives a [`DagState`] to the end on tokio, rendering
//! each task's prompt when it gets its slot, sending its job through the
//! executor and telling the observer what happens. Start and finish times
//! are measured on the runtime's clock, so tests with paused time see
//! exact timings.

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::dag::{DagState, Ended, Start, TaskState, Verdict};
use super::events::{Event, Observer};
use super::execute::Executor;
use super::job::{Answer, Failure, Job, Request};
use crate::check::{AgentDef, TaskDef, WorkflowDef};
use crate::record::{Outcome, TaskRecord};
use crate::render::{Renderer, Scope};

/// How a run ended.
#[derive(Debug)]
pub struct Finished {
    /// One record per task, in the order the file declares them.
    pub records: Vec<TaskRecord>,
    /// The answers, for rendering the output.
    pub scope: Scope,
    pub wall: Duration,
    /// The most tasks that were running at one moment.
    pub peak_parallelism: usize,
    /// Ctrl-C (or a caller) stopped the run before every task finished.
    pub interrupted: bool,
}

/// What a run needs besides its inputs.
pub(super) struct Engine<'a> {
    pub workflow: &'a WorkflowDef,
    pub agents: &'a [AgentDef],
    pub renderer: &'a Renderer,
    pub executor: &'a dyn Executor,
    pub observer: &'a dyn Observer,
    pub capacity: &'a (dyn Fn(&str) -> Option<usize> + Sync),
}

/// A task's way through its agents so far.
struct Progress {
    started: Instant,
    attempts: u32,
    /// Tokens of answers that were not accepted.
    tokens: u32,
    /// What each agent that gave up said.
    errors: Vec<String>,
}

type Running<'a> = BoxFuture<'a, (usize, Job, Result<Answer, Failure>)>;

/// The state of one run on this engine.
struct Run<'e, 'a> {
    engine: &'e Engine<'a>,
    dag: DagState,
    start: Instant,
    progress: Vec<Option<Progress>>,
    records: Vec<Option<TaskRecord>>,
    scope: Scope,
    running: FuturesUnordered<Running<'e>>,
    peak: usize,
}

impl Engine<'_> {
    pub(super) async fn run(
        &self,
        inputs: &serde_json::Map<String, serde_json::Value>,
        cancel: &CancellationToken,
    ) -> Finished {
        let tasks = self.workflow.tasks.len();
        Run {
            engine: self,
            dag: DagState::new(self.workflow, self.agents, self.capacity),
            start: Instant::now(),
            progress: (0..tasks).map(|_| None).collect(),
            records: vec![None; tasks],
            scope: Scope::new(inputs),
            running: FuturesUnordered::new(),
            peak: 0,
        }
        .drive(cancel)
        .await
    }
}

impl<'a> Run<'_, 'a> {
    fn task(&self, task: usize) -> &'a TaskDef {
        &self.engine.workflow.tasks[task]
    }

    fn agent(&self, name: &str) -> Option<&'a AgentDef> {
        self.engine.agents.iter().find(|agent| agent.name == name)
    }

    fn elapsed_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    async fn drive(mut self, cancel: &CancellationToken) -> Finished {
        let mut interrupted = false;
        loop {
            let starts = self.dag.ready();
            let started_any = !starts.is_empty();
            for start in starts {
                self.start(start);
            }
            self.peak = self.peak.max(self.running.len());
            if self.running.is_empty() {
                // Tasks settled at once (a false condition) may have
                // released others.
                if started_any {
                    continue;
                }
                break;
            }
            tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    interrupted = true;
                    break;
                }
                Some((task, job, result)) = self.running.next() => {
                    self.settle(task, job, result);
                }
            }
        }
        self.running.clear();
        if interrupted {
            self.abandon();
        }
        Finished {
            records: self.records.into_iter().flatten().collect(),
            scope: self.scope,
            wall: self.start.elapsed(),
            peak_parallelism: self.peak,
            interrupted,
        }
    }

    /// Renders the task's condition and prompt, then sends its job; a task
    /// whose condition is false, or that cannot be rendered, is settled at
    /// once.
    fn start(&mut self, Start { task, agent }: Start) {
        let def = self.task(task);
        let renderer = self.engine.renderer;
        self.progress[task].get_or_insert_with(|| Progress {
            started: Instant::now(),
            attempts: 0,
            tokens: 0,
            errors: Vec::new(),
        });
        match renderer.condition(&def.name, &self.scope) {
            Ok(true) => {}
            Ok(false) => {
                let when = def.when.as_deref().unwrap_or_default();
                let reason = format!("its condition `{when}` is false");
                let settled = self.dag.settle(task, Verdict::Skipped);
                self.progress[task] = None;
                self.skip(task, reason);
                self.skip_all(settled.skipped);
                return;
            }
            Err(err) => return self.fail(task, &agent, err.to_string()),
        }
        let prompt = match renderer.prompt(&def.name, &self.scope) {
            Ok(prompt) => prompt,
            Err(err) => return self.fail(task, &agent, err.to_string()),
        };
        let Some(agent_def) = self.agent(&agent) else {
            return self.fail(task, &agent, format!("agent `{agent}` is not declared"));
        };
        let mut job = Job::chat(def, agent_def, prompt);
        if let Some(model) = self.engine.executor.model(&agent) {
            let Request::Chat(request) = &mut job.request;
            request.model = model;
        }
        self.engine.observer.on_event(&Event::Started {
            task: &def.name,
            agent: &agent,
        });
        let executor = self.engine.executor;
        let observer = self.engine.observer;
        self.running.push(Box::pin(async move {
            let result = executor.execute(&job, observer).await;
            (task, job, result)
        }));
    }

    fn settle(&mut self, task: usize, job: Job, result: Result<Answer, Failure>) {
        let key = Some(job.key());
        let failure = match result {
            Ok(answer) => return self.answered(task, job, answer, key),
            Err(failure) => failure,
        };
        let progress = self.progress[task]
            .as_mut()
            .expect("a running task has progress");
        progress.attempts += failure.attempts;
        progress.tokens += failure.tokens;
        let settled = self.dag.settle(task, Verdict::AgentGaveUp);
        if let Some(next) = settled.fallback {
            self.engine.observer.on_event(&Event::FallingBack {
                task: &job.task,
                from: &job.agent,
                to: &next,
                error: &failure.error,
            });
            progress
                .errors
                .push(format!("{}: {}", job.agent, failure.error));
        } else {
            let record = self.failure_record(task, &job.agent, failure.error);
            self.finish(task, record);
            self.skip_all(settled.skipped);
        }
    }

    fn answered(&mut self, task: usize, job: Job, answer: Answer, key: Option<String>) {
        let progress = self.progress[task]
            .take()
            .expect("a running task has progress");
        let quality = super::quality::score(
            &answer.text,
            answer.finish_reason.as_deref(),
            &self.task(task).checks,
        );
        let model = if answer.model.is_empty() {
            job.chat_request().model.clone()
        } else {
            answer.model
        };
        let record = TaskRecord {
            task: job.task,
            agent: job.agent,
            model,
            outcome: Outcome::Ok {
                text: answer.text,
                finish_reason: answer.finish_reason,
            },
            tokens: answer.tokens,
            latency_ms: progress.started.elapsed().as_millis() as u64,
            started_ms: (progress.started - self.start).as_millis() as u64,
            finished_ms: self.elapsed_ms(),
            attempts: progress.attempts + answer.attempts,
            key,
            replayed: answer.replayed,
            quality: Some(quality),
        };
        let settled = self.dag.settle(task, Verdict::Answered);
        self.finish(task, record);
        self.skip_all(settled.skipped);
    }

    /// Fails a task no agent can help with.
    fn fail(&mut self, task: usize, agent: &str, error: String) {
        let record = self.failure_record(task, agent, error);
        let settled = self.dag.settle(task, Verdict::Failed);
        self.finish(task, record);
        self.skip_all(settled.skipped);
    }

    /// The record of a task that ends without an answer on `agent`, with
    /// what every agent it went through said.
    fn failure_record(&mut self, task: usize, agent: &str, error: String) -> TaskRecord {
        let now = self.elapsed_ms();
        let Progress {
            started,
            attempts,
            tokens,
            mut errors,
        } = self.progress[task].take().unwrap_or(Progress {
            started: self.start + Duration::from_millis(now),
            attempts: 0,
            tokens: 0,
            errors: Vec::new(),
        });
        errors.push(if errors.is_empty() {
            error
        } else {
            format!("{agent}: {error}")
        });
        let started = (started - self.start).as_millis() as u64;
        let mut record = TaskRecord::skipped(
            &self.task(task).name,
            agent,
            &self.model_of(agent),
            String::new(),
            started,
        );
        record.outcome = Outcome::Failed {
            error: errors.join("; then "),
        };
        record.finished_ms = now;
        record.latency_ms = now - started;
        record.tokens = tokens;
        record.attempts = attempts;
        record
    }

    /// The model `agent`'s requests go to: the deployment's, else the
    /// declared one, else the agent's name (as requests send it).
    fn model_of(&self, agent: &str) -> String {
        self.engine
            .executor
            .model(agent)
            .or_else(|| self.agent(agent).and_then(|a| a.model.clone()))
            .unwrap_or_else(|| agent.to_string())
    }

    /// Records the result and tells the listeners.
    fn finish(&mut self, task: usize, record: TaskRecord) {
        self.engine
            .observer
            .on_event(&Event::Finished { record: &record });
        self.scope.add(&record);
        self.records[task] = Some(record);
    }

    fn skip(&mut self, task: usize, reason: String) {
        let def = self.task(task);
        let record = TaskRecord::skipped(
            &def.name,
            &def.agent,
            &self.model_of(&def.agent),
            reason,
            self.elapsed_ms(),
        );
        self.finish(task, record);
    }

    fn skip_all(&mut self, skipped: Vec<(usize, String)>) {
        for (task, reason) in skipped {
            self.skip(task, reason);
        }
    }

    /// After an interruption: what was running failed, what never started
    /// is skipped, so the report still accounts for every task.
    fn abandon(&mut self) {
        for task in 0..self.records.len() {
            match self.dag.state(task).clone() {
                TaskState::Running { agent } => {
                    let record =
                        self.failure_record(task, &agent, "interrupted before it finished".into());
                    let skipped = self.dag.abandon(task, Ended::Failed);
                    self.finish(task, record);
                    self.skip_all(skipped);
                }
                TaskState::Queued { .. } | TaskState::Blocked { .. } => {
                    let skipped = self.dag.abandon(task, Ended::Skipped);
                    self.skip(task, "the run was interrupted".into());
                    self.skip_all(skipped);
                }
                TaskState::Done(_) => {}
            }
        }
    }
}
