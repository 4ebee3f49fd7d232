//! Printability checks, independent of how the mesh was built.
//!
//! A mesh is printable when every directed edge has exactly one opposite (closed and
//! consistently wound), every vertex has a single fan of triangles around it (no pinches),
//! no triangle is degenerate, every coordinate is finite and the enclosed volume is positive.

use rayon::prelude::*;

use super::disjoint::components;
use super::edges::Corners;
use super::Mesh;

/// What [`check_solid`] found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SolidReport {
    pub vertices: usize,
    pub triangles: usize,
    /// Directed edges without an opposite: holes in the surface.
    pub open_edges: usize,
    /// Directed edges used twice: inconsistent winding or more than two faces on an edge.
    pub duplicate_edges: usize,
    /// Vertices whose triangles form more than one fan.
    pub non_manifold_vertices: usize,
    pub degenerate_triangles: usize,
    pub non_finite_vertices: usize,
    /// Connected components (by shared vertices).
    pub components: usize,
    /// Sum over components of their genus (holes through the solid), from Euler's formula.
    pub genus_sum: i64,
    /// Signed volume in cubic model units; positive when wound outwards.
    pub volume: f64,
}

impl SolidReport {
    /// Closed with consistent winding.
    pub fn is_watertight(&self) -> bool {
        self.open_edges == 0 && self.duplicate_edges == 0
    }

    /// Ready to slice: watertight, manifold, no degenerate faces, finite, positive volume.
    pub fn is_printable(&self) -> bool {
        self.is_watertight()
            && self.non_manifold_vertices == 0
            && self.degenerate_triangles == 0
            && self.non_finite_vertices == 0
            && self.triangles > 0
            && self.volume > 0.0
    }
}

/// Checks `mesh` for printability. Linear-logarithmic; fine for millions of triangles.
pub fn check_solid(mesh: &Mesh) -> SolidReport {
    let mut r = SolidReport {
        vertices: mesh.positions.len(),
        triangles: mesh.triangles.len(),
        non_finite_vertices: mesh
            .positions
            .iter()
            .filter(|p| !p.iter().all(|c| c.is_finite()))
            .count(),
        ..Default::default()
    };
    if mesh
        .triangles
        .iter()
        .any(|t| t.iter().any(|&i| i as usize >= mesh.positions.len()))
    {
        r.open_edges = usize::MAX;
        return r;
    }

    let corners = Corners::new(mesh.positions.len(), &mesh.triangles);
    (r.duplicate_edges, r.open_edges) = (0..mesh.positions.len() as u32)
        .into_par_iter()
        .map(|a| {
            corners
                .around(a)
                .iter()
                .fold((0, 0), |(dup, open), &[b, _]| {
                    (
                        dup + usize::from(corners.edge_count(a, b) > 1),
                        open + usize::from(corners.edge_count(b, a) == 0),
                    )
                })
        })
        .reduce(|| (0, 0), |x, y| (x.0 + y.0, x.1 + y.1));

    let diagonal2 = diagonal_squared(mesh);
    (r.degenerate_triangles, r.volume) = mesh
        .triangles
        .par_iter()
        .map(|&t| {
            let m = TriangleMeasure::of(mesh, t, diagonal2);
            (usize::from(m.degenerate), m.volume)
        })
        .reduce(|| (0, 0.0), |x, y| (x.0 + y.0, x.1 + y.1));

    r.non_manifold_vertices = (0..mesh.positions.len() as u32)
        .into_par_iter()
        .filter(|&v| corners.is_pinched(v))
        .count();
    let (components, genus) = components_and_genus(mesh, 3 * mesh.triangles.len());
    r.components = components;
    r.genus_sum = genus;
    r
}

/// The squared diagonal of the mesh's bounds: the scale degeneracy is judged against.
pub(super) fn diagonal_squared(mesh: &Mesh) -> f64 {
    let (lo, hi) = mesh.bounds().unwrap_or(([0.0; 3], [0.0; 3]));
    (0..3).map(|k| f64::from(hi[k] - lo[k]).powi(2)).sum()
}

/// One triangle's area, its share of the enclosed volume, and whether it is degenerate, in
/// f64 (the checker and the analysis must agree on all three).
pub(super) struct TriangleMeasure {
    pub degenerate: bool,
    pub area: f64,
    /// Signed volume of the tetrahedron it makes with the origin.
    pub volume: f64,
}

impl TriangleMeasure {
    /// `diagonal2` is [`diagonal_squared`] of the mesh: relative to the mesh's size, so that
    /// units do not decide what is flat.
    pub(super) fn of(mesh: &Mesh, [a, b, c]: [u32; 3], diagonal2: f64) -> Self {
        let p = |i: u32| mesh.positions[i as usize].map(f64::from);
        let (pa, pb, pc) = (p(a), p(b), p(c));
        let u = [pb[0] - pa[0], pb[1] - pa[1], pb[2] - pa[2]];
        let v = [pc[0] - pa[0], pc[1] - pa[1], pc[2] - pa[2]];
        let n = [
            u[1] * v[2] - u[2] * v[1],
            u[2] * v[0] - u[0] * v[2],
            u[0] * v[1] - u[1] * v[0],
        ];
        let twice_area = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
        Self {
            degenerate: a == b || b == c || a == c || twice_area <= 1e-12 * diagonal2,
            area: twice_area / 2.0,
            volume: (pa[0] * (pb[1] * pc[2] - pb[2] * pc[1])
                - pa[1] * (pb[0] * pc[2] - pb[2] * pc[0])
                + pa[2] * (pb[0] * pc[1] - pb[1] * pc[0]))
                / 6.0,
        }
    }
}

/// Components by union-find over triangle vertices, and Σ genus from V − E + F = 2 − 2g.
fn components_and_genus(mesh: &Mesh, directed_edges: usize) -> (usize, i64) {
    let (components, used) = components(mesh.positions.len(), &mesh.triangles);
    let e = directed_edges as i64 / 2;
    let f = mesh.triangles.len() as i64;
    let chi = used as i64 - e + f;
    (components, (2 * components as i64 - chi) / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tetra() -> Mesh {
        Mesh {
            positions: vec![
                [0.0, 0.0, 0.0],
                [1.0, 0.0, 0.0],
                [0.0, 1.0, 0.0],
                [0.0, 0.0, 1.0],
            ],
            triangles: vec![[0, 2, 1], [0, 1, 3], [1, 2, 3], [0, 3, 2]],
            ..Default::default()
        }
    }

    #[test]
    fn tetrahedron_is_printable() {
        let r = check_solid(&tetra());
        assert!(r.is_printable(), "{r:?}");
        assert!((r.volume - 1.0 / 6.0).abs() < 1e-9);
        assert_eq!((r.components, r.genus_sum), (1, 0));
    }

    #[test]
    fn defects_are_reported() {
        let mut open = tetra();
        open.triangles.pop();
        let r = check_solid(&open);
        assert_eq!(r.open_edges, 3);
        assert!(!r.is_watertight());

        let mut flipped = tetra();
        flipped.triangles[0] = [0, 1, 2];
        let r = check_solid(&flipped);
        assert!(r.duplicate_edges > 0 && !r.is_printable());

        let mut inside_out = tetra();
        for t in &mut inside_out.triangles {
            t.swap(1, 2);
        }
        let r = check_solid(&inside_out);
        assert!(r.is_watertight() && r.volume < 0.0 && !r.is_printable());

        let mut nan = tetra();
        nan.positions[3][2] = f32::NAN;
        assert_eq!(check_solid(&nan).non_finite_vertices, 1);
    }

    #[test]
    fn two_tetrahedra_sharing_a_vertex_are_pinched() {
        let mut m = tetra();
        m.positions
            .extend([[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]]);
        // Mirror image through the origin, sharing vertex 0.
        m.triangles
            .extend([[0, 5, 4], [0, 4, 6], [4, 5, 6], [0, 6, 5]]);
        let r = check_solid(&m);
        assert!(r.is_watertight());
        assert_eq!(r.non_manifold_vertices, 1, "{r:?}");
        assert!(!r.is_printable());
    }
}
