// SKELETON
use crate::{cancel::CancelToken, depth::HeightMap, error::Result, mask::Mask};

/// Heights and inside flags at pixel corners: a `w x h` image gives a `(w+1) x (h+1)` grid.
#[derive(Clone, Debug, PartialEq)]
pub struct CornerGrid {
    pub width: u32,
    pub height: u32,
    pub heights: Vec<f32>,
    pub inside: Vec<bool>,
}

impl CornerGrid {
    pub fn from_height_map(_map: &HeightMap, _mask: &Mask) -> Self {
        todo!()
    }
}

/// Tolerance and budget for meshing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeshingLimits {
    pub max_error: f32,
    pub max_triangles: usize,
}

/// A triangulated height field in grid units.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HeightfieldMesh {
    pub grid_width: u32,
    pub grid_height: u32,
    pub vertices: Vec<[u32; 2]>,
    pub heights: Vec<f32>,
    pub triangles: Vec<[u32; 3]>,
    pub max_error: f32,
}

pub fn triangulate_heightfield(_grid: &CornerGrid, _limits: &MeshingLimits, _cancel: &CancelToken) -> Result<HeightfieldMesh> {
    todo!()
}
