//! A run as a picture: one bar per task on its agent's lane, from its
//! start to its end, retries, fallbacks, failures and skips marked, the
//! critical path outlined, and the run's speed-up in the caption. SVG,
//! self-contained (no script, no external font or style), so a browser, an
//! image viewer or a report page shows it as it is. It holds names, times
//! and error classes only: no prompt and no answer.

use std::fmt::Write;

use quick_xml::escape::escape;

use crate::check::WorkflowDef;
use crate::run::Report;
use crate::run::report::TaskResult;

const WIDTH: f64 = 960.0;
const LANE_LABEL: f64 = 150.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 56.0;
const ROW: f64 = 24.0;
const BAR: f64 = 18.0;
const LANE_GAP: f64 = 10.0;
const AXIS: f64 = 44.0;
/// About how wide a character of the 12-pixel labels is.
const CHAR_WIDTH: f64 = 6.8;

const OK: &str = "#4c78a8";
const FAILED: &str = "#e45756";
const SKIPPED: &str = "#bab0ac";
const CRITICAL: &str = "#f58518";

/// One task's bar: where it sits and what it says.
struct Bar<'r> {
    result: &'r TaskResult,
    lane: usize,
    row: usize,
    critical: bool,
    /// The agent the task declares, when another one answered.
    fell_back_from: Option<&'r str>,
}

/// The timeline of `report`, a run of `workflow`.
#[must_use]
pub fn svg(workflow: &WorkflowDef, report: &Report) -> String {
    let index = |id: &str| workflow.tasks.iter().position(|t| t.name == id);
    let durations: Vec<u64> = workflow
        .tasks
        .iter()
        .map(|task| {
            report
                .results
                .iter()
                .find(|r| r.task_id == task.name && r.status == "ok")
                .map_or(0, |r| {
                    ((r.finished_ms - r.started_ms).max(0.0) * 1000.0) as u64
                })
        })
        .collect();
    let critical = workflow.plan.critical_path(&durations);

    // Lanes: the agents, in the order their first task started.
    let mut results: Vec<&TaskResult> = report.results.iter().collect();
    results.sort_by(|a, b| {
        (a.started_ms.total_cmp(&b.started_ms)).then(a.finished_ms.total_cmp(&b.finished_ms))
    });
    let mut lanes: Vec<&str> = Vec::new();
    let mut rows_end: Vec<Vec<f64>> = Vec::new();
    let mut bars = Vec::new();
    for result in results {
        let lane = lanes
            .iter()
            .position(|agent| *agent == result.agent_type)
            .unwrap_or_else(|| {
                lanes.push(&result.agent_type);
                rows_end.push(Vec::new());
                lanes.len() - 1
            });
        // Overlapping tasks of one agent take rows of its lane.
        let rows = &mut rows_end[lane];
        let row = rows
            .iter()
            .position(|end| *end <= result.started_ms)
            .unwrap_or_else(|| {
                rows.push(0.0);
                rows.len() - 1
            });
        rows[row] = result.finished_ms.max(result.started_ms + 1.0);
        let declared = index(&result.task_id).map(|i| workflow.tasks[i].agent.as_str());
        bars.push(Bar {
            result,
            lane,
            row,
            critical: index(&result.task_id).is_some_and(|i| critical.contains(&i))
                && result.status == "ok",
            fell_back_from: declared.filter(|agent| *agent != result.agent_type),
        });
    }

    let lane_tops: Vec<f64> = rows_end
        .iter()
        .scan(TOP, |top, rows| {
            let this = *top;
            *top += rows.len().max(1) as f64 * ROW + LANE_GAP;
            Some(this)
        })
        .collect();
    let plot_bottom = lane_tops
        .last()
        .zip(rows_end.last())
        .map_or(TOP, |(top, rows)| {
            top + rows.len().max(1) as f64 * ROW + LANE_GAP / 2.0
        });
    let height = plot_bottom + AXIS + 40.0;
    let span_ms = report
        .results
        .iter()
        .map(|r| r.finished_ms)
        .fold(report.total_latency_ms, f64::max)
        .ceil()
        .max(1.0) as u64;
    let plot_width = WIDTH - LANE_LABEL - RIGHT;
    let x = |ms: f64| LANE_LABEL + ms / span_ms as f64 * plot_width;

    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" font-family="Helvetica, Arial, sans-serif" font-size="12" role="img" aria-labelledby="title">
<title id="title">{title}</title>
<defs><pattern id="skipped" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#eeeeee"/><line x1="0" y1="0" x2="0" y2="6" stroke="{SKIPPED}" stroke-width="3"/></pattern></defs>
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="12" y="22" font-size="15" font-weight="bold">{title}</text>
<text x="12" y="40" fill="#444444">{caption}</text>
"##,
        title = escape(format!("workflow {}", report.workflow_type)),
        caption = escape(caption(report)),
    );
    for (lane, agent) in lanes.iter().enumerate() {
        let top = lane_tops[lane];
        let rows = rows_end[lane].len().max(1) as f64;
        let _ = writeln!(
            out,
            r#"<rect class="lane" x="0" y="{:.1}" width="{WIDTH}" height="{:.1}" fill="{}"/>"#,
            top - LANE_GAP / 2.0,
            rows * ROW + LANE_GAP,
            if lane % 2 == 0 { "#f7f7f7" } else { "#ffffff" }
        );
        let _ = writeln!(
            out,
            r#"<text x="12" y="{:.1}" font-weight="bold">{}</text>"#,
            top + BAR - 4.0,
            escape(*agent)
        );
    }
    axis(&mut out, span_ms, plot_bottom, &x);
    for bar in &bars {
        draw(&mut out, bar, lane_tops[bar.lane], &x);
    }
    legend(&mut out, height - 14.0);
    out.push_str("</svg>\n");
    out
}

/// "5 tasks in 2203 ms; one after another 6080 ms: 2.76x speed-up,
/// parallel efficiency 0.92; 1 failed".
fn caption(report: &Report) -> String {
    let count = |status: &str| report.results.iter().filter(|r| r.status == status).count();
    let mut text = format!(
        "{} tasks in {:.0} ms; one after another {:.0} ms: {:.2}x speed-up, parallel efficiency {:.2}",
        report.metadata.num_tasks,
        report.total_latency_ms,
        report.metadata.sequential_time_ms,
        report.metadata.speedup_factor,
        report.parallel_efficiency
    );
    for status in ["failed", "skipped"] {
        let n = count(status);
        if n > 0 {
            let _ = write!(text, "; {n} {status}");
        }
    }
    if report.metadata.interrupted {
        text.push_str("; interrupted");
    }
    text
}

fn axis(out: &mut String, span_ms: u64, bottom: f64, x: &impl Fn(f64) -> f64) {
    let step = tick_step(span_ms);
    let _ = writeln!(
        out,
        r##"<line x1="{:.1}" y1="{bottom:.1}" x2="{:.1}" y2="{bottom:.1}" stroke="#888888"/>"##,
        x(0.0),
        x(span_ms as f64)
    );
    let mut at = 0;
    while at <= span_ms {
        let _ = writeln!(
            out,
            r##"<line x1="{0:.1}" y1="{TOP:.1}" x2="{0:.1}" y2="{1:.1}" stroke="#dddddd"/><text x="{0:.1}" y="{2:.1}" text-anchor="middle" fill="#444444">{3}</text>"##,
            x(at as f64),
            bottom + 4.0,
            bottom + 18.0,
            milliseconds(at)
        );
        at += step;
    }
}

/// A round step that puts 4 to 10 ticks on the axis.
fn tick_step(span_ms: u64) -> u64 {
    let mut step = 1;
    loop {
        for factor in [1, 2, 5] {
            if span_ms / (step * factor) <= 10 {
                return step * factor;
            }
        }
        step *= 10;
    }
}

fn milliseconds(ms: u64) -> String {
    if ms >= 1000 && ms.is_multiple_of(100) {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{ms} ms")
    }
}

fn draw(out: &mut String, bar: &Bar<'_>, lane_top: f64, x: &impl Fn(f64) -> f64) {
    let result = bar.result;
    let y = lane_top + bar.row as f64 * ROW;
    let left = x(result.started_ms);
    let width = (x(result.finished_ms) - left).max(3.0);
    let (fill, class) = match result.status.as_str() {
        "ok" => (OK, "bar ok"),
        "skipped" => ("url(#skipped)", "bar skipped"),
        _ => (FAILED, "bar failed"),
    };
    let stroke = if bar.critical {
        format!(r#" stroke="{CRITICAL}" stroke-width="3""#)
    } else {
        String::new()
    };
    let mut label = result.task_id.clone();
    if result.attempts > 1 {
        let _ = write!(label, " ×{}", result.attempts);
    }
    if let Some(from) = bar.fell_back_from {
        let _ = write!(label, " ↪ from {from}");
    }
    let mut tip = format!(
        "{} on {} ({}): {}, {:.1} ms, {} attempt{}",
        result.task_id,
        result.agent_type,
        result.model,
        result.status,
        result.latency_ms,
        result.attempts,
        if result.attempts == 1 { "" } else { "s" }
    );
    if let Some(error) = &result.error {
        let _ = write!(tip, "; {error}");
    }
    let critical = if bar.critical { " critical" } else { "" };
    // A label too long for its bar goes after it, in the page's colour.
    let fits = label.chars().count() as f64 * CHAR_WIDTH + 8.0 <= width;
    let (label_x, colour) = match (fits, result.status.as_str()) {
        (true, "ok" | "failed") => (left + 4.0, "#ffffff"),
        (true, _) => (left + 4.0, "#333333"),
        (false, _) => (left + width + 4.0, "#333333"),
    };
    let _ = writeln!(
        out,
        r#"<g class="{class}{critical}"><title>{tip}</title><rect x="{left:.1}" y="{y:.1}" width="{width:.1}" height="{BAR}" rx="3" fill="{fill}"{stroke}/><text x="{label_x:.1}" y="{:.1}" fill="{colour}">{}</text></g>"#,
        y + BAR - 5.0,
        escape(label),
        tip = escape(tip),
    );
}

fn legend(out: &mut String, y: f64) {
    let items = [
        (OK, "answered"),
        (FAILED, "failed"),
        ("url(#skipped)", "skipped"),
    ];
    let mut left = LANE_LABEL;
    for (fill, name) in items {
        let _ = writeln!(
            out,
            r#"<rect x="{left:.1}" y="{:.1}" width="14" height="10" fill="{fill}"/><text x="{:.1}" y="{y:.1}">{name}</text>"#,
            y - 9.0,
            left + 18.0
        );
        left += 90.0;
    }
    let _ = writeln!(
        out,
        r##"<rect x="{left:.1}" y="{:.1}" width="14" height="10" fill="#ffffff" stroke="{CRITICAL}" stroke-width="3"/><text x="{:.1}" y="{y:.1}">critical path</text><text x="{:.1}" y="{y:.1}" fill="#444444">×N: attempts; ↪: answered by a fallback agent</text>"##,
        y - 9.0,
        left + 18.0,
        left + 120.0
    );
}
