//! Progress is data: the core emits [`ProgressEvent`] values, front ends forward them
//! (WebSocket JSON, Python dicts, Node objects, terminal bars) without reshaping.

use serde::Serialize;

use crate::batch::JobId;
use crate::export::OutputFile;

/// The pipeline stages of docs/reference.md §1, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Queued,
    Loading,
    Masking,
    DepthEstimation,
    Meshing,
    Exporting,
    Complete,
    Error,
    Cancelled,
}

impl Stage {
    /// The name used in events and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Loading => "loading",
            Self::Masking => "masking",
            Self::DepthEstimation => "depth_estimation",
            Self::Meshing => "meshing",
            Self::Exporting => "exporting",
            Self::Complete => "complete",
            Self::Error => "error",
            Self::Cancelled => "cancelled",
        }
    }

    /// Overall percent reached when a stage starts; stages are weighted by typical cost.
    pub fn start_percent(self) -> f32 {
        match self {
            Self::Queued => 0.0,
            Self::Loading => 2.0,
            Self::Masking => 15.0,
            Self::DepthEstimation => 25.0,
            Self::Meshing => 55.0,
            Self::Exporting => 80.0,
            Self::Complete | Self::Error | Self::Cancelled => 100.0,
        }
    }
}

/// Counts of a batch's jobs by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BatchCounts {
    pub total: usize,
    pub queued: usize,
    pub processing: usize,
    pub complete: usize,
    pub failed: usize,
    pub cancelled: usize,
}

/// One progress event. Serialises as `{"event": "...", "data": {...}}` (docs/reference.md §3).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProgressEvent {
    /// A stage started or advanced; `progress` is 0-100 for the whole job.
    GenerationProgress {
        job_id: JobId,
        batch_id: String,
        input: String,
        progress: f32,
        stage: Stage,
    },
    /// The job finished and every requested output was written.
    GenerationComplete {
        job_id: JobId,
        batch_id: String,
        input: String,
        success: bool,
        outputs: Vec<OutputFile>,
        triangles: usize,
        depth: String,
        watertight: bool,
        seconds: f64,
    },
    /// The job failed; the rest of the batch goes on.
    GenerationError {
        job_id: JobId,
        batch_id: String,
        input: String,
        success: bool,
        error: String,
        code: &'static str,
    },
    /// The job was cancelled before it finished; nothing partial was left behind.
    GenerationCancelled {
        job_id: JobId,
        batch_id: String,
        input: String,
    },
    /// The batch's counts changed.
    BatchProgress {
        batch_id: String,
        #[serde(flatten)]
        counts: BatchCounts,
    },
}

impl ProgressEvent {
    /// The event name, as in the serialised `event` field.
    pub fn name(&self) -> &'static str {
        match self {
            Self::GenerationProgress { .. } => "generation_progress",
            Self::GenerationComplete { .. } => "generation_complete",
            Self::GenerationError { .. } => "generation_error",
            Self::GenerationCancelled { .. } => "generation_cancelled",
            Self::BatchProgress { .. } => "batch_progress",
        }
    }
}

/// Receives progress events. Called from worker threads, so it must be cheap and never block
/// for long: a slow sink slows the pipeline. Implementations log their own failures.
pub trait ProgressSink: Send + Sync {
    fn emit(&self, event: &ProgressEvent);
}

/// Discards every event.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn emit(&self, _event: &ProgressEvent) {}
}

/// Adapts a closure into a sink.
pub struct FnProgress<F>(pub F);

impl<F: Fn(&ProgressEvent) + Send + Sync> ProgressSink for FnProgress<F> {
    fn emit(&self, event: &ProgressEvent) {
        (self.0)(event)
    }
}

impl<F> std::fmt::Debug for FnProgress<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FnProgress")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_as_contract_shapes() {
        let e = ProgressEvent::GenerationProgress {
            job_id: JobId::from("j1"),
            batch_id: "b".into(),
            input: "a.png".into(),
            progress: 25.0,
            stage: Stage::DepthEstimation,
        };
        let v = serde_json::to_value(&e).expect("serialise");
        assert_eq!(v["event"], "generation_progress");
        assert_eq!(v["data"]["job_id"], "j1");
        assert_eq!(v["data"]["stage"], "depth_estimation");
        let b = ProgressEvent::BatchProgress {
            batch_id: "b".into(),
            counts: BatchCounts {
                total: 3,
                complete: 1,
                ..Default::default()
            },
        };
        let v = serde_json::to_value(&b).expect("serialise");
        assert_eq!(v["event"], "batch_progress");
        assert_eq!(v["data"]["total"], 3);
        assert_eq!(v["data"]["complete"], 1);
        assert_eq!(b.name(), "batch_progress");
    }
}
