//! Retries as a layer around any executor: the task's retry policy decides
//! which failures are tried again, how often and how far apart, and an
//! answer of the wrong shape is sent back with what was wrong. A durable
//! engine that owns retries itself applies the same policy to the bare
//! executor.

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

    fn capacity(&self, agent: &str) -> Option<usize> {
        self.inner.capacity(agent)
    }

    fn model(&self, agent: &str) -> Option<String> {
        self.inner.model(agent)
    }
}

impl<E: Executor> Retrying<E> {
    async fn attempts(&self, job: &Job, observer: &dyn Observer) -> Result<Answer, Failure> {
        let attempt = |job: Job| async move { self.inner.execute(&job, observer).await };
        retried(job, &self.backoff, observer, attempt, tokio::time::sleep).await
    }
}

/// Sends `job` through `attempt` until it is answered or its retry policy
/// gives up, waiting with `wait` between attempts. The engine decides what
/// an attempt and a wait are: the local engine sends and sleeps, a durable
/// engine journals each attempt and waits on a durable timer.
pub async fn retried<Attempt, Sent, Wait, Waited>(
    job: &Job,
    backoff: &Backoff,
    observer: &dyn Observer,
    mut attempt: Attempt,
    mut wait: Wait,
) -> Result<Answer, Failure>
where
    Attempt: FnMut(Job) -> Sent,
    Sent: Future<Output = Result<Answer, Failure>>,
    Wait: FnMut(Duration) -> Waited,
    Waited: Future<Output = ()>,
{
    let mut attempts = 0;
    let mut tokens = 0;
    let mut current = job.clone();
    loop {
        let failure = match attempt(current.clone()).await {
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
            let Request::Chat(request) = &mut current.request;
            request.follow_ups.extend(failure.correction);
        }
        wait(delay).await;
    }
}
