//! A run as the durable engine receives it: the workflow's source files,
//! the workflow's name and its bound inputs. Sources travel with the run,
//! not paths, so that every replay of the run (on any worker, after the
//! files on disk changed) checks and renders exactly the same workflow.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::check::{self, Program, phi};
use crate::loader::{Loader, Unit, file_name};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    /// The workflow to run, by name.
    pub workflow: String,
    /// The file that declares it.
    pub root: PathBuf,
    /// The text of the root file and of every file it imports.
    pub sources: BTreeMap<PathBuf, String>,
    pub inputs: serde_json::Map<String, serde_json::Value>,
    /// When it was made (microseconds since the Unix epoch, by the
    /// submitter's clock): the run's time zero, so its wall time counts
    /// from the request, and it costs no journal step to take.
    pub submitted_us: u64,
    /// The trace context of the submitter's span, which the run's tasks
    /// continue on the workers.
    #[serde(default)]
    pub trace: std::collections::HashMap<String, String>,
}

impl Submission {
    /// The run of `workflow` from the file `unit` holds, with `inputs`
    /// already bound.
    #[must_use]
    pub fn new(
        unit: &Unit,
        workflow: &str,
        inputs: serde_json::Map<String, serde_json::Value>,
    ) -> Self {
        let files = std::iter::once(&unit.root).chain(unit.imports.iter().map(|i| &i.loaded));
        Submission {
            workflow: workflow.to_string(),
            root: unit.root.source.path().to_path_buf(),
            sources: files
                .map(|loaded| {
                    let source = &loaded.source;
                    (source.path().to_path_buf(), source.text().to_string())
                })
                .collect(),
            inputs,
            submitted_us: super::task_service::epoch_us(),
            trace: crate::trace_context::current(),
        }
    }

    /// Checks the sources as the worker's deployment sees them (which
    /// agents may receive PHI) and returns the program and the index of
    /// the workflow; the error says what is wrong, for the run's failure.
    pub fn compile(&self, phi: phi::Policy<'_>) -> Result<(Program, usize), String> {
        let mut loader = Loader::default();
        for (path, text) in &self.sources {
            loader.insert_text(path, text.clone());
        }
        let unit = loader
            .load_unit(&self.root)
            .map_err(|err| format!("the run has no source for `{}`: {err}", self.root.display()))?;
        if let Some(error) = unit.errors.first() {
            return Err(error.to_string());
        }
        let report = check::check(&unit, phi);
        if report.has_errors() {
            let problems: Vec<String> = report
                .problems
                .iter()
                .filter(|p| p.is_error())
                .map(ToString::to_string)
                .collect();
            return Err(format!(
                "`{}` does not check on this worker: {}",
                file_name(&self.root),
                problems.join("; ")
            ));
        }
        let program = report.program.expect("a file without errors has a program");
        let workflow = program
            .workflows
            .iter()
            .position(|w| w.name == self.workflow)
            .ok_or_else(|| {
                format!(
                    "`{}` declares no workflow `{}`",
                    file_name(&self.root),
                    self.workflow
                )
            })?;
        Ok((program, workflow))
    }
}
