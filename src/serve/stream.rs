//! Task events as server-sent events, for callers that show progress:
//! `started`, `text` (a piece of a streamed answer), `retrying`,
//! `fallback`, `finished`, and at the end `report`.

use axum::response::sse::Event as SseEvent;
use serde_json::json;
use tokio::sync::mpsc::UnboundedSender;

use crate::record::Outcome;
use crate::run::{Event, Observer};

pub(super) struct Streamer(pub UnboundedSender<SseEvent>);

impl Observer for Streamer {
    fn on_event(&self, event: &Event<'_>) {
        let (name, data) = match event {
            Event::Started { task, agent } => ("started", json!({ "task": task, "agent": agent })),
            Event::Text { task, text } => ("text", json!({ "task": task, "text": text })),
            Event::Retrying {
                task,
                attempt,
                error,
                delay,
            } => (
                "retrying",
                json!({ "task": task, "attempt": attempt, "error": error, "delay_ms": delay.as_millis() as u64 }),
            ),
            Event::FallingBack {
                task,
                from,
                to,
                error,
            } => (
                "fallback",
                json!({ "task": task, "from": from, "to": to, "error": error }),
            ),
            Event::Finished { record } => {
                let name = match record.outcome {
                    Outcome::Ok { .. } => "finished",
                    Outcome::Failed { .. } => "failed",
                    Outcome::Skipped { .. } => "skipped",
                };
                let result = crate::run::report::TaskResult::from(*record);
                (
                    name,
                    serde_json::to_value(result).expect("results serialise"),
                )
            }
        };
        // The caller may have gone; the run goes on and its journal keeps it.
        let _ = self
            .0
            .send(SseEvent::default().event(name).data(data.to_string()));
    }
}
