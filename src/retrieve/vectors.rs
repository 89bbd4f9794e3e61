//! The embeddings of a corpus's passages, for dense search: kept beside the
//! corpus's index, one store per embedding model, and brought up to date
//! passage by passage (a passage whose text is unchanged keeps its vector).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Passage, RetrieveError};

/// What of a passage is embedded: its title says what the text is about.
#[must_use]
pub fn embedded_text(passage: &Passage) -> String {
    format!("{}\n{}", passage.title, passage.text)
}

/// One model's vectors of one corpus, each of unit length.
#[derive(Debug, Clone, Default)]
pub struct Vectors {
    width: usize,
    ids: Vec<String>,
    /// The digest of each passage's embedded text, to tell a changed
    /// passage from an unchanged one.
    digests: Vec<String>,
    /// Row-major: vector `i` is `data[i * width..(i + 1) * width]`.
    data: Vec<f32>,
}

/// The store's description of itself; the vectors follow in a file of
/// little-endian `f32`s.
#[derive(Serialize, Deserialize)]
struct Manifest {
    model: String,
    width: usize,
    ids: Vec<String>,
    digests: Vec<String>,
}

impl Vectors {
    /// The store of `model`'s vectors in `index_dir`; empty when there is
    /// none yet (or it cannot be read, which only means embedding again).
    #[must_use]
    pub fn load(index_dir: &Path, model: &str) -> Self {
        let (manifest, data) = paths(index_dir, model);
        let read = || -> Option<Vectors> {
            let manifest: Manifest = serde_json::from_slice(&fs::read(manifest).ok()?).ok()?;
            let bytes = fs::read(data).ok()?;
            let data: Vec<f32> = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let consistent = manifest.model == model
                && manifest.ids.len() == manifest.digests.len()
                && data.len() == manifest.ids.len() * manifest.width;
            consistent.then_some(Vectors {
                width: manifest.width,
                ids: manifest.ids,
                digests: manifest.digests,
                data,
            })
        };
        read().unwrap_or_default()
    }

    /// The passages among `passages` whose vector is missing or was made
    /// from other text.
    #[must_use]
    pub fn stale<'p>(&self, passages: &'p [Passage]) -> Vec<&'p Passage> {
        let known: HashMap<&str, &str> = self
            .ids
            .iter()
            .map(String::as_str)
            .zip(self.digests.iter().map(String::as_str))
            .collect();
        passages
            .iter()
            .filter(|passage| known.get(passage.id.as_str()) != Some(&digest(passage).as_str()))
            .collect()
    }

    /// Keeps the vectors of `passages` (the corpus as it is now): those
    /// given, and the unchanged ones it already had; the rest go.
    pub fn update(
        &mut self,
        passages: &[Passage],
        fresh: &[(&Passage, Vec<f32>)],
    ) -> Result<(), String> {
        let width = fresh.first().map_or(self.width, |(_, vector)| vector.len());
        if fresh.iter().any(|(_, vector)| vector.len() != width) {
            return Err("the embeddings endpoint gave vectors of different lengths".into());
        }
        let old: HashMap<&str, usize> = self
            .ids
            .iter()
            .enumerate()
            .map(|(row, id)| (id.as_str(), row))
            .collect();
        let new: HashMap<&str, &[f32]> = fresh
            .iter()
            .map(|(passage, vector)| (passage.id.as_str(), vector.as_slice()))
            .collect();
        let mut kept = Vectors {
            width,
            ..Vectors::default()
        };
        for passage in passages {
            let id = passage.id.as_str();
            let vector: Vec<f32> = match (new.get(id), old.get(id)) {
                (Some(vector), _) => unit(vector),
                (None, Some(&row))
                    if self.width == width && self.digests[row] == digest(passage) =>
                {
                    self.row(row).to_vec()
                }
                _ => continue,
            };
            kept.ids.push(passage.id.clone());
            kept.digests.push(digest(passage));
            kept.data.extend(vector);
        }
        *self = kept;
        Ok(())
    }

    pub fn save(&self, corpus: &str, index_dir: &Path, model: &str) -> Result<(), RetrieveError> {
        let (manifest_path, data_path) = paths(index_dir, model);
        let failed = |path: &Path, error: std::io::Error| RetrieveError::Write {
            corpus: corpus.to_string(),
            path: path.to_path_buf(),
            source: Arc::new(error),
        };
        if let Some(folder) = data_path.parent() {
            fs::create_dir_all(folder).map_err(|error| failed(folder, error))?;
        }
        let bytes: Vec<u8> = self.data.iter().flat_map(|x| x.to_le_bytes()).collect();
        fs::write(&data_path, bytes).map_err(|error| failed(&data_path, error))?;
        let manifest = Manifest {
            model: model.to_string(),
            width: self.width,
            ids: self.ids.clone(),
            digests: self.digests.clone(),
        };
        let json = serde_json::to_vec(&manifest).expect("the manifest serializes");
        // The manifest last: a store cut short by a crash reads as empty.
        fs::write(&manifest_path, json).map_err(|error| failed(&manifest_path, error))
    }

    /// The ids of the `limit` passages nearest `query` by cosine, nearest
    /// first, among those `allowed` (all when `None`).
    #[must_use]
    pub fn nearest(
        &self,
        query: &[f32],
        limit: usize,
        allowed: Option<&HashSet<String>>,
    ) -> Vec<(String, f32)> {
        if query.len() != self.width {
            return Vec::new();
        }
        let query = unit(query);
        let mut scored: Vec<(f32, &str)> = (0..self.ids.len())
            .filter(|&row| allowed.is_none_or(|allowed| allowed.contains(&self.ids[row])))
            .map(|row| {
                let score = self.row(row).iter().zip(&query).map(|(a, b)| a * b).sum();
                (score, self.ids[row].as_str())
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        scored
            .into_iter()
            .take(limit)
            .map(|(score, id)| (id.to_string(), score))
            .collect()
    }

    fn row(&self, row: usize) -> &[f32] {
        &self.data[row * self.width..(row + 1) * self.width]
    }
}

/// The files of `model`'s store: named by a digest of the model's name, which
/// may hold characters a file name cannot.
fn paths(index_dir: &Path, model: &str) -> (PathBuf, PathBuf) {
    let name = hex(&Sha256::digest(model.as_bytes())[..8]);
    let folder = index_dir.join("vectors");
    (
        folder.join(format!("{name}.json")),
        folder.join(format!("{name}.f32")),
    )
}

fn digest(passage: &Passage) -> String {
    hex(&Sha256::digest(embedded_text(passage).as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// `vector` scaled to length 1, so a dot product is the cosine.
fn unit(vector: &[f32]) -> Vec<f32> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 {
        return vector.to_vec();
    }
    vector.iter().map(|x| x / norm).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passage(id: &str, text: &str) -> Passage {
        Passage {
            id: id.into(),
            source: "a.md".into(),
            title: "A".into(),
            text: text.into(),
            score: 0.0,
            metadata: std::collections::BTreeMap::new(),
        }
    }

    #[test]
    fn only_new_and_changed_passages_are_embedded_again() {
        let dir = tempfile::tempdir().unwrap();
        let first = [passage("a#1", "alpha"), passage("a#2", "beta")];
        let mut store = Vectors::load(dir.path(), "m");
        assert_eq!(store.stale(&first).len(), 2);
        let fresh: Vec<(&Passage, Vec<f32>)> =
            vec![(&first[0], vec![1.0, 0.0]), (&first[1], vec![0.0, 2.0])];
        store.update(&first, &fresh).unwrap();
        store.save("C", dir.path(), "m").unwrap();

        let store = Vectors::load(dir.path(), "m");
        assert!(store.stale(&first).is_empty());
        let second = [
            passage("a#1", "alpha"),
            passage("a#2", "gamma"),
            passage("a#3", "delta"),
        ];
        let stale: Vec<&str> = store.stale(&second).iter().map(|p| p.id.as_str()).collect();
        assert_eq!(stale, ["a#2", "a#3"]);
        assert!(
            Vectors::load(dir.path(), "another model")
                .stale(&first)
                .len()
                == 2
        );
    }

    #[test]
    fn the_nearest_come_first_among_the_allowed() {
        let passages = [passage("x", "x"), passage("y", "y"), passage("z", "z")];
        let mut store = Vectors::default();
        let fresh = vec![
            (&passages[0], vec![1.0, 0.0]),
            (&passages[1], vec![0.6, 0.8]),
            (&passages[2], vec![0.0, 3.0]),
        ];
        store.update(&passages, &fresh).unwrap();
        let ids =
            |found: Vec<(String, f32)>| found.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
        assert_eq!(ids(store.nearest(&[0.0, 1.0], 3, None)), ["z", "y", "x"]);
        let allowed: HashSet<String> = ["x".to_string(), "y".to_string()].into();
        assert_eq!(ids(store.nearest(&[0.0, 1.0], 1, Some(&allowed))), ["y"]);
        assert!(
            store.nearest(&[1.0, 0.0, 0.0], 3, None).is_empty(),
            "another width"
        );
    }
}
