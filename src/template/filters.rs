//! Filters for aggregating several agents' answers into one document.

use std::collections::HashSet;

use minijinja::Value;

/// Drops every paragraph that repeats an earlier one (ignoring case and
/// spacing): agents given the same record often restate the same facts.
pub fn dedupe(text: Value) -> String {
    let text = text.to_string();
    let mut seen = HashSet::new();
    let kept: Vec<String> = paragraphs(&text)
        .into_iter()
        .filter(|paragraph| seen.insert(normalise(paragraph)))
        .collect();
    kept.join("\n\n")
}

/// Puts a heading over a block of text: `=== TITLE ===` as the seed's
/// aggregated documents did, or a Markdown heading with `style="markdown"`.
pub fn section(text: Value, title: &str, style: Option<&str>) -> Result<String, minijinja::Error> {
    let body = text.to_string();
    let body = body.trim();
    let heading = match style.unwrap_or("banner") {
        "banner" => format!("=== {} ===", title.to_uppercase()),
        "markdown" => format!("## {title}"),
        other => {
            return Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!("section style `{other}` is unknown; use \"banner\" or \"markdown\""),
            ));
        }
    };
    Ok(format!("{heading}\n{body}"))
}

/// Runs of lines that are not blank.
fn paragraphs(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.lines().chain([""]) {
        if !line.trim().is_empty() {
            current.push(line.trim_end());
        } else if !current.is_empty() {
            found.push(current.join("\n"));
            current.clear();
        }
    }
    found
}

fn normalise(paragraph: &str) -> String {
    paragraph
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedupe_keeps_the_first_of_each_paragraph() {
        let text =
            "Chest pain.\n\nTroponin   raised.\n\n  \nchest PAIN.\nNew line.\n\ntroponin raised.\n";
        assert_eq!(
            dedupe(Value::from(text)),
            "Chest pain.\n\nTroponin   raised.\n\nchest PAIN.\nNew line."
        );
    }

    #[test]
    fn sections_in_both_styles() {
        let text = Value::from("  I21.19\n");
        assert_eq!(
            section(text.clone(), "Billing codes", None).unwrap(),
            "=== BILLING CODES ===\nI21.19"
        );
        assert_eq!(
            section(text.clone(), "Billing codes", Some("markdown")).unwrap(),
            "## Billing codes\nI21.19"
        );
        assert!(section(text, "x", Some("loud")).is_err());
    }
}
