//! Jobs that only ask for the mask (`--format mask.png`, a batch background remover): load →
//! masking → the mask files, with no shape made at all.

use super::{Progress, ShapeGenerator};
use crate::cancel::CancelToken;
use crate::error::Result;
use crate::foreground::{self, MaskingSetup};
use crate::image::LoadedImage;
use crate::mesh::Mesh;
use crate::options::GenerateSettings;
use crate::pipeline::{Model, ModelReport, ShapeReport};
use crate::progress::Stage;

/// The masking stage alone, with the models it may use.
#[derive(Clone, Debug)]
pub struct CutoutGenerator {
    masking: MaskingSetup,
}

impl CutoutGenerator {
    pub fn new(masking: &MaskingSetup) -> Self {
        Self {
            masking: masking.clone(),
        }
    }
}

impl ShapeGenerator for CutoutGenerator {
    fn name(&self) -> &'static str {
        "cutout"
    }

    fn generate(
        &self,
        image: LoadedImage,
        settings: &GenerateSettings,
        cancel: &CancelToken,
        progress: &mut Progress<'_>,
    ) -> Result<Model> {
        progress.stage(Stage::Masking);
        let fg = foreground::separate(&image, settings.background, &self.masking, cancel)?;
        let warnings = fg
            .missing
            .iter()
            .map(|why| format!("{why}; the mask is the whole image"))
            .collect();
        let report = ModelReport {
            method: self.name(),
            depth: "none",
            mask: fg.source,
            triangles: 0,
            watertight: false,
            warnings,
            shape: ShapeReport::Cutout,
        };
        Ok(Model {
            mesh: Mesh::default(),
            texture: None,
            depth: None,
            raw_depth: None,
            field: None,
            original_width: image.width,
            original_height: image.height,
            mask: Some(fg),
            report,
        })
    }
}
