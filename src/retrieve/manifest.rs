//! What the index was built from, so that a later open redoes only the files
//! that changed.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::walk::SourceFile;
use super::{Chunking, RetrieveError};

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Manifest {
    /// The index format it was built with; another format is rebuilt.
    pub(super) format: u32,
    pub(super) chunking: Chunking,
    /// The tantivy commit this manifest describes. An index whose last commit
    /// differs was changed behind the manifest's back (a crash between the
    /// two writes, a deleted index folder) and is rebuilt.
    pub(super) opstamp: u64,
    /// By relative path.
    pub(super) files: BTreeMap<String, FileEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct FileEntry {
    pub(super) sha256: String,
    /// Its passages' ids: a changed file's new ids are checked against these
    /// for duplicates without chunking the unchanged files again.
    pub(super) ids: Vec<String>,
}

impl Manifest {
    /// The manifest at `path`, or `None` when there is none, or it cannot be
    /// read or understood: all of which only mean the index must be rebuilt.
    pub(super) fn load(path: &Path) -> Option<Manifest> {
        serde_json::from_slice(&fs::read(path).ok()?).ok()
    }

    /// Writes to a temporary file renamed into place, so a reader in another
    /// process sees the old manifest or the new one, never half of one.
    pub(super) fn save(&self, path: &Path, corpus: &str) -> Result<(), RetrieveError> {
        let temporary = path.with_extension("json.tmp");
        let failed = |source| RetrieveError::Write {
            corpus: corpus.to_string(),
            path: path.to_path_buf(),
            source: Arc::new(source),
        };
        let json = serde_json::to_vec(self).map_err(|error| failed(error.into()))?;
        fs::write(&temporary, json).map_err(failed)?;
        fs::rename(&temporary, path).map_err(failed)
    }
}

/// The work needed to bring an index in line with the corpus.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// Everything is indexed again from scratch.
    pub(super) full: bool,
    /// Indices into the corpus's files.
    pub(super) added: Vec<usize>,
    pub(super) changed: Vec<usize>,
    /// Relative paths of files the index has and the corpus no longer has.
    pub(super) removed: Vec<String>,
    pub(super) unchanged: usize,
}

impl Plan {
    /// Compares the corpus with the manifest of an index whose last commit
    /// is `opstamp` (`None`: there is no index yet).
    pub(super) fn new(
        manifest: Option<&Manifest>,
        opstamp: Option<u64>,
        format: u32,
        chunking: &Chunking,
        files: &[SourceFile],
    ) -> Plan {
        let Some(manifest) = manifest.filter(|manifest| {
            manifest.format == format
                && manifest.chunking == *chunking
                && Some(manifest.opstamp) == opstamp
        }) else {
            return Plan {
                full: true,
                added: (0..files.len()).collect(),
                ..Plan::default()
            };
        };
        let mut plan = Plan::default();
        for (index, file) in files.iter().enumerate() {
            match manifest.files.get(&file.rel) {
                None => plan.added.push(index),
                Some(entry) if entry.sha256 != file.sha256 => plan.changed.push(index),
                Some(_) => plan.unchanged += 1,
            }
        }
        let present: std::collections::HashSet<&str> =
            files.iter().map(|file| file.rel.as_str()).collect();
        plan.removed = manifest
            .files
            .keys()
            .filter(|rel| !present.contains(rel.as_str()))
            .cloned()
            .collect();
        plan
    }

    pub(super) fn is_noop(&self) -> bool {
        !self.full && self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}
