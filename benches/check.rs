//! Parse + check time for generated workflows of 100, 1,000 and 10,000 tasks
//! with realistic prompts and dependencies. Run with `cargo bench --bench check`.

use std::time::{Duration, Instant};

use wfc::check::check_file;
use wfc::loader::Loader;

const AGENTS: [&str; 3] = ["Clinical", "MedicalQA", "Billing"];

/// A workflow of `tasks` tasks in layers of 10: each task reads one or two
/// tasks of the layer before and one of the inputs, like a wide pipeline.
fn workflow(tasks: usize) -> String {
    let mut text = String::from(
        "agent Clinical { model = \"BioMistral-7B\"  max_concurrency = 4 }\n\
         agent MedicalQA { model = \"BiMediX2-8B\" }\n\
         agent Billing { model = \"OpenInsurance-8B\" }\n\n\
         /// A generated pipeline.\nworkflow generated {\n\
           input patient_data: text\n  input admission_date: date\n  input question: text\n\n",
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
        text.push_str(&format!(
            "  task t{i} -> {agent} {{\n    priority = {priority}\n    max_tokens = 512\n    prompt = \"\"\"\n      \
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
        "{:>7} {:>10} {:>12} {:>16}",
        "tasks", "bytes", "median ms", "ms / 1k tasks"
    );
    for tasks in [100, 1_000, 10_000] {
        let path = dir.path().join(format!("w{tasks}.wf"));
        let text = workflow(tasks);
        std::fs::write(&path, &text).expect("write");
        let runs = if tasks >= 10_000 { 7 } else { 21 };
        let mut times: Vec<Duration> = (0..runs)
            .map(|_| {
                let start = Instant::now();
                let report = check_file(&mut Loader::default(), &path).expect("readable");
                let elapsed = start.elapsed();
                assert!(report.problems.is_empty(), "{:?}", report.problems.first());
                elapsed
            })
            .collect();
        times.sort();
        let median = times[runs / 2].as_secs_f64() * 1e3;
        println!(
            "{tasks:>7} {:>10} {median:>12.2} {:>16.2}",
            text.len(),
            median / tasks as f64 * 1_000.0
        );
    }
}
