//! `orfeas serve --queue`: the server as a front end. Uploads are kept in the data directory
//! as before and submitted to the queue; the queue's view of each job is applied to the
//! server's own job store, so the HTTP API, the WebSocket events and the studio are the same
//! as for one machine.
//!
//! Four background loops, each reconnecting on its own:
//! - the **submitter** hands accepted jobs to the queue in upload order, and keeps retrying
//!   while the queue is away (an accepted upload is never dropped; it waits, `queued`);
//! - the **state watch** reads every job state of the state bucket, then each change: the
//!   queue's states are the truth, and terminal ones are never missed, even by a server that
//!   was down when they happened (the watch starts with the current value of every key);
//! - the **event relay** applies workers' progress events, dropping superseded attempts;
//! - the **presence** loop keeps the list of live workers for `/api/gpu-stats`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::message::{JobMessage, WorkerEvent, WorkerPresence, JOB_MESSAGE_VERSION};
use super::state::{input_key, JobState as QueueState};
use super::{Broker, ClusterError, EVENTS_PREFIX, WORKERS_PREFIX};
use crate::jobs::{CancelOutcome, JobStore};
use crate::state::AppState;

/// A worker not heard from for this long is taken for gone (three of its heartbeats).
pub const PRESENCE_TIMEOUT: Duration = Duration::from_secs(6);

/// How often the jobs stream is checked for acknowledged messages left behind.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// How long to wait before trying the queue again after it failed.
const RETRY: Duration = Duration::from_secs(1);

/// The front end's link to the queue, shared by the routes.
#[derive(Debug)]
pub struct Front {
    broker: Broker,
    workers: Mutex<HashMap<String, (WorkerPresence, Instant)>>,
    submit: mpsc::UnboundedSender<String>,
}

impl Front {
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// Whether the connection to the queue is up now.
    pub fn is_connected(&self) -> bool {
        self.broker.is_connected()
    }

    /// The workers heard from within [`PRESENCE_TIMEOUT`], by id.
    pub fn workers(&self) -> Vec<WorkerPresence> {
        let mut workers = lock(&self.workers);
        workers.retain(|_, (_, seen)| seen.elapsed() < PRESENCE_TIMEOUT);
        let mut live: Vec<WorkerPresence> = workers.values().map(|(p, _)| p.clone()).collect();
        live.sort_by(|a, b| a.id.cmp(&b.id));
        live
    }

    /// The methods and backgrounds some live worker can run, each sorted and once; `None`
    /// while no worker is live (requests then wait in the queue for one).
    pub fn capabilities(&self) -> Option<(Vec<String>, Vec<String>)> {
        let workers = self.workers();
        if workers.is_empty() {
            return None;
        }
        let union = |pick: fn(&WorkerPresence) -> &Vec<String>| {
            let mut all: Vec<String> = workers.iter().flat_map(|w| pick(w).clone()).collect();
            all.sort();
            all.dedup();
            all
        };
        Some((union(|w| &w.methods), union(|w| &w.backgrounds)))
    }

    /// Slots over every live worker.
    pub fn slots(&self) -> usize {
        self.workers().iter().map(|w| w.slots.total).sum()
    }

    /// Hands accepted jobs (already in the store and its journal) to the queue, in order.
    pub fn submit(&self, job_ids: impl IntoIterator<Item = String>) {
        for id in job_ids {
            // The receiver lives as long as the server; a send after it ended changes nothing.
            let _ = self.submit.send(id);
        }
    }

    /// Cancels a job wherever it is: through the queue when the queue knows it (a queued
    /// job leaves the stream, a running one stops on its worker), here when it was not yet
    /// submitted.
    pub async fn cancel(
        &self,
        store: &JobStore,
        job_id: &str,
        reason: &str,
    ) -> Result<CancelOutcome, ClusterError> {
        let Some(job) = store.get(job_id) else {
            return Ok(CancelOutcome::NotFound);
        };
        if job.status.is_terminal() {
            return Ok(CancelOutcome::Finished(job.status));
        }
        store.note_cancel_reason(job_id, reason);
        let Some(state) = self.broker.cancel(job_id).await? else {
            // Not submitted yet: the submitter skips it once it is cancelled here, and a
            // submit already under way meets the cancel request the queue now holds.
            return Ok(store.cancel(job_id, reason));
        };
        store.apply_remote_state(job_id, &state);
        Ok(match state {
            QueueState::Cancelled { .. } => CancelOutcome::Cancelled,
            QueueState::Queued { .. } | QueueState::Running { .. } => CancelOutcome::Running,
            QueueState::Complete { .. } | QueueState::Failed { .. } => {
                CancelOutcome::Finished(store.get(job_id).map_or(job.status, |j| j.status))
            }
        })
    }
}

/// Starts the front end's loops on `state` (whose store holds the jobs of earlier runs) and
/// submits the jobs an earlier run left unfinished. The loops end when WebSocket clients are
/// let go, the last step of shutdown.
pub fn start(state: &AppState, broker: Broker) -> Arc<Front> {
    let (submit, submissions) = mpsc::unbounded_channel();
    let front = Arc::new(Front {
        broker: broker.clone(),
        workers: Mutex::default(),
        submit,
    });
    let stop = state.clients_token().clone();
    let store = Arc::clone(state.store());
    tokio::spawn(until(
        stop.clone(),
        submitter(state.clone(), broker.clone(), submissions),
    ));
    tokio::spawn(until(
        stop.clone(),
        watch_states(broker.clone(), Arc::clone(&store)),
    ));
    tokio::spawn(until(stop.clone(), relay_events(broker.clone(), store)));
    tokio::spawn(until(stop.clone(), sweep(broker.clone())));
    tokio::spawn(until(stop, track_workers(broker, Arc::clone(&front))));
    front.submit(
        state
            .take_requeued()
            .into_iter()
            .map(|record| record.job_id),
    );
    state.attach_front(Arc::clone(&front));
    front
}

async fn until(stop: CancellationToken, work: impl std::future::Future<Output = ()>) {
    tokio::select! {
        () = stop.cancelled() => {}
        () = work => {}
    }
}

/// Submits jobs in the order they came; one that cannot be submitted now (the queue is away)
/// is tried again, and the jobs behind it wait, so the queue sees uploads in order.
async fn submitter(
    state: AppState,
    broker: Broker,
    mut submissions: mpsc::UnboundedReceiver<String>,
) {
    let mut pending: VecDeque<String> = VecDeque::new();
    loop {
        if pending.is_empty() {
            match submissions.recv().await {
                Some(id) => pending.push_back(id),
                None => return,
            }
        }
        while let Ok(id) = submissions.try_recv() {
            pending.push_back(id);
        }
        let Some(job_id) = pending.front().cloned() else {
            continue;
        };
        match submit_one(&state, &broker, &job_id).await {
            Ok(()) => {
                pending.pop_front();
            }
            Err(e) => {
                tracing::warn!(job_id = %job_id, waiting = pending.len(), "cannot submit to the queue ({e}); retrying");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

async fn submit_one(state: &AppState, broker: &Broker, job_id: &str) -> Result<(), ClusterError> {
    let Some(record) = state.store().get(job_id) else {
        return Ok(()); // removed meanwhile
    };
    if record.status.is_terminal() {
        return Ok(()); // cancelled before it reached the queue
    }
    let Some(spec) = record.spec else {
        state.store().reconcile(
            job_id,
            Err((
                crate::jobs::INTERRUPTED_CODE,
                "this job was saved by an older server and cannot be run again".into(),
            )),
        );
        return Ok(());
    };
    let message = JobMessage {
        v: JOB_MESSAGE_VERSION,
        job_id: record.job_id.clone(),
        batch_id: record.batch_id.clone(),
        filename: record.filename.clone(),
        store: broker.files().location().clone(),
        input_key: input_key(&record.job_id),
        stem: spec.stem.clone(),
        settings: spec.settings.clone(),
    };
    let input = state.input_dir(job_id).join(&spec.input);
    let submitted = broker.submit(&message, &input).await?;
    tracing::debug!(
        job_id,
        sequence = submitted.sequence,
        new = submitted.new,
        "submitted"
    );
    Ok(())
}

/// Applies every job state of the state bucket, then every change, for as long as the
/// server runs; after a lost connection the watch starts again from the current values.
async fn watch_states(broker: Broker, store: Arc<JobStore>) {
    loop {
        match broker.state.watch_with_history("job.>").await {
            Ok(mut changes) => {
                while let Some(entry) = changes.next().await {
                    let Ok(entry) = entry else { break };
                    if entry.operation != async_nats::jetstream::kv::Operation::Put {
                        continue;
                    }
                    let Some(job_id) = entry.key.strip_prefix("job.") else {
                        continue;
                    };
                    match QueueState::parse(&entry.value) {
                        Ok(state) => store.apply_remote_state(job_id, &state),
                        Err(e) => tracing::warn!(job_id, "ignoring a job state: {e}"),
                    }
                }
            }
            Err(e) => tracing::debug!("cannot watch job states ({e}); retrying"),
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Applies workers' progress events (terminal ones come from the state bucket, which is
/// never behind them).
async fn relay_events(broker: Broker, store: Arc<JobStore>) {
    loop {
        match broker.client.subscribe(format!("{EVENTS_PREFIX}.>")).await {
            Ok(mut events) => {
                while let Some(message) = events.next().await {
                    let Some(job_id) = message
                        .subject
                        .as_str()
                        .strip_prefix(EVENTS_PREFIX)
                        .and_then(|s| s.strip_prefix('.'))
                    else {
                        continue;
                    };
                    let Ok(event) = serde_json::from_slice::<WorkerEvent>(&message.payload) else {
                        tracing::debug!(job_id, "ignoring an unreadable event");
                        continue;
                    };
                    if event.event.get("event").and_then(|e| e.as_str())
                        != Some("generation_progress")
                    {
                        continue;
                    }
                    let data = &event.event["data"];
                    let (Some(progress), Some(stage)) = (
                        data.get("progress").and_then(serde_json::Value::as_f64),
                        data.get("stage").and_then(|s| s.as_str()),
                    ) else {
                        continue;
                    };
                    store.apply_remote_progress(
                        job_id,
                        &event.worker,
                        event.attempt,
                        progress as f32,
                        stage,
                    );
                }
            }
            Err(e) => tracing::debug!("cannot subscribe to job events ({e}); retrying"),
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Every [`SWEEP_EVERY`], removes job messages a broker restart left behind after their
/// acknowledgement ([`Broker::sweep_acknowledged`]).
async fn sweep(broker: Broker) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    // Sweeps in a row that found messages the consumer lost track of: two, so that a job
    // published between the two reads of one sweep is not taken for one.
    let mut untracked_sweeps = 0;
    loop {
        every.tick().await;
        match broker.sweep_acknowledged().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                messages = n,
                "removed acknowledged job messages a broker restart had kept"
            ),
            Err(e) => tracing::debug!("cannot sweep the jobs stream: {e}"),
        }
        match broker.untracked_jobs().await {
            Ok(0) => untracked_sweeps = 0,
            Ok(n) => {
                untracked_sweeps += 1;
                if untracked_sweeps >= 2 {
                    untracked_sweeps = 0;
                    tracing::warn!(
                        messages = n,
                        "the queue lost track of job messages (a broker restart without sync); \
                         delivering every waiting job again"
                    );
                    if let Err(e) = broker.reset_consumer().await {
                        tracing::warn!("cannot renew the workers' consumer: {e}");
                    }
                }
            }
            Err(e) => tracing::debug!("cannot check the jobs stream: {e}"),
        }
    }
}

/// Keeps the live workers: each heartbeat refreshes one; a worker that says it stops leaves
/// at once, one that falls silent after [`PRESENCE_TIMEOUT`].
async fn track_workers(broker: Broker, front: Arc<Front>) {
    loop {
        match broker.client.subscribe(format!("{WORKERS_PREFIX}.>")).await {
            Ok(mut beats) => {
                while let Some(message) = beats.next().await {
                    let Ok(presence) = serde_json::from_slice::<WorkerPresence>(&message.payload)
                    else {
                        continue;
                    };
                    let mut workers = lock(&front.workers);
                    if presence.accepting {
                        workers.insert(presence.id.clone(), (presence, Instant::now()));
                    } else {
                        workers.remove(&presence.id);
                    }
                }
            }
            Err(e) => tracing::debug!("cannot subscribe to worker heartbeats ({e}); retrying"),
        }
        tokio::time::sleep(RETRY).await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
