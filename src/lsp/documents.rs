//! The open documents, their text as the editor has it, and what checking
//! that text found.

use std::collections::HashMap;
use std::sync::Arc;

use lsp_types::{TextDocumentContentChangeEvent, Uri};

use super::convert;
use super::symbols::Index;
use crate::ast::{Item, Module};
use crate::check::{self, FileReport};
use crate::loader::{Loaded, Loader, Unit};
use crate::source::{SourceFile, Span};

/// One check of a document's text.
pub(super) struct Analysis {
    pub uri: Uri,
    pub loaded: Arc<Loaded>,
    pub report: FileReport,
    /// Empty when the file does not parse.
    pub index: Index,
    /// Agents declared in the files this one imports (directly or not):
    /// where each is declared.
    pub imported_agents: HashMap<String, (Arc<SourceFile>, Span)>,
    /// Corpora declared in the files this one imports, likewise.
    pub imported_corpora: HashMap<String, (Arc<SourceFile>, Span)>,
}

impl Analysis {
    pub(super) fn source(&self) -> &SourceFile {
        &self.loaded.source
    }

    pub(super) fn module(&self) -> Option<&Module> {
        self.loaded.module.as_ref().ok()
    }
}

pub(super) struct Document {
    pub uri: Uri,
    pub text: String,
    /// The check of `text`.
    pub current: Option<Arc<Analysis>>,
    /// The latest check of a text that parsed, for completing half-typed
    /// input.
    pub last_parsed: Option<Arc<Analysis>>,
}

#[derive(Default)]
pub(super) struct Documents {
    open: HashMap<String, Document>,
}

impl Documents {
    pub(super) fn get(&self, uri: &Uri) -> Option<&Document> {
        self.open.get(uri.as_str())
    }

    pub(super) fn open(&mut self, uri: Uri, text: String) {
        self.open.insert(
            uri.as_str().to_string(),
            Document {
                uri,
                text,
                current: None,
                last_parsed: None,
            },
        );
    }

    pub(super) fn close(&mut self, uri: &Uri) {
        self.open.remove(uri.as_str());
    }

    /// Applies the editor's changes, whole texts or ranges, in order.
    pub(super) fn change(&mut self, uri: &Uri, changes: Vec<TextDocumentContentChangeEvent>) {
        let Some(document) = self.open.get_mut(uri.as_str()) else {
            return;
        };
        for change in changes {
            match change.range {
                None => document.text = change.text,
                Some(range) => {
                    let source = SourceFile::new("", std::mem::take(&mut document.text));
                    let start = convert::offset(&source, range.start);
                    let end = convert::offset(&source, range.end).max(start);
                    let mut text = source.text().to_string();
                    text.replace_range(start..end, &change.text);
                    document.text = text;
                }
            }
        }
    }

    /// Each open document's path and text.
    pub(super) fn texts(&self) -> Vec<(std::path::PathBuf, String)> {
        self.open
            .values()
            .map(|doc| (convert::path(&doc.uri), doc.text.clone()))
            .collect()
    }

    pub(super) fn uris(&self) -> Vec<Uri> {
        self.open.values().map(|doc| doc.uri.clone()).collect()
    }

    /// Checks a document against the open buffers (unsaved text wins over
    /// the disk, for imported files too) and keeps the result.
    pub(super) fn analyze(&mut self, uri: &Uri) -> Option<Arc<Analysis>> {
        let mut loader = Loader::default();
        for document in self.open.values() {
            loader.insert_text(&convert::path(&document.uri), document.text.clone());
        }
        let path = convert::path(uri);
        let unit = loader.load_unit(&path).ok()?;
        let report = check::check(&unit, check::phi::Policy::Declared);
        let index = match &unit.root.module {
            Ok(module) => Index::build(module, &path),
            Err(_) => Index::default(),
        };
        let analysis = Arc::new(Analysis {
            uri: uri.clone(),
            imported_agents: imported(&unit, |item| match item {
                Item::Agent(agent) => Some(&agent.name),
                _ => None,
            }),
            imported_corpora: imported(&unit, |item| match item {
                Item::Corpus(corpus) => Some(&corpus.name),
                _ => None,
            }),
            loaded: unit.root,
            report,
            index,
        });
        let document = self.open.get_mut(uri.as_str())?;
        document.current = Some(analysis.clone());
        if analysis.module().is_some() {
            document.last_parsed = Some(analysis.clone());
        }
        Some(analysis)
    }
}

/// Where each declaration that `pick` names in the imported files is; the
/// first declaration wins (two are an error the checker reports).
fn imported(
    unit: &Unit,
    pick: impl Fn(&Item) -> Option<&crate::ast::Name>,
) -> HashMap<String, (Arc<SourceFile>, Span)> {
    let mut found = HashMap::new();
    for imported in &unit.imports {
        let Ok(module) = &imported.loaded.module else {
            continue;
        };
        for name in module.items.iter().filter_map(&pick) {
            found
                .entry(name.text.clone())
                .or_insert_with(|| (imported.loaded.source.clone(), name.span));
        }
    }
    found
}
