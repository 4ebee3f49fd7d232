//! Modulated deformable convolution (DCNv2) as torchvision's `deform_conv2d` computes it, for
//! BiRefNet's ASPP-deformable blocks: one offset group, one weight group, a mask.
//!
//! torchvision's semantics (`csrc/ops/cpu/deform_conv2d_kernel.cpp`): tap `t = i · k + j` of
//! output pixel `(oy, ox)` samples the input at `y = oy · stride − pad + i · dilation + Δy`,
//! `x = ox · stride − pad + j · dilation + Δx`, where `Δy` is offset channel `2t` and `Δx`
//! channel `2t + 1`; bilinearly, as zero when `y ≤ −1`, `y ≥ H`, `x ≤ −1` or `x ≥ W`, and
//! otherwise from the four neighbours, each outside the image counting as zero. The sample,
//! times the mask of that tap and pixel, is entry `(c · k² + t, pixel)` of the im2col matrix,
//! which the `[C_out, C_in, k, k]` weight multiplies; then the bias.
//!
//! candle has no such op. The generic path builds it from gathers (what CUDA and half
//! precision run): it materialises the four neighbours of every sample, `4 · B · OH · OW · k²`
//! rows of `C_in`, then their weighted sum and a product; 14× slower than the fused kernel on
//! the CPU for a 256-channel 3×3 layer on a 64 × 64 map.
//!
//! The fused kernel (CPU, f32) samples a channels-last copy of the input, so that each sample
//! is the weighted sum of four contiguous channel vectors (vectorised), not four scalar gathers
//! per channel: with the copy, the weight packing and the output transpose that costs ~7 ms of
//! one core where sampling the channel planes took 14 ms (256 channels, 3×3, 64 × 64). Those
//! channel vectors are a row of the transposed im2col matrix, which is then the product's `A`
//! as is, against the weight transposed and packed once per call. Each task takes a strip of
//! output pixels, writes its rows into a reused per-thread buffer, multiplies, and transposes
//! the `pixels × C_out` product into the output planes with the bias (`k² · C_in / C_out`
//! times less data than transposing the columns). The kernel then takes ~1.2× the time of the
//! plain 3×3 convolution kernel of the same size.

use std::cell::{Cell, RefCell};
use std::ops::Range;

use candle_core::{bail, CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::sgemm::{self, PackedB};
use super::{applies_to, contiguous_f32, with_host_values, Isa, Unfilled};

/// Output pixels per task: with 256 the strip's columns (256 × 9 · C_in floats, 2.4 MB for
/// 256 channels) stay in L2 (4 MB here) while every output channel's weights run over them,
/// and a 64 × 64 map still gives 16 tasks.
const PIXELS_PER_TASK: usize = 256;

/// At most this many column values per task (4 MB): deep products (many channels, 7×7) take
/// fewer pixels per task instead of a larger buffer on every thread...
const COLUMN_ELEMENTS: usize = 1 << 20;

/// ...but at least one tile of rows of the product's micro-kernel.
const MIN_PIXELS: usize = 12;

/// Upper bound on the elements of the generic path's gathered neighbours per chunk of output
/// rows (64 MB of f32): a 256-channel 3×3 layer on a 128 × 128 map would otherwise gather
/// 151 M values at once.
const CHUNK_ELEMENTS: usize = 16 << 20;

/// Padding, stride and dilation, the same in both directions, as BiRefNet passes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeformGeometry {
    pub padding: usize,
    pub stride: usize,
    pub dilation: usize,
}

impl DeformGeometry {
    /// BiRefNet's geometry: stride 1, dilation 1 (and padding `k / 2`).
    pub(crate) fn padding(padding: usize) -> Self {
        Self {
            padding,
            stride: 1,
            dilation: 1,
        }
    }
}

/// `torchvision.ops.deform_conv2d(input, offset, weight, bias, stride, padding, dilation, mask)`
/// for `input = [B, C_in, H, W]`, `offset = [B, 2·k², OH, OW]`, `mask = [B, k², OH, OW]`,
/// `weight = [C_out, C_in, k, k]`, `bias = [C_out]`; the result is `[B, C_out, OH, OW]`.
///
/// Any device and dtype; the fused kernel on the CPU in f32. Sampling positions are computed in
/// f32 whatever the dtype: in bf16 a coordinate near 64 would only be resolved to half a pixel.
/// Shapes that torchvision would reject (or that need groups) are an error, not a panic.
pub(crate) fn deform_conv2d(
    input: &Tensor,
    offset: &Tensor,
    mask: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    geometry: DeformGeometry,
) -> Result<Tensor> {
    let d = Dims::new(
        input.dims(),
        offset.dims(),
        mask.dims(),
        weight.dims(),
        bias.map(Tensor::dims),
        geometry,
    )?;
    for (name, t) in [("offset", offset), ("mask", mask), ("weight", weight)]
        .into_iter()
        .chain(bias.map(|b| ("bias", b)))
    {
        if t.dtype() != input.dtype() || !t.device().same_device(input.device()) {
            bail!(
                "deform_conv2d: {name} is {:?} on {:?}, input {:?} on {:?}",
                t.dtype(),
                t.device().location(),
                input.dtype(),
                input.device().location()
            )
        }
    }
    if d.batch == 0 {
        return Tensor::zeros((0, d.c_out, d.oh, d.ow), input.dtype(), input.device());
    }
    if applies_to(input) {
        let (input, offset, mask) = (
            input.contiguous()?,
            offset.contiguous()?,
            mask.contiguous()?,
        );
        let run = |weight: &[f32], bias: Option<&[f32]>| {
            let op = Fused {
                weight,
                bias,
                dims: d,
                geometry,
            };
            input.apply_op3_no_bwd(&offset, &mask, &op)
        };
        return with_host_values(weight, |weight| match bias {
            Some(bias) => with_host_values(bias, |bias| run(weight, Some(bias)))?,
            None => run(weight, None),
        })?;
    }
    generic(
        input,
        offset,
        mask,
        weight,
        bias,
        d,
        geometry,
        CHUNK_ELEMENTS,
    )
}

/// The sizes of one call, checked against each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Dims {
    batch: usize,
    c_in: usize,
    c_out: usize,
    /// Input size.
    h: usize,
    w: usize,
    kernel: usize,
    /// Output size.
    oh: usize,
    ow: usize,
}

impl Dims {
    fn new(
        input: &[usize],
        offset: &[usize],
        mask: &[usize],
        weight: &[usize],
        bias: Option<&[usize]>,
        g: DeformGeometry,
    ) -> Result<Self> {
        let fail = |why: String| -> Result<Self> {
            bail!(
                "deform_conv2d: input {input:?}, offset {offset:?}, mask {mask:?}, weight \
                 {weight:?}, bias {bias:?}, {g:?}: {why}"
            )
        };
        let (&[batch, c_in, h, w], &[c_out, c_in_w, kh, kw]) = (input, weight) else {
            return fail("input and weight must be 4-d".into());
        };
        if kh != kw || kh == 0 {
            return fail(format!("kernel {kh}×{kw}: square kernels only"));
        }
        if c_in_w != c_in {
            return fail(format!(
                "the weight takes {c_in_w} channels, the input has {c_in} (one weight group only)"
            ));
        }
        if c_in == 0 || c_out == 0 {
            return fail("no channels".into());
        }
        if g.stride == 0 || g.dilation == 0 {
            return fail("stride and dilation must be at least 1".into());
        }
        // Saturating: absurd sizes are an error below, not an overflow.
        let span = g.dilation.saturating_mul(kh - 1).saturating_add(1);
        let padded = |n: usize| n.saturating_add(g.padding.saturating_mul(2));
        if padded(h) < span || padded(w) < span {
            return fail(format!(
                "the {span}-pixel kernel span exceeds the padded input"
            ));
        }
        let (oh, ow) = (
            (padded(h) - span) / g.stride + 1,
            (padded(w) - span) / g.stride + 1,
        );
        let taps = kh * kh;
        if offset != [batch, 2 * taps, oh, ow] {
            return fail(format!(
                "offset must be [{batch}, {}, {oh}, {ow}] (one offset group)",
                2 * taps
            ));
        }
        if mask != [batch, taps, oh, ow] {
            return fail(format!("mask must be [{batch}, {taps}, {oh}, {ow}]"));
        }
        if bias.is_some_and(|b| b != [c_out]) {
            return fail(format!("bias must be [{c_out}]"));
        }
        // Both paths index pixels with u32 (the generic one across the whole batch).
        if h.checked_mul(w)
            .and_then(|hw| hw.checked_mul(batch))
            .is_none_or(|n| n > u32::MAX as usize)
        {
            return fail("more than 2³² input pixels".into());
        }
        Ok(Self {
            batch,
            c_in,
            c_out,
            h,
            w,
            kernel: kh,
            oh,
            ow,
        })
    }

    fn taps(&self) -> usize {
        self.kernel * self.kernel
    }

    /// Output pixels per image.
    fn plane(&self) -> usize {
        self.oh * self.ow
    }
}

/// The tensor-op path (any device and dtype). The gathered rows are whole channel vectors of a
/// channels-last copy of the input, in (image, pixel, tap) order, so their weighted sum is
/// already the im2col matrix transposed, `[B · OH · OW, k² · C_in]`, and no permute of that
/// (largest) tensor is needed: the small weight is permuted to `[k² · C_in, C_out]` instead.
#[allow(clippy::too_many_arguments)]
fn generic(
    input: &Tensor,
    offset: &Tensor,
    mask: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    d: Dims,
    g: DeformGeometry,
    chunk_elements: usize,
) -> Result<Tensor> {
    let (dev, dtype) = (input.device(), input.dtype());
    let (taps, plane, k) = (d.taps(), d.plane(), d.kernel);
    // [B, P, T] (pixel-major, tap-minor), f32.
    let offset = offset
        .to_dtype(DType::F32)?
        .reshape((d.batch, taps, 2, plane))?;
    let per_pixel = |t: Tensor| t.squeeze(2)?.transpose(1, 2);
    let dy = per_pixel(offset.narrow(2, 0, 1)?)?;
    let dx = per_pixel(offset.narrow(2, 1, 1)?)?;
    let mask = mask
        .to_dtype(DType::F32)?
        .reshape((d.batch, taps, plane))?
        .transpose(1, 2)?;
    // The undeformed positions, integers as torchvision computes them before adding the offset.
    let (mut base_y, mut base_x) = (
        Vec::with_capacity(plane * taps),
        Vec::with_capacity(plane * taps),
    );
    for oy in 0..d.oh {
        for ox in 0..d.ow {
            for t in 0..taps {
                let at =
                    |o: usize, i: usize| (o * g.stride + i * g.dilation) as f32 - g.padding as f32;
                base_y.push(at(oy, t / k));
                base_x.push(at(ox, t % k));
            }
        }
    }
    let y = Tensor::from_vec(base_y, (1, plane, taps), dev)?.broadcast_add(&dy)?;
    let x = Tensor::from_vec(base_x, (1, plane, taps), dev)?.broadcast_add(&dx)?;
    let (h, w) = (d.h as f32, d.w as f32);
    let inside = y
        .gt(-1f32)?
        .mul(&y.lt(h)?)?
        .mul(&x.gt(-1f32)?)?
        .mul(&x.lt(w)?)?;
    let scale = mask.mul(&inside.to_dtype(DType::F32)?)?;
    let (y0, x0) = (y.floor()?, x.floor()?);
    let (ly, lx) = ((&y - &y0)?, (&x - &x0)?);
    let (hy, hx) = (ly.affine(-1.0, 1.0)?, lx.affine(-1.0, 1.0)?);
    let (y1, x1) = (y0.affine(1.0, 1.0)?, x0.affine(1.0, 1.0)?);
    // 1 where a neighbour coordinate is inside `0..n` (u8), and the coordinate clamped there
    // (u32) so that every gathered index is valid; the weight zeroes what the clamp moved.
    let in_range = |v: &Tensor, n: usize| v.ge(0f32)?.mul(&v.le((n - 1) as f32)?);
    let clamped = |v: &Tensor, n: usize| v.clamp(0f32, (n - 1) as f32)?.to_dtype(DType::U32);
    let image_start: Vec<u32> = (0..d.batch).map(|b| (b * d.h * d.w) as u32).collect();
    let image_start = Tensor::from_vec(image_start, (d.batch, 1, 1), dev)?;
    let (mut indexes, mut weights) = (Vec::with_capacity(4), Vec::with_capacity(4));
    for (ry, wy) in [(&y0, &hy), (&y1, &ly)] {
        for (rx, wx) in [(&x0, &hx), (&x1, &lx)] {
            let valid = in_range(ry, d.h)?.mul(&in_range(rx, d.w)?)?;
            weights.push(wy.mul(wx)?.mul(&valid.to_dtype(DType::F32)?)?.mul(&scale)?);
            let index = clamped(ry, d.h)?.affine(d.w as f64, 0.0)?;
            indexes.push(index.add(&clamped(rx, d.w)?)?.broadcast_add(&image_start)?);
        }
    }
    // [B, P, T, 4]
    let indexes = Tensor::stack(&indexes, 3)?;
    let weights = Tensor::stack(&weights, 3)?.to_dtype(dtype)?;
    let pixels = input
        .permute((0, 2, 3, 1))?
        .reshape((d.batch * d.h * d.w, d.c_in))?;
    // Row `t · C_in + c` is tap `t` of channel `c`, as in the gathered columns.
    let weight = weight
        .reshape((d.c_out, d.c_in, taps))?
        .permute((2, 1, 0))?
        .reshape((taps * d.c_in, d.c_out))?;
    let rows_per_chunk = (chunk_elements / (d.batch * d.ow * taps * 4 * d.c_in)).clamp(1, d.oh);
    let mut chunks = Vec::with_capacity(d.oh.div_ceil(rows_per_chunk));
    for first in (0..d.oh).step_by(rows_per_chunk) {
        let len = rows_per_chunk.min(d.oh - first) * d.ow;
        let samples = d.batch * len * taps;
        let index = indexes.narrow(1, first * d.ow, len)?.flatten_all()?;
        let weight_of = weights
            .narrow(1, first * d.ow, len)?
            .reshape((samples, 4, 1))?;
        let columns = pixels
            .index_select(&index, 0)?
            .reshape((samples, 4, d.c_in))?
            .broadcast_mul(&weight_of)?
            .sum(1)?
            .reshape((d.batch * len, taps * d.c_in))?;
        chunks.push(columns.matmul(&weight)?.reshape((d.batch, len, d.c_out))?);
    }
    let out = Tensor::cat(&chunks, 1)?
        .transpose(1, 2)?
        .reshape((d.batch, d.c_out, d.oh, d.ow))?;
    match bias {
        Some(bias) => out.broadcast_add(&bias.reshape((1, d.c_out, 1, 1))?),
        None => Ok(out),
    }
}

/// One bilinear sample: the four neighbours' pixel indices and their weights, the mask folded
/// in; a neighbour outside the image has weight 0 (and index 0, so that every load stays in
/// bounds).
#[derive(Clone, Copy)]
struct Sample {
    at: [u32; 4],
    weight: [f32; 4],
}

/// Pixels per task of the channels-last copy: a 64 × 256-channel block (64 KB) of the copy
/// stays in L2 while each channel row is read into it.
const TRANSPOSE_PIXELS: usize = 64;

/// Per-thread buffers, reused from strip to strip.
#[derive(Default)]
struct Buffers {
    /// The strip's im2col matrix transposed, `pixels × k² · C_in` row-major (tap-major
    /// depth): the product's `A`.
    columns: Vec<f32>,
    /// The product, `pixels × C_out`, before it is transposed into the output planes.
    product: Vec<f32>,
}

/// On the calling thread, kept from call to call: a fresh multi-megabyte buffer is faulted in
/// page by page each time (1–2 ms for a 256-channel 3×3 weight, a tenth of the call). They stay
/// as large as the largest call so far.
#[derive(Default)]
struct CallBuffers {
    /// The input channels-last, `[B, H · W, C_in]`.
    pixels: Vec<f32>,
    /// `Wᵀ`, packed.
    weight: PackedB,
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers::default());
    static CALL_BUFFERS: Cell<CallBuffers> = Cell::new(CallBuffers::default());
}

/// The fused CPU kernel on `(input, offset, mask)`, contiguous f32; the weight
/// (`[C_out, C_in · k²]` row-major, the PyTorch layout) and bias are borrowed host values.
#[derive(Debug, Clone, Copy)]
struct Fused<'a> {
    weight: &'a [f32],
    bias: Option<&'a [f32]>,
    dims: Dims,
    geometry: DeformGeometry,
}

impl CustomOp3 for Fused<'_> {
    fn name(&self) -> &'static str {
        "orfeas-deform-conv2d"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        os: &CpuStorage,
        ol: &Layout,
        ms: &CpuStorage,
        ml: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = self.dims;
        let (taps, plane) = (d.taps(), d.plane());
        if xl.dims() != [d.batch, d.c_in, d.h, d.w]
            || ol.dims() != [d.batch, 2 * taps, d.oh, d.ow]
            || ml.dims() != [d.batch, taps, d.oh, d.ow]
            || self.weight.len() != d.c_out * d.c_in * taps
            || self.bias.is_some_and(|b| b.len() != d.c_out)
        {
            bail!(
                "deform_conv2d kernel: input {:?}, offset {:?}, mask {:?}, {} weights, for {d:?}",
                xl.shape(),
                ol.shape(),
                ml.shape(),
                self.weight.len()
            )
        }
        let slice = |s, l| contiguous_f32("deform_conv2d", s, l);
        let (x, offset, mask) = (slice(xs, xl)?, slice(os, ol)?, slice(ms, ml)?);
        // Taken out rather than borrowed: on a rayon worker, another call can run on this
        // thread while the loop below waits (it then allocates its own).
        let mut call = CALL_BUFFERS.take();
        channels_last(x, d, &mut call.pixels);
        self.pack_weight(&mut call.weight);
        let mut out = Unfilled::new(d.batch * d.c_out * plane);
        let per_task = (COLUMN_ELEMENTS / (d.c_in * taps)).clamp(MIN_PIXELS, PIXELS_PER_TASK);
        let strips = plane.div_ceil(per_task);
        let out_ptr = out.shared();
        let isa = super::isa();
        let image = d.h * d.w * d.c_in;
        let (pixels, weight) = (&call.pixels, &call.weight);
        (0..d.batch * strips).into_par_iter().for_each(|task| {
            let (b, strip) = (task / strips, task % strips);
            let strip = strip * per_task..((strip + 1) * per_task).min(plane);
            let inputs = Image {
                pixels: &pixels[b * image..(b + 1) * image],
                offset: &offset[b * 2 * taps * plane..(b + 1) * 2 * taps * plane],
                mask: &mask[b * taps * plane..(b + 1) * taps * plane],
            };
            // Tasks write disjoint pixel ranges of their own image; `out` outlives the loop.
            let out = out_ptr.at(b * d.c_out * plane);
            let run = Strip {
                image: inputs,
                weight,
                isa,
                pixels: strip,
            };
            BUFFERS.with_borrow_mut(|buffers| self.strip(run, out, buffers));
        });
        CALL_BUFFERS.set(call);
        // SAFETY: the strips cover every output pixel of every image, and each strip writes
        // all `c_out` planes of its pixels.
        let out = unsafe { out.into_filled() };
        Ok((CpuStorage::F32(out), (d.batch, d.c_out, d.oh, d.ow).into()))
    }
}

/// One image's inputs: the channels-last pixels (`[H · W, C_in]`), offsets and mask.
#[derive(Clone, Copy)]
struct Image<'a> {
    pixels: &'a [f32],
    offset: &'a [f32],
    mask: &'a [f32],
}

/// One task: output pixels `pixels` (`oy · OW + ox`) of `image`.
struct Strip<'a> {
    image: Image<'a>,
    /// `Wᵀ` packed ([`Fused::pack_weight`]).
    weight: &'a PackedB,
    /// Chosen once per call, on the calling thread.
    isa: Isa,
    pixels: Range<usize>,
}

/// `[B, C, H, W]` as `[B, H · W, C]` into `out`, in parallel blocks of pixels.
fn channels_last(x: &[f32], d: Dims, out: &mut Vec<f32>) {
    let (hw, c) = (d.h * d.w, d.c_in);
    out.resize(x.len(), 0.0);
    out.par_chunks_mut(hw * c)
        .zip(x.par_chunks(hw * c))
        .for_each(|(out, x)| {
            out.par_chunks_mut(TRANSPOSE_PIXELS * c)
                .enumerate()
                .for_each(|(block, out)| {
                    let first = block * TRANSPOSE_PIXELS;
                    for (ch, plane) in x.chunks_exact(hw).enumerate() {
                        let src = &plane[first..first + out.len() / c];
                        for (v, &s) in out[ch..].iter_mut().step_by(c).zip(src) {
                            *v = s;
                        }
                    }
                })
        });
}

impl Fused<'_> {
    /// `Wᵀ` packed for the product into `packed`: row `t · C_in + c` (tap-major, as the
    /// columns) holds `weight[·, c, t]`.
    fn pack_weight(&self, packed: &mut PackedB) {
        let d = self.dims;
        let (taps, depth) = (d.taps(), d.c_in * d.taps());
        packed.reset(depth, d.c_out);
        let mut row = vec![0f32; d.c_out];
        // Channel-major: the taps of one channel are neighbours in every weight row, so the
        // strided reads of consecutive rows hit the same cache lines (2.5× faster than
        // tap-major for 256 channels).
        for c in 0..d.c_in {
            for t in 0..taps {
                for (o, v) in row.iter_mut().enumerate() {
                    *v = self.weight[o * depth + c * taps + t];
                }
                packed.write_row(t * d.c_in + c, 0, &row);
            }
        }
    }

    /// All output channels of one strip, into `out` (the image's `[C_out, OH, OW]` base).
    fn strip(&self, strip: Strip, out: *mut f32, buffers: &mut Buffers) {
        let d = self.dims;
        let pixels = strip.pixels.len();
        let depth = d.c_in * d.taps();
        let Buffers { columns, product } = buffers;
        columns.resize(pixels * depth, 0.0);
        product.resize(pixels * d.c_out, 0.0);
        let (image, range) = (strip.image, strip.pixels.clone());
        match strip.isa {
            // SAFETY: `isa` found every feature `fill_avx512` is compiled for.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { fill_avx512(self, image, range, columns) },
            // SAFETY: as above, for `fill_avx2`.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { fill_avx2(self, image, range, columns) },
            _ => fill_columns(self, image, range, columns),
        }
        // SAFETY: `columns` is `pixels × depth` and `product` `pixels × c_out`, row-major, both
        // this thread's; the packed weight is `depth × c_out`.
        unsafe {
            sgemm::gemm(
                pixels,
                columns.as_ptr(),
                depth,
                strip.weight,
                product.as_mut_ptr(),
                d.c_out,
                false,
            );
        }
        // SAFETY: pixels `strip.pixels` of the `c_out` planes of this image are this task's
        // block of `out`; `product` is `pixels × c_out`.
        unsafe {
            transpose_out(
                product,
                self.bias,
                d.c_out,
                out.wrapping_add(strip.pixels.start),
                d.plane(),
            )
        }
    }
}

/// Output channels per pass of [`transpose_out`]: one cache line of each product row read,
/// sixteen output planes written sequentially.
const CHANNEL_BLOCK: usize = 16;

/// `out[o · plane + p] = product[p · c_out + o] + bias[o]` for the `product.len() / c_out`
/// pixels `p` of a strip.
///
/// # Safety
/// `out + o · plane .. + pixels` is writable, and this caller's alone, for every `o < c_out`.
unsafe fn transpose_out(
    product: &[f32],
    bias: Option<&[f32]>,
    c_out: usize,
    out: *mut f32,
    plane: usize,
) {
    for first in (0..c_out).step_by(CHANNEL_BLOCK) {
        let n = CHANNEL_BLOCK.min(c_out - first);
        let mut b = [0f32; CHANNEL_BLOCK];
        if let Some(bias) = bias {
            b[..n].copy_from_slice(&bias[first..first + n]);
        }
        for (p, row) in product.chunks_exact(c_out).enumerate() {
            for (q, (&v, &b)) in row[first..first + n].iter().zip(&b).enumerate() {
                // SAFETY: plane `first + q < c_out`, pixel `p < pixels` (the caller's block).
                unsafe { out.add((first + q) * plane + p).write(v + b) };
            }
        }
    }
}

/// [`fill_columns`] compiled for AVX-512 (16-lane channel loops).
///
/// # Safety
/// The CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fill_avx512(op: &Fused, image: Image, pixels: Range<usize>, columns: &mut [f32]) {
    fill_columns(op, image, pixels, columns)
}

/// [`fill_columns`] compiled for AVX2.
///
/// # Safety
/// The CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fill_avx2(op: &Fused, image: Image, pixels: Range<usize>, columns: &mut [f32]) {
    fill_columns(op, image, pixels, columns)
}

/// The transposed im2col rows of output pixels `pixels`: entry `(pixel, t · C_in + c)` is
/// channel `c` sampled at tap `t`'s deformed position, times the mask. Plain multiplies and
/// adds (no fused multiply-add), so every build computes the same values.
#[inline(always)]
fn fill_columns(op: &Fused, image: Image, pixels: Range<usize>, columns: &mut [f32]) {
    let (d, g) = (op.dims, op.geometry);
    let (c, plane, k) = (d.c_in, d.plane(), d.kernel);
    for (p, column) in pixels.zip(columns.chunks_exact_mut(c * d.taps())) {
        let (oy, ox) = (p / d.ow, p % d.ow);
        for (t, dst) in column.chunks_exact_mut(c).enumerate() {
            // Integers, as torchvision computes them before adding the offset.
            let y = (oy * g.stride + t / k * g.dilation) as f32 - g.padding as f32;
            let x = (ox * g.stride + t % k * g.dilation) as f32 - g.padding as f32;
            let offset = |channel: usize| image.offset[channel * plane + p];
            let mask = image.mask[t * plane + p];
            let Some(s) = sample(d, y + offset(2 * t), x + offset(2 * t + 1), mask) else {
                dst.fill(0.0);
                continue;
            };
            let pixel = |n: usize| &image.pixels[s.at[n] as usize * c..][..c];
            let (p0, p1, p2, p3) = (pixel(0), pixel(1), pixel(2), pixel(3));
            let [w0, w1, w2, w3] = s.weight;
            for ((((v, &a), &b), &e), &f) in dst.iter_mut().zip(p0).zip(p1).zip(p2).zip(p3) {
                *v = w0 * a + w1 * b + w2 * e + w3 * f;
            }
        }
    }
}

/// torchvision's `bilinear_interpolate` at `(y, x)`, times `mask`, as weights of the four
/// neighbours; `None` where it is zero for any image (outside, or a NaN position, where
/// torchvision's behaviour is undefined).
#[inline(always)]
fn sample(d: Dims, y: f32, x: f32, mask: f32) -> Option<Sample> {
    let inside = y > -1.0 && y < d.h as f32 && x > -1.0 && x < d.w as f32;
    if !inside {
        return None;
    }
    let (y0, x0) = (y.floor(), x.floor());
    let (ly, lx) = (y - y0, x - x0);
    let (hy, hx) = (1.0 - ly, 1.0 - lx);
    // In -1..=h-1 and -1..=w-1 now.
    let (y0, x0) = (y0 as isize, x0 as isize);
    let mut s = Sample {
        at: [0; 4],
        weight: [0.0; 4],
    };
    for (n, (dy, dx)) in [(0, 0), (0, 1), (1, 0), (1, 1)].into_iter().enumerate() {
        let (yn, xn) = (y0 + dy, x0 + dx);
        if (0..d.h as isize).contains(&yn) && (0..d.w as isize).contains(&xn) {
            s.at[n] = (yn as usize * d.w + xn as usize) as u32;
            s.weight[n] = mask * [hy, ly][dy as usize] * [hx, lx][dx as usize];
        }
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Instant;

    use candle_core::Device;

    use super::super::{with_isa_limit, with_kernels_disabled};
    use super::*;
    // Through the re-export, as the models call it.
    use crate::kernels::{deform_conv2d, DeformGeometry};

    const FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/deform_conv/reference.safetensors"
    );

    /// max |got − want| / max |want|.
    fn relative_error(got: &Tensor, want: &Tensor) -> f32 {
        assert_eq!(got.dims(), want.dims(), "shapes differ");
        let max = |t: &Tensor| {
            t.abs()
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.max(0))
                .and_then(|t| t.to_scalar::<f32>())
                .expect("max")
        };
        max(&(got - want).expect("difference")) / max(want)
    }

    struct Case {
        input: Tensor,
        offset: Tensor,
        mask: Tensor,
        weight: Tensor,
        bias: Option<Tensor>,
        geometry: DeformGeometry,
    }

    impl Case {
        fn run(&self) -> Result<Tensor> {
            deform_conv2d(
                &self.input,
                &self.offset,
                &self.mask,
                &self.weight,
                self.bias.as_ref(),
                self.geometry,
            )
        }

        fn kernel_and_generic(&self) -> (Tensor, Tensor) {
            let kernel = self.run().expect("kernel");
            let generic = with_kernels_disabled(|| self.run()).expect("generic");
            (kernel, generic)
        }

        /// Offsets of `scale` pixels (many samples land outside the image), masks
        /// `2 · sigmoid(N(0, 1))` as BiRefNet's modulator makes them.
        #[allow(clippy::too_many_arguments)]
        fn random(
            (batch, c_in, c_out, h, w): (usize, usize, usize, usize, usize),
            kernel: usize,
            geometry: DeformGeometry,
            scale: f32,
            with_bias: bool,
        ) -> Self {
            let dev = Device::Cpu;
            let span = geometry.dilation * (kernel - 1) + 1;
            let out = |n: usize| (n + 2 * geometry.padding - span) / geometry.stride + 1;
            let (oh, ow, taps) = (out(h), out(w), kernel * kernel);
            let randn =
                |shape: &[usize], std: f32| Tensor::randn(0f32, std, shape, &dev).expect("randn");
            let mask = candle_nn::ops::sigmoid(&randn(&[batch, taps, oh, ow], 1.0))
                .and_then(|m| m.affine(2.0, 0.0))
                .expect("mask");
            Self {
                input: randn(&[batch, c_in, h, w], 1.0),
                offset: randn(&[batch, 2 * taps, oh, ow], scale),
                mask,
                weight: randn(
                    &[c_out, c_in, kernel, kernel],
                    1.0 / ((c_in * taps) as f32).sqrt(),
                ),
                bias: with_bias.then(|| randn(&[c_out], 1.0)),
                geometry,
            }
        }
    }

    fn fixture() -> (Vec<String>, HashMap<String, Tensor>) {
        let tensors = candle_core::safetensors::load(FIXTURE, &Device::Cpu).expect("fixture");
        let mut names: Vec<String> = tensors
            .keys()
            .filter_map(|k| k.strip_suffix("/output").map(str::to_owned))
            .collect();
        names.sort();
        (names, tensors)
    }

    fn fixture_case(name: &str, t: &HashMap<String, Tensor>) -> (Case, Tensor) {
        let get = |key: &str| t.get(&format!("{name}/{key}")).cloned();
        let tensor = |key: &str| get(key).unwrap_or_else(|| panic!("{name}/{key}"));
        let geometry = tensor("geometry").to_vec1::<f32>().expect("geometry");
        let case = Case {
            input: tensor("input"),
            offset: tensor("offset"),
            mask: tensor("mask"),
            weight: tensor("weight"),
            bias: get("bias"),
            geometry: DeformGeometry {
                padding: geometry[0] as usize,
                stride: geometry[1] as usize,
                dilation: geometry[2] as usize,
            },
        };
        (case, tensor("output"))
    }

    /// torchvision's own output (tests/fixtures/deform_conv/make_fixture.py): 1×1, 3×3 and 7×7
    /// kernels, one and two images, non-square maps, offsets of several pixels.
    #[test]
    fn both_paths_match_torchvision() {
        let (names, tensors) = fixture();
        assert_eq!(names, ["k1", "k3", "k3_s2_d2", "k7"], "the fixture's cases");
        for name in &names {
            let (case, want) = fixture_case(name, &tensors);
            let (kernel, generic) = case.kernel_and_generic();
            for (path, got) in [("kernel", kernel), ("generic", generic)] {
                let err = relative_error(&got, &want);
                eprintln!("deform_conv2d {name} ({path}): relative error {err:.2e}");
                assert!(err <= 1e-5, "{name} ({path}): {err}");
            }
        }
    }

    /// The two paths on shapes the fixture does not reach: several strips per image, starting
    /// mid-row, with a partial last one; a product deeper than one sgemm pass with edge tiles;
    /// a 7×7 product deep enough for shorter strips; no bias; every build of the sampling loop;
    /// non-contiguous inputs; calls from several rayon workers at once; and the generic path
    /// cut into several row chunks.
    #[test]
    fn the_kernel_and_the_generic_path_agree() {
        let geometry = DeformGeometry::padding;
        for (sizes, kernel, geometry, scale, bias) in [
            ((2, 50, 13, 9, 40), 3, geometry(1), 2.0, true),
            ((1, 90, 10, 20, 24), 7, geometry(3), 4.0, true),
            ((1, 7, 20, 5, 300), 1, geometry(0), 3.0, false),
            ((3, 4, 6, 17, 11), 5, geometry(2), 5.0, true),
            (
                (2, 3, 5, 16, 12),
                3,
                DeformGeometry {
                    padding: 0,
                    stride: 3,
                    dilation: 3,
                },
                1.5,
                false,
            ),
        ] {
            let case = Case::random(sizes, kernel, geometry, scale, bias);
            let generic = with_kernels_disabled(|| case.run()).expect("generic");
            for limit in [Isa::Avx512, Isa::Avx2, Isa::Portable] {
                let kernel_out = with_isa_limit(limit, || case.run()).expect("kernel");
                let err = relative_error(&kernel_out, &generic);
                assert!(
                    err <= 1e-5,
                    "{sizes:?}, k {kernel}, {geometry:?}, {limit:?}: {err}"
                );
            }
            let d = Dims::new(
                case.input.dims(),
                case.offset.dims(),
                case.mask.dims(),
                case.weight.dims(),
                case.bias.as_ref().map(Tensor::dims),
                geometry,
            )
            .expect("dims");
            let chunked = generic_path(&case, d, 1).expect("one row per chunk");
            let err = relative_error(&chunked, &generic);
            assert!(err <= 1e-6, "{sizes:?} chunked: {err}");
        }
        // Transposed views in, the same numbers out.
        let case = Case::random((2, 6, 5, 10, 10), 3, geometry(1), 2.0, true);
        let want = case.run().expect("contiguous");
        let transposed = |t: &Tensor| {
            t.transpose(2, 3)
                .and_then(|t| t.contiguous())
                .and_then(|t| t.transpose(2, 3))
                .expect("view")
        };
        let views = Case {
            input: transposed(&case.input),
            offset: transposed(&case.offset),
            mask: transposed(&case.mask),
            weight: transposed(&case.weight),
            bias: case.bias.clone(),
            geometry: case.geometry,
        };
        assert!(!views.input.is_contiguous());
        let (kernel_out, generic) = views.kernel_and_generic();
        assert!(relative_error(&kernel_out, &want) <= 1e-6);
        assert!(relative_error(&generic, &want) <= 1e-5);
        // Calls on rayon workers (as from a batch running in parallel), each with its own
        // per-call buffers even where one call waits on another's thread.
        let outputs: Vec<Tensor> = (0..6)
            .into_par_iter()
            .map(|_| case.run().expect("parallel call"))
            .collect();
        for got in &outputs {
            assert!(relative_error(got, &want) <= 1e-6);
        }
    }

    fn generic_path(case: &Case, d: Dims, chunk_elements: usize) -> Result<Tensor> {
        generic(
            &case.input,
            &case.offset,
            &case.mask,
            &case.weight,
            case.bias.as_ref(),
            d,
            case.geometry,
            chunk_elements,
        )
    }

    /// What CUDA would run in half precision: the same function, to half precision's accuracy.
    #[test]
    fn the_generic_path_runs_in_half_precision() {
        let case = Case::random((2, 8, 6, 9, 12), 3, DeformGeometry::padding(1), 3.0, true);
        let want = case.run().expect("f32");
        // Products and sums in half precision: a few units of its epsilon (2⁻¹⁰, 2⁻⁷).
        for (dtype, tolerance) in [(DType::F16, 5e-3), (DType::BF16, 5e-2)] {
            let half = |t: &Tensor| t.to_dtype(dtype).expect("half");
            let got = Case {
                input: half(&case.input),
                offset: half(&case.offset),
                mask: half(&case.mask),
                weight: half(&case.weight),
                bias: case.bias.as_ref().map(half),
                geometry: case.geometry,
            }
            .run()
            .and_then(|t| t.to_dtype(DType::F32))
            .expect("half precision");
            let err = relative_error(&got, &want);
            eprintln!("deform_conv2d generic path in {dtype:?}: relative error {err:.2e}");
            assert!(err <= tolerance, "{dtype:?}: {err}");
        }
    }

    /// Shapes torchvision rejects, and groups (which this op does not do), are errors that say
    /// what is wrong, on both paths.
    #[test]
    fn wrong_shapes_are_errors() {
        let case = Case::random((2, 4, 3, 6, 7), 3, DeformGeometry::padding(1), 1.0, true);
        let dev = Device::Cpu;
        let zeros = |shape: &[usize]| Tensor::zeros(shape, DType::F32, &dev).expect("zeros");
        let with = |f: &dyn Fn(&mut Case)| {
            let mut c = Case {
                input: case.input.clone(),
                offset: case.offset.clone(),
                mask: case.mask.clone(),
                weight: case.weight.clone(),
                bias: case.bias.clone(),
                geometry: case.geometry,
            };
            f(&mut c);
            c
        };
        let bad: Vec<(&str, Case)> = vec![
            ("3-d input", with(&|c| c.input = zeros(&[4, 6, 7]))),
            ("input channels", with(&|c| c.input = zeros(&[2, 5, 6, 7]))),
            (
                "rectangular kernel",
                with(&|c| c.weight = zeros(&[3, 4, 3, 1])),
            ),
            ("offset groups", with(&|c| c.offset = zeros(&[2, 36, 6, 7]))),
            ("offset size", with(&|c| c.offset = zeros(&[2, 18, 7, 6]))),
            ("offset batch", with(&|c| c.offset = zeros(&[1, 18, 6, 7]))),
            ("mask taps", with(&|c| c.mask = zeros(&[2, 18, 6, 7]))),
            ("mask batch", with(&|c| c.mask = zeros(&[3, 9, 6, 7]))),
            ("bias", with(&|c| c.bias = Some(zeros(&[4])))),
            ("stride 0", with(&|c| c.geometry.stride = 0)),
            ("too small", with(&|c| c.input = zeros(&[2, 4, 1, 7]))),
            (
                "dtype",
                with(&|c| c.mask = c.mask.to_dtype(DType::F16).expect("f16")),
            ),
        ];
        for (what, c) in &bad {
            for (path, result) in [
                ("kernel", c.run()),
                ("generic", with_kernels_disabled(|| c.run())),
            ] {
                let err = result.expect_err(what).to_string();
                assert!(err.contains("deform_conv2d"), "{what} ({path}): {err}");
            }
        }
        // No images: an empty result, as torchvision gives.
        let empty = with(&|c| {
            c.input = zeros(&[0, 4, 6, 7]);
            c.offset = zeros(&[0, 18, 6, 7]);
            c.mask = zeros(&[0, 9, 6, 7]);
        });
        assert_eq!(empty.run().expect("empty").dims(), [0, 3, 6, 7]);
        // The kernel's own check, should a caller hand it tensors that disagree with its sizes.
        let d = Dims::new(
            case.input.dims(),
            case.offset.dims(),
            case.mask.dims(),
            case.weight.dims(),
            None,
            case.geometry,
        )
        .expect("dims");
        let weights = vec![0f32; 5];
        let op = Fused {
            weight: &weights,
            bias: None,
            dims: d,
            geometry: case.geometry,
        };
        let err = case
            .input
            .apply_op3_no_bwd(&case.offset, &case.mask, &op)
            .expect_err("short weight")
            .to_string();
        assert!(err.contains("deform_conv2d kernel"), "{err}");
    }

    /// The brief's 256 → 256 channel 3×3 layer and BiRefNet's decoder 7×7 (64 → 256
    /// channels, `BasicDecBlk`'s ASPP-deformable branch), both on a 64 × 64 map, against the
    /// generic path and against the plain convolution kernel of the same size (what the
    /// sampling costs on top of the product). Timings only, the median of 7 runs (`cargo test
    /// -p orfeas-core --release --lib deform_conv_timing -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn deform_conv_timing() {
        let median_ms = |f: &dyn Fn() -> Tensor| {
            let _ = f();
            let mut times: Vec<f64> = (0..7)
                .map(|_| {
                    let start = Instant::now();
                    let _ = f();
                    start.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            times.sort_by(f64::total_cmp);
            times[times.len() / 2]
        };
        for (c_in, c_out, kernel) in [(256, 256, 3), (64, 256, 7)] {
            let geometry = DeformGeometry::padding(kernel / 2);
            let case = Case::random((1, c_in, c_out, 64, 64), kernel, geometry, 2.0, true);
            let fused = median_ms(&|| case.run().expect("kernel"));
            let generic = median_ms(&|| with_kernels_disabled(|| case.run()).expect("generic"));
            // The plain kernel does 1×1 and 3×3 only.
            let plain = (kernel == 3).then(|| {
                let flat = case.weight.reshape((c_out, c_in * 9)).expect("weight");
                let bias = case.bias.clone().expect("bias");
                let conv = super::super::Conv {
                    kernel: 3,
                    stride: 1,
                    relu_input: false,
                    relu_output: false,
                };
                median_ms(&|| {
                    case.input
                        .apply_op3_no_bwd(&flat, &bias, &conv)
                        .expect("conv")
                })
            });
            let (a, b) = case.kernel_and_generic();
            eprintln!(
                "deform_conv2d 1×{c_in}×64×64 → {c_out}, {kernel}×{kernel}, {} threads: kernel \
                 {fused:.1} ms, generic {generic:.1} ms ({:.1}×){}; kernel against generic: \
                 relative difference {:.1e}",
                rayon::current_num_threads(),
                generic / fused,
                plain.map_or(String::new(), |t| format!(
                    ", plain 3×3 conv kernel {t:.1} ms"
                )),
                relative_error(&a, &b)
            );
        }
    }
}
