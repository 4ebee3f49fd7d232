//! The plain data that passes between the model's stages and the pipeline.

/// extract_mesh's threshold: the surface is where the activated density crosses 25.
pub const ISO_LEVEL: f32 = 25.0;

/// run.py's `--foreground-ratio` default: the object's larger side fills 85% of the image.
pub const FOREGROUND_RATIO: f32 = 0.85;

/// The conditioning image: `size × size` RGB in [0, 1], row-major HWC, exactly what
/// `TSR.forward`'s `ImagePreprocessor` hands the image tokenizer (before ImageNet normalisation).
#[derive(Clone, Debug, PartialEq)]
pub struct CondImage {
    pub size: u32,
    pub rgb: Vec<f32>,
}

/// One object's triplanes, the post-processor's output: `[3, channels, resolution, resolution]`
/// f32 on the host, planes in the order xy, xz, yz.
#[derive(Clone, Debug, PartialEq)]
pub struct SceneCode {
    pub channels: usize,
    pub resolution: usize,
    pub values: Vec<f32>,
}

/// The activated density on the reference grid: `resolution³` values indexed `[x][y][z]`
/// (x slowest), sampled at `linspace(-radius, radius, resolution)` on each axis, as
/// `TSR.extract_mesh` queries it.
#[derive(Clone, Debug, PartialEq)]
pub struct DensityGrid {
    pub resolution: usize,
    pub radius: f32,
    pub values: Vec<f32>,
}

impl DensityGrid {
    /// The coordinate of grid index `i` on any axis.
    pub fn coordinate(&self, i: f32) -> f32 {
        if self.resolution < 2 {
            return -self.radius;
        }
        -self.radius + 2.0 * self.radius * i / (self.resolution - 1) as f32
    }
}
