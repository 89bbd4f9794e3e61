//! `wfc run`'s interpreter against the mock model server over real HTTP:
//! ordering, retries, fallbacks, failures, rendering, the journal and the
//! report.

use std::time::{Duration, Instant};

use crate::support::{Setup, latency, program, result};
use wfc::mock::{Fault, FaultKind, MockConfig, MockServer};
use wfc::run::journal::Journal;

fn fault(model: &str, kind: FaultKind, times: Option<u32>) -> Fault {
    Fault {
        model: Some(model.to_string()),
        prompt_contains: None,
        times,
        kind,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_discharge_summary_runs_both_agents_at_once() {
    let program = crate::support::library_program("discharge_summary.wf");
    let mock = MockServer::start(latency(&[
        ("BioMistral-7B", 300),
        ("OpenInsurance-8B", 250),
    ]))
    .await
    .unwrap();
    let report = Setup::new(&program, &mock)
        .inputs(serde_json::json!({
            "patient_data": "65-year-old man with an inferior STEMI; PCI to the RCA.",
            "admission_date": "01/01/2026",
            "discharge_date": "01/04/2026",
        }))
        .run()
        .await;

    let requests = mock.requests();
    assert_eq!(requests.len(), 2);
    let first_answer = requests.iter().filter_map(|r| r.finished).min().unwrap();
    assert!(
        requests.iter().all(|r| r.received < first_answer),
        "both requests reach the servers before either answers"
    );
    assert!(report.success);
    assert_eq!(report.metadata.num_tasks, 2);
    assert_eq!(report.metadata.peak_parallelism, 2);
    assert!(report.total_latency_ms >= 300.0);
    assert!(report.metadata.sequential_time_ms >= 550.0);
    assert!(report.metadata.speedup_factor > 1.4, "{report:#?}");
    let clinical = result(&report, "clinical_summary");
    assert_eq!(
        (clinical.agent_type.as_str(), clinical.model.as_str()),
        ("Clinical", "BioMistral-7B")
    );
    assert!(clinical.tokens > 0);
    assert_eq!(clinical.error, None);
    insta::assert_snapshot!(report.aggregated_content);
}

const SINGLE: &str = r#"
agent Coder { model = "coder" }
workflow single {
  task code -> Coder { prompt = "code this" retries = 2 }
}
"#;

async fn run_single(config: MockConfig, source: &str) -> (wfc::run::Report, MockServer) {
    let dir = tempfile::tempdir().unwrap();
    let program = program(dir.path(), source);
    let mock = MockServer::start(config).await.unwrap();
    let report = Setup::new(&program, &mock).run().await;
    (report, mock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_until_one_succeeds() {
    let config = MockConfig {
        faults: vec![fault("coder", FaultKind::Status(503), Some(2))],
        ..MockConfig::default()
    };
    let (report, mock) = run_single(config, SINGLE).await;
    let code = result(&report, "code");
    assert!(code.success, "{code:?}");
    assert_eq!(code.attempts, 3);
    assert_eq!(mock.requests().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_is_waited_out_for_as_long_as_the_server_asks() {
    let config = MockConfig {
        faults: vec![fault(
            "coder",
            FaultKind::RateLimited {
                retry_after: Duration::from_secs(1),
            },
            Some(1),
        )],
        ..MockConfig::default()
    };
    let (report, mock) = run_single(config, SINGLE).await;
    assert!(report.success);
    let requests = mock.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[1].received - requests[0].received >= Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_cannot_succeed_are_not_retried() {
    let config = MockConfig {
        faults: vec![fault("coder", FaultKind::ContextExceeded, None)],
        ..MockConfig::default()
    };
    let (report, mock) = run_single(config, SINGLE).await;
    let code = result(&report, "code");
    assert!(!code.success);
    assert_eq!(code.attempts, 1);
    assert_eq!(mock.requests().len(), 1);
    let error = code.error.as_deref().unwrap();
    assert!(error.contains("HTTP 400"), "{error}");
    assert!(
        error.contains("exceeds the available context size"),
        "{error}"
    );
    assert_eq!(report.metadata.errors["code"], error);
    assert!(!report.success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_answers_fail_with_a_precise_message_after_the_retries() {
    let cases = [
        (FaultKind::MalformedJson, "is not a chat completion"),
        (FaultKind::TruncatedStream, "broke off"),
        (FaultKind::CloseConnection, "broke off"),
        (FaultKind::Status(500), "HTTP 500"),
    ];
    for (kind, expected) in cases {
        let config = MockConfig {
            faults: vec![fault("coder", kind.clone(), None)],
            ..MockConfig::default()
        };
        for stream in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let program = program(dir.path(), SINGLE);
            let mock = MockServer::start(config.clone()).await.unwrap();
            let mut setup = Setup::new(&program, &mock);
            setup.stream = stream;
            let report = setup.run().await;
            let code = result(&report, "code");
            let error = code.error.as_deref().unwrap_or_default();
            assert!(
                error.contains(expected) && error.contains("after 3 attempts"),
                "{kind:?} (stream {stream}): {error}"
            );
            assert_eq!(code.attempts, 3, "{kind:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_does_not_answer_in_time_is_given_up_on() {
    let config = MockConfig {
        faults: vec![fault(
            "coder",
            FaultKind::Delay(Duration::from_secs(10)),
            None,
        )],
        ..MockConfig::default()
    };
    let source = SINGLE.replace("retries = 2", "retries = 0 timeout = 1s");
    let started = Instant::now();
    let (report, _mock) = run_single(config, &source).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let error = result(&report, "code").error.clone().unwrap();
    assert!(error.contains("did not answer within 1s"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_agent_hands_the_task_to_its_fallback() {
    let source = r#"
agent Billing { model = "billing" }
agent Claims { model = "claims" fallback = Billing }
workflow claim {
  task submit -> Claims { prompt = "prepare the claim" retries = 1 }
}
"#;
    let config = MockConfig {
        faults: vec![fault("claims", FaultKind::Status(502), None)],
        ..MockConfig::default()
    };
    let (report, mock) = run_single(config, source).await;
    let submit = result(&report, "submit");
    assert!(submit.success, "{submit:?}");
    assert_eq!(submit.agent_type, "Billing");
    assert_eq!(submit.model, "billing");
    assert_eq!(submit.attempts, 3);
    let models: Vec<String> = mock.requests().into_iter().map(|r| r.model).collect();
    assert_eq!(models, ["claims", "claims", "billing"]);
    assert!(report.aggregated_content.contains("Mock billing response"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_skips_its_dependents_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let program = program(
        dir.path(),
        r#"
agent Broken { model = "broken" }
agent Fine { model = "fine" }
workflow partial {
  task necessity -> Broken { prompt = "assess" retries = 0 }
  task claim -> Fine { prompt = "claim on {{ necessity }}" }
  task letter -> Fine { prompt = "letter for {{ claim }}" }
  task codes -> Fine { prompt = "codes" }
  output = """
    {% if claim.ok %}{{ claim }}{% else %}No claim: {{ claim.error }}{% endif %}
    {{ codes }}
  """
}
"#,
    );
    let config = MockConfig {
        faults: vec![fault("broken", FaultKind::Status(401), None)],
        ..MockConfig::default()
    };
    let mock = MockServer::start(config).await.unwrap();
    let report = Setup::new(&program, &mock).run().await;
    assert!(!report.success);
    let status = |task: &str| result(&report, task).status.clone();
    assert_eq!(status("necessity"), "failed");
    assert_eq!(status("claim"), "skipped");
    assert_eq!(status("letter"), "skipped");
    assert_eq!(status("codes"), "ok");
    assert_eq!(
        result(&report, "claim").error.as_deref(),
        Some("`necessity` failed")
    );
    assert_eq!(
        result(&report, "letter").error.as_deref(),
        Some("`claim` was skipped")
    );
    assert_eq!(report.metadata.errors.len(), 3);
    let mut prompts: Vec<String> = mock.requests().into_iter().map(|r| r.prompt).collect();
    prompts.sort();
    assert_eq!(
        prompts,
        ["assess", "codes"],
        "the skipped tasks send nothing"
    );
    assert!(
        report
            .aggregated_content
            .starts_with("No claim: `necessity` failed\nMock fine response"),
        "{}",
        report.aggregated_content
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_and_answers_are_never_evaluated_as_templates() {
    let dir = tempfile::tempdir().unwrap();
    let program = program(
        dir.path(),
        r#"
agent A { model = "a" }
workflow injection {
  input note: text
  task first -> A { prompt = "Note: {{ note }}" }
  task second -> A { prompt = "Earlier: {{ first }}" }
  output = "{{ note }} | {{ second }}"
}
"#,
    );
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let hostile = "{{ 7 * 7 }} {% for x in range(3) %}loop{% endfor %} {{ first.model }}";
    let report = Setup::new(&program, &mock)
        .inputs(serde_json::json!({ "note": hostile }))
        .run()
        .await;
    assert!(report.success);
    let requests = mock.requests();
    assert_eq!(requests[0].prompt, format!("Note: {hostile}"));
    assert!(report.aggregated_content.starts_with(hostile));
    assert!(!report.aggregated_content.contains("49"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_keeps_finished_work_and_a_resumed_run_asks_only_for_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let program = program(
        dir.path(),
        r#"
agent A { model = "a" }
workflow chain {
  task necessity -> A { prompt = "assess necessity" }
  task codes -> A { prompt = "list codes" }
  task claim -> A { prompt = "CLAIM for {{ necessity }} with {{ codes }}" retries = 0 }
}
"#,
    );
    let run_dir = dir.path().join("run");
    let broken = MockConfig {
        faults: vec![Fault {
            model: None,
            prompt_contains: Some("CLAIM".into()),
            times: None,
            kind: FaultKind::Status(500),
        }],
        ..MockConfig::default()
    };
    let mock = MockServer::start(broken).await.unwrap();
    let mut setup = Setup::new(&program, &mock);
    setup.run_dir = Some(run_dir.clone());
    let first = setup.run().await;
    assert_eq!(result(&first, "claim").status, "failed");

    let journaled = Journal::read(&run_dir).unwrap();
    let finished: Vec<(&str, bool)> = journaled
        .iter()
        .map(|r| (r.task.as_str(), r.is_ok()))
        .collect();
    assert_eq!(finished.len(), 3);
    assert!(finished.contains(&("necessity", true)));
    assert!(finished.contains(&("codes", true)));
    assert!(finished.contains(&("claim", false)));

    let healthy = MockServer::start(MockConfig::default()).await.unwrap();
    let mut resumed = Setup::new(&program, &healthy);
    resumed.run_dir = Some(run_dir);
    let second = resumed.run().await;
    assert!(second.success, "{second:#?}");
    let prompts: Vec<String> = healthy.requests().into_iter().map(|r| r.prompt).collect();
    assert_eq!(
        prompts.len(),
        1,
        "only the claim is asked again: {prompts:?}"
    );
    assert!(prompts[0].starts_with("CLAIM for Mock a response"));
    assert!(result(&second, "necessity").replayed);
    assert!(!result(&second, "claim").replayed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_answers_identical_requests() {
    let dir = tempfile::tempdir().unwrap();
    let program = program(dir.path(), SINGLE);
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let mut setup = Setup::new(&program, &mock);
    setup.cache = Some(dir.path().join("cache"));
    let first = setup.run().await;
    let second = setup.run().await;
    assert_eq!(mock.requests().len(), 1);
    assert!(result(&second, "code").replayed);
    assert_eq!(first.aggregated_content, second.aggregated_content);
}

/// A router file that serves agent `Coder` under `model`.
fn serving(mock: &MockServer, model: &str) -> wfc::router::RouterConfig {
    let text = format!(
        "[[agents.Coder.endpoints]]\nurl = \"{}\"\nmodel = \"{model}\"\n",
        mock.base_url()
    );
    wfc::router::RouterConfig::parse(std::path::Path::new("wfc.toml"), &text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_keys_on_the_model_actually_asked() {
    let dir = tempfile::tempdir().unwrap();
    let program = program(dir.path(), SINGLE);
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let mut setup = Setup::new(&program, &mock);
    setup.cache = Some(dir.path().join("cache"));
    setup.routes = serving(&mock, "coder-v1");
    let first = setup.run().await;
    assert_eq!(result(&first, "code").model, "coder-v1");
    setup.routes = serving(&mock, "coder-v2");
    let second = setup.run().await;
    assert!(
        !result(&second, "code").replayed,
        "another model's answer is not reused"
    );
    assert_eq!(mock.requests().len(), 2);
    assert_eq!(mock.requests()[1].model, "coder-v2");
    let third = setup.run().await;
    assert!(result(&third, "code").replayed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_task_reports_the_served_model_and_the_tokens_it_spent() {
    let dir = tempfile::tempdir().unwrap();
    let program = program(
        dir.path(),
        r#"
agent Coder { model = "declared" }
workflow single {
  task code -> Coder { prompt = "code this" output = json { icd10: text } retries = 2 }
}
"#,
    );
    let always = MockConfig {
        faults: vec![fault("coder-v1", FaultKind::WrongShape, None)],
        ..MockConfig::default()
    };
    let mock = MockServer::start(always).await.unwrap();
    let mut setup = Setup::new(&program, &mock);
    setup.routes = serving(&mock, "coder-v1");
    let report = setup.run().await;
    let code = result(&report, "code");
    assert_eq!(code.status, "failed");
    assert_eq!(code.model, "coder-v1");
    assert_eq!(code.attempts, 3);
    assert_eq!(code.tokens, 9, "three wrong answers of three tokens each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_spread_over_endpoints_and_avoid_a_dead_one() {
    let dir = tempfile::tempdir().unwrap();
    let tasks: String = (0..6)
        .map(|i| format!("  task t{i} -> A {{ prompt = \"job {i}\" }}\n"))
        .collect();
    let program = program(
        dir.path(),
        &format!("agent A {{ model = \"a\" }}\nworkflow wide {{\n{tasks}}}\n"),
    );
    let first = MockServer::start(latency(&[("a", 100)])).await.unwrap();
    let second = MockServer::start(latency(&[("a", 100)])).await.unwrap();
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/v1", listener.local_addr().unwrap())
    };
    let routes = |urls: &[String]| {
        let mut config = wfc::router::RouterConfig::default();
        config.apply_overrides(&["A"], |_| Some(urls.join(",")));
        config
    };

    let mut setup = Setup::new(&program, &first);
    setup.routes = routes(&[first.base_url(), second.base_url()]);
    assert!(setup.run().await.success);
    assert_eq!(first.requests().len(), 3);
    assert_eq!(second.requests().len(), 3);

    setup.routes = routes(&[dead, second.base_url()]);
    let report = setup.run().await;
    assert!(report.success, "{report:#?}");
    assert_eq!(second.requests().len(), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_routed_to_one_server_share_its_limit_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let tasks: String = (0..4)
        .map(|i| {
            format!(
                "  task bill{i} -> Billing {{ prompt = \"bill {i}\" }}\n  task claim{i} -> Claims {{ prompt = \"claim {i}\" }}\n"
            )
        })
        .collect();
    let program = program(
        dir.path(),
        &format!(
            "agent Billing {{ model = \"billing\" }}\nagent Claims {{ model = \"claims\" }}\nworkflow wide {{\n{tasks}}}\n"
        ),
    );
    let mock = MockServer::start(latency(&[("billing", 40), ("claims", 40)]))
        .await
        .unwrap();
    // The seed's deployment: Billing and Claims on one server.
    let text = format!(
        "[[agents.Billing.endpoints]]\nurl = \"{0}\"\nmax_concurrency = 2\n[[agents.Claims.endpoints]]\nurl = \"{0}\"\nmax_concurrency = 2\n",
        mock.base_url()
    );
    let mut setup = Setup::new(&program, &mock);
    setup.routes =
        wfc::router::RouterConfig::parse(std::path::Path::new("wfc.toml"), &text).unwrap();
    let report = setup.run().await;
    assert!(report.success, "{report:#?}");
    assert_eq!(mock.requests().len(), 8);
    assert_eq!(
        mock.peak_in_flight(),
        2,
        "the server's limit holds for both agents together"
    );

    // Two runs at once on one process's executor (as `wfc serve` runs them).
    let http = setup.executor();
    let cancel = tokio_util::sync::CancellationToken::new();
    let (first, second) = tokio::join!(setup.run_on(&http, &cancel), setup.run_on(&http, &cancel));
    assert!(first.success && second.success);
    assert_eq!(mock.requests().len(), 24);
    assert_eq!(mock.peak_in_flight(), 2, "and across runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_tasks_keep_to_one_replica_while_it_has_room_and_reuse_its_cache() {
    let dir = tempfile::tempdir().unwrap();
    let program = program(
        dir.path(),
        r#"
agent Clinical { model = "clinical" }
workflow chart {
  input record: text
  task summary -> Clinical { prompt = "{{ record }} Summarise this." }
  task meds -> Clinical { prompt = "{{ record }} List the medications." }
  task plan -> Clinical { prompt = "{{ record }} Plan the follow-up, given {{ summary }}" }
}
workflow wide {
  input record: text
  task a -> Clinical { prompt = "{{ record }} One." }
  task b -> Clinical { prompt = "{{ record }} Two." }
  task c -> Clinical { prompt = "{{ record }} Three." }
}
"#,
    );
    let first = MockServer::start(latency(&[("clinical", 40)]))
        .await
        .unwrap();
    let second = MockServer::start(latency(&[("clinical", 40)]))
        .await
        .unwrap();
    let text = format!(
        "[[agents.Clinical.endpoints]]\nurl = \"{}\"\nmax_concurrency = 2\n[[agents.Clinical.endpoints]]\nurl = \"{}\"\nmax_concurrency = 2\n",
        first.base_url(),
        second.base_url()
    );
    let record =
        "Patient of 71 admitted with community acquired pneumonia, treated with amoxicillin";
    let mut setup = Setup::new(&program, &first).inputs(serde_json::json!({ "record": record }));
    setup.routes =
        wfc::router::RouterConfig::parse(std::path::Path::new("wfc.toml"), &text).unwrap();

    // Two at a time at most: both slots of one replica hold them.
    let report = setup.run().await;
    assert!(report.success, "{report:#?}");
    let counts = (first.requests().len(), second.requests().len());
    assert!(
        counts == (3, 0) || counts == (0, 3),
        "every task on the run's own replica: {counts:?}"
    );
    // The prompts begin alike (the record's 11 words);
    // after the first, the server serves that much from its cache.
    let cached: Vec<Option<u32>> = ["summary", "meds", "plan"]
        .iter()
        .map(|task| result(&report, task).cached_tokens)
        .collect();
    assert_eq!(
        cached.iter().filter(|c| **c == Some(11)).count(),
        2,
        "{cached:?}"
    );
    assert_eq!(report.metadata.cached_prompt_tokens, 22);
    assert!(report.metadata.prompt_tokens > 22);

    // Three at once: the run's replica takes two, the other the third.
    let wide = Setup::for_workflow(&program, &program.workflows[1], &first)
        .inputs(serde_json::json!({ "record": record }));
    let wide = Setup {
        routes: setup.routes.clone(),
        ..wide
    };
    let report = wide.run().await;
    assert!(report.success, "{report:#?}");
    let mut added = [
        first.requests().len() - counts.0,
        second.requests().len() - counts.1,
    ];
    added.sort_unstable();
    assert_eq!(
        added,
        [1, 2],
        "two on the run's replica while it has room, the third on the other"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_keeps_what_finished_and_accounts_for_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let program = program(
        dir.path(),
        r#"
agent Fast { model = "fast" }
agent Slow { model = "slow" }
workflow long {
  task quick -> Fast { prompt = "quick" }
  task slow -> Slow { prompt = "slow" }
  task later -> Fast { prompt = "after {{ slow }}" }
}
"#,
    );
    let mock = MockServer::start(latency(&[("fast", 10), ("slow", 5000)]))
        .await
        .unwrap();
    let run_dir = dir.path().join("run");
    let mut setup = Setup::new(&program, &mock);
    setup.run_dir = Some(run_dir.clone());
    let cancel = tokio_util::sync::CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let report = setup.run_until(&cancel).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(report.metadata.interrupted);
    assert!(!report.success);
    assert_eq!(result(&report, "quick").status, "ok");
    assert_eq!(result(&report, "slow").status, "failed");
    assert_eq!(result(&report, "later").status, "skipped");
    let journaled = Journal::read(&run_dir).unwrap();
    assert!(journaled.iter().any(|r| r.task == "quick" && r.is_ok()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_is_scored_against_its_tasks_expectations() {
    let dir = tempfile::tempdir().unwrap();
    let program = program(
        dir.path(),
        r#"
agent A { model = "a" }
workflow scored {
  task summary -> A {
    prompt = "Write:\n## Hospital Course\n## Discharge Medications"
    expect heading "Hospital Course"
    expect heading "Discharge Medications"
    expect contains "aspirin"
    expect min_length 20
  }
  task codes -> A {
    prompt = "List codes"
    max_tokens = 3
    expect min_length 1
  }
}
"#,
    );
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let report = Setup::new(&program, &mock).run().await;
    let summary = result(&report, "summary").quality.clone().unwrap();
    assert_eq!(summary.score, 0.75);
    assert_eq!(summary.failed, [r#"contains "aspirin""#]);
    let codes = result(&report, "codes").quality.clone().unwrap();
    assert!(result(&report, "codes").truncated);
    assert_eq!(codes.score, 0.0);
    assert_eq!(codes.failed, ["max_tokens cut the answer off"]);
    assert_eq!(report.quality_score, 0.38);
}

const TYPED: &str = r#"
agent MedicalQA { model = "qa" }
agent Claims { model = "claims" }
workflow prior_auth {
  task necessity -> MedicalQA {
    prompt = "Decide whether an MRI is supported."
    retries = 1
    output = json {
      decision: one_of("supported", "not_supported"),
      reasons: list<text>,
      urgent: bool,
    }
  }
  task claim -> Claims {
    prompt = "Decision {{ necessity.decision }}; urgent {{ necessity.urgent }}; first reason {{ necessity.reasons[0] }}"
  }
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_answers_are_asked_for_by_schema_and_read_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let program = program(dir.path(), TYPED);
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let report = Setup::new(&program, &mock).run().await;
    assert!(report.success, "{report:#?}");
    let requests = mock.requests();
    let claim = requests.iter().find(|r| r.model == "claims").unwrap();
    assert_eq!(
        claim.prompt,
        "Decision supported; urgent true; first reason Mock qa reasons"
    );
    let necessity = &report.aggregated_content;
    assert!(
        necessity
            .contains(r#"{"decision":"supported","reasons":["Mock qa reasons"],"urgent":true}"#),
        "{necessity}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_of_the_wrong_shape_is_corrected_then_accepted_or_failed_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let program = program(dir.path(), TYPED);
    let once = MockConfig {
        faults: vec![fault("qa", FaultKind::WrongShape, Some(1))],
        ..MockConfig::default()
    };
    let mock = MockServer::start(once).await.unwrap();
    let report = Setup::new(&program, &mock).run().await;
    assert!(report.success, "{report:#?}");
    assert_eq!(result(&report, "necessity").attempts, 2);
    let asked: Vec<String> = mock
        .requests()
        .into_iter()
        .filter(|r| r.model == "qa")
        .map(|r| r.prompt)
        .collect();
    assert_eq!(asked.len(), 2);
    assert!(
        asked[1].starts_with("That answer does not match the required JSON shape: field `decision`: a JSON null was given."),
        "the correction names the mismatch: {}",
        asked[1]
    );

    let always = MockConfig {
        faults: vec![fault("qa", FaultKind::WrongShape, None)],
        ..MockConfig::default()
    };
    let mock = MockServer::start(always).await.unwrap();
    let report = Setup::new(&program, &mock).run().await;
    let necessity = result(&report, "necessity");
    assert_eq!(necessity.status, "failed");
    assert_eq!(
        necessity.error.as_deref(),
        Some(
            "the answer does not match the declared output: field `decision`: a JSON null was given (after 2 attempts)"
        )
    );
    assert_eq!(result(&report, "claim").status, "skipped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_false_condition_skips_a_task_and_an_optional_dependency_does_not_block() {
    let dir = tempfile::tempdir().unwrap();
    let program = program(
        dir.path(),
        r#"
agent A { model = "a" }
agent Broken { model = "broken" }
workflow triage {
  input age: number
  task assessment -> A {
    prompt = "Assess"
    output = json { urgent: bool }
  }
  task escalation -> A {
    when = "not assessment.urgent or age > 80"
    prompt = "Escalate"
  }
  task after_escalation -> A { prompt = "Follow {{ escalation }}" }
  task lab_review -> Broken { prompt = "Labs" retries = 0 }
  task plan -> A {
    after = [lab_review?]
    prompt = "Plan. {% if lab_review.ok %}Labs: {{ lab_review }}{% else %}No lab review ({{ lab_review.error }}).{% endif %}"
  }
  output = "{{ plan }}"
}
"#,
    );
    let config = MockConfig {
        faults: vec![fault("broken", FaultKind::Status(500), None)],
        ..MockConfig::default()
    };
    let mock = MockServer::start(config).await.unwrap();
    let report = Setup::new(&program, &mock)
        .inputs(serde_json::json!({ "age": 64 }))
        .run()
        .await;
    let escalation = result(&report, "escalation");
    assert_eq!(escalation.status, "skipped");
    assert_eq!(
        escalation.error.as_deref(),
        Some("its condition `not assessment.urgent or age > 80` is false")
    );
    assert_eq!(result(&report, "after_escalation").status, "skipped");
    assert_eq!(result(&report, "lab_review").status, "failed");
    assert_eq!(result(&report, "plan").status, "ok");
    let plan = mock
        .requests()
        .into_iter()
        .find(|r| r.prompt.starts_with("Plan."))
        .unwrap();
    assert!(
        plan.prompt.starts_with("Plan. No lab review (") && plan.prompt.contains("HTTP 500"),
        "{}",
        plan.prompt
    );

    let report = Setup::new(&program, &mock)
        .inputs(serde_json::json!({ "age": 85 }))
        .run()
        .await;
    assert_eq!(result(&report, "escalation").status, "ok");
    assert_eq!(result(&report, "after_escalation").status, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_policy_retries_only_the_classes_it_names() {
    let source = r#"
agent Coder { model = "coder" }
workflow single {
  task code -> Coder {
    prompt = "code this"
    retry = { on = [rate_limited], attempts = 3, backoff = "none" }
  }
}
"#;
    let server_error = MockConfig {
        faults: vec![fault("coder", FaultKind::Status(503), None)],
        ..MockConfig::default()
    };
    let (report, mock) = run_single(server_error, source).await;
    assert_eq!(result(&report, "code").attempts, 1, "503 is not in `on`");
    assert_eq!(mock.requests().len(), 1);

    let limited = MockConfig {
        faults: vec![fault(
            "coder",
            FaultKind::RateLimited {
                retry_after: Duration::from_millis(10),
            },
            None,
        )],
        ..MockConfig::default()
    };
    let (report, mock) = run_single(limited, source).await;
    let code = result(&report, "code");
    assert_eq!(code.attempts, 3);
    assert_eq!(mock.requests().len(), 3);
    assert!(code.error.as_deref().unwrap().contains("after 3 attempts"));
}
