//! Go to definition, find references and rename: all answered from the
//! file's [`Index`](super::symbols::Index).

use std::collections::HashMap;

use lsp_types::{Location, Position, PrepareRenameResponse, TextEdit, WorkspaceEdit};

use super::convert;
use super::documents::Analysis;
use super::symbols::{Kind, Occurrence};

fn at(analysis: &Analysis, position: Position) -> Option<&Occurrence> {
    let offset = convert::offset(analysis.source(), position);
    analysis.index.at(offset)
}

pub(super) fn definition(analysis: &Analysis, position: Position) -> Option<Location> {
    let source = analysis.source();
    let offset = convert::offset(source, position);
    if let Some((_, path)) = analysis
        .index
        .imports
        .iter()
        .find(|(span, _)| span.start <= offset && offset <= span.end)
    {
        return Some(Location::new(
            convert::uri(&path.canonicalize().ok()?)?,
            lsp_types::Range::default(),
        ));
    }
    let occurrence = analysis.index.at(offset)?;
    if let Some(declaration) = analysis.index.declaration(&occurrence.key) {
        return Some(Location::new(
            analysis.uri.clone(),
            convert::range(source, declaration.span),
        ));
    }
    imported_agent(analysis, occurrence)
}

/// Where an agent this file uses but does not declare is declared.
fn imported_agent(analysis: &Analysis, occurrence: &Occurrence) -> Option<Location> {
    if occurrence.key.kind != Kind::Agent {
        return None;
    }
    let (source, span) = analysis.imported_agents.get(&occurrence.key.name)?;
    let path = source.path().canonicalize().ok()?;
    Some(Location::new(
        convert::uri(&path)?,
        convert::range(source, *span),
    ))
}

pub(super) fn references(
    analysis: &Analysis,
    position: Position,
    include_declaration: bool,
) -> Vec<Location> {
    let Some(occurrence) = at(analysis, position) else {
        return Vec::new();
    };
    let mut locations: Vec<Location> = Vec::new();
    if include_declaration
        && analysis.index.declaration(&occurrence.key).is_none()
        && let Some(location) = imported_agent(analysis, occurrence)
    {
        locations.push(location);
    }
    locations.extend(
        analysis
            .index
            .occurrences_of(&occurrence.key)
            .filter(|o| include_declaration || !o.declaration)
            .map(|o| {
                Location::new(
                    analysis.uri.clone(),
                    convert::range(analysis.source(), o.span),
                )
            }),
    );
    locations
}

/// Only tasks and inputs are renamed: they live in this file alone.
fn renamable(analysis: &Analysis, position: Position) -> Option<&Occurrence> {
    at(analysis, position)
        .filter(|o| matches!(o.key.kind, Kind::Task | Kind::Input))
        .filter(|o| analysis.index.declaration(&o.key).is_some())
}

pub(super) fn prepare_rename(
    analysis: &Analysis,
    position: Position,
) -> Option<PrepareRenameResponse> {
    let occurrence = renamable(analysis, position)?;
    Some(PrepareRenameResponse::Range(convert::range(
        analysis.source(),
        occurrence.span,
    )))
}

/// The edits, or why the new name cannot be used.
pub(super) fn rename(
    analysis: &Analysis,
    position: Position,
    new_name: &str,
) -> Result<Option<WorkspaceEdit>, String> {
    let Some(occurrence) = renamable(analysis, position) else {
        return Ok(None);
    };
    if !is_name(new_name) {
        return Err(format!("`{new_name}` is not a valid name"));
    }
    let taken = analysis.index.occurrences.iter().any(|o| {
        o.declaration
            && matches!(o.key.kind, Kind::Task | Kind::Input)
            && o.key.workflow == occurrence.key.workflow
            && o.key.name == new_name
    });
    if taken && new_name != occurrence.key.name {
        return Err(format!(
            "this workflow already has an input or task `{new_name}`"
        ));
    }
    let edits: Vec<TextEdit> = analysis
        .index
        .occurrences_of(&occurrence.key)
        .map(|o| TextEdit::new(convert::range(analysis.source(), o.span), new_name.into()))
        .collect();
    Ok(Some(WorkspaceEdit::new(HashMap::from([(
        analysis.uri.clone(),
        edits,
    )]))))
}

pub(super) const KEYWORDS: &[&str] = &[
    "agent", "workflow", "import", "input", "output", "task", "test", "mock", "expect", "true",
    "false",
];

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !KEYWORDS.contains(&name)
}
