//! Embeddings from an OpenAI-compatible server (`POST /embeddings`, as
//! llama.cpp's `llama-server --embedding`, vLLM and text-embeddings-inference
//! serve it): the vectors dense search ranks passages by.

use serde::{Deserialize, Serialize};

use super::{CallError, Client, Target};

const EMBEDDINGS: &str = "an embeddings answer";

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    input: &'a [&'a str],
    encoding_format: &'static str,
}

#[derive(Deserialize)]
struct Answer {
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    index: usize,
    embedding: Vec<f32>,
}

impl Client {
    /// The embedding of each of `texts`, in their order, all of one length.
    pub async fn embed(
        &self,
        target: &Target,
        model: &str,
        texts: &[&str],
    ) -> Result<Vec<Vec<f32>>, CallError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let body = Body {
            model,
            input: texts,
            encoding_format: "float",
        };
        self.within_timeout(target, async {
            let response = self.send(target, "/embeddings", &body).await?;
            let bytes = response
                .bytes()
                .await
                .map_err(|err| CallError::from_reqwest(&target.base_url, err))?;
            let malformed = |reason: String| CallError::Malformed {
                url: target.base_url.clone(),
                expected: EMBEDDINGS,
                reason,
            };
            let answer: Answer =
                serde_json::from_slice(&bytes).map_err(|err| malformed(err.to_string()))?;
            vectors(answer, texts.len()).map_err(malformed)
        })
        .await
    }
}

/// The answer's vectors in the order of the texts: one for each, of one
/// length, none empty.
fn vectors(answer: Answer, count: usize) -> Result<Vec<Vec<f32>>, String> {
    let mut ordered: Vec<Option<Vec<f32>>> = vec![None; count];
    for item in answer.data {
        let slot = ordered
            .get_mut(item.index)
            .ok_or_else(|| format!("it has an embedding for text {} of {count}", item.index))?;
        *slot = Some(item.embedding);
    }
    let vectors: Vec<Vec<f32>> = ordered
        .into_iter()
        .enumerate()
        .map(|(index, vector)| {
            vector.ok_or_else(|| format!("it lacks the embedding of text {index}"))
        })
        .collect::<Result<_, _>>()?;
    let width = vectors[0].len();
    if width == 0 || vectors.iter().any(|vector| vector.len() != width) {
        return Err("its embeddings are empty or of different lengths".into());
    }
    Ok(vectors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(items: &[(usize, &[f32])]) -> Answer {
        Answer {
            data: items
                .iter()
                .map(|(index, vector)| Item {
                    index: *index,
                    embedding: vector.to_vec(),
                })
                .collect(),
        }
    }

    #[test]
    fn vectors_come_back_in_the_order_of_the_texts() {
        let ordered = vectors(answer(&[(1, &[0.0, 1.0]), (0, &[1.0, 0.0])]), 2).unwrap();
        assert_eq!(ordered, [vec![1.0, 0.0], vec![0.0, 1.0]]);
    }

    #[test]
    fn a_missing_ragged_or_stray_embedding_is_an_error() {
        assert_eq!(
            vectors(answer(&[(0, &[1.0])]), 2).unwrap_err(),
            "it lacks the embedding of text 1"
        );
        assert_eq!(
            vectors(answer(&[(0, &[1.0]), (1, &[1.0, 2.0])]), 2).unwrap_err(),
            "its embeddings are empty or of different lengths"
        );
        assert_eq!(
            vectors(answer(&[(3, &[1.0])]), 1).unwrap_err(),
            "it has an embedding for text 3 of 1"
        );
    }
}
