//! Multi-head attention on the CPU as candle ops: self-attention over a fused QKV projection
//! (Depth Anything's ViT, TripoSR's backbone) and cross-attention of queries against a fused
//! key/value projection of another token set (TripoSR's triplane tokens against the image).
//!
//! Why: the generic path materialises `softmax(q kᵀ)` for every head (`[B, 6, 1370, 1370]` at
//! 518², 45 MB per layer, freshly allocated and page-faulted each time; `[1, 16, 3072, 3072]`,
//! 600 MB, in TripoSR's self-attention), copies q, k and v into head-major layout, and
//! exponentiates with scalar libm. Here each head's keys and values are packed once for the
//! matrix products; then each task takes one head and a block of query rows, multiplies the
//! queries straight out of their projection, keeps its `rows × N` scores in a reused
//! per-thread buffer, and writes its slice of the `[B, Nq, C]` output in place. The arithmetic
//! is the reference's eager attention (scores, max-shifted softmax, probabilities × values);
//! only the sums' order differs, and the softmax denominator is applied to the
//! `rows × head_dim` result instead of the `rows × N` probabilities.

use std::cell::RefCell;

use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape};
use rayon::prelude::*;

use super::sgemm::{self, PackedB};
use super::{vmath, Unfilled};

/// Query rows per task (a multiple of the micro-kernels' 6 and 12): the `ROWS × N` scores (260 KB at
/// N = 1370, 590 KB at TripoSR's 3072) stay in L2 between the two products. Keys and values are
/// packed per head, so smaller blocks cost no repacking; 48 measured ~5 % less CPU time per
/// Depth Anything forward than 128, 96 no better than 128.
const ROWS: usize = 48;

thread_local! {
    /// Per-thread score buffer, reused across tasks and layers.
    static SCORES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `softmax(q kᵀ) v` per head for `qkv = [B, N, 3C]` (queries already scaled by
/// `1/√head_dim`, then keys, then values, each `C = heads × head_dim` wide) → `[B, N, C]`, heads
/// concatenated as the reference's output projection expects. CPU and f32 only; other devices
/// use tensor ops (`dinov2.rs`, `triposr/backbone.rs`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FusedAttention {
    pub heads: usize,
}

/// Cross-attention: `softmax(q kᵀ) v` per head for queries `q = [B, Nq, C]` (already scaled by
/// `1/√head_dim`) against `kv = [B, Nk, 2C]` (keys, then values) → `[B, Nq, C]`. CPU and f32
/// only, like [`FusedAttention`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct CrossAttention {
    pub heads: usize,
}

impl CustomOp1 for FusedAttention {
    fn name(&self) -> &'static str {
        "orfeas-fused-attention"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (batch, tokens, width3) = layout.shape().dims3()?;
        let qkv = super::contiguous_f32("fused attention", storage, layout)?;
        if self.heads == 0 || width3 % (3 * self.heads) != 0 {
            bail!(
                "fused attention: width {width3} is not 3 × a multiple of {} heads",
                self.heads
            )
        }
        let width = width3 / 3;
        let at = |offset| Operand {
            values: qkv,
            tokens,
            ld: width3,
            offset,
        };
        let heads = Heads {
            count: self.heads,
            dim: width / self.heads,
        };
        let out = multi_head(heads, batch, at(0), at(width), at(2 * width));
        Ok((CpuStorage::F32(out), (batch, tokens, width).into()))
    }
}

impl CustomOp2 for CrossAttention {
    fn name(&self) -> &'static str {
        "orfeas-cross-attention"
    }

    fn cpu_fwd(
        &self,
        q_storage: &CpuStorage,
        q_layout: &Layout,
        kv_storage: &CpuStorage,
        kv_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (batch, queries, width) = q_layout.shape().dims3()?;
        let (kv_batch, keys, width2) = kv_layout.shape().dims3()?;
        if self.heads == 0 || width % self.heads != 0 || width2 != 2 * width || kv_batch != batch {
            bail!(
                "cross attention: queries {:?} and keys/values {:?} for {} heads",
                q_layout.shape(),
                kv_layout.shape(),
                self.heads
            )
        }
        let q = super::contiguous_f32("cross attention", q_storage, q_layout)?;
        let kv = super::contiguous_f32("cross attention", kv_storage, kv_layout)?;
        let heads = Heads {
            count: self.heads,
            dim: width / self.heads,
        };
        let kv_at = |offset| Operand {
            values: kv,
            tokens: keys,
            ld: width2,
            offset,
        };
        let q = Operand {
            values: q,
            tokens: queries,
            ld: width,
            offset: 0,
        };
        let out = multi_head(heads, batch, q, kv_at(0), kv_at(width));
        Ok((CpuStorage::F32(out), (batch, queries, width).into()))
    }
}

/// The head split of the `C = count × dim` channels.
#[derive(Clone, Copy)]
struct Heads {
    count: usize,
    dim: usize,
}

/// Queries, keys or values inside a `[B, tokens, ld]` buffer: head `h`'s `dim` columns start at
/// column `offset + h · dim` of each row.
#[derive(Clone, Copy)]
struct Operand<'a> {
    values: &'a [f32],
    tokens: usize,
    ld: usize,
    offset: usize,
}

impl Operand<'_> {
    /// Image `i`'s rows.
    fn image(&self, i: usize) -> &[f32] {
        let len = self.tokens * self.ld;
        &self.values[i * len..(i + 1) * len]
    }

    /// Row `row`, head `head`: the `dim` values from there on (and the rest of the buffer).
    fn at(&self, image: usize, row: usize, head: usize, dim: usize) -> &[f32] {
        &self.image(image)[row * self.ld + self.offset + head * dim..]
    }
}

/// One head's keys (as `Kᵀ`, `head_dim × Nk`) and values (`Nk × head_dim`), packed.
struct HeadOperands {
    keys: PackedB,
    values: PackedB,
}

/// `[B, Nq, count × dim]`: every head of every image, heads concatenated.
fn multi_head(heads: Heads, batch: usize, q: Operand, k: Operand, v: Operand) -> Vec<f32> {
    let (d, width) = (heads.dim, heads.count * heads.dim);
    let operands: Vec<HeadOperands> = (0..batch * heads.count)
        .into_par_iter()
        .map(|task| {
            let (image, head) = (task / heads.count, task % heads.count);
            let (mut keys, mut values) = (PackedB::default(), PackedB::default());
            keys.pack_columns(d, k.tokens, k.at(image, 0, head, d), k.ld);
            values.pack_rows(v.tokens, d, v.at(image, 0, head, d), v.ld);
            HeadOperands { keys, values }
        })
        .collect();
    let mut out = Unfilled::new(batch * q.tokens * width);
    let blocks = q.tokens.div_ceil(ROWS);
    let out_ptr = out.shared();
    (0..batch * heads.count * blocks)
        .into_par_iter()
        .for_each(|task| {
            let (head_task, block) = (task / blocks, task % blocks);
            let (image, head) = (head_task / heads.count, head_task % heads.count);
            let rows = block * ROWS..((block + 1) * ROWS).min(q.tokens);
            let queries = q.at(image, rows.start, head, d);
            // The tasks' output regions (image, rows, head's columns) are pairwise disjoint and
            // `out` outlives the parallel loop.
            let out = out_ptr.at((image * q.tokens + rows.start) * width + head * d);
            SCORES.with_borrow_mut(|scores| {
                attend(
                    (queries, q.ld),
                    &operands[head_task],
                    (out, width),
                    rows.len(),
                    scores,
                )
            });
        });
    // SAFETY: the tasks cover every (image, head, row block), and `attend` overwrites its
    // block (a product without accumulation; with no keys, a zero-depth product, which clears
    // the block).
    unsafe { out.into_filled() }
}

/// One head, `m` query rows: `out = softmax(q kᵀ) v`. `q` holds the rows at stride `ldq`
/// (the first `head_dim` values of each), `out` the `m × head_dim` block at stride `ldo`.
fn attend(
    (q, ldq): (&[f32], usize),
    operands: &HeadOperands,
    (out, ldo): (*mut f32, usize),
    m: usize,
    scores: &mut Vec<f32>,
) {
    let (n, d) = (operands.keys.n(), operands.keys.k());
    debug_assert!(m <= ROWS && (m == 0 || q.len() >= (m - 1) * ldq + d));
    scores.resize(m * n, 0.0);
    // SAFETY: the `m` query rows (each `d` values at stride `ldq`) lie inside `q`; `scores`
    // is `m × n`.
    unsafe {
        sgemm::gemm(
            m,
            q.as_ptr(),
            ldq,
            &operands.keys,
            scores.as_mut_ptr(),
            n,
            false,
        )
    };
    let mut inverse_sums = [0f32; ROWS];
    for (row, inverse) in scores.chunks_exact_mut(n.max(1)).zip(&mut inverse_sums) {
        let max = vmath::max(row);
        *inverse = 1.0 / vmath::exp_shifted_sum(row, max);
    }
    // SAFETY: this task's output block is `m` rows of `d` values at stride `ldo`, written by
    // no other task.
    unsafe {
        sgemm::gemm(m, scores.as_ptr(), n, &operands.values, out, ldo, false);
        for (r, inverse) in inverse_sums.iter().take(m).enumerate() {
            let row = std::slice::from_raw_parts_mut(out.add(r * ldo), d);
            row.iter_mut().for_each(|x| *x *= inverse);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor, D};

    use crate::depth::depth_anything::max_abs_diff;

    /// The reference's eager attention with tensor ops: `q = [B, Nq, C]`, `k`, `v = [B, Nk, C]`.
    fn eager(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize) -> Tensor {
        let split = |t: &Tensor| {
            let (b, n, c) = t.dims3().expect("dims");
            t.reshape((b, n, heads, c / heads))
                .and_then(|t| t.transpose(1, 2))
                .and_then(|t| t.contiguous())
                .expect("split")
        };
        let (b, n, c) = q.dims3().expect("dims");
        let scores = split(q).matmul(&split(k).t().expect("t")).expect("scores");
        let probs = candle_nn::ops::softmax(&scores, D::Minus1).expect("softmax");
        probs
            .matmul(&split(v))
            .and_then(|t| t.transpose(1, 2))
            .and_then(|t| t.reshape((b, n, c)))
            .expect("ctx")
    }

    /// Several row blocks (one partial), batch 2, three heads.
    #[test]
    fn matches_eager_attention() {
        let (b, n, heads, d) = (2, 2 * ROWS + 37, 3, 8);
        let c = heads * d;
        let qkv = Tensor::randn(0f32, 1.0, (b, n, 3 * c), &Device::Cpu).expect("qkv");
        let fused = qkv
            .apply_op1_no_bwd(&FusedAttention { heads })
            .expect("fused");
        let part = |i: usize| qkv.narrow(2, i * c, c).expect("narrow");
        let err = max_abs_diff(&fused, &eager(&part(0), &part(1), &part(2), heads));
        assert!(err < 1e-5, "max abs error {err}");
    }

    /// Queries and keys of different counts (neither a multiple of the row block or of the
    /// packed panels' 16), batch 2, head width 16 as in the tiny TripoSR; a second width of
    /// the key set's rows than of the queries' is the point of the op.
    #[test]
    fn cross_attention_matches_eager_attention() {
        let dev = Device::Cpu;
        for (queries, keys, heads, d) in
            [(3 * ROWS + 5, 37, 2, 16), (7, 1, 4, 8), (ROWS, 100, 1, 64)]
        {
            let c = heads * d;
            let q = Tensor::randn(0f32, 1.0, (2, queries, c), &dev).expect("q");
            let kv = Tensor::randn(0f32, 1.0, (2, keys, 2 * c), &dev).expect("kv");
            let fused = q
                .apply_op2_no_bwd(&kv, &CrossAttention { heads })
                .expect("cross");
            let (k, v) = (
                kv.narrow(2, 0, c).expect("k"),
                kv.narrow(2, c, c).expect("v"),
            );
            let err = max_abs_diff(&fused, &eager(&q, &k, &v, heads));
            assert!(
                err < 1e-5,
                "{queries}×{keys}, {heads}×{d}: max abs error {err}"
            );
        }
    }

    #[test]
    fn mismatched_widths_are_refused() {
        let dev = Device::Cpu;
        let q = Tensor::zeros((1, 4, 8), candle_core::DType::F32, &dev).expect("q");
        let kv = Tensor::zeros((1, 4, 12), candle_core::DType::F32, &dev).expect("kv");
        assert!(q
            .apply_op2_no_bwd(&kv, &CrossAttention { heads: 2 })
            .is_err());
        assert!(q.apply_op1_no_bwd(&FusedAttention { heads: 0 }).is_err());
    }
}
