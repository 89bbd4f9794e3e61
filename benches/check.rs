//! Parse + check time for generated workflows of 100, 1,000 and 10,000 tasks
//! with realistic prompts and dependencies, plain and in full, as the
//! library writes them: a `@phi` input, context windows and `after` lists,
//! so the PHI flow, the budgets and the redundant-`after` lint have work.
//! Run with `cargo bench --bench check`.

use std::time::{Duration, Instant};

use wfc::check::check_file;
use wfc::loader::Loader;

const AGENTS: [&str; 3] = ["Clinical", "MedicalQA", "Billing"];

/// A workflow of `tasks` tasks in layers of 10: each task reads one or two
/// tasks of the layer before and one of the inputs, like a wide pipeline.
/// `full`: with a `@phi` input, bounded inputs, context windows, and each
/// task after a layer-before task it does not read.
fn workflow(tasks: usize, full: bool) -> String {
    let (agent, phi, bound) = if full {
        (
            "phi_allowed = true context_window = 32768",
            " @phi @max_len(4000)",
            " @max_len(500)",
        )
    } else {
        ("", "", "")
    };
    let mut text = format!(
        "agent Clinical {{ model = \"BioMistral-7B\"  max_concurrency = 4 {agent} }}\n\
         agent MedicalQA {{ model = \"BiMediX2-8B\" {agent} }}\n\
         agent Billing {{ model = \"OpenInsurance-8B\" {agent} }}\n\n\
         /// A generated pipeline.\nworkflow generated {{\n\
           input patient_data: text{phi}\n  input admission_date: date\n  input question: text{bound}\n\n",
    );
    let inputs = ["patient_data", "admission_date", "question"];
    for i in 0..tasks {
        let layer = i / 10;
        let mut reads = Vec::new();
        if layer > 0 {
            reads.push(format!("t{}", (layer - 1) * 10 + i % 10));
            reads.push(format!("t{}", (layer - 1) * 10 + (i + 3) % 10));
        }
        let context: String = reads
            .iter()
            .map(|r| format!("      Findings from the previous step:\n      {{{{ {r} }}}}\n"))
            .collect();
        let after = if full && layer > 0 {
            format!("    after = [t{}]\n", (layer - 1) * 10 + (i + 5) % 10)
        } else {
            String::new()
        };
        text.push_str(&format!(
            "  task t{i} -> {agent} {{\n{after}    priority = {priority}\n    max_tokens = 512\n    prompt = \"\"\"\n      \
             Review the patient record below and write the next section of the assessment.\n      \
             Use only documented facts; write \"Not documented\" where information is missing.\n\
             {context}      Record: {{{{ {input} | trim }}}}\n      \
             {{% if question %}}Question to address: {{{{ question }}}}{{% endif %}}\n    \"\"\"\n  }}\n",
            agent = AGENTS[i % 3],
            priority = 1 + i % 5,
            input = inputs[i % 3],
        ));
    }
    let last_layer = (tasks - 1) / 10;
    let outputs: Vec<String> = (last_layer * 10..tasks)
        .map(|i| format!("{{{{ t{i} }}}}"))
        .collect();
    text.push_str(&format!("  output = \"{}\"\n}}\n", outputs.join("\\n")));
    // Tasks of earlier layers are read by the next layer; the last layer by the output.
    text
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    println!(
        "{:>7} {:>8} {:>10} {:>12} {:>16}",
        "tasks", "flavour", "bytes", "median ms", "ms / 1k tasks"
    );
    for (tasks, full) in [100, 1_000, 10_000]
        .into_iter()
        .flat_map(|tasks| [(tasks, false), (tasks, true)])
    {
        let flavour = if full { "full" } else { "plain" };
        let path = dir.path().join(format!("w{tasks}-{flavour}.wf"));
        let text = workflow(tasks, full);
        std::fs::write(&path, &text).expect("write");
        let runs = if tasks >= 10_000 { 7 } else { 21 };
        let mut times: Vec<Duration> = (0..runs)
            .map(|_| {
                let start = Instant::now();
                let report = check_file(&mut Loader::default(), &path).expect("readable");
                let elapsed = start.elapsed();
                // The full flavour warns that shared context comes late.
                assert!(
                    report.problems.iter().all(|problem| !problem.is_error()),
                    "{:?}",
                    report.problems.first()
                );
                elapsed
            })
            .collect();
        times.sort();
        let median = times[runs / 2].as_secs_f64() * 1e3;
        println!(
            "{tasks:>7} {flavour:>8} {:>10} {median:>12.2} {:>16.2}",
            text.len(),
            median / tasks as f64 * 1_000.0
        );
    }
}
