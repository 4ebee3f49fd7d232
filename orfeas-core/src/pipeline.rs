//! One image through every stage: load → (the method's way to a shape) → mesh (→ export, in
//! `batch`). The ways live in [`crate::generate`]; this module picks one by the method.

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::cancel::CancelToken;
use crate::depth::HeightMap;
use crate::error::{OrfeasError, Result};
use crate::export::{self, ExportInput, MeshFormat, OutputFile};
use crate::foreground::{Background, Foreground, MaskingSetup, Segmenter};
use crate::generate::cutout::CutoutGenerator;
use crate::generate::object::ObjectGenerator;
use crate::generate::relief::ReliefGenerator;
use crate::generate::{Progress, ShapeGenerator};
use crate::image::{load_image, ImageLimits, ImageSource};
use crate::mask::MaskSource;
use crate::mesh::{Mesh, Texture};
use crate::models;
use crate::models::triposr::{DensityGrid, TripoSr};
use crate::options::{DepthMethod, GenerateSettings, Method};
use crate::progress::{Stage, StagePlan};

pub use crate::generate::relief::{estimate_depth, DepthMap, DepthSetup};

/// What a finished model looked like, for results and logs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelReport {
    /// How the shape was made (`relief`, `inflate`, `depth-anything`, `triposr`); never `auto`.
    pub method: &'static str,
    /// The depth estimator that ran; for objects the same as `method` (`triposr`).
    pub depth: &'static str,
    pub mask: MaskSource,
    pub triangles: usize,
    /// Closed, consistently wound, positive volume, manifold (always false for surfaces).
    pub watertight: bool,
    /// What the user should know about this result (e.g. an object cut off by the frame).
    pub warnings: Vec<String>,
    /// What only one way of making shapes has to say.
    pub shape: ShapeReport,
}

/// The part of a [`ModelReport`] that belongs to one way of making shapes.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ShapeReport {
    Relief(ReliefReport),
    Object(ObjectReport),
    /// Only the mask was asked for: no shape was made.
    Cutout,
}

/// The relief path's meshing figures.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ReliefReport {
    /// The meshing tolerance met, as a fraction of the relief height.
    pub max_error: f32,
    /// Size of the image that was meshed (after downscaling to the preset).
    pub working_width: u32,
    pub working_height: u32,
}

/// The object path's figures.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ObjectReport {
    /// The marching-cubes grid: the field was sampled at `resolution³` points.
    pub resolution: usize,
    /// Connected parts of the surface that were written (1 with `keep_largest`).
    pub components: usize,
}

impl ModelReport {
    /// The relief figures, for a relief.
    pub fn relief(&self) -> Option<&ReliefReport> {
        match &self.shape {
            ShapeReport::Relief(r) => Some(r),
            ShapeReport::Object(_) | ShapeReport::Cutout => None,
        }
    }

    /// The object figures, for an object.
    pub fn object(&self) -> Option<&ObjectReport> {
        match &self.shape {
            ShapeReport::Object(o) => Some(o),
            ShapeReport::Relief(_) | ShapeReport::Cutout => None,
        }
    }
}

/// A generated model with everything the exporters may need.
#[derive(Clone, Debug)]
pub struct Model {
    pub mesh: Mesh,
    /// A relief's working image, used as colour texture (UVs are in the mesh); objects carry
    /// vertex colours instead.
    pub texture: Option<Texture>,
    /// A relief's height map at working resolution, normalised to [0, 1].
    pub depth: Option<HeightMap>,
    /// The estimator's own unnormalised output at the original resolution (Depth Anything's
    /// prediction), kept when a depth format was asked for; `depth.npy` writes it.
    pub raw_depth: Option<HeightMap>,
    /// An object's density field, kept when `field.npy` was asked for.
    pub field: Option<DensityGrid>,
    /// The foreground mask at the input's original size, kept when a mask format was asked for.
    pub mask: Option<Foreground>,
    /// The input's size before downscaling, for depth maps at the original resolution.
    pub original_width: u32,
    pub original_height: u32,
    pub report: ModelReport,
}

impl Model {
    /// What the exporters need to write `formats`: the depth formats get the height map at
    /// the input's original size (the raw prediction when there is one).
    pub fn export_data(&self, formats: &[MeshFormat]) -> ExportData<'_> {
        let needs_depth = formats.iter().any(|f| f.is_depth());
        let full_depth = if needs_depth && self.raw_depth.is_none() {
            // Only a hand-made model with an empty original size fails to resize; its depth
            // formats then say that no height map was given.
            self.depth
                .as_ref()
                .and_then(|d| d.resized(self.original_width, self.original_height).ok())
        } else {
            None
        };
        ExportData {
            model: self,
            full_depth,
        }
    }
}

/// A model prepared for the exporters (see [`Model::export_data`]).
#[derive(Debug)]
pub struct ExportData<'a> {
    model: &'a Model,
    /// The height map resampled to the original size, when that had to be computed.
    full_depth: Option<HeightMap>,
}

impl ExportData<'_> {
    pub fn input(&self) -> ExportInput<'_> {
        ExportInput {
            mesh: &self.model.mesh,
            texture: self.model.texture.as_ref(),
            depth: self.model.raw_depth.as_ref().or(self.full_depth.as_ref()),
            field: self.model.field.as_ref(),
            mask: self.model.mask.as_ref(),
        }
    }
}

/// Everything the ways of making shapes need that is loaded once and shared by every job: the
/// default method and the models.
#[derive(Clone, Debug, Default)]
pub struct ShapeSetup {
    /// The method of jobs whose settings name none.
    pub method: Method,
    /// The 2.5D estimators' setup (Depth Anything when loaded).
    pub depth: DepthSetup,
    /// TripoSR when loaded: one copy of the weights for every slot.
    pub triposr: Option<Arc<TripoSr>>,
    /// Why TripoSR is not loaded, when its weights were found but could not be used (said to
    /// whoever asks for an object).
    pub triposr_unusable: Option<String>,
    /// The masking stage's models (BiRefNet when loaded).
    pub masking: MaskingSetup,
}

impl From<DepthSetup> for ShapeSetup {
    fn from(depth: DepthSetup) -> Self {
        Self {
            method: depth.method.into(),
            depth,
            triposr: None,
            triposr_unusable: None,
            masking: MaskingSetup::default(),
        }
    }
}

impl From<&DepthSetup> for ShapeSetup {
    fn from(depth: &DepthSetup) -> Self {
        depth.clone().into()
    }
}

impl From<DepthMethod> for ShapeSetup {
    fn from(method: DepthMethod) -> Self {
        DepthSetup::from(method).into()
    }
}

impl From<&ShapeSetup> for ShapeSetup {
    fn from(setup: &ShapeSetup) -> Self {
        setup.clone()
    }
}

impl ShapeSetup {
    /// Finds and loads, once, the weights `method` needs, from `weights` or else the Hugging
    /// Face cache (see [`DepthSetup::resolve_on`]; TripoSR: `models--stabilityai--TripoSR`).
    /// Missing or unusable weights of `method` fail here (ERR_WEIGHTS_NOT_FOUND,
    /// ERR_WEIGHTS_INVALID), before any job. With `all_methods`, the models of the other
    /// methods are loaded too when their weights are in the cache, so that jobs may ask for any
    /// method (a server); what is missing or unusable there only leaves its method out, and
    /// says so in the log.
    pub fn resolve_on(
        method: Method,
        weights: Option<&Path>,
        all_methods: bool,
        device: crate::Device,
        slots: usize,
    ) -> Result<Self> {
        let depth = match method.depth() {
            Some(depth) => DepthSetup::resolve_on(depth, weights, device, slots)?,
            None if all_methods => DepthSetup::resolve_on(DepthMethod::Auto, None, device, slots)?,
            None => DepthSetup::from(DepthMethod::Auto),
        };
        let (mut triposr, mut triposr_unusable) = (None, None);
        if method.is_object() {
            let location = match weights {
                Some(path) => models::triposr_weights_at(path)?,
                None => models::find_cached_triposr().ok_or_else(|| {
                    OrfeasError::WeightsNotFound(format!(
                        "no TripoSR weights found; {}",
                        models::how_to_get_triposr()
                    ))
                })?,
            };
            triposr = Some(load_triposr(&location, device)?);
        } else if all_methods {
            if let Some(location) = models::find_cached_triposr() {
                match load_triposr(&location, device) {
                    Ok(model) => triposr = Some(model),
                    Err(e) => {
                        tracing::warn!(
                            "cached TripoSR weights are unusable ({e}); full 3D objects are off"
                        );
                        triposr_unusable = Some(e.to_string());
                    }
                }
            }
        }
        let setup = Self {
            method,
            depth,
            triposr,
            triposr_unusable,
            masking: MaskingSetup::default(),
        };
        // The default method must be runnable before any job starts.
        setup.generator(method)?;
        Ok(setup)
    }

    /// Loads, once, the background remover `background` may use: from `weights`
    /// (`--segmenter-weights`, which must load), else the Hugging Face cache (the lite model
    /// first on the CPU). `birefnet` without weights is ERR_WEIGHTS_NOT_FOUND here, before any
    /// job; for `auto` (and a server, which takes any background per job) cached weights that
    /// do not load only leave BiRefNet out, and say so in the log.
    pub fn with_segmenter(
        mut self,
        background: Background,
        weights: Option<&Path>,
        device: crate::Device,
    ) -> Result<Self> {
        if !matches!(background, Background::Auto | Background::Birefnet) && weights.is_none() {
            return Ok(self);
        }
        let device = device.resolve()?;
        let location = match weights {
            Some(path) => Some(models::segmenter_weights_at(path)?),
            None => models::find_cached_segmenter(device == crate::Device::Cpu),
        };
        match location {
            Some(location) => match models::loaded::get_or_load(
                "birefnet",
                &[location.weights.as_path()],
                device,
                1,
                || Segmenter::load(&location, device),
            ) {
                Ok(segmenter) => self.masking.segmenter = Some(segmenter),
                Err(e) if weights.is_none() && background == Background::Auto => {
                    tracing::warn!(
                        "cached BiRefNet weights {} are unusable ({e}); auto masks without it",
                        location.weights.display()
                    );
                    self.masking.segmenter_unusable = Some(e.to_string());
                }
                Err(e) => return Err(e),
            },
            None if background == Background::Birefnet => {
                return Err(OrfeasError::WeightsNotFound(format!(
                    "no BiRefNet weights found; {}",
                    models::how_to_get_segmenter()
                )))
            }
            None => tracing::debug!("no BiRefNet weights found; auto masks without it"),
        }
        Ok(self)
    }

    /// The methods jobs can run with what is loaded, in the order they are listed to users:
    /// the weight-free ones always, `depth-anything` and `triposr` with their weights.
    pub fn available_methods(&self) -> Vec<Method> {
        Method::ALL
            .into_iter()
            .filter(|m| match m {
                Method::DepthAnything => self.depth.model.is_some(),
                Method::TripoSr => self.triposr.is_some(),
                _ => true,
            })
            .collect()
    }

    /// The way `method` is made, or why it cannot be with what is loaded.
    pub fn generator(&self, method: Method) -> Result<Box<dyn ShapeGenerator>> {
        match method.depth() {
            Some(DepthMethod::DepthAnything) if self.depth.model.is_none() => {
                Err(OrfeasError::WeightsNotFound(format!(
                    "Depth Anything was asked for but not loaded; {}",
                    models::how_to_get_weights()
                )))
            }
            Some(depth) => Ok(Box::new(ReliefGenerator::new(
                depth,
                &self.depth,
                &self.masking,
            ))),
            None => match (&self.triposr, &self.triposr_unusable) {
                (Some(model), _) => Ok(Box::new(ObjectGenerator::new(
                    Arc::clone(model),
                    &self.masking,
                ))),
                (None, Some(why)) => Err(OrfeasError::WeightsNotFound(format!(
                    "method {method} needs TripoSR, whose cached weights could not be used \
                     ({why}); {}",
                    models::how_to_get_triposr()
                ))),
                (None, None) => Err(OrfeasError::WeightsNotFound(format!(
                    "method {method} needs the TripoSR weights, which are not loaded here; {}",
                    models::how_to_get_triposr()
                ))),
            },
        }
    }
}

/// Reports stage changes and in-stage progress (0-100 for the whole job).
pub type StageCallback<'a> = &'a mut dyn FnMut(Stage, f32);

/// Runs every stage up to a finished mesh. Checks `cancel` between stages (and within the long
/// ones). The method is the settings' own, else the setup's.
pub fn image_to_model(
    source: &ImageSource,
    settings: &GenerateSettings,
    setup: impl Into<ShapeSetup>,
    limits: &ImageLimits,
    cancel: &CancelToken,
    on_stage: StageCallback<'_>,
) -> Result<Model> {
    settings.validate()?;
    let setup = setup.into();
    let method = settings.method_or(setup.method);
    settings.check_method(method)?;
    setup.masking.check(settings.background)?;
    let generator: Box<dyn ShapeGenerator> = if cutout_only(settings) {
        Box::new(CutoutGenerator::new(&setup.masking))
    } else {
        setup.generator(method)?
    };
    let mut progress = Progress::new(stage_plan(settings, method), on_stage);
    progress.stage(Stage::Loading);
    let image = load_image(source, limits)?;
    tracing::debug!(input = %image.name, method = generator.name(), "generating");
    generator.generate(image, settings, cancel, &mut progress)
}

/// Writes every requested format as `<dir>/<stem>.<ext>`. On failure, files already written
/// for this model are removed: a failed job leaves nothing behind.
///
/// The token is checked before each format; a cancel that lands while the last one is written,
/// or after this returns, is not seen here. Writing files is not finishing a job: whoever
/// reports the job complete must check the token once more afterwards and remove the files if
/// it was cancelled, as the batch's commit point does (`batch/commit.rs`).
pub fn export_model(
    model: &Model,
    formats: &[MeshFormat],
    dir: &std::path::Path,
    stem: &str,
    cancel: &CancelToken,
) -> Result<Vec<OutputFile>> {
    export_files(model, formats, dir, stem, cancel, &mut |_, _| {})
}

/// [`export_model`], calling `on_written(done, total)` after each format's files are
/// published, so that the `exporting` stage reports progress per format.
pub(crate) fn export_files(
    model: &Model,
    formats: &[MeshFormat],
    dir: &std::path::Path,
    stem: &str,
    cancel: &CancelToken,
    on_written: &mut dyn FnMut(usize, usize),
) -> Result<Vec<OutputFile>> {
    let data = model.export_data(formats);
    let input = data.input();
    let png = export::TexturePng::default();
    let mut written: Vec<OutputFile> = Vec::new();
    for (i, &format) in formats.iter().enumerate() {
        let step = cancel
            .check()
            .and_then(|()| export::save_sharing(format, &input, dir, stem, &png));
        match step {
            Ok(files) => written.extend(files),
            Err(e) => {
                export::remove_outputs(&written);
                return Err(e);
            }
        }
        on_written(i + 1, formats.len());
    }
    Ok(written)
}

/// The stage plan of a job: mask-only jobs (every format a mask) follow
/// [`StagePlan::CUTOUT`], the others their method's plan.
pub(crate) fn stage_plan(settings: &GenerateSettings, method: Method) -> StagePlan {
    if cutout_only(settings) {
        StagePlan::CUTOUT
    } else {
        StagePlan::for_method(method)
    }
}

/// Whether the job asks only for the mask (every format a mask): no shape is made.
fn cutout_only(settings: &GenerateSettings) -> bool {
    settings.formats.iter().all(|f| f.is_mask())
}

/// TripoSR from `location` on `device`, the one already loaded when its files are unchanged
/// (`models::loaded`).
fn load_triposr(location: &models::TripoSrWeights, device: crate::Device) -> Result<Arc<TripoSr>> {
    models::loaded::get_or_load(
        "triposr",
        &[location.config.as_path(), location.weights.as_path()],
        device,
        1,
        || TripoSr::load(location, device).map(Arc::new),
    )
}
