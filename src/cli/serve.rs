//! `wfc serve`: the HTTP API. Security is not optional: without a JWT key
//! the server does not start unless `--insecure-no-auth` says so.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use super::error::Error;
use super::{Engine, EngineArgs};
use wfc::durable::ingress::Ingress;
use wfc::run::Deployment;
use wfc::serve::{AuditLog, Auth, ServeConfig, Server};

#[derive(clap::Args)]
pub(super) struct Args {
    /// Files, or folders of `*.wf` files, to serve (default: the current folder)
    paths: Vec<PathBuf>,
    /// The address to listen on
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The router file (default: wfc.toml in the current folder, else the seed's ports)
    #[arg(long, value_name = "FILE", conflicts_with = "mock")]
    router: Option<PathBuf>,
    /// Answer from the built-in mock model server (demos; no GPU)
    #[arg(long)]
    mock: bool,
    /// Mock response time: `MODEL=DURATION` for one model, or `DURATION` for all
    #[arg(long, value_name = "[MODEL=]DURATION", requires = "mock")]
    mock_latency: Vec<String>,
    /// HS256: the environment variable holding the shared secret
    #[arg(long, value_name = "VARIABLE", conflicts_with_all = ["jwt_public_key", "insecure_no_auth"])]
    jwt_secret_env: Option<String>,
    /// RS256/ES256: the issuer's public key (PEM)
    #[arg(long, value_name = "FILE", conflicts_with = "insecure_no_auth")]
    jwt_public_key: Option<PathBuf>,
    /// The public key's algorithm
    #[arg(long, value_enum, default_value_t = KeyAlgorithm::Rs256)]
    jwt_algorithm: KeyAlgorithm,
    /// The audience (`aud`) tokens must name
    #[arg(long, value_name = "AUDIENCE", default_value = "wfc")]
    jwt_audience: String,
    /// The issuer (`iss`) tokens must name, if any; tokens without one are
    /// then refused
    #[arg(long, value_name = "ISSUER")]
    jwt_issuer: Option<String>,
    /// How far a token's `exp` and `nbf` may be off, for clocks that
    /// disagree a little
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    jwt_leeway: Duration,
    /// Serve without authentication (local experiments only)
    #[arg(long)]
    insecure_no_auth: bool,
    /// Requests per minute per caller (0: unlimited)
    #[arg(long, default_value_t = 120)]
    rate_limit: u32,
    /// Workflow runs at once; more are answered 503
    #[arg(long, default_value_t = 16)]
    max_runs: usize,
    /// The longest a run may take
    #[arg(long, default_value = "300s", value_parser = humantime::parse_duration)]
    deadline: Duration,
    /// The largest request body, in bytes
    #[arg(long, default_value_t = 1024 * 1024)]
    max_body: usize,
    /// The audit log (JSON lines, appended)
    #[arg(long, value_name = "FILE", default_value = "wfc-audit.jsonl")]
    audit_log: PathBuf,
    /// Where each run's journal goes
    #[arg(long, value_name = "DIR", default_value = ".wfc/serve-runs")]
    runs_dir: PathBuf,
    /// How long shutdown waits for runs in flight
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    shutdown_grace: Duration,
    /// How long a client may take to send its request headers, and again
    /// its body, before its connection is cut
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    client_timeout: Duration,
    /// Reload the workflows when a file changes (SIGHUP always reloads)
    #[arg(long)]
    watch: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum KeyAlgorithm {
    Rs256,
    Es256,
}

pub(super) fn run(args: &Args) -> Result<(), Error> {
    let auth = auth(args)
        .map_err(Error::Usage)?
        .with_leeway(args.jwt_leeway);
    let audit = AuditLog::to_file(&args.audit_log).map_err(|err| {
        Error::usage(format!(
            "cannot open the audit log `{}`: {err}",
            args.audit_log.display()
        ))
    })?;
    super::runtime()?.block_on(serve(args, auth, audit))
}

fn auth(args: &Args) -> Result<Auth, String> {
    let issuer = args.jwt_issuer.as_deref();
    if let Some(variable) = &args.jwt_secret_env {
        let secret = std::env::var(variable)
            .map_err(|_| format!("the environment variable `{variable}` is not set"))?;
        if secret.len() < 32 {
            return Err(format!(
                "the secret in `{variable}` is {} bytes; HS256 needs at least 32",
                secret.len()
            ));
        }
        return Ok(Auth::shared_secret(
            secret.as_bytes(),
            &args.jwt_audience,
            issuer,
        ));
    }
    if let Some(path) = &args.jwt_public_key {
        let pem = std::fs::read(path)
            .map_err(|err| format!("cannot read `{}`: {err}", path.display()))?;
        let algorithm = match args.jwt_algorithm {
            KeyAlgorithm::Rs256 => jsonwebtoken::Algorithm::RS256,
            KeyAlgorithm::Es256 => jsonwebtoken::Algorithm::ES256,
        };
        return Auth::public_key(&pem, algorithm, &args.jwt_audience, issuer);
    }
    if args.insecure_no_auth {
        eprintln!(
            "WARNING: serving WITHOUT authentication (--insecure-no-auth). Anyone who can reach {} can run workflows on patient data.",
            args.listen
        );
        return Ok(Auth::Disabled);
    }
    Err("choose how callers authenticate: --jwt-secret-env VARIABLE (HS256) or --jwt-public-key FILE (RS256/ES256); --insecure-no-auth only for local experiments".into())
}

async fn serve(args: &Args, auth: Auth, audit: AuditLog) -> Result<(), Error> {
    if args.engine.engine == Engine::Restate && (args.mock || args.router.is_some()) {
        return Err(Error::usage(
            "--mock and --router do not apply with --engine restate: the workers' deployment decides where requests go; start them with `wfc worker --router FILE`",
        ));
    }
    let mock = if args.mock {
        let config =
            super::mock_server::seed_config(&args.mock_latency, "--mock-latency", |model| {
                Some(model.to_string())
            })
            .map_err(Error::Usage)?;
        Some(super::mock_server::start(config).await?)
    } else {
        None
    };
    let engine = match (&mock, args.engine.engine) {
        (_, Engine::Restate) => wfc::serve::Engine::Durable(Ingress::new(&args.engine.restate)),
        (Some(server), Engine::Local) => {
            wfc::serve::Engine::Local(Deployment::Everything(server.base_url()))
        }
        (None, Engine::Local) => wfc::serve::Engine::Local(Deployment::Router(
            super::router_in_folder(args.router.as_deref())?,
        )),
    };
    let sources = super::paths_or_here(&args.paths);
    let config = ServeConfig {
        sources,
        engine,
        listen: args.listen,
        auth,
        rate_limit: NonZeroU32::new(args.rate_limit),
        max_runs: args.max_runs.max(1),
        deadline: args.deadline,
        max_body: args.max_body,
        audit,
        runs_dir: Some(args.runs_dir.clone()),
        shutdown_grace: args.shutdown_grace,
        client_timeout: args.client_timeout,
    };
    let server = Server::start(config)
        .await
        .map_err(|err| Error::Problems(err.to_string()))?;
    eprintln!(
        "serving on http://{} (OpenAPI at /openapi.json)",
        server.addr()
    );
    if args.watch {
        server.watch(Duration::from_secs(1));
    }
    server.run_until_signalled().await;
    Ok(())
}
