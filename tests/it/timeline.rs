//! `wfc run --timeline`: a run with a retry, a fallback, a failure and a
//! skip, drawn as SVG; its shape is snapshotted (with fixed times), and a
//! real browser (Debian's Chromium, which `.ci/run` installs) lays it out.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use wfc::mock::{Fault, FaultKind, MockConfig, MockServer};
use wfc::run::Report;

use crate::support::{Setup, program};

const DEMO: &str = r#"
agent Clinical {
  model = "clinical"
  fallback = Backup
}
agent Backup { model = "backup" }
agent Billing { model = "billing" }
agent Claims { model = "claims" }

workflow demo {
  input note: text
  task summary -> Clinical {
    prompt = "Summarise {{ note }}"
    retry = { attempts = 1 }
  }
  task codes -> Billing {
    prompt = "Codes for {{ note }}"
    retry = { attempts = 3, backoff = "none" }
  }
  task claim -> Claims {
    prompt = "Claim for {{ codes }}"
    retry = { attempts = 1 }
  }
  task appeal -> Billing { prompt = "Appeal {{ claim }}" }
  task review -> Billing { prompt = "Review {{ summary }} and {{ codes }}" }
  output = "{{ summary }} {{ review }} {{ appeal }}"
}
"#;

/// The input's text, which no timeline may show (it draws names, times and
/// error classes, never what a prompt or an answer says).
const MARKER: &str = "PHI-MARKER-31c7";

fn fault(model: &str, times: Option<u32>) -> Fault {
    Fault {
        model: Some(model.into()),
        prompt_contains: None,
        times,
        kind: FaultKind::Status(500),
    }
}

/// The demo, run: `summary` falls back to `Backup`, `codes` answers at its
/// third attempt, `claim` fails and `appeal`, which reads it, is skipped.
async fn demo_run(dir: &Path) -> (wfc::check::Program, Report) {
    let program = program(dir, DEMO);
    let mock = MockServer::start(MockConfig {
        default_latency: Duration::from_millis(40),
        faults: vec![
            fault("clinical", None),
            fault("billing", Some(2)),
            fault("claims", None),
        ],
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let report = Setup::new(&program, &mock)
        .inputs(serde_json::json!({ "note": MARKER }))
        .run()
        .await;
    (program, report)
}

fn status<'r>(report: &'r Report, task: &str) -> &'r wfc::run::report::TaskResult {
    report.results.iter().find(|r| r.task_id == task).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_marks_retries_fallbacks_failures_skips_and_the_critical_path() {
    let dir = tempfile::tempdir().unwrap();
    let (program, mut report) = demo_run(dir.path()).await;
    assert_eq!(status(&report, "summary").agent_type, "Backup");
    assert_eq!(status(&report, "codes").attempts, 3);
    assert_eq!(status(&report, "claim").status, "failed");
    assert_eq!(status(&report, "appeal").status, "skipped");

    // Fixed times, so the drawing is the same on every run.
    for (task, start, end) in [
        ("summary", 0, 120),
        ("codes", 0, 300),
        ("claim", 300, 340),
        ("appeal", 340, 340),
        ("review", 300, 700),
    ] {
        let result = report
            .results
            .iter_mut()
            .find(|r| r.task_id == task)
            .unwrap();
        (result.started_ms, result.finished_ms) = (f64::from(start), f64::from(end));
        result.latency_ms = f64::from(end - start);
    }
    report.total_latency_ms = 700.0;
    report.metadata.sequential_time_ms = 860.0;
    report.metadata.speedup_factor = 1.23;
    report.parallel_efficiency = 0.61;
    let svg = wfc::timeline::svg(&program.workflows[0], &report);
    assert!(!svg.contains(MARKER), "no prompt text in the picture");
    assert!(svg.contains("codes ×3"), "the retries are marked");
    assert!(
        svg.contains("summary ×2 ↪ from Clinical"),
        "the fallback is marked, its attempt counted: {svg}"
    );
    assert!(svg.contains(r#"<g class="bar failed"><title>claim"#));
    assert!(svg.contains(r#"<g class="bar skipped"><title>appeal"#));
    assert!(
        svg.contains(r#"<g class="bar ok critical"><title>codes"#)
            && svg.contains(r#"<g class="bar ok critical"><title>review"#),
        "codes then review bound the run"
    );
    let port = regex::Regex::new(r"127\.0\.0\.1:\d+").unwrap();
    insta::assert_snapshot!(port.replace_all(&svg, "127.0.0.1:[PORT]"));
}

/// Debian's Chromium, or `None` (after saying so) where it is missing and
/// not required.
fn chromium(test: &str) -> Option<PathBuf> {
    let path = std::env::var_os("WFC_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var_os("WFC_REQUIRE_SERVERS").is_none(),
        "{test}: no Chromium at {} (set WFC_CHROMIUM), and WFC_REQUIRE_SERVERS says every real server must be there",
        path.display()
    );
    eprintln!(
        "SKIPPED {test}: no Chromium at {} (apt-get install chromium; .ci/run does)",
        path.display()
    );
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_lays_the_timeline_out() {
    let Some(browser) = chromium("timeline::a_browser_lays_the_timeline_out") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (program, report) = demo_run(dir.path()).await;
    let svg = wfc::timeline::svg(&program.workflows[0], &report);
    // The page measures what the browser drew and writes it down.
    let page = format!(
        r#"<!doctype html><html><body>{svg}<pre id="measured"></pre><script>
const svg = document.querySelector('svg');
const bars = [...document.querySelectorAll('g.bar rect')];
const labels = [...document.querySelectorAll('g.bar text')];
const width = svg.viewBox.baseVal.width;
document.getElementById('measured').textContent = JSON.stringify({{
  bars: bars.length,
  drawn: bars.filter(r => r.getBBox().width > 0 && r.getBBox().height > 0).length,
  inside: bars.every(r => r.getBBox().x >= 0 && r.getBBox().x + r.getBBox().width <= width + 1),
  labelled: labels.filter(t => t.getComputedTextLength() > 0).length,
  critical: document.querySelectorAll('g.critical').length,
}});
</script></body></html>"#
    );
    let file = dir.path().join("timeline.html");
    std::fs::write(&file, page).unwrap();
    let output = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--dump-dom",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("file://{}", file.display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&output.stdout);
    let measured = dom
        .split(r#"<pre id="measured">"#)
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .unwrap_or_else(|| {
            panic!(
                "the page ran its script: {dom}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    let measured: serde_json::Value = serde_json::from_str(measured).unwrap();
    assert_eq!(measured["bars"], 5, "{measured}");
    assert_eq!(measured["drawn"], 5, "every bar has an area: {measured}");
    assert_eq!(
        measured["inside"], true,
        "every bar is inside the picture: {measured}"
    );
    assert_eq!(
        measured["labelled"], 5,
        "every bar's label is drawn: {measured}"
    );
    assert!(measured["critical"].as_u64().unwrap() >= 2, "{measured}");
}
