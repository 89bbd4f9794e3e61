//! The durable engine: runs on Restate, across any number of worker
//! processes, surviving the crash of any of them and of the Restate server.
//!
//! A worker serves three Restate services: [`run_workflow::WfcRun`] (a run,
//! keyed by its id, driving the same conductor as the local engine),
//! [`task_service::WfcTask`] (one task's request, each attempt a durable
//! step) and [`slots::ServerSlots`] (the model servers' slots across the fleet).
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
    /// Where a task of `agent` takes its slot across the fleet, and the
    /// limits it holds to; `None` when nothing limits the agent.
    #[must_use]
    pub fn slot(&self, agents: &[AgentDef], agent: &str) -> Option<Slot> {
        let capacity = self.executor.capacity(agent);
        let own = agents
            .iter()
            .find(|a| a.name == agent)
            .map_or(capacity.own.unwrap_or(usize::MAX), |def| {
                dag::slots(def, capacity.own)
            });
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        match capacity.shared {
            Some(pool) => Some(Slot {
                key: pool.name,
                agent_limit: count(own),
                capacity: count(pool.limit),
            }),
            None if own == usize::MAX => None,
            None => Some(Slot {
                key: agent.to_string(),
                agent_limit: count(own),
                capacity: count(own),
            }),
        }
    }
}

/// A slots object's key (the pool of servers agents share, else the
/// agent) and what a task of one agent may take there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub key: String,
    pub agent_limit: u32,
    pub capacity: u32,
}
