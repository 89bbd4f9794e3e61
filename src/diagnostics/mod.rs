//! Showing problems to people and to machines: miette's graphical report,
//! JSON lines, GitHub Actions annotations and SARIF.

pub mod sarif;

use std::fmt;

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, NamedSource, Severity};
use serde::Serialize;

use crate::source::{LineColumn, SourceFile};

/// A problem together with the file it was found in, which is what miette
/// needs to draw the source lines under it.
pub struct Located<'a> {
    pub problem: &'a dyn Diagnostic,
    pub source: &'a NamedSource<String>,
}

impl fmt::Debug for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.problem, f)
    }
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.problem, f)
    }
}

impl std::error::Error for Located<'_> {}

impl Diagnostic for Located<'_> {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.problem.code()
    }
    fn severity(&self) -> Option<Severity> {
        self.problem.severity()
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.problem.help()
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        self.problem.labels()
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(self.source)
    }
}

pub fn is_warning(problem: &dyn Diagnostic) -> bool {
    problem.severity() == Some(Severity::Warning)
}

/// The graphical report of each problem, as `wfc check` prints it.
pub fn human<'a>(
    source: &SourceFile,
    problems: impl IntoIterator<Item = &'a dyn Diagnostic>,
    color: bool,
) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    let named = NamedSource::new(source.display_name(), source.text().to_string());
    let mut out = String::new();
    for problem in problems {
        let located = Located {
            problem,
            source: &named,
        };
        if handler.render_report(&mut out, &located).is_err() {
            out.push_str(&format!("{problem}\n"));
        }
    }
    out
}

/// One diagnostic as `--format json` prints it.
#[derive(Debug, Serialize)]
pub struct Record {
    pub severity: &'static str,
    pub code: String,
    pub message: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    pub help: Option<String>,
    pub labels: Vec<LabelRecord>,
}

#[derive(Debug, Serialize)]
pub struct LabelRecord {
    pub message: Option<String>,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
}

pub fn record(source: &SourceFile, problem: &dyn Diagnostic) -> Record {
    let labels: Vec<LabelRecord> = problem
        .labels()
        .into_iter()
        .flatten()
        .map(|label| {
            let (start, end) = span_positions(source, label.offset(), label.len());
            LabelRecord {
                message: label.label().map(str::to_string),
                line: start.line,
                column: start.column,
                end_line: end.line,
                end_column: end.column,
            }
        })
        .collect();
    let (start, end) = labels.first().map_or(
        (
            LineColumn { line: 1, column: 1 },
            LineColumn { line: 1, column: 1 },
        ),
        |label| {
            (
                LineColumn {
                    line: label.line,
                    column: label.column,
                },
                LineColumn {
                    line: label.end_line,
                    column: label.end_column,
                },
            )
        },
    );
    Record {
        severity: if is_warning(problem) {
            "warning"
        } else {
            "error"
        },
        code: problem
            .code()
            .map(|code| code.to_string())
            .unwrap_or_default(),
        message: problem.to_string(),
        file: source.display_name(),
        line: start.line,
        column: start.column,
        end_line: end.line,
        end_column: end.column,
        help: problem.help().map(|help| help.to_string()),
        labels,
    }
}

fn span_positions(source: &SourceFile, offset: usize, len: usize) -> (LineColumn, LineColumn) {
    (source.line_column(offset), source.line_column(offset + len))
}

/// A GitHub Actions workflow command that annotates the file in a pull request.
#[must_use]
pub fn github(record: &Record) -> String {
    let level = if record.severity == "warning" {
        "warning"
    } else {
        "error"
    };
    let mut message = record.message.clone();
    if let Some(help) = &record.help {
        message.push_str("\nhelp: ");
        message.push_str(help);
    }
    format!(
        "::{level} file={},line={},col={},endLine={},endColumn={},title={}::{}",
        escape_property(&record.file),
        record.line,
        record.column,
        record.end_line,
        record.end_column,
        escape_property(&record.code),
        escape_data(&message)
    )
}

fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}
