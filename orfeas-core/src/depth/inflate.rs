//! `inflate`: silhouette inflation. The foreground mask is blown up like a balloon (a rounded
//! dome over the distance transform), with a touch of luminance detail on top. Needs no weights
//! and gives a plausible 3D shape for logos, sprites and product shots.

use super::{DepthEstimator, HeightMap};
use crate::raster::{check_image, distance_transform, gaussian_blur, mask_bits};
use crate::{cancel::CancelToken, error::Result, image::LoadedImage, mask::Mask};

/// Silhouette inflation with optional luminance detail.
///
/// Profile: with `d` the exact Euclidean distance of a pixel to the nearest background pixel
/// and `R` the largest such distance, the height is the circular arc
/// `h = sqrt(d'(2R' − d')) / R'` with `d' = d − 1`, `R' = R − 1`. The outermost foreground
/// pixels (`d = 1`) sit at exactly 0, the medial axis at 1, and every cross-section of a
/// uniform-width shape is a half circle: a disc becomes a dome, a bar a sausage, a blob a
/// pillow. Using the one global `R` (rather than a local width) keeps narrow parts lower than
/// wide ones, as a real balloon would be. When the mask covers the whole image the distance is
/// taken to the image border.
///
/// Detail: `detail × (L − blur(L))`, a high-pass of the (lightly smoothed) luminance against a
/// wide blur computed over the mask only (so the backdrop does not bleed in), faded in over a
/// few pixels from the edge so the rim stays at 0. Negative sums are clamped to 0, then the
/// result is divided by its maximum over the mask.
#[derive(Clone, Debug)]
pub struct InflateEstimator {
    /// Gaussian sigma (working pixels) applied to luminance before the detail is extracted.
    pub sigma: f32,
    /// Weight of the luminance detail relative to the dome height (0 = pure silhouette).
    pub detail: f32,
}

impl InflateEstimator {
    /// Default detail weight: visible texture without denting the shape.
    pub const DEFAULT_DETAIL: f32 = 0.15;

    /// An inflation estimator with the given luminance smoothing and detail weight.
    pub fn new(sigma: f32, detail: f32) -> Self {
        let finite = |v: f32| if v.is_finite() { v.max(0.0) } else { 0.0 };
        Self {
            sigma: finite(sigma),
            detail: finite(detail),
        }
    }
}

impl Default for InflateEstimator {
    /// The medium preset's smoothing and [`InflateEstimator::DEFAULT_DETAIL`].
    fn default() -> Self {
        Self::new(
            crate::options::Quality::Medium.preset().smoothing_sigma,
            Self::DEFAULT_DETAIL,
        )
    }
}

impl DepthEstimator for InflateEstimator {
    fn name(&self) -> &'static str {
        "inflate"
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
        let dist = distance_transform(&inside, w, h);
        cancel.check()?;

        let max_d = dist
            .iter()
            .zip(&inside)
            .filter(|(_, &m)| m)
            .map(|(d, _)| *d)
            .fold(0.0f32, f32::max);
        let radius = max_d - 1.0;
        let mut height: Vec<f32> = if radius > 0.0 {
            dist.iter()
                .map(|&d| {
                    let t = (d - 1.0).clamp(0.0, radius);
                    (t * (2.0 * radius - t)).max(0.0).sqrt() / radius
                })
                .collect()
        } else {
            vec![0.0; w * h]
        };

        if self.detail > 0.0 {
            let high_pass = self.luminance_detail(image, &inside, w, h, radius, cancel)?;
            // Fade the detail in over the rim so edge heights stay at 0.
            let rim = (0.1 * radius).max(2.0);
            for ((hv, hp), &d) in height.iter_mut().zip(&high_pass).zip(&dist) {
                let fade = ((d - 1.0) / rim).clamp(0.0, 1.0);
                *hv += self.detail * hp * fade;
            }
        }
        cancel.check()?;

        let max_h = height
            .iter()
            .zip(&inside)
            .filter(|(v, &m)| m && v.is_finite())
            .map(|(v, _)| *v)
            .fold(0.0f32, f32::max);
        for (v, &m) in height.iter_mut().zip(&inside) {
            *v = if m && max_h > 1e-12 && v.is_finite() {
                (*v / max_h).clamp(0.0, 1.0)
            } else {
                0.0
            };
        }
        HeightMap::new(image.width, image.height, height)
    }
}

impl InflateEstimator {
    /// `L − blur_mask(L)` where `blur_mask` is a normalised convolution over the mask only.
    fn luminance_detail(
        &self,
        image: &LoadedImage,
        inside: &[bool],
        w: usize,
        h: usize,
        radius: f32,
        cancel: &CancelToken,
    ) -> Result<Vec<f32>> {
        let lum = gaussian_blur(&image.luma, w, h, self.sigma);
        // Wide enough to keep shading-scale detail, narrow enough not to flatten the dome.
        let wide_sigma = (radius / 4.0).clamp(2.0, 32.0);
        let weights: Vec<f32> = inside.iter().map(|&m| f32::from(u8::from(m))).collect();
        let weighted: Vec<f32> = lum.iter().zip(&weights).map(|(l, m)| l * m).collect();
        cancel.check()?;
        let num = gaussian_blur(&weighted, w, h, wide_sigma);
        let den = gaussian_blur(&weights, w, h, wide_sigma);
        Ok(lum
            .iter()
            .zip(num.iter().zip(&den))
            .zip(inside)
            .map(|((l, (n, d)), &m)| if m && *d > 1e-6 { l - n / d } else { 0.0 })
            .collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::mask::MaskSource;

    fn flat(w: u32, h: u32, l: f32) -> LoadedImage {
        let n = (w * h) as usize;
        let v = (l * 255.0) as u8;
        LoadedImage {
            name: "t".into(),
            width: w,
            height: h,
            rgba: [v, v, v, 255].repeat(n),
            luma: vec![l; n],
            has_alpha: false,
            gray16: false,
        }
    }

    fn disc_mask(w: u32, h: u32, cx: f32, cy: f32, r: f32) -> Mask {
        let data = (0..h)
            .flat_map(|y| {
                (0..w).map(move |x| ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt() <= r)
            })
            .collect();
        Mask {
            width: w,
            height: h,
            data,
            source: MaskSource::Border,
        }
    }

    #[test]
    fn disc_is_a_symmetric_dome() {
        let (w, h) = (101, 101);
        let mask = disc_mask(w, h, 50.0, 50.0, 40.0);
        for est in [InflateEstimator::new(1.0, 0.0), InflateEstimator::default()] {
            let hm = est
                .estimate(&flat(w, h, 0.5), &mask, &CancelToken::new())
                .unwrap();
            assert!((hm.get(50, 50) - 1.0).abs() < 1e-6);
            assert!(
                hm.get(10, 50) < 1e-6 && hm.get(50, 90) < 1e-6,
                "edge {}",
                hm.get(10, 50)
            );
            for x in 11..=50 {
                assert!(hm.get(x, 50) >= hm.get(x - 1, 50), "x {x}");
            }
            for y in 0..h {
                for x in 0..w {
                    let v = hm.get(x, y);
                    assert!(v.is_finite());
                    assert!((v - hm.get(w - 1 - x, y)).abs() < 1e-3);
                    assert!((v - hm.get(x, h - 1 - y)).abs() < 1e-3);
                    assert!((v - hm.get(y, x)).abs() < 1e-3);
                }
            }
        }
    }

    #[test]
    fn detail_follows_luminance_but_keeps_the_rim() {
        let (w, h) = (120, 120);
        let mask = disc_mask(w, h, 60.0, 60.0, 50.0);
        let mut img = flat(w, h, 0.3);
        // A bright square patch off-centre.
        for y in 30..45 {
            for x in 70..85 {
                img.luma[y * w as usize + x] = 0.9;
            }
        }
        let plain = InflateEstimator::new(0.0, 0.0)
            .estimate(&img, &mask, &CancelToken::new())
            .unwrap();
        let detailed = InflateEstimator::new(0.0, 0.3)
            .estimate(&img, &mask, &CancelToken::new())
            .unwrap();
        let i = 37 * w as usize + 77;
        assert!(detailed.data[i] > plain.data[i] * 1.02);
        assert!(detailed.get(10, 60) < 1e-6);
    }

    #[test]
    fn degenerate_inputs_have_no_nan() {
        for (w, h) in [(1, 1), (1, 40), (40, 1), (30, 20)] {
            let img = flat(w, h, 0.7);
            let hm = InflateEstimator::default()
                .estimate(&img, &Mask::full(w, h), &CancelToken::new())
                .unwrap();
            assert_eq!(hm.data.len(), (w * h) as usize);
            assert!(
                hm.data
                    .iter()
                    .all(|v| v.is_finite() && (0.0..=1.0).contains(v)),
                "{w}x{h}"
            );
            let empty = Mask {
                width: w,
                height: h,
                data: vec![false; (w * h) as usize],
                source: MaskSource::Border,
            };
            let hm = InflateEstimator::default()
                .estimate(&img, &empty, &CancelToken::new())
                .unwrap();
            assert!(hm.data.iter().all(|&v| v == 0.0));
        }
        // Full mask: distance to the image border, highest in the middle.
        let hm = InflateEstimator::new(0.0, 0.0)
            .estimate(&flat(31, 31, 0.5), &Mask::full(31, 31), &CancelToken::new())
            .unwrap();
        assert!((hm.get(15, 15) - 1.0).abs() < 1e-6 && hm.get(0, 15) < 1e-6);
    }
}
