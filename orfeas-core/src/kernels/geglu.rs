//! The GEGLU feed-forward's first half on the CPU: `hidden · gelu(gate)` where
//! `[hidden | gate] = x Wᵀ + b`, in one pass.
//!
//! Why: as tensor ops the projection writes a `[N, 2H]` tensor (at TripoSR's 3072 tokens and
//! H = 4096, 100 MB per block), `chunk` makes two strided views of it, GELU and the product each
//! stream a fresh `[N, H]` tensor. Here the weight is packed in column chunks that pair `J`
//! hidden columns with their `J` gate columns; a task computes one block of rows × one chunk
//! into a small per-thread buffer (started at the bias), applies GELU to the gate half while it
//! is in cache, and writes only the `rows × J` products.

use std::cell::RefCell;

use candle_core::{bail, CpuStorage, CustomOp1, DType, Layout, Module, Result, Shape, Tensor, D};
use rayon::prelude::*;

use super::sgemm::{self, PackedB};
use super::{applies_to, contiguous_f32, vmath, Unfilled};

/// Rows per task (a multiple of the micro-kernels' 6 and 12).
const ROWS: usize = 72;

/// Hidden columns per chunk: a task's buffer is `ROWS × 2J` (144 KB), in L2 with the `ROWS × K`
/// rows of `x` it reuses across chunks.
const CHUNK: usize = 256;

thread_local! {
    /// Per-thread `ROWS × 2J` projection buffer, reused across tasks.
    static PROJECTED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `W` (`[2H, K]`, hidden rows first, then gate rows, as `GEGLU.proj` stores it) and its bias,
/// packed as chunks of `[hidden columns | gate columns]`.
#[derive(Clone, Debug, Default)]
pub(crate) struct PackedGeglu {
    k: usize,
    hidden: usize,
    /// Chunk `c`: `Wᵀ` columns `cJ..cJ + w` of the hidden half, then the same of the gate half.
    chunks: Vec<PackedB>,
    /// Chunk `c`'s `2w` biases, laid out like its columns.
    biases: Vec<Vec<f32>>,
}

impl PackedGeglu {
    /// `weight`: `[2 · hidden, k]` row-major; `bias`: `2 · hidden` values.
    pub fn new(weight: &[f32], bias: &[f32], k: usize, hidden: usize) -> Result<Self> {
        if weight.len() != 2 * hidden * k || bias.len() != 2 * hidden {
            bail!(
                "geglu: weight of {} values and bias of {} for [{}, {k}]",
                weight.len(),
                bias.len(),
                2 * hidden
            )
        }
        let mut chunks = Vec::with_capacity(hidden.div_ceil(CHUNK));
        let mut biases = Vec::with_capacity(hidden.div_ceil(CHUNK));
        for first in (0..hidden).step_by(CHUNK) {
            let w = CHUNK.min(hidden - first);
            let rows = |from: usize| &weight[from * k..(from + w) * k];
            let pair = [rows(first), rows(hidden + first)].concat();
            let mut packed = PackedB::default();
            packed.pack_columns(k, 2 * w, &pair, k);
            chunks.push(packed);
            biases.push(
                [
                    &bias[first..first + w],
                    &bias[hidden + first..hidden + first + w],
                ]
                .concat(),
            );
        }
        Ok(Self {
            k,
            hidden,
            chunks,
            biases,
        })
    }

    pub fn hidden(&self) -> usize {
        self.hidden
    }

    pub fn k(&self) -> usize {
        self.k
    }

    /// The weight (`[2H, K]` row-major) and bias as they were given, for the tensor-op path.
    pub fn unpacked(&self) -> (Vec<f32>, Vec<f32>) {
        let (mut hidden_w, mut gate_w) = (Vec::new(), Vec::new());
        let (mut hidden_b, mut gate_b) = (Vec::new(), Vec::new());
        for (chunk, bias) in self.chunks.iter().zip(&self.biases) {
            let w = chunk.n() / 2;
            let rows = chunk.transposed();
            hidden_w.extend_from_slice(&rows[..w * self.k]);
            gate_w.extend_from_slice(&rows[w * self.k..]);
            hidden_b.extend_from_slice(&bias[..w]);
            gate_b.extend_from_slice(&bias[w..]);
        }
        hidden_w.append(&mut gate_w);
        hidden_b.append(&mut gate_b);
        (hidden_w, hidden_b)
    }
}

/// `x = [.., K]` → `[.., H]`: `hidden · gelu_erf(gate)` of `x Wᵀ + b`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geglu<'a> {
    pub weight: &'a PackedGeglu,
}

impl CustomOp1 for Geglu<'_> {
    fn name(&self) -> &'static str {
        "orfeas-geglu"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (k, h) = (self.weight.k, self.weight.hidden);
        let dims = layout.shape().dims();
        let Some((&last, lead)) = dims.split_last() else {
            bail!("geglu: scalar input")
        };
        if last != k {
            bail!("geglu: input {dims:?} for a weight of depth {k}")
        }
        let x = contiguous_f32("geglu", storage, layout)?;
        let m: usize = lead.iter().product();
        let mut out = Unfilled::new(m * h);
        let out_ptr = out.shared();
        let blocks = m.div_ceil(ROWS);
        let chunks = self.weight.chunks.len();
        (0..blocks * chunks).into_par_iter().for_each(|task| {
            let (block, chunk) = (task / chunks, task % chunks);
            let (first, rows) = (block * ROWS, ROWS.min(m - block * ROWS));
            let (packed, bias) = (&self.weight.chunks[chunk], &self.weight.biases[chunk]);
            let w = packed.n() / 2;
            PROJECTED.with_borrow_mut(|buffer| {
                buffer.clear();
                for _ in 0..rows {
                    buffer.extend_from_slice(bias);
                }
                // SAFETY: rows `first..first + rows` of `x` (`m × k`) are in bounds, `buffer`
                // is `rows × 2w`.
                unsafe {
                    sgemm::gemm(
                        rows,
                        x[first * k..].as_ptr(),
                        k,
                        packed,
                        buffer.as_mut_ptr(),
                        2 * w,
                        true,
                    )
                };
                for (r, row) in buffer.chunks_exact_mut(2 * w).enumerate() {
                    let (hidden, gate) = row.split_at_mut(w);
                    vmath::gelu_in_place(gate);
                    // SAFETY: row `first + r`, columns `chunk·J..chunk·J + w` of the `m × h`
                    // output are this task's alone.
                    let out =
                        unsafe { super::unwritten(out_ptr.at((first + r) * h + chunk * CHUNK), w) };
                    for ((o, &x), &g) in out.iter_mut().zip(&*hidden).zip(&*gate) {
                        o.write(x * g);
                    }
                }
            });
        });
        // SAFETY: the tasks cover every (row block, chunk) and each wrote all its values.
        let out = unsafe { out.into_filled() };
        let mut shape = lead.to_vec();
        shape.push(h);
        Ok((CpuStorage::F32(out), shape.into()))
    }
}

/// `GEGLU` (`proj`, then `hidden · gelu_erf(gate)`) from one set of weights: [`Geglu`] on the
/// CPU, candle's layer and tensor ops elsewhere.
#[derive(Debug)]
pub(crate) enum GegluDense {
    /// f32 on the CPU: packed once; the weight tensor is not kept.
    Packed(PackedGeglu),
    /// Other devices and dtypes.
    Tensors(candle_nn::Linear),
}

impl GegluDense {
    /// `layer`: `proj`, `[2H, K]` with a bias.
    pub fn new(layer: candle_nn::Linear) -> Result<Self> {
        let w = layer.weight();
        if !(w.device().is_cpu() && w.dtype() == DType::F32) {
            return Ok(Self::Tensors(layer));
        }
        let (n2, k) = w.dims2()?;
        if n2 % 2 != 0 {
            bail!("geglu: {n2} output features are not two halves")
        }
        let bias = match layer.bias() {
            Some(b) => b.to_vec1()?,
            None => vec![0.0; n2],
        };
        let weight =
            super::with_host_values(w, |values| PackedGeglu::new(values, &bias, k, n2 / 2))??;
        Ok(Self::Packed(weight))
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let unpacked;
        let layer = match self {
            Self::Packed(weight) if applies_to(x) => {
                return x.contiguous()?.apply_op1_no_bwd(&Geglu { weight });
            }
            // Only when the kernels are switched off (tests of the generic path).
            Self::Packed(weight) => {
                let (w, b) = weight.unpacked();
                let w = Tensor::from_vec(w, (2 * weight.hidden(), weight.k()), x.device())?;
                unpacked = candle_nn::Linear::new(
                    w,
                    Some(Tensor::from_vec(b, 2 * weight.hidden(), x.device())?),
                );
                &unpacked
            }
            Self::Tensors(layer) => layer,
        };
        let projected = layer.forward(x)?;
        let halves = projected.chunk(2, D::Minus1)?;
        &halves[0] * halves[1].gelu_erf()?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    use crate::depth::depth_anything::max_abs_diff;

    /// Against `proj` then `chunk(2, -1)` then `hidden * gelu(gate)` as tensor ops, with a
    /// partial last chunk and a partial last row block.
    #[test]
    fn matches_the_tensor_op_geglu() {
        let dev = Device::Cpu;
        for (m, k, h) in [(ROWS + 7, 24, CHUNK + 40), (3, 8, 5)] {
            let x = Tensor::randn(0f32, 1.0, (1, m, k), &dev).expect("x");
            let w = Tensor::randn(0f32, 1.0, (2 * h, k), &dev).expect("w");
            let b = Tensor::randn(0f32, 1.0, 2 * h, &dev).expect("b");
            let projected = candle_nn::Linear::new(w.clone(), Some(b.clone()))
                .forward(&x)
                .expect("proj");
            let halves = projected.chunk(2, D::Minus1).expect("chunk");
            let want = (&halves[0] * halves[1].gelu_erf().expect("gelu")).expect("product");
            let (wv, bv) = (
                w.flatten_all().and_then(|t| t.to_vec1::<f32>()).expect("w"),
                b.to_vec1::<f32>().expect("b"),
            );
            let packed = PackedGeglu::new(&wv, &bv, k, h).expect("pack");
            assert_eq!(
                packed.unpacked(),
                (wv, bv),
                "unpacked gives the weights back"
            );
            let got = x
                .apply_op1_no_bwd(&Geglu { weight: &packed })
                .expect("geglu");
            let err = max_abs_diff(&got, &want);
            assert!(err < 1e-4, "{m}×{k}→{h}: max abs error {err}");
        }
    }
}
