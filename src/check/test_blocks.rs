//! `test` blocks: what they set, mock and expect must exist in the workflow.

use rustc_hash::FxHashMap as HashMap;

use super::conform;
use super::problem::{Problem, did_you_mean};
use super::program::{Expectation, InputDef, MockAnswer, TaskDef, TestDef};
use super::types;
use super::workflow::{Declared, Names};
use crate::ast::{self, ExpectationKind, Member, TestStep};
use crate::source::Span;

pub(super) fn check(
    workflow: &ast::Workflow,
    names: &Names<'_>,
    inputs: &[InputDef],
    tasks: &[TaskDef],
    problems: &mut Vec<Problem>,
) -> Vec<TestDef> {
    let mut seen: HashMap<&str, Span> = HashMap::default();
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
            (inputs, tasks),
            problems,
        ));
    }
    tests
}

fn check_test(
    test: &ast::Test,
    workflow: &str,
    names: &Names<'_>,
    (inputs, tasks): (&[InputDef], &[TaskDef]),
    problems: &mut Vec<Problem>,
) -> TestDef {
    let mut def = TestDef {
        name: test.name.value.clone(),
        inputs: Vec::new(),
        mocks: Vec::new(),
        expectations: Vec::new(),
    };
    let mut set: HashMap<&str, Span> = HashMap::default();
    let mut mocked: HashMap<&str, Span> = HashMap::default();
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
                if let Some(index) = names.task(task, workflow, problems) {
                    // A mocked answer is held to the task's declared shape,
                    // as a model's answer would be.
                    if let (false, Some(shape)) = (*fails, &tasks[index].output)
                        && shape.is_known()
                        && let Err(mismatch) = conform::typed(&response.value, shape)
                    {
                        problems.push(Problem::InvalidValue {
                            key: format!("mock {}", task.text),
                            expected: "JSON of the task's declared output".into(),
                            found: format!("an answer that does not fit it ({mismatch})"),
                            span: response.span,
                            help: Some(format!(
                                "the task answers `{shape}`, e.g. `mock {} = \"\"\"{}\"\"\"`",
                                task.text,
                                example(shape)
                            )),
                        });
                    }
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

/// A JSON value of type `ty`, to show in help.
fn example(ty: &crate::check::Type) -> String {
    use crate::check::Type;
    match ty {
        Type::Text | Type::Unknown => "\"...\"".into(),
        Type::Date => "\"2026-01-04\"".into(),
        Type::Number => "1".into(),
        Type::Bool => "true".into(),
        Type::List(item) => format!("[{}]", example(item)),
        Type::OneOf(choices) => format!("{:?}", choices.first().map_or("", String::as_str)),
        Type::Optional(_) => "null".into(),
        Type::Object(fields) => {
            let fields: Vec<String> = fields
                .iter()
                .map(|field| format!("\"{}\": {}", field.name, example(&field.ty)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}
