//! Decoding and validating input images.
//!
//! Every input is untrusted: the format is guessed from the bytes (never the extension), the
//! dimensions are checked against [`ImageLimits`] before a pixel buffer is allocated, and the
//! decoder gets `image::Limits` as a second fence. Decoder failures become typed errors that name
//! the file; nothing here panics on any input.

mod jpeg;
pub(crate) mod pil_resize;

use std::io::{Cursor, Read};
use std::path::PathBuf;
use std::sync::Arc;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader};

use crate::error::{OrfeasError, Result};

/// Where an image comes from.
#[derive(Clone, Debug)]
pub enum ImageSource {
    Path(PathBuf),
    Bytes {
        name: String,
        bytes: std::sync::Arc<[u8]>,
    },
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
        Self {
            max_width: 65_535,
            max_height: 65_535,
            max_pixels: 64_000_000,
            max_file_bytes: 512 << 20,
        }
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

/// Rec. 709 luma weights, applied to the stored (gamma-encoded) values: good enough for a
/// relief, and identical for 8- and 16-bit sources so precision is the only difference.
const LUMA_WEIGHTS: [f32; 3] = [0.2126, 0.7152, 0.0722];

/// Bytes per pixel of the largest decoded layout (RGBA f32); sizes the decoder's allocation fence.
const MAX_BYTES_PER_PIXEL: u64 = 16;

/// Decodes and validates an image.
///
/// Errors: `EmptyInput` (no bytes), `UnsupportedFormat` (no known signature, or a format orfeas
/// does not read), `ImageTooLarge` (file size or dimensions beyond `limits`, refused before
/// decoding), `ImageDecode` (truncated or corrupt data), `Io` (the file cannot be read).
pub fn load_image(source: &ImageSource, limits: &ImageLimits) -> Result<LoadedImage> {
    let name = source.name();
    let bytes: Arc<[u8]> = match source {
        ImageSource::Path(path) => read_file(path, &name, limits)?.into(),
        ImageSource::Bytes { bytes, .. } => {
            if bytes.len() as u64 > limits.max_file_bytes {
                return Err(too_large(
                    &name,
                    format!(
                        "{} bytes > limit of {} bytes",
                        bytes.len(),
                        limits.max_file_bytes
                    ),
                ));
            }
            bytes.clone()
        }
    };
    if bytes.is_empty() {
        return Err(OrfeasError::EmptyInput { name });
    }
    decode(&bytes, name, limits)
}

/// Reads a file after checking its size from the metadata, so a huge file is never read.
fn read_file(path: &std::path::Path, name: &str, limits: &ImageLimits) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).map_err(|e| OrfeasError::io(path, e))?;
    let meta = file.metadata().map_err(|e| OrfeasError::io(path, e))?;
    if meta.is_dir() {
        return Err(OrfeasError::io(
            path,
            std::io::Error::other("is a directory, not an image file"),
        ));
    }
    if meta.len() > limits.max_file_bytes {
        return Err(too_large(
            name,
            format!(
                "{} bytes > limit of {} bytes",
                meta.len(),
                limits.max_file_bytes
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // `take` guards against a file that grows between `metadata` and `read`.
    file.take(limits.max_file_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| OrfeasError::io(path, e))?;
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(too_large(
            name,
            format!("more than {} bytes", limits.max_file_bytes),
        ));
    }
    Ok(bytes)
}

fn decode(bytes: &[u8], name: String, limits: &ImageLimits) -> Result<LoadedImage> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| decode_error(&name, e.to_string()))?;
    let format = reader
        .format()
        .ok_or_else(|| OrfeasError::UnsupportedFormat {
            name: name.clone(),
            detail: "no known image signature".into(),
        })?;
    if !matches!(
        format,
        ImageFormat::Png
            | ImageFormat::Jpeg
            | ImageFormat::WebP
            | ImageFormat::Bmp
            | ImageFormat::Tiff
            | ImageFormat::Gif
    ) {
        return Err(OrfeasError::UnsupportedFormat {
            name,
            detail: format!("{format:?} is not read"),
        });
    }
    // The PNG decoder reads up to the first data chunk when it is built; check the IHDR
    // ourselves first so a header-only "bomb" is refused from 24 bytes.
    if format == ImageFormat::Png {
        if let Some((w, h)) = png_dimensions(bytes) {
            check_dimensions(&name, w, h, limits)?;
        }
    }
    reader.limits(decoder_limits(limits));
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| map_image_error(&name, e))?;
    let (width, height) = decoder.dimensions();
    check_dimensions(&name, width, height, limits)?;
    let orientation = decoder
        .orientation()
        .map_err(|e| map_image_error(&name, e))?;
    // The limits hold for the image as it is shown: a quarter turn swaps its sides.
    if matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    ) {
        check_dimensions(&name, height, width, limits)?;
    }
    let from_libjpeg = if format == ImageFormat::Jpeg {
        jpeg::decode(bytes)
    } else {
        None
    };
    let mut image = match from_libjpeg {
        Some(decoded) => decoded.map_err(|detail| decode_error(&name, detail))?,
        None => DynamicImage::from_decoder(decoder).map_err(|e| map_image_error(&name, e))?,
    };
    image.apply_orientation(orientation);
    Ok(LoadedImage::from_dynamic(name, &image))
}

/// The second fence: the decoder itself refuses what the pre-checks might have missed.
fn decoder_limits(limits: &ImageLimits) -> image::Limits {
    let mut out = image::Limits::default();
    out.max_image_width = Some(limits.max_width);
    out.max_image_height = Some(limits.max_height);
    // Enough for the largest layout of the largest allowed image, plus decoder scratch.
    out.max_alloc = Some(
        limits
            .max_pixels
            .saturating_mul(MAX_BYTES_PER_PIXEL)
            .saturating_add(64 << 20),
    );
    out
}

/// Width and height from a PNG's IHDR (bytes 16..24), if the bytes are long enough.
fn png_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    let ihdr = bytes.get(12..24)?;
    if &ihdr[..4] != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes([ihdr[4], ihdr[5], ihdr[6], ihdr[7]]);
    let h = u32::from_be_bytes([ihdr[8], ihdr[9], ihdr[10], ihdr[11]]);
    Some((w, h))
}

fn check_dimensions(name: &str, width: u32, height: u32, limits: &ImageLimits) -> Result<()> {
    if width == 0 || height == 0 {
        return Err(decode_error(
            name,
            format!("the image claims {width}x{height} pixels"),
        ));
    }
    let pixels = u64::from(width) * u64::from(height);
    if width > limits.max_width || height > limits.max_height || pixels > limits.max_pixels {
        return Err(too_large(
            name,
            format!(
                "{width}x{height} = {pixels} pixels; limits are {}x{} and {} pixels",
                limits.max_width, limits.max_height, limits.max_pixels
            ),
        ));
    }
    Ok(())
}

fn too_large(name: &str, detail: String) -> OrfeasError {
    OrfeasError::ImageTooLarge {
        name: name.to_owned(),
        detail,
    }
}

fn decode_error(name: &str, detail: String) -> OrfeasError {
    OrfeasError::ImageDecode {
        name: name.to_owned(),
        detail,
    }
}

fn map_image_error(name: &str, e: ImageError) -> OrfeasError {
    match e {
        ImageError::Limits(l) => too_large(name, l.to_string()),
        ImageError::Unsupported(u) => OrfeasError::UnsupportedFormat {
            name: name.to_owned(),
            detail: u.to_string(),
        },
        other => decode_error(name, other.to_string()),
    }
}

impl LoadedImage {
    /// Builds the RGBA8 copy and full-precision luminance of a decoded image.
    fn from_dynamic(name: String, image: &DynamicImage) -> Self {
        let (width, height) = (image.width(), image.height());
        let rgba = image.to_rgba8().into_raw();
        let luma = luminance(image);
        let has_alpha = image.color().has_alpha() && alpha_not_opaque(image);
        let gray16 = matches!(image, DynamicImage::ImageLuma16(_));
        Self {
            name,
            width,
            height,
            rgba,
            luma,
            has_alpha,
            gray16,
        }
    }

    /// Whether the longest side is at most `max_side` (at least 1): then [`fit_within`]
    /// would return the image as it is.
    ///
    /// [`fit_within`]: Self::fit_within
    pub fn fits_within(&self, max_side: u32) -> bool {
        self.width.max(self.height) <= max_side.max(1)
    }

    /// A copy whose longest side is at most `max_side`; smaller images are returned as they are.
    ///
    /// Integer block averaging for the bulk of the reduction, then a triangle filter (scaled to
    /// the remaining factor, so it averages over the whole footprint) for the rest: no aliasing,
    /// good enough for height maps, and much faster than `imageops::resize` on camera-sized
    /// photos. `luma` is resampled as f32 so 16-bit height maps keep their precision.
    pub fn fit_within(&self, max_side: u32) -> LoadedImage {
        if self.fits_within(max_side) {
            return self.clone();
        }
        let max_side = max_side.max(1);
        let longest = self.width.max(self.height);
        let scale = f64::from(max_side) / f64::from(longest);
        let nw = ((f64::from(self.width) * scale).round() as u32).clamp(1, max_side);
        let nh = ((f64::from(self.height) * scale).round() as u32).clamp(1, max_side);
        // A large reduction first averages k×k blocks (one cheap pass), so the triangle filter
        // only has to bridge the last factor < 2.
        let (w, h) = (self.width as usize, self.height as usize);
        if self.rgba.len() != w * h * 4 || self.luma.len() != w * h {
            return self.clone();
        }
        let k = ((longest / max_side) as usize).max(1);
        // Never block-average below the target size, nor across more rows/columns than exist.
        let kx = k.min(w / nw as usize).max(1);
        let ky = k.min(h / nh as usize).max(1);
        let (sw, sh) = (w / kx, h / ky);
        let rgba_f = box_shrink(&self.rgba, w, 4, (kx, ky), sw, sh, f32::from);
        let luma_f = box_shrink(&self.luma, w, 1, (kx, ky), sw, sh, |v| v);
        let (nw_, nh_) = (nw as usize, nh as usize);
        let rgba: Vec<u8> = resample_triangle(&rgba_f, sw, sh, 4, nw_, nh_)
            .iter()
            .map(|v| v.round().clamp(0.0, 255.0) as u8)
            .collect();
        let luma = resample_triangle(&luma_f, sw, sh, 1, nw_, nh_);
        let has_alpha = self.has_alpha && rgba.chunks_exact(4).any(|p| p[3] < u8::MAX);
        LoadedImage {
            name: self.name.clone(),
            width: nw,
            height: nh,
            rgba,
            luma,
            has_alpha,
            gray16: self.gray16,
        }
    }
}

/// Averages `kx×ky` blocks of a `channels`-interleaved plane `src_w` pixels wide into an
/// `out_w × out_h` f32 plane (trailing partial blocks are dropped: at most k−1 pixels).
fn box_shrink<T: Copy>(
    src: &[T],
    src_w: usize,
    channels: usize,
    (kx, ky): (usize, usize),
    out_w: usize,
    out_h: usize,
    to_f: impl Fn(T) -> f32,
) -> Vec<f32> {
    if kx == 1 && ky == 1 {
        return src.iter().map(|&v| to_f(v)).collect();
    }
    let norm = 1.0 / (kx * ky) as f32;
    let mut out = vec![0.0f32; out_w * out_h * channels];
    for (oy, acc) in out.chunks_exact_mut(out_w * channels).enumerate() {
        for y in oy * ky..oy * ky + ky {
            let row = &src[y * src_w * channels..][..out_w * kx * channels];
            for (block, a) in row
                .chunks_exact(kx * channels)
                .zip(acc.chunks_exact_mut(channels))
            {
                for px in block.chunks_exact(channels) {
                    for (c, v) in a.iter_mut().zip(px) {
                        *c += to_f(*v);
                    }
                }
            }
        }
        acc.iter_mut().for_each(|a| *a *= norm);
    }
    out
}

/// Per-output-sample taps of a triangle filter scaled to the reduction (first tap index, weights).
fn triangle_taps(src: usize, dst: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = src as f32 / dst as f32;
    let support = scale.max(1.0);
    (0..dst)
        .map(|i| {
            let center = (i as f32 + 0.5) * scale - 0.5;
            let lo = (center - support).floor().max(0.0) as usize;
            let hi = ((center + support).ceil() as usize).min(src - 1);
            let mut weights: Vec<f32> = (lo..=hi)
                .map(|j| (1.0 - (j as f32 - center).abs() / support).max(0.0))
                .collect();
            let sum: f32 = weights.iter().sum();
            if sum > 0.0 {
                weights.iter_mut().for_each(|wt| *wt /= sum);
            } else {
                weights = vec![1.0];
            }
            (lo, weights)
        })
        .collect()
}

/// Separable triangle (bilinear, area-aware when shrinking) resampling of an interleaved f32 plane.
fn resample_triangle(src: &[f32], w: usize, h: usize, ch: usize, nw: usize, nh: usize) -> Vec<f32> {
    let xt = triangle_taps(w, nw);
    let yt = triangle_taps(h, nh);
    let mut tmp = vec![0.0f32; nw * h * ch];
    for (row, out) in src.chunks_exact(w * ch).zip(tmp.chunks_exact_mut(nw * ch)) {
        for ((lo, weights), o) in xt.iter().zip(out.chunks_exact_mut(ch)) {
            for (j, wt) in weights.iter().enumerate() {
                let px = &row[(lo + j) * ch..][..ch];
                for (c, v) in o.iter_mut().zip(px) {
                    *c += wt * v;
                }
            }
        }
    }
    let mut out = vec![0.0f32; nw * nh * ch];
    for ((lo, weights), o) in yt.iter().zip(out.chunks_exact_mut(nw * ch)) {
        for (j, wt) in weights.iter().enumerate() {
            let row = &tmp[(lo + j) * nw * ch..][..nw * ch];
            for (c, v) in o.iter_mut().zip(row) {
                *c += wt * v;
            }
        }
    }
    out
}

fn weighted(r: f32, g: f32, b: f32) -> f32 {
    LUMA_WEIGHTS[0] * r + LUMA_WEIGHTS[1] * g + LUMA_WEIGHTS[2] * b
}

/// Luminance in [0, 1] computed from the decoded samples at their own precision.
fn luminance(image: &DynamicImage) -> Vec<f32> {
    // Divisions, not multiplications by reciprocals: `v / 65535` is the correctly rounded value
    // a user computing the same thing elsewhere gets.
    const MAX8: f32 = 255.0;
    const MAX16: f32 = 65535.0;
    let clamp = |v: f32| {
        if v.is_finite() {
            v.clamp(0.0, 1.0)
        } else {
            0.0
        }
    };
    match image {
        DynamicImage::ImageLuma8(b) => b.as_raw().iter().map(|&v| f32::from(v) / MAX8).collect(),
        DynamicImage::ImageLumaA8(b) => b
            .as_raw()
            .chunks_exact(2)
            .map(|p| f32::from(p[0]) / MAX8)
            .collect(),
        DynamicImage::ImageLuma16(b) => b.as_raw().iter().map(|&v| f32::from(v) / MAX16).collect(),
        DynamicImage::ImageLumaA16(b) => b
            .as_raw()
            .chunks_exact(2)
            .map(|p| f32::from(p[0]) / MAX16)
            .collect(),
        DynamicImage::ImageRgb8(b) => rgb_luma(b.as_raw(), 3, |v: u8| f32::from(v) / MAX8),
        DynamicImage::ImageRgba8(b) => rgb_luma(b.as_raw(), 4, |v: u8| f32::from(v) / MAX8),
        DynamicImage::ImageRgb16(b) => rgb_luma(b.as_raw(), 3, |v: u16| f32::from(v) / MAX16),
        DynamicImage::ImageRgba16(b) => rgb_luma(b.as_raw(), 4, |v: u16| f32::from(v) / MAX16),
        DynamicImage::ImageRgb32F(b) => rgb_luma(b.as_raw(), 3, clamp),
        DynamicImage::ImageRgba32F(b) => rgb_luma(b.as_raw(), 4, clamp),
        // `DynamicImage` is non-exhaustive: anything new goes through 16-bit RGB.
        other => {
            let rgb = other.to_rgb16();
            rgb_luma(rgb.as_raw(), 3, |v: u16| f32::from(v) / MAX16)
        }
    }
}

fn rgb_luma<T: Copy>(raw: &[T], channels: usize, to_unit: impl Fn(T) -> f32) -> Vec<f32> {
    raw.chunks_exact(channels)
        .map(|p| weighted(to_unit(p[0]), to_unit(p[1]), to_unit(p[2])).clamp(0.0, 1.0))
        .collect()
}

/// Whether any pixel of an image with an alpha channel is not fully opaque.
fn alpha_not_opaque(image: &DynamicImage) -> bool {
    match image {
        DynamicImage::ImageLumaA8(b) => b.as_raw().chunks_exact(2).any(|p| p[1] < u8::MAX),
        DynamicImage::ImageRgba8(b) => b.as_raw().chunks_exact(4).any(|p| p[3] < u8::MAX),
        DynamicImage::ImageLumaA16(b) => b.as_raw().chunks_exact(2).any(|p| p[1] < u16::MAX),
        DynamicImage::ImageRgba16(b) => b.as_raw().chunks_exact(4).any(|p| p[3] < u16::MAX),
        DynamicImage::ImageRgba32F(b) => b.as_raw().chunks_exact(4).any(|p| p[3] < 1.0),
        other => other
            .to_rgba16()
            .as_raw()
            .chunks_exact(4)
            .any(|p| p[3] < u16::MAX),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<LoadedImage> {
        load_image(
            &ImageSource::Bytes {
                name: name.into(),
                bytes: bytes.into(),
            },
            &ImageLimits::default(),
        )
    }

    #[test]
    fn empty_and_garbage_are_refused_with_the_name() {
        let e = from_bytes("nothing.png", vec![]).unwrap_err();
        assert_eq!(e.code(), "ERR_EMPTY_INPUT");
        assert!(e.to_string().contains("nothing.png"));
        let e = from_bytes("text.png", b"hello world, not an image".to_vec()).unwrap_err();
        assert_eq!(e.code(), "ERR_UNSUPPORTED_FORMAT");
        assert!(e.to_string().contains("text.png"));
    }

    #[test]
    fn fit_within_keeps_aspect_and_small_images() {
        let img = LoadedImage {
            name: "x".into(),
            width: 400,
            height: 100,
            rgba: vec![200; 400 * 100 * 4],
            luma: vec![0.5; 400 * 100],
            has_alpha: false,
            gray16: false,
        };
        let small = img.fit_within(100);
        assert_eq!((small.width, small.height), (100, 25));
        assert_eq!(small.rgba.len(), 100 * 25 * 4);
        assert!(small.luma.iter().all(|&v| (v - 0.5).abs() < 1e-5));
        let same = img.fit_within(1000);
        assert_eq!((same.width, same.height), (400, 100));
        let thin = img.fit_within(1);
        assert_eq!((thin.width, thin.height), (1, 1));
    }
}
