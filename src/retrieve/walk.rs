use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::RetrieveError;
use super::chunk::Kind;

/// A document of the corpus, read whole: it is hashed to see whether it
/// changed, and the same bytes are chunked if it did, so the index never holds
/// text other than what the hash describes.
#[derive(Debug)]
pub(super) struct SourceFile {
    /// Relative to the corpus folder, `/`-separated.
    pub(super) rel: String,
    /// Where it is, for messages.
    pub(super) path: PathBuf,
    pub(super) bytes: Vec<u8>,
    pub(super) sha256: String,
}

/// The corpus's documents, sorted by relative path. Hidden files and folders
/// are skipped, and so is `skip` (the index folder, if it sits inside the
/// corpus).
pub(super) fn read_corpus(root: &Path, skip: &Path) -> Result<Vec<SourceFile>, RetrieveError> {
    let mut walker = Walker {
        skip: fs::canonicalize(skip).ok(),
        visited: HashSet::new(),
        found: Vec::new(),
    };
    walker.visit(root, "")?;
    let mut files = walker
        .found
        .into_iter()
        .map(|(rel, path)| {
            let bytes = fs::read(&path).map_err(|source| RetrieveError::Read {
                path: path.clone(),
                source: Arc::new(source),
            })?;
            let sha256 = Sha256::digest(&bytes)
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect();
            Ok(SourceFile {
                rel,
                path,
                bytes,
                sha256,
            })
        })
        .collect::<Result<Vec<_>, RetrieveError>>()?;
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(files)
}

struct Walker {
    skip: Option<PathBuf>,
    /// Canonical folders already walked: symbolic links are followed, and a
    /// link back up the tree would otherwise recurse forever.
    visited: HashSet<PathBuf>,
    found: Vec<(String, PathBuf)>,
}

impl Walker {
    fn visit(&mut self, dir: &Path, prefix: &str) -> Result<(), RetrieveError> {
        let unreadable = |source| RetrieveError::Read {
            path: dir.to_path_buf(),
            source: Arc::new(source),
        };
        let canonical = fs::canonicalize(dir).map_err(unreadable)?;
        if self.skip.as_ref() == Some(&canonical) || !self.visited.insert(canonical) {
            return Ok(());
        }
        let mut entries = fs::read_dir(dir)
            .map_err(unreadable)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(unreadable)?;
        entries.sort_by_key(fs::DirEntry::file_name);
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let rel = format!("{prefix}{name}");
            // `fs::metadata` follows symbolic links; a dangling one is skipped
            // like any other entry that is neither a file nor a folder.
            let Ok(metadata) = fs::metadata(&path) else {
                continue;
            };
            if metadata.is_dir() {
                self.visit(&path, &format!("{rel}/"))?;
            } else if metadata.is_file() && Kind::of(&rel).is_some() {
                self.found.push((rel, path));
            }
        }
        Ok(())
    }
}
