//! Resampling of `[B, C, H, W]` tensors with PyTorch's `F.interpolate` semantics.
//!
//! candle has only nearest-neighbour upsampling; the reference model uses bilinear
//! (`align_corners=True` in the fusion blocks and the head, `False` when a residual is resized)
//! and bicubic (position embeddings). Each is separable, so it is done one axis at a time as a
//! sum of `index_select` taps times per-output weights: no custom kernel, the same code on CPU
//! and CUDA, and O(taps) work per output value.
//!
//! On the CPU (f32) the same taps are applied by a direct parallel loop ([`ApplyTaps`]), which
//! sums the taps in the same order and so gives bit-identical results without the per-tap
//! tensors.
//!
//! Tap positions and weights are computed in `f32`, like PyTorch's float kernels, and the axes
//! are interpolated width first, like PyTorch's CPU kernels, so results agree to float rounding.

use candle_core::{bail, CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// One axis of a separable resampling: `taps[k]` holds, for each output position, the source
/// index and weight of the k-th tap.
struct AxisTaps {
    taps: Vec<(Vec<u32>, Vec<f32>)>,
}

impl AxisTaps {
    fn new(n_taps: usize, out: usize) -> Self {
        Self {
            taps: (0..n_taps)
                .map(|_| (Vec::with_capacity(out), Vec::with_capacity(out)))
                .collect(),
        }
    }

    /// Applies the taps along `dim` (2 = height, 3 = width) of a 4-D tensor.
    fn apply(&self, x: &Tensor, dim: usize) -> Result<Tensor> {
        let x = &x.contiguous()?;
        if crate::kernels::applies_to(x) {
            return x.apply_op1_no_bwd(&ApplyTaps { axis: self, dim });
        }
        self.apply_with_tensor_ops(x, dim)
    }

    /// The device-independent path: one `index_select` and multiply per tap.
    fn apply_with_tensor_ops(&self, x: &Tensor, dim: usize) -> Result<Tensor> {
        let dev = x.device();
        let mut acc: Option<Tensor> = None;
        for (idx, w) in &self.taps {
            let n = idx.len();
            let idx = Tensor::from_slice(idx, n, dev)?;
            let w = Tensor::from_slice(w, n, dev)?.to_dtype(x.dtype())?;
            let w = if dim == 2 { w.reshape((n, 1))? } else { w };
            let term = x.index_select(&idx, dim)?.broadcast_mul(&w)?;
            acc = Some(match acc {
                None => term,
                Some(a) => (a + term)?,
            });
        }
        acc.ok_or_else(|| candle_core::Error::Msg("resampling with no taps".into()))
    }
}

/// [`AxisTaps::apply`] on a contiguous f32 CPU tensor, parallel over output rows.
struct ApplyTaps<'a> {
    axis: &'a AxisTaps,
    /// 2 (height) or 3 (width) of `[B, C, H, W]`.
    dim: usize,
}

impl CustomOp1 for ApplyTaps<'_> {
    fn name(&self) -> &'static str {
        "orfeas-resample-axis"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, c, h, w) = layout.shape().dims4()?;
        let x = crate::kernels::contiguous_f32("resample", storage, layout)?;
        let taps = &self.axis.taps;
        let n = taps.first().map_or(0, |(idx, _)| idx.len());
        // Terms are added left to right, first tap first, as the tensor path adds them.
        let (out, shape) = match self.dim {
            3 => {
                let mut out = vec![0f32; b * c * h * n];
                out.par_chunks_mut(n.max(1))
                    .zip(x.par_chunks(w.max(1)))
                    .for_each(|(dst, src)| {
                        for (o, d) in dst.iter_mut().enumerate() {
                            let mut terms =
                                taps.iter().map(|(idx, wt)| src[idx[o] as usize] * wt[o]);
                            let first = terms.next().unwrap_or(0.0);
                            *d = terms.fold(first, |acc, t| acc + t);
                        }
                    });
                (out, (b, c, h, n))
            }
            2 => {
                let mut out = vec![0f32; b * c * n * w];
                out.par_chunks_mut(w.max(1))
                    .enumerate()
                    .for_each(|(row, dst)| {
                        let (plane, o) = (row / n, row % n);
                        let plane = &x[plane * h * w..(plane + 1) * h * w];
                        for (k, (idx, wt)) in taps.iter().enumerate() {
                            let (src, weight) = (&plane[idx[o] as usize * w..][..w], wt[o]);
                            if k == 0 {
                                dst.iter_mut().zip(src).for_each(|(d, &v)| *d = v * weight);
                            } else {
                                dst.iter_mut().zip(src).for_each(|(d, &v)| *d += v * weight);
                            }
                        }
                    });
                (out, (b, c, n, w))
            }
            d => bail!("resample: axis {d} of a 4-D tensor"),
        };
        Ok((CpuStorage::F32(out), shape.into()))
    }
}

/// Bilinear weights for one axis, as PyTorch's `upsample_bilinear2d` CPU kernel computes them
/// (`compute_source_index_and_lambda` / `guard_index_and_lambda`).
fn linear_axis(input: usize, output: usize, align_corners: bool) -> AxisTaps {
    let mut t = AxisTaps::new(2, output);
    let last = input.saturating_sub(1);
    for o in 0..output {
        let (i0, l1) = if input == output {
            (o, 0.0f32)
        } else {
            let real = if align_corners {
                let scale = if output > 1 {
                    last as f32 / (output - 1) as f32
                } else {
                    0.0
                };
                scale * o as f32
            } else {
                let scale = input as f32 / output as f32;
                (scale * (o as f32 + 0.5) - 0.5).max(0.0)
            };
            let i0 = (real.floor() as usize).min(last);
            (i0, (real - i0 as f32).clamp(0.0, 1.0))
        };
        let i1 = if i0 < last { i0 + 1 } else { i0 };
        t.taps[0].0.push(i0 as u32);
        t.taps[0].1.push(1.0 - l1);
        t.taps[1].0.push(i1 as u32);
        t.taps[1].1.push(l1);
    }
    t
}

/// Keys' cubic convolution with A = -0.75, PyTorch's `bicubic` (not PIL's A = -0.5).
fn cubic_coefficients(t: f32) -> [f32; 4] {
    const A: f32 = -0.75;
    let near = |x: f32| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let far = |x: f32| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]
}

/// Bicubic weights for one axis, `align_corners=False`, sources clamped at the borders, as in
/// PyTorch's `upsample_bicubic2d` (no antialiasing, also when downscaling).
fn cubic_axis(input: usize, output: usize) -> AxisTaps {
    cubic_axis_with_scale(input, output, input as f32 / output as f32)
}

/// [`cubic_axis`] with the source step given: `1 / scale_factor` when PyTorch is called with a
/// `scale_factor` (it then samples at that step, not at `input / output`).
fn cubic_axis_with_scale(input: usize, output: usize, scale: f32) -> AxisTaps {
    let mut t = AxisTaps::new(4, output);
    let last = input as i64 - 1;
    for o in 0..output {
        let real = scale * (o as f32 + 0.5) - 0.5;
        let i = real.floor();
        let c = cubic_coefficients(real - i);
        for (k, (idx, w)) in t.taps.iter_mut().enumerate() {
            idx.push((i as i64 - 1 + k as i64).clamp(0, last) as u32);
            w.push(c[k]);
        }
    }
    t
}

/// `F.interpolate(x, size=(h, w), mode="bilinear", align_corners=...)` for `[B, C, H, W]`.
pub fn bilinear(x: &Tensor, h: usize, w: usize, align_corners: bool) -> Result<Tensor> {
    let (_, _, ih, iw) = x.dims4()?;
    let x = if iw == w {
        x.clone()
    } else {
        linear_axis(iw, w, align_corners).apply(x, 3)?
    };
    if ih == h {
        Ok(x)
    } else {
        linear_axis(ih, h, align_corners).apply(&x, 2)
    }
}

/// `F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)` for `[B, C, H, W]`.
pub fn bicubic(x: &Tensor, h: usize, w: usize) -> Result<Tensor> {
    let (_, _, ih, iw) = x.dims4()?;
    let x = cubic_axis(iw, w).apply(x, 3)?;
    cubic_axis(ih, h).apply(&x, 2)
}

/// `F.interpolate(x, scale_factor=(sh, sw), mode="bicubic", align_corners=False)` for
/// `[B, C, H, W]` (`recompute_scale_factor` unset, as transformers 4.35's ViT calls it): the
/// output is `floor(H·sh) × floor(W·sw)` and the source is sampled at steps of `1/sh`, `1/sw`
/// (as f32, like PyTorch's float kernel), which differs from resizing to that size.
pub fn bicubic_scale_factor(x: &Tensor, sh: f64, sw: f64) -> Result<Tensor> {
    let (_, _, ih, iw) = x.dims4()?;
    if !(sh > 0.0 && sw > 0.0) {
        bail!("bicubic: scale factors {sh}, {sw} must be positive");
    }
    let (oh, ow) = (
        (ih as f64 * sh).floor() as usize,
        (iw as f64 * sw).floor() as usize,
    );
    let x = cubic_axis_with_scale(iw, ow, (1.0 / sw) as f32).apply(x, 3)?;
    cubic_axis_with_scale(ih, oh, (1.0 / sh) as f32).apply(&x, 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The CPU loop and the tensor-op path sum the same taps in the same order: equal bits.
    #[test]
    fn cpu_loop_matches_the_tensor_ops_exactly() {
        let x = Tensor::randn(0f32, 1.0, (2, 3, 11, 17), &Device::Cpu).expect("x");
        for (axis, dim) in [
            (linear_axis(17, 40, true), 3),
            (linear_axis(11, 5, false), 2),
            (cubic_axis(17, 9), 3),
            (cubic_axis(11, 31), 2),
        ] {
            let fast = axis.apply(&x, dim).expect("fast");
            let generic = axis.apply_with_tensor_ops(&x, dim).expect("generic");
            assert_eq!(fast.dims(), generic.dims());
            let (a, b) = (
                fast.flatten_all().and_then(|t| t.to_vec1::<f32>()),
                generic.flatten_all().and_then(|t| t.to_vec1::<f32>()),
            );
            assert_eq!(a.expect("a"), b.expect("b"), "dim {dim}");
        }
    }

    fn grid(h: usize, w: usize) -> Tensor {
        let v: Vec<f32> = (0..h * w)
            .map(|i| ((i % w) as f32) * 2.0 + (i / w) as f32 * 0.5)
            .collect();
        Tensor::from_vec(v, (1, 1, h, w), &Device::Cpu).expect("tensor")
    }

    #[test]
    fn align_corners_true_keeps_corners_and_linear_ramps() {
        let out = bilinear(&grid(3, 4), 5, 7, true).expect("resample");
        let v = out
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .expect("vec");
        // Corners map exactly onto corners.
        assert_eq!(v[0], 0.0);
        assert!((v[6] - 6.0).abs() < 1e-6);
        assert!((v[34] - (6.0 + 1.0)).abs() < 1e-6);
        // A linear ramp stays linear: x step = 3 * 2 / 6, y step = 2 * 0.5 / 4.
        assert!((v[8] - (1.0 + 0.25)).abs() < 1e-5);
    }

    #[test]
    fn bicubic_uses_pytorch_weights_and_keeps_constants() {
        // PyTorch's weights for a ×2 upscale (t = 0.25), A = -0.75.
        assert_eq!(
            cubic_coefficients(0.25),
            [-0.10546875, 0.87890625, 0.26171875, -0.03515625]
        );
        let x = grid(6, 6);
        let same = bicubic(&x, 6, 6).expect("resample");
        let d = (same - &x)
            .and_then(|t| t.abs())
            .and_then(|t| t.max_all())
            .and_then(|t| t.to_scalar::<f32>());
        assert!(d.expect("diff") < 1e-5);
        let c = Tensor::full(3.5f32, (1, 2, 37, 37), &Device::Cpu).expect("const");
        let v = bicubic(&c, 7, 9)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .expect("vec");
        assert!(v.iter().all(|&x| (x - 3.5).abs() < 1e-5));
    }
}
