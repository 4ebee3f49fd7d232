//! CPU kernels for the hot spots of the Depth Anything forward pass, as candle custom ops.
//!
//! candle's CPU backend runs every tensor op as a separate, freshly allocated pass, several of
//! them on one thread with scalar libm; that left the model at under half of PyTorch's speed on
//! the same threads (docs/performance.md §3). These ops replace the worst offenders on the CPU
//! with f32 only; every other device and dtype keeps candle's generic ops, which compute the
//! same function (the model tests run both and compare them).

// Raw-pointer GEMM calls (the `gemm` crate candle itself uses), disjoint parallel writes and
// runtime-dispatched SIMD builds; each `unsafe` block states its invariant.
#[allow(unsafe_code)]
mod attention;
#[allow(unsafe_code)]
mod conv;
#[allow(unsafe_code)]
mod linear;
#[allow(unsafe_code)]
mod vmath;

pub(super) use attention::FusedAttention;
pub(super) use conv::Conv;
pub(super) use linear::Linear;
