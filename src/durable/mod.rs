//! The durable engine: runs on Restate, across any number of worker
//! processes, surviving the crash of any of them and of the Restate server.
//!
//! A worker serves three Restate services: [`run_workflow::WfcRun`] (a run,
//! keyed by its id, driving the same conductor as the local engine),
//! [`task_service::WfcTask`] (one task's request, each attempt a durable
//! step) and [`slots::AgentSlots`] (an agent's slots across the fleet).
//! [`ingress`] submits runs and follows them from outside (`wfc run
//! --engine restate`).

pub mod ingress;
pub mod run_workflow;
pub mod slots;
pub mod submission;
pub mod task_service;
pub mod worker;

use crate::check::AgentDef;
use crate::policy::Backoff;
use crate::router::RouterConfig;
use crate::run::{Executor, HttpExecutor, dag};

pub use submission::Submission;

/// What a worker brings to every run and task it serves: the deployment's
/// model servers and where PHI may go.
pub struct Worker {
    pub executor: HttpExecutor,
    pub backoff: Backoff,
    /// The router file's deployment; `None` when every agent is served by
    /// one server (the mock), where the `.wf` declarations decide.
    pub router: Option<RouterConfig>,
    /// How long Restate keeps a finished run's journal (prompts and
    /// answers) and its report.
    pub retention: std::time::Duration,
}

impl Worker {
    /// How many requests `agent` takes at once across the fleet.
    #[must_use]
    pub fn capacity(&self, agents: &[AgentDef], agent: &str) -> u32 {
        let served = self.executor.capacity(agent);
        let slots = agents
            .iter()
            .find(|a| a.name == agent)
            .map_or(served.unwrap_or(usize::MAX), |def| dag::slots(def, served));
        u32::try_from(slots).unwrap_or(u32::MAX)
    }
}
