//! Context-window budgets: how many tokens a task's prompt and answer may
//! need, and a warning when that can exceed the window of the agent that
//! runs it, with the estimate of [`crate::tokens`], which `wfc run` uses to
//! refuse a rendered prompt that does not fit.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use miette::LabeledSpan;

use super::problem::Problem;
use super::program::{AgentDef, InputDef, TaskKind, Type};
use super::workflow::Checked;
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
struct Share<'a> {
    name: &'a str,
    span: Span,
    tokens: u64,
    source: Source,
}

/// What a read inserts into the prompt.
enum Source {
    /// An input of at most this many characters.
    Input(u64),
    /// A chat task's answer.
    Answer,
    /// A retrieval's passages.
    Passages { top_k: u32, passage_len: u32 },
}

impl Share<'_> {
    /// Written only for a warning: most prompts fit.
    fn label(&self) -> String {
        let Share { name, tokens, .. } = self;
        match self.source {
            Source::Input(chars) => format!(
                "`{name}`: up to {} characters, about {} tokens",
                grouped(chars),
                grouped(*tokens)
            ),
            Source::Answer => format!("`{name}`: an answer of up to {} tokens", grouped(*tokens)),
            Source::Passages { top_k, passage_len } => format!(
                "`{name}`: {top_k} passages of up to {} characters, about {} tokens",
                grouped(u64::from(passage_len)),
                grouped(*tokens)
            ),
        }
    }
}

/// Warns about each task of `def` whose worst-case prompt and answer can
/// exceed its agent's declared context window, and about inputs without
/// `@max_len` that leave such a prompt unbounded.
pub(super) fn check(
    checked: &Checked<'_>,
    agents: &HashMap<String, AgentDef>,
    problems: &mut Vec<Problem>,
) {
    let def = &checked.def;
    for (index, task) in def.tasks.iter().enumerate() {
        let Some(agent) = agents.get(&task.agent) else {
            continue;
        };
        let Some(window) = agent.context_window else {
            continue;
        };
        let node = checked.tasks[index];
        let Some(prompt) = node.text("prompt") else {
            continue;
        };

        let mut shares = Vec::new();
        let mut seen = HashSet::default();
        for (name, span) in &checked.reads[index].variables {
            // A task's reads also hold its `when`'s, outside the prompt.
            if !prompt.span.contains(*span) {
                continue;
            }
            let Some(input) = def.inputs.iter().find(|input| &input.name == name) else {
                continue;
            };
            if !seen.insert(name.as_str()) {
                continue;
            }
            let span = *span;
            match input_bound(input) {
                Some(chars) => shares.push(Share {
                    name,
                    span,
                    tokens: tokens(chars),
                    source: Source::Input(chars),
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

        let mut upstream = HashSet::default();
        for (dependency, edge) in def.plan.edges_into(index) {
            if edge.kind != EdgeKind::Reads || !upstream.insert(dependency) {
                continue;
            }
            let other = &def.tasks[dependency];
            let (answer, source) = match &other.kind {
                TaskKind::Chat => (u64::from(other.max_tokens), Source::Answer),
                TaskKind::Retrieve(retrieval) => {
                    // Each passage prints with its id and title too.
                    let chars = u64::from(retrieval.top_k)
                        * (u64::from(retrieval.passage_len) + PASSAGE_HEADER);
                    let source = Source::Passages {
                        top_k: retrieval.top_k,
                        passage_len: retrieval.passage_len,
                    };
                    (tokens(chars), source)
                }
            };
            shares.push(Share {
                name: &other.name,
                span: edge.span,
                tokens: answer,
                source,
            });
        }
        let upstream_tokens: u64 =
            shares.iter().map(|share| share.tokens).sum::<u64>() - input_tokens;

        let text_tokens = tokens(checked.reads[index].literal_chars);
        let system_tokens = tokens(agent.system.as_deref().map_or(0, characters));
        let answer_tokens = u64::from(task.max_tokens);
        let needed = text_tokens + input_tokens + upstream_tokens + system_tokens + answer_tokens;
        if needed <= u64::from(window) {
            continue;
        }

        shares.sort_by(|a, b| b.tokens.cmp(&a.tokens).then(a.name.cmp(b.name)));
        let reads = shares
            .iter()
            .take(3)
            .map(|share| LabeledSpan::new_with_span(Some(share.label()), share.span))
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
