//! The checker's problems as LSP diagnostics: the first label is where the
//! diagnostic stands, the other labels are its related information.

use lsp_types::{
    Diagnostic, DiagnosticRelatedInformation, DiagnosticSeverity, Location, NumberOrString,
};
use miette::Diagnostic as _;

use super::convert;
use super::documents::Analysis;
use crate::diagnostics::is_warning;
use crate::source::Span;

pub(super) fn diagnostics(analysis: &Analysis) -> Vec<Diagnostic> {
    let source = analysis.source();
    analysis
        .report
        .problems
        .iter()
        .map(|problem| {
            let mut labels = problem
                .labels()
                .into_iter()
                .flatten()
                .map(|label| {
                    let span = Span::new(label.offset(), label.offset() + label.len());
                    (span, label.label().map(str::to_string))
                })
                .collect::<Vec<_>>()
                .into_iter();
            let (primary, label) = labels.next().unwrap_or_default();
            let mut message = problem.to_string();
            if let Some(label) = label {
                message.push_str(&format!(" ({label})"));
            }
            if let Some(help) = problem.help() {
                message.push_str(&format!("\nhelp: {help}"));
            }
            let related: Vec<DiagnosticRelatedInformation> = labels
                .map(|(span, label)| DiagnosticRelatedInformation {
                    location: Location::new(analysis.uri.clone(), convert::range(source, span)),
                    message: label.unwrap_or_else(|| "related".into()),
                })
                .collect();
            Diagnostic {
                range: convert::range(source, primary),
                severity: Some(if is_warning(problem) {
                    DiagnosticSeverity::WARNING
                } else {
                    DiagnosticSeverity::ERROR
                }),
                code: problem
                    .code()
                    .map(|code| NumberOrString::String(code.to_string())),
                source: Some("wfc".into()),
                message,
                related_information: (!related.is_empty()).then_some(related),
                ..Diagnostic::default()
            }
        })
        .collect()
}
