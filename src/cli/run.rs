//! `wfc run`: check a workflow, bind its inputs, run it against the agents'
//! servers (or the built-in mock), and print the output or the report.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use super::error::{Code, Error};
use super::progress::Progress;
use super::{Engine, EngineArgs, RecordArgs};
use tracing::Instrument;
use wfc::check::conform::Given;
use wfc::check::phi::Policy;
use wfc::check::{self, Program, WorkflowDef};
use wfc::durable::Submission;
use wfc::durable::ingress::{Ingress, Submitted};
use wfc::loader::{Loader, Unit};
use wfc::mock::MockServer;
use wfc::router::RouterConfig;
use wfc::run::inputs;
use wfc::run::journal::{self, DeploymentUsed, RunRequest};
use wfc::run::{Deployment, Report, Session, agents_used};

#[derive(clap::Args)]
pub(super) struct Args {
    /// The .wf file (not needed with --resume)
    #[arg(required_unless_present = "resume")]
    file: Option<PathBuf>,
    /// The workflow to run, when the file declares several
    #[arg(long, short)]
    workflow: Option<String>,
    /// An input: `name=value`, or `name=@file` to read the value from a file
    #[arg(long = "input", short = 'i', value_name = "NAME=VALUE")]
    input: Vec<String>,
    /// A JSON object of inputs
    #[arg(long = "inputs", value_name = "FILE")]
    inputs_file: Option<PathBuf>,
    /// The router file saying where each agent is served (default: wfc.toml
    /// beside the workflow, else the seed's local ports)
    #[arg(long, value_name = "FILE")]
    router: Option<PathBuf>,
    /// Answer every request from the built-in mock model server (no GPU)
    #[arg(long)]
    mock: bool,
    /// Mock response time: `AGENT=DURATION` for one agent, or `DURATION`
    /// for all (default: the seed's measured latencies)
    #[arg(long, value_name = "[AGENT=]DURATION", requires = "mock")]
    mock_latency: Vec<String>,
    /// Print the seed's JSON report instead of the output document
    #[arg(long)]
    json: bool,
    /// Show no progress on stderr
    #[arg(long, short)]
    quiet: bool,
    /// Where to keep the journal and report (default: .wfc/runs/<workflow>-<time>)
    #[arg(long, value_name = "DIR", conflicts_with = "resume")]
    run_dir: Option<PathBuf>,
    /// Finish an interrupted run: tasks in its journal are not asked again
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["file", "workflow", "input", "inputs_file"])]
    resume: Option<PathBuf>,
    /// Reuse answers to identical requests from this folder, and add new ones
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Take each answer whole instead of streaming it
    #[arg(long)]
    no_stream: bool,
    #[command(flatten)]
    engine: EngineArgs,
    /// The run's id on the durable engine; submitting an id again follows
    /// the run it started instead of starting another
    #[arg(long, value_name = "ID")]
    run_id: Option<String>,
    /// Submit the run to the durable engine, print its id and return
    /// without waiting for it
    #[arg(long)]
    detach: bool,
    /// Draw the run as an SVG timeline: a bar per task on its agent's lane,
    /// the critical path outlined
    #[arg(long, value_name = "FILE.svg")]
    timeline: Option<PathBuf>,
    #[command(flatten)]
    record: RecordArgs,
}

impl Args {
    /// Options the durable engine cannot honour: its workers' deployment
    /// and Restate's journal take their place.
    fn refuse_for_restate(&self) -> Result<(), Error> {
        let local_only = [
            ("--record", self.record.record.is_some()),
            ("--mock", self.mock),
            ("--router", self.router.is_some()),
            ("--resume", self.resume.is_some()),
            ("--cache", self.cache.is_some()),
        ];
        let local_only = local_only.iter().find(|(_, given)| *given);
        match (self.engine.engine, local_only) {
            (Engine::Restate, Some((flag, _))) => Err(Error::usage(format!(
                "{flag} does not apply with --engine restate: the workers' deployment decides where requests go, and Restate keeps the run's journal; start the workers with `wfc worker --router FILE`, and submit the same --run-id again to follow a run"
            ))),
            (Engine::Local, _) if self.run_id.is_some() || self.detach => Err(Error::usage(
                "--run-id and --detach are for runs on the durable engine; add --engine restate",
            )),
            _ => Ok(()),
        }
    }
}

pub(super) fn run(args: Args) -> Result<(), Error> {
    args.refuse_for_restate()?;
    let prepared = prepare(&args)?;
    super::runtime()?.block_on(execute(&args, prepared))
}

struct Prepared {
    /// The file and its imports as read, for a durable run's submission;
    /// a local run lets its syntax trees go before it starts.
    unit: Option<Unit>,
    program: Program,
    workflow: usize,
    inputs: serde_json::Map<String, serde_json::Value>,
    run_dir: PathBuf,
    deployment: DeploymentUsed,
    /// The router file's configuration, when the deployment is one.
    router: Option<RouterConfig>,
    /// The workflow file's folder, where its corpora are when no router
    /// file says otherwise.
    home: PathBuf,
}

fn prepare(args: &Args) -> Result<Prepared, Error> {
    let resumed = match &args.resume {
        Some(dir) => Some(RunRequest::read(dir).map_err(|err| {
            Error::usage(format!("`{}` is not a run directory: {err}", dir.display()))
        })?),
        None => None,
    };
    let file = match (&resumed, &args.file) {
        (Some(request), _) => request.file.clone(),
        (None, Some(file)) => file.clone(),
        (None, None) => unreachable!("clap requires a file without --resume"),
    };
    let (program, unit) = load(&file)?;
    let wanted = resumed
        .as_ref()
        .map(|r| r.workflow.clone())
        .or(args.workflow.clone());
    let workflow = choose(&program, wanted.as_deref(), &file)?;
    let def = &program.workflows[workflow];
    let given = match &resumed {
        Some(request) => request
            .inputs
            .iter()
            .map(|(k, v)| (k.clone(), Given::Json(v.clone())))
            .collect(),
        None => given_inputs(args)?,
    };
    let inputs = inputs::bind(def, given).map_err(|errors| Error::Inputs {
        errors: errors.iter().map(ToString::to_string).collect(),
        workflow: def.name.clone(),
        takes: takes(def),
    })?;
    let run_dir = match (&args.resume, &args.run_dir) {
        (Some(dir), _) | (None, Some(dir)) => dir.clone(),
        (None, None) => default_run_dir(&def.name),
    };
    let (deployment, router) = deployment_used(args, resumed.as_ref(), &file)?;
    let request = RunRequest {
        file: std::path::absolute(&file).unwrap_or(file.clone()),
        workflow: def.name.clone(),
        inputs: inputs.clone(),
        deployment: Some(deployment.clone()),
    };
    request.write(&run_dir).map_err(|err| {
        Error::usage(format!(
            "cannot write the run directory `{}`: {err}",
            run_dir.display()
        ))
    })?;
    Ok(Prepared {
        unit: (args.engine.engine == Engine::Restate).then_some(unit),
        program,
        workflow,
        inputs,
        run_dir,
        deployment,
        router,
        home: wfc::files::folder_of(&std::path::absolute(&file).unwrap_or(file)),
    })
}

/// Where this run's requests go, and the router file's content when they
/// go by one: what the command line says, else (on `--resume`) where the
/// interrupted run's went, refusing a router file that has changed since,
/// else `wfc.toml` beside the workflow or the seed's ports.
fn deployment_used(
    args: &Args,
    resumed: Option<&RunRequest>,
    file: &Path,
) -> Result<(DeploymentUsed, Option<RouterConfig>), Error> {
    // Read once: the digest recorded is of the very text the run uses.
    let of_file = |path: &Path| {
        let text = std::fs::read_to_string(path).map_err(|err| {
            Error::usage(format!(
                "cannot read the router file `{}`: {}",
                path.display(),
                wfc::files::reason(&err)
            ))
        })?;
        let config = RouterConfig::parse(path, &text).map_err(Error::usage)?;
        Ok((DeploymentUsed::router_file(path, &text), Some(config)))
    };
    if args.mock {
        return Ok((DeploymentUsed::Mock, None));
    }
    if args.engine.engine == Engine::Restate {
        let run = args.run_id.clone().unwrap_or_else(|| fresh_run_id(file));
        let restate = args.engine.restate.clone();
        return Ok((DeploymentUsed::Restate { restate, run }, None));
    }
    if let Some(router) = &args.router {
        return of_file(router);
    }
    match resumed.and_then(|request| request.deployment.clone()) {
        Some(recorded) => {
            let DeploymentUsed::RouterFile { path, .. } = &recorded else {
                return Ok((recorded, None));
            };
            let now = of_file(path)?;
            if now.0 != recorded {
                return Err(Error::usage(format!(
                    "the router file `{}` has changed since this run started, so its requests could go elsewhere; to resume with the file as it is now, pass `--router {}`",
                    path.display(),
                    path.display()
                )));
            }
            Ok(now)
        }
        None => match RouterConfig::locate(None, file) {
            Some(path) => of_file(&path),
            None => Ok((DeploymentUsed::Seed, None)),
        },
    }
}

/// Checks the file; any error stops the run with the diagnostics. The
/// file and its imports, as read, are kept for a durable run's submission.
fn load(file: &Path) -> Result<(Program, Unit), Error> {
    let unit = Loader::default()
        .load_unit(file)
        .map_err(|err| super::unreadable(file, err))?;
    let report = check::check(&unit, Policy::Declared);
    let has_errors = report.has_errors();
    if has_errors {
        let problems = report.problems.iter().map(|p| p as &dyn miette::Diagnostic);
        eprint!(
            "{}",
            wfc::diagnostics::human(&report.source, problems, super::color(&std::io::stderr()))
        );
    }
    let program = report.program.filter(|_| !has_errors).ok_or_else(|| {
        Error::Problems(format!("`{}` has errors; nothing was run", file.display()))
    })?;
    Ok((program, unit))
}

fn choose(program: &Program, wanted: Option<&str>, file: &Path) -> Result<usize, Error> {
    let names: Vec<&str> = program.workflows.iter().map(|w| w.name.as_str()).collect();
    match (wanted, names.as_slice()) {
        (None, [_]) => Ok(0),
        (None, []) => Err(Error::usage(format!(
            "`{}` declares no workflow",
            file.display()
        ))),
        (None, _) => Err(Error::usage(format!(
            "`{}` declares several workflows; choose one with --workflow: {}",
            file.display(),
            names.join(", ")
        ))),
        (Some(wanted), _) => names.iter().position(|n| *n == wanted).ok_or_else(|| {
            let hint = check::problem::did_you_mean(wanted, names.iter().copied())
                .map(|h| format!("; {h}"))
                .unwrap_or_default();
            Error::usage(format!(
                "`{}` has no workflow `{wanted}`{hint}",
                file.display()
            ))
        }),
    }
}

fn given_inputs(args: &Args) -> Result<Vec<(String, Given)>, Error> {
    let mut given = Vec::new();
    if let Some(path) = &args.inputs_file {
        let text = std::fs::read_to_string(path).map_err(|err| {
            Error::usage(format!(
                "cannot read `{}`: {}",
                path.display(),
                wfc::files::reason(&err)
            ))
        })?;
        let serde_json::Value::Object(object) = serde_json::from_str(&text).map_err(|err| {
            Error::usage(format!("`{}` is not valid JSON: {err}", path.display()))
        })?
        else {
            return Err(Error::usage(format!(
                "`{}` must hold a JSON object of inputs",
                path.display()
            )));
        };
        given.extend(object.into_iter().map(|(k, v)| (k, Given::Json(v))));
    }
    for pair in &args.input {
        let Some((name, value)) = pair.split_once('=') else {
            return Err(Error::usage(format!(
                "`--input {pair}` should be NAME=VALUE or NAME=@FILE"
            )));
        };
        let value = match value.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path).map_err(|err| {
                Error::usage(format!(
                    "cannot read `{path}` for input `{name}`: {}",
                    wfc::files::reason(&err)
                ))
            })?,
            None => value.to_string(),
        };
        given.retain(|(existing, _)| existing != name);
        given.push((name.trim().to_string(), Given::Text(value)));
    }
    Ok(given)
}

/// What the workflow takes, an input a line, for a person who gave it
/// something else.
fn takes(workflow: &WorkflowDef) -> Vec<String> {
    workflow
        .inputs
        .iter()
        .map(|input| {
            let need = if input.is_required() {
                "required"
            } else {
                "optional"
            };
            format!("--input {}=...   ({}, {need})", input.name, input.ty)
        })
        .collect()
}

fn default_run_dir(workflow: &str) -> PathBuf {
    let stamp = humantime::format_rfc3339_millis(std::time::SystemTime::now())
        .to_string()
        .replace([':', '.'], "-");
    PathBuf::from(".wfc")
        .join("runs")
        .join(format!("{workflow}-{stamp}"))
}

/// A run id no other run has: the file's stem, the time and this process.
fn fresh_run_id(file: &Path) -> String {
    let stem = file
        .file_stem()
        .map_or_else(|| "run".into(), |s| s.to_string_lossy());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{stem}-{nanos:x}-{:x}", std::process::id())
}

async fn execute(args: &Args, prepared: Prepared) -> Result<(), Error> {
    if let DeploymentUsed::Restate { restate, run } = &prepared.deployment {
        // The run's span here; its tasks' spans, on the workers, continue it.
        let workflow = &prepared.program.workflows[prepared.workflow].name;
        let span = tracing::info_span!(
            "invoke_workflow",
            otel.name = %format!("invoke_workflow {workflow}"),
            gen_ai.operation.name = "invoke_workflow",
            wfc.workflow = %workflow,
            wfc.run = %run,
        );
        return execute_durable(args, &prepared, restate, run)
            .instrument(span)
            .await;
    }
    let program = &prepared.program;
    let workflow = &program.workflows[prepared.workflow];
    let agents = agents_used(program, workflow);
    let mock = if prepared.deployment == DeploymentUsed::Mock {
        Some(start_mock(args, program).await?)
    } else {
        None
    };
    let deployment = match (&mock, prepared.router.clone()) {
        (Some(server), _) => Deployment::Everything(server.base_url()),
        (None, Some(config)) => Deployment::Router(config),
        (None, None) => Deployment::Router(RouterConfig::seed()),
    };
    let http = deployment
        .connect(&agents, &prepared.home, !args.no_stream)
        .map_err(Error::usage)?;
    let recorder = args.record.recorder(&http, &[workflow])?;
    let base: &dyn wfc::run::Executor = match &recorder {
        Some(recorder) => recorder,
        None => &http,
    };
    let session = Session::new(program, workflow, base)
        .journal(&prepared.run_dir)
        .map_err(|err| Error::usage(format!("cannot open the journal: {err}")))?
        .cache(args.cache.clone());
    let progress = (!args.quiet).then(|| Progress::for_stderr(workflow));
    let cancel = CancellationToken::new();
    let stopped_by = std::sync::Arc::new(std::sync::OnceLock::new());
    let on_signal = {
        let (cancel, stopped_by) = (cancel.clone(), stopped_by.clone());
        tokio::spawn(async move {
            let _ = stopped_by.set(super::stop_signal().await);
            cancel.cancel();
        })
    };
    let mut report = session.run(&prepared.inputs, &progress, &cancel).await;
    on_signal.abort();
    if let Some(server) = mock {
        server.shutdown().await;
    }
    report.metadata.run_dir = Some(prepared.run_dir.display().to_string());
    let stopped_by = stopped_by.get().copied().unwrap_or(Code::Interrupted);
    finish(args, &prepared, &report, stopped_by)
}

/// Submits the run to the durable engine and follows it to its report.
/// Ctrl-C (or SIGTERM) stops the run, as on the local engine, and shows
/// what finished; with --detach the run is only submitted.
async fn execute_durable(
    args: &Args,
    prepared: &Prepared,
    restate: &str,
    run: &str,
) -> Result<(), Error> {
    let program = &prepared.program;
    let workflow = &program.workflows[prepared.workflow];
    let unit = prepared
        .unit
        .as_ref()
        .expect("a durable run keeps its sources");
    let submission = Submission::new(unit, &workflow.name, prepared.inputs.clone());
    let ingress = Ingress::new(restate);
    let submitted = ingress
        .submit(run, &submission)
        .await
        .map_err(Error::usage)?;
    if args.detach {
        outln!("{run}");
    }
    if !args.quiet {
        let how = match (submitted, args.detach) {
            (Submitted::Started, false) => "submitted",
            (Submitted::Started, true) => "submitted; follow it with the same --run-id",
            (Submitted::AlreadyStarted, false) => "already submitted; following",
            (Submitted::AlreadyStarted, true) => "already submitted",
        };
        eprintln!("run `{run}` {how} on {restate}");
    }
    if args.detach {
        return Ok(());
    }
    let progress = (!args.quiet).then(|| Progress::for_stderr(workflow));
    let follow = async {
        match &progress {
            Some(progress) => ingress.follow(run, progress).await,
            None => ingress.report(run).await,
        }
    };
    tokio::pin!(follow);
    let mut stopped_by = Code::Interrupted;
    let report = tokio::select! {
        report = &mut follow => report,
        code = super::stop_signal() => {
            stopped_by = code;
            eprintln!("stopping run `{run}`; finished tasks are kept");
            ingress.stop(run).await.map_err(|err| Error::Problems(err.to_string()))?;
            follow.await
        }
    };
    let mut report = report.map_err(|err| Error::Problems(err.to_string()))?;
    report.metadata.run_dir = Some(prepared.run_dir.display().to_string());
    finish(args, prepared, &report, stopped_by)
}

/// "3 tasks in 1102 ms (2100 ms one after another: 1.91x speedup, parallel
/// efficiency 0.95); 1 failed, 1 skipped; 1,024 of 2,050 prompt tokens from
/// the servers' caches": the speed-up only when tasks answered, the counts
/// only when there are some.
fn summary_line(report: &Report) -> String {
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let status = |wanted: &str| report.results.iter().filter(|r| r.status == wanted).count();
    let mut line = format!(
        "{} in {:.0} ms",
        count(report.metadata.num_tasks, "task"),
        report.total_latency_ms
    );
    if status("ok") > 0 {
        line.push_str(&format!(
            " ({:.0} ms one after another: {:.2}x speedup, parallel efficiency {:.2})",
            report.metadata.sequential_time_ms,
            report.metadata.speedup_factor,
            report.parallel_efficiency
        ));
    } else {
        line.push_str(", none answered");
    }
    let mut counts = Vec::new();
    for (status, n) in [("failed", status("failed")), ("skipped", status("skipped"))] {
        if n > 0 {
            counts.push(format!("{n} {status}"));
        }
    }
    if !counts.is_empty() {
        line.push_str(&format!("; {}", counts.join(", ")));
    }
    let (prompt, cached) = (
        report.metadata.prompt_tokens,
        report.metadata.cached_prompt_tokens,
    );
    if cached > 0 {
        line.push_str(&format!(
            "; {} of {} prompt tokens from the servers' caches",
            wfc::tokens::grouped(cached),
            wfc::tokens::grouped(prompt)
        ));
    }
    line
}

async fn start_mock(args: &Args, program: &Program) -> Result<MockServer, Error> {
    let model_of = |agent: &str| {
        let agent = program.agents.iter().find(|a| a.name == agent)?;
        Some(agent.model.clone().unwrap_or_else(|| agent.name.clone()))
    };
    let config = super::mock_server::seed_config(&args.mock_latency, "--mock-latency", model_of)
        .map_err(Error::Usage)?;
    super::mock_server::start(config).await
}

fn finish(
    args: &Args,
    prepared: &Prepared,
    report: &Report,
    stopped_by: Code,
) -> Result<(), Error> {
    let run_dir = &prepared.run_dir;
    if let Some(path) = &args.timeline {
        let workflow = &prepared.program.workflows[prepared.workflow];
        let drawn = wfc::timeline::svg(workflow, report);
        match std::fs::write(path, drawn) {
            Ok(()) if !args.quiet => eprintln!("timeline: {}", path.display()),
            Ok(()) => {}
            Err(err) => eprintln!(
                "warning: cannot write the timeline to `{}`: {err}",
                path.display()
            ),
        }
    }
    // Written straight to the file and to stdout: a 10,000-task report is
    // megabytes, and holding it whole as text raised the run's peak memory.
    if let Err(err) = journal::write_json_atomically(&run_dir.join(journal::REPORT_FILE), report) {
        eprintln!(
            "warning: cannot write the report to `{}`: {err}",
            run_dir.display()
        );
    }
    if args.json {
        let mut out = io::BufWriter::new(io::stdout().lock());
        // Like every other line on stdout, a closed pipe is not an error.
        let _ = serde_json::to_writer_pretty(&mut out, report)
            .map_err(io::Error::from)
            .and_then(|()| writeln!(out))
            .and_then(|()| out.flush());
    } else if !report.aggregated_content.is_empty() {
        outln!("{}", report.aggregated_content);
    }
    if !args.quiet {
        summarise(report, run_dir);
    }
    if report.metadata.interrupted {
        Err(Error::Shown(stopped_by))
    } else if report.success {
        Ok(())
    } else {
        Err(Error::Shown(Code::TasksFailed))
    }
}

fn summarise(report: &Report, run_dir: &Path) {
    eprintln!("\n{}", summary_line(report));
    if let Some(error) = &report.metadata.output_error {
        eprintln!("error: {error}");
    }
    let journaled = run_dir.join(journal::JOURNAL_FILE).is_file();
    if report.metadata.interrupted && journaled {
        eprintln!(
            "interrupted: finished tasks are kept; continue with `wfc run --resume {}`",
            run_dir.display()
        );
    } else if report.metadata.interrupted {
        eprintln!(
            "interrupted: the report keeps what finished; a stopped run on the durable engine is not resumed (submit a new --run-id to run again)"
        );
    } else if journaled {
        eprintln!("journal and report: {}", run_dir.display());
    } else {
        // The durable engine's journal is Restate's.
        eprintln!("report: {}", run_dir.display());
    }
}
