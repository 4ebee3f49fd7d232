//! The store of a front end (`orfeas serve --queue`): jobs run on cluster workers, and the
//! queue's view of them (the state bucket, workers' progress events) is applied here, so that
//! routes, WebSocket clients and the journal work as for jobs this server runs itself.
//!
//! The queue's state is the truth; events only fill in progress between its changes. Two
//! rules keep a client's view moving forwards: an event of an attempt older than the newest
//! one seen is dropped (a worker presumed dead that wakes up), and a new attempt does not
//! lower the progress shown until it has passed it.

use orfeas_core::CancelToken;

use super::record::{CompletionReport, JobRecord, JobState, OutputRecord};
use super::store::{set_cancelled, set_error, Inner, JobStore, Live};
use crate::clock::now_rfc3339;
use crate::cluster::JobState as QueueState;
use crate::events;

impl JobStore {
    /// A front end's start: the queue owns unfinished jobs, so they keep their state (the
    /// state watch corrects it) and get live bookkeeping again. Returns them, oldest first,
    /// to be submitted again (a job the queue already knows is not published twice).
    pub fn hold_unfinished(&self, mut token: impl FnMut() -> CancelToken) -> Vec<JobRecord> {
        let mut inner = self.lock();
        let unfinished: Vec<JobRecord> = inner
            .jobs
            .iter()
            .filter(|j| !j.status.is_terminal())
            .cloned()
            .collect();
        for job in &unfinished {
            inner.live.insert(job.job_id.clone(), Live::new(token()));
        }
        unfinished
    }

    /// A worker's progress event. Ignored for unknown or finished jobs and for attempts older
    /// than the newest seen.
    pub fn apply_remote_progress(
        &self,
        job_id: &str,
        worker: &str,
        attempt: u64,
        progress: f32,
        stage: &str,
    ) {
        let mut inner = self.lock();
        let Some(idx) = live_index(&inner, job_id) else {
            return;
        };
        let attempt = u32::try_from(attempt).unwrap_or(u32::MAX);
        let job = &mut inner.jobs[idx];
        if attempt < job.attempts || stage == "queued" {
            return;
        }
        let started = job.status == JobState::Queued || attempt > job.attempts;
        job.status = JobState::Processing;
        job.stage = stage.to_owned();
        job.progress = job.progress.max(progress.clamp(0.0, 100.0));
        job.started_at.get_or_insert_with(now_rfc3339);
        job.attempts = attempt;
        job.worker = Some(worker.to_owned());
        if started {
            self.writer.put(job);
        }
        self.send(events::progress(job));
        if started {
            let batch_id = job.batch_id.clone();
            self.send(events::batch_progress(&inner.counts(&batch_id)));
        }
        if let Some(live) = inner.live.get_mut(job_id) {
            live.last_sent = std::time::Instant::now();
        }
        self.bump(&mut inner);
    }

    /// The queue's state of a job (every entry of the state bucket, at start and as it
    /// changes). A job this store does not know (another front end's, or a data directory
    /// that was lost) is adopted, so the job list is rebuilt from the queue.
    pub fn apply_remote_state(&self, job_id: &str, state: &QueueState) {
        let mut inner = self.lock();
        let idx = match inner.index.get(job_id) {
            Some(&idx) => idx,
            None => {
                let record = adopted(job_id, state);
                self.writer.put(&record);
                self.send(events::progress(&record));
                let idx = inner.insert(record);
                inner
                    .live
                    .insert(job_id.to_owned(), Live::new(CancelToken::new()));
                idx
            }
        };
        if inner.jobs[idx].status.is_terminal() {
            return;
        }
        let reason = inner.live.get(job_id).and_then(|l| l.reason.clone());
        let now = now_rfc3339();
        let bytes_before = inner.jobs[idx].data_bytes();
        let job = &mut inner.jobs[idx];
        let finished = match state {
            QueueState::Queued { .. } => false,
            QueueState::Running {
                worker, attempt, ..
            } => {
                let attempt = u32::try_from(*attempt).unwrap_or(u32::MAX);
                if attempt > job.attempts || job.status == JobState::Queued {
                    let first = job.status == JobState::Queued;
                    job.status = JobState::Processing;
                    if first {
                        job.stage = "loading".into();
                    }
                    job.attempts = job.attempts.max(attempt);
                    job.worker = Some(worker.clone());
                    job.started_at.get_or_insert_with(|| now.clone());
                    self.writer.put(job);
                    self.send(events::progress(job));
                    let batch_id = job.batch_id.clone();
                    self.send(events::batch_progress(&inner.counts(&batch_id)));
                }
                false
            }
            QueueState::Complete {
                worker,
                attempt,
                outputs,
                report,
                ..
            } => {
                job.worker = Some(worker.clone());
                job.attempts = u32::try_from(*attempt).unwrap_or(u32::MAX);
                let outputs = outputs
                    .iter()
                    .map(|o| OutputRecord {
                        format: o.format.clone(),
                        file: o.name.clone(),
                        bytes: o.bytes,
                        key: Some(o.key.clone()),
                    })
                    .collect();
                let report = serde::Deserialize::deserialize(report).unwrap_or_else(|e| {
                    tracing::warn!(
                        job_id,
                        "a worker's report is unreadable ({e}); its files stand"
                    );
                    CompletionReport::default()
                });
                job.complete(outputs, report, now);
                true
            }
            QueueState::Failed {
                code,
                error,
                attempts,
                ..
            } => {
                job.attempts = u32::try_from(*attempts).unwrap_or(u32::MAX);
                set_error(job, code, error.clone(), now);
                true
            }
            QueueState::Cancelled { .. } => {
                set_cancelled(
                    job,
                    reason.unwrap_or_else(|| "cancelled by request".into()),
                    now,
                );
                true
            }
        };
        let bytes_after = inner.jobs[idx].data_bytes();
        inner.data_bytes = inner.data_bytes - bytes_before + bytes_after;
        if finished {
            self.finish(&mut inner, idx);
        }
        self.bump(&mut inner);
    }

    /// Notes why a job is being cancelled through the queue (its cancelled state then
    /// carries the reason), without cancelling anything here. False for an unknown or
    /// finished job.
    pub fn note_cancel_reason(&self, job_id: &str, reason: &str) -> bool {
        let mut inner = self.lock();
        match inner.live.get_mut(job_id) {
            Some(live) => {
                live.reason = Some(reason.to_owned());
                true
            }
            None => false,
        }
    }
}

/// The index of a job that is still live.
fn live_index(inner: &Inner, job_id: &str) -> Option<usize> {
    let &idx = inner.index.get(job_id)?;
    (!inner.jobs[idx].status.is_terminal()).then_some(idx)
}

/// The record of a job known only from the queue: what its state says (its name, batch and
/// outcome); the settings it was submitted with are not kept there.
fn adopted(job_id: &str, state: &QueueState) -> JobRecord {
    JobRecord {
        formats: match state {
            QueueState::Complete { outputs, .. } => {
                outputs.iter().map(|o| o.format.clone()).collect()
            }
            _ => Vec::new(),
        },
        ..JobRecord::queued(job_id, state.batch_id(), state.filename(), &now_rfc3339())
    }
}
