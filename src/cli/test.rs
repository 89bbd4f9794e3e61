//! `wfc test`: every `test` block of the workflows, with a `cargo test`-like
//! report and exit code for CI.

use std::path::{Path, PathBuf};

use super::RecordArgs;
use super::error::{Code, Error};
use wfc::check::{self, Program, TestDef, WorkflowDef};
use wfc::loader::Loader;
use wfc::mock::{MockConfig, MockServer};
use wfc::router::RouterConfig;
use wfc::run::cassette::{Replayer, Replaying};
use wfc::run::{Deployment, Executor, HttpExecutor, agents_used};
use wfc::testing::report::{self, CaseResult};
use wfc::testing::{self, snapshot};

#[derive(clap::Args)]
pub(super) struct Args {
    /// Files, or folders to search for `*.wf` files (default: the current folder)
    paths: Vec<PathBuf>,
    /// Only the tests whose `workflow::test name` contains this text
    #[arg(long, value_name = "TEXT")]
    filter: Option<String>,
    /// Accept changed snapshots instead of failing on them
    #[arg(long)]
    update: bool,
    /// Ask the router's real servers instead of using the mocks (no snapshots)
    #[arg(long)]
    live: bool,
    /// The router file for --live (default: wfc.toml beside each workflow)
    #[arg(long, value_name = "FILE", requires = "live")]
    router: Option<PathBuf>,
    /// With --live: record every request and its answer
    #[command(flatten)]
    record: RecordArgs,
    /// Answer every request from this cassette (made with --live --record)
    /// instead of the mocks: a request it has no recording of fails, with
    /// the nearest recording and what changed
    #[arg(long, value_name = "DIR", conflicts_with = "live")]
    replay: Option<PathBuf>,
    /// With --replay: also fail when a recording is missing or unused
    #[arg(long, requires = "replay")]
    replay_check: bool,
    /// The report on stdout: for people, or for CI (progress then goes to
    /// stderr)
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// `cargo test`'s layout
    Human,
    /// One JSON object: the counts and every test with its failures and output
    Json,
    #[value(help = "JUnit XML, as CI dashboards read test reports")]
    Junit,
}

#[derive(Default)]
struct Tally {
    cases: Vec<CaseResult>,
    written: usize,
    updated: usize,
    broken_files: usize,
    /// With --replay-check: recordings no test asked for.
    stale: Vec<String>,
    /// With --replay-check: the tasks whose requests had no recording.
    missing: Vec<String>,
}

impl Tally {
    fn failed(&self) -> impl Iterator<Item = &CaseResult> {
        self.cases.iter().filter(|case| !case.passed())
    }
}

/// A line of the report for people: on stdout, or on stderr when stdout
/// carries the report for machines.
fn say(args: &Args, line: &str) {
    if args.format == Format::Human {
        outln!("{line}");
    } else {
        eprintln!("{line}");
    }
}

pub(super) fn run(args: &Args) -> Result<(), Error> {
    let paths = super::discover(&args.paths)?;
    super::runtime()?.block_on(run_all(args, &paths))
}

async fn run_all(args: &Args, paths: &[PathBuf]) -> Result<(), Error> {
    if args.record.record.is_some() && !args.live {
        return Err(Error::usage(
            "--record keeps what real models answer: add --live (mocked answers are already in the tests)",
        ));
    }
    let replayer = args
        .replay
        .as_deref()
        .map(Replayer::open)
        .transpose()
        .map_err(Error::usage)?;
    let mock = if args.live || replayer.is_some() {
        None
    } else {
        Some(super::mock_server::start(MockConfig::default()).await?)
    };
    let mut loader = Loader::default();
    let mut tally = Tally::default();
    let mut programs = Vec::new();
    for path in paths {
        match check::check_file(&mut loader, path) {
            Ok(report) if report.has_errors() => {
                Error::Problems(format!(
                    "`{}` has errors (run `wfc check {}`); its tests cannot run",
                    path.display(),
                    path.display()
                ))
                .render();
                tally.broken_files += 1;
            }
            Ok(report) => programs.extend(report.program.map(|p| (path.clone(), p))),
            Err(err) => {
                super::unreadable(path, err).render();
                tally.broken_files += 1;
            }
        }
    }
    let selected = |workflow: &WorkflowDef, test: &TestDef| {
        args.filter.as_ref().is_none_or(|filter| {
            format!("{}::{}", workflow.name, test.name)
                .to_lowercase()
                .contains(&filter.to_lowercase())
        })
    };
    let count: usize = programs
        .iter()
        .flat_map(|(_, p)| &p.workflows)
        .map(|w| w.tests.iter().filter(|t| selected(w, t)).count())
        .sum();
    say(
        args,
        &format!("running {count} test{}", if count == 1 { "" } else { "s" }),
    );
    for (path, program) in &programs {
        let http = match executor(args, mock.as_ref(), path, program, replayer.is_some()) {
            Ok(executor) => executor,
            Err(message) => {
                Error::Usage(message).render();
                tally.broken_files += 1;
                continue;
            }
        };
        let workflows: Vec<&WorkflowDef> = program.workflows.iter().collect();
        let recorder = match &replayer {
            Some(_) => None,
            None => args.record.recorder(&http, &workflows)?,
        };
        let replaying = replayer.as_ref().map(|cassette| Replaying {
            cassette,
            searcher: &http,
        });
        let base: &dyn Executor = match (&replaying, &recorder) {
            (Some(replaying), _) => replaying,
            (None, Some(recorder)) => recorder,
            (None, None) => &http,
        };
        for workflow in &program.workflows {
            for test in workflow.tests.iter().filter(|t| selected(workflow, t)) {
                run_one(args, path, program, workflow, test, base, &mut tally).await;
            }
        }
    }
    if let Some(server) = mock {
        server.shutdown().await;
    }
    if let (Some(replayer), true) = (&replayer, args.replay_check) {
        tally.stale = replayer
            .unused()
            .iter()
            .map(|recording| format!("task `{}` ({})", recording.task, recording.key))
            .collect();
        tally.missing = replayer.missed();
    }
    summarise(args, &tally)
}

/// Where the tests of `program` send their unscripted requests: the mock
/// server, or with `--live` the deployment beside the file.
/// The executor of `program`'s tests: the mock, or the deployment, for
/// every agent the workflows may call; with `replaying`, for none (the
/// cassette answers them), only to search the corpora.
fn executor(
    args: &Args,
    mock: Option<&MockServer>,
    path: &Path,
    program: &Program,
    replaying: bool,
) -> Result<HttpExecutor, String> {
    let mut agents: Vec<&str> = program
        .workflows
        .iter()
        .filter(|_| !replaying)
        .flat_map(|workflow| agents_used(program, workflow))
        .collect();
    agents.sort_unstable();
    agents.dedup();
    let deployment = match mock {
        Some(server) => Deployment::Everything(server.base_url()),
        None => Deployment::Router(
            RouterConfig::read_or_seed(
                RouterConfig::locate(args.router.as_deref(), path).as_deref(),
            )
            .map_err(|err| err.to_string())?,
        ),
    };
    deployment
        .connect(&agents, &wfc::files::folder_of(path), false)
        .map_err(|err| err.to_string())
}

async fn run_one(
    args: &Args,
    path: &Path,
    program: &Program,
    workflow: &WorkflowDef,
    test: &TestDef,
    executor: &dyn Executor,
    tally: &mut Tally,
) {
    let name = format!("{}::{:?}", workflow.name, test.name);
    let started = std::time::Instant::now();
    // Real answers (live or replayed) are not the tests' mocks, and have no
    // snapshots.
    let real = args.live || args.replay.is_some();
    let run = testing::run(program, workflow, test, executor, real).await;
    let duration = started.elapsed();
    let mut failures = run.failures;
    let mut note = String::new();
    // A test that already failed neither writes nor updates its snapshot:
    // only output that met its expectations is kept.
    if let (Some(report), false, true) = (&run.report, real, failures.is_empty()) {
        let snapshot_path = snapshot::path(path, &workflow.name, &test.name);
        let header = format!(
            "workflow: {}\ntest: {}\nsource: {}",
            workflow.name,
            test.name,
            path.display()
        );
        match snapshot::compare(
            &snapshot_path,
            &header,
            &report.aggregated_content,
            args.update,
        ) {
            Ok(snapshot::Verdict::Matches) => {}
            Ok(snapshot::Verdict::Written) => {
                tally.written += 1;
                note = format!(" (new snapshot {})", snapshot_path.display());
            }
            Ok(snapshot::Verdict::Updated) => {
                tally.updated += 1;
                note = format!(" (snapshot updated: {})", snapshot_path.display());
            }
            Ok(snapshot::Verdict::Changed(diff)) => failures.push(format!(
                "the output differs from {} (accept it with `wfc test --update`):\n{diff}",
                snapshot_path.display()
            )),
            Err(err) => failures.push(format!(
                "cannot use the snapshot {}: {err}",
                snapshot_path.display()
            )),
        }
    }
    if let (Some(report), true) = (&run.report, args.live) {
        note = format!(" (quality {:.2})", report.quality_score);
    }
    let verdict = if failures.is_empty() { "ok" } else { "FAILED" };
    say(args, &format!("test {name} ... {verdict}{note}"));
    tally.cases.push(CaseResult {
        file: path.to_path_buf(),
        workflow: workflow.name.clone(),
        test: test.name.clone(),
        duration,
        failures,
        output: run.report.map(|report| report.aggregated_content),
    });
}

fn summarise(args: &Args, tally: &Tally) -> Result<(), Error> {
    match args.format {
        Format::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&report::json(&tally.cases)).unwrap_or_default()
        ),
        Format::Junit => out!("{}", report::junit(&tally.cases)),
        Format::Human => {}
    }
    let mut failed = tally.failed().peekable();
    if failed.peek().is_some() {
        say(args, "\nfailures:");
        for case in failed {
            say(
                args,
                &format!("\n---- {}::{:?} ----", case.workflow, case.test),
            );
            for failure in &case.failures {
                say(args, &format!("  {}", failure.replace('\n', "\n  ")));
            }
        }
    }
    for (what, list) in [
        ("recordings no test asked for (stale)", &tally.stale),
        ("requests the cassette has no recording of", &tally.missing),
    ] {
        if !list.is_empty() {
            say(args, &format!("\nreplay check: {what}:"));
            for item in list {
                say(args, &format!("  {item}"));
            }
        }
    }
    let failed = tally.failed().count();
    let ok = failed == 0
        && tally.broken_files == 0
        && tally.stale.is_empty()
        && tally.missing.is_empty();
    let mut extras = Vec::new();
    if tally.written > 0 {
        extras.push(format!("{} new snapshots written", tally.written));
    }
    if tally.updated > 0 {
        extras.push(format!("{} snapshots updated", tally.updated));
    }
    if tally.broken_files > 0 {
        extras.push(format!("{} files could not be tested", tally.broken_files));
    }
    if !tally.stale.is_empty() || !tally.missing.is_empty() {
        extras.push(format!(
            "{} stale and {} missing recordings",
            tally.stale.len(),
            tally.missing.len()
        ));
    }
    let extras = if extras.is_empty() {
        String::new()
    } else {
        format!("; {}", extras.join("; "))
    };
    say(
        args,
        &format!(
            "\ntest result: {}. {} passed; {failed} failed{extras}",
            if ok { "ok" } else { "FAILED" },
            tally.cases.len() - failed,
        ),
    );
    if ok {
        Ok(())
    } else {
        Err(Error::Shown(Code::Problems))
    }
}
