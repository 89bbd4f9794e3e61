//! The harness: [`Wfc`] runs the binary; the rest runs workflows in process
//! with real HTTP to the mock model server on 127.0.0.1, through the same
//! router, client and scheduler `wfc run` uses.

pub(crate) mod chroma;
mod command;
pub(crate) mod restate;

pub(crate) use command::{Ran, Wfc};

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use wfc::check::{Program, WorkflowDef};
use wfc::client::Client;
use wfc::mock::{MockConfig, MockServer};
use wfc::policy::Backoff;
use wfc::router::{Router, RouterConfig};
use wfc::run::{HttpExecutor, Observer, Report, Session};

/// Checks `source` and returns its program; a file with errors fails the
/// test.
pub(crate) fn program(dir: &Path, source: &str) -> Program {
    let path = dir.join("test.wf");
    std::fs::write(&path, source).unwrap();
    checked(&path)
}

/// A workflow of the built-in library.
pub(crate) fn library_program(name: &str) -> Program {
    checked(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("workflows")
            .join(name),
    )
}

pub(crate) fn checked(path: &Path) -> Program {
    let report = wfc::check::check_file(&mut wfc::loader::Loader::default(), path).unwrap();
    assert!(!report.has_errors(), "{:#?}", report.problems);
    report.program.unwrap()
}

/// The base URL of a real server in `variable`, or `None` (after saying
/// so) when the test should be skipped. Where `WFC_REQUIRE_SERVERS` is set
/// (`.ci/run` sets it), a missing server fails the test instead.
pub(crate) fn server_url(variable: &str, test: &str) -> Option<String> {
    match std::env::var(variable) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().trim_end_matches('/').to_string()),
        _ if std::env::var_os("WFC_REQUIRE_SERVERS").is_some() => panic!(
            "{test}: {variable} is not set, and WFC_REQUIRE_SERVERS says every real server must be there"
        ),
        _ => {
            eprintln!(
                "SKIPPED {test}: {variable} is not set (no server to talk to; .ci/run starts one)"
            );
            None
        }
    }
}

/// A quick backoff, so retry tests do not wait long.
pub(crate) const QUICK: Backoff = Backoff {
    base: Duration::from_millis(20),
    max: Duration::from_secs(5),
};

pub(crate) struct Setup<'a> {
    pub program: &'a Program,
    pub workflow: &'a WorkflowDef,
    pub routes: RouterConfig,
    pub inputs: serde_json::Value,
    /// Where the run keeps its journal (and finds an earlier run's).
    pub run_dir: Option<PathBuf>,
    pub cache: Option<PathBuf>,
    pub stream: bool,
    pub observer: &'a dyn Observer,
    /// Where corpora are found: the library's, beside its workflows.
    pub home: PathBuf,
}

impl<'a> Setup<'a> {
    /// The program's first workflow, every agent served by `mock`.
    pub(crate) fn new(program: &'a Program, mock: &MockServer) -> Self {
        Self::for_workflow(program, &program.workflows[0], mock)
    }

    pub(crate) fn for_workflow(
        program: &'a Program,
        workflow: &'a WorkflowDef,
        mock: &MockServer,
    ) -> Self {
        let agents = program.agents.iter().map(|a| a.name.clone());
        Setup {
            program,
            workflow,
            routes: RouterConfig::everything_at(&mock.base_url(), agents),
            inputs: serde_json::json!({}),
            run_dir: None,
            cache: None,
            stream: true,
            observer: &(),
            home: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("workflows"),
        }
    }

    pub(crate) fn inputs(mut self, inputs: serde_json::Value) -> Self {
        self.inputs = inputs;
        self
    }

    pub(crate) async fn run(&self) -> Report {
        self.run_until(&CancellationToken::new()).await
    }

    pub(crate) async fn run_until(&self, cancel: &CancellationToken) -> Report {
        self.run_on(&self.executor(), cancel).await
    }

    /// An executor for the test's own routes, whatever `WFC_ROUTE_*` the
    /// environment has; runs that share one share its servers' slots.
    pub(crate) fn executor(&self) -> HttpExecutor {
        let names: Vec<&str> = self
            .program
            .agents
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        HttpExecutor {
            router: Router::with_env(&self.routes, &names, |_| None).unwrap(),
            client: Client::default(),
            corpora: std::sync::Arc::new(self.routes.corpora(&self.home)),
            chroma: self.routes.chroma_corpora(|_| None).unwrap(),
            embedder: self.routes.embedder(|_| None).unwrap(),
            embedding: tokio::sync::Mutex::new(()),
            stream: self.stream,
        }
    }

    pub(crate) async fn run_on(&self, http: &HttpExecutor, cancel: &CancellationToken) -> Report {
        let given = self
            .inputs
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), wfc::check::conform::Given::Json(v.clone())))
            .collect();
        let inputs = wfc::run::inputs::bind(self.workflow, given).unwrap();
        let mut session = Session::new(self.program, self.workflow, http)
            .backoff(QUICK)
            .cache(self.cache.clone());
        if let Some(dir) = &self.run_dir {
            session = session.journal(dir).unwrap();
        }
        session.run(&inputs, self.observer, cancel).await
    }
}

pub(crate) fn latency(pairs: &[(&str, u64)]) -> MockConfig {
    MockConfig {
        latency: pairs
            .iter()
            .map(|(model, ms)| (model.to_string(), Duration::from_millis(*ms)))
            .collect(),
        ..MockConfig::default()
    }
}

pub(crate) fn result<'r>(report: &'r Report, task: &str) -> &'r wfc::run::report::TaskResult {
    report
        .results
        .iter()
        .find(|r| r.task_id == task)
        .unwrap_or_else(|| panic!("no result for {task}"))
}

/// The report with the figures that depend on the machine set to zero,
/// and those that depend on which of two tasks reached the server first
/// (what its cache held).
pub(crate) fn normalised(report: &wfc::run::Report) -> serde_json::Value {
    let mut json = serde_json::to_value(report).unwrap();
    json["metadata"]["cached_prompt_tokens"] = 0.into();
    json["total_latency_ms"] = 0.into();
    json["parallel_efficiency"] = 0.into();
    json["metadata"]["sequential_time_ms"] = 0.into();
    json["metadata"]["speedup_factor"] = 0.into();
    for result in json["results"].as_array_mut().unwrap() {
        for field in ["latency_ms", "started_ms", "finished_ms"] {
            result[field] = 0.into();
        }
        if result["cached_tokens"].is_number() {
            result["cached_tokens"] = 0.into();
        }
    }
    json
}
