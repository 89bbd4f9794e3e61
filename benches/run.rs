//! Scheduler and client overhead of `wfc run`, against the mock model server
//! running in its own process (so this process's CPU time is the client's
//! alone). Run with `cargo bench --bench run`.
//!
//! 1. The seed's discharge summary (Clinical 1100 ms ∥ Billing 1000 ms):
//!    makespan against the 1100 ms it cannot beat, and the speedup the
//!    report states (sum of task latencies / makespan; at best 2100/1100).
//! 2. Workloads at scale, each answered whole and streamed: makespan over a
//!    lower bound, this process's and the mock's CPU per task, this
//!    process's peak RSS during the runs, and how the requests reached the
//!    mock (the spread of their arrivals, the first answer, the peak in
//!    flight):
//!    - 500 tasks at once (50 ms each);
//!    - 20 layers × 50 tasks (20 ms), unlimited and with 8 slots per agent;
//!    - 10,000 tasks, 40 layers × 250, on 4 agents with 64 slots each;
//!    - 200 tasks on one agent with 8 slots.
//! 3. The command line on the 10,000-task file: `wfc check` and `wfc run`
//!    (wall time, peak RSS, and time outside the run).
//! 4. Prompt-prefix reuse on two real llama.cpp servers (when
//!    `WFC_LLAMA_SERVER_DIR` names the directory `real-llm-server/setup.sh`
//!    built; `.ci/run` builds one in `~/.cache/wfc-ci/llm`): the share of
//!    prompt tokens served from cache with and without replica affinity.
//!
//! `cargo bench --bench run -- TEXT` runs only the workloads of part 2
//! whose name holds TEXT; `-- affinity` only part 4.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "run/affinity.rs"]
mod affinity;
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

const CLINICAL_MS: u64 = 1100;
const BILLING_MS: u64 = 1000;

// ---------------------------------------------------------------------------
// Model servers, each in a child process.

/// A model server in its own process; killed when dropped, panics included.
struct ServerProcess {
    child: Child,
    port: u16,
}

impl ServerProcess {
    /// `wfc mock-server`, each model answering after its latency.
    fn mock(latencies: &[(String, u64)]) -> ServerProcess {
        Self::spawn(Duration::from_secs(10), |port| {
            let mut command = Command::new(env!("CARGO_BIN_EXE_wfc"));
            command.args(["mock-server", "--port", &port.to_string()]);
            for (model, ms) in latencies {
                command.arg("--latency").arg(format!("{model}={ms}ms"));
            }
            command
        })
    }

    /// Starts `command(port)` on a free port and waits until it answers
    /// `GET /health`.
    fn spawn(ready_within: Duration, command: impl FnOnce(u16) -> Command) -> ServerProcess {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut command = command(port);
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {command:?}: {err}"));
        let server = ServerProcess { child, port };
        let deadline = Instant::now() + ready_within;
        while !server.healthy() {
            assert!(
                Instant::now() < deadline,
                "{command:?} never answered /health on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
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

impl Drop for ServerProcess {
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

// ---------------------------------------------------------------------------
// The mock's own view of the requests, over HTTP.

/// `GET` or `DELETE` on the mock's `/mock/stats`; the JSON it answers.
fn mock_stats(mock: &ServerProcess, method: &str) -> Value {
    let mut stream = TcpStream::connect(("127.0.0.1", mock.port)).expect("the mock answers");
    let request =
        format!("{method} /mock/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    serde_json::from_str(body).unwrap_or(Value::Null)
}

// ---------------------------------------------------------------------------
// Memory: the peak resident set, reset between workloads.

/// Resets this process's peak RSS to its current RSS (Linux 4.0+).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The peak RSS in MiB (`VmHWM`) of the process whose `/proc` entry is
/// `proc`, if it is still there.
fn peak_rss_mib(proc: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("{proc}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
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
        .connect(&agents, std::path::Path::new("."), stream)
        .expect("a router");
    let report = Session::new(program, workflow, &http)
        .run(inputs, &(), &CancellationToken::new())
        .await;
    assert!(
        report.success,
        "the run failed: {:?}",
        report.metadata.errors.iter().next()
    );
    report
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

// ---------------------------------------------------------------------------
// 1. The seed's discharge summary.

fn seed(runtime: &tokio::runtime::Runtime, base_url: &str) {
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
    let makespan = median(reports.iter().map(|r| r.total_latency_ms).collect());
    let speedup = median(
        reports
            .iter()
            .map(|r| r.metadata.sequential_time_ms / r.total_latency_ms)
            .collect(),
    );
    println!(
        "1. discharge summary (stream): makespan {makespan:.1} ms, bound {CLINICAL_MS} ms, \
         ratio {:.4}, speedup {speedup:.2}x (at best {:.2}x); medians of {SEED_RUNS} runs\n",
        makespan / CLINICAL_MS as f64,
        (CLINICAL_MS + BILLING_MS) as f64 / CLINICAL_MS as f64
    );
}

// ---------------------------------------------------------------------------
// 2. Workloads at scale.

struct Workload {
    name: &'static str,
    layers: usize,
    width: usize,
    agents: usize,
    slots: Option<usize>,
    task_ms: u64,
    runs: usize,
}

const WORKLOADS: &[Workload] = &[
    Workload {
        name: "500 tasks at once (50 ms)",
        layers: 1,
        width: 500,
        agents: 4,
        slots: None,
        task_ms: 50,
        runs: 7,
    },
    Workload {
        name: "20 layers x 50 (20 ms)",
        layers: 20,
        width: 50,
        agents: 4,
        slots: None,
        task_ms: 20,
        runs: 5,
    },
    Workload {
        name: "20 layers x 50, 8 slots",
        layers: 20,
        width: 50,
        agents: 4,
        slots: Some(8),
        task_ms: 20,
        runs: 5,
    },
    Workload {
        name: "10,000: 40 x 250, 64 slots",
        layers: 40,
        width: 250,
        agents: 4,
        slots: Some(64),
        task_ms: 20,
        runs: 3,
    },
    Workload {
        name: "200 tasks on 8 slots",
        layers: 1,
        width: 200,
        agents: 1,
        slots: Some(8),
        task_ms: 20,
        runs: 5,
    },
];

/// The models whose answers take `ms`: one per agent.
fn models(ms: u64) -> String {
    format!("t{ms}m")
}

impl Workload {
    fn shape(&self) -> Dag {
        Dag::layered(self.layers, self.width, self.agents)
    }

    fn write(&self, dir: &Path) -> std::path::PathBuf {
        let path = dir.join(format!(
            "w{}x{}-{}.wf",
            self.layers,
            self.width,
            self.slots.unwrap_or(0)
        ));
        let source = self.shape().source(self.slots, &models(self.task_ms));
        std::fs::write(&path, source).expect("write the workflow");
        path
    }
}

struct Row {
    scenario: String,
    makespan_ms: f64,
    bound_ms: u64,
    /// The median task latency (request to answer, as the report says).
    task_p50_ms: f64,
    /// The bound in tasks one after another, to judge the makespan
    /// against the mock's own time per task.
    chain: u64,
    cpu_per_task: Duration,
    mock_cpu_per_task: Duration,
    peak_rss_mib: f64,
    /// Medians over the runs of the mock's view: the spread of arrivals
    /// and when the first answer left, and the least peak in flight.
    arrivals_ms: f64,
    first_answer_ms: f64,
    least_peak_in_flight: u64,
    /// Both processes' CPU time for one run, spread over every core: on a
    /// machine that runs the mock beside wfc, no run can be shorter.
    cpu_floor_ms: f64,
}

fn measure(
    runtime: &tokio::runtime::Runtime,
    mock: &ServerProcess,
    dir: &Path,
    workload: &Workload,
    stream: bool,
) -> Row {
    let program = load(&workload.write(dir));
    let tasks = program.workflows[0].tasks.len();
    let inputs = bind(
        &program.workflows[0],
        vec![("record".into(), Given::Text("Stable overnight.".into()))],
    )
    .expect("valid inputs");
    let base_url = mock.base_url();
    // One run unmeasured, to fault the code in.
    runtime.block_on(run_once(&program, &inputs, &base_url, stream));
    reset_peak_rss();
    let (cpu_before, mock_before) = (own_cpu(), mock.cpu());
    let mut reports = Vec::new();
    let mut seen = Vec::new();
    for _ in 0..workload.runs {
        mock_stats(mock, "DELETE");
        reports.push(runtime.block_on(run_once(&program, &inputs, &base_url, stream)));
        seen.push(mock_stats(mock, "GET"));
    }
    let (cpu, mock_cpu) = (
        own_cpu().checked_sub(cpu_before).unwrap(),
        mock.cpu().checked_sub(mock_before).unwrap(),
    );
    let per_task = |total: Duration| total / (workload.runs * tasks) as u32;
    let field = |name: &str| -> Vec<f64> {
        seen.iter()
            .map(|s| s[name].as_f64().unwrap_or(0.0))
            .collect()
    };
    let mode = if stream { "stream" } else { "whole" };
    Row {
        scenario: format!("{} ({mode})", workload.name),
        makespan_ms: median(reports.iter().map(|r| r.total_latency_ms).collect()),
        task_p50_ms: median(
            reports
                .iter()
                .flat_map(|r| r.results.iter().map(|t| t.latency_ms))
                .collect(),
        ),
        bound_ms: workload
            .shape()
            .lower_bound_ms(workload.slots, workload.task_ms),
        chain: workload.shape().lower_bound_ms(workload.slots, 1),
        cpu_per_task: per_task(cpu),
        mock_cpu_per_task: per_task(mock_cpu),
        peak_rss_mib: peak_rss_mib("/proc/self").unwrap_or(0.0),
        arrivals_ms: median(field("arrivals_ms")),
        first_answer_ms: median(field("first_answer_ms")),
        cpu_floor_ms: (cpu + mock_cpu).as_secs_f64() * 1000.0
            / workload.runs as f64
            / std::thread::available_parallelism().map_or(1, std::num::NonZero::get) as f64,
        least_peak_in_flight: field("peak_in_flight")
            .into_iter()
            .map(|n| n as u64)
            .min()
            .unwrap_or(0),
    }
}

fn print_rows(rows: &[Row]) {
    let micros = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1e6);
    println!(
        "2. {:<38} {:>10} {:>8} {:>7} {:>8} {:>8} {:>9} {:>9} {:>9} {:>8} {:>9} {:>9} {:>6}",
        "workload",
        "makespan",
        "task p50",
        "bound",
        "ratio",
        "to mock",
        "CPU floor",
        "CPU/task",
        "mock CPU",
        "RSS MiB",
        "arrivals",
        "1st ans",
        "peak"
    );
    for row in rows {
        println!(
            "   {:<38} {:>8.1}ms {:>6.1}ms {:>6}ms {:>7.3} {:>8.3} {:>9.3} {:>7}µs {:>7}µs {:>8.1} {:>7.1}ms {:>7.1}ms {:>6}",
            row.scenario,
            row.makespan_ms,
            row.task_p50_ms,
            row.bound_ms,
            row.makespan_ms / row.bound_ms as f64,
            row.makespan_ms / (row.chain as f64 * row.first_answer_ms),
            row.cpu_floor_ms.max(row.bound_ms as f64) / row.bound_ms as f64,
            micros(row.cpu_per_task),
            micros(row.mock_cpu_per_task),
            row.peak_rss_mib,
            row.arrivals_ms,
            row.first_answer_ms,
            row.least_peak_in_flight,
        );
    }
    println!(
        "   medians; task p50 is the median task latency; ratio is makespan / bound; to mock is makespan / the same bound with each \
         task taking as long as the mock took to send its first answer (a 20 ms answer leaves \
         after 20.1 to 20.3 ms); CPU floor is the larger of the bound and this process's and \
         the mock's CPU time per run spread over every core, over the bound: no ratio can be \
         lower on this machine (that CPU time includes each run's setup, a few ms before its \
         makespan starts); CPU/task is this process's \
         user+system time over the measured runs / tasks, the mock's in its own process; RSS \
         is this process's peak during them; arrivals is how long the mock took to receive a \
         run's first to last request, 1st ans when it sent the first answer, peak the fewest \
         requests it ever held at once across the runs\n"
    );
}

// ---------------------------------------------------------------------------
// 3. The command line on the 10,000-task file.

/// Runs `wfc ARGS`, sampling its peak RSS until it exits: (wall, peak RSS
/// in MiB, standard output).
fn timed_wfc(args: &[&str]) -> (Duration, f64, String) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wfc"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start wfc");
    let proc = format!("/proc/{}", child.id());
    let mut peak: f64 = 0.0;
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    while child.try_wait().expect("wait").is_none() {
        peak = peak.max(peak_rss_mib(&proc).unwrap_or(0.0));
        std::thread::sleep(Duration::from_millis(2));
    }
    (started.elapsed(), peak, reader.join().expect("the reader"))
}

fn command_line(dir: &Path, mock: &ServerProcess) {
    let workload = &WORKLOADS[3];
    let file = workload.write(dir);
    let file = file.to_str().expect("a UTF-8 path");
    let checks: Vec<f64> = (0..5)
        .map(|_| timed_wfc(&["check", file]).0.as_secs_f64() * 1000.0)
        .collect();
    let router = dir.join("wfc.toml");
    let routes: String = (0..workload.agents)
        .map(|a| format!("[[agents.A{a}.endpoints]]\nurl = \"{}\"\n", mock.base_url()))
        .collect();
    std::fs::write(&router, routes).expect("write the router file");
    let mut runs = Vec::new();
    for _ in 0..3 {
        let (wall, rss, out) = timed_wfc(&[
            "run",
            file,
            "--router",
            router.to_str().expect("UTF-8"),
            "--input",
            "record=Stable overnight.",
            "--json",
            "-q",
        ]);
        let report: Value = serde_json::from_str(&out).expect("the report");
        let run_ms = report["total_latency_ms"].as_f64().expect("a wall time");
        runs.push((wall.as_secs_f64() * 1000.0, rss, run_ms));
    }
    let wall = median(runs.iter().map(|r| r.0).collect());
    let rss = median(runs.iter().map(|r| r.1).collect());
    let outside = median(runs.iter().map(|r| r.0 - r.2).collect());
    println!(
        "3. 10,000-task file: `wfc check` {:.1} ms (median of 5); `wfc run` {wall:.0} ms wall, \
         peak RSS {rss:.1} MiB, {outside:.0} ms outside the run (medians of 3)\n",
        median(checks)
    );
}

// ---------------------------------------------------------------------------

fn main() {
    let started = Instant::now();
    let mut latencies = vec![
        ("BioMistral-7B".to_string(), CLINICAL_MS),
        ("OpenInsurance-8B".to_string(), BILLING_MS),
    ];
    for ms in [20, 50] {
        latencies.extend((0..4).map(|a| (format!("{}{a}", models(ms)), ms)));
    }
    let mock = ServerProcess::mock(&latencies);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let dir = tempfile::tempdir().expect("a temp dir");

    // `cargo bench --bench run -- TEXT` runs only the workloads whose name
    // holds TEXT (for profiling one).
    let only: Option<String> = std::env::args().skip(1).find(|arg| !arg.starts_with("--"));
    if only.is_none() {
        seed(&runtime, &mock.base_url());
    }
    let mut rows = Vec::new();
    for workload in WORKLOADS {
        if only
            .as_ref()
            .is_some_and(|text| !workload.name.contains(text.as_str()))
        {
            continue;
        }
        for stream in [false, true] {
            rows.push(measure(&runtime, &mock, dir.path(), workload, stream));
        }
    }
    if !rows.is_empty() {
        print_rows(&rows);
    }
    if only.is_none() {
        command_line(dir.path(), &mock);
    }
    if only.as_deref().is_none_or(|text| text == "affinity") {
        affinity::compare(&runtime);
    }
    println!("{:.0} s in all", started.elapsed().as_secs_f64());
}
