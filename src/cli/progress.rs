//! What a person watching `wfc run` sees on stderr: a live display on a
//! terminal, one line per event otherwise (CI logs, pipes), nothing with
//! `--quiet`. It shows names, timings and errors, never prompt or answer text.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use wfc::check::WorkflowDef;
use wfc::record::{Outcome, TaskRecord};
use wfc::run::{Event, Observer};

pub(super) struct Progress {
    display: Display,
    /// Each task's `max_tokens`, to tell a cut-off answer's cause.
    max_tokens: HashMap<String, u32>,
}

enum Display {
    Live(Live),
    Lines(Lines),
}

impl Progress {
    /// The live display when stderr is a terminal, plain lines otherwise.
    pub(super) fn for_stderr(workflow: &WorkflowDef) -> Self {
        let display = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            Display::Live(Live::new(workflow.tasks.len()))
        } else {
            Display::Lines(Lines {
                start: Instant::now(),
            })
        };
        Progress {
            display,
            max_tokens: workflow
                .tasks
                .iter()
                .map(|task| (task.name.clone(), task.max_tokens))
                .collect(),
        }
    }

    fn finished_line(&self, record: &TaskRecord) -> String {
        finished_line(record, self.max_tokens.get(&record.task).copied())
    }
}

impl Observer for Progress {
    fn on_event(&self, event: &Event<'_>) {
        match &self.display {
            Display::Live(live) => live.on_event(event, self),
            Display::Lines(lines) => lines.on_event(event, self),
        }
    }
}

struct Lines {
    start: Instant,
}

impl Lines {
    fn on_event(&self, event: &Event<'_>, progress: &Progress) {
        let at = self.start.elapsed().as_secs_f64();
        let line = match event {
            Event::Started { task, agent } => format!("started  {task} on {agent}"),
            Event::Text { .. } => return,
            Event::Retrying {
                task,
                attempt,
                error,
                delay,
            } => format!(
                "retrying {task} after attempt {attempt} in {}: {error}",
                seconds(*delay)
            ),
            Event::FallingBack {
                task,
                from,
                to,
                error,
            } => format!("fallback {task}: {from} gave up ({error}); trying {to}"),
            Event::Finished { record } => progress.finished_line(record),
        };
        eprintln!("[{at:>7.2}s] {line}");
    }
}

fn finished_line(record: &TaskRecord, max_tokens: Option<u32>) -> String {
    let task = &record.task;
    match &record.outcome {
        Outcome::Ok { finish_reason, .. } => {
            // Servers say `length` both when max_tokens ran out and when
            // their context filled up first.
            let cut = match (finish_reason.as_deref(), max_tokens) {
                (Some("length"), Some(limit)) if record.tokens < limit => {
                    ", cut off: the server's context was full"
                }
                (Some("length"), _) => ", cut off by max_tokens",
                _ => "",
            };
            let replayed = if record.replayed { ", replayed" } else { "" };
            let quality = match &record.quality {
                Some(quality) if !quality.failed.is_empty() => format!(
                    ", quality {:.2}: failed {}",
                    quality.score,
                    quality.failed.join(", ")
                ),
                _ => String::new(),
            };
            format!(
                "ok       {task} ({}, {} tokens, {:.0} ms{cut}{replayed}{quality})",
                record.agent, record.tokens, record.latency_ms
            )
        }
        Outcome::Failed { error } => format!("failed   {task}: {error}"),
        Outcome::Skipped { reason } => format!("skipped  {task}: {reason}"),
    }
}

fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

/// One spinner per running task under a summary line.
struct Live {
    bars: MultiProgress,
    summary: ProgressBar,
    state: Mutex<LiveState>,
}

#[derive(Default)]
struct LiveState {
    running: HashMap<String, (ProgressBar, u64)>,
    done: usize,
    failed: usize,
    skipped: usize,
    tokens: u64,
    total: usize,
}

/// Whatever is still on screen when the run ends (Ctrl-C, SIGTERM) goes,
/// so no frozen spinner is left above the summary.
impl Drop for Live {
    fn drop(&mut self) {
        let state = self.state.get_mut().expect("progress lock");
        for (bar, _) in state.running.values() {
            bar.finish_and_clear();
        }
        self.summary.finish_and_clear();
        let _ = self.bars.clear();
    }
}

impl Live {
    fn new(total: usize) -> Self {
        let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let summary = bars.add(ProgressBar::new(total as u64));
        summary.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:20}] {pos}/{len} tasks {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        summary.enable_steady_tick(Duration::from_millis(200));
        Live {
            bars,
            summary,
            state: Mutex::new(LiveState {
                total,
                ..LiveState::default()
            }),
        }
    }

    fn on_event(&self, event: &Event<'_>, progress: &Progress) {
        let mut state = self.state.lock().expect("progress lock");
        match event {
            Event::Started { task, agent } => {
                let bar = self.bars.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("  {spinner} {prefix} {elapsed} {msg}")
                        .expect("valid template"),
                );
                bar.set_prefix(format!("{task} on {agent}"));
                bar.enable_steady_tick(Duration::from_millis(120));
                state.running.insert(task.to_string(), (bar, 0));
            }
            Event::Text { task, .. } => {
                state.tokens += 1;
                if let Some((bar, tokens)) = state.running.get_mut(*task) {
                    *tokens += 1;
                    bar.set_message(format!("{tokens} tokens"));
                }
            }
            Event::Retrying {
                task,
                attempt,
                error,
                ..
            } => {
                if let Some((bar, _)) = state.running.get(*task) {
                    bar.set_message(format!("retrying after attempt {attempt}: {error}"));
                }
            }
            Event::FallingBack { task, to, .. } => {
                if let Some((bar, _)) = state.running.remove(*task) {
                    bar.finish_and_clear();
                }
                let _ = self.bars.println(format!("  ↪ {task} falls back to {to}"));
            }
            Event::Finished { record } => {
                if let Some((bar, _)) = state.running.remove(&record.task) {
                    bar.finish_and_clear();
                }
                match record.outcome {
                    Outcome::Ok { .. } => state.done += 1,
                    Outcome::Failed { .. } => state.failed += 1,
                    Outcome::Skipped { .. } => state.skipped += 1,
                }
                let mark = match record.outcome {
                    Outcome::Ok { .. } => "✓",
                    Outcome::Failed { .. } => "✗",
                    Outcome::Skipped { .. } => "-",
                };
                let _ = self
                    .bars
                    .println(format!("  {mark} {}", progress.finished_line(record)));
                self.summary.inc(1);
            }
        }
        self.summary.set_message(format!(
            "({} running, {} failed, {} skipped, {} tokens)",
            state.running.len(),
            state.failed,
            state.skipped,
            state.tokens
        ));
        if state.done + state.failed + state.skipped == state.total {
            self.summary.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut_off(tokens: u32) -> TaskRecord {
        let mut record = TaskRecord::skipped("summary", "Clinical", "m", String::new(), 0);
        record.outcome = Outcome::Ok {
            text: "half an answer".into(),
            finish_reason: Some("length".into()),
        };
        record.tokens = tokens;
        record
    }

    #[test]
    fn a_cut_off_answer_names_what_cut_it() {
        assert!(finished_line(&cut_off(512), Some(512)).contains("cut off by max_tokens"));
        assert!(
            finished_line(&cut_off(37), Some(512))
                .contains("cut off: the server's context was full")
        );
    }
}
