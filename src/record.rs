//! What became of one task: the unit the journal stores, the report lists
//! and the templates read. Below both the runner and the renderer, which
//! share it.

use serde::{Deserialize, Serialize};

/// Microseconds as the milliseconds reports show: the seed's field names
/// and units, with the precision a 20 ms request needs.
#[must_use]
pub fn millis(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub task: String,
    /// The agent that answered: the task's own, or a fallback.
    pub agent: String,
    pub model: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub tokens: u32,
    /// The prompt's tokens as the server counted them, and how many of
    /// them it served from its cache of an earlier prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u32>,
    /// How long the task held its slot, retries included, in
    /// milliseconds to the microsecond.
    pub latency_ms: f64,
    /// When it started and finished, in milliseconds from the start of
    /// the run.
    pub started_ms: f64,
    pub finished_ms: f64,
    pub attempts: u32,
    /// The request's fingerprint, shared by the journal and the cache.
    pub key: Option<String>,
    /// Whether the answer came from the journal or the cache instead of a
    /// server.
    #[serde(default)]
    pub replayed: bool,
    /// How the answer measures up to the task's `expect` checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<Quality>,
    /// The ids of the passages the task was given: a retrieval's own, or
    /// those of the retrievals its prompt read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub passages: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Ok {
        text: String,
        /// `length` when `max_tokens` cut the answer off.
        finish_reason: Option<String>,
    },
    Failed {
        error: String,
    },
    Skipped {
        reason: String,
    },
}

impl TaskRecord {
    /// A task that never ran.
    #[must_use]
    pub fn skipped(task: &str, agent: &str, model: &str, reason: String, at_us: u64) -> Self {
        TaskRecord {
            task: task.to_string(),
            agent: agent.to_string(),
            model: model.to_string(),
            outcome: Outcome::Skipped { reason },
            tokens: 0,
            prompt_tokens: None,
            cached_tokens: None,
            latency_ms: 0.0,
            started_ms: millis(at_us),
            finished_ms: millis(at_us),
            attempts: 0,
            key: None,
            replayed: false,
            quality: None,
            passages: Vec::new(),
        }
    }

    #[must_use]
    pub fn is_ok(&self) -> bool {
        matches!(self.outcome, Outcome::Ok { .. })
    }

    #[must_use]
    pub fn text(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Ok { text, .. } => Some(text),
            _ => None,
        }
    }

    /// Why the task has no answer, if it has none.
    #[must_use]
    pub fn error(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Ok { .. } => None,
            Outcome::Failed { error } => Some(error),
            Outcome::Skipped { reason } => Some(reason),
        }
    }
}

/// How an answer measures up to its task's `expect` checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// From 0 to 1.
    pub score: f64,
    /// The checks the answer failed, as written in the file.
    pub failed: Vec<String>,
}

/// One passage a retrieval task found. A retrieval's answer is the JSON
/// array of its passages, best first, so that it is journaled, reported and
/// read by templates like any typed answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Passage {
    /// Unique in its corpus, for citing: `lumbar_mri#3`.
    pub id: String,
    /// The document it comes from, relative to the corpus.
    pub source: String,
    /// The document's title and the section's heading.
    pub title: String,
    pub text: String,
    /// How well it matches the query; comparable only within one answer.
    pub score: f64,
    /// The document's other fields (`metadata = [...]` in the corpus).
    #[serde(flatten)]
    pub metadata: std::collections::BTreeMap<String, String>,
}

impl Passage {
    /// A score as reports show it: four decimals, enough to rank by,
    /// without the noise of `f32` arithmetic.
    #[must_use]
    pub fn rounded(score: f64) -> f64 {
        (score * 10_000.0).round() / 10_000.0
    }
}

/// The ids of the passages in a retrieval's answer (none when the text is
/// not one).
#[must_use]
pub fn passage_ids(answer: &str) -> Vec<String> {
    #[derive(Deserialize)]
    struct Id {
        id: String,
    }
    serde_json::from_str::<Vec<Id>>(answer)
        .map(|ids| ids.into_iter().map(|passage| passage.id).collect())
        .unwrap_or_default()
}
