//! The foreground mask itself: `mask.png` (8-bit gray at the image's size, 255 = subject, soft
//! edges kept: a batch background remover's output) and `mask.npy` (float32 `[1024, 1024]`:
//! BiRefNet's probability at its input when it made the mask, else the mask's alpha / 255
//! brought to that size with Pillow's bilinear filter, so every file of a batch has one shape).
//!
//! Row 0 is the top row of the image in both files, as in the source image.

use std::io::{self, Write};

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};

use super::{export_error, MeshFormat};
use crate::error::Result;
use crate::foreground::Foreground;
use crate::image::pil_resize::{self, PilFilter};

/// Rejects masks whose buffers do not match their sizes.
pub(super) fn check(format: MeshFormat, mask: &Foreground) -> Result<()> {
    let expected = mask.width as usize * mask.height as usize;
    if mask.alpha.len() != expected || expected == 0 {
        return Err(export_error(
            format,
            format!(
                "mask {}x{} holds {} values",
                mask.width,
                mask.height,
                mask.alpha.len()
            ),
        ));
    }
    if let Some((size, values)) = &mask.probability {
        if values.len() != (*size as usize).pow(2) || *size == 0 {
            return Err(export_error(
                format,
                format!(
                    "probability map of side {size} holds {} values",
                    values.len()
                ),
            ));
        }
    }
    Ok(())
}

pub(super) fn encode_png(format: MeshFormat, mask: &Foreground) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(&mask.alpha, mask.width, mask.height, ExtendedColorType::L8)
        .map_err(|e| export_error(format, format!("PNG encoding failed: {e}")))?;
    Ok(out)
}

/// The side and values `mask.npy` holds.
pub(super) fn npy_values(format: MeshFormat, mask: &Foreground) -> Result<(usize, Vec<f32>)> {
    if let Some((size, values)) = &mask.probability {
        return Ok((*size as usize, values.clone()));
    }
    let s = crate::foreground::SEGMENTER_INPUT_SIZE;
    let resized = pil_resize::resize(
        &mask.alpha,
        mask.width,
        mask.height,
        1,
        s,
        s,
        PilFilter::Bilinear,
    )
    .map_err(|e| export_error(format, format!("resizing the mask: {e}")))?;
    Ok((
        s as usize,
        resized.iter().map(|&a| f32::from(a) / 255.0).collect(),
    ))
}

pub(super) fn write_npy(side: usize, values: &[f32], out: &mut dyn Write) -> io::Result<()> {
    super::npy::write_f32(&[side, side], values, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::MaskSource;

    fn mask(probability: Option<(u32, Vec<f32>)>) -> Foreground {
        Foreground {
            width: 3,
            height: 2,
            alpha: vec![0, 128, 255, 255, 64, 0],
            source: MaskSource::Birefnet,
            probability,
            missing: None,
        }
    }

    #[test]
    fn the_png_is_the_alpha_and_the_npy_the_probability() -> Result<()> {
        let m = mask(Some((2, vec![0.0, 0.25, 0.5, 1.0])));
        check(MeshFormat::MaskPng, &m)?;
        let png = encode_png(MeshFormat::MaskPng, &m)?;
        let decoded = image::load_from_memory(&png)
            .map_err(|e| export_error(MeshFormat::MaskPng, e.to_string()))?;
        assert_eq!(decoded.color(), image::ColorType::L8);
        assert_eq!(decoded.into_luma8().into_raw(), m.alpha);
        let npy_of = |m: &Foreground| -> Result<Vec<u8>> {
            let (side, values) = npy_values(MeshFormat::MaskNpy, m)?;
            let mut out = Vec::new();
            write_npy(side, &values, &mut out)
                .map_err(|e| export_error(MeshFormat::MaskNpy, e.to_string()))?;
            Ok(out)
        };
        let npy = npy_of(&m)?;
        assert!(String::from_utf8_lossy(&npy[10..128]).contains("'shape': (2, 2), }"));
        assert_eq!(npy[128 + 4..128 + 8], 0.25f32.to_le_bytes());
        // Without BiRefNet's map, the alpha at its input size: the batch's files share a shape.
        let npy = npy_of(&mask(None))?;
        assert!(String::from_utf8_lossy(&npy[10..128]).contains("'shape': (1024, 1024), }"));
        assert_eq!(npy.len(), 128 + 1024 * 1024 * 4);
        // Row 0 runs from the left column's 0 through 128 to 255 at the right: monotone.
        let row0: Vec<f32> = npy[128..128 + 1024 * 4]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert!(row0[0] < 0.01 && row0[1023] > 0.99 && row0.windows(2).all(|w| w[0] <= w[1]));
        let bad = mask(Some((3, vec![0.0; 4])));
        assert_eq!(
            check(MeshFormat::MaskNpy, &bad).map_err(|e| e.code()),
            Err("ERR_EXPORT")
        );
        Ok(())
    }
}
