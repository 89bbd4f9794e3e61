//! Hover: what the checker knows about the agent, task or input under the
//! cursor, as Markdown.

use std::fmt::Write;

use lsp_types::{Hover, HoverContents, MarkupContent, MarkupKind, Position};

use super::convert;
use super::documents::Analysis;
use super::symbols::Kind;
use crate::check::{AgentDef, CorpusDef, InputDef, TaskDef, TaskKind, WorkflowDef};

pub(super) fn hover(analysis: &Analysis, position: Position) -> Option<Hover> {
    let source = analysis.source();
    let occurrence = analysis.index.at(convert::offset(source, position))?;
    let program = analysis.report.program.as_ref()?;
    let key = &occurrence.key;
    let workflow = || {
        program
            .workflows
            .iter()
            .find(|w| Some(&w.name) == key.workflow.as_ref())
    };
    let text = match key.kind {
        Kind::Agent => {
            let agent = program.agents.iter().find(|a| a.name == key.name)?;
            let origin = analysis
                .imported_agents
                .get(&key.name)
                .filter(|_| analysis.index.declaration(key).is_none())
                .and_then(|(source, _)| source.path().file_name())
                .map(|name| name.to_string_lossy().into_owned());
            agent_text(agent, origin.as_deref())
        }
        Kind::Corpus => {
            let corpus = program.corpora.iter().find(|c| c.name == key.name)?;
            let origin = analysis
                .imported_corpora
                .get(&key.name)
                .filter(|_| analysis.index.declaration(key).is_none())
                .and_then(|(source, _)| source.path().file_name())
                .map(|name| name.to_string_lossy().into_owned());
            corpus_text(corpus, origin.as_deref())
        }
        Kind::Workflow => {
            let workflow = program.workflows.iter().find(|w| w.name == key.name)?;
            workflow_text(workflow)
        }
        Kind::Task => {
            let workflow = workflow()?;
            let index = workflow.tasks.iter().position(|t| t.name == key.name)?;
            task_text(workflow, &workflow.tasks[index], index)
        }
        Kind::Input => {
            let input = workflow()?.inputs.iter().find(|i| i.name == key.name)?;
            input_text(input)
        }
        Kind::Field => field_text(analysis, key)?,
    };
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value: text,
        }),
        range: Some(convert::range(source, occurrence.span)),
    })
}

/// A field as declared (its line, and the doc comments above it), and
/// whose answer it belongs to.
fn field_text(analysis: &Analysis, key: &super::symbols::Key) -> Option<String> {
    let declaration = analysis.index.declaration(key)?;
    let text = analysis.source().text();
    let line_start = text[..declaration.span.start]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line_end = text[declaration.span.start..]
        .find('\n')
        .map_or(text.len(), |i| declaration.span.start + i);
    let line = text[line_start..line_end].trim().trim_end_matches(',');
    let docs: Vec<&str> = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .take_while(|line| line.starts_with("///"))
        .map(|line| line.trim_start_matches('/').trim())
        .collect();
    let (owner, _) = key.name.split_once('.')?;
    let mut out = format!("```wf\n{line}\n```");
    let docs: Vec<&str> = docs.into_iter().rev().collect();
    doc(&mut out, &docs.join("\n"));
    let whose = match &key.workflow {
        Some(_) => format!("a field of task `{owner}`'s answer"),
        None => format!("a field of schema `{owner}`"),
    };
    list(&mut out, &[whose]);
    Some(out)
}

fn doc(out: &mut String, doc: &str) {
    if !doc.is_empty() {
        let _ = write!(out, "\n\n{doc}");
    }
}

fn agent_text(agent: &AgentDef, origin: Option<&str>) -> String {
    let mut out = format!("```wf\nagent {}\n```", agent.name);
    doc(&mut out, &agent.doc);
    let mut lines = Vec::new();
    if let Some(model) = &agent.model {
        lines.push(format!("model: `{model}`"));
    }
    if let Some(system) = &agent.system {
        lines.push(format!("system: {system}"));
    }
    if let Some(n) = agent.max_concurrency {
        lines.push(format!("max_concurrency: {n}"));
    }
    if let Some(t) = agent.temperature {
        lines.push(format!("temperature: {t}"));
    }
    if let Some(n) = agent.context_window {
        lines.push(format!("context_window: {n} tokens"));
    }
    if let Some(fallback) = &agent.fallback {
        lines.push(format!("fallback: `{fallback}`"));
    }
    if let Some(origin) = origin {
        lines.push(format!("declared in `{origin}`"));
    }
    list(&mut out, &lines);
    out
}

fn corpus_text(corpus: &CorpusDef, origin: Option<&str>) -> String {
    let mut out = format!("```wf\ncorpus {}\n```", corpus.name);
    doc(&mut out, &corpus.doc);
    let mut lines = vec![format!(
        "passages of at most {} characters",
        corpus.max_passage_len
    )];
    if !corpus.metadata.is_empty() {
        lines.push(format!("metadata: {}", corpus.metadata.join(", ")));
    }
    if corpus.phi_allowed {
        lines.push("may be searched with PHI".into());
    }
    if corpus.holds_phi {
        lines.push("holds PHI".into());
    }
    if let Some(origin) = origin {
        lines.push(format!("declared in `{origin}`"));
    }
    list(&mut out, &lines);
    out
}

fn workflow_text(workflow: &WorkflowDef) -> String {
    let mut out = format!("```wf\nworkflow {}\n```", workflow.name);
    doc(&mut out, &workflow.doc);
    let inputs: Vec<String> = workflow
        .inputs
        .iter()
        .map(|i| format!("`{}`", i.name))
        .collect();
    let tasks: Vec<String> = workflow
        .tasks
        .iter()
        .map(|t| format!("`{}`", t.name))
        .collect();
    list(
        &mut out,
        &[
            format!("inputs: {}", or_none(&inputs)),
            format!("tasks: {}", or_none(&tasks)),
        ],
    );
    out
}

fn task_text(workflow: &WorkflowDef, task: &TaskDef, index: usize) -> String {
    let header = match &task.kind {
        TaskKind::Chat => format!("task {} -> {}", task.name, task.agent),
        TaskKind::Retrieve(_) => format!("retrieve {} from {}", task.name, task.agent),
    };
    let mut out = format!("```wf\n{header}\n```");
    doc(&mut out, &task.doc);
    let dependencies: Vec<String> = workflow
        .plan
        .dependencies(index)
        .into_iter()
        .filter_map(|d| workflow.tasks.get(d))
        .map(|t| format!("`{}`", t.name))
        .collect();
    let mut lines = match &task.kind {
        TaskKind::Chat => vec![
            format!("agent: `{}`", task.agent),
            format!("priority: {}", task.priority),
            format!("max_tokens: {}", task.max_tokens),
        ],
        TaskKind::Retrieve(retrieval) => vec![
            format!("corpus: `{}`", task.agent),
            format!("priority: {}", task.priority),
            format!(
                "top {} passages by {}",
                retrieval.top_k,
                retrieval.mode.name()
            ),
        ],
    };
    if let Some(t) = task.temperature {
        lines.push(format!("temperature: {t}"));
    }
    if let Some(timeout) = task.timeout {
        lines.push(format!("timeout: {}", humantime::format_duration(timeout)));
    }
    lines.push(format!("retries: {}", task.retries));
    lines.push(format!("depends on: {}", or_none(&dependencies)));
    if let Some(output) = &task.output {
        lines.push(format!("answers: `{output}`"));
    }
    list(&mut out, &lines);
    out
}

fn input_text(input: &InputDef) -> String {
    let mut attributes = String::new();
    if let Some(limit) = input.max_len {
        attributes.push_str(&format!(" @max_len({limit})"));
    }
    if input.phi {
        attributes.push_str(" @phi");
    }
    let mut out = format!("```wf\ninput {}: {}{attributes}\n```", input.name, input.ty);
    doc(&mut out, &input.doc);
    let mut lines = vec![format!("type: `{}`", input.ty)];
    if input.phi {
        lines.push("protected health information: only agents that may receive PHI see it".into());
    }
    if let Some(limit) = input.max_len {
        lines.push(format!("at most {limit} characters"));
    }
    match &input.default {
        Some(default) => lines.push(format!("default: `{default}`")),
        None if input.is_required() => lines.push("required".into()),
        None => {}
    }
    list(&mut out, &lines);
    out
}

fn list(out: &mut String, lines: &[String]) {
    out.push('\n');
    for line in lines {
        let _ = write!(out, "\n- {line}");
    }
}

fn or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}
