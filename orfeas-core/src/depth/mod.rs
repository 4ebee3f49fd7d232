//! Depth estimation: image (+ foreground mask) → height map.

pub mod depth_anything;
mod finite;
mod inflate;
mod relief;

pub use finite::MAX_NON_FINITE_SHARE;
pub(crate) use finite::{replace as replace_non_finite, screen as screen_non_finite};
pub use inflate::InflateEstimator;
pub use relief::ReliefEstimator;

use crate::cancel::CancelToken;
use crate::error::{OrfeasError, Result};
use crate::image::LoadedImage;
use crate::mask::Mask;

/// A per-pixel height map, row-major, `width * height` values.
///
/// Values are relative heights in `[0, 1]` (1 = closest to the viewer / highest) for pixels
/// inside the mask; values outside the mask are unspecified and never meshed. A raw prediction
/// (`Model::raw_depth`) holds the model's own unnormalised values instead.
///
/// The fields are private so that every map has the shape its users index by: built with
/// [`HeightMap::new`], read with the accessors.
#[derive(Clone, Debug, PartialEq)]
pub struct HeightMap {
    width: u32,
    height: u32,
    data: Vec<f32>,
}

impl HeightMap {
    /// A map of `width × height` values, row-major.
    ///
    /// `ERR_INVALID_INPUT` unless both sides are at least 1 and `values` holds exactly
    /// `width * height` values: resampling, exporting and meshing index by the sides. Values
    /// need not be finite: a depth source's output is held as it came, so that the pipeline can
    /// count what is wrong with it (`depth::MAX_NON_FINITE_SHARE`) instead of each constructor
    /// deciding alone; the mesher's input, [`crate::mesh::CornerGrid`], is where finite heights
    /// are required.
    pub fn new(width: u32, height: u32, values: Vec<f32>) -> Result<Self> {
        check_size(width, height, values.len(), "height map")?;
        Ok(Self {
            width,
            height,
            data: values,
        })
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    /// The values, row-major.
    pub fn values(&self) -> &[f32] {
        &self.data
    }

    /// The values, to change in place (the shape stays).
    pub fn values_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// The values, row-major, without copying.
    pub fn into_values(self) -> Vec<f32> {
        self.data
    }

    /// Height at pixel `(x, y)`. Panics outside the map, as slice indexing does (the shape is
    /// the caller's to respect; [`HeightMap::values`] for anything else).
    pub fn get(&self, x: u32, y: u32) -> f32 {
        assert!(
            x < self.width && y < self.height,
            "({x}, {y}) is outside the {}x{} height map",
            self.width,
            self.height
        );
        self.data[y as usize * self.width as usize + x as usize]
    }
}

/// `Ok` when a `width × height` grid is not empty and `len` is its size (overflow-checked).
pub(crate) fn check_size(width: u32, height: u32, len: usize, what: &str) -> Result<()> {
    if width == 0 || height == 0 {
        return Err(OrfeasError::InvalidInput(format!(
            "a {what} needs at least one value per side, got {width}x{height}"
        )));
    }
    match (width as usize).checked_mul(height as usize) {
        Some(n) if n == len => Ok(()),
        Some(n) => Err(OrfeasError::InvalidInput(format!(
            "a {width}x{height} {what} needs {n} values, got {len}"
        ))),
        None => Err(OrfeasError::InvalidInput(format!(
            "a {width}x{height} {what} is too large for this machine"
        ))),
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
    /// input's original resolution. `ERR_INVALID_INPUT` for an empty target size.
    pub fn resized(&self, width: u32, height: u32) -> Result<HeightMap> {
        check_size(
            width,
            height,
            width as usize * height as usize,
            "resized height map",
        )?;
        if (width, height) == (self.width, self.height) {
            return Ok(self.clone());
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
        HeightMap::new(width, height, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(width: u32, height: u32, values: Vec<f32>) -> HeightMap {
        HeightMap::new(width, height, values).expect("valid map")
    }

    #[test]
    fn resize_keeps_linear_ramps_and_constants() {
        let m = map(4, 2, vec![0.0, 1.0, 2.0, 3.0, 0.0, 1.0, 2.0, 3.0]);
        let r = m.resized(8, 4).expect("resized");
        assert_eq!((r.width(), r.height(), r.values().len()), (8, 4, 32));
        assert!(r.values().iter().all(|v| (0.0..=3.0).contains(v)));
        assert!(r.values()[..8].windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(m.resized(4, 2).ok(), Some(m.clone()));
        let c = map(3, 3, vec![0.25; 9]).resized(7, 5).expect("resized");
        assert!(c.values().iter().all(|&v| (v - 0.25).abs() < 1e-6));
        assert_eq!(c.get(6, 4), c.values()[34]);
    }

    #[test]
    fn maps_of_no_pixels_or_the_wrong_length_are_refused() {
        let refused = |w: u32, h: u32, n: usize| {
            HeightMap::new(w, h, vec![0.5; n])
                .map_err(|e| e.code())
                .expect_err("an invalid map")
        };
        assert_eq!(refused(0, 4, 0), "ERR_INVALID_INPUT");
        assert_eq!(refused(4, 0, 0), "ERR_INVALID_INPUT");
        assert_eq!(refused(3, 2, 5), "ERR_INVALID_INPUT");
        assert_eq!(refused(3, 2, 7), "ERR_INVALID_INPUT");
        // w * h overflows u32 (and on 32-bit targets usize): refused, never wrapped.
        let e = HeightMap::new(u32::MAX, u32::MAX, vec![0.0; 4]).expect_err("huge");
        assert_eq!(e.code(), "ERR_INVALID_INPUT");
        // Resampling to nothing is refused too, instead of an empty map.
        let m = map(2, 2, vec![0.0; 4]);
        assert_eq!(
            m.resized(0, 3).map_err(|e| e.code()),
            Err("ERR_INVALID_INPUT")
        );
        // Non-finite values are data here (the pipeline counts them); the mesher refuses them.
        assert!(HeightMap::new(1, 2, vec![f32::NAN, 1.0]).is_ok());
    }
}
