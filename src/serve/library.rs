//! The workflows a server offers, loaded and checked together: a file with
//! errors refuses the whole set, so a reload never half-applies.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::catalog::{self, WorkflowInfo};
use crate::check::{self, Program, WorkflowDef, phi};
use crate::durable::Submission;
use crate::loader::{Loader, Unit};
use crate::run::{Deployment, HttpExecutor, agents_used};

/// Why a set of workflows cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot find the workflow files: {0}")]
    Sources(#[from] crate::files::Unreadable),
    /// Every diagnostic, ready to print.
    #[error("{0}")]
    Workflows(String),
}

pub struct Library {
    entries: BTreeMap<String, Entry>,
    /// Every agent a workflow can call, fallbacks included.
    agents: Vec<String>,
    /// Where corpora are when the router file does not say: beside the
    /// first workflow source.
    home: PathBuf,
}

pub struct Entry {
    pub program: Arc<Program>,
    pub index: usize,
    pub info: WorkflowInfo,
    /// The file and its imports as they were checked.
    unit: Arc<Unit>,
}

impl Entry {
    #[must_use]
    pub fn workflow(&self) -> &WorkflowDef {
        &self.program.workflows[self.index]
    }

    /// A run of this workflow for the durable engine, from the very text
    /// that was checked.
    #[must_use]
    pub fn submission(&self, inputs: serde_json::Map<String, serde_json::Value>) -> Submission {
        Submission::new(&self.unit, &self.workflow().name, inputs)
    }
}

impl Library {
    /// Loads and checks every `.wf` file the sources name (files, and
    /// folders searched); the error holds every diagnostic, ready to print.
    pub fn load(sources: &[PathBuf]) -> Result<Self, LoadError> {
        let files = crate::files::discover(sources)?;
        let mut loader = Loader::default();
        let mut entries = BTreeMap::new();
        let mut agents: Vec<String> = Vec::new();
        let mut report = String::new();
        for file in &files {
            let unit = Arc::new(
                loader
                    .load_unit(file)
                    .map_err(|err| crate::files::Unreadable::new(file, err))?,
            );
            let checked = check::check(&unit, phi::Policy::Declared);
            if checked.has_errors() {
                let problems = checked
                    .problems
                    .iter()
                    .map(|p| p as &dyn miette::Diagnostic);
                report.push_str(&crate::diagnostics::human(&checked.source, problems, false));
                continue;
            }
            let Some(program) = checked.program else {
                continue;
            };
            let program = Arc::new(program);
            for workflow in &program.workflows {
                for agent in agents_used(&program, workflow) {
                    if !agents.iter().any(|known| known == agent) {
                        agents.push(agent.to_string());
                    }
                }
            }
            for (index, workflow) in program.workflows.iter().enumerate() {
                let entry = Entry {
                    program: program.clone(),
                    index,
                    info: catalog::describe(workflow, &shown(file, sources)),
                    unit: unit.clone(),
                };
                if let Some(previous) = entries.insert(workflow.name.clone(), entry) {
                    report.push_str(&format!(
                        "error: workflow `{}` is declared in both `{}` and `{}`\n",
                        workflow.name,
                        previous.info.file,
                        file.display()
                    ));
                }
            }
        }
        if !report.is_empty() {
            return Err(LoadError::Workflows(report));
        }
        let home = sources.first().map_or_else(
            || PathBuf::from("."),
            |source| {
                if source.is_dir() {
                    source.clone()
                } else {
                    crate::files::folder_of(source)
                }
            },
        );
        Ok(Library {
            entries,
            agents,
            home,
        })
    }

    /// The deployment's model servers for the agents these workflows can
    /// call (taking answers streamed or whole); an agent without a route
    /// is an error.
    pub fn connect(
        &self,
        deployment: &Deployment,
        stream: bool,
    ) -> Result<HttpExecutor, LoadError> {
        let names: Vec<&str> = self.agents.iter().map(String::as_str).collect();
        deployment
            .connect(&names, &self.home, stream)
            .map_err(|err| LoadError::Workflows(format!("error: {err}\n")))
    }

    /// Every corpus a workflow can search, once, with how its documents
    /// are cut.
    #[must_use]
    pub fn corpora(&self) -> Vec<(String, u32)> {
        let mut corpora: BTreeMap<String, u32> = BTreeMap::new();
        for entry in self.entries.values() {
            for corpus in &entry.program.corpora {
                corpora
                    .entry(corpus.name.clone())
                    .or_insert(corpus.max_passage_len);
            }
        }
        corpora.into_iter().collect()
    }

    /// A workflow by name; the seed's hyphenated paths
    /// (`discharge-summary`) name the same workflow.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries
            .get(name)
            .or_else(|| self.entries.get(&name.replace('-', "_")))
    }

    /// Every workflow served, by name.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    pub fn infos(&self) -> impl Iterator<Item = &WorkflowInfo> {
        self.entries.values().map(|entry| &entry.info)
    }
}

/// A file as callers see it: relative to the served folder it was found
/// in, never the server's own absolute path.
fn shown(file: &Path, sources: &[PathBuf]) -> PathBuf {
    sources
        .iter()
        .find_map(|source| file.strip_prefix(source).ok())
        .filter(|relative| !relative.as_os_str().is_empty())
        .map_or_else(
            || file.file_name().map_or_else(PathBuf::new, PathBuf::from),
            Path::to_path_buf,
        )
}
