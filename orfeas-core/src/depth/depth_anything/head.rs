//! The depth head (keys under `head.`): conv 3×3 → bilinear to the input resolution → conv 3×3
//! → ReLU → conv 1×1 → ReLU (relative) or sigmoid (metric) → × `max_depth`.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::config::{DepthAnythingConfig, DepthEstimationType};
use super::conv::Conv;
use super::resample;

#[derive(Debug)]
pub struct Head {
    conv1: Conv,
    conv2: Conv,
    /// 1×1 with padding 0, so the output is exactly `14h × 14w` (candle-transformers pads it
    /// by 1 and returns 520 × 520 for a 518 × 518 input).
    conv3: Conv,
    kind: DepthEstimationType,
    max_depth: f64,
    patch_size: usize,
}

impl Head {
    pub fn new(cfg: &DepthAnythingConfig, vb: VarBuilder) -> Result<Self> {
        let f = cfg.fusion_hidden_size;
        Ok(Self {
            conv1: Conv::new(f, f / 2, 3, true, vb.pp("conv1"))?,
            conv2: Conv::new(f / 2, cfg.head_hidden_size, 3, true, vb.pp("conv2"))?,
            conv3: Conv::new(cfg.head_hidden_size, 1, 1, true, vb.pp("conv3"))?,
            kind: cfg.depth_estimation_type,
            max_depth: cfg.max_depth(),
            patch_size: cfg.patch_size,
        })
    }

    /// `x`: the selected fused map `[B, F, H', W']`; returns `[B, 14h, 14w]`.
    pub fn forward(&self, x: &Tensor, h: usize, w: usize) -> Result<Tensor> {
        let x = self.conv1.forward(x)?;
        // align_corners=True because the reference uses it (candle-transformers: nearest).
        let x = resample::bilinear(&x, h * self.patch_size, w * self.patch_size, true)?;
        let x = self.conv2.forward_with(&x, false, true)?;
        let x = match self.kind {
            DepthEstimationType::Relative => self.conv3.forward_with(&x, false, true)?,
            DepthEstimationType::Metric => candle_nn::ops::sigmoid(&self.conv3.forward(&x)?)?,
        };
        let x = if self.max_depth == 1.0 {
            x
        } else {
            (x * self.max_depth)?
        };
        x.squeeze(1)
    }
}
