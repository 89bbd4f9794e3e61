//! One chat completion against an OpenAI-compatible server: the request, the
//! answer (whole or streamed), and errors that say whether a retry can help.
//! Choosing the endpoint and retrying belong to the caller.

mod chroma;
mod embed;
mod error;
mod sse;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use error::{CallError, describe};

/// What `/chat/completions` answers, as errors name it.
const CHAT_COMPLETION: &str = "a chat completion";

/// An API key. It is sent to its endpoint and nowhere else: printing it shows
/// only that a key is set.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<hidden>)")
    }
}

/// Where a request goes.
#[derive(Debug, Clone)]
pub struct Target {
    /// The base URL that `/chat/completions` is appended to, e.g.
    /// `http://127.0.0.1:8085/v1`.
    pub base_url: String,
    pub api_key: Option<ApiKey>,
    /// The longest the whole exchange may take, streamed body included.
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub system: Option<String>,
    pub prompt: String,
    pub max_tokens: u32,
    pub temperature: Option<f64>,
    /// The JSON Schema the answer must match; servers with constrained
    /// decoding (llama.cpp, vLLM) then produce only that shape.
    pub schema: Option<serde_json::Value>,
    /// Turns after the prompt: an earlier answer (`assistant`) and what was
    /// wrong with it (`user`), so the model can correct itself.
    pub follow_ups: Vec<Turn>,
}

/// One message of a conversation after the prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub role: Role,
    pub content: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

impl ChatRequest {
    /// The request body, borrowing the prompt rather than copying it.
    fn body(&self, stream: bool) -> Body<'_> {
        let mut messages = Vec::with_capacity(2 + self.follow_ups.len());
        if let Some(system) = &self.system {
            messages.push(Sent {
                role: "system",
                content: system,
            });
        }
        messages.push(Sent {
            role: "user",
            content: &self.prompt,
        });
        messages.extend(self.follow_ups.iter().map(|turn| Sent {
            role: match turn.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            },
            content: &turn.content,
        }));
        Body {
            model: &self.model,
            messages,
            max_tokens: self.max_tokens,
            stream,
            temperature: self.temperature,
            stream_options: stream.then_some(StreamOptions {
                include_usage: true,
            }),
            response_format: self.schema.as_ref().map(|schema| ResponseFormat {
                kind: "json_schema",
                json_schema: JsonSchema {
                    name: "answer",
                    schema,
                    strict: true,
                },
            }),
        }
    }
}

/// A chat completion request as OpenAI-compatible servers read it.
#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: Vec<Sent<'a>>,
    max_tokens: u32,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<ResponseFormat<'a>>,
}

/// A message as sent.
#[derive(Serialize)]
struct Sent<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct ResponseFormat<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    json_schema: JsonSchema<'a>,
}

#[derive(Serialize)]
struct JsonSchema<'a> {
    name: &'static str,
    schema: &'a serde_json::Value,
    strict: bool,
}

/// A finished answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub text: String,
    /// The model the server says answered.
    pub model: String,
    /// Completion tokens: the server's `usage` when it sends one, otherwise
    /// the number of streamed chunks that carried text.
    pub tokens: u32,
    pub prompt_tokens: Option<u32>,
    /// Prompt tokens the server took from its cache of an earlier prompt
    /// with the same beginning (`usage.prompt_tokens_details.cached_tokens`).
    pub cached_tokens: Option<u32>,
    /// `stop`, or `length` when `max_tokens` cut the answer off.
    pub finish_reason: Option<String>,
}

const CHAT_PATH: &str = "/chat/completions";

/// A pooled HTTP client; clone it freely, the clones share connections.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
}

impl Default for Client {
    fn default() -> Self {
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .build()
            .expect("the HTTP client has a valid static configuration");
        Client { http }
    }
}

impl Client {
    /// One attempt, answered whole.
    pub async fn complete(
        &self,
        target: &Target,
        request: &ChatRequest,
    ) -> Result<Completion, CallError> {
        self.within_timeout(target, async {
            let response = self.send(target, CHAT_PATH, &request.body(false)).await?;
            let bytes = response
                .bytes()
                .await
                .map_err(|err| CallError::from_reqwest(&target.base_url, err))?;
            parse_completion(&bytes).map_err(|problem| match problem {
                BodyProblem::CutShort => CallError::Interrupted {
                    url: target.base_url.clone(),
                    reason: "the reply ends in the middle of its JSON".into(),
                },
                BodyProblem::Invalid(reason) => CallError::Malformed {
                    url: target.base_url.clone(),
                    expected: CHAT_COMPLETION,
                    reason,
                },
            })
        })
        .await
    }

    /// Whether the server answers `GET {base}/models`, as every
    /// OpenAI-compatible server does: a readiness probe.
    pub async fn answers(&self, target: &Target, within: Duration) -> bool {
        let url = format!("{}/models", target.base_url.trim_end_matches('/'));
        let mut request = self.http.get(url).timeout(within);
        if let Some(ApiKey(key)) = &target.api_key {
            request = request.bearer_auth(key);
        }
        request
            .send()
            .await
            .is_ok_and(|response| response.status().is_success())
    }

    /// One attempt, streamed: `on_text` sees each piece of text as it
    /// arrives. The result is the same as [`Client::complete`]'s.
    pub async fn stream(
        &self,
        target: &Target,
        request: &ChatRequest,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Completion, CallError> {
        self.within_timeout(target, async {
            let response = self.send(target, CHAT_PATH, &request.body(true)).await?;
            sse::read(&target.base_url, response, on_text).await
        })
        .await
    }

    async fn within_timeout<T>(
        &self,
        target: &Target,
        call: impl Future<Output = Result<T, CallError>>,
    ) -> Result<T, CallError> {
        tokio::time::timeout(target.timeout, call)
            .await
            .unwrap_or_else(|_| {
                Err(CallError::Timeout {
                    url: target.base_url.clone(),
                    after: target.timeout,
                })
            })
    }

    /// GETs `path` under the target's base URL: the body of a success.
    async fn get(&self, target: &Target, path: &str) -> Result<Vec<u8>, CallError> {
        let url = format!("{}{path}", target.base_url.trim_end_matches('/'));
        let mut builder = self.http.get(url);
        if let Some(ApiKey(key)) = &target.api_key {
            builder = builder.bearer_auth(key);
        }
        let response = builder
            .send()
            .await
            .map_err(|err| CallError::from_reqwest(&target.base_url, err))?;
        if !response.status().is_success() {
            return Err(CallError::from_status(&target.base_url, response).await);
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|err| CallError::from_reqwest(&target.base_url, err))?;
        Ok(bytes.to_vec())
    }

    /// POSTs `body` to `path` under the target's base URL; an answer that
    /// is not a success is an error.
    async fn send(
        &self,
        target: &Target,
        path: &str,
        body: &impl Serialize,
    ) -> Result<reqwest::Response, CallError> {
        let url = format!("{}{path}", target.base_url.trim_end_matches('/'));
        let mut builder = self.http.post(url).json(body);
        if let Some(ApiKey(key)) = &target.api_key {
            builder = builder.bearer_auth(key);
        }
        for (name, value) in crate::trace_context::current() {
            builder = builder.header(name, value);
        }
        let response = builder
            .send()
            .await
            .map_err(|err| CallError::from_reqwest(&target.base_url, err))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(CallError::from_status(&target.base_url, response).await)
    }
}

#[derive(Deserialize)]
struct CompletionBody {
    model: Option<String>,
    choices: Vec<Choice>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    content: Option<String>,
}

#[derive(Deserialize, Clone, Copy)]
struct Usage {
    prompt_tokens: Option<u32>,
    completion_tokens: Option<u32>,
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Deserialize, Clone, Copy)]
struct PromptDetails {
    cached_tokens: Option<u32>,
}

impl Usage {
    fn cached_tokens(&self) -> Option<u32> {
        self.prompt_tokens_details?.cached_tokens
    }
}

#[derive(Debug)]
enum BodyProblem {
    /// Valid so far, but it stops: a connection lost mid-body.
    CutShort,
    Invalid(String),
}

fn parse_completion(bytes: &[u8]) -> Result<Completion, BodyProblem> {
    let body: CompletionBody = serde_json::from_slice(bytes).map_err(|err| {
        if err.is_eof() && !bytes.is_empty() {
            BodyProblem::CutShort
        } else {
            BodyProblem::Invalid(err.to_string())
        }
    })?;
    let invalid = |reason: &str| BodyProblem::Invalid(reason.to_string());
    let choice = body
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| invalid("the reply has no choices"))?;
    let text = choice
        .message
        .content
        .ok_or_else(|| invalid("the reply has no text"))?;
    let usage = body.usage;
    Ok(Completion {
        tokens: usage
            .and_then(|u| u.completion_tokens)
            .unwrap_or_else(|| text.split_whitespace().count() as u32),
        prompt_tokens: usage.and_then(|u| u.prompt_tokens),
        cached_tokens: usage.as_ref().and_then(Usage::cached_tokens),
        model: body.model.unwrap_or_default(),
        finish_reason: choice.finish_reason,
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_llama_server_replies() {
        let reply = br#"{"choices":[{"finish_reason":"length","index":0,"message":{"role":"assistant","content":" light over"}}],"model":"tiny","usage":{"completion_tokens":2,"prompt_tokens":47,"total_tokens":49,"prompt_tokens_details":{"cached_tokens":40}},"timings":{}}"#;
        let completion = parse_completion(reply).unwrap();
        assert_eq!(completion.text, " light over");
        assert_eq!(completion.tokens, 2);
        assert_eq!(completion.prompt_tokens, Some(47));
        assert_eq!(completion.cached_tokens, Some(40));
        assert_eq!(completion.finish_reason.as_deref(), Some("length"));
    }

    #[test]
    fn a_reply_without_choices_is_malformed() {
        let invalid = |body: &[u8]| matches!(parse_completion(body), Err(BodyProblem::Invalid(_)));
        assert!(invalid(br#"{"choices":[]}"#));
        assert!(invalid(b"<html>"));
        assert!(invalid(b""));
        assert!(matches!(
            parse_completion(br#"{"choices":[{"message":{"content":"ha"#),
            Err(BodyProblem::CutShort)
        ));
    }

    #[test]
    fn keys_never_print() {
        let key = ApiKey::new("sk-secret");
        assert!(!format!("{key:?}").contains("secret"));
    }
}
