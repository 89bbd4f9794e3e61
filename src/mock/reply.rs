//! The mock's reply text: a pure function of the request, so tests can predict
//! exactly what the server (or a workflow rendered through it) will say.

/// What the mock answers to one chat request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub text: String,
    pub completion_tokens: u32,
    /// `"stop"`, or `"length"` when `max_tokens` cut the reply short.
    pub finish_reason: &'static str,
}

/// The deterministic reply for `prompt` sent to `model`.
///
/// A prompt that asks for markdown sections (`## ` lines) gets one short line per
/// section, so a rendered document keeps its shape; any other prompt gets a line
/// whose hash tells replies to different prompts apart. A prompt that shows
/// passages (lines that begin `[id]`, as retrieved passages print) gets a
/// reply that cites the first. Tokens are counted as whitespace-separated
/// words, which is all a mock needs to exercise budgets.
pub fn reply_text(model: &str, prompt: &str, max_tokens: Option<u32>) -> Reply {
    let headings: Vec<&str> = prompt
        .lines()
        .filter(|line| line.starts_with("## "))
        .map(str::trim_end)
        .collect();
    let full = if headings.is_empty() {
        format!(
            "Mock {model} response {:08x} to a prompt of {} words.",
            fnv1a(prompt),
            word_count(prompt)
        )
    } else {
        headings
            .iter()
            .map(|line| format!("{line}\nMock {model} text for {}.", line[3..].trim()))
            .collect::<Vec<_>>()
            .join("\n\n")
    };
    let full = match first_passage_id(prompt) {
        Some(id) => format!("{full}\n\nSee [{id}]."),
        None => full,
    };
    let words = pieces(&full);
    let limit = max_tokens.map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
    if words.len() > limit {
        Reply {
            text: words[..limit].concat(),
            completion_tokens: count(limit),
            finish_reason: "length",
        }
    } else {
        Reply {
            completion_tokens: count(words.len()),
            text: full,
            finish_reason: "stop",
        }
    }
}

/// The id of the first passage the prompt shows: `lumbar_mri#2` of a line
/// `[lumbar_mri#2] Lumbar spine MRI`.
fn first_passage_id(prompt: &str) -> Option<&str> {
    prompt.lines().find_map(|line| {
        let (id, _) = line.trim_start().strip_prefix('[')?.split_once(']')?;
        (!id.is_empty() && !id.contains(char::is_whitespace)).then_some(id)
    })
}

/// A deterministic answer of the JSON Schema's shape, as a server with
/// constrained decoding would give: strings name the model and the field,
/// enums take their first value, lists hold one item.
#[must_use]
pub fn reply_json(model: &str, schema: &serde_json::Value) -> Reply {
    let text = example(model, "answer", schema).to_string();
    Reply {
        completion_tokens: count(pieces(&text).len()),
        text,
        finish_reason: "stop",
    }
}

fn example(model: &str, field: &str, schema: &serde_json::Value) -> serde_json::Value {
    use serde_json::{Value, json};
    if let Some(first) = schema.get("enum").and_then(|e| e.get(0)) {
        return first.clone();
    }
    if let Some(options) = schema.get("anyOf").and_then(Value::as_array) {
        let chosen = options
            .iter()
            .find(|option| option.get("type") != Some(&json!("null")))
            .unwrap_or(&Value::Null);
        return example(model, field, chosen);
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let object = properties
                .into_iter()
                .flatten()
                .map(|(name, inner)| (name.clone(), example(model, name, inner)))
                .collect();
            Value::Object(object)
        }
        Some("array") => json!([example(
            model,
            field,
            schema.get("items").unwrap_or(&Value::Null)
        )]),
        Some("number" | "integer") => json!(1),
        Some("boolean") => json!(true),
        Some("string") => json!(format!("Mock {model} {field}")),
        _ => Value::Null,
    }
}

/// Splits `text` into words, each carrying the whitespace before it, so that
/// streaming the pieces one by one reassembles the text exactly (newlines included).
pub(super) fn pieces(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_word = false;
    for (i, c) in text.char_indices() {
        if !c.is_whitespace() {
            in_word = true;
        } else if in_word {
            out.push(&text[start..i]);
            start = i;
            in_word = false;
        }
    }
    if in_word {
        out.push(&text[start..]);
    }
    out
}

pub(super) fn word_count(text: &str) -> u32 {
    count(text.split_whitespace().count())
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// 32-bit FNV-1a: tiny, stable across platforms and Rust versions (unlike `DefaultHasher`).
fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prompt_with_passages_gets_a_reply_citing_the_first() {
        let prompt =
            "Evidence:\n[lumbar_mri#2] Lumbar MRI\ncovered\n\n[knee-1] Knee\n[not an id] x";
        let reply = reply_text("m", prompt, None);
        assert!(
            reply.text.ends_with("See [lumbar_mri#2]."),
            "{}",
            reply.text
        );
        let plain = reply_text("m", "[a marker: with spaces] only", None);
        assert!(!plain.text.contains("See ["), "{}", plain.text);
    }

    #[test]
    fn fnv1a_matches_reference_vectors() {
        assert_eq!(fnv1a(""), 0x811c_9dc5);
        assert_eq!(fnv1a("a"), 0xe40c_292c);
        assert_eq!(fnv1a("foobar"), 0xbf9c_f968);
    }

    #[test]
    fn pieces_reassemble_the_text() {
        let text = "## A\nMock m text for A.\n\n## B";
        assert_eq!(pieces(text).concat(), text);
        assert_eq!(pieces(text).len(), 9);
    }
}
