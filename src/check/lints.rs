//! Warnings about what is legal but suspicious in a workflow.

use std::collections::BTreeMap;

use miette::LabeledSpan;

use super::problem::Problem;
use super::program::{InputDef, TaskDef, TaskKind, Type};
use super::template;
use super::workflow::{Names, Usage};
use crate::plan::{EdgeKind, Plan};
use crate::source::Span;

/// An `after` that a template read already implies.
pub(super) fn redundant_after(plan: &Plan, names: &Names<'_>, problems: &mut Vec<Problem>) {
    let implied = plan.implied_edges(|edge| edge.kind == EdgeKind::After && !edge.optional);
    for (dependency, dependent, edge) in implied {
        let implied_by = plan
            .edges_into(dependent)
            .into_iter()
            .find(|(from, other)| *from == dependency && other.span != edge.span)
            .map(|(_, other)| other.span);
        problems.push(Problem::RedundantAfter {
            dependency: names.tasks[dependency].name.text.clone(),
            span: edge.span,
            implied_by,
        });
    }
}

/// Inputs nothing reads, and tasks whose answers go nowhere.
pub(super) fn unused(
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

/// An input declared this long (`@max_len`, in characters) is worth a
/// server's prompt cache: re-reading it costs more than the instructions
/// around it. An input without a bound is left alone: most are short.
const LONG_CONTEXT: u32 = 1000;

/// Tasks of one agent that send the same long input after openings of
/// their own: the server's prompt cache reuses only a shared beginning, so
/// each pays for the input again. Reported once per agent and input, at
/// the reads that come late.
pub(super) fn shared_context_late(
    names: &Names<'_>,
    inputs: &[InputDef],
    tasks: &[TaskDef],
    reads: &[template::Read],
    problems: &mut Vec<Problem>,
) {
    let long: Vec<&InputDef> = inputs.iter().filter(|input| is_long(input)).collect();
    if long.is_empty() {
        return;
    }
    // (agent, input) → each task's first read of it.
    let mut groups: BTreeMap<(&str, &str), Vec<FirstRead<'_>>> = BTreeMap::new();
    for ((def, task), read) in tasks.iter().zip(&names.tasks).zip(reads) {
        if def.kind != TaskKind::Chat {
            continue;
        }
        let Some(prompt) = task.text("prompt") else {
            continue;
        };
        let mut seen: Vec<&str> = Vec::new();
        for (name, span) in &read.variables {
            // A task's reads also hold its `when`'s, outside the prompt.
            if !prompt.span.contains(*span) {
                continue;
            }
            let Some(input) = long.iter().find(|input| &input.name == name) else {
                continue;
            };
            if seen.contains(&input.name.as_str()) {
                continue;
            }
            seen.push(&input.name);
            // What precedes the `{{` (or `{%`) around the read.
            let opening = prompt.value[..prompt.value_offset(span.start)]
                .trim_end()
                .trim_end_matches(['{', '%', '-'])
                .trim()
                .to_string();
            groups
                .entry((def.agent.as_str(), input.name.as_str()))
                .or_default()
                .push((def.name.as_str(), opening, *span));
        }
    }
    for ((agent, input), reads) in groups {
        let same_opening = reads.iter().all(|(_, opening, _)| *opening == reads[0].1);
        if reads.len() < 2 || same_opening {
            continue;
        }
        let late: Vec<LabeledSpan> = reads
            .iter()
            .filter(|(_, opening, _)| !opening.is_empty())
            .map(|(task, opening, span)| {
                LabeledSpan::new_with_span(
                    Some(format!(
                        "`{task}` sends {} characters of its own first",
                        opening.chars().count()
                    )),
                    *span,
                )
            })
            .collect();
        let tasks: Vec<String> = reads
            .iter()
            .map(|(task, _, _)| format!("`{task}`"))
            .collect();
        problems.push(Problem::SharedContextLate {
            input: input.to_string(),
            agent: agent.to_string(),
            tasks: tasks.join(", "),
            reads: late,
        });
    }
}

/// A task's first read of an input: the task, what its prompt sends
/// before, and where the read is.
type FirstRead<'a> = (&'a str, String, Span);

fn is_long(input: &InputDef) -> bool {
    let text = match &input.ty {
        Type::Optional(inner) => inner.as_ref(),
        ty => ty,
    };
    matches!(text, Type::Text) && input.max_len.is_some_and(|len| len >= LONG_CONTEXT)
}
