//! The dataflow scheduler on a scripted executor under paused time: each
//! task takes exactly the time its script says, so start and finish times,
//! order and overlap are asserted exactly, with no network and no wall
//! clock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use wfc::check::Program;
use wfc::run::{Answer, Executor, Failure, Job, Observer, Report, Session};

use crate::support::{program, result};

/// Answers every job after the time its task is given (10 ms unless
/// scripted), counting the jobs in flight.
#[derive(Default)]
struct Timed {
    latency: HashMap<&'static str, u64>,
    state: Mutex<Flight>,
}

#[derive(Default)]
struct Flight {
    now: usize,
    peak: usize,
    /// The tasks in the order they were sent.
    sent: Vec<String>,
}

impl Timed {
    fn new(latency: &[(&'static str, u64)]) -> Self {
        Timed {
            latency: latency.iter().copied().collect(),
            state: Mutex::default(),
        }
    }
}

impl Executor for Timed {
    fn execute<'a>(
        &'a self,
        job: &'a Job,
        _observer: &'a dyn Observer,
    ) -> BoxFuture<'a, Result<Answer, Failure>> {
        Box::pin(async move {
            {
                let mut state = self.state.lock().unwrap();
                state.now += 1;
                state.peak = state.peak.max(state.now);
                state.sent.push(job.task.clone());
            }
            let ms = self.latency.get(job.task.as_str()).copied().unwrap_or(10);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            self.state.lock().unwrap().now -= 1;
            Ok(Answer {
                text: format!("answer to {}", job.task),
                model: job.model().to_string(),
                tokens: 3,
                finish_reason: Some("stop".into()),
                attempts: 1,
                replayed: false,
                prompt: wfc::run::PromptUsage::default(),
            })
        })
    }
}

async fn run(program: &Program, executor: &Timed) -> Report {
    Session::new(program, &program.workflows[0], executor)
        .run(&serde_json::Map::new(), &(), &CancellationToken::new())
        .await
}

fn timing(report: &Report, task: &str) -> (f64, f64) {
    let result = result(report, task);
    (result.started_ms, result.finished_ms)
}

#[tokio::test(start_paused = true)]
async fn independent_tasks_run_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let program = program(
        dir.path(),
        r#"
agent Clinical { model = "clinical" }
agent Billing { model = "billing" }
workflow discharge {
  task summary -> Clinical { prompt = "summary" }
  task codes -> Billing { prompt = "codes" }
}
"#,
    );
    let executor = Timed::new(&[("summary", 1100), ("codes", 1000)]);
    let report = run(&program, &executor).await;
    assert!(report.success);
    assert_eq!(timing(&report, "summary"), (0.0, 1100.0));
    assert_eq!(timing(&report, "codes"), (0.0, 1000.0));
    assert_eq!(report.total_latency_ms, 1100.0);
    assert_eq!(report.metadata.peak_parallelism, 2);
    assert_eq!(executor.state.lock().unwrap().peak, 2);
}

#[tokio::test(start_paused = true)]
async fn a_task_starts_when_its_last_dependency_finishes_and_no_sooner() {
    let dir = tempfile::tempdir().unwrap();
    let program = program(
        dir.path(),
        r#"
agent Slow { model = "slow" }
agent Fast { model = "fast" }
workflow pipeline {
  task long -> Slow { prompt = "a long analysis" }
  task quick -> Fast { prompt = "a quick look" }
  task follow_up -> Fast { prompt = "follow up on {{ quick }}" }
  task joined -> Fast { prompt = "combine {{ long }} and {{ follow_up }}" }
}
"#,
    );
    let executor = Timed::new(&[
        ("long", 400),
        ("quick", 30),
        ("follow_up", 30),
        ("joined", 30),
    ]);
    let report = run(&program, &executor).await;
    assert!(report.success, "{report:#?}");
    assert_eq!(timing(&report, "long"), (0.0, 400.0));
    assert_eq!(timing(&report, "quick"), (0.0, 30.0));
    assert_eq!(
        timing(&report, "follow_up"),
        (30.0, 60.0),
        "a slow branch must not delay an unrelated one"
    );
    assert_eq!(timing(&report, "joined"), (400.0, 430.0));
}

#[tokio::test(start_paused = true)]
async fn waiting_tasks_take_a_slot_by_priority_then_by_the_work_behind_them() {
    let dir = tempfile::tempdir().unwrap();
    let program = program(
        dir.path(),
        r#"
agent One { model = "one" max_concurrency = 1 }
agent Other { model = "other" }
workflow queue {
  task low -> One { prompt = "low" priority = 1 }
  task high -> One { prompt = "high" priority = 9 }
  task mid_short -> One { prompt = "mid short" priority = 5 }
  task mid_long -> One { prompt = "mid long" priority = 5 }
  task after_mid_long -> Other { prompt = "then {{ mid_long }}" max_tokens = 4000 }
}
"#,
    );
    let executor = Timed::new(&[
        ("low", 40),
        ("high", 40),
        ("mid_short", 40),
        ("mid_long", 40),
    ]);
    let report = run(&program, &executor).await;
    assert!(report.success);
    let sent = executor.state.lock().unwrap().sent.clone();
    let on_one: Vec<&str> = sent
        .iter()
        .map(String::as_str)
        .filter(|task| *task != "after_mid_long")
        .collect();
    assert_eq!(on_one, ["high", "mid_long", "mid_short", "low"]);
    // One slot: each starts the moment the one before it finishes.
    let timings: Vec<(f64, f64)> = on_one.iter().map(|task| timing(&report, task)).collect();
    assert_eq!(
        timings,
        [(0.0, 40.0), (40.0, 80.0), (80.0, 120.0), (120.0, 160.0)]
    );
    // Time spent waiting for a slot is not latency.
    assert_eq!(report.metadata.sequential_time_ms, 4.0 * 40.0 + 10.0);
    assert_eq!(timing(&report, "after_mid_long"), (80.0, 90.0));
}
