//! `wfc mock-server`: the built-in mock model server on a fixed port, so a
//! router file can point agents at it (`wfc run --mock` starts one itself).

use std::net::SocketAddr;
use std::time::Duration;

use super::exit;
use crate::mock::{MockConfig, MockServer};

#[derive(clap::Args)]
pub struct Args {
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

pub fn run(args: &Args) -> i32 {
    let mut config = MockConfig::default();
    for setting in &args.latency {
        let (model, duration) = match latency_setting(setting) {
            Ok(parsed) => parsed,
            Err(err) => {
                eprintln!("error: `--latency {setting}`: {err}");
                return exit::USAGE;
            }
        };
        match model {
            Some(model) => {
                config.latency.insert(model.to_string(), duration);
            }
            None => config.default_latency = duration,
        }
    }
    if let Some(variable) = &args.api_key_env {
        match std::env::var(variable) {
            Ok(key) => config.api_key = Some(key),
            Err(_) => {
                eprintln!("error: the environment variable `{variable}` is not set");
                return exit::USAGE;
            }
        }
    }
    let runtime = match super::runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
        match MockServer::bind(addr, config).await {
            Ok(server) => {
                eprintln!(
                    "mock model server on {} (Ctrl-C stops it)",
                    server.base_url()
                );
                server.wait().await;
                exit::OK
            }
            Err(err) => {
                eprintln!("error: cannot listen on {addr}: {err}");
                exit::USAGE
            }
        }
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
