//! # orfeas-core
//!
//! Turns batches of images into 3D models: decode and validate → foreground mask → either a
//! depth map and an error-bounded height-field solid (a 2.5D relief), or TripoSR's density
//! field and a closed marching-cubes surface (a full object) → STL, OBJ, GLB, PLY, 3MF.
//!
//! The crate is the whole engine; the `orfeas` CLI and server, and the Python and Node
//! packages, are thin front ends over it.

pub mod batch;
pub mod cancel;
pub mod depth;
pub mod error;
pub mod export;
pub mod foreground;
pub mod generate;
pub mod gpu;
pub mod image;
mod kernels;
pub mod mask;
pub mod mesh;
pub mod models;
pub mod options;
pub mod pipeline;
pub mod progress;
mod raster;
pub mod threads;

pub use batch::{BatchConfig, BatchProcessor, Job, JobId, JobResult, JobStatus};
pub use cancel::CancelToken;
pub use depth::{DepthEstimator, HeightMap};
pub use error::{OrfeasError, Result};
pub use export::{MeshFormat, OutputFile};
pub use foreground::Background;
pub use gpu::{gpu_stats, GpuInfo, GpuStats};
pub use image::{ImageLimits, ImageSource, LoadedImage};
pub use mask::{Mask, MaskSource};
pub use mesh::{Mesh, Texture};
pub use options::{DepthMethod, Device, GenerateSettings, Method, Quality};
pub use pipeline::{
    estimate_depth, export_model, image_to_model, DepthMap, DepthSetup, Model, ModelReport,
    ShapeSetup,
};
pub use progress::{NoProgress, ProgressEvent, ProgressSink, Stage, StagePlan};
