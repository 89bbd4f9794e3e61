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
    /// The corpora this file can search, likewise.
    pub corpora: Vec<CorpusDef>,
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

/// A collection of documents that retrieval tasks search. Where it lives
/// (a folder, an external engine) is deployment, in the router file.
#[derive(Debug, Clone)]
pub struct CorpusDef {
    pub name: String,
    pub doc: String,
    /// `phi_allowed = true`: declared to be searched inside the PHI
    /// boundary, so a query rendered from PHI may go to it.
    pub phi_allowed: bool,
    /// `holds_phi = true`: its passages are PHI (a patient's own notes), so
    /// whatever reads them is too.
    pub holds_phi: bool,
    /// `max_passage_len`: the longest passage, in characters; documents are
    /// split into passages no longer than this.
    pub max_passage_len: u32,
    /// `metadata = [payer, plan]`: the fields its passages carry besides
    /// their own, which filters and templates may name.
    pub metadata: Vec<String>,
}

impl CorpusDef {
    /// What a retrieval from this corpus answers: a list of passages.
    #[must_use]
    pub fn passages_type(&self) -> Type {
        let field = |name: &str, doc: &str, ty: Type| FieldDef {
            name: name.to_string(),
            doc: doc.to_string(),
            ty,
        };
        let mut fields = vec![
            field("id", "the passage's id, for citing it", Type::Text),
            field("source", "the document it comes from", Type::Text),
            field("title", "the document's title and section", Type::Text),
            field("text", "the passage itself", Type::Text),
            field("score", "how well it matches the query", Type::Number),
        ];
        for name in &self.metadata {
            fields.push(field(
                name,
                "metadata of the document",
                Type::Optional(Box::new(Type::Text)),
            ));
        }
        Type::List(Box::new(Type::Object(fields)))
    }
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
    /// What the task does: ask an agent or search a corpus.
    pub kind: TaskKind,
    /// The agent that answers; for a retrieval, the corpus it searches,
    /// which stands where an agent would in reports and timelines.
    pub agent: String,
    /// The template rendered and sent: a chat task's prompt, a
    /// retrieval's query.
    pub prompt: String,
    pub priority: u32,
    /// The longest answer, in tokens; 0 for a retrieval.
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
    /// (`output = json { ... }`): a [`Type::Object`], or for a retrieval
    /// the list of its corpus's passages.
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

#[derive(Debug, Clone, PartialEq)]
pub enum TaskKind {
    /// A chat completion from the task's agent.
    Chat,
    /// Passages from a corpus.
    Retrieve(Retrieval),
}

/// How a retrieval task searches its corpus.
#[derive(Debug, Clone, PartialEq)]
pub struct Retrieval {
    /// How many passages it returns, at most.
    pub top_k: u32,
    pub mode: SearchMode,
    /// `filter = { payer = "{{ payer }}" }`: metadata each passage must
    /// have, each value a template.
    pub filters: Vec<(String, String)>,
    /// The corpus's `max_passage_len`: how its documents are cut.
    pub passage_len: u32,
}

/// How passages are ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    /// Full-text ranking (BM25): no model needed.
    Bm25,
    /// Nearest passages by embedding, from the deployment's embeddings
    /// endpoint.
    Dense,
    /// Both rankings, fused by reciprocal rank.
    Hybrid,
}

impl SearchMode {
    pub const ALL: [SearchMode; 3] = [SearchMode::Bm25, SearchMode::Dense, SearchMode::Hybrid];

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            SearchMode::Bm25 => "bm25",
            SearchMode::Dense => "dense",
            SearchMode::Hybrid => "hybrid",
        }
    }
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
    /// The answer names at least one passage id this retrieval task gave.
    Cites(String),
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
