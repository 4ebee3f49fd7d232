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

pub mod config;
mod omegaconf;
mod preprocess;
mod scene;
mod vit;
mod weights;

#[cfg(test)]
mod tests;

pub use config::TripoSrConfig;
pub use preprocess::conditioning_image;
pub use scene::{CondImage, DensityGrid, SceneCode, FOREGROUND_RATIO, ISO_LEVEL};

/// ImageNet statistics, as `DINOSingleImageTokenizer` normalises its input.
const IMAGE_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGE_STD: [f32; 3] = [0.229, 0.224, 0.225];

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
