//! CPU kernels for the hot spots of the models' forward passes (Depth Anything, TripoSR), as
//! candle custom ops.
//!
//! candle's CPU backend runs every tensor op as a separate, freshly allocated pass, several of
//! them on one thread with scalar libm; that left the model at under half of PyTorch's speed on
//! the same threads (docs/performance.md §3). These ops replace the worst offenders on the CPU
//! with f32 only; every other device and dtype keeps candle's generic ops, which compute the
//! same function (the model tests run both and compare them).

// Raw-pointer GEMM calls (`sgemm`), disjoint parallel writes and runtime-dispatched SIMD
// builds; each `unsafe` block states its invariant.
#[allow(unsafe_code)]
mod attention;
#[allow(unsafe_code)]
mod conv;
#[allow(unsafe_code)]
mod deform_conv;
mod dense;
#[allow(unsafe_code)]
mod field;
#[allow(unsafe_code)]
mod geglu;
mod layer_norm;
#[allow(unsafe_code)]
mod linear;
#[allow(unsafe_code)]
mod sgemm;
#[allow(unsafe_code)]
mod vmath;

use std::mem::MaybeUninit;

use candle_core::{bail, CpuStorage, DType, Layout, Result, Tensor};

pub(crate) use attention::{CrossAttention, FusedAttention};
pub(crate) use conv::Conv;
#[cfg_attr(not(test), allow(unused_imports))] // until the BiRefNet port (issue 15) calls it
pub(crate) use deform_conv::{deform_conv2d, DeformGeometry};
pub(crate) use dense::Dense;
pub(crate) use field::{FieldMlp, FieldQuery, Hidden, Output, Reduction, Triplanes};
pub(crate) use geglu::GegluDense;
pub(crate) use layer_norm::LayerNorm;
pub(crate) use linear::Linear;

/// `f` on the values of an f32 CPU tensor (the weights, when a layer packs them): borrowed
/// when the tensor is contiguous, so packing a 1.7 GB model does not first copy every weight
/// into fresh pages; copied otherwise.
pub(crate) fn with_host_values<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    if t.dtype() == DType::F32 && t.is_contiguous() {
        let (storage, layout) = t.storage_and_layout();
        if let candle_core::Storage::Cpu(cpu) = &*storage {
            let start = layout.start_offset();
            return Ok(f(&cpu.as_slice::<f32>()?[start..start + t.elem_count()]));
        }
    }
    Ok(f(&t.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?))
}

/// The values of a contiguous f32 CPU tensor; an error naming `op` otherwise.
pub(crate) fn contiguous_f32<'a>(
    op: &str,
    storage: &'a CpuStorage,
    layout: &Layout,
) -> Result<&'a [f32]> {
    let CpuStorage::F32(values) = storage else {
        bail!("{op}: f32 tensors only")
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("{op}: contiguous tensors only")
    };
    Ok(&values[start..end])
}

/// An output buffer's base pointer shared by parallel tasks that each write their own disjoint
/// block of it, while the buffer (a `Vec` owned by the caller) outlives the parallel loop.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
// SAFETY: only ever written through in pairwise disjoint regions while its Vec is alive.
#[allow(unsafe_code)]
unsafe impl Send for SharedOut {}
#[allow(unsafe_code)]
unsafe impl Sync for SharedOut {}
impl SharedOut {
    fn at(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

/// An output buffer that parallel tasks fill completely before anyone reads it. A zeroed
/// `vec!` would be one more pass over up to tens of MB, on the calling thread alone, of values
/// that every task overwrites anyway.
struct Unfilled {
    values: Vec<f32>,
    len: usize,
}

impl Unfilled {
    fn new(len: usize) -> Self {
        Self {
            values: Vec::with_capacity(len),
            len,
        }
    }

    /// Where the tasks write (through raw pointers or [`MaybeUninit`] slices, never `&mut [f32]`
    /// before a value is written).
    fn shared(&mut self) -> SharedOut {
        SharedOut(self.values.as_mut_ptr())
    }

    /// # Safety
    /// Every one of the `len` values has been written.
    #[allow(unsafe_code)]
    unsafe fn into_filled(mut self) -> Vec<f32> {
        self.values.set_len(self.len);
        self.values
    }
}

/// `len` values at `at` as not-yet-written floats.
///
/// # Safety
/// The range is inside an [`Unfilled`] buffer (or any f32 allocation), this task's alone.
#[allow(unsafe_code)]
unsafe fn unwritten<'a>(at: *mut f32, len: usize) -> &'a mut [MaybeUninit<f32>] {
    std::slice::from_raw_parts_mut(at.cast::<MaybeUninit<f32>>(), len)
}

/// The widest SIMD the CPU kernels use here: one decision for the products (`sgemm`) and the
/// element-wise functions (`vmath`), each of whose builds needs every feature it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Isa {
    Portable,
    /// AVX2 + FMA.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx2,
    /// AVX-512F on top of AVX2 + FMA.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx512,
}

fn isa() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        #[cfg(test)]
        let limit = ISA_LIMIT.get();
        #[cfg(not(test))]
        let limit = Isa::Avx512;
        let avx2 = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
        if limit >= Isa::Avx512 && avx2 && std::is_x86_feature_detected!("avx512f") {
            return Isa::Avx512;
        }
        if limit >= Isa::Avx2 && avx2 {
            return Isa::Avx2;
        }
    }
    Isa::Portable
}

#[cfg(test)]
thread_local! {
    /// Set by [`with_isa_limit`]: tests run the narrower builds on machines that have wider ones.
    static ISA_LIMIT: std::cell::Cell<Isa> = const { std::cell::Cell::new(Isa::Avx512) };
}

/// Runs `f` with the kernels limited to `limit` on this thread.
#[cfg(test)]
fn with_isa_limit<R>(limit: Isa, f: impl FnOnce() -> R) -> R {
    ISA_LIMIT.set(limit);
    let result = f();
    ISA_LIMIT.set(Isa::Avx512);
    result
}

#[cfg(test)]
thread_local! {
    /// Set by [`with_kernels_disabled`]: the model then runs the generic ops on the CPU too.
    static DISABLED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the CPU kernels take `t` (f32 on the CPU); everything else (CUDA, half precision)
/// runs candle's generic tensor ops, which compute the same function.
pub(crate) fn applies_to(t: &Tensor) -> bool {
    #[cfg(test)]
    if DISABLED.get() {
        return false;
    }
    t.device().is_cpu() && t.dtype() == DType::F32
}

/// Whether the CPU kernels run for work on `device` that is not a tensor yet (the field's
/// points): the CPU, unless a test switched the kernels off.
pub(crate) fn enabled_on(device: &candle_core::Device) -> bool {
    #[cfg(test)]
    if DISABLED.get() {
        return false;
    }
    device.is_cpu()
}

/// Runs `f` with the CPU kernels off on this thread, so tests can check the generic path (the
/// one CUDA runs) against the reference on a machine without a GPU.
#[cfg(test)]
pub(crate) fn with_kernels_disabled<R>(f: impl FnOnce() -> R) -> R {
    DISABLED.set(true);
    let result = f();
    DISABLED.set(false);
    result
}
