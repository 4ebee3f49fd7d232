//! `DepthAnythingForDepthEstimation`: DINOv2 backbone + DPT neck + depth head.
//!
//! Built from a `VarBuilder` whose paths are the transformers checkpoint keys; no I/O here
//! (loading lives in `weights.rs`, image handling in `preprocess.rs`).

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use super::config::DepthAnythingConfig;
use super::dinov2::Dinov2Backbone;
use super::head::Head;
use super::neck::Neck;
use super::{internal, invalid, is_weights_mismatch};
use crate::error::{OrfeasError, Result};

/// Depth Anything (V1 and V2 share the architecture), faithful to transformers.
///
/// `Send + Sync`: batch slots share one instance behind an `Arc` (tensors are reference counted
/// and immutable; the position-embedding cache sits behind a mutex).
#[derive(Debug)]
pub struct DepthAnythingV2 {
    config: DepthAnythingConfig,
    backbone: Dinov2Backbone,
    neck: Neck,
    head: Head,
    head_index: usize,
    device: Device,
    dtype: DType,
}

impl DepthAnythingV2 {
    /// Builds the model; `vb` is rooted at the checkpoint root (keys `backbone.…`, `neck.…`,
    /// `head.…`). Fails when the configuration is not runnable or a tensor is missing or has
    /// the wrong shape.
    pub fn new(config: DepthAnythingConfig, vb: VarBuilder) -> Result<Self> {
        config
            .validate()
            .map_err(|e| invalid(format!("depth-anything config: {e}")))?;
        let out = config
            .backbone_config
            .resolved_out_indices()
            .map_err(invalid)?;
        let backbone = Dinov2Backbone::new(&config.backbone_config, out, vb.pp("backbone"))
            .map_err(build_error)?;
        let neck = Neck::new(&config, vb.pp("neck")).map_err(build_error)?;
        let head = Head::new(&config, vb.pp("head")).map_err(build_error)?;
        let n = config.neck_hidden_sizes.len() as i64;
        let head_index = config.head_in_index.rem_euclid(n) as usize;
        Ok(Self {
            device: vb.device().clone(),
            dtype: vb.dtype(),
            config,
            backbone,
            neck,
            head,
            head_index,
        })
    }

    pub fn config(&self) -> &DepthAnythingConfig {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The parameter dtype (`F32` unless loaded otherwise).
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// `pixels`: normalised images `[B, 3, H, W]`, H and W multiples of the patch size (14).
    /// Returns the predicted relative inverse depth (larger = closer) `[B, H, W]`, in the
    /// parameter dtype. The input is cast to that dtype first, as the reference does.
    pub fn forward(&self, pixels: &Tensor) -> Result<Tensor> {
        let (_, c, height, width) = pixels
            .dims4()
            .map_err(|e| invalid(format!("pixels: {e}")))?;
        let p = self.config.patch_size;
        if c != self.config.backbone_config.num_channels
            || height % p != 0
            || width % p != 0
            || height == 0
            || width == 0
        {
            return Err(invalid(format!(
                "depth-anything input must be [B, {}, H, W] with H, W positive multiples of {p}, got {:?}",
                self.config.backbone_config.num_channels,
                pixels.dims()
            )));
        }
        let (h, w) = (height / p, width / p);
        let run = || -> candle_core::Result<Tensor> {
            let pixels = pixels.to_dtype(self.dtype)?;
            let hidden = self.backbone.forward(&pixels)?;
            let fused = self.neck.forward(&hidden, h, w)?;
            self.head.forward(&fused[self.head_index], h, w)
        };
        run().map_err(internal)
    }
}

/// A missing or mis-shaped tensor means the checkpoint is incomplete or not the one its
/// config describes: reported as missing weights, with the tensor named.
fn build_error(e: candle_core::Error) -> OrfeasError {
    if is_weights_mismatch(&e) {
        OrfeasError::WeightsNotFound(format!(
            "depth-anything checkpoint incomplete or not matching its config: {}",
            super::root(&e)
        ))
    } else {
        internal(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generic tensor-op path (what CUDA runs) and the CPU kernels both match the
    /// transformers reference outputs of the tiny fixture, square, non-square and batch 2.
    #[test]
    fn generic_ops_and_cpu_kernels_both_match_the_reference() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/depth_anything");
        let model =
            super::super::load_model(&dir.join("tiny"), &Device::Cpu).expect("tiny fixture");
        let cases = candle_core::safetensors::load(dir.join("cases.safetensors"), &Device::Cpu)
            .expect("cases");
        for name in ["square", "wide", "batch"] {
            let (input, want) = (
                &cases[&format!("{name}_in")],
                &cases[&format!("{name}_out")],
            );
            let fused = model.forward(input).expect("fused");
            let generic =
                crate::kernels::with_kernels_disabled(|| model.forward(input)).expect("generic");
            for (path, got) in [("cpu kernels", fused), ("generic ops", generic)] {
                let err = super::super::max_abs_diff(&got, want);
                assert!(err <= 1e-4, "{name}, {path}: max abs error {err}");
            }
        }
    }

    #[test]
    fn model_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<DepthAnythingV2>();
    }
}
