//! Evidence retrieval for `retrieve` tasks: finds the passages of a corpus
//! that best answer a query.
//!
//! A corpus is a folder of Markdown (`.md`), plain text (`.txt`) and JSON
//! lines (`.jsonl`) documents. They are cut into passages of bounded
//! size, and [`CorpusIndex`] keeps a BM25 index of those passages on local
//! disk (tantivy), refreshed incrementally from the files' content hashes
//! whenever the folder changes. This is the embedded default: no network, no
//! model, and the same folder always gives the same ranking.

mod chunk;
mod corpora;
mod error;
mod index;
mod manifest;
mod vectors;
mod walk;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::record::Passage;

pub use corpora::{Corpora, Dense, Location, Ranking, snake_case};
pub use error::RetrieveError;
pub use index::CorpusIndex;
pub use vectors::{Vectors, embedded_text};

/// A piece of a document small enough to hand to a model as evidence, as
/// the chunker cuts it; a search answers with [`Passage`]s.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Chunk {
    /// Unique in the corpus and stable while the document is unchanged:
    /// `notes/lumbar_mri#3` (path without extension, then the passage's number
    /// counted from 1) or a JSON lines record's own `id`.
    pub id: String,
    /// The document's path relative to the corpus folder, `/`-separated.
    pub source: String,
    /// The document's title and the headings above the passage, joined by
    /// ` › `.
    pub title: String,
    pub text: String,
    /// 0-based order of the passage within its source.
    pub position: usize,
    /// A JSON lines record's other scalar fields, as strings.
    pub metadata: BTreeMap<String, String>,
}

/// How documents are cut into passages. Changing it rebuilds the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunking {
    /// The most characters (not bytes) a passage may hold.
    pub max_chars: usize,
}

impl Default for Chunking {
    fn default() -> Self {
        // About 250 words: a paragraph or three, enough context to quote
        // while a handful of passages still fit a prompt.
        Chunking { max_chars: 1200 }
    }
}

/// A search over a [`CorpusIndex`].
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    /// Free text; any punctuation is fine, it is never parsed as syntax.
    pub text: &'a str,
    /// The most passages to return.
    pub top_k: usize,
    /// `(key, value)` pairs that every passage returned must match exactly:
    /// metadata keys, or `source` and `id` for those fields.
    pub filters: &'a [(String, String)],
}

/// What [`CorpusIndex::open`] did to bring the index up to date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refresh {
    /// Documents in the corpus folder.
    pub files: usize,
    /// Passages in the index.
    pub passages: usize,
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
    pub unchanged: usize,
    /// Everything was (re)indexed, and every file counts as added: a first
    /// build, or the chunking settings or index format changed.
    pub full_build: bool,
    pub elapsed: Duration,
}
