//! Retries: the task's retry policy decides which failures are tried
//! again, how often and how far apart, and an answer of the wrong shape is
//! sent back with what was wrong. [`retried`] is that loop for any engine,
//! which says what an attempt and a wait are ([`Attempts`]); [`Retrying`]
//! is the local engine's layer around any executor.

use std::time::Duration;

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

    fn capacity(&self, agent: &str) -> crate::router::Capacity {
        self.inner.capacity(agent)
    }

    fn model(&self, agent: &str) -> Option<String> {
        self.inner.model(agent)
    }
}

impl<E: Executor> Retrying<E> {
    async fn attempts(&self, job: &Job, observer: &dyn Observer) -> Result<Answer, Failure> {
        retried(self, job, &self.backoff, observer).await
    }
}

/// What an attempt and a wait are on an engine: the local engine sends and
/// sleeps; a durable engine journals each attempt and waits on a durable
/// timer.
pub trait Attempts: Sync {
    fn attempt<'a>(
        &'a self,
        job: &'a Job,
        observer: &'a dyn Observer,
    ) -> impl Future<Output = Result<Answer, Failure>> + Send + 'a;

    fn wait(&self, delay: Duration) -> impl Future<Output = ()> + Send + '_;
}

impl<E: Executor> Attempts for Retrying<E> {
    fn attempt<'a>(
        &'a self,
        job: &'a Job,
        observer: &'a dyn Observer,
    ) -> impl Future<Output = Result<Answer, Failure>> + Send + 'a {
        self.inner.execute(job, observer)
    }

    fn wait(&self, delay: Duration) -> impl Future<Output = ()> + Send + '_ {
        tokio::time::sleep(delay)
    }
}

/// Sends `job` through `steps` until it is answered or its retry policy
/// gives up, waiting between attempts as the policy and the server say.
pub async fn retried(
    steps: &impl Attempts,
    job: &Job,
    backoff: &Backoff,
    observer: &dyn Observer,
) -> Result<Answer, Failure> {
    let mut attempts = 0;
    let mut tokens = 0;
    // The job with the turns that correct wrong shapes, once there are any.
    let mut corrected: Option<Job> = None;
    loop {
        let current = corrected.as_ref().unwrap_or(job);
        let failure = match steps.attempt(current, observer).await {
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
            Duration::ZERO
        } else {
            job.retry.wait(backoff, attempts, failure.retry_after)
        };
        tracing::warn!(task = %job.task, agent = %job.agent, attempt = attempts, error = %failure.error, ?delay, "retrying");
        observer.on_event(&Event::Retrying {
            task: &job.task,
            attempt: attempts,
            error: &failure.error,
            delay,
        });
        if !failure.correction.is_empty() {
            let next = corrected.get_or_insert_with(|| job.clone());
            if let Request::Chat(request) = &mut next.request {
                request.follow_ups.extend(failure.correction);
            }
        }
        steps.wait(delay).await;
    }
}
