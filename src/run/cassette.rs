//! Cassettes: the requests of real runs and the answers real models gave,
//! one file per request under the request's key ([`Job::key`], the key of
//! the journal and the cache), so that tests can be run again in CI
//! without a GPU on answers that models really gave.
//!
//! [`Recorder`] writes a cassette around any executor; [`Replayer`] answers
//! from one and explains every request it has no recording of: the
//! nearest recording and what changed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::events::Observer;
use super::execute::Executor;
use super::job::{Answer, Failure, Job, Request};
use crate::check::conform::typed;
use crate::client::ChatRequest;

/// One request and its answer, as a cassette keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recording {
    /// The request's key (with its version).
    pub key: String,
    /// The key without the answer's schema: a recording made before the
    /// schema changed is found under it, and checked against the new one.
    pub loose_key: String,
    pub task: String,
    pub agent: String,
    /// What was asked, without correction turns.
    pub request: ChatRequest,
    pub answer: Answer,
    /// Whether the prompt and the answer were written through `redact`.
    pub redacted: bool,
}

impl Recording {
    /// The recording of a chat job's answer; searches are not recorded, as
    /// a replay searches the same corpora again.
    fn of(job: &Job, answer: &Answer, redact: bool) -> Option<Recording> {
        let text = |text: &str| {
            if redact {
                crate::template::redact(text)
            } else {
                text.to_string()
            }
        };
        let mut request = job.chat_request()?.clone();
        request.follow_ups.clear();
        request.prompt = text(&request.prompt);
        Some(Recording {
            key: job.key(),
            loose_key: job.key_with(None),
            task: job.task.clone(),
            agent: job.agent.clone(),
            request,
            answer: Answer {
                text: text(&answer.text),
                ..answer.clone()
            },
            redacted: redact,
        })
    }
}

/// Why a cassette cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CassetteError {
    #[error("cannot read the cassette `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{}` is not a recording of this version of wfc: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },
}

/// Writes the answers `inner` gets, each beside its request.
pub struct Recorder<E> {
    inner: E,
    dir: PathBuf,
    redact: bool,
}

impl<E> Recorder<E> {
    /// Records into `dir` (made if missing); with `redact`, prompts and
    /// answers are written through the `redact` filter.
    pub fn new(inner: E, dir: &Path, redact: bool) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Recorder {
            inner,
            dir: dir.to_path_buf(),
            redact,
        })
    }
}

impl<E: Executor> Executor for Recorder<E> {
    fn execute<'a>(
        &'a self,
        job: &'a Job,
        observer: &'a dyn Observer,
    ) -> BoxFuture<'a, Result<Answer, Failure>> {
        Box::pin(async move {
            let answer = self.inner.execute(job, observer).await?;
            let Some(recording) = Recording::of(job, &answer, self.redact) else {
                return Ok(answer);
            };
            let path = self.dir.join(format!("{}.json", recording.key));
            if let Err(err) = super::journal::keep_json(&path, &recording).await {
                tracing::warn!(cassette = %path.display(), %err, "cannot record an answer");
            }
            Ok(answer)
        })
    }

    fn capacity(&self, agent: &str) -> crate::router::Capacity {
        self.inner.capacity(agent)
    }

    fn model(&self, agent: &str) -> Option<String> {
        self.inner.model(agent)
    }
}

/// Answers every request from a cassette.
pub struct Replayer {
    recordings: BTreeMap<String, Recording>,
    used: Mutex<BTreeSet<String>>,
    missed: Mutex<Vec<String>>,
}

impl Replayer {
    /// Reads every recording of the cassette `dir`.
    pub fn open(dir: &Path) -> Result<Replayer, CassetteError> {
        let read = |path: &Path, source| CassetteError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut recordings = BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(|err| read(dir, err))? {
            let path = entry.map_err(|err| read(dir, err))?.path();
            if path.extension().is_none_or(|ext| ext != "json") {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|err| read(&path, err))?;
            let recording: Recording =
                serde_json::from_slice(&bytes).map_err(|err| CassetteError::Malformed {
                    path: path.clone(),
                    reason: err.to_string(),
                })?;
            recordings.insert(recording.key.clone(), recording);
        }
        Ok(Replayer {
            recordings,
            used: Mutex::new(BTreeSet::new()),
            missed: Mutex::new(Vec::new()),
        })
    }

    /// The recordings no request has asked for: stale, for `--replay-check`.
    #[must_use]
    pub fn unused(&self) -> Vec<&Recording> {
        let used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        self.recordings
            .values()
            .filter(|recording| !used.contains(&recording.key))
            .collect()
    }

    /// The tasks whose requests had no recording, in the order asked.
    #[must_use]
    pub fn missed(&self) -> Vec<String> {
        self.missed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn replay(&self, job: &Job) -> Result<Answer, Failure> {
        let Some(request) = job.chat_request() else {
            return Err(Failure::permanent(
                format!(
                    "a cassette holds answers, not passages: `{}` must search corpus `{}` itself",
                    job.task, job.agent
                ),
                0,
            ));
        };
        let key = job.key();
        let found = self.recordings.get(&key).or_else(|| {
            // Recorded under another schema: its answer must fit this one.
            let loose = job.key_with(None);
            self.recordings.values().find(|r| r.loose_key == loose)
        });
        let Some(recording) = found else {
            self.missed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(job.task.clone());
            return Err(Failure::permanent(self.explain_miss(job, request), 0));
        };
        self.used
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(recording.key.clone());
        if let Some(shape) = &job.output
            && let Err(mismatch) = typed(&recording.answer.text, shape)
        {
            return Err(Failure::permanent(
                format!(
                    "drift: the recorded answer of `{}` no longer fits its declared shape ({mismatch}); record it again",
                    job.task
                ),
                0,
            ));
        }
        Ok(Answer {
            attempts: 0,
            replayed: true,
            prompt: super::job::PromptUsage::default(),
            ..recording.answer.clone()
        })
    }

    /// What the cassette holds nearest to `job`, and how it differs.
    fn explain_miss(&self, job: &Job, request: &ChatRequest) -> String {
        let nearest = self
            .recordings
            .values()
            .filter(|r| r.task == job.task)
            .max_by(|a, b| {
                let score = |r: &Recording| {
                    similar::TextDiff::from_chars(
                        r.request.prompt.as_str(),
                        request.prompt.as_str(),
                    )
                    .ratio()
                };
                score(a).total_cmp(&score(b))
            });
        let Some(nearest) = nearest else {
            return format!(
                "the cassette has no recording of task `{}`; record it with `wfc test --live --record DIR`",
                job.task
            );
        };
        let mut changed = Vec::new();
        let mut compare = |what: &str, was: String, now: String| {
            if was != now {
                changed.push(format!("{what}: {was} → {now}"));
            }
        };
        compare("agent", nearest.agent.clone(), job.agent.clone());
        compare(
            "model",
            nearest.request.model.clone(),
            request.model.clone(),
        );
        compare(
            "max_tokens",
            nearest.request.max_tokens.to_string(),
            request.max_tokens.to_string(),
        );
        compare(
            "temperature",
            format!("{:?}", nearest.request.temperature),
            format!("{:?}", request.temperature),
        );
        compare(
            "system prompt",
            format!("{:?}", nearest.request.system),
            format!("{:?}", request.system),
        );
        let mut text = format!(
            "the cassette has no recording of this request of task `{}`; the nearest differs in",
            job.task
        );
        if nearest.request.prompt != request.prompt {
            let diff = similar::TextDiff::from_lines(
                nearest.request.prompt.as_str(),
                request.prompt.as_str(),
            );
            changed.push(format!(
                "the prompt{}:\n{}",
                if nearest.redacted {
                    " (recorded redacted)"
                } else {
                    ""
                },
                diff.unified_diff()
                    .context_radius(1)
                    .missing_newline_hint(false)
            ));
        }
        for change in changed {
            text.push_str("\n  ");
            text.push_str(&change.replace('\n', "\n    "));
        }
        text
    }
}

impl Executor for Replayer {
    fn execute<'a>(
        &'a self,
        job: &'a Job,
        _observer: &'a dyn Observer,
    ) -> BoxFuture<'a, Result<Answer, Failure>> {
        Box::pin(async move { self.replay(job) })
    }
}

/// A replay that still searches corpora: chat jobs are answered from the
/// cassette, searches by `searcher` (the corpora are local, or the
/// deployment's engines).
pub struct Replaying<'a, S> {
    pub cassette: &'a Replayer,
    pub searcher: S,
}

impl<S: Executor> Executor for Replaying<'_, S> {
    fn execute<'a>(
        &'a self,
        job: &'a Job,
        observer: &'a dyn Observer,
    ) -> BoxFuture<'a, Result<Answer, Failure>> {
        match job.request {
            Request::Retrieve(_) => self.searcher.execute(job, observer),
            Request::Chat(_) => self.cassette.execute(job, observer),
        }
    }
}
