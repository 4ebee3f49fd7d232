//! Depth estimation: image (+ foreground mask) → height map.

pub mod depth_anything;
mod finite;
mod inflate;
mod relief;

pub use finite::{settle_non_finite, MAX_NON_FINITE_SHARE};

pub use inflate::InflateEstimator;
pub use relief::ReliefEstimator;

use crate::cancel::CancelToken;
use crate::error::Result;
use crate::image::LoadedImage;
use crate::mask::Mask;

/// A per-pixel height map, row-major, `width * height` values.
///
/// Values are relative heights in `[0, 1]` (1 = closest to the viewer / highest) for pixels
/// inside the mask; values outside the mask are unspecified and never meshed.
#[derive(Clone, Debug, PartialEq)]
pub struct HeightMap {
    pub width: u32,
    pub height: u32,
    pub data: Vec<f32>,
}

impl HeightMap {
    /// A map checked the way every consumer relies on: both sides positive and exactly
    /// `width × height` values. Build maps from outside the crate with this; the fields stay
    /// public for reading.
    pub fn new(width: u32, height: u32, data: Vec<f32>) -> Result<Self> {
        let map = Self {
            width,
            height,
            data,
        };
        map.check()?;
        Ok(map)
    }

    /// `ERR_INVALID_INPUT` unless both sides are positive and `data` holds `width × height`
    /// values.
    pub fn check(&self) -> Result<()> {
        let expected = (self.width as usize).checked_mul(self.height as usize);
        if self.width == 0 || self.height == 0 || expected != Some(self.data.len()) {
            return Err(crate::error::OrfeasError::InvalidInput(format!(
                "a height map of {}×{} needs {} values, not {}",
                self.width,
                self.height,
                expected.map_or_else(|| "more than addressable".to_owned(), |n| n.to_string()),
                self.data.len()
            )));
        }
        Ok(())
    }

    /// Height at pixel `(x, y)`.
    pub fn get(&self, x: u32, y: u32) -> f32 {
        self.data[y as usize * self.width as usize + x as usize]
    }
}

/// Turns an image into a height map. Object safe and shareable between slots.
pub trait DepthEstimator: Send + Sync {
    /// The name reported in results (`relief`, `inflate`, `depth-anything`).
    fn name(&self) -> &'static str;

    /// Estimates heights for every pixel of `image` (already at working resolution).
    /// Long-running implementations call `cancel.check()` between steps.
    fn estimate(&self, image: &LoadedImage, mask: &Mask, cancel: &CancelToken)
        -> Result<HeightMap>;
}

impl HeightMap {
    /// Bilinear resampling (pixel centres aligned), used to hand the raw depth back at the
    /// input's original resolution.
    ///
    /// Never panics: a source that fails [`check`](Self::check) (only possible when the
    /// fields were set by hand) gives a flat map of the asked size.
    pub fn resized(&self, width: u32, height: u32) -> HeightMap {
        if (width, height) == (self.width, self.height) {
            return self.clone();
        }
        if self.check().is_err() || width == 0 || height == 0 {
            return HeightMap {
                width,
                height,
                data: vec![0.0; width as usize * height as usize],
            };
        }
        let (sw, sh) = (self.width as usize, self.height as usize);
        let axis = |dst: u32, src: usize| -> Vec<(usize, usize, f32)> {
            let scale = src as f32 / dst as f32;
            (0..dst)
                .map(|i| {
                    let s = ((i as f32 + 0.5) * scale - 0.5).clamp(0.0, (src - 1) as f32);
                    let i0 = s.floor() as usize;
                    (i0, (i0 + 1).min(src - 1), s - i0 as f32)
                })
                .collect()
        };
        let (xs, ys) = (axis(width, sw), axis(height, sh));
        let mut data = Vec::with_capacity(width as usize * height as usize);
        for &(y0, y1, fy) in &ys {
            let (r0, r1) = (&self.data[y0 * sw..][..sw], &self.data[y1 * sw..][..sw]);
            for &(x0, x1, fx) in &xs {
                let top = r0[x0] + (r0[x1] - r0[x0]) * fx;
                let bottom = r1[x0] + (r1[x1] - r1[x0]) * fx;
                data.push(top + (bottom - top) * fy);
            }
        }
        HeightMap {
            width,
            height,
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_keeps_linear_ramps_and_constants() {
        let m = HeightMap {
            width: 4,
            height: 2,
            data: vec![0.0, 1.0, 2.0, 3.0, 0.0, 1.0, 2.0, 3.0],
        };
        let r = m.resized(8, 4);
        assert_eq!((r.width, r.height, r.data.len()), (8, 4, 32));
        assert!(r.data.iter().all(|v| (0.0..=3.0).contains(v)));
        assert!(r.data[..8].windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(m.resized(4, 2), m);
        let c = HeightMap {
            width: 3,
            height: 3,
            data: vec![0.25; 9],
        }
        .resized(7, 5);
        assert!(c.data.iter().all(|&v| (v - 0.25).abs() < 1e-6));
    }

    #[test]
    fn malformed_maps_are_refused_and_never_panic() {
        assert!(HeightMap::new(2, 2, vec![0.0; 4]).is_ok());
        for (w, h, n) in [
            (0, 2, 0),
            (2, 0, 0),
            (2, 2, 3),
            (2, 2, 5),
            (u32::MAX, u32::MAX, 1),
        ] {
            let err = HeightMap::new(w, h, vec![0.0; n]).expect_err("malformed");
            assert_eq!(err.code(), "ERR_INVALID_INPUT", "{w}×{h} with {n}");
        }
        let by_hand = HeightMap {
            width: 3,
            height: 3,
            data: vec![1.0; 2],
        };
        assert_eq!(by_hand.resized(2, 2).data, vec![0.0; 4]);
        assert!(HeightMap::new(3, 1, vec![0.5; 3])
            .expect("ok")
            .resized(0, 4)
            .data
            .is_empty());
    }
}
