//! Triangle meshes: the plain data type, height-field meshing, solid construction and checks.

mod analyze;
mod check;
mod components;
mod disjoint;
mod edges;
mod greedy;
mod heightfield;
mod intersect;
mod marching_cubes;
mod mesher;
mod rtin;
mod solid;
mod tiled;
mod tiling;

pub use analyze::{analyze, MeshReport};
pub use check::{check_solid, SolidReport};
pub use components::keep_largest_component;
pub use heightfield::{CornerGrid, HeightfieldMesh, MeshingLimits};
pub use intersect::self_intersections;
pub use marching_cubes::marching_cubes;
pub use mesher::triangulate_heightfield;
pub use solid::{build_solid, build_surface, Scale};

/// An indexed triangle mesh. Plain vectors, so bindings can hand them out as arrays.
///
/// Units are millimetres, +z up, triangles wound counter-clockwise seen from outside.
/// `uvs` and `colors` are either empty or one per vertex. UV (0,0) is the top-left of the
/// texture (glTF convention); writers for formats with a bottom-left origin flip v.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mesh {
    pub positions: Vec<[f32; 3]>,
    pub triangles: Vec<[u32; 3]>,
    pub uvs: Vec<[f32; 2]>,
    pub colors: Vec<[u8; 3]>,
}

/// An RGBA8 image carried beside a mesh as its colour texture.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Texture {
    pub width: u32,
    pub height: u32,
    /// Row-major RGBA8, `width * height * 4` bytes.
    pub rgba: Vec<u8>,
}

impl Mesh {
    /// Number of triangles.
    pub fn triangle_count(&self) -> usize {
        self.triangles.len()
    }

    /// Axis-aligned bounds `(min, max)`; `None` for a mesh without vertices.
    pub fn bounds(&self) -> Option<([f32; 3], [f32; 3])> {
        let first = *self.positions.first()?;
        Some(
            self.positions
                .iter()
                .fold((first, first), |(mut lo, mut hi), p| {
                    for k in 0..3 {
                        lo[k] = lo[k].min(p[k]);
                        hi[k] = hi[k].max(p[k]);
                    }
                    (lo, hi)
                }),
        )
    }

    /// Unit face normal of triangle `t` (zero for a degenerate triangle).
    pub fn face_normal(&self, t: usize) -> [f32; 3] {
        let [a, b, c] = self.triangles[t].map(|i| self.positions[i as usize]);
        normalize(cross(sub(b, a), sub(c, a)))
    }

    /// Area-weighted smooth vertex normals.
    pub fn vertex_normals(&self) -> Vec<[f32; 3]> {
        let mut acc = vec![[0.0f32; 3]; self.positions.len()];
        for tri in &self.triangles {
            let [a, b, c] = tri.map(|i| self.positions[i as usize]);
            let n = cross(sub(b, a), sub(c, a));
            for &i in tri {
                let v = &mut acc[i as usize];
                for k in 0..3 {
                    v[k] += n[k];
                }
            }
        }
        acc.into_iter().map(normalize).collect()
    }
}

pub(crate) fn sub(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

pub(crate) fn cross(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

/// Normalises `v`; a zero vector stays zero instead of becoming NaN.
pub(crate) fn normalize(v: [f32; 3]) -> [f32; 3] {
    let len = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    if len > 0.0 && len.is_finite() {
        [v[0] / len, v[1] / len, v[2] / len]
    } else {
        [0.0; 3]
    }
}
