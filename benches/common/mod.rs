//! What the benchmarks share.

pub(crate) mod dag;

use std::path::Path;

use wfc::check::{Program, check_file};
use wfc::loader::Loader;

/// The checked program of the workflow file at `path`; a file with errors
/// stops the benchmark.
pub(crate) fn load(path: &Path) -> Program {
    let report = check_file(&mut Loader::default(), path).expect("readable workflow");
    assert!(
        !report.has_errors(),
        "{}: {:?}",
        path.display(),
        report.problems
    );
    report.program.expect("a checked program")
}
