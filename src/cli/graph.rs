//! `wfc graph`: a workflow's DAG as Graphviz DOT or Mermaid, with each task's
//! agent and priority and the critical path marked. Retrievals are drawn as
//! cylinders, the shape of a store of documents.

use std::collections::BTreeMap;
use std::path::PathBuf;

use miette::Diagnostic;

use super::error::Error;
use wfc::check::{self, TaskKind, WorkflowDef};
use wfc::loader::Loader;
use wfc::plan::EdgeKind;

#[derive(clap::Args)]
pub(super) struct Args {
    /// The .wf file
    file: PathBuf,
    /// Which workflow to draw, when the file has several
    #[arg(long)]
    workflow: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Dot)]
    format: Format,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    /// Graphviz (`wfc graph f.wf | dot -Tsvg > f.svg`)
    Dot,
    /// Mermaid, for Markdown on GitHub and GitLab
    Mermaid,
}

pub(super) fn run(args: &Args) -> Result<(), Error> {
    let report = check::check_file(&mut Loader::default(), &args.file)
        .map_err(|err| super::unreadable(&args.file, err))?;
    if report.has_errors() {
        let errors = report
            .problems
            .iter()
            .filter(|p| p.is_error())
            .map(|p| p as &dyn Diagnostic);
        eprint!(
            "{}",
            wfc::diagnostics::human(&report.source, errors, super::color(&std::io::stderr()))
        );
        return Err(Error::Problems(format!(
            "`{}` has errors; fix them to draw its graph",
            args.file.display()
        )));
    }
    let workflows = report
        .program
        .map(|program| program.workflows)
        .unwrap_or_default();
    let names: Vec<&str> = workflows.iter().map(|w| w.name.as_str()).collect();
    let chosen = match (&args.workflow, workflows.len()) {
        (Some(name), _) => workflows.iter().find(|w| &w.name == name),
        (None, 1) => workflows.first(),
        (None, _) => None,
    };
    let Some(workflow) = chosen else {
        let file = args.file.display();
        let message = match &args.workflow {
            Some(name) => format!("there is no workflow `{name}` in `{file}`"),
            None if names.is_empty() => format!("`{file}` declares no workflow"),
            None => format!("`{file}` has several workflows; choose one with --workflow"),
        };
        return Err(Error::usage(if names.is_empty() {
            message
        } else {
            format!("{message}\nthe workflows are: {}", names.join(", "))
        }));
    };
    out!(
        "{}",
        match args.format {
            Format::Dot => dot(workflow),
            Format::Mermaid => mermaid(workflow),
        }
    );
    Ok(())
}

/// Each dependency once, as (dependency, dependent) → whether any template
/// reads it (otherwise it comes only from `after`).
fn edges(workflow: &WorkflowDef) -> BTreeMap<(usize, usize), bool> {
    let mut edges = BTreeMap::new();
    for (from, to, edge) in workflow.plan.edges() {
        *edges.entry((from, to)).or_insert(false) |= edge.kind == EdgeKind::Reads;
    }
    edges
}

fn critical(workflow: &WorkflowDef) -> Vec<usize> {
    let cost: Vec<u64> = workflow
        .tasks
        .iter()
        .map(|task| u64::from(task.max_tokens))
        .collect();
    workflow.plan.critical_path(&cost)
}

fn describe(workflow: &WorkflowDef, task: usize, separator: &str) -> String {
    let task = &workflow.tasks[task];
    match &task.kind {
        TaskKind::Chat => format!(
            "{}{separator}{} · priority {} · {} tokens",
            task.name, task.agent, task.priority, task.max_tokens
        ),
        TaskKind::Retrieve(retrieval) => format!(
            "{}{separator}search {} · priority {} · top {} by {}",
            task.name,
            task.agent,
            task.priority,
            retrieval.top_k,
            retrieval.mode.name()
        ),
    }
}

fn is_retrieval(workflow: &WorkflowDef, task: usize) -> bool {
    matches!(workflow.tasks[task].kind, TaskKind::Retrieve(_))
}

fn dot(workflow: &WorkflowDef) -> String {
    let path = critical(workflow);
    let on_path = |task: usize| path.contains(&task);
    let mut out = format!(
        "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n",
        workflow.name
    );
    for task in 0..workflow.tasks.len() {
        let style = if on_path(task) {
            ", color=\"#d33\", penwidth=2"
        } else {
            ""
        };
        let shape = if is_retrieval(workflow, task) {
            ", shape=cylinder, style=\"\""
        } else {
            ""
        };
        out.push_str(&format!(
            "  \"{}\" [label=\"{}\"{shape}{style}];\n",
            workflow.tasks[task].name,
            describe(workflow, task, "\\n")
        ));
    }
    for ((from, to), reads) in edges(workflow) {
        let mut attributes = Vec::new();
        if !reads {
            attributes.push("style=dashed, label=\"after\"".to_string());
        }
        if path.windows(2).any(|pair| pair == [from, to]) {
            attributes.push("color=\"#d33\", penwidth=2".to_string());
        }
        let attributes = if attributes.is_empty() {
            String::new()
        } else {
            format!(" [{}]", attributes.join(", "))
        };
        out.push_str(&format!(
            "  \"{}\" -> \"{}\"{attributes};\n",
            workflow.tasks[from].name, workflow.tasks[to].name
        ));
    }
    out.push_str("}\n");
    out
}

fn mermaid(workflow: &WorkflowDef) -> String {
    let mut out = String::from("flowchart LR\n");
    for task in 0..workflow.tasks.len() {
        let (open, close) = if is_retrieval(workflow, task) {
            ("[(", ")]")
        } else {
            ("[", "]")
        };
        out.push_str(&format!(
            "  {}{open}\"{}\"{close}\n",
            workflow.tasks[task].name,
            describe(workflow, task, "<br/>")
        ));
    }
    for ((from, to), reads) in edges(workflow) {
        let arrow = if reads { "-->" } else { "-. after .->" };
        out.push_str(&format!(
            "  {} {arrow} {}\n",
            workflow.tasks[from].name, workflow.tasks[to].name
        ));
    }
    let path: Vec<&str> = critical(workflow)
        .into_iter()
        .map(|t| workflow.tasks[t].name.as_str())
        .collect();
    out.push_str("  classDef critical stroke:#d33,stroke-width:3px\n");
    out.push_str(&format!("  class {} critical\n", path.join(",")));
    out
}
