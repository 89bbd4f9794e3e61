//! Every `tests/cases/run/NAME.wf` is a case: the workflow runs against the
//! mock model server with the inputs and faults of `NAME.toml` beside it,
//! and its report (with the figures that depend on the machine set to zero)
//! is snapshotted with both files as the description. Adding a case is
//! adding two files.
//!
//! `NAME.toml` holds `[inputs]` and any number of `[[faults]]`, each with
//! an optional `model`, `prompt_contains` and `times`, and a `kind`:
//! `status:CODE`, `rate_limited:SECONDS`, `malformed_json`,
//! `truncated_stream`, `close_connection`, `context_exceeded` or
//! `wrong_shape`.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use wfc::mock::{Fault, FaultKind, MockConfig, MockServer};

use crate::support::{Setup, normalised};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Script {
    #[serde(default)]
    inputs: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    faults: Vec<ScriptedFault>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptedFault {
    model: Option<String>,
    prompt_contains: Option<String>,
    times: Option<u32>,
    kind: String,
}

impl ScriptedFault {
    fn fault(self) -> Fault {
        let (name, argument) = self
            .kind
            .split_once(':')
            .map_or((self.kind.as_str(), None), |(name, arg)| (name, Some(arg)));
        let number = || -> u64 {
            argument
                .and_then(|arg| arg.parse().ok())
                .unwrap_or_else(|| panic!("fault `{}` needs a number after `:`", self.kind))
        };
        let kind = match name {
            "status" => FaultKind::Status(number() as u16),
            "rate_limited" => FaultKind::RateLimited {
                retry_after: Duration::from_secs(number()),
            },
            "malformed_json" => FaultKind::MalformedJson,
            "truncated_stream" => FaultKind::TruncatedStream,
            "close_connection" => FaultKind::CloseConnection,
            "context_exceeded" => FaultKind::ContextExceeded,
            "wrong_shape" => FaultKind::WrongShape,
            other => panic!("unknown fault kind `{other}`"),
        };
        Fault {
            model: self.model,
            prompt_contains: self.prompt_contains,
            times: self.times,
            kind,
        }
    }
}

fn script(workflow: &Path) -> (Script, String) {
    let path = workflow.with_extension("toml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("{} needs {}: {err}", workflow.display(), path.display()));
    let script = toml::from_str(&text)
        .unwrap_or_else(|err| panic!("{} is not a case script: {err}", path.display()));
    (script, text)
}

#[test]
fn run_cases() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    insta::glob!("../cases/run", "*.wf", |path| {
        let program = crate::support::checked(path);
        let (script, script_text) = script(path);
        let config = MockConfig {
            faults: script
                .faults
                .into_iter()
                .map(ScriptedFault::fault)
                .collect(),
            ..MockConfig::default()
        };
        let report = runtime.block_on(async {
            let mock = MockServer::start(config).await.expect("the mock starts");
            let report = Setup::new(&program, &mock)
                .inputs(serde_json::Value::Object(script.inputs))
                .run()
                .await;
            let url = mock.base_url();
            mock.shutdown().await;
            // The mock's port differs from run to run.
            serde_json::to_string_pretty(&normalised(&report))
                .unwrap()
                .replace(&url, "[MOCK]")
        });
        let source = std::fs::read_to_string(path).unwrap();
        insta::with_settings!({
            description => format!("{source}\n--- {}\n{script_text}", path.with_extension("toml").file_name().unwrap().to_string_lossy()),
            omit_expression => true,
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!(report);
        });
    });
}
