//! `test` blocks: what they set, mock and expect must exist in the workflow.

use std::collections::HashMap;

use super::problem::{Problem, did_you_mean};
use super::program::{Expectation, InputDef, MockAnswer, TestDef};
use super::types;
use super::workflow::{Declared, Names};
use crate::ast::{self, ExpectationKind, Member, TestStep};
use crate::source::Span;

pub(super) fn check(
    workflow: &ast::Workflow,
    names: &Names<'_>,
    inputs: &[InputDef],
    problems: &mut Vec<Problem>,
) -> Vec<TestDef> {
    let mut seen: HashMap<&str, Span> = HashMap::new();
    let mut tests = Vec::new();
    for member in &workflow.members {
        let Member::Test(test) = member else { continue };
        if let Some(first) = seen.insert(&test.name.value, test.name.span) {
            problems.push(Problem::Duplicate {
                what: "test",
                name: test.name.value.clone(),
                span: test.name.span,
                first: Some(first),
                help: Some(
                    "test names name their snapshots, so each must be unique in its workflow"
                        .into(),
                ),
            });
        }
        tests.push(check_test(
            test,
            &workflow.name.text,
            names,
            inputs,
            problems,
        ));
    }
    tests
}

fn check_test(
    test: &ast::Test,
    workflow: &str,
    names: &Names<'_>,
    inputs: &[InputDef],
    problems: &mut Vec<Problem>,
) -> TestDef {
    let mut def = TestDef {
        name: test.name.value.clone(),
        inputs: Vec::new(),
        mocks: Vec::new(),
        expectations: Vec::new(),
    };
    let mut set: HashMap<&str, Span> = HashMap::new();
    let mut mocked: HashMap<&str, Span> = HashMap::new();
    for step in &test.steps {
        match step {
            TestStep::Input { name, value, .. } => {
                if let Some(first) = set.insert(&name.text, name.span) {
                    problems.push(duplicate("input", name, first));
                    continue;
                }
                match names.table.get(name.text.as_str()) {
                    Some((Declared::Input(index), _)) => {
                        let input = &inputs[*index];
                        match types::literal(&input.name, &input.ty, value) {
                            Ok(json) => def.inputs.push((input.name.clone(), json)),
                            Err(problem) => problems.push(problem),
                        }
                    }
                    _ => problems.push(Problem::UnknownInput {
                        name: name.text.clone(),
                        workflow: workflow.to_string(),
                        span: name.span,
                        help: did_you_mean(&name.text, names.input_names()),
                    }),
                }
            }
            TestStep::Mock {
                task,
                response,
                fails,
                ..
            } => {
                if let Some(first) = mocked.insert(&task.text, task.span) {
                    problems.push(duplicate("mock of task", task, first));
                    continue;
                }
                if names.task(task, workflow, problems).is_some() {
                    let answer = if *fails {
                        MockAnswer::Failure(response.value.clone())
                    } else {
                        MockAnswer::Text(response.value.clone())
                    };
                    def.mocks.push((task.text.clone(), answer));
                }
            }
            TestStep::Expect(expectation) => {
                if let Some(checked) =
                    check_expectation(&expectation.kind, workflow, names, problems)
                {
                    def.expectations.push(checked);
                }
            }
        }
    }
    for input in inputs.iter().filter(|input| input.is_required()) {
        if !set.contains_key(input.name.as_str()) {
            problems.push(Problem::MissingInput {
                test: test.name.value.clone(),
                name: input.name.clone(),
                span: test.name.span,
                help: Some(format!("add `input {} = ...` to the test", input.name)),
            });
        }
    }
    def
}

fn check_expectation(
    kind: &ExpectationKind,
    workflow: &str,
    names: &Names<'_>,
    problems: &mut Vec<Problem>,
) -> Option<Expectation> {
    Some(match kind {
        ExpectationKind::Output(check) => {
            Expectation::Output(super::answers::check(check, problems)?)
        }
        ExpectationKind::TaskState { task, state } => {
            names.task(task, workflow, problems)?;
            Expectation::TaskState {
                task: task.text.clone(),
                state: *state,
            }
        }
        ExpectationKind::Order { first, then } => {
            let known = names.task(first, workflow, problems).is_some();
            names.task(then, workflow, problems)?;
            if !known {
                return None;
            }
            Expectation::Order {
                first: first.text.clone(),
                then: then.text.clone(),
            }
        }
    })
}

fn duplicate(what: &'static str, name: &ast::Name, first: Span) -> Problem {
    Problem::Duplicate {
        what,
        name: name.text.clone(),
        span: name.span,
        first: Some(first),
        help: Some("keep one of them".into()),
    }
}
