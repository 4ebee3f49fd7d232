//! Pre- and post-processing as the reference does it.
//!
//! Input: transformers' `DPTImageProcessor` with the Depth-Anything-V2 settings
//! (`size` 518×518, `keep_aspect_ratio=True`, `ensure_multiple_of=14`, PIL bicubic, rescale
//! 1/255, ImageNet mean/std, no padding). The resize is a bit-exact port of Pillow's 8-bit
//! bicubic resampling (`Resample.c`: Keys kernel with a = -0.5, support widened by the
//! downscale factor, i.e. antialiased; 22-bit fixed-point coefficients; horizontal pass then
//! vertical pass, each rounded and clamped to 8 bits), so the normalised tensor matches the
//! processor's to float rounding.
//!
//! Output: the `[h, w]` depth back at the original image size with bicubic
//! `align_corners=False`, as transformers' `post_process_depth_estimation` does.

use candle_core::{Device, Tensor};

use super::{internal, invalid, resample};
use crate::error::Result;
use crate::image::pil_resize::{self, PassOrder, PilFilter};

/// ImageNet statistics (`IMAGENET_STANDARD_*` are 0.5; Depth Anything uses these).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Working-resolution settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PreprocessOptions {
    /// The processor's `size` (square): 518 for Depth Anything V2. Lower values trade detail
    /// for speed (quality presets).
    pub target: u32,
    /// Each side is a multiple of this (the patch size, 14).
    pub multiple: u32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Default for PreprocessOptions {
    fn default() -> Self {
        Self {
            target: 518,
            multiple: 14,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
        }
    }
}

impl PreprocessOptions {
    /// The processor's `get_resize_output_image_size` with `keep_aspect_ratio=True`: the
    /// per-axis scale closest to 1 is used for both axes (for photos larger than the target,
    /// the short side lands on it), then each side is rounded to the nearest multiple (Python's
    /// round-half-to-even). Never below one multiple (the reference would produce 0).
    pub fn output_size(&self, width: u32, height: u32) -> (u32, u32) {
        let t = f64::from(self.target);
        let (sh, sw) = (t / f64::from(height), t / f64::from(width));
        let s = if (1.0 - sw).abs() < (1.0 - sh).abs() {
            sw
        } else {
            sh
        };
        let m = f64::from(self.multiple);
        let fit = |v: f64| (((v / m).round_ties_even() * m) as u32).max(self.multiple);
        (fit(s * f64::from(width)), fit(s * f64::from(height)))
    }
}

/// A normalised image, channel-major `[3, height, width]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Preprocessed {
    pub width: u32,
    pub height: u32,
    pub data: Vec<f32>,
}

impl Preprocessed {
    /// `[1, 3, height, width]` on `device`.
    pub fn to_tensor(&self, device: &Device) -> Result<Tensor> {
        Tensor::from_slice(
            &self.data,
            (1, 3, self.height as usize, self.width as usize),
            device,
        )
        .map_err(internal)
    }
}

/// Resizes and normalises an 8-bit image. `pixels` is row-major with `channels` bytes per pixel
/// (3 = RGB, 4 = RGBA whose alpha is ignored).
pub fn preprocess(
    pixels: &[u8],
    width: u32,
    height: u32,
    channels: usize,
    opts: &PreprocessOptions,
) -> Result<Preprocessed> {
    let (w, h) = (width as usize, height as usize);
    if width == 0 || height == 0 || !(3..=4).contains(&channels) || pixels.len() != w * h * channels
    {
        return Err(invalid(format!(
            "preprocess: {width}×{height} with {channels} channels does not match {} bytes",
            pixels.len()
        )));
    }
    if opts.target == 0 || opts.multiple == 0 {
        return Err(invalid("preprocess: target and multiple must be positive"));
    }
    let (ow, oh) = opts.output_size(width, height);
    let planes: Vec<Vec<u8>> = (0..3)
        .map(|c| pixels.iter().skip(c).step_by(channels).copied().collect())
        .collect();
    let mut data = Vec::with_capacity(3 * ow as usize * oh as usize);
    for (c, plane) in planes.iter().enumerate() {
        // Pillow's bicubic resize, each pass rounded to 8 bits, horizontal pass first: the
        // order of the Pillow the Depth Anything fixtures were made with.
        let resized = pil_resize::resize_with_order(
            plane,
            width,
            height,
            1,
            ow,
            oh,
            PilFilter::Bicubic,
            PassOrder::HorizontalFirst,
        )
        .map_err(|e| invalid(format!("preprocess: {e}")))?;
        // rescale then normalise, as two steps like the processor (x * (1/255) - mean) / std.
        let (mean, std) = (opts.mean[c], opts.std[c]);
        data.extend(
            resized
                .iter()
                .map(|&v| ((f32::from(v) * (1.0 / 255.0)) - mean) / std),
        );
    }
    Ok(Preprocessed {
        width: ow,
        height: oh,
        data,
    })
}

/// Resizes predicted depth `[h, w]` (or `[1, h, w]`) to `width × height` with bicubic
/// `align_corners=False` (transformers' `post_process_depth_estimation`) and returns it row-major.
pub fn depth_to_size(depth: &Tensor, width: u32, height: u32) -> Result<Vec<f32>> {
    let run = || -> candle_core::Result<Vec<f32>> {
        let d = if depth.rank() == 3 {
            depth.squeeze(0)?
        } else {
            depth.clone()
        };
        let (h, w) = d.dims2()?;
        let d = d.to_dtype(candle_core::DType::F32)?.reshape((1, 1, h, w))?;
        let d = resample::bicubic(&d, height as usize, width as usize)?;
        d.flatten_all()?.to_vec1::<f32>()
    };
    run().map_err(internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_size_follows_the_reference_rule() {
        let o = PreprocessOptions::default();
        // Landscape photo: short side to 518, long side rounded to a multiple of 14.
        assert_eq!(o.output_size(1024, 768), (686, 518));
        assert_eq!(o.output_size(518, 518), (518, 518));
        // A small image: the scale closest to 1 wins, so the long side lands on 518.
        assert_eq!(o.output_size(300, 200), (518, 350));
        let (w, h) = o.output_size(4000, 3);
        assert!(w % 14 == 0 && h == 14);
    }

    #[test]
    fn pil_bicubic_keeps_constants_and_identity() {
        let bicubic = |src: &[u8], w, h, ow, oh| {
            let order = PassOrder::HorizontalFirst;
            pil_resize::resize_with_order(src, w, h, 1, ow, oh, PilFilter::Bicubic, order)
                .expect("resize")
        };
        let src = vec![77u8; 30 * 20];
        assert!(bicubic(&src, 30, 20, 13, 41).iter().all(|&v| v == 77));
        let ramp: Vec<u8> = (0..30 * 20).map(|i| (i % 251) as u8).collect();
        assert_eq!(bicubic(&ramp, 30, 20, 30, 20), ramp);
    }
}
