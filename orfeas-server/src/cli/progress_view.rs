//! Progress on stderr: one bar per slot plus an overall bar on a terminal, one plain line
//! per finished job otherwise (logs, CI, pipes).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use orfeas_core::{JobId, ProgressEvent, ProgressSink, Stage};

pub struct View {
    total: usize,
    finished: AtomicUsize,
    bars: Option<Bars>,
}

struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    slots: Vec<ProgressBar>,
    /// Which slot row shows which job; rows are handed out as jobs start.
    rows: Mutex<(HashMap<JobId, usize>, Vec<usize>)>,
}

impl View {
    pub fn new(total: usize, slots: usize) -> Self {
        let bars = std::io::stderr()
            .is_terminal()
            .then(|| Bars::new(total, slots));
        Self {
            total,
            finished: AtomicUsize::new(0),
            bars,
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bars {
            for s in &b.slots {
                s.finish_and_clear();
            }
            b.overall.finish();
        }
    }

    fn line(&self, text: String) {
        match &self.bars {
            Some(b) => {
                let _ = b.multi.println(text);
            }
            None => eprintln!("{text}"),
        }
    }
}

impl Bars {
    fn new(total: usize, slots: usize) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let overall = multi.add(ProgressBar::new(total as u64));
        overall.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{wide_bar:.cyan/blue}] {pos}/{len} images {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        overall.enable_steady_tick(Duration::from_millis(200));
        let style =
            ProgressStyle::with_template("  slot {prefix} [{bar:30.green/white}] {pos:>3}% {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
        let slots = (0..slots.min(total.max(1)))
            .map(|i| {
                let bar = multi.add(ProgressBar::new(100));
                bar.set_style(style.clone());
                bar.set_prefix((i + 1).to_string());
                bar.set_message("idle");
                bar
            })
            .collect::<Vec<_>>();
        let free = (0..slots.len()).rev().collect();
        Self {
            multi,
            overall,
            slots,
            rows: Mutex::new((HashMap::new(), free)),
        }
    }

    fn row_for(&self, job: &JobId) -> Option<usize> {
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&r) = rows.0.get(job) {
            return Some(r);
        }
        let r = rows.1.pop()?;
        rows.0.insert(job.clone(), r);
        Some(r)
    }

    fn release(&self, job: &JobId) {
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = rows.0.remove(job) {
            self.slots[r].set_position(0);
            self.slots[r].set_message("idle");
            rows.1.push(r);
        }
    }
}

fn short_name(input: &str) -> &str {
    input.rsplit(['/', '\\']).next().unwrap_or(input)
}

impl ProgressSink for View {
    fn emit(&self, event: &ProgressEvent) {
        match event {
            ProgressEvent::GenerationProgress {
                job_id,
                input,
                progress,
                stage,
                ..
            } => {
                if let (Some(b), false) = (&self.bars, *stage == Stage::Queued) {
                    if let Some(r) = b.row_for(job_id) {
                        b.slots[r].set_position(*progress as u64);
                        b.slots[r].set_message(format!("{} {}", short_name(input), stage.as_str()));
                    }
                }
            }
            ProgressEvent::GenerationComplete {
                job_id,
                input,
                outputs,
                triangles,
                seconds,
                depth,
                warnings,
                ..
            } => {
                let n = self.finished.fetch_add(1, Ordering::Relaxed) + 1;
                let files: Vec<String> = outputs
                    .iter()
                    .map(|o| o.path.display().to_string())
                    .collect();
                self.line(format!(
                    "[{n}/{}] done   {input} ({depth}, {triangles} triangles, {seconds:.2} s) -> {}",
                    self.total,
                    files.join(", ")
                ));
                for warning in warnings {
                    self.line(format!("        warning: {input}: {warning}"));
                }
                if let Some(b) = &self.bars {
                    b.release(job_id);
                    b.overall.inc(1);
                }
            }
            ProgressEvent::GenerationError {
                job_id,
                input,
                error,
                code,
                ..
            } => {
                let n = self.finished.fetch_add(1, Ordering::Relaxed) + 1;
                self.line(format!(
                    "[{n}/{}] FAILED {input}: {error} [{code}]",
                    self.total
                ));
                if let Some(b) = &self.bars {
                    b.release(job_id);
                    b.overall.inc(1);
                }
            }
            ProgressEvent::GenerationCancelled { job_id, input, .. } => {
                let n = self.finished.fetch_add(1, Ordering::Relaxed) + 1;
                self.line(format!("[{n}/{}] cancelled {input}", self.total));
                if let Some(b) = &self.bars {
                    b.release(job_id);
                    b.overall.inc(1);
                }
            }
            ProgressEvent::BatchProgress { counts, .. } => {
                if let Some(b) = &self.bars {
                    b.overall.set_message(format!(
                        "({} running, {} failed, {} cancelled)",
                        counts.processing, counts.failed, counts.cancelled
                    ));
                }
            }
            _ => {}
        }
    }
}
