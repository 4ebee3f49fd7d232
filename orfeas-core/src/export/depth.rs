//! The height map itself: `depth16` (normalised 16-bit gray PNG, to look at or feed to other
//! tools) and `depth.npy` (the raw float32 values, for NumPy users).
//!
//! Row 0 is the top row of the image in both files, as in the source image.

use std::io::{self, Write};

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};

use super::{export_error, MeshFormat};
use crate::depth::HeightMap;
use crate::error::Result;

/// Min-max normalises the finite values to `0..=65535` (non-finite → 0; a constant map is all
/// zeros) and encodes a 16-bit grayscale PNG.
pub(super) fn encode_png16(format: MeshFormat, map: &HeightMap) -> Result<Vec<u8>> {
    let (lo, hi) = map
        .values()
        .iter()
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let range = f64::from(hi) - f64::from(lo);
    let scale = if range > 0.0 && range.is_finite() {
        65535.0 / range
    } else {
        0.0
    };
    // PngEncoder takes 16-bit samples in native byte order.
    let samples: Vec<u8> = map
        .values()
        .iter()
        .flat_map(|&v| {
            let level = if v.is_finite() {
                ((f64::from(v) - f64::from(lo)) * scale).round()
            } else {
                0.0
            };
            // in 0..=65535 by construction; the clamp guards rounding at the top end
            (level.clamp(0.0, 65535.0) as u16).to_ne_bytes()
        })
        .collect();
    let mut png = Vec::new();
    PngEncoder::new(&mut png)
        .write_image(&samples, map.width(), map.height(), ExtendedColorType::L16)
        .map_err(|e| export_error(format, format!("cannot encode the height map as PNG: {e}")))?;
    Ok(png)
}

/// NumPy `.npy`: float32, shape `(height, width)`, row 0 the image's top row.
pub(super) fn write_npy(map: &HeightMap, out: &mut dyn Write) -> io::Result<()> {
    super::npy::write_f32(
        &[map.height() as usize, map.width() as usize],
        map.values(),
        out,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_aligned() -> io::Result<()> {
        let map = HeightMap::new(3, 2, vec![0.0, 0.5, 1.0, 0.25, 0.75, -1.0])
            .map_err(io::Error::other)?;
        let mut out = Vec::new();
        write_npy(&map, &mut out)?;
        // the dict is 60 characters: 10 + 60 + 1 rounds up to 128, as NumPy writes it
        assert_eq!(out.len(), 128 + 6 * 4);
        assert_eq!(u16::from_le_bytes([out[8], out[9]]), 118);
        assert_eq!(out[127], b'\n');
        assert!(String::from_utf8_lossy(&out[10..128]).contains("'shape': (2, 3), }"));
        assert_eq!(out[128 + 20..], (-1.0f32).to_le_bytes());
        Ok(())
    }
}
