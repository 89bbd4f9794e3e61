//! A checked program: what the rest of wfc (planner, runner, server, editor
//! tooling) works from. Every name here resolves and every value is in range.

use std::time::Duration;

use crate::plan::Plan;
use crate::policy::RetryPolicy;
use crate::source::Span;

#[derive(Debug, Default)]
pub struct Program {
    /// The agents this file can use: its own and those of the files it imports.
    pub agents: Vec<AgentDef>,
    /// The workflows declared in this file.
    pub workflows: Vec<WorkflowDef>,
}

#[derive(Debug, Clone)]
pub struct AgentDef {
    pub name: String,
    pub doc: String,
    pub model: Option<String>,
    pub system: Option<String>,
    pub max_concurrency: Option<u32>,
    pub temperature: Option<f64>,
    pub fallback: Option<String>,
    /// `phi_allowed = true`: declared to run inside the PHI boundary.
    pub phi_allowed: bool,
    /// `context_window`: the most tokens the model takes, prompt and answer
    /// together; the router's endpoints may say otherwise.
    pub context_window: Option<u32>,
}

#[derive(Debug)]
pub struct WorkflowDef {
    pub name: String,
    pub doc: String,
    pub inputs: Vec<InputDef>,
    pub tasks: Vec<TaskDef>,
    /// The output template; without one, the output is each task's result
    /// under its name.
    pub output: Option<String>,
    pub tests: Vec<TestDef>,
    /// The task DAG; node `i` is `tasks[i]`.
    pub plan: Plan,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct InputDef {
    pub name: String,
    pub doc: String,
    pub ty: Type,
    pub default: Option<serde_json::Value>,
    /// `@phi`: protected health information.
    pub phi: bool,
    /// `@max_len(N)`: the longest value accepted, in characters.
    pub max_len: Option<u32>,
}

impl InputDef {
    #[must_use]
    pub fn is_required(&self) -> bool {
        self.default.is_none() && !matches!(self.ty, Type::Optional(_))
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Type {
    Text,
    Number,
    Bool,
    /// A calendar date, written as text (`2026-01-04` or `01/04/2026`).
    Date,
    List(Box<Type>),
    OneOf(Vec<String>),
    Optional(Box<Type>),
    /// A JSON object with these fields, in order: a task's typed answer.
    Object(Vec<FieldDef>),
    /// A type the file names but does not declare (already reported):
    /// anything goes, so one typo is reported once.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FieldDef {
    pub name: String,
    pub doc: String,
    pub ty: Type,
}

impl Type {
    /// The JSON Schema servers constrain their decoding with
    /// (`response_format`), so an answer can only take this shape.
    #[must_use]
    pub fn json_schema(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Type::Text => json!({ "type": "string" }),
            Type::Date => json!({ "type": "string", "description": "a date" }),
            Type::Number => json!({ "type": "number" }),
            Type::Bool => json!({ "type": "boolean" }),
            Type::List(item) => json!({ "type": "array", "items": item.json_schema() }),
            Type::OneOf(choices) => json!({ "type": "string", "enum": choices }),
            Type::Optional(inner) => json!({ "anyOf": [inner.json_schema(), { "type": "null" }] }),
            Type::Unknown => json!({}),
            Type::Object(fields) => {
                let properties: serde_json::Map<String, serde_json::Value> = fields
                    .iter()
                    .map(|field| {
                        let mut schema = field.ty.json_schema();
                        if !field.doc.is_empty() {
                            schema["description"] = json!(field.doc);
                        }
                        (field.name.clone(), schema)
                    })
                    .collect();
                let required: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
                json!({
                    "type": "object",
                    "properties": properties,
                    "required": required,
                    "additionalProperties": false,
                })
            }
        }
    }

    /// The fields of an object type (also through `?`).
    #[must_use]
    pub fn fields(&self) -> Option<&[FieldDef]> {
        match self {
            Type::Object(fields) => Some(fields),
            Type::Optional(inner) => inner.fields(),
            _ => None,
        }
    }

    /// Whether the type is known; an unknown one was reported where it is
    /// named, and nothing that reads it is reported again.
    #[must_use]
    pub fn is_known(&self) -> bool {
        match self {
            Type::Unknown => false,
            Type::Optional(inner) | Type::List(inner) => inner.is_known(),
            _ => true,
        }
    }

    #[must_use]
    pub fn is_list(&self) -> bool {
        match self {
            Type::List(_) => true,
            Type::Optional(inner) => inner.is_list(),
            _ => false,
        }
    }
}

impl std::fmt::Display for Type {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Type::Text => f.write_str("text"),
            Type::Number => f.write_str("number"),
            Type::Bool => f.write_str("bool"),
            Type::Date => f.write_str("date"),
            Type::List(item) => write!(f, "list<{item}>"),
            Type::OneOf(choices) => {
                let quoted: Vec<String> = choices.iter().map(|c| format!("{c:?}")).collect();
                write!(f, "one_of({})", quoted.join(", "))
            }
            Type::Optional(inner) => write!(f, "{inner}?"),
            Type::Unknown => f.write_str("unknown"),
            Type::Object(fields) => {
                let fields: Vec<String> = fields
                    .iter()
                    .map(|field| format!("{}: {}", field.name, field.ty))
                    .collect();
                write!(f, "json {{ {} }}", fields.join(", "))
            }
        }
    }
}

/// What templates can read of any task besides its answer's fields:
/// `{{ codes.ok }}`, `{{ codes.error }}`.
pub const TASK_ATTRIBUTES: [&str; 8] = [
    "text",
    "ok",
    "error",
    "tokens",
    "latency_ms",
    "model",
    "agent",
    "truncated",
];

#[derive(Debug, Clone)]
pub struct TaskDef {
    pub name: String,
    pub doc: String,
    pub agent: String,
    pub prompt: String,
    pub priority: u32,
    pub max_tokens: u32,
    pub temperature: Option<f64>,
    pub timeout: Option<Duration>,
    pub retries: u32,
    /// `retry = { ... }`, or what `retries` means.
    pub retry: RetryPolicy,
    pub fallback: Option<String>,
    /// `when = "expression"`: the task runs only if it is true.
    pub when: Option<String>,
    /// The shape of the answer, when the task declares one
    /// (`output = json { ... }`); always a [`Type::Object`].
    pub output: Option<Type>,
    /// What a good answer looks like; every run scores the answer by them.
    pub checks: Vec<Check>,
    pub span: Span,
    /// `deidentify = true`: the task removes identifiers, so its answer is
    /// not PHI even though its prompt reads some.
    pub deidentify: bool,
    /// Whether the prompt carries PHI (from an `@phi` input, directly or
    /// through the answers it reads).
    pub reads_phi: bool,
}

/// A property an answer should have.
#[derive(Debug, Clone)]
pub enum Check {
    Contains(String),
    Matches(regex::Regex),
    /// A line that is this heading, in Markdown (`## Title`) or banner
    /// (`=== TITLE ===`) form, in any case.
    Heading(String),
    /// At least this many characters.
    MinLength(usize),
    /// The whole answer is valid JSON.
    Json,
}

#[derive(Debug, Clone)]
pub struct TestDef {
    pub name: String,
    pub inputs: Vec<(String, serde_json::Value)>,
    pub mocks: Vec<(String, MockAnswer)>,
    pub expectations: Vec<Expectation>,
}

/// What a mocked task does in a test.
#[derive(Debug, Clone)]
pub enum MockAnswer {
    Text(String),
    /// The task fails with this error.
    Failure(String),
}

#[derive(Debug, Clone)]
pub enum Expectation {
    Output(Check),
    TaskState {
        task: String,
        state: crate::ast::TaskState,
    },
    Order {
        first: String,
        then: String,
    },
}
