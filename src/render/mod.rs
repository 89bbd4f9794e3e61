//! Rendering prompts and the output document from inputs and task results.
//! A template is compiled when it is rendered, and dropped after: a task's
//! prompt is rendered once (again only for a fallback agent), and a
//! compiled template takes kilobytes, so a 10,000-task workflow holds only
//! its sources, and the compiling happens while requests are in flight.
//!
//! Inputs and answers enter templates as values, never as template source,
//! so `{{ ... }}` inside a patient record or a model's answer stays text.

mod task_value;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use minijinja::{Environment, Value};

use crate::check::{TaskKind, WorkflowDef};
use crate::record::TaskRecord;
use task_value::{Passages, TaskValue};

const OUTPUT: &str = "the output";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{what} could not be rendered: {reason}")]
pub struct RenderError {
    pub what: String,
    pub reason: String,
}

pub struct Renderer<'w> {
    env: Environment<'static>,
    workflow: &'w WorkflowDef,
    /// Each task's prompt template.
    prompts: HashMap<&'w str, &'w str>,
    /// The tasks with a `when`, as templates that say whether it holds.
    conditions: HashMap<&'w str, String>,
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

    /// Adds a finished task's record, shared with the run's report.
    pub fn add(&mut self, record: Arc<TaskRecord>) {
        Arc::make_mut(&mut self.values).insert(
            record.task.clone(),
            Value::from_object(TaskValue::new(record)),
        );
    }

    /// Adds a finished retrieval's record: templates read it as a list of
    /// passages.
    pub fn add_passages(&mut self, record: Arc<TaskRecord>) {
        Arc::make_mut(&mut self.values).insert(
            record.task.clone(),
            Value::from_object(Passages::new(record)),
        );
    }
}

impl<'w> Renderer<'w> {
    /// The renderer of the workflow's templates, which the checker has
    /// parsed already: a template that does not compile is a checker bug,
    /// reported as a render error when it is rendered.
    #[must_use]
    pub fn new(workflow: &'w WorkflowDef) -> Self {
        Renderer {
            env: crate::template::environment(),
            workflow,
            prompts: workflow
                .tasks
                .iter()
                .map(|task| (task.name.as_str(), task.prompt.as_str()))
                .collect(),
            // A condition is a template that says whether it holds.
            conditions: workflow
                .tasks
                .iter()
                .filter_map(|task| {
                    let when = task.when.as_ref()?;
                    let source = format!("{{% if {when} %}}{HOLDS}{{% endif %}}");
                    Some((task.name.as_str(), source))
                })
                .collect(),
        }
    }

    /// Whether the task's `when` holds (true without one).
    pub fn condition(&self, task: &str, scope: &Scope) -> Result<bool, RenderError> {
        let Some(source) = self.conditions.get(task) else {
            return Ok(true);
        };
        Ok(self.render(&condition_name(task), source, scope)? == HOLDS)
    }

    pub fn prompt(&self, task: &str, scope: &Scope) -> Result<String, RenderError> {
        let name = prompt_name(task);
        let source = self.prompts.get(task).ok_or_else(|| RenderError {
            what: name.clone(),
            reason: "the workflow has no such task".to_string(),
        })?;
        self.render(&name, source, scope)
    }

    /// A retrieval task's filters, each value rendered; none for a chat
    /// task.
    pub fn filters(&self, task: &str, scope: &Scope) -> Result<Vec<(String, String)>, RenderError> {
        let kind = self
            .workflow
            .tasks
            .iter()
            .find(|t| t.name == task)
            .map(|t| &t.kind);
        let Some(TaskKind::Retrieve(retrieval)) = kind else {
            return Ok(Vec::new());
        };
        retrieval
            .filters
            .iter()
            .map(|(field, source)| {
                let name = format!("the filter `{field}` of task `{task}`");
                Ok((field.clone(), self.render(&name, source, scope)?))
            })
            .collect()
    }

    /// The output document; without an output template, each task's answer
    /// under its name, in the order the file declares them.
    pub fn output(&self, scope: &Scope) -> Result<String, RenderError> {
        if let Some(source) = &self.workflow.output {
            return self.render(OUTPUT, source, scope);
        }
        let sections: Vec<String> = self
            .workflow
            .tasks
            .iter()
            .filter_map(|task| {
                let name = &task.name;
                scope
                    .values
                    .get(name)
                    .map(|value| format!("## {name}\n\n{value}"))
            })
            .collect();
        Ok(sections.join("\n\n"))
    }

    fn render(&self, name: &str, source: &str, scope: &Scope) -> Result<String, RenderError> {
        let failed = |err: minijinja::Error| RenderError {
            what: name.to_string(),
            // Only the message and the line: minijinja's long form lists the
            // values of variables, which would put patient data in errors.
            reason: err.to_string(),
        };
        let template = self
            .env
            .template_from_named_str(name, source)
            .map_err(failed)?;
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
