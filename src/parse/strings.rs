//! String literals: escapes in `"..."`, indentation stripping in `"""..."""`.

use crate::ast::{Quotes, Text};
use crate::source::Span;

/// Builds the value of a `"..."` literal whose text (between the quotes)
/// starts at file offset `text_start`. The grammar has already accepted every
/// escape, so each one here is well formed.
pub(super) fn basic(raw: &str, text_start: usize, span: Span) -> Text {
    let mut value = String::with_capacity(raw.len());
    let mut runs = vec![(0, text_start)];
    let mut chars = raw.char_indices().peekable();
    while let Some((i, ch)) = chars.next() {
        if ch != '\\' {
            value.push(ch);
            continue;
        }
        let (_, escaped) = chars.next().unwrap_or((i, '\\'));
        let mut escape_end = i + 2;
        match escaped {
            'n' => value.push('\n'),
            't' => value.push('\t'),
            'r' => value.push('\r'),
            'u' => {
                let digits: String = chars
                    .by_ref()
                    .map(|(_, c)| c)
                    .skip(1)
                    .take_while(|&c| c != '}')
                    .collect();
                escape_end += digits.len() + 2;
                let code = u32::from_str_radix(&digits, 16).unwrap_or(0xFFFD);
                value.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
            }
            other => value.push(other),
        }
        runs.push((value.len(), text_start + escape_end));
    }
    Text {
        value,
        quotes: Quotes::Basic,
        span,
        runs,
    }
}

/// Builds the value of a `"""..."""` literal whose text starts at file offset
/// `text_start`: a line break right after the opening quotes is dropped, so
/// is a last line holding only spaces, and the indentation common to all
/// non-blank lines is removed (a line of only spaces becomes empty).
pub(super) fn triple(raw: &str, text_start: usize, span: Span) -> Text {
    let mut lines: Vec<(usize, &str)> = Vec::new();
    let mut offset = 0;
    for end in memchr::memchr_iter(b'\n', raw.as_bytes()).chain([raw.len()]) {
        lines.push((offset, &raw[offset..end]));
        offset = end + 1;
    }
    let starts_on_next_line = lines.len() > 1 && lines[0].1.trim().is_empty();
    if starts_on_next_line {
        lines.remove(0);
    }
    if lines.len() > 1 && lines.last().is_some_and(|(_, line)| is_blank(line)) {
        lines.pop();
    }
    let indent = lines
        .iter()
        .enumerate()
        .filter(|(i, (_, line))| (starts_on_next_line || *i > 0) && !is_blank(line))
        .map(|(_, (_, line))| indentation(line))
        .min_by_key(|prefix| prefix.len())
        .unwrap_or("");

    let mut value = String::with_capacity(raw.len());
    let mut runs = Vec::with_capacity(lines.len());
    for (i, (line_offset, line)) in lines.iter().enumerate() {
        if i > 0 {
            value.push('\n');
        }
        let keep_whole = i == 0 && !starts_on_next_line;
        let kept = if keep_whole {
            line
        } else if is_blank(line) {
            ""
        } else {
            strip_common(line, indent)
        };
        runs.push((
            value.len(),
            text_start + line_offset + (line.len() - kept.len()),
        ));
        value.push_str(kept);
    }
    Text {
        value,
        quotes: Quotes::Triple,
        span,
        runs,
    }
}

// Bytes, not chars: the blanks are ASCII, and no byte of a longer UTF-8
// character equals one.
fn is_blank(line: &str) -> bool {
    line.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r'))
}

fn indentation(line: &str) -> &str {
    let width = line
        .bytes()
        .position(|b| b != b' ' && b != b'\t')
        .unwrap_or(line.len());
    &line[..width]
}

/// Removes the shared indentation; a line indented with different
/// characters (tabs against spaces) loses only what it has in common.
fn strip_common<'a>(line: &'a str, indent: &str) -> &'a str {
    let common = line
        .bytes()
        .zip(indent.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    &line[common..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn triple_value(raw: &str) -> String {
        triple(raw, 3, Span::new(0, raw.len() + 6)).value
    }

    #[test]
    fn strips_common_indentation_and_framing_lines() {
        let raw = "\n      Write a summary:\n        {{ patient_data }}\n\n      Done.\n    ";
        assert_eq!(
            triple_value(raw),
            "Write a summary:\n  {{ patient_data }}\n\nDone."
        );
    }

    #[test]
    fn inline_text_is_kept_whole() {
        assert_eq!(triple_value("one line"), "one line");
        assert_eq!(triple_value("  padded  "), "  padded  ");
    }

    #[test]
    fn maps_value_offsets_back_to_the_file() {
        let raw = "\n    ab\n      cd\n  ";
        let text = triple(raw, 10, Span::new(7, 10 + raw.len() + 3));
        assert_eq!(text.value, "ab\n  cd");
        // `a` is at raw offset 5 -> file offset 15; `c` at raw 14 -> 24.
        assert_eq!(text.file_offset(0), 15);
        assert_eq!(text.file_offset(5), 24);
        assert_eq!(text.value_offset(15), 0);
        assert_eq!(text.value_offset(24), 5);
    }

    #[test]
    fn unescapes_and_maps_basic_strings() {
        let raw = r#"a\"b\u{e9}c"#;
        let text = basic(raw, 1, Span::new(0, raw.len() + 2));
        assert_eq!(text.value, "a\"béc");
        assert_eq!(text.file_offset(0), 1);
        assert_eq!(text.file_offset(2), 4);
        // `c` follows the 8-byte `\u{e9}` escape.
        assert_eq!(text.file_offset("a\"bé".len()), 1 + raw.len() - 1);
        assert_eq!(text.value_offset(4), 2);
        assert_eq!(text.value_offset(1 + raw.len() - 1), "a\"bé".len());
    }
}
