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

/// An [`Event`] as data, for an engine whose run happens in another
/// process: it is kept with the run and heard later by the same observers.
/// Streamed text stays in the process that generates it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    Started {
        task: String,
        agent: String,
    },
    Retrying {
        task: String,
        attempt: u32,
        error: String,
        delay: Duration,
    },
    FallingBack {
        task: String,
        from: String,
        to: String,
        error: String,
    },
    Finished {
        record: TaskRecord,
    },
}

impl RunEvent {
    /// The event as data; `None` for streamed text.
    #[must_use]
    pub fn of(event: &Event<'_>) -> Option<Self> {
        Some(match *event {
            Event::Started { task, agent } => RunEvent::Started {
                task: task.into(),
                agent: agent.into(),
            },
            Event::Text { .. } => return None,
            Event::Retrying {
                task,
                attempt,
                error,
                delay,
            } => RunEvent::Retrying {
                task: task.into(),
                attempt,
                error: error.into(),
                delay,
            },
            Event::FallingBack {
                task,
                from,
                to,
                error,
            } => RunEvent::FallingBack {
                task: task.into(),
                from: from.into(),
                to: to.into(),
                error: error.into(),
            },
            Event::Finished { record } => RunEvent::Finished {
                record: record.clone(),
            },
        })
    }

    /// Tells `observer` of this event as if it had just happened.
    pub fn replay(&self, observer: &dyn Observer) {
        observer.on_event(&match self {
            RunEvent::Started { task, agent } => Event::Started { task, agent },
            RunEvent::Retrying {
                task,
                attempt,
                error,
                delay,
            } => Event::Retrying {
                task,
                attempt: *attempt,
                error,
                delay: *delay,
            },
            RunEvent::FallingBack {
                task,
                from,
                to,
                error,
            } => Event::FallingBack {
                task,
                from,
                to,
                error,
            },
            RunEvent::Finished { record } => Event::Finished { record },
        });
    }
}

/// Keeps every event as data, in order.
#[derive(Debug, Default)]
pub struct Recorder(std::sync::Mutex<Vec<RunEvent>>);

impl Recorder {
    /// The events kept since the last call.
    pub fn take(&self) -> Vec<RunEvent> {
        std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

impl Observer for Recorder {
    fn on_event(&self, event: &Event<'_>) {
        if let Some(event) = RunEvent::of(event) {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(event);
        }
    }
}
