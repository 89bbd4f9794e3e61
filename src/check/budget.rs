//! Context-window budgets: how many tokens a task's prompt and answer may
//! need, and a warning when that can exceed the window of the agent that
//! runs it, with the estimate of [`crate::tokens`], which `wfc run` uses to
//! refuse a rendered prompt that does not fit.

use std::collections::{HashMap, HashSet};

use miette::LabeledSpan;
use minijinja::machinery::{self, ast as jinja};

use super::problem::Problem;
use super::program::{AgentDef, InputDef, TaskKind, Type, WorkflowDef};
use super::template;
use crate::ast;
use crate::plan::EdgeKind;
use crate::source::Span;
use crate::tokens::{characters, grouped, tokens};

/// The longest an input's value can be when a template inserts it, in
/// characters; `None` when nothing bounds it.
pub fn input_bound(input: &InputDef) -> Option<u64> {
    input
        .max_len
        .map(u64::from)
        .or_else(|| type_bound(&input.ty))
}

fn type_bound(ty: &Type) -> Option<u64> {
    match ty {
        Type::Text | Type::List(_) | Type::Object(_) | Type::Unknown => None,
        // The longest number JSON writes: `-1.2345678901234567e-300`.
        Type::Number => Some(24),
        Type::Bool => Some(5),
        Type::Date => Some(10),
        Type::OneOf(choices) => choices.iter().map(|c| characters(c)).max(),
        // An absent value renders as `none`.
        Type::Optional(inner) => type_bound(inner).map(|n| n.max(4)),
    }
}

/// The characters a printed passage adds to its text: its id and title.
const PASSAGE_HEADER: u64 = 100;

/// One part of a prompt's worst case that a template read adds.
struct Share {
    name: String,
    span: Span,
    tokens: u64,
    label: String,
}

/// Warns about each task of `def` whose worst-case prompt and answer can
/// exceed its agent's declared context window, and about inputs without
/// `@max_len` that leave such a prompt unbounded.
pub fn check(
    workflow: &ast::Workflow,
    def: &WorkflowDef,
    agents: &HashMap<String, AgentDef>,
    problems: &mut Vec<Problem>,
) {
    for (index, task) in def.tasks.iter().enumerate() {
        let Some(agent) = agents.get(&task.agent) else {
            continue;
        };
        let Some(window) = agent.context_window else {
            continue;
        };
        let Some(node) = workflow.members.iter().find_map(|member| match member {
            ast::Member::Task(node) if node.span == task.span => Some(node),
            _ => None,
        }) else {
            continue;
        };
        let Some(prompt) = prompt_text(node) else {
            continue;
        };
        let Ok(uses) = template::analyze(&prompt.value) else {
            continue;
        };

        let mut shares = Vec::new();
        let mut seen = HashSet::new();
        for (name, range) in &uses.variables {
            let Some(input) = def.inputs.iter().find(|input| &input.name == name) else {
                continue;
            };
            if !seen.insert(name.as_str()) {
                continue;
            }
            let span = prompt.file_span(range.start, range.end);
            match input_bound(input) {
                Some(chars) => shares.push(Share {
                    name: name.clone(),
                    span,
                    tokens: tokens(chars),
                    label: format!(
                        "`{name}`: up to {} characters, about {} tokens",
                        grouped(chars),
                        grouped(tokens(chars))
                    ),
                }),
                None => problems.push(Problem::UnboundedPrompt {
                    input: name.clone(),
                    task: task.name.clone(),
                    span,
                    help: Some(format!(
                        "add @max_len(N) to `{name}` (N in characters; about 4 make a token), so that the prompt fits {}'s context window of {} tokens",
                        agent.name,
                        grouped(u64::from(window))
                    )),
                }),
            }
        }
        let input_tokens: u64 = shares.iter().map(|share| share.tokens).sum();

        let mut upstream = HashSet::new();
        for (dependency, dependent, edge) in def.plan.edges() {
            if dependent != index || edge.kind != EdgeKind::Reads || !upstream.insert(dependency) {
                continue;
            }
            let other = &def.tasks[dependency];
            let (answer, label) = match &other.kind {
                TaskKind::Chat => {
                    let answer = u64::from(other.max_tokens);
                    let label = format!(
                        "`{}`: an answer of up to {} tokens",
                        other.name,
                        grouped(answer)
                    );
                    (answer, label)
                }
                TaskKind::Retrieve(retrieval) => {
                    // Each passage prints with its id and title too.
                    let chars = u64::from(retrieval.top_k)
                        * (u64::from(retrieval.passage_len) + PASSAGE_HEADER);
                    let label = format!(
                        "`{}`: {} passages of up to {} characters, about {} tokens",
                        other.name,
                        retrieval.top_k,
                        grouped(u64::from(retrieval.passage_len)),
                        grouped(tokens(chars))
                    );
                    (tokens(chars), label)
                }
            };
            shares.push(Share {
                name: other.name.clone(),
                span: edge.span,
                tokens: answer,
                label,
            });
        }
        let upstream_tokens: u64 =
            shares.iter().map(|share| share.tokens).sum::<u64>() - input_tokens;

        let text_tokens = tokens(static_characters(&prompt.value));
        let system_tokens = tokens(agent.system.as_deref().map_or(0, characters));
        let answer_tokens = u64::from(task.max_tokens);
        let needed = text_tokens + input_tokens + upstream_tokens + system_tokens + answer_tokens;
        if needed <= u64::from(window) {
            continue;
        }

        shares.sort_by(|a, b| b.tokens.cmp(&a.tokens).then(a.name.cmp(&b.name)));
        let reads = shares
            .iter()
            .take(3)
            .map(|share| LabeledSpan::new_with_span(Some(share.label.clone()), share.span))
            .collect();
        problems.push(Problem::ContextBudget {
            message: format!(
                "the prompt of `{}` and its answer may need about {} tokens, more than {}'s context window of {}",
                task.name,
                grouped(needed),
                agent.name,
                grouped(u64::from(window))
            ),
            span: node.name.span,
            reads,
            help: Some(format!(
                "at most {} tokens of prompt text, {} from inputs, {} from other tasks' answers, {} of system prompt and {} for the answer (tokens ≈ characters / 4); lower @max_len or max_tokens, or run the task on an agent with a larger window",
                grouped(text_tokens),
                grouped(input_tokens),
                grouped(upstream_tokens),
                grouped(system_tokens),
                grouped(answer_tokens),
            )),
        });
    }
}

fn prompt_text(task: &ast::Task) -> Option<&ast::Text> {
    task.properties
        .iter()
        .find_map(|property| match &property.value.kind {
            ast::ValueKind::Text(text) if property.key.text == "prompt" => Some(text),
            _ => None,
        })
}

/// The most characters of a template's own text that one rendering can
/// emit: every literal part once (a loop's body counts once), the longer
/// branch of each `if`.
#[must_use]
pub fn static_characters(source: &str) -> u64 {
    match machinery::parse(
        source,
        "<template>",
        minijinja::syntax::SyntaxConfig::default(),
    ) {
        Ok(tree) => emitted(&tree),
        Err(_) => characters(source),
    }
}

fn emitted(statement: &jinja::Stmt<'_>) -> u64 {
    let all = |statements: &[jinja::Stmt<'_>]| statements.iter().map(emitted).sum::<u64>();
    match statement {
        jinja::Stmt::Template(template) => all(&template.children),
        jinja::Stmt::EmitRaw(raw) => characters(raw.raw),
        jinja::Stmt::ForLoop(for_loop) => all(&for_loop.body) + all(&for_loop.else_body),
        jinja::Stmt::IfCond(condition) => all(&condition.true_body).max(all(&condition.false_body)),
        jinja::Stmt::WithBlock(with) => all(&with.body),
        jinja::Stmt::SetBlock(set) => all(&set.body),
        jinja::Stmt::AutoEscape(block) => all(&block.body),
        jinja::Stmt::FilterBlock(block) => all(&block.body),
        jinja::Stmt::EmitExpr(_) | jinja::Stmt::Set(_) | jinja::Stmt::Do(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_literal_text_of_a_template() {
        assert_eq!(static_characters("Hi {{ name }}!"), 4);
        assert_eq!(
            static_characters("{% if a %}long branch{% else %}short{% endif %}"),
            11
        );
        assert_eq!(
            static_characters("{% for x in xs %}- {{ x }}{% endfor %}"),
            2
        );
    }
}
