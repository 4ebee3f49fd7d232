//! The building blocks BiRefNet's decoder repeats: convolutions with their BatchNorm folded in,
//! bilinear resizing with `align_corners=True`, and the image cut into patches.

use candle_core::{DType, Device, Module, Tensor};

use super::weights::Weights;
use crate::error::Result;
use crate::kernels::{self, deform_conv2d, DeformGeometry};

/// BatchNorm2d's epsilon, as the authors leave it.
const BN_EPS: f64 = 1e-5;

/// A `k × k`, stride 1, padding `k / 2` convolution (an `nn.Conv2d`), with the BatchNorm that
/// follows it, when there is one, folded into weight and bias (inference uses the running
/// statistics, so the pair is one affine map per output channel).
#[derive(Debug)]
pub(super) struct Conv {
    /// `[c_out, c_in, k, k]`.
    weight: Tensor,
    /// `[c_out, c_in · k²]`, for the CPU kernels.
    flat: Tensor,
    bias: Tensor,
    kernel: usize,
    pub(super) c_in: usize,
    pub(super) c_out: usize,
}

impl Conv {
    /// Loads `{prefix}.weight` (and `.bias` when present) and folds `{bn}` when given.
    pub(super) fn load(w: &Weights, prefix: &str, bn: Option<&str>) -> Result<Self> {
        let weight = w.get(&format!("{prefix}.weight"), 4)?;
        let (c_out, _, kh, kw) = weight.dims4().map_err(|e| w.invalid(e.to_string()))?;
        if kh != kw || kh % 2 == 0 {
            return Err(w.invalid(format!(
                "tensor {prefix}.weight is a {kh}×{kw} kernel; BiRefNet's are odd and square"
            )));
        }
        let bias_name = format!("{prefix}.bias");
        let bias = if w.has(&bias_name) {
            w.get_shaped(&bias_name, &[c_out])?
        } else {
            Tensor::zeros(c_out, DType::F32, weight.device())
                .map_err(|e| w.invalid(e.to_string()))?
        };
        let (weight, bias) = match bn {
            Some(bn) => fold_batch_norm(w, bn, &weight, &bias, c_out)?,
            None => (weight, bias),
        };
        Self::new(weight, bias).map_err(|e| w.invalid(format!("{prefix}: {e}")))
    }

    pub(super) fn new(weight: Tensor, bias: Tensor) -> candle_core::Result<Self> {
        let (c_out, c_in, k, _) = weight.dims4()?;
        let flat = weight.reshape((c_out, c_in * k * k))?.contiguous()?;
        Ok(Self {
            weight: weight.contiguous()?,
            flat,
            bias: bias.contiguous()?,
            kernel: k,
            c_in,
            c_out,
        })
    }

    pub(super) fn forward(&self, x: &Tensor, relu: bool) -> candle_core::Result<Tensor> {
        let c = x.dim(1)?;
        if c != self.c_in {
            candle_core::bail!(
                "conv{k}x{k}: expected {} input channels, got {c}",
                self.c_in,
                k = self.kernel
            )
        }
        if kernels::applies_to(x) {
            let y = if matches!(self.kernel, 1 | 3) {
                let op = kernels::Conv {
                    kernel: self.kernel,
                    stride: 1,
                    relu_input: false,
                    relu_output: relu,
                };
                return x
                    .contiguous()?
                    .apply_op3_no_bwd(&self.flat, &self.bias, &op);
            } else {
                // Larger kernels (the 7×7 offset and modulator convolutions) through the fused
                // deformable kernel with no deformation: sampling at whole pixels is exact, and
                // candle's own CPU convolution gathers its im2col one element at a time.
                let (b, _, h, wd) = x.dims4()?;
                let taps = self.kernel * self.kernel;
                let offset = Tensor::zeros((b, 2 * taps, h, wd), DType::F32, x.device())?;
                let mask = Tensor::ones((b, taps, h, wd), DType::F32, x.device())?;
                deform_conv2d(
                    x,
                    &offset,
                    &mask,
                    &self.weight,
                    Some(&self.bias),
                    DeformGeometry::padding(self.kernel / 2),
                )?
            };
            return if relu { y.relu() } else { Ok(y) };
        }
        let y = x
            .conv2d(&self.weight, self.kernel / 2, 1, 1, 1)?
            .broadcast_add(&self.bias.reshape((1, self.c_out, 1, 1))?)?;
        if relu {
            y.relu()
        } else {
            Ok(y)
        }
    }
}

/// `(weight, bias)` of `conv → BatchNorm(bn)` as one convolution.
pub(super) fn fold_batch_norm(
    w: &Weights,
    bn: &str,
    weight: &Tensor,
    bias: &Tensor,
    c_out: usize,
) -> Result<(Tensor, Tensor)> {
    let get = |n: &str| w.get_shaped(&format!("{bn}.{n}"), &[c_out]);
    let (gamma, beta, mean, var) = (
        get("weight")?,
        get("bias")?,
        get("running_mean")?,
        get("running_var")?,
    );
    let fold = || -> candle_core::Result<(Tensor, Tensor)> {
        let scale = gamma.broadcast_div(&(var + BN_EPS)?.sqrt()?)?;
        let rank = weight.rank();
        let mut shape = vec![c_out];
        shape.resize(rank, 1);
        let weight = weight.broadcast_mul(&scale.reshape(shape)?)?;
        let bias = ((bias - mean)? * &scale)?.add(&beta)?;
        Ok((weight, bias))
    };
    fold().map_err(|e| w.invalid(format!("folding {bn}: {e}")))
}

/// `F.interpolate(x, size, mode="bilinear", align_corners=True)` for `x = [B, C, H, W]`, as
/// two products with the interpolation matrices (the corners map onto each other).
pub(super) fn resize_align_corners(
    x: &Tensor,
    oh: usize,
    ow: usize,
) -> candle_core::Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    if (oh, ow) == (h, w) {
        return Ok(x.clone());
    }
    let device = x.device();
    let rows = interpolation_matrix(h, oh, device)?; // [oh, h]
    let cols = interpolation_matrix(w, ow, device)?.t()?.contiguous()?; // [w, ow]
    let x = x.reshape((b * c * h, w))?.matmul(&cols)?; // [b·c·h, ow]
    let x = x.reshape((b * c, h, ow))?;
    rows.broadcast_left(b * c)?
        .contiguous()?
        .matmul(&x.contiguous()?)?
        .reshape((b, c, oh, ow))
}

/// `[to, from]`: output position `i` reads `src = i · (from − 1) / (to − 1)` between
/// `floor(src)` and the next pixel, as PyTorch's `align_corners=True` (in f32, as it computes it).
fn interpolation_matrix(from: usize, to: usize, device: &Device) -> candle_core::Result<Tensor> {
    let mut m = vec![0f32; to * from];
    let scale = if to > 1 {
        (from as f32 - 1.0) / (to as f32 - 1.0)
    } else {
        0.0
    };
    for i in 0..to {
        let src = scale * i as f32;
        let i0 = (src.floor() as usize).min(from - 1);
        let i1 = (i0 + 1).min(from - 1);
        let l1 = src - i0 as f32;
        m[i * from + i0] += 1.0 - l1;
        m[i * from + i1] += l1;
    }
    Tensor::from_vec(m, (to, from), device)
}

/// einops `b c (hg h) (wg w) -> b (c hg wg) h w` with the grid that makes the patches
/// `h × w` (today's BiRefNet channel order: channel-major, then the grid row, then its column).
pub(super) fn image_to_patches(x: &Tensor, h: usize, w: usize) -> candle_core::Result<Tensor> {
    let (b, c, hh, ww) = x.dims4()?;
    let (gh, gw) = (hh / h, ww / w);
    if gh * h != hh || gw * w != ww {
        candle_core::bail!("a {hh}×{ww} image does not cut into {h}×{w} patches")
    }
    x.reshape((b, c, gh, h, gw, w))?
        .permute((0, 1, 2, 4, 3, 5))?
        .contiguous()?
        .reshape((b, c * gh * gw, h, w))
}

/// A `Linear` (`x · Wᵀ + b`) over the last dimension, through the fused CPU kernel.
#[derive(Debug)]
pub(super) struct Dense(kernels::Dense);

impl Dense {
    pub(super) fn load(w: &Weights, prefix: &str, bias: bool) -> Result<Self> {
        let weight = w.get(&format!("{prefix}.weight"), 2)?;
        let out = weight.dim(0).map_err(|e| w.invalid(e.to_string()))?;
        let b = if bias {
            Some(w.get_shaped(&format!("{prefix}.bias"), &[out])?)
        } else {
            None
        };
        let layer = candle_nn::Linear::new(weight, b);
        Ok(Self(
            kernels::Dense::new(layer).map_err(|e| w.invalid(format!("{prefix}: {e}")))?,
        ))
    }

    pub(super) fn forward(
        &self,
        x: &Tensor,
        gelu: bool,
        residual: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        self.0.forward(x, gelu, residual)
    }
}

/// `nn.LayerNorm` over the last dimension (eps 1e-5).
#[derive(Debug)]
pub(super) struct Norm(candle_nn::LayerNorm);

impl Norm {
    pub(super) fn load(w: &Weights, prefix: &str, dim: usize) -> Result<Self> {
        let weight = w.get_shaped(&format!("{prefix}.weight"), &[dim])?;
        let bias = w.get_shaped(&format!("{prefix}.bias"), &[dim])?;
        Ok(Self(candle_nn::LayerNorm::new(weight, bias, 1e-5)))
    }

    pub(super) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.0.forward(x)
    }
}
