//! The dataflow bookkeeping of one run as plain data: which task is blocked,
//! queued, running or done, how many slots each agent has free, and which
//! queued task goes first. No clock, no rendering, no network: the local
//! engine drives it with tokio, and a durable engine can drive the same
//! state and replay it step for step.
//!
//! A task starts the moment its last dependency finishes and its agent has
//! a free slot, and so do the servers it shares with other agents. Queued
//! tasks take slots in order of priority, then of the longest path still
//! ahead of them (so the work that holds up the end of the run goes first),
//! then of declaration.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use serde::{Deserialize, Serialize};

use crate::check::{AgentDef, WorkflowDef};
use crate::router::Capacity;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskState {
    /// Waiting for this many dependencies.
    Blocked {
        waiting: usize,
    },
    /// Ready, waiting for a slot of `agent`.
    Queued {
        agent: String,
    },
    /// Holding a slot of `agent`.
    Running {
        agent: String,
    },
    Done(Ended),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ended {
    Answered,
    Failed,
    Skipped,
}

/// What became of a running task, as its engine reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    Answered,
    /// Its agent gave up: a fallback agent takes the task if one is left.
    AgentGaveUp,
    /// No agent can help (its prompt cannot be rendered, say).
    Failed,
    /// It is not to run (its condition is false).
    Skipped,
}

/// A task to start now on `agent`; its slot is already taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Start {
    pub task: usize,
    pub agent: String,
}

/// What settling a task decided besides the task itself.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settled {
    /// The agent that takes the task over, when its agent gave up and a
    /// fallback is left; the task is queued again for it.
    pub fallback: Option<String>,
    /// Tasks that can no longer run because of it (transitively), each
    /// with why, in the order they were decided; they are done.
    pub skipped: Vec<(usize, String)>,
}

/// The order of queued tasks: the greatest goes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct Urgency {
    priority: u32,
    remaining_cost: u64,
    earlier_in_file: Reverse<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DagState {
    states: Vec<TaskState>,
    names: Vec<String>,
    urgency: Vec<Urgency>,
    /// Each task's dependents, and whether the dependency is optional.
    dependents: Vec<Vec<(usize, bool)>>,
    /// Each task's own agent and own fallback.
    agent: Vec<String>,
    own_fallback: Vec<Option<String>>,
    /// Each agent's declared fallback.
    agent_fallback: BTreeMap<String, String>,
    /// The agents each task has already been given to.
    tried: Vec<Vec<String>>,
    queues: BTreeMap<String, BinaryHeap<(Urgency, usize)>>,
    busy: BTreeMap<String, usize>,
    slots: BTreeMap<String, usize>,
    /// The servers each agent shares with others, by pool name, and how
    /// many requests each pool takes and has.
    pool_of: BTreeMap<String, String>,
    pool_slots: BTreeMap<String, usize>,
    pool_busy: BTreeMap<String, usize>,
}

/// How many requests `agent` may have in flight: its own `max_concurrency`
/// and its servers' `capacity` (when the deployment says), whichever is
/// lower; at least one.
#[must_use]
pub fn slots(agent: &AgentDef, capacity: Option<usize>) -> usize {
    let declared = agent.max_concurrency.map(|n| n as usize);
    let limit = match (declared, capacity) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(usize::MAX),
    };
    limit.max(1)
}

impl DagState {
    /// The state of a run of `workflow` before anything started. `capacity`
    /// says how many requests an agent's servers take at once, alone and
    /// shared with other agents; the agent's own `max_concurrency` also
    /// limits it.
    pub fn new(
        workflow: &WorkflowDef,
        agents: &[AgentDef],
        capacity: impl Fn(&str) -> Capacity,
    ) -> Self {
        let plan = &workflow.plan;
        let count = workflow.tasks.len();
        let cost: Vec<u64> = workflow
            .tasks
            .iter()
            .map(|t| u64::from(t.max_tokens))
            .collect();
        let remaining_cost = plan.remaining_cost(&cost);
        let capacities: Vec<(&AgentDef, Capacity)> = agents
            .iter()
            .map(|agent| (agent, capacity(&agent.name)))
            .collect();
        let slots = capacities
            .iter()
            .map(|(agent, capacity)| (agent.name.clone(), slots(agent, capacity.own)))
            .collect();
        let shared = || {
            capacities
                .iter()
                .filter_map(|(agent, capacity)| Some((&agent.name, capacity.shared.as_ref()?)))
        };
        let mut state = DagState {
            states: (0..count)
                .map(|task| TaskState::Blocked {
                    waiting: plan.dependencies(task).len(),
                })
                .collect(),
            names: workflow.tasks.iter().map(|t| t.name.clone()).collect(),
            urgency: workflow
                .tasks
                .iter()
                .enumerate()
                .map(|(task, def)| Urgency {
                    priority: def.priority,
                    remaining_cost: remaining_cost[task],
                    earlier_in_file: Reverse(task),
                })
                .collect(),
            dependents: (0..count)
                .map(|task| {
                    plan.dependents(task)
                        .into_iter()
                        .map(|dependent| (dependent, plan.is_optional(task, dependent)))
                        .collect()
                })
                .collect(),
            agent: workflow.tasks.iter().map(|t| t.agent.clone()).collect(),
            own_fallback: workflow.tasks.iter().map(|t| t.fallback.clone()).collect(),
            agent_fallback: agents
                .iter()
                .filter_map(|a| Some((a.name.clone(), a.fallback.clone()?)))
                .collect(),
            tried: vec![Vec::new(); count],
            queues: BTreeMap::new(),
            busy: BTreeMap::new(),
            slots,
            pool_of: shared()
                .map(|(agent, pool)| (agent.clone(), pool.name.clone()))
                .collect(),
            pool_slots: shared()
                .map(|(_, pool)| (pool.name.clone(), pool.limit.max(1)))
                .collect(),
            pool_busy: BTreeMap::new(),
        };
        for task in 0..count {
            if state.states[task] == (TaskState::Blocked { waiting: 0 }) {
                let agent = state.agent[task].clone();
                state.enqueue(task, agent);
            }
        }
        state
    }

    #[must_use]
    pub fn state(&self, task: usize) -> &TaskState {
        &self.states[task]
    }

    /// How urgent `task` is against other tasks of its agent: its
    /// priority, then the work still ahead of it.
    #[must_use]
    pub fn urgency(&self, task: usize) -> (u32, u64) {
        let urgency = self.urgency[task];
        (urgency.priority, urgency.remaining_cost)
    }

    /// Whether every task is done.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.states
            .iter()
            .all(|state| matches!(state, TaskState::Done(_)))
    }

    /// The queued tasks that can start now, most urgent first across all
    /// agents; each is marked running and holds a slot of its agent.
    pub fn ready(&mut self) -> Vec<Start> {
        let mut starts = Vec::new();
        while let Some(agent) = self.most_urgent_with_a_slot() {
            let (_, task) = self
                .queues
                .get_mut(&agent)
                .and_then(BinaryHeap::pop)
                .expect("the chosen queue is not empty");
            self.occupy(&agent, true);
            self.states[task] = TaskState::Running {
                agent: agent.clone(),
            };
            starts.push(Start { task, agent });
        }
        starts
    }

    fn most_urgent_with_a_slot(&self) -> Option<String> {
        self.queues
            .iter()
            .filter(|(agent, _)| self.has_a_slot(agent))
            .filter_map(|(agent, queue)| queue.peek().map(|(urgency, _)| (*urgency, agent)))
            .max()
            .map(|(_, agent)| agent.clone())
    }

    fn has_a_slot(&self, agent: &str) -> bool {
        let free = |busy: &BTreeMap<String, usize>, limits: &BTreeMap<String, usize>, key: &str| {
            busy.get(key).copied().unwrap_or(0) < limits.get(key).copied().unwrap_or(usize::MAX)
        };
        free(&self.busy, &self.slots, agent)
            && self
                .pool_of
                .get(agent)
                .is_none_or(|pool| free(&self.pool_busy, &self.pool_slots, pool))
    }

    /// Takes (or gives back) a slot of `agent` and of its shared servers.
    fn occupy(&mut self, agent: &str, take: bool) {
        let count = |busy: &mut BTreeMap<String, usize>, key: &str| {
            let busy = busy.entry(key.to_string()).or_default();
            *busy = if take {
                *busy + 1
            } else {
                busy.saturating_sub(1)
            };
        };
        count(&mut self.busy, agent);
        if let Some(pool) = self.pool_of.get(agent) {
            count(&mut self.pool_busy, pool);
        }
    }

    /// Settles a running task: frees its slot, then queues it for a
    /// fallback agent, or ends it and releases (or skips) what waits for it.
    pub fn settle(&mut self, task: usize, verdict: Verdict) -> Settled {
        let TaskState::Running { agent } = self.states[task].clone() else {
            panic!("task {task} is settled but not running");
        };
        self.occupy(&agent, false);
        let mut settled = Settled::default();
        let ended = match verdict {
            Verdict::Answered => Ended::Answered,
            Verdict::Skipped => Ended::Skipped,
            Verdict::Failed => Ended::Failed,
            Verdict::AgentGaveUp => match self.fallback_for(task, &agent) {
                Some(next) => {
                    self.tried[task].push(agent);
                    self.enqueue(task, next.clone());
                    settled.fallback = Some(next);
                    return settled;
                }
                None => Ended::Failed,
            },
        };
        self.end(task, ended, &mut settled.skipped);
        settled
    }

    /// Ends a task that has not started (or is to be given up on): used
    /// when a run is interrupted. Returns what can no longer run because
    /// of it.
    pub fn abandon(&mut self, task: usize, ended: Ended) -> Vec<(usize, String)> {
        if let TaskState::Running { agent } = self.states[task].clone() {
            self.occupy(&agent, false);
        }
        if let TaskState::Queued { agent } = &self.states[task]
            && let Some(queue) = self.queues.get_mut(agent)
        {
            queue.retain(|(_, queued)| *queued != task);
        }
        let mut skipped = Vec::new();
        self.end(task, ended, &mut skipped);
        skipped
    }

    /// The agent to try after `agent` gave up on `task`: the task's own
    /// fallback first, then each agent's declared fallback, never one
    /// already tried.
    fn fallback_for(&self, task: usize, agent: &str) -> Option<String> {
        let own_agent = &self.agent[task];
        let own = (agent == own_agent)
            .then(|| self.own_fallback[task].clone())
            .flatten();
        let declared = self.agent_fallback.get(agent).cloned();
        own.or(declared)
            .filter(|next| next != agent && !self.tried[task].contains(next) && next != own_agent)
    }

    fn enqueue(&mut self, task: usize, agent: String) {
        self.queues
            .entry(agent.clone())
            .or_default()
            .push((self.urgency[task], task));
        self.states[task] = TaskState::Queued { agent };
    }

    fn end(&mut self, task: usize, ended: Ended, skipped: &mut Vec<(usize, String)>) {
        self.states[task] = TaskState::Done(ended);
        let reason = match ended {
            Ended::Answered => None,
            Ended::Skipped => Some(format!("`{}` was skipped", self.names[task])),
            Ended::Failed => Some(format!("`{}` failed", self.names[task])),
        };
        for (dependent, optional) in self.dependents[task].clone() {
            let TaskState::Blocked { waiting } = self.states[dependent] else {
                continue;
            };
            match &reason {
                Some(reason) if !optional => {
                    skipped.push((dependent, reason.clone()));
                    self.end(dependent, Ended::Skipped, skipped);
                }
                _ if waiting == 1 => {
                    let agent = self.agent[dependent].clone();
                    self.enqueue(dependent, agent);
                }
                _ => {
                    self.states[dependent] = TaskState::Blocked {
                        waiting: waiting - 1,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::check_file;
    use crate::loader::Loader;

    fn workflow(source: &str) -> (crate::check::Program, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dag.wf");
        std::fs::write(&path, source).unwrap();
        let report = check_file(&mut Loader::default(), &path).unwrap();
        assert!(!report.has_errors(), "{:#?}", report.problems);
        (report.program.unwrap(), dir)
    }

    fn names(program: &crate::check::Program, starts: &[Start]) -> Vec<String> {
        starts
            .iter()
            .map(|start| program.workflows[0].tasks[start.task].name.clone())
            .collect()
    }

    fn index(program: &crate::check::Program, name: &str) -> usize {
        program.workflows[0]
            .tasks
            .iter()
            .position(|t| t.name == name)
            .unwrap()
    }

    const DIAMOND: &str = r#"
agent A { model = "a" max_concurrency = 1 }
agent B { model = "b" }
workflow w {
  task root -> B { prompt = "root" }
  task left -> A { prompt = "{{ root }}" priority = 2 }
  task right -> A { prompt = "{{ root }}" priority = 5 }
  task join -> B { prompt = "{{ left }} {{ right }}" }
  task alone -> B { prompt = "alone" }
}
"#;

    #[test]
    fn tasks_start_when_ready_by_priority_within_slots() {
        let (program, _dir) = workflow(DIAMOND);
        let mut dag = DagState::new(&program.workflows[0], &program.agents, |_| {
            Capacity::default()
        });
        let first = dag.ready();
        assert_eq!(names(&program, &first), ["root", "alone"]);
        assert!(dag.ready().is_empty(), "nothing else is ready");

        let settled = dag.settle(index(&program, "root"), Verdict::Answered);
        assert_eq!(settled, Settled::default());
        // One slot on A: the higher priority goes first, the other waits.
        assert_eq!(names(&program, &dag.ready()), ["right"]);
        assert_eq!(
            dag.state(index(&program, "left")),
            &TaskState::Queued { agent: "A".into() }
        );
        dag.settle(index(&program, "right"), Verdict::Answered);
        assert_eq!(names(&program, &dag.ready()), ["left"]);
        dag.settle(index(&program, "left"), Verdict::Answered);
        assert_eq!(names(&program, &dag.ready()), ["join"]);
        dag.settle(index(&program, "join"), Verdict::Answered);
        assert!(!dag.is_finished());
        dag.settle(index(&program, "alone"), Verdict::Answered);
        assert!(dag.is_finished());
    }

    #[test]
    fn a_failure_skips_what_depends_on_it_transitively() {
        let (program, _dir) = workflow(DIAMOND);
        let mut dag = DagState::new(&program.workflows[0], &program.agents, |_| {
            Capacity::default()
        });
        dag.ready();
        let settled = dag.settle(index(&program, "root"), Verdict::Failed);
        let skipped: Vec<(String, String)> = settled
            .skipped
            .iter()
            .map(|(task, why)| (program.workflows[0].tasks[*task].name.clone(), why.clone()))
            .collect();
        assert_eq!(
            skipped,
            [
                ("left".to_string(), "`root` failed".to_string()),
                ("join".to_string(), "`left` was skipped".to_string()),
                ("right".to_string(), "`root` failed".to_string()),
            ]
        );
        assert_eq!(
            dag.state(index(&program, "join")),
            &TaskState::Done(Ended::Skipped)
        );
        assert!(dag.ready().is_empty());
    }

    #[test]
    fn an_agent_that_gives_up_hands_the_task_to_each_fallback_once() {
        let (program, _dir) = workflow(
            r#"
agent A { model = "a" fallback = B }
agent B { model = "b" fallback = C }
agent C { model = "c" }
workflow w {
  task t -> A { prompt = "t" }
  task after -> C { prompt = "{{ t }}" }
}
"#,
        );
        let mut dag = DagState::new(&program.workflows[0], &program.agents, |_| {
            Capacity::default()
        });
        let t = index(&program, "t");
        assert_eq!(dag.ready()[0].agent, "A");
        assert_eq!(
            dag.settle(t, Verdict::AgentGaveUp).fallback.as_deref(),
            Some("B")
        );
        assert_eq!(
            dag.ready(),
            [Start {
                task: t,
                agent: "B".into()
            }]
        );
        assert_eq!(
            dag.settle(t, Verdict::AgentGaveUp).fallback.as_deref(),
            Some("C")
        );
        assert_eq!(dag.ready()[0].agent, "C");
        let settled = dag.settle(t, Verdict::AgentGaveUp);
        assert_eq!(settled.fallback, None);
        assert_eq!(
            settled.skipped,
            [(index(&program, "after"), "`t` failed".to_string())]
        );
        assert!(dag.is_finished());
    }

    #[test]
    fn an_optional_dependency_releases_its_dependent_whatever_its_end() {
        let (program, _dir) = workflow(
            r#"
agent A { model = "a" }
workflow w {
  task draft -> A { prompt = "draft" }
  task review -> A { after = [draft?] prompt = "review" }
}
"#,
        );
        let mut dag = DagState::new(&program.workflows[0], &program.agents, |_| {
            Capacity::default()
        });
        dag.ready();
        let settled = dag.settle(index(&program, "draft"), Verdict::Failed);
        assert!(settled.skipped.is_empty());
        assert_eq!(names(&program, &dag.ready()), ["review"]);
    }

    #[test]
    fn the_deployment_s_capacity_limits_slots_with_max_concurrency() {
        let (program, _dir) = workflow(
            r#"
agent A { model = "a" max_concurrency = 3 }
workflow w {
  task a -> A { prompt = "a" }
  task b -> A { prompt = "b" }
  task c -> A { prompt = "c" }
}
"#,
        );
        let two = |_: &str| Capacity {
            own: Some(2),
            shared: None,
        };
        let mut dag = DagState::new(&program.workflows[0], &program.agents, two);
        assert_eq!(dag.ready().len(), 2);
        let mut dag = DagState::new(&program.workflows[0], &program.agents, |_| {
            Capacity::default()
        });
        assert_eq!(dag.ready().len(), 3);
    }

    #[test]
    fn agents_on_shared_servers_take_its_slots_most_urgent_first() {
        let (program, _dir) = workflow(
            r#"
agent Billing { model = "b" }
agent Claims { model = "c" }
workflow w {
  task bill -> Billing { prompt = "b" priority = 1 }
  task claim -> Claims { prompt = "c" priority = 9 }
  task appeal -> Claims { prompt = "a" priority = 5 }
}
"#,
        );
        let one_server = |_: &str| Capacity {
            own: Some(2),
            shared: Some(crate::router::Pool {
                name: "http://gpu/v1".into(),
                limit: 2,
            }),
        };
        let mut dag = DagState::new(&program.workflows[0], &program.agents, one_server);
        assert_eq!(names(&program, &dag.ready()), ["claim", "appeal"]);
        dag.settle(index(&program, "appeal"), Verdict::Answered);
        assert_eq!(names(&program, &dag.ready()), ["bill"]);
        assert!(dag.ready().is_empty());
    }

    #[test]
    fn the_state_round_trips_through_json() {
        let (program, _dir) = workflow(DIAMOND);
        let mut dag = DagState::new(&program.workflows[0], &program.agents, |_| {
            Capacity::default()
        });
        dag.ready();
        dag.settle(index(&program, "root"), Verdict::Answered);
        let json = serde_json::to_string(&dag).unwrap();
        let mut restored: DagState = serde_json::from_str(&json).unwrap();
        assert_eq!(
            names(&program, &restored.ready()),
            names(&program, &dag.ready())
        );
    }
}
