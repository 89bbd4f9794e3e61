//! How long to wait before the next attempt: exponential backoff with full
//! jitter, so that many clients failing together do not retry in lockstep,
//! unless the server said when to come back.

use std::time::Duration;

use super::CallError;

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
    /// The wait after failed attempt number `attempt` (0 for the first).
    pub fn delay(&self, attempt: u32, error: &CallError) -> Duration {
        if let Some(asked) = error.retry_after() {
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

    fn connect_error() -> CallError {
        CallError::Connect {
            url: "u".into(),
            reason: "refused".into(),
        }
    }

    #[test]
    fn waits_grow_and_stay_under_the_ceiling() {
        let backoff = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_millis(500),
        };
        for attempt in 0..10 {
            let ceiling = Duration::from_millis(100 * (1 << attempt)).min(backoff.max);
            let delay = backoff.delay(attempt, &connect_error());
            assert!(delay <= ceiling, "attempt {attempt}: {delay:?}");
        }
    }

    #[test]
    fn retry_after_wins_but_is_capped() {
        let backoff = Backoff::default();
        let limited = |seconds| CallError::Status {
            url: "u".into(),
            status: 429,
            message: String::new(),
            retry_after: Some(Duration::from_secs(seconds)),
        };
        assert_eq!(backoff.delay(0, &limited(2)), Duration::from_secs(2));
        assert_eq!(backoff.delay(0, &limited(3600)), backoff.max);
    }
}
