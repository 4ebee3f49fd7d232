//! Running many jobs on a fixed number of slots.

mod commit;
mod naming;
mod processor;
mod tally;

pub use naming::{assign_stems, sanitize_stem};
pub use processor::{BatchConfig, BatchProcessor, AUTO_SLOTS, MAX_AUTO_CPU_SLOTS};

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::cancel::CancelToken;
use crate::export::OutputFile;
use crate::image::ImageSource;
use crate::mask::MaskSource;

/// Identifies a job; front ends may assign their own (e.g. UUIDs).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct JobId(pub String);

impl From<&str> for JobId {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<String> for JobId {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One image to turn into files.
#[derive(Clone, Debug)]
pub struct Job {
    pub id: JobId,
    pub input: ImageSource,
    /// Where the outputs go; created if missing.
    pub out_dir: PathBuf,
    /// Output file stem; derived from the input name (and made unique) when `None`.
    pub stem: Option<String>,
    /// Cancels this job alone; a child of the batch's token when `None`.
    pub cancel: Option<CancelToken>,
}

impl Job {
    pub fn new(id: impl Into<JobId>, input: ImageSource, out_dir: impl Into<PathBuf>) -> Self {
        Self {
            id: id.into(),
            input,
            out_dir: out_dir.into(),
            stem: None,
            cancel: None,
        }
    }
}

/// How a job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Complete,
    Error,
    Cancelled,
}

/// The outcome of one job, shaped like an entry of the CLI's `--json` summary.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobResult {
    #[serde(skip)]
    pub id: JobId,
    pub input: String,
    pub outputs: Vec<OutputFile>,
    pub status: JobStatus,
    pub error: Option<String>,
    /// Stable code of the error (`ERR_…`), when there is one.
    pub code: Option<&'static str>,
    /// The estimator that ran (`triposr` for objects); `None` when the job stopped before
    /// choosing.
    pub depth: Option<&'static str>,
    /// How the shape was made (`relief`, `inflate`, `depth-anything`, `triposr`); `None` when
    /// the job stopped before it was made.
    pub method: Option<&'static str>,
    /// Where the foreground mask came from; `None` when the job stopped before masking.
    pub mask: Option<MaskSource>,
    /// The marching-cubes grid of an object; `None` for reliefs.
    pub resolution: Option<usize>,
    /// What the user should know about the result (e.g. an object cut off by the frame).
    pub warnings: Vec<String>,
    pub triangles: usize,
    pub watertight: bool,
    pub seconds: f64,
}
