//! The corpora a process searches: where each one's documents and index
//! live, and each index opened once and kept fresh.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{Chunking, CorpusIndex, Passage, Query, Refresh, RetrieveError, Vectors};

/// How long a search trusts that the corpus folder has not changed since it
/// was last compared with the index; hashing the folder again costs about
/// a millisecond per 50 documents.
const FRESH_FOR: Duration = Duration::from_secs(2);

/// Where a corpus's documents are, and where its index is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub folder: PathBuf,
    pub index: PathBuf,
}

impl Location {
    /// The default place of corpus `name` under `home` (the router file's
    /// folder, else the workflow's): its documents in
    /// `corpora/<snake_case_name>/`, its index in `.wfc/index/<name>/`.
    #[must_use]
    pub fn default_in(home: &Path, name: &str) -> Self {
        Location {
            folder: home.join("corpora").join(snake_case(name)),
            index: home.join(".wfc").join("index").join(name),
        }
    }
}

/// `PayerPolicies` → `payer_policies`, `ICD10Codes` → `icd10_codes`: a
/// word starts at a capital after a small letter or digit, or at the last
/// capital of a run that a small letter follows.
#[must_use]
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        let previous = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1);
        let starts_word = c.is_uppercase()
            && previous.is_some_and(|p| {
                p.is_lowercase()
                    || p.is_ascii_digit()
                    || (p.is_uppercase() && next.is_some_and(|n| n.is_lowercase()))
            });
        if starts_word {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// The corpora of one deployment; shared by every run of a process.
#[derive(Debug)]
pub struct Corpora {
    home: PathBuf,
    routes: BTreeMap<String, Location>,
    open: Mutex<HashMap<String, Opened>>,
}

#[derive(Debug, Clone)]
struct Opened {
    index: Arc<CorpusIndex>,
    chunking: Chunking,
    checked: Instant,
    /// Each embedding model's vectors, as last loaded or stored.
    vectors: HashMap<String, Arc<Vectors>>,
    /// The models whose vectors cover every passage of this opening of the
    /// index, so that a dense search need not compare every passage again.
    complete: HashSet<String>,
}

/// How a search ranks passages.
#[derive(Debug, Clone, Copy)]
pub enum Ranking<'a> {
    /// By the words they share with the query (BM25).
    Words,
    /// By the nearness of their embeddings to the query's.
    Meaning(Dense<'a>),
    /// Both, fused by reciprocal rank.
    Both(Dense<'a>),
}

/// The query's embedding, by the model the passages were embedded with.
#[derive(Debug, Clone, Copy)]
pub struct Dense<'a> {
    pub model: &'a str,
    pub query: &'a [f32],
}

/// Reciprocal rank fusion's constant: a passage ranked `r` in a list adds
/// `1 / (K + r)`, so agreement between the lists outweighs one top rank.
const FUSION_K: f64 = 60.0;

/// How deep each ranking is read before fusing, at least.
const FUSION_DEPTH: usize = 50;

impl Corpora {
    /// The corpora at `routes`; any other corpus is at its default place
    /// under `home`.
    #[must_use]
    pub fn new(home: &Path, routes: BTreeMap<String, Location>) -> Self {
        Corpora {
            home: home.to_path_buf(),
            routes,
            open: Mutex::new(HashMap::new()),
        }
    }

    #[must_use]
    pub fn location(&self, name: &str) -> Location {
        self.routes
            .get(name)
            .cloned()
            .unwrap_or_else(|| Location::default_in(&self.home, name))
    }

    /// Brings corpus `name`'s index up to date with its folder, building it
    /// the first time, and says what that took. Blocking: files are hashed
    /// and the index written.
    pub fn refresh(&self, name: &str, chunking: &Chunking) -> Result<Refresh, RetrieveError> {
        let location = self.location(name);
        let (index, refresh) =
            CorpusIndex::open(name, &location.folder, &location.index, chunking)?;
        self.remember(name, index, chunking);
        Ok(refresh)
    }

    /// The passages of corpus `name` that best match `query`, ranked as
    /// `ranking` says. Blocking: the first search of a corpus (and one
    /// after a while) compares its folder with the index and updates the
    /// index. Dense rankings expect the passages embedded already
    /// ([`Corpora::stale`], [`Corpora::store`]).
    pub fn search(
        &self,
        name: &str,
        chunking: &Chunking,
        query: &Query<'_>,
        ranking: Ranking<'_>,
    ) -> Result<Vec<Passage>, RetrieveError> {
        let opened = self.opened(name, chunking)?;
        let index = &opened.index;
        let nearest =
            |dense: &Dense<'_>, limit: usize| -> Result<Vec<(String, f32)>, RetrieveError> {
                let vectors = self.vectors(name, &opened, dense.model);
                let allowed = if query.filters.is_empty() {
                    None
                } else {
                    Some(index.matching(query.filters)?)
                };
                Ok(vectors.nearest(dense.query, limit, allowed.as_ref()))
            };
        match ranking {
            Ranking::Words => index.search(query),
            Ranking::Meaning(dense) => {
                let ranked: Vec<(String, f64)> = nearest(&dense, query.top_k)?
                    .into_iter()
                    .map(|(id, score)| (id, Passage::rounded(f64::from(score))))
                    .collect();
                index.by_ids(&ranked)
            }
            Ranking::Both(dense) => {
                let depth = (query.top_k * 4).max(FUSION_DEPTH);
                let words = index.search(&Query {
                    top_k: depth,
                    ..*query
                })?;
                let meaning = nearest(&dense, depth)?;
                let fused = fuse(
                    [
                        words.iter().map(|p| p.id.as_str()).collect(),
                        meaning.iter().map(|(id, _)| id.as_str()).collect(),
                    ],
                    query.top_k,
                );
                index.by_ids(&fused)
            }
        }
    }

    /// The passages of corpus `name` that `model` has not embedded as they
    /// are now. Blocking, like a search.
    pub fn stale(
        &self,
        name: &str,
        chunking: &Chunking,
        model: &str,
    ) -> Result<Vec<Passage>, RetrieveError> {
        let opened = self.opened(name, chunking)?;
        if opened.complete.contains(model) {
            return Ok(Vec::new());
        }
        let passages = opened.index.passages()?;
        let vectors = self.vectors(name, &opened, model);
        let stale: Vec<Passage> = vectors.stale(&passages).into_iter().cloned().collect();
        if stale.is_empty() {
            self.completed(name, model);
        }
        Ok(stale)
    }

    /// Stores `model`'s embeddings of `fresh` passages of corpus `name`,
    /// keeping the unchanged ones it had and dropping those of passages
    /// gone. Blocking.
    pub fn store(
        &self,
        name: &str,
        chunking: &Chunking,
        model: &str,
        fresh: &[(Passage, Vec<f32>)],
    ) -> Result<(), RetrieveError> {
        let opened = self.opened(name, chunking)?;
        let passages = opened.index.passages()?;
        let mut vectors = (*self.vectors(name, &opened, model)).clone();
        let fresh: Vec<(&Passage, Vec<f32>)> = fresh
            .iter()
            .map(|(passage, vector)| (passage, vector.clone()))
            .collect();
        vectors
            .update(&passages, &fresh)
            .map_err(|problem| RetrieveError::Embeddings {
                corpus: name.to_string(),
                problem,
            })?;
        vectors.save(name, &self.location(name).index, model)?;
        if let Some(entry) = self.lock().get_mut(name) {
            entry.vectors.insert(model.to_string(), Arc::new(vectors));
        }
        self.completed(name, model);
        Ok(())
    }

    fn completed(&self, name: &str, model: &str) {
        if let Some(entry) = self.lock().get_mut(name) {
            entry.complete.insert(model.to_string());
        }
    }

    /// Corpus `name`'s index, fresh: opened again when it was last compared
    /// with its folder a while ago or with other chunking.
    fn opened(&self, name: &str, chunking: &Chunking) -> Result<Opened, RetrieveError> {
        if let Some(opened) = self.lock().get(name)
            && opened.chunking == *chunking
            && opened.checked.elapsed() < FRESH_FOR
        {
            return Ok(opened.clone());
        }
        let location = self.location(name);
        let (index, _) = CorpusIndex::open(name, &location.folder, &location.index, chunking)?;
        Ok(self.remember(name, index, chunking))
    }

    /// `model`'s vectors of corpus `name`, loaded once.
    fn vectors(&self, name: &str, opened: &Opened, model: &str) -> Arc<Vectors> {
        if let Some(vectors) = opened.vectors.get(model) {
            return Arc::clone(vectors);
        }
        let vectors = Arc::new(Vectors::load(&self.location(name).index, model));
        if let Some(entry) = self.lock().get_mut(name) {
            entry
                .vectors
                .insert(model.to_string(), Arc::clone(&vectors));
        }
        vectors
    }

    fn remember(&self, name: &str, index: CorpusIndex, chunking: &Chunking) -> Opened {
        let mut open = self.lock();
        // The vectors outlive a reopening: they are checked passage by
        // passage against the index. Whether they cover it all is known
        // afresh for each opening: another process may have changed it.
        let vectors = open
            .get(name)
            .map(|opened| opened.vectors.clone())
            .unwrap_or_default();
        let opened = Opened {
            index: Arc::new(index),
            chunking: chunking.clone(),
            checked: Instant::now(),
            vectors,
            complete: HashSet::new(),
        };
        open.insert(name.to_string(), opened.clone());
        opened
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Opened>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Reciprocal rank fusion of `rankings` (ids, best first): the `limit` ids
/// with the highest sum of `1 / (K + rank)`, ties by id.
fn fuse<const N: usize>(rankings: [Vec<&str>; N], limit: usize) -> Vec<(String, f64)> {
    let mut scores: HashMap<&str, f64> = HashMap::new();
    for ranking in &rankings {
        for (rank, id) in ranking.iter().enumerate() {
            *scores.entry(id).or_default() += 1.0 / (FUSION_K + (rank + 1) as f64);
        }
    }
    let mut fused: Vec<(&str, f64)> = scores.into_iter().collect();
    fused.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    fused
        .into_iter()
        .take(limit)
        .map(|(id, score)| (id.to_string(), Passage::rounded(score)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fusion_favours_what_both_rankings_agree_on() {
        let fused = fuse([vec!["a", "b", "c"], vec!["c", "b", "d"]], 3);
        let ids: Vec<&str> = fused.iter().map(|(id, _)| id.as_str()).collect();
        // b is 2nd in both; c is 3rd and 1st; a is 1st in one only.
        assert_eq!(ids, ["c", "b", "a"]);
        assert!((fused[1].1 - Passage::rounded(2.0 / 62.0)).abs() < 1e-9);
    }

    #[test]
    fn corpora_are_found_by_their_names_in_snake_case() {
        assert_eq!(snake_case("PayerPolicies"), "payer_policies");
        assert_eq!(snake_case("Formulary"), "formulary");
        assert_eq!(snake_case("ICD10Codes"), "icd10_codes");
        assert_eq!(snake_case("PriorNotesV2"), "prior_notes_v2");
        let home = Path::new("/srv/wfc");
        let routed = Location {
            folder: "/data/policies".into(),
            index: "/var/index/policies".into(),
        };
        let corpora = Corpora::new(
            home,
            BTreeMap::from([("PayerPolicies".to_string(), routed.clone())]),
        );
        assert_eq!(corpora.location("PayerPolicies"), routed);
        assert_eq!(
            corpora.location("Formulary"),
            Location {
                folder: "/srv/wfc/corpora/formulary".into(),
                index: "/srv/wfc/.wfc/index/Formulary".into(),
            }
        );
    }
}
