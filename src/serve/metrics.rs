//! Prometheus metrics: workflow and task latency histograms, runs in
//! flight, failures, and tokens (completion, prompt, and prompt served from
//! the servers' cache). Labels are workflow, agent and outcome
//! names only, never anything a caller sent.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::record::Outcome;
use crate::run::{Event, Observer};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct WorkflowLabels {
    pub workflow: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct AgentLabels {
    pub agent: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct TaskLabels {
    pub agent: String,
    pub status: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

pub(super) struct Metrics {
    registry: Registry,
    pub runs: Family<WorkflowLabels, Counter>,
    pub run_seconds: Histograms<WorkflowLabels>,
    pub in_flight: Gauge<i64, std::sync::atomic::AtomicI64>,
    tasks: Family<TaskLabels, Counter>,
    task_seconds: Histograms<AgentLabels>,
    tokens: Family<AgentLabels, Counter<u64, AtomicU64>>,
    prompt_tokens: Family<AgentLabels, Counter<u64, AtomicU64>>,
    cached_prompt_tokens: Family<AgentLabels, Counter<u64, AtomicU64>>,
}

fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.05, 2.0, 12))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("wfc");
        let runs = Family::<WorkflowLabels, Counter>::default();
        let run_seconds: Histograms<WorkflowLabels> = Family::new_with_constructor(seconds);
        let in_flight = Gauge::default();
        let tasks = Family::<TaskLabels, Counter>::default();
        let task_seconds: Histograms<AgentLabels> = Family::new_with_constructor(seconds);
        let tokens = Family::<AgentLabels, Counter<u64, AtomicU64>>::default();
        let prompt_tokens = Family::<AgentLabels, Counter<u64, AtomicU64>>::default();
        let cached_prompt_tokens = Family::<AgentLabels, Counter<u64, AtomicU64>>::default();
        registry.register("workflow_runs", "Workflow runs by outcome", runs.clone());
        registry.register(
            "workflow_duration_seconds",
            "Wall time of workflow runs",
            run_seconds.clone(),
        );
        registry.register(
            "runs_in_flight",
            "Workflow runs in progress",
            in_flight.clone(),
        );
        registry.register("tasks", "Finished tasks by agent and status", tasks.clone());
        registry.register(
            "task_duration_seconds",
            "Time tasks held their agent's slot",
            task_seconds.clone(),
        );
        registry.register(
            "completion_tokens",
            "Completion tokens by agent",
            tokens.clone(),
        );
        registry.register(
            "prompt_tokens",
            "Prompt tokens by agent, as the servers counted them",
            prompt_tokens.clone(),
        );
        registry.register(
            "cached_prompt_tokens",
            "Prompt tokens the servers served from their cache of a shared prompt prefix, by agent",
            cached_prompt_tokens.clone(),
        );
        Metrics {
            registry,
            runs,
            run_seconds,
            in_flight,
            tasks,
            task_seconds,
            tokens,
            prompt_tokens,
            cached_prompt_tokens,
        }
    }
}

impl Metrics {
    pub(super) fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// Counts each task of a run as it finishes.
pub(super) struct TaskMetrics(pub Arc<Metrics>);

impl Observer for TaskMetrics {
    fn on_event(&self, event: &Event<'_>) {
        let Event::Finished { record } = event else {
            return;
        };
        let status = match record.outcome {
            Outcome::Ok { .. } => "ok",
            Outcome::Failed { .. } => "failed",
            Outcome::Skipped { .. } => "skipped",
        };
        let agent = AgentLabels {
            agent: record.agent.clone(),
        };
        self.0
            .tasks
            .get_or_create(&TaskLabels {
                agent: record.agent.clone(),
                status: status.into(),
            })
            .inc();
        if status != "skipped" {
            self.0
                .task_seconds
                .get_or_create(&agent)
                .observe(record.latency_ms / 1000.0);
        }
        self.0
            .tokens
            .get_or_create(&agent)
            .inc_by(u64::from(record.tokens));
        for (counter, count) in [
            (&self.0.prompt_tokens, record.prompt_tokens),
            (&self.0.cached_prompt_tokens, record.cached_tokens),
        ] {
            if let Some(count) = count {
                counter.get_or_create(&agent).inc_by(u64::from(count));
            }
        }
    }
}
