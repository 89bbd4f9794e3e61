//! Running a workflow's `test` blocks: the inputs, a scripted answer per
//! mocked task, the expectations, and a snapshot of the rendered output.

pub mod snapshot;

use std::collections::HashMap;

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::ast::TaskState;
use crate::check::{AgentDef, Expectation, MockAnswer, TestDef, WorkflowDef};
use crate::run::execute::{Answer, Failure};
use crate::run::inputs::{self, Given};
use crate::run::{Executor, Job, Observer, Report, Runner};

/// What became of one test.
#[derive(Debug)]
pub struct TestRun {
    pub report: Option<Report>,
    /// Each expectation the run did not meet, in words.
    pub failures: Vec<String>,
}

/// Answers mocked tasks with the test's scripted text and passes every
/// other job on (to the mock server, or to the real ones with `--live`).
pub struct Scripted<'a> {
    answers: HashMap<&'a str, &'a MockAnswer>,
    rest: &'a dyn Executor,
}

impl<'a> Scripted<'a> {
    pub fn new(test: &'a TestDef, rest: &'a dyn Executor) -> Self {
        let answers = test
            .mocks
            .iter()
            .map(|(task, answer)| (task.as_str(), answer))
            .collect();
        Scripted { answers, rest }
    }
}

impl Executor for Scripted<'_> {
    fn execute<'b>(
        &'b self,
        job: &'b Job,
        observer: &'b dyn Observer,
    ) -> BoxFuture<'b, Result<Answer, Failure>> {
        match self.answers.get(job.task.as_str()) {
            Some(MockAnswer::Failure(error)) => {
                let failure = Failure {
                    error: error.clone(),
                    attempts: 1,
                };
                Box::pin(async move { Err(failure) })
            }
            Some(MockAnswer::Text(text)) => {
                let text = match &job.output {
                    None => text.clone(),
                    Some(shape) => match crate::run::execute::typed(text, shape) {
                        Ok(json) => json,
                        Err(mismatch) => {
                            let failure = Failure {
                                error: format!(
                                    "the mocked answer does not match the declared output: {mismatch}"
                                ),
                                attempts: 1,
                            };
                            return Box::pin(async move { Err(failure) });
                        }
                    },
                };
                let answer = Answer {
                    text: text.clone(),
                    model: job.request.model.clone(),
                    tokens: text.split_whitespace().count() as u32,
                    finish_reason: Some("stop".into()),
                    attempts: 1,
                    replayed: true,
                };
                Box::pin(async move { Ok(answer) })
            }
            None => self.rest.execute(job, observer),
        }
    }
}

/// Runs `test` of `workflow` with `executor` and checks its expectations.
pub async fn run(
    workflow: &WorkflowDef,
    agents: &[AgentDef],
    test: &TestDef,
    executor: &dyn Executor,
    capacity: &(dyn Fn(&str) -> Option<usize> + Sync),
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
    let runner = Runner {
        workflow,
        agents,
        executor,
        observer: &(),
        capacity,
    };
    match runner.run(&inputs, &CancellationToken::new()).await {
        Ok(report) => TestRun {
            failures: unmet(test, &report),
            report: Some(report),
        },
        Err(err) => TestRun {
            report: None,
            failures: vec![err.to_string()],
        },
    }
}

/// The expectations `report` does not meet. A task the test says nothing
/// about must succeed: an unexpected failure is a failed test.
fn unmet(test: &TestDef, report: &Report) -> Vec<String> {
    let result = |task: &str| report.results.iter().find(|r| r.task_id == task);
    let mut failures = Vec::new();
    if let Some(error) = &report.metadata.output_error {
        failures.push(format!("the output could not be rendered: {error}"));
    }
    let mut stated = Vec::new();
    for expectation in &test.expectations {
        match expectation {
            Expectation::Output(check) => {
                if !check.holds(&report.aggregated_content) {
                    failures.push(format!("expected the output to meet `{check}`"));
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
