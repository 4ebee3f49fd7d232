//! Depth Anything V2, written against candle-core/candle-nn and checked against Hugging Face
//! transformers' `DepthAnythingForDepthEstimation` (the reference), not candle-transformers.
//!
//! - [`config`]: `config.json` (transformers layout) and the Small/Base/Large presets.
//! - [`DepthAnythingV2`]: the model (no I/O); `forward([B, 3, H, W]) -> [B, H, W]`.
//! - [`weights`]: loading a checkpoint, in the transformers layout (`config.json` +
//!   `model.safetensors`) or the authors' (`depth_anything_v2_vits.pth`, via `original`).
//! - [`preprocess`]: RGB8 → normalised tensor as the reference image processor does it, and
//!   depth back to the image size.
//! - `crate::kernels` (shared with TripoSR): the CPU's fused kernels for attention, linear layers, convolutions and resampling
//!   (other devices run the same function as candle tensor ops).
//!
//! Weights: `depth-anything/Depth-Anything-V2-Small-hf` (Apache-2.0); Base and Large load the
//! same way (the config decides the size) but their weights are CC-BY-NC-4.0.
//!
//! Checked by `tests/depth_anything_model.rs` against transformers 5.24 on a tiny random model
//! (max abs error ~2e-6 at 98×98, 70×126 and batch 2; GELU, LayerNorm eps, align_corners and
//! the bicubic kernel each move the output by more than the 1e-4 tolerance) and against the
//! reference image processor on a real photo (~4e-7).
//!
//! Where the two references disagree, this follows:
//! - resize rule: the HF processor's (the per-axis scale closest to 1 wins), which puts the short
//!   side on 518 for photos larger than 518 but the long side on 518 for smaller ones;
//! - depth back to image size: bicubic (`align_corners=False`) like the HF
//!   `post_process_depth_estimation`, the reference users compare against (the authors'
//!   `infer_image` uses bilinear `align_corners=True`). The model always sees the
//!   full-resolution input, so `depth.npy` matches transformers on the same file.

pub mod config;
mod conv;
mod dinov2;
mod estimator;
mod head;
mod model;
mod neck;
mod original;
pub mod preprocess;
mod resample;
pub mod weights;

pub use config::{DepthAnythingConfig, DepthEstimationType, Dinov2Config};
pub(crate) use estimator::heights_from_raw;
pub use estimator::{DepthAnythingEstimator, Prediction};
pub use model::DepthAnythingV2;
pub use preprocess::{PreprocessOptions, Preprocessed};
/// Also TripoSR's ViT position embeddings (transformers 4.35 interpolates by scale factor).
pub(crate) use resample::bicubic_scale_factor;
pub use weights::{load_model, WEIGHTS_HINT};

use crate::error::OrfeasError;

/// A candle failure during inference: a bug or an exhausted device, reported as internal.
pub(crate) fn internal(e: candle_core::Error) -> OrfeasError {
    // The root only: candle appends a full backtrace when RUST_BACKTRACE is set.
    OrfeasError::Internal(format!("depth-anything: {}", root(&e)))
}

pub(crate) fn invalid(msg: impl Into<String>) -> OrfeasError {
    OrfeasError::InvalidInput(msg.into())
}

/// Peels candle's context/backtrace wrappers off an error (candle appends a backtrace when
/// RUST_BACKTRACE is set).
pub fn root(e: &candle_core::Error) -> &candle_core::Error {
    use candle_core::Error as E;
    match e {
        E::Context { inner, .. } | E::WithPath { inner, .. } | E::WithBacktrace { inner, .. } => {
            root(inner)
        }
        e => e,
    }
}

/// True when building the model failed because the weights lack a tensor or hold one of the
/// wrong shape (an incomplete or mismatched checkpoint, not a device problem).
pub(crate) fn is_weights_mismatch(e: &candle_core::Error) -> bool {
    use candle_core::Error as E;
    matches!(
        root(e),
        E::CannotFindTensor { .. } | E::UnexpectedShape { .. } | E::ShapeMismatchBinaryOp { .. }
    )
}

/// Largest absolute difference between two tensors of the same shape (unit tests of the model
/// and its kernels).
#[cfg(test)]
pub(crate) fn max_abs_diff(a: &candle_core::Tensor, b: &candle_core::Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    (a - b)
        .and_then(|d| d.abs())
        .and_then(|d| d.flatten_all())
        .and_then(|d| d.max(0))
        .and_then(|d| d.to_scalar::<f32>())
        .expect("difference")
}
