//! Scheduler and client overhead of `wfc run`, against the mock model server
//! running in its own process (so this process's CPU time is the client's
//! alone). Run with `cargo bench --bench run`.
//!
//! 1. The seed's discharge summary (Clinical 1100 ms ∥ Billing 1000 ms):
//!    makespan against the 1100 ms it cannot beat, and the speedup the
//!    report states (sum of task latencies / makespan; at best 2100/1100).
//! 2. A 1,000-task layered DAG of 20 ms tasks over 4 agents, with 8 slots
//!    per agent and with unlimited slots: makespan against a lower bound.
//! 3. Client CPU time per task during the DAG runs, streaming and not.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::dag::Dag;
use common::load;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;
use wfc::check::Program;
use wfc::check::conform::Given;
use wfc::run::inputs::bind;
use wfc::run::{Deployment, Report, Session, agents_used};

const SEED_RUNS: usize = 5;
const DAG_RUNS: usize = 5;

const LAYERS: usize = 20;
const WIDTH: usize = 50;
const AGENTS: usize = 4;
const TASK_MS: u64 = 20;
const SLOTS: usize = 8;

const CLINICAL_MS: u64 = 1100;
const BILLING_MS: u64 = 1000;

// ---------------------------------------------------------------------------
// The mock server, in a child process.

/// `wfc mock-server` in its own process; killed when dropped, panics included.
struct MockProcess {
    child: Child,
    port: u16,
}

impl MockProcess {
    fn start(latencies: &[(String, u64)]) -> MockProcess {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_wfc"));
        command.args(["mock-server", "--port", &port.to_string()]);
        for (model, ms) in latencies {
            command.arg("--latency").arg(format!("{model}={ms}ms"));
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start `wfc mock-server`");
        let server = MockProcess { child, port };
        server.wait_healthy();
        server
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.healthy() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "the mock server on port {} never answered /health",
            self.port
        );
    }

    fn healthy(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let request = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        let mut answer = String::new();
        stream.write_all(request.as_bytes()).is_ok()
            && stream.read_to_string(&mut answer).is_ok()
            && answer.starts_with("HTTP/1.1 200")
    }

    fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    fn cpu(&self) -> Duration {
        cpu_time(&format!("/proc/{}/stat", self.child.id()))
    }
}

impl Drop for MockProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// CPU time, from /proc (user + system, every thread, in clock ticks).

fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100)
}

fn cpu_time(stat: &str) -> Duration {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let per_second = *TICKS.get_or_init(clock_ticks_per_second);
    let text = std::fs::read_to_string(stat).expect("readable /proc stat");
    // Fields 14 (utime) and 15 (stime); the command name (field 2) may hold
    // spaces, so count from the `)` that closes it, after which field 3 starts.
    let fields: Vec<&str> = text[text.rfind(')').expect("a stat line") + 1..]
        .split_whitespace()
        .collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_nanos(ticks * 1_000_000_000 / per_second)
}

fn own_cpu() -> Duration {
    cpu_time("/proc/self/stat")
}

/// The main thread's CPU time alone: `block_on` polls the scheduler, and with it
/// every request future, on this thread.
fn main_thread_cpu() -> Duration {
    cpu_time(&format!("/proc/self/task/{}/stat", std::process::id()))
}

// ---------------------------------------------------------------------------
// Loading and running workflows.

/// One run as `wfc run` wires it: a fresh client and router per run, every
/// agent served by the mock.
async fn run_once(
    program: &Program,
    inputs: &Map<String, Value>,
    base_url: &str,
    stream: bool,
) -> Report {
    let workflow = &program.workflows[0];
    let agents = agents_used(program, workflow);
    let http = Deployment::Everything(base_url.to_string())
        .connect(&agents, stream)
        .expect("a router");
    let report = Session::new(program, workflow, &http)
        .run(inputs, &(), &CancellationToken::new())
        .await
        .expect("the output renders");
    assert!(
        report.success,
        "the run failed: {:?}",
        report.metadata.errors.iter().next()
    );
    report
}

/// The median makespan and the median speedup (sum of task latencies over
/// makespan) of some runs.
fn medians(reports: &[Report]) -> (f64, f64) {
    let speedups = reports
        .iter()
        .map(|r| r.metadata.sequential_time_ms / r.total_latency_ms)
        .collect();
    let makespan = median(reports.iter().map(|r| r.total_latency_ms).collect());
    (makespan, median(speedups))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

struct Row {
    scenario: String,
    makespan_ms: f64,
    bound_ms: u64,
    speedup: f64,
    cpu_per_task: Option<Duration>,
    mock_cpu_per_task: Option<Duration>,
    /// The main thread's CPU time over the runs' wall time.
    main_thread_busy: Option<f64>,
}

// ---------------------------------------------------------------------------
// 1. The seed's discharge summary.

fn seed(runtime: &tokio::runtime::Runtime, base_url: &str) -> Row {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let program = load(&root.join("workflows/discharge_summary.wf"));
    let given = [
        (
            "patient_data",
            "65-year-old man admitted with an acute inferior STEMI; primary PCI with one \
             drug-eluting stent to the RCA. Discharged on aspirin, ticagrelor and atorvastatin.",
        ),
        ("admission_date", "01/01/2026"),
        ("discharge_date", "01/04/2026"),
    ]
    .map(|(name, value)| (name.to_string(), Given::Text(value.to_string())));
    let inputs = bind(&program.workflows[0], given.to_vec()).expect("valid inputs");
    let reports: Vec<Report> = (0..SEED_RUNS)
        .map(|_| runtime.block_on(run_once(&program, &inputs, base_url, true)))
        .collect();
    let (makespan_ms, speedup) = medians(&reports);
    Row {
        scenario: "discharge summary (stream)".into(),
        makespan_ms,
        bound_ms: CLINICAL_MS,
        speedup,
        cpu_per_task: None,
        mock_cpu_per_task: None,
        main_thread_busy: None,
    }
}

// ---------------------------------------------------------------------------
// 2 and 3. The 1,000-task layered DAG.

fn dag(
    runtime: &tokio::runtime::Runtime,
    mock: &MockProcess,
    dir: &Path,
    shape: &Dag,
    slots: Option<usize>,
    stream: bool,
) -> Row {
    let path = dir.join(format!("layered-{}.wf", slots.unwrap_or(0)));
    std::fs::write(&path, shape.source(slots)).expect("write the workflow");
    let program = load(&path);
    let tasks = program.workflows[0].tasks.len();
    let inputs = bind(
        &program.workflows[0],
        vec![("record".into(), Given::Text("Stable overnight.".into()))],
    )
    .expect("valid inputs");
    let base_url = mock.base_url();
    // One run unmeasured, to fault the code in.
    runtime.block_on(run_once(&program, &inputs, &base_url, stream));
    let (cpu_before, mock_before, main_before) = (own_cpu(), mock.cpu(), main_thread_cpu());
    let wall = Instant::now();
    let reports: Vec<Report> = (0..DAG_RUNS)
        .map(|_| runtime.block_on(run_once(&program, &inputs, &base_url, stream)))
        .collect();
    let wall = wall.elapsed();
    let main_cpu = main_thread_cpu().checked_sub(main_before).unwrap();
    let (cpu, mock_cpu) = (
        own_cpu().checked_sub(cpu_before).unwrap(),
        mock.cpu().checked_sub(mock_before).unwrap(),
    );
    let per_task = |total: Duration| total / (DAG_RUNS * tasks) as u32;
    let (makespan_ms, speedup) = medians(&reports);
    let slots_text = slots.map_or("unlimited".to_string(), |n| format!("{n} slots"));
    let mode = if stream { "stream" } else { "whole" };
    Row {
        scenario: format!("{tasks}-task DAG, {slots_text} ({mode})"),
        makespan_ms,
        bound_ms: shape.lower_bound_ms(slots, TASK_MS),
        speedup,
        cpu_per_task: Some(per_task(cpu)),
        mock_cpu_per_task: Some(per_task(mock_cpu)),
        main_thread_busy: Some(main_cpu.as_secs_f64() / wall.as_secs_f64()),
    }
}

// ---------------------------------------------------------------------------

fn main() {
    let started = Instant::now();
    let mut latencies = vec![
        ("BioMistral-7B".to_string(), CLINICAL_MS),
        ("OpenInsurance-8B".to_string(), BILLING_MS),
    ];
    latencies.extend((0..AGENTS).map(|a| (format!("m{a}"), TASK_MS)));
    let mock = MockProcess::start(&latencies);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let dir = tempfile::tempdir().expect("a temp dir");
    let shape = Dag::layered(LAYERS, WIDTH, AGENTS);

    let mut rows = vec![seed(&runtime, &mock.base_url())];
    for slots in [Some(SLOTS), None] {
        for stream in [false, true] {
            rows.push(dag(&runtime, &mock, dir.path(), &shape, slots, stream));
        }
    }

    let micros = |d: Option<Duration>| {
        d.map_or("-".to_string(), |d| format!("{:.1}", d.as_secs_f64() * 1e6))
    };
    println!(
        "{:<34} {:>9} {:>9} {:>7} {:>8} {:>12} {:>12} {:>9}",
        "scenario",
        "makespan",
        "bound",
        "ratio",
        "speedup",
        "CPU/task µs",
        "mock CPU µs",
        "main thr"
    );
    for row in &rows {
        println!(
            "{:<34} {:>7.1}ms {:>7}ms {:>7.3} {:>7.2}x {:>12} {:>12} {:>9}",
            row.scenario,
            row.makespan_ms,
            row.bound_ms,
            row.makespan_ms / row.bound_ms as f64,
            row.speedup,
            micros(row.cpu_per_task),
            micros(row.mock_cpu_per_task),
            row.main_thread_busy
                .map_or("-".to_string(), |busy| format!("{:.0}%", busy * 100.0)),
        );
    }
    println!(
        "\nmedians of {SEED_RUNS} (seed) and {DAG_RUNS} (DAG) runs; CPU/task is this process's \
         user+system time over the DAG runs / tasks, the mock's in its own process; main thr \
         is the share of the DAG runs' wall time the main thread (which polls the scheduler and \
         every request future) was on a CPU; {:.0} s in all",
        started.elapsed().as_secs_f64()
    );
}
