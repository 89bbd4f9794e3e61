use super::*;
use crate::loader::Loader;
use crate::record::Outcome;
use std::sync::Arc;

fn workflow(source: &str) -> WorkflowDef {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.wf");
    std::fs::write(&path, source).unwrap();
    let report = crate::check::check_file(&mut Loader::default(), &path).unwrap();
    assert!(!report.has_errors(), "{:?}", report.problems);
    report.program.unwrap().workflows.remove(0)
}

fn record(task: &str, outcome: Outcome) -> TaskRecord {
    let mut record = TaskRecord::skipped(task, "A", "m", String::new(), 0);
    record.outcome = outcome;
    record
}

fn ok(task: &str, text: &str) -> TaskRecord {
    record(
        task,
        Outcome::Ok {
            text: text.into(),
            finish_reason: Some("stop".into()),
        },
    )
}

const SOURCE: &str = r#"
agent A { model = "m" }
workflow w {
  input note: text
  task first -> A { prompt = "Summarise: {{ note }}" }
  task second -> A { prompt = "Code this: {{ first }}" }
  output = """
    {% if second.ok %}{{ second | section("Codes") }}{% else %}Coding failed: {{ second.error }}{% endif %}
    ({{ first.tokens }} tokens from {{ first.model }})
  """
}
"#;

fn inputs(note: &str) -> serde_json::Map<String, serde_json::Value> {
    serde_json::json!({ "note": note })
        .as_object()
        .unwrap()
        .clone()
}

#[test]
fn inputs_and_answers_are_values_never_templates() {
    let workflow = workflow(SOURCE);
    let renderer = Renderer::new(&workflow);
    let mut scope = Scope::new(&inputs("{{ 7 * 7 }} {% if true %}x{% endif %}"));
    assert_eq!(
        renderer.prompt("first", &scope).unwrap(),
        "Summarise: {{ 7 * 7 }} {% if true %}x{% endif %}"
    );
    scope.add(Arc::new(ok("first", " {{ note }} ")));
    assert_eq!(
        renderer.prompt("second", &scope).unwrap(),
        "Code this: {{ note }}"
    );
}

#[test]
fn the_output_reads_metadata_and_copes_with_failure() {
    let workflow = workflow(SOURCE);
    let renderer = Renderer::new(&workflow);
    let mut scope = Scope::new(&inputs("n"));
    scope.add(Arc::new(ok("first", "summary")));
    scope.add(Arc::new(ok("second", "I21.19")));
    assert_eq!(
        renderer.output(&scope).unwrap(),
        "=== CODES ===\nI21.19\n(0 tokens from m)"
    );
    scope.add(Arc::new(record(
        "second",
        Outcome::Failed {
            error: "HTTP 500".into(),
        },
    )));
    assert_eq!(
        renderer.output(&scope).unwrap(),
        "Coding failed: HTTP 500\n(0 tokens from m)"
    );
}

#[test]
fn without_an_output_template_each_answer_appears_under_its_name() {
    let source = "agent A { model = \"m\" }\nworkflow w {\n  task a -> A { prompt = \"x\" }\n  task b -> A { prompt = \"y\" }\n}\n";
    let workflow = workflow(source);
    let renderer = Renderer::new(&workflow);
    let mut scope = Scope::default();
    scope.add(Arc::new(ok("a", "alpha")));
    scope.add(Arc::new(record(
        "b",
        Outcome::Skipped {
            reason: "`a` failed".into(),
        },
    )));
    assert_eq!(
        renderer.output(&scope).unwrap(),
        "## a\n\nalpha\n\n## b\n\n[b has no result: `a` failed]"
    );
}
