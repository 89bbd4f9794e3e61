//! A large file parsed on every core.
//!
//! pest parses a text from its start, on one thread. A large file is cut
//! where `task` lines begin directly inside one workflow's braces, and the
//! parts between the cuts are parsed on other threads while this one parses
//! the rest. Each thread parses its text where it stands in the file: what
//! it does not parse is hidden behind one comment of the same length, which
//! pest skips with one `memchr`, so every span it reports is already the
//! file's. The members of the parts are then put back into their workflow.
//!
//! Whatever does not fit (a part that does not parse, a cut that turns out
//! not to fall between two members) returns `None`, and the caller parses
//! the file whole, which also words a syntax error exactly as always.

use std::num::NonZero;
use std::ops::Range;

use pest::Parser as _;

use super::{MAX_NESTING, Rule, WfParser, children, comments, error, parse_file, parse_member};
use crate::ast::{Comment, Item, Member, Module};

/// Below this size a file is parsed whole: its parse takes a few
/// milliseconds, and a second thread would save less than it costs.
const SMALLEST: usize = 64 * 1024;

/// A file is cut into at most this many parts, whatever the cores.
const MOST_PARTS: usize = 8;

/// The syntax tree of `text`, parsed on every core, or `None` when the file
/// is small, cannot be cut, or any part does not parse.
pub(super) fn parse_in_parts(text: &str) -> Option<Module> {
    if text.len() < SMALLEST {
        return None;
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, NonZero::get)
        .min(MOST_PARTS);
    parse_on(text, threads)
}

/// The syntax tree of `text`, parsed on up to `threads` threads.
fn parse_on(text: &str, threads: usize) -> Option<Module> {
    let cuts = cuts(text, threads)?;
    let parts: Vec<Range<usize>> = cuts.windows(2).map(|cut| cut[0]..cut[1]).collect();
    parse_parts(text, &parts)
}

/// The syntax tree of `text`, each of `parts` (whole lines) parsed on a
/// thread of its own and the rest on this one.
fn parse_parts(text: &str, parts: &[Range<usize>]) -> Option<Module> {
    std::thread::scope(|scope| {
        let others: Vec<_> = parts
            .iter()
            .map(|part| scope.spawn(|| parse_part(text, part.clone())))
            .collect();
        let rest = parse_around(text, parts);
        let parsed: Vec<_> = others
            .into_iter()
            .map(|other| {
                other
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect();
        let mut module = rest?;
        for (part, parsed) in parts.iter().zip(parsed) {
            let (members, comments) = parsed?;
            put_back(text, &mut module, part, members)?;
            module.comments.extend(comments);
        }
        module.comments.sort_by_key(|comment| comment.span.start);
        Some(module)
    })
}

/// The file with every part hidden, parsed.
fn parse_around(text: &str, parts: &[Range<usize>]) -> Option<Module> {
    let mut hidden = text.as_bytes().to_vec();
    for part in parts {
        comment_out(&mut hidden[part.start..part.end - 1]);
    }
    let hidden = String::from_utf8(hidden).expect("only whole lines of ASCII were replaced");
    // Parts that parse close every bracket they open (and `->` counts as
    // a closing one), so with them hidden the rest is never nested less
    // deeply than in the file: this passes only where the file would.
    error::check_nesting(&hidden, MAX_NESTING).ok()?;
    let mut pairs = WfParser::parse(Rule::file, &hidden).ok()?;
    let mut module = parse_file(pairs.next()?);
    module
        .comments
        .retain(|comment| !parts.iter().any(|part| part.contains(&comment.span.start)));
    Some(module)
}

/// The members in `part` of the file, and their comments, parsed where
/// they stand.
fn parse_part(text: &str, part: Range<usize>) -> Option<(Vec<Member>, Vec<Comment>)> {
    // The part is counted from depth 0 where the file is at most one level
    // deeper (inside its workflow's braces): one level less is allowed, so
    // a part passes only where the whole file would.
    error::check_nesting(&text[part.clone()], MAX_NESTING - 1).ok()?;
    let mut shifted = vec![b' '; part.start];
    comment_out(&mut shifted[..part.start - 1]);
    shifted[part.start - 1] = b'\n';
    shifted.extend_from_slice(&text.as_bytes()[part.clone()]);
    let shifted = String::from_utf8(shifted).expect("a part begins and ends at a line");
    let members = WfParser::parse(Rule::members, &shifted).ok()?.next()?;
    let mut comments = comments(&members);
    comments.retain(|comment| comment.span.start >= part.start);
    let members = children(members)
        .filter(|pair| pair.as_rule() != Rule::EOI)
        .map(parse_member)
        .collect();
    Some((members, comments))
}

/// Makes `bytes` blank: one comment of the same length, which pest skips
/// at once, where it has room for the `//`. Dashes, not spaces, fill it so
/// that trimming the comment's text stops at its end.
fn comment_out(bytes: &mut [u8]) {
    match bytes {
        [first, second, rest @ ..] => {
            (*first, *second) = (b'/', b'/');
            rest.fill(b'-');
        }
        short => short.fill(b' '),
    }
}

/// Puts the members parsed from `part` into the workflow around it, where
/// the hidden part stood between two of its members; `None` when the part
/// is not between two members of one workflow's body (it cut a member in
/// two, lies outside every workflow, or before a workflow's `{`).
fn put_back(
    text: &str,
    module: &mut Module,
    part: &Range<usize>,
    members: Vec<Member>,
) -> Option<()> {
    let workflow = module.items.iter_mut().find_map(|item| match item {
        Item::Workflow(workflow)
            if workflow.span.start < part.start && part.end <= workflow.span.end =>
        {
            Some(workflow)
        }
        _ => None,
    })?;
    if opening_brace(text, workflow.name.span.end)? >= part.start {
        return None;
    }
    let at = workflow
        .members
        .partition_point(|member| member.span().start < part.start);
    let before_ends = at == 0 || workflow.members[at - 1].span().end <= part.start;
    let after_starts = workflow
        .members
        .get(at)
        .is_none_or(|member| member.span().start >= part.end);
    (before_ends && after_starts).then(|| {
        workflow.members.splice(at..at, members);
    })
}

/// The offset of the `{` after a workflow's name, past blanks and comments;
/// `None` when something else comes first.
fn opening_brace(text: &str, mut at: usize) -> Option<usize> {
    loop {
        let rest = &text[at..];
        let code = rest.trim_start();
        at += rest.len() - code.len();
        if code.starts_with("//") {
            at += memchr::memchr(b'\n', code.as_bytes())?;
        } else {
            return code.starts_with('{').then_some(at);
        }
    }
}

/// Where the parts for other threads begin and end: starts of `task`
/// lines, spaced so that each thread parses about as many bytes; the last
/// is the file's last `task` line, so that this thread parses the head and
/// the tail. Found without scanning the file: a line that looks like a task
/// but is inside a string, or outside any workflow, is refused when the
/// parts are put back.
fn cuts(text: &str, threads: usize) -> Option<Vec<usize>> {
    if threads < 2 {
        return None;
    }
    let share = text.len() / threads;
    let last = line_starts_before(text, text.len()).find(|&line| is_task_line(text, line))?;
    let mut cuts: Vec<usize> = (1..threads)
        .filter_map(|part| {
            line_starts_after(text, part * share)
                .take_while(|&line| line < last)
                .find(|&line| is_task_line(text, line))
        })
        .chain([last])
        .collect();
    cuts.dedup();
    (cuts.len() > 1).then_some(cuts)
}

/// The starts of the lines that begin after `offset`, in order.
fn line_starts_after(text: &str, offset: usize) -> impl Iterator<Item = usize> + '_ {
    memchr::memchr_iter(b'\n', &text.as_bytes()[offset..]).map(move |newline| offset + newline + 1)
}

/// The starts of the lines that begin before `offset`, last first.
fn line_starts_before(text: &str, offset: usize) -> impl Iterator<Item = usize> + '_ {
    memchr::memrchr_iter(b'\n', &text.as_bytes()[..offset]).map(|newline| newline + 1)
}

/// Whether the line at `line` begins a task that no doc comment precedes
/// (a member begins at its docs).
fn is_task_line(text: &str, line: usize) -> bool {
    begins_task(text[line..].trim_start_matches([' ', '\t'])) && !follows_docs(&text[..line])
}

fn begins_task(rest: &str) -> bool {
    ["task", "retrieve"].iter().any(|keyword| {
        rest.strip_prefix(keyword).is_some_and(|after| {
            !after
                .bytes()
                .next()
                .is_some_and(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
        })
    })
}

/// Whether the last line of `before` that is neither blank nor an ordinary
/// comment is a doc comment, which belongs to the next member.
fn follows_docs(before: &str) -> bool {
    before
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty() && (!line.starts_with("//") || line.starts_with("///")))
        .is_some_and(|line| line.starts_with("///"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workflow of `tasks` tasks with everything the parts must carry
    /// over: docs, comments between and inside members, inputs, a test and
    /// an output after the tasks.
    fn large(tasks: usize) -> String {
        let mut text = String::from(
            "// A generated file.\nagent A { model = \"m\" }\n\n/// Docs.\nworkflow w // the head\n{\n  input record: text @phi\n",
        );
        for i in 0..tasks {
            if i % 7 == 0 {
                text.push_str(&format!("  /// Task {i}.\n"));
            }
            if i % 5 == 0 {
                text.push_str(&format!("  // before {i}  \n"));
            }
            if i % 11 == 0 {
                text.push_str(&format!("  input extra{i}: text?\n"));
            }
            let kind = if i % 13 == 0 { "retrieve" } else { "task" };
            let target = if kind == "task" { "-> A" } else { "from C" };
            text.push_str(&format!(
                "  {kind} t{i} {target} {{\n    max_tokens = 64 // inside {i}\n    prompt = \"\"\"\n      Step {i}: {{{{ record }}}} {{ not a brace }}\n    \"\"\"\n  }}\n"
            ));
        }
        text.push_str("  test \"runs\" {\n    input record = \"x\"\n    expect task t0 ok\n  }\n  output = \"{{ t0 }}\"\n}\n// The end.\n");
        text
    }

    fn whole(text: &str) -> String {
        format!("{:?}", super::super::parse_whole(text).expect("parses"))
    }

    /// The start of the line holding `needle`.
    fn line_of(text: &str, needle: &str) -> usize {
        let at = text.find(needle).expect(needle);
        text[..at].rfind('\n').map_or(0, |newline| newline + 1)
    }

    #[test]
    fn a_file_parsed_in_parts_is_the_file_parsed_whole() {
        let text = large(2_000);
        assert!(text.len() > SMALLEST);
        for threads in [2, 3, 8] {
            let cuts = cuts(&text, threads).expect("a large workflow is cut");
            assert_eq!(cuts.len(), threads, "{threads} threads");
            let parsed = parse_on(&text, threads).expect("parsed in parts");
            assert_eq!(format!("{parsed:?}"), whole(&text), "{threads} threads");
        }
    }

    #[test]
    fn cuts_fall_on_task_lines_not_after_docs() {
        let text = large(2_000);
        let cuts = cuts(&text, 4).expect("cut");
        assert_eq!(cuts.last(), Some(&line_of(&text, "task t1999 ")));
        for cut in cuts {
            assert!(
                begins_task(text[cut..].trim_start()),
                "{:?}",
                &text[cut..cut + 20]
            );
            assert!(!follows_docs(&text[..cut]));
        }
    }

    #[test]
    fn a_part_that_does_not_parse_leaves_the_file_to_the_whole_parse() {
        let broken = large(2_000).replace("  task t1500 -> A {", "  task t1500 -> {");
        assert!(parse_on(&broken, 2).is_none());
        assert!(super::super::parse_whole(&broken).is_err());
    }

    /// Parts that parse on their own, and leave a file that parses when
    /// hidden, but do not lie between two members of a workflow's body:
    /// refused, because the file whole does not parse.
    fn refused(text: &str, part: Range<usize>) {
        assert!(super::super::parse_whole(text).is_err());
        assert!(parse_around(text, std::slice::from_ref(&part)).is_some());
        assert!(parse_part(text, part.clone()).is_some());
        assert!(parse_parts(text, &[part]).is_none());
    }

    #[test]
    fn a_cut_inside_a_member_is_refused() {
        let mut text = large(2_000);
        text.insert_str(line_of(&text, "task t1000 "), "  input split: text =\n");
        text.insert_str(line_of(&text, "task t1002 "), "\"default\"\n");
        let part = line_of(&text, "task t1000 ")..line_of(&text, "\"default\"");
        refused(&text, part);
    }

    #[test]
    fn a_cut_before_the_workflows_brace_is_refused() {
        let text = large(2_000).replacen(
            "{\n  input record",
            "  task first -> A { }\n{\n  input record",
            1,
        );
        let part = line_of(&text, "task first ")..line_of(&text, "{\n  input record");
        refused(&text, part);
    }

    #[test]
    fn a_cut_outside_every_workflow_is_refused() {
        let before = large(2_000).replacen("agent A {", "agent A {\n  task stray -> A { }\n", 1);
        let after = large(2_000) + "agent B {\n  task stray -> A { }\n}\n";
        for text in [before, after] {
            let start = line_of(&text, "task stray ");
            let end = start + text[start..].find('\n').expect("a line") + 1;
            refused(&text, start..end);
        }
    }

    /// Nesting is checked on each thread's own text: a part passes only
    /// where the whole file would, and a part nested too deeply leaves the
    /// file to the whole parse, which reports it.
    #[test]
    fn a_part_nested_too_deeply_leaves_the_file_to_the_whole_parse() {
        // Retrieval tasks only: no `->`, which the count takes for a closing
        // bracket, so a task's body is two levels deep in the file and one
        // in its part.
        let with_list = |depth: usize| {
            large(2_000).replace("-> A", "from C").replace(
                "    max_tokens = 64 // inside 1500\n",
                &format!("    x = {}1{}\n", "[".repeat(depth), "]".repeat(depth)),
            )
        };
        let at_limit = with_list(MAX_NESTING - 2);
        assert!(error::check_nesting(&at_limit, MAX_NESTING).is_ok());
        let over = with_list(MAX_NESTING - 1);
        assert!(error::check_nesting(&over, MAX_NESTING).is_err());
        assert!(parse_on(&over, 2).is_none());
        let source = crate::source::SourceFile::new("deep.wf", over);
        let refused = super::super::parse(&source).expect_err("too deep");
        assert!(refused.message.contains("nested more than"), "{refused:?}");
        let source = crate::source::SourceFile::new("deep.wf", at_limit.clone());
        assert_eq!(
            format!("{:?}", super::super::parse(&source).expect("at the limit")),
            whole(&at_limit)
        );
    }

    #[test]
    fn small_files_are_parsed_whole() {
        assert!(parse_in_parts(&large(10)).is_none());
    }
}
