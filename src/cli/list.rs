//! `wfc list`: the workflow types on offer, the seed's
//! `GET /v1/workflows/types` on the command line.

use std::path::PathBuf;

use super::error::{Error, Worst};
use wfc::catalog::{self, WorkflowInfo};
use wfc::check;
use wfc::loader::Loader;

#[derive(clap::Args)]
pub(super) struct Args {
    /// Files, or folders to search for `*.wf` files (default: the current folder)
    paths: Vec<PathBuf>,
    /// Print a JSON list instead of text
    #[arg(long)]
    json: bool,
}

pub(super) fn run(args: &Args) -> Result<(), Error> {
    let paths = super::discover(&args.paths)?;
    let mut loader = Loader::default();
    let mut workflows = Vec::new();
    let mut worst = Worst::default();
    for path in &paths {
        match check::check_file(&mut loader, path) {
            Ok(report) if report.has_errors() => {
                worst.show(&Error::Problems(format!(
                    "`{}` has errors (run `wfc check {}`); its workflows are not listed",
                    path.display(),
                    path.display()
                )));
            }
            Ok(report) => {
                if let Some(program) = &report.program {
                    workflows.extend(catalog::describe_all(program, path));
                }
            }
            Err(err) => worst.show(&super::unreadable(path, err)),
        }
    }
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&workflows).expect("the catalog serialises")
        );
    } else {
        for workflow in &workflows {
            print_text(workflow);
        }
    }
    worst.finish()
}

fn print_text(workflow: &WorkflowInfo) {
    outln!(
        "{}  ({}: {})",
        workflow.name,
        workflow.pattern,
        workflow.agents.join(", ")
    );
    if !workflow.description.is_empty() {
        outln!("  {}", workflow.description);
    }
    for input in &workflow.inputs {
        let need = match (&input.default, input.required) {
            (Some(default), _) => format!("default {default}"),
            (None, true) => "required".to_string(),
            (None, false) => "optional".to_string(),
        };
        outln!("  --input {}: {} ({need})", input.name, input.ty);
    }
    outln!("  file: {}\n", workflow.file);
}
