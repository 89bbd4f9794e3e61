//! The durable engine (Restate and `wfc worker`s) next to the local one,
//! against the mock model server with 200 ms tasks. Run with
//! `cargo bench --bench durable`; it needs `restate-server` (the
//! `WFC_RESTATE_SERVER` variable, or `.ci/run`'s cache).
//!
//! 1. The discharge summary (Clinical ∥ Billing: one layer of two tasks),
//!    its agents allowed 64 requests at once so that no run waits for a
//!    slot: the latency each run adds to its 200 ms (p50 and p99, with 4
//!    runs at a time, one after another), and runs per second with 200 runs
//!    submitted at once; on the local engine, and on Restate with 1, 2 and 4
//!    workers.
//! 2. A chain of 5 tasks on an agent of 4 slots, one run at a time: the
//!    latency each task adds (from the answer of the task before it to
//!    its own request reaching the model server), on both engines.
//! 3. A 500-task layered DAG (10 layers of 50, 4 agents of 8 slots): the
//!    makespan against its lower bound, on both engines.

#[path = "../tests/it/support/command.rs"]
#[allow(
    dead_code,
    reason = "the tests' runner of `wfc`; the bench uses part of it"
)]
mod command;
mod common;
#[path = "../tests/it/support/restate.rs"]
#[allow(
    dead_code,
    reason = "the tests' Restate fixture; the bench uses part of it"
)]
mod restate;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use command::Wfc;
use common::dag::Dag;
use common::load;
use restate::{Restate, free_port};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;
use wfc::check::Program;
use wfc::durable::Submission;
use wfc::durable::ingress::Ingress;
use wfc::loader::Loader;
use wfc::mock::{MockConfig, MockServer};
use wfc::run::{Deployment, Report, Session, agents_used};

const TASK_MS: u64 = 200;
/// Runs at a time in the latency measurement: few enough that none waits.
const CLIENTS: usize = 4;
const LATENCY_RUNS: usize = 60;
const THROUGHPUT_RUNS: usize = 200;
const WORKERS: [usize; 3] = [1, 2, 4];
const DAG_SLOTS: usize = 8;
const CHAIN: usize = 5;
const CHAIN_RUNS: usize = 20;

/// A chain of tasks, each reading the one before, on an agent of 4 slots.
fn chain_source() -> String {
    let mut text = String::from(
        "agent Scribe {\n  model = \"scribe\"\n  max_concurrency = 4\n}\n\nworkflow chain {\n  input note: text\n",
    );
    for step in 0..CHAIN {
        let before = if step == 0 {
            "{{ note }}".to_string()
        } else {
            format!("{{{{ s{} }}}}", step - 1)
        };
        text.push_str(&format!(
            "  task s{step} -> Scribe {{\n    prompt = \"Step {step}: {before}\"\n  }}\n"
        ));
    }
    text.push_str(&format!("  output = \"{{{{ s{} }}}}\"\n}}\n", CHAIN - 1));
    text
}

/// The latency each chain task added: from the answer before it to its
/// own request, in ms, sorted; the runs go one at a time.
async fn chain_gaps<E: Engine>(engine: &E, mock: &MockServer, round: usize) -> Vec<f64> {
    let mut gaps = Vec::new();
    for run in 0..CHAIN_RUNS {
        let before = mock.requests().len();
        let Value::Object(inputs) = json!({ "note": format!("chain {round}-{run}") }) else {
            unreachable!()
        };
        let report = engine.run(format!("chain-{round}-{run}"), inputs).await;
        assert!(report.success, "the chain failed");
        let requests = mock.requests();
        for pair in requests[before..].windows(2) {
            let answered = pair[0].finished.expect("answered");
            gaps.push(pair[1].received.duration_since(answered).as_secs_f64() * 1e3);
        }
    }
    gaps.sort_by(f64::total_cmp);
    gaps
}

/// The latency each run added, and the throughput.
struct Row {
    engine: String,
    p50_ms: f64,
    p99_ms: f64,
    runs_per_s: f64,
    /// The share of both cores busy (all processes) during the throughput run.
    cpu_busy: f64,
}

/// How a scenario runs one workflow run to its report.
trait Engine: Send + Sync {
    fn run(&self, id: String, inputs: Map<String, Value>) -> impl Future<Output = Report> + Send;
}

/// The local engine, in this process, as `wfc run` wires it.
struct Local {
    program: Arc<Program>,
    mock_url: String,
}

impl Engine for Local {
    async fn run(&self, _id: String, inputs: Map<String, Value>) -> Report {
        let workflow = &self.program.workflows[0];
        let agents = agents_used(&self.program, workflow);
        let http = Deployment::Everything(self.mock_url.clone())
            .connect(&agents, std::path::Path::new("."), false)
            .expect("a router");
        Session::new(&self.program, workflow, &http)
            .run(&inputs, &(), &CancellationToken::new())
            .await
    }
}

/// The durable engine: submitted through Restate's ingress and followed
/// to the report.
struct Durable {
    ingress: Ingress,
    file: PathBuf,
    workflow: String,
}

impl Engine for Durable {
    async fn run(&self, id: String, inputs: Map<String, Value>) -> Report {
        let unit = Loader::default().load_unit(&self.file).expect("readable");
        let submission = Submission::new(&unit, &self.workflow, inputs);
        self.ingress
            .submit(&id, &submission)
            .await
            .expect("submitted");
        self.ingress.report(&id).await.expect("a report")
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// Busy and total jiffies of all CPUs, from `/proc/stat`.
fn cpu_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = fields.iter().sum();
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

fn discharge_inputs(patient: usize) -> Map<String, Value> {
    let Value::Object(inputs) = json!({
        "patient_data": format!("Patient {patient}: 65-year-old man after primary PCI to the RCA."),
        "admission_date": "01/01/2026",
        "discharge_date": "01/04/2026",
    }) else {
        unreachable!()
    };
    inputs
}

/// Added latency with a few runs at a time, then throughput with many.
async fn measure<E: Engine + 'static>(name: String, engine: Arc<E>, round: usize) -> Row {
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let engine = engine.clone();
        clients.push(tokio::spawn(async move {
            let mut added = Vec::new();
            for i in 0..LATENCY_RUNS / CLIENTS {
                let id = format!("latency-{round}-{client}-{i}");
                let started = Instant::now();
                let report = engine.run(id, discharge_inputs(i)).await;
                assert!(report.success, "the run failed");
                added.push(started.elapsed().as_secs_f64() * 1e3 - TASK_MS as f64);
            }
            added
        }));
    }
    let mut added = Vec::new();
    for client in clients {
        added.extend(client.await.expect("a client"));
    }
    added.sort_by(f64::total_cmp);

    let (busy_before, total_before) = cpu_jiffies();
    let started = Instant::now();
    let runs: Vec<_> = (0..THROUGHPUT_RUNS)
        .map(|i| {
            let engine = engine.clone();
            tokio::spawn(async move {
                let report = engine
                    .run(format!("throughput-{round}-{i}"), discharge_inputs(i))
                    .await;
                assert!(report.success, "the run failed");
            })
        })
        .collect();
    for run in runs {
        run.await.expect("a run");
    }
    let wall = started.elapsed().as_secs_f64();
    let (busy_after, total_after) = cpu_jiffies();
    Row {
        engine: name,
        p50_ms: percentile(&added, 0.5),
        p99_ms: percentile(&added, 0.99),
        runs_per_s: THROUGHPUT_RUNS as f64 / wall,
        cpu_busy: (busy_after - busy_before) as f64 / (total_after - total_before).max(1) as f64,
    }
}

/// The library's discharge summary, its agents allowed 64 requests at once.
fn roomy_discharge(dir: &Path) -> PathBuf {
    let library = Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows");
    let agents = std::fs::read_to_string(library.join("agents.wf")).expect("agents.wf");
    std::fs::write(
        dir.join("agents.wf"),
        agents.replace("max_concurrency = 2", "max_concurrency = 64"),
    )
    .expect("write agents.wf");
    let file = dir.join("discharge_summary.wf");
    std::fs::copy(library.join("discharge_summary.wf"), &file).expect("copy the workflow");
    file
}

fn router(dir: &Path, mock: &MockServer, agents: &[String]) -> PathBuf {
    let mut text = String::new();
    for agent in agents {
        text.push_str(&format!(
            "[[agents.{agent}.endpoints]]\nurl = \"{}\"\nphi_allowed = true\n",
            mock.base_url()
        ));
    }
    let path = dir.join("wfc.toml");
    std::fs::write(&path, text).expect("write the router file");
    path
}

/// The DAG's makespan on an engine, from submission to report.
async fn dag_makespan<E: Engine>(engine: &E, id: &str) -> u64 {
    let Value::Object(inputs) = json!({ "record": "Stable overnight." }) else {
        unreachable!()
    };
    let started = Instant::now();
    let report = engine.run(id.to_string(), inputs).await;
    assert!(report.success, "the DAG failed");
    started.elapsed().as_millis() as u64
}

async fn bench() {
    let began = Instant::now();
    let Some(restate) = Restate::start("the durable benchmark").await else {
        eprintln!(
            "the durable benchmark needs restate-server; run `.ci/run` once or set WFC_RESTATE_SERVER"
        );
        std::process::exit(2);
    };
    let mock = MockServer::start(MockConfig {
        default_latency: Duration::from_millis(TASK_MS),
        ..MockConfig::default()
    })
    .await
    .expect("the mock server");
    let dir = tempfile::tempdir().expect("a temp dir");
    let discharge = roomy_discharge(dir.path());
    let shape = Dag::layered(10, 50, 4);
    let layered = dir.path().join("layered.wf");
    std::fs::write(&layered, shape.source(Some(DAG_SLOTS), "m")).expect("write the DAG");
    let agents: Vec<String> = [
        "Clinical",
        "MedicalQA",
        "Billing",
        "Claims",
        "Scribe",
        "A0",
        "A1",
        "A2",
        "A3",
    ]
    .map(String::from)
    .to_vec();
    let router = router(dir.path(), &mock, &agents);

    let local = Arc::new(Local {
        program: Arc::new(load(&discharge)),
        mock_url: mock.base_url(),
    });
    let chain = dir.path().join("chain.wf");
    std::fs::write(&chain, chain_source()).expect("write the chain");
    let mut chains = vec![(
        "local".to_string(),
        chain_gaps(
            &Local {
                program: Arc::new(load(&chain)),
                mock_url: mock.base_url(),
            },
            &mock,
            0,
        )
        .await,
    )];
    let mut rows = vec![measure("local".into(), local, 0).await];
    let dag_local = dag_makespan(
        &Local {
            program: Arc::new(load(&layered)),
            mock_url: mock.base_url(),
        },
        "dag-local",
    )
    .await;

    let mut dag_durable = 0;
    for (round, workers) in WORKERS.into_iter().enumerate() {
        let port = free_port();
        let mut fleet = Vec::new();
        for _ in 0..workers {
            fleet.push(
                restate
                    .worker_with(&[dir.path()], &router, port, &[("WFC_LOG", "error")])
                    .await,
            );
        }
        let durable = Arc::new(Durable {
            ingress: Ingress::new(&restate.ingress),
            file: discharge.clone(),
            workflow: "discharge_summary".into(),
        });
        let name = format!(
            "restate, {workers} worker{}",
            if workers == 1 { "" } else { "s" }
        );
        // The first runs on a new deployment open its connections.
        for warm_up in 0..CLIENTS {
            durable
                .run(
                    format!("warm-up-{round}-{warm_up}"),
                    discharge_inputs(warm_up),
                )
                .await;
        }
        rows.push(measure(name.clone(), durable, round + 1).await);
        let engine = Durable {
            ingress: Ingress::new(&restate.ingress),
            file: chain.clone(),
            workflow: "chain".into(),
        };
        chains.push((name, chain_gaps(&engine, &mock, round + 1).await));
        if workers == 2 {
            let engine = Durable {
                ingress: Ingress::new(&restate.ingress),
                file: layered.clone(),
                workflow: "layered".into(),
            };
            dag_durable = dag_makespan(&engine, "dag-restate").await;
        }
    }

    println!(
        "discharge summary, {TASK_MS} ms tasks (added latency per run: wall − {TASK_MS} ms, {CLIENTS} runs at a time; throughput: {THROUGHPUT_RUNS} runs at once)"
    );
    println!(
        "{:<20} {:>10} {:>10} {:>10} {:>10}",
        "engine", "added p50", "added p99", "runs/s", "CPU busy"
    );
    for row in &rows {
        println!(
            "{:<20} {:>8.1}ms {:>8.1}ms {:>10.1} {:>9.0}%",
            row.engine,
            row.p50_ms,
            row.p99_ms,
            row.runs_per_s,
            row.cpu_busy * 100.0
        );
    }
    println!(
        "\n{CHAIN}-task chain, one run at a time: latency added per task (its request − the answer before it), {CHAIN_RUNS} runs"
    );
    for (engine, gaps) in &chains {
        println!(
            "{engine:<20} p50 {:>6.1} ms   p99 {:>6.1} ms",
            percentile(gaps, 0.5),
            percentile(gaps, 0.99)
        );
    }
    let bound = shape.lower_bound_ms(Some(DAG_SLOTS), TASK_MS);
    println!(
        "\n500-task layered DAG, {DAG_SLOTS} slots per agent, {TASK_MS} ms tasks: lower bound {bound} ms"
    );
    for (engine, makespan) in [("local", dag_local), ("restate, 2 workers", dag_durable)] {
        println!(
            "{engine:<20} makespan {makespan:>6} ms, {:.3}x the bound",
            makespan as f64 / bound as f64
        );
    }
    println!("\n{:.0} s in all", began.elapsed().as_secs_f64());
}

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(bench());
}
