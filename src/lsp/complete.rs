//! Completion. Where the cursor is comes from the text as typed (which often
//! does not parse), what to offer from the latest text that parsed.

use std::collections::HashSet;

use lsp_types::{CompletionItem, CompletionItemKind, Position};

use super::convert;
use super::documents::{Analysis, Document};
use crate::ast::{Item, Member, Module, TaskKind};
use crate::check::{TASK_ATTRIBUTES, Type};
use crate::source::{SourceFile, Span};

const TOP: &[&str] = &["agent", "corpus", "schema", "workflow", "import"];
const WORKFLOW: &[&str] = &["input", "task", "retrieve", "output", "test"];
const TEST: &[&str] = &["input", "mock", "expect"];
const TYPES: &[&str] = &["text", "number", "bool", "date", "list", "one_of"];

pub(super) fn completion(document: &Document, position: Position) -> Vec<CompletionItem> {
    let source = SourceFile::new("", document.text.as_str());
    let offset = convert::offset(&source, position);
    let text = source.text();
    let Some(known) = document.last_parsed.as_deref() else {
        return keywords(TOP);
    };
    let Some(module) = known.module() else {
        return Vec::new();
    };
    let line = &text[source.line_start(source.line_index(offset))..offset];
    let word_start = line.trim_end_matches(is_word).len();
    let before_word = &line[..word_start];
    if in_template(&text[..offset]) {
        if let Some(chain) = dotted_chain(before_word) {
            return fields(known, &chain);
        }
        let fresh = document
            .current
            .as_ref()
            .is_some_and(|current| std::ptr::eq(current.as_ref(), known));
        return if fresh {
            let cycle = downstream_of_cursor(known, module, offset);
            template_names(module, Place::Offset(offset))
                .into_iter()
                .filter(|item| !cycle.contains(&item.label))
                .collect()
        } else {
            // The spans are of another text: go by the workflow's name.
            let name = last_workflow_name(&text[..offset]);
            template_names(module, Place::Workflow(name))
        };
    }
    if before_word.trim_end().ends_with("->") {
        return agents(known, module);
    }
    if before_word.trim_end().ends_with(" from") {
        return corpora(known);
    }
    if before_word.trim().is_empty() {
        return keywords(&context(module, offset));
    }
    let typed = before_word.trim_end();
    if typed.ends_with(':') || typed.ends_with('<') {
        return keywords(TYPES);
    }
    Vec::new()
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Whether the text ends inside an open `{{ ... }}` or `{% ... %}`.
fn in_template(before: &str) -> bool {
    let open = before.rfind("{{").max(before.rfind("{%"));
    let close = before.rfind("}}").max(before.rfind("%}"));
    match (open, close) {
        (Some(open), Some(close)) => open > close,
        (Some(_), None) => true,
        _ => false,
    }
}

fn contains(span: Span, offset: usize) -> bool {
    span.start <= offset && offset <= span.end
}

/// Where the cursor is, as far as the latest text that parsed can tell.
enum Place<'a> {
    /// In this very text.
    Offset(usize),
    /// In an edited text, after `workflow NAME`.
    Workflow(Option<&'a str>),
}

/// The name of the last `workflow NAME` in `text`.
fn last_workflow_name(text: &str) -> Option<&str> {
    let mut rest = text;
    let mut found = None;
    while let Some(at) = rest.find("workflow") {
        let before = rest[..at].chars().next_back();
        let after = &rest[at + "workflow".len()..];
        if !before.is_some_and(is_word) && after.starts_with(char::is_whitespace) {
            let after = after.trim_start();
            let name = &after[..after.len() - after.trim_start_matches(is_word).len()];
            if !name.is_empty() {
                found = Some(name);
            }
        }
        rest = after;
    }
    found
}

/// The inputs and tasks of the workflow around the cursor (of every workflow
/// if it is not clear which), but not the task being written.
fn template_names(module: &Module, place: Place<'_>) -> Vec<CompletionItem> {
    let offset = match place {
        Place::Offset(offset) => Some(offset),
        Place::Workflow(_) => None,
    };
    let workflows: Vec<&crate::ast::Workflow> = module
        .items
        .iter()
        .filter_map(|item| match item {
            Item::Workflow(workflow) => Some(workflow),
            _ => None,
        })
        .collect();
    let around: Vec<_> = workflows
        .iter()
        .copied()
        .filter(|w| match place {
            Place::Offset(offset) => contains(w.span, offset),
            Place::Workflow(name) => Some(w.name.text.as_str()) == name,
        })
        .collect();
    let chosen = if around.is_empty() { workflows } else { around };
    let mut items: Vec<CompletionItem> = Vec::new();
    for workflow in chosen {
        for member in &workflow.members {
            let item = match member {
                Member::Input(input) => CompletionItem {
                    label: input.name.text.clone(),
                    kind: Some(CompletionItemKind::VARIABLE),
                    detail: Some("input".into()),
                    documentation: docs(&input.docs),
                    ..CompletionItem::default()
                },
                Member::Task(task) if !offset.is_some_and(|at| contains(task.span, at)) => {
                    CompletionItem {
                        label: task.name.text.clone(),
                        kind: Some(CompletionItemKind::FUNCTION),
                        detail: Some(format!(
                            "{} {} {}",
                            task.kind.keyword(),
                            task.kind.joiner(),
                            task.target.text
                        )),
                        documentation: docs(&task.docs),
                        ..CompletionItem::default()
                    }
                }
                _ => continue,
            };
            if !items.iter().any(|known| known.label == item.label) {
                items.push(item);
            }
        }
    }
    items
}

fn docs(docs: &crate::ast::Docs) -> Option<lsp_types::Documentation> {
    (!docs.lines.is_empty()).then(|| lsp_types::Documentation::String(docs.text()))
}

/// The tasks that depend on the task being written, directly or not: a
/// template of that task may not read them (it would make a cycle).
fn downstream_of_cursor(known: &Analysis, module: &Module, offset: usize) -> HashSet<String> {
    let writing = module.items.iter().find_map(|item| match item {
        Item::Workflow(workflow) => workflow.members.iter().find_map(|member| match member {
            Member::Task(task) if contains(task.span, offset) => Some(task.name.text.as_str()),
            _ => None,
        }),
        _ => None,
    });
    let (Some(writing), Some(program)) = (writing, &known.report.program) else {
        return HashSet::new();
    };
    let mut found = HashSet::new();
    for workflow in &program.workflows {
        let Some(start) = workflow.tasks.iter().position(|t| t.name == writing) else {
            continue;
        };
        let mut stack = workflow.plan.dependents(start);
        while let Some(task) = stack.pop() {
            if found.insert(workflow.tasks[task].name.clone()) {
                stack.extend(workflow.plan.dependents(task));
            }
        }
    }
    found
}

/// `triage.` or `triage.finding.` right before the word being typed: the
/// names of the chain, the last one complete.
fn dotted_chain(before_word: &str) -> Option<Vec<&str>> {
    let chain = before_word.strip_suffix('.')?;
    let start = chain
        .trim_end_matches(|c: char| is_word(c) || c == '.')
        .len();
    let names: Vec<&str> = chain[start..].split('.').collect();
    (!names.is_empty() && names.iter().all(|name| !name.is_empty())).then_some(names)
}

/// What can follow `task.` (its attributes and its answer's fields) or
/// `task.field.` (the fields of an object field), from the latest check.
fn fields(known: &Analysis, chain: &[&str]) -> Vec<CompletionItem> {
    let Some(program) = &known.report.program else {
        return Vec::new();
    };
    let Some(task) = program
        .workflows
        .iter()
        .flat_map(|workflow| &workflow.tasks)
        .find(|task| task.name == chain[0])
    else {
        return Vec::new();
    };
    let mut items = Vec::new();
    if chain.len() == 1 {
        items.extend(TASK_ATTRIBUTES.iter().map(|attribute| CompletionItem {
            label: (*attribute).to_string(),
            kind: Some(CompletionItemKind::PROPERTY),
            detail: Some("task attribute".into()),
            ..CompletionItem::default()
        }));
    }
    let shape = chain[1..]
        .iter()
        .try_fold(task.output.as_ref(), |ty, name| {
            Some(
                ty?.fields()?
                    .iter()
                    .find(|field| field.name == *name)
                    .map(|field| &field.ty),
            )
        });
    if let Some(Some(fields)) = shape.flatten().map(Type::fields) {
        items.extend(
            fields.iter().map(|field| CompletionItem {
                label: field.name.clone(),
                kind: Some(CompletionItemKind::FIELD),
                detail: Some(field.ty.to_string()),
                documentation: (!field.doc.is_empty())
                    .then(|| lsp_types::Documentation::String(field.doc.clone())),
                ..CompletionItem::default()
            }),
        );
    }
    items
}

/// This file's agents and those it imports.
fn agents(known: &Analysis, module: &Module) -> Vec<CompletionItem> {
    let mut names: Vec<String> = module
        .items
        .iter()
        .filter_map(|item| match item {
            Item::Agent(agent) => Some(agent.name.text.clone()),
            _ => None,
        })
        .chain(known.imported_agents.keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    let model = |name: &str| {
        known
            .report
            .program
            .as_ref()?
            .agents
            .iter()
            .find(|agent| agent.name == name)?
            .model
            .clone()
    };
    names
        .into_iter()
        .map(|name| CompletionItem {
            detail: Some(match model(&name) {
                Some(model) => format!("agent ({model})"),
                None => "agent".into(),
            }),
            label: name,
            kind: Some(CompletionItemKind::CLASS),
            ..CompletionItem::default()
        })
        .collect()
}

/// The corpora a retrieval can search: this file's and its imports'.
fn corpora(known: &Analysis) -> Vec<CompletionItem> {
    let Some(program) = known.report.program.as_ref() else {
        return Vec::new();
    };
    program
        .corpora
        .iter()
        .map(|corpus| CompletionItem {
            label: corpus.name.clone(),
            kind: Some(CompletionItemKind::MODULE),
            detail: Some("corpus".into()),
            documentation: (!corpus.doc.is_empty())
                .then(|| lsp_types::Documentation::String(corpus.doc.clone())),
            ..CompletionItem::default()
        })
        .collect()
}

/// The keywords and properties that can start a line at `offset`: the
/// checker's own lists, so completion never offers what it would reject.
fn context(module: &Module, offset: usize) -> Vec<&'static str> {
    for item in &module.items {
        match item {
            Item::Agent(agent) if contains(agent.span, offset) => {
                return crate::check::AGENT_PROPERTIES.to_vec();
            }
            Item::Corpus(corpus) if contains(corpus.span, offset) => {
                return crate::check::CORPUS_PROPERTIES.to_vec();
            }
            Item::Workflow(workflow) if contains(workflow.span, offset) => {
                for member in &workflow.members {
                    match member {
                        Member::Task(task) if contains(task.span, offset) => {
                            return match task.kind {
                                TaskKind::Chat => {
                                    let mut words = crate::check::TASK_PROPERTIES.to_vec();
                                    words.push("expect");
                                    words
                                }
                                TaskKind::Retrieve => crate::check::RETRIEVE_PROPERTIES.to_vec(),
                            };
                        }
                        Member::Test(test) if contains(test.span, offset) => return TEST.to_vec(),
                        _ => {}
                    }
                }
                return WORKFLOW.to_vec();
            }
            _ => {}
        }
    }
    TOP.to_vec()
}

fn keywords(words: &[&str]) -> Vec<CompletionItem> {
    words
        .iter()
        .map(|word| CompletionItem {
            label: word.to_string(),
            kind: Some(CompletionItemKind::KEYWORD),
            ..CompletionItem::default()
        })
        .collect()
}
