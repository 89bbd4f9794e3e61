//! What happens during a run, as it happens: the progress display, the
//! journal and the HTTP event stream all listen to the same events.

use std::time::Duration;

use crate::record::TaskRecord;

#[derive(Debug)]
pub enum Event<'a> {
    /// The task got a slot of `agent` and its request is on its way.
    Started { task: &'a str, agent: &'a str },
    /// A piece of a streamed answer.
    Text { task: &'a str, text: &'a str },
    /// An attempt failed and another follows after `delay`.
    Retrying {
        task: &'a str,
        attempt: u32,
        error: &'a str,
        delay: Duration,
    },
    /// `from` gave up; the task now waits for a slot of `to`.
    FallingBack {
        task: &'a str,
        from: &'a str,
        to: &'a str,
        error: &'a str,
    },
    /// The task is done: answered, failed or skipped.
    Finished { record: &'a TaskRecord },
}

/// Listens to a run. Called from the run's own task, so it must be quick:
/// anything slow belongs behind a channel.
pub trait Observer: Send + Sync {
    fn on_event(&self, event: &Event<'_>);
}

/// No one is listening.
impl Observer for () {
    fn on_event(&self, _: &Event<'_>) {}
}

/// Every listener hears every event, in order.
impl<A: Observer, B: Observer> Observer for (A, B) {
    fn on_event(&self, event: &Event<'_>) {
        self.0.on_event(event);
        self.1.on_event(event);
    }
}

impl<T: Observer + ?Sized> Observer for &T {
    fn on_event(&self, event: &Event<'_>) {
        (**self).on_event(event);
    }
}

impl<T: Observer> Observer for Option<T> {
    fn on_event(&self, event: &Event<'_>) {
        if let Some(observer) = self {
            observer.on_event(event);
        }
    }
}
