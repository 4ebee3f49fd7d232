//! The mesher's data: corner grids (heights and inside flags at pixel corners), the limits
//! it meshes within, and the triangulated height field it returns (`mesher.rs` meshes).

use crate::depth::{check_size, HeightMap};
use crate::error::{OrfeasError, Result};
use crate::mask::Mask;

/// Heights and inside flags at pixel corners: a `w × h` image gives a `(w+1) × (h+1)` grid.
///
/// Meshing corners rather than pixel centres makes the model exactly as wide as the image
/// (every pixel becomes a square of the model) and gives a 1024² image a 1025² grid, the
/// size RTIN wants.
///
/// The fields are private: the mesher slices rows by the sides, does its grid arithmetic in
/// `i32`, and takes the heights as they are (a NaN would silently drop out of every error
/// bound and reach the mesh), so every way to build a grid checks what [`CornerGrid::new`]
/// lists.
#[derive(Clone, Debug, PartialEq)]
pub struct CornerGrid {
    width: u32,
    height: u32,
    heights: Vec<f32>,
    inside: Vec<bool>,
}

impl CornerGrid {
    /// The largest side, in corners, of a grid (a 16 384-pixel image side). The mesher works on
    /// the enclosing `(2^k + 1)²` square at roughly 15 bytes per point, about 4 GB at this side;
    /// beyond it the allocation, not a check, would stop the process (and near 2³¹ the grid's
    /// `i32` coordinates would overflow).
    pub const MAX_SIDE: u32 = 16_385;

    /// A grid of `width × height` corners, row-major: `heights[i]` and `inside[i]` belong to
    /// corner `(i % width, i / width)`.
    ///
    /// `ERR_INVALID_INPUT` unless both sides are in `2..=MAX_SIDE` (a grid of corners holds at
    /// least one cell), both vectors hold exactly
    /// `width * height` values, and every height is finite (outside corners too: they are
    /// never meshed, but a grid either holds numbers or is refused). Heights are in the
    /// caller's units; `max_error` is in the same units, and the solid builders read 0–1 as
    /// the relief's base to its full depth.
    pub fn new(width: u32, height: u32, heights: Vec<f32>, inside: Vec<bool>) -> Result<Self> {
        check_sides(width, height)?;
        check_size(width, height, heights.len(), "corner grid's heights")?;
        check_size(width, height, inside.len(), "corner grid's inside flags")?;
        if let Some(i) = heights.iter().position(|h| !h.is_finite()) {
            let bad = heights.iter().filter(|h| !h.is_finite()).count();
            return Err(OrfeasError::InvalidInput(format!(
                "{bad} corner heights are not finite, the first at ({}, {})",
                i % width as usize,
                i / width as usize
            )));
        }
        Ok(Self {
            width,
            height,
            heights,
            inside,
        })
    }

    /// A corner is inside when any pixel touching it is foreground; its height is the mean of
    /// those pixels, so outlines follow the pixel squares of the mask exactly.
    ///
    /// `ERR_INVALID_INPUT` when the mask is not the map's size, when a foreground pixel's
    /// height is not finite (the pipeline screens depth before this: `depth::finite`), or when
    /// the grid would exceed [`CornerGrid::MAX_SIDE`]. Heights outside the mask are never read.
    pub fn from_height_map(map: &HeightMap, mask: &Mask) -> Result<Self> {
        let (w, h) = (map.width() as usize, map.height() as usize);
        if (mask.width, mask.height) != (map.width(), map.height()) || mask.data.len() != w * h {
            return Err(OrfeasError::InvalidInput(format!(
                "the mask ({}x{}, {} values) does not match the {w}x{h} height map",
                mask.width,
                mask.height,
                mask.data.len()
            )));
        }
        check_sides(
            map.width().saturating_add(1),
            map.height().saturating_add(1),
        )?;
        let values = map.values();
        let bad = values
            .iter()
            .zip(&mask.data)
            .filter(|(v, &m)| m && !v.is_finite())
            .count();
        if bad > 0 {
            return Err(OrfeasError::InvalidInput(format!(
                "{bad} heights inside the mask are not finite"
            )));
        }
        let (gw, gh) = (w + 1, h + 1);
        let mut heights = vec![0.0f32; gw * gh];
        let mut inside = vec![false; gw * gh];
        for cy in 0..gh {
            for cx in 0..gw {
                let mut sum = 0.0f32;
                let mut n = 0u32;
                for py in cy.saturating_sub(1)..(cy + 1).min(h) {
                    for px in cx.saturating_sub(1)..(cx + 1).min(w) {
                        if mask.data[py * w + px] {
                            sum += values[py * w + px];
                            n += 1;
                        }
                    }
                }
                if n > 0 {
                    heights[cy * gw + cx] = sum / n as f32;
                    inside[cy * gw + cx] = true;
                }
            }
        }
        Ok(Self {
            width: gw as u32,
            height: gh as u32,
            heights,
            inside,
        })
    }

    /// A grid from a function of the corner `(x, y)` giving `(height, inside)`: synthetic
    /// terrains for tests and benchmarks. Checked as [`CornerGrid::new`] checks.
    pub fn from_fn(width: u32, height: u32, f: impl Fn(u32, u32) -> (f32, bool)) -> Result<Self> {
        check_sides(width, height)?;
        let (heights, inside) = (0..height)
            .flat_map(|y| (0..width).map(move |x| (x, y)))
            .map(|(x, y)| f(x, y))
            .unzip();
        Self::new(width, height, heights, inside)
    }

    /// Corners per row.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Rows of corners.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Heights, row-major; all finite.
    pub fn heights(&self) -> &[f32] {
        &self.heights
    }

    /// Whether each corner is inside the foreground, row-major.
    pub fn inside(&self) -> &[bool] {
        &self.inside
    }
}

/// Both sides in `2..=MAX_SIDE`: checked before anything of that size is allocated.
fn check_sides(width: u32, height: u32) -> Result<()> {
    let max = CornerGrid::MAX_SIDE;
    if width < 2 || height < 2 || width > max || height > max {
        return Err(OrfeasError::InvalidInput(format!(
            "a corner grid needs 2 to {max} corners per side, got {width}x{height}"
        )));
    }
    Ok(())
}

/// Tolerance and budget for meshing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeshingLimits {
    /// Largest vertical distance between mesh and grid, in height units.
    pub max_error: f32,
    /// Largest number of triangles; the tolerance is raised until the mesh fits.
    pub max_triangles: usize,
}

/// A triangulated height field in grid units. Triangles are counter-clockwise in grid
/// coordinates (x right, y down), i.e. clockwise once y points up; `solid.rs` flips them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HeightfieldMesh {
    pub grid_width: u32,
    pub grid_height: u32,
    pub vertices: Vec<[u32; 2]>,
    pub heights: Vec<f32>,
    pub triangles: Vec<[u32; 3]>,
    /// The tolerance the mesh actually meets (≥ the requested one when the cap bit).
    pub max_error: f32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(grid: Result<CornerGrid>) -> String {
        match grid {
            Ok(g) => panic!("accepted a {}x{} grid", g.width(), g.height()),
            Err(e) => {
                assert_eq!(e.code(), "ERR_INVALID_INPUT", "{e}");
                e.to_string()
            }
        }
    }

    #[test]
    fn grids_the_mesher_cannot_take_are_refused() {
        let ok = CornerGrid::new(3, 2, vec![0.5; 6], vec![true; 6]).expect("a valid grid");
        assert_eq!((ok.width(), ok.height(), ok.heights().len()), (3, 2, 6));
        // No corners, too many corners (checked before anything that size is allocated).
        refused(CornerGrid::new(0, 2, vec![], vec![]));
        refused(CornerGrid::new(2, 0, vec![], vec![]));
        // One corner per side holds no cell.
        refused(CornerGrid::new(1, 5, vec![0.5; 5], vec![true; 5]));
        refused(CornerGrid::new(CornerGrid::MAX_SIDE + 1, 1, vec![], vec![]));
        refused(CornerGrid::new(u32::MAX, u32::MAX, vec![], vec![]));
        refused(CornerGrid::from_fn(CornerGrid::MAX_SIDE + 1, 1, |_, _| {
            (0.0, true)
        }));
        // Either vector of the wrong length.
        refused(CornerGrid::new(3, 2, vec![0.5; 5], vec![true; 6]));
        refused(CornerGrid::new(3, 2, vec![0.5; 6], vec![true; 7]));
        // Non-finite heights, inside or out.
        let msg = refused(CornerGrid::from_fn(4, 3, |x, y| {
            (if (x, y) == (2, 1) { f32::NAN } else { 0.5 }, x > 0)
        }));
        assert!(msg.contains("(2, 1)"), "{msg}");
        refused(CornerGrid::from_fn(4, 3, |x, _| {
            (if x == 0 { f32::INFINITY } else { 0.5 }, x > 0)
        }));
    }

    #[test]
    fn height_maps_become_grids_only_with_their_own_mask_and_finite_foreground() {
        let map = HeightMap::new(3, 2, vec![0.1, 0.2, f32::NAN, 0.4, 0.5, 0.6]).expect("map");
        let mut mask = Mask::full(3, 2);
        // A NaN inside the mask is refused (the pipeline replaces or refuses them earlier).
        let msg = refused(CornerGrid::from_height_map(&map, &mask));
        assert!(msg.contains("1 heights inside the mask"), "{msg}");
        // Outside the mask it is never read.
        mask.data[2] = false;
        let grid = CornerGrid::from_height_map(&map, &mask).expect("NaN outside the mask");
        assert_eq!((grid.width(), grid.height()), (4, 3));
        assert!(grid.heights().iter().all(|h| h.is_finite()));
        assert!(!grid.inside()[3] && grid.inside()[0]);
        // A mask of another size, or a hand-built one whose data does not match its size.
        refused(CornerGrid::from_height_map(&map, &Mask::full(2, 3)));
        let mut short = Mask::full(3, 2);
        short.data.pop();
        refused(CornerGrid::from_height_map(&map, &short));
    }
}
