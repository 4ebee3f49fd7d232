//! Server settings: where data lives, upload limits, the processor and request defaults.

use std::path::PathBuf;
use std::time::Duration;

use orfeas_core::{BatchConfig, GenerateSettings, Stage};

use crate::jobs::{OnRestart, StoreOptions};

/// Bounds on what one upload may bring (docs/reference.md §3; `orfeas serve` flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UploadLimits {
    /// Largest single file, bytes (default 50 MB).
    pub max_file_bytes: u64,
    /// Largest request body, bytes (default 200 MB).
    pub max_request_bytes: u64,
    /// Most files in one batch (default 100).
    pub max_files: usize,
}

impl Default for UploadLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: 50 * 1000 * 1000,
            max_request_bytes: 200 * 1000 * 1000,
            max_files: 100,
        }
    }
}

/// Everything [`AppState::new`](crate::AppState::new) needs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Jobs, uploads and the job journal live here (created if missing).
    pub data_dir: PathBuf,
    pub limits: UploadLimits,
    /// The processor: slots, depth method, device, weights, image limits.
    pub batch: BatchConfig,
    /// Settings used where a request leaves a field out (`orfeas serve` model flags).
    pub defaults: GenerateSettings,
    /// The job store: event buffer for slow WebSocket clients, snapshot size, journal.
    pub store: StoreOptions,
    /// How long `DELETE /api/jobs/{id}` waits for a running job to stop.
    pub cancel_wait: Duration,
    /// `--drain-timeout`: how long shutdown lets running jobs finish (30 s).
    pub drain_timeout: Duration,
    /// After the drain timeout, how long shutdown waits for the jobs it stopped to wind
    /// down before exiting anyway.
    pub shutdown_grace: Duration,
    /// `--on-restart`: what happens to jobs an earlier process left unfinished.
    pub on_restart: OnRestart,
    /// `--keep-results`: finished jobs older than this are removed with their files (7 d).
    pub keep_results: Duration,
    /// `--max-data-size`: beyond this many bytes of uploads and outputs the oldest finished
    /// jobs are removed (20 GB).
    pub max_data_bytes: u64,
    /// `--max-queue`: uploads that would make more jobs wait than this get 429 (1000).
    pub max_queue: usize,
    /// How often retention runs (and once at start).
    pub retention_interval: Duration,
    /// For tests and demonstrations: every job stops when it reaches this stage and waits
    /// there until it is cancelled or [`AppState::release_held`](crate::AppState::release_held)
    /// is called, so a test can act on a job that is certainly running.
    pub hold_jobs_at: Option<Stage>,
    /// Interval of `gpu_stats` events while work runs (2 s).
    pub gpu_interval: Duration,
    /// Longest silence for a running job before its last progress is re-sent (under 2 s).
    pub progress_interval: Duration,
    /// `orfeas serve --queue`: jobs run on cluster workers, so the jobs an earlier run left
    /// unfinished are the queue's (submitted again, never re-run or failed here).
    pub queue: bool,
}

impl ServerConfig {
    /// Defaults for everything but the data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            limits: UploadLimits::default(),
            // A server promises that a job reported complete is on the disk.
            batch: BatchConfig {
                durable: true,
                ..BatchConfig::default()
            },
            defaults: GenerateSettings::default(),
            store: StoreOptions::default(),
            cancel_wait: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
            on_restart: OnRestart::Requeue,
            keep_results: Duration::from_secs(7 * 86_400),
            max_data_bytes: 20_000_000_000,
            max_queue: 1000,
            retention_interval: Duration::from_secs(60),
            hold_jobs_at: None,
            gpu_interval: Duration::from_secs(2),
            progress_interval: Duration::from_millis(1500),
            queue: false,
        }
    }
}
