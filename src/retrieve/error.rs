use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Why a corpus could not be read, indexed or searched. Each message names the
/// file or folder at fault and says what to do about it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RetrieveError {
    #[error(
        "the corpus folder `{}` does not exist; create it or fix `path` for corpus `{corpus}` in wfc.toml",
        path.display()
    )]
    CorpusMissing { corpus: String, path: PathBuf },

    #[error(
        "`{}` is a file, but corpus `{corpus}` needs a folder of documents; point `path` for corpus `{corpus}` in wfc.toml at a folder",
        path.display()
    )]
    CorpusNotFolder { corpus: String, path: PathBuf },

    #[error("cannot read `{}`: {source}; check that it exists and is readable", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: Arc<io::Error>,
    },

    #[error(
        "`{}` line {line} is not UTF-8 text; save the file as UTF-8, or move it out of the corpus folder",
        path.display()
    )]
    NotUtf8 { path: PathBuf, line: usize },

    /// A JSON lines record that cannot become a passage.
    #[error("`{}` line {line}: {problem}", path.display())]
    BadRecord {
        path: PathBuf,
        line: usize,
        problem: String,
    },

    #[error(
        "passage id `{id}` is used by both `{first}` and `{second}`; ids must be unique in corpus `{corpus}`: change one record's `id`, or rename one of the files"
    )]
    DuplicateId {
        corpus: String,
        id: String,
        first: String,
        second: String,
    },

    #[error(
        "another process is updating the index `{}` of corpus `{corpus}` and still was after {:.1}s; run again once it has finished",
        index_dir.display(),
        waited.as_secs_f32()
    )]
    IndexBusy {
        corpus: String,
        index_dir: PathBuf,
        waited: Duration,
    },

    #[error(
        "could not {action} the index `{}` of corpus `{corpus}`: {source}; if this persists, delete that folder and it will be rebuilt from the corpus",
        index_dir.display()
    )]
    Index {
        corpus: String,
        index_dir: PathBuf,
        action: &'static str,
        #[source]
        source: tantivy::TantivyError,
    },

    #[error("the embeddings of corpus `{corpus}` cannot be kept: {problem}")]
    Embeddings { corpus: String, problem: String },

    #[error(
        "could not write `{}` for the index of corpus `{corpus}`: {source}; check that its folder is writable and the disk is not full",
        path.display()
    )]
    Write {
        corpus: String,
        path: PathBuf,
        #[source]
        source: Arc<io::Error>,
    },
}
