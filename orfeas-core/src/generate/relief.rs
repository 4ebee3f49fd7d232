//! The 2.5D path (`relief`, `inflate`, `depth-anything`, `auto`): fit the image to the
//! preset's working size → foreground mask → depth estimator → error-bounded height-field
//! mesh → closed solid (or open surface) → colours from the image.

use std::path::Path;

use super::{Progress, ShapeGenerator};
use crate::cancel::CancelToken;
use crate::depth::depth_anything::{heights_from_raw, DepthAnythingEstimator};
use crate::depth::{
    settle_non_finite, DepthEstimator, HeightMap, InflateEstimator, ReliefEstimator,
};
use crate::error::{OrfeasError, Result};
use crate::foreground::{self, Background, Foreground, MaskingSetup};
use crate::image::{load_image, ImageLimits, ImageSource, LoadedImage};
use crate::mask::{Mask, MaskSource};
use crate::mesh::{
    build_solid, build_surface, check_solid, triangulate_heightfield, CornerGrid, Mesh,
    MeshingLimits, Scale, Texture,
};
use crate::models;
use crate::options::{DepthMethod, GenerateSettings, Preset};
use crate::pipeline::{Model, ModelReport, ReliefReport, ShapeReport};
use crate::progress::{Stage, StagePlan};

/// The depth method plus, when Depth Anything can run, the loaded model (shared by clones).
#[derive(Clone, Debug, Default)]
pub struct DepthSetup {
    pub method: DepthMethod,
    pub model: Option<DepthAnythingEstimator>,
}

impl From<DepthMethod> for DepthSetup {
    fn from(method: DepthMethod) -> Self {
        Self {
            method,
            model: None,
        }
    }
}

impl From<&DepthSetup> for DepthSetup {
    fn from(setup: &DepthSetup) -> Self {
        setup.clone()
    }
}

impl DepthSetup {
    /// Finds and loads the weights the method needs, once, before any job runs.
    ///
    /// `depth-anything` needs weights (from `weights`, else the Hugging Face cache) and fails
    /// with `ERR_WEIGHTS_NOT_FOUND` saying how to get them. `auto` uses weights that are
    /// present (explicit ones must load) and otherwise falls back to the weight-free
    /// estimators, saying so in the log.
    pub fn resolve(method: DepthMethod, weights: Option<&Path>) -> Result<Self> {
        Self::resolve_on(method, weights, crate::Device::Cpu, 1)
    }

    /// [`resolve`](Self::resolve) with the model placed on `device` (already resolved) for
    /// `slots` concurrent jobs: one copy per slot, each on its own CUDA stream.
    pub fn resolve_on(
        method: DepthMethod,
        weights: Option<&Path>,
        device: crate::Device,
        slots: usize,
    ) -> Result<Self> {
        let wants_model = matches!(method, DepthMethod::DepthAnything | DepthMethod::Auto);
        if !wants_model {
            return Ok(method.into());
        }
        let location = match weights {
            Some(path) => Some(models::weights_at(path)?),
            None => models::find_cached_weights(),
        };
        let Some(location) = location else {
            if method == DepthMethod::DepthAnything {
                return Err(OrfeasError::WeightsNotFound(format!(
                    "no Depth Anything weights found; {}",
                    models::how_to_get_weights()
                )));
            }
            tracing::info!("no Depth Anything weights found; auto uses the weight-free estimators");
            return Ok(method.into());
        };
        match DepthAnythingEstimator::load(&location.weights, device, slots) {
            Ok(model) => Ok(Self {
                method,
                model: Some(model),
            }),
            Err(e) if method == DepthMethod::Auto && weights.is_none() => {
                tracing::warn!(
                    "cached Depth Anything weights {} are unusable ({e}); auto uses the weight-free estimators",
                    location.weights.display()
                );
                Ok(method.into())
            }
            Err(e) => Err(e),
        }
    }
}

/// The 2.5D path: one of the depth estimators, then the height field, then the solid.
#[derive(Clone, Debug)]
pub struct ReliefGenerator {
    method: DepthMethod,
    model: Option<DepthAnythingEstimator>,
    masking: MaskingSetup,
}

impl ReliefGenerator {
    /// Runs `method` with the models `setup` and `masking` loaded (if any; clones share their
    /// weights).
    pub fn new(method: DepthMethod, setup: &DepthSetup, masking: &MaskingSetup) -> Self {
        Self {
            method,
            model: setup.model.clone(),
            masking: masking.clone(),
        }
    }
}

impl ShapeGenerator for ReliefGenerator {
    fn name(&self) -> &'static str {
        self.method.as_str()
    }

    fn generate(
        &self,
        original: LoadedImage,
        settings: &GenerateSettings,
        cancel: &CancelToken,
        progress: &mut Progress<'_>,
    ) -> Result<Model> {
        let depth = DepthSetup {
            method: self.method,
            model: self.model.clone(),
        };
        let preset = settings.effective_preset();
        let name = original.name.clone();
        let wants_raw = settings.formats.iter().any(|f| f.is_depth());

        let mut prepared = prepare(
            original,
            &preset,
            (settings.background, &self.masking),
            cancel,
            progress,
        )?;
        let (original_width, original_height) = prepared.original_size;

        progress.stage(Stage::DepthEstimation);
        let estimated = estimate(&mut prepared, &depth, &preset, wants_raw, cancel)?;
        let Prepared {
            work,
            mask,
            foreground,
            ..
        } = prepared;
        let mut warnings = Vec::new();
        if let Some(missing) = &foreground.missing {
            warnings.push(format!("{missing}; the relief is made of the whole image"));
        }
        warnings.extend(estimated.warning.clone());
        let wants_mask = settings.formats.iter().any(|f| f.is_mask());
        let heights = estimated.heights;
        cancel.check()?;

        progress.stage(Stage::Meshing);
        let grid = CornerGrid::from_height_map(&heights, &mask)?;
        let limits = MeshingLimits {
            max_error: preset.max_error,
            max_triangles: preset.max_triangles,
        };
        let hf = triangulate_heightfield(&grid, &limits, cancel)
            .map_err(|e| name_meshing_error(e, &name))?;
        let scale = Scale {
            mm_per_cell: settings.width_mm / work.width as f32,
            depth_mm: settings.depth_mm,
            base_mm: settings.base_mm,
        };
        let mut mesh = if settings.solid {
            build_solid(&hf, scale)?
        } else {
            build_surface(&hf, scale)
        };
        let watertight = if settings.solid {
            let check = check_solid(&mesh);
            if !check.is_printable() {
                // A bug, not a property of the input: refuse to hand out a broken solid.
                return Err(OrfeasError::Internal(format!(
                    "{name}: generated solid failed the printability check: {check:?}"
                )));
            }
            true
        } else {
            false
        };
        let texture = Texture {
            width: work.width,
            height: work.height,
            rgba: work.rgba.clone(),
        };
        mesh.colors = sample_colors(&mesh, &work);
        let report = ModelReport {
            method: estimated.name,
            depth: estimated.name,
            mask: mask.source,
            triangles: mesh.triangles.len(),
            watertight,
            warnings,
            shape: ShapeReport::Relief(ReliefReport {
                max_error: hf.max_error,
                working_width: work.width,
                working_height: work.height,
            }),
        };
        Ok(Model {
            mesh,
            texture: Some(texture),
            depth: Some(heights),
            raw_depth: estimated.raw,
            field: None,
            mask: if wants_mask {
                Some(foreground.at_size(original_width, original_height)?)
            } else {
                None
            },
            original_width,
            original_height,
            report,
        })
    }
}

/// The raw depth of one image at its original size.
#[derive(Clone, Debug, PartialEq)]
pub struct DepthMap {
    pub width: u32,
    pub height: u32,
    /// Row-major, `width * height` values: Depth Anything's relative inverse depth as the model
    /// predicts it (unnormalised, larger = closer), or the weight-free estimators' heights in [0, 1].
    pub values: Vec<f32>,
    /// The estimator that ran (`relief`, `inflate`, `depth-anything`); never `auto`.
    pub depth: &'static str,
}

/// Loads, masks and estimates depth without meshing: what `depth.npy` holds, for callers that
/// want the map itself (the Python and Node `estimate_depth`).
pub fn estimate_depth(
    source: &ImageSource,
    settings: &GenerateSettings,
    depth: impl Into<DepthSetup>,
    limits: &ImageLimits,
    cancel: &CancelToken,
) -> Result<DepthMap> {
    settings.validate()?;
    let depth = depth.into();
    let preset = settings.effective_preset();
    let original = load_image(source, limits)?;
    let mut prepared = prepare(
        original,
        &preset,
        (settings.background, &MaskingSetup::default()),
        cancel,
        &mut Progress::new(StagePlan::RELIEF, &mut |_, _| {}),
    )?;
    let estimated = estimate(&mut prepared, &depth, &preset, true, cancel)?;
    let (width, height) = prepared.original_size;
    let raw = estimated
        .raw
        .unwrap_or_else(|| estimated.heights.resized(width, height));
    Ok(DepthMap {
        width,
        height,
        values: raw.data,
        depth: estimated.name,
    })
}

/// The decoded input at full size, its working-size copy and the foreground mask.
struct Prepared {
    /// The masking stage's result, at the size it was made.
    foreground: Foreground,
    /// Kept only until the estimator is chosen: the model reads it, the others drop it at once
    /// (a 12 MP input is ~100 MB decoded).
    original: Option<LoadedImage>,
    original_size: (u32, u32),
    work: LoadedImage,
    mask: Mask,
}

/// Fits the image to the working size and separates its foreground. The estimates (alpha,
/// border) work on the working-size copy, as the meshers do; BiRefNet sees the original, as
/// its authors' example does, and its mask is brought to the working size.
fn prepare(
    original: LoadedImage,
    preset: &Preset,
    (background, masking): (Background, &MaskingSetup),
    cancel: &CancelToken,
    progress: &mut Progress<'_>,
) -> Result<Prepared> {
    let work = original.fit_within(preset.working_size);
    cancel.check()?;
    progress.stage(Stage::Masking);
    let learned = background == Background::Birefnet
        || (background == Background::Auto && masking.segmenter.is_some());
    let foreground = if work.gray16 && background == Background::Auto {
        // A 16-bit gray image is a height map: its zero border is terrain, not backdrop.
        foreground::separate(&work, Background::None, masking, cancel)?
    } else if learned {
        foreground::separate(&original, background, masking, cancel)?
    } else {
        foreground::separate(&work, background, masking, cancel)?
    };
    let mask = foreground.at_size(work.width, work.height)?.to_mask();
    cancel.check()?;
    let original_size = (original.width, original.height);
    Ok(Prepared {
        foreground,
        original: Some(original),
        original_size,
        work,
        mask,
    })
}

struct Estimated {
    name: &'static str,
    /// Heights in [0, 1] at working size, for the mesher.
    heights: HeightMap,
    /// The estimator's unnormalised output at the original size, when it has one of its own
    /// and it was asked for.
    raw: Option<HeightMap>,
    /// How many depth values were not finite, when some were (see `settle_non_finite`).
    warning: Option<String>,
}

fn estimate(
    prepared: &mut Prepared,
    depth: &DepthSetup,
    preset: &Preset,
    wants_raw: bool,
    cancel: &CancelToken,
) -> Result<Estimated> {
    let estimator = choose_estimator(depth, &prepared.work, &prepared.mask, preset)?;
    let original = prepared.original.take();
    let Prepared {
        work,
        mask,
        original_size: (width, height),
        ..
    } = prepared;
    tracing::info!(input = %work.name, depth = estimator.name(), mask = ?mask.source, "estimating depth");
    match estimator {
        Chosen::Model(model) => {
            // The model sees the full-resolution input, as the reference processor does, and
            // its one prediction is resampled to both sizes.
            let original = original.ok_or_else(|| {
                OrfeasError::Internal("the full-size image was already released".into())
            })?;
            let prediction = model.predict(&original, cancel)?;
            drop(original);
            let mut at_work = prediction.at_size(work.width, work.height)?;
            let warning = settle_non_finite(&mut at_work.data, mask, &work.name, "depth-anything")?;
            let heights = heights_from_raw(at_work, mask);
            let raw = if wants_raw {
                let mut raw = prediction.at_size(*width, *height)?;
                raw.data
                    .iter_mut()
                    .filter(|v| !v.is_finite())
                    .for_each(|v| *v = 0.0);
                Some(raw)
            } else {
                None
            };
            Ok(Estimated {
                name: "depth-anything",
                heights,
                raw,
                warning,
            })
        }
        Chosen::Classic(estimator) => {
            drop(original);
            let mut heights = estimator.estimate(work, mask, cancel)?;
            let warning = settle_non_finite(&mut heights.data, mask, &work.name, estimator.name())?;
            Ok(Estimated {
                name: estimator.name(),
                heights,
                raw: None,
                warning,
            })
        }
    }
}

/// The estimator a job runs: the model works from the full-resolution image, the weight-free
/// estimators from the working copy.
enum Chosen {
    Model(DepthAnythingEstimator),
    Classic(Box<dyn DepthEstimator>),
}

impl Chosen {
    fn name(&self) -> &'static str {
        match self {
            Self::Model(model) => model.name(),
            Self::Classic(estimator) => estimator.name(),
        }
    }
}

/// `auto` as docs/reference.md §1 defines it; explicit choices are honoured or refused.
fn choose_estimator(
    depth: &DepthSetup,
    image: &LoadedImage,
    mask: &Mask,
    preset: &Preset,
) -> Result<Chosen> {
    let sigma = preset.smoothing_sigma;
    let inflate = || {
        Chosen::Classic(Box::new(InflateEstimator::new(
            sigma,
            InflateEstimator::DEFAULT_DETAIL,
        )))
    };
    let model = depth
        .model
        .as_ref()
        .map(|m| Chosen::Model(m.with_target(preset.model_size)));
    match (depth.method, model) {
        (DepthMethod::Relief, _) => Ok(Chosen::Classic(Box::new(ReliefEstimator::new(sigma)))),
        (DepthMethod::Inflate, _) => Ok(inflate()),
        (DepthMethod::DepthAnything, Some(model)) => Ok(model),
        // A 16-bit gray image is already a height map: auto keeps it exact.
        (DepthMethod::Auto, Some(model)) if !image.gray16 => Ok(model),
        (DepthMethod::DepthAnything, None) => Err(OrfeasError::WeightsNotFound(format!(
            "Depth Anything was asked for but not loaded; {}",
            models::how_to_get_weights()
        ))),
        (DepthMethod::Auto, _) if mask.source != MaskSource::None && !image.gray16 => Ok(inflate()),
        (DepthMethod::Auto, _) => Ok(Chosen::Classic(Box::new(ReliefEstimator::new(sigma)))),
    }
}

fn name_meshing_error(e: OrfeasError, name: &str) -> OrfeasError {
    match e {
        OrfeasError::Meshing { detail, .. } => OrfeasError::Meshing {
            name: name.to_owned(),
            detail,
        },
        other => other,
    }
}

/// Per-vertex colours from the texture (nearest pixel), for formats without textures (PLY).
fn sample_colors(mesh: &Mesh, image: &LoadedImage) -> Vec<[u8; 3]> {
    let (w, h) = (image.width as f32, image.height as f32);
    mesh.uvs
        .iter()
        .map(|&[u, v]| {
            let x = ((u * w) as u32).min(image.width - 1) as usize;
            let y = ((v * h) as u32).min(image.height - 1) as usize;
            let i = (y * image.width as usize + x) * 4;
            [image.rgba[i], image.rgba[i + 1], image.rgba[i + 2]]
        })
        .collect()
}
