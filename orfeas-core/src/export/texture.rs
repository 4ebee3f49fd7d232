//! The colour texture as PNG bytes, shared by OBJ (a side file) and GLB (embedded).

use std::cell::OnceCell;

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};

use super::{export_error, MeshFormat};
use crate::error::Result;
use crate::mesh::Texture;

/// The texture's PNG, encoded at most once however many formats of one job embed it: OBJ (a
/// side file) and GLB (embedded) carry the same bytes.
#[derive(Debug, Default)]
pub(crate) struct TexturePng(OnceCell<Vec<u8>>);

impl TexturePng {
    /// The PNG of `texture`, which must be the same texture on every call (one job's).
    pub(super) fn get(&self, format: MeshFormat, texture: &Texture) -> Result<&[u8]> {
        if let Some(png) = self.0.get() {
            return Ok(png);
        }
        let png = encode_png(format, texture)?;
        Ok(self.0.get_or_init(|| png))
    }
}

/// Encodes the RGBA8 texture as PNG, after checking its size matches its buffer (the encoder
/// would panic on a mismatch).
fn encode_png(format: MeshFormat, texture: &Texture) -> Result<Vec<u8>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_png_is_encoded_once_and_shared() {
        let texture = Texture {
            width: 2,
            height: 1,
            rgba: vec![255, 0, 0, 255, 0, 0, 255, 255],
        };
        let png = TexturePng::default();
        let first = png.get(MeshFormat::Obj, &texture).expect("encodes");
        let second = png.get(MeshFormat::Glb, &texture).expect("shared");
        assert!(std::ptr::eq(first, second), "encoded a second time");
        let decoded = image::load_from_memory(first).expect("a PNG").to_rgba8();
        assert_eq!(decoded.as_raw(), &texture.rgba);
    }

    #[test]
    fn a_bad_texture_is_an_error_every_time() {
        let texture = Texture {
            width: 2,
            height: 2,
            rgba: vec![0; 3],
        };
        let png = TexturePng::default();
        for format in [MeshFormat::Obj, MeshFormat::Glb] {
            let e = png.get(format, &texture).expect_err("3 bytes for 4 pixels");
            assert_eq!(e.code(), "ERR_EXPORT");
        }
    }
}
