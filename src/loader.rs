//! Reading `.wf` files from disk, each once, however many files import it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::ast::Module;
use crate::parse::{self, SyntaxError};
use crate::source::SourceFile;

/// A file as read and parsed.
#[derive(Debug)]
pub struct Loaded {
    pub source: Arc<SourceFile>,
    pub module: Result<Module, SyntaxError>,
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
        let text = String::from_utf8(bytes).map_err(|err| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "it is not UTF-8 text (invalid byte at offset {})",
                    err.utf8_error().valid_up_to()
                ),
            )
        })?;
        let loaded = Arc::new(Self::parse(SourceFile::new(path, text)));
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

    fn parse(source: SourceFile) -> Loaded {
        let module = parse::parse(&source);
        Loaded {
            source: Arc::new(source),
            module,
        }
    }
}

/// Where a file is kept: its canonical path, or the path as given for a file
/// that exists only in memory.
fn key(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}
