//! [`AppState`]: what every route shares (cheap to clone, `Arc` inside).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use orfeas_core::{BatchProcessor, CancelToken, OrfeasError};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::Front;
use crate::config::ServerConfig;
use crate::jobs::{JobRecord, JobStore};

/// Shared server state: configuration, the processor, the job store and shutdown handles.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ServerConfig,
    /// The canonical data directory; every file served must lie below it.
    data_dir: PathBuf,
    processor: Arc<BatchProcessor>,
    store: Arc<JobStore>,
    /// Parent of every job's token: cancelling it stops all jobs.
    jobs_cancel: CancelToken,
    /// Cancelled when shutdown starts: uploads are refused, no further job is started and
    /// the ticker ends.
    shutdown: CancellationToken,
    /// Cancelled once the cancelled jobs have wound down: WebSocket clients get their last
    /// events, then a Close frame.
    clients: CancellationToken,
    /// Job tasks, awaited at shutdown.
    tasks: TaskTracker,
    /// Jobs handed to the processor at once (slots × 2): the rest wait here as cheap async
    /// tasks instead of holding a blocking thread each.
    in_flight: Arc<Semaphore>,
    /// Jobs of the previous run re-queued at start, handed to the runner by `serve`.
    requeued: Mutex<Vec<JobRecord>>,
    /// Set by [`AppState::release_held`]: jobs held at `hold_jobs_at` go on.
    held_released: AtomicBool,
    /// The queue, when this server is a cluster's front end (`--queue`).
    front: OnceLock<Arc<Front>>,
}

impl AppState {
    /// Creates the data directory, loads the job store and starts the processor (which
    /// loads model weights when the depth method needs them: call off the async runtime or
    /// accept a short block).
    pub fn new(config: ServerConfig) -> Result<Self, OrfeasError> {
        for dir in [
            config.data_dir.clone(),
            config.data_dir.join("jobs"),
            config.data_dir.join("uploads"),
            config.data_dir.join("tmp"),
        ] {
            std::fs::create_dir_all(&dir).map_err(|e| OrfeasError::io(&dir, e))?;
        }
        let data_dir = config
            .data_dir
            .canonicalize()
            .map_err(|e| OrfeasError::io(&config.data_dir, e))?;
        // Leftovers of an earlier run (partial uploads, half-built archives).
        crate::jobs::empty_dir(&data_dir.join("uploads"));
        crate::jobs::empty_dir(&data_dir.join("tmp"));
        let store = JobStore::open(&data_dir, &config.store)
            .map_err(|e| OrfeasError::io(data_dir.join(crate::jobs::JOURNAL_FILE), e))?;
        let jobs_cancel = CancelToken::new();
        let requeued = if config.queue {
            store.hold_unfinished(|| jobs_cancel.child())
        } else {
            store.recover(config.on_restart, || jobs_cancel.child())
        };
        store.sweep_unlisted();
        let processor = BatchProcessor::new(config.batch.clone())?;
        let in_flight = Arc::new(Semaphore::new(processor.slots() * 2));
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                data_dir,
                processor: Arc::new(processor),
                store: Arc::new(store),
                jobs_cancel,
                shutdown: CancellationToken::new(),
                clients: CancellationToken::new(),
                tasks: TaskTracker::new(),
                in_flight,
                requeued: Mutex::new(requeued),
                held_released: AtomicBool::new(false),
                front: OnceLock::new(),
            }),
        })
    }

    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// The canonical data directory.
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    pub fn processor(&self) -> &Arc<BatchProcessor> {
        &self.inner.processor
    }

    pub fn store(&self) -> &Arc<JobStore> {
        &self.inner.store
    }

    /// The queue this server fronts, once [`cluster::start_front`](crate::cluster::start_front)
    /// connected it.
    pub fn front(&self) -> Option<&Arc<Front>> {
        self.inner.front.get()
    }

    pub(crate) fn attach_front(&self, front: Arc<Front>) {
        let _ = self.inner.front.set(front);
    }

    /// A fresh token for one job, cancelled with the server.
    pub fn job_token(&self) -> CancelToken {
        self.inner.jobs_cancel.child()
    }

    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.inner.shutdown
    }

    /// Cancelled when WebSocket clients should be closed.
    pub fn clients_token(&self) -> &CancellationToken {
        &self.inner.clients
    }

    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutdown.is_cancelled()
    }

    pub fn tasks(&self) -> &TaskTracker {
        &self.inner.tasks
    }

    pub fn in_flight(&self) -> &Arc<Semaphore> {
        &self.inner.in_flight
    }

    /// `<data>/jobs/<job_id>`: the job's own directory (input/ and out/ inside).
    pub fn job_dir(&self, job_id: &str) -> PathBuf {
        self.inner.data_dir.join("jobs").join(job_id)
    }

    /// Where a job's outputs are written.
    pub fn out_dir(&self, job_id: &str) -> PathBuf {
        self.job_dir(job_id).join("out")
    }

    /// Where a job's uploaded image is kept.
    pub fn input_dir(&self, job_id: &str) -> PathBuf {
        self.job_dir(job_id).join("input")
    }

    /// Staging area for uploads still being received.
    pub fn uploads_dir(&self) -> PathBuf {
        self.inner.data_dir.join("uploads")
    }

    /// Temporary files (ZIP archives being built).
    pub fn tmp_dir(&self) -> PathBuf {
        self.inner.data_dir.join("tmp")
    }

    /// Jobs re-queued from the previous run, once (the caller starts them).
    pub fn take_requeued(&self) -> Vec<JobRecord> {
        std::mem::take(
            &mut *self
                .inner
                .requeued
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        )
    }

    /// Lets jobs held at [`ServerConfig::hold_jobs_at`] go on (now and from now on).
    pub fn release_held(&self) {
        self.inner.held_released.store(true, Ordering::Release);
    }

    pub fn is_held_released(&self) -> bool {
        self.inner.held_released.load(Ordering::Acquire)
    }

    /// First half of shutdown: refuse uploads, start no further job. Queued jobs stay
    /// queued in the journal for the next start.
    pub fn begin_shutdown(&self) {
        if self.inner.shutdown.is_cancelled() {
            return;
        }
        let (queued, running) = self.inner.store.active_counts();
        tracing::info!(
            queued,
            running,
            "draining: no new jobs; running ones get {:?} to finish",
            self.inner.config.drain_timeout
        );
        self.inner.shutdown.cancel();
    }

    /// Second half: running jobs get `drain_timeout` to finish; those still running then are
    /// stopped (their partial files removed) and go back to `queued` for the next start,
    /// with `shutdown_grace` to wind down. Then WebSocket clients are let go (they have seen
    /// every job's last event by then).
    pub async fn wind_down(&self) {
        self.begin_shutdown();
        let tasks = &self.inner.tasks;
        tasks.close();
        if tokio::time::timeout(self.inner.config.drain_timeout, tasks.wait())
            .await
            .is_err()
        {
            let stopped = self.inner.store.interrupt_running();
            tracing::warn!(
                stopped,
                "drain timeout: stopping running jobs; they are re-queued at the next start"
            );
            if tokio::time::timeout(self.inner.config.shutdown_grace, tasks.wait())
                .await
                .is_err()
            {
                tracing::warn!("some jobs did not stop within the shutdown grace period");
            }
        }
        self.inner.clients.cancel();
    }

    /// Last step: everything wound down; the journal written and closed.
    pub async fn finish_shutdown(&self) {
        self.wind_down().await;
        let store = Arc::clone(&self.inner.store);
        let _ = tokio::task::spawn_blocking(move || {
            store.persist();
            store.close();
        })
        .await;
    }
}
