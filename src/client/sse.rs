//! Reading a streamed chat completion: server-sent events, one JSON chunk
//! each, ending with `data: [DONE]`.

use std::borrow::Cow;

use futures_util::StreamExt;
use serde::Deserialize;
use sseer::EventStream;

use super::{CallError, Completion};

/// One streamed chunk, borrowing from the event's text where it can: a
/// long answer comes in hundreds of them.
#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    choices: Vec<ChunkChoice<'a>>,
    usage: Option<super::Usage>,
}

#[derive(Deserialize)]
struct ChunkChoice<'a> {
    #[serde(default, borrow)]
    delta: Delta<'a>,
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct Delta<'a> {
    #[serde(borrow)]
    content: Option<Cow<'a, str>>,
}

pub(super) async fn read(
    url: &str,
    response: reqwest::Response,
    on_text: &mut (dyn FnMut(&str) + Send),
) -> Result<Completion, CallError> {
    let interrupted = |reason: String| CallError::Interrupted {
        url: url.to_string(),
        reason,
    };
    let mut events = EventStream::new(response.bytes_stream());
    let mut completion = Completion {
        text: String::new(),
        model: String::new(),
        tokens: 0,
        prompt_tokens: None,
        cached_tokens: None,
        finish_reason: None,
    };
    let (mut pieces, mut usage_tokens) = (0u32, None);
    while let Some(event) = events.next().await {
        let event = event.map_err(|err| interrupted(err.to_string()))?;
        if event.data.trim() == "[DONE]" {
            if completion.finish_reason.is_none() {
                return Err(interrupted(
                    "the stream ended without a finish reason".into(),
                ));
            }
            completion.tokens = usage_tokens.unwrap_or(pieces);
            return Ok(completion);
        }
        let chunk: Chunk =
            serde_json::from_str(&event.data).map_err(|err| CallError::Malformed {
                url: url.to_string(),
                expected: super::CHAT_COMPLETION,
                reason: format!("a streamed chunk is not valid: {err}"),
            })?;
        if let Some(model) = chunk.model
            && completion.model != model
        {
            completion.model = model.into_owned();
        }
        if let Some(usage) = chunk.usage {
            usage_tokens = usage.completion_tokens.or(usage_tokens);
            completion.prompt_tokens = usage.prompt_tokens.or(completion.prompt_tokens);
            completion.cached_tokens = usage.cached_tokens().or(completion.cached_tokens);
        }
        for choice in chunk.choices {
            if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
                pieces += 1;
                on_text(&text);
                completion.text.push_str(&text);
            }
            if choice.finish_reason.is_some() {
                completion.finish_reason = choice.finish_reason;
            }
        }
    }
    Err(interrupted("the stream ended before `data: [DONE]`".into()))
}
