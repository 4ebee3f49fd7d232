//! Multi-head self-attention on the CPU as one candle op over the fused QKV projection.
//!
//! Why: the generic path materialises `softmax(q kᵀ)` for every head (`[B, 6, 1370, 1370]` at
//! 518², 45 MB per layer, freshly allocated and page-faulted each time), copies q, k and v into
//! head-major layout, and exponentiates with scalar libm. Here each head's keys and values are
//! packed once for the matrix products; then each task takes one head and a block of query
//! rows, multiplies the queries straight out of the `[B, N, 3C]` projection, keeps its
//! `rows × N` scores in a reused per-thread buffer, and writes its slice of the `[B, N, C]`
//! output in place. The arithmetic is the reference's eager attention (scores, max-shifted
//! softmax, probabilities × values); only the sums' order differs, and the softmax denominator
//! is applied to the `rows × head_dim` result instead of the `rows × N` probabilities.

use std::cell::RefCell;

use candle_core::{bail, CpuStorage, CustomOp1, Layout, Result, Shape};
use rayon::prelude::*;

use super::sgemm::{self, PackedB};
use super::{vmath, Unfilled};

/// Query rows per task (a multiple of the micro-kernels' 6 and 12): the `ROWS × N` scores (260 KB at
/// N = 1370) stay in L2 between the two products. Keys and values are packed per head, so
/// smaller blocks cost no repacking; 48 measured ~5 % less CPU time per forward than 128, 96
/// no better than 128.
const ROWS: usize = 48;

thread_local! {
    /// Per-thread score buffer, reused across tasks and layers.
    static SCORES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `softmax(q kᵀ) v` per head for `qkv = [B, N, 3C]` (queries already scaled by
/// `1/√head_dim`, then keys, then values, each `C = heads × head_dim` wide) → `[B, N, C]`, heads
/// concatenated as the reference's output projection expects. CPU and f32 only; other devices
/// use the tensor-op path in `dinov2.rs`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FusedAttention {
    pub heads: usize,
}

/// One head's keys (as `Kᵀ`, `head_dim × N`) and values (`N × head_dim`), packed.
struct HeadOperands {
    keys: PackedB,
    values: PackedB,
}

impl CustomOp1 for FusedAttention {
    fn name(&self) -> &'static str {
        "orfeas-fused-attention"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (batch, tokens, width3) = layout.shape().dims3()?;
        let qkv = super::contiguous_f32("fused attention", storage, layout)?;
        if width3 % (3 * self.heads) != 0 {
            bail!(
                "fused attention: width {width3} is not 3 × a multiple of {} heads",
                self.heads
            )
        }
        let width = width3 / 3;
        let shape = Dims {
            width,
            head_dim: width / self.heads,
            tokens,
        };
        let image = |i: usize| &qkv[i * tokens * width3..(i + 1) * tokens * width3];
        let operands: Vec<HeadOperands> = (0..batch * self.heads)
            .into_par_iter()
            .map(|task| {
                let (qkv, head) = (image(task / self.heads), task % self.heads);
                let d = shape.head_dim;
                let (mut keys, mut values) = (PackedB::default(), PackedB::default());
                keys.pack_columns(d, tokens, &qkv[width + head * d..], width3);
                values.pack_rows(tokens, d, &qkv[2 * width + head * d..], width3);
                HeadOperands { keys, values }
            })
            .collect();
        let mut out = Unfilled::new(batch * tokens * width);
        let blocks = tokens.div_ceil(ROWS);
        let out_ptr = out.shared();
        (0..batch * self.heads * blocks)
            .into_par_iter()
            .for_each(|task| {
                let (head_task, block) = (task / blocks, task % blocks);
                let (index, head) = (head_task / self.heads, head_task % self.heads);
                let rows = block * ROWS..((block + 1) * ROWS).min(tokens);
                // The tasks' output regions (image, rows, head's columns) are pairwise disjoint and
                // `out` outlives the parallel loop.
                let out = out_ptr.at(index * tokens * width);
                let head_operands = &operands[head_task];
                SCORES.with_borrow_mut(|scores| {
                    attend(image(index), head_operands, out, shape, head, rows, scores)
                });
            });
        // SAFETY: the tasks cover every (image, head, row block), and `attend` overwrites its
        // block (a product without accumulation, `tokens > 0` deep).
        let out = unsafe { out.into_filled() };
        Ok((CpuStorage::F32(out), (batch, tokens, width).into()))
    }
}

#[derive(Clone, Copy)]
struct Dims {
    width: usize,
    head_dim: usize,
    tokens: usize,
}

/// One head, one block of query rows of one image: `out[rows, head] = softmax(q kᵀ) v`.
fn attend(
    qkv: &[f32],
    operands: &HeadOperands,
    out: *mut f32,
    s: Dims,
    head: usize,
    rows: std::ops::Range<usize>,
    scores: &mut Vec<f32>,
) {
    let (m, n, d, w3) = (rows.len(), s.tokens, s.head_dim, 3 * s.width);
    scores.resize(m * n, 0.0);
    let q = &qkv[rows.start * w3 + head * d..];
    // SAFETY: query rows `rows` (each `d` values at stride `w3`) lie inside this image's
    // `qkv`; `scores` is `m × n`.
    unsafe {
        sgemm::gemm(
            m,
            q.as_ptr(),
            w3,
            &operands.keys,
            scores.as_mut_ptr(),
            n,
            false,
        )
    };
    let mut inverse_sums = [0f32; ROWS];
    for (row, inverse) in scores.chunks_exact_mut(n).zip(&mut inverse_sums) {
        let max = vmath::max(row);
        *inverse = 1.0 / vmath::exp_shifted_sum(row, max);
    }
    let out = out.wrapping_add(rows.start * s.width + head * d);
    // SAFETY: this task's output block is rows `rows`, columns `head·d..(head+1)·d` of an
    // `n × width` image, written by no other task.
    unsafe {
        sgemm::gemm(m, scores.as_ptr(), n, &operands.values, out, s.width, false);
        for (r, inverse) in inverse_sums.iter().take(m).enumerate() {
            let row = std::slice::from_raw_parts_mut(out.add(r * s.width), d);
            row.iter_mut().for_each(|x| *x *= inverse);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor, D};

    use crate::depth::depth_anything::max_abs_diff;

    /// Several row blocks (one partial), batch 2, three heads: the reference's eager attention
    /// written with tensor ops.
    #[test]
    fn matches_eager_attention() {
        let (b, n, heads, d) = (2, 2 * ROWS + 37, 3, 8);
        let c = heads * d;
        let qkv = Tensor::randn(0f32, 1.0, (b, n, 3 * c), &Device::Cpu).expect("qkv");
        let fused = qkv
            .apply_op1_no_bwd(&FusedAttention { heads })
            .expect("fused");
        let split = |i: usize| {
            qkv.narrow(2, i * c, c)
                .and_then(|t| t.reshape((b, n, heads, d)))
                .and_then(|t| t.transpose(1, 2))
                .and_then(|t| t.contiguous())
                .expect("split")
        };
        let (q, k, v) = (split(0), split(1), split(2));
        let scores = q.matmul(&k.t().expect("t")).expect("scores");
        let probs = candle_nn::ops::softmax(&scores, D::Minus1).expect("softmax");
        let eager = probs
            .matmul(&v)
            .and_then(|t| t.transpose(1, 2))
            .and_then(|t| t.reshape((b, n, c)))
            .expect("ctx");
        let err = max_abs_diff(&fused, &eager);
        assert!(err < 1e-5, "max abs error {err}");
    }
}
