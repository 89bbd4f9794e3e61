//! The syntax tree of a `.wf` file, as written, with a byte span on every node.
//!
//! Nothing here is checked yet: names may not resolve and values may be out
//! of range. The checker turns this tree into a validated program.

use std::fmt;

use crate::source::Span;

#[derive(Debug)]
pub struct Module {
    pub items: Vec<Item>,
    /// Ordinary `//` comments, in source order, kept for the formatter.
    pub comments: Vec<Comment>,
}

#[derive(Debug)]
pub struct Comment {
    pub text: String,
    pub span: Span,
}

#[derive(Debug)]
pub enum Item {
    Import(Import),
    Agent(Agent),
    Corpus(Corpus),
    Schema(Schema),
    Workflow(Workflow),
}

/// `schema Name { field: type, ... }`
#[derive(Debug)]
pub struct Schema {
    pub docs: Docs,
    pub name: Name,
    pub fields: Vec<Field>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Name {
    pub text: String,
    pub span: Span,
}

/// The `///` lines above a declaration, without the slashes.
#[derive(Debug, Default)]
pub struct Docs {
    pub lines: Vec<String>,
}

impl Docs {
    #[must_use]
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

#[derive(Debug)]
pub struct Import {
    pub path: Text,
    pub span: Span,
}

#[derive(Debug)]
pub struct Agent {
    pub docs: Docs,
    pub name: Name,
    pub properties: Vec<Property>,
    pub span: Span,
}

/// `corpus Name { ... }`: documents retrieval tasks search.
#[derive(Debug)]
pub struct Corpus {
    pub docs: Docs,
    pub name: Name,
    pub properties: Vec<Property>,
    pub span: Span,
}

#[derive(Debug)]
pub struct Workflow {
    pub docs: Docs,
    pub name: Name,
    pub members: Vec<Member>,
    pub span: Span,
}

#[derive(Debug)]
pub enum Member {
    Input(Input),
    Task(Task),
    Output(Output),
    Test(Test),
}

impl Member {
    #[must_use]
    pub fn span(&self) -> Span {
        match self {
            Member::Input(input) => input.span,
            Member::Task(task) => task.span,
            Member::Output(output) => output.span,
            Member::Test(test) => test.span,
        }
    }
}

#[derive(Debug)]
pub struct Input {
    pub docs: Docs,
    pub name: Name,
    pub ty: TypeExpr,
    pub default: Option<Value>,
    pub attributes: Vec<Attribute>,
    pub span: Span,
}

/// `@phi`, `@max_len(4000)` after an input.
#[derive(Debug)]
pub struct Attribute {
    pub name: Name,
    pub argument: Option<Value>,
    pub span: Span,
}

/// One field of a `json { ... }` schema.
#[derive(Debug)]
pub struct Field {
    pub docs: Docs,
    pub name: Name,
    pub ty: TypeExpr,
    pub span: Span,
}

#[derive(Debug)]
pub struct TypeExpr {
    pub kind: TypeKind,
    pub optional: bool,
    pub span: Span,
}

#[derive(Debug)]
pub enum TypeKind {
    /// `text`, `number`, `bool`, `date`: checked against the known names later.
    Named(Name),
    List(Box<TypeExpr>),
    OneOf(Vec<Text>),
}

#[derive(Debug)]
pub struct Task {
    pub docs: Docs,
    pub kind: TaskKind,
    pub name: Name,
    /// The agent a `task` asks, or the corpus a `retrieve` searches.
    pub target: Name,
    pub properties: Vec<Property>,
    /// `expect ...` lines: what a good answer looks like.
    pub checks: Vec<Check>,
    pub span: Span,
}

impl Task {
    /// The text of property `key`, when it is written as a string.
    #[must_use]
    pub fn text(&self, key: &str) -> Option<&Text> {
        self.properties
            .iter()
            .find_map(|property| match &property.value.kind {
                ValueKind::Text(text) if property.key.text == key => Some(text),
                _ => None,
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// `task name -> Agent`: a chat completion.
    Chat,
    /// `retrieve name from Corpus`: passages from a corpus.
    Retrieve,
}

impl TaskKind {
    /// The keyword that declares it.
    #[must_use]
    pub fn keyword(self) -> &'static str {
        match self {
            TaskKind::Chat => "task",
            TaskKind::Retrieve => "retrieve",
        }
    }

    /// The word between the name and the target: `->` or `from`.
    #[must_use]
    pub fn joiner(self) -> &'static str {
        match self {
            TaskKind::Chat => "->",
            TaskKind::Retrieve => "from",
        }
    }
}

/// A property an answer (a task's, or a test's output) should have.
#[derive(Debug)]
pub struct Check {
    pub kind: CheckKind,
    pub span: Span,
}

#[derive(Debug)]
pub enum CheckKind {
    Contains(Text),
    Matches(Text),
    /// A line that is this heading (`## Title`, `=== TITLE ===`).
    Heading(Text),
    /// At least this many characters.
    MinLength(Value),
    /// The whole answer is valid JSON.
    Json,
    /// The answer names a passage id this retrieval task gave it.
    Cites(Name),
}

#[derive(Debug)]
pub struct Output {
    pub docs: Docs,
    pub template: Text,
    pub span: Span,
}

/// `key = value` inside an agent or a task.
#[derive(Debug)]
pub struct Property {
    pub key: Name,
    pub value: Value,
    pub span: Span,
}

#[derive(Debug)]
pub struct Value {
    pub kind: ValueKind,
    pub span: Span,
}

#[derive(Debug)]
pub enum ValueKind {
    Text(Text),
    Number(f64),
    /// A number with a unit: `30s`, `500ms`, `2m`, `1h`.
    Duration(std::time::Duration),
    Bool(bool),
    Name(Name),
    List(Vec<Value>),
    /// `json { field: type, ... }`
    Schema(Vec<Field>),
    /// `name?` in a list: an optional reference.
    OptionalName(Name),
    /// `{ key = value, ... }`
    Table(Vec<Property>),
}

impl ValueKind {
    /// What kind of value this is, as a person would name it in a sentence.
    #[must_use]
    pub fn describe(&self) -> &'static str {
        match self {
            ValueKind::Text(_) => "a string",
            ValueKind::Number(_) => "a number",
            ValueKind::Duration(_) => "a duration",
            ValueKind::Bool(_) => "a boolean",
            ValueKind::Name(_) => "a name",
            ValueKind::List(_) => "a list",
            ValueKind::Schema(_) => "a JSON schema",
            ValueKind::OptionalName(_) => "an optional name",
            ValueKind::Table(_) => "a table",
        }
    }
}

#[derive(Debug)]
pub struct Test {
    pub docs: Docs,
    pub name: Text,
    pub steps: Vec<TestStep>,
    pub span: Span,
}

#[derive(Debug)]
pub enum TestStep {
    Input {
        name: Name,
        value: Value,
        span: Span,
    },
    Mock {
        task: Name,
        /// The answer, or with `fails` the error the task reports.
        response: Text,
        fails: bool,
        span: Span,
    },
    Expect(Expectation),
}

impl TestStep {
    #[must_use]
    pub fn span(&self) -> Span {
        match self {
            TestStep::Input { span, .. } | TestStep::Mock { span, .. } => *span,
            TestStep::Expect(expectation) => expectation.span,
        }
    }
}

#[derive(Debug)]
pub struct Expectation {
    pub kind: ExpectationKind,
    pub span: Span,
}

#[derive(Debug)]
pub enum ExpectationKind {
    Output(Check),
    TaskState { task: Name, state: TaskState },
    Order { first: Name, then: Name },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    Ok,
    Failed,
    Skipped,
}

impl TaskState {
    #[must_use]
    pub fn keyword(self) -> &'static str {
        match self {
            TaskState::Ok => "ok",
            TaskState::Failed => "failed",
            TaskState::Skipped => "skipped",
        }
    }
}

/// How a string was written, which the formatter keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quotes {
    /// `"..."`, with backslash escapes.
    Basic,
    /// `"""..."""`, raw, with the common indentation stripped.
    Triple,
}

/// A string literal: its value after escapes and indentation stripping, and
/// the way back from a byte of the value to a byte of the file, so that an
/// error inside a template points at the right place in the `.wf` file.
#[derive(Clone)]
pub struct Text {
    pub value: String,
    pub quotes: Quotes,
    /// The whole literal, quotes included.
    pub span: Span,
    /// `(value offset, file offset)` at the start of each run of bytes that
    /// were copied unchanged; sorted by value offset.
    pub(crate) runs: Vec<(usize, usize)>,
}

impl Text {
    /// The file offset of a byte offset into `value`.
    #[must_use]
    pub fn file_offset(&self, value_offset: usize) -> usize {
        match self.run_before(value_offset, |(value_start, _)| value_start) {
            Some((value_start, file_start)) => file_start + (value_offset - value_start),
            None => self.span.start,
        }
    }

    /// The byte offset into `value` of a file offset inside a run copied
    /// unchanged: the inverse of [`Text::file_offset`].
    #[must_use]
    pub fn value_offset(&self, file_offset: usize) -> usize {
        match self.run_before(file_offset, |(_, file_start)| file_start) {
            Some((value_start, file_start)) => {
                (value_start + (file_offset - file_start)).min(self.value.len())
            }
            None => 0,
        }
    }

    /// The last run that starts at or before `offset`, its start read by
    /// `start` (in the value or in the file: runs are sorted by both).
    fn run_before(
        &self,
        offset: usize,
        start: fn((usize, usize)) -> usize,
    ) -> Option<(usize, usize)> {
        let index = self.runs.partition_point(|&run| start(run) <= offset);
        index.checked_sub(1).map(|i| self.runs[i])
    }

    /// The file span of a byte range of `value`.
    #[must_use]
    pub fn file_span(&self, start: usize, end: usize) -> Span {
        let file_start = self.file_offset(start);
        let file_end = if end > start {
            self.file_offset(end - 1) + 1
        } else {
            file_start
        };
        Span::new(file_start, file_end.max(file_start))
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}@{:?}", self.value, self.span)
    }
}
