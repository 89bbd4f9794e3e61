//! `wfc test` and `wfc list` as a CI job calls them: test blocks with mocked
//! answers, snapshots beside the workflow, expectations, `--update`,
//! `--filter`, `--live`, and the workflow catalogue.

use std::path::Path;

use crate::support::{Ran, Wfc};

fn wfc(dir: &Path, args: &[&str]) -> Ran {
    Wfc::new().current_dir(dir).args(args).run()
}

const CLAIM: &str = r#"
agent MedicalQA { model = "qa" }
agent Claims { model = "claims" }

/// Medical necessity, then the claim.
workflow claim {
  /// The case.
  input case: text
  input plan: one_of("ppo", "hmo") = "ppo"

  task necessity -> MedicalQA { prompt = "Assess {{ case }}" }
  task submission -> Claims { prompt = "Claim ({{ plan }}) for {{ necessity }}" }
  output = "{{ necessity | section('Necessity') }}\n{{ submission | section('Claim') }}"

  test "knee MRI" {
    input case = "knee pain"
    mock necessity = "MRI is medically necessary."
    expect output contains "=== NECESSITY ===\nMRI is medically necessary."
    expect output contains "Mock claims response"
    expect task submission ok
    expect order necessity before submission
  }

  test "outage" {
    input case = "x"
    mock necessity fails "HTTP 503"
    expect task necessity failed
    expect task submission skipped
    expect output contains "[necessity has no result: HTTP 503]"
  }

  test "unmet" {
    input case = "x"
    mock necessity = "not needed"
    expect output contains "approved"
    expect task necessity failed
  }
}
"#;

#[test]
fn tests_run_with_mocks_snapshots_are_kept_and_changes_fail_with_a_diff() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("claim.wf"), CLAIM).unwrap();

    let first = wfc(dir.path(), &["test", "--filter", "knee"]);
    assert_eq!(first.code, Some(0), "{}", first.stdout.clone());
    let out = first.stdout.clone();
    assert!(out.contains("running 1 test\n"), "{out}");
    assert!(
        out.contains("test claim::\"knee MRI\" ... ok (new snapshot"),
        "{out}"
    );
    assert!(out.contains("test result: ok. 1 passed; 0 failed; 1 new snapshots written"));
    let snapshot = dir.path().join("__snapshots__/claim@knee_mri.snap");
    let stored = std::fs::read_to_string(&snapshot).unwrap();
    assert!(
        stored.starts_with("---\nworkflow: claim\ntest: knee MRI\n"),
        "{stored}"
    );
    assert!(
        stored.contains("=== CLAIM ===\nMock claims response"),
        "{stored}"
    );

    let again = wfc(dir.path(), &["test", "--filter", "knee"]);
    assert_eq!(again.code, Some(0));
    assert!(
        again
            .stdout
            .contains("test result: ok. 1 passed; 0 failed\n")
    );

    let changed = CLAIM.replace("MRI is medically necessary.", "MRI is necessary.");
    let changed = changed.replace(
        "=== NECESSITY ===\\nMRI is medically necessary.",
        "MRI is necessary",
    );
    std::fs::write(dir.path().join("claim.wf"), changed).unwrap();
    let failing = wfc(dir.path(), &["test", "--filter", "knee"]);
    assert_eq!(failing.code, Some(1));
    let out = failing.stdout.clone();
    assert!(out.contains("test claim::\"knee MRI\" ... FAILED"), "{out}");
    assert!(out.contains("the output differs from"), "{out}");
    assert!(
        out.contains("-MRI is medically necessary.\n  +MRI is necessary."),
        "{out}"
    );
    assert!(
        out.contains("test result: FAILED. 0 passed; 1 failed"),
        "{out}"
    );
    insta::assert_snapshot!(failing.normalised(&[(dir.path(), "[DIR]")]));

    let updated = wfc(dir.path(), &["test", "--filter", "knee", "--update"]);
    assert_eq!(updated.code, Some(0));
    assert!(updated.stdout.contains("1 snapshots updated"));
    assert!(
        std::fs::read_to_string(&snapshot)
            .unwrap()
            .contains("MRI is necessary.")
    );
}

#[test]
fn unmet_expectations_are_each_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("claim.wf"), CLAIM).unwrap();
    let output = wfc(dir.path(), &["test", "claim.wf"]);
    assert_eq!(output.code, Some(1));
    let out = output.stdout.clone();
    assert!(out.contains("running 3 tests"), "{out}");
    assert!(out.contains("test claim::\"outage\" ... ok"), "{out}");
    assert!(out.contains("test claim::\"unmet\" ... FAILED"), "{out}");
    assert!(
        out.contains("expected the output to meet `contains \"approved\"`; the output was:\n    | === NECESSITY ===\n    | not needed"),
        "the failure shows what it checked: {out}"
    );
    assert!(
        out.contains("expected task `necessity` to be failed, but it is ok"),
        "{out}"
    );
    assert!(
        out.contains("test result: FAILED. 2 passed; 1 failed; 2 new snapshots written"),
        "{out}"
    );
    insta::assert_snapshot!(output.normalised(&[(dir.path(), "[DIR]")]));
}

/// Element `name`'s attributes, for each such element of an XML text, as
/// a real XML parser reads them.
fn elements(xml: &str, name: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut found = Vec::new();
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(element) | Event::Empty(element) if element.name().as_ref() == name => {
                found.push(
                    element
                        .attributes()
                        .map(|a| {
                            let a = a.unwrap();
                            (
                                a.key.as_ref().to_string(),
                                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                    .unwrap()
                                    .into_owned(),
                            )
                        })
                        .collect(),
                );
            }
            Event::Eof => return found,
            _ => {}
        }
    }
}

#[test]
fn reports_for_ci_as_junit_xml_and_json() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("claim.wf"), CLAIM).unwrap();
    let junit = wfc(dir.path(), &["test", "--format", "junit", "claim.wf"]);
    assert_eq!(junit.code, Some(1), "{}", junit.stderr);
    assert!(
        junit.stderr.contains("test claim::\"unmet\" ... FAILED"),
        "progress goes to stderr"
    );
    let suites = elements(&junit.stdout, "testsuites");
    assert_eq!(suites[0]["tests"], "3");
    assert_eq!(suites[0]["failures"], "1");
    let suite = elements(&junit.stdout, "testsuite");
    assert_eq!(suite.len(), 1);
    assert_eq!(suite[0]["name"], "claim.wf");
    let cases = elements(&junit.stdout, "testcase");
    let names: Vec<&str> = cases.iter().map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["knee MRI", "outage", "unmet"]);
    assert!(
        cases
            .iter()
            .all(|c| c["classname"] == "claim" && c["time"].parse::<f64>().is_ok())
    );
    let failures = elements(&junit.stdout, "failure");
    assert_eq!(failures.len(), 1);
    assert!(
        failures[0]["message"].starts_with("expected the output to meet `contains \"approved\"`")
    );
    let times = regex::Regex::new(r#"time="[0-9.]+""#).unwrap();
    insta::assert_snapshot!(times.replace_all(&junit.stdout, r#"time="[T]""#));

    let json = wfc(dir.path(), &["test", "--format", "json", "claim.wf"]);
    let report: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(
        (report["passed"].as_u64(), report["failed"].as_u64()),
        (Some(2), Some(1))
    );
    let unmet = &report["tests"][2];
    assert_eq!(unmet["test"], "unmet");
    assert!(unmet["duration_ms"].as_f64().is_some());
    assert!(unmet["output"].as_str().unwrap().contains("not needed"));
    assert_eq!(unmet["failures"].as_array().unwrap().len(), 2);
}

#[test]
fn live_runs_ask_the_routers_servers_and_report_quality() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mock = runtime
        .block_on(wfc::mock::MockServer::start(
            wfc::mock::MockConfig::default(),
        ))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("claim.wf"), CLAIM).unwrap();
    std::fs::write(
        dir.path().join("wfc.toml"),
        format!(
            "[[agents.MedicalQA.endpoints]]\nurl = \"{0}\"\n[[agents.Claims.endpoints]]\nurl = \"{0}\"\n",
            mock.base_url()
        ),
    )
    .unwrap();
    let output = wfc(dir.path(), &["test", "--live", "--filter", "knee"]);
    let out = output.stdout.clone();
    assert!(out.contains("(quality 1.00)"), "{out}");
    assert!(
        out.contains("expected the output to meet `contains \"=== NECESSITY ===\\nMRI is medically necessary.\"`"),
        "live answers are not the mocks: {out}"
    );
    let models: Vec<String> = mock.requests().into_iter().map(|r| r.model).collect();
    assert_eq!(models, ["qa", "claims"]);
    assert!(!dir.path().join("__snapshots__").exists());
}

#[test]
fn list_shows_each_workflow_with_inputs_agents_and_pattern() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("claim.wf"), CLAIM).unwrap();
    let output = wfc(dir.path(), &["list", "--json"]);
    assert_eq!(output.code, Some(0));
    let list = output.json();
    let claim = &list[0];
    assert_eq!(claim["name"], "claim");
    assert_eq!(claim["description"], "Medical necessity, then the claim.");
    assert_eq!(claim["pattern"], "sequential");
    assert_eq!(claim["agents"], serde_json::json!(["MedicalQA", "Claims"]));
    assert_eq!(
        claim["inputs"],
        serde_json::json!([
            {"name": "case", "type": "text", "required": true, "description": "The case."},
            {"name": "plan", "type": "one_of(\"ppo\", \"hmo\")", "required": false, "default": "ppo", "description": ""},
        ])
    );
    assert_eq!(
        claim["tasks"][1]["depends_on"],
        serde_json::json!(["necessity"])
    );

    let text = wfc(dir.path(), &["list"]).stdout;
    assert!(
        text.starts_with("claim  (sequential: MedicalQA, Claims)\n  Medical necessity, then the claim.\n  --input case: text (required)\n  --input plan: one_of(\"ppo\", \"hmo\") (default \"ppo\")"),
        "{text}"
    );
}
