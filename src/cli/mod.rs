//! The `wfc` command line: thin commands over the library.

/// `print!` that stops quietly when stdout is closed early (`wfc ... | head`)
/// instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_out(format_args!($($arg)*))
    };
}

/// `println!`, likewise.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod check;
mod error;
mod fmt;
mod graph;
mod index;
mod list;
mod malloc;
mod mock_server;
mod progress;
mod run;
mod serve;
mod telemetry;
mod test;
mod worker;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser, Subcommand};

use error::Error;

#[derive(Parser)]
#[command(
    name = "wfc",
    version,
    about = "Check, format and run .wf multi-agent LLM workflows",
    after_help = "Run `wfc explain CODE` for the long explanation of a diagnostic code."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[arg(
        long,
        global = true,
        value_name = "URL",
        help = "Export traces over OTLP/HTTP to this collector (wfc run, serve and worker; default: OTEL_EXPORTER_OTLP_ENDPOINT, if set)"
    )]
    otlp_endpoint: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Report every error and warning in .wf files (a CI lint)
    Check(check::Args),
    /// Rewrite .wf files in the canonical layout
    Fmt(fmt::Args),
    /// Draw a workflow's task graph with its critical path
    Graph(graph::Args),
    /// List the workflows with their inputs, agents and pattern
    List(list::Args),
    /// Build or update the search indexes of the workflows' corpora
    Index(index::Args),
    /// Run a workflow against the agents' model servers
    Run(Box<run::Args>),
    /// Run the workflows' `test` blocks (mocked answers, or --live)
    Test(test::Args),
    /// Serve the workflows over HTTP (the seed's API), with JWT auth
    Serve(Box<serve::Args>),
    /// Serve the workflows on the durable engine, as a worker of a Restate server
    Worker(worker::Args),
    /// Serve the built-in mock model server (OpenAI-compatible) on a port
    MockServer(mock_server::Args),
    /// Explain a diagnostic code at length, with an example
    Explain {
        /// A code such as `wf::cycle` (the `wf::` may be left out); without
        /// one, lists all codes
        code: Option<String>,
    },
    /// Run the language server over stdio (for editors)
    Lsp,
    /// Print a shell completion script
    Completions { shell: clap_complete::Shell },
}

/// Runs the command line and returns the exit code.
pub(crate) fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                error::Code::Usage as i32
            } else {
                0
            };
        }
    };
    let otlp = cli
        .otlp_endpoint
        .clone()
        .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok())
        .filter(|endpoint| !endpoint.is_empty());
    match dispatch(cli.command, otlp.as_deref()) {
        Ok(()) => 0,
        Err(err) => {
            err.render();
            err.code() as i32
        }
    }
}

fn dispatch(command: Command, otlp: Option<&str>) -> Result<(), Error> {
    // Before any thread starts.
    if matches!(
        command,
        Command::Check(_) | Command::Fmt(_) | Command::Graph(_) | Command::List(_)
    ) {
        malloc::for_batch();
    } else {
        malloc::for_long_runs();
    }
    match command {
        Command::Check(args) => check::run(&args),
        Command::Fmt(args) => fmt::run(&args),
        Command::Graph(args) => graph::run(&args),
        Command::List(args) => list::run(&args),
        Command::Index(args) => index::run(&args),
        Command::Run(args) => traced(otlp, || run::run(*args)),
        Command::Test(args) => test::run(&args),
        Command::Serve(args) => traced(otlp, || serve::run(&args)),
        Command::Worker(args) => traced(otlp, || worker::run(&args)),
        Command::MockServer(args) => traced(None, || mock_server::run(&args)),
        Command::Lsp => wfc::lsp::run().map_err(Error::usage),
        Command::Explain { code } => explain(code.as_deref()),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "wfc", &mut std::io::stdout());
            Ok(())
        }
    }
}

fn explain(code: Option<&str>) -> Result<(), Error> {
    let Some(code) = code else {
        outln!("Diagnostic codes (run `wfc explain CODE` for one):\n");
        for entry in wfc::explain::CODES {
            outln!("  {:<24} {}", entry.code, entry.summary());
        }
        return Ok(());
    };
    let entry = wfc::explain::lookup(code).ok_or_else(|| {
        Error::usage(format!(
            "there is no diagnostic code `{code}`; run `wfc explain` to list them"
        ))
    })?;
    out!("{}", entry.text);
    Ok(())
}

/// Runs `command` with structured logs on stderr, filtered by `WFC_LOG`
/// (e.g. `WFC_LOG=debug`; by default only errors, since progress already
/// reports retries), and with `otlp`, wfc's spans exported over OTLP and
/// flushed before it returns.
fn traced(otlp: Option<&str>, command: impl FnOnce() -> Result<(), Error>) -> Result<(), Error> {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_env("WFC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter);
    let provider = otlp.map(telemetry::provider).transpose()?;
    let spans = provider.as_ref().map(|provider| {
        use opentelemetry::trace::TracerProvider;
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("wfc"))
            .with_filter(
                tracing_subscriber::filter::Targets::new().with_target("wfc", tracing::Level::INFO),
            )
    });
    tracing_subscriber::registry().with(logs).with(spans).init();
    let result = command();
    if let Some(provider) = provider
        && let Err(err) = provider.shutdown()
    {
        eprintln!("warning: the last traces may not have reached the collector: {err}");
    }
    result
}

/// Where runs happen, for `wfc run` and `wfc serve`.
#[derive(clap::Args)]
struct EngineArgs {
    /// Where runs happen: in this process, or on the durable engine
    /// (Restate and its `wfc worker`s, whose deployment then decides where
    /// requests go)
    #[arg(long, value_enum, default_value_t = Engine::Local)]
    engine: Engine,
    /// The Restate server's ingress, with --engine restate
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    restate: String,
}

/// Recording a cassette, for `wfc run` and `wfc test --live`.
#[derive(clap::Args)]
struct RecordArgs {
    /// Write every request and its answer to this cassette folder, for
    /// `wfc test --replay`
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
    /// Record prompts that carry PHI as they are (keep the cassette inside
    /// the PHI boundary)
    #[arg(long, requires = "record", conflicts_with = "redact")]
    allow_phi: bool,
    /// Write prompts and answers through the `redact` filter
    #[arg(long, requires = "record")]
    redact: bool,
}

impl RecordArgs {
    /// `http` wrapped in a recorder, when asked for; refused when a
    /// workflow's prompts carry PHI and neither `--allow-phi` nor
    /// `--redact` says what to do with it.
    fn recorder<'h>(
        &self,
        http: &'h wfc::run::HttpExecutor,
        workflows: &[&wfc::check::WorkflowDef],
    ) -> Result<Option<wfc::run::cassette::Recorder<&'h wfc::run::HttpExecutor>>, Error> {
        let Some(dir) = &self.record else {
            return Ok(None);
        };
        let carrying: Vec<String> = workflows
            .iter()
            .flat_map(|workflow| workflow.tasks.iter())
            .filter(|task| task.reads_phi)
            .map(|task| format!("`{}`", task.name))
            .collect();
        if !carrying.is_empty() && !self.allow_phi && !self.redact {
            return Err(Error::usage(format!(
                "the prompts of {} carry PHI (from an `@phi` input), and a cassette would keep them: add --redact to write prompts and answers through `redact`, or --allow-phi to keep them as they are (then keep `{}` inside the PHI boundary)",
                carrying.join(", "),
                dir.display()
            )));
        }
        wfc::run::cassette::Recorder::new(http, dir, self.redact)
            .map(Some)
            .map_err(|err| {
                Error::usage(format!(
                    "cannot write the cassette `{}`: {err}",
                    dir.display()
                ))
            })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Engine {
    Local,
    Restate,
}

/// The files and folders given, else the current folder.
fn paths_or_here(paths: &[PathBuf]) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        paths.to_vec()
    }
}

/// The router file given, else `wfc.toml` in the current folder, else the
/// seed's local ports: the deployment of a long-running process.
fn router_in_folder(given: Option<&Path>) -> Result<wfc::router::RouterConfig, Error> {
    let file = given
        .map(Path::to_path_buf)
        .or_else(|| Some(PathBuf::from(wfc::router::FILE_NAME)).filter(|p| p.is_file()));
    file.map_or_else(
        || Ok(wfc::router::RouterConfig::seed()),
        |path| wfc::router::RouterConfig::read(&path),
    )
    .map_err(Error::usage)
}

/// Waits for Ctrl-C, or for SIGTERM (what a container stop or systemd
/// sends); either stops the run the same way, keeping what finished.
async fn stop_signal() -> error::Code {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut terminate) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return error::Code::Interrupted;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => error::Code::Interrupted,
        _ = terminate.recv() => error::Code::Terminated,
    }
}

/// The async runtime for the commands that talk to servers.
fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| Error::usage(format!("cannot start the async runtime: {err}")))
}

/// The `.wf` files that paths on the command line name.
fn discover(paths: &[std::path::PathBuf]) -> Result<Vec<std::path::PathBuf>, Error> {
    Ok(wfc::files::discover(paths)?)
}

/// A file that cannot be read.
fn unreadable(path: &std::path::Path, err: std::io::Error) -> Error {
    Error::from(wfc::files::Unreadable::new(path, err))
}

pub(crate) fn write_out(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_fmt(text);
}

/// Whether to colour what is written to `stream`: only a terminal, and
/// not with `NO_COLOR`. Each stream is asked for itself, so a redirected
/// stderr gets no escape codes and a terminal's stderr keeps its colour
/// when stdout is redirected.
fn color(stream: &impl IsTerminal) -> bool {
    stream.is_terminal() && std::env::var_os("NO_COLOR").is_none()
}
