//! Prompt-prefix reuse on two real llama.cpp servers, with and without
//! replica affinity: the share of prompt tokens the servers served from
//! their KV cache.
//!
//! Each round runs 8 patients' charts on one process's executor (as `wfc
//! serve` runs them), all at once or one at a time: 4 tasks that begin with
//! the patient's record, then one that reads two of their answers. Both replicas have 2 slots
//! (`-np 2`, `max_concurrency = 2`). Every round has new patients, so no
//! round finds another's prompts in a cache.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use futures_util::future::join_all;
use tokio_util::sync::CancellationToken;
use wfc::check::conform::Given;
use wfc::router::RouterConfig;
use wfc::run::inputs::bind;
use wfc::run::{Deployment, Session};

use super::{ServerProcess, load, median};

const PATIENTS: usize = 8;
const ROUNDS: usize = 3;

const CHART: &str = r#"
agent Clinical { model = "tiny" max_concurrency = 4 }
workflow chart {
  input record: text
  task summary -> Clinical { prompt = "{{ record }}\n\nSummarise the stay in one line." max_tokens = 8 temperature = 0 }
  task meds -> Clinical { prompt = "{{ record }}\n\nList the discharge medications." max_tokens = 8 temperature = 0 }
  task risks -> Clinical { prompt = "{{ record }}\n\nName the main risk after discharge." max_tokens = 8 temperature = 0 }
  task follow_up -> Clinical { prompt = "{{ record }}\n\nWhen should the patient be seen again?" max_tokens = 8 temperature = 0 }
  task letter -> Clinical { prompt = "{{ record }}\n\nWrite the GP letter from: {{ summary }} {{ meds }}" max_tokens = 8 temperature = 0 }
  output = "{{ letter }}"
}
"#;

/// Where `real-llm-server/setup.sh` built llama-server, if anywhere.
fn llama_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("WFC_LLAMA_SERVER_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let home = std::env::var_os("HOME")?;
            Some(Path::new(&home).join(".cache/wfc-ci/llm"))
        })?;
    dir.join("start-llama-server.sh").is_file().then_some(dir)
}

/// A clinical record of about 150 words, different for every patient.
fn record(patient: usize) -> String {
    let age = 40 + patient % 50;
    format!(
        "Patient {patient}, aged {age}, admitted through the emergency department with \
         shortness of breath, productive cough and fever for {days} days. Chest X-ray showed \
         right lower lobe consolidation. Treated with intravenous co-amoxiclav for three days, \
         then oral amoxicillin; oxygen weaned on day {wean}. Past history: type 2 diabetes on \
         metformin, hypertension on ramipril {dose} mg, ex-smoker of {years} pack-years. \
         Creatinine {creatinine} micromol/L on admission, improving to normal. Mobilising \
         independently on the ward, eating and drinking well, observations stable for 48 hours. \
         Lives with a partner, independent at home, no carers. Follow-up chest X-ray planned in \
         six weeks to confirm resolution. Allergies: none known. Code {patient}-{age}.",
        days = 2 + patient % 5,
        wean = 1 + patient % 3,
        dose = 2.5 * (1 + patient % 4) as f64,
        years = 5 + patient % 30,
        creatinine = 80 + patient % 60,
    )
}

/// Prints the share of prompt tokens served from cache with and without
/// affinity, or says loudly why it was not measured.
pub(super) fn compare(runtime: &tokio::runtime::Runtime) {
    let Some(dir) = llama_dir() else {
        println!(
            "4. SKIPPED prompt-prefix reuse: no llama-server (set WFC_LLAMA_SERVER_DIR to the \
             directory shared/tools/real-llm-server/setup.sh built; .ci/run builds one in \
             ~/.cache/wfc-ci/llm)"
        );
        return;
    };
    let start = || {
        ServerProcess::spawn(Duration::from_mins(1), |port| {
            let mut command = Command::new(dir.join("start-llama-server.sh"));
            command.arg(port.to_string());
            command
        })
    };
    let replicas = [start(), start()];
    let work = tempfile::tempdir().expect("a temp dir");
    let path = work.path().join("chart.wf");
    std::fs::write(&path, CHART).expect("write the workflow");
    let program = load(&path);
    println!("4. prompt-prefix reuse on two llama-server replicas, {PATIENTS} charts a round:");
    let mut patient = 0;
    for at_once in [PATIENTS, 1] {
        for _ in 0..ROUNDS {
            for affinity in [false, true] {
                let routes: String = replicas
                    .iter()
                    .map(|r| {
                        format!(
                            "[[agents.Clinical.endpoints]]\nurl = \"{}\"\nmax_concurrency = 2\n",
                            r.base_url()
                        )
                    })
                    .collect();
                let text =
                    format!("[defaults]\naffinity = {affinity}\ntimeout = \"120s\"\n{routes}");
                let config = RouterConfig::parse(Path::new("wfc.toml"), &text).expect("routes");
                let http = Deployment::Router(config)
                    .connect(&["Clinical"], std::path::Path::new("."), false)
                    .expect("a router");
                let workflow = &program.workflows[0];
                let inputs: Vec<_> = (0..PATIENTS)
                    .map(|_| {
                        patient += 1;
                        let given = vec![("record".to_string(), Given::Text(record(patient)))];
                        bind(workflow, given).expect("valid inputs")
                    })
                    .collect();
                let cancel = CancellationToken::new();
                let (mut prompt, mut cached) = (0, 0);
                let mut makespans = Vec::new();
                for batch in inputs.chunks(at_once) {
                    let reports = runtime.block_on(join_all(batch.iter().map(|inputs| {
                        Session::new(&program, workflow, &http).run(inputs, &(), &cancel)
                    })));
                    for report in reports {
                        assert!(report.success, "{:?}", report.metadata.errors);
                        prompt += report.metadata.prompt_tokens;
                        cached += report.metadata.cached_prompt_tokens;
                        makespans.push(report.total_latency_ms);
                    }
                }
                println!(
                    "   {:<14} affinity {:<3}: {cached:>6} of {prompt:>6} prompt tokens from cache \
                     ({:>5.1}%), median run {:.0} ms",
                    if at_once == 1 {
                        "one at a time"
                    } else {
                        "all at once"
                    },
                    if affinity { "on" } else { "off" },
                    cached as f64 * 100.0 / prompt.max(1) as f64,
                    median(makespans)
                );
            }
        }
    }
    println!();
}
