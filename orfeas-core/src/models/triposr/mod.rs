//! TripoSR (VAST-AI-Research/TripoSR, MIT; weights `stabilityai/TripoSR`, MIT): one photo of an
//! object → triplanes → a density and colour field → a closed, vertex-coloured mesh.
//!
//! Written against candle-core/candle-nn and checked against the authors' `tsr` package with
//! transformers 4.35.0 (TripoSR's pin) on tiny random weights in the published layout.

pub mod config;
mod omegaconf;
mod preprocess;
mod scene;
mod vit;
mod weights;

pub use config::TripoSrConfig;
pub use preprocess::conditioning_image;
pub use scene::{CondImage, DensityGrid, SceneCode, FOREGROUND_RATIO, ISO_LEVEL};
