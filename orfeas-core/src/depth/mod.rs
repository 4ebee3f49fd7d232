//! Depth estimation: image (+ foreground mask) → height map.

mod inflate;
mod relief;

pub use inflate::InflateEstimator;
pub use relief::ReliefEstimator;

use crate::cancel::CancelToken;
use crate::error::Result;
use crate::image::LoadedImage;
use crate::mask::Mask;

/// A per-pixel height map, row-major, `width * height` values.
///
/// Values are relative heights in `[0, 1]` (1 = closest to the viewer / highest) for pixels
/// inside the mask; values outside the mask are unspecified and never meshed.
#[derive(Clone, Debug, PartialEq)]
pub struct HeightMap {
    pub width: u32,
    pub height: u32,
    pub data: Vec<f32>,
}

impl HeightMap {
    /// Height at pixel `(x, y)`.
    pub fn get(&self, x: u32, y: u32) -> f32 {
        self.data[y as usize * self.width as usize + x as usize]
    }
}

/// Turns an image into a height map. Object safe and shareable between slots.
pub trait DepthEstimator: Send + Sync {
    /// The name reported in results (`relief`, `inflate`, `depth-anything`).
    fn name(&self) -> &'static str;

    /// Estimates heights for every pixel of `image` (already at working resolution).
    /// Long-running implementations call `cancel.check()` between steps.
    fn estimate(&self, image: &LoadedImage, mask: &Mask, cancel: &CancelToken) -> Result<HeightMap>;
}
