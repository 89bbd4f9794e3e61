//! Answers from a script: a `test` block's mocked tasks get their scripted
//! text (or failure) and every other job goes on to the next executor.

use std::collections::HashMap;

use futures_util::future::BoxFuture;

use super::events::Observer;
use super::execute::Executor;
use super::job::{Answer, Failure, Job};
use crate::check::MockAnswer;
use crate::check::conform::typed;

pub struct Scripted<'a, E> {
    answers: HashMap<&'a str, &'a MockAnswer>,
    rest: E,
}

impl<'a, E> Scripted<'a, E> {
    pub fn new(mocks: &'a [(String, MockAnswer)], rest: E) -> Self {
        let answers = mocks
            .iter()
            .map(|(task, answer)| (task.as_str(), answer))
            .collect();
        Scripted { answers, rest }
    }
}

impl<E: Executor> Executor for Scripted<'_, E> {
    fn execute<'b>(
        &'b self,
        job: &'b Job,
        observer: &'b dyn Observer,
    ) -> BoxFuture<'b, Result<Answer, Failure>> {
        let Some(scripted) = self.answers.get(job.task.as_str()) else {
            return self.rest.execute(job, observer);
        };
        let result = answer(job, scripted);
        Box::pin(async move { result })
    }

    fn capacity(&self, agent: &str) -> crate::router::Capacity {
        self.rest.capacity(agent)
    }

    fn model(&self, agent: &str) -> Option<String> {
        self.rest.model(agent)
    }
}

fn answer(job: &Job, scripted: &MockAnswer) -> Result<Answer, Failure> {
    let text = match scripted {
        MockAnswer::Failure(error) => return Err(Failure::permanent(error.clone(), 1)),
        MockAnswer::Text(text) => text,
    };
    let text = match &job.output {
        None => text.clone(),
        Some(shape) => typed(text, shape).map_err(|mismatch| {
            Failure::permanent(
                format!("the mocked answer does not match the declared output: {mismatch}"),
                1,
            )
        })?,
    };
    Ok(Answer {
        tokens: text.split_whitespace().count() as u32,
        text,
        model: job.model().to_string(),
        finish_reason: Some("stop".into()),
        attempts: 1,
        replayed: true,
        prompt: super::job::PromptUsage::default(),
    })
}
