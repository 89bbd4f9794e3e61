//! Answers that are already paid for: the journal of an earlier attempt at
//! this run (`--resume`) and the content-addressed cache (`--cache`), both
//! keyed by [`Job::key`]. Only what neither holds reaches a server. A
//! search's passages are resumed from the journal but never cached.

use std::collections::HashMap;
use std::path::PathBuf;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::events::Observer;
use super::execute::Executor;
use super::job::{Answer, Failure, Job, Request};
use crate::record::{Outcome, TaskRecord};

pub struct Stored<E> {
    inner: E,
    journal: HashMap<String, CachedAnswer>,
    cache: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CachedAnswer {
    text: String,
    model: String,
    tokens: u32,
    finish_reason: Option<String>,
}

impl<E: Executor> Stored<E> {
    pub fn new(inner: E, journal: &[TaskRecord], cache: Option<PathBuf>) -> Self {
        let journal = journal
            .iter()
            .filter_map(|record| match (&record.key, &record.outcome) {
                (
                    Some(key),
                    Outcome::Ok {
                        text,
                        finish_reason,
                    },
                ) => Some((
                    key.clone(),
                    CachedAnswer {
                        text: text.clone(),
                        model: record.model.clone(),
                        tokens: record.tokens,
                        finish_reason: finish_reason.clone(),
                    },
                )),
                _ => None,
            })
            .collect();
        Stored {
            inner,
            journal,
            cache,
        }
    }

    pub fn inner(&self) -> &E {
        &self.inner
    }

    fn cache_path(&self, key: &str) -> Option<PathBuf> {
        self.cache
            .as_ref()
            .map(|dir| dir.join(format!("{key}.json")))
    }

    fn lookup(&self, key: &str) -> Option<CachedAnswer> {
        if let Some(answer) = self.journal.get(key) {
            return Some(answer.clone());
        }
        let bytes = std::fs::read(self.cache_path(key)?).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    async fn remember(&self, key: &str, answer: &Answer) {
        let Some(path) = self.cache_path(key) else {
            return;
        };
        let entry = CachedAnswer {
            text: answer.text.clone(),
            model: answer.model.clone(),
            tokens: answer.tokens,
            finish_reason: answer.finish_reason.clone(),
        };
        if let Err(err) = super::journal::keep_json(&path, &entry).await {
            tracing::warn!(cache = %path.display(), %err, "cannot write to the cache");
        }
    }
}

impl<E: Executor> Executor for Stored<E> {
    fn execute<'a>(
        &'a self,
        job: &'a Job,
        observer: &'a dyn Observer,
    ) -> BoxFuture<'a, Result<Answer, Failure>> {
        Box::pin(async move {
            if self.journal.is_empty() && self.cache.is_none() {
                // Nothing is stored: no key to compute.
                return self.inner.execute(job, observer).await;
            }
            let key = job.key();
            // A search's passages are kept for the run they were given to
            // (its journal), never across runs: the corpus may change.
            let searched = matches!(job.request, Request::Retrieve(_));
            let stored = if searched {
                self.journal.get(&key).cloned()
            } else {
                self.lookup(&key)
            };
            if let Some(stored) = stored {
                return Ok(Answer {
                    text: stored.text,
                    model: stored.model,
                    tokens: stored.tokens,
                    finish_reason: stored.finish_reason,
                    attempts: 0,
                    replayed: true,
                    prompt: super::job::PromptUsage::default(),
                });
            }
            let answer = self.inner.execute(job, observer).await?;
            if !searched {
                self.remember(&key, &answer).await;
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
