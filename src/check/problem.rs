//! Everything the checker can find wrong with a file, each with a stable code
//! that `wfc explain` describes at length.

use miette::LabeledSpan;

use crate::source::Span;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Problem {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Syntax(#[from] crate::parse::SyntaxError),

    #[error("there is no agent named `{name}`")]
    #[diagnostic(code("wf::unknown-agent"))]
    UnknownAgent {
        name: String,
        #[label("not declared in this file or in a file it imports")]
        span: Span,
        #[help]
        help: Option<String>,
    },

    #[error("there is no corpus named `{name}`")]
    #[diagnostic(code("wf::unknown-corpus"))]
    UnknownCorpus {
        name: String,
        #[label("not declared in this file or in a file it imports")]
        span: Span,
        #[help]
        help: Option<String>,
    },

    #[error("there is no task named `{name}` in workflow `{workflow}`")]
    #[diagnostic(code("wf::unknown-task"))]
    UnknownTask {
        name: String,
        workflow: String,
        #[label("unknown task")]
        span: Span,
        #[help]
        help: Option<String>,
    },

    #[error("there is no input named `{name}` in workflow `{workflow}`")]
    #[diagnostic(code("wf::unknown-input"))]
    UnknownInput {
        name: String,
        workflow: String,
        #[label("unknown input")]
        span: Span,
        #[help]
        help: Option<String>,
    },

    #[error("`{name}` is not an input, a task or a variable of this template")]
    #[diagnostic(code("wf::unknown-name"))]
    UnknownName {
        name: String,
        #[label("unknown name")]
        span: Span,
        #[help]
        help: Option<String>,
    },

    #[error("there is no template {kind} named `{name}`")]
    #[diagnostic(code("wf::unknown-filter"))]
    UnknownFilter {
        kind: &'static str,
        name: String,
        #[label("unknown {kind}")]
        span: Span,
        #[help]
        help: Option<String>,
    },

    #[error("{owner}s have no property `{key}`")]
    #[diagnostic(code("wf::unknown-property"))]
    UnknownProperty {
        owner: &'static str,
        key: String,
        #[label("unknown property")]
        span: Span,
        #[help]
        help: Option<String>,
    },

    #[error("there is no type named `{name}`")]
    #[diagnostic(code("wf::unknown-type"))]
    UnknownType {
        name: String,
        #[label("unknown type")]
        span: Span,
        #[help]
        help: Option<String>,
    },

    #[error("{what} `{name}` is declared more than once")]
    #[diagnostic(code("wf::duplicate-name"))]
    Duplicate {
        what: &'static str,
        name: String,
        #[label("declared again here")]
        span: Span,
        #[label("first declared here")]
        first: Option<Span>,
        #[help]
        help: Option<String>,
    },

    #[error("these tasks depend on each other in a cycle: {path}")]
    #[diagnostic(
        code("wf::cycle"),
        help("a workflow must be a DAG: remove one of these dependencies, or split a task in two")
    )]
    Cycle {
        path: String,
        #[label(collection)]
        edges: Vec<LabeledSpan>,
    },

    #[error("this template cannot be parsed: {detail}")]
    #[diagnostic(code("wf::template-syntax"))]
    TemplateSyntax {
        detail: String,
        #[label("{detail}")]
        span: Span,
        #[help]
        help: Option<String>,
    },

    #[error(transparent)]
    #[diagnostic(transparent)]
    Import(#[from] crate::loader::ImportError),

    #[error("`{key}` must be {expected}, but this is {found}")]
    #[diagnostic(code("wf::invalid-value"))]
    InvalidValue {
        key: String,
        expected: String,
        found: String,
        #[label("expected {expected}")]
        span: Span,
        #[help]
        help: Option<String>,
    },

    #[error("`{key}` is {value}, which is out of range")]
    #[diagnostic(code("wf::out-of-range"))]
    OutOfRange {
        key: String,
        value: String,
        #[label("must be {range}")]
        span: Span,
        range: String,
    },

    #[error("{owner} `{name}` has no `{key}`")]
    #[diagnostic(code("wf::missing-property"))]
    MissingProperty {
        owner: &'static str,
        name: String,
        key: &'static str,
        #[label("`{key}` is needed here")]
        span: Span,
        #[help]
        help: Option<String>,
    },

    #[error("test \"{test}\" does not set the required input `{name}`")]
    #[diagnostic(code("wf::missing-input"))]
    MissingInput {
        test: String,
        name: String,
        #[label("this test")]
        span: Span,
        #[help]
        help: Option<String>,
    },

    #[error("this is not a valid regular expression")]
    #[diagnostic(code("wf::invalid-regex"))]
    InvalidRegex {
        #[label("{detail}")]
        span: Span,
        detail: String,
    },

    #[error("fallback agents loop: {chain}")]
    #[diagnostic(
        code("wf::fallback-loop"),
        help("a fallback chain must end with an agent that has no fallback")
    )]
    FallbackLoop {
        chain: String,
        #[label("this fallback leads back to `{start}`")]
        span: Span,
        start: String,
    },

    #[error("workflow `{name}` has no tasks")]
    #[diagnostic(
        code("wf::no-tasks"),
        help("add a task: `task name -> Agent {{ prompt = \"...\" }}`")
    )]
    NoTasks {
        name: String,
        #[label("nothing to run")]
        span: Span,
    },

    #[error("a typed answer cannot have a field named `{name}`")]
    #[diagnostic(code("wf::reserved-field"))]
    ReservedField {
        name: String,
        #[label("`task.{name}` is the task's own attribute")]
        span: Span,
        #[help]
        help: Option<String>,
    },

    #[error("this file declares nothing")]
    #[diagnostic(
        code("wf::empty-file"),
        help(
            "a .wf file declares agents, schemas or workflows; an empty one is usually a bad merge or a cut-off write"
        )
    )]
    EmptyFile {
        #[label("no agent, schema or workflow in the file")]
        span: Span,
    },

    #[error("input `{name}` is never read")]
    #[diagnostic(code("wf::unused-input"), severity(Warning))]
    UnusedInput {
        name: String,
        #[label("no prompt or output reads this input")]
        span: Span,
        #[help]
        help: Option<String>,
    },

    #[error("the result of task `{name}` is never used")]
    #[diagnostic(
        code("wf::unused-task"),
        severity(Warning),
        help(
            "read it in the output (`{{{{ {name} }}}}`) or in another task's prompt, or remove the task"
        )
    )]
    UnusedTask {
        name: String,
        #[label("neither the output nor another task reads this")]
        span: Span,
    },

    #[error("`after = [{dependency}]` is already implied")]
    #[diagnostic(
        code("wf::redundant-after"),
        severity(Warning),
        help("remove `{dependency}` from `after`; the templates already order these tasks")
    )]
    RedundantAfter {
        dependency: String,
        #[label("this ordering adds nothing")]
        span: Span,
        #[label("`{dependency}` already runs first because of this")]
        implied_by: Option<Span>,
    },

    #[error(
        "{tasks} send `{input}` to {agent} after different openings, so its server reads `{input}` anew for each"
    )]
    #[diagnostic(
        code("wf::shared-context-late"),
        severity(Warning),
        help(
            "a server reuses from its prompt cache only what prompts begin with alike: start each prompt with `{{{{ {input} }}}}` (its instructions after it), and the tasks after the first read it from the cache"
        )
    )]
    SharedContextLate {
        input: String,
        agent: String,
        tasks: String,
        #[label(collection)]
        reads: Vec<LabeledSpan>,
    },

    #[error("the answer of task `{task}` has no field `{field}`")]
    #[diagnostic(code("wf::unknown-field"))]
    UnknownField {
        task: String,
        field: String,
        #[label("not a field of `{task}`'s output")]
        span: Span,
        #[help]
        help: Option<String>,
    },

    #[error("task `{task}` answers in plain text, so it has no field `{field}`")]
    #[diagnostic(
        code("wf::untyped-answer"),
        help(
            "declare the answer's shape on the task (`output = json {{ {field}: text }}`), or read `{task}` whole"
        )
    )]
    UntypedAnswer {
        task: String,
        field: String,
        #[label("`{task}` has no declared output")]
        span: Span,
    },

    #[error("`{expression}` is `{ty}`; {reason}")]
    #[diagnostic(
        code("wf::type-mismatch"),
        help("compare it with a value of its declared type")
    )]
    TypeMismatch {
        expression: String,
        ty: String,
        reason: String,
        #[label("declared as `{ty}`")]
        span: Span,
    },

    #[error("this loop goes over `{expression}`, which is {found}, not a list")]
    #[diagnostic(
        code("wf::loop-over-non-list"),
        severity(Warning),
        help(
            "loop over a `list<...>` field; a text or a single value is iterated character by character or not at all"
        )
    )]
    LoopOverNonList {
        expression: String,
        found: String,
        #[label("not a list")]
        span: Span,
    },

    #[error("the output reads `{expression}`, which has no value when `{task}` fails")]
    #[diagnostic(code("wf::unguarded-field"), severity(Warning))]
    UnguardedField {
        expression: String,
        task: String,
        #[label("read even when `{task}` has no answer")]
        span: Span,
        #[help]
        help: Option<String>,
    },

    #[error(
        "protected health information from {origin} reaches {receiver}, which may not receive it"
    )]
    #[diagnostic(code("wf::phi-flow"))]
    PhiFlow {
        /// The `@phi` input, or the corpus that holds PHI.
        origin: String,
        /// The agent or corpus it reaches.
        receiver: String,
        /// Where it is sent first, then the path: the `@phi` input and each
        /// template read that carries it on.
        #[label(collection)]
        path: Vec<LabeledSpan>,
        #[help]
        help: Option<String>,
    },

    /// "the prompt of `summary` and its answer may need about 2,533 tokens,
    /// more than Clinical's context window of 2,048": one string, so that
    /// `Problem` stays small.
    #[error("{message}")]
    #[diagnostic(code("wf::context-budget"), severity(Warning))]
    ContextBudget {
        message: String,
        #[label("this task may not fit")]
        span: Span,
        /// The reads that add the most, each with its share.
        #[label(collection)]
        reads: Vec<LabeledSpan>,
        #[help]
        help: Option<String>,
    },

    #[error("`{input}` has no @max_len, so the prompt of `{task}` has no upper bound")]
    #[diagnostic(code("wf::context-budget"), severity(Warning))]
    UnboundedPrompt {
        input: String,
        task: String,
        #[label("read here, at any length")]
        span: Span,
        #[help]
        help: Option<String>,
    },
}

impl Problem {
    /// Everything is an error but what its `severity(Warning)` says is not.
    #[must_use]
    pub fn is_error(&self) -> bool {
        miette::Diagnostic::severity(self) != Some(miette::Severity::Warning)
    }
}

/// "did you mean `x`?" for the candidate closest to `name`, when one is close
/// enough to be a likely typo.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    closest(name, candidates).map(|best| format!("did you mean `{best}`?"))
}

pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let length = name.chars().count();
    // A one-letter name is one edit away from every other one-letter name.
    let limit = (length / 3).max(1).min(length.saturating_sub(1));
    candidates
        .into_iter()
        .filter(|candidate| *candidate != name)
        .map(|candidate| {
            let distance =
                strsim::damerau_levenshtein(&name.to_lowercase(), &candidate.to_lowercase());
            (distance, candidate)
        })
        .filter(|&(distance, _)| distance <= limit)
        .min()
        .map(|(_, candidate)| candidate)
}
