//! The token estimate shared by the checker's context budgets and the
//! runner's refusal of prompts that cannot fit.
//!
//! There is no tokenizer for every model a router may serve, so tokens are
//! estimated from characters: `ceil(characters / 4)`, the usual average for
//! English text with the tokenizers of Llama- and Mistral-family models. It
//! is an estimate, not a count: clinical abbreviations, numbers and other
//! languages can take more tokens per character, so leave some room.

/// Characters per token in the estimate.
pub const CHARS_PER_TOKEN: u64 = 4;

/// The estimated tokens of `characters` characters of text.
#[must_use]
pub fn tokens(characters: u64) -> u64 {
    characters.div_ceil(CHARS_PER_TOKEN)
}

/// The characters of `text` (not its bytes).
#[must_use]
pub fn characters(text: &str) -> u64 {
    text.chars().count() as u64
}

/// `12345` as `12,345`.
#[must_use]
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Why a rendered request cannot be sent to a model with `window` tokens of
/// context: the prompt (with the system prompt) and the longest answer it
/// asks for do not fit together. `None` when they fit.
pub fn refusal(
    task: &str,
    agent: &str,
    system: Option<&str>,
    prompt: &str,
    max_tokens: u32,
    window: u32,
) -> Option<String> {
    let chars = characters(prompt) + system.map_or(0, characters);
    let prompt_tokens = tokens(chars);
    if prompt_tokens + u64::from(max_tokens) <= u64::from(window) {
        return None;
    }
    Some(format!(
        "the prompt of `{task}` is about {} tokens ({} characters) and its answer may take {}; {agent}'s context window is {}",
        grouped(prompt_tokens),
        grouped(chars),
        grouped(u64::from(max_tokens)),
        grouped(u64::from(window)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_four_characters_a_token_rounding_up() {
        assert_eq!(tokens(0), 0);
        assert_eq!(tokens(1), 1);
        assert_eq!(tokens(4), 1);
        assert_eq!(tokens(36_480), 9_120);
        assert_eq!(grouped(36_480), "36,480");
        assert_eq!(grouped(768), "768");
        assert_eq!(grouped(1_000_000), "1,000,000");
    }

    #[test]
    fn refuses_what_cannot_fit() {
        let prompt = "x".repeat(36_480);
        assert_eq!(
            refusal("summary", "Clinical", None, &prompt, 768, 8192).as_deref(),
            Some(
                "the prompt of `summary` is about 9,120 tokens (36,480 characters) and its answer may take 768; Clinical's context window is 8,192"
            )
        );
        assert_eq!(
            refusal("summary", "Clinical", Some("be brief"), "hi", 768, 8192),
            None
        );
    }
}
