//! How a retrieval job is carried out: the corpus searched on a blocking
//! thread (the first search of a corpus may build its index), and for dense
//! and hybrid search, the passages not yet embedded and the query embedded
//! by the deployment's embeddings endpoint first.

use std::sync::Arc;

use super::execute::{HttpExecutor, call_failure};
use super::job::{Answer, Failure, Job, PromptUsage, RetrieveRequest};
use crate::check::SearchMode;
use crate::client::{CallError, Client};
use crate::record::Passage;
use crate::retrieve::{Chunking, Corpora, Dense, Query, Ranking, RetrieveError, embedded_text};
use crate::router::{ChromaCorpus, Embedder};

/// Passages embedded in one request: large enough to amortise the
/// round trip, small enough for a server's batch.
const BATCH: usize = 32;

impl HttpExecutor {
    pub(super) async fn search(
        &self,
        job: &Job,
        search: &RetrieveRequest,
    ) -> Result<Answer, Failure> {
        if let Some(chroma) = self.chroma.get(&job.agent) {
            let passages = self.search_chroma(job, search, chroma).await?;
            return Ok(self.answer(search.mode, &passages));
        }
        let chunking = Chunking {
            max_chars: search.passage_len as usize,
        };
        let query_vector = match search.mode {
            SearchMode::Bm25 => None,
            SearchMode::Dense | SearchMode::Hybrid => {
                let Some(embedder) = &self.embedder else {
                    return Err(Failure::permanent(
                        format!(
                            "`{}` asks for {} search, which needs an embeddings endpoint: add `[embeddings]` with its `url` and `model` to the router file, or use `mode = bm25`",
                            job.task,
                            search.mode.name()
                        ),
                        0,
                    ));
                };
                self.embed_corpus(&job.agent, &chunking, embedder).await?;
                let query = [search.query.as_str()];
                let vector = self
                    .client
                    .embed(&embedder.target, &embedder.model, &query)
                    .await
                    .map_err(|error| call_failure(&error))?;
                Some((
                    embedder.model.clone(),
                    vector.into_iter().next().unwrap_or_default(),
                ))
            }
        };
        let (corpus, mode, search) = (job.agent.clone(), search.mode, search.clone());
        let passages = self
            .blocking(move |corpora| {
                let query = Query {
                    text: &search.query,
                    top_k: search.top_k as usize,
                    filters: &search.filters,
                };
                let dense = query_vector.as_ref().map(|(model, vector)| Dense {
                    model,
                    query: vector,
                });
                let ranking = match (search.mode, dense) {
                    (SearchMode::Dense, Some(dense)) => Ranking::Meaning(dense),
                    (SearchMode::Hybrid, Some(dense)) => Ranking::Both(dense),
                    _ => Ranking::Words,
                };
                corpora.search(&corpus, &chunking, &query, ranking)
            })
            .await?;
        Ok(self.answer(mode, &passages))
    }

    fn answer(&self, mode: SearchMode, passages: &[Passage]) -> Answer {
        Answer {
            text: serde_json::to_string(passages).expect("passages serialize"),
            model: search_model(mode, self.embedder.as_ref()),
            tokens: 0,
            finish_reason: None,
            attempts: 1,
            replayed: false,
            prompt: PromptUsage::default(),
        }
    }

    /// Asks the Chroma server that holds the job's corpus for the passages
    /// nearest the query, which the deployment's embeddings endpoint embeds.
    async fn search_chroma(
        &self,
        job: &Job,
        search: &RetrieveRequest,
        chroma: &ChromaCorpus,
    ) -> Result<Vec<Passage>, Failure> {
        let refuse = |why: String| Err(Failure::permanent(why, 0));
        if search.mode != SearchMode::Dense {
            return refuse(format!(
                "corpus `{}` is held by Chroma, which ranks by embeddings only: give `{}` `mode = dense`",
                job.agent, job.task
            ));
        }
        let Some(embedder) = &self.embedder else {
            return refuse(format!(
                "corpus `{}` is held by Chroma, and its queries need an embeddings endpoint: add `[embeddings]` with the `url` and `model` the collection was embedded with to the router file",
                job.agent
            ));
        };
        let failed = |error: CallError| call_failure(&error);
        let query = [search.query.as_str()];
        let vector = self
            .client
            .embed(&embedder.target, &embedder.model, &query)
            .await
            .map_err(failed)?;
        let id = self
            .client
            .chroma_collection(&chroma.server, &chroma.collection)
            .await
            .map_err(failed)?;
        self.client
            .chroma_query(
                &chroma.server,
                &id,
                vector.first().map_or(&[][..], Vec::as_slice),
                search.top_k as usize,
                &search.filters,
            )
            .await
            .map_err(failed)
    }

    /// Whether corpus `name` can be searched now: its index is built and up
    /// to date with its folder (building it if need be), or the Chroma
    /// server that holds it answers and has its collection.
    pub async fn searchable(&self, name: &str, passage_len: u32) -> bool {
        if let Some(chroma) = self.chroma.get(name) {
            return self
                .client
                .chroma_collection(&chroma.server, &chroma.collection)
                .await
                .is_ok();
        }
        let (name, chunking) = (
            name.to_string(),
            Chunking {
                max_chars: passage_len as usize,
            },
        );
        self.blocking(move |corpora| corpora.refresh(&name, &chunking))
            .await
            .is_ok()
    }

    /// Embeds the passages of `corpus` that its stored vectors lack, one
    /// search at a time.
    async fn embed_corpus(
        &self,
        corpus: &str,
        chunking: &Chunking,
        embedder: &Embedder,
    ) -> Result<usize, Failure> {
        let _one_at_a_time = self.embedding.lock().await;
        embed_corpus(&self.client, &self.corpora, corpus, chunking, embedder).await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Corpora) -> Result<T, RetrieveError> + Send + 'static,
    ) -> Result<T, Failure> {
        blocking(&self.corpora, work).await
    }
}

/// Embeds the passages of `corpus` that the stored vectors of the
/// embedder's model lack (new or changed since), and stores them; says how
/// many it embedded.
pub async fn embed_corpus(
    client: &Client,
    corpora: &Arc<Corpora>,
    corpus: &str,
    chunking: &Chunking,
    embedder: &Embedder,
) -> Result<usize, Failure> {
    let (name, chunks, model) = (corpus.to_string(), chunking.clone(), embedder.model.clone());
    let stale: Vec<Passage> = blocking(corpora, move |corpora| {
        corpora.stale(&name, &chunks, &model)
    })
    .await?;
    if stale.is_empty() {
        return Ok(0);
    }
    let mut fresh: Vec<(Passage, Vec<f32>)> = Vec::with_capacity(stale.len());
    for batch in stale.chunks(BATCH) {
        let texts: Vec<String> = batch.iter().map(embedded_text).collect();
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vectors = client
            .embed(&embedder.target, &embedder.model, &texts)
            .await
            .map_err(|error| {
                let longest = texts.iter().map(|t| t.chars().count()).max().unwrap_or(0);
                Failure {
                    error: format!(
                        "cannot embed the passages of corpus `{corpus}` (the longest of this batch has {longest} characters): {error}; if the model or server takes less, lower the corpus's `max_passage_len` or raise the server's batch size"
                    ),
                    ..call_failure(&error)
                }
            })?;
        fresh.extend(batch.iter().cloned().zip(vectors));
    }
    let embedded = fresh.len();
    let (name, chunks, model) = (corpus.to_string(), chunking.clone(), embedder.model.clone());
    blocking(corpora, move |corpora| {
        corpora.store(&name, &chunks, &model, &fresh)
    })
    .await?;
    Ok(embedded)
}

/// Runs `work` on the corpora on a blocking thread.
async fn blocking<T: Send + 'static>(
    corpora: &Arc<Corpora>,
    work: impl FnOnce(&Corpora) -> Result<T, RetrieveError> + Send + 'static,
) -> Result<T, Failure> {
    let corpora = Arc::clone(corpora);
    match tokio::task::spawn_blocking(move || work(&corpora)).await {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(error)) => Err(retrieve_failure(&error)),
        Err(panicked) => Err(Failure::permanent(
            format!("a corpus search stopped: {panicked}"),
            1,
        )),
    }
}

/// What a report names as a search's "model": its ranking, with the
/// embedding model where one ranked.
fn search_model(mode: SearchMode, embedder: Option<&Embedder>) -> String {
    match (mode, embedder) {
        (SearchMode::Dense | SearchMode::Hybrid, Some(embedder)) => {
            format!("{} ({})", mode.name(), embedder.model)
        }
        _ => mode.name().to_string(),
    }
}

/// A corpus busy with another process's update may be free on the next
/// attempt; every other problem needs a person.
fn retrieve_failure(error: &RetrieveError) -> Failure {
    let class = matches!(error, RetrieveError::IndexBusy { .. })
        .then_some(crate::policy::ErrorClass::Timeout);
    Failure {
        class,
        ..Failure::permanent(error.to_string(), 1)
    }
}
