//! `wfc mock-server`: the built-in mock model server on a fixed port, so a
//! router file can point agents at it (`wfc run --mock` starts one itself).

use std::net::SocketAddr;
use std::time::Duration;

use super::error::Error;
use wfc::mock::{MockConfig, MockServer};

#[derive(clap::Args)]
pub(super) struct Args {
    /// The port to listen on, on 127.0.0.1
    #[arg(long, default_value_t = 8090)]
    port: u16,
    /// Response time: `MODEL=DURATION` for one model, or `DURATION` for the rest
    #[arg(long, value_name = "[MODEL=]DURATION")]
    latency: Vec<String>,
    /// Require this bearer token (read from the named environment variable)
    #[arg(long, value_name = "VARIABLE")]
    api_key_env: Option<String>,
}

pub(super) fn run(args: &Args) -> Result<(), Error> {
    let mut config = MockConfig::default();
    for setting in &args.latency {
        let (model, duration) = latency_setting(setting)
            .map_err(|err| Error::usage(format!("`--latency {setting}`: {err}")))?;
        match model {
            Some(model) => {
                config.latency.insert(model.to_string(), duration);
            }
            None => config.default_latency = duration,
        }
    }
    if let Some(variable) = &args.api_key_env {
        let key = std::env::var(variable).map_err(|_| {
            Error::usage(format!("the environment variable `{variable}` is not set"))
        })?;
        config.api_key = Some(key);
    }
    super::runtime()?.block_on(async {
        let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
        let server = MockServer::bind(addr, config)
            .await
            .map_err(|err| Error::usage(format!("cannot listen on {addr}: {err}")))?;
        eprintln!(
            "mock model server on {} (Ctrl-C stops it)",
            server.base_url()
        );
        server.wait().await;
        Ok(())
    })
}

/// The seed's measured latencies, so `--mock` shows its speedups.
const SEED_LATENCY_MS: [(&str, u64); 3] = [
    ("BioMistral-7B", 1100),
    ("OpenInsurance-8B", 1000),
    ("BiMediX2-8B", 900),
];
const OTHER_LATENCY: Duration = Duration::from_millis(500);

/// The mock `wfc run --mock` and `wfc serve --mock` start: the seed's
/// latencies, changed by `[NAME=]DURATION` settings, where `model_of` turns
/// a NAME into the model it stands for (or says there is none).
/// Starts the built-in mock model server on a free port, for `--mock`.
pub(super) async fn start(config: MockConfig) -> Result<MockServer, Error> {
    MockServer::start(config)
        .await
        .map_err(|err| Error::usage(format!("cannot start the mock model server: {err}")))
}

pub(super) fn seed_config(
    settings: &[String],
    flag: &str,
    model_of: impl Fn(&str) -> Option<String>,
) -> Result<MockConfig, String> {
    let mut config = MockConfig {
        default_latency: OTHER_LATENCY,
        ..MockConfig::default()
    };
    for (model, ms) in SEED_LATENCY_MS {
        config
            .latency
            .insert(model.to_string(), Duration::from_millis(ms));
    }
    for setting in settings {
        let (name, duration) =
            latency_setting(setting).map_err(|err| format!("`{flag} {setting}`: {err}"))?;
        match name {
            None => {
                config.latency.clear();
                config.default_latency = duration;
            }
            Some(name) => {
                let model = model_of(name)
                    .ok_or_else(|| format!("`{flag} {setting}`: there is no agent `{name}`"))?;
                config.latency.insert(model, duration);
            }
        }
    }
    Ok(config)
}

/// `NAME=DURATION` or `DURATION`, as `--latency` and `wfc run
/// --mock-latency` take them.
pub(super) fn latency_setting(setting: &str) -> Result<(Option<&str>, Duration), String> {
    let (name, duration) = match setting.split_once('=') {
        Some((name, duration)) => (Some(name.trim()), duration.trim()),
        None => (None, setting.trim()),
    };
    let duration = humantime::parse_duration(duration)
        .map_err(|err| format!("`{duration}` is not a duration such as 800ms: {err}"))?;
    Ok((name, duration))
}
