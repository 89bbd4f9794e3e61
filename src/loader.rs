//! Reading `.wf` files from disk, each once, however many files import it,
//! and walking a file's imports: the only I/O before checking, so that the
//! checker and the language server work from the same [`Unit`].

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::ast::{Import, Item, Module};
use crate::parse::{self, Recovered, SyntaxError};
use crate::source::{SourceFile, Span};

/// A file as read and parsed.
#[derive(Debug)]
pub struct Loaded {
    pub source: Arc<SourceFile>,
    pub module: Result<Module, SyntaxError>,
    /// When the file has syntax errors: every one, and what parses
    /// around them.
    pub recovered: Option<Recovered>,
}

impl Loaded {
    /// The file's items: all of them, or those its syntax errors left.
    #[must_use]
    pub fn items(&self) -> Option<&Module> {
        match (&self.module, &self.recovered) {
            (Ok(module), _) => Some(module),
            (Err(_), Some(recovered)) => recovered.module.as_ref(),
            (Err(_), None) => None,
        }
    }
}

#[derive(Default)]
pub struct Loader {
    files: HashMap<PathBuf, Arc<Loaded>>,
}

impl Loader {
    /// Reads and parses the file at `path`, or returns the copy read before
    /// (or given to [`Loader::insert_text`]).
    pub fn load(&mut self, path: &Path) -> std::io::Result<Arc<Loaded>> {
        let key = key(path);
        if let Some(loaded) = self.files.get(&key) {
            return Ok(loaded.clone());
        }
        let bytes = std::fs::read(path)?;
        let loaded = Arc::new(match String::from_utf8(bytes) {
            Ok(text) => Self::parse(SourceFile::new(path, text)),
            Err(err) => not_utf8(path, &err),
        });
        self.files.insert(key, loaded.clone());
        Ok(loaded)
    }

    /// Uses `text` as the content of the file at `path` instead of what is on
    /// disk, e.g. an editor's unsaved buffer; the file need not exist.
    pub fn insert_text(&mut self, path: &Path, text: String) -> Arc<Loaded> {
        let loaded = Arc::new(Self::parse(SourceFile::new(path, text)));
        self.files.insert(key(path), loaded.clone());
        loaded
    }

    /// Loads the file at `path` and every file it imports, directly or not.
    /// Fails only when the file itself cannot be read; imports that cannot
    /// be read, or that lead back to the file, are in [`Unit::errors`].
    pub fn load_unit(&mut self, path: &Path) -> std::io::Result<Unit> {
        let root = self.load(path)?;
        let mut unit = Unit {
            root: root.clone(),
            imports: Vec::new(),
            errors: Vec::new(),
        };
        if let Some(module) = root.items() {
            Walk::new(self, &root).imports_of(module, &mut unit);
        }
        Ok(unit)
    }

    fn parse(source: SourceFile) -> Loaded {
        let module = parse::parse(&source);
        let recovered = module
            .as_ref()
            .err()
            .map(|first| parse::recover(&source, first.clone()));
        Loaded {
            source: Arc::new(source),
            module,
            recovered,
        }
    }
}

/// A file that is not UTF-8: a syntax error at its first offending byte,
/// shown in the text as far as it can be read.
fn not_utf8(path: &Path, err: &std::string::FromUtf8Error) -> Loaded {
    let at = err.utf8_error().valid_up_to();
    let text = String::from_utf8_lossy(err.as_bytes()).into_owned();
    // The lossy text has the same offsets up to the first bad byte.
    let end = text[at..].chars().next().map_or(at, |c| at + c.len_utf8());
    Loaded {
        source: Arc::new(SourceFile::new(path, text)),
        module: Err(SyntaxError {
            message: format!(
                "this file is not UTF-8 text: the byte at offset {at} is not valid UTF-8"
            ),
            span: Span::new(at, end),
            label: "not UTF-8".into(),
            help: Some("save the file as UTF-8; .wf files are UTF-8 text".into()),
        }),
        recovered: None,
    }
}

/// A file with every file it imports, directly or not, each once.
#[derive(Debug)]
pub struct Unit {
    pub root: Arc<Loaded>,
    /// Depth first, in the order the imports are written.
    pub imports: Vec<Imported>,
    pub errors: Vec<ImportError>,
}

/// A file reached through the imports of the root file, with the import
/// statement (in the root file) that leads to it.
#[derive(Debug)]
pub struct Imported {
    pub loaded: Arc<Loaded>,
    pub via: Span,
}

/// An import of the root file that cannot be followed.
#[derive(Debug, Clone, thiserror::Error, miette::Diagnostic)]
pub enum ImportError {
    #[error("`{path}` cannot be imported: {reason}")]
    #[diagnostic(code("wf::import-unreadable"))]
    Unreadable {
        path: String,
        reason: String,
        #[label("imported here")]
        span: Span,
        #[help]
        help: Option<String>,
    },

    #[error("importing `{path}` leads back to this file: {chain}")]
    #[diagnostic(
        code("wf::import-cycle"),
        help("move what both files need into a third file that imports neither")
    )]
    Cycle {
        path: String,
        chain: String,
        #[label("this import closes the cycle")]
        span: Span,
    },
}

/// The state of one walk through the imports of a root file.
struct Walk<'l> {
    loader: &'l mut Loader,
    root_source: Arc<SourceFile>,
    root_path: PathBuf,
    seen: HashSet<PathBuf>,
}

impl<'l> Walk<'l> {
    fn new(loader: &'l mut Loader, root: &Loaded) -> Self {
        let root_path = key(root.source.path());
        Walk {
            loader,
            root_source: root.source.clone(),
            seen: HashSet::from([root_path.clone()]),
            root_path,
        }
    }

    /// Follows each import of the root module, reporting those that cannot
    /// be read and those that lead back to the root.
    fn imports_of(&mut self, module: &Module, unit: &mut Unit) {
        for import in imports(module) {
            let path = import_path(&self.root_source, import);
            let Some(loaded) = self.load_import(&path, import, &mut unit.errors) else {
                continue;
            };
            let mut chain = vec![file_name(self.root_source.path()), file_name(&path)];
            if let Some(cycle) = self.walk(&loaded, &mut chain, &mut unit.imports, import.span) {
                unit.errors.push(ImportError::Cycle {
                    path: import.path.value.clone(),
                    chain: cycle.join(" → "),
                    span: import.span,
                });
            }
            if self.seen.insert(key(&path)) {
                unit.imports.push(Imported {
                    loaded,
                    via: import.span,
                });
            }
        }
    }

    /// Depth first through the imports of `loaded`; returns the chain of
    /// file names when it reaches the root.
    fn walk(
        &mut self,
        loaded: &Arc<Loaded>,
        chain: &mut Vec<String>,
        found: &mut Vec<Imported>,
        via: Span,
    ) -> Option<Vec<String>> {
        let Ok(module) = &loaded.module else {
            return None;
        };
        for import in imports(module) {
            let path = import_path(&loaded.source, import);
            let key = key(&path);
            if key == self.root_path {
                let mut cycle = chain.clone();
                cycle.push(file_name(&path));
                return Some(cycle);
            }
            if !self.seen.insert(key) {
                continue;
            }
            let Ok(next) = self.loader.load(&path) else {
                continue;
            };
            chain.push(file_name(&path));
            let cycle = self.walk(&next, chain, found, via);
            chain.pop();
            found.push(Imported { loaded: next, via });
            if cycle.is_some() {
                return cycle;
            }
        }
        None
    }

    fn load_import(
        &mut self,
        path: &Path,
        import: &Import,
        errors: &mut Vec<ImportError>,
    ) -> Option<Arc<Loaded>> {
        let unreadable = |reason: String, help: String| ImportError::Unreadable {
            path: import.path.value.clone(),
            reason,
            span: import.span,
            help: Some(help),
        };
        match self.loader.load(path) {
            Err(err) => {
                errors.push(unreadable(
                    io_reason(&err),
                    format!(
                        "the path is relative to this file's folder: {}",
                        path.display()
                    ),
                ));
                None
            }
            Ok(loaded) => match &loaded.module {
                Err(syntax) => {
                    let at = loaded.source.line_column(syntax.span.start);
                    errors.push(unreadable(
                        format!(
                            "it has a syntax error at line {}, column {}",
                            at.line, at.column
                        ),
                        format!("run `wfc check {}` to see it", path.display()),
                    ));
                    None
                }
                Ok(_) => Some(loaded),
            },
        }
    }
}

fn imports(module: &Module) -> impl Iterator<Item = &Import> {
    module.items.iter().filter_map(|item| match item {
        Item::Import(import) => Some(import),
        _ => None,
    })
}

fn import_path(from: &SourceFile, import: &Import) -> PathBuf {
    from.path()
        .parent()
        .unwrap_or(Path::new("."))
        .join(&import.path.value)
}

/// A file's name for messages: `agents.wf`, not its whole path.
#[must_use]
pub fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

fn io_reason(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => "there is no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission to read it is denied".into(),
        std::io::ErrorKind::IsADirectory => "it is a folder, not a file".into(),
        _ => err.to_string(),
    }
}

/// Where a file is kept: its canonical path, or the path as given for a file
/// that exists only in memory.
fn key(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}
