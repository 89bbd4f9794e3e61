//! A task: its agent, its properties and the policy, shape and checks of
//! its answer.

use std::time::Duration;

use super::agents::{self, TEMPERATURE};
use super::problem::{Problem, did_you_mean};
use super::program::{TASK_ATTRIBUTES, TaskDef, Type};
use super::properties::Properties;
use super::template::Templates;
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

/// Checks one task, recording what it reads and the edges that implies.
pub(super) fn task_def(index: usize, task: &ast::Task, context: &mut Context<'_, '_>) -> TaskDef {
    let Context {
        names,
        workflow,
        agents,
        schemas,
        ..
    } = *context;
    let agent = agents::resolve(&task.agent, agents, context.problems);
    let properties = Properties::read("task", TASK_PROPERTIES, &task.properties, context.problems);
    let prompt = properties.text("prompt", context.problems);
    if properties.get("prompt").is_none() {
        context.problems.push(Problem::MissingProperty {
            owner: "task",
            name: task.name.text.clone(),
            key: "prompt",
            span: task.name.span,
            help: Some("add `prompt = \"\"\"...\"\"\"` with what the agent should do".into()),
        });
    }
    let when = properties.text("when", context.problems);
    let mut reads = context.read(prompt, Templates::read);
    reads.extend(context.read(when, Templates::read_expression));
    context.resolve(&reads, Some(index));
    context.usage.shapes.push(reads);
    for (dependency, optional) in properties.names("after", context.problems) {
        if let Some(found) = names.task(dependency, workflow, context.problems) {
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
    let fallback = properties.name("fallback", context.problems);
    if let (Some(agent), Some(fallback)) = (agent, fallback)
        && agents::resolve(fallback, agents, context.problems).is_some()
        && let Some(chain) = agents::fallback_loop(&agent.name, &fallback.text, agents)
    {
        context.problems.push(Problem::FallbackLoop {
            chain: chain.join(" → "),
            span: fallback.span,
            start: agent.name.clone(),
        });
    }
    let retries = properties
        .integer("retries", RETRIES, context.problems)
        .unwrap_or(DEFAULT_RETRIES);
    TaskDef {
        name: task.name.text.clone(),
        doc: task.docs.text(),
        agent: task.agent.text.clone(),
        prompt: prompt.map(|text| text.value.clone()).unwrap_or_default(),
        priority: properties
            .integer("priority", PRIORITY, context.problems)
            .unwrap_or(DEFAULT_PRIORITY),
        max_tokens: properties
            .integer("max_tokens", MAX_TOKENS, context.problems)
            .unwrap_or(DEFAULT_MAX_TOKENS),
        temperature: properties.number("temperature", TEMPERATURE, context.problems),
        timeout: properties.duration("timeout", TIMEOUT, context.problems),
        retries,
        retry: retry_policy(&properties, retries, context.problems),
        fallback: fallback.map(|name| name.text.clone()),
        output: output_type(properties.get("output"), schemas, context.problems),
        when: when.map(|text| text.value.clone()),
        checks: task
            .checks
            .iter()
            .filter_map(|check| super::answers::check(check, context.problems))
            .collect(),
        span: task.span,
        deidentify: properties
            .boolean("deidentify", context.problems)
            .unwrap_or(false),
        // Set once the PHI flow of the whole workflow is known.
        reads_phi: false,
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
