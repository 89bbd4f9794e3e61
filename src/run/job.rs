//! The work of one task as data: what it asks ([`Job`]), and what comes back
//! ([`Answer`] or [`Failure`]). All of it serializes, so that a durable
//! engine can journal a job and its result and replay them.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::check::{AgentDef, Retrieval, SearchMode, TaskDef, Type};
use crate::client::ChatRequest;
use crate::policy::{ErrorClass, RetryPolicy};
use crate::router::Claim;

/// Changes whenever what [`Job::key`] covers changes, so that an old
/// journal, cache or cassette is never read as a new one.
pub const KEY_VERSION: &str = "wfc-answer-key/1";

const HEX: &[u8; 16] = b"0123456789abcdef";

/// One task's request to one agent, or to one corpus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub task: String,
    /// The agent asked, or the corpus searched.
    pub agent: String,
    pub request: Request,
    /// Overrides the endpoint's own timeout for each attempt.
    pub timeout: Option<Duration>,
    /// Which failures are tried again, how often and how far apart.
    pub retry: RetryPolicy,
    /// The declared shape of the answer, checked when it arrives.
    pub output: Option<Type>,
    /// The agent's declared `context_window`; the router's endpoints may
    /// give a smaller one.
    pub context_window: Option<u32>,
    /// The trace context (`traceparent`, `tracestate`) of the run, for a
    /// process that runs the job for another (a durable engine's worker).
    #[serde(default)]
    pub trace: std::collections::HashMap<String, String>,
    /// Its turn when it waits for a server's slot, and the replica its
    /// run keeps to; set by the run, not part of what is asked.
    #[serde(default)]
    pub claim: Claim,
}

/// What a task asks of the world.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Request {
    /// A chat completion from the agent's model.
    Chat(ChatRequest),
    /// Passages from a corpus.
    Retrieve(RetrieveRequest),
}

/// A search of a corpus, with its query and filters rendered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrieveRequest {
    pub query: String,
    pub top_k: u32,
    pub mode: SearchMode,
    /// Metadata each passage must have: (field, value).
    pub filters: Vec<(String, String)>,
    /// The longest passage, in characters: how the corpus is cut (its
    /// index is rebuilt when this changes).
    pub passage_len: u32,
}

impl Job {
    /// The chat completion task `task` asks of `agent` (its own agent or a
    /// fallback), with its rendered prompt.
    #[must_use]
    pub fn chat(task: &TaskDef, agent: &AgentDef, prompt: String) -> Self {
        Job {
            task: task.name.clone(),
            agent: agent.name.clone(),
            request: Request::Chat(ChatRequest {
                model: agent.model.clone().unwrap_or_else(|| agent.name.clone()),
                system: agent.system.clone(),
                prompt,
                max_tokens: task.max_tokens,
                temperature: task.temperature.or(agent.temperature),
                schema: task.output.as_ref().map(Type::json_schema),
                follow_ups: Vec::new(),
            }),
            timeout: task.timeout,
            retry: task.retry.clone(),
            output: task.output.clone(),
            context_window: agent.context_window,
            trace: std::collections::HashMap::new(),
            claim: Claim::default(),
        }
    }

    /// The search task `task` asks of its corpus, with its rendered query
    /// and filters.
    #[must_use]
    pub fn retrieve(
        task: &TaskDef,
        retrieval: &Retrieval,
        query: String,
        filters: Vec<(String, String)>,
    ) -> Self {
        Job {
            task: task.name.clone(),
            agent: task.agent.clone(),
            request: Request::Retrieve(RetrieveRequest {
                query,
                top_k: retrieval.top_k,
                mode: retrieval.mode,
                filters,
                passage_len: retrieval.passage_len,
            }),
            timeout: task.timeout,
            retry: task.retry.clone(),
            output: None,
            context_window: None,
            trace: std::collections::HashMap::new(),
            claim: Claim::default(),
        }
    }

    /// The chat completion this job asks for, if it asks one.
    #[must_use]
    pub fn chat_request(&self) -> Option<&ChatRequest> {
        match &self.request {
            Request::Chat(request) => Some(request),
            Request::Retrieve(_) => None,
        }
    }

    /// The model a chat job asks for; for a search, its ranking.
    #[must_use]
    pub fn model(&self) -> &str {
        match &self.request {
            Request::Chat(request) => &request.model,
            Request::Retrieve(request) => request.mode.name(),
        }
    }

    /// The fingerprint of what is asked: agent, model, messages and
    /// sampling parameters (or corpus, query and search settings), and the
    /// version of this key. The journal, the cache and cassettes all key on
    /// it, so an identical request is never paid for twice.
    #[must_use]
    pub fn key(&self) -> String {
        self.key_with(self.chat_request().and_then(|r| r.schema.as_ref()))
    }

    /// The key as if the answer's schema were `schema`: a recording made
    /// before the schema changed is found under it.
    #[must_use]
    pub fn key_with(&self, schema: Option<&serde_json::Value>) -> String {
        // A JSON array, serialized from borrowed parts (a tuple is written
        // as an array): the same bytes as ever, without copying the prompt.
        let canonical = match &self.request {
            Request::Chat(request) => serde_json::to_vec(&(
                KEY_VERSION,
                &self.agent,
                &request.model,
                &request.system,
                &request.prompt,
                request.max_tokens,
                request.temperature,
                schema,
            )),
            Request::Retrieve(request) => serde_json::to_vec(&(
                KEY_VERSION,
                "retrieve",
                &self.agent,
                &request.query,
                request.top_k,
                request.mode,
                &request.filters,
                request.passage_len,
            )),
        }
        .expect("strings and numbers serialize");
        let digest = Sha256::digest(&canonical);
        let mut key = String::with_capacity(2 * digest.len());
        for byte in digest {
            key.push(char::from(HEX[usize::from(byte >> 4)]));
            key.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        key
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub text: String,
    pub model: String,
    pub tokens: u32,
    pub finish_reason: Option<String>,
    pub attempts: u32,
    pub replayed: bool,
    /// What the server said of the prompt: its tokens, and how many of
    /// them came from its cache. `None` for an answer not from a server.
    #[serde(default)]
    pub prompt: PromptUsage,
}

/// A prompt's tokens as the server counted them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptUsage {
    pub tokens: Option<u32>,
    pub cached: Option<u32>,
}

/// Why a job has no answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub error: String,
    /// The kind of failure, for retry policies; `None` when sending the
    /// same job again cannot help.
    pub class: Option<ErrorClass>,
    /// Requests sent for the job (0 when it could not be sent at all).
    pub attempts: u32,
    /// Tokens the model generated for answers that were not accepted (a
    /// typed answer of the wrong shape, one cut off): paid for all the same.
    #[serde(default)]
    pub tokens: u32,
    /// When the server said to come back.
    pub retry_after: Option<Duration>,
    /// For an answer of the wrong shape: the turns that tell the model
    /// what was wrong, to add to the conversation before asking again.
    pub correction: Vec<crate::client::Turn>,
}

impl Failure {
    /// The failure's class as OpenTelemetry's `error.type` names it: the
    /// class, or `permanent` for a failure no class covers.
    #[must_use]
    pub fn error_type(&self) -> &'static str {
        self.class.map_or("permanent", ErrorClass::name)
    }

    /// A failure that trying again cannot mend.
    #[must_use]
    pub fn permanent(error: String, attempts: u32) -> Self {
        Failure {
            error,
            class: None,
            attempts,
            tokens: 0,
            retry_after: None,
            correction: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{Role, Turn};
    use serde_json::json;

    /// A job of task `codes` for `Billing` asking `request`, with the
    /// defaults of the rest.
    fn asking(request: ChatRequest) -> Job {
        Job {
            task: "codes".into(),
            agent: "Billing".into(),
            request: Request::Chat(request),
            timeout: None,
            retry: RetryPolicy::retries(0),
            output: None,
            context_window: None,
            trace: std::collections::HashMap::new(),
            claim: Claim::default(),
        }
    }

    #[test]
    fn jobs_and_failures_survive_a_journal() {
        let job = Job {
            task: "codes".into(),
            agent: "Billing".into(),
            request: Request::Chat(ChatRequest {
                model: "m".into(),
                system: Some("terse".into()),
                prompt: "code this".into(),
                max_tokens: 64,
                temperature: Some(0.2),
                schema: Some(json!({"type": "object"})),
                follow_ups: vec![Turn {
                    role: Role::User,
                    content: "again".into(),
                }],
            }),
            timeout: Some(Duration::from_secs(30)),
            retry: RetryPolicy::retries(2),
            output: Some(Type::List(Box::new(Type::Text))),
            context_window: Some(2048),
            trace: std::collections::HashMap::new(),
            claim: Claim::default(),
        };
        let json = serde_json::to_value(&job).unwrap();
        assert_eq!(json["request"]["kind"], "chat");
        assert_eq!(json["request"]["follow_ups"][0]["role"], "user");
        assert_eq!(serde_json::from_value::<Job>(json).unwrap(), job);

        let failure = Failure {
            class: Some(ErrorClass::RateLimited),
            retry_after: Some(Duration::from_secs(2)),
            ..Failure::permanent("busy".into(), 1)
        };
        let json = serde_json::to_value(&failure).unwrap();
        assert_eq!(json["class"], "rate_limited");
        assert_eq!(serde_json::from_value::<Failure>(json).unwrap(), failure);
    }

    #[test]
    fn the_key_ignores_corrections_but_not_the_prompt() {
        let mut job = asking(ChatRequest {
            model: "m".into(),
            system: None,
            prompt: "p".into(),
            max_tokens: 8,
            temperature: None,
            schema: None,
            follow_ups: Vec::new(),
        });
        let key = job.key();
        let chat = |job: &mut Job| match &mut job.request {
            Request::Chat(request) => request.clone(),
            Request::Retrieve(_) => unreachable!("the job asks a chat completion"),
        };
        let mut corrected = chat(&mut job);
        corrected.follow_ups.push(Turn {
            role: Role::User,
            content: "fix it".into(),
        });
        job.request = Request::Chat(corrected);
        assert_eq!(job.key(), key);
        let mut changed = chat(&mut job);
        changed.prompt = "q".into();
        job.request = Request::Chat(changed);
        assert_ne!(job.key(), key);
    }

    #[test]
    fn a_search_is_keyed_by_its_corpus_query_and_settings() {
        let search = |query: &str, top_k: u32| Job {
            task: "policy".into(),
            agent: "PayerPolicies".into(),
            request: Request::Retrieve(RetrieveRequest {
                query: query.into(),
                top_k,
                mode: SearchMode::Bm25,
                filters: vec![("payer".into(), "Acme".into())],
                passage_len: 1200,
            }),
            ..asking(ChatRequest {
                model: String::new(),
                system: None,
                prompt: String::new(),
                max_tokens: 1,
                temperature: None,
                schema: None,
                follow_ups: Vec::new(),
            })
        };
        let key = search("lumbar MRI", 3).key();
        assert_eq!(search("lumbar MRI", 3).key(), key);
        assert_ne!(search("lumbar MRI", 4).key(), key);
        assert_ne!(search("knee MRI", 3).key(), key);
        assert_eq!(search("lumbar MRI", 3).model(), "bm25");
    }

    /// Journals, caches and cassettes written before keep their keys: the
    /// key is the SHA-256, in lower-case hex, of the JSON array of its parts.
    #[test]
    fn the_key_is_the_digest_of_the_json_array_of_its_parts() {
        let schema = json!({"type": "object", "properties": {"icd10": {"type": "string"}}});
        let job = asking(ChatRequest {
            model: "OpenInsurance-8B".into(),
            system: Some("You are terse.".into()),
            prompt: "Code: \"STEMI\" — ünïcode\nand lines".into(),
            max_tokens: 512,
            temperature: Some(0.7),
            schema: Some(schema.clone()),
            follow_ups: Vec::new(),
        });
        let request = job.chat_request().expect("the job asks a chat completion");
        let array = json!([
            KEY_VERSION,
            job.agent,
            request.model,
            request.system,
            request.prompt,
            request.max_tokens,
            0.7,
            schema,
        ]);
        let expected: String = Sha256::digest(array.to_string().as_bytes())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        assert_eq!(job.key(), expected);
    }
}
