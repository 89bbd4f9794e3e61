//! The corpora a process searches: where each one's documents and index
//! live, and each index opened once and kept fresh.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{Chunking, CorpusIndex, Passage, Query, Refresh, RetrieveError};

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
}

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

    /// The passages of corpus `name` that best match `query`. Blocking:
    /// the first search of a corpus (and one after a while) compares its
    /// folder with the index and updates the index.
    pub fn search(
        &self,
        name: &str,
        chunking: &Chunking,
        query: &Query<'_>,
    ) -> Result<Vec<Passage>, RetrieveError> {
        let opened = self.lock().get(name).cloned();
        let index = match opened {
            Some(opened)
                if opened.chunking == *chunking && opened.checked.elapsed() < FRESH_FOR =>
            {
                opened.index
            }
            _ => {
                let location = self.location(name);
                let (index, _) =
                    CorpusIndex::open(name, &location.folder, &location.index, chunking)?;
                self.remember(name, index, chunking)
            }
        };
        index.search(query)
    }

    fn remember(&self, name: &str, index: CorpusIndex, chunking: &Chunking) -> Arc<CorpusIndex> {
        let index = Arc::new(index);
        self.lock().insert(
            name.to_string(),
            Opened {
                index: Arc::clone(&index),
                chunking: chunking.clone(),
                checked: Instant::now(),
            },
        );
        index
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Opened>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
