//! Turning the paths on the command line into the `.wf` files they name.

use std::path::PathBuf;

pub use crate::files::reason;

/// [`crate::files::discover`], printing why it failed; the caller exits with
/// a usage error.
pub fn discover_or_report(paths: &[PathBuf]) -> Option<Vec<PathBuf>> {
    crate::files::discover(paths)
        .map_err(|message| eprintln!("error: {message}"))
        .ok()
}
