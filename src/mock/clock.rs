//! When the mock's answers leave, to the tenth of a millisecond.
//!
//! tokio's timer counts whole milliseconds and rounds every deadline up, so
//! a 20 ms answer left after about 21 ms: 5% added to every measurement of
//! the client against the mock. One thread here waits on a condition
//! variable, whose timeout the kernel keeps to within its timer slack
//! (50 µs by default), and wakes each sleeper when its instant comes.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tokio::sync::oneshot;

/// A timer shared by all of one mock server's replies; its thread ends
/// when the clock is dropped.
pub(super) struct Clock {
    shared: Arc<(Mutex<Timers>, Condvar)>,
}

#[derive(Default)]
struct Timers {
    due: BinaryHeap<Reverse<Alarm>>,
    stopped: bool,
}

/// Ordered by instant alone: alarms due at one instant all ring in the
/// same pass.
struct Alarm {
    at: Instant,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Alarm {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}

impl Eq for Alarm {}

impl PartialOrd for Alarm {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Alarm {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.at.cmp(&other.at)
    }
}

impl Clock {
    /// Starts the clock's thread; without one (the system refuses a
    /// thread), sleeps fall back to tokio's timer.
    pub(super) fn start() -> Clock {
        let shared = Arc::new((Mutex::new(Timers::default()), Condvar::new()));
        let ticking = Arc::clone(&shared);
        let started = std::thread::Builder::new()
            .name("mock-clock".into())
            .spawn(move || ring(&ticking));
        if let Err(err) = started {
            tracing::warn!("mock server: no clock thread ({err}); answers keep tokio's 1 ms steps");
            lock(&shared.0).stopped = true;
        }
        Clock { shared }
    }

    /// Waits until `at`.
    pub(super) async fn sleep_until(&self, at: Instant) {
        if at <= Instant::now() {
            return;
        }
        let (wake, woken) = oneshot::channel();
        if !self.set(at, wake) {
            tokio::time::sleep_until(at.into()).await;
            return;
        }
        // The sender is only dropped after sending, or when the clock
        // stops; either way the time has come or the server is going.
        let _ = woken.await;
    }

    /// Sets an alarm for `at`; false when the clock has no thread to ring it.
    fn set(&self, at: Instant, wake: oneshot::Sender<()>) -> bool {
        let (timers, bell) = &*self.shared;
        let mut timers = lock(timers);
        if timers.stopped {
            return false;
        }
        let sooner = timers.due.peek().is_none_or(|Reverse(next)| at < next.at);
        timers.due.push(Reverse(Alarm { at, wake }));
        if sooner {
            bell.notify_one();
        }
        true
    }
}

impl Drop for Clock {
    fn drop(&mut self) {
        let (timers, bell) = &*self.shared;
        let mut timers = lock(timers);
        timers.stopped = true;
        bell.notify_one();
    }
}

/// The clock's thread: wakes each alarm when its instant comes.
fn ring(shared: &(Mutex<Timers>, Condvar)) {
    let (timers, bell) = shared;
    let mut timers = lock(timers);
    while !timers.stopped {
        let now = Instant::now();
        while timers
            .due
            .peek()
            .is_some_and(|Reverse(next)| next.at <= now)
        {
            if let Some(Reverse(alarm)) = timers.due.pop() {
                // A sleeper that gave up (its connection closed) is gone.
                let _ = alarm.wake.send(());
            }
        }
        timers = match timers.due.peek() {
            Some(Reverse(next)) => {
                let wait = next.at.saturating_duration_since(now);
                bell.wait_timeout(timers, wait)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => bell.wait(timers).unwrap_or_else(PoisonError::into_inner),
        };
    }
}

/// A poisoned lock only means a panic elsewhere; the alarms are still valid.
fn lock(timers: &Mutex<Timers>) -> MutexGuard<'_, Timers> {
    timers.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn sleepers_wake_in_order_and_not_before_their_instant() {
        let clock = Arc::new(Clock::start());
        let start = Instant::now();
        let woke = Arc::new(Mutex::new(Vec::new()));
        let sleepers: Vec<_> = [30u64, 10, 20, 10]
            .into_iter()
            .enumerate()
            .map(|(i, ms)| {
                let (clock, woke) = (Arc::clone(&clock), Arc::clone(&woke));
                tokio::spawn(async move {
                    let at = start + Duration::from_millis(ms);
                    clock.sleep_until(at).await;
                    assert!(Instant::now() >= at, "sleeper {i} woke early");
                    woke.lock().unwrap().push(ms);
                })
            })
            .collect();
        for sleeper in sleepers {
            sleeper.await.expect("a sleeper");
        }
        assert_eq!(*woke.lock().unwrap(), [10, 10, 20, 30]);
    }

    #[tokio::test]
    async fn an_instant_already_past_does_not_wait() {
        let clock = Clock::start();
        let past = Instant::now();
        tokio::time::timeout(Duration::from_millis(500), clock.sleep_until(past))
            .await
            .expect("no wait");
    }
}
