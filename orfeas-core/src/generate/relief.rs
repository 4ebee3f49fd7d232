//! The 2.5D path (`relief`, `inflate`, `depth-anything`, `auto`): fit the image to the
//! preset's working size → foreground mask → depth estimator → error-bounded height-field
//! mesh → closed solid (or open surface) → colours from the image.

use std::path::Path;
use std::sync::Arc;

use super::{Progress, ShapeGenerator};
use crate::cancel::CancelToken;
use crate::depth::depth_anything::{heights_from_raw, DepthAnythingEstimator, Prediction};
use crate::depth::{
    replace_non_finite, screen_non_finite, DepthEstimator, HeightMap, InflateEstimator,
    ReliefEstimator,
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
use crate::raster::mask_bits;

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
        let files: Vec<&Path> = std::iter::once(location.weights.as_path())
            .chain(location.config.as_deref())
            .collect();
        let loaded = models::loaded::get_or_load("depth-anything", &files, device, slots, || {
            DepthAnythingEstimator::load(&location.weights, device, slots)
        });
        match loaded {
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
#[derive(Clone)]
pub struct ReliefGenerator {
    method: DepthMethod,
    model: Option<DepthAnythingEstimator>,
    custom: Option<Arc<dyn DepthEstimator>>,
    masking: MaskingSetup,
}

impl std::fmt::Debug for ReliefGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReliefGenerator")
            .field("method", &self.method)
            .field("model", &self.model)
            .field("custom", &self.custom.as_ref().map(|e| e.name()))
            .field("masking", &self.masking)
            .finish()
    }
}

impl ReliefGenerator {
    /// Runs `method` with the models `setup` and `masking` loaded (if any; clones share their
    /// weights).
    pub fn new(method: DepthMethod, setup: &DepthSetup, masking: &MaskingSetup) -> Self {
        Self {
            method,
            model: setup.model.clone(),
            custom: None,
            masking: masking.clone(),
        }
    }

    /// Runs `estimator` (any [`DepthEstimator`], a caller's own included) instead of the
    /// method's: the rest of the path (masking, the screening of non-finite depth, meshing,
    /// the solid) is the same, and results report the estimator's name.
    pub fn with_estimator(mut self, estimator: Arc<dyn DepthEstimator>) -> Self {
        self.custom = Some(estimator);
        self
    }
}

impl ShapeGenerator for ReliefGenerator {
    fn name(&self) -> &'static str {
        match &self.custom {
            Some(estimator) => estimator.name(),
            None => self.method.as_str(),
        }
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
        let estimated = estimate(
            &mut prepared,
            (&depth, self.custom.as_ref()),
            &preset,
            wants_raw,
            cancel,
        )?;
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
        warnings.extend(estimated.warnings);
        let wants_mask = settings.formats.iter().any(|f| f.is_mask());
        let heights = estimated.heights;
        cancel.check()?;

        progress.stage(Stage::Meshing);
        // Screened and at the mask's size for the estimators of this crate; a caller's own
        // estimator that returns another size is told so here.
        let grid = CornerGrid::from_height_map(&heights, &mask).map_err(|e| match e {
            OrfeasError::InvalidInput(detail) => OrfeasError::InvalidInput(format!(
                "{name}: the depth map of `{}`: {detail}",
                estimated.name
            )),
            other => other,
        })?;
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
        mesh.colors = sample_colors(&mesh, &work);
        // The working image's last use: its pixels become the texture without a copy.
        let (working_width, working_height) = (work.width, work.height);
        let texture = Texture {
            width: working_width,
            height: working_height,
            rgba: work.rgba,
        };
        let report = ModelReport {
            method: estimated.name,
            depth: estimated.name,
            mask: mask.source,
            triangles: mesh.triangles.len(),
            watertight,
            warnings,
            shape: ShapeReport::Relief(ReliefReport {
                max_error: hf.max_error,
                working_width,
                working_height,
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
    /// What the user should know about the map (e.g. non-finite values that were replaced).
    pub warnings: Vec<String>,
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
    let estimated = estimate(&mut prepared, (&depth, None), &preset, true, cancel)?;
    let (width, height) = prepared.original_size;
    let raw = match estimated.raw {
        Some(raw) => raw,
        None => estimated.heights.resized(width, height)?,
    };
    Ok(DepthMap {
        width,
        height,
        values: raw.into_values(),
        depth: estimated.name,
        warnings: estimated.warnings,
    })
}

/// The decoded input at full size, its working-size copy and the foreground mask.
struct Prepared {
    /// The masking stage's result, at the size it was made.
    foreground: Foreground,
    /// Kept only until the estimator is chosen: the model reads it, the others drop it at once
    /// (a 12 MP input is ~100 MB decoded). `None` when the input already fits the working
    /// size: `work` is then the input itself, not a copy.
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
    // An image already within the working size is its own working copy: no copy of it.
    let (original, work) = if original.fits_within(preset.working_size) {
        (None, original)
    } else {
        let work = original.fit_within(preset.working_size);
        (Some(original), work)
    };
    let full = original.as_ref().unwrap_or(&work);
    cancel.check()?;
    progress.stage(Stage::Masking);
    let learned = background == Background::Birefnet
        || (background == Background::Auto && masking.segmenter.is_some());
    let foreground = if work.gray16 && background == Background::Auto {
        // A 16-bit gray image is a height map: its zero border is terrain, not backdrop.
        foreground::separate(&work, Background::None, masking, cancel)?
    } else if learned {
        foreground::separate(full, background, masking, cancel)?
    } else {
        foreground::separate(&work, background, masking, cancel)?
    };
    let mask = foreground.at_size(work.width, work.height)?.to_mask();
    cancel.check()?;
    let original_size = (full.width, full.height);
    Ok(Prepared {
        foreground,
        original,
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
    /// What the screening of non-finite values found, when it found any.
    warnings: Vec<String>,
}

/// Runs `custom` when given, else the estimator `depth` chooses, and screens its output.
fn estimate(
    prepared: &mut Prepared,
    (depth, custom): (&DepthSetup, Option<&Arc<dyn DepthEstimator>>),
    preset: &Preset,
    wants_raw: bool,
    cancel: &CancelToken,
) -> Result<Estimated> {
    let estimator = match custom {
        Some(estimator) => Chosen::Classic(Arc::clone(estimator)),
        None => choose_estimator(depth, &prepared.work, &prepared.mask, preset)?,
    };
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
            let prediction = model.predict(original.as_ref().unwrap_or(work), cancel)?;
            drop(original);
            from_prediction(&prediction, work, mask, (*width, *height), wants_raw)
        }
        Chosen::Classic(estimator) => {
            drop(original);
            let mut heights = estimator.estimate(work, mask, cancel)?;
            let warning = screen(&mut heights, mask, &work.name)?;
            Ok(Estimated {
                name: estimator.name(),
                heights,
                raw: None,
                warnings: warning.into_iter().collect(),
            })
        }
    }
}

/// Depth Anything's one prediction, resampled to the working size (screened there, where the
/// mask is) and, when asked for, to the original size.
fn from_prediction(
    prediction: &Prediction,
    work: &LoadedImage,
    mask: &Mask,
    (width, height): (u32, u32),
    wants_raw: bool,
) -> Result<Estimated> {
    let mut at_work = prediction.at_size(work.width, work.height)?;
    let warning = screen(&mut at_work, mask, &work.name)?;
    let heights = heights_from_raw(at_work, mask);
    let raw = if wants_raw {
        // The same prediction: the verdict is the working size's; only the values are
        // replaced here, so that depth.npy holds no NaN either.
        let mut raw = prediction.at_size(width, height)?;
        replace_non_finite(raw.values_mut(), |lowest| lowest);
        Some(raw)
    } else {
        None
    };
    Ok(Estimated {
        name: "depth-anything",
        heights,
        raw,
        warnings: warning.into_iter().collect(),
    })
}

/// Counts the non-finite values of a depth source over the foreground: too many are
/// `ERR_DEPTH`, a few become the map's lowest height and a warning (`depth::finite`).
fn screen(map: &mut HeightMap, mask: &Mask, name: &str) -> Result<Option<String>> {
    let bits = mask_bits(mask, map.width() as usize, map.height() as usize);
    screen_non_finite(
        map.values_mut(),
        Some(&bits),
        name,
        "depth values in the foreground",
        "set to the lowest height",
        |lowest| lowest,
    )
}

/// The estimator a job runs: the model works from the full-resolution image, the weight-free
/// estimators from the working copy.
enum Chosen {
    Model(DepthAnythingEstimator),
    Classic(Arc<dyn DepthEstimator>),
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
        Chosen::Classic(Arc::new(InflateEstimator::new(
            sigma,
            InflateEstimator::DEFAULT_DETAIL,
        )))
    };
    let model = depth
        .model
        .as_ref()
        .map(|m| Chosen::Model(m.with_target(preset.model_size)));
    match (depth.method, model) {
        (DepthMethod::Relief, _) => Ok(Chosen::Classic(Arc::new(ReliefEstimator::new(sigma)))),
        (DepthMethod::Inflate, _) => Ok(inflate()),
        (DepthMethod::DepthAnything, Some(model)) => Ok(model),
        // A 16-bit gray image is already a height map: auto keeps it exact.
        (DepthMethod::Auto, Some(model)) if !image.gray16 => Ok(model),
        (DepthMethod::DepthAnything, None) => Err(OrfeasError::WeightsNotFound(format!(
            "Depth Anything was asked for but not loaded; {}",
            models::how_to_get_weights()
        ))),
        (DepthMethod::Auto, _) if mask.source != MaskSource::None && !image.gray16 => Ok(inflate()),
        (DepthMethod::Auto, _) => Ok(Chosen::Classic(Arc::new(ReliefEstimator::new(sigma)))),
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    /// A dome whose values at `holes` are NaN: a depth source gone partly wrong.
    struct Holes(fn(usize) -> bool);

    impl DepthEstimator for Holes {
        fn name(&self) -> &'static str {
            "holes"
        }

        fn estimate(&self, image: &LoadedImage, _: &Mask, _: &CancelToken) -> Result<HeightMap> {
            let (w, h) = (image.width as usize, image.height as usize);
            let data = (0..w * h)
                .map(|i| {
                    let (x, y) = ((i % w) as f32 / w as f32, (i / w) as f32 / h as f32);
                    let dome = 1.0 - ((x - 0.5).powi(2) + (y - 0.5).powi(2)).min(1.0);
                    if (self.0)(i) {
                        f32::NAN
                    } else {
                        dome
                    }
                })
                .collect();
            HeightMap::new(image.width, image.height, data)
        }
    }

    fn gray(width: u32, height: u32) -> LoadedImage {
        let n = (width * height) as usize;
        LoadedImage {
            name: "holes.png".into(),
            width,
            height,
            rgba: [128, 128, 128, 255].repeat(n),
            luma: vec![0.5; n],
            has_alpha: false,
            gray16: false,
        }
    }

    fn relief_of(holes: fn(usize) -> bool) -> Result<Model> {
        let settings = GenerateSettings {
            quality: crate::Quality::Low,
            background: Background::None,
            ..Default::default()
        };
        ReliefGenerator::new(
            DepthMethod::Relief,
            &DepthSetup::default(),
            &MaskingSetup::default(),
        )
        .with_estimator(Arc::new(Holes(holes)))
        .generate(
            gray(48, 40),
            &settings,
            &CancelToken::new(),
            &mut Progress::new(StagePlan::RELIEF, &mut |_, _| {}),
        )
    }

    #[test]
    fn a_depth_source_with_half_its_values_not_finite_fails_with_err_depth() {
        let e = relief_of(|i| i % 2 == 0).expect_err("half the depth is NaN");
        assert_eq!(e.code(), "ERR_DEPTH");
        assert!(e.to_string().contains("960 of 1920"), "{e}");
    }

    #[test]
    fn a_few_non_finite_depth_values_complete_with_a_warning() {
        let model = relief_of(|i| [100, 700, 1234].contains(&i)).expect("3 of 1920 is tolerated");
        assert_eq!(model.report.method, "holes");
        assert_eq!(
            model.report.warnings,
            [
                "3 of 1920 depth values in the foreground (0.16 %) were not finite (NaN or \
              infinite) and were set to the lowest height"
            ]
        );
        let depth = model.depth.as_ref().expect("heights");
        assert!(depth.values().iter().all(|v| v.is_finite()));
        assert!(model.report.watertight);
        assert!(check_solid(&model.mesh).is_printable());
    }

    fn prediction(width: usize, height: usize, bad: impl Fn(usize) -> bool) -> Prediction {
        let values: Vec<f32> = (0..width * height)
            .map(|i| if bad(i) { f32::NAN } else { (i % width) as f32 })
            .collect();
        Prediction::from_tensor(
            Tensor::from_vec(values, (height, width), &Device::Cpu).expect("tensor"),
        )
    }

    #[test]
    fn the_models_prediction_is_screened_at_the_working_size() {
        let work = gray(100, 80);
        let mask = Mask::full(100, 80);
        // One NaN of the model's output spreads to its bicubic neighbours: still a handful.
        let few = from_prediction(
            &prediction(100, 80, |i| i == 4050),
            &work,
            &mask,
            (200, 160),
            true,
        )
        .expect("a handful");
        let [warning] = few.warnings.as_slice() else {
            panic!("one warning: {:?}", few.warnings)
        };
        assert!(
            warning.contains("depth values in the foreground"),
            "{warning}"
        );
        assert!(few.heights.values().iter().all(|v| v.is_finite()));
        let raw = few.raw.expect("raw depth at the original size");
        assert_eq!((raw.width(), raw.height()), (200, 160));
        assert!(
            raw.values().iter().all(|v| v.is_finite()),
            "depth.npy gets no NaN"
        );

        let half = from_prediction(
            &prediction(100, 80, |i| i % 2 == 1),
            &work,
            &mask,
            (100, 80),
            false,
        );
        assert_eq!(half.map(|_| ()).map_err(|e| e.code()), Err("ERR_DEPTH"));
    }
}
