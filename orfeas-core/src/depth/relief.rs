//! `relief`: luminance as height (bright = high), lithophane style. Needs no weights.

use super::{DepthEstimator, HeightMap};
use crate::raster::{check_image, gaussian_blur, mask_bits, normalize_min_max, normalize_robust};
use crate::{cancel::CancelToken, error::Result, image::LoadedImage, mask::Mask};

/// Quantiles used for the robust normalisation: a few specular highlights or black pixels
/// must not squash the whole relief.
const LOW_QUANTILE: f32 = 0.005;
const HIGH_QUANTILE: f32 = 0.995;

/// Luminance relief.
///
/// Photos: luminance smoothed with a Gaussian of `sigma` working pixels (sensor noise makes
/// spiky, hard-to-mesh surfaces), then normalised to [0, 1] between the 0.5th and 99.5th
/// percentiles over the mask. 16-bit gray inputs are height maps: used as they are (no
/// smoothing) with plain min–max normalisation, so every 16-bit step survives.
#[derive(Clone, Debug)]
pub struct ReliefEstimator {
    /// Gaussian smoothing sigma in working pixels; 0 disables smoothing.
    pub sigma: f32,
}

impl ReliefEstimator {
    /// A relief estimator with the given smoothing (see [`crate::options::Preset::smoothing_sigma`]).
    pub fn new(sigma: f32) -> Self {
        Self {
            sigma: if sigma.is_finite() {
                sigma.max(0.0)
            } else {
                0.0
            },
        }
    }
}

impl Default for ReliefEstimator {
    /// The medium preset's smoothing.
    fn default() -> Self {
        Self::new(crate::options::Quality::Medium.preset().smoothing_sigma)
    }
}

impl DepthEstimator for ReliefEstimator {
    fn name(&self) -> &'static str {
        "relief"
    }

    fn estimate(
        &self,
        image: &LoadedImage,
        mask: &Mask,
        cancel: &CancelToken,
    ) -> Result<HeightMap> {
        cancel.check()?;
        let (w, h) = check_image(image)?;
        let inside = mask_bits(mask, w, h);
        let mut data = if image.gray16 {
            image.luma.clone()
        } else {
            gaussian_blur(&image.luma, w, h, self.sigma)
        };
        cancel.check()?;
        if image.gray16 {
            normalize_min_max(&mut data, &inside);
        } else {
            normalize_robust(&mut data, &inside, LOW_QUANTILE, HIGH_QUANTILE);
        }
        HeightMap::new(image.width, image.height, data)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::mask::Mask;

    fn gray(w: u32, h: u32, luma: Vec<f32>, gray16: bool) -> LoadedImage {
        let rgba = luma.iter().flat_map(|&l| {
            let v = (l * 255.0).round() as u8;
            [v, v, v, 255]
        });
        LoadedImage {
            name: "t".into(),
            width: w,
            height: h,
            rgba: rgba.collect(),
            luma,
            has_alpha: false,
            gray16,
        }
    }

    #[test]
    fn horizontal_gradient_is_monotonic() {
        let (w, h) = (64, 16);
        let luma = (0..w * h)
            .map(|i| (i % w) as f32 / (w - 1) as f32)
            .collect();
        let img = gray(w, h, luma, false);
        let hm = ReliefEstimator::new(1.0)
            .estimate(&img, &Mask::full(w, h), &CancelToken::new())
            .unwrap();
        for y in 0..h {
            for x in 1..w {
                assert!(hm.get(x, y) >= hm.get(x - 1, y), "({x},{y})");
            }
        }
        assert!(hm.get(0, 8) < 0.01 && hm.get(w - 1, 8) > 0.99);
    }

    #[test]
    fn gray16_round_trips_exactly() {
        let (w, h) = (50, 40);
        let raw: Vec<u16> = (0..w * h)
            .map(|i| (1000 + (i * 977) % 60_000) as u16)
            .collect();
        let (lo, hi) = (*raw.iter().min().unwrap(), *raw.iter().max().unwrap());
        let luma = raw.iter().map(|&v| f32::from(v) / 65535.0).collect();
        let img = gray(w, h, luma, true);
        let hm = ReliefEstimator::new(2.0)
            .estimate(&img, &Mask::full(w, h), &CancelToken::new())
            .unwrap();
        for (v, r) in hm.data.iter().zip(&raw) {
            let expect = f64::from(r - lo) / f64::from(hi - lo);
            assert!((f64::from(*v) - expect).abs() < 1e-6);
            // Re-quantising to the input's own range gives the input back bit for bit.
            let back = (f64::from(*v) * f64::from(hi - lo)).round() as u16 + lo;
            assert_eq!(back, *r);
        }
    }

    #[test]
    fn degenerate_inputs_have_no_nan() {
        for (w, h) in [(1, 1), (1, 37), (37, 1), (20, 20)] {
            let img = gray(w, h, vec![0.4; (w * h) as usize], false);
            for est in [
                ReliefEstimator::new(0.0),
                ReliefEstimator::new(1.5),
                ReliefEstimator::new(9.0),
            ] {
                let hm = est
                    .estimate(&img, &Mask::full(w, h), &CancelToken::new())
                    .unwrap();
                assert!(hm.data.iter().all(|&v| v == 0.0), "{w}x{h}");
            }
        }
        let img = gray(1, 5, vec![0.0, 0.2, 0.4, 0.6, 0.8], false);
        let hm = ReliefEstimator::new(1.0)
            .estimate(&img, &Mask::full(1, 5), &CancelToken::new())
            .unwrap();
        assert!(hm
            .data
            .iter()
            .all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
    }

    #[test]
    fn cancelled_token_stops() {
        let img = gray(4, 4, vec![0.5; 16], false);
        let cancel = CancelToken::new();
        cancel.cancel();
        let err = ReliefEstimator::default()
            .estimate(&img, &Mask::full(4, 4), &cancel)
            .unwrap_err();
        assert_eq!(err.code(), "ERR_CANCELLED");
    }
}
