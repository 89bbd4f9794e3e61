//! Rendering prompts and the output document from inputs and task results.
//! Every template of a workflow is compiled once, before the first request.
//!
//! Inputs and answers enter templates as values, never as template source,
//! so `{{ ... }}` inside a patient record or a model's answer stays text.

mod task_value;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use minijinja::{Environment, Value};

use crate::check::WorkflowDef;
use crate::record::TaskRecord;
use task_value::TaskValue;

const OUTPUT: &str = "the output";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{what} could not be rendered: {reason}")]
pub struct RenderError {
    pub what: String,
    pub reason: String,
}

pub struct Renderer {
    env: Environment<'static>,
    /// Each task's `when` expression.
    /// The tasks with a `when`.
    conditions: BTreeSet<String>,
    has_output: bool,
    task_order: Vec<String>,
}

/// The names a template can read: the inputs, then each finished task.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Shared with the template being rendered, so rendering a prompt does
    /// not copy every answer so far.
    values: Arc<BTreeMap<String, Value>>,
}

impl Scope {
    #[must_use]
    pub fn new(inputs: &serde_json::Map<String, serde_json::Value>) -> Self {
        let values = inputs
            .iter()
            .map(|(name, value)| {
                let value = serde::Deserialize::deserialize(value)
                    .expect("every JSON value is a template value");
                (name.clone(), value)
            })
            .collect();
        Scope {
            values: Arc::new(values),
        }
    }

    pub fn add(&mut self, record: &TaskRecord) {
        Arc::make_mut(&mut self.values).insert(
            record.task.clone(),
            Value::from_object(TaskValue::new(record.clone())),
        );
    }
}

impl Renderer {
    /// Compiles the workflow's templates; the checker has parsed them
    /// already, so a failure here is a checker bug, reported as such.
    pub fn new(workflow: &WorkflowDef) -> Result<Self, RenderError> {
        let mut env = crate::template::environment();
        let compile = |env: &mut Environment<'static>, name: String, source: &str| {
            env.add_template_owned(name.clone(), source.to_string())
                .map_err(|err| RenderError {
                    what: name,
                    reason: err.to_string(),
                })
        };
        for task in &workflow.tasks {
            compile(&mut env, prompt_name(&task.name), &task.prompt)?;
        }
        if let Some(output) = &workflow.output {
            compile(&mut env, OUTPUT.to_string(), output)?;
        }
        // A condition is compiled once, like the templates: as a template
        // that says whether it holds.
        let mut conditions = BTreeSet::new();
        for task in &workflow.tasks {
            if let Some(when) = &task.when {
                let source = format!("{{% if {when} %}}{HOLDS}{{% endif %}}");
                compile(&mut env, condition_name(&task.name), &source)?;
                conditions.insert(task.name.clone());
            }
        }
        Ok(Renderer {
            env,
            conditions,
            has_output: workflow.output.is_some(),
            task_order: workflow.tasks.iter().map(|t| t.name.clone()).collect(),
        })
    }

    /// Whether the task's `when` holds (true without one).
    pub fn condition(&self, task: &str, scope: &Scope) -> Result<bool, RenderError> {
        if !self.conditions.contains(task) {
            return Ok(true);
        }
        Ok(self.render(&condition_name(task), scope)? == HOLDS)
    }

    pub fn prompt(&self, task: &str, scope: &Scope) -> Result<String, RenderError> {
        self.render(&prompt_name(task), scope)
    }

    /// The output document; without an output template, each task's answer
    /// under its name, in the order the file declares them.
    pub fn output(&self, scope: &Scope) -> Result<String, RenderError> {
        if self.has_output {
            return self.render(OUTPUT, scope);
        }
        let sections: Vec<String> = self
            .task_order
            .iter()
            .filter_map(|task| {
                scope
                    .values
                    .get(task)
                    .map(|value| format!("## {task}\n\n{value}"))
            })
            .collect();
        Ok(sections.join("\n\n"))
    }

    fn render(&self, name: &str, scope: &Scope) -> Result<String, RenderError> {
        let failed = |err: minijinja::Error| RenderError {
            what: name.to_string(),
            // Only the message and the line: minijinja's long form lists the
            // values of variables, which would put patient data in errors.
            reason: err.to_string(),
        };
        let template = self.env.get_template(name).map_err(failed)?;
        template
            .render(Value::from_dyn_object(scope.values.clone()))
            .map(|text| text.trim().to_string())
            .map_err(failed)
    }
}

fn prompt_name(task: &str) -> String {
    format!("the prompt of task `{task}`")
}

fn condition_name(task: &str) -> String {
    format!("the condition of task `{task}`")
}

/// What a condition's template renders when the condition holds.
const HOLDS: &str = "true";

#[cfg(test)]
mod tests;
