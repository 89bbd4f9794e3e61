//! Filters for aggregating several agents' answers into one document.

use std::collections::HashSet;
use std::sync::LazyLock;

use minijinja::Value;

/// Drops every paragraph that repeats an earlier one (ignoring case and
/// spacing): agents given the same record often restate the same facts.
pub(super) fn dedupe(text: Value) -> String {
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
pub(super) fn section(
    text: Value,
    title: &str,
    style: Option<&str>,
) -> Result<String, minijinja::Error> {
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

/// What `redact` puts in place of an identifier.
pub(super) const REDACTED: &str = "[REDACTED]";

/// The identifiers `redact` finds, in the order it replaces them: e-mail
/// addresses, dates, SSN-shaped numbers and phone numbers before the digit
/// runs they contain.
static IDENTIFIERS: LazyLock<Vec<regex::Regex>> = LazyLock::new(|| {
    const MONTH: &str = r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)";
    [
        r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}".to_string(),
        r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b".to_string(),
        r"\b\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}\b".to_string(),
        format!(r"\b{MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}\b"),
        format!(r"\b\d{{1,2}}(?:st|nd|rd|th)?\s+{MONTH}\.?,?\s+\d{{4}}\b"),
        r"\b\d{3}-\d{2}-\d{4}\b".to_string(),
        r"(?:\+\d{1,3}[\s.-]?)?(?:\(\d{3}\)\s?|\b\d{3}[\s.-])\d{3}[\s.-]\d{4}\b".to_string(),
        r"\b\d{6,}\b".to_string(),
    ]
    .iter()
    .map(|pattern| regex::Regex::new(pattern).expect("identifier patterns are valid"))
    .collect()
});

/// A capitalised name (one to three words) after a title or a label that
/// introduces a person; the title or label is kept.
static NAMES: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(
        r"\b((?:Mr|Mrs|Ms|Miss|Dr)\.?\s+|(?:Patient|Name)\s*:\s*)[A-Z][A-Za-z'-]+(?:\s+[A-Z][A-Za-z'-]+){0,2}",
    )
    .expect("the name pattern is valid")
});

/// Replaces the identifiers a pattern can find with `[REDACTED]`: e-mail
/// addresses; dates (`2024-03-15`, `03/15/2024`, `15.03.24`, `March 15, 2024`,
/// `15 Mar 2024`); SSN-shaped and phone numbers; runs of 6 or more digits
/// (MRNs, account and policy numbers); and capitalised names after `Mr.`,
/// `Mrs.`, `Ms.`, `Miss`, `Dr.`, `Patient:` or `Name:`.
///
/// It does not find names written without such a title or label, street
/// addresses, towns, ages, identifiers shorter than 6 digits or mixed with
/// letters, nor facts rare enough to identify someone: it lowers the risk,
/// and a person or a `deidentify = true` task is still needed where the law
/// asks for de-identification.
pub(super) fn redact(text: Value) -> String {
    let mut text = text.to_string();
    for pattern in IDENTIFIERS.iter() {
        text = pattern.replace_all(&text, REDACTED).into_owned();
    }
    NAMES
        .replace_all(&text, format!("${{1}}{REDACTED}"))
        .into_owned()
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
    fn redact_removes_identifiers() {
        let record = "Patient: John Smith, MRN 00123456, DOB 1957-03-14, seen 03/15/2024 and on March 2, 2024.\n\
            Referred by Dr. Alice Moreau (alice.moreau@example.org, (555) 123-4567, +1 555.987.6543).\n\
            Mrs. O'Neil called. SSN 123-45-6789. Troponin 0.45 ng/mL, BP 150/90, 3 days of chest pain.";
        let redacted = redact(Value::from(record));
        for identifier in [
            "John",
            "Smith",
            "00123456",
            "1957",
            "03/15/2024",
            "March 2",
            "Alice",
            "Moreau",
            "alice.moreau",
            "123-4567",
            "987",
            "O'Neil",
            "6789",
        ] {
            assert!(!redacted.contains(identifier), "{identifier} in {redacted}");
        }
        for clinical in [
            "Troponin 0.45 ng/mL",
            "BP 150/90",
            "3 days of chest pain",
            "Dr. [REDACTED]",
        ] {
            assert!(
                redacted.contains(clinical),
                "{clinical} missing from {redacted}"
            );
        }
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
