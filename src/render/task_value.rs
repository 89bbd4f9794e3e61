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
    record: Arc<TaskRecord>,
    /// The fields of a typed answer (`output = json { ... }`), which the
    /// executor has already checked against the declaration.
    fields: Option<serde_json::Map<String, serde_json::Value>>,
}

impl TaskValue {
    pub(super) fn new(record: Arc<TaskRecord>) -> Self {
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
            field => match &self.fields {
                Some(fields) => serde::Deserialize::deserialize(fields.get(field)?).ok()?,
                // A task without an answer has no fields: each reads as the
                // task's own marker, so a document keeps its other parts.
                None if !record.is_ok() => Value::from_object(NoResult(self.marker())),
                None => return None,
            },
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
        match self.record.text() {
            Some(text) => f.write_str(text.trim()),
            None => f.write_str(&self.marker()),
        }
    }
}

impl TaskValue {
    /// `[codes has no result: why]`.
    fn marker(&self) -> String {
        format!(
            "[{} has no result: {}]",
            self.record.task,
            self.record.error().unwrap_or("unknown")
        )
    }
}

/// A field (or a field of a field) of a task without an answer: prints the
/// task's marker, is false in conditions, and loops over nothing.
#[derive(Debug)]
struct NoResult(String);

impl Object for NoResult {
    fn get_value(self: &Arc<Self>, _key: &Value) -> Option<Value> {
        Some(Value::from_object(NoResult(self.0.clone())))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Empty
    }

    fn is_true(self: &Arc<Self>) -> bool {
        false
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
