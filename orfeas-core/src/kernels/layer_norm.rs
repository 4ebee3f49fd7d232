//! LayerNorm over the last dimension on the CPU, two-pass, rows in parallel.
//!
//! Why not candle-nn's fused `layer_norm`: it takes the variance as `E[x²] − E[x]²` in f32,
//! which loses digits when a row's mean is large against its spread (a transformer's residual
//! stream has such rows), and PyTorch, the reference, does not. Here the mean comes first and
//! the variance is the mean of the centred squares, as in the reference's moments.

use candle_core::{bail, CpuStorage, CustomOp1, Layout, Result, Shape};
use rayon::prelude::*;

use super::contiguous_f32;

/// Rows per task: enough work per task (at C = 1024, 64 KB in and out) to amortise rayon.
const ROWS: usize = 16;

/// Partial sums per row: independent accumulators the compiler can keep in vector registers.
const LANES: usize = 16;

/// `(x − mean) / √(var + eps) · weight + bias` over the last dimension (`weight.len()`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LayerNorm<'a> {
    pub weight: &'a [f32],
    pub bias: &'a [f32],
    pub eps: f32,
}

impl CustomOp1 for LayerNorm<'_> {
    fn name(&self) -> &'static str {
        "orfeas-layer-norm"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let c = self.weight.len();
        let dims = layout.shape().dims();
        if dims.last() != Some(&c) || self.bias.len() != c || c == 0 {
            bail!(
                "layer norm: input {dims:?}, weight {c}, bias {}",
                self.bias.len()
            )
        }
        let x = contiguous_f32("layer norm", storage, layout)?;
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(ROWS * c)
            .zip(x.par_chunks(ROWS * c))
            .for_each(|(out, x)| {
                for (out, x) in out.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
                    self.row(x, out);
                }
            });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

impl LayerNorm<'_> {
    fn row(&self, x: &[f32], out: &mut [f32]) {
        let n = x.len() as f32;
        let mean = lane_sum(x, |v| v) / n;
        let var = lane_sum(x, |v| (v - mean) * (v - mean)) / n;
        let inv_std = 1.0 / (var + self.eps).sqrt();
        for (((o, &v), &w), &b) in out.iter_mut().zip(x).zip(self.weight).zip(self.bias) {
            *o = (v - mean) * inv_std * w + b;
        }
    }
}

/// `Σ f(v)` with [`LANES`] partial sums (also more accurate than one running sum).
#[inline(always)]
fn lane_sum(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += f(v);
        }
    }
    let rest: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    acc.iter().sum::<f32>() + rest
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    /// Against a double-precision reference on rows with a large mean (where `E[x²] − E[x]²`
    /// in f32 fails) and on more rows than one task takes.
    #[test]
    fn matches_a_double_precision_layer_norm() {
        let (rows, c) = (2 * ROWS + 3, 40);
        let values: Vec<f32> = (0..rows * c)
            .map(|i| 1000.0 + ((i * 7919) % 613) as f32 / 100.0)
            .collect();
        let weight: Vec<f32> = (0..c).map(|i| 0.5 + i as f32 / c as f32).collect();
        let bias: Vec<f32> = (0..c).map(|i| i as f32 / 10.0 - 1.0).collect();
        let x = Tensor::from_vec(values.clone(), (rows, c), &Device::Cpu).expect("x");
        let op = LayerNorm {
            weight: &weight,
            bias: &bias,
            eps: 1e-5,
        };
        let got = x
            .apply_op1_no_bwd(&op)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .expect("norm");
        let mut err = 0f64;
        for (r, row) in values.chunks_exact(c).enumerate() {
            let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / c as f64;
            let var = row
                .iter()
                .map(|&v| (f64::from(v) - mean).powi(2))
                .sum::<f64>()
                / c as f64;
            for (j, &v) in row.iter().enumerate() {
                let want = (f64::from(v) - mean) / (var + 1e-5).sqrt() * f64::from(weight[j])
                    + f64::from(bias[j]);
                err = err.max((want - f64::from(got[r * c + j])).abs());
            }
        }
        assert!(err < 2e-4, "max abs error {err}");
    }
}
