//! What to do when a task's request fails: the classes of failure a retry
//! policy names, the policy itself, and how long to wait between attempts.
//! Shared by the checker (which reads policies), the client (which
//! classifies its errors) and the executors (which apply them).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The kinds of failure a retry policy names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// No answer in time (also HTTP 408).
    Timeout,
    /// The connection could not be made, or broke during the answer.
    Connection,
    /// HTTP 5xx, or a body that is not a chat completion.
    ServerError,
    /// HTTP 429.
    RateLimited,
    /// A typed answer that does not match its declaration.
    InvalidOutput,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 5] = [
        ErrorClass::Timeout,
        ErrorClass::Connection,
        ErrorClass::ServerError,
        ErrorClass::RateLimited,
        ErrorClass::InvalidOutput,
    ];

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Timeout => "timeout",
            ErrorClass::Connection => "connection",
            ErrorClass::ServerError => "server_error",
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::InvalidOutput => "invalid_output",
        }
    }

    #[must_use]
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|class| class.name() == name)
    }
}

/// How waits between attempts grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Spacing {
    /// Doubling, with jitter.
    Exponential,
    /// The same wait each time.
    Constant,
    /// At once (a server's `Retry-After` is still honoured).
    Immediate,
}

/// Which failures a task retries, how often and how far apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    pub on: Vec<ErrorClass>,
    /// Attempts in all, the first included.
    pub attempts: u32,
    pub spacing: Spacing,
}

impl RetryPolicy {
    /// What `retries = N` means: every class, N more attempts, doubling waits.
    #[must_use]
    pub fn retries(retries: u32) -> Self {
        RetryPolicy {
            on: ErrorClass::ALL.to_vec(),
            attempts: retries + 1,
            spacing: Spacing::Exponential,
        }
    }

    /// How long to wait after failed attempt number `attempt` (1 for the
    /// first) before the next, honouring the server's `Retry-After`.
    #[must_use]
    pub fn wait(&self, backoff: &Backoff, attempt: u32, retry_after: Option<Duration>) -> Duration {
        match self.spacing {
            Spacing::Exponential => backoff.delay(attempt.saturating_sub(1), retry_after),
            Spacing::Constant => retry_after.unwrap_or(backoff.base),
            Spacing::Immediate => retry_after.unwrap_or_default(),
        }
        .min(backoff.max)
    }

    /// Whether a failure of `class` after `attempt` attempts is tried again.
    #[must_use]
    pub fn again(&self, class: Option<ErrorClass>, attempt: u32) -> bool {
        attempt < self.attempts && class.is_some_and(|class| self.on.contains(&class))
    }
}

/// How long to wait before the next attempt: exponential backoff with full
/// jitter, so that many clients failing together do not retry in lockstep,
/// unless the server said when to come back.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// The ceiling of the first wait; each later wait doubles it.
    pub base: Duration,
    /// No wait is longer, whatever the attempt number or `Retry-After`.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(250),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The wait after failed attempt number `attempt` (0 for the first), or
    /// what the server asked for with `Retry-After`, within the ceiling.
    #[must_use]
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(asked) = retry_after {
            return asked.min(self.max);
        }
        let ceiling = self
            .base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max);
        ceiling.mul_f64(fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_and_stay_under_the_ceiling() {
        let backoff = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_millis(500),
        };
        for attempt in 0..10 {
            let ceiling = Duration::from_millis(100 * (1 << attempt)).min(backoff.max);
            let delay = backoff.delay(attempt, None);
            assert!(delay <= ceiling, "attempt {attempt}: {delay:?}");
        }
    }

    #[test]
    fn retry_after_wins_but_is_capped() {
        let backoff = Backoff::default();
        let asked = |seconds| Some(Duration::from_secs(seconds));
        assert_eq!(backoff.delay(0, asked(2)), Duration::from_secs(2));
        assert_eq!(backoff.delay(0, asked(3600)), backoff.max);
    }

    #[test]
    fn retries_mean_every_class_and_that_many_more_attempts() {
        let policy = RetryPolicy::retries(2);
        assert_eq!(policy.attempts, 3);
        assert!(policy.again(Some(ErrorClass::RateLimited), 2));
        assert!(!policy.again(Some(ErrorClass::RateLimited), 3));
        assert!(!policy.again(None, 1));
    }
}
