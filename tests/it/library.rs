//! The built-in library (`workflows/`): every workflow's plan, and its run
//! on the mock model server with its example inputs, pinned by snapshots;
//! and the seed's execution patterns, measured on the server's clock (the
//! discharge summary's overlap is in `tests/run.rs`).

use std::path::{Path, PathBuf};

use crate::support::{Setup, latency, library_program};
use wfc::check::{TaskKind, WorkflowDef};
use wfc::mock::{MockConfig, MockServer};

fn library() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "wf"))
        .collect();
    files.sort();
    files
}

fn example_inputs(workflow: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("workflows/examples")
        .join(format!("{workflow}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("every workflow has example inputs: {}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Tasks, edges, waves and critical path, as a person would read them.
fn plan_text(workflow: &WorkflowDef) -> String {
    let name = |task: usize| workflow.tasks[task].name.as_str();
    let mut text = String::from("tasks:\n");
    for task in &workflow.tasks {
        text.push_str(&match task.kind {
            TaskKind::Chat => format!(
                "  {} -> {} (priority {}, max_tokens {})\n",
                task.name, task.agent, task.priority, task.max_tokens
            ),
            TaskKind::Retrieve(_) => format!(
                "  {} from {} (priority {})\n",
                task.name, task.agent, task.priority
            ),
        });
    }
    text.push_str("edges:\n");
    for (from, to, edge) in workflow.plan.edges() {
        text.push_str(&format!(
            "  {} -> {} ({:?})\n",
            name(from),
            name(to),
            edge.kind
        ));
    }
    text.push_str("waves:\n");
    for (depth, wave) in workflow.plan.waves().iter().enumerate() {
        let names: Vec<&str> = wave.iter().map(|&t| name(t)).collect();
        text.push_str(&format!("  {depth}: {}\n", names.join(", ")));
    }
    let cost: Vec<u64> = workflow
        .tasks
        .iter()
        .map(|t| u64::from(t.max_tokens))
        .collect();
    let path: Vec<&str> = workflow
        .plan
        .critical_path(&cost)
        .into_iter()
        .map(name)
        .collect();
    text.push_str(&format!("critical path: {}\n", path.join(" -> ")));
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workflow_plans_and_runs_on_the_mock_server() {
    let mock = MockServer::start(MockConfig::default()).await.unwrap();
    let mut seen = 0;
    for file in library() {
        let program = crate::support::checked(&file);
        for workflow in &program.workflows {
            seen += 1;
            insta::assert_snapshot!(format!("plan@{}", workflow.name), plan_text(workflow));
            let report = Setup::for_workflow(&program, workflow, &mock)
                .inputs(example_inputs(&workflow.name))
                .run()
                .await;
            assert!(report.success, "{}: {report:#?}", workflow.name);
            insta::assert_snapshot!(
                format!("output@{}", workflow.name),
                report.aggregated_content
            );
            insta::assert_json_snapshot!(
                format!("report@{}", workflow.name),
                crate::support::normalised(&report)
            );
        }
    }
    assert!(seen >= 1);
}

/// When each task's request reached the mock server and when its answer
/// was complete, by the task's first prompt line.
struct Timeline(Vec<wfc::mock::RecordedRequest>);

impl Timeline {
    fn of(&self, model: &str) -> Vec<&wfc::mock::RecordedRequest> {
        self.0.iter().filter(|r| r.model == model).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insurance_claim_prepares_the_claim_only_after_the_necessity_assessment() {
    let program = library_program("insurance_claim.wf");
    let mock = MockServer::start(latency(&[("BiMediX2-8B", 200), ("OpenInsurance-8B", 100)]))
        .await
        .unwrap();
    let report = Setup::new(&program, &mock)
        .inputs(example_inputs("insurance_claim"))
        .run()
        .await;
    assert!(report.success);
    let timeline = Timeline(mock.requests());
    let necessity = timeline.of("BiMediX2-8B")[0];
    let claim = timeline.of("OpenInsurance-8B")[0];
    assert!(claim.received >= necessity.finished.unwrap());
    assert!(
        claim
            .prompt
            .contains("Mock BiMediX2-8B text for Medical Necessity Determination"),
        "the claim cites the assessment"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comprehensive_assessment_runs_all_three_agents_at_once() {
    let program = library_program("comprehensive_assessment.wf");
    let mock = MockServer::start(latency(&[
        ("BioMistral-7B", 300),
        ("BiMediX2-8B", 250),
        ("OpenInsurance-8B", 200),
    ]))
    .await
    .unwrap();
    let report = Setup::new(&program, &mock)
        .inputs(example_inputs("comprehensive_assessment"))
        .run()
        .await;
    assert!(report.success);
    let requests = mock.requests();
    assert_eq!(requests.len(), 3);
    let first_answer = requests.iter().filter_map(|r| r.finished).min().unwrap();
    assert!(requests.iter().all(|r| r.received < first_answer));
    assert_eq!(report.metadata.peak_parallelism, 3);
}
