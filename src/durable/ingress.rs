//! Submitting runs to the durable engine and following them, through the
//! Restate server's HTTP ingress: what `wfc run --engine restate` and
//! `wfc serve --engine restate` do. Any process can follow any run: all
//! there is to know about a run is kept by Restate, under its id.

use std::time::Duration;

use serde::Deserialize;

use super::Submission;
use crate::client::describe;
use crate::run::{Observer, Report, RunEvent};

/// How often a run's events are asked for while it runs.
const POLL: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    #[error("cannot reach the Restate server at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the Restate server at {url} answered {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("the Restate server at {url} answered something that is not {what}: {reason}")]
    Malformed {
        url: String,
        what: &'static str,
        reason: String,
    },
    #[error("run `{run}` failed on the durable engine: {message}")]
    RunFailed { run: String, message: String },
    #[error("there is no run `{0}` on the durable engine")]
    NoSuchRun(String),
}

/// Where a run is.
#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    /// No run has this id.
    Missing,
    Running,
    Ended(Box<Report>),
}

/// Whether a submission started a run or found it already started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    Started,
    AlreadyStarted,
}

/// The Restate server's ingress, as seen from a process that submits and
/// follows runs.
#[derive(Debug, Clone)]
pub struct Ingress {
    url: String,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct SendResponse {
    status: String,
}

#[derive(Deserialize)]
struct FailureBody {
    message: String,
}

impl Ingress {
    #[must_use]
    pub fn new(url: &str) -> Self {
        Ingress {
            url: url.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
        }
    }

    /// Starts run `run` of the submission, unless a run with that id was
    /// started before: then that run goes on and nothing new starts.
    pub async fn submit(
        &self,
        run: &str,
        submission: &Submission,
    ) -> Result<Submitted, IngressError> {
        let url = format!("{}/restate/send/WfcRun/{}/run", self.url, encode(run));
        let response = self.send(self.http.post(&url).json(submission)).await?;
        let body: SendResponse = self.json(response, "a submission receipt").await?;
        Ok(if body.status == "PreviouslyAccepted" {
            Submitted::AlreadyStarted
        } else {
            Submitted::Started
        })
    }

    /// The run's events from the `from`th on.
    pub async fn events(&self, run: &str, from: u64) -> Result<Vec<RunEvent>, IngressError> {
        let url = format!("{}/restate/call/WfcRun/{}/events", self.url, encode(run));
        let response = self.send(self.http.post(&url).json(&from)).await?;
        self.json(response, "a list of run events").await
    }

    /// Asks run `run` to stop; it then ends with a report of what
    /// finished. A run that has ended stays as it was.
    pub async fn stop(&self, run: &str) -> Result<(), IngressError> {
        // Without this check the stop would wait for a run of that id
        // submitted later, and end it at once.
        if self.state(run).await? == RunState::Missing {
            return Err(IngressError::NoSuchRun(run.to_string()));
        }
        let url = format!("{}/restate/call/WfcRun/{}/stop", self.url, encode(run));
        self.send(self.http.post(&url)).await.map(drop)
    }

    /// Whether the Restate server answers and has a worker's services
    /// registered, so that a run submitted now will run.
    pub async fn workers_registered(&self) -> Result<bool, IngressError> {
        #[derive(Deserialize)]
        struct Health {
            services: Vec<String>,
        }
        let url = format!("{}/restate/health", self.url);
        let response = self.send(self.http.get(&url)).await?;
        let health: Health = self.json(response, "Restate's health").await?;
        Ok(health.services.iter().any(|service| service == "WfcRun"))
    }

    /// Whether run `run` exists, and its report once it has ended.
    pub async fn state(&self, run: &str) -> Result<RunState, IngressError> {
        let url = format!(
            "{}/restate/workflow/WfcRun/{}/output",
            self.url,
            encode(run)
        );
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|err| self.unreachable(&err))?;
        match response.status().as_u16() {
            404 => Ok(RunState::Missing),
            // Restate's "the invocation exists but has not completed yet".
            470 => Ok(RunState::Running),
            status if (200..300).contains(&status) => Ok(RunState::Ended(Box::new(
                self.json(response, "a run report").await?,
            ))),
            _ => Err(self.failure(run, response).await),
        }
    }

    /// Waits for the run to end, telling `observer` of each event as it
    /// comes (for a display of progress), and returns its report.
    pub async fn follow(&self, run: &str, observer: &dyn Observer) -> Result<Report, IngressError> {
        self.attach(run, Some(observer), Some(POLL)).await
    }

    /// Waits for the run to end, then tells `observer` of all its events
    /// at once (for metrics), and returns its report: no polling while
    /// it runs, which costs Restate an invocation each time.
    pub async fn outcome(
        &self,
        run: &str,
        observer: &dyn Observer,
    ) -> Result<Report, IngressError> {
        self.attach(run, Some(observer), None).await
    }

    /// Waits for the run to end and returns its report, without its events.
    pub async fn report(&self, run: &str) -> Result<Report, IngressError> {
        self.attach(run, None, None).await
    }

    /// Waits for the run's report; tells `observer` of the run's events
    /// every `poll` while it runs, and of the rest at the end.
    async fn attach(
        &self,
        run: &str,
        observer: Option<&dyn Observer>,
        poll: Option<Duration>,
    ) -> Result<Report, IngressError> {
        let url = format!(
            "{}/restate/workflow/WfcRun/{}/attach",
            self.url,
            encode(run)
        );
        let attach = self.http.get(&url).send();
        tokio::pin!(attach);
        let mut seen = 0;
        let response = match (poll, observer) {
            (Some(every), Some(observer)) => loop {
                tokio::select! {
                    response = &mut attach => break response,
                    () = tokio::time::sleep(every) => {
                        seen = self.tell(run, seen, observer).await?;
                    }
                }
            },
            _ => attach.await,
        }
        .map_err(|err| self.unreachable(&err))?;
        if !response.status().is_success() {
            return Err(self.failure(run, response).await);
        }
        let report = self.json(response, "a run report").await?;
        if let Some(observer) = observer {
            self.tell(run, seen, observer).await?;
        }
        Ok(report)
    }

    /// Tells `observer` of the events after the `seen`th; returns how many
    /// it has now seen.
    async fn tell(
        &self,
        run: &str,
        seen: u64,
        observer: &dyn Observer,
    ) -> Result<u64, IngressError> {
        let events = self.events(run, seen).await?;
        for event in &events {
            event.replay(observer);
        }
        Ok(seen + events.len() as u64)
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, IngressError> {
        let response = request.send().await.map_err(|err| self.unreachable(&err))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let (status, message) = explained(response).await;
        Err(IngressError::Status {
            url: self.url.clone(),
            status,
            message,
        })
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        response: reqwest::Response,
        what: &'static str,
    ) -> Result<T, IngressError> {
        let bytes = response
            .bytes()
            .await
            .map_err(|err| self.unreachable(&err))?;
        serde_json::from_slice(&bytes).map_err(|err| IngressError::Malformed {
            url: self.url.clone(),
            what,
            reason: err.to_string(),
        })
    }

    /// A run that ended in an error (a workflow that does not check on the
    /// worker, say), or the server's own refusal.
    async fn failure(&self, run: &str, response: reqwest::Response) -> IngressError {
        let (status, message) = explained(response).await;
        // 404: no run has this id; any other error is the run's own.
        if status != 404 && (400..=500).contains(&status) {
            IngressError::RunFailed {
                run: run.to_string(),
                message,
            }
        } else {
            IngressError::Status {
                url: self.url.clone(),
                status,
                message,
            }
        }
    }

    fn unreachable(&self, err: &reqwest::Error) -> IngressError {
        IngressError::Unreachable {
            url: self.url.clone(),
            reason: describe(err),
        }
    }
}

/// The status and Restate's `{"message": ...}` (or the body as it is).
async fn explained(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<FailureBody>(&body)
        .map_or_else(|_| body.trim().to_string(), |failure| failure.message);
    (status, message)
}

/// A run id as one path segment.
fn encode(run: &str) -> String {
    url::form_urlencoded::byte_serialize(run.as_bytes()).collect()
}
