//! Foreground mask.
// SKELETON: helper replaces this file.

use serde::Serialize;

use crate::image::LoadedImage;

/// Where a mask came from; reported in job results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MaskSource {
    /// From the image's alpha channel.
    Alpha,
    /// Background estimated from the image border.
    Border,
    /// No foreground found: the whole image.
    None,
}

/// A per-pixel foreground mask, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Mask {
    pub width: u32,
    pub height: u32,
    pub data: Vec<bool>,
    pub source: MaskSource,
}

impl Mask {
    /// Every pixel is foreground.
    pub fn full(width: u32, height: u32) -> Self {
        Self { width, height, data: vec![true; width as usize * height as usize], source: MaskSource::None }
    }

    /// Whether pixel `(x, y)` is foreground.
    pub fn get(&self, x: u32, y: u32) -> bool {
        self.data[y as usize * self.width as usize + x as usize]
    }
}

/// Estimates the foreground of `image`.
pub fn estimate_mask(image: &LoadedImage) -> Mask {
    Mask::full(image.width, image.height)
}
