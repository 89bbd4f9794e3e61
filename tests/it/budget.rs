//! Context-window budgets at run time, against the mock model server over
//! real HTTP: a prompt that cannot fit is refused before any request is
//! sent, and an input longer than its `@max_len` is refused at binding.

use crate::support::{Setup, program, result};
use wfc::check::conform::Given;
use wfc::mock::{MockConfig, MockServer};
use wfc::run::inputs::{InputError, bind};

const SUMMARY: &str = r#"
agent Clinical { model = "BioMistral-7B" context_window = 512 }
agent Billing { model = "OpenInsurance-8B" }
workflow discharge {
  input record: text @max_len(4000)
  task summary -> Clinical {
    max_tokens = 128
    retries = 3
    prompt = "Summarise: {{ record }}"
  }
  task codes -> Billing { prompt = "Code: {{ record }}" }
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_over_the_window_is_refused_without_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let program = program(dir.path(), SUMMARY);
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let record = "x".repeat(2_000);
    let report = Setup::new(&program, &mock)
        .inputs(serde_json::json!({ "record": record }))
        .run()
        .await;

    let summary = result(&report, "summary");
    assert_eq!(summary.status, "failed");
    assert_eq!(summary.attempts, 0, "never retried");
    assert_eq!(
        summary.error.as_deref(),
        Some(
            "the prompt of `summary` is about 503 tokens (2,011 characters) and its answer may take 128; Clinical's context window is 512"
        )
    );
    let requests = mock.requests();
    assert_eq!(requests.len(), 1, "only `codes` reached a server");
    assert_eq!(requests[0].model, "OpenInsurance-8B");
    assert_eq!(result(&report, "codes").status, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_that_fits_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let program = program(dir.path(), SUMMARY);
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let report = Setup::new(&program, &mock)
        .inputs(serde_json::json!({ "record": "x".repeat(1_000) }))
        .run()
        .await;
    assert!(report.success, "{report:#?}");
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_window_of_an_endpoint_wins() {
    let dir = tempfile::tempdir().unwrap();
    let program = program(dir.path(), SUMMARY);
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let mut setup =
        Setup::new(&program, &mock).inputs(serde_json::json!({ "record": "x".repeat(1_000) }));
    // Billing declares no window; its server says 256 tokens.
    setup.routes.agents.get_mut("Billing").unwrap().endpoints[0].context_window = Some(256);
    let report = setup.run().await;

    let codes = result(&report, "codes");
    assert_eq!(codes.status, "failed");
    let error = codes.error.as_deref().unwrap();
    assert!(
        error.ends_with("its answer may take 512; Billing's context window is 256"),
        "{error}"
    );
    let requests = mock.requests();
    assert_eq!(requests.len(), 1, "only `summary` reached a server");
    assert_eq!(requests[0].model, "BioMistral-7B");
}

#[test]
fn an_input_over_its_max_len_is_refused_at_binding() {
    let dir = tempfile::tempdir().unwrap();
    let program = program(dir.path(), SUMMARY);
    let workflow = &program.workflows[0];
    let given = |text: String| vec![("record".to_string(), Given::Text(text))];

    let errors = bind(workflow, given("x".repeat(4_001))).unwrap_err();
    assert_eq!(
        errors,
        [InputError::TooLong {
            name: "record".into(),
            length: 4_001,
            limit: 4_000,
        }]
    );
    assert_eq!(
        errors[0].to_string(),
        "input `record` is 4,001 characters long, more than its @max_len(4000)"
    );
    // Characters, not bytes: 4,000 accented letters fit.
    assert!(bind(workflow, given("é".repeat(4_000))).is_ok());
}
