//! Go to definition, find references and rename: answered from the file's
//! [`Index`](super::symbols::Index), and for an agent's rename from every
//! file that can see the agent.

use std::path::{Path, PathBuf};

use lsp_types::{Location, Position, PrepareRenameResponse, TextEdit, Uri, WorkspaceEdit};

use super::convert;
use super::documents::Analysis;
use super::symbols::{Index, Key, Kind, Occurrence};
use crate::ast::Item;
use crate::loader::Loader;

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
    imported_declaration(analysis, occurrence)
}

/// Where an agent or corpus this file uses but does not declare is
/// declared.
fn imported_declaration(analysis: &Analysis, occurrence: &Occurrence) -> Option<Location> {
    let imported = match occurrence.key.kind {
        Kind::Agent => &analysis.imported_agents,
        Kind::Corpus => &analysis.imported_corpora,
        _ => return None,
    };
    let (source, span) = imported.get(&occurrence.key.name)?;
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
        && let Some(location) = imported_declaration(analysis, occurrence)
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

/// Tasks, inputs and fields are renamed where they are declared in this
/// file; agents wherever they are declared.
fn renamable(analysis: &Analysis, position: Position) -> Option<&Occurrence> {
    at(analysis, position).filter(|o| match o.key.kind {
        Kind::Task | Kind::Input | Kind::Field | Kind::Corpus => {
            analysis.index.declaration(&o.key).is_some()
        }
        Kind::Agent => {
            analysis.index.declaration(&o.key).is_some()
                || analysis.imported_agents.contains_key(&o.key.name)
        }
        Kind::Workflow => false,
    })
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

/// The edits, or why the new name cannot be used. `open` is every open
/// document's text, which wins over the disk.
pub(super) fn rename(
    analysis: &Analysis,
    position: Position,
    new_name: &str,
    open: &[(PathBuf, String)],
) -> Result<Option<WorkspaceEdit>, String> {
    let Some(occurrence) = renamable(analysis, position) else {
        return Ok(None);
    };
    if !is_name(new_name) {
        return Err(format!("`{new_name}` is not a valid name"));
    }
    if new_name == occurrence.key.name.rsplit('.').next().unwrap_or_default() {
        return Ok(Some(WorkspaceEdit::default()));
    }
    if occurrence.key.kind == Kind::Agent {
        let edits = agent_edits(analysis, &occurrence.key, new_name, open)?;
        return Ok(Some(WorkspaceEdit::new(edits.into_iter().collect())));
    }
    if let Some(taken) = taken_in_file(analysis, &occurrence.key, new_name) {
        return Err(taken);
    }
    let edits = file_edits(
        analysis.source(),
        &analysis.index,
        &occurrence.key,
        new_name,
    );
    Ok(Some(WorkspaceEdit::new(
        [(analysis.uri.clone(), edits)].into_iter().collect(),
    )))
}

/// Why `key` (a task, an input or a field of this file) cannot take
/// `new_name`: another of its scope has it.
fn taken_in_file(analysis: &Analysis, key: &Key, new_name: &str) -> Option<String> {
    if key.kind == Kind::Field {
        let (owner, _) = key.name.split_once('.').unwrap_or_default();
        let renamed = Key {
            name: format!("{owner}.{new_name}"),
            ..key.clone()
        };
        return analysis
            .index
            .declaration(&renamed)
            .map(|_| format!("`{owner}` already has a field `{new_name}`"));
    }
    let taken = analysis.index.occurrences.iter().any(|o| {
        o.declaration
            && matches!(o.key.kind, Kind::Task | Kind::Input)
            && o.key.workflow == key.workflow
            && o.key.name == new_name
    });
    taken.then(|| format!("this workflow already has an input or task `{new_name}`"))
}

/// Every occurrence of `key` in one file, renamed.
fn file_edits(
    source: &crate::source::SourceFile,
    index: &Index,
    key: &Key,
    new_name: &str,
) -> Vec<TextEdit> {
    index
        .occurrences_of(key)
        .map(|o| TextEdit::new(convert::range(source, o.span), new_name.into()))
        .collect()
}

/// An agent renamed in the file that declares it and in every file that
/// sees it through its imports: the `.wf` files in the declaring file's
/// folder and below it, and the open documents.
fn agent_edits(
    analysis: &Analysis,
    key: &Key,
    new_name: &str,
    open: &[(PathBuf, String)],
) -> Result<Vec<(Uri, Vec<TextEdit>)>, String> {
    let here = convert::path(&analysis.uri);
    let declaring = match analysis.imported_agents.get(&key.name) {
        Some((source, _)) if analysis.index.declaration(key).is_none() => {
            source.path().to_path_buf()
        }
        _ => here,
    };
    let mut loader = Loader::default();
    for (path, text) in open {
        loader.insert_text(path, text.clone());
    }
    let folder = declaring
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let mut files = crate::files::discover(&[folder]).unwrap_or_default();
    files.extend(open.iter().map(|(path, _)| path.clone()));
    let canonical = |path: &Path| path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let declaring = canonical(&declaring);
    files.sort_by_key(|path| canonical(path));
    files.dedup_by_key(|path| canonical(path));
    let mut edits = Vec::new();
    for file in files {
        let Ok(unit) = loader.load_unit(&file) else {
            continue;
        };
        let is_declaring = canonical(&file) == declaring;
        let sees = is_declaring
            || unit
                .imports
                .iter()
                .any(|imported| canonical(imported.loaded.source.path()) == declaring);
        let Some(module) = unit.root.items().filter(|_| sees) else {
            continue;
        };
        let declares = |module: &crate::ast::Module, name: &str| {
            module
                .items
                .iter()
                .any(|item| matches!(item, Item::Agent(a) if a.name.text == name))
        };
        let visible =
            std::iter::once(module).chain(unit.imports.iter().filter_map(|i| i.loaded.items()));
        if visible.clone().any(|module| declares(module, new_name)) {
            return Err(format!(
                "`{}` already sees an agent `{new_name}`",
                crate::loader::file_name(&file)
            ));
        }
        if !is_declaring && declares(module, &key.name) {
            continue;
        }
        let index = Index::build(module, &file);
        let changes = file_edits(&unit.root.source, &index, key, new_name);
        if let (false, Some(uri)) = (changes.is_empty(), convert::uri(&canonical(&file))) {
            edits.push((uri, changes));
        }
    }
    Ok(edits)
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
