//! TripoSR (VAST-AI-Research/TripoSR, MIT; weights `stabilityai/TripoSR`, MIT): one photo of an
//! object → triplanes → a density and colour field → a closed, vertex-coloured mesh.
//!
//! Written against candle-core/candle-nn and checked against the authors' `tsr` package with
//! transformers 4.35.0 (TripoSR's pin) on tiny random weights in the published layout.

mod backbone;
/// The parts at the published size on random weights, for `triposr_bench` only.
#[doc(hidden)]
pub mod bench;
pub mod config;
mod decoder;
mod field;
#[cfg(test)]
mod fixture;
mod scene;
mod triplane;

pub use config::TripoSrConfig;
pub use scene::{CondImage, DensityGrid, SceneCode, FOREGROUND_RATIO, ISO_LEVEL};
