//! What a workflow offers its callers: name, description, inputs, agents and
//! execution pattern. `wfc list` prints it; `wfc serve` answers
//! `GET /v1/workflows/types` with it.

use std::path::Path;

use serde::Serialize;

use crate::check::{Program, WorkflowDef};

#[derive(Debug, Clone, Serialize)]
pub struct WorkflowInfo {
    pub name: String,
    pub description: String,
    pub file: String,
    /// `single`, `parallel`, `sequential` or `mixed`.
    pub pattern: &'static str,
    /// The agents the tasks name, in the order of the tasks.
    pub agents: Vec<String>,
    pub inputs: Vec<InputInfo>,
    pub tasks: Vec<TaskInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InputInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
    pub required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    pub description: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskInfo {
    pub name: String,
    pub agent: String,
    pub priority: u32,
    pub max_tokens: u32,
    pub depends_on: Vec<String>,
}

#[must_use]
pub fn describe(workflow: &WorkflowDef, file: &Path) -> WorkflowInfo {
    let mut agents: Vec<String> = Vec::new();
    for task in &workflow.tasks {
        if !agents.contains(&task.agent) {
            agents.push(task.agent.clone());
        }
    }
    WorkflowInfo {
        name: workflow.name.clone(),
        description: workflow.doc.clone(),
        file: file.display().to_string(),
        pattern: pattern(workflow),
        agents,
        inputs: workflow
            .inputs
            .iter()
            .map(|input| InputInfo {
                name: input.name.clone(),
                ty: input.ty.to_string(),
                required: input.is_required(),
                default: input.default.clone(),
                description: input.doc.clone(),
            })
            .collect(),
        tasks: workflow
            .tasks
            .iter()
            .enumerate()
            .map(|(index, task)| TaskInfo {
                name: task.name.clone(),
                agent: task.agent.clone(),
                priority: task.priority,
                max_tokens: task.max_tokens,
                depends_on: workflow
                    .plan
                    .dependencies(index)
                    .into_iter()
                    .map(|dependency| workflow.tasks[dependency].name.clone())
                    .collect(),
            })
            .collect(),
    }
}

/// Every workflow a checked program declares.
#[must_use]
pub fn describe_all(program: &Program, file: &Path) -> Vec<WorkflowInfo> {
    program
        .workflows
        .iter()
        .map(|workflow| describe(workflow, file))
        .collect()
}

/// The seed's words for how a workflow's tasks run.
fn pattern(workflow: &WorkflowDef) -> &'static str {
    let waves = workflow.plan.waves();
    match (workflow.tasks.len(), waves.len()) {
        (1, _) => "single",
        (_, 1) => "parallel",
        (tasks, depth) if tasks == depth => "sequential",
        _ => "mixed",
    }
}
