//! The masking stage: which pixels are the subject, by the source [`Background`] names.
//!
//! - `alpha`: the image's own alpha channel, soft edges kept;
//! - `border`: the backdrop estimated from a near-uniform image border ([`crate::mask`]);
//! - `birefnet`: the learned remover ([`Segmenter`]), soft edges kept as alpha;
//! - `none`: the whole image;
//! - `auto`: the alpha channel when it is real, else BiRefNet when its weights are loaded,
//!   else the border estimate (which gives the whole image when the border is no backdrop).
//!
//! A source that finds no subject (an opaque image asked for its alpha, a blank BiRefNet mask)
//! gives the whole image with a [`Foreground::missing`] note: a relief goes on with the whole
//! image and says so, an object fails with ERR_NO_FOREGROUND.

mod background;
mod segmenter;

use std::sync::Arc;

pub use background::Background;
pub use segmenter::{Cutout, Segmenter, SEGMENTER_INPUT_SIZE};

use crate::cancel::CancelToken;
use crate::error::{OrfeasError, Result};
use crate::image::pil_resize::{self, PilFilter};
use crate::image::LoadedImage;
use crate::mask::{estimate_border, estimate_mask, Mask, MaskSource};

/// A mask with less than this share of the image at alpha ≥ 128 has found no subject.
const MIN_SUBJECT_SHARE: f32 = 0.001;

/// The subject of one image.
#[derive(Clone, Debug, PartialEq)]
pub struct Foreground {
    pub width: u32,
    pub height: u32,
    /// Opacity per pixel, row-major: 255 subject, 0 background, soft in between.
    pub alpha: Vec<u8>,
    pub source: MaskSource,
    /// BiRefNet's probability at its input size, when it ran (for `mask.npy`).
    pub probability: Option<(u32, Vec<f32>)>,
    /// Why the asked-for source found no subject (the whole image is used instead).
    pub missing: Option<String>,
}

impl Foreground {
    /// The whole image as the subject, with why it is whole when a source found nothing.
    fn whole(image: &LoadedImage, missing: Option<String>) -> Self {
        Self {
            width: image.width,
            height: image.height,
            alpha: vec![u8::MAX; image.width as usize * image.height as usize],
            source: MaskSource::None,
            probability: None,
            missing,
        }
    }

    fn from_mask(mask: &Mask) -> Self {
        Self {
            width: mask.width,
            height: mask.height,
            alpha: mask.data.iter().map(|&s| u8::from(s) * u8::MAX).collect(),
            source: mask.source,
            probability: None,
            missing: None,
        }
    }

    /// The mask as foreground / background at `alpha >= 128` (what the meshers take).
    pub fn to_mask(&self) -> Mask {
        Mask {
            width: self.width,
            height: self.height,
            data: self.alpha.iter().map(|&a| a >= 128).collect(),
            source: self.source,
        }
    }

    /// The mask at another size (Pillow's bilinear filter, as the images are resized); a
    /// copy when the size is its own.
    pub fn at_size(&self, width: u32, height: u32) -> Result<Foreground> {
        if (width, height) == (self.width, self.height) || self.alpha.is_empty() {
            return Ok(self.clone());
        }
        Ok(Foreground {
            width,
            height,
            alpha: pil_resize::resize(
                &self.alpha,
                self.width,
                self.height,
                1,
                width,
                height,
                PilFilter::Bilinear,
            )
            .map_err(|e| OrfeasError::Internal(format!("resizing the mask: {e}")))?,
            source: self.source,
            probability: self.probability.clone(),
            missing: self.missing.clone(),
        })
    }

    /// Share of pixels at `alpha >= 128`.
    fn subject_share(&self) -> f32 {
        let n = self.alpha.len().max(1) as f32;
        self.alpha.iter().filter(|&&a| a >= 128).count() as f32 / n
    }
}

/// The loaded models the masking stage may use.
#[derive(Clone, Debug, Default)]
pub struct MaskingSetup {
    /// BiRefNet when loaded: one copy of the weights for every slot.
    pub segmenter: Option<Arc<Segmenter>>,
    /// Why BiRefNet is not loaded although its weights were found.
    pub segmenter_unusable: Option<String>,
}

impl MaskingSetup {
    /// Whether `background` can run with what is loaded (only `birefnet` needs a model).
    pub fn check(&self, background: Background) -> Result<()> {
        if background != Background::Birefnet || self.segmenter.is_some() {
            return Ok(());
        }
        let why = match &self.segmenter_unusable {
            Some(why) => format!("BiRefNet, whose weights could not be used ({why})"),
            None => "the BiRefNet weights, which are not loaded here".to_owned(),
        };
        Err(OrfeasError::WeightsNotFound(format!(
            "background birefnet needs {why}; {}",
            crate::models::how_to_get_segmenter()
        )))
    }
}

/// Separates the subject of `image` as `background` says.
pub fn separate(
    image: &LoadedImage,
    background: Background,
    setup: &MaskingSetup,
    cancel: &CancelToken,
) -> Result<Foreground> {
    setup.check(background)?;
    let real_alpha = || {
        let fg = alpha_channel(image);
        (image.has_alpha && fg.subject_share() >= MIN_SUBJECT_SHARE).then_some(fg)
    };
    let foreground = match background {
        Background::None => Foreground::whole(image, None),
        Background::Alpha => real_alpha().unwrap_or_else(|| {
            let why = if image.has_alpha {
                "its alpha channel is transparent everywhere"
            } else {
                "the image has no transparency"
            };
            Foreground::whole(
                image,
                Some(format!("background alpha was asked for, but {why}")),
            )
        }),
        Background::Border => match estimate_border(image) {
            Some(mask) => Foreground::from_mask(&mask),
            None => Foreground::whole(
                image,
                Some(
                    "background border was asked for, but the image border is no plain backdrop"
                        .into(),
                ),
            ),
        },
        Background::Birefnet => learned(image, setup, cancel)?,
        // A height map (16-bit gray) is data everywhere; estimate_mask knows and keeps it whole.
        Background::Auto => {
            let estimate = estimate_mask(image);
            match estimate.source {
                // The alpha itself, soft edges and all (the estimate thresholds it).
                MaskSource::Alpha => alpha_channel(image),
                _ if setup.segmenter.is_some() && !image.gray16 => learned(image, setup, cancel)?,
                _ => Foreground::from_mask(&estimate),
            }
        }
    };
    cancel.check()?;
    if foreground.source != MaskSource::None {
        tracing::debug!(input = %image.name, mask = ?foreground.source, "foreground separated");
    }
    Ok(foreground)
}

fn alpha_channel(image: &LoadedImage) -> Foreground {
    Foreground {
        width: image.width,
        height: image.height,
        alpha: image.rgba.chunks_exact(4).map(|p| p[3]).collect(),
        source: MaskSource::Alpha,
        probability: None,
        missing: None,
    }
}

fn learned(image: &LoadedImage, setup: &MaskingSetup, cancel: &CancelToken) -> Result<Foreground> {
    let Some(segmenter) = &setup.segmenter else {
        return Err(OrfeasError::Internal("BiRefNet is not loaded".into()));
    };
    let Cutout {
        alpha,
        probability,
        size,
    } = segmenter.cut_out(image, cancel)?;
    let foreground = Foreground {
        width: image.width,
        height: image.height,
        alpha,
        source: MaskSource::Birefnet,
        probability: Some((size, probability)),
        missing: None,
    };
    if foreground.subject_share() >= MIN_SUBJECT_SHARE {
        return Ok(foreground);
    }
    // The probability stays: it is what the user asked `mask.npy` for, blank or not.
    let mut whole = Foreground::whole(
        image,
        Some("BiRefNet found no foreground in the image".into()),
    );
    whole.probability = foreground.probability;
    Ok(whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 4]) -> LoadedImage {
        let mut rgba = Vec::new();
        for y in 0..h {
            for x in 0..w {
                rgba.extend_from_slice(&f(x, y));
            }
        }
        let has_alpha = rgba.chunks_exact(4).any(|p| p[3] < 255);
        LoadedImage {
            name: "t".into(),
            width: w,
            height: h,
            luma: rgba
                .chunks_exact(4)
                .map(|p| f32::from(p[0]) / 255.0)
                .collect(),
            rgba,
            has_alpha,
            gray16: false,
        }
    }

    fn disc(x: u32, y: u32) -> bool {
        let (dx, dy) = (x as f32 - 32.0, y as f32 - 32.0);
        dx * dx + dy * dy < 400.0
    }

    #[test]
    fn each_source_is_what_was_asked_for() {
        let cancel = CancelToken::new();
        let setup = MaskingSetup::default();
        // A dark disc on white, fully opaque: the border finds it, alpha has nothing.
        let opaque = image(64, 64, |x, y| {
            if disc(x, y) {
                [20, 20, 20, 255]
            } else {
                [255; 4]
            }
        });
        let border = separate(&opaque, Background::Border, &setup, &cancel).expect("border");
        assert_eq!(
            (border.source, border.missing.is_none()),
            (MaskSource::Border, true)
        );
        assert!(border.alpha[32 * 64 + 32] == 255 && border.alpha[0] == 0);
        let auto = separate(&opaque, Background::Auto, &setup, &cancel).expect("auto");
        assert_eq!(auto.source, MaskSource::Border);
        let alpha = separate(&opaque, Background::Alpha, &setup, &cancel).expect("alpha");
        assert_eq!(alpha.source, MaskSource::None);
        assert!(alpha.missing.is_some_and(|m| m.contains("no transparency")));
        let none = separate(&opaque, Background::None, &setup, &cancel).expect("none");
        assert!(none.alpha.iter().all(|&a| a == 255) && none.missing.is_none());
        // Soft alpha edges survive.
        let sprite = image(64, 64, |x, y| {
            if disc(x, y) {
                [20, 20, 20, 255]
            } else {
                [255, 255, 255, (x % 2) as u8 * 100]
            }
        });
        let a = separate(&sprite, Background::Alpha, &setup, &cancel).expect("alpha");
        assert_eq!((a.source, a.alpha[1]), (MaskSource::Alpha, 100));
    }

    #[test]
    fn birefnet_without_weights_is_weights_not_found() {
        let opaque = image(8, 8, |_, _| [9; 4]);
        let err = separate(
            &opaque,
            Background::Birefnet,
            &MaskingSetup::default(),
            &CancelToken::new(),
        );
        let err = err.err();
        assert_eq!(
            err.as_ref().map(|e| e.code()),
            Some("ERR_WEIGHTS_NOT_FOUND")
        );
        assert!(err.is_some_and(|e| e.to_string().contains("fetch-model --model birefnet-lite")));
    }
}
