//! 1×1 and 3×3 convolutions (padding `k / 2`, any stride) on the CPU: bias, and the ReLUs
//! around them in the DPT blocks, fused into one pass per strip of output rows.
//!
//! Why: candle builds a convolution out of separate tensor ops (padding, im2col gather or
//! stack, matmul, concatenation, bias broadcast), each a fresh allocation and a full pass over
//! images of up to 32 × 518 × 518; in the DPT neck and head that overhead cost more than the
//! arithmetic. Here each task takes a strip of output rows, writes the strip's im2col matrix
//! into reused per-thread buffers (applying the input ReLU on the way), starts the output at
//! the bias and accumulates `weight · columns` into it, in place in the `[B, C_out, H, W]`
//! result (channels are the product's rows, the strip's pixels its columns).

use std::cell::RefCell;
use std::mem::MaybeUninit;

use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape};
use rayon::prelude::*;

use super::sgemm::{self, PackedB};
use super::{contiguous_f32, unwritten, Unfilled};

/// Output pixels per task (whole output rows, at least one): the strip's packed im2col matrix
/// (256 × 9·C_in floats, 590 KB for the 64-channel fusion blocks) stays near L2 while every
/// output channel runs over it; 256 measured ~5 % less CPU time per forward than 1024.
const PIXELS_PER_TASK: usize = 256;

thread_local! {
    /// The strip's im2col matrix (`depth × pixels`), packed for the product, and one row of it.
    static COLUMNS: RefCell<(PackedB, Vec<f32>)> = RefCell::new(Default::default());
}

/// `y = relu?(conv(relu?(x), weight) + bias)` for `x = [B, C_in, H, W]`, `weight =
/// [C_out, C_in · k²]` (PyTorch's `[C_out, C_in, k, k]` flattened), `bias = [C_out]`; zero
/// padding `k / 2`. CPU and f32 only.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Conv {
    /// 1 or 3.
    pub kernel: usize,
    pub stride: usize,
    pub relu_input: bool,
    pub relu_output: bool,
}

impl CustomOp3 for Conv {
    fn name(&self) -> &'static str {
        "orfeas-conv"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (batch, c_in, h, w) = xl.shape().dims4()?;
        let (c_out, depth) = wl.shape().dims2()?;
        let taps = self.kernel * self.kernel;
        if !matches!(self.kernel, 1 | 3)
            || self.stride == 0
            || h == 0
            || w == 0
            || depth != c_in * taps
            || bl.shape().dims1()? != c_out
        {
            bail!(
                "conv: kernel {}, input {:?}, weight {:?}, bias {:?}",
                self.kernel,
                xl.shape(),
                wl.shape(),
                bl.shape()
            )
        }
        let slice = |s, l| contiguous_f32("conv", s, l);
        let (x, weight, bias) = (slice(xs, xl)?, slice(ws, wl)?, slice(bs, bl)?);
        // PyTorch's output size for padding k / 2.
        let pad = self.kernel / 2;
        let (oh, ow) = (
            (h + 2 * pad - self.kernel) / self.stride + 1,
            (w + 2 * pad - self.kernel) / self.stride + 1,
        );
        let plane = oh * ow;
        let mut out = Unfilled::new(batch * c_out * plane);
        let rows_per_task = (PIXELS_PER_TASK / ow.max(1)).clamp(1, oh.max(1));
        let strips = oh.div_ceil(rows_per_task);
        let out_ptr = out.shared();
        let dims = Dims {
            c_in,
            c_out,
            h,
            w,
            oh,
            ow,
        };
        (0..batch * strips).into_par_iter().for_each(|task| {
            let (image, strip) = (task / strips, task % strips);
            let rows = strip * rows_per_task..((strip + 1) * rows_per_task).min(oh);
            let x = &x[image * c_in * h * w..(image + 1) * c_in * h * w];
            // Tasks write disjoint row ranges of their own image; `out` outlives the loop.
            let out = out_ptr.at(image * c_out * plane);
            COLUMNS.with_borrow_mut(|(packed, row)| {
                self.strip(x, weight, bias, out, dims, rows, packed, row)
            });
        });
        // SAFETY: the strips cover every output row of every image, and each strip writes all
        // `c_out` planes of its rows (bias first).
        let out = unsafe { out.into_filled() };
        Ok((CpuStorage::F32(out), (batch, c_out, oh, ow).into()))
    }
}

#[derive(Clone, Copy)]
struct Dims {
    c_in: usize,
    c_out: usize,
    /// Input size.
    h: usize,
    w: usize,
    /// Output size.
    oh: usize,
    ow: usize,
}

impl Conv {
    /// Output rows `rows` of one image, all output channels.
    #[allow(clippy::too_many_arguments)]
    fn strip(
        &self,
        x: &[f32],
        weight: &[f32],
        bias: &[f32],
        out: *mut f32,
        d: Dims,
        rows: std::ops::Range<usize>,
        packed: &mut PackedB,
        row: &mut Vec<f32>,
    ) {
        let (plane, pixels) = (d.oh * d.ow, rows.len() * d.ow);
        let depth = d.c_in * self.kernel * self.kernel;
        if self.kernel == 1 && self.stride == 1 && !self.relu_input {
            // The input rows are the columns already: channel planes at stride `plane`.
            packed.pack_rows(depth, pixels, &x[rows.start * d.w..], plane);
        } else {
            packed.reset(depth, pixels);
            row.resize(d.ow, 0.0);
            self.fill_columns(x, d, rows.clone(), packed, row);
        }
        let out = out.wrapping_add(rows.start * d.ow);
        // SAFETY: this task's output block is rows `rows` of each of the `c_out` planes of its
        // image (`out` is that image's base, plane stride `plane`); the weight is `c_out × depth`.
        unsafe {
            for (c, &b) in bias.iter().enumerate() {
                unwritten(out.add(c * plane), pixels).fill(MaybeUninit::new(b));
            }
            // out[c, p] += Σ_k weight[c, k] · columns[k, p].
            sgemm::gemm(d.c_out, weight.as_ptr(), depth, packed, out, plane, true);
            if self.relu_output {
                for c in 0..d.c_out {
                    for v in std::slice::from_raw_parts_mut(out.add(c * plane), pixels) {
                        *v = v.max(0.0);
                    }
                }
            }
        }
    }

    /// im2col of output rows `rows`: column `(ci · k + ky) · k + kx` (PyTorch's weight order)
    /// holds input `(ci, s·oy + ky - k/2, s·ox + kx - k/2)` for each output pixel `(oy, ox)`,
    /// zero outside. Built one output row at a time in `row`, then written into the packed
    /// matrix (no unpacked copy of the whole strip).
    fn fill_columns(
        &self,
        x: &[f32],
        d: Dims,
        rows: std::ops::Range<usize>,
        packed: &mut PackedB,
        row: &mut [f32],
    ) {
        let (k, s, pad) = (self.kernel, self.stride, self.kernel / 2);
        let relu = self.relu_input;
        for index in 0..d.c_in * k * k {
            let (ci, ky, kx) = (index / (k * k), index / k % k, index % k);
            for (r, oy) in rows.clone().enumerate() {
                let dst = &mut *row;
                let Some(sy) = (oy * s + ky).checked_sub(pad).filter(|&sy| sy < d.h) else {
                    dst.fill(0.0);
                    packed.write_row(index, r * d.ow, dst);
                    continue;
                };
                let src = &x[(ci * d.h + sy) * d.w..(ci * d.h + sy + 1) * d.w];
                if s == 1 {
                    // Output x reads input x + kx - pad; the rest of the row is padding.
                    let (dst_from, src_from) = if kx < pad {
                        (pad - kx, 0)
                    } else {
                        (0, kx - pad)
                    };
                    let len = d.w - dst_from.max(src_from);
                    dst[..dst_from].fill(0.0);
                    dst[dst_from + len..].fill(0.0);
                    let (dst, src) = (
                        &mut dst[dst_from..dst_from + len],
                        &src[src_from..src_from + len],
                    );
                    if relu {
                        dst.iter_mut().zip(src).for_each(|(o, &v)| *o = v.max(0.0));
                    } else {
                        dst.copy_from_slice(src);
                    }
                } else {
                    for (ox, o) in dst.iter_mut().enumerate() {
                        let v = (ox * s + kx)
                            .checked_sub(pad)
                            .and_then(|sx| src.get(sx))
                            .copied()
                            .unwrap_or(0.0);
                        *o = if relu { v.max(0.0) } else { v };
                    }
                }
                packed.write_row(index, r * d.ow, row);
            }
        }
    }
}
