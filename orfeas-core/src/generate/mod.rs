//! How a shape is made. One trait, one implementation per way: [`relief`] (image → depth →
//! height field → solid, the 2.5D methods) and [`object`] (image → mask → TripoSR → density
//! field → closed surface). Neither knows the other; `pipeline` picks one by the method.

pub mod cutout;
pub mod object;
pub mod relief;

use crate::cancel::CancelToken;
use crate::error::Result;
use crate::image::LoadedImage;
use crate::options::GenerateSettings;
use crate::pipeline::{Model, StageCallback};
use crate::progress::{Stage, StagePlan};

/// Turns one decoded image into a model. Object safe, and shared by every slot (`Send + Sync`):
/// what a way needs (loaded weights) lives in the implementation, what a job needs comes in
/// the arguments.
pub trait ShapeGenerator: Send + Sync {
    /// The method name reported when the choice is fixed (`triposr`); the 2.5D `auto` chooses
    /// per image and reports in the model.
    fn name(&self) -> &'static str;

    /// Every stage after `loading` up to a finished mesh. Long steps check `cancel`.
    fn generate(
        &self,
        image: LoadedImage,
        settings: &GenerateSettings,
        cancel: &CancelToken,
        progress: &mut Progress<'_>,
    ) -> Result<Model>;
}

/// Reports a job's stages and in-stage progress as overall percent, by the path's
/// [`StagePlan`]. In-stage updates closer than [`Progress::MIN_STEP`] to the last one are
/// dropped: a field evaluated in thousands of chunks must not send thousands of events.
pub struct Progress<'a> {
    plan: StagePlan,
    on_stage: StageCallback<'a>,
    last: Option<(Stage, f32)>,
}

impl std::fmt::Debug for Progress<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("plan", &self.plan)
            .field("last", &self.last)
            .finish()
    }
}

impl<'a> Progress<'a> {
    /// Smallest in-stage advance, in overall percent, that is reported.
    pub const MIN_STEP: f32 = 0.5;

    pub fn new(plan: StagePlan, on_stage: StageCallback<'a>) -> Self {
        Self {
            plan,
            on_stage,
            last: None,
        }
    }

    pub fn plan(&self) -> StagePlan {
        self.plan
    }

    /// `stage` starts (always reported).
    pub fn stage(&mut self, stage: Stage) {
        self.emit(stage, self.plan.start(stage));
    }

    /// `fraction` (0-1) of `stage` is done; reported when it moved the bar far enough.
    pub fn within(&mut self, stage: Stage, fraction: f32) {
        let percent = self.plan.within(stage, fraction);
        match self.last {
            Some((s, p)) if s == stage && percent - p < Self::MIN_STEP => {}
            _ => self.emit(stage, percent),
        }
    }

    fn emit(&mut self, stage: Stage, percent: f32) {
        self.last = Some((stage, percent));
        (self.on_stage)(stage, percent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_stage_updates_are_thinned_but_stage_changes_always_pass() {
        let mut seen = Vec::new();
        {
            let mut record = |s: Stage, p: f32| seen.push((s, p));
            let mut progress = Progress::new(StagePlan::OBJECT, &mut record);
            progress.stage(Stage::Meshing);
            for i in 0..=1000 {
                progress.within(Stage::Meshing, i as f32 / 1000.0);
            }
            progress.stage(Stage::Exporting);
        }
        assert_eq!(seen.first(), Some(&(Stage::Meshing, 50.0)));
        assert_eq!(seen.last(), Some(&(Stage::Exporting, 96.0)));
        // 46 points of meshing in steps of at least 0.5: at most 93 updates, at least 46.
        let meshing = seen.iter().filter(|(s, _)| *s == Stage::Meshing).count();
        assert!((46..=93).contains(&meshing), "{meshing} updates");
        assert!(seen.windows(2).all(|w| w[0].1 <= w[1].1), "{seen:?}");
    }
}
