//! `wfc worker`: serves the workflows on the durable engine as a worker of
//! a Restate server, and registers with it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use super::error::Error;
use wfc::durable::{Worker, worker};
use wfc::policy::Backoff;
use wfc::run::Deployment;
use wfc::serve::Library;

/// How long a worker keeps trying to register while its Restate server
/// cannot be reached or answers with a server error.
const REGISTER_PATIENCE: std::time::Duration = std::time::Duration::from_mins(1);

#[derive(clap::Args)]
pub(super) struct Args {
    /// Files, or folders of `*.wf` files, whose agents this worker serves
    /// (default: the current folder)
    paths: Vec<PathBuf>,
    /// The Restate server's admin API, to register with (tried for up to a
    /// minute while the server starts)
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:9070")]
    restate_admin: String,
    /// The address to serve Restate on; workers on one host may share it
    /// (port 0: one the system picks, registered as it is)
    #[arg(long, default_value = "127.0.0.1:9080")]
    listen: SocketAddr,
    /// The URL the Restate server reaches the workers at (default: the
    /// listen address over http), e.g. a load balancer in front of hosts
    #[arg(long, value_name = "URL")]
    advertise: Option<String>,
    /// The router file (default: wfc.toml in the current folder, else the seed's ports)
    #[arg(long, value_name = "FILE")]
    router: Option<PathBuf>,
    /// How long Restate keeps a finished run's journal (its prompts and
    /// answers) and its report, for `wfc serve` and `wfc run` to fetch
    #[arg(long, value_name = "DURATION", default_value = "1day", value_parser = humantime::parse_duration)]
    retention: std::time::Duration,
}

pub(super) fn run(args: &Args) -> Result<(), Error> {
    let router = super::router_in_folder(args.router.as_deref())?;
    // Streamed text would have no one to show it to: answers come whole.
    let deployment = Deployment::Router(router.clone());
    let executor = Library::load(&super::paths_or_here(&args.paths))
        .and_then(|library| library.connect(&deployment, false))
        .map_err(|err| Error::Problems(err.to_string()))?;
    super::runtime()?.block_on(async {
        let worker = Arc::new(Worker {
            executor,
            backoff: Backoff::default(),
            router: Some(router),
            retention: args.retention,
        });
        let listener = worker::listen(args.listen).map_err(Error::usage)?;
        // The port the system chose, when `--listen` asked for port 0.
        let listening = listener.local_addr().unwrap_or(args.listen);
        let shutdown = tokio_util::sync::CancellationToken::new();
        let serving = tokio::spawn(worker::serve(
            worker,
            listener,
            shutdown.clone().cancelled_owned(),
        ));
        let uri = args
            .advertise
            .clone()
            .unwrap_or_else(|| format!("http://{listening}"));
        let mut waiting = |err: &worker::WorkerError, pause: std::time::Duration| {
            eprintln!(
                "waiting for the Restate server: {err}; trying again in {:.1} s",
                pause.as_secs_f64()
            );
        };
        let registered =
            worker::register(&args.restate_admin, &uri, REGISTER_PATIENCE, &mut waiting).await;
        if let Err(err) = registered {
            shutdown.cancel();
            let _ = serving.await;
            return Err(Error::usage(err));
        }
        eprintln!(
            "worker serving {uri}, registered with {}",
            args.restate_admin
        );
        super::stop_signal().await;
        shutdown.cancel();
        let _ = serving.await;
        Ok(())
    })
}
