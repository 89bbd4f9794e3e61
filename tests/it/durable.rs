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
use wfc::durable::ingress::{Ingress, RunState, Submitted};
use wfc::loader::Loader;
use wfc::mock::{MockConfig, MockServer, RecordedRequest};
use wfc::run::Report;
use wfc::serve::{AuditLog, Auth, Engine, ServeConfig, Server};

use crate::serve::{SECRET, valid_token};
use crate::support::restate::{Restate, free_port, start_worker};
use crate::support::{Ran, Wfc};

pub(crate) fn library() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows")
}

/// A router file sending every agent of the library to `mock`, inside the
/// PHI boundary.
pub(crate) fn router(dir: &Path, mock: &MockServer) -> PathBuf {
    let mut text = String::new();
    for agent in ["Clinical", "MedicalQA", "Billing", "Claims"] {
        text.push_str(&format!(
            "[[agents.{agent}.endpoints]]\nurl = \"{}\"\nphi_allowed = true\n",
            mock.base_url()
        ));
    }
    // The library's corpora, which would otherwise be looked for beside
    // this file.
    let corpora = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/corpora");
    for (corpus, folder) in [
        ("PayerPolicies", "payer_policies"),
        ("Formulary", "formulary"),
    ] {
        text.push_str(&format!(
            "[corpora.{corpus}]\npath = \"{}\"\n",
            corpora.join(folder).display()
        ));
    }
    let path = dir.join("wfc.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A Restate server, the mock model server answering after `latency`, and
/// a router file sending every agent to it.
pub(crate) struct Fleet {
    pub(crate) restate: Restate,
    pub(crate) mock: MockServer,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) router: PathBuf,
}

impl Fleet {
    async fn start(test: &str, latency: Duration) -> Option<Fleet> {
        let config = MockConfig {
            default_latency: latency,
            ..MockConfig::default()
        };
        Fleet::with_mock(test, config).await
    }

    pub(crate) async fn with_mock(test: &str, config: MockConfig) -> Option<Fleet> {
        let restate = Restate::start(test).await?;
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
    let _worker = restate.worker(&[&library()], &router, 0).await;
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
            durable.total_latency_ms > 0.0,
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
async fn a_worker_started_before_its_restate_server_waits_for_it_then_serves() {
    let Some(Fleet {
        mut restate,
        mock,
        dir: _dir,
        router,
    }) = Fleet::start(
        "durable::a_worker_started_before_its_restate_server",
        Duration::from_millis(50),
    )
    .await
    else {
        return;
    };
    restate.stop();
    let admin = restate.admin.clone();
    // Port 0: the worker registers the port the system gave it.
    let worker =
        tokio::spawn(async move { start_worker(&admin, &[&library()], &router, 0, &[]).await });
    tokio::time::sleep(Duration::from_secs(2)).await;
    restate.start_again().await;
    let worker = worker.await.expect("the worker starts");
    let log = worker.log();
    assert!(
        log.contains("waiting for the Restate server: cannot reach the Restate admin API at"),
        "{log}"
    );
    let serving = log
        .lines()
        .find(|line| line.starts_with("worker serving "))
        .expect("the worker says where it serves");
    assert!(
        !serving.contains(":0,") && serving.contains("http://127.0.0.1:"),
        "{serving}"
    );

    let ingress = Ingress::new(&restate.ingress);
    assert_eq!(
        ingress.submit("late-restate", &discharge(1)).await.unwrap(),
        Submitted::Started
    );
    let report = ingress.report("late-restate").await.unwrap();
    assert!(report.success, "{report:#?}");
    assert_eq!(mock.requests().len(), 2, "the worker ran both tasks");
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
    let _worker = restate.worker(&[&library()], &router, 0).await;
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
    let report = ingress.report(run).await.unwrap();
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
        let report = tokio::time::timeout(Duration::from_mins(2), ingress.report(run))
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
    wfc::overlap::most_at_once(
        mock.requests()
            .into_iter()
            .filter(|r| r.model == model)
            .map(|r| (r.received, r.finished.unwrap_or(cut))),
    )
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
    // An answer is surely journaled some time after it was sent.
    let settled = |r: &RecordedRequest| {
        r.finished
            .is_some_and(|f| f + Duration::from_millis(200) < std::time::Instant::now())
    };
    until_the_mock_has(&mock, |requests| {
        let answered = requests.iter().filter(|r| settled(r)).count();
        answered >= 4 && requests.iter().any(|r| r.finished.is_none())
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
    // In flight at the kill, or answered too shortly before it to be
    // surely journaled: these may be sent again.
    let cut_off: Vec<String> = mock
        .requests()
        .into_iter()
        .filter(|r| !answered_before.contains(&r.prompt))
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
            *count == 1 || cut_off.contains(prompt),
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
        // Long enough that no answer is back when the test looks, even on
        // a loaded machine.
        Duration::from_secs(2),
    )
    .await
    else {
        return;
    };
    let _worker = restate.worker(&[&library()], &router, 0).await;
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

/// A `wfc serve` on the durable engine of `restate`: no model servers of
/// its own, its audit log at `audit`.
pub(crate) async fn serve_on(restate: &Restate, audit: &Path, deadline: Duration) -> Server {
    Server::start(ServeConfig {
        sources: vec![library()],
        engine: Engine::Durable(Ingress::new(&restate.ingress)),
        listen: "127.0.0.1:0".parse().unwrap(),
        auth: Auth::shared_secret(SECRET, "wfc", None),
        rate_limit: None,
        max_runs: 64,
        deadline,
        max_body: 1 << 20,
        audit: AuditLog::to_file(audit).unwrap(),
        runs_dir: None,
        shutdown_grace: Duration::from_secs(5),
        client_timeout: Duration::from_secs(10),
    })
    .await
    .unwrap()
}

fn example(name: &str) -> Value {
    let text = std::fs::read_to_string(library().join(format!("examples/{name}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// An HTTP client of one serve instance, as one caller.
pub(crate) struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    pub(crate) fn of(server: &Server, caller: &str) -> Client {
        Client {
            base: format!("http://{}", server.addr()),
            token: valid_token(caller),
            http: reqwest::Client::new(),
        }
    }

    async fn execute(&self, workflow: &str, run: &str, query: &str) -> reqwest::Response {
        self.execute_with(workflow, run, query, &example(&workflow.replace('-', "_")))
            .await
    }

    pub(crate) async fn execute_with(
        &self,
        workflow: &str,
        run: &str,
        query: &str,
        context: &Value,
    ) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/workflows/{workflow}{query}", self.base))
            .bearer_auth(&self.token)
            .header("Idempotency-Key", run)
            .json(context)
            .send()
            .await
            .unwrap()
    }

    async fn run(&self, method: reqwest::Method, run: &str) -> reqwest::Response {
        self.http
            .request(method, format!("{}/v1/runs/{run}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
    }
}

async fn report_in(response: reqwest::Response, status: u16) -> Report {
    assert_eq!(response.status().as_u16(), status);
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_instances_share_the_durable_engines_runs() {
    let Some(Fleet {
        restate,
        mock,
        dir,
        router,
    }) = Fleet::start(
        "durable::serve_instances_share_the_durable_engines_runs",
        Duration::from_millis(300),
    )
    .await
    else {
        return;
    };
    let _worker = restate.worker(&[&library()], &router, 0).await;
    let first = serve_on(
        &restate,
        &dir.path().join("first.jsonl"),
        Duration::from_mins(1),
    )
    .await;
    let second = serve_on(
        &restate,
        &dir.path().join("second.jsonl"),
        Duration::from_mins(1),
    )
    .await;
    let hasty = serve_on(
        &restate,
        &dir.path().join("hasty.jsonl"),
        Duration::from_millis(100),
    )
    .await;
    let (a, b) = (Client::of(&first, "dr-a"), Client::of(&second, "dr-a"));

    let ready = reqwest::get(format!("{}/readyz", a.base)).await.unwrap();
    assert_eq!(ready.status(), 200, "the workers are registered");

    // A request sent again, to another instance, follows the first run.
    let response = a.execute("discharge-summary", "visit-1", "").await;
    assert_eq!(response.headers()["wfc-run"], "visit-1");
    let report = report_in(response, 200).await;
    assert!(report.success, "{report:#?}");
    let again = report_in(b.execute("discharge-summary", "visit-1", "").await, 200).await;
    assert_eq!(outcome(&again), outcome(&report));
    assert_eq!(
        mock.requests().len(),
        2,
        "one run: two tasks, each asked once"
    );
    let fetched = report_in(b.run(reqwest::Method::GET, "visit-1").await, 200).await;
    assert_eq!(fetched, report, "any instance answers for any run");
    let timeline = b.run(reqwest::Method::GET, "visit-1/timeline.svg").await;
    assert_eq!(timeline.status(), 200);
    assert_eq!(timeline.headers()["content-type"], "image/svg+xml");
    let drawn = timeline.text().await.unwrap();
    assert!(
        drawn.starts_with("<svg") && drawn.contains("workflow discharge_summary"),
        "{drawn}"
    );

    // Runs are the caller's own.
    let stranger = Client::of(&second, "dr-b");
    let hidden = stranger.run(reqwest::Method::GET, "visit-1").await;
    assert_eq!(hidden.status(), 404);
    assert!(hidden.text().await.unwrap().contains("unknown_run"));
    let invalid = b.run(reqwest::Method::GET, "visit%201").await;
    assert_eq!(invalid.status(), 400);

    // Progress as server-sent events, task by task, then the report.
    let streamed = a
        .execute("discharge-summary", "visit-2", "?stream=true")
        .await;
    assert_eq!(streamed.status(), 200);
    let events = streamed.text().await.unwrap();
    for event in ["event: started", "event: finished", "event: report"] {
        assert!(events.contains(event), "{event} in:\n{events}");
    }
    let replayed = reqwest::Client::new()
        .get(format!("{}/v1/runs/visit-2?stream=true", b.base))
        .bearer_auth(&b.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        replayed.matches("event: finished").count(),
        2,
        "a finished run's events, from the first:\n{replayed}"
    );

    // Past the deadline the run is stopped, and ends with what finished.
    let late = Client::of(&hasty, "dr-a");
    let timed_out = report_in(late.execute("dependency_chain", "visit-3", "").await, 504).await;
    assert!(timed_out.metadata.interrupted);
    assert_eq!(
        report_in(a.run(reqwest::Method::GET, "visit-3").await, 200).await,
        timed_out
    );

    // A run stopped from another instance answers its caller with the
    // report of what finished.
    let waiting = tokio::spawn({
        let a = Client::of(&first, "dr-a");
        async move { a.execute("dependency_chain", "visit-4", "").await }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while b.run(reqwest::Method::GET, "visit-4").await.status() != 202 {
        assert!(tokio::time::Instant::now() < deadline, "visit-4 never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stopping = b.run(reqwest::Method::DELETE, "visit-4").await;
    assert_eq!(stopping.status(), 202);
    let stopped = report_in(waiting.await.unwrap(), 200).await;
    assert!(stopped.metadata.interrupted, "{stopped:#?}");
    assert!(stopped.results.iter().any(|r| r.status != "ok"));
    let audit = std::fs::read_to_string(dir.path().join("first.jsonl")).unwrap();
    assert!(audit.contains("\"stopped\""), "{audit}");
    let gone = b.run(reqwest::Method::DELETE, "visit-never").await;
    assert_eq!(gone.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_a_durable_run_and_detach_only_submits() {
    let Some(Fleet {
        restate,
        mock,
        dir,
        router,
    }) = Fleet::start(
        "durable::ctrl_c_stops_a_durable_run",
        Duration::from_millis(400),
    )
    .await
    else {
        return;
    };
    let _worker = restate.worker(&[&library()], &router, 0).await;
    let run = |id: &str, extra: &[&str]| {
        Wfc::new()
            .args(["run", "workflows/dependency_chain.wf", "--inputs"])
            .arg("workflows/examples/dependency_chain.json")
            .args(["--engine", "restate", "--restate", &restate.ingress])
            .args(["--run-id", id, "--run-dir"])
            .arg(dir.path().join(id))
            .args(extra)
    };
    let detached = run("detached", &["--detach"]).run_in_background().await;
    assert_eq!(detached.code, Some(0), "{}", detached.stderr);
    assert_eq!(detached.stdout, "detached\n", "the run's id, for scripts");
    let ingress = Ingress::new(&restate.ingress);
    assert!(ingress.report("detached").await.unwrap().success);
    let asked_before = mock.requests().len();

    let child = run("stopped", &["--json"]).spawn();
    until_the_mock_has(&mock, |requests| requests.len() > asked_before).await;
    crate::run_cli::signal(&child, "INT");
    let ran = tokio::task::spawn_blocking(move || Ran::from(child.wait_with_output().unwrap()))
        .await
        .unwrap();
    assert_eq!(ran.code, Some(130), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("stopping run `stopped`"),
        "{}",
        ran.stderr
    );
    let report: Report = serde_json::from_str(&ran.stdout).unwrap();
    assert!(report.metadata.interrupted, "{report:#?}");
    let RunState::Ended(kept) = ingress.state("stopped").await.unwrap() else {
        panic!("the stopped run has ended")
    };
    assert_eq!(outcome(&kept), outcome(&report));
}

/// One agent taking 4 requests at once, and two workflows on it: routine
/// work, and urgent work of a higher priority.
const TRIAGE: &str = r#"
agent Scribe {
  model = "scribe"
  max_concurrency = 4
}

workflow routine {
  input note: text
  task file_note -> Scribe {
    priority = 1
    prompt = "File this note: {{ note }}"
  }
}

workflow urgent {
  input note: text
  task escalate -> Scribe {
    priority = 9
    prompt = "Escalate this note: {{ note }}"
  }
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_hold_an_agents_slots_and_priorities_across_200_runs() {
    let Some(Fleet {
        restate,
        mock,
        dir,
        router: _,
    }) = Fleet::start(
        "durable::two_workers_hold_an_agents_slots",
        Duration::from_millis(100),
    )
    .await
    else {
        return;
    };
    let file = dir.path().join("triage.wf");
    std::fs::write(&file, TRIAGE).unwrap();
    let router = dir.path().join("triage.toml");
    std::fs::write(
        &router,
        format!(
            "[[agents.Scribe.endpoints]]\nurl = \"{}\"\n",
            mock.base_url()
        ),
    )
    .unwrap();
    let port = free_port();
    let _first = restate.worker(&[&file], &router, port).await;
    let _second = restate.worker(&[&file], &router, port).await;
    let unit = Loader::default().load_unit(&file).unwrap();
    let ingress = Ingress::new(&restate.ingress);
    let submit = |workflow: &'static str, range: std::ops::Range<usize>| {
        let ingress = ingress.clone();
        let runs: Vec<(String, Submission)> = range
            .map(|i| {
                let inputs = serde_json::json!({ "note": format!("note {i}") });
                let Value::Object(inputs) = inputs else {
                    unreachable!()
                };
                (
                    format!("{workflow}-{i}"),
                    Submission::new(&unit, workflow, inputs),
                )
            })
            .collect();
        async move {
            for (run, submission) in &runs {
                ingress.submit(run, submission).await.unwrap();
            }
            runs.into_iter().map(|(run, _)| run).collect::<Vec<_>>()
        }
    };
    // Routine work fills the queue; urgent work of later runs arrives
    // while most of it still waits.
    let mut runs = submit("routine", 0..100).await;
    until_the_mock_has(&mock, |requests| requests.len() >= 8).await;
    runs.extend(submit("urgent", 100..200).await);
    all_succeed(&restate, &runs).await;

    let requests = mock.requests();
    assert_eq!(requests.len(), 200, "each task asked once");
    assert_eq!(
        most_at_once(&mock, "scribe", std::time::Instant::now()),
        4,
        "never more than the agent's 4 slots, across both workers"
    );
    let received = |prefix: &str| -> Vec<std::time::Instant> {
        requests
            .iter()
            .filter(|r| r.prompt.starts_with(prefix))
            .map(|r| r.received)
            .collect()
    };
    let (routine, urgent) = (received("File"), received("Escalate"));
    let first_urgent = *urgent.iter().min().unwrap();
    let last_urgent = *urgent.iter().max().unwrap();
    // Between the first urgent request and the last, only a routine
    // request already granted a slot when the urgent ones queued may start.
    let overtaken = routine
        .iter()
        .filter(|at| **at > first_urgent && **at < last_urgent)
        .count();
    assert!(
        overtaken <= 4,
        "{overtaken} routine requests started while urgent ones waited"
    );
    let waited = routine.iter().filter(|at| **at > last_urgent).count();
    assert!(
        waited >= 20,
        "urgent work overtook queued routine work (only {waited} routine requests came after it)"
    );
}

const PAPERWORK: &str = r#"
agent Billing { model = "billing" }
agent Claims { model = "claims" }

workflow paperwork {
  input note: text
  task bill -> Billing { prompt = "Bill this: {{ note }}" }
  task claim -> Claims { prompt = "Claim this: {{ note }}" }
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_on_one_server_share_its_limit_across_workers() {
    let Some(Fleet {
        restate,
        mock,
        dir,
        router: _,
    }) = Fleet::start(
        "durable::agents_on_one_server_share_its_limit",
        Duration::from_millis(100),
    )
    .await
    else {
        return;
    };
    let file = dir.path().join("paperwork.wf");
    std::fs::write(&file, PAPERWORK).unwrap();
    // The seed's deployment: Billing and Claims on one server of 2 slots.
    let router = dir.path().join("paperwork.toml");
    let routes: String = ["Billing", "Claims"]
        .iter()
        .map(|agent| {
            format!(
                "[[agents.{agent}.endpoints]]\nurl = \"{}\"\nmax_concurrency = 2\n",
                mock.base_url()
            )
        })
        .collect();
    std::fs::write(&router, routes).unwrap();
    let port = free_port();
    let _first = restate.worker(&[&file], &router, port).await;
    let _second = restate.worker(&[&file], &router, port).await;
    let unit = Loader::default().load_unit(&file).unwrap();
    let ingress = Ingress::new(&restate.ingress);
    let mut runs = Vec::new();
    for i in 0..12 {
        let Value::Object(inputs) = serde_json::json!({ "note": format!("note {i}") }) else {
            unreachable!()
        };
        let run = format!("paperwork-{i}");
        ingress
            .submit(&run, &Submission::new(&unit, "paperwork", inputs))
            .await
            .unwrap();
        runs.push(run);
    }
    all_succeed(&restate, &runs).await;
    let requests = mock.requests();
    assert_eq!(requests.len(), 24, "each task asked once");
    assert_eq!(
        mock.peak_in_flight(),
        2,
        "the server's 2 slots hold for both agents, across both workers"
    );
}
