//! Every file under `tests/cases/check/` is a case: the diagnostics `wfc
//! check` gives for it, rendered without colour, are snapshotted with the
//! source beside them. `ok_*` cases must have no problems, `warn_*` only
//! warnings, `err_*` at least one error. Files starting with `_` are imported
//! by cases and are not cases themselves.

use std::path::Path;

use miette::Diagnostic;
use wfc::check::check_file;
use wfc::loader::Loader;

fn relative(path: &Path) -> &Path {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(path)
}

#[test]
fn check_cases() {
    insta::glob!("../cases/check", "[!_]*.wf", |path| {
        let path = relative(path);
        let report = check_file(&mut Loader::default(), path).expect("case file is readable");
        let name = path.file_name().unwrap().to_string_lossy();
        let errors = report.problems.iter().filter(|p| p.is_error()).count();
        let warnings = report.problems.len() - errors;
        match &name[..name.find('_').unwrap_or(0)] {
            "ok" => assert_eq!(report.problems.len(), 0, "{name} should be clean"),
            "warn" => assert!(
                errors == 0 && warnings > 0,
                "{name} should have only warnings"
            ),
            "err" => assert!(errors > 0, "{name} should have errors"),
            other => panic!("case {name} must start with ok_, warn_ or err_, not {other}"),
        }
        let rendered = wfc::diagnostics::human(
            &report.source,
            report.problems.iter().map(|p| p as &dyn Diagnostic),
            false,
        );
        insta::with_settings!({
            description => report.source.text(),
            omit_expression => true,
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!(rendered);
        });
    });
}

/// Corrects the erratum of the SARIF 2.1.0 schema's `language` patterns (a
/// stray `]` that makes them invalid regexes); returns how many it corrected.
fn correct(value: &mut serde_json::Value) -> usize {
    match value {
        serde_json::Value::String(text) if text == "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$" => {
            *text = "^[a-zA-Z]{2}(-[a-zA-Z]{2})?$".into();
            1
        }
        serde_json::Value::Object(map) => map.values_mut().map(correct).sum(),
        serde_json::Value::Array(items) => items.iter_mut().map(correct).sum(),
        _ => 0,
    }
}

/// `wfc check --format sarif` over every case file: one log that the SARIF
/// 2.1.0 schema accepts, with what GitHub code scanning requires of it.
#[test]
fn sarif_logs_are_valid_sarif_with_what_code_scanning_needs() {
    let ran = crate::support::Wfc::new()
        .args(["check", "--format", "sarif", "tests/cases/check"])
        .run();
    assert_eq!(ran.code, Some(1), "the cases have errors: {}", ran.stderr);
    let log: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    // The OASIS schema, as the serde-sarif crate ships it, corrected.
    let mut schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string("tests/fixtures/sarif-schema-2.1.0.json").unwrap(),
    )
    .unwrap();
    assert!(correct(&mut schema) > 0, "the erratum is where it was");
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&log).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "not valid SARIF 2.1.0: {errors:#?}");

    assert_eq!(log["version"], "2.1.0");
    assert!(log["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let run = &log["runs"][0];
    let driver = &run["tool"]["driver"];
    assert_eq!(driver["name"], "wfc");
    assert_eq!(driver["semanticVersion"], env!("CARGO_PKG_VERSION"));
    let rules = driver["rules"].as_array().unwrap();
    assert_eq!(
        rules.len(),
        wfc::explain::CODES.len(),
        "a rule for every code"
    );
    for rule in rules {
        for field in [
            "/id",
            "/shortDescription/text",
            "/fullDescription/text",
            "/help/text",
            "/help/markdown",
            "/defaultConfiguration/level",
        ] {
            assert!(
                rule.pointer(field)
                    .is_some_and(|v| v.as_str().is_some_and(|s| !s.is_empty())),
                "{field} of {rule}"
            );
        }
    }
    let results = run["results"].as_array().unwrap();
    assert!(
        results.len() > 50,
        "every case's diagnostics: {}",
        results.len()
    );
    for result in results {
        let index = usize::try_from(result["ruleIndex"].as_u64().unwrap()).unwrap();
        assert_eq!(rules[index]["id"], result["ruleId"]);
        assert_eq!(
            rules[index]["defaultConfiguration"]["level"], result["level"],
            "a rule's level is its results' level: {result}"
        );
        assert!(
            result["message"]["text"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        );
        let location = &result["locations"][0]["physicalLocation"];
        let uri = location["artifactLocation"]["uri"].as_str().unwrap();
        assert!(
            uri.starts_with("tests/cases/check/"),
            "repository-relative: {uri}"
        );
        for field in ["startLine", "startColumn", "endLine", "endColumn"] {
            assert!(
                location["region"][field].as_u64().is_some_and(|n| n >= 1),
                "{field}: {result}"
            );
        }
        let hash = result["partialFingerprints"]["primaryLocationLineHash"]
            .as_str()
            .unwrap();
        assert!(hash.contains(':'), "{hash}");
    }
    let of = |code: &'static str| results.iter().filter(move |r| r["ruleId"] == code);
    let edges = |result: &serde_json::Value| {
        result["relatedLocations"]
            .as_array()
            .map_or(0, |locations| {
                assert!(locations.iter().all(|l| l["message"]["text"].is_string()));
                locations.len()
            })
    };
    assert_eq!(
        of("wf::cycle").map(edges).collect::<Vec<_>>(),
        [2, 2, 0],
        "each edge of a cycle of two is a related location; a task that reads itself has one edge, the result's own"
    );
    let phi: Vec<_> = of("wf::phi-flow").collect();
    assert!(!phi.is_empty());
    for result in phi {
        assert_eq!(result["properties"]["security-severity"], "8.0", "{result}");
        assert!(
            result["relatedLocations"]
                .as_array()
                .is_some_and(|l| !l.is_empty()),
            "the PHI path: {result}"
        );
    }
}

/// The results of a cycle and of a PHI path as SARIF (the rules are the
/// `wfc explain` texts, checked above).
#[test]
fn sarif_results_of_a_cycle_and_a_phi_path() {
    let ran = crate::support::Wfc::new()
        .args(["check", "--format", "sarif"])
        .args([
            "tests/cases/check/err_cycle.wf",
            "tests/cases/check/err_phi_flow.wf",
        ])
        .run();
    let log: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    insta::assert_json_snapshot!(log["runs"][0]["results"]);
}
