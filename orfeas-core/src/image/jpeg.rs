//! JPEG pixels through libjpeg-turbo's decoder (the `mozjpeg` crate, its C code built without
//! assembly), the decoder of PIL, OpenCV, browsers and so of the Python reference.
//!
//! Why not the image crate's decoder (zune-jpeg): it rounds its IDCT and chroma upsampling
//! differently: on photos 12.6 % of samples differ by up to 4/255 from libjpeg-turbo's, and
//! Depth Anything amplifies that into 1–3 % differences from transformers on the same file. With
//! this decoder the pixels are identical to PIL's (checked on the test photos) and the depth
//! maps match to float rounding. Headers, limits and EXIF orientation still come from the image
//! crate (`image.rs`); this only produces the pixels.

use image::{DynamicImage, GrayImage, RgbImage};
use mozjpeg::decompress::{DecompressStarted, Format};

/// Decodes a YCbCr, RGB or grayscale JPEG. `None` for colour spaces libjpeg does not convert to
/// RGB (CMYK, YCCK), which the caller leaves to the image crate. Like libjpeg-turbo (and zune),
/// a truncated scan decodes with its missing blocks grey; a broken stream is an error.
pub(super) fn decode(bytes: &[u8]) -> Option<Result<DynamicImage, String>> {
    // libjpeg reports fatal errors by unwinding out of the C code (mozjpeg's `unwinding`
    // error manager, which calls `resume_unwind` and so never reaches the panic hook).
    let decoded = std::panic::catch_unwind(|| -> std::io::Result<Option<DynamicImage>> {
        Ok(match mozjpeg::Decompress::new_mem(bytes)?.image()? {
            Format::RGB(started) => {
                let (w, h, pixels) = read(started)?;
                RgbImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgb8)
            }
            Format::Gray(started) => {
                let (w, h, pixels) = read(started)?;
                GrayImage::from_raw(w, h, pixels).map(DynamicImage::ImageLuma8)
            }
            Format::CMYK(_) => return Ok(None),
        })
    });
    match decoded {
        Ok(Ok(Some(image))) => Some(Ok(image)),
        Ok(Ok(None)) => None,
        Ok(Err(e)) => Some(Err(e.to_string())),
        Err(payload) => Some(Err(payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "libjpeg fatal error".to_owned()))),
    }
}

fn read(mut started: DecompressStarted<&[u8]>) -> std::io::Result<(u32, u32, Vec<u8>)> {
    let (w, h) = (started.width(), started.height());
    let pixels = started.read_scanlines::<u8>()?;
    started.finish()?;
    let size = |v: usize| {
        u32::try_from(v).map_err(|_| std::io::Error::other("JPEG dimension out of range"))
    };
    Ok((size(w)?, size(h)?, pixels))
}
