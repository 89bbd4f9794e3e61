//! Cutting documents into passages.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::{Chunk, Chunking, RetrieveError};

/// Joins a document's title and the headings above a passage.
const TITLE_SEPARATOR: &str = " › ";

/// The kinds of document a corpus may hold, by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Markdown,
    Text,
    JsonLines,
}

impl Kind {
    pub(super) fn of(rel: &str) -> Option<Kind> {
        let (_, extension) = rel.rsplit_once('.')?;
        match extension.to_ascii_lowercase().as_str() {
            "md" => Some(Kind::Markdown),
            "txt" => Some(Kind::Text),
            "jsonl" => Some(Kind::JsonLines),
            _ => None,
        }
    }
}

/// The passages of one document, in document order. `rel` is its path
/// relative to the corpus folder (it decides the kind, the ids and the default
/// title); `path` is where it is, for messages.
pub(super) fn chunk_file(
    path: &Path,
    rel: &str,
    bytes: &[u8],
    chunking: &Chunking,
) -> Result<Vec<Chunk>, RetrieveError> {
    let text = std::str::from_utf8(bytes).map_err(|error| RetrieveError::NotUtf8 {
        path: path.to_path_buf(),
        line: line_of(&bytes[..error.valid_up_to()]),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let base = rel.rsplit_once('.').map_or(rel, |(base, _)| base);
    let stem = base.rsplit_once('/').map_or(base, |(_, stem)| stem);
    // A cap of 0 would never make progress; 1 is the smallest that does.
    let max_chars = chunking.max_chars.max(1);
    let passage = |position: usize, id: String, title: String, text: String| Chunk {
        id,
        source: rel.to_string(),
        title,
        text,
        position,
        metadata: BTreeMap::new(),
    };
    match Kind::of(rel) {
        Some(Kind::JsonLines) => json_lines(path, rel, base, stem, text, max_chars),
        kind => {
            let markdown = kind == Some(Kind::Markdown);
            let title = if markdown {
                document_title(text).unwrap_or(stem)
            } else {
                stem
            };
            let mut passages = Vec::new();
            for section in sections(text, title, markdown) {
                for piece in pack(&section.paragraphs, max_chars) {
                    let position = passages.len();
                    let id = format!("{base}#{}", position + 1);
                    passages.push(passage(position, id, section.title.clone(), piece));
                }
            }
            Ok(passages)
        }
    }
}

/// 1-based number of the line that starts after `before`.
fn line_of(before: &[u8]) -> usize {
    before.split(|&byte| byte == b'\n').count()
}

/// A run of paragraphs under one heading.
struct Section {
    title: String,
    paragraphs: Vec<String>,
}

/// Splits a document into sections at Markdown headings (only when `markdown`)
/// and each section into blank-line-separated paragraphs. Lines inside fenced
/// code blocks are never headings or paragraph breaks: a `# comment` in a
/// shell snippet is not a section.
fn sections(text: &str, document_title: &str, markdown: bool) -> Vec<Section> {
    // Headings above the current line: (level, text). The document's title
    // heading is left out, since every passage's title starts with it anyway.
    let mut headings: Vec<(usize, &str)> = Vec::new();
    let mut seen_title = false;
    let mut fence: Option<&str> = None;
    let mut sections = vec![Section {
        title: document_title.to_string(),
        paragraphs: Vec::new(),
    }];
    let mut paragraph: Vec<&str> = Vec::new();
    let flush = |paragraph: &mut Vec<&str>, sections: &mut Vec<Section>| {
        if !paragraph.is_empty() {
            let text = paragraph.join("\n").trim().to_string();
            if let Some(section) = sections.last_mut() {
                section.paragraphs.push(text);
            }
            paragraph.clear();
        }
    };
    for line in text.lines() {
        if markdown {
            if let Some(marker) = fence_marker(line) {
                match fence {
                    None => fence = Some(marker),
                    Some(open) if marker.starts_with(open) => fence = None,
                    Some(_) => {}
                }
                paragraph.push(line);
                continue;
            }
            if fence.is_none()
                && let Some((level, heading)) = heading(line)
            {
                flush(&mut paragraph, &mut sections);
                headings.retain(|&(above, _)| above < level);
                if level == 1 && !seen_title {
                    seen_title = true;
                } else {
                    headings.push((level, heading));
                }
                let path = headings.iter().map(|&(_, text)| text);
                let title = std::iter::once(document_title)
                    .chain(path)
                    .filter(|part| !part.is_empty())
                    .collect::<Vec<_>>()
                    .join(TITLE_SEPARATOR);
                sections.push(Section {
                    title,
                    paragraphs: Vec::new(),
                });
                continue;
            }
        }
        if fence.is_none() && line.trim().is_empty() {
            flush(&mut paragraph, &mut sections);
        } else {
            paragraph.push(line);
        }
    }
    flush(&mut paragraph, &mut sections);
    sections
}

/// The text of the document's first level-1 heading.
fn document_title(text: &str) -> Option<&str> {
    let mut fence: Option<&str> = None;
    for line in text.lines() {
        if let Some(marker) = fence_marker(line) {
            match fence {
                None => fence = Some(marker),
                Some(open) if marker.starts_with(open) => fence = None,
                Some(_) => {}
            }
        } else if fence.is_none()
            && let Some((1, title)) = heading(line)
            && !title.is_empty()
        {
            return Some(title);
        }
    }
    None
}

/// The run of backticks or tildes that opens or closes a fenced code block.
fn fence_marker(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    let fence_char = trimmed.chars().next().filter(|c| matches!(c, '`' | '~'))?;
    let length = trimmed.len() - trimmed.trim_start_matches(fence_char).len();
    (length >= 3).then(|| &trimmed[..length])
}

/// An ATX heading (`## Coverage criteria ##`): its level and text.
fn heading(line: &str) -> Option<(usize, &str)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let line = &line[indent..];
    let level = line.len() - line.trim_start_matches('#').len();
    let rest = &line[level..];
    if !(1..=6).contains(&level) || !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let rest = rest.trim();
    // A closing run of `#` belongs to the syntax only after a space.
    let unclosed = rest.trim_end_matches('#');
    let text = if unclosed.is_empty() || unclosed.ends_with([' ', '\t']) {
        unclosed.trim_end()
    } else {
        rest
    };
    Some((level, text))
}

/// Packs consecutive paragraphs into passages of at most `max_chars`
/// characters, splitting any paragraph that alone is longer.
fn pack(paragraphs: &[String], max_chars: usize) -> Vec<String> {
    const BREAK: &str = "\n\n";
    let mut passages = Vec::new();
    let mut current = String::new();
    let mut current_chars = 0;
    for piece in paragraphs.iter().flat_map(|p| split_long(p, max_chars)) {
        let chars = piece.chars().count();
        if !current.is_empty() && current_chars + BREAK.len() + chars > max_chars {
            passages.push(std::mem::take(&mut current));
            current_chars = 0;
        }
        if !current.is_empty() {
            current.push_str(BREAK);
            current_chars += BREAK.len();
        }
        current.push_str(piece);
        current_chars += chars;
    }
    if !current.is_empty() {
        passages.push(current);
    }
    passages
}

/// Cuts a paragraph into pieces of at most `max_chars` characters: after the
/// last sentence end that fits, else at the last space that fits, else (a
/// single word longer than the cap) at the cap itself.
fn split_long(paragraph: &str, max_chars: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = paragraph.trim();
    while rest.chars().count() > max_chars {
        // The byte just past the first `max_chars` characters.
        let limit = rest
            .char_indices()
            .nth(max_chars)
            .map_or(rest.len(), |(index, _)| index);
        let cut = sentence_end(rest, limit)
            // A sentence end near the start would leave a sliver of a
            // passage; a cut between words keeps pieces full.
            .filter(|&end| end * 2 >= limit)
            .or_else(|| word_gap(rest, limit))
            .unwrap_or(limit);
        pieces.push(rest[..cut].trim_end());
        rest = rest[cut..].trim_start();
    }
    if !rest.is_empty() {
        pieces.push(rest);
    }
    pieces
}

/// The byte just past the last `.`, `!` or `?` before `limit` that is
/// followed by whitespace.
fn sentence_end(text: &str, limit: usize) -> Option<usize> {
    text[..limit]
        .char_indices()
        .rev()
        .find(|&(index, c)| {
            matches!(c, '.' | '!' | '?') && text[index + 1..].starts_with(char::is_whitespace)
        })
        .map(|(index, _)| index + 1)
}

/// The last whitespace at or before `limit`, past the start.
fn word_gap(text: &str, limit: usize) -> Option<usize> {
    let window = text[limit..]
        .chars()
        .next()
        .map_or(limit, |c| limit + c.len_utf8());
    text[..window]
        .char_indices()
        .rev()
        .find(|&(index, c)| index > 0 && c.is_whitespace())
        .map(|(index, _)| index)
}

/// One passage a record, or more for a record whose `text` is over the cap.
fn json_lines(
    path: &Path,
    rel: &str,
    base: &str,
    stem: &str,
    text: &str,
    max_chars: usize,
) -> Result<Vec<Chunk>, RetrieveError> {
    let mut passages = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |problem: String| RetrieveError::BadRecord {
            path: path.to_path_buf(),
            line: line_number,
            problem,
        };
        let value: Value = serde_json::from_str(line).map_err(|error| {
            bad(format!(
                "this is not valid JSON ({error}); each line must be one JSON object such as {{\"text\": \"...\"}}"
            ))
        })?;
        let Value::Object(mut record) = value else {
            return Err(bad(
                "this is not a JSON object; each line must be one object such as {\"text\": \"...\"}"
                    .to_string(),
            ));
        };
        let text = match record.remove("text") {
            Some(Value::String(text)) => text,
            Some(_) => return Err(bad("field `text` must be a string".to_string())),
            None => {
                return Err(bad(
                    "the record has no `text` field; add the passage's text as \"text\": \"...\""
                        .to_string(),
                ));
            }
        };
        let id = match record.remove("id") {
            None => format!("{base}#{line_number}"),
            Some(Value::String(id)) if !id.trim().is_empty() => id,
            Some(Value::Number(id)) => id.to_string(),
            Some(_) => {
                return Err(bad(
                    "field `id` must be a non-empty string or a number".to_string()
                ));
            }
        };
        let title = match record.remove("title") {
            None => stem.to_string(),
            Some(Value::String(title)) => title,
            Some(_) => return Err(bad("field `title` must be a string".to_string())),
        };
        // Nested values have no exact-match meaning as one string; they stay
        // out of the metadata rather than fail the whole corpus.
        let metadata: BTreeMap<String, String> = record
            .into_iter()
            .filter_map(|(key, value)| match value {
                Value::String(text) => Some((key, text)),
                Value::Number(number) => Some((key, number.to_string())),
                Value::Bool(flag) => Some((key, flag.to_string())),
                _ => None,
            })
            .collect();
        let text = text.trim();
        let pieces = if text.chars().count() <= max_chars {
            // Under the cap the record is kept verbatim, blank lines and all.
            vec![text.to_string()]
        } else {
            pack(&sections(text, "", false)[0].paragraphs, max_chars)
        };
        for (part, piece) in pieces.into_iter().enumerate() {
            if piece.is_empty() {
                continue;
            }
            passages.push(Chunk {
                id: if part == 0 {
                    id.clone()
                } else {
                    format!("{id}-{}", part + 1)
                },
                source: rel.to_string(),
                title: title.clone(),
                text: piece,
                position: passages.len(),
                metadata: metadata.clone(),
            });
        }
    }
    Ok(passages)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(rel: &str, text: &str, max_chars: usize) -> Vec<Chunk> {
        chunk_file(
            Path::new(rel),
            rel,
            text.as_bytes(),
            &Chunking { max_chars },
        )
        .unwrap()
    }

    #[test]
    fn markdown_headings_make_titles() {
        let text = "Intro before the title.\n\n\
            # Lumbar spine MRI\n\nOverview of the policy.\n\n\
            ## Coverage criteria\n\nCovered after six weeks of therapy.\n\n\
            ### Red flags ###\n\nCauda equina syndrome.\n\n\
            ## Exclusions\n\n```sh\n# not a heading\n\necho hi\n```\n";
        let passages = chunk("policies/lumbar_mri.md", text, 1200);
        let summary: Vec<(&str, &str, usize)> = passages
            .iter()
            .map(|p| (p.id.as_str(), p.title.as_str(), p.position))
            .collect();
        assert_eq!(
            summary,
            [
                ("policies/lumbar_mri#1", "Lumbar spine MRI", 0),
                ("policies/lumbar_mri#2", "Lumbar spine MRI", 1),
                (
                    "policies/lumbar_mri#3",
                    "Lumbar spine MRI › Coverage criteria",
                    2
                ),
                (
                    "policies/lumbar_mri#4",
                    "Lumbar spine MRI › Coverage criteria › Red flags",
                    3
                ),
                ("policies/lumbar_mri#5", "Lumbar spine MRI › Exclusions", 4),
            ]
        );
        assert_eq!(passages[0].text, "Intro before the title.");
        assert_eq!(passages[2].text, "Covered after six weeks of therapy.");
        assert_eq!(passages[4].text, "```sh\n# not a heading\n\necho hi\n```");
        assert!(
            passages
                .iter()
                .all(|p| p.source == "policies/lumbar_mri.md")
        );
    }

    #[test]
    fn markdown_without_a_title_heading_uses_the_file_stem() {
        let passages = chunk("notes/knee.md", "## Scope\n\nKnee imaging.\n", 1200);
        assert_eq!(passages[0].title, "knee › Scope");
        assert_eq!(passages[0].id, "notes/knee#1");
    }

    #[test]
    fn paragraphs_are_packed_under_the_cap() {
        let paragraph = |n: usize| format!("Paragraph {n} has some words in it.");
        let text = (1..=6).map(paragraph).collect::<Vec<_>>().join("\n\n");
        // Each paragraph is 33 characters: two fit in 80 with the break
        // between them, three do not.
        let passages = chunk("plain.txt", &text, 80);
        let texts: Vec<&str> = passages.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                format!("{}\n\n{}", paragraph(1), paragraph(2)),
                format!("{}\n\n{}", paragraph(3), paragraph(4)),
                format!("{}\n\n{}", paragraph(5), paragraph(6)),
            ]
        );
        assert!(passages.iter().all(|p| p.title == "plain"));
    }

    #[test]
    fn a_long_paragraph_is_split_at_sentence_ends() {
        let text = "The first sentence is here. The second one is a bit longer than that. \
                    Third comes now. Fourth ends it.";
        let passages = chunk("long.txt", text, 70);
        let texts: Vec<&str> = passages.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "The first sentence is here. The second one is a bit longer than that.",
                "Third comes now. Fourth ends it.",
            ]
        );
        for passage in &passages {
            assert!(passage.text.chars().count() <= 70);
        }
    }

    #[test]
    fn a_long_sentence_is_split_between_words_and_never_over_the_cap() {
        let text = "ünïcödé wörds ".repeat(40);
        let passages = chunk("words.txt", &text, 50);
        assert!(passages.len() > 1);
        for passage in &passages {
            assert!(passage.text.chars().count() <= 50, "{:?}", passage.text);
            assert!(
                passage
                    .text
                    .split(' ')
                    .all(|w| w == "ünïcödé" || w == "wörds")
            );
        }
        // A word longer than the cap is the one thing cut mid-word.
        let passages = chunk("hash.txt", &"x".repeat(25), 10);
        assert_eq!(passages.len(), 3);
        assert_eq!(passages[2].text, "xxxxx");
    }

    #[test]
    fn json_lines_records_keep_ids_and_metadata() {
        let text = concat!(
            r#"{"id": "pa-1", "title": "Prior auth", "text": "Prior authorization is required.", "payer": "Acme", "year": 2024, "active": true, "tags": ["x"]}"#,
            "\n\n",
            r#"{"text": "No id here."}"#,
            "\n",
            r#"{"id": 7, "text": "One. Two three four. Five six seven eight."}"#,
            "\n",
        );
        let passages = chunk("data/policies.jsonl", text, 25);
        let ids: Vec<&str> = passages.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["pa-1", "pa-1-2", "data/policies#3", "7", "7-2"]);
        assert_eq!(passages[0].title, "Prior auth");
        assert_eq!(passages[2].title, "policies");
        let metadata: Vec<(&str, &str)> = passages[0]
            .metadata
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            metadata,
            [("active", "true"), ("payer", "Acme"), ("year", "2024")]
        );
        assert_eq!(passages[1].metadata, passages[0].metadata);
        assert!(passages[2].metadata.is_empty());
        assert_eq!(
            passages.iter().map(|p| p.position).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        assert_eq!(passages[3].text, "One. Two three four.");
    }

    #[test]
    fn bad_json_lines_name_the_file_and_line() {
        let cases = [
            ("{\"text\": \"ok\"}\n[1, 2]\n", 2, "not a JSON object"),
            (
                "{\"text\": \"ok\"}\n\n{\"title\": \"x\"}\n",
                3,
                "no `text` field",
            ),
            ("{\"text\": 5}\n", 1, "`text` must be a string"),
            (
                "{\"text\": \"ok\"}\n{\"text\": \"unclosed\n",
                2,
                "not valid JSON",
            ),
            ("{\"text\": \"a\", \"id\": \"\"}\n", 1, "`id` must be"),
        ];
        for (text, line, problem) in cases {
            let error = chunk_file(
                Path::new("corpus/bad.jsonl"),
                "bad.jsonl",
                text.as_bytes(),
                &Chunking::default(),
            )
            .unwrap_err();
            let message = error.to_string();
            assert!(
                message.starts_with(&format!("`corpus/bad.jsonl` line {line}: ")),
                "{message}"
            );
            assert!(message.contains(problem), "{message}");
        }
    }

    #[test]
    fn non_utf8_names_the_file_and_line() {
        let error = chunk_file(
            Path::new("corpus/latin1.txt"),
            "latin1.txt",
            b"fine\nna\xefve\n",
            &Chunking::default(),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "`corpus/latin1.txt` line 2 is not UTF-8 text; save the file as UTF-8, or move it out of the corpus folder"
        );
    }
}
