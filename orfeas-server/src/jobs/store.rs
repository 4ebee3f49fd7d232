//! [`JobStore`]: the single owner of job state.
//!
//! Every change goes through one mutex, and the matching WebSocket event is sent while that
//! mutex is held, so the order of events on the wire is exactly the order of the changes
//! (a periodic progress re-send can never overtake a job's terminal event) and a snapshot
//! taken together with a new subscription misses nothing and repeats nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use orfeas_core::{CancelToken, JobResult, ProgressEvent, Stage};
use tokio::sync::{broadcast, watch};

use super::persist;
use super::record::{BatchCounts, JobRecord, JobState, JobView, OutputRecord};
use crate::clock::now_rfc3339;
use crate::events::{self, EventText};

/// File name of the persisted store inside the data directory.
pub const STORE_FILE: &str = "jobs.json";

/// A job handed to the store at submission.
#[derive(Debug)]
pub struct NewJob {
    pub record: JobRecord,
    /// Cancels this job alone (a child of the server's token).
    pub cancel: CancelToken,
}

/// What `DELETE /api/jobs/{id}` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    NotFound,
    /// Already in a terminal state; nothing to cancel.
    Finished(JobState),
    /// It was waiting: now cancelled.
    Cancelled,
    /// It is running: its token is set and the core stops it at its next check.
    Running,
}

/// Live bookkeeping for a job that has not finished.
#[derive(Debug)]
struct Live {
    cancel: CancelToken,
    /// Why it was cancelled, when it was.
    reason: Option<String>,
    last_sent: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    jobs: Vec<JobRecord>,
    index: HashMap<String, usize>,
    batches: HashMap<String, Vec<usize>>,
    live: HashMap<String, Live>,
    version: u64,
}

impl Inner {
    fn insert(&mut self, record: JobRecord) -> usize {
        let idx = self.jobs.len();
        self.index.insert(record.job_id.clone(), idx);
        self.batches
            .entry(record.batch_id.clone())
            .or_default()
            .push(idx);
        self.jobs.push(record);
        idx
    }

    fn counts(&self, batch_id: &str) -> BatchCounts {
        let mut counts = BatchCounts {
            batch_id: batch_id.to_owned(),
            ..BatchCounts::default()
        };
        for &i in self
            .batches
            .get(batch_id)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            counts.add(self.jobs[i].status);
        }
        counts
    }
}

/// All jobs, their live state and the event broadcast. Shared as `Arc<JobStore>`.
#[derive(Debug)]
pub struct JobStore {
    inner: Mutex<Inner>,
    events: broadcast::Sender<EventText>,
    path: PathBuf,
    save_lock: Mutex<()>,
    changes: watch::Sender<u64>,
}

impl JobStore {
    /// Opens the store of `data_dir` (jobs of earlier runs included; unfinished ones come
    /// back failed, see [`persist::load`]). `capacity` is the broadcast buffer: a client
    /// further behind than that is resynchronised with a snapshot.
    pub fn open(data_dir: &Path, capacity: usize) -> std::io::Result<Self> {
        let path = data_dir.join(STORE_FILE);
        let loaded = persist::load(&path, &now_rfc3339())?;
        let mut inner = Inner::default();
        for record in loaded {
            inner.insert(record);
        }
        let (events, _) = broadcast::channel(capacity.max(16));
        let store = Self {
            inner: Mutex::new(inner),
            events,
            path,
            save_lock: Mutex::new(()),
            changes: watch::channel(0).0,
        };
        store.persist();
        Ok(store)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends an event to every subscriber (none listening is fine).
    fn send(&self, text: EventText) {
        let _ = self.events.send(text);
    }

    fn bump(&self, inner: &mut Inner) {
        inner.version += 1;
        self.changes.send_replace(inner.version);
    }

    /// Broadcasts an event that is not a job change (e.g. `gpu_stats`).
    pub fn broadcast(&self, text: EventText) {
        let _guard = self.lock();
        self.send(text);
    }

    /// A new subscriber plus the state it starts from, taken atomically.
    pub fn subscribe_with_snapshot(&self) -> (broadcast::Receiver<EventText>, Vec<JobView>) {
        let inner = self.lock();
        let rx = self.events.subscribe();
        (rx, inner.jobs.iter().map(JobRecord::view).collect())
    }

    /// Registers a batch's jobs (state `queued`), announces them and saves the store.
    pub fn add(&self, jobs: Vec<NewJob>) {
        {
            let mut inner = self.lock();
            let mut batch_ids = Vec::new();
            for NewJob { record, cancel } in jobs {
                let idx = inner.insert(record);
                let job = &inner.jobs[idx];
                if !batch_ids.contains(&job.batch_id) {
                    batch_ids.push(job.batch_id.clone());
                }
                self.send(events::progress(job));
                let id = job.job_id.clone();
                inner.live.insert(
                    id,
                    Live {
                        cancel,
                        reason: None,
                        last_sent: Instant::now(),
                    },
                );
            }
            for batch_id in batch_ids {
                self.send(events::batch_progress(&inner.counts(&batch_id)));
            }
            self.bump(&mut inner);
        }
        self.persist();
    }

    pub fn get(&self, job_id: &str) -> Option<JobRecord> {
        let inner = self.lock();
        inner.index.get(job_id).map(|&i| inner.jobs[i].clone())
    }

    pub fn list(&self) -> Vec<JobView> {
        self.lock().jobs.iter().map(JobRecord::view).collect()
    }

    /// A batch's counts and its jobs, or `None` for an unknown batch.
    pub fn batch(&self, batch_id: &str) -> Option<(BatchCounts, Vec<JobRecord>)> {
        let inner = self.lock();
        let idx = inner.batches.get(batch_id)?;
        Some((
            inner.counts(batch_id),
            idx.iter().map(|&i| inner.jobs[i].clone()).collect(),
        ))
    }

    /// Jobs waiting and jobs running, over every batch.
    pub fn active_counts(&self) -> (usize, usize) {
        let inner = self.lock();
        let mut counts = (0, 0);
        for id in inner.live.keys() {
            if let Some(&i) = inner.index.get(id) {
                match inner.jobs[i].status {
                    JobState::Queued => counts.0 += 1,
                    JobState::Processing => counts.1 += 1,
                    _ => {}
                }
            }
        }
        counts
    }

    /// Mean slot time of the last completed jobs of a quality, for time estimates.
    pub fn mean_seconds(&self, quality: &str) -> Option<f64> {
        let inner = self.lock();
        let recent: Vec<f64> = inner
            .jobs
            .iter()
            .rev()
            .filter(|j| j.status == JobState::Complete && j.quality == quality)
            .filter_map(|j| j.seconds)
            .take(20)
            .collect();
        (!recent.is_empty()).then(|| recent.iter().sum::<f64>() / recent.len() as f64)
    }

    /// Whether the job's token was cancelled (by request or shutdown).
    pub fn is_cancel_requested(&self, job_id: &str) -> bool {
        self.lock()
            .live
            .get(job_id)
            .is_none_or(|l| l.cancel.is_cancelled())
    }

    /// Applies one core event. Events for a job that already reached a terminal state (e.g.
    /// cancelled while waiting, then popped by a slot) are dropped, and files written by
    /// such a late completion are removed so nothing unlisted stays on disk.
    pub fn apply(&self, event: &ProgressEvent) {
        let mut stale: Vec<PathBuf> = Vec::new();
        let mut finished = false;
        {
            let mut inner = self.lock();
            let job_id = match event {
                ProgressEvent::GenerationProgress { job_id, .. }
                | ProgressEvent::GenerationComplete { job_id, .. }
                | ProgressEvent::GenerationError { job_id, .. }
                | ProgressEvent::GenerationCancelled { job_id, .. } => job_id.0.clone(),
                // Batch counts are derived from the store itself (they include cancellations
                // of waiting jobs that the core has not seen yet).
                _ => return,
            };
            let Some(&idx) = inner.index.get(&job_id) else {
                return;
            };
            if inner.jobs[idx].status.is_terminal() {
                if let ProgressEvent::GenerationComplete { outputs, .. } = event {
                    stale.extend(outputs.iter().map(|o| o.path.clone()));
                }
            } else {
                let now = now_rfc3339();
                let reason = inner.live.get(&job_id).and_then(|l| l.reason.clone());
                let job = &mut inner.jobs[idx];
                match event {
                    // The core's own `queued` event repeats what `add` announced.
                    ProgressEvent::GenerationProgress {
                        progress, stage, ..
                    } if *stage != Stage::Queued => {
                        let started = job.status == JobState::Queued;
                        job.status = JobState::Processing;
                        job.progress = progress.clamp(0.0, 100.0);
                        job.stage = stage.as_str().to_owned();
                        job.started_at.get_or_insert(now);
                        let text = events::progress(job);
                        let batch_id = job.batch_id.clone();
                        self.send(text);
                        if started {
                            self.send(events::batch_progress(&inner.counts(&batch_id)));
                        }
                        if let Some(live) = inner.live.get_mut(&job_id) {
                            live.last_sent = Instant::now();
                        }
                    }
                    ProgressEvent::GenerationComplete {
                        outputs,
                        triangles,
                        depth,
                        method,
                        mask,
                        watertight,
                        warnings,
                        seconds,
                        ..
                    } => {
                        job.status = JobState::Complete;
                        job.progress = 100.0;
                        job.stage = "complete".into();
                        job.outputs = outputs
                            .iter()
                            .filter_map(|o| {
                                let file = o.path.file_name()?.to_str()?.to_owned();
                                Some(OutputRecord {
                                    format: o.format.clone(),
                                    file,
                                    bytes: o.bytes,
                                })
                            })
                            .collect();
                        job.triangles = *triangles;
                        job.depth = Some(depth.clone());
                        job.method = Some(method.clone());
                        job.mask = mask
                            .and_then(|m| serde_json::to_value(m).ok())
                            .and_then(|v| v.as_str().map(str::to_owned));
                        job.watertight = *watertight;
                        job.warnings = warnings.clone();
                        job.seconds = Some(*seconds);
                        job.finished_at = Some(now);
                        finished = true;
                    }
                    ProgressEvent::GenerationError { error, code, .. } => {
                        job.status = JobState::Error;
                        job.stage = "error".into();
                        job.error = Some(error.clone());
                        job.code = Some((*code).to_owned());
                        job.finished_at = Some(now);
                        finished = true;
                    }
                    ProgressEvent::GenerationCancelled { .. } => {
                        set_cancelled(job, reason.unwrap_or_else(|| "cancelled".into()), now);
                        finished = true;
                    }
                    _ => {}
                }
                if finished {
                    self.finish(&mut inner, idx);
                }
            }
            self.bump(&mut inner);
        }
        for path in stale {
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), "cannot remove the output of a cancelled job: {e}");
            }
        }
        if finished {
            self.persist();
        }
    }

    /// Sends a job's terminal event and its batch's counts, and forgets its live state.
    fn finish(&self, inner: &mut Inner, idx: usize) {
        let job = &inner.jobs[idx];
        self.send(events::terminal(job));
        let (job_id, batch_id) = (job.job_id.clone(), job.batch_id.clone());
        self.send(events::batch_progress(&inner.counts(&batch_id)));
        inner.live.remove(&job_id);
    }

    /// Cancels a job. A waiting job is cancelled at once; a running one is asked to stop
    /// (see [`wait_finished`](Self::wait_finished)).
    pub fn cancel(&self, job_id: &str, reason: &str) -> CancelOutcome {
        let outcome = {
            let mut inner = self.lock();
            let Some(&idx) = inner.index.get(job_id) else {
                return CancelOutcome::NotFound;
            };
            let status = inner.jobs[idx].status;
            if status.is_terminal() {
                return CancelOutcome::Finished(status);
            }
            if let Some(live) = inner.live.get_mut(job_id) {
                live.cancel.cancel();
                live.reason = Some(reason.to_owned());
            }
            if status == JobState::Queued {
                set_cancelled(&mut inner.jobs[idx], reason.to_owned(), now_rfc3339());
                self.finish(&mut inner, idx);
                self.bump(&mut inner);
                CancelOutcome::Cancelled
            } else {
                CancelOutcome::Running
            }
        };
        if outcome == CancelOutcome::Cancelled {
            self.persist();
        }
        outcome
    }

    /// Cancels every unfinished job (server shutdown).
    pub fn cancel_all(&self, reason: &str) {
        let ids: Vec<String> = self.lock().live.keys().cloned().collect();
        for id in ids {
            self.cancel(&id, reason);
        }
    }

    /// Waits until the job is in a terminal state, at most `timeout`.
    pub async fn wait_finished(&self, job_id: &str, timeout: Duration) -> Option<JobState> {
        let mut changes = self.changes.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let status = self.get(job_id)?.status;
            if status.is_terminal() {
                return Some(status);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                _ => return None,
            }
        }
    }

    /// Makes sure a job the processor returned is terminal in the store. The sink normally
    /// got its events already; this covers a failure to start the job at all.
    pub fn reconcile(&self, job_id: &str, result: Result<&JobResult, (&'static str, String)>) {
        {
            let mut inner = self.lock();
            let Some(&idx) = inner.index.get(job_id) else {
                return;
            };
            if inner.jobs[idx].status.is_terminal() {
                return;
            }
            let reason = inner.live.get(job_id).and_then(|l| l.reason.clone());
            let now = now_rfc3339();
            let job = &mut inner.jobs[idx];
            match result {
                Ok(r) if r.status == orfeas_core::JobStatus::Cancelled => {
                    set_cancelled(job, reason.unwrap_or_else(|| "cancelled".into()), now);
                }
                Ok(r) if r.status == orfeas_core::JobStatus::Complete => {
                    // Complete without its event: the sink failed. Report what is known.
                    job.status = JobState::Error;
                    job.stage = "error".into();
                    job.error =
                        Some("internal error: the job finished but its result was lost".into());
                    job.code = Some("ERR_INTERNAL".into());
                    job.finished_at = Some(now);
                }
                Ok(r) => {
                    job.status = JobState::Error;
                    job.stage = "error".into();
                    job.error = r.error.clone().or_else(|| Some("failed".into()));
                    job.code = r.code.map(str::to_owned);
                    job.finished_at = Some(now);
                }
                Err((code, message)) => {
                    job.status = JobState::Error;
                    job.stage = "error".into();
                    job.error = Some(message);
                    job.code = Some(code.to_owned());
                    job.finished_at = Some(now);
                }
            }
            self.finish(&mut inner, idx);
            self.bump(&mut inner);
        }
        self.persist();
    }

    /// Re-sends the last progress of every running job whose last event is older than
    /// `older_than`, so clients hear from a job at least that often while a long stage runs.
    pub fn resend_stale_progress(&self, older_than: Duration) {
        let mut inner = self.lock();
        let Inner {
            jobs, index, live, ..
        } = &mut *inner;
        for (id, state) in live.iter_mut() {
            let Some(&idx) = index.get(id) else { continue };
            let job = &jobs[idx];
            if job.status == JobState::Processing && state.last_sent.elapsed() >= older_than {
                self.send(events::progress(job));
                state.last_sent = Instant::now();
            }
        }
    }

    /// Saves the store (atomic write). Failures are logged: the in-memory state stays right
    /// and the next save retries.
    pub fn persist(&self) {
        let _guard = self.save_lock.lock().unwrap_or_else(|p| p.into_inner());
        let jobs = self.lock().jobs.clone();
        if let Err(e) = persist::save(&self.path, &jobs) {
            tracing::error!(path = %self.path.display(), "cannot save the job store: {e}");
        }
    }
}

fn set_cancelled(job: &mut JobRecord, reason: String, now: String) {
    job.status = JobState::Cancelled;
    job.stage = "cancelled".into();
    job.error = Some(reason);
    job.code = Some("ERR_CANCELLED".into());
    job.outputs.clear();
    job.finished_at = Some(now);
}
