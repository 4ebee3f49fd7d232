//! The learned background remover: BiRefNet with its authors' pre- and post-processing.
//!
//! The authors' inference example resizes the PIL image with torchvision's `Resize((1024,
//! 1024))` (Pillow's antialiased bilinear filter on 8-bit data, with an 8-bit intermediate
//! between the passes), normalises with the ImageNet statistics, takes the `sigmoid` of the
//! last output, and brings the mask back to the image's size with `ToPILImage` (8 bits,
//! truncating) and Pillow's default `resize` (bicubic for a gray image). A float resize instead
//! moves the mask by up to 0.2 at the edges, so both resizes are Pillow's own arithmetic
//! ([`crate::image::pil_resize`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use candle_core::{Device, Tensor};

use crate::cancel::CancelToken;
use crate::error::{OrfeasError, Result};
use crate::image::pil_resize::{self, PilFilter};
use crate::image::LoadedImage;
use crate::models::birefnet::{BiRefNet, BiRefNetSize};
use crate::models::SegmenterWeights;

/// The model's input side: both published checkpoints were trained at 1024².
pub const SEGMENTER_INPUT_SIZE: u32 = 1024;

/// ImageNet statistics, as the authors' `Normalize` has them.
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// BiRefNet, loaded once and shared by every slot.
pub struct Segmenter {
    model: BiRefNet,
    device: Device,
    weights: PathBuf,
    input_size: u32,
}

impl std::fmt::Debug for Segmenter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segmenter")
            .field("size", &self.model.size())
            .field("weights", &self.weights)
            .field("input_size", &self.input_size)
            .finish_non_exhaustive()
    }
}

/// What the remover made of one image.
#[derive(Clone, Debug, PartialEq)]
pub struct Cutout {
    /// Foreground opacity at the image's size, row-major, as the authors' example makes it.
    pub alpha: Vec<u8>,
    /// The model's foreground probability at its input size, row-major `[size, size]`.
    pub probability: Vec<f32>,
    /// The side of `probability`.
    pub size: u32,
}

impl Segmenter {
    /// Loads a checkpoint (ERR_WEIGHTS_INVALID naming the file and the first bad tensor).
    pub fn load(location: &SegmenterWeights, device: crate::Device) -> Result<Arc<Self>> {
        Self::load_at(location, device, SEGMENTER_INPUT_SIZE)
    }

    /// [`Self::load`] with another input side (a multiple of 32): the tests' tiny models.
    pub(crate) fn load_at(
        location: &SegmenterWeights,
        device: crate::Device,
        input_size: u32,
    ) -> Result<Arc<Self>> {
        if input_size == 0 || !input_size.is_multiple_of(32) {
            return Err(OrfeasError::Internal(format!(
                "segmenter input size {input_size} is not a multiple of 32"
            )));
        }
        let device = device.resolve()?.candle_device()?;
        let clock = Instant::now();
        let model = BiRefNet::load(&location.weights, &device)?;
        tracing::info!(
            weights = %location.weights.display(),
            size = %model.size(),
            load_s = clock.elapsed().as_secs_f64(),
            "background remover loaded"
        );
        Ok(Arc::new(Self {
            model,
            device,
            weights: location.weights.clone(),
            input_size,
        }))
    }

    /// Which published model this is (`lite`, `general`), for logs and health reports.
    pub fn size(&self) -> BiRefNetSize {
        self.model.size()
    }

    /// The foreground of `image`: BiRefNet's mask at the image's size, and its probability
    /// at the model's input size.
    pub fn cut_out(&self, image: &LoadedImage, cancel: &CancelToken) -> Result<Cutout> {
        let (w, h) = (image.width, image.height);
        if w == 0 || h == 0 || image.rgba.len() != w as usize * h as usize * 4 {
            return Err(OrfeasError::Internal(format!(
                "{}: a {w}×{h} image with {} bytes of pixels",
                image.name,
                image.rgba.len()
            )));
        }
        let s = self.input_size;
        // `Image.convert("RGB")` drops the alpha channel without compositing.
        let rgb: Vec<u8> = image
            .rgba
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        let resized = pil_resize::resize(&rgb, w, h, 3, s, s, PilFilter::Bilinear)
            .map_err(|e| resize_error(&image.name, e))?;
        drop(rgb);
        let pixels = normalised(&resized, s as usize, &self.device)?;
        cancel.check()?;
        let clock = Instant::now();
        let logits = self.model.forward(&pixels, cancel)?;
        let probability: Vec<f32> = candle_nn::ops::sigmoid(&logits)
            .and_then(|p| p.flatten_all())
            .and_then(|p| p.to_dtype(candle_core::DType::F32))
            .and_then(|p| p.to_vec1())
            .map_err(|e| OrfeasError::Internal(format!("background remover: {e}")))?;
        if probability.len() != (s as usize).pow(2) {
            return Err(OrfeasError::Internal(format!(
                "background remover gave {} values for a {s}² input",
                probability.len()
            )));
        }
        tracing::debug!(input = %image.name, model_s = clock.elapsed().as_secs_f64(), "background removed");
        let small = pil_resize::to_u8_truncating(&probability);
        let alpha = pil_resize::resize(&small, s, s, 1, w, h, PilFilter::Bicubic)
            .map_err(|e| resize_error(&image.name, e))?;
        Ok(Cutout {
            alpha,
            probability,
            size: s,
        })
    }
}

/// Only sizes the loader already refused can fail a resize.
fn resize_error(name: &str, e: pil_resize::PilResizeError) -> OrfeasError {
    OrfeasError::Internal(format!("{name}: resizing for the background remover: {e}"))
}

/// `Normalize(mean, std)(ToTensor()(pixels))` as `[1, 3, s, s]`: `(v / 255 - mean) / std` in
/// f32, in torchvision's order of operations.
fn normalised(rgb: &[u8], s: usize, device: &Device) -> Result<Tensor> {
    let plane = s * s;
    let mut values = vec![0f32; 3 * plane];
    for (p, px) in rgb.chunks_exact(3).enumerate() {
        for c in 0..3 {
            values[c * plane + p] = (f32::from(px[c]) / 255.0 - MEAN[c]) / STD[c];
        }
    }
    Tensor::from_vec(values, (1, 3, s, s), device)
        .map_err(|e| OrfeasError::Internal(format!("background remover input: {e}")))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::PathBuf;

    use super::*;
    use crate::image::{load_image, ImageLimits, ImageSource};

    fn fixture() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/birefnet")
    }

    fn reference() -> HashMap<String, Tensor> {
        candle_core::safetensors::load(fixture().join("reference.safetensors"), &Device::Cpu)
            .expect("reference.safetensors")
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all()
            .and_then(|t| t.to_vec1())
            .expect("f32 values")
    }

    fn photo() -> LoadedImage {
        let source = ImageSource::Path(fixture().join("image.png"));
        load_image(&source, &ImageLimits::default()).expect("image.png")
    }

    #[test]
    fn the_input_is_the_authors_resize_and_normalisation_exactly() {
        let image = photo();
        let rgb: Vec<u8> = image
            .rgba
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        let resized = pil_resize::resize(
            &rgb,
            image.width,
            image.height,
            3,
            128,
            128,
            PilFilter::Bilinear,
        )
        .expect("resize");
        let want = reference();
        let pillow: Vec<u8> = values(&want["resized_rgb"])
            .iter()
            .map(|&v| v as u8)
            .collect();
        assert_eq!(resized, pillow, "Pillow's 8-bit bilinear resize");
        let pixels = values(&normalised(&resized, 128, &Device::Cpu).expect("tensor"));
        let torch = values(&want["pixels"]);
        let worst = pixels
            .iter()
            .zip(&torch)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst <= 1e-6, "normalisation differs by {worst}");
    }

    #[test]
    fn the_tiny_model_cuts_out_the_photo_as_the_authors_code_does() {
        let weights = SegmenterWeights {
            weights: fixture().join("model.safetensors"),
        };
        let segmenter = Segmenter::load_at(&weights, crate::Device::Cpu, 128).expect("tiny model");
        let image = photo();
        let cutout = segmenter
            .cut_out(&image, &CancelToken::new())
            .expect("cut out");
        let want = values(&reference()["probability"]);
        let worst = cutout
            .probability
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        eprintln!("BiRefNet probability: max |Δ| {worst:.2e} against the authors' code");
        assert!(worst <= 1e-4, "probability differs by {worst}");
        // The mask: 8-bit truncation then Pillow's bicubic resize (exact on the authors'
        // probability, the next test). A probability within 1e-5 of a step of 1/255 truncates to
        // the neighbouring level, which bicubic's lobes spread to 2 levels in a few pixels.
        let mask = image::open(fixture().join("mask.png"))
            .expect("mask.png")
            .into_luma8();
        assert_eq!((mask.width(), mask.height()), (image.width, image.height));
        let diffs: Vec<i32> = cutout
            .alpha
            .iter()
            .zip(mask.as_raw())
            .map(|(&a, &b)| i32::from(a) - i32::from(b))
            .collect();
        let off = diffs.iter().filter(|d| **d != 0).count();
        let worst = diffs.iter().map(|d| d.abs()).max().unwrap_or(0);
        eprintln!(
            "mask.png: {off} of {} pixels differ, by at most {worst}",
            diffs.len()
        );
        assert!(worst <= 2, "mask levels differ by {worst}");
        assert!(
            off * 100 <= diffs.len(),
            "{off} of {} mask pixels differ",
            diffs.len()
        );
    }

    #[test]
    fn the_mask_is_made_from_the_probability_as_the_authors_example_makes_it() {
        let image = photo();
        let probability = values(&reference()["probability"]);
        let small = pil_resize::to_u8_truncating(&probability);
        let alpha = pil_resize::resize(
            &small,
            128,
            128,
            1,
            image.width,
            image.height,
            PilFilter::Bicubic,
        )
        .expect("resize");
        let mask = image::open(fixture().join("mask.png"))
            .expect("mask.png")
            .into_luma8();
        assert_eq!(
            alpha,
            mask.into_raw(),
            "ToPILImage + Pillow's bicubic resize, byte for byte"
        );
    }
}
