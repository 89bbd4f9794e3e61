//! Cassettes: `wfc test --live --record DIR` keeps what real servers
//! answered (here the mock model server, over real HTTP), `wfc test
//! --replay DIR` answers from it without any server, a request it has no
//! recording of fails with the nearest recording and what changed,
//! `--replay-check` finds stale and missing recordings, a schema change
//! that old answers no longer fit is drift, and `--record` keeps PHI only
//! when told how.

use std::path::Path;

use wfc::mock::{MockConfig, MockServer};

use crate::support::{Ran, Wfc};

const CLAIM: &str = r#"
agent MedicalQA { model = "qa" }
agent Claims { model = "claims" }

workflow claim {
  input case: text
  task necessity -> MedicalQA {
    prompt = "Assess {{ case }}"
    output = json { necessary: bool, reason: text }
  }
  task submission -> Claims { prompt = "Claim for {{ necessity.reason }}" }
  output = "{{ necessity.reason }}\n{{ submission }}"

  test "knee MRI" {
    input case = "knee pain"
    mock necessity = """{"necessary": true, "reason": "mock"}"""
    expect task submission ok
  }
}
"#;

fn wfc(dir: &Path, args: &[&str]) -> Ran {
    Wfc::new().current_dir(dir).args(args).run()
}

/// A folder with `claim.wf` (as `source` says) and a router file sending
/// its agents to `mock`.
fn folder(mock: &MockServer, source: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("claim.wf"), source).unwrap();
    let mut router = String::new();
    for agent in ["MedicalQA", "Claims"] {
        router.push_str(&format!(
            "[[agents.{agent}.endpoints]]\nurl = \"{}\"\n",
            mock.base_url()
        ));
    }
    std::fs::write(dir.path().join("wfc.toml"), router).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cassette_replays_real_answers_and_explains_what_it_lacks() {
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let dir = folder(&mock, CLAIM);
    let recorded = tokio::task::block_in_place(|| {
        wfc(
            dir.path(),
            &["test", "--live", "--record", "tape", "claim.wf"],
        )
    });
    assert_eq!(
        recorded.code,
        Some(0),
        "{}{}",
        recorded.stdout,
        recorded.stderr
    );
    let asked = mock.requests().len();
    assert_eq!(asked, 2, "the live run asked the server");
    let tape = dir.path().join("tape");
    assert_eq!(
        std::fs::read_dir(&tape).unwrap().count(),
        2,
        "a recording per request"
    );

    // Replayed: the same answers, and no request reaches a server.
    let replayed = tokio::task::block_in_place(|| {
        wfc(
            dir.path(),
            &["test", "--replay", "tape", "--replay-check", "claim.wf"],
        )
    });
    assert_eq!(replayed.code, Some(0), "{}", replayed.stdout);
    assert_eq!(mock.requests().len(), asked, "nothing was asked");

    // A changed prompt: the miss names the nearest recording and the change;
    // the check lists the recordings now unused.
    let changed = CLAIM.replace("Assess {{ case }}", "Assess this case: {{ case }}");
    std::fs::write(dir.path().join("claim.wf"), &changed).unwrap();
    let missed = tokio::task::block_in_place(|| {
        wfc(
            dir.path(),
            &["test", "--replay", "tape", "--replay-check", "claim.wf"],
        )
    });
    assert_eq!(missed.code, Some(1));
    let out = &missed.stdout;
    assert!(
        out.contains("the cassette has no recording of this request of task `necessity`"),
        "{out}"
    );
    assert!(
        out.contains("-Assess knee pain") && out.contains("+Assess this case: knee pain"),
        "{out}"
    );
    assert!(
        out.contains("replay check: recordings no test asked for (stale):"),
        "{out}"
    );
    assert!(
        out.contains("replay check: requests the cassette has no recording of:\n  necessity"),
        "{out}"
    );
    assert_eq!(mock.requests().len(), asked, "a miss asks no server either");

    // A schema the old answer still fits replays; one it does not is drift.
    let wider = CLAIM.replace("reason: text }", "reason: text, code: text? }");
    std::fs::write(dir.path().join("claim.wf"), &wider).unwrap();
    let fits =
        tokio::task::block_in_place(|| wfc(dir.path(), &["test", "--replay", "tape", "claim.wf"]));
    assert_eq!(fits.code, Some(0), "{}", fits.stdout);
    let stricter = CLAIM
        .replace("reason: text }", "reason: text, code: text }")
        .replace(
            r#""reason": "mock"}"#,
            r#""reason": "mock", "code": "72148"}"#,
        );
    std::fs::write(dir.path().join("claim.wf"), &stricter).unwrap();
    let drift =
        tokio::task::block_in_place(|| wfc(dir.path(), &["test", "--replay", "tape", "claim.wf"]));
    assert_eq!(drift.code, Some(1));
    assert!(
        drift.stdout.contains(
            "drift: the recorded answer of `necessity` no longer fits its declared shape"
        ),
        "{}",
        drift.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_keeps_phi_only_when_told_how() {
    const RECORD: &str = "MRN 48213377";
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let source = CLAIM
        .replace("input case: text", "input case: text @phi")
        .replace(
            "agent MedicalQA { model = \"qa\" }",
            "agent MedicalQA {\n  model = \"qa\"\n  phi_allowed = true\n}",
        )
        .replace(
            "agent Claims { model = \"claims\" }",
            "agent Claims {\n  model = \"claims\"\n  phi_allowed = true\n}",
        );
    let dir = folder(&mock, &source);
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "claim.wf", "-q", "--input"];
        let input = format!("case=knee pain, {RECORD}");
        args.push(&input);
        args.extend_from_slice(extra);
        let args: Vec<String> = args.iter().map(ToString::to_string).collect();
        tokio::task::block_in_place(|| Wfc::new().current_dir(dir.path()).args(&args).run())
    };
    let refused = run(&["--record", "plain"]);
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("the prompts of `necessity`, `submission` carry PHI"),
        "{}",
        refused.stderr
    );
    assert!(!dir.path().join("plain").exists(), "nothing is written");

    let cassette_text = |name: &str| -> String {
        std::fs::read_dir(dir.path().join(name))
            .unwrap()
            .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
            .collect()
    };
    let redacted = run(&["--record", "redacted", "--redact"]);
    assert_eq!(redacted.code, Some(0), "{}", redacted.stderr);
    let text = cassette_text("redacted");
    assert!(
        !text.contains("48213377") && text.contains("[REDACTED]"),
        "{text}"
    );

    let kept = run(&["--record", "kept", "--allow-phi"]);
    assert_eq!(kept.code, Some(0), "{}", kept.stderr);
    assert!(cassette_text("kept").contains(RECORD));
}

/// The claim again, its submission reading a policy searched in a corpus.
const SEARCHED: &str = r#"
corpus Policies { }
agent MedicalQA { model = "qa" }
agent Claims { model = "claims" }

workflow claim {
  input case: text
  retrieve policy from Policies { query = "{{ case }}" }
  task submission -> Claims {
    expect cites policy
    prompt = "Claim for {{ case }}, citing:\n{{ policy }}"
  }
  output = "{{ submission }}"

  test "knee MRI" {
    input case = "knee MRI"
    expect task policy ok
    expect task submission ok
    expect output contains "See [knee#1]."
  }
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_answers_the_model_from_the_cassette_and_still_searches_the_corpus() {
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let dir = folder(&mock, SEARCHED);
    let corpus = dir.path().join("corpora/policies");
    std::fs::create_dir_all(&corpus).unwrap();
    std::fs::write(
        corpus.join("knee.md"),
        "# Knee MRI\n\nCovered after injury.\n",
    )
    .unwrap();
    let recorded = tokio::task::block_in_place(|| {
        wfc(
            dir.path(),
            &["test", "--live", "--record", "tape", "claim.wf"],
        )
    });
    assert_eq!(recorded.code, Some(0), "{recorded}");
    assert_eq!(
        std::fs::read_dir(dir.path().join("tape")).unwrap().count(),
        1,
        "the model's answer is recorded, the search is not"
    );
    let asked = mock.requests().len();
    let replayed = tokio::task::block_in_place(|| {
        wfc(
            dir.path(),
            &["test", "--replay", "tape", "--replay-check", "claim.wf"],
        )
    });
    assert_eq!(replayed.code, Some(0), "{replayed}");
    assert_eq!(
        mock.requests().len(),
        asked,
        "nothing was asked of the model"
    );
}
