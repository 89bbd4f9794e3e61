//! Checking the templates of a `.wf` file: their syntax, and the filters,
//! tests and functions they call. The names it reads are resolved by the caller,
//! which knows what they may refer to.

use rustc_hash::FxHashMap as HashMap;

mod ahead;
mod uses;

use ahead::Ahead;

use uses::SyntaxError;
pub use uses::{Chain, Comparison, ITEM, Literal, Range, Uses, analyze};

use super::problem::{Problem, did_you_mean};
use crate::ast::Text;
use crate::source::Span;
use crate::template::Vocabulary;

/// What a template reads, placed in the `.wf` file.
pub type Read = Uses<Span>;

#[derive(Default)]
pub struct Templates {
    vocabulary: Vocabulary,
    known: HashMap<(&'static str, String), bool>,
    ahead: Ahead,
}

impl Templates {
    /// Templates that begin analysing the later of `prompts` (in file
    /// order) on another core, when they are many.
    pub fn analysing_ahead<'t>(prompts: impl Iterator<Item = &'t Text>) -> Templates {
        Templates {
            ahead: Ahead::start(prompts),
            ..Templates::default()
        }
    }

    /// The names `text` reads and where, after reporting its unknown filters,
    /// tests and functions; `None` after reporting a syntax error.
    pub fn read(&mut self, text: &Text, problems: &mut Vec<Problem>) -> Option<Read> {
        let analysis = self
            .ahead
            .take(text)
            .unwrap_or_else(|| analyze(&text.value));
        self.place(text, analysis, 0, problems)
    }

    /// Like [`Templates::read`], for an expression such as a task's `when`.
    pub fn read_expression(&mut self, text: &Text, problems: &mut Vec<Problem>) -> Option<Read> {
        let wrapped = format!("{{{{ {} }}}}", text.value);
        self.place(text, analyze(&wrapped), 3, problems)
    }

    /// Places the analysis of `text`'s value after `shift` bytes of
    /// wrapping in the file.
    fn place(
        &mut self,
        text: &Text,
        analysis: Result<Uses, SyntaxError>,
        shift: usize,
        problems: &mut Vec<Problem>,
    ) -> Option<Read> {
        let span = |range: Range| {
            let end = text.value.len();
            text.file_span(
                range.start.saturating_sub(shift).min(end),
                range.end.saturating_sub(shift).min(end),
            )
        };
        let uses = match analysis {
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
        let mut read = uses.place(span);
        for (kind, name, span) in std::mem::take(&mut read.callables) {
            if !self.knows(kind, &name) {
                problems.push(Problem::UnknownFilter {
                    kind,
                    span,
                    help: self.suggest(kind, &name),
                    name,
                });
            }
        }
        Some(read)
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
            "filter" => did_you_mean(name, self.vocabulary.filters()),
            _ => did_you_mean(name, self.vocabulary.tests()),
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
