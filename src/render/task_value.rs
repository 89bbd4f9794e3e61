//! A task's result as templates see it: printed, it is the answer's text; its
//! attributes tell whether it succeeded, so an output template can cope with
//! partial failure (`{% if billing_codes.ok %}`).

use std::sync::Arc;

use minijinja::Value;
use minijinja::value::{Enumerator, Object};

use crate::check::TASK_ATTRIBUTES;
use crate::record::{Outcome, TaskRecord};

#[derive(Debug)]
pub(super) struct TaskValue {
    record: TaskRecord,
    /// The fields of a typed answer (`output = json { ... }`), which the
    /// executor has already checked against the declaration.
    fields: Option<serde_json::Map<String, serde_json::Value>>,
}

impl TaskValue {
    pub(super) fn new(record: TaskRecord) -> Self {
        let fields = record
            .text()
            .and_then(|text| serde_json::from_str(text).ok());
        TaskValue { record, fields }
    }
}

impl Object for TaskValue {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let record = &self.record;
        Some(match key.as_str()? {
            "text" => Value::from(record.text().unwrap_or_default()),
            "ok" => Value::from(record.is_ok()),
            "error" => record.error().map_or(Value::from(()), Value::from),
            "tokens" => Value::from(record.tokens),
            "latency_ms" => Value::from(record.latency_ms),
            "model" => Value::from(record.model.as_str()),
            "agent" => Value::from(record.agent.as_str()),
            "truncated" => Value::from(matches!(
                &record.outcome,
                Outcome::Ok { finish_reason: Some(reason), .. } if reason == "length"
            )),
            field => {
                let value = self.fields.as_ref()?.get(field)?;
                serde::Deserialize::deserialize(value).ok()?
            }
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&TASK_ATTRIBUTES)
    }

    fn is_true(self: &Arc<Self>) -> bool {
        self.record.is_ok()
    }

    /// A task without an answer prints a visible marker, not an empty
    /// string, so a document never silently lacks a section.
    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.record.text(), self.record.error()) {
            (Some(text), _) => f.write_str(text.trim()),
            (None, error) => write!(
                f,
                "[{} has no result: {}]",
                self.record.task,
                error.unwrap_or("unknown")
            ),
        }
    }
}
