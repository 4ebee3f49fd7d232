//! The colour texture as PNG bytes, shared by OBJ (a side file) and GLB (embedded).

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};

use super::{export_error, MeshFormat};
use crate::error::Result;
use crate::mesh::Texture;

/// Encodes the RGBA8 texture as PNG, after checking its size matches its buffer (the encoder
/// would panic on a mismatch).
pub(super) fn encode_png(format: MeshFormat, texture: &Texture) -> Result<Vec<u8>> {
    let expected = u64::from(texture.width) * u64::from(texture.height) * 4;
    if texture.width == 0 || texture.height == 0 || texture.rgba.len() as u64 != expected {
        return Err(export_error(
            format,
            format!(
                "texture {}x{} has {} bytes of RGBA, expected {expected}",
                texture.width,
                texture.height,
                texture.rgba.len()
            ),
        ));
    }
    let mut png = Vec::new();
    PngEncoder::new(&mut png)
        .write_image(
            &texture.rgba,
            texture.width,
            texture.height,
            ExtendedColorType::Rgba8,
        )
        .map_err(|e| export_error(format, format!("cannot encode the texture as PNG: {e}")))?;
    Ok(png)
}
