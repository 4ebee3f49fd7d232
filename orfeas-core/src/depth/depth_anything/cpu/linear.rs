//! Linear layers on the CPU with their epilogue (bias, then the residual add or GELU) folded
//! around one matrix product.
//!
//! Why: candle runs `x Wᵀ`, `+ b`, `+ residual` and the activation as separate ops, each
//! allocating and streaming a fresh `[N, C]` or `[N, 4C]` tensor. Here the output starts at
//! `bias (+ residual)`, one multi-threaded GEMM accumulates into it (the weight packed once; a
//! GEMM per row block, which would keep GELU in cache, repacked the weight per block and measured
//! no faster), and GELU runs as one vectorised parallel pass.

use candle_core::{bail, CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape};
use rayon::prelude::*;

use super::{contiguous_f32, vmath};

/// Rows per parallel chunk of the bias/residual fill and the GELU pass.
const ROWS: usize = 128;

/// `y = x Wᵀ + b`, then GELU when `gelu`; as a [`CustomOp3`] the third input is a residual
/// added to the result. `x = [.., K]` (leading dims flattened), `W = [N, K]`, `bias.len() = N`.
#[derive(Debug, Clone, Copy)]
pub(in super::super) struct Linear<'a> {
    pub bias: &'a [f32],
    pub gelu: bool,
}

impl Linear<'_> {
    fn run(&self, x: (&CpuStorage, &Layout), w: (&CpuStorage, &Layout), residual: Option<&[f32]>) -> Result<(CpuStorage, Shape)> {
        let dims = x.1.shape().dims();
        let (n, k) = w.1.shape().dims2()?;
        let Some((&last, lead)) = dims.split_last() else { bail!("linear: scalar input") };
        if last != k || self.bias.len() != n {
            bail!("linear: input {dims:?}, weight [{n}, {k}], bias {}", self.bias.len())
        }
        let (x, w) = (contiguous_f32("linear", x.0, x.1)?, contiguous_f32("linear", w.0, w.1)?);
        let m: usize = lead.iter().product();
        if residual.is_some_and(|r| r.len() != m * n) {
            bail!("linear: residual does not have the output's shape")
        }
        let mut out = vec![0f32; m * n];
        let rows_per_chunk = ROWS * n.max(1);
        out.par_chunks_mut(rows_per_chunk).enumerate().for_each(|(block, out)| {
            let first = block * ROWS;
            match residual {
                Some(r) => {
                    for (o, r) in out.chunks_exact_mut(n).zip(r[first * n..].chunks_exact(n)) {
                        o.iter_mut().zip(r).zip(self.bias).for_each(|((o, &r), &b)| *o = r + b);
                    }
                }
                None => out.chunks_exact_mut(n).for_each(|o| o.copy_from_slice(self.bias)),
            }
        });
        // One multi-threaded GEMM: the weight is packed once, not once per row block.
        // SAFETY: dst is `out` (`m × n`), lhs is `x` (`m × k`), rhs is `w` (`n × k`, read as
        // `wᵀ`). Arguments: (m, n, k, dst, dst col stride, dst row stride, read dst, lhs, lhs
        // col stride, lhs row stride, rhs, rhs col stride, rhs row stride, alpha, beta, conj ×3,
        // threads).
        unsafe {
            gemm::gemm(
                m, n, k, out.as_mut_ptr(), 1, n as isize, true,
                x.as_ptr(), 1, k as isize, w.as_ptr(), k as isize, 1,
                1.0, 1.0, false, false, false, gemm::Parallelism::Rayon(rayon::current_num_threads()),
            );
        }
        if self.gelu {
            out.par_chunks_mut(rows_per_chunk).for_each(vmath::gelu_in_place);
        }
        let mut shape = lead.to_vec();
        shape.push(n);
        Ok((CpuStorage::F32(out), shape.into()))
    }
}

impl CustomOp2 for Linear<'_> {
    fn name(&self) -> &'static str {
        "orfeas-linear"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, ws: &CpuStorage, wl: &Layout) -> Result<(CpuStorage, Shape)> {
        self.run((xs, xl), (ws, wl), None)
    }
}

impl CustomOp3 for Linear<'_> {
    fn name(&self) -> &'static str {
        "orfeas-linear-residual"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        rs: &CpuStorage,
        rl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.run((xs, xl), (ws, wl), Some(contiguous_f32("linear", rs, rl)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Module, Tensor};

    use crate::depth::depth_anything::max_abs_diff;

    /// Bias, GELU and residual epilogues against candle's linear layer, over several row blocks.
    #[test]
    fn matches_candle_linear_with_each_epilogue() {
        let dev = Device::Cpu;
        let (m, k, n) = (2 * ROWS + 5, 24, 40);
        let x = Tensor::randn(0f32, 1.0, (1, m, k), &dev).expect("x");
        let w = Tensor::randn(0f32, 1.0, (n, k), &dev).expect("w");
        let b = Tensor::randn(0f32, 1.0, n, &dev).expect("b");
        let residual = Tensor::randn(0f32, 1.0, (1, m, n), &dev).expect("r");
        let bias = b.to_vec1::<f32>().expect("bias");
        let reference = candle_nn::Linear::new(w.clone(), Some(b)).forward(&x).expect("linear");

        let plain = x.apply_op2_no_bwd(&w, &Linear { bias: &bias, gelu: false }).expect("plain");
        assert!(max_abs_diff(&plain, &reference) < 1e-4);
        let gelu = x.apply_op2_no_bwd(&w, &Linear { bias: &bias, gelu: true }).expect("gelu");
        assert!(max_abs_diff(&gelu, &reference.gelu_erf().expect("gelu_erf")) < 1e-4);
        let with_residual = x.apply_op3_no_bwd(&w, &residual, &Linear { bias: &bias, gelu: false }).expect("residual");
        assert!(max_abs_diff(&with_residual, &(reference + residual).expect("sum")) < 1e-4);
    }
}
