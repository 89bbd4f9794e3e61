//! A workflow: its names, the DAG its templates and `after` lists imply, and
//! its output; tasks, inputs, the shapes of answers and the lints each have
//! their own file.

use rustc_hash::FxHashMap as HashMap;

use miette::LabeledSpan;

use super::problem::{Problem, did_you_mean};
use super::program::{AgentDef, CorpusDef, InputDef, TaskDef, WorkflowDef};
use super::template::{ITEM, Read, Templates};
use super::{inputs, lints, shapes, tasks, test_blocks, types};
use crate::ast::{self, Member};
use crate::plan::{Edge, EdgeKind, Plan};
use crate::source::Span;

#[derive(Clone, Copy)]
pub(super) enum Declared {
    Input(usize),
    Task(usize),
}

/// The names a workflow declares: its inputs and tasks share one namespace,
/// since templates read both the same way.
pub(super) struct Names<'a> {
    pub table: HashMap<&'a str, (Declared, Span)>,
    pub inputs: Vec<&'a ast::Input>,
    pub tasks: Vec<&'a ast::Task>,
}

impl<'a> Names<'a> {
    fn collect(workflow: &'a ast::Workflow, problems: &mut Vec<Problem>) -> Self {
        let mut names = Names {
            table: HashMap::with_capacity_and_hasher(
                workflow.members.len(),
                rustc_hash::FxBuildHasher,
            ),
            inputs: Vec::new(),
            tasks: Vec::new(),
        };
        for member in &workflow.members {
            let (name, declared, what) = match member {
                Member::Input(input) => (&input.name, Declared::Input(names.inputs.len()), "input"),
                Member::Task(task) => (&task.name, Declared::Task(names.tasks.len()), "task"),
                Member::Output(_) | Member::Test(_) => continue,
            };
            if let Some((earlier, first)) = names.table.get(name.text.as_str()) {
                let same_kind = matches!(
                    (earlier, declared),
                    (Declared::Input(_), Declared::Input(_))
                        | (Declared::Task(_), Declared::Task(_))
                );
                problems.push(Problem::Duplicate {
                    what: if same_kind { what } else { "name" },
                    name: name.text.clone(),
                    span: name.span,
                    first: Some(*first),
                    help: Some(if same_kind {
                        format!("rename one of the two {what}s")
                    } else {
                        "inputs and tasks share one namespace, because templates read both by name; rename one".into()
                    }),
                });
                continue;
            }
            names.table.insert(&name.text, (declared, name.span));
            match member {
                Member::Input(input) => names.inputs.push(input),
                Member::Task(task) => names.tasks.push(task),
                Member::Output(_) | Member::Test(_) => {}
            }
        }
        names
    }

    pub(super) fn task_names(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.tasks.iter().map(|task| task.name.text.as_str())
    }

    pub(super) fn input_names(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.inputs.iter().map(|input| input.name.text.as_str())
    }

    /// The task called `name`, or an `unknown-task` problem.
    pub(super) fn task(
        &self,
        name: &ast::Name,
        workflow: &str,
        problems: &mut Vec<Problem>,
    ) -> Option<usize> {
        match self.table.get(name.text.as_str()) {
            Some((Declared::Task(index), _)) => Some(*index),
            found => {
                let help = match found {
                    Some((Declared::Input(_), _)) => {
                        Some(format!("`{}` is an input, not a task", name.text))
                    }
                    _ => did_you_mean(&name.text, self.task_names()),
                };
                problems.push(Problem::UnknownTask {
                    name: name.text.clone(),
                    workflow: workflow.to_string(),
                    span: name.span,
                    help,
                });
                None
            }
        }
    }
}

/// What the checker learns about each task and input while resolving names.
#[derive(Default)]
pub(super) struct Usage {
    pub(super) input_read: Vec<bool>,
    pub(super) task_read: Vec<bool>,
    /// What each task's templates read (in task order), then the
    /// output's: field chains and loops are checked once every task's
    /// output type is known, and the lints look at where inputs are read.
    pub(super) shapes: Vec<Read>,
    /// A template that cannot be parsed may read anything, so nothing can be
    /// called unused.
    pub(super) unknown: bool,
}

/// What checking a workflow's tasks and output shares: the names they may
/// read, and what reading them builds (the DAG, the usage, the problems).
pub(super) struct Context<'a, 'c> {
    pub(super) names: &'c Names<'a>,
    pub(super) workflow: &'c str,
    pub(super) agents: &'c HashMap<String, AgentDef>,
    pub(super) corpora: &'c HashMap<String, CorpusDef>,
    pub(super) schemas: &'c types::Schemas,
    templates: &'c mut Templates,
    pub(super) plan: Plan,
    pub(super) usage: Usage,
    pub(super) problems: &'c mut Vec<Problem>,
}

impl Context<'_, '_> {
    /// What the template `text` reads, with `how` (as a template or as an
    /// expression); nothing when there is no text, and nothing (marking the
    /// usage unknown) when it does not parse.
    pub(super) fn read(
        &mut self,
        text: Option<&ast::Text>,
        how: fn(&mut Templates, &ast::Text, &mut Vec<Problem>) -> Option<Read>,
    ) -> Read {
        let Some(text) = text else {
            return Read::default();
        };
        let read = how(self.templates, text, self.problems);
        self.usage.unknown |= read.is_none();
        read.unwrap_or_default()
    }

    /// Resolves each name `reads` reads, marking it used; a task read by
    /// task `reader` becomes an edge of the DAG.
    pub(super) fn resolve(&mut self, reads: &Read, reader: Option<usize>) {
        for (read, span) in &reads.variables {
            match resolve_read(self.names, read, *span, self.templates, self.problems) {
                Some(Declared::Input(i)) => self.usage.input_read[i] = true,
                Some(Declared::Task(dependency)) => {
                    self.usage.task_read[dependency] = true;
                    if let Some(reader) = reader {
                        self.plan.add_edge(
                            dependency,
                            reader,
                            Edge {
                                kind: EdgeKind::Reads,
                                span: *span,
                                optional: false,
                            },
                        );
                    }
                }
                None => {}
            }
        }
    }
}

/// A workflow's definition with the syntax it was checked from, for the
/// checks that follow data through the whole workflow (PHI flow, context
/// budgets).
pub(super) struct Checked<'a> {
    pub def: WorkflowDef,
    /// The task nodes, in the order of `def.tasks`.
    pub tasks: Vec<&'a ast::Task>,
    /// The input nodes, in the order of `def.inputs`.
    pub inputs: Vec<&'a ast::Input>,
    /// What each task's templates read, placed in the file, in the order of
    /// `def.tasks`: its prompt's (or query's and filters') and its `when`'s.
    pub reads: Vec<Read>,
}

/// Checks one workflow into its definition, pushing what is wrong.
pub(super) fn check<'a>(
    workflow: &'a ast::Workflow,
    agents: &HashMap<String, AgentDef>,
    corpora: &HashMap<String, CorpusDef>,
    schemas: &types::Schemas,
    templates: &mut Templates,
    problems: &mut Vec<Problem>,
) -> Checked<'a> {
    let names = Names::collect(workflow, problems);
    let name = workflow.name.text.clone();
    if names.tasks.is_empty() {
        problems.push(Problem::NoTasks {
            name: name.clone(),
            span: workflow.name.span,
        });
    }
    let inputs: Vec<InputDef> = names
        .inputs
        .iter()
        .map(|input| inputs::input_def(input, schemas, problems))
        .collect();
    let mut context = Context {
        names: &names,
        workflow: &name,
        agents,
        corpora,
        schemas,
        templates,
        plan: Plan::new(names.tasks.len()),
        usage: Usage {
            input_read: vec![false; names.inputs.len()],
            task_read: vec![false; names.tasks.len()],
            shapes: Vec::new(),
            unknown: false,
        },
        problems,
    };
    let tasks: Vec<TaskDef> = names
        .tasks
        .iter()
        .enumerate()
        .map(|(index, task)| tasks::task_def(index, task, &mut context))
        .collect();

    let outputs: Vec<&ast::Output> = workflow
        .members
        .iter()
        .filter_map(|member| match member {
            Member::Output(output) => Some(output),
            _ => None,
        })
        .collect();
    for extra in outputs.iter().skip(1) {
        context.problems.push(Problem::Duplicate {
            what: "template",
            name: "output".into(),
            span: extra.span,
            first: Some(outputs[0].span),
            help: Some("a workflow has one output template".into()),
        });
    }
    let output = outputs.first().map(|output| {
        let reads = context.read(Some(&output.template), Templates::read);
        context.resolve(&reads, None);
        unguarded(&reads, &names, context.problems);
        context.usage.shapes.push(reads);
        output.template.value.clone()
    });
    let Context {
        plan,
        usage,
        problems,
        ..
    } = context;
    for read in &usage.shapes {
        shapes::check(read, &names, &inputs, &tasks, problems);
    }

    let cycles = plan.cycles();
    for cycle in &cycles {
        problems.push(cycle_problem(cycle, &names));
    }
    if cycles.is_empty() {
        lints::redundant_after(&plan, &names, problems);
    }
    lints::shared_context_late(&names, &inputs, &tasks, &usage.shapes, problems);
    if !usage.unknown {
        lints::unused(&names, &usage, &plan, output.is_some(), problems);
    }
    let tests = test_blocks::check(workflow, &names, &inputs, &tasks, problems);

    let mut reads = usage.shapes;
    reads.truncate(tasks.len());
    Checked {
        def: WorkflowDef {
            name,
            doc: workflow.docs.text(),
            inputs,
            tasks,
            output,
            tests,
            plan,
            span: workflow.span,
        },
        tasks: names.tasks,
        inputs: names.inputs,
        reads,
    }
}

/// Warns about each field of a task's answer that the output reads outside
/// a condition on that task: when the task fails, the field prints the
/// task's marker in the middle of the document.
fn unguarded(reads: &Read, names: &Names<'_>, problems: &mut Vec<Problem>) {
    for chain in &reads.unguarded {
        let is_task = matches!(
            names.table.get(chain.variable.as_str()),
            Some((Declared::Task(_), _))
        );
        let Some((field, _)) = chain.path.first() else {
            continue;
        };
        // A loop over a retrieval that failed goes over nothing; only a
        // field read directly prints the marker.
        if !is_task || field == ITEM || crate::check::TASK_ATTRIBUTES.contains(&field.as_str()) {
            continue;
        }
        let task = &chain.variable;
        problems.push(Problem::UnguardedField {
            expression: format!("{task}.{field}"),
            task: task.clone(),
            span: chain.at,
            help: Some(format!(
                "put it inside `{{% if {task}.ok %}}...{{% else %}}...{{% endif %}}`, saying what the document holds without it"
            )),
        });
    }
}

/// What a name read by a template refers to, or an `unknown-name` problem.
fn resolve_read(
    names: &Names<'_>,
    read: &str,
    span: Span,
    templates: &Templates,
    problems: &mut Vec<Problem>,
) -> Option<Declared> {
    if let Some((declared, _)) = names.table.get(read) {
        return Some(*declared);
    }
    if templates.is_global(read) {
        return None;
    }
    let candidates = names.input_names().chain(names.task_names());
    let help = did_you_mean(read, candidates).or_else(|| {
        let inputs: Vec<&str> = names.input_names().collect();
        let tasks: Vec<&str> = names.task_names().collect();
        Some(format!(
            "templates can read the inputs ({}) and the tasks ({})",
            list_or_none(&inputs),
            list_or_none(&tasks)
        ))
    });
    problems.push(Problem::UnknownName {
        name: read.to_string(),
        span,
        help,
    });
    None
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn cycle_problem(cycle: &[(usize, usize, Edge)], names: &Names<'_>) -> Problem {
    let name = |task: usize| names.tasks[task].name.text.as_str();
    let mut path: Vec<&str> = cycle
        .iter()
        .rev()
        .map(|&(_, dependent, _)| name(dependent))
        .collect();
    path.push(path[0]);
    let edges = cycle
        .iter()
        .map(|&(dependency, dependent, edge)| {
            let label = match edge.kind {
                EdgeKind::Reads => {
                    format!("`{}` reads `{}` here", name(dependent), name(dependency))
                }
                EdgeKind::After => format!(
                    "`{}` runs after `{}` here",
                    name(dependent),
                    name(dependency)
                ),
            };
            LabeledSpan::new_with_span(Some(label), edge.span)
        })
        .collect();
    Problem::Cycle {
        path: path.join(" → "),
        edges,
    }
}
