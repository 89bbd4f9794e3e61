//! A file as far as brackets and quotes go: code byte by byte, comments and
//! strings whole. Enough to count brackets and find where lines begin
//! without parsing, and never fooled by a brace inside a prompt.

/// What a file holds at one place, as far as brackets and quotes go.
pub(super) enum Piece {
    Code(u8),
    /// A comment, or a string that closes.
    Quoted,
    /// A string that never closes.
    Unclosed,
}

/// The pieces of `text` in order, each with its offset: code byte by byte,
/// comments and strings whole.
pub(super) fn pieces(text: &str) -> impl Iterator<Item = (usize, Piece)> + '_ {
    let bytes = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        let rest = bytes.get(i..).filter(|rest| !rest.is_empty())?;
        let (length, piece) = match rest[0] {
            b'/' if rest.starts_with(b"//") => (
                memchr::memchr(b'\n', rest).unwrap_or(rest.len()),
                Piece::Quoted,
            ),
            b'"' if rest.starts_with(b"\"\"\"") => {
                match memchr::memmem::find(&rest[3..], b"\"\"\"") {
                    Some(end) => (3 + end + 3, Piece::Quoted),
                    None => (rest.len(), Piece::Unclosed),
                }
            }
            b'"' => {
                let length = basic_string_length(&rest[1..]);
                let closed = length > 0 && rest.get(length) == Some(&b'"');
                (
                    1 + length,
                    if closed {
                        Piece::Quoted
                    } else {
                        Piece::Unclosed
                    },
                )
            }
            byte => (1, Piece::Code(byte)),
        };
        let offset = i;
        i += length;
        Some((offset, piece))
    })
}

/// How many bytes a `"` string takes after its opening quote, closing quote
/// included; it stops before a line break when the string is not closed.
fn basic_string_length(rest: &[u8]) -> usize {
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            b'\n' => return i,
            _ => i += 1,
        }
    }
    rest.len()
}
