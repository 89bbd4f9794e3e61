//! What a run does between its engine's events, with the clock left to the
//! engine: renders each task's condition and prompt when it starts, turns
//! each result into the task's record (falling back to another agent when
//! one gives up), skips what can no longer run, and tells the observer.
//! The local engine drives it from tokio; the durable engine drives the
//! same code from a Restate workflow, where every input (result and time)
//! comes from the journal, so a replay takes the same steps.

use std::sync::Arc;

use super::dag::{DagState, Ended, Start, TaskState, Verdict};
use super::events::{Event, Observer};
use super::execute::Executor;
use super::job::{Answer, Failure, Job, Request};
use crate::check::{AgentDef, TaskDef, TaskKind, WorkflowDef};
use crate::plan::EdgeKind;
use crate::record::{Outcome, TaskRecord, millis};
use crate::render::{Renderer, Scope};
use crate::router::{Capacity, Claim};

/// What a run needs besides its inputs.
pub struct Engine<'a> {
    pub workflow: &'a WorkflowDef,
    pub agents: &'a [AgentDef],
    pub renderer: &'a Renderer<'a>,
    /// Answers the deployment's questions (models, capacity); the local
    /// engine also sends its jobs through it.
    pub executor: &'a dyn Executor,
    pub observer: &'a dyn Observer,
    pub capacity: &'a (dyn Fn(&str) -> Capacity + Sync),
}

/// A task's way through its agents so far.
struct Progress {
    started_us: u64,
    attempts: u32,
    /// Tokens of answers that were not accepted.
    tokens: u32,
    /// What each agent that gave up said.
    errors: Vec<String>,
}

/// The state of one run. Times are microseconds from the start of the
/// run, as the engine measures them.
pub struct Conductor<'e, 'a> {
    engine: &'e Engine<'a>,
    dag: DagState,
    progress: Vec<Option<Progress>>,
    records: Vec<Option<Arc<TaskRecord>>>,
    scope: Scope,
    /// The run's affinity key: its tasks share its inputs (the patient
    /// record, say) as a prompt prefix a server can keep cached.
    affinity: u64,
}

impl<'e, 'a> Conductor<'e, 'a> {
    #[must_use]
    pub fn new(
        engine: &'e Engine<'a>,
        inputs: &serde_json::Map<String, serde_json::Value>,
    ) -> Self {
        let tasks = engine.workflow.tasks.len();
        Conductor {
            engine,
            dag: DagState::new(engine.workflow, engine.agents, engine.capacity),
            progress: (0..tasks).map(|_| None).collect(),
            records: vec![None; tasks],
            scope: Scope::new(inputs),
            affinity: affinity(inputs),
        }
    }

    /// The jobs to send now, each with its task. Tasks whose condition is
    /// false, or that cannot be rendered, are settled here at once, and what
    /// they release is started too.
    pub fn ready(&mut self, now_us: u64) -> Vec<(usize, Job)> {
        let mut jobs = Vec::new();
        loop {
            let starts = self.dag.ready();
            if starts.is_empty() {
                return jobs;
            }
            jobs.extend(starts.into_iter().filter_map(|start| {
                let task = start.task;
                Some((task, self.start(start, now_us)?))
            }));
        }
    }

    /// How urgent a task is against other tasks of its agent: priority,
    /// then the work still ahead of it.
    #[must_use]
    pub fn urgency(&self, task: usize) -> (u32, u64) {
        self.dag.urgency(task)
    }

    /// Moves the start of a task's first attempt to when it really began
    /// (after waiting for a slot the engine holds elsewhere).
    pub fn started_at(&mut self, task: usize, started_us: u64) {
        if let Some(progress) = &mut self.progress[task]
            && progress.attempts == 0
        {
            progress.started_us = started_us;
        }
    }

    fn task(&self, task: usize) -> &'a TaskDef {
        &self.engine.workflow.tasks[task]
    }

    fn agent(&self, name: &str) -> Option<&'a AgentDef> {
        self.engine.agents.iter().find(|agent| agent.name == name)
    }

    /// Renders the task's condition and prompt and builds its job; a task
    /// whose condition is false, or that cannot be rendered, is settled.
    fn start(&mut self, Start { task, agent }: Start, now_us: u64) -> Option<Job> {
        let def = self.task(task);
        let renderer = self.engine.renderer;
        self.progress[task].get_or_insert_with(|| Progress {
            started_us: now_us,
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
                self.skip(task, reason, now_us);
                self.skip_all(settled.skipped, now_us);
                return None;
            }
            Err(err) => {
                self.fail(task, &agent, err.to_string(), now_us);
                return None;
            }
        }
        let prompt = match renderer.prompt(&def.name, &self.scope) {
            Ok(prompt) => prompt,
            Err(err) => {
                self.fail(task, &agent, err.to_string(), now_us);
                return None;
            }
        };
        let mut job = match &def.kind {
            TaskKind::Retrieve(retrieval) => match renderer.filters(&def.name, &self.scope) {
                Ok(filters) => Job::retrieve(def, retrieval, prompt, filters),
                Err(err) => {
                    self.fail(task, &agent, err.to_string(), now_us);
                    return None;
                }
            },
            TaskKind::Chat => {
                let Some(agent_def) = self.agent(&agent) else {
                    let error = format!("agent `{agent}` is not declared");
                    self.fail(task, &agent, error, now_us);
                    return None;
                };
                Job::chat(def, agent_def, prompt)
            }
        };
        if let (Request::Chat(request), Some(model)) =
            (&mut job.request, self.engine.executor.model(&agent))
        {
            request.model = model;
        }
        job.claim = Claim {
            urgency: self.dag.urgency(task),
            affinity: Some(self.affinity),
        };
        self.engine.observer.on_event(&Event::Started {
            task: &def.name,
            agent: &agent,
        });
        Some(job)
    }

    /// Settles a job the engine sent: the task is answered, falls back to
    /// another agent (queued again) or fails.
    pub fn settle(&mut self, task: usize, job: Job, result: Result<Answer, Failure>, now_us: u64) {
        let key = Some(job.key());
        let failure = match result {
            Ok(answer) => return self.answered(task, job, answer, key, now_us),
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
            let record = self.failure_record(task, &job.agent, failure.error, now_us);
            self.finish(task, record);
            self.skip_all(settled.skipped, now_us);
        }
    }

    fn answered(
        &mut self,
        task: usize,
        job: Job,
        answer: Answer,
        key: Option<String>,
        now_us: u64,
    ) {
        let progress = self.progress[task]
            .take()
            .expect("a running task has progress");
        // A search is not an answer to score: what it finds is the corpus's.
        let quality = matches!(job.request, Request::Chat(_)).then(|| {
            super::quality::score(
                &answer.text,
                answer.finish_reason.as_deref(),
                &self.task(task).checks,
                &|retrieval| {
                    let tasks = &self.engine.workflow.tasks;
                    tasks
                        .iter()
                        .position(|task| task.name == retrieval)
                        .map(|task| self.passage_ids(task))
                        .unwrap_or_default()
                },
            )
        });
        let model = if answer.model.is_empty() {
            job.model().to_string()
        } else {
            answer.model
        };
        let started_us = progress.started_us.min(now_us);
        let record = TaskRecord {
            task: job.task,
            agent: job.agent,
            model,
            outcome: Outcome::Ok {
                text: answer.text,
                finish_reason: answer.finish_reason,
            },
            tokens: answer.tokens,
            prompt_tokens: answer.prompt.tokens,
            cached_tokens: answer.prompt.cached,
            latency_ms: millis(now_us - started_us),
            started_ms: millis(started_us),
            finished_ms: millis(now_us),
            attempts: progress.attempts + answer.attempts,
            key,
            replayed: answer.replayed,
            quality,
            passages: Vec::new(),
        };
        let settled = self.dag.settle(task, Verdict::Answered);
        self.finish(task, record);
        self.skip_all(settled.skipped, now_us);
    }

    /// Fails a task no agent can help with.
    fn fail(&mut self, task: usize, agent: &str, error: String, now_us: u64) {
        let record = self.failure_record(task, agent, error, now_us);
        let settled = self.dag.settle(task, Verdict::Failed);
        self.finish(task, record);
        self.skip_all(settled.skipped, now_us);
    }

    /// The record of a task that ends without an answer on `agent`, with
    /// what every agent it went through said.
    fn failure_record(
        &mut self,
        task: usize,
        agent: &str,
        error: String,
        now_us: u64,
    ) -> TaskRecord {
        let Progress {
            started_us,
            attempts,
            tokens,
            mut errors,
        } = self.progress[task].take().unwrap_or(Progress {
            started_us: now_us,
            attempts: 0,
            tokens: 0,
            errors: Vec::new(),
        });
        errors.push(if errors.is_empty() {
            error
        } else {
            format!("{agent}: {error}")
        });
        let started_us = started_us.min(now_us);
        let mut record = TaskRecord::skipped(
            &self.task(task).name,
            agent,
            &self.model_of(agent),
            String::new(),
            started_us,
        );
        record.outcome = Outcome::Failed {
            error: errors.join("; then "),
        };
        record.finished_ms = millis(now_us);
        record.latency_ms = millis(now_us - started_us);
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
    /// The ids of the passages a finished retrieval task gave.
    fn passage_ids(&self, retrieval: usize) -> Vec<String> {
        self.records[retrieval]
            .as_ref()
            .and_then(|record| record.text())
            .map(crate::record::passage_ids)
            .unwrap_or_default()
    }

    /// The ids of the passages task `task` was given: for a retrieval its
    /// own, else those of every retrieval its prompt reads.
    fn given_passages(&self, task: usize, record: &TaskRecord) -> Vec<String> {
        let workflow = self.engine.workflow;
        if let TaskKind::Retrieve(_) = workflow.tasks[task].kind {
            return record
                .text()
                .map(crate::record::passage_ids)
                .unwrap_or_default();
        }
        let mut ids: Vec<String> = Vec::new();
        for (from, edge) in workflow.plan.edges_into(task) {
            if edge.kind == EdgeKind::Reads
                && matches!(workflow.tasks[from].kind, TaskKind::Retrieve(_))
            {
                for id in self.passage_ids(from) {
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
            }
        }
        ids
    }

    fn finish(&mut self, task: usize, mut record: TaskRecord) {
        record.passages = self.given_passages(task, &record);
        self.engine
            .observer
            .on_event(&Event::Finished { record: &record });
        let record = Arc::new(record);
        match self.task(task).kind {
            TaskKind::Chat => self.scope.add(Arc::clone(&record)),
            TaskKind::Retrieve(_) => self.scope.add_passages(Arc::clone(&record)),
        }
        self.records[task] = Some(record);
    }

    fn skip(&mut self, task: usize, reason: String, now_us: u64) {
        let def = self.task(task);
        let record = TaskRecord::skipped(
            &def.name,
            &def.agent,
            &self.model_of(&def.agent),
            reason,
            now_us,
        );
        self.finish(task, record);
    }

    fn skip_all(&mut self, skipped: Vec<(usize, String)>, now_us: u64) {
        for (task, reason) in skipped {
            self.skip(task, reason, now_us);
        }
    }

    /// After an interruption: what was running failed, what never started
    /// is skipped, so the report still accounts for every task.
    pub fn abandon(&mut self, now_us: u64) {
        for task in 0..self.records.len() {
            match self.dag.state(task).clone() {
                TaskState::Running { agent } => {
                    let error = "interrupted before it finished".to_string();
                    let record = self.failure_record(task, &agent, error, now_us);
                    let skipped = self.dag.abandon(task, Ended::Failed);
                    self.finish(task, record);
                    self.skip_all(skipped, now_us);
                }
                TaskState::Queued { .. } | TaskState::Blocked { .. } => {
                    let skipped = self.dag.abandon(task, Ended::Skipped);
                    self.skip(task, "the run was interrupted".into(), now_us);
                    self.skip_all(skipped, now_us);
                }
                TaskState::Done(_) => {}
            }
        }
    }

    /// The records, in the order the file declares the tasks, and the
    /// answers for rendering the output.
    #[must_use]
    pub fn into_results(self) -> (Vec<Arc<TaskRecord>>, Scope) {
        (self.records.into_iter().flatten().collect(), self.scope)
    }
}

/// The same for every run on the same inputs, in any process (a durable
/// run replays to the same key), whichever workflow: they share the
/// inputs' text.
fn affinity(inputs: &serde_json::Map<String, serde_json::Value>) -> u64 {
    use sha2::{Digest, Sha256};
    let text = serde_json::Value::Object(inputs.clone()).to_string();
    let digest = Sha256::digest(text.as_bytes());
    u64::from_le_bytes(
        digest[..8]
            .try_into()
            .expect("a SHA-256 digest has 8 bytes"),
    )
}
