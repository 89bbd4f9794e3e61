//! Dataflow scheduling: a task starts the moment its last dependency
//! finishes and its agent has a free slot. Waiting tasks take slots in order
//! of priority, then of the longest path still ahead of them, so the work
//! that holds up the end of the run goes first.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

// The runtime's clock, so that tests with paused time see exact timings.
use tokio::time::Instant;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use tokio_util::sync::CancellationToken;

use super::events::{Event, Observer};
use super::execute::{Answer, Executor, Failure, Job};
use crate::check::{AgentDef, TaskDef, WorkflowDef};
use crate::client::ChatRequest;
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

pub struct Scheduler<'a> {
    workflow: &'a WorkflowDef,
    agents: HashMap<&'a str, &'a AgentDef>,
    renderer: &'a Renderer,
    executor: &'a dyn Executor,
    observer: &'a dyn Observer,
    slots: HashMap<&'a str, usize>,
    remaining_cost: Vec<u64>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Waiting {
    priority: u32,
    remaining_cost: u64,
    earlier_in_file: Reverse<usize>,
}

#[derive(Clone)]
enum State {
    /// Waiting for this many dependencies.
    Blocked(usize),
    Queued,
    Running,
    Done,
}

/// A running task's progress through its agents.
#[derive(Clone)]
struct Attempt {
    agent: String,
    tried: Vec<String>,
    started: Instant,
    attempts: u32,
    errors: Vec<String>,
}

type Running<'a> = BoxFuture<'a, (usize, Job, Result<Answer, Failure>)>;

impl<'a> Scheduler<'a> {
    /// `capacity` says how many requests an agent's servers take at once,
    /// when the deployment says; the agent's own `max_concurrency` also
    /// limits it.
    pub fn new(
        workflow: &'a WorkflowDef,
        agents: &'a [AgentDef],
        renderer: &'a Renderer,
        executor: &'a dyn Executor,
        observer: &'a dyn Observer,
        capacity: impl Fn(&str) -> Option<usize>,
    ) -> Self {
        let agents: HashMap<&str, &AgentDef> =
            agents.iter().map(|a| (a.name.as_str(), a)).collect();
        let slots = agents
            .iter()
            .map(|(&name, agent)| {
                let declared = agent.max_concurrency.map(|n| n as usize);
                let limit = match (declared, capacity(name)) {
                    (Some(a), Some(b)) => a.min(b),
                    (a, b) => a.or(b).unwrap_or(usize::MAX),
                };
                (name, limit.max(1))
            })
            .collect();
        let cost: Vec<u64> = workflow
            .tasks
            .iter()
            .map(|t| u64::from(t.max_tokens))
            .collect();
        Scheduler {
            workflow,
            agents,
            renderer,
            executor,
            observer,
            slots,
            remaining_cost: workflow.plan.remaining_cost(&cost),
        }
    }

    pub async fn run(
        &self,
        inputs: &serde_json::Map<String, serde_json::Value>,
        cancel: &CancellationToken,
    ) -> Finished {
        RunState::new(self, inputs).drive(cancel).await
    }
}

/// The mutable state of one run.
struct RunState<'s, 'a> {
    scheduler: &'s Scheduler<'a>,
    start: Instant,
    state: Vec<State>,
    attempt: Vec<Option<Attempt>>,
    records: Vec<Option<TaskRecord>>,
    queues: HashMap<String, BinaryHeap<(Waiting, usize)>>,
    busy: HashMap<String, usize>,
    scope: Scope,
    running: FuturesUnordered<Running<'s>>,
    peak: usize,
}

impl<'s, 'a> RunState<'s, 'a> {
    fn new(
        scheduler: &'s Scheduler<'a>,
        inputs: &serde_json::Map<String, serde_json::Value>,
    ) -> Self {
        let plan = &scheduler.workflow.plan;
        let tasks = scheduler.workflow.tasks.len();
        let mut run = RunState {
            scheduler,
            start: Instant::now(),
            state: (0..tasks)
                .map(|task| State::Blocked(plan.dependencies(task).len()))
                .collect(),
            attempt: vec![None; tasks],
            records: vec![None; tasks],
            queues: HashMap::new(),
            busy: HashMap::new(),
            scope: Scope::new(inputs),
            running: FuturesUnordered::new(),
            peak: 0,
        };
        for task in 0..tasks {
            if matches!(run.state[task], State::Blocked(0)) {
                let agent = run.task(task).agent.clone();
                run.enqueue(task, agent, Vec::new());
            }
        }
        run
    }

    fn task(&self, task: usize) -> &'a TaskDef {
        &self.scheduler.workflow.tasks[task]
    }

    fn elapsed_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    async fn drive(mut self, cancel: &CancellationToken) -> Finished {
        let mut interrupted = false;
        loop {
            self.dispatch();
            if self.running.is_empty() {
                if self.queues.values().any(|queue| !queue.is_empty()) {
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
        let wall = self.start.elapsed();
        Finished {
            records: self.records.into_iter().flatten().collect(),
            scope: self.scope,
            wall,
            peak_parallelism: self.peak,
            interrupted,
        }
    }

    fn enqueue(&mut self, task: usize, agent: String, tried: Vec<String>) {
        let def = self.task(task);
        let previous = self.attempt[task].take();
        self.attempt[task] = Some(Attempt {
            agent: agent.clone(),
            tried,
            started: previous.as_ref().map_or_else(Instant::now, |a| a.started),
            attempts: previous.as_ref().map_or(0, |a| a.attempts),
            errors: previous.map(|a| a.errors).unwrap_or_default(),
        });
        self.state[task] = State::Queued;
        let waiting = Waiting {
            priority: def.priority,
            remaining_cost: self.scheduler.remaining_cost[task],
            earlier_in_file: Reverse(task),
        };
        self.queues.entry(agent).or_default().push((waiting, task));
    }

    /// Starts queued tasks while their agents have free slots, the most
    /// urgent first across all agents, so start order follows priority.
    fn dispatch(&mut self) {
        while let Some(agent) = self.most_urgent_with_a_slot() {
            let (_, task) = self
                .queues
                .get_mut(&agent)
                .and_then(BinaryHeap::pop)
                .expect("the chosen queue is not empty");
            self.start(task, &agent);
        }
        self.peak = self.peak.max(self.running.len());
    }

    fn most_urgent_with_a_slot(&self) -> Option<String> {
        self.queues
            .iter()
            .filter(|(agent, _)| {
                let limit = self.scheduler.slots.get(agent.as_str()).copied();
                self.busy.get(*agent).copied().unwrap_or(0) < limit.unwrap_or(usize::MAX)
            })
            .filter_map(|(agent, queue)| queue.peek().map(|(waiting, _)| (*waiting, agent)))
            .max()
            .map(|(_, agent)| agent.clone())
    }

    fn start(&mut self, task: usize, agent: &str) {
        let def = self.task(task);
        match self.scheduler.renderer.condition(&def.name, &self.scope) {
            Ok(true) => {}
            Ok(false) => {
                let when = def.when.as_deref().unwrap_or_default();
                self.skip(task, format!("its condition `{when}` is false"));
                return;
            }
            Err(err) => {
                self.state[task] = State::Running;
                self.fail(task, agent, err.to_string());
                return;
            }
        }
        let prompt = match self.scheduler.renderer.prompt(&def.name, &self.scope) {
            Ok(prompt) => prompt,
            Err(err) => {
                self.state[task] = State::Running;
                self.fail(task, agent, err.to_string());
                return;
            }
        };
        let agent_def = self.scheduler.agents[agent];
        let job = Job {
            task: def.name.clone(),
            agent: agent.to_string(),
            request: ChatRequest {
                model: agent_def.model.clone().unwrap_or_else(|| agent.to_string()),
                system: agent_def.system.clone(),
                prompt,
                max_tokens: def.max_tokens,
                temperature: def.temperature.or(agent_def.temperature),
                schema: def.output.as_ref().map(crate::check::Type::json_schema),
                follow_ups: Vec::new(),
            },
            timeout: def.timeout,
            retry: def.retry.clone(),
            output: def.output.clone(),
            context_window: agent_def.context_window,
        };
        self.state[task] = State::Running;
        *self.busy.entry(agent.to_string()).or_default() += 1;
        self.scheduler.observer.on_event(&Event::Started {
            task: &def.name,
            agent,
        });
        let executor = self.scheduler.executor;
        let observer = self.scheduler.observer;
        self.running.push(Box::pin(async move {
            let result = executor.execute(&job, observer).await;
            (task, job, result)
        }));
    }

    fn settle(&mut self, task: usize, job: Job, result: Result<Answer, Failure>) {
        if let Some(busy) = self.busy.get_mut(&job.agent) {
            *busy -= 1;
        }
        let key = Some(job.key());
        match result {
            Ok(answer) => {
                let attempt = self.attempt[task]
                    .take()
                    .expect("a running task has an attempt");
                let quality = super::quality::score(
                    &answer.text,
                    answer.finish_reason.as_deref(),
                    &self.task(task).checks,
                );
                self.finish(
                    task,
                    TaskRecord {
                        task: job.task,
                        agent: job.agent,
                        model: if answer.model.is_empty() {
                            job.request.model
                        } else {
                            answer.model
                        },
                        outcome: Outcome::Ok {
                            text: answer.text,
                            finish_reason: answer.finish_reason,
                        },
                        tokens: answer.tokens,
                        latency_ms: attempt.started.elapsed().as_millis() as u64,
                        started_ms: (attempt.started - self.start).as_millis() as u64,
                        finished_ms: self.elapsed_ms(),
                        attempts: attempt.attempts + answer.attempts,
                        key,
                        replayed: answer.replayed,
                        quality: Some(quality),
                    },
                );
            }
            Err(failure) => {
                if let Some(attempt) = self.attempt[task].as_mut() {
                    attempt.attempts += failure.attempts;
                }
                match self.fallback_for(task, &job.agent) {
                    Some(next) => {
                        let def = self.task(task);
                        self.scheduler.observer.on_event(&Event::FallingBack {
                            task: &def.name,
                            from: &job.agent,
                            to: &next,
                            error: &failure.error,
                        });
                        let attempt = self.attempt[task].as_mut().expect("running");
                        attempt
                            .errors
                            .push(format!("{}: {}", job.agent, failure.error));
                        let mut tried = attempt.tried.clone();
                        tried.push(job.agent.clone());
                        self.enqueue(task, next, tried);
                    }
                    None => self.fail(task, &job.agent, failure.error),
                }
            }
        }
    }

    /// The agent to try after `agent` gave up on `task`: the task's own
    /// fallback first, then each agent's declared fallback, never one
    /// already tried.
    fn fallback_for(&self, task: usize, agent: &str) -> Option<String> {
        let def = self.task(task);
        let tried = &self.attempt[task].as_ref()?.tried;
        let own = (agent == def.agent).then(|| def.fallback.clone()).flatten();
        let declared = self
            .scheduler
            .agents
            .get(agent)
            .and_then(|a| a.fallback.clone());
        own.or(declared)
            .filter(|next| next != agent && !tried.contains(next) && *next != def.agent)
    }

    fn fail(&mut self, task: usize, agent: &str, error: String) {
        let now = self.elapsed_ms();
        let attempt = self.attempt[task].take();
        let mut errors = attempt
            .as_ref()
            .map(|a| a.errors.clone())
            .unwrap_or_default();
        errors.push(if errors.is_empty() {
            error
        } else {
            format!("{agent}: {error}")
        });
        let started = attempt
            .as_ref()
            .map_or(now, |a| (a.started - self.start).as_millis() as u64);
        let model = self.model_of(agent);
        let mut record =
            TaskRecord::skipped(&self.task(task).name, agent, &model, String::new(), started);
        record.outcome = Outcome::Failed {
            error: errors.join("; then "),
        };
        record.finished_ms = now;
        record.latency_ms = now - started;
        record.attempts = attempt.map_or(0, |a| a.attempts);
        self.finish(task, record);
    }

    fn model_of(&self, agent: &str) -> String {
        self.scheduler
            .agents
            .get(agent)
            .and_then(|a| a.model.clone())
            .unwrap_or_default()
    }

    /// Records the result, tells the listeners, and releases or skips the
    /// tasks that wait for it.
    fn finish(&mut self, task: usize, record: TaskRecord) {
        self.state[task] = State::Done;
        self.scheduler
            .observer
            .on_event(&Event::Finished { record: &record });
        let ok = record.is_ok();
        self.scope.add(&record);
        let reason = if ok {
            None
        } else {
            Some(match &record.outcome {
                Outcome::Skipped { .. } => format!("`{}` was skipped", record.task),
                _ => format!("`{}` failed", record.task),
            })
        };
        self.records[task] = Some(record);
        for dependent in self.scheduler.workflow.plan.dependents(task) {
            let State::Blocked(waiting) = self.state[dependent] else {
                continue;
            };
            let optional = self.scheduler.workflow.plan.is_optional(task, dependent);
            match &reason {
                Some(reason) if !optional => self.skip(dependent, reason.clone()),
                _ if waiting == 1 => {
                    let agent = self.task(dependent).agent.clone();
                    self.enqueue(dependent, agent, Vec::new());
                }
                _ => self.state[dependent] = State::Blocked(waiting - 1),
            }
        }
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

    /// After an interruption: what was running failed, what never started
    /// is skipped, so the report still accounts for every task.
    fn abandon(&mut self) {
        for task in 0..self.state.len() {
            match self.state[task] {
                State::Running => {
                    let agent = self.attempt[task]
                        .as_ref()
                        .map_or_else(|| self.task(task).agent.clone(), |a| a.agent.clone());
                    self.fail(task, &agent, "interrupted before it finished".into());
                }
                State::Queued | State::Blocked(_) => {
                    self.skip(task, "the run was interrupted".into());
                }
                State::Done => {}
            }
        }
    }
}
