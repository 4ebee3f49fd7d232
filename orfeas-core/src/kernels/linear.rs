//! Linear layers on the CPU with their epilogue (bias, then the residual add or GELU) folded
//! around the matrix product.
//!
//! Why: candle runs `x Wᵀ`, `+ b`, `+ residual` and the activation as separate ops, each
//! allocating and streaming a fresh `[N, C]` or `[N, 4C]` tensor. Here each task takes a block
//! of rows, starts its output at `bias (+ residual)`, accumulates the product into it with the
//! weight packed once at load ([`PackedB`]), and applies GELU while the block is still in cache.

use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape};
use rayon::prelude::*;

use super::sgemm::{self, PackedB};
use super::{contiguous_f32, unwritten, vmath, Unfilled};

/// Rows per task: a multiple of the micro-kernels' 6 and 12, small enough that the block (72 × 1536
/// floats for the MLP's widest output) stays in L2 for the GELU pass, and ~20 tasks per image.
const ROWS: usize = 72;

/// `y = x Wᵀ + b`, then GELU when `gelu`; as a [`CustomOp2`] the second input is a residual
/// added to the result. `x = [.., K]` (leading dims flattened), `weight` is `Wᵀ` (`K × N`)
/// packed, `bias.len() = N`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Linear<'a> {
    pub weight: &'a PackedB,
    pub bias: &'a [f32],
    pub gelu: bool,
}

impl Linear<'_> {
    fn run(
        &self,
        x: (&CpuStorage, &Layout),
        residual: Option<&[f32]>,
    ) -> Result<(CpuStorage, Shape)> {
        let dims = x.1.shape().dims();
        let (k, n) = (self.weight.k(), self.weight.n());
        let Some((&last, lead)) = dims.split_last() else {
            bail!("linear: scalar input")
        };
        if last != k || self.bias.len() != n {
            bail!(
                "linear: input {dims:?}, weight [{n}, {k}], bias {}",
                self.bias.len()
            )
        }
        let x = contiguous_f32("linear", x.0, x.1)?;
        let m: usize = lead.iter().product();
        if residual.is_some_and(|r| r.len() != m * n) {
            bail!("linear: residual does not have the output's shape")
        }
        let mut out = Unfilled::new(m * n);
        let out_ptr = out.shared();
        let blocks = if n == 0 { 0 } else { m.div_ceil(ROWS) };
        (0..blocks).into_par_iter().for_each(|block| {
            let (first, rows) = (block * ROWS, ROWS.min(m - block * ROWS));
            // SAFETY: rows `first..first + rows` of the `m × n` output are this task's alone.
            let start = unsafe { unwritten(out_ptr.at(first * n), rows * n) };
            match residual {
                Some(r) => {
                    for (o, r) in start
                        .chunks_exact_mut(n)
                        .zip(r[first * n..].chunks_exact(n))
                    {
                        o.iter_mut()
                            .zip(r)
                            .zip(self.bias)
                            .for_each(|((o, &r), &b)| _ = o.write(r + b));
                    }
                }
                None => start.chunks_exact_mut(n).for_each(|o| {
                    o.iter_mut()
                        .zip(self.bias)
                        .for_each(|(o, &b)| _ = o.write(b))
                }),
            }
            // SAFETY: the block is written now; rows `first..first + rows` of `x` (`m × k`,
            // row-major) are in bounds.
            let out = unsafe { std::slice::from_raw_parts_mut(out_ptr.at(first * n), rows * n) };
            unsafe {
                sgemm::gemm(
                    rows,
                    x[first * k..].as_ptr(),
                    k,
                    self.weight,
                    out.as_mut_ptr(),
                    n,
                    true,
                )
            };
            if self.gelu {
                vmath::gelu_in_place(out);
            }
        });
        // SAFETY: the blocks cover all `m` rows (none when `n` is 0) and each wrote its own.
        let out = unsafe { out.into_filled() };
        let mut shape = lead.to_vec();
        shape.push(n);
        Ok((CpuStorage::F32(out), shape.into()))
    }
}

impl CustomOp1 for Linear<'_> {
    fn name(&self) -> &'static str {
        "orfeas-linear"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout) -> Result<(CpuStorage, Shape)> {
        self.run((xs, xl), None)
    }
}

impl CustomOp2 for Linear<'_> {
    fn name(&self) -> &'static str {
        "orfeas-linear-residual"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        rs: &CpuStorage,
        rl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.run((xs, xl), Some(contiguous_f32("linear", rs, rl)?))
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
        let reference = candle_nn::Linear::new(w.clone(), Some(b))
            .forward(&x)
            .expect("linear");
        let mut weight = PackedB::default();
        weight.pack_columns(
            k,
            n,
            &w.flatten_all().and_then(|w| w.to_vec1::<f32>()).expect("w"),
            k,
        );

        let plain = x
            .apply_op1_no_bwd(&Linear {
                weight: &weight,
                bias: &bias,
                gelu: false,
            })
            .expect("plain");
        assert!(max_abs_diff(&plain, &reference) < 1e-4);
        let gelu = x
            .apply_op1_no_bwd(&Linear {
                weight: &weight,
                bias: &bias,
                gelu: true,
            })
            .expect("gelu");
        assert!(max_abs_diff(&gelu, &reference.gelu_erf().expect("gelu_erf")) < 1e-4);
        let with_residual = x
            .apply_op2_no_bwd(
                &residual,
                &Linear {
                    weight: &weight,
                    bias: &bias,
                    gelu: false,
                },
            )
            .expect("residual");
        assert!(max_abs_diff(&with_residual, &(reference + residual).expect("sum")) < 1e-4);
    }
}
