//! `wfc check`: every problem in every file, in the format a person or a CI
//! system wants.

use std::path::PathBuf;

use miette::Diagnostic;

use super::error::{Code, Error, Worst};
use wfc::check::phi::Policy;
use wfc::check::{self, FileReport};
use wfc::diagnostics;
use wfc::loader::Loader;
use wfc::router::RouterConfig;

#[derive(clap::Args)]
pub(super) struct Args {
    /// Files, or folders to search for `*.wf` files (default: the current folder)
    paths: Vec<PathBuf>,
    /// Fail when there are warnings, not only errors
    #[arg(long)]
    deny_warnings: bool,
    /// Check PHI flow against this deployment: an agent may receive `@phi`
    /// data only if all its endpoints say `phi_allowed = true` (without it,
    /// the agents' own `phi_allowed` declarations are used)
    #[arg(long, value_name = "FILE")]
    router: Option<PathBuf>,
    /// How to print diagnostics
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    /// miette's report with the source lines, coloured on a terminal
    Human,
    /// One JSON object per diagnostic, one per line
    Json,
    /// GitHub Actions `::error` annotations
    Github,
    /// One SARIF 2.1.0 log of every file, for code scanning
    Sarif,
}

pub(super) fn run(args: &Args) -> Result<(), Error> {
    let paths = super::discover(&args.paths)?;
    let router = args
        .router
        .as_deref()
        .map(RouterConfig::read)
        .transpose()
        .map_err(Error::usage)?;
    let allows = |receiver: wfc::check::phi::Receiver<'_>| {
        router
            .as_ref()
            .is_some_and(|router| router.receives_phi(receiver))
    };
    let policy = if router.is_some() {
        Policy::Deployment(&allows)
    } else {
        Policy::Declared
    };
    let mut loader = Loader::default();
    let (mut errors, mut warnings, mut worst) = (0, 0, Worst::default());
    let mut reports = Vec::new();
    for path in &paths {
        let report = match loader
            .load_unit(path)
            .map(|unit| check::check(&unit, policy))
        {
            Ok(report) => report,
            Err(err) => {
                worst.show(&super::unreadable(path, err));
                continue;
            }
        };
        let file_warnings = report.problems.iter().filter(|p| !p.is_error()).count();
        warnings += file_warnings;
        errors += report.problems.len() - file_warnings;
        print(&report, args.format);
        reports.push(report);
    }
    if matches!(args.format, Format::Sarif) {
        let files: Vec<_> = reports
            .iter()
            .map(|report| {
                let records = report
                    .problems
                    .iter()
                    .map(|problem| diagnostics::record(&report.source, problem))
                    .collect();
                (report.source.as_ref(), records)
            })
            .collect();
        let base = std::env::current_dir().unwrap_or_default();
        let log = diagnostics::sarif::log(&files, &base);
        outln!("{}", serde_json::to_string_pretty(&log).unwrap_or_default());
    }
    if matches!(args.format, Format::Human) {
        eprintln!("{}", summary(paths.len(), errors, warnings));
    }
    if errors > 0 || (args.deny_warnings && warnings > 0) {
        worst.note(Code::Problems);
    }
    // The process exits next and the system takes its memory back whole;
    // freeing every file's syntax tree and program node by node first
    // was 3% of checking a 10,000-task file.
    std::mem::forget(reports);
    std::mem::forget(loader);
    worst.finish()
}

fn print(report: &FileReport, format: Format) {
    let problems = report.problems.iter().map(|p| p as &dyn Diagnostic);
    match format {
        Format::Human => out!(
            "{}",
            diagnostics::human(&report.source, problems, super::color(&std::io::stdout()))
        ),
        Format::Json => {
            for problem in problems {
                let record = diagnostics::record(&report.source, problem);
                outln!("{}", serde_json::to_string(&record).unwrap_or_default());
            }
        }
        // One log of every file, written once they are all checked.
        Format::Sarif => {}
        Format::Github => {
            for problem in problems {
                outln!(
                    "{}",
                    diagnostics::github(&diagnostics::record(&report.source, problem))
                );
            }
        }
    }
}

fn summary(files: usize, errors: usize, warnings: usize) -> String {
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let checked = count(files, "file");
    if errors + warnings == 0 {
        return format!("checked {checked}: no problems");
    }
    let mut text = format!(
        "checked {checked}: {}, {}",
        count(errors, "error"),
        count(warnings, "warning")
    );
    if errors > 0 {
        text.push_str("\nrun `wfc explain CODE` to learn more about a diagnostic");
    }
    text
}
