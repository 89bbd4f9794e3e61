//! Warnings about what is legal but suspicious in a workflow.

use super::problem::Problem;
use super::workflow::{Names, Usage};
use crate::plan::{EdgeKind, Plan};

/// An `after` that a template read already implies.
pub(super) fn redundant_after(plan: &Plan, names: &Names<'_>, problems: &mut Vec<Problem>) {
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
