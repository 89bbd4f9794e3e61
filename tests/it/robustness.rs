//! Whatever bytes a file holds, checking it ends in diagnostics: never a
//! panic, never a hang.

use std::path::Path;

use proptest::prelude::*;
use wfc::check::check_file;
use wfc::loader::Loader;

fn check_text(dir: &Path, text: &[u8]) -> usize {
    let path = dir.join("case.wf");
    std::fs::write(&path, text).unwrap();
    match check_file(&mut Loader::default(), &path) {
        Ok(report) => report.problems.len(),
        Err(_) => 1,
    }
}

const SEED: &str = include_str!("../../workflows/discharge_summary.wf");

/// Fragments that matter to the grammar and the templates.
const PIECES: &[&str] = &[
    "{",
    "}",
    "\"",
    "\"\"\"",
    "{{",
    "}}",
    "{%",
    "%}",
    "->",
    "=",
    "[",
    "]",
    "//",
    "///",
    "task",
    "input",
    "after = [",
    "\n",
    "é",
    "\0",
    "workflow",
    "<",
    ">",
    "?",
    "@",
];

fn mutation() -> impl Strategy<Value = (usize, usize, usize)> {
    (0..SEED.len(), 0..PIECES.len(), 0..3usize)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let dir = tempfile::tempdir().unwrap();
        check_text(dir.path(), &bytes);
    }

    #[test]
    fn mutated_workflows_never_panic(mutations in proptest::collection::vec(mutation(), 1..6)) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("agents.wf"), include_str!("../../workflows/agents.wf")).unwrap();
        let mut text = SEED.as_bytes().to_vec();
        for (at, piece, kind) in mutations {
            let at = at.min(text.len());
            match kind {
                0 => { text.splice(at..at, PIECES[piece].bytes()); }
                1 => { text.drain(at..(at + PIECES[piece].len()).min(text.len())); }
                _ => { text.truncate(at); }
            }
        }
        check_text(dir.path(), &text);
    }
}

#[test]
fn hostile_inputs_end_in_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let deep_brackets = format!("agent A {{ model = {}", "[".repeat(100_000));
    assert!(check_text(dir.path(), deep_brackets.as_bytes()) > 0);
    let deep_template = format!(
        "agent A {{ model = \"m\" }}\nworkflow w {{ task t -> A {{ prompt = \"{}x{}\" }} }}",
        "{% if true %}".repeat(5_000),
        "{% endif %}".repeat(5_000)
    );
    assert!(check_text(dir.path(), deep_template.as_bytes()) > 0);
    let deep_expression = format!(
        "agent A {{ model = \"m\" }}\nworkflow w {{ task t -> A {{ prompt = \"{{{{ {}1{} }}}}\" }} }}",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    assert!(check_text(dir.path(), deep_expression.as_bytes()) > 0);
    let unterminated = "agent A { model = \"m\" }\nworkflow w { task t -> A { prompt = \"\"\"never";
    assert!(check_text(dir.path(), unterminated.as_bytes()) > 0);
    let not_utf8 = b"agent A { model = \"\xff\xfe\" }";
    assert!(check_text(dir.path(), not_utf8) > 0);
}

/// The parser has no stack probe of its own (pest without `std`): the
/// nesting limit alone keeps it within a thread's stack, here a smaller one
/// than the 2 MiB of the async runtime's threads that `wfc lsp` and
/// `wfc serve` check on.
#[test]
fn nesting_up_to_the_limit_parses_on_a_small_stack() {
    let dir = tempfile::tempdir().unwrap();
    let nested = |depth: usize| {
        // The agent's own braces are the first level.
        let levels = depth - 1;
        format!(
            "agent A {{ model = \"m\" x = {}1{} }}",
            "[{ y = ".repeat(levels / 2) + &"[".repeat(levels % 2),
            "]".repeat(levels % 2) + &" }]".repeat(levels / 2),
        )
    };
    let at_limit = nested(64);
    let over_limit = nested(65);
    let path = dir.path().to_path_buf();
    let (at, over) = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || {
            let check = |text: &str| {
                std::fs::write(path.join("case.wf"), text).unwrap();
                check_file(&mut Loader::default(), &path.join("case.wf"))
                    .unwrap()
                    .problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
            };
            (check(&at_limit), check(&over_limit))
        })
        .unwrap()
        .join()
        .unwrap();
    // Parsed: the only problem is the made-up property.
    assert!(
        at.iter().all(|problem| !problem.contains("nested")),
        "{at:?}"
    );
    assert!(at.iter().any(|problem| problem.contains("`x`")), "{at:?}");
    assert_eq!(over, ["brackets are nested more than 64 levels deep"]);
}

#[test]
fn ten_megabytes_of_valid_text_check_quickly_enough_to_finish() {
    let dir = tempfile::tempdir().unwrap();
    let prompt = "Summarise the hospital course. ".repeat(330_000);
    let text = format!(
        "agent A {{ model = \"m\" }}\nworkflow w {{\n  task t -> A {{ prompt = \"\"\"\n{prompt}\n\"\"\" }}\n}}\n"
    );
    assert!(text.len() > 10_000_000);
    assert_eq!(check_text(dir.path(), text.as_bytes()), 0);
}
