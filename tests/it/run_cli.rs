//! `wfc run` as people and scripts call it: inputs, the report on stdout,
//! the run directory, exit codes, Ctrl-C and `--resume`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{Ran, Wfc};

const DISCHARGE: &str = "workflows/discharge_summary.wf";

fn run(args: &[&str]) -> Ran {
    Wfc::new().arg("run").args(args).run()
}

fn discharge_inputs(dir: &Path) -> Vec<String> {
    let record = dir.join("record.txt");
    std::fs::write(&record, "65-year-old man, inferior STEMI, PCI to the RCA.").unwrap();
    vec![
        "--input".into(),
        format!("patient_data=@{}", record.display()),
        "--input".into(),
        "admission_date=01/01/2026".into(),
        "-i".into(),
        "discharge_date=2026-01-04".into(),
    ]
}

#[test]
fn json_output_is_the_seed_response_and_the_run_directory_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let mut args = vec![DISCHARGE.to_string(), "--mock".into()];
    args.extend(["--mock-latency".into(), "20ms".into(), "--json".into()]);
    args.extend(["--run-dir".into(), run_dir.display().to_string()]);
    args.extend(discharge_inputs(dir.path()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = run(&args);
    assert_eq!(output.code, Some(0), "{}", output.stderr);

    let report: serde_json::Value = output.json();
    assert_eq!(report["workflow_type"], "discharge_summary");
    assert_eq!(report["success"], true);
    assert!(
        report["aggregated_content"]
            .as_str()
            .unwrap()
            .starts_with("=== DISCHARGE SUMMARY ===")
    );
    for number in ["total_latency_ms", "parallel_efficiency"] {
        assert!(report[number].is_number(), "{number}");
    }
    let metadata = &report["metadata"];
    assert_eq!(metadata["num_tasks"], 2);
    assert!(metadata["sequential_time_ms"].is_number());
    assert!(metadata["speedup_factor"].is_number());
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for result in results {
        for field in [
            "task_id",
            "agent_type",
            "model",
            "latency_ms",
            "tokens",
            "success",
        ] {
            assert!(!result[field].is_null(), "{field} in {result}");
        }
        assert!(result["error"].is_null());
    }

    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(stored, report);
    let journal = std::fs::read_to_string(run_dir.join("journal.jsonl")).unwrap();
    assert_eq!(journal.lines().count(), 2);
    let request: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(request["workflow"], "discharge_summary");
    assert_eq!(request["inputs"]["discharge_date"], "2026-01-04");
}

#[test]
fn bad_inputs_are_all_named_before_anything_runs() {
    let output = run(&[
        DISCHARGE,
        "--mock",
        "-i",
        "patient_dta=x",
        "-i",
        "admission_date=yesterday",
    ]);
    assert_eq!(output.code, Some(2));
    let stderr = &output.stderr;
    for expected in [
        "error: workflow `discharge_summary` has no input `patient_dta`; did you mean `patient_data`?",
        "error: input `admission_date` should be a date such as 2026-01-04 or 01/04/2026, but `yesterday` is not a date",
        "error: input `patient_data` is required (declared as `text`) but was not given",
        "error: input `discharge_date` is required",
        "--input patient_data=...",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(output.stdout.is_empty());
    insta::assert_snapshot!(output.to_string());
}

#[test]
fn a_file_with_errors_runs_nothing() {
    let output = run(&["tests/cases/check/err_cycle.wf", "--mock"]);
    assert_eq!(output.code, Some(1));
    let stderr = &output.stderr;
    assert!(stderr.contains("wf::cycle"), "{stderr}");
    assert!(stderr.contains("has errors; nothing was run"), "{stderr}");
}

#[test]
fn an_unreachable_server_fails_the_tasks_with_the_address() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let mut args = vec![DISCHARGE.to_string(), "--json".into(), "-q".into()];
    args.extend([
        "--run-dir".into(),
        dir.path().join("run").display().to_string(),
    ]);
    args.extend(discharge_inputs(dir.path()));
    let output = Wfc::new()
        .arg("run")
        .args(&args)
        .env("WFC_ROUTE_CLINICAL", &url)
        .env("WFC_ROUTE_BILLING", &url)
        .run();
    assert_eq!(output.code, Some(3), "{}", output.stderr);
    let report: serde_json::Value = output.json();
    assert_eq!(report["success"], false);
    let error = report["metadata"]["errors"]["clinical_summary"]
        .as_str()
        .unwrap();
    assert!(
        error.contains(&format!("cannot connect to {url}")),
        "{error}"
    );
    assert!(error.contains("after 3 attempts"), "{error}");
    assert!(
        report["aggregated_content"]
            .as_str()
            .unwrap()
            .contains("[clinical_summary has no result: cannot connect")
    );
}

#[test]
fn a_run_without_answers_claims_no_speedup() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let output = Wfc::new()
        .arg("run")
        .arg(DISCHARGE)
        .arg("--run-dir")
        .arg(dir.path().join("run"))
        .args(discharge_inputs(dir.path()))
        .env("WFC_ROUTE_CLINICAL", &url)
        .env("WFC_ROUTE_BILLING", &url)
        .run();
    assert_eq!(output.code, Some(3), "{}", output.stderr);
    assert!(
        output.stderr.contains(" ms, none answered; 2 failed\n"),
        "{}",
        output.stderr
    );
    assert!(!output.stderr.contains("speedup"), "{}", output.stderr);
}

#[test]
fn the_summary_says_how_much_of_the_prompts_came_from_the_servers_caches() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("chart.wf");
    std::fs::write(
        &file,
        "agent A { model = \"a\" }\nworkflow chart {\n  input record: text\n  task one -> A { prompt = \"{{ record }} one\" }\n  task two -> A { prompt = \"{{ record }} two, after {{ one }}\" }\n}\n",
    )
    .unwrap();
    let output = Wfc::new()
        .arg("run")
        .arg(&file)
        .args(["--mock", "--mock-latency", "1ms", "-i"])
        .arg("record=Patient of 71 admitted with pneumonia")
        .arg("--run-dir")
        .arg(dir.path().join("run"))
        .run();
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    // `two` begins with the 6 words `one` sent before it.
    assert!(
        output
            .stderr
            .contains("; 6 of 25 prompt tokens from the servers' caches\n"),
        "{}",
        output.stderr
    );
}

#[test]
fn a_bad_router_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let router = dir.path().join("wfc.toml");
    std::fs::write(&router, "[[agents.Clinical.endpoints]]\nurl = \"gpu-1\"\n").unwrap();
    let mut args = vec![
        DISCHARGE.to_string(),
        "--router".into(),
        router.display().to_string(),
    ];
    args.extend(discharge_inputs(dir.path()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = run(&args);
    assert_eq!(output.code, Some(2));
    let stderr = &output.stderr;
    assert!(
        stderr.contains("is not an http:// or https:// URL"),
        "{stderr}"
    );
}

/// Starts the discharge summary (or resumes it) with a Clinical model that
/// never answers in time, and waits until the journal holds Billing's
/// answer `times` times (a resumed run journals the replayed answer again).
fn start_then_wait_for_billing(
    dir: &Path,
    run_dir: &Path,
    resume: bool,
    times: usize,
) -> std::process::Child {
    let mut args = if resume {
        vec!["--resume".to_string(), run_dir.display().to_string()]
    } else {
        let mut args = vec![DISCHARGE.to_string()];
        args.extend(["--run-dir".into(), run_dir.display().to_string()]);
        args.extend(discharge_inputs(dir));
        args
    };
    args.extend([
        "--mock".into(),
        "--mock-latency".into(),
        "Billing=10ms".into(),
    ]);
    args.extend(["--mock-latency".into(), "Clinical=60s".into()]);
    let child = Wfc::new().arg("run").args(&args).spawn();
    let journal = run_dir.join("journal.jsonl");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(&journal)
        .map_or(true, |j| j.matches("billing_codes").count() < times)
    {
        assert!(Instant::now() < deadline, "billing never finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// `wfc run --resume RUN_DIR` on a mock that answers at once, the report
/// on stdout.
fn resume_on_a_quick_mock(run_dir: &Path) -> Ran {
    Wfc::new()
        .args(["run", "--resume"])
        .arg(run_dir)
        .args(["--mock", "--mock-latency", "10ms", "--json", "-q"])
        .run()
}

pub(crate) fn signal(child: &std::process::Child, name: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

#[test]
fn ctrl_c_keeps_finished_work_and_resume_completes_the_run() {
    stop_then_resume("INT", 130);
}

#[test]
fn sigterm_is_handled_like_ctrl_c() {
    stop_then_resume("TERM", 143);
}

fn stop_then_resume(signal_name: &str, code: i32) {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let child = start_then_wait_for_billing(dir.path(), &run_dir, false, 1);
    let interrupted_at = Instant::now();
    signal(&child, signal_name);
    let output = Ran::from(child.wait_with_output().unwrap());
    assert!(interrupted_at.elapsed() < Duration::from_secs(10));
    assert_eq!(output.code, Some(code), "{}", output.stderr);
    let stderr = &output.stderr;
    assert!(stderr.contains("wfc run --resume"), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["metadata"]["interrupted"], true);
    let status = |report: &serde_json::Value, task: &str| {
        report["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["task_id"] == task)
            .unwrap()
            .clone()
    };
    assert_eq!(status(&report, "billing_codes")["status"], "ok");
    assert_eq!(status(&report, "clinical_summary")["status"], "failed");

    let output = resume_on_a_quick_mock(&run_dir);
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    let resumed: serde_json::Value = output.json();
    assert_eq!(resumed["success"], true);
    assert_eq!(status(&resumed, "billing_codes")["replayed"], true);
    assert_eq!(status(&resumed, "clinical_summary")["replayed"], false);
}

/// `kill -9` can cut the journal's last line in the middle of a write; the
/// next `--resume` drops the cut line before appending, however often.
#[test]
fn killed_resumed_killed_resumed_with_torn_journals() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let tear = || {
        let mut journal = std::fs::OpenOptions::new()
            .append(true)
            .open(run_dir.join("journal.jsonl"))
            .unwrap();
        std::io::Write::write_all(
            &mut journal,
            b"{\"task\":\"clinical_summary\",\"text\":\"cut sh",
        )
        .unwrap();
    };
    for (resume, times) in [(false, 1), (true, 2)] {
        let child = start_then_wait_for_billing(dir.path(), &run_dir, resume, times);
        signal(&child, "KILL");
        child.wait_with_output().unwrap();
        tear();
    }
    let output = resume_on_a_quick_mock(&run_dir);
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    let report = output.json();
    assert_eq!(report["success"], true);
    let journal = std::fs::read_to_string(run_dir.join("journal.jsonl")).unwrap();
    for line in journal.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("every line is a whole record");
    }
}

/// `--resume` sends its requests where the interrupted run sent them, and
/// refuses a router file that has changed since unless it is named again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_remembers_the_deployment() {
    let mock = wfc::mock::MockServer::start(wfc::mock::MockConfig {
        faults: vec![wfc::mock::Fault {
            model: Some("BioMistral-7B".into()),
            prompt_contains: None,
            times: Some(1),
            kind: wfc::mock::FaultKind::Status(400),
        }],
        ..wfc::mock::MockConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let router = dir.path().join("router.toml");
    let mut routes = String::new();
    for agent in ["Clinical", "Billing"] {
        routes.push_str(&format!(
            "[[agents.{agent}.endpoints]]\nurl = \"{}\"\n",
            mock.base_url()
        ));
    }
    std::fs::write(&router, &routes).unwrap();
    let run_dir = dir.path().join("run");
    let first = Wfc::new()
        .args(["run", DISCHARGE, "--json", "-q", "--router"])
        .arg(&router)
        .arg("--run-dir")
        .arg(&run_dir)
        .args(discharge_inputs(dir.path()))
        .run_in_background()
        .await;
    assert_eq!(first.code, Some(3), "{}", first.stderr);

    let resume = |extra: &[&str]| {
        Wfc::new()
            .args(["run", "--json", "-q", "--resume"])
            .arg(&run_dir)
            .args(extra)
            .run_in_background()
    };
    let resumed = resume(&[]).await;
    assert_eq!(resumed.code, Some(0), "{}", resumed.stderr);
    assert_eq!(
        mock.requests().len(),
        3,
        "the clinical summary was asked again of the same server"
    );

    std::fs::write(&router, format!("# moved\n{routes}")).unwrap();
    let refused = resume(&[]).await;
    assert_eq!(refused.code, Some(2));
    assert!(
        refused
            .stderr
            .contains("has changed since this run started"),
        "{}",
        refused.stderr
    );
    let told = resume(&["--router", router.to_str().unwrap()]).await;
    assert_eq!(told.code, Some(0), "{}", told.stderr);
}

#[test]
fn timeline_draws_the_run_beside_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("run.svg");
    let ran = Wfc::new()
        .args(["run", "workflows/discharge_summary.wf", "--inputs"])
        .arg("workflows/examples/discharge_summary.json")
        .args(["--mock", "--mock-latency", "20ms", "--run-dir"])
        .arg(dir.path().join("run"))
        .arg("--timeline")
        .arg(&svg)
        .run();
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(ran.stderr.contains("timeline: "), "{}", ran.stderr);
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(drawn.starts_with("<svg"), "{drawn}");
    for task in ["clinical_summary", "billing_codes"] {
        assert!(
            drawn.contains(&format!("<title>{task} on ")),
            "{task}: {drawn}"
        );
    }
}
