//! Retries as a layer around any executor: the task's retry policy decides
//! which failures are tried again, how often and how far apart, and an
//! answer of the wrong shape is sent back with what was wrong. A durable
//! engine that owns retries itself applies the same policy to the bare
//! executor.

use futures_util::future::BoxFuture;

use super::events::{Event, Observer};
use super::execute::Executor;
use super::job::{Answer, Failure, Job, Request};
use crate::policy::{Backoff, ErrorClass};

pub struct Retrying<E> {
    pub inner: E,
    pub backoff: Backoff,
}

impl<E: Executor> Executor for Retrying<E> {
    fn execute<'a>(
        &'a self,
        job: &'a Job,
        observer: &'a dyn Observer,
    ) -> BoxFuture<'a, Result<Answer, Failure>> {
        Box::pin(self.attempts(job, observer))
    }

    fn capacity(&self, agent: &str) -> Option<usize> {
        self.inner.capacity(agent)
    }

    fn model(&self, agent: &str) -> Option<String> {
        self.inner.model(agent)
    }
}

impl<E: Executor> Retrying<E> {
    async fn attempts(&self, job: &Job, observer: &dyn Observer) -> Result<Answer, Failure> {
        let mut attempts = 0;
        let mut tokens = 0;
        let mut next = None::<Job>;
        loop {
            let current = next.as_ref().unwrap_or(job);
            let failure = match self.inner.execute(current, observer).await {
                Ok(answer) => {
                    return Ok(Answer {
                        attempts: attempts + answer.attempts,
                        ..answer
                    });
                }
                Err(failure) => failure,
            };
            attempts += failure.attempts;
            tokens += failure.tokens;
            if failure.attempts == 0 || !job.retry.again(failure.class, attempts) {
                return Err(Failure {
                    error: if attempts > 1 {
                        format!("{} (after {attempts} attempts)", failure.error)
                    } else {
                        failure.error
                    },
                    attempts,
                    tokens,
                    ..failure
                });
            }
            // A wrong shape is corrected in the conversation at once; the
            // server is not at fault.
            let delay = if failure.class == Some(ErrorClass::InvalidOutput) {
                std::time::Duration::ZERO
            } else {
                job.retry.wait(&self.backoff, attempts, failure.retry_after)
            };
            tracing::warn!(task = %job.task, agent = %job.agent, attempt = attempts, error = %failure.error, ?delay, "retrying");
            observer.on_event(&Event::Retrying {
                task: &job.task,
                attempt: attempts,
                error: &failure.error,
                delay,
            });
            if !failure.correction.is_empty() {
                let mut corrected = current.clone();
                let Request::Chat(request) = &mut corrected.request;
                request.follow_ups.extend(failure.correction);
                next = Some(corrected);
            }
            tokio::time::sleep(delay).await;
        }
    }
}
