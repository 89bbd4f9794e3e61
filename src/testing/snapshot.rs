//! Snapshots of rendered outputs, stored beside the workflow
//! (`__snapshots__/<workflow>@<test>.snap`), so a change to a prompt or an
//! output template shows up as a reviewable diff.

use std::path::{Path, PathBuf};

use similar::TextDiff;

const FOLDER: &str = "__snapshots__";

#[derive(Debug, PartialEq)]
pub enum Verdict {
    Matches,
    /// There was none; this one is now stored.
    Written,
    /// It differed and `--update` replaced it.
    Updated,
    /// It differs: the unified diff, stored first.
    Changed(String),
}

#[must_use]
pub fn path(workflow_file: &Path, workflow: &str, test: &str) -> PathBuf {
    let slug: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    workflow_file
        .parent()
        .unwrap_or(Path::new("."))
        .join(FOLDER)
        .join(format!("{workflow}@{slug}.snap"))
}

/// Compares `output` with the snapshot at `path`, writing it when there is
/// none or when `update` is set.
pub fn compare(path: &Path, header: &str, output: &str, update: bool) -> std::io::Result<Verdict> {
    let stored = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => return Err(err),
    };
    let body = |text: &str| text.split_once("\n---\n").map(|(_, body)| body.to_string());
    let fresh = format!("---\n{header}\n---\n{output}\n");
    let verdict = match stored.as_deref().and_then(body) {
        None => Verdict::Written,
        Some(old) if old == body(&fresh).unwrap_or_default() => return Ok(Verdict::Matches),
        Some(_) if update => Verdict::Updated,
        Some(old) => {
            let new = body(&fresh).unwrap_or_default();
            let diff = TextDiff::from_lines(&old, &new)
                .unified_diff()
                .context_radius(3)
                .header("stored snapshot", "this run")
                .to_string();
            return Ok(Verdict::Changed(diff));
        }
    };
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)?;
    }
    std::fs::write(path, fresh)?;
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_then_matched_then_changed_then_updated() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.wf");
        let path = path(&file, "discharge_summary", "acute MI");
        assert!(path.ends_with("__snapshots__/discharge_summary@acute_mi.snap"));
        let header = "workflow: w";
        assert_eq!(
            compare(&path, header, "a\nb", false).unwrap(),
            Verdict::Written
        );
        assert_eq!(
            compare(&path, header, "a\nb", false).unwrap(),
            Verdict::Matches
        );
        let Verdict::Changed(diff) = compare(&path, header, "a\nc", false).unwrap() else {
            panic!("a different output is a change");
        };
        assert!(diff.contains("-b\n+c"), "{diff}");
        assert_eq!(
            compare(&path, header, "a\nc", true).unwrap(),
            Verdict::Updated
        );
        assert_eq!(
            compare(&path, header, "a\nc", false).unwrap(),
            Verdict::Matches
        );
    }
}
