//! How one task's request is carried out. The engine decides when; an
//! [`Executor`] decides how: over HTTP, from the journal or cache, from a
//! test's script, with retries around any of them.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use tracing::Instrument;

use super::events::{Event, Observer};
use super::job::{Answer, Failure, Job, PromptUsage, Request};
use crate::check::Type;
use crate::check::conform::{Mismatch, typed};
use crate::client::{CallError, ChatRequest, Client, Role, Turn};
use crate::policy::ErrorClass;
use crate::retrieve::Corpora;
use crate::router::{Capacity, ChromaCorpus, Embedder, Router};

pub trait Executor: Send + Sync {
    fn execute<'a>(
        &'a self,
        job: &'a Job,
        observer: &'a dyn Observer,
    ) -> BoxFuture<'a, Result<Answer, Failure>>;

    /// How many requests `agent`'s servers take at once, as the
    /// deployment says; layers around an executor pass the question on.
    fn capacity(&self, _agent: &str) -> Capacity {
        Capacity::default()
    }

    /// The model the deployment serves for `agent`, when it names one
    /// other than the agent's declared model: requests (and the keys of
    /// the journal and cache) carry the model actually asked for.
    fn model(&self, _agent: &str) -> Option<String> {
        None
    }
}

impl<T: Executor + ?Sized> Executor for &T {
    fn execute<'a>(
        &'a self,
        job: &'a Job,
        observer: &'a dyn Observer,
    ) -> BoxFuture<'a, Result<Answer, Failure>> {
        (**self).execute(job, observer)
    }

    fn capacity(&self, agent: &str) -> Capacity {
        (**self).capacity(agent)
    }

    fn model(&self, agent: &str) -> Option<String> {
        (**self).model(agent)
    }
}

/// Sends each job once to one of its agent's servers; retries belong to
/// [`super::Retrying`] around it. One is shared by every run of a process,
/// and with it the endpoints' health and the connection pool.
#[derive(Debug)]
pub struct HttpExecutor {
    pub router: Router,
    pub client: Client,
    /// The corpora retrieval tasks search on local disk.
    pub corpora: Arc<Corpora>,
    /// The corpora held by Chroma servers instead, by name.
    pub chroma: BTreeMap<String, ChromaCorpus>,
    /// Where passages and queries are embedded for dense search, when the
    /// deployment says.
    pub embedder: Option<Embedder>,
    /// Taken while a corpus's passages are embedded, so that two searches
    /// never embed the same passages twice.
    pub embedding: tokio::sync::Mutex<()>,
    /// Stream answers (so progress shows tokens as they come) or take them
    /// whole.
    pub stream: bool,
}

impl Executor for HttpExecutor {
    fn execute<'a>(
        &'a self,
        job: &'a Job,
        observer: &'a dyn Observer,
    ) -> BoxFuture<'a, Result<Answer, Failure>> {
        Box::pin(async move {
            let request = match &job.request {
                Request::Chat(request) => request,
                Request::Retrieve(search) => return self.search(job, search).await,
            };
            let span = chat_span(job, request);
            let result = self
                .attempt(job, request, observer)
                .instrument(span.clone())
                .await;
            record_outcome(&span, &result);
            result
        })
    }

    fn capacity(&self, agent: &str) -> Capacity {
        self.router.capacity(agent)
    }

    fn model(&self, agent: &str) -> Option<String> {
        self.router.model(agent)
    }
}

impl HttpExecutor {
    /// Why the job cannot be sent: its prompt and answer do not fit the
    /// agent's context window (the router's, else the agent's own).
    fn too_long(&self, job: &Job, request: &ChatRequest) -> Option<String> {
        let window = self
            .router
            .context_window(&job.agent)
            .or(job.context_window)?;
        crate::tokens::refusal(
            &job.task,
            &job.agent,
            request.system.as_deref(),
            &request.prompt,
            request.max_tokens,
            window,
        )
    }

    async fn attempt(
        &self,
        job: &Job,
        request: &ChatRequest,
        observer: &dyn Observer,
    ) -> Result<Answer, Failure> {
        if let Some(error) = self.too_long(job, request) {
            // Sending it would only fail (or be cut short) on every attempt.
            return Err(Failure::permanent(error, 0));
        }
        let Some(lease) = self.router.acquire(&job.agent, job.claim).await else {
            return Err(Failure::permanent(
                format!("agent `{}` has no endpoint", job.agent),
                0,
            ));
        };
        let endpoint = lease.endpoint();
        let mut target = endpoint.target().clone();
        if let Some(timeout) = job.timeout {
            target.timeout = timeout;
        }
        let mut request = request.clone();
        if let Some(model) = &endpoint.model {
            request.model = model.clone();
        }
        tracing::debug!(task = %job.task, agent = %job.agent, url = %endpoint.url(), "request");
        record_request(
            &tracing::Span::current(),
            &request.model,
            endpoint.address(),
        );
        let result = if self.stream {
            let mut on_text = |text: &str| {
                observer.on_event(&Event::Text {
                    task: &job.task,
                    text,
                });
            };
            self.client.stream(&target, &request, &mut on_text).await
        } else {
            self.client.complete(&target, &request).await
        };
        let completion = match result {
            Ok(completion) => {
                lease.record(true);
                if let Some(tokens) = completion.prompt_tokens {
                    tracing::Span::current().record("gen_ai.usage.input_tokens", tokens);
                }
                completion
            }
            Err(error) => {
                if error.is_endpoint_fault() {
                    lease.record(false);
                }
                return Err(call_failure(&error));
            }
        };
        let cut_off = completion.finish_reason.as_deref() == Some("length");
        let text = match &job.output {
            None => completion.text,
            // More attempts would be cut off at the same place.
            Some(_) if cut_off => {
                return Err(Failure {
                    tokens: completion.tokens,
                    ..Failure::permanent(
                        format!(
                            "max_tokens ({}) cut the answer off before its JSON was complete; raise the task's max_tokens",
                            request.max_tokens
                        ),
                        1,
                    )
                });
            }
            Some(shape) => match typed(&completion.text, shape) {
                Ok(json) => json,
                Err(mismatch) => {
                    return Err(Failure {
                        tokens: completion.tokens,
                        ..wrong_shape(completion.text, &mismatch, shape)
                    });
                }
            },
        };
        Ok(Answer {
            text,
            model: completion.model,
            tokens: completion.tokens,
            finish_reason: completion.finish_reason,
            attempts: 1,
            replayed: false,
            prompt: PromptUsage {
                tokens: completion.prompt_tokens,
                cached: completion.cached_tokens,
            },
        })
    }
}

/// A model request's span, as OpenTelemetry's `GenAI` conventions name its
/// parts; what the request and its answer say is never on it (PHI).
fn chat_span(job: &Job, request: &ChatRequest) -> tracing::Span {
    tracing::info_span!(
        "chat",
        otel.name = %format!("chat {}", request.model),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        gen_ai.operation.name = "chat",
        gen_ai.provider.name = "openai",
        gen_ai.request.model = %request.model,
        gen_ai.request.max_tokens = request.max_tokens,
        gen_ai.request.temperature = request.temperature,
        gen_ai.response.model = tracing::field::Empty,
        gen_ai.usage.input_tokens = tracing::field::Empty,
        gen_ai.usage.output_tokens = tracing::field::Empty,
        error.type = tracing::field::Empty,
        server.address = tracing::field::Empty,
        server.port = tracing::field::Empty,
        wfc.task = %job.task,
        wfc.agent = %job.agent,
    )
}

/// The model actually asked (the endpoint may name its own) and the server.
fn record_request(span: &tracing::Span, model: &str, address: Option<(&str, u16)>) {
    span.record("otel.name", format!("chat {model}"));
    span.record("gen_ai.request.model", model);
    if let Some((host, port)) = address {
        span.record("server.address", host);
        span.record("server.port", port);
    }
}

fn record_outcome(span: &tracing::Span, result: &Result<Answer, Failure>) {
    use opentelemetry::{Array, StringValue, Value};
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    match result {
        Ok(answer) => {
            span.record("gen_ai.response.model", answer.model.as_str());
            span.record("gen_ai.usage.output_tokens", answer.tokens);
            if let Some(reason) = &answer.finish_reason {
                let reasons = Array::String(vec![StringValue::from(reason.clone())]);
                span.set_attribute("gen_ai.response.finish_reasons", Value::Array(reasons));
            }
        }
        Err(failure) => {
            span.record("otel.status_code", "ERROR");
            span.record("error.type", failure.error_type());
        }
    }
}

pub(super) fn call_failure(error: &CallError) -> Failure {
    Failure {
        error: error.to_string(),
        class: error.class(),
        attempts: 1,
        tokens: 0,
        retry_after: error.retry_after(),
        correction: Vec::new(),
    }
}

/// A typed answer that does not match its declaration, with the turns that
/// ask the model to correct it.
fn wrong_shape(answer: String, mismatch: &Mismatch, shape: &Type) -> Failure {
    Failure {
        error: format!("the answer does not match the declared output: {mismatch}"),
        class: Some(ErrorClass::InvalidOutput),
        attempts: 1,
        tokens: 0,
        retry_after: None,
        correction: vec![
            Turn {
                role: Role::Assistant,
                content: answer,
            },
            Turn {
                role: Role::User,
                content: format!(
                    "That answer does not match the required JSON shape: {mismatch}. Answer again with only a JSON object of this shape: {}",
                    shape.json_schema()
                ),
            },
        ],
    }
}
