//! The one place that wires a run: the agents a workflow may call, the
//! deployment's servers for them, the executor stack (a test's script, the
//! journal and cache, retries, HTTP), the journal being written, and the
//! engine. `wfc run`, `wfc test`, `wfc serve` and the tests all go through
//! it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::conduct::Engine;
use super::events::Observer;
use super::execute::{Executor, HttpExecutor};
use super::journal::Journal;
use super::report::Report;
use super::retrying::Retrying;
use super::scripted::Scripted;
use super::stored::Stored;
use crate::check::{AgentDef, MockAnswer, Program, WorkflowDef};
use crate::client::Client;
use crate::policy::Backoff;
use crate::record::TaskRecord;
use crate::render::Renderer;
use crate::router::{Router, RouterConfig, RouterError};

/// Where a process sends its requests: a router file's deployment (with
/// the environment's `WFC_ROUTE_*` overrides) or one server for every
/// agent (the mock).
#[derive(Debug, Clone)]
pub enum Deployment {
    Router(RouterConfig),
    Everything(String),
}

impl Deployment {
    /// The HTTP executor for `agents`, which every run of the process
    /// shares (and with it the endpoints' health, the connection pool and
    /// the open corpora). Corpora are found beside the router file, else
    /// under `home` (the workflow's folder).
    pub fn connect(
        &self,
        agents: &[&str],
        home: &Path,
        stream: bool,
    ) -> Result<HttpExecutor, RouterError> {
        let config = match self {
            Deployment::Router(config) => {
                let mut config = config.clone();
                config.apply_overrides(agents, |name| std::env::var(name).ok());
                config
            }
            Deployment::Everything(url) => {
                RouterConfig::everything_at(url, agents.iter().map(ToString::to_string))
            }
        };
        Ok(HttpExecutor {
            router: Router::new(&config, agents)?,
            client: Client::default(),
            corpora: std::sync::Arc::new(config.corpora(home)),
            chroma: config.chroma_corpora(|name| std::env::var(name).ok())?,
            embedder: config.embedder(|name| std::env::var(name).ok())?,
            embedding: tokio::sync::Mutex::new(()),
            stream,
        })
    }
}

/// The agents `workflow` may call: its tasks' agents and every fallback,
/// followed to the end.
#[must_use]
pub fn agents_used<'p>(program: &'p Program, workflow: &WorkflowDef) -> Vec<&'p str> {
    let declared = |name: &str| program.agents.iter().find(|agent| agent.name == name);
    let mut used = BTreeSet::new();
    let mut pending: Vec<&str> = workflow
        .tasks
        .iter()
        .flat_map(|t| std::iter::once(t.agent.as_str()).chain(t.fallback.as_deref()))
        .collect();
    while let Some(name) = pending.pop() {
        if let Some(agent) = declared(name)
            && used.insert(agent.name.as_str())
        {
            pending.extend(agent.fallback.as_deref());
        }
    }
    used.into_iter().collect()
}

/// One run of one workflow, wired.
pub struct Session<'a> {
    workflow: &'a WorkflowDef,
    agents: &'a [AgentDef],
    base: &'a dyn Executor,
    backoff: Backoff,
    script: &'a [(String, MockAnswer)],
    previous: Vec<TaskRecord>,
    cache: Option<PathBuf>,
    journal: Option<Journal>,
}

impl<'a> Session<'a> {
    /// A run of `workflow` (declared in `program`) whose requests go to
    /// `base`: an [`HttpExecutor`], or anything else that answers jobs.
    #[must_use]
    pub fn new(program: &'a Program, workflow: &'a WorkflowDef, base: &'a dyn Executor) -> Self {
        Session {
            workflow,
            agents: &program.agents,
            base,
            backoff: Backoff::default(),
            script: &[],
            previous: Vec::new(),
            cache: None,
            journal: None,
        }
    }

    /// Waits between attempts grow from this backoff.
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Answers the scripted tasks from the script instead of a server.
    #[must_use]
    pub fn script(mut self, script: &'a [(String, MockAnswer)]) -> Self {
        self.script = script;
        self
    }

    /// Keeps the run's journal in `dir`: answers it already holds (from an
    /// interrupted run) are not asked for again, and every task that
    /// finishes is added.
    pub fn journal(mut self, dir: &Path) -> std::io::Result<Self> {
        self.previous = Journal::read(dir)?;
        self.journal = Some(Journal::open(dir)?);
        Ok(self)
    }

    /// Answers identical requests from `dir`, and adds new answers to it.
    #[must_use]
    pub fn cache(mut self, dir: Option<PathBuf>) -> Self {
        self.cache = dir;
        self
    }

    /// Runs the workflow to the end (or until `cancel`) and reports; a task
    /// that fails is in the report, never an error here. The journal is
    /// closed (its last records synced) before this returns.
    pub async fn run(
        self,
        inputs: &serde_json::Map<String, serde_json::Value>,
        observer: &dyn Observer,
        cancel: &CancellationToken,
    ) -> Report {
        let renderer = Renderer::new(self.workflow);
        let executor = Scripted::new(
            self.script,
            Stored::new(
                Retrying {
                    inner: self.base,
                    backoff: self.backoff,
                },
                &self.previous,
                self.cache.clone(),
            ),
        );
        let capacity = |agent: &str| executor.capacity(agent);
        let observer = (&self.journal, observer);
        let engine = Engine {
            workflow: self.workflow,
            agents: self.agents,
            renderer: &renderer,
            executor: &executor,
            observer: &observer,
            capacity: &capacity,
        };
        // The run's span, for OpenTelemetry: its tasks' spans hang under it.
        let span = tracing::info_span!(
            "invoke_workflow",
            otel.name = %format!("invoke_workflow {}", self.workflow.name),
            gen_ai.operation.name = "invoke_workflow",
            wfc.workflow = %self.workflow.name,
        );
        let finished = engine.run(inputs, cancel).instrument(span).await;
        if let Some(journal) = self.journal {
            // Closing waits for the last sync: off the async workers.
            let _ = tokio::task::spawn_blocking(move || drop(journal)).await;
        }
        let output = renderer
            .output(&finished.scope)
            .map_err(|err| err.to_string());
        Report::new(&self.workflow.name, &finished, output)
    }
}
