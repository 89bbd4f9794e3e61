//! Running a checked workflow: bind the inputs, schedule the tasks over the
//! agents' servers, render the output, and report.

pub mod events;
pub mod execute;
pub mod inputs;
pub mod journal;
pub mod quality;
pub mod report;
pub mod scheduler;
pub mod stored;

pub use events::{Event, Observer};
pub use execute::{Executor, HttpExecutor, Job};
pub use report::Report;
pub use scheduler::{Finished, Scheduler};

use tokio_util::sync::CancellationToken;

use crate::check::{AgentDef, WorkflowDef};
use crate::render::Renderer;

/// Everything a run needs besides its inputs.
pub struct Runner<'a> {
    pub workflow: &'a WorkflowDef,
    pub agents: &'a [AgentDef],
    pub executor: &'a dyn Executor,
    pub observer: &'a dyn Observer,
    /// Requests each agent's servers take at once, when known.
    pub capacity: &'a (dyn Fn(&str) -> Option<usize> + Sync),
}

impl Runner<'_> {
    /// Runs the workflow to the end (or until `cancel`) and reports; a task
    /// that fails is in the report, never an error here.
    pub async fn run(
        &self,
        inputs: &serde_json::Map<String, serde_json::Value>,
        cancel: &CancellationToken,
    ) -> Result<Report, crate::render::RenderError> {
        let renderer = Renderer::new(self.workflow)?;
        let scheduler = Scheduler::new(
            self.workflow,
            self.agents,
            &renderer,
            self.executor,
            self.observer,
            self.capacity,
        );
        let finished = scheduler.run(inputs, cancel).await;
        let output = renderer
            .output(&finished.scope)
            .map_err(|err| err.to_string());
        Ok(Report::new(&self.workflow.name, &finished, output))
    }
}
