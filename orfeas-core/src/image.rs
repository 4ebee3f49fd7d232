//! Decoding and validating input images.
// SKELETON: helper replaces this file.

use std::path::PathBuf;

use crate::error::Result;

/// Where an image comes from.
#[derive(Clone, Debug)]
pub enum ImageSource {
    Path(PathBuf),
    Bytes { name: String, bytes: std::sync::Arc<[u8]> },
}

impl ImageSource {
    /// The name used in messages and to derive output file names.
    pub fn name(&self) -> String {
        match self {
            Self::Path(p) => p.display().to_string(),
            Self::Bytes { name, .. } => name.clone(),
        }
    }
}

/// Limits checked before any pixel buffer is allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageLimits {
    pub max_width: u32,
    pub max_height: u32,
    pub max_pixels: u64,
    pub max_file_bytes: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        Self { max_width: 65_535, max_height: 65_535, max_pixels: 64_000_000, max_file_bytes: 512 << 20 }
    }
}

/// A decoded image, orientation applied.
#[derive(Clone, Debug)]
pub struct LoadedImage {
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// RGBA8, row-major, `width * height * 4` bytes.
    pub rgba: Vec<u8>,
    /// Luminance in [0, 1] at the source's full precision (16-bit sources keep 16 bits).
    pub luma: Vec<f32>,
    /// The image has an alpha channel with at least one non-opaque pixel.
    pub has_alpha: bool,
    /// The source was single-channel gray at 16 bits: a height map, not a photo.
    pub gray16: bool,
}

/// Decodes and validates an image.
pub fn load_image(_source: &ImageSource, _limits: &ImageLimits) -> Result<LoadedImage> {
    todo!()
}

impl LoadedImage {
    /// A copy whose longest side is at most `max_side`; smaller images are returned as they are.
    pub fn fit_within(&self, _max_side: u32) -> LoadedImage {
        todo!()
    }
}
