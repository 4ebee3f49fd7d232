//! Server settings: where data lives, upload limits, the processor and request defaults.

use std::path::PathBuf;
use std::time::Duration;

use orfeas_core::{BatchConfig, GenerateSettings};

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
    /// Jobs, uploads and `jobs.json` live here (created if missing).
    pub data_dir: PathBuf,
    pub limits: UploadLimits,
    /// The processor: slots, depth method, device, weights, image limits.
    pub batch: BatchConfig,
    /// Settings used where a request leaves a field out (`orfeas serve` model flags).
    pub defaults: GenerateSettings,
    /// Events kept for slow WebSocket clients; one further behind gets a fresh snapshot.
    pub event_buffer: usize,
    /// How long `DELETE /api/jobs/{id}` waits for a running job to stop.
    pub cancel_wait: Duration,
    /// How long shutdown waits for cancelled jobs to wind down before exiting anyway.
    pub shutdown_grace: Duration,
    /// Interval of `gpu_stats` events while work runs (2 s).
    pub gpu_interval: Duration,
    /// Longest silence for a running job before its last progress is re-sent (under 2 s).
    pub progress_interval: Duration,
}

impl ServerConfig {
    /// Defaults for everything but the data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            limits: UploadLimits::default(),
            batch: BatchConfig::default(),
            defaults: GenerateSettings::default(),
            event_buffer: 1024,
            cancel_wait: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            gpu_interval: Duration::from_secs(2),
            progress_interval: Duration::from_millis(1500),
        }
    }
}
