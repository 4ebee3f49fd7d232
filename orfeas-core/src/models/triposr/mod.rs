//! TripoSR (VAST-AI-Research/TripoSR, MIT; weights `stabilityai/TripoSR`, MIT): one photo of an
//! object → triplanes → a density and colour field → a closed, vertex-coloured mesh.
//!
//! Written against candle-core/candle-nn and checked against the authors' `tsr` package with
//! transformers 4.35.0 (TripoSR's pin) on tiny random weights in the published layout
//! (`tests/fixtures/triposr`, `tests/triposr_model.rs`).
//!
//! - [`config`]: `config.yaml` with OmegaConf's `${...}` interpolation, the authors' class names
//!   and dataclass defaults; the ViT configuration it names (`facebook/dino-vitb16` offline).
//! - `weights`: `model.ckpt` (PyTorch pickle) or `model.safetensors`, every name and shape
//!   checked against the config before any data is read.
//! - [`conditioning_image`]: run.py's preprocessing and the model's antialiased resize.
//! - `vit`: the image tokenizer (transformers 4.35 `ViTModel`).
//! - [`TripoSr`]: the model, shared by every job; scene codes (triplanes) and the field.

mod backbone;
mod batching;
/// The parts at the published size on random weights, for `triposr_bench` only.
#[doc(hidden)]
pub mod bench;
pub mod config;
mod decoder;
mod field;
#[cfg(test)]
mod fixture;
mod omegaconf;
mod preprocess;
mod scene;
mod triplane;
mod vit;
mod weights;

#[cfg(test)]
mod tests;

pub use batching::BatchStats;
pub use config::TripoSrConfig;
pub use preprocess::conditioning_image;
pub use scene::{CondImage, DensityGrid, SceneCode, FOREGROUND_RATIO, ISO_LEVEL};

use candle_core::DType;

use self::backbone::Transformer1D;
use self::batching::JobBatcher;
use self::decoder::FieldDecoder;
use self::triplane::{TriplaneTokenizer, TriplaneUpsample};
use self::vit::DinoVit;
use crate::cancel::CancelToken;
use crate::error::{OrfeasError, Result};
use crate::models::TripoSrWeights;

/// ImageNet statistics, as `DINOSingleImageTokenizer` normalises its input.
const IMAGE_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGE_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Jobs batched together on a GPU: the "up to four queued images" (four slots).
const GPU_MAX_BATCH: usize = 4;
/// How long the first job waits for others before its batch starts: slots that started together
/// reach the backbone within a few milliseconds of each other, and a GPU forward takes ~100 ms.
const GPU_GATHER_WINDOW: std::time::Duration = std::time::Duration::from_millis(25);

/// `(image - mean) / std` as `[B, 3, S, S]` (channels first) for conditioning images of one
/// size, computed in f32 as the tokenizer does it.
fn normalised_pixels(
    images: &[&CondImage],
    device: &candle_core::Device,
) -> candle_core::Result<candle_core::Tensor> {
    let size = images.first().map_or(0, |i| i.size as usize);
    let plane = size * size;
    let mut values = vec![0f32; images.len() * 3 * plane];
    for (b, image) in images.iter().enumerate() {
        if image.size as usize != size || image.rgb.len() != 3 * plane {
            candle_core::bail!("conditioning images of different sizes in one batch");
        }
        let out = &mut values[b * 3 * plane..(b + 1) * 3 * plane];
        for (p, rgb) in image.rgb.chunks_exact(3).enumerate() {
            for c in 0..3 {
                out[c * plane + p] = (rgb[c] - IMAGE_MEAN[c]) / IMAGE_STD[c];
            }
        }
    }
    candle_core::Tensor::from_vec(values, (images.len(), 3, size, size), device)
}

/// TripoSR, loaded once and shared by every job (one copy of the weights: all inference takes
/// `&self`).
pub struct TripoSr {
    config: TripoSrConfig,
    device: candle_core::Device,
    vit: DinoVit,
    tokenizer: TriplaneTokenizer,
    backbone: Transformer1D,
    post_processor: TriplaneUpsample,
    decoder: FieldDecoder,
    /// Concurrent jobs' forwards merged into batches (on by default on CUDA only).
    batcher: Option<JobBatcher>,
}

// The pipeline shares one instance between its slots and threads.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<TripoSr>();
};

impl std::fmt::Debug for TripoSr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TripoSr")
            .field("config", &self.config)
            .field("device", &self.device.location())
            .finish_non_exhaustive()
    }
}

impl TripoSr {
    /// Reads `config.yaml` and the checkpoint, checks every tensor's name and shape against the
    /// configuration before reading any data (ERR_WEIGHTS_INVALID naming the file and the first
    /// bad tensor), and builds the model on `device` (`Auto`: CUDA when built in and present).
    pub fn load(location: &TripoSrWeights, device: crate::Device) -> Result<Self> {
        let config = TripoSrConfig::from_file(&location.config)?;
        let device = device.resolve()?.candle_device()?;
        let vb = weights::var_builder(&location.weights, &config, &device)?;
        let build = |e: candle_core::Error| OrfeasError::WeightsInvalid {
            path: location.weights.clone(),
            detail: format!("the model cannot be built from it: {}", root(&e)),
        };
        Ok(Self {
            vit: DinoVit::new(&config.vit, vb.pp("image_tokenizer").pp("model")).map_err(build)?,
            tokenizer: TriplaneTokenizer::new(&config.tokenizer, vb.pp("tokenizer"))
                .map_err(build)?,
            backbone: Transformer1D::new(&config.backbone, vb.pp("backbone")).map_err(build)?,
            post_processor: TriplaneUpsample::new(&config.post_processor, vb.pp("post_processor"))
                .map_err(build)?,
            decoder: FieldDecoder::new(
                &config.decoder,
                &config.renderer,
                vb.pp("decoder"),
                &device,
            )
            .map_err(build)?,
            batcher: device
                .is_cuda()
                .then(|| JobBatcher::new(GPU_MAX_BATCH, GPU_GATHER_WINDOW)),
            config,
            device,
        })
    }

    /// Serves jobs that call [`Self::scene_code`] at about the same time with one batched
    /// forward of up to `max_batch` images, the first waiting at most `window` for the others.
    /// `max_batch` below 2 turns batching off. On by default on CUDA (4 images, 25 ms); on the
    /// CPU a batch is no faster than its images in turn, so it is off there.
    pub fn with_job_batching(mut self, max_batch: usize, window: std::time::Duration) -> Self {
        self.batcher = (max_batch >= 2).then(|| JobBatcher::new(max_batch, window));
        self
    }

    /// What batching has done so far (`None` when it is off).
    pub fn batch_stats(&self) -> Option<BatchStats> {
        self.batcher.as_ref().map(JobBatcher::stats)
    }

    /// The side of the conditioning image the model takes (`cond_image_size`, 512 published).
    pub fn cond_image_size(&self) -> u32 {
        self.config.cond_image_size as u32
    }

    /// Half the side of the cube the field lives in (`renderer.radius`, 0.87 published).
    pub fn radius(&self) -> f32 {
        self.config.renderer.radius
    }

    /// The configuration the model was built from.
    pub fn config(&self) -> &TripoSrConfig {
        &self.config
    }

    /// `TSR.forward` for one conditioning image: the image tokens, the backbone, the
    /// post-processor's triplanes. `on_progress` gets the fraction done after every ViT layer
    /// and backbone block; `cancel` is checked between them. With job batching on, jobs that
    /// arrive together share one batched forward (see [`Self::with_job_batching`]).
    pub fn scene_code(
        &self,
        image: &CondImage,
        cancel: &CancelToken,
        on_progress: &mut dyn FnMut(f32),
    ) -> Result<SceneCode> {
        if let Some(batcher) = &self.batcher {
            // Checked here, not in the batch: one wrong image must not fail its companions.
            self.check_size(image)?;
            return batcher.scene_code(
                &|images, cancel, progress| self.scene_codes(images, cancel, progress),
                image,
                cancel,
                on_progress,
            );
        }
        let mut codes = self.scene_codes(&[image], cancel, on_progress)?;
        codes
            .pop()
            .ok_or_else(|| OrfeasError::Internal("triposr: no scene code".to_owned()))
    }

    /// [`Self::scene_code`] for several images at once (one batch through the ViT and the
    /// backbone: what a GPU wants; on the CPU it is no faster than one at a time).
    pub fn scene_codes(
        &self,
        images: &[&CondImage],
        cancel: &CancelToken,
        on_progress: &mut dyn FnMut(f32),
    ) -> Result<Vec<SceneCode>> {
        for image in images {
            self.check_size(image)?;
        }
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let steps = (self.vit.num_layers() + self.backbone.num_layers() + 1) as f32;
        let mut done = 0f32;
        let mut step = |on_progress: &mut dyn FnMut(f32)| {
            done += 1.0;
            on_progress(done / steps);
        };
        let pixels = normalised_pixels(images, &self.device).map_err(internal)?;
        let mut x = self.vit.embed(&pixels).map_err(internal)?;
        for i in 0..self.vit.num_layers() {
            cancel.check()?;
            x = self.vit.layer(i, &x).map_err(internal)?;
            step(on_progress);
        }
        let image_tokens = self.vit.finish(&x).map_err(internal)?;
        let tokens = self.tokenizer.tokens(images.len()).map_err(internal)?;
        let mut hidden = self.backbone.project_in(&tokens).map_err(internal)?;
        for i in 0..self.backbone.num_layers() {
            cancel.check()?;
            hidden = self
                .backbone
                .block(i, &hidden, &image_tokens)
                .map_err(internal)?;
            step(on_progress);
        }
        cancel.check()?;
        let tokens = self
            .backbone
            .project_out(&hidden, &tokens)
            .map_err(internal)?;
        let planes = self
            .post_processor
            .forward(&self.tokenizer.detokenize(&tokens).map_err(internal)?)
            .map_err(internal)?;
        step(on_progress);
        let (b, three, channels, resolution, _) = planes.dims5().map_err(internal)?;
        debug_assert_eq!((b, three), (images.len(), 3));
        (0..b)
            .map(|i| {
                let values = planes
                    .get(i)
                    .and_then(|p| p.to_dtype(DType::F32))
                    .and_then(|p| p.flatten_all())
                    .and_then(|p| p.to_vec1::<f32>())
                    .map_err(internal)?;
                Ok(SceneCode {
                    channels,
                    resolution,
                    values,
                })
            })
            .collect()
    }

    fn check_size(&self, image: &CondImage) -> Result<()> {
        let size = self.cond_image_size();
        if image.size != size || image.rgb.len() != 3 * (size as usize).pow(2) {
            return Err(OrfeasError::InvalidInput(format!(
                "TripoSR takes {size}×{size} conditioning images; got {}×{} with {} values",
                image.size,
                image.size,
                image.rgb.len()
            )));
        }
        Ok(())
    }

    /// The activated density (`query_triplane(...)["density_act"]`) at points in the renderer
    /// frame, `(-radius, radius)³`.
    pub fn density(&self, code: &SceneCode, points: &[[f32; 3]]) -> Result<Vec<f32>> {
        self.decoder.density(code, points)
    }

    /// The colour (`query_triplane(...)["color"]`, in [0, 1]) at points in the renderer frame.
    pub fn color(&self, code: &SceneCode, points: &[[f32; 3]]) -> Result<Vec<[f32; 3]>> {
        self.decoder.color(code, points)
    }

    /// The dense `resolution³` density field on `extract_mesh`'s grid, in chunks (bounded
    /// memory), `on_progress` after each and `cancel` checked between them.
    pub fn density_grid(
        &self,
        code: &SceneCode,
        resolution: usize,
        cancel: &CancelToken,
        on_progress: &mut dyn FnMut(f32),
    ) -> Result<DensityGrid> {
        self.decoder
            .density_grid(code, resolution, cancel, on_progress)
    }
}

/// A candle failure while running the model: a bug or an exhausted device.
fn internal(e: candle_core::Error) -> OrfeasError {
    OrfeasError::Internal(format!("triposr: {}", root(&e)))
}

fn root(e: &candle_core::Error) -> &candle_core::Error {
    crate::depth::depth_anything::root(e)
}
