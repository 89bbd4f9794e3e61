//! The `wfc` binary as CI jobs and people call it: exit codes and output formats.

use crate::support::Wfc;

#[test]
fn the_built_in_library_checks_clean_even_denying_warnings() {
    let output = Wfc::with(&["check", "--deny-warnings", "workflows/"]);
    assert_eq!(output.code, Some(0), "{}", output.stdout);
    assert!(output.stderr.contains("no problems"));
}

#[test]
fn check_shows_each_diagnostic_with_its_source_then_a_summary() {
    let output = Wfc::with(&["check", "tests/cases/check/err_cycle.wf"]);
    insta::assert_snapshot!(output.to_string());
}

#[test]
fn a_path_that_does_not_exist_is_named_with_the_reason() {
    let output = Wfc::with(&["check", "no/such/path.wf"]);
    insta::assert_snapshot!(output.to_string());
}

#[test]
fn exit_codes_tell_errors_from_warnings_from_usage() {
    assert_eq!(
        Wfc::with(&["check", "tests/cases/check/err_cycle.wf"]).code,
        Some(1)
    );
    let warning_only = "tests/cases/check/warn_unused_input.wf";
    assert_eq!(Wfc::with(&["check", warning_only]).code, Some(0));
    assert_eq!(
        Wfc::with(&["check", "--deny-warnings", warning_only]).code,
        Some(1)
    );
    assert_eq!(Wfc::with(&["check", "no/such/path.wf"]).code, Some(2));
    assert_eq!(Wfc::with(&["check", "--format", "xml"]).code, Some(2));
}

#[test]
fn json_format_prints_one_object_per_diagnostic() {
    let output = Wfc::with(&[
        "check",
        "--format",
        "json",
        "tests/cases/check/err_unknown_task.wf",
    ]);
    assert_eq!(output.code, Some(1));
    let records: Vec<serde_json::Value> = output
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    assert_eq!(records.len(), 2);
    let first = &records[0];
    assert_eq!(first["severity"], "error");
    assert_eq!(first["code"], "wf::unknown-task");
    assert_eq!(
        first["message"],
        "there is no task named `sumary` in workflow `w`"
    );
    assert_eq!(first["file"], "tests/cases/check/err_unknown_task.wf");
    assert_eq!(
        (first["line"].as_u64(), first["column"].as_u64()),
        (Some(7), Some(14))
    );
    assert_eq!(
        (first["end_line"].as_u64(), first["end_column"].as_u64()),
        (Some(7), Some(20))
    );
    assert_eq!(first["help"], "did you mean `summary`?");
    assert_eq!(records[1]["help"], "`note` is an input, not a task");
}

#[test]
fn github_format_prints_workflow_commands() {
    let output = Wfc::with(&[
        "check",
        "--format",
        "github",
        "tests/cases/check/warn_unused_input.wf",
    ]);
    let text = &output.stdout;
    assert_eq!(
        text.trim_end(),
        "::warning file=tests/cases/check/warn_unused_input.wf,line=5,col=9,endLine=5,endColumn=23,\
         title=wf%3A%3Aunused-input::input `admission_date` is never read%0Ahelp: read it in a prompt \
         or in the output as `{{ admission_date }}`, or remove it"
    );
}

#[test]
fn fmt_check_lists_files_that_would_change() {
    let dir = tempfile::tempdir().expect("temp dir");
    let messy = dir.path().join("messy.wf");
    std::fs::write(
        &messy,
        "agent   A {model=\"m\"}\nworkflow w{task t->A{prompt=\"x\"}}\n",
    )
    .unwrap();
    let path = messy.to_str().unwrap();
    let output = Wfc::with(&["fmt", "--check", path]);
    assert_eq!(output.code, Some(1));
    assert!(output.stdout.contains("messy.wf"));
    assert_eq!(Wfc::with(&["fmt", path]).code, Some(0));
    assert_eq!(
        std::fs::read_to_string(&messy).unwrap(),
        "agent A {\n  model = \"m\"\n}\n\nworkflow w {\n  task t -> A {\n    prompt = \"x\"\n  }\n}\n"
    );
    assert_eq!(Wfc::with(&["fmt", "--check", path]).code, Some(0));
}

#[test]
fn graph_marks_the_critical_path() {
    let output = Wfc::with(&[
        "graph",
        "workflows/discharge_summary.wf",
        "--format",
        "mermaid",
    ]);
    assert_eq!(output.code, Some(0));
    let text = &output.stdout;
    assert!(text.starts_with("flowchart LR\n"), "{text}");
    assert!(
        text.contains(
            "clinical_summary[\"clinical_summary<br/>Clinical · priority 3 · 768 tokens\"]"
        )
    );
    assert!(text.contains("class clinical_summary critical"), "{text}");
    let dot = Wfc::with(&["graph", "workflows/discharge_summary.wf"]).stdout;
    assert!(dot.starts_with("digraph \"discharge_summary\""), "{dot}");
    insta::assert_snapshot!("mermaid", text);
    insta::assert_snapshot!("dot", dot);
}

#[test]
fn explain_knows_every_code_and_rejects_unknown_ones() {
    let output = Wfc::with(&["explain", "wf::cycle"]);
    assert_eq!(output.code, Some(0));
    let text = &output.stdout;
    assert!(
        text.contains("## Example") && text.contains("## Fix"),
        "{text}"
    );
    assert_eq!(Wfc::with(&["explain", "cycle"]).code, Some(0));
    assert_eq!(Wfc::with(&["explain", "wf::nonsense"]).code, Some(2));
}

#[test]
fn completions_are_generated_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let output = Wfc::with(&["completions", shell]);
        assert_eq!(output.code, Some(0));
        assert!(output.stdout.contains("check"), "{shell}");
    }
}

/// Colour is decided per stream: with stdout on a terminal (a pty from
/// `script`) and stderr in a file, the diagnostics in the file carry no
/// escape codes; with stderr on the terminal, they are coloured.
#[test]
fn colour_follows_the_stream_diagnostics_are_written_to() {
    let script = which("script").expect("`script` (util-linux) gives wfc a terminal");
    let dir = tempfile::tempdir().unwrap();
    let err = dir.path().join("stderr.txt");
    let wfc = env!("CARGO_BIN_EXE_wfc");
    let on_terminal = |redirect: &str| {
        std::process::Command::new(&script)
            .args(["-qec"])
            .arg(format!(
                "{wfc} run tests/cases/check/err_cycle.wf --mock {redirect}"
            ))
            .arg("/dev/null")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("NO_COLOR")
            .output()
            .unwrap()
    };
    on_terminal(&format!("2>{}", err.display()));
    let text = std::fs::read_to_string(&err).unwrap();
    assert!(text.contains("wf::cycle"), "{text}");
    assert!(!text.contains('\u{1b}'), "escape codes in a file: {text:?}");

    let output = on_terminal(&format!(">{}", dir.path().join("stdout.txt").display()));
    let terminal = String::from_utf8_lossy(&output.stdout);
    assert!(terminal.contains("wf::cycle"), "{terminal}");
    assert!(
        terminal.contains('\u{1b}'),
        "no colour on a terminal: {terminal:?}"
    );
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

#[test]
fn a_file_that_is_not_utf8_is_a_diagnostic_at_its_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latin1.wf");
    std::fs::write(&path, b"agent A { model = \"caf\xe9\" }\n").unwrap();
    let output = Wfc::new().arg("check").arg(&path).run();
    assert_eq!(output.code, Some(1), "{output}");
    assert!(
        output
            .stdout
            .contains("this file is not UTF-8 text: the byte at offset 22 is not valid UTF-8"),
        "{output}"
    );
    assert!(
        output.stderr.contains("checked 1 file: 1 error"),
        "{output}"
    );
}
