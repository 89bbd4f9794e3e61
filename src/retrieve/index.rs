//! The BM25 index of a corpus's passages, on disk with tantivy.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tantivy::collector::sort_key::{SortBySimilarityScore, SortByString};
use tantivy::collector::{DocSetCollector, TopDocs};
use tantivy::directory::error::LockError;
use tantivy::indexer::NoMergePolicy;
use tantivy::query::{BooleanQuery, BoostQuery, ConstScoreQuery, Occur, TermQuery};
use tantivy::schema::{
    FAST, Field, IndexRecordOption, JsonObjectOptions, OwnedValue, STORED, STRING, Schema,
    TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument,
    TantivyError, Term,
};

use super::chunk::chunk_file;
use super::manifest::{FileEntry, Manifest, Plan};
use super::walk::{SourceFile, read_corpus};
use super::{Chunk, Chunking, Passage, Query, Refresh, RetrieveError};

/// The layout of the tantivy index. Bump it when the schema or the way
/// documents are indexed changes: indexes of another format are rebuilt, in a
/// folder of their own (`v<FORMAT>`), so the old one is never opened with the
/// new schema.
const FORMAT: u32 = 1;

/// How long to wait for another process that is updating the same index.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Split between tantivy's indexing threads, each of which needs 15 MB.
const WRITER_MEMORY: usize = 64 << 20;

/// The title counts twice as much as the body: a heading that names the
/// query's subject is strong evidence the passage is about it.
const TITLE_BOOST: f32 = 2.0;

const MANIFEST: &str = "manifest.json";

/// A corpus's passages, indexed for BM25 search.
#[derive(Clone)]
pub struct CorpusIndex {
    corpus: String,
    index_dir: PathBuf,
    fields: Fields,
    analyzer: TextAnalyzer,
    reader: IndexReader,
}

impl fmt::Debug for CorpusIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CorpusIndex")
            .field("corpus", &self.corpus)
            .field("index_dir", &self.index_dir)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy)]
struct Fields {
    id: Field,
    source: Field,
    title: Field,
    text: Field,
    position: Field,
    metadata: Field,
}

impl Fields {
    fn schema() -> Schema {
        let mut builder = Schema::builder();
        // `FAST` so results that tie on score can be ordered by id.
        builder.add_text_field("id", STRING | STORED | FAST);
        builder.add_text_field("source", STRING | STORED);
        let words = TextOptions::default().set_stored().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("en_stem")
                // BM25 needs frequencies; nothing searches phrases, so no
                // positions.
                .set_index_option(IndexRecordOption::WithFreqs),
        );
        builder.add_text_field("title", words.clone());
        builder.add_text_field("text", words);
        builder.add_u64_field("position", STORED);
        builder.add_json_field(
            "metadata",
            JsonObjectOptions::default()
                .set_stored()
                .set_indexing_options(
                    TextFieldIndexing::default()
                        .set_tokenizer("raw")
                        .set_index_option(IndexRecordOption::Basic),
                ),
        );
        builder.build()
    }

    fn of(schema: &Schema) -> tantivy::Result<Fields> {
        Ok(Fields {
            id: schema.get_field("id")?,
            source: schema.get_field("source")?,
            title: schema.get_field("title")?,
            text: schema.get_field("text")?,
            position: schema.get_field("position")?,
            metadata: schema.get_field("metadata")?,
        })
    }
}

impl CorpusIndex {
    /// Opens the index of the corpus in `corpus_dir`, kept in `index_dir`,
    /// building it the first time and bringing it up to date with the folder
    /// otherwise: only files whose content changed are indexed again. `corpus`
    /// is the corpus's name, for messages.
    pub fn open(
        corpus: &str,
        corpus_dir: &Path,
        index_dir: &Path,
        chunking: &Chunking,
    ) -> Result<(CorpusIndex, Refresh), RetrieveError> {
        Self::open_waiting(corpus, corpus_dir, index_dir, chunking, LOCK_WAIT)
    }

    pub(super) fn open_waiting(
        corpus: &str,
        corpus_dir: &Path,
        index_dir: &Path,
        chunking: &Chunking,
        lock_wait: Duration,
    ) -> Result<(CorpusIndex, Refresh), RetrieveError> {
        let started = Instant::now();
        match fs::metadata(corpus_dir) {
            Ok(metadata) if metadata.is_dir() => {}
            Ok(_) => {
                return Err(RetrieveError::CorpusNotFolder {
                    corpus: corpus.to_string(),
                    path: corpus_dir.to_path_buf(),
                });
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(RetrieveError::CorpusMissing {
                    corpus: corpus.to_string(),
                    path: corpus_dir.to_path_buf(),
                });
            }
            Err(error) => {
                return Err(RetrieveError::Read {
                    path: corpus_dir.to_path_buf(),
                    source: Arc::new(error),
                });
            }
        }
        let files = read_corpus(corpus_dir, index_dir)?;
        let at = Location {
            corpus,
            index_dir,
            tantivy_dir: index_dir.join(format!("v{FORMAT}")),
            manifest: index_dir.join(MANIFEST),
        };

        // An up-to-date index is opened without the writer lock, so any
        // number of processes can read it while none needs to write.
        if let Ok(index) = Index::open_in_dir(&at.tantivy_dir) {
            let opstamp = index.load_metas().map(|metas| metas.opstamp).ok();
            let plan = Plan::new(
                Manifest::load(&at.manifest).as_ref(),
                opstamp,
                FORMAT,
                chunking,
                &files,
            );
            if plan.is_noop() {
                let index = at.ready(&index)?;
                let refresh = index.refresh(&files, &plan, started);
                return Ok((index, refresh));
            }
        }

        let index = at.open_or_create()?;
        let writer = at.lock(&index, lock_wait)?;
        // Another process may have updated the index while this one waited for
        // the lock: plan again from what it left.
        let opstamp = index
            .load_metas()
            .map_err(|error| at.failed("read", error))?
            .opstamp;
        let manifest = Manifest::load(&at.manifest);
        let plan = Plan::new(manifest.as_ref(), Some(opstamp), FORMAT, chunking, &files);
        if plan.is_noop() {
            drop(writer);
        } else {
            at.update(&index, writer, manifest, &plan, &files, chunking)?;
        }
        let index = at.ready(&index)?;
        let refresh = index.refresh(&files, &plan, started);
        Ok((index, refresh))
    }

    /// The passages that best match the query, best first; ties are ordered
    /// by id so the same index always gives the same list.
    pub fn search(&self, query: &Query<'_>) -> Result<Vec<Passage>, RetrieveError> {
        let words = self.words(query.text);
        if words.is_empty() || query.top_k == 0 {
            return Ok(Vec::new());
        }
        let term_query = |field: Field, word: &str| -> Box<dyn tantivy::query::Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, word),
                IndexRecordOption::WithFreqs,
            ))
        };
        let mut any_word = Vec::with_capacity(words.len() * 2);
        for word in &words {
            any_word.push((Occur::Should, term_query(self.fields.text, word)));
            let title = term_query(self.fields.title, word);
            any_word.push((
                Occur::Should,
                Box::new(BoostQuery::new(title, TITLE_BOOST)) as Box<_>,
            ));
        }
        let mut clauses: Vec<(Occur, Box<dyn tantivy::query::Query>)> =
            vec![(Occur::Must, Box::new(BooleanQuery::new(any_word)))];
        for (key, value) in query.filters {
            let filter = TermQuery::new(self.filter_term(key, value), IndexRecordOption::Basic);
            // Filters decide what matches, not how well: they add nothing to
            // the BM25 score.
            clauses.push((
                Occur::Must,
                Box::new(ConstScoreQuery::new(Box::new(filter), 0.0)),
            ));
        }
        let collector = TopDocs::with_limit(query.top_k).order_by((
            SortBySimilarityScore,
            (SortByString::for_field("id"), Order::Asc),
        ));
        let searcher = self.reader.searcher();
        let hits = searcher
            .search(&BooleanQuery::new(clauses), &collector)
            .map_err(|error| self.failed("search", error))?;
        hits.into_iter()
            .map(|((score, _), address)| {
                let doc = searcher.doc(address)?;
                Ok(self.passage(&doc, score).1)
            })
            .collect::<tantivy::Result<_>>()
            .map_err(|error| self.failed("read", error))
    }

    /// The ids of every passage that the filters let through.
    pub fn matching(&self, filters: &[(String, String)]) -> Result<HashSet<String>, RetrieveError> {
        let clauses: Vec<(Occur, Box<dyn tantivy::query::Query>)> = filters
            .iter()
            .map(|(key, value)| {
                let term = TermQuery::new(self.filter_term(key, value), IndexRecordOption::Basic);
                (
                    Occur::Must,
                    Box::new(term) as Box<dyn tantivy::query::Query>,
                )
            })
            .collect();
        let searcher = self.reader.searcher();
        let addresses = searcher
            .search(&BooleanQuery::new(clauses), &DocSetCollector)
            .map_err(|error| self.failed("search", error))?;
        addresses
            .into_iter()
            .map(|address| {
                let doc: TantivyDocument = searcher.doc(address)?;
                Ok(self.passage(&doc, 0.0).1.id)
            })
            .collect::<tantivy::Result<_>>()
            .map_err(|error| self.failed("read", error))
    }

    /// The passages of `ranked` (ids with their scores), in that order; an
    /// id the index no longer holds is left out.
    pub fn by_ids(&self, ranked: &[(String, f64)]) -> Result<Vec<Passage>, RetrieveError> {
        let searcher = self.reader.searcher();
        let mut passages = Vec::with_capacity(ranked.len());
        for (id, score) in ranked {
            let query = TermQuery::new(
                Term::from_field_text(self.fields.id, id),
                IndexRecordOption::Basic,
            );
            let found = searcher
                .search(&query, &TopDocs::with_limit(1).order_by_score())
                .map_err(|error| self.failed("search", error))?;
            if let Some((_, address)) = found.first() {
                let doc: TantivyDocument = searcher
                    .doc(*address)
                    .map_err(|error| self.failed("read", error))?;
                let mut passage = self.passage(&doc, 0.0).1;
                passage.score = *score;
                passages.push(passage);
            }
        }
        Ok(passages)
    }

    /// Every passage, by source then position: a stable order for keeping
    /// other data (such as embeddings) alongside, keyed by passage id.
    pub fn passages(&self) -> Result<Vec<Passage>, RetrieveError> {
        let searcher = self.reader.searcher();
        let mut passages = Vec::new();
        for (ordinal, segment) in searcher.segment_readers().iter().enumerate() {
            for doc in segment.doc_ids_alive() {
                let address = DocAddress::new(ordinal as u32, doc);
                let doc = searcher
                    .doc(address)
                    .map_err(|error| self.failed("read", error))?;
                passages.push(self.passage(&doc, 0.0));
            }
        }
        passages.sort_by(|(a_at, a), (b_at, b)| (&a.source, a_at).cmp(&(&b.source, b_at)));
        Ok(passages.into_iter().map(|(_, passage)| passage).collect())
    }

    /// The query's distinct terms, analysed as the indexed text was, in
    /// order of first appearance.
    fn words(&self, text: &str) -> Vec<String> {
        let mut analyzer = self.analyzer.clone();
        let mut stream = analyzer.token_stream(text);
        let mut seen = HashSet::new();
        let mut words = Vec::new();
        while stream.advance() {
            let word = &stream.token().text;
            if seen.insert(word.clone()) {
                words.push(word.clone());
            }
        }
        words
    }

    fn filter_term(&self, key: &str, value: &str) -> Term {
        match key {
            "id" => Term::from_field_text(self.fields.id, value),
            "source" => Term::from_field_text(self.fields.source, value),
            _ => {
                // A dot in a key is part of the key, not a path into nested
                // objects (metadata is flat), so it is escaped.
                let path = key.replace('\\', "\\\\").replace('.', "\\.");
                let mut term = Term::from_field_json_path(self.fields.metadata, &path, false);
                term.append_type_and_str(value);
                term
            }
        }
    }

    /// The passage a document holds, with its position in its source.
    fn passage(&self, doc: &TantivyDocument, score: f32) -> (usize, Passage) {
        let text = |field: Field| {
            doc.get_first(field)
                .and_then(|value| value.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let metadata = doc
            .get_first(self.fields.metadata)
            .and_then(|value| value.as_object())
            .into_iter()
            .flatten()
            .filter_map(|(key, value)| Some((key.to_string(), value.as_str()?.to_string())))
            .collect();
        let position = doc
            .get_first(self.fields.position)
            .and_then(|value| value.as_u64())
            .unwrap_or_default();
        let passage = Passage {
            id: text(self.fields.id),
            source: text(self.fields.source),
            title: text(self.fields.title),
            text: text(self.fields.text),
            score: Passage::rounded(f64::from(score)),
            metadata,
        };
        (position as usize, passage)
    }

    fn refresh(&self, files: &[SourceFile], plan: &Plan, started: Instant) -> Refresh {
        Refresh {
            files: files.len(),
            passages: self.reader.searcher().num_docs() as usize,
            added: plan.added.len(),
            changed: plan.changed.len(),
            removed: plan.removed.len(),
            unchanged: plan.unchanged,
            full_build: plan.full,
            elapsed: started.elapsed(),
        }
    }

    fn failed(&self, action: &'static str, source: TantivyError) -> RetrieveError {
        RetrieveError::Index {
            corpus: self.corpus.clone(),
            index_dir: self.index_dir.clone(),
            action,
            source,
        }
    }
}

/// Where a corpus's index lives, and what to call it in messages.
struct Location<'a> {
    corpus: &'a str,
    index_dir: &'a Path,
    tantivy_dir: PathBuf,
    manifest: PathBuf,
}

impl Location<'_> {
    /// The index, created empty if there is none. It is created aside and
    /// renamed into place: of two processes creating it at once, one wins the
    /// rename and the other opens the winner's index, where creating it in
    /// place could overwrite an index the winner had already filled.
    fn open_or_create(&self) -> Result<Index, RetrieveError> {
        // Tells apart the staging folders of threads of one process.
        static STAGED: AtomicUsize = AtomicUsize::new(0);
        if let Ok(index) = Index::open_in_dir(&self.tantivy_dir) {
            return Ok(index);
        }
        let staging = self.index_dir.join(format!(
            "v{FORMAT}.new-{}-{}",
            std::process::id(),
            STAGED.fetch_add(1, Ordering::Relaxed)
        ));
        let unwritable = |source| RetrieveError::Write {
            corpus: self.corpus.to_string(),
            path: staging.clone(),
            source: Arc::new(source),
        };
        fs::create_dir_all(&staging).map_err(unwritable)?;
        Index::create_in_dir(&staging, Fields::schema())
            .map_err(|error| self.failed("create", error))?;
        if fs::rename(&staging, &self.tantivy_dir).is_err() {
            // Lost the race (or the folder holds something else, which the
            // open below reports).
            fs::remove_dir_all(&staging).map_err(unwritable)?;
        }
        Index::open_in_dir(&self.tantivy_dir).map_err(|error| self.failed("open", error))
    }

    /// The writer, waiting for another process that holds it.
    fn lock(&self, index: &Index, wait: Duration) -> Result<IndexWriter, RetrieveError> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(50);
        loop {
            match index.writer(WRITER_MEMORY) {
                Ok(writer) => return Ok(writer),
                Err(TantivyError::LockFailure(LockError::LockBusy, _)) => {
                    let waited = started.elapsed();
                    if waited >= wait {
                        return Err(RetrieveError::IndexBusy {
                            corpus: self.corpus.to_string(),
                            index_dir: self.index_dir.to_path_buf(),
                            waited,
                        });
                    }
                    thread::sleep(pause.min(wait.saturating_sub(waited)));
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Err(error) => return Err(self.failed("lock", error)),
            }
        }
    }

    /// Applies the plan, then records it in the manifest before giving up
    /// the writer, so the next process to take the writer sees the manifest
    /// of what it finds.
    fn update(
        &self,
        index: &Index,
        mut writer: IndexWriter,
        manifest: Option<Manifest>,
        plan: &Plan,
        files: &[SourceFile],
        chunking: &Chunking,
    ) -> Result<(), RetrieveError> {
        // Every segment is merged into one below; tantivy's own merges
        // running meanwhile would claim the same segments.
        writer.set_merge_policy(Box::new(NoMergePolicy));
        let mut entries = match manifest {
            Some(manifest) if !plan.full => manifest.files,
            _ => BTreeMap::new(),
        };
        // Chunk before touching the index: a bad file fails the open and
        // leaves the index as it was.
        let mut fresh = Vec::new();
        for &file in plan.added.iter().chain(&plan.changed) {
            let file = &files[file];
            let passages = chunk_file(&file.path, &file.rel, &file.bytes, chunking)?;
            entries.insert(
                file.rel.clone(),
                FileEntry {
                    sha256: file.sha256.clone(),
                    ids: passages.iter().map(|p| p.id.clone()).collect(),
                },
            );
            fresh.push(passages);
        }
        for rel in &plan.removed {
            entries.remove(rel);
        }
        self.check_unique(&entries)?;

        let fields = Fields::of(&index.schema()).map_err(|error| self.failed("open", error))?;
        if plan.full {
            writer
                .delete_all_documents()
                .map_err(|error| self.failed("clear", error))?;
        }
        let gone = plan.changed.iter().map(|&file| files[file].rel.as_str());
        for rel in gone.chain(plan.removed.iter().map(String::as_str)) {
            writer.delete_term(Term::from_field_text(fields.source, rel));
        }
        for passage in fresh.iter().flatten() {
            writer
                .add_document(document(&fields, passage))
                .map_err(|error| self.failed("write", error))?;
        }
        let opstamp = writer
            .commit()
            .map_err(|error| self.failed("commit", error))?;

        // One segment without deleted passages scores exactly as a fresh
        // build of the same files would: BM25's document frequencies count
        // deleted passages until a merge drops them.
        let segments = index
            .searchable_segment_metas()
            .map_err(|error| self.failed("read", error))?;
        if segments.len() > 1
            || segments
                .iter()
                .any(tantivy::index::SegmentMeta::has_deletes)
        {
            let ids: Vec<_> = segments
                .iter()
                .map(tantivy::index::SegmentMeta::id)
                .collect();
            writer
                .merge(&ids)
                .wait()
                .map_err(|error| self.failed("merge", error))?;
        }

        Manifest {
            format: FORMAT,
            chunking: chunking.clone(),
            opstamp,
            files: entries,
        }
        .save(&self.manifest, self.corpus)?;
        writer
            .wait_merging_threads()
            .map_err(|error| self.failed("close", error))?;
        if plan.full {
            self.remove_other_formats();
        }
        Ok(())
    }

    fn check_unique(&self, entries: &BTreeMap<String, FileEntry>) -> Result<(), RetrieveError> {
        let mut owners: HashMap<&str, &str> = HashMap::new();
        for (rel, entry) in entries {
            for id in &entry.ids {
                if let Some(first) = owners.insert(id, rel) {
                    return Err(RetrieveError::DuplicateId {
                        corpus: self.corpus.to_string(),
                        id: id.clone(),
                        first: first.to_string(),
                        second: rel.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Indexes of other formats are dead weight once this one is built.
    /// Failing to remove one is harmless, so errors are ignored.
    fn remove_other_formats(&self) {
        let Ok(entries) = fs::read_dir(self.index_dir) else {
            return;
        };
        let current = format!("v{FORMAT}");
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let versioned = name
                .strip_prefix('v')
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if versioned && name != current {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }

    fn ready(&self, index: &Index) -> Result<CorpusIndex, RetrieveError> {
        let fields = Fields::of(&index.schema()).map_err(|error| self.failed("open", error))?;
        let analyzer = index
            .tokenizer_for_field(fields.text)
            .map_err(|error| self.failed("open", error))?;
        // Each open sees the index as it then was; a running workflow must
        // not see its evidence change under it.
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|error| self.failed("open", error))?;
        Ok(CorpusIndex {
            corpus: self.corpus.to_string(),
            index_dir: self.index_dir.to_path_buf(),
            fields,
            analyzer,
            reader,
        })
    }

    fn failed(&self, action: &'static str, source: TantivyError) -> RetrieveError {
        RetrieveError::Index {
            corpus: self.corpus.to_string(),
            index_dir: self.index_dir.to_path_buf(),
            action,
            source,
        }
    }
}

fn document(fields: &Fields, passage: &Chunk) -> TantivyDocument {
    let mut doc = TantivyDocument::new();
    doc.add_text(fields.id, &passage.id);
    doc.add_text(fields.source, &passage.source);
    doc.add_text(fields.title, &passage.title);
    doc.add_text(fields.text, &passage.text);
    doc.add_u64(fields.position, passage.position as u64);
    if !passage.metadata.is_empty() {
        let metadata = passage
            .metadata
            .iter()
            .map(|(key, value)| (key.clone(), OwnedValue::Str(value.clone())))
            .collect();
        doc.add_object(fields.metadata, metadata);
    }
    doc
}
