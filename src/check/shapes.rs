//! The shapes of answers as templates read them: fields of typed answers,
//! comparisons with literals, and loops.

use super::problem::{Problem, did_you_mean};
use super::program::{InputDef, TASK_ATTRIBUTES, TaskDef, Type};
use super::template::{Chain, Comparison, ITEM, Literal, Read};
use super::workflow::{Declared, Names};
use crate::source::Span;

/// Checks each `task.field` a template reads against the task's declared
/// output, comparisons with literals against the declared types, and that
/// loops go over lists.
pub(super) fn check(
    read: &Read,
    names: &Names<'_>,
    inputs: &[InputDef],
    tasks: &[TaskDef],
    problems: &mut Vec<Problem>,
) {
    let task_of = |chain: &Chain<Span>| match names.table.get(chain.variable.as_str()) {
        Some((Declared::Task(t), _)) => tasks.get(*t),
        _ => None,
    };
    for chain in &read.fields {
        let Some(task) = task_of(chain) else { continue };
        let Some((field, span)) = chain.path.first() else {
            continue;
        };
        // Only a retrieval's answer, a list of passages, is looped over
        // itself.
        let over_list = field == ITEM && task.output.as_ref().is_some_and(Type::is_list);
        if TASK_ATTRIBUTES.contains(&field.as_str()) || (field == ITEM && !over_list) {
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
    for Comparison {
        chain,
        literal,
        ordering,
    } in &read.comparisons
    {
        let ty = match names.table.get(chain.variable.as_str()) {
            Some((Declared::Input(i), _)) => {
                inputs.get(*i).and_then(|i| type_at(&i.ty, &chain.path))
            }
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
                span: chain.at,
            });
        }
    }
    for chain in &read.loops {
        let Some(task) = task_of(chain) else { continue };
        let ty = task
            .output
            .as_ref()
            .and_then(|output| type_at(output, &chain.path));
        let is_metadata = chain
            .path
            .first()
            .is_some_and(|(field, _)| TASK_ATTRIBUTES.contains(&field.as_str()));
        if is_metadata || ty.is_some_and(|ty| ty.is_list() || !ty.is_known()) {
            continue;
        }
        let found = match ty {
            Some(Type::Object(_)) if chain.path.is_empty() => "a JSON object".to_string(),
            Some(ty) => format!("of type `{ty}`"),
            None if task.output.is_some() => "a JSON object".to_string(),
            None => "a plain-text answer".to_string(),
        };
        problems.push(Problem::LoopOverNonList {
            expression: chain_text(chain),
            found,
            span: chain.at,
        });
    }
}

fn chain_text(chain: &Chain<Span>) -> String {
    let mut text = chain.variable.clone();
    for (step, _) in &chain.path {
        if step == ITEM {
            text.push_str(ITEM);
        } else {
            text.push('.');
            text.push_str(step);
        }
    }
    text
}

/// The type one step into `ty`: a field of an object, or an item of a
/// list (both through `?`).
fn step_into<'t>(ty: &'t Type, step: &str) -> Option<&'t Type> {
    if step == ITEM {
        return match ty {
            Type::List(item) => Some(item),
            Type::Optional(inner) => step_into(inner, step),
            _ => None,
        };
    }
    ty.fields()?
        .iter()
        .find(|field| field.name == step)
        .map(|field| &field.ty)
}

/// Why comparing a value of type `ty` with `literal` cannot mean what it
/// says, if it cannot.
fn mismatch(ty: &Type, literal: &Literal, ordering: bool) -> Option<String> {
    let ty = match ty {
        Type::Optional(inner) => inner,
        other => other,
    };
    match (ty, literal) {
        (Type::Unknown, _)
        | (Type::Number, Literal::Number)
        | (Type::Text | Type::Date, Literal::Text(_)) => None,
        (Type::Bool, Literal::Bool) if !ordering => None,
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
        if field == ITEM {
            // An item of something that is not a list was reported (or is
            // fine to leave unchecked) where it is looped over.
            let Some(item) = step_into(current, ITEM) else {
                return;
            };
            current = item;
            continue;
        }
        let Some(fields) = current.fields() else {
            return;
        };
        if let Some(found) = fields.iter().find(|f| &f.name == field) {
            current = &found.ty;
        } else {
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

/// The type at `path` inside `ty`, when every step is a declared field.
fn type_at<'t>(ty: &'t Type, path: &[(String, Span)]) -> Option<&'t Type> {
    path.iter()
        .try_fold(ty, |current, (step, _)| step_into(current, step))
}
