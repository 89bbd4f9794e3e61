//! A corpus held by a Chroma server (its HTTP API, v2): the passages nearest
//! a query's embedding, with a metadata filter. wfc embeds the query itself
//! (the server embeds nothing), so the collection must hold embeddings of
//! the same model.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{CallError, Client, Target};
use crate::record::Passage;

const ANSWER: &str = "a Chroma answer";
const DATABASE: &str = "/api/v2/tenants/default_tenant/databases/default_database";

#[derive(Serialize)]
struct QueryBody<'a> {
    query_embeddings: [&'a [f32]; 1],
    n_results: usize,
    #[serde(rename = "where", skip_serializing_if = "Option::is_none")]
    filter: Option<serde_json::Value>,
    include: [&'static str; 3],
}

/// A field Chroma answers with one list per query embedding (wfc sends
/// one), any item of which may be `null`.
type PerQuery<T> = Option<Vec<Vec<Option<T>>>>;

#[derive(Deserialize)]
struct QueryAnswer {
    ids: Vec<Vec<String>>,
    documents: PerQuery<String>,
    metadatas: PerQuery<serde_json::Map<String, serde_json::Value>>,
    distances: PerQuery<f64>,
}

#[derive(Deserialize)]
struct Collection {
    id: String,
}

impl Client {
    /// The id of the collection named `collection` on the Chroma server.
    pub async fn chroma_collection(
        &self,
        server: &Target,
        collection: &str,
    ) -> Result<String, CallError> {
        self.within_timeout(server, async {
            let path = format!("{DATABASE}/collections/{collection}");
            let bytes = self.get(server, &path).await?;
            let found: Collection =
                serde_json::from_slice(&bytes).map_err(|err| malformed(server, &err))?;
            Ok(found.id)
        })
        .await
    }

    /// The `top_k` passages of collection `id` nearest `embedding`, nearest
    /// first, among those whose metadata has every `(field, value)` of
    /// `filters`. A passage's `title` and `source` come from its metadata
    /// when it has them; its score is the cosine similarity.
    pub async fn chroma_query(
        &self,
        server: &Target,
        id: &str,
        embedding: &[f32],
        top_k: usize,
        filters: &[(String, String)],
    ) -> Result<Vec<Passage>, CallError> {
        let body = QueryBody {
            query_embeddings: [embedding],
            n_results: top_k,
            filter: filter(filters),
            include: ["documents", "metadatas", "distances"],
        };
        self.within_timeout(server, async {
            let path = format!("{DATABASE}/collections/{id}/query");
            let response = self.send(server, &path, &body).await?;
            let bytes = response
                .bytes()
                .await
                .map_err(|err| CallError::from_reqwest(&server.base_url, err))?;
            let answer: QueryAnswer =
                serde_json::from_slice(&bytes).map_err(|err| malformed(server, &err))?;
            Ok(passages(answer))
        })
        .await
    }
}

fn malformed(server: &Target, err: &serde_json::Error) -> CallError {
    CallError::Malformed {
        url: server.base_url.clone(),
        expected: ANSWER,
        reason: err.to_string(),
    }
}

/// Chroma's `where`: one field as it is, several under `$and`.
fn filter(filters: &[(String, String)]) -> Option<serde_json::Value> {
    let mut clauses: Vec<serde_json::Value> = filters
        .iter()
        .map(|(field, value)| serde_json::json!({ field: value }))
        .collect();
    match clauses.len() {
        0 => None,
        1 => clauses.pop(),
        _ => Some(serde_json::json!({ "$and": clauses })),
    }
}

/// The first query's list of a field Chroma answers per query.
fn first<T>(lists: PerQuery<T>) -> Vec<Option<T>> {
    lists
        .and_then(|lists| lists.into_iter().next())
        .unwrap_or_default()
}

fn passages(answer: QueryAnswer) -> Vec<Passage> {
    let ids = answer.ids.into_iter().next().unwrap_or_default();
    let mut documents = first(answer.documents).into_iter();
    let mut metadatas = first(answer.metadatas).into_iter();
    let mut distances = first(answer.distances).into_iter();
    ids.into_iter()
        .map(|id| {
            let text = documents.next().flatten().unwrap_or_default();
            let mut metadata: BTreeMap<String, String> = metadatas
                .next()
                .flatten()
                .unwrap_or_default()
                .into_iter()
                .map(|(key, value)| {
                    let value = match value {
                        serde_json::Value::String(text) => text,
                        other => other.to_string(),
                    };
                    (key, value)
                })
                .collect();
            // Chroma's distance for a cosine collection is 1 − cosine.
            let distance = distances.next().flatten().unwrap_or(1.0);
            Passage {
                title: metadata.remove("title").unwrap_or_default(),
                source: metadata.remove("source").unwrap_or_default(),
                id,
                text,
                score: Passage::rounded(1.0 - distance),
                metadata,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_become_one_clause_or_an_and() {
        let one = [("payer".to_string(), "Acme".to_string())];
        assert_eq!(filter(&one), Some(json!({"payer": "Acme"})));
        let two = [
            ("payer".to_string(), "Acme".to_string()),
            ("year".to_string(), "2025".to_string()),
        ];
        assert_eq!(
            filter(&two),
            Some(json!({"$and": [{"payer": "Acme"}, {"year": "2025"}]}))
        );
        assert_eq!(filter(&[]), None);
    }

    #[test]
    fn an_answer_becomes_passages_nearest_first() {
        let answer: QueryAnswer = serde_json::from_value(json!({
            "ids": [["inv-2", "inv-1"]],
            "documents": [["Acme credit note", null]],
            "metadatas": [[{"payer": "Acme", "year": 2025, "title": "Credit", "source": "notes.md"}, null]],
            "distances": [[0.25, 1.0]],
            "embeddings": null,
        }))
        .unwrap();
        let found = passages(answer);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].id, "inv-2");
        assert_eq!(found[0].title, "Credit");
        assert_eq!(found[0].source, "notes.md");
        assert_eq!(found[0].score, 0.75);
        assert_eq!(found[0].metadata["year"], "2025");
        assert_eq!(found[1].text, "");
        assert_eq!(found[1].score, 0.0);
    }
}
