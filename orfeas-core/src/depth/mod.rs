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
    pub fn resized(&self, width: u32, height: u32) -> HeightMap {
        if (width, height) == (self.width, self.height) {
            return self.clone();
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
}
