//! `expect` checks on answers: a task's answer (scored on every run) or a
//! test's output.

use super::Problem;
use super::program::Check;
use crate::ast::{self, CheckKind, ValueKind};

/// The longest `min_length` that makes sense: far beyond any answer.
const LONGEST: f64 = 1_000_000.0;

pub(super) fn check(check: &ast::Check, problems: &mut Vec<Problem>) -> Option<Check> {
    Some(match &check.kind {
        CheckKind::Contains(text) => Check::Contains(text.value.clone()),
        CheckKind::Heading(text) => Check::Heading(text.value.trim().to_string()),
        CheckKind::Matches(text) => match regex::Regex::new(&text.value) {
            Ok(regex) => Check::Matches(regex),
            Err(err) => {
                problems.push(Problem::InvalidRegex {
                    span: text.span,
                    detail: regex_detail(&err),
                });
                return None;
            }
        },
        CheckKind::MinLength(value) => match value.kind {
            ValueKind::Number(n) if n.fract() == 0.0 && (1.0..=LONGEST).contains(&n) => {
                Check::MinLength(n as usize)
            }
            ValueKind::Number(n) => {
                problems.push(Problem::OutOfRange {
                    key: "min_length".into(),
                    value: n.to_string(),
                    span: value.span,
                    range: "a whole number of characters from 1 to 1000000".into(),
                });
                return None;
            }
            _ => unreachable!("the grammar gives min_length a number"),
        },
        CheckKind::Json => Check::Json,
        // Which task it names is resolved with the workflow's tasks.
        CheckKind::Cites(_) => return None,
    })
}

/// The last line of the regex crate's message says what is wrong.
pub(super) fn regex_detail(err: &regex::Error) -> String {
    let message = err.to_string();
    message
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("invalid regular expression")
        .trim_start_matches("error: ")
        .to_string()
}
