//! [`JobStore`]: the single owner of job state.
//!
//! Every change goes through one mutex, and the matching WebSocket event is sent while that
//! mutex is held, so the order of events on the wire is exactly the order of the changes
//! (a periodic progress re-send can never overtake a job's terminal event) and a snapshot
//! taken together with a new subscription misses nothing and repeats nothing. Changes of
//! state are handed to the persistence thread ([`Writer`]) under the same lock, so the
//! journal holds them in the same order; nothing here waits for a disk.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use orfeas_core::{CancelToken, JobResult, ProgressEvent, Stage};
use tokio::sync::{broadcast, watch};

use super::journal::{self, Journal, JOURNAL_FILE};
use super::persist::{self, LEGACY_FILE};
use super::record::{BatchCounts, CompletionReport, JobRecord, JobState, JobView, OutputRecord};
use super::writer::Writer;
use crate::clock::now_rfc3339;
use crate::events::{self, EventText};

/// How the store is opened.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// The broadcast buffer: a client further behind than that is resynchronised with a
    /// snapshot.
    pub event_buffer: usize,
    /// Finished jobs in a WebSocket snapshot besides every unfinished one (the newest).
    pub snapshot_finished: usize,
    /// Changes arriving within this window are written together.
    pub debounce: Duration,
    /// fsync every journal write (always on in the server; off only to benchmark the rest).
    pub durable: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            event_buffer: 1024,
            snapshot_finished: 500,
            debounce: Duration::from_millis(25),
            durable: true,
        }
    }
}

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
pub(super) struct Live {
    pub(super) cancel: CancelToken,
    /// Why it was cancelled, when it was.
    pub(super) reason: Option<String>,
    /// Stopped by a shutdown that could not wait for it: it goes back to `queued` for the
    /// next start instead of ending cancelled.
    pub(super) interrupted: bool,
    pub(super) last_sent: Instant,
}

impl Live {
    pub(super) fn new(cancel: CancelToken) -> Self {
        Self {
            cancel,
            reason: None,
            interrupted: false,
            last_sent: Instant::now(),
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct Inner {
    pub(super) jobs: Vec<JobRecord>,
    pub(super) index: HashMap<String, usize>,
    pub(super) batches: HashMap<String, Vec<usize>>,
    pub(super) live: HashMap<String, Live>,
    pub(super) version: u64,
    /// Sum of [`JobRecord::data_bytes`] over every job.
    pub(super) data_bytes: u64,
}

impl Inner {
    pub(super) fn insert(&mut self, record: JobRecord) -> usize {
        let idx = self.jobs.len();
        self.data_bytes += record.data_bytes();
        self.index.insert(record.job_id.clone(), idx);
        self.batches
            .entry(record.batch_id.clone())
            .or_default()
            .push(idx);
        self.jobs.push(record);
        idx
    }

    /// Rebuilds the indexes after jobs were removed from `jobs`.
    pub(super) fn reindex(&mut self) {
        self.index.clear();
        self.batches.clear();
        self.data_bytes = 0;
        for (idx, job) in self.jobs.iter().enumerate() {
            self.index.insert(job.job_id.clone(), idx);
            self.batches
                .entry(job.batch_id.clone())
                .or_default()
                .push(idx);
            self.data_bytes += job.data_bytes();
        }
    }

    pub(super) fn counts(&self, batch_id: &str) -> BatchCounts {
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
    pub(super) inner: Mutex<Inner>,
    events: broadcast::Sender<EventText>,
    pub(super) writer: Writer,
    changes: watch::Sender<u64>,
    snapshot_finished: usize,
    pub(super) data_dir: PathBuf,
}

impl JobStore {
    /// Opens the store of `data_dir`: the journal (or the `jobs.json` of an older version,
    /// migrated), rewritten compacted, and the persistence thread started. Unfinished jobs
    /// stay as they were saved until [`recover`](Self::recover) decides their fate.
    pub fn open(data_dir: &Path, options: &StoreOptions) -> std::io::Result<Self> {
        let journal_path = data_dir.join(JOURNAL_FILE);
        let legacy_path = data_dir.join(LEGACY_FILE);
        let mut migrated = false;
        let mut records = if journal_path.exists() {
            let loaded = journal::load(&journal_path)?;
            if loaded.skipped > 0 {
                tracing::warn!(
                    skipped = loaded.skipped,
                    "some job journal lines could not be used"
                );
            }
            loaded.records
        } else if let Some(old) = persist::load_legacy(&legacy_path)? {
            migrated = true;
            old
        } else {
            Vec::new()
        };
        for record in &mut records {
            if record.input_bytes == 0 {
                record.input_bytes =
                    dir_bytes(&data_dir.join("jobs").join(&record.job_id).join("input"));
            }
        }
        let journal = Journal::create(&journal_path, &records, options.durable)?;
        if migrated {
            let done = data_dir.join(format!("{LEGACY_FILE}.migrated"));
            std::fs::rename(&legacy_path, &done)?;
            tracing::info!(
                jobs = records.len(),
                "job store migrated from jobs.json to jobs.journal"
            );
        }
        let mut inner = Inner::default();
        for record in records {
            inner.insert(record);
        }
        let (events, _) = broadcast::channel(options.event_buffer.max(16));
        Ok(Self {
            inner: Mutex::new(inner),
            events,
            writer: Writer::start(journal, options.debounce)?,
            changes: watch::channel(0).0,
            snapshot_finished: options.snapshot_finished,
            data_dir: data_dir.to_owned(),
        })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends an event to every subscriber (none listening is fine).
    pub(super) fn send(&self, text: EventText) {
        let _ = self.events.send(text);
    }

    pub(super) fn bump(&self, inner: &mut Inner) {
        inner.version += 1;
        self.changes.send_replace(inner.version);
    }

    /// Broadcasts an event that is not a job change (e.g. `gpu_stats`).
    pub fn broadcast(&self, text: EventText) {
        let _guard = self.lock();
        self.send(text);
    }

    /// A new subscriber plus the state it starts from, taken atomically: every unfinished
    /// job and the newest finished ones (at most `snapshot_finished`), oldest first.
    pub fn subscribe_with_snapshot(&self) -> (broadcast::Receiver<EventText>, Vec<JobView>) {
        let inner = self.lock();
        let rx = self.events.subscribe();
        let mut finished = 0;
        let mut jobs: Vec<JobView> = inner
            .jobs
            .iter()
            .rev()
            .filter(|j| {
                if j.status.is_terminal() {
                    finished += 1;
                    finished <= self.snapshot_finished
                } else {
                    true
                }
            })
            .map(JobRecord::view)
            .collect();
        jobs.reverse();
        (rx, jobs)
    }

    /// Registers a batch's jobs (state `queued`), announces them and queues them for the
    /// journal ([`flush`](Self::flush) waits until they are on disk).
    pub fn add(&self, jobs: Vec<NewJob>) {
        let mut inner = self.lock();
        let mut batch_ids = Vec::new();
        for NewJob { record, cancel } in jobs {
            self.writer.put(&record);
            let idx = inner.insert(record);
            let job = &inner.jobs[idx];
            if !batch_ids.contains(&job.batch_id) {
                batch_ids.push(job.batch_id.clone());
            }
            self.send(events::progress(job));
            let id = job.job_id.clone();
            inner.live.insert(id, Live::new(cancel));
        }
        for batch_id in batch_ids {
            self.send(events::batch_progress(&inner.counts(&batch_id)));
        }
        self.bump(&mut inner);
    }

    /// Resolves once every change made so far is in the journal.
    pub async fn flush(&self) -> Result<(), String> {
        self.writer.flush().await
    }

    /// Writes every change made so far (shutdown; threads outside the runtime).
    pub fn persist(&self) {
        if let Err(e) = self.writer.flush_blocking() {
            tracing::error!("cannot save the job store: {e}");
        }
    }

    pub fn get(&self, job_id: &str) -> Option<JobRecord> {
        let inner = self.lock();
        inner.index.get(job_id).map(|&i| inner.jobs[i].clone())
    }

    /// One page of the job list, newest first, and the number of jobs in all.
    pub fn page(&self, offset: usize, limit: usize) -> (usize, Vec<JobView>) {
        let inner = self.lock();
        let page = inner
            .jobs
            .iter()
            .rev()
            .skip(offset)
            .take(limit)
            .map(JobRecord::view)
            .collect();
        (inner.jobs.len(), page)
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

    /// Bytes of uploads and outputs the store's jobs keep on disk.
    pub fn data_bytes(&self) -> u64 {
        self.lock().data_bytes
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

    /// The cancel token of an unfinished job.
    pub fn token(&self, job_id: &str) -> Option<CancelToken> {
        self.lock().live.get(job_id).map(|l| l.cancel.clone())
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
            // The core's commit point already removes the files of a job whose token was
            // cancelled before it completed; this is the last guard for a record that became
            // terminal any other way: files that no record lists do not stay on disk.
            if let ProgressEvent::GenerationComplete { outputs, .. } = event {
                drop(inner);
                for output in outputs {
                    if let Err(e) = std::fs::remove_file(&output.path) {
                        tracing::warn!(path = %output.path.display(), "cannot remove the output of a cancelled job: {e}");
                    }
                }
            }
            return;
        }
        let now = now_rfc3339();
        let (reason, interrupted) = inner
            .live
            .get(&job_id)
            .map_or((None, false), |l| (l.reason.clone(), l.interrupted));
        let mut finished = false;
        let job = &mut inner.jobs[idx];
        let bytes_before = job.data_bytes();
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
                if started {
                    job.attempts += 1;
                    self.writer.put(job);
                }
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
                let outputs = outputs
                    .iter()
                    .filter_map(|o| {
                        let file = o.path.file_name()?.to_str()?.to_owned();
                        Some(OutputRecord {
                            format: o.format.clone(),
                            file,
                            bytes: o.bytes,
                            key: None,
                        })
                    })
                    .collect();
                let report = CompletionReport {
                    triangles: *triangles,
                    depth: Some(depth.clone()),
                    method: Some(method.clone()),
                    mask: mask
                        .and_then(|m| serde_json::to_value(m).ok())
                        .and_then(|v| v.as_str().map(str::to_owned)),
                    watertight: *watertight,
                    warnings: warnings.clone(),
                    seconds: Some(*seconds),
                };
                job.complete(outputs, report, now);
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
            ProgressEvent::GenerationCancelled { .. } if interrupted => {
                requeue_interrupted(job);
                self.writer.put(job);
                self.send(events::progress(job));
            }
            ProgressEvent::GenerationCancelled { .. } => {
                set_cancelled(job, reason.unwrap_or_else(|| "cancelled".into()), now);
                finished = true;
            }
            _ => {}
        }
        let bytes_after = inner.jobs[idx].data_bytes();
        inner.data_bytes = inner.data_bytes - bytes_before + bytes_after;
        if finished {
            self.finish(&mut inner, idx);
        }
        self.bump(&mut inner);
    }

    /// Journals a job's terminal state, sends its event and its batch's counts, and forgets
    /// its live state.
    pub(super) fn finish(&self, inner: &mut Inner, idx: usize) {
        let job = &inner.jobs[idx];
        self.writer.put(job);
        self.send(events::terminal(job));
        let (job_id, batch_id) = (job.job_id.clone(), job.batch_id.clone());
        self.send(events::batch_progress(&inner.counts(&batch_id)));
        inner.live.remove(&job_id);
    }

    /// Cancels a job. A waiting job is cancelled at once; a running one is asked to stop
    /// (see [`wait_finished`](Self::wait_finished)).
    pub fn cancel(&self, job_id: &str, reason: &str) -> CancelOutcome {
        let mut inner = self.lock();
        let Some(&idx) = inner.index.get(job_id) else {
            return CancelOutcome::NotFound;
        };
        let status = inner.jobs[idx].status;
        if status.is_terminal() {
            return CancelOutcome::Finished(status);
        }
        let outcome = self.cancel_one(&mut inner, idx, reason, true);
        self.bump(&mut inner);
        outcome
    }

    /// Cancels `idx` (unfinished); `announce_batch` sends the batch's counts after a waiting
    /// job is cancelled (a whole-batch cancel sends them once at the end instead).
    fn cancel_one(
        &self,
        inner: &mut Inner,
        idx: usize,
        reason: &str,
        announce_batch: bool,
    ) -> CancelOutcome {
        let job_id = inner.jobs[idx].job_id.clone();
        if let Some(live) = inner.live.get_mut(&job_id) {
            live.cancel.cancel();
            live.reason = Some(reason.to_owned());
        }
        if inner.jobs[idx].status != JobState::Queued {
            return CancelOutcome::Running;
        }
        set_cancelled(&mut inner.jobs[idx], reason.to_owned(), now_rfc3339());
        let job = &inner.jobs[idx];
        self.writer.put(job);
        self.send(events::terminal(job));
        if announce_batch {
            let batch_id = job.batch_id.clone();
            self.send(events::batch_progress(&inner.counts(&batch_id)));
        }
        inner.live.remove(&job_id);
        CancelOutcome::Cancelled
    }

    /// Cancels every unfinished job of a batch under one lock: waiting ones at once,
    /// running ones asked to stop. Returns the ids it cancelled, `None` for an unknown batch.
    pub fn cancel_batch(&self, batch_id: &str, reason: &str) -> Option<Vec<String>> {
        let mut inner = self.lock();
        let idx: Vec<usize> = inner.batches.get(batch_id)?.clone();
        let mut cancelled = Vec::new();
        for i in idx {
            if !inner.jobs[i].status.is_terminal() {
                self.cancel_one(&mut inner, i, reason, false);
                cancelled.push(inner.jobs[i].job_id.clone());
            }
        }
        if !cancelled.is_empty() {
            self.send(events::batch_progress(&inner.counts(batch_id)));
            self.bump(&mut inner);
        }
        Some(cancelled)
    }

    /// Shutdown that cannot wait any longer: stops every unfinished job without ending it
    /// (a job a slot has taken but not yet announced included); each goes back to `queued`
    /// when its core stops and is handled by `--on-restart` at the next start. Returns how
    /// many were running.
    pub fn interrupt_running(&self) -> usize {
        let mut inner = self.lock();
        let Inner {
            jobs, index, live, ..
        } = &mut *inner;
        let mut running = 0;
        for (id, state) in live.iter_mut() {
            state.interrupted = true;
            state.cancel.cancel();
            running += usize::from(
                index
                    .get(id)
                    .is_some_and(|&i| jobs[i].status == JobState::Processing),
            );
        }
        running
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

    /// Makes sure a job the processor returned is settled in the store. The sink normally
    /// got its events already; this covers a failure to start the job at all.
    pub fn reconcile(&self, job_id: &str, result: Result<&JobResult, (&'static str, String)>) {
        let mut inner = self.lock();
        let Some(&idx) = inner.index.get(job_id) else {
            return;
        };
        if inner.jobs[idx].status.is_terminal() {
            return;
        }
        let live = inner.live.get(job_id);
        let reason = live.and_then(|l| l.reason.clone());
        if live.is_some_and(|l| l.interrupted) {
            let job = &mut inner.jobs[idx];
            if job.status != JobState::Queued {
                requeue_interrupted(job);
                self.writer.put(job);
                self.send(events::progress(job));
            }
            inner.live.remove(job_id);
            self.bump(&mut inner);
            return;
        }
        let now = now_rfc3339();
        let job = &mut inner.jobs[idx];
        match result {
            Ok(r) if r.status == orfeas_core::JobStatus::Cancelled => {
                set_cancelled(job, reason.unwrap_or_else(|| "cancelled".into()), now);
            }
            Ok(r) if r.status == orfeas_core::JobStatus::Complete => {
                // Complete without its event: the sink failed. Report what is known.
                set_error(
                    job,
                    "ERR_INTERNAL",
                    "internal error: the job finished but its result was lost".into(),
                    now,
                );
            }
            Ok(r) => {
                let error = r.error.clone().unwrap_or_else(|| "failed".into());
                set_error(job, r.code.unwrap_or("ERR_INTERNAL"), error, now);
            }
            Err((code, message)) => set_error(job, code, message, now),
        }
        self.finish(&mut inner, idx);
        self.bump(&mut inner);
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

    /// Writes what is queued and stops the persistence thread (last step of shutdown).
    pub fn close(&self) {
        self.writer.close();
    }
}

pub(super) fn set_cancelled(job: &mut JobRecord, reason: String, now: String) {
    job.status = JobState::Cancelled;
    job.stage = "cancelled".into();
    job.error = Some(reason);
    job.code = Some("ERR_CANCELLED".into());
    job.outputs.clear();
    job.finished_at = Some(now);
}

pub(super) fn set_error(job: &mut JobRecord, code: &str, error: String, now: String) {
    job.status = JobState::Error;
    job.stage = "error".into();
    job.error = Some(error);
    job.code = Some(code.to_owned());
    job.finished_at = Some(now);
}

/// A job that will run again from the start: nothing of the stopped attempt is kept.
pub(super) fn back_to_queue(job: &mut JobRecord) {
    job.status = JobState::Queued;
    job.stage = "queued".into();
    job.progress = 0.0;
    job.outputs.clear();
    job.started_at = None;
}

/// A job a shutdown stopped: back to the queue, and the stopped start does not count
/// against its attempts (only crashes do).
fn requeue_interrupted(job: &mut JobRecord) {
    if job.status == JobState::Processing {
        job.attempts = job.attempts.saturating_sub(1);
    }
    back_to_queue(job);
}

/// Total size of the files directly in `dir` (a job's input folder).
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
