//! A task's result as templates see it: printed, it is the answer's text; its
//! attributes tell whether it succeeded, so an output template can cope with
//! partial failure (`{% if billing_codes.ok %}`).

use std::sync::Arc;

use minijinja::Value;
use minijinja::value::{Enumerator, Object, ObjectRepr, Serde};

use crate::check::TASK_ATTRIBUTES;
use crate::record::{Outcome, Passage, TaskRecord};

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

/// What templates read of any task besides its answer: `codes.ok`,
/// `codes.error` and the others of [`TASK_ATTRIBUTES`].
fn attribute(record: &TaskRecord, name: &str) -> Option<Value> {
    Some(match name {
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
        _ => return None,
    })
}

/// `[codes has no result: why]`.
fn marker(record: &TaskRecord) -> String {
    format!(
        "[{} has no result: {}]",
        record.task,
        record.error().unwrap_or("unknown")
    )
}

impl Object for TaskValue {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let record = &self.record;
        let field = key.as_str()?;
        if let Some(value) = attribute(record, field) {
            return Some(value);
        }
        match &self.fields {
            Some(fields) => serde::Deserialize::deserialize(fields.get(field)?).ok(),
            // A task without an answer has no fields: each reads as the
            // task's own marker, so a document keeps its other parts.
            None if !record.is_ok() => Some(Value::from_object(NoResult(self.marker()))),
            None => None,
        }
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
    fn marker(&self) -> String {
        marker(&self.record)
    }
}

/// A retrieval's result as templates see it: a list of passages to loop
/// over (`{% for passage in policy %}`), each with its fields; printed,
/// each passage under its id, so that an answer can cite it. A retrieval
/// without an answer loops over nothing and prints its marker.
#[derive(Debug)]
pub(super) struct Passages {
    record: Arc<TaskRecord>,
    passages: Vec<Passage>,
}

impl Passages {
    pub(super) fn new(record: Arc<TaskRecord>) -> Self {
        let passages = record
            .text()
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_default();
        Passages { record, passages }
    }
}

impl Object for Passages {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        if let Some(name) = key.as_str() {
            return attribute(&self.record, name);
        }
        let passage = self.passages.get(key.as_usize()?)?;
        Some(Value::from(Serde(passage)))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.passages.len())
    }

    fn is_true(self: &Arc<Self>) -> bool {
        self.record.is_ok()
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.record.is_ok() {
            return f.write_str(&marker(&self.record));
        }
        if self.passages.is_empty() {
            return f.write_str("(no passages found)");
        }
        for (index, passage) in self.passages.iter().enumerate() {
            if index > 0 {
                f.write_str("\n\n")?;
            }
            write!(
                f,
                "[{}] {}\n{}",
                passage.id,
                passage.title,
                passage.text.trim()
            )?;
        }
        Ok(())
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
