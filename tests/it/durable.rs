//! The durable engine against a real Restate server and real `wfc worker`
//! processes, with the mock model server (in this process) answering: the
//! library gives the same outputs as on the local engine, a run id starts
//! one run however often it is submitted, and runs survive a worker killed
//! mid-run and a restarted Restate server.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use wfc::durable::Submission;
use wfc::durable::ingress::{Ingress, Submitted};
use wfc::loader::Loader;
use wfc::mock::{MockConfig, MockServer, RecordedRequest};
use wfc::run::Report;

use crate::support::restate::{Restate, free_port};
use crate::support::{Ran, Wfc};

fn library() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows")
}

/// A router file sending every agent of the library to `mock`, inside the
/// PHI boundary.
fn router(dir: &Path, mock: &MockServer) -> PathBuf {
    let mut text = String::new();
    for agent in ["Clinical", "MedicalQA", "Billing", "Claims"] {
        text.push_str(&format!(
            "[[agents.{agent}.endpoints]]\nurl = \"{}\"\nphi_allowed = true\n",
            mock.base_url()
        ));
    }
    let path = dir.join("wfc.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A Restate server, the mock model server answering after `latency`, and
/// a router file sending every agent to it.
struct Fleet {
    restate: Restate,
    mock: MockServer,
    dir: tempfile::TempDir,
    router: PathBuf,
}

impl Fleet {
    async fn start(test: &str, latency: Duration) -> Option<Fleet> {
        let restate = Restate::start(test).await?;
        let config = MockConfig {
            default_latency: latency,
            ..MockConfig::default()
        };
        let mock = MockServer::start(config).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let router = router(dir.path(), &mock);
        Some(Fleet {
            restate,
            mock,
            dir,
            router,
        })
    }
}

fn report_of(ran: &Ran) -> Report {
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    serde_json::from_str(&ran.stdout).unwrap_or_else(|err| panic!("{err}: {}", ran.stdout))
}

/// What must not depend on the engine: the output, and each task's
/// outcome, agent, model, answer and tokens.
fn outcome(report: &Report) -> Value {
    let tasks: Vec<Value> = report
        .results
        .iter()
        .map(|r| {
            serde_json::json!([
                r.task_id,
                r.status,
                r.agent_type,
                r.model,
                r.tokens,
                r.error
            ])
        })
        .collect();
    serde_json::json!({
        "output": report.aggregated_content,
        "success": report.success,
        "tasks": tasks,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_library_gives_the_same_outputs_on_restate_as_on_the_local_engine() {
    let Some(Fleet {
        restate,
        mock: _mock,
        dir,
        router,
    }) = Fleet::start(
        "durable::the_library_gives_the_same_outputs",
        Duration::from_millis(5),
    )
    .await
    else {
        return;
    };
    let _worker = restate.worker(&[&library()], &router, free_port()).await;
    let examples = library().join("examples");
    let mut compared = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let inputs = entry.unwrap().path();
        let name = inputs.file_stem().unwrap().to_string_lossy().into_owned();
        let file = library().join(format!("{name}.wf"));
        let run = |engine: &[&str], run_dir: &str| {
            Wfc::new()
                .arg("run")
                .arg(&file)
                .arg("--inputs")
                .arg(&inputs)
                .args(["--json", "--quiet", "--run-dir"])
                .arg(dir.path().join(format!("{name}-{run_dir}")))
                .args(engine)
                .run_in_background()
        };
        let local = report_of(&run(&["--router", router.to_str().unwrap()], "local").await);
        let durable = report_of(
            &run(
                &["--engine", "restate", "--restate", &restate.ingress],
                "restate",
            )
            .await,
        );
        assert_eq!(outcome(&durable), outcome(&local), "{name}");
        assert_eq!(durable.workflow_type, local.workflow_type);
        assert!(
            durable.total_latency_ms > 0,
            "{name}: the wall time is measured"
        );
        compared += 1;
    }
    assert_eq!(
        compared, 10,
        "every workflow of the library with an example"
    );
}

fn submission(name: &str, inputs: Value) -> Submission {
    let file = library().join(format!("{name}.wf"));
    let unit = Loader::default().load_unit(&file).unwrap();
    let Value::Object(inputs) = inputs else {
        panic!("inputs are an object")
    };
    Submission::new(&unit, name, inputs)
}

fn discharge(patient: usize) -> Submission {
    submission(
        "discharge_summary",
        serde_json::json!({
            "patient_data": format!("Patient {patient}: 67-year-old admitted with pneumonia."),
            "admission_date": "2026-11-20",
            "discharge_date": "2026-11-27",
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_id_submitted_twice_starts_one_run_and_any_process_reads_its_report() {
    let Some(Fleet {
        restate,
        mock,
        dir,
        router,
    }) = Fleet::start(
        "durable::a_run_id_submitted_twice",
        Duration::from_millis(50),
    )
    .await
    else {
        return;
    };
    let _worker = restate.worker(&[&library()], &router, free_port()).await;
    let ingress = Ingress::new(&restate.ingress);
    let run = "discharge-once";
    assert_eq!(
        ingress.submit(run, &discharge(1)).await.unwrap(),
        Submitted::Started
    );
    assert_eq!(
        ingress.submit(run, &discharge(1)).await.unwrap(),
        Submitted::AlreadyStarted
    );
    let report = ingress.follow(run, &()).await.unwrap();
    assert!(report.success, "{report:#?}");
    assert_eq!(mock.requests().len(), 2, "two tasks, each asked once");

    // Another process (the CLI, here) follows the same run by its id.
    let ran = Wfc::new()
        .args(["run", "workflows/discharge_summary.wf", "--inputs"])
        .arg("workflows/examples/discharge_summary.json")
        .args(["--engine", "restate", "--restate", &restate.ingress])
        .args(["--run-id", run, "--json", "--run-dir"])
        .arg(dir.path().join("again"))
        .run_in_background()
        .await;
    assert!(
        ran.stderr.contains("already submitted; following"),
        "{}",
        ran.stderr
    );
    assert_eq!(outcome(&report_of(&ran)), outcome(&report));
    assert_eq!(mock.requests().len(), 2, "no task was asked again");
}

/// Waits for each run's report; each run must succeed.
async fn all_succeed(restate: &Restate, runs: &[String]) {
    let ingress = Ingress::new(&restate.ingress);
    for run in runs {
        let report = tokio::time::timeout(Duration::from_mins(2), ingress.follow(run, &()))
            .await
            .unwrap_or_else(|_| {
                panic!("{run} did not finish; the server's log:\n{}", restate.log())
            })
            .unwrap();
        assert!(report.success, "{run}: {report:#?}");
    }
}

/// Waits until the requests the mock server has seen satisfy `condition`.
async fn until_the_mock_has(mock: &MockServer, condition: impl Fn(&[RecordedRequest]) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_mins(1);
    while !condition(&mock.requests()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the runs did not get going"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// How often the mock server was asked each prompt.
fn asked(mock: &MockServer) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for request in mock.requests() {
        *counts.entry(request.prompt).or_default() += 1;
    }
    counts
}

/// The most requests for `model` the mock server was answering at once; a
/// request that never finished was cut off at `cut`.
fn most_at_once(mock: &MockServer, model: &str, cut: std::time::Instant) -> usize {
    let mut changes: Vec<(std::time::Instant, i32)> = Vec::new();
    for request in mock.requests().into_iter().filter(|r| r.model == model) {
        changes.push((request.received, 1));
        changes.push((request.finished.unwrap_or(cut), -1));
    }
    // Ends before starts at the same instant.
    changes.sort();
    let (mut now, mut most) = (0, 0);
    for (_, change) in changes {
        now += change;
        most = most.max(now);
    }
    usize::try_from(most).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_survive_a_worker_killed_mid_run_and_finished_tasks_are_not_asked_again() {
    let Some(Fleet {
        restate,
        mock,
        dir: _dir,
        router,
    }) = Fleet::start(
        "durable::runs_survive_a_worker_killed",
        Duration::from_millis(400),
    )
    .await
    else {
        return;
    };
    let port = free_port();
    let mut first = restate.worker(&[&library()], &router, port).await;
    let ingress = Ingress::new(&restate.ingress);
    let runs: Vec<String> = (0..50).map(|i| format!("survivor-{i}")).collect();
    for (i, run) in runs.iter().enumerate() {
        ingress.submit(run, &discharge(i)).await.unwrap();
    }
    // The second worker shares the first one's address; once some tasks
    // are answered and others are in flight, the first dies, and Restate
    // reconnects to the second.
    let _second = restate.worker(&[&library()], &router, port).await;
    until_the_mock_has(&mock, |requests| {
        let answered = requests.iter().filter(|r| r.finished.is_some()).count();
        answered >= 4 && requests.len() > answered
    })
    .await;
    let killed_at = tokio::time::Instant::now();
    first.kill();
    let answered_before: Vec<String> = mock
        .requests()
        .into_iter()
        .filter(|r| {
            r.finished
                .is_some_and(|f| f + Duration::from_millis(200) < killed_at.into_std())
        })
        .map(|r| r.prompt)
        .collect();
    assert!(
        !answered_before.is_empty(),
        "some tasks had finished before the kill"
    );
    let in_flight: Vec<String> = mock
        .requests()
        .into_iter()
        .filter(|r| r.finished.is_none())
        .map(|r| r.prompt)
        .collect();
    all_succeed(&restate, &runs).await;
    let counts = asked(&mock);
    for prompt in &answered_before {
        assert_eq!(
            counts[prompt], 1,
            "a task answered before the kill was asked again"
        );
    }
    assert_eq!(counts.len(), 100, "every task of every run was asked");
    for (prompt, count) in &counts {
        assert!(
            *count == 1 || in_flight.contains(prompt),
            "only a request the kill cut off is sent again, but this one was sent {count} times: {prompt}"
        );
    }
    // Clinical and Billing take 2 requests at once, across both workers.
    for model in ["BioMistral-7B", "OpenInsurance-8B"] {
        assert_eq!(
            most_at_once(&mock, model, killed_at.into_std()),
            2,
            "{model}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_survive_a_restart_of_the_restate_server() {
    let Some(Fleet {
        mut restate,
        mock,
        dir: _dir,
        router,
    }) = Fleet::start(
        "durable::runs_survive_a_restart",
        Duration::from_millis(500),
    )
    .await
    else {
        return;
    };
    let _worker = restate.worker(&[&library()], &router, free_port()).await;
    let ingress = Ingress::new(&restate.ingress);
    let runs: Vec<String> = (0..10).map(|i| format!("restarted-{i}")).collect();
    for (i, run) in runs.iter().enumerate() {
        ingress.submit(run, &discharge(i)).await.unwrap();
    }
    // Mid-run: requests are out, none is answered yet.
    until_the_mock_has(&mock, |requests| !requests.is_empty()).await;
    assert!(mock.requests().iter().all(|r| r.finished.is_none()));
    restate.restart().await;
    all_succeed(&restate, &runs).await;
}
