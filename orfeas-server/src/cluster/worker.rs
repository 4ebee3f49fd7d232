//! `orfeas worker`: pulls jobs into the existing `BatchProcessor` (its slots, its models
//! loaded once), publishes their progress, writes their results to the files bucket and
//! acknowledges last.
//!
//! At least once made exactly once in effect:
//! - a job is taken by moving its state `queued`/`running` → `running {worker, attempt}` by
//!   compare-and-swap; a delivery that finds a final state is acknowledged and skipped;
//! - results go under `results/<job>/<attempt>/`, and the attempt whose `running` → `complete`
//!   swap wins is the job's one set of files: a loser (a worker paused past its lease that
//!   wakes up) removes what it wrote, and its late acknowledgement is harmless;
//! - the lease is extended only by the job's own progress events, so a hung job stops
//!   extending it and is handed to another worker; after the last allowed attempt one more
//!   delivery records the failure with the last error and terminates the message;
//! - a drain (SIGTERM, Ctrl-C) stops pulling, lets running jobs finish for the drain timeout,
//!   then stops them and hands them back (`nak`): nothing is dropped.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind};
use futures_util::StreamExt;
use orfeas_core::{
    BatchProcessor, CancelToken, ImageSource, Job, JobResult, JobStatus, ProgressEvent,
    ProgressSink,
};
use serde_json::json;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use super::message::{JobMessage, SlotCounts, WorkerEvent, WorkerPresence};
use super::state::{cancel_key, input_key, result_key, JobState, StoredOutput};
use super::{Broker, ClusterError, EVENTS_PREFIX, WORKERS_PREFIX};

/// Who this worker is and how it stops.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// Unique among live workers (default: host and process id).
    pub id: String,
    pub host: String,
    /// Where inputs and outputs live while a job runs (one folder per attempt, removed after).
    pub work_dir: PathBuf,
    /// How long running jobs may take to finish once a drain starts.
    pub drain_timeout: Duration,
    /// How often the worker says it is alive.
    pub presence_every: Duration,
}

impl WorkerSettings {
    /// Settings for a worker on this machine: `<host>-<pid>`, work in the system's temp dir.
    pub fn on_this_host() -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_owned());
        let id = format!("{host}-{}", std::process::id());
        Self {
            work_dir: std::env::temp_dir().join(format!("orfeas-worker-{id}")),
            id,
            host,
            drain_timeout: Duration::from_secs(30),
            presence_every: Duration::from_secs(2),
        }
    }
}

impl WorkerSettings {
    /// The folder of one attempt of one job (its input and outputs while it runs).
    fn attempt_dir(&self, job: &JobMessage, attempt: u64) -> PathBuf {
        self.work_dir.join(format!("{}-{attempt}", job.job_id))
    }
}

/// How long one pull request waits for a job.
const PULL_EXPIRES: Duration = Duration::from_secs(10);

/// Reads of a job's state before a delivery that keeps losing the swap is handed back.
const TAKE_TRIES: usize = 3;

/// Running jobs by id, to stop them on a cancel request or at the end of a drain.
type Running = Arc<Mutex<HashMap<String, CancelToken>>>;

/// Pulls and runs jobs until `shutdown` resolves, then drains. Returns when every job this
/// worker held is finished or handed back.
pub async fn run_worker(
    broker: Broker,
    processor: Arc<BatchProcessor>,
    settings: WorkerSettings,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ClusterError> {
    tokio::fs::create_dir_all(&settings.work_dir).await?;
    let slots = Arc::new(Semaphore::new(processor.slots()));
    let running: Running = Arc::default();
    let presence = tokio::spawn(announce(
        broker.clone(),
        settings.clone(),
        Capabilities::of(&processor),
        processor.slots(),
        Arc::clone(&running),
    ));
    let watcher = tokio::spawn(watch_cancels(broker.clone(), Arc::clone(&running)));
    let mut jobs = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        // One message per free slot, fetched only when the slot is free: a message waiting
        // in a local buffer would spend its lease doing nothing. A long-lived pull request
        // makes rare the race where a delivery meets a request that has just expired (that
        // delivery is lost here and comes back after its lease).
        let fetched = broker
            .consumer
            .fetch()
            .max_messages(1)
            .expires(PULL_EXPIRES)
            .messages()
            .await;
        let message = match fetched {
            // A broker that restarts forgets pull requests without answering them: the wait
            // is bounded here too, or this slot would wait for ever.
            Ok(mut batch) => tokio::select! {
                biased;
                () = &mut shutdown => break,
                next = tokio::time::timeout(PULL_EXPIRES + Duration::from_secs(5), batch.next()) => {
                    next.ok().flatten()
                }
            },
            Err(e) => {
                tracing::warn!("cannot pull from the queue ({e}); retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        match message {
            Some(Ok(message)) => {
                let (broker, processor, settings, running) = (
                    broker.clone(),
                    Arc::clone(&processor),
                    settings.clone(),
                    Arc::clone(&running),
                );
                jobs.spawn(async move {
                    handle(&broker, &processor, &settings, &running, message).await;
                    drop(permit);
                });
            }
            Some(Err(e)) => tracing::debug!("pull: {e}"),
            None => {}
        }
        while jobs.try_join_next().is_some() {}
    }
    tracing::info!(
        worker = %settings.id,
        running = jobs.len(),
        "draining: no new jobs; running ones may finish for {:?}",
        settings.drain_timeout
    );
    let drained = tokio::time::timeout(settings.drain_timeout, async {
        while jobs.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        let stopping: Vec<CancelToken> = lock(&running).values().cloned().collect();
        tracing::warn!(
            "drain timeout: stopping {} running job(s) and handing them back",
            stopping.len()
        );
        for token in stopping {
            token.cancel();
        }
        while jobs.join_next().await.is_some() {}
    }
    presence.abort();
    watcher.abort();
    let capabilities = Capabilities::of(&processor);
    publish_presence(
        &broker,
        &settings,
        &capabilities,
        processor.slots(),
        0,
        false,
    )
    .await;
    let _ = tokio::fs::remove_dir_all(&settings.work_dir).await;
    Ok(())
}

/// One delivery of one job, from its message to its acknowledgement. After a broker failure
/// the message is handed back: it comes back in two seconds, or when its lease ends if the
/// broker did not hear that either.
async fn handle(
    broker: &Broker,
    processor: &Arc<BatchProcessor>,
    settings: &WorkerSettings,
    running: &Running,
    message: jetstream::Message,
) {
    let attempt = message
        .info()
        .map(|i| u64::try_from(i.delivered).unwrap_or(1))
        .unwrap_or(1);
    let job = match JobMessage::parse(&message.payload) {
        Ok(job) => job,
        Err(e) => {
            tracing::warn!("terminating a foreign message on the jobs subject: {e}");
            ack(&message, AckKind::Term).await;
            return;
        }
    };
    if let Err(e) = attempt_job(
        broker, processor, settings, running, &message, &job, attempt,
    )
    .await
    {
        tracing::warn!(job_id = %job.job_id, attempt, "queue error ({e}); the job will be delivered again");
        // Sooner than at the end of the lease, if the broker hears it.
        ack(&message, AckKind::Nak(Some(Duration::from_secs(2)))).await;
    }
}

async fn attempt_job(
    broker: &Broker,
    processor: &Arc<BatchProcessor>,
    settings: &WorkerSettings,
    running: &Running,
    message: &jetstream::Message,
    job: &JobMessage,
    attempt: u64,
) -> Result<(), ClusterError> {
    // The job's input is in the store its front end named; its results go there too.
    let broker = &broker.with_store(&job.store).await?;
    let Some((attempt, revision)) = take(broker, settings, message, job, attempt).await? else {
        return Ok(());
    };
    let cancel = CancelToken::new();
    lock(running).insert(job.job_id.clone(), cancel.clone());
    // A cancel asked for before the watcher could see this job (between the front end's
    // request and this swap) stops it here instead of being missed.
    if broker.cancel_requested(&job.job_id).await.unwrap_or(false) {
        cancel.cancel();
    }
    let outcome = run_attempt(broker, processor, settings, message, job, attempt, &cancel).await;
    let dir = settings.attempt_dir(job, attempt);
    let finished = finish(broker, settings, message, job, attempt, revision, outcome).await;
    // Busy until its results are stored and its state settled: the slot is held till then.
    lock(running).remove(&job.job_id);
    let _ = tokio::fs::remove_dir_all(&dir).await;
    finished
}

/// Moves the job's state to `running` on this worker, returning the attempt's number and the
/// state's revision; `None` when there is nothing to run (the message was acknowledged or
/// handed back). A swap that loses to a change made just now (the front end noting the
/// message's sequence right after publishing, most often) reads the state again rather than
/// handing the message back, which would let the next job overtake this one.
async fn take(
    broker: &Broker,
    settings: &WorkerSettings,
    message: &jetstream::Message,
    job: &JobMessage,
    delivered: u64,
) -> Result<Option<(u64, u64)>, ClusterError> {
    for _ in 0..TAKE_TRIES {
        let Some((state, revision)) = broker.job_state(&job.job_id).await? else {
            tracing::warn!(job_id = %job.job_id, "terminating a job the queue has no state for");
            ack(message, AckKind::Term).await;
            return Ok(None);
        };
        if state.is_final() {
            // A duplicate delivery of a finished job (its ack was lost, or it was cancelled).
            ack(message, AckKind::Ack).await;
            return Ok(None);
        }
        // A broker killed without syncing can come back having forgotten deliveries and count
        // from 1 again; the state bucket remembers the attempts made, so an attempt's number only
        // grows, and its folder and result keys are its own.
        let (attempt, last_error) = match &state {
            JobState::Running {
                worker,
                attempt: previous,
                ..
            } => (
                delivered.max(previous + 1),
                Some(format!(
                    "attempt {previous} (worker {worker}) stopped without finishing: \
                     the worker died, hung or was stopped"
                )),
            ),
            _ => (delivered, None),
        };
        if attempt > broker.max_attempts {
            let failed = JobState::Failed {
                batch_id: job.batch_id.clone(),
                filename: job.filename.clone(),
                code: "ERR_ATTEMPTS".into(),
                error: format!(
                    "gave up after {} attempts; the last: {}",
                    broker.max_attempts,
                    last_error.as_deref().unwrap_or("unknown")
                ),
                attempts: broker.max_attempts,
            };
            if broker
                .swap_state(&job.job_id, revision, &failed)
                .await?
                .is_some()
            {
                publish_final(broker, settings, job, attempt, &failed).await;
                broker.files().remove(&input_key(&job.job_id)).await;
            }
            ack(message, AckKind::Term).await;
            return Ok(None);
        }
        let taken = JobState::Running {
            batch_id: job.batch_id.clone(),
            filename: job.filename.clone(),
            worker: settings.id.clone(),
            attempt,
            last_error,
        };
        if let Some(revision) = broker.swap_state(&job.job_id, revision, &taken).await? {
            return Ok(Some((attempt, revision)));
        }
    }
    // Still changing under us: let the next delivery look again.
    ack(message, AckKind::Nak(Some(Duration::from_millis(200)))).await;
    Ok(None)
}

/// What one attempt ended with.
enum Outcome {
    Done(JobResult),
    /// The job could not start here (input missing, settings unreadable): its final error.
    Refused {
        code: String,
        error: String,
    },
}

async fn run_attempt(
    broker: &Broker,
    processor: &Arc<BatchProcessor>,
    settings: &WorkerSettings,
    message: &jetstream::Message,
    job: &JobMessage,
    attempt: u64,
    cancel: &CancelToken,
) -> Result<Outcome, ClusterError> {
    let job_settings = match job.settings.settings() {
        Ok(s) => s,
        Err(e) => {
            return Ok(Outcome::Refused {
                code: e.code().to_owned(),
                error: e.to_string(),
            })
        }
    };
    let dir = settings.attempt_dir(job, attempt);
    let input_dir = dir.join("input");
    tokio::fs::create_dir_all(&input_dir).await?;
    let input = input_dir.join(safe_file_name(&job.filename));
    broker.files().get_file(&job.input_key, &input).await?;

    let (events, mut events_rx) = mpsc::unbounded_channel::<ProgressEvent>();
    let sink = Arc::new(ChannelSink(events));
    let core_job = Job {
        id: job.job_id.clone().into(),
        input: ImageSource::Path(input),
        out_dir: dir.join("out"),
        stem: Some(job.stem.clone()),
        cancel: Some(cancel.clone()),
    };
    let (processor, batch_id) = (Arc::clone(processor), job.batch_id.clone());
    let run = tokio::task::spawn_blocking(move || {
        processor.run_batch(
            &batch_id,
            vec![core_job],
            &job_settings,
            sink,
            &CancelToken::new(),
        )
    });
    // Progress events go out as they come and extend the lease, at most a few times per
    // lease; a job that stops making progress stops extending it.
    let heartbeat_every = broker.lease / 4;
    let mut last_heartbeat = Instant::now();
    let forward = async {
        while let Some(event) = events_rx.recv().await {
            if !matches!(event, ProgressEvent::GenerationProgress { .. }) {
                continue; // terminal events are published after the result is committed
            }
            publish_event(broker, settings, job, attempt, &event_json(&event, job)).await;
            if last_heartbeat.elapsed() >= heartbeat_every {
                last_heartbeat = Instant::now();
                ack(message, AckKind::Progress).await;
            }
        }
    };
    let (result, ()) = tokio::join!(run, forward);
    let results = match result {
        Ok(Ok(results)) => results,
        Ok(Err(e)) => {
            return Ok(Outcome::Refused {
                code: e.code().to_owned(),
                error: redact(&e.to_string(), settings, job, attempt),
            })
        }
        Err(join) => {
            return Ok(Outcome::Refused {
                code: "ERR_INTERNAL".into(),
                error: format!("internal error: the job task failed: {join}"),
            })
        }
    };
    match results.into_iter().next() {
        Some(result) => Ok(Outcome::Done(result)),
        None => Ok(Outcome::Refused {
            code: "ERR_INTERNAL".into(),
            error: "internal error: the job gave no result".into(),
        }),
    }
}

/// Commits the attempt's outcome: uploads results, swaps the state, publishes the final event
/// and acknowledges, in that order.
async fn finish(
    broker: &Broker,
    settings: &WorkerSettings,
    message: &jetstream::Message,
    job: &JobMessage,
    attempt: u64,
    revision: u64,
    outcome: Result<Outcome, ClusterError>,
) -> Result<(), ClusterError> {
    let (batch_id, filename) = (job.batch_id.clone(), job.filename.clone());
    let mut uploaded = Vec::new();
    let next = match outcome? {
        Outcome::Refused { code, error } => JobState::Failed {
            batch_id,
            filename,
            code,
            error,
            attempts: attempt,
        },
        Outcome::Done(result) => match result.status {
            JobStatus::Complete => {
                for file in &result.outputs {
                    let name = file
                        .path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let key = result_key(&job.job_id, attempt, &name);
                    let bytes = match broker.files().put_file(&key, &file.path).await {
                        Ok(bytes) => bytes,
                        Err(e) => {
                            remove_all(broker, &uploaded).await;
                            return Err(e);
                        }
                    };
                    uploaded.push(StoredOutput {
                        format: file.format.clone(),
                        name,
                        key,
                        bytes,
                    });
                }
                let mut report = serde_json::to_value(&result).unwrap_or_default();
                if let Some(fields) = report.as_object_mut() {
                    fields.remove("outputs");
                    fields.remove("input");
                }
                JobState::Complete {
                    batch_id,
                    filename,
                    worker: settings.id.clone(),
                    attempt,
                    outputs: uploaded.clone(),
                    report,
                }
            }
            JobStatus::Error => JobState::Failed {
                batch_id,
                filename,
                code: result.code.unwrap_or("ERR_INTERNAL").to_owned(),
                error: redact(&result.error.unwrap_or_default(), settings, job, attempt),
                attempts: attempt,
            },
            JobStatus::Cancelled => {
                if broker.cancel_requested(&job.job_id).await? {
                    JobState::Cancelled { batch_id, filename }
                } else {
                    // Stopped by this worker's drain: hand the job back for another worker.
                    ack(message, AckKind::Nak(None)).await;
                    return Ok(());
                }
            }
        },
    };
    match broker.swap_state(&job.job_id, revision, &next).await {
        Ok(Some(_)) => {
            publish_final(broker, settings, job, attempt, &next).await;
            broker.files().remove(&input_key(&job.job_id)).await;
            if attempt > 1 {
                remove_earlier_attempts(broker, &job.job_id, &uploaded).await;
            }
            ack(message, AckKind::Ack).await;
            Ok(())
        }
        Ok(None) => {
            // Another attempt took the job while this one ran (this worker was presumed dead):
            // its result stands, this one's files go.
            tracing::info!(job_id = %job.job_id, attempt, "superseded by another attempt; discarding");
            remove_all(broker, &uploaded).await;
            ack(message, AckKind::Ack).await;
            Ok(())
        }
        Err(e) => {
            remove_all(broker, &uploaded).await;
            Err(e)
        }
    }
}

/// Removes what earlier attempts of a job left in the store: one killed while uploading never
/// removed its files. Only the winner does this, once its result is the job's; a loser still
/// running removes its own files when it loses the swap.
async fn remove_earlier_attempts(broker: &Broker, job_id: &str, kept: &[StoredOutput]) {
    let prefix = format!("results/{job_id}/");
    let is_leftover = |key: &str| !kept.iter().any(|o| o.key == key);
    match broker.files().keys_where(&prefix, is_leftover).await {
        Ok(leftovers) => {
            for key in leftovers {
                tracing::info!(job_id, key, "removing a file an earlier attempt left");
                broker.files().remove(&key).await;
            }
        }
        Err(e) => tracing::debug!(job_id, "cannot look for earlier attempts' files: {e}"),
    }
}

async fn remove_all(broker: &Broker, outputs: &[StoredOutput]) {
    for output in outputs {
        broker.files().remove(&output.key).await;
    }
}

/// The final event of a state, shaped as the core's (`generation_complete` with the store's
/// outputs, `generation_error`, `generation_cancelled`).
async fn publish_final(
    broker: &Broker,
    settings: &WorkerSettings,
    job: &JobMessage,
    attempt: u64,
    state: &JobState,
) {
    let event = match state {
        JobState::Complete {
            outputs, report, ..
        } => {
            let mut data = json!({
                "job_id": job.job_id,
                "batch_id": job.batch_id,
                "input": job.filename,
                "success": true,
                "outputs": outputs,
            });
            if let (Some(data), Some(report)) = (data.as_object_mut(), report.as_object()) {
                for (k, v) in report {
                    data.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            json!({"event": "generation_complete", "data": data})
        }
        JobState::Failed { code, error, .. } => json!({
            "event": "generation_error",
            "data": {"job_id": job.job_id, "batch_id": job.batch_id, "input": job.filename,
                     "success": false, "error": error, "code": code},
        }),
        JobState::Cancelled { .. } => json!({
            "event": "generation_cancelled",
            "data": {"job_id": job.job_id, "batch_id": job.batch_id, "input": job.filename},
        }),
        JobState::Queued { .. } | JobState::Running { .. } => return,
    };
    publish_event(broker, settings, job, attempt, &event).await;
}

async fn publish_event(
    broker: &Broker,
    settings: &WorkerSettings,
    job: &JobMessage,
    attempt: u64,
    event: &serde_json::Value,
) {
    let event = WorkerEvent {
        worker: settings.id.clone(),
        attempt,
        event: event.clone(),
    };
    let Ok(payload) = serde_json::to_vec(&event) else {
        return;
    };
    if let Err(e) = broker
        .client
        .publish(format!("{EVENTS_PREFIX}.{}", job.job_id), payload.into())
        .await
    {
        tracing::debug!("cannot publish an event: {e}");
    }
}

/// A core progress event as JSON, with the upload's name as its input (not the worker's
/// local copy). Only progress events are forwarded; final ones carry redacted errors.
fn event_json(event: &ProgressEvent, job: &JobMessage) -> serde_json::Value {
    let mut value = serde_json::to_value(event).unwrap_or_default();
    if let Some(data) = value.get_mut("data").and_then(|d| d.as_object_mut()) {
        if data.contains_key("input") {
            data.insert("input".into(), json!(job.filename));
        }
    }
    value
}

/// An error message as users may see it: the worker's local paths replaced by the upload's
/// name (clients never learn where a worker keeps its files).
fn redact(error: &str, settings: &WorkerSettings, job: &JobMessage, attempt: u64) -> String {
    let dir = settings.attempt_dir(job, attempt);
    let input = dir.join("input").join(safe_file_name(&job.filename));
    error
        .replace(&input.display().to_string(), &job.filename)
        .replace(&format!("{}/", dir.display()), "")
}

/// Says every `presence_every` that this worker is alive, with its slot use: the jobs it
/// runs (a free slot waiting on the queue for its next job is not busy).
/// What a worker's models can do, as its heartbeats say it.
struct Capabilities {
    methods: Vec<String>,
    backgrounds: Vec<String>,
}

impl Capabilities {
    fn of(processor: &BatchProcessor) -> Self {
        Self {
            methods: processor
                .available_methods()
                .iter()
                .map(|m| m.as_str().to_owned())
                .collect(),
            backgrounds: processor
                .available_backgrounds()
                .iter()
                .map(|b| b.as_str().to_owned())
                .collect(),
        }
    }
}

async fn announce(
    broker: Broker,
    settings: WorkerSettings,
    capabilities: Capabilities,
    total: usize,
    running: Running,
) {
    let mut every = tokio::time::interval(settings.presence_every);
    loop {
        every.tick().await;
        let busy = lock(&running).len().min(total);
        publish_presence(&broker, &settings, &capabilities, total, busy, true).await;
    }
}

async fn publish_presence(
    broker: &Broker,
    settings: &WorkerSettings,
    capabilities: &Capabilities,
    total: usize,
    busy: usize,
    accepting: bool,
) {
    let stats = tokio::task::spawn_blocking(orfeas_core::gpu::gpu_stats)
        .await
        .ok();
    let gpus = stats
        .map(|s| {
            s.gpus
                .iter()
                .filter_map(|g| serde_json::to_value(g).ok())
                .collect()
        })
        .unwrap_or_default();
    let presence = WorkerPresence {
        id: settings.id.clone(),
        host: settings.host.clone(),
        slots: SlotCounts { total, busy },
        gpus,
        accepting,
        methods: capabilities.methods.clone(),
        backgrounds: capabilities.backgrounds.clone(),
    };
    if let Ok(payload) = serde_json::to_vec(&presence) {
        let subject = format!("{WORKERS_PREFIX}.{}", settings.id);
        if let Err(e) = broker.client.publish(subject, payload.into()).await {
            tracing::debug!("cannot announce the worker: {e}");
        }
    }
}

/// Stops running jobs whose cancel key appears in the state bucket.
async fn watch_cancels(broker: Broker, running: Running) {
    loop {
        match broker.state.watch("cancel.>").await {
            Ok(mut watch) => {
                while let Some(entry) = watch.next().await {
                    let Ok(entry) = entry else { break };
                    if let Some(job_id) = entry.key.strip_prefix("cancel.") {
                        if let Some(token) = lock(&running).get(job_id) {
                            token.cancel();
                        }
                    }
                }
            }
            Err(e) => tracing::debug!("cannot watch cancel requests ({e}); retrying"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

impl Broker {
    /// Asks a job to stop, wherever it runs: a queued job becomes `cancelled` and its
    /// message leaves the stream; a running one stops at its next stage boundary on the
    /// worker that holds it; a finished one is unchanged. Returns the state it ended in.
    pub async fn cancel(&self, job_id: &str) -> Result<Option<JobState>, ClusterError> {
        self.state
            .put(cancel_key(job_id), bytes::Bytes::from_static(b"1"))
            .await
            .map_err(|e| ClusterError::broker("recording a cancel request", e))?;
        for _ in 0..8 {
            let Some((state, revision)) = self.job_state(job_id).await? else {
                return Ok(None);
            };
            let JobState::Queued {
                batch_id,
                filename,
                sequence,
            } = &state
            else {
                return Ok(Some(state));
            };
            let cancelled = JobState::Cancelled {
                batch_id: batch_id.clone(),
                filename: filename.clone(),
            };
            if self
                .swap_state(job_id, revision, &cancelled)
                .await?
                .is_some()
            {
                if *sequence > 0 {
                    if let Err(e) = self.jobs.delete_message(*sequence).await {
                        tracing::debug!("cancelled job's message already gone: {e}");
                    }
                }
                self.files.remove(&input_key(job_id)).await;
                return Ok(Some(cancelled));
            }
        }
        Ok(self.job_state(job_id).await?.map(|(s, _)| s))
    }

    /// Whether a cancel was asked for this job.
    pub async fn cancel_requested(&self, job_id: &str) -> Result<bool, ClusterError> {
        Ok(self
            .state
            .entry(cancel_key(job_id))
            .await
            .map_err(|e| ClusterError::broker("reading a cancel request", e))?
            .is_some_and(|e| e.operation == async_nats::jetstream::kv::Operation::Put))
    }
}

/// Forwards the core's events to the async side (never blocks the job's slot).
struct ChannelSink(mpsc::UnboundedSender<ProgressEvent>);

impl ProgressSink for ChannelSink {
    fn emit(&self, event: &ProgressEvent) {
        let _ = self.0.send(event.clone());
    }
}

async fn ack(message: &jetstream::Message, kind: AckKind) {
    if let Err(e) = message.ack_with(kind).await {
        tracing::debug!("cannot acknowledge ({kind:?}): {e}");
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The upload name as a plain file name (the front end sanitised it; a foreign message may
/// not have).
fn safe_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base
        .chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .collect();
    match clean.as_str() {
        "" | "." | ".." => "input".to_owned(),
        _ => clean,
    }
}
