//! The documentation stays true: every `wf` example in the README checks
//! clean, and every `wfc explain` text shows an example that produces its
//! code and a fix that produces nothing.

use std::path::Path;

use miette::Diagnostic;
use wfc::check::check_file;
use wfc::loader::Loader;

/// The bodies of the code blocks fenced with exactly `` ```wf ``.
fn wf_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```wf") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// The codes `wfc check` reports for `text`.
fn codes(text: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("example.wf");
    std::fs::write(&path, text).unwrap();
    let report = check_file(&mut Loader::default(), &path).unwrap();
    report
        .problems
        .iter()
        .map(|problem| problem.code().map(|c| c.to_string()).unwrap_or_default())
        .collect()
}

#[test]
fn readme_examples_check_clean() {
    let readme = include_str!("../../README.md");
    let blocks = wf_blocks(readme);
    assert!(blocks.len() >= 4, "the README lost its examples");
    for block in blocks {
        assert_eq!(
            codes(&block),
            Vec::<String>::new(),
            "README example:\n{block}"
        );
    }
}

#[test]
fn every_explanation_shows_its_code_and_a_clean_fix() {
    for entry in wfc::explain::CODES {
        let blocks = wf_blocks(entry.text);
        let name = entry.code;
        if name == "wf::import-unreadable" || name == "wf::import-cycle" {
            assert!(
                entry.text.contains("```wf-fragment"),
                "{name} needs its fragments"
            );
            continue;
        }
        assert_eq!(blocks.len(), 2, "{name} needs an example and a fix");
        let found = codes(&blocks[0]);
        assert!(
            found.contains(&name.to_string()),
            "{name}'s example gives {found:?}"
        );
        assert_eq!(
            codes(&blocks[1]),
            Vec::<String>::new(),
            "{name}'s fix is not clean"
        );
    }
}

#[test]
fn the_readme_lists_every_code_that_explain_knows() {
    let readme = include_str!("../../README.md");
    for entry in wfc::explain::CODES {
        assert!(
            readme.contains(&format!("| `{}` |", entry.code)),
            "README lacks {}",
            entry.code
        );
    }
    let documented = readme.matches("| `wf::").count();
    assert_eq!(
        documented,
        wfc::explain::CODES.len(),
        "README lists codes explain does not know"
    );
}

#[test]
fn every_code_the_checker_reports_has_an_explanation() {
    let snapshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/snapshots");
    for entry in std::fs::read_dir(snapshots).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        for line in text.lines().filter(|line| line.starts_with("wf::")) {
            assert!(
                wfc::explain::lookup(line.trim()).is_some(),
                "no explanation for {line}"
            );
        }
    }
}
