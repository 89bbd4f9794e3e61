//! Byte offsets into a file ↔ LSP positions (0-based line, UTF-16 column),
//! and `file://` URIs ↔ paths.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use lsp_types::{Position, Range, Uri};

use crate::source::{SourceFile, Span};

/// The LSP position of byte `offset` (clamped to the text, and back to the
/// start of the character it falls inside).
pub(super) fn position(source: &SourceFile, offset: usize) -> Position {
    let text = source.text();
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let line = source.line_index(offset);
    let start = source.line_start(line);
    let character = text[start..offset].encode_utf16().count();
    Position::new(line as u32, character as u32)
}

pub(super) fn range(source: &SourceFile, span: Span) -> Range {
    Range::new(position(source, span.start), position(source, span.end))
}

/// The byte offset of an LSP position; a column past the end of its line
/// means the end of the line, a line past the end of the file its end.
pub(super) fn offset(source: &SourceFile, position: Position) -> usize {
    let text = source.text();
    let line = position.line as usize;
    let start = source.line_start(line);
    if start >= text.len() {
        return text.len();
    }
    let end = source.line_start(line + 1);
    let line_text = text[start..end].trim_end_matches(['\n', '\r']);
    let mut units = 0;
    for (index, c) in line_text.char_indices() {
        if units >= position.character as usize {
            return start + index;
        }
        units += c.len_utf16();
    }
    start + line_text.len()
}

/// The path a `file://` URI names; other schemes get a made-up path, so
/// that an unsaved buffer can still be checked (without its imports).
pub(super) fn path(uri: &Uri) -> PathBuf {
    match url::Url::parse(uri.as_str())
        .ok()
        .and_then(|url| url.to_file_path().ok())
    {
        Some(path) => path,
        None => PathBuf::from(uri.as_str()),
    }
}

pub(super) fn uri(path: &Path) -> Option<Uri> {
    let url = url::Url::from_file_path(path).ok()?;
    Uri::from_str(url.as_str()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_utf16_units() {
        let source = SourceFile::new("a.wf", "é𝄞x\nnext");
        // é is 2 bytes and 1 unit; 𝄞 is 4 bytes and 2 units.
        assert_eq!(position(&source, 6), Position::new(0, 3));
        assert_eq!(offset(&source, Position::new(0, 3)), 6);
        assert_eq!(position(&source, 8), Position::new(1, 0));
        assert_eq!(offset(&source, Position::new(0, 99)), 7);
        assert_eq!(offset(&source, Position::new(9, 0)), source.text().len());
        // Inside a character: back to its start.
        assert_eq!(position(&source, 4), Position::new(0, 1));
    }

    #[test]
    fn file_uris_round_trip() {
        let path = std::env::temp_dir().join("a b.wf");
        let uri = uri(&path).expect("a file URI");
        assert!(uri.as_str().contains("a%20b.wf"), "{}", uri.as_str());
        assert_eq!(super::path(&uri), path);
    }
}
