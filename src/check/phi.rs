//! PHI flow control: protected health information (`@phi` inputs, and the
//! passages of corpora that hold it) reaches only agents and corpora that
//! may receive it.
//!
//! The taint follows the data: a prompt that reads a `@phi` input taints its
//! task's answer, and a prompt that reads a tainted answer taints its own, so
//! each task whose prompt reads PHI, directly or not, must run on an agent
//! that may receive it, and so must every agent it may fall back to; a
//! retrieval whose query reads PHI must search a corpus that may receive
//! it. A read
//! through the `redact` filter (`{{ record | redact }}`) does not taint, nor
//! does the answer of a `deidentify = true` task.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::collections::VecDeque;

use miette::LabeledSpan;

use super::problem::Problem;
use super::program::{AgentDef, CorpusDef, TASK_ATTRIBUTES, TaskKind, WorkflowDef};
use super::template::Read;
use super::workflow::Checked;
use crate::ast::{self, ValueKind};
use crate::plan::EdgeKind;
use crate::source::Span;

/// Who says which agents and corpora may receive PHI.
#[derive(Clone, Copy, Default)]
pub enum Policy<'a> {
    /// Each agent's and corpus's `phi_allowed` property in the `.wf` files.
    #[default]
    Declared,
    /// The deployment (the router file), asked receiver by receiver:
    /// whether every endpoint that serves an agent, or the engine that
    /// holds a corpus, is inside the PHI boundary.
    Deployment(&'a dyn Fn(Receiver<'_>) -> bool),
}

/// The agents and corpora a workflow sends text to.
struct Receivers<'a> {
    agents: &'a HashMap<String, AgentDef>,
    corpora: &'a HashMap<String, CorpusDef>,
}

impl Policy<'_> {
    fn allows(&self, receiver: Receiver<'_>, receivers: &Receivers<'_>) -> bool {
        match (self, receiver) {
            (Policy::Declared, Receiver::Agent(name)) => {
                receivers.agents.get(name).is_some_and(|a| a.phi_allowed)
            }
            (Policy::Declared, Receiver::Corpus(name)) => {
                receivers.corpora.get(name).is_some_and(|c| c.phi_allowed)
            }
            (Policy::Deployment(allows), receiver) => allows(receiver),
        }
    }

    fn help(&self, receiver: &Receiver<'_>) -> String {
        let allow = match (self, receiver) {
            (Policy::Declared, _) => format!(
                "declare `phi_allowed = true` on {receiver} only if it runs inside the PHI boundary"
            ),
            (Policy::Deployment(_), Receiver::Agent(agent)) => format!(
                "set `phi_allowed = true` on every endpoint of `{agent}` in the router file only if they run inside the PHI boundary"
            ),
            (Policy::Deployment(_), Receiver::Corpus(corpus)) => format!(
                "search `{corpus}` in an index on local disk (`path` in the router file), or set `phi_allowed = true` on its engine there only if that engine runs inside the PHI boundary"
            ),
        };
        format!(
            "{allow}; otherwise read the data through `| redact`, or have a `deidentify = true` task remove the identifiers first"
        )
    }
}

/// Where PHI is sent.
#[derive(Clone, Copy, Debug)]
pub enum Receiver<'a> {
    Agent(&'a str),
    Corpus(&'a str),
}

impl std::fmt::Display for Receiver<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Receiver::Agent(name) => write!(f, "agent `{name}`"),
            Receiver::Corpus(name) => write!(f, "corpus `{name}`"),
        }
    }
}

/// How PHI reached a task's prompt.
#[derive(Clone, Copy)]
enum Via {
    /// The prompt reads this `@phi` input here.
    Input(usize, Span),
    /// The prompt reads this tainted task here.
    Task(usize, Span),
}

/// What one task's prompt reads, for taint purposes: only what the prompt
/// sends counts. A `when` condition is evaluated by wfc and sent nowhere,
/// and `task.ok` (like the other attributes but `text`) tells whether a
/// task answered, not what: the one implicit flow the check allows.
#[derive(Default)]
struct Prompt {
    /// `@phi` inputs read without `redact`, with where.
    phi_reads: Vec<(usize, Span)>,
    /// Where the prompt puts a name's value into the text it sends: not
    /// through `redact`, not only an attribute such as `.ok`.
    value_reads: HashSet<Span>,
}

/// Reports each path on which PHI reaches an agent or a corpus that may
/// not receive it; returns, for each task, whether its prompt (or query)
/// carries PHI. Runs after the workflow itself checked, and reports nothing
/// a template or name problem already explains.
pub(super) fn check(
    checked: &Checked<'_>,
    agents: &HashMap<String, AgentDef>,
    corpora: &HashMap<String, CorpusDef>,
    policy: Policy<'_>,
    problems: &mut Vec<Problem>,
) -> Vec<bool> {
    let def = &checked.def;
    let untainted = vec![false; def.tasks.len()];
    let phi_inputs: Vec<usize> = (0..def.inputs.len())
        .filter(|&i| def.inputs[i].phi)
        .collect();
    // Retrievals from a corpus that holds PHI: their answers are PHI.
    let phi_passages: Vec<usize> = (0..def.tasks.len())
        .filter(|&t| {
            matches!(def.tasks[t].kind, TaskKind::Retrieve(_))
                && corpora
                    .get(&def.tasks[t].agent)
                    .is_some_and(|c| c.holds_phi)
        })
        .collect();
    if phi_inputs.is_empty() && phi_passages.is_empty() {
        return untainted;
    }
    let prompts: Vec<Prompt> = checked
        .tasks
        .iter()
        .zip(&checked.reads)
        .map(|(task, read)| prompt(task, read, def, &phi_inputs))
        .collect();

    let mut reached: Vec<Option<Via>> = vec![None; def.tasks.len()];
    let mut queue: VecDeque<usize> = phi_passages.iter().copied().collect();
    for (task, prompt) in prompts.iter().enumerate() {
        if let Some(&(input, span)) = prompt.phi_reads.first() {
            reached[task] = Some(Via::Input(input, span));
            queue.push_back(task);
        }
    }
    while let Some(task) = queue.pop_front() {
        if def.tasks[task].deidentify {
            continue;
        }
        for (to, edge) in def.plan.edges_from(task) {
            if edge.kind != EdgeKind::Reads
                || reached[to].is_some()
                || !prompts[to].value_reads.contains(&edge.span)
            {
                continue;
            }
            reached[to] = Some(Via::Task(task, edge.span));
            queue.push_back(to);
        }
    }

    let receivers = Receivers { agents, corpora };
    for (index, task) in def.tasks.iter().enumerate() {
        if reached[index].is_none() {
            continue;
        }
        let ast_task = checked.tasks[index];
        let mut report = |receiver: Receiver<'_>, label: LabeledSpan| {
            let (origin, mut path) = path(index, &reached, checked);
            path.insert(0, label);
            problems.push(Problem::PhiFlow {
                origin,
                receiver: receiver.to_string(),
                path,
                help: Some(policy.help(&receiver)),
            });
        };
        let receiver = match task.kind {
            TaskKind::Chat if agents.contains_key(&task.agent) => Receiver::Agent(&task.agent),
            TaskKind::Retrieve(_) if corpora.contains_key(&task.agent) => {
                Receiver::Corpus(&task.agent)
            }
            // Not declared: reported already.
            _ => continue,
        };
        if !policy.allows(receiver, &receivers) {
            let verb = match receiver {
                Receiver::Agent(_) => "sends it to",
                Receiver::Corpus(_) => "searches",
            };
            report(
                receiver,
                LabeledSpan::new_primary_with_span(
                    Some(format!(
                        "`{}` {verb} `{}`, which may not receive PHI",
                        task.name, task.agent
                    )),
                    ast_task.target.span,
                ),
            );
        }
        let own_fallback = fallback_span(ast_task);
        for (fallback, via) in fallbacks(task.agent.as_str(), task.fallback.as_deref(), agents) {
            if fallback == task.agent || policy.allows(Receiver::Agent(fallback), &receivers) {
                continue;
            }
            let label = match (via, own_fallback) {
                (None, Some(span)) => LabeledSpan::new_primary_with_span(
                    Some(format!(
                        "`{}` may fall back to `{fallback}`, which may not receive PHI",
                        task.name
                    )),
                    span,
                ),
                _ => LabeledSpan::new_primary_with_span(
                    Some(format!(
                        "`{}` may fall back to `{fallback}` (the fallback of `{}`), which may not receive PHI",
                        task.name,
                        via.unwrap_or(&task.agent)
                    )),
                    ast_task.target.span,
                ),
            };
            report(Receiver::Agent(fallback), label);
        }
    }
    reached.iter().map(Option::is_some).collect()
}

/// The agents a task on `agent` may fall back to, in order, each with the
/// agent whose declared fallback leads to it (`None` for the task's own).
fn fallbacks<'a>(
    agent: &'a str,
    own: Option<&'a str>,
    agents: &'a HashMap<String, AgentDef>,
) -> Vec<(&'a str, Option<&'a str>)> {
    let declared = |name: &str| agents.get(name).and_then(|a| a.fallback.as_deref());
    let mut chain: Vec<(&str, Option<&str>)> = Vec::new();
    let mut next = match own {
        Some(own) => Some((own, None)),
        None => declared(agent).map(|f| (f, Some(agent))),
    };
    while let Some((name, via)) = next {
        if name == agent || chain.iter().any(|(seen, _)| *seen == name) {
            break;
        }
        chain.push((name, via));
        next = declared(name).map(|f| (f, Some(name)));
    }
    chain
}

/// Where the PHI comes from (a `@phi` input, or a corpus that holds PHI)
/// and a label for each read on the way to `task`, the source first.
fn path(task: usize, reached: &[Option<Via>], checked: &Checked<'_>) -> (String, Vec<LabeledSpan>) {
    let def = &checked.def;
    let mut labels = Vec::new();
    let mut at = task;
    let mut steps = 0;
    loop {
        let here = &def.tasks[at].name;
        match reached[at] {
            Some(Via::Task(from, span)) if steps < reached.len() => {
                let from_name = &def.tasks[from].name;
                labels.push(LabeledSpan::new_with_span(
                    Some(format!("`{here}` reads `{from_name}` here")),
                    span,
                ));
                at = from;
                steps += 1;
            }
            Some(Via::Input(input, span)) => {
                let name = def.inputs[input].name.clone();
                labels.push(LabeledSpan::new_with_span(
                    Some(format!("`{here}` reads `{name}` here")),
                    span,
                ));
                if let Some(declared) = phi_mark(checked.inputs[input]) {
                    labels.push(LabeledSpan::new_with_span(
                        Some(format!("`{name}` is protected health information")),
                        declared,
                    ));
                }
                labels.reverse();
                return (format!("`{name}`"), labels);
            }
            _ => {
                // Only a retrieval from a corpus that holds PHI starts a
                // path without an input.
                let corpus = &def.tasks[at].agent;
                labels.push(LabeledSpan::new_with_span(
                    Some(format!("`{corpus}` holds protected health information")),
                    checked.tasks[at].target.span,
                ));
                labels.reverse();
                return (format!("corpus `{corpus}`"), labels);
            }
        }
    }
}

/// Where `input` is marked `@phi`.
fn phi_mark(input: &ast::Input) -> Option<Span> {
    input
        .attributes
        .iter()
        .find(|attribute| attribute.name.text == "phi")
        .map(|attribute| attribute.span)
}

fn fallback_span(task: &ast::Task) -> Option<Span> {
    task.properties
        .iter()
        .find(|property| property.key.text == "fallback")
        .map(|property| property.value.span)
}

/// The templates whose text a task sends: a chat task's prompt; a
/// retrieval's query and filters, which go to the corpus's engine.
fn sent(task: &ast::Task) -> Vec<&ast::Text> {
    let mut texts = Vec::new();
    for property in &task.properties {
        match (property.key.text.as_str(), &property.value.kind) {
            ("prompt" | "query", ValueKind::Text(text)) => texts.push(text),
            ("filter", ValueKind::Table(entries)) => {
                texts.extend(entries.iter().filter_map(|entry| match &entry.value.kind {
                    ValueKind::Text(text) => Some(text),
                    _ => None,
                }));
            }
            _ => {}
        }
    }
    texts
}

/// What `task` sends, from what its templates read (`read`, which also
/// holds its `when`'s reads: those are not sent).
fn prompt(task: &ast::Task, read: &Read, def: &WorkflowDef, phi_inputs: &[usize]) -> Prompt {
    let texts: Vec<Span> = sent(task).iter().map(|text| text.span).collect();
    let is_sent = |at: &Span| texts.iter().any(|text| text.contains(*at));
    // A read that is only `task.ok`, `task.error` and the like.
    let metadata_only = |name: &str, at: &Span| {
        read.fields.iter().any(|chain| {
            chain.variable == name
                && chain.at.start == at.start
                && chain.path.first().is_some_and(|(field, _)| {
                    field != "text" && TASK_ATTRIBUTES.contains(&field.as_str())
                })
        })
    };
    let value_reads: Vec<(&String, Span)> = read
        .variables
        .iter()
        .filter(|(name, at)| is_sent(at) && !read.redacted.contains(at) && !metadata_only(name, at))
        .map(|(name, at)| (name, *at))
        .collect();
    let phi_reads = value_reads
        .iter()
        .filter_map(|(name, at)| {
            let input = phi_inputs
                .iter()
                .copied()
                .find(|&i| def.inputs[i].name == **name)?;
            Some((input, *at))
        })
        .collect();
    Prompt {
        phi_reads,
        value_reads: value_reads.into_iter().map(|(_, at)| at).collect(),
    }
}
