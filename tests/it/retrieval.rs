//! Retrieval tasks end to end: corpora indexed by `wfc index` and by the
//! first run that searches them, passages in the prompt a model is sent,
//! cited and listed in the report, and a corpus that cannot be searched.

use std::path::Path;

use serde_json::json;

use crate::support::{Setup, Wfc, program};
use wfc::mock::{MockConfig, MockServer};

const WORKFLOW: &str = r#"
corpus PayerPolicies { metadata = [payer] }
agent Claims { model = "claims-model" }

workflow coverage {
  input service: text
  input payer: text

  retrieve policy from PayerPolicies {
    query = "{{ service }} coverage criteria"
    top_k = 2
    filter = { payer = "{{ payer }}" }
  }
  task claim -> Claims {
    expect cites policy
    prompt = """
      Prepare the claim for {{ service }}, citing the policy by passage id.
      {% for passage in policy %}
      [{{ passage.id }}] {{ passage.title }}
      {{ passage.text }}
      {% endfor %}
    """
  }
  output = "{{ claim }}"
}
"#;

/// A corpus of two payers' policies, in the default place beside the
/// workflow.
fn corpus(dir: &Path) {
    let folder = dir.join("corpora/payer_policies");
    std::fs::create_dir_all(&folder).unwrap();
    let records = [
        json!({"id": "acme-mri", "title": "Lumbar MRI", "payer": "Acme",
               "text": "Acme covers lumbar spine MRI after six weeks of failed physical therapy."}),
        json!({"id": "acme-knee", "title": "Knee arthroscopy", "payer": "Acme",
               "text": "Acme covers knee arthroscopy for mechanical symptoms only."}),
        json!({"id": "zen-mri", "title": "Lumbar MRI", "payer": "Zenith",
               "text": "Zenith covers lumbar spine MRI only with a neurological deficit."}),
    ];
    let lines: Vec<String> = records.iter().map(ToString::to_string).collect();
    std::fs::write(folder.join("policies.jsonl"), lines.join("\n")).unwrap();
    std::fs::write(
        folder.join("sleep.md"),
        "# Sleep studies\n\n## Coverage criteria\n\nA home sleep test comes first.\n",
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prompt_holds_the_passages_found_and_the_report_lists_them() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path());
    let program = program(dir.path(), WORKFLOW);
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let mut setup = Setup::new(&program, &mock)
        .inputs(json!({"service": "lumbar spine MRI", "payer": "Zenith"}));
    setup.home = dir.path().to_path_buf();
    let report = setup.run().await;
    assert!(report.success, "{report:#?}");

    let prompts: Vec<String> = mock.requests().into_iter().map(|r| r.prompt).collect();
    assert_eq!(
        prompts.len(),
        1,
        "a search sends nothing to the model server"
    );
    let prompt = &prompts[0];
    // The filter kept Zenith's policy and left Acme's out.
    assert!(
        prompt.contains(
            "[zen-mri] Lumbar MRI\nZenith covers lumbar spine MRI only with a neurological deficit."
        ),
        "{prompt}"
    );
    assert!(!prompt.contains("acme-mri"), "{prompt}");

    let policy = &report.results[0];
    assert_eq!(policy.task_id, "policy");
    assert_eq!(policy.agent_type, "PayerPolicies");
    assert_eq!(policy.model, "bm25");
    assert_eq!(policy.passages, ["zen-mri"]);
    let claim = &report.results[1];
    assert_eq!(claim.passages, ["zen-mri"], "the ids the claim was given");
    // The mock cites the first passage it is shown, so the check holds.
    let quality = claim.quality.as_ref().unwrap();
    assert_eq!(quality.failed, Vec::<String>::new());
}

#[test]
fn wfc_index_builds_then_updates_only_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path());
    std::fs::write(dir.path().join("coverage.wf"), WORKFLOW).unwrap();
    let index = || Wfc::new().current_dir(dir.path()).arg("index").run();

    let built = index();
    assert_eq!(built.code, Some(0), "{built}");
    assert!(
        built
            .stdout
            .starts_with("PayerPolicies: 2 documents, 4 passages; built in "),
        "{built}"
    );
    assert!(dir.path().join(".wfc/index/PayerPolicies").is_dir());

    let again = index();
    assert!(again.stdout.contains("; up to date in "), "{again}");

    std::fs::write(
        dir.path().join("corpora/payer_policies/sleep.md"),
        "# Sleep studies\n\n## Coverage criteria\n\nA home sleep test comes first.\n\n## Documentation\n\nThe Epworth score.\n",
    )
    .unwrap();
    let updated = index();
    assert!(
        updated.stdout.contains(
            "2 documents, 5 passages; updated (0 added, 1 changed, 0 removed, 1 unchanged)"
        ),
        "{updated}"
    );

    let unknown = Wfc::new()
        .current_dir(dir.path())
        .args(["index", "PayerPolicy"])
        .run();
    assert_eq!(unknown.code, Some(2));
    assert!(
        unknown.stderr.contains(
            "no workflow here declares corpus `PayerPolicy`; the corpora declared are PayerPolicies"
        ),
        "{unknown}"
    );
}

#[test]
fn a_corpus_that_is_missing_fails_its_search_and_skips_what_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("coverage.wf"), WORKFLOW).unwrap();
    let ran = Wfc::new()
        .current_dir(dir.path())
        .args(["run", "coverage.wf", "--mock", "--json", "-q"])
        .args(["-i", "service=knee", "-i", "payer=Acme"])
        .run();
    assert_eq!(ran.code, Some(3), "a task failed: {ran}");
    let report = ran.json();
    let policy = &report["results"][0];
    assert_eq!(policy["status"], "failed");
    let error = policy["error"].as_str().unwrap();
    assert!(
        error.contains("the corpus folder `")
            && error.contains("corpora/payer_policies` does not exist; create it or fix `path` for corpus `PayerPolicies`"),
        "{error}"
    );
    assert_eq!(report["results"][1]["status"], "skipped");
}

#[test]
fn a_cache_answers_the_model_again_but_never_a_search() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path());
    std::fs::write(dir.path().join("coverage.wf"), WORKFLOW).unwrap();
    let run = || {
        Wfc::new()
            .current_dir(dir.path())
            .args([
                "run",
                "coverage.wf",
                "--mock",
                "--json",
                "-q",
                "--cache",
                "cache",
            ])
            .args(["-i", "service=lumbar spine MRI", "-i", "payer=Acme"])
            .run()
            .json()
    };
    let first = run();
    assert_eq!(
        first["results"][0]["passages"],
        json!(["acme-mri"]),
        "{first}"
    );
    // Acme's MRI policy is gone; a second Acme policy mentions MRI.
    let folder = dir.path().join("corpora/payer_policies");
    let policies = std::fs::read_to_string(folder.join("policies.jsonl")).unwrap();
    let changed: Vec<&str> = policies
        .lines()
        .filter(|l| !l.contains("acme-mri"))
        .collect();
    std::fs::write(
        folder.join("policies.jsonl"),
        format!(
            "{}\n{}",
            changed.join("\n"),
            json!({"id": "acme-mri-2026", "title": "Lumbar MRI", "payer": "Acme",
                   "text": "From 2026 Acme covers lumbar spine MRI after four weeks."})
        ),
    )
    .unwrap();
    let second = run();
    let search = &second["results"][0];
    assert_eq!(search["replayed"], false, "{second}");
    assert_eq!(search["passages"], json!(["acme-mri-2026"]), "{second}");
    // The claim's prompt changed with the passages, so it was asked again.
    assert_eq!(second["results"][1]["replayed"], false, "{second}");
}
