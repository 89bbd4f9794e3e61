//! Parsing past syntax errors, as rustc does, so that one slip does not
//! hide every other problem of the file. The part around an error is
//! blanked out (every offset kept) and the file parsed again, until the
//! rest parses: from the `task`, `input`, `output` or `test` line the error
//! is in to the next such line, or the whole `agent`, `schema`, `workflow`
//! or `import` when the error is in its head. An error that only follows
//! from a blanked part (a brace it left open) is not reported: the whole
//! item around that part goes instead.

use std::collections::BTreeSet;

use super::{SyntaxError, parse_whole};
use crate::ast::Module;
use crate::source::SourceFile;

/// At most this many syntax errors are reported for one file.
const MOST_ERRORS: usize = 20;

/// A file with syntax errors, as far as it parses.
#[derive(Debug)]
pub struct Recovered {
    /// Every item and member the errors did not touch; `None` when the
    /// errors leave nothing that parses.
    pub module: Option<Module>,
    /// Every syntax error, in the order of the file.
    pub errors: Vec<SyntaxError>,
    pub broken: Broken,
}

/// What the blanked parts declared: references to it are not errors of
/// their own.
#[derive(Debug, Clone, Default)]
pub struct Broken {
    /// Names of the tasks, inputs, agents, schemas and workflows blanked.
    pub names: BTreeSet<String>,
    /// Whether an `import` was blanked, so any agent or schema may be
    /// one it would have brought.
    pub imports: bool,
}

/// Parses `source`, which has the syntax error `first`, past its errors.
#[must_use]
pub fn recover(source: &SourceFile, first: SyntaxError) -> Recovered {
    let lines = Line::all(source.text());
    let mut text = source.text().to_string();
    let mut errors = vec![first];
    let mut blanked: Vec<Region> = Vec::new();
    let mut broken = Broken::default();
    let mut at = errors[0].span.start;
    let mut cascade = false;
    let module = loop {
        let region = if cascade {
            blanked
                .last()
                .and_then(|last| item_around(&lines, last.start))
        } else {
            Some(part_around(&lines, at))
        };
        let Some(region) = region.filter(|region| !is_blank(&text[region.start..region.end]))
        else {
            break None;
        };
        if let (Some(line), Some(error)) = (region.unclosed, errors.last_mut())
            && !cascade
        {
            let (keyword, _) = lines[line].declares();
            error.help = Some(format!(
                "the `{keyword}` on line {} opens a `{{` it never closes: add its `}}`",
                line + 1
            ));
        }
        blank(&mut text, &region);
        region.declared(&lines, &mut broken);
        blanked.push(region);
        // Whole, not in parts: until the last retry the file still fails,
        // and a failed parse in parts is only parsed again whole.
        match parse_whole(&text) {
            Ok(module) => break Some(module),
            Err(error) => {
                at = error.span.start;
                cascade = blanked
                    .iter()
                    .any(|region| at >= region.start && is_blank(&text[region.start..at]));
                if !cascade {
                    if errors.len() == MOST_ERRORS {
                        break None;
                    }
                    errors.push(error);
                }
            }
        }
    };
    errors.sort_by_key(|error| error.span.start);
    Recovered {
        module,
        errors,
        broken,
    }
}

/// A line of the file, and what it begins, if anything.
struct Line<'t> {
    start: usize,
    text: &'t str,
    begins: Option<Begins>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Begins {
    /// `agent`, `corpus`, `schema`, `workflow` or `import`.
    Item,
    /// `task`, `retrieve`, `input`, `output` or `test`, inside a workflow.
    Member,
}

impl<'t> Line<'t> {
    fn all(text: &'t str) -> Vec<Line<'t>> {
        let mut start = 0;
        let mut lines = Vec::new();
        for line in text.split_inclusive('\n') {
            lines.push(Line {
                start,
                text: line,
                begins: begins(line),
            });
            start += line.len();
        }
        lines
    }

    fn end(&self) -> usize {
        self.start + self.text.len()
    }

    /// The keyword and the name it declares (`None` for `output`, `test`
    /// and `import`).
    fn declares(&self) -> (&'t str, Option<&'t str>) {
        let mut words = self
            .text
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|word| !word.is_empty());
        let keyword = words.next().unwrap_or_default();
        let name = match keyword {
            "task" | "retrieve" | "input" | "agent" | "corpus" | "schema" | "workflow" => {
                words.next()
            }
            _ => None,
        };
        (keyword, name)
    }
}

fn begins(line: &str) -> Option<Begins> {
    let trimmed = line.trim_start();
    let word = trimmed
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .next()
        .unwrap_or_default();
    let rest = trimmed[word.len()..].trim_start();
    match word {
        "agent" | "corpus" | "schema" | "workflow" | "import" => Some(Begins::Item),
        // A test's `input name = value` is a step of the test, not a member.
        "input" => {
            let after_name = rest.trim_start_matches(|c: char| c.is_alphanumeric() || c == '_');
            (!after_name.trim_start().starts_with('=')).then_some(Begins::Member)
        }
        "task" | "retrieve" | "output" | "test" => Some(Begins::Member),
        _ => None,
    }
}

/// A byte range of the file, from the start of a line to the start of
/// another (or the end).
struct Region {
    start: usize,
    end: usize,
    /// The line of a part blamed for not closing its braces.
    unclosed: Option<usize>,
}

impl Region {
    /// Notes what the lines of the region declare.
    fn declared(&self, lines: &[Line<'_>], broken: &mut Broken) {
        for line in lines
            .iter()
            .filter(|line| line.begins.is_some() && (self.start..self.end).contains(&line.start))
        {
            match line.declares() {
                ("import", _) => broken.imports = true,
                (_, Some(name)) => {
                    broken.names.insert(name.to_string());
                }
                _ => {}
            }
        }
    }
}

/// The line holding `offset`.
fn line_of(lines: &[Line<'_>], offset: usize) -> usize {
    lines
        .iter()
        .position(|line| offset < line.end())
        .unwrap_or(lines.len().saturating_sub(1))
}

/// Where the declaration that begins on line `index` starts: its doc
/// comments above it included.
fn with_docs(lines: &[Line<'_>], index: usize) -> usize {
    let mut first = index;
    while first > 0 && lines[first - 1].text.trim_start().starts_with("///") {
        first -= 1;
    }
    lines.get(first).map_or(0, |line| line.start)
}

/// The member or item around `offset`: from the line that begins it to
/// the line that begins the next one. A member ends before the brace that
/// closes its workflow.
fn part_around(lines: &[Line<'_>], offset: usize) -> Region {
    if lines.is_empty() {
        return Region {
            start: 0,
            end: 0,
            unclosed: None,
        };
    }
    let mut here = line_of(lines, offset);
    let mut unclosed = None;
    // An error on the line that begins a part may be the part before's: it
    // opened a brace it never closed. For a member, that is the member just
    // before it (an item's head opens the item's body); for an item, the
    // item before it.
    let before = match lines[here].begins {
        Some(Begins::Member) => (0..here)
            .rev()
            .find(|&i| lines[i].begins.is_some())
            .filter(|&i| lines[i].begins == Some(Begins::Member)),
        Some(Begins::Item) => (0..here)
            .rev()
            .find(|&i| lines[i].begins == Some(Begins::Item)),
        None => None,
    };
    if let Some(before) = before {
        let text = &lines[before..here];
        let count = |brace: char| -> usize {
            text.iter()
                .map(|line| line.text.matches(brace).count())
                .sum()
        };
        if count('{') > count('}') {
            here -= 1;
            unclosed = Some(before);
        }
    }
    let first = (0..=here).rev().find(|&i| lines[i].begins.is_some());
    let level = first.and_then(|i| lines[i].begins);
    let start = first.map_or(0, |i| with_docs(lines, i));
    let next = (here + 1..lines.len()).find(|&i| match level {
        Some(Begins::Member) => lines[i].begins.is_some(),
        _ => lines[i].begins == Some(Begins::Item),
    });
    let mut last = next.unwrap_or(lines.len());
    let next_is_item = next.is_none_or(|i| lines[i].begins == Some(Begins::Item));
    if level == Some(Begins::Member) && next_is_item {
        // Keep the workflow's closing brace.
        if let Some(brace) = (here + 1..last)
            .rev()
            .find(|&i| lines[i].text.trim() == "}")
        {
            last = brace;
        }
    }
    let end = match next {
        Some(i) if i == last => with_docs(lines, i),
        _ => lines
            .get(last)
            .map_or_else(|| lines[lines.len() - 1].end(), |line| line.start),
    };
    Region {
        start,
        end: end.max(start),
        unclosed,
    }
}

/// The whole item (agent, schema, workflow) around `offset`.
fn item_around(lines: &[Line<'_>], offset: usize) -> Option<Region> {
    let here = line_of(lines, offset);
    let first = (0..=here)
        .rev()
        .find(|&i| lines[i].begins == Some(Begins::Item))?;
    let end = (here + 1..lines.len())
        .find(|&i| lines[i].begins == Some(Begins::Item))
        .map_or_else(|| lines[lines.len() - 1].end(), |i| with_docs(lines, i));
    Some(Region {
        start: with_docs(lines, first),
        end,
        unclosed: None,
    })
}

fn is_blank(text: &str) -> bool {
    text.chars().all(char::is_whitespace)
}

/// Replaces the region with spaces, keeping its line breaks and the byte
/// offset of everything after it.
fn blank(text: &mut String, region: &Region) {
    let blanked: String = text[region.start..region.end]
        .chars()
        .map(|c| {
            if c == '\n' {
                "\n".to_string()
            } else {
                " ".repeat(c.len_utf8())
            }
        })
        .collect();
    text.replace_range(region.start..region.end, &blanked);
}
