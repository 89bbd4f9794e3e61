//! How one task's request is carried out. The scheduler decides when; an
//! [`Executor`] decides how: over HTTP, from the journal or cache, or (in
//! future) as a step of a durable-execution engine.

use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::events::{Event, Observer};
use crate::check::Type;
use crate::client::{ChatRequest, Client};
use crate::policy::{Backoff, ErrorClass, RetryPolicy};
use crate::router::Router;

/// One task's request to one agent.
#[derive(Debug, Clone)]
pub struct Job {
    pub task: String,
    pub agent: String,
    pub request: ChatRequest,
    /// Overrides the endpoint's own timeout for each attempt.
    pub timeout: Option<Duration>,
    /// Which failures are tried again, how often and how far apart.
    pub retry: RetryPolicy,
    /// The declared shape of the answer, checked when it arrives.
    pub output: Option<Type>,
    /// The agent's declared `context_window`; the router's endpoints may
    /// give a smaller one.
    pub context_window: Option<u32>,
}

impl Job {
    /// The fingerprint of what is asked: agent, model, messages and
    /// sampling parameters. The journal and the cache both key on it, so
    /// an identical request is never paid for twice.
    #[must_use]
    pub fn key(&self) -> String {
        let request = &self.request;
        let canonical = json!([
            self.agent,
            request.model,
            request.system,
            request.prompt,
            request.max_tokens,
            request.temperature,
            request.schema,
        ]);
        let digest = Sha256::digest(canonical.to_string().as_bytes());
        digest.iter().map(|byte| format!("{byte:02x}")).collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub text: String,
    pub model: String,
    pub tokens: u32,
    pub finish_reason: Option<String>,
    pub attempts: u32,
    pub replayed: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub error: String,
    pub attempts: u32,
}

pub trait Executor: Send + Sync {
    fn execute<'a>(
        &'a self,
        job: &'a Job,
        observer: &'a dyn Observer,
    ) -> BoxFuture<'a, Result<Answer, Failure>>;
}

/// The answer as the JSON object the task declared, or what is wrong with
/// it. Models sometimes wrap JSON in a Markdown fence; that is forgiven.
pub(crate) fn typed(text: &str, shape: &Type) -> Result<String, String> {
    let bare = text.trim();
    let bare = bare
        .strip_prefix("```json")
        .or_else(|| bare.strip_prefix("```"))
        .and_then(|inner| inner.strip_suffix("```"))
        .unwrap_or(bare)
        .trim();
    let value: serde_json::Value =
        serde_json::from_str(bare).map_err(|err| format!("it is not JSON ({err})"))?;
    super::inputs::conforms(shape, value).map(|json| json.to_string())
}

/// Sends jobs to the agents' servers, retrying what may pass.
#[derive(Debug)]
pub struct HttpExecutor {
    pub router: Router,
    pub client: Client,
    pub backoff: Backoff,
    /// Stream answers (so progress shows tokens as they come) or take them
    /// whole.
    pub stream: bool,
}

impl Executor for HttpExecutor {
    fn execute<'a>(
        &'a self,
        job: &'a Job,
        observer: &'a dyn Observer,
    ) -> BoxFuture<'a, Result<Answer, Failure>> {
        Box::pin(self.attempts(job, observer))
    }
}

impl HttpExecutor {
    /// Why the job cannot be sent: its prompt and answer do not fit the
    /// agent's context window (the router's, else the agent's own).
    fn too_long(&self, job: &Job) -> Option<String> {
        let window = self
            .router
            .context_window(&job.agent)
            .or(job.context_window)?;
        let request = &job.request;
        crate::tokens::refusal(
            &job.task,
            &job.agent,
            request.system.as_deref(),
            &request.prompt,
            request.max_tokens,
            window,
        )
    }

    async fn attempts(&self, job: &Job, observer: &dyn Observer) -> Result<Answer, Failure> {
        if let Some(error) = self.too_long(job) {
            // Sending it would only fail (or be cut short) on every attempt.
            return Err(Failure { error, attempts: 0 });
        }
        let mut attempt = 0;
        let mut followed: Vec<(&'static str, String)> = Vec::new();
        loop {
            let Some(lease) = self.router.pick(&job.agent) else {
                return Err(Failure {
                    error: format!("agent `{}` has no endpoint", job.agent),
                    attempts: attempt,
                });
            };
            let endpoint = lease.endpoint();
            let mut target = endpoint.target().clone();
            if let Some(timeout) = job.timeout {
                target.timeout = timeout;
            }
            let mut request = job.request.clone();
            if let Some(model) = &endpoint.model {
                request.model = model.clone();
            }
            request.follow_ups.extend(followed.iter().cloned());
            tracing::debug!(task = %job.task, agent = %job.agent, url = %endpoint.url(), attempt, "request");
            let result = if self.stream {
                let mut on_text = |text: &str| {
                    observer.on_event(&Event::Text {
                        task: &job.task,
                        text,
                    });
                };
                self.client.stream(&target, &request, &mut on_text).await
            } else {
                self.client.complete(&target, &request).await
            };
            attempt += 1;
            let error = match result {
                Ok(completion) => {
                    endpoint.record(true);
                    let cut_off = completion.finish_reason.as_deref() == Some("length");
                    let text = match &job.output {
                        None => completion.text,
                        // More attempts would be cut off at the same place.
                        Some(_) if cut_off => {
                            return Err(Failure {
                                error: format!(
                                    "max_tokens ({}) cut the answer off before its JSON was complete; raise the task's max_tokens",
                                    job.request.max_tokens
                                ),
                                attempts: attempt,
                            });
                        }
                        Some(shape) => match typed(&completion.text, shape) {
                            Ok(json) => json,
                            Err(mismatch)
                                if job.retry.again(Some(ErrorClass::InvalidOutput), attempt) =>
                            {
                                tracing::warn!(task = %job.task, attempt, %mismatch, "the answer does not match the declared output; asking again");
                                observer.on_event(&Event::Retrying {
                                    task: &job.task,
                                    attempt,
                                    error: &format!(
                                        "the answer does not match the declared output: {mismatch}"
                                    ),
                                    delay: Duration::ZERO,
                                });
                                followed.push(("assistant", completion.text));
                                followed.push(("user", format!(
                                    "That answer does not match the required JSON shape: {mismatch}. Answer again with only a JSON object of this shape: {}",
                                    shape.json_schema()
                                )));
                                continue;
                            }
                            Err(mismatch) => {
                                return Err(Failure {
                                    error: format!(
                                        "the answer does not match the declared output: {mismatch} (after {attempt} attempts)"
                                    ),
                                    attempts: attempt,
                                });
                            }
                        },
                    };
                    return Ok(Answer {
                        text,
                        model: completion.model,
                        tokens: completion.tokens,
                        finish_reason: completion.finish_reason,
                        attempts: attempt,
                        replayed: false,
                    });
                }
                Err(error) => error,
            };
            if error.is_endpoint_fault() {
                endpoint.record(false);
            }
            drop(lease);
            if !job.retry.again(error.class(), attempt) {
                let error = if attempt > 1 {
                    format!("{error} (after {attempt} attempts)")
                } else {
                    error.to_string()
                };
                return Err(Failure {
                    error,
                    attempts: attempt,
                });
            }
            let delay = job.retry.wait(&self.backoff, attempt, error.retry_after());
            let message = error.to_string();
            tracing::warn!(task = %job.task, agent = %job.agent, attempt, error = %message, ?delay, "retrying");
            observer.on_event(&Event::Retrying {
                task: &job.task,
                attempt,
                error: &message,
                delay,
            });
            tokio::time::sleep(delay).await;
        }
    }
}
