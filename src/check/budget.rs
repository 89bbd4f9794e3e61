//! Context-window budgets: how many tokens a task's prompt and answer may
//! need, and a warning when that can exceed the window of the agent that
//! runs it. `wfc run` refuses a rendered prompt that does not fit with the
//! same estimate ([`refusal`]).
//!
//! There is no tokenizer for every model a router may serve, so tokens are
//! estimated from characters: `ceil(characters / 4)`, the usual average for
//! English text with the tokenizers of Llama- and Mistral-family models. It
//! is an estimate, not a count: clinical abbreviations, numbers and other
//! languages can take more tokens per character, so leave some room.

use std::collections::{HashMap, HashSet};

use miette::LabeledSpan;
use minijinja::machinery::{self, ast as jinja};

use super::problem::Problem;
use super::program::{AgentDef, InputDef, Type, WorkflowDef};
use super::template;
use crate::ast;
use crate::plan::EdgeKind;
use crate::source::Span;

/// Characters per token in the estimate.
pub const CHARS_PER_TOKEN: u64 = 4;

/// The estimated tokens of `characters` characters of text.
pub fn tokens(characters: u64) -> u64 {
    characters.div_ceil(CHARS_PER_TOKEN)
}

/// The characters of `text` (not its bytes).
pub fn characters(text: &str) -> u64 {
    text.chars().count() as u64
}

/// `12345` as `12,345`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Why a rendered request cannot be sent to a model with `window` tokens of
/// context: the prompt (with the system prompt) and the longest answer it
/// asks for do not fit together. `None` when they fit.
pub fn refusal(
    task: &str,
    agent: &str,
    system: Option<&str>,
    prompt: &str,
    max_tokens: u32,
    window: u32,
) -> Option<String> {
    let chars = characters(prompt) + system.map_or(0, characters);
    let prompt_tokens = tokens(chars);
    if prompt_tokens + u64::from(max_tokens) <= u64::from(window) {
        return None;
    }
    Some(format!(
        "the prompt of `{task}` is about {} tokens ({} characters) and its answer may take {}; {agent}'s context window is {}",
        grouped(prompt_tokens),
        grouped(chars),
        grouped(u64::from(max_tokens)),
        grouped(u64::from(window)),
    ))
}

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
        Type::Text | Type::List(_) | Type::Object(_) => None,
        // The longest number JSON writes: `-1.2345678901234567e-300`.
        Type::Number => Some(24),
        Type::Bool => Some(5),
        Type::Date => Some(10),
        Type::OneOf(choices) => choices.iter().map(|c| characters(c)).max(),
        // An absent value renders as `none`.
        Type::Optional(inner) => type_bound(inner).map(|n| n.max(4)),
    }
}

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
            let answer = u64::from(other.max_tokens);
            shares.push(Share {
                name: other.name.clone(),
                span: edge.span,
                tokens: answer,
                label: format!(
                    "`{}`: an answer of up to {} tokens",
                    other.name,
                    grouped(answer)
                ),
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
pub fn static_characters(source: &str) -> u64 {
    match machinery::parse(source, "<template>", Default::default()) {
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
    fn estimates_four_characters_a_token_rounding_up() {
        assert_eq!(tokens(0), 0);
        assert_eq!(tokens(1), 1);
        assert_eq!(tokens(4), 1);
        assert_eq!(tokens(36_480), 9_120);
        assert_eq!(grouped(36_480), "36,480");
        assert_eq!(grouped(768), "768");
        assert_eq!(grouped(1_000_000), "1,000,000");
    }

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

    #[test]
    fn refuses_what_cannot_fit() {
        let prompt = "x".repeat(36_480);
        assert_eq!(
            refusal("summary", "Clinical", None, &prompt, 768, 8192).as_deref(),
            Some(
                "the prompt of `summary` is about 9,120 tokens (36,480 characters) and its answer may take 768; Clinical's context window is 8,192"
            )
        );
        assert_eq!(
            refusal("summary", "Clinical", Some("be brief"), "hi", 768, 8192),
            None
        );
    }
}
