//! A workflow: its names, its templates, the DAG they imply, and the
//! warnings about what is legal but suspicious.

use std::collections::HashMap;
use std::time::Duration;

use miette::LabeledSpan;

use super::agents::{self, TEMPERATURE};
use super::problem::{Problem, did_you_mean};
use super::program::{AgentDef, InputDef, TASK_ATTRIBUTES, TaskDef, Type, WorkflowDef};
use super::properties::Properties;
use super::template::Literal;
use super::templates::Templates;
use super::templates::{Chain, Read};
use super::{tests, types};
use crate::ast::{self, Member};
use crate::plan::{Edge, EdgeKind, Plan};
use crate::policy::{ErrorClass, RetryPolicy, Spacing};
use crate::source::Span;

pub const TASK_PROPERTIES: &[&str] = &[
    "prompt",
    "priority",
    "max_tokens",
    "temperature",
    "timeout",
    "retries",
    "after",
    "fallback",
    "output",
    "when",
    "retry",
    "deidentify",
];

pub const PRIORITY: std::ops::RangeInclusive<u32> = 1..=10;
pub const DEFAULT_PRIORITY: u32 = 1;
pub const MAX_TOKENS: std::ops::RangeInclusive<u32> = 1..=131_072;
pub const DEFAULT_MAX_TOKENS: u32 = 512;
pub const TIMEOUT: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(3600);
pub const RETRIES: std::ops::RangeInclusive<u32> = 0..=10;
pub const DEFAULT_RETRIES: u32 = 2;

#[derive(Clone, Copy)]
pub enum Declared {
    Input(usize),
    Task(usize),
}

/// The names a workflow declares: its inputs and tasks share one namespace,
/// since templates read both the same way.
pub struct Names<'a> {
    pub table: HashMap<&'a str, (Declared, Span)>,
    pub inputs: Vec<&'a ast::Input>,
    pub tasks: Vec<&'a ast::Task>,
}

impl<'a> Names<'a> {
    fn collect(workflow: &'a ast::Workflow, problems: &mut Vec<Problem>) -> Self {
        let mut names = Names {
            table: HashMap::new(),
            inputs: Vec::new(),
            tasks: Vec::new(),
        };
        for member in &workflow.members {
            let (name, declared, what) = match member {
                Member::Input(input) => (&input.name, Declared::Input(names.inputs.len()), "input"),
                Member::Task(task) => (&task.name, Declared::Task(names.tasks.len()), "task"),
                Member::Output(_) | Member::Test(_) => continue,
            };
            if let Some((earlier, first)) = names.table.get(name.text.as_str()) {
                let same_kind = matches!(
                    (earlier, declared),
                    (Declared::Input(_), Declared::Input(_))
                        | (Declared::Task(_), Declared::Task(_))
                );
                problems.push(Problem::Duplicate {
                    what: if same_kind { what } else { "name" },
                    name: name.text.clone(),
                    span: name.span,
                    first: Some(*first),
                    help: Some(if same_kind {
                        format!("rename one of the two {what}s")
                    } else {
                        "inputs and tasks share one namespace, because templates read both by name; rename one".into()
                    }),
                });
                continue;
            }
            names.table.insert(&name.text, (declared, name.span));
            match member {
                Member::Input(input) => names.inputs.push(input),
                Member::Task(task) => names.tasks.push(task),
                Member::Output(_) | Member::Test(_) => {}
            }
        }
        names
    }

    pub fn task_names(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.tasks.iter().map(|task| task.name.text.as_str())
    }

    pub fn input_names(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.inputs.iter().map(|input| input.name.text.as_str())
    }

    /// The task called `name`, or an `unknown-task` problem.
    pub fn task(
        &self,
        name: &ast::Name,
        workflow: &str,
        problems: &mut Vec<Problem>,
    ) -> Option<usize> {
        match self.table.get(name.text.as_str()) {
            Some((Declared::Task(index), _)) => Some(*index),
            found => {
                let help = match found {
                    Some((Declared::Input(_), _)) => {
                        Some(format!("`{}` is an input, not a task", name.text))
                    }
                    _ => did_you_mean(&name.text, self.task_names()),
                };
                problems.push(Problem::UnknownTask {
                    name: name.text.clone(),
                    workflow: workflow.to_string(),
                    span: name.span,
                    help,
                });
                None
            }
        }
    }
}

/// What the checker learns about each task and input while resolving names.
#[derive(Default)]
struct Usage {
    input_read: Vec<bool>,
    task_read: Vec<bool>,
    /// Field chains and loops of every template, checked once every task's
    /// output type is known.
    shapes: Vec<Read>,
    /// A template that cannot be parsed may read anything, so nothing can be
    /// called unused.
    unknown: bool,
}

pub fn check(
    workflow: &ast::Workflow,
    agents: &HashMap<String, AgentDef>,
    schemas: &types::Schemas,
    templates: &mut Templates,
    problems: &mut Vec<Problem>,
) -> WorkflowDef {
    let names = Names::collect(workflow, problems);
    let name = workflow.name.text.clone();
    if names.tasks.is_empty() {
        problems.push(Problem::NoTasks {
            name: name.clone(),
            span: workflow.name.span,
        });
    }
    let inputs: Vec<InputDef> = names
        .inputs
        .iter()
        .map(|input| input_def(input, schemas, problems))
        .collect();
    let mut usage = Usage {
        input_read: vec![false; names.inputs.len()],
        task_read: vec![false; names.tasks.len()],
        shapes: Vec::new(),
        unknown: false,
    };
    let mut plan = Plan::new(names.tasks.len());
    let mut tasks = Vec::with_capacity(names.tasks.len());
    for (index, task) in names.tasks.iter().enumerate() {
        tasks.push(task_def(
            index, task, &names, &name, agents, schemas, templates, &mut plan, &mut usage, problems,
        ));
    }

    let outputs: Vec<&ast::Output> = workflow
        .members
        .iter()
        .filter_map(|member| match member {
            Member::Output(output) => Some(output),
            _ => None,
        })
        .collect();
    for extra in outputs.iter().skip(1) {
        problems.push(Problem::Duplicate {
            what: "template",
            name: "output".into(),
            span: extra.span,
            first: Some(outputs[0].span),
            help: Some("a workflow has one output template".into()),
        });
    }
    let output = outputs.first().map(|output| {
        let reads = templates.read(&output.template, problems);
        usage.unknown |= reads.is_none();
        let reads = reads.unwrap_or_default();
        for (read, span) in &reads.variables {
            let (read, span) = (read.clone(), *span);
            match resolve_read(&names, &read, span, templates, problems) {
                Some(Declared::Input(i)) => usage.input_read[i] = true,
                Some(Declared::Task(t)) => usage.task_read[t] = true,
                None => {}
            }
        }
        usage.shapes.push(reads);
        output.template.value.clone()
    });
    for read in std::mem::take(&mut usage.shapes) {
        shapes(&read, &names, &inputs, &tasks, problems);
    }

    let cycles = plan.cycles();
    for cycle in &cycles {
        problems.push(cycle_problem(cycle, &names));
    }
    if cycles.is_empty() {
        redundant_after(&plan, &names, problems);
    }
    if !usage.unknown {
        unused(&names, &usage, &plan, output.is_some(), problems);
    }
    let tests = tests::check(workflow, &names, &inputs, problems);

    WorkflowDef {
        name,
        doc: workflow.docs.text(),
        inputs,
        tasks,
        output,
        tests,
        plan,
        span: workflow.span,
    }
}

fn input_def(
    input: &ast::Input,
    schemas: &types::Schemas,
    problems: &mut Vec<Problem>,
) -> InputDef {
    let ty = types::resolve(&input.ty, schemas, problems);
    let default = match (&ty, &input.default) {
        (Some(ty), Some(value)) => types::literal(&input.name.text, ty, value)
            .map_err(|problem| problems.push(problem))
            .ok(),
        _ => None,
    };
    let (mut phi, mut max_len) = (false, None);
    for attribute in &input.attributes {
        match (attribute.name.text.as_str(), &attribute.argument) {
            ("phi", None) => phi = true,
            ("max_len", Some(value)) => {
                max_len = match value.kind {
                    ast::ValueKind::Number(n)
                        if n.fract() == 0.0 && (1.0..=MAX_LEN).contains(&n) =>
                    {
                        Some(n as u32)
                    }
                    _ => {
                        problems.push(Problem::OutOfRange {
                            key: "@max_len".into(),
                            value: source_text(value),
                            span: value.span,
                            range: "a whole number of characters from 1 to 10000000".into(),
                        });
                        None
                    }
                }
            }
            (name, _) => {
                problems.push(Problem::UnknownProperty {
                    owner: "input",
                    key: format!("@{name}"),
                    span: attribute.span,
                    help: Some(match name {
                        "phi" => "`@phi` takes no argument".into(),
                        "max_len" => "write `@max_len(4000)`".into(),
                        _ => did_you_mean(name, INPUT_ATTRIBUTES.iter().copied()).unwrap_or_else(
                            || "the input attributes are `@phi` and `@max_len(N)`".into(),
                        ),
                    }),
                })
            }
        }
    }
    InputDef {
        name: input.name.text.clone(),
        doc: input.docs.text(),
        ty: ty.unwrap_or(super::program::Type::Text),
        default,
        phi,
        max_len,
    }
}

/// `retry = { on = [...], attempts = N, backoff = "..." }`, else what
/// `retries` says.
fn retry_policy(
    properties: &Properties<'_>,
    retries: u32,
    problems: &mut Vec<Problem>,
) -> RetryPolicy {
    let default = RetryPolicy::retries(retries);
    let Some(value) = properties.get("retry") else {
        return default;
    };
    let ast::ValueKind::Table(entries) = &value.kind else {
        problems.push(Problem::InvalidValue {
            key: "retry".into(),
            expected: "a table".into(),
            found: value.kind.describe(),
            span: value.span,
            help: Some("write `retry = { on = [timeout, server_error], attempts = 3, backoff = \"exponential\" }`".into()),
        });
        return default;
    };
    if properties.get("retries").is_some() {
        problems.push(Problem::InvalidValue {
            key: "retry".into(),
            expected: "the only retry setting".into(),
            found: "given with `retries`",
            span: value.span,
            help: Some(
                "keep `retry` (its `attempts` counts the first attempt too) or `retries`, not both"
                    .into(),
            ),
        });
    }
    let policy = Properties::read("retry setting", RETRY_KEYS, entries, problems);
    let classes: Vec<&str> = ErrorClass::ALL.iter().map(|c| c.name()).collect();
    let on = match policy.get("on") {
        None => default.on.clone(),
        Some(_) => policy
            .names("on", problems)
            .into_iter()
            .filter_map(|(name, _)| {
                let class = ErrorClass::named(&name.text);
                if class.is_none() {
                    problems.push(Problem::InvalidValue {
                        key: "retry.on".into(),
                        expected: format!("an error class ({})", classes.join(", ")),
                        found: "an unknown name",
                        span: name.span,
                        help: did_you_mean(&name.text, classes.iter().copied()),
                    });
                }
                class
            })
            .collect(),
    };
    let attempts = policy
        .integer("attempts", ATTEMPTS, problems)
        .unwrap_or(default.attempts);
    let spacing = match policy.text("backoff", problems) {
        None => Spacing::Exponential,
        Some(text) => match text.value.as_str() {
            "exponential" => Spacing::Exponential,
            "constant" => Spacing::Constant,
            "none" => Spacing::Immediate,
            other => {
                problems.push(Problem::InvalidValue {
                    key: "retry.backoff".into(),
                    expected: "\"exponential\", \"constant\" or \"none\"".into(),
                    found: "another string",
                    span: text.span,
                    help: did_you_mean(other, ["exponential", "constant", "none"]),
                });
                Spacing::Exponential
            }
        },
    };
    RetryPolicy {
        on,
        attempts,
        spacing,
    }
}

const RETRY_KEYS: &[&str] = &["on", "attempts", "backoff"];
const ATTEMPTS: std::ops::RangeInclusive<u32> = 1..=11;

/// `output = json { ... }`: the task's typed answer.
fn output_type(
    value: Option<&ast::Value>,
    schemas: &types::Schemas,
    problems: &mut Vec<Problem>,
) -> Option<Type> {
    let value = value?;
    match &value.kind {
        ast::ValueKind::Schema(fields) => types::schema(fields, schemas, problems),
        ast::ValueKind::Name(name) => match schemas.get(&name.text) {
            Some(schema) => Some(schema.clone()),
            None => {
                problems.push(Problem::UnknownType {
                    name: name.text.clone(),
                    span: name.span,
                    help: did_you_mean(&name.text, schemas.keys().map(String::as_str)).or_else(|| {
                        Some("declare it with `schema Name { field: type }`, or write `json { ... }` here".into())
                    }),
                });
                None
            }
        },
        other => {
            problems.push(Problem::InvalidValue {
                key: "output".into(),
                expected: "a JSON schema".into(),
                found: other.describe(),
                span: value.span,
                help: Some("write `output = json { diagnosis: text, urgent: bool }`".into()),
            });
            None
        }
    }
}

const INPUT_ATTRIBUTES: &[&str] = &["phi", "max_len"];
const MAX_LEN: f64 = 10_000_000.0;

fn source_text(value: &ast::Value) -> String {
    match &value.kind {
        ast::ValueKind::Number(n) => n.to_string(),
        other => other.describe().to_string(),
    }
}

#[allow(clippy::too_many_arguments)]
fn task_def(
    index: usize,
    task: &ast::Task,
    names: &Names<'_>,
    workflow: &str,
    agents: &HashMap<String, AgentDef>,
    schemas: &types::Schemas,
    templates: &mut Templates,
    plan: &mut Plan,
    usage: &mut Usage,
    problems: &mut Vec<Problem>,
) -> TaskDef {
    let agent = agents::resolve(&task.agent, agents, problems);
    let properties = Properties::read("task", TASK_PROPERTIES, &task.properties, problems);
    let prompt = properties.text("prompt", problems);
    if properties.get("prompt").is_none() {
        problems.push(Problem::MissingProperty {
            owner: "task",
            name: task.name.text.clone(),
            key: "prompt",
            span: task.name.span,
            help: Some("add `prompt = \"\"\"...\"\"\"` with what the agent should do".into()),
        });
    }
    let when = properties.text("when", problems);
    let condition = when.map(|text| templates.read_expression(text, problems));
    usage.unknown |= condition.as_ref().is_some_and(Option::is_none);
    let reads = prompt.map(|text| templates.read(text, problems));
    usage.unknown |= reads.as_ref().is_some_and(Option::is_none);
    let mut reads = reads.flatten().unwrap_or_default();
    if let Some(condition) = condition.flatten() {
        reads.variables.extend(condition.variables);
        reads.fields.extend(condition.fields);
        reads.comparisons.extend(condition.comparisons);
    }
    for (read, span) in &reads.variables {
        let (read, span) = (read.clone(), *span);
        match resolve_read(names, &read, span, templates, problems) {
            Some(Declared::Input(i)) => usage.input_read[i] = true,
            Some(Declared::Task(dependency)) => {
                usage.task_read[dependency] = true;
                plan.add_edge(
                    dependency,
                    index,
                    Edge {
                        kind: EdgeKind::Reads,
                        span,
                        optional: false,
                    },
                );
            }
            None => {}
        }
    }
    usage.shapes.push(reads);
    for (dependency, optional) in properties.names("after", problems) {
        if let Some(found) = names.task(dependency, workflow, problems) {
            plan.add_edge(
                found,
                index,
                Edge {
                    kind: EdgeKind::After,
                    span: dependency.span,
                    optional,
                },
            );
        }
    }
    let fallback = properties.name("fallback", problems);
    if let (Some(agent), Some(fallback)) = (agent, fallback)
        && agents::resolve(fallback, agents, problems).is_some()
        && let Some(chain) = agents::fallback_loop(&agent.name, &fallback.text, agents)
    {
        problems.push(Problem::FallbackLoop {
            chain: chain.join(" → "),
            span: fallback.span,
            start: agent.name.clone(),
        });
    }
    let retries = properties
        .integer("retries", RETRIES, problems)
        .unwrap_or(DEFAULT_RETRIES);
    TaskDef {
        name: task.name.text.clone(),
        doc: task.docs.text(),
        agent: task.agent.text.clone(),
        prompt: prompt.map(|text| text.value.clone()).unwrap_or_default(),
        priority: properties
            .integer("priority", PRIORITY, problems)
            .unwrap_or(DEFAULT_PRIORITY),
        max_tokens: properties
            .integer("max_tokens", MAX_TOKENS, problems)
            .unwrap_or(DEFAULT_MAX_TOKENS),
        temperature: properties.number("temperature", TEMPERATURE, problems),
        timeout: properties.duration("timeout", TIMEOUT, problems),
        retries,
        retry: retry_policy(&properties, retries, problems),
        fallback: fallback.map(|name| name.text.clone()),
        output: output_type(properties.get("output"), schemas, problems),
        when: when.map(|text| text.value.clone()),
        checks: task
            .checks
            .iter()
            .filter_map(|check| super::answers::check(check, problems))
            .collect(),
        span: task.span,
        deidentify: properties.boolean("deidentify", problems).unwrap_or(false),
    }
}

/// What a name read by a template refers to, or an `unknown-name` problem.
/// Checks each `task.field` against the task's declared output, and that
/// loops go over lists.
fn shapes(
    read: &Read,
    names: &Names<'_>,
    inputs: &[InputDef],
    tasks: &[TaskDef],
    problems: &mut Vec<Problem>,
) {
    let task_of = |chain: &Chain| match names.table.get(chain.variable.as_str()) {
        Some((Declared::Task(t), _)) => tasks.get(*t),
        _ => None,
    };
    for chain in &read.fields {
        let Some(task) = task_of(chain) else { continue };
        let Some((field, span)) = chain.path.first() else {
            continue;
        };
        if TASK_ATTRIBUTES.contains(&field.as_str()) {
            continue;
        }
        let Some(output) = &task.output else {
            problems.push(Problem::UntypedAnswer {
                task: task.name.clone(),
                field: field.clone(),
                span: *span,
            });
            continue;
        };
        field_path(task, output, &chain.path, problems);
    }
    for (chain, literal, ordering) in &read.comparisons {
        let ty = match names.table.get(chain.variable.as_str()) {
            Some((Declared::Input(i), _)) if chain.path.is_empty() => inputs.get(*i).map(|i| &i.ty),
            Some((Declared::Task(t), _)) if !chain.path.is_empty() => {
                let task = &tasks[*t];
                let metadata = TASK_ATTRIBUTES.contains(&chain.path[0].0.as_str());
                task.output
                    .as_ref()
                    .filter(|_| !metadata)
                    .and_then(|output| type_at(output, &chain.path))
            }
            _ => None,
        };
        if let Some(ty) = ty
            && let Some(reason) = mismatch(ty, literal, *ordering)
        {
            problems.push(Problem::TypeMismatch {
                expression: chain_text(chain),
                ty: ty.to_string(),
                reason,
                span: chain.span,
            });
        }
    }
    for chain in &read.loops {
        let Some(task) = task_of(chain) else { continue };
        let ty = match (&task.output, chain.path.as_slice()) {
            (_, []) | (None, _) => None,
            (Some(output), path) => type_at(output, path),
        };
        let is_metadata = chain
            .path
            .first()
            .is_some_and(|(field, _)| TASK_ATTRIBUTES.contains(&field.as_str()));
        if is_metadata || ty.is_some_and(Type::is_list) {
            continue;
        }
        let found = match ty {
            Some(ty) => format!("of type `{ty}`"),
            None if task.output.is_some() => "a JSON object".to_string(),
            None => "a plain-text answer".to_string(),
        };
        problems.push(Problem::LoopOverNonList {
            expression: chain_text(chain),
            found,
            span: chain.span,
        });
    }
}

fn chain_text(chain: &Chain) -> String {
    std::iter::once(chain.variable.as_str())
        .chain(chain.path.iter().map(|(name, _)| name.as_str()))
        .collect::<Vec<_>>()
        .join(".")
}

/// Why comparing a value of type `ty` with `literal` cannot mean what it
/// says, if it cannot.
fn mismatch(ty: &Type, literal: &Literal, ordering: bool) -> Option<String> {
    let ty = match ty {
        Type::Optional(inner) => inner,
        other => other,
    };
    match (ty, literal) {
        (Type::Number, Literal::Number) => None,
        (Type::Bool, Literal::Bool) if !ordering => None,
        (Type::Text | Type::Date, Literal::Text(_)) => None,
        (Type::OneOf(choices), Literal::Text(text)) if ordering || choices.contains(text) => None,
        (Type::OneOf(choices), Literal::Text(text)) => Some(format!(
            "it is never {text:?}: the choices are {}{}",
            choices
                .iter()
                .map(|c| format!("{c:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            did_you_mean(text, choices.iter().map(String::as_str))
                .map(|hint| format!("; {hint}"))
                .unwrap_or_default()
        )),
        (Type::Bool, Literal::Bool) => Some("booleans have no order".into()),
        (_, literal) => Some(format!(
            "it is compared with a {}, which never matches",
            match literal {
                Literal::Text(_) => "string",
                Literal::Number => "number",
                Literal::Bool => "boolean",
            }
        )),
    }
}

/// Walks `path` through nested objects, reporting the first unknown field.
fn field_path(task: &TaskDef, output: &Type, path: &[(String, Span)], problems: &mut Vec<Problem>) {
    let mut current = output;
    for (field, span) in path {
        let Some(fields) = current.fields() else {
            return;
        };
        match fields.iter().find(|f| &f.name == field) {
            Some(found) => current = &found.ty,
            None => {
                let declared: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
                let help = did_you_mean(field, declared.iter().copied())
                    .map(|hint| format!("{hint} the fields are {}", declared.join(", ")))
                    .or_else(|| Some(format!("the fields are {}", declared.join(", "))));
                problems.push(Problem::UnknownField {
                    task: task.name.clone(),
                    field: field.clone(),
                    span: *span,
                    help,
                });
                return;
            }
        }
    }
}

/// The type at `path` inside `ty`, when every step is a declared field.
fn type_at<'t>(ty: &'t Type, path: &[(String, Span)]) -> Option<&'t Type> {
    path.iter().try_fold(ty, |current, (field, _)| {
        current
            .fields()?
            .iter()
            .find(|f| &f.name == field)
            .map(|f| &f.ty)
    })
}

fn resolve_read(
    names: &Names<'_>,
    read: &str,
    span: Span,
    templates: &Templates,
    problems: &mut Vec<Problem>,
) -> Option<Declared> {
    if let Some((declared, _)) = names.table.get(read) {
        return Some(*declared);
    }
    if templates.is_global(read) {
        return None;
    }
    let candidates = names.input_names().chain(names.task_names());
    let help = did_you_mean(read, candidates).or_else(|| {
        let inputs: Vec<&str> = names.input_names().collect();
        let tasks: Vec<&str> = names.task_names().collect();
        Some(format!(
            "templates can read the inputs ({}) and the tasks ({})",
            list_or_none(&inputs),
            list_or_none(&tasks)
        ))
    });
    problems.push(Problem::UnknownName {
        name: read.to_string(),
        span,
        help,
    });
    None
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn cycle_problem(cycle: &[(usize, usize, Edge)], names: &Names<'_>) -> Problem {
    let name = |task: usize| names.tasks[task].name.text.as_str();
    let mut path: Vec<&str> = cycle
        .iter()
        .rev()
        .map(|&(_, dependent, _)| name(dependent))
        .collect();
    path.push(path[0]);
    let edges = cycle
        .iter()
        .map(|&(dependency, dependent, edge)| {
            let label = match edge.kind {
                EdgeKind::Reads => {
                    format!("`{}` reads `{}` here", name(dependent), name(dependency))
                }
                EdgeKind::After => format!(
                    "`{}` runs after `{}` here",
                    name(dependent),
                    name(dependency)
                ),
            };
            LabeledSpan::new_with_span(Some(label), edge.span)
        })
        .collect();
    Problem::Cycle {
        path: path.join(" → "),
        edges,
    }
}

fn redundant_after(plan: &Plan, names: &Names<'_>, problems: &mut Vec<Problem>) {
    for (position, (dependency, dependent, edge)) in plan.edges().enumerate() {
        if edge.kind != EdgeKind::After
            || edge.optional
            || !plan.reaches_without(dependency, dependent, position)
        {
            continue;
        }
        let implied_by = plan
            .edges()
            .enumerate()
            .find(|&(other, (from, to, _))| {
                other != position && from == dependency && to == dependent
            })
            .map(|(_, (_, _, edge))| edge.span);
        problems.push(Problem::RedundantAfter {
            dependency: names.tasks[dependency].name.text.clone(),
            span: edge.span,
            implied_by,
        });
    }
}

fn unused(
    names: &Names<'_>,
    usage: &Usage,
    plan: &Plan,
    has_output: bool,
    problems: &mut Vec<Problem>,
) {
    for (input, read) in names.inputs.iter().zip(&usage.input_read) {
        if !read {
            problems.push(Problem::UnusedInput {
                name: input.name.text.clone(),
                span: input.name.span,
                help: Some(format!(
                    "read it in a prompt or in the output as `{{{{ {} }}}}`, or remove it",
                    input.name.text
                )),
            });
        }
    }
    if !has_output {
        return;
    }
    for (index, task) in names.tasks.iter().enumerate() {
        if !usage.task_read[index] && plan.dependents(index).is_empty() {
            problems.push(Problem::UnusedTask {
                name: task.name.text.clone(),
                span: task.name.span,
            });
        }
    }
}
