//! A task: its agent, its properties and the policy, shape and checks of
//! its answer.

use std::time::Duration;

use super::agents::{self, TEMPERATURE};
use super::corpora;
use super::problem::{Problem, did_you_mean};
use super::program::{
    Check, CorpusDef, Retrieval, SearchMode, TASK_ATTRIBUTES, TaskDef, TaskKind, Type,
};
use super::properties::Properties;
use super::template::{Read, Templates};
use super::types;
use super::workflow::Context;
use crate::ast;
use crate::plan::{Edge, EdgeKind};
use crate::policy::{ErrorClass, RetryPolicy, Spacing};

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

pub(super) const PRIORITY: std::ops::RangeInclusive<u32> = 1..=10;
pub(super) const DEFAULT_PRIORITY: u32 = 1;
pub(super) const MAX_TOKENS: std::ops::RangeInclusive<u32> = 1..=131_072;
pub(super) const DEFAULT_MAX_TOKENS: u32 = 512;
pub(super) const TIMEOUT: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_hours(1);
pub(super) const RETRIES: std::ops::RangeInclusive<u32> = 0..=10;
pub(super) const DEFAULT_RETRIES: u32 = 2;

/// What a retrieval task may set: what it searches for and how, and when
/// and how it runs like any task.
pub const RETRIEVE_PROPERTIES: &[&str] = &[
    "query", "top_k", "mode", "filter", "priority", "timeout", "retries", "after", "when", "retry",
];

pub(super) const TOP_K: std::ops::RangeInclusive<u32> = 1..=50;
pub(super) const DEFAULT_TOP_K: u32 = 5;

/// The property holding the text a task of `kind` sends: an agent's
/// prompt, a corpus's query.
fn sent(kind: ast::TaskKind) -> &'static str {
    match kind {
        ast::TaskKind::Chat => "prompt",
        ast::TaskKind::Retrieve => "query",
    }
}

/// The text each task of `workflows` sends, in file order.
pub(super) fn sent_texts<'a>(
    workflows: &[&'a ast::Workflow],
) -> impl Iterator<Item = &'a ast::Text> {
    workflows
        .iter()
        .flat_map(|workflow| &workflow.members)
        .filter_map(|member| match member {
            ast::Member::Task(task) => Some(task),
            _ => None,
        })
        .flat_map(|task| {
            let sent = sent(task.kind);
            task.properties
                .iter()
                .filter(move |property| property.key.text == sent)
        })
        .filter_map(|property| match &property.value.kind {
            ast::ValueKind::Text(text) => Some(text),
            _ => None,
        })
}

/// Checks one task, recording what it reads and the edges that implies.
pub(super) fn task_def(index: usize, task: &ast::Task, context: &mut Context<'_, '_>) -> TaskDef {
    let sent = sent(task.kind);
    let (owner, known, help) = match task.kind {
        ast::TaskKind::Chat => (
            "task",
            TASK_PROPERTIES,
            "add `prompt = \"\"\"...\"\"\"` with what the agent should do",
        ),
        ast::TaskKind::Retrieve => (
            "retrieval task",
            RETRIEVE_PROPERTIES,
            "add `query = \"...\"` with what to search the corpus for",
        ),
    };
    let properties = Properties::read(owner, known, &task.properties, context.problems);
    let prompt = properties.text(sent, context.problems);
    if properties.get(sent).is_none() {
        context.problems.push(Problem::MissingProperty {
            owner,
            name: task.name.text.clone(),
            key: sent,
            span: task.name.span,
            help: Some(help.into()),
        });
    }
    let when = properties.text("when", context.problems);
    let mut reads = context.read(prompt, Templates::read);
    reads.extend(context.read(when, Templates::read_expression));
    let kind = match task.kind {
        ast::TaskKind::Chat => TaskKind::Chat,
        ast::TaskKind::Retrieve => {
            let (retrieval, filter_reads) = retrieval(task, &properties, context);
            reads.extend(filter_reads);
            TaskKind::Retrieve(retrieval)
        }
    };
    context.resolve(&reads, Some(index));
    let cited = cited(index, task, &reads, context);
    context.usage.shapes.push(reads);
    for (dependency, optional) in properties.names("after", context.problems) {
        if let Some(found) = context
            .names
            .task(dependency, context.workflow, context.problems)
        {
            context.plan.add_edge(
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
    let retries = properties
        .integer("retries", RETRIES, context.problems)
        .unwrap_or(DEFAULT_RETRIES);
    let mut def = TaskDef {
        name: task.name.text.clone(),
        doc: task.docs.text(),
        kind,
        agent: task.target.text.clone(),
        prompt: prompt.map(|text| text.value.clone()).unwrap_or_default(),
        priority: properties
            .integer("priority", PRIORITY, context.problems)
            .unwrap_or(DEFAULT_PRIORITY),
        max_tokens: DEFAULT_MAX_TOKENS,
        temperature: None,
        timeout: properties.duration("timeout", TIMEOUT, context.problems),
        retries,
        retry: retry_policy(&properties, retries, context.problems),
        fallback: None,
        output: None,
        when: when.map(|text| text.value.clone()),
        checks: task
            .checks
            .iter()
            .filter(|check| !matches!(check.kind, ast::CheckKind::Cites(_)))
            .filter_map(|check| super::answers::check(check, context.problems))
            .chain(cited)
            .collect(),
        span: task.span,
        deidentify: false,
        // Set once the PHI flow of the whole workflow is known.
        reads_phi: false,
    };
    match task.kind {
        ast::TaskKind::Chat => chat(&mut def, task, &properties, context),
        ast::TaskKind::Retrieve => {
            let corpus = corpora::resolve(
                &task.target,
                context.corpora,
                context.agents,
                context.problems,
            );
            def.output = Some(corpus.map_or(Type::Unknown, CorpusDef::passages_type));
            // A search generates no tokens: nothing to budget or to weigh
            // on the critical path.
            def.max_tokens = 0;
            if let Some(check) = task.checks.first() {
                context.problems.push(Problem::InvalidValue {
                    key: "expect".into(),
                    expected: "on a task that asks an agent".into(),
                    found: "on a retrieval task".into(),
                    span: check.span,
                    help: Some("a retrieval's passages are what the corpus holds; check the answer of the task that reads them, e.g. `expect cites NAME` there".into()),
                });
            }
        }
    }
    def
}

/// What only a chat task has: its agent, answer length, sampling,
/// fallback and typed answer.
fn chat(
    def: &mut TaskDef,
    task: &ast::Task,
    properties: &Properties<'_>,
    context: &mut Context<'_, '_>,
) {
    let problems = &mut *context.problems;
    let agent = agents::resolve(&task.target, context.agents, problems);
    let fallback = properties.name("fallback", problems);
    if let (Some(agent), Some(fallback)) = (agent, fallback)
        && agents::resolve(fallback, context.agents, problems).is_some()
        && let Some(chain) = agents::fallback_loop(&agent.name, &fallback.text, context.agents)
    {
        problems.push(Problem::FallbackLoop {
            chain: chain.join(" → "),
            span: fallback.span,
            start: agent.name.clone(),
        });
    }
    // The unknown-agent problem just reported names the likelier mistake.
    if agent.is_none()
        && context.corpora.contains_key(&task.target.text)
        && let Some(Problem::UnknownAgent { help, .. }) = problems.last_mut()
    {
        *help = Some(format!(
            "`{}` is a corpus: search it with `retrieve {} from {}`",
            task.target.text, task.name.text, task.target.text
        ));
    }
    def.max_tokens = properties
        .integer("max_tokens", MAX_TOKENS, problems)
        .unwrap_or(DEFAULT_MAX_TOKENS);
    def.temperature = properties.number("temperature", TEMPERATURE, problems);
    def.fallback = fallback.map(|name| name.text.clone());
    def.output = output_type(properties.get("output"), context.schemas, problems);
    def.deidentify = properties.boolean("deidentify", problems).unwrap_or(false);
}

/// How a retrieval task searches, and what its filters' templates read.
fn retrieval(
    task: &ast::Task,
    properties: &Properties<'_>,
    context: &mut Context<'_, '_>,
) -> (Retrieval, Read) {
    let top_k = properties
        .integer("top_k", TOP_K, context.problems)
        .unwrap_or(DEFAULT_TOP_K);
    let mode = properties
        .name("mode", context.problems)
        .map_or(SearchMode::Bm25, |name| {
            let modes = SearchMode::ALL.map(SearchMode::name);
            SearchMode::ALL
                .into_iter()
                .find(|mode| mode.name() == name.text)
                .unwrap_or_else(|| {
                    context.problems.push(Problem::InvalidValue {
                        key: "mode".into(),
                        expected: "bm25, dense or hybrid".into(),
                        found: format!("`{}`", name.text),
                        span: name.span,
                        help: did_you_mean(&name.text, modes).or_else(|| Some("bm25 ranks by the words the passages share with the query; dense by meaning, with the deployment's embeddings; hybrid fuses both".into())),
                    });
                    SearchMode::Bm25
                })
        });
    let passage_len = context
        .corpora
        .get(&task.target.text)
        .map_or(corpora::DEFAULT_MAX_PASSAGE_LEN, |corpus| {
            corpus.max_passage_len
        });
    let (filters, reads) = filters(task, properties, context);
    let retrieval = Retrieval {
        top_k,
        mode,
        filters,
        passage_len,
    };
    (retrieval, reads)
}

/// `filter = { field = "template", ... }`: each field one the corpus
/// declares, each value a template; with what the templates read.
fn filters(
    task: &ast::Task,
    properties: &Properties<'_>,
    context: &mut Context<'_, '_>,
) -> (Vec<(String, String)>, Read) {
    let mut filters = Vec::new();
    let mut reads = Read::default();
    let Some(value) = properties.get("filter") else {
        return (filters, reads);
    };
    let ast::ValueKind::Table(entries) = &value.kind else {
        context.problems.push(Problem::InvalidValue {
            key: "filter".into(),
            expected: "a table".into(),
            found: value.kind.describe().to_string(),
            span: value.span,
            help: Some("write `filter = { payer = \"{{ payer }}\" }`".into()),
        });
        return (filters, reads);
    };
    let corpus = context.corpora.get(&task.target.text);
    let fields: Vec<&str> = corpus
        .map(|corpus| corpus.metadata.iter().map(String::as_str).collect())
        .unwrap_or_default();
    for entry in entries {
        let key = entry.key.text.as_str();
        let known = key == "source" || fields.contains(&key);
        if corpus.is_some() && !known {
            context.problems.push(Problem::InvalidValue {
                key: format!("filter.{key}"),
                expected: format!(
                    "a metadata field of corpus `{}`",
                    task.target.text
                ),
                found: format!("`{key}`"),
                span: entry.key.span,
                help: did_you_mean(key, fields.iter().copied().chain(["source"])).or_else(|| {
                    Some(format!(
                        "filters name `source` or the fields the corpus declares in `metadata = [...]` ({})",
                        if fields.is_empty() { "none".to_string() } else { fields.join(", ") }
                    ))
                }),
            });
        }
        let ast::ValueKind::Text(text) = &entry.value.kind else {
            context.problems.push(Problem::InvalidValue {
                key: format!("filter.{key}"),
                expected: "a string".into(),
                found: entry.value.kind.describe().to_string(),
                span: entry.value.span,
                help: Some("write the value a passage must have, as a string; it may read inputs: `\"{{ payer }}\"`".into()),
            });
            continue;
        };
        reads.extend(context.read(Some(text), Templates::read));
        filters.push((key.to_string(), text.value.clone()));
    }
    (filters, reads)
}

/// `expect cites NAME`: the retrieval task whose passage ids the answer
/// must name, which the prompt must read (the passages it may cite).
fn cited(
    index: usize,
    task: &ast::Task,
    reads: &Read,
    context: &mut Context<'_, '_>,
) -> Vec<Check> {
    let mut checks = Vec::new();
    for check in &task.checks {
        let ast::CheckKind::Cites(name) = &check.kind else {
            continue;
        };
        let Some(found) = context.names.task(name, context.workflow, context.problems) else {
            continue;
        };
        let help = if context.names.tasks[found].kind != ast::TaskKind::Retrieve {
            Some(format!(
                "`{}` asks an agent; `cites` names a retrieval task (`retrieve {} from Corpus`)",
                name.text, name.text
            ))
        } else if found == index || !reads.variables.iter().any(|(read, _)| *read == name.text) {
            Some(format!(
                "the prompt must show the passages it cites: read them, e.g. `{{% for passage in {} %}}[{{{{ passage.id }}}}] {{{{ passage.text }}}}{{% endfor %}}`",
                name.text
            ))
        } else {
            checks.push(Check::Cites(name.text.clone()));
            continue;
        };
        context.problems.push(Problem::InvalidValue {
            key: "cites".into(),
            expected: "a retrieval task this task's prompt reads".into(),
            found: format!("`{}`", name.text),
            span: name.span,
            help,
        });
    }
    checks
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
            found: value.kind.describe().to_string(),
            span: value.span,
            help: Some("write `retry = { on = [timeout, server_error], attempts = 3, backoff = \"exponential\" }`".into()),
        });
        return default;
    };
    if properties.get("retries").is_some() {
        problems.push(Problem::InvalidValue {
            key: "retry".into(),
            expected: "the only retry setting".into(),
            found: "given with `retries`".into(),
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
                        found: format!("`{}`", name.text),
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
                    found: format!("\"{other}\""),
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
        ast::ValueKind::Schema(fields) => {
            for field in fields {
                reserved(&field.name.text, field.name.span, problems);
            }
            Some(types::schema(fields, schemas, problems))
        }
        ast::ValueKind::Name(name) => {
            if let Some(schema) = schemas.get(&name.text) {
                for field in schema.fields().unwrap_or_default() {
                    reserved(&field.name, name.span, problems);
                }
                Some(schema.clone())
            } else {
                problems.push(Problem::UnknownType {
                name: name.text.clone(),
                span: name.span,
                help: did_you_mean(&name.text, schemas.keys().map(String::as_str)).or_else(|| {
                    Some("declare it with `schema Name { field: type }`, or write `json { ... }` here".into())
                }),
            });
                Some(Type::Unknown)
            }
        }
        other => {
            problems.push(Problem::InvalidValue {
                key: "output".into(),
                expected: "a JSON schema".into(),
                found: other.describe().to_string(),
                span: value.span,
                help: Some("write `output = json { diagnosis: text, urgent: bool }`".into()),
            });
            None
        }
    }
}

/// A top-level field of a task's answer named like one of the task's own
/// attributes could never be read: `task.ok` is the attribute.
fn reserved(name: &str, span: crate::source::Span, problems: &mut Vec<Problem>) {
    if TASK_ATTRIBUTES.contains(&name) {
        problems.push(Problem::ReservedField {
            name: name.to_string(),
            span,
            help: Some(format!(
                "templates read a task's {} as its attributes, so a field of that name could never be read; rename it (e.g. `{name}_value`)",
                TASK_ATTRIBUTES.join(", ")
            )),
        });
    }
}
