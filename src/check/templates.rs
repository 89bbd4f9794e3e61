//! Checking one template of a `.wf` file: its syntax, and the filters, tests
//! and functions it calls. The names it reads are resolved by the caller,
//! which knows what they may refer to.

use std::collections::HashMap;

use super::problem::{Problem, did_you_mean};
use super::template;
use crate::ast::Text;
use crate::source::Span;
use crate::template::Vocabulary;

/// What a template reads, placed in the `.wf` file.
#[derive(Debug, Default)]
pub struct Read {
    pub variables: Vec<(String, Span)>,
    /// `task.field` chains, checked against the task's declared output.
    pub fields: Vec<Chain>,
    /// What loops iterate over.
    pub loops: Vec<Chain>,
    /// Chains compared with literals.
    pub comparisons: Vec<(Chain, template::Literal, bool)>,
}

#[derive(Debug, Clone)]
pub struct Chain {
    pub variable: String,
    pub path: Vec<(String, Span)>,
    pub span: Span,
}

#[derive(Default)]
pub struct Templates {
    vocabulary: Vocabulary,
    known: HashMap<(&'static str, String), bool>,
}

impl Templates {
    /// The names `text` reads and where, after reporting its unknown filters,
    /// tests and functions; `None` after reporting a syntax error.
    pub fn read(&mut self, text: &Text, problems: &mut Vec<Problem>) -> Option<Read> {
        self.analyze(text, &text.value, 0, problems)
    }

    /// Like [`Templates::read`], for an expression such as a task's `when`.
    pub fn read_expression(&mut self, text: &Text, problems: &mut Vec<Problem>) -> Option<Read> {
        let wrapped = format!("{{{{ {} }}}}", text.value);
        self.analyze(text, &wrapped, 3, problems)
    }

    /// Analyzes `source`, which is `text`'s value after `shift` bytes of
    /// wrapping, and places what it finds in the file.
    fn analyze(
        &mut self,
        text: &Text,
        source: &str,
        shift: usize,
        problems: &mut Vec<Problem>,
    ) -> Option<Read> {
        let span = |range: template::Range| {
            let end = text.value.len();
            text.file_span(
                range.start.saturating_sub(shift).min(end),
                range.end.saturating_sub(shift).min(end),
            )
        };
        let uses = match template::analyze(source) {
            Ok(uses) => uses,
            Err(mut err) => {
                if shift > 0 && err.range.start >= shift + text.value.len() {
                    err.detail = "the expression ends before it is complete".into();
                }
                problems.push(Problem::TemplateSyntax {
                    span: span(err.range),
                    help: syntax_help(&err.detail),
                    detail: err.detail,
                });
                return None;
            }
        };
        for (kind, name, range) in uses.callables {
            if !self.knows(kind, &name) {
                problems.push(Problem::UnknownFilter {
                    kind,
                    span: span(range),
                    help: self.suggest(kind, &name),
                    name,
                });
            }
        }
        let place = |chain: template::Chain| Chain {
            path: chain
                .path
                .into_iter()
                .map(|(name, range)| (name, span(range)))
                .collect(),
            span: span(chain.range),
            variable: chain.variable,
        };
        Some(Read {
            variables: uses
                .variables
                .into_iter()
                .map(|(name, range)| (name, span(range)))
                .collect(),
            fields: uses.fields.into_iter().map(place).collect(),
            loops: uses.loops.into_iter().map(place).collect(),
            comparisons: uses
                .comparisons
                .into_iter()
                .map(|c| (place(c.chain), c.literal, c.ordering))
                .collect(),
        })
    }

    pub fn is_global(&self, name: &str) -> bool {
        self.vocabulary.has_global(name)
    }

    fn knows(&mut self, kind: &'static str, name: &str) -> bool {
        let vocabulary = &self.vocabulary;
        *self
            .known
            .entry((kind, name.to_string()))
            .or_insert_with(|| match kind {
                "filter" => vocabulary.has_filter(name),
                "test" => vocabulary.has_test(name),
                _ => vocabulary.has_global(name),
            })
    }

    fn suggest(&self, kind: &str, name: &str) -> Option<String> {
        match kind {
            "function" => did_you_mean(name, self.vocabulary.globals()),
            _ => None,
        }
        .or_else(|| {
            Some(format!(
                "see the list of {kind}s in the README's template section"
            ))
        })
    }
}

fn syntax_help(detail: &str) -> Option<String> {
    if detail.contains("unknown statement") {
        Some("templates support if, for, set, with and filter blocks; they cannot include other files".into())
    } else if detail.contains("unexpected end of input") {
        Some("a `{{` or `{%` is not closed, or a block lacks its `{% end... %}`".into())
    } else {
        None
    }
}
