//! Running a workflow's `test` blocks: the inputs, a scripted answer per
//! mocked task, the expectations, and a snapshot of the rendered output.

pub mod report;
pub mod snapshot;

use tokio_util::sync::CancellationToken;

use crate::ast::TaskState;
use crate::check::conform::Given;
use crate::check::{Expectation, Program, TestDef, WorkflowDef};
use crate::run::inputs;
use crate::run::{Executor, Report, Session};

/// What became of one test.
#[derive(Debug)]
pub struct TestRun {
    pub report: Option<Report>,
    /// Each expectation the run did not meet, in words.
    pub failures: Vec<String>,
}

/// Runs `test` of `workflow` and checks its expectations: the mocked
/// tasks get their scripted answers (unless `live`: real answers, asked
/// for or replayed), every other request goes to `http`.
pub async fn run(
    program: &Program,
    workflow: &WorkflowDef,
    test: &TestDef,
    http: &dyn Executor,
    live: bool,
) -> TestRun {
    let given = test
        .inputs
        .iter()
        .map(|(name, value)| (name.clone(), Given::Json(value.clone())))
        .collect();
    let inputs = match inputs::bind(workflow, given) {
        Ok(inputs) => inputs,
        Err(errors) => {
            return TestRun {
                report: None,
                failures: errors.iter().map(ToString::to_string).collect(),
            };
        }
    };
    let mut session = Session::new(program, workflow, http);
    if !live {
        session = session.script(&test.mocks);
    }
    let report = session.run(&inputs, &(), &CancellationToken::new()).await;
    TestRun {
        failures: unmet(test, &report),
        report: Some(report),
    }
}

/// The expectations `report` does not meet. A task the test says nothing
/// about must succeed: an unexpected failure is a failed test.
fn unmet(test: &TestDef, report: &Report) -> Vec<String> {
    let result = |task: &str| report.results.iter().find(|r| r.task_id == task);
    let mut failures = Vec::new();
    if let Some(error) = &report.metadata.output_error {
        failures.push(error.clone());
    }
    let mut stated = Vec::new();
    for expectation in &test.expectations {
        match expectation {
            Expectation::Output(check) => {
                // `cites` is a task's check, never the output's.
                if !check.holds(&report.aggregated_content, &|_| Vec::new()) {
                    failures.push(format!(
                        "expected the output to meet `{check}`; the output was:\n{}",
                        excerpt(&report.aggregated_content)
                    ));
                }
            }
            Expectation::TaskState { task, state } => {
                stated.push(task.as_str());
                let Some(result) = result(task) else { continue };
                let wanted = match state {
                    TaskState::Ok => "ok",
                    TaskState::Failed => "failed",
                    TaskState::Skipped => "skipped",
                };
                if result.status != wanted {
                    failures.push(format!(
                        "expected task `{task}` to be {wanted}, but it is {}{}",
                        result.status,
                        result
                            .error
                            .as_deref()
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default()
                    ));
                }
            }
            Expectation::Order { first, then } => {
                let (Some(a), Some(b)) = (result(first), result(then)) else {
                    continue;
                };
                if !(a.success && b.success && a.finished_ms <= b.started_ms) {
                    failures.push(format!(
                        "expected `{first}` to finish before `{then}` starts, but `{first}` ({}) finished at {} ms and `{then}` ({}) started at {} ms",
                        a.status, a.finished_ms, b.status, b.started_ms
                    ));
                }
            }
        }
    }
    for result in &report.results {
        if !result.success && !stated.contains(&result.task_id.as_str()) {
            failures.push(format!(
                "task `{}` {}: {}",
                result.task_id,
                result.status,
                result.error.as_deref().unwrap_or("no reason given")
            ));
        }
    }
    failures
}

/// The lines of the output shown: 30 of them at most, each behind a bar.
const SHOWN_LINES: usize = 30;

/// The output a failed expectation checked, as a failure shows it.
fn excerpt(output: &str) -> String {
    if output.is_empty() {
        return "  | (empty)".into();
    }
    let lines: Vec<&str> = output.lines().collect();
    let mut shown: Vec<String> = lines
        .iter()
        .take(SHOWN_LINES)
        .map(|line| format!("  | {line}"))
        .collect();
    if lines.len() > SHOWN_LINES {
        shown.push(format!(
            "  | ... ({} more lines)",
            lines.len() - SHOWN_LINES
        ));
    }
    shown.join("\n")
}
