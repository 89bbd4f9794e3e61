//! The document outline and whole-file formatting.

use lsp_types::{DocumentSymbol, Range, SymbolKind, TextEdit};

use super::convert;
use super::documents::Analysis;
use crate::ast::{Item, Member};
use crate::source::{SourceFile, Span};

/// Agents, and workflows with their inputs, tasks, output and tests.
pub(super) fn symbols(analysis: &Analysis) -> Vec<DocumentSymbol> {
    let Some(module) = analysis.module() else {
        return Vec::new();
    };
    let source = analysis.source();
    let text = source.text();
    module
        .items
        .iter()
        .filter_map(|item| match item {
            Item::Import(_) => None,
            Item::Agent(agent) => Some(symbol(
                source,
                &agent.name.text,
                SymbolKind::CLASS,
                Some("agent".into()),
                agent.span,
                agent.name.span,
                Vec::new(),
            )),
            Item::Corpus(corpus) => Some(symbol(
                source,
                &corpus.name.text,
                SymbolKind::MODULE,
                Some("corpus".into()),
                corpus.span,
                corpus.name.span,
                Vec::new(),
            )),
            Item::Schema(schema) => Some(symbol(
                source,
                &schema.name.text,
                SymbolKind::STRUCT,
                Some("schema".into()),
                schema.span,
                schema.name.span,
                Vec::new(),
            )),
            Item::Workflow(workflow) => {
                let children = workflow
                    .members
                    .iter()
                    .map(|member| match member {
                        Member::Input(input) => symbol(
                            source,
                            &input.name.text,
                            SymbolKind::VARIABLE,
                            Some(text[input.ty.span.start..input.ty.span.end].to_string()),
                            input.span,
                            input.name.span,
                            Vec::new(),
                        ),
                        Member::Task(task) => symbol(
                            source,
                            &task.name.text,
                            SymbolKind::FUNCTION,
                            Some(format!("{} {}", task.kind.joiner(), task.target.text)),
                            task.span,
                            task.name.span,
                            Vec::new(),
                        ),
                        Member::Output(output) => symbol(
                            source,
                            "output",
                            SymbolKind::PROPERTY,
                            None,
                            output.span,
                            output.span,
                            Vec::new(),
                        ),
                        Member::Test(test) => symbol(
                            source,
                            &test.name.value,
                            SymbolKind::METHOD,
                            Some("test".into()),
                            test.span,
                            test.name.span,
                            Vec::new(),
                        ),
                    })
                    .collect();
                Some(symbol(
                    source,
                    &workflow.name.text,
                    SymbolKind::MODULE,
                    Some("workflow".into()),
                    workflow.span,
                    workflow.name.span,
                    children,
                ))
            }
        })
        .collect()
}

#[allow(deprecated)] // `deprecated` is a field every literal must fill
fn symbol(
    source: &SourceFile,
    name: &str,
    kind: SymbolKind,
    detail: Option<String>,
    span: Span,
    name_span: Span,
    children: Vec<DocumentSymbol>,
) -> DocumentSymbol {
    DocumentSymbol {
        name: if name.is_empty() {
            "?".into()
        } else {
            name.into()
        },
        detail,
        kind,
        tags: None,
        deprecated: None,
        range: convert::range(source, span),
        selection_range: convert::range(source, name_span),
        children: (!children.is_empty()).then_some(children),
    }
}

/// One edit that replaces the whole text with `wfc fmt`'s layout; none when
/// the file is formatted already or does not parse.
pub(super) fn format(analysis: &Analysis) -> Vec<TextEdit> {
    let Some(module) = analysis.module() else {
        return Vec::new();
    };
    let source = analysis.source();
    let formatted = crate::format::format(source, module);
    if formatted == source.text() {
        return Vec::new();
    }
    let end = convert::position(source, source.text().len());
    vec![TextEdit::new(
        Range::new(lsp_types::Position::new(0, 0), end),
        formatted,
    )]
}
