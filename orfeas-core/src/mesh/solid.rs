// SKELETON
use super::{HeightfieldMesh, Mesh};
use crate::error::Result;

/// Grid units to millimetres.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scale {
    pub mm_per_cell: f32,
    pub depth_mm: f32,
    pub base_mm: f32,
}

pub fn build_surface(_hf: &HeightfieldMesh, _scale: Scale) -> Mesh {
    todo!()
}

pub fn build_solid(_hf: &HeightfieldMesh, _scale: Scale) -> Result<Mesh> {
    todo!()
}
