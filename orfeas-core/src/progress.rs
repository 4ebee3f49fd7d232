//! Progress is data: the core emits [`ProgressEvent`] values, front ends forward them
//! (WebSocket JSON, Python dicts, Node objects, terminal bars) without reshaping.

use serde::Serialize;

use crate::batch::JobId;
use crate::export::OutputFile;
use crate::mask::MaskSource;
use crate::options::Method;

/// The pipeline stages of docs/reference.md §1, in order. A relief goes through
/// `depth_estimation`, an object through `shape_generation`; both then mesh and export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Queued,
    Loading,
    Masking,
    DepthEstimation,
    /// The object path's model: image tokenizer + backbone → triplanes (TripoSR).
    ShapeGeneration,
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
            Self::ShapeGeneration => "shape_generation",
            Self::Meshing => "meshing",
            Self::Exporting => "exporting",
            Self::Complete => "complete",
            Self::Error => "error",
            Self::Cancelled => "cancelled",
        }
    }

    /// Overall percent reached when a stage starts on the relief path ([`StagePlan::RELIEF`]).
    pub fn start_percent(self) -> f32 {
        StagePlan::RELIEF.start(self)
    }
}

/// Where each stage of one method starts, in overall percent of the job, weighted by what the
/// stages typically cost on that path, so that a bar moves at the pace the work does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StagePlan {
    /// The working stages in order with their start; each ends where the next starts and the
    /// last at 100.
    stages: &'static [(Stage, f32)],
}

impl StagePlan {
    /// The 2.5D path: meshing the height field and building the solid dominate.
    pub const RELIEF: StagePlan = StagePlan {
        stages: &[
            (Stage::Loading, 2.0),
            (Stage::Masking, 15.0),
            (Stage::DepthEstimation, 25.0),
            (Stage::Meshing, 55.0),
            (Stage::Exporting, 80.0),
        ],
    };

    /// The object path: the model (a ViT and a 16-layer transformer at full size) and the
    /// density field (`resolution³` MLP queries) are nearly all of the time; loading, masking,
    /// the surface, its colours and the files are seconds at most.
    pub const OBJECT: StagePlan = StagePlan {
        stages: &[
            (Stage::Loading, 1.0),
            (Stage::Masking, 2.0),
            (Stage::ShapeGeneration, 4.0),
            (Stage::Meshing, 50.0),
            (Stage::Exporting, 96.0),
        ],
    };

    /// Jobs asking only for the mask: the remover (a second or more per photo on the CPU) is
    /// nearly all of the time.
    pub const CUTOUT: StagePlan = StagePlan {
        stages: &[
            (Stage::Loading, 1.0),
            (Stage::Masking, 5.0),
            (Stage::Exporting, 95.0),
        ],
    };

    /// The plan of the path `method` takes.
    pub fn for_method(method: Method) -> StagePlan {
        if method.is_object() {
            Self::OBJECT
        } else {
            Self::RELIEF
        }
    }

    /// Overall percent when `stage` starts (0 for `queued`, 100 for the end states and for
    /// stages this path does not have).
    pub fn start(&self, stage: Stage) -> f32 {
        match stage {
            Stage::Queued => 0.0,
            _ => self
                .stages
                .iter()
                .find(|(s, _)| *s == stage)
                .map_or(100.0, |&(_, p)| p),
        }
    }

    /// Overall percent when `stage` ends: the next stage's start, 100 after the last.
    pub fn end(&self, stage: Stage) -> f32 {
        self.stages
            .iter()
            .position(|(s, _)| *s == stage)
            .and_then(|i| self.stages.get(i + 1))
            .map_or(100.0, |&(_, p)| p)
    }

    /// Overall percent `fraction` (0-1, clamped) of the way through `stage`.
    pub fn within(&self, stage: Stage, fraction: f32) -> f32 {
        let (start, end) = (self.start(stage), self.end(stage));
        let f = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        start + (end - start) * f
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
    /// The job finished, every requested output was written, and it passed the commit point
    /// uncancelled: its files stay.
    GenerationComplete {
        job_id: JobId,
        batch_id: String,
        input: String,
        success: bool,
        outputs: Vec<OutputFile>,
        triangles: usize,
        /// The estimator that ran; for objects the same as `method` (`triposr`).
        depth: String,
        /// How the shape was made (`relief`, `inflate`, `depth-anything`, `triposr`).
        method: String,
        /// Where the foreground came from.
        mask: Option<MaskSource>,
        watertight: bool,
        /// Things the user should know about the result (e.g. an object cut off by the frame).
        warnings: Vec<String>,
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
    /// The job was cancelled before its commit point (even after its last file was written);
    /// the core removed every file it wrote.
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

    #[test]
    fn plans_are_monotone_and_end_at_one_hundred() {
        for plan in [StagePlan::RELIEF, StagePlan::OBJECT] {
            let starts: Vec<f32> = plan.stages.iter().map(|&(_, p)| p).collect();
            assert!(starts.windows(2).all(|w| w[0] < w[1]), "{starts:?}");
            assert_eq!(plan.end(Stage::Exporting), 100.0);
            assert_eq!(plan.start(Stage::Complete), 100.0);
        }
        let object = StagePlan::for_method(Method::TripoSr);
        assert_eq!(object.start(Stage::ShapeGeneration), 4.0);
        assert_eq!(object.within(Stage::Meshing, 0.5), 73.0);
        assert_eq!(object.within(Stage::Meshing, f32::NAN), 50.0);
        assert_eq!(StagePlan::for_method(Method::Auto), StagePlan::RELIEF);
        // The relief plan keeps the percentages it always had.
        assert_eq!(Stage::Meshing.start_percent(), 55.0);
        assert_eq!(Stage::Exporting.start_percent(), 80.0);
        assert_eq!(
            serde_json::to_value(Stage::ShapeGeneration).ok(),
            Some(serde_json::json!("shape_generation"))
        );
    }
}
