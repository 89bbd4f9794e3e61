//! The seed's response object, field for field, so its clients keep working:
//! what `wfc run --json` prints and `wfc serve` returns.
//!
//! - `total_latency_ms`: wall time from the first request to the last answer.
//! - `sequential_time_ms`: the sum of the task latencies, i.e. the time the
//!   same answers would take one after another.
//! - `speedup_factor`: `sequential_time_ms / total_latency_ms`.
//! - `parallel_efficiency`: `sequential_time_ms / (total_latency_ms × peak
//!   parallelism)`: the share of the run's peak capacity that was busy (1.0
//!   when every task overlapped perfectly).
//!
//! Times are milliseconds, as in the seed, to the microsecond.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::local::Finished;
use crate::record::{Outcome, Quality, TaskRecord, millis};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub workflow_type: String,
    /// Every task answered and the output rendered.
    pub success: bool,
    /// The mean of the task scores, a task without an answer counting 0.
    pub quality_score: f64,
    pub aggregated_content: String,
    pub total_latency_ms: f64,
    pub parallel_efficiency: f64,
    pub metadata: Metadata,
    pub results: Vec<TaskResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub num_tasks: usize,
    pub sequential_time_ms: f64,
    pub speedup_factor: f64,
    /// Prompt tokens of the answers, as the servers counted them, and
    /// how many of those they served from cache (a shared prompt prefix).
    pub prompt_tokens: u64,
    pub cached_prompt_tokens: u64,
    /// The most tasks in flight at once.
    pub peak_parallelism: usize,
    /// Why each task without an answer has none.
    pub errors: BTreeMap<String, String>,
    /// Why the output could not be rendered, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_error: Option<String>,
    pub interrupted: bool,
    /// The run directory holding the journal, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_dir: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    pub task_id: String,
    pub agent_type: String,
    pub model: String,
    pub latency_ms: f64,
    pub tokens: u32,
    /// The prompt's tokens, and those served from the server's cache;
    /// `null` when the answer did not come from a server that says.
    pub prompt_tokens: Option<u32>,
    pub cached_tokens: Option<u32>,
    pub success: bool,
    pub error: Option<String>,
    /// `ok`, `failed` or `skipped`.
    pub status: String,
    pub started_ms: f64,
    pub finished_ms: f64,
    pub attempts: u32,
    /// The answer came from the journal or the cache.
    pub replayed: bool,
    /// `max_tokens` cut the answer off.
    pub truncated: bool,
    /// The answer's score against the task's `expect` checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<Quality>,
    /// The ids of the passages the task was given (a retrieval's own, or
    /// those its prompt read); absent when it was given none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub passages: Vec<String>,
}

impl Report {
    #[must_use]
    pub fn new(workflow: &str, finished: &Finished, output: Result<String, String>) -> Self {
        let sequential: f64 = finished.records.iter().map(|r| r.latency_ms).sum();
        let sequential = (sequential * 1000.0).round() / 1000.0;
        let wall = millis(finished.wall.as_micros() as u64);
        let ratio = |value: f64| if value.is_finite() { round(value) } else { 0.0 };
        let total = |count: fn(&TaskRecord) -> Option<u32>| -> u64 {
            finished
                .records
                .iter()
                .filter_map(|record| count(record))
                .map(u64::from)
                .sum()
        };
        let errors = finished
            .records
            .iter()
            .filter_map(|r| r.error().map(|e| (r.task.clone(), e.to_string())))
            .collect::<BTreeMap<_, _>>();
        // A task skipped by a false condition, or after one, is branching,
        // not failure; a task skipped because another failed goes with a
        // failed task.
        let none_failed = !finished
            .records
            .iter()
            .any(|r| matches!(r.outcome, Outcome::Failed { .. }));
        let (aggregated_content, output_error) = match output {
            Ok(text) => (text, None),
            Err(error) => (String::new(), Some(error)),
        };
        // A task that did not run neither raises nor lowers the score, nor
        // does a search (nothing it returns is scored); a failed task scores 0.
        let scores: Vec<f64> = finished
            .records
            .iter()
            .filter_map(|r| match (&r.outcome, &r.quality) {
                (Outcome::Skipped { .. }, _) | (Outcome::Ok { .. }, None) => None,
                (_, quality) => Some(quality.as_ref().map_or(0.0, |q| q.score)),
            })
            .collect();
        let quality_score = if scores.is_empty() {
            0.0
        } else {
            ratio(scores.iter().sum::<f64>() / scores.len() as f64)
        };
        Report {
            workflow_type: workflow.to_string(),
            success: none_failed && output_error.is_none() && !finished.interrupted,
            quality_score,
            aggregated_content,
            total_latency_ms: wall,
            parallel_efficiency: ratio(
                sequential / (wall * finished.peak_parallelism.max(1) as f64),
            ),
            metadata: Metadata {
                num_tasks: finished.records.len(),
                sequential_time_ms: sequential,
                speedup_factor: ratio(sequential / wall),
                prompt_tokens: total(|r| r.prompt_tokens),
                cached_prompt_tokens: total(|r| r.cached_tokens),
                peak_parallelism: finished.peak_parallelism,
                errors,
                output_error,
                interrupted: finished.interrupted,
                run_dir: None,
            },
            results: finished
                .records
                .iter()
                .map(|record| TaskResult::from(&**record))
                .collect(),
        }
    }
}

fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

impl From<&TaskRecord> for TaskResult {
    fn from(record: &TaskRecord) -> Self {
        let (status, truncated) = match &record.outcome {
            Outcome::Ok { finish_reason, .. } => ("ok", finish_reason.as_deref() == Some("length")),
            Outcome::Failed { .. } => ("failed", false),
            Outcome::Skipped { .. } => ("skipped", false),
        };
        TaskResult {
            task_id: record.task.clone(),
            agent_type: record.agent.clone(),
            model: record.model.clone(),
            latency_ms: record.latency_ms,
            tokens: record.tokens,
            prompt_tokens: record.prompt_tokens,
            cached_tokens: record.cached_tokens,
            success: record.is_ok(),
            error: record.error().map(str::to_string),
            status: status.to_string(),
            started_ms: record.started_ms,
            finished_ms: record.finished_ms,
            attempts: record.attempts,
            replayed: record.replayed,
            truncated,
            quality: record.quality.clone(),
            passages: record.passages.clone(),
        }
    }
}
