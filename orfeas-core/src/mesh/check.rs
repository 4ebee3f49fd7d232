// SKELETON
use super::Mesh;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct SolidReport {
    pub watertight: bool,
}

pub fn check_solid(_mesh: &Mesh) -> SolidReport {
    todo!()
}
