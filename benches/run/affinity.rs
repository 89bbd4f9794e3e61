//! Prompt-prefix reuse on two real llama.cpp servers, with and without
//! replica affinity: the share of prompt tokens the servers served from
//! their KV cache.
//!
//! Each round runs 8 patients' charts (as `wfc serve` runs them) on
//! replicas with 2 slots each (`-np 2`, `max_concurrency = 2`). Every prompt
//! begins with the patient's record. A chart fans out 4 tasks and then
//! writes a letter from two of their answers; a chain asks 5 questions one
//! after the other, each reading the answer before. The chains run on one
//! process's router, or each on a router of its own (as `wfc serve`
//! processes would, each seeing only its own requests: without affinity,
//! every one of them finds both replicas idle and picks the first). Every
//! round has new patients, so no round finds another's prompts in a cache.

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

/// One way of running a round's charts.
struct Workload {
    name: &'static str,
    /// For each of the chart's tasks, the answers before it that it reads.
    reads: [&'static [&'static str]; 5],
    /// How many charts run at once.
    at_once: usize,
    /// How many routers (processes) share the charts of a batch.
    routers: usize,
}

/// A chart fans out four tasks, then a letter reads two of their answers.
const FAN_OUT: [&[&str]; 5] = [&[], &[], &[], &[], &["summary", "meds"]];
/// A chain's tasks each read the answer before.
const CHAIN: [&[&str]; 5] = [
    &[],
    &["summary"],
    &["meds"],
    &["risks"],
    &["summary", "follow_up"],
];

const WORKLOADS: [Workload; 4] = [
    Workload {
        name: "charts, all at once",
        reads: FAN_OUT,
        at_once: PATIENTS,
        routers: 1,
    },
    Workload {
        name: "charts, one at a time",
        reads: FAN_OUT,
        at_once: 1,
        routers: 1,
    },
    Workload {
        name: "chains, all at once",
        reads: CHAIN,
        at_once: PATIENTS,
        routers: 1,
    },
    Workload {
        name: "chains, a process each",
        reads: CHAIN,
        at_once: PATIENTS,
        routers: PATIENTS,
    },
];

/// The chart's tasks and what each asks after the patient's record.
const QUESTIONS: [(&str, &str); 5] = [
    ("summary", "Summarise the stay in one line."),
    ("meds", "List the discharge medications."),
    ("risks", "Name the main risk after discharge."),
    ("follow_up", "When should the patient be seen again?"),
    ("letter", "Write the GP letter."),
];

/// The chart as a workflow whose tasks read what `reads` says.
fn chart(reads: &[&[&str]; 5]) -> String {
    let tasks: String = QUESTIONS
        .iter()
        .zip(reads)
        .map(|((name, question), reads)| {
            let answers: String = reads.iter().map(|read| format!(" {{{{ {read} }}}}")).collect();
            format!(
                "  task {name} -> Clinical {{ prompt = \"{{{{ record }}}}\\n\\n{question}{answers}\" \
                 max_tokens = 8 temperature = 0 }}\n"
            )
        })
        .collect();
    format!(
        "agent Clinical {{ model = \"tiny\" max_concurrency = 4 }}\n\
         workflow chart {{\n  input record: text\n{tasks}  output = \"{{{{ letter }}}}\"\n}}\n"
    )
}

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
    println!("4. prompt-prefix reuse on two llama-server replicas, {PATIENTS} patients a round:");
    let mut patient = 0;
    for workload in &WORKLOADS {
        let path = work.path().join("workflow.wf");
        std::fs::write(&path, chart(&workload.reads)).expect("write the workflow");
        let program = load(&path);
        let workflow = &program.workflows[0];
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
                let routers: Vec<_> = (0..workload.routers)
                    .map(|_| {
                        Deployment::Router(config.clone())
                            .connect(&["Clinical"], Path::new("."), false)
                            .expect("a router")
                    })
                    .collect();
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
                for batch in inputs.chunks(workload.at_once) {
                    let reports =
                        runtime.block_on(join_all(batch.iter().enumerate().map(|(i, inputs)| {
                            let http = &routers[i % routers.len()];
                            Session::new(&program, workflow, http).run(inputs, &(), &cancel)
                        })));
                    for report in reports {
                        assert!(report.success, "{:?}", report.metadata.errors);
                        prompt += report.metadata.prompt_tokens;
                        cached += report.metadata.cached_prompt_tokens;
                        makespans.push(report.total_latency_ms);
                    }
                }
                println!(
                    "   {:<22} affinity {:<3}: {cached:>6} of {prompt:>6} prompt tokens from cache \
                     ({:>5.1}%), median run {:.0} ms",
                    workload.name,
                    if affinity { "on" } else { "off" },
                    cached as f64 * 100.0 / prompt.max(1) as f64,
                    median(makespans)
                );
            }
        }
    }
    println!();
}
