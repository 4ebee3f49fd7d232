//! What any mesh is, topologically and geometrically (issue 19, CONTRACT §11): the report
//! `orfeas mesh analyze` prints. Unlike [`check_solid`](super::check_solid), which proves a
//! mesh orfeas built is printable, this describes meshes from anywhere — inconsistently
//! wound, non-manifold, open, non-orientable — so it counts on undirected edges.
//! Self-intersections are counted by [`self_intersections`], whose approximation its module
//! states.

use super::check::{diagonal_squared, TriangleMeasure};
use super::disjoint::{components, DisjointSets};
use super::edges::Corners;
use super::intersect::self_intersections;
use super::Mesh;
use crate::{OrfeasError, Result};

/// The analysis of one mesh.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MeshReport {
    pub vertices: usize,
    pub triangles: usize,
    /// Every edge has exactly two faces: the surface encloses a volume.
    pub watertight: bool,
    /// Every edge with two faces is used once in each direction: the normals agree. False on
    /// a non-orientable surface (a Möbius strip), which no winding fixes.
    pub consistently_wound: bool,
    /// No edge has more than two faces and no vertex joins two separate fans.
    pub manifold: bool,
    /// Edges with more than two faces.
    pub non_manifold_edges: usize,
    /// Vertices where separate fans of triangles meet (pinches).
    pub non_manifold_vertices: usize,
    /// Boundary loops: each hole (or the rim of an open sheet) counts once.
    pub holes: usize,
    /// Connected pieces, by shared vertices.
    pub components: usize,
    /// Handles through the surface, summed over components (χ = 2c − 2g − b); `None` when
    /// the surface is not a consistently wound manifold, where the formula means nothing.
    pub genus: Option<i64>,
    /// Triangles with a repeated vertex or no area.
    pub degenerate_faces: usize,
    /// Triangles on the same three vertices as an earlier one (either winding).
    pub duplicate_faces: usize,
    /// Pairs of triangles sharing no vertex where an edge of one passes through the other
    /// (coplanar overlaps are not counted).
    pub self_intersections: usize,
    /// Enclosed volume (positive when wound outwards); `None` unless watertight and
    /// consistently wound.
    pub volume: Option<f64>,
    /// Surface area.
    pub area: f64,
    /// Axis-aligned bounds `[min, max]`; `None` for a mesh with no vertices.
    pub bbox: Option<[[f32; 3]; 2]>,
}

impl MeshReport {
    /// Whether the mesh's bounding box fits in a printer's `build_volume` (x, y, z, same
    /// units as the mesh) as it is placed now, in any position on the plate (no rotation).
    pub fn fits(&self, build_volume: [f64; 3]) -> bool {
        self.bbox.is_some_and(|[lo, hi]| {
            (0..3).all(|k| f64::from(hi[k]) - f64::from(lo[k]) <= build_volume[k])
        })
    }
}

/// Analyses `mesh`. Out-of-range indices and non-finite coordinates are errors: they make
/// every figure meaningless, and a reader should have refused them.
pub fn analyze(mesh: &Mesh) -> Result<MeshReport> {
    let n = mesh.positions.len();
    if let Some(t) = mesh
        .triangles
        .iter()
        .position(|t| t.iter().any(|&i| i as usize >= n))
    {
        return Err(OrfeasError::InvalidInput(format!(
            "triangle {t} names a vertex past the {n} the mesh has"
        )));
    }
    if let Some(v) = mesh
        .positions
        .iter()
        .position(|p| !p.iter().all(|c| c.is_finite()))
    {
        return Err(OrfeasError::InvalidInput(format!(
            "vertex {v} has a coordinate that is not a finite number"
        )));
    }

    let edges = undirected_edges(&mesh.triangles);
    let mut boundary = Vec::new();
    let (mut non_manifold_edges, mut misoriented) = (0, 0);
    for group in edges.chunk_by(|x, y| x.key == y.key) {
        match group.len() {
            1 => boundary.push(group[0].key),
            2 => misoriented += usize::from(group[0].forward == group[1].forward),
            _ => non_manifold_edges += 1,
        }
    }
    let corners = Corners::new(n, &mesh.triangles);
    let non_manifold_vertices = (0..n as u32).filter(|&v| pinched(&corners, v)).count();
    let watertight = !mesh.triangles.is_empty() && boundary.is_empty() && non_manifold_edges == 0;
    let consistently_wound = misoriented == 0;
    let manifold = non_manifold_edges == 0 && non_manifold_vertices == 0;

    let holes = boundary_loops(n, &boundary);
    let (components, used_vertices) = components(n, &mesh.triangles);
    let unique_edges = edges.chunk_by(|x, y| x.key == y.key).count();
    let genus = (manifold && consistently_wound).then(|| {
        let chi = used_vertices as i64 - unique_edges as i64 + mesh.triangles.len() as i64;
        (2 * components as i64 - chi - holes as i64) / 2
    });

    let (degenerate_faces, area, signed_volume) = geometry(mesh);
    Ok(MeshReport {
        vertices: n,
        triangles: mesh.triangles.len(),
        watertight,
        consistently_wound,
        manifold,
        non_manifold_edges,
        non_manifold_vertices,
        holes,
        components,
        genus,
        degenerate_faces,
        duplicate_faces: duplicate_faces(&mesh.triangles),
        self_intersections: self_intersections(mesh),
        volume: (watertight && consistently_wound).then_some(signed_volume),
        area,
        bbox: mesh.bounds().map(|(lo, hi)| [lo, hi]),
    })
}

/// One side of a triangle, keyed by its vertices in ascending order.
#[derive(Clone, Copy)]
struct Side {
    key: (u32, u32),
    /// Whether the triangle runs along it from the lower index to the higher.
    forward: bool,
}

/// Every triangle side (degenerate sides left out), sorted so that sides of one edge are
/// next to each other.
fn undirected_edges(triangles: &[[u32; 3]]) -> Vec<Side> {
    let mut sides: Vec<Side> = triangles
        .iter()
        .flat_map(|&[a, b, c]| [(a, b), (b, c), (c, a)])
        .filter(|(a, b)| a != b)
        .map(|(a, b)| Side {
            key: (a.min(b), a.max(b)),
            forward: a < b,
        })
        .collect();
    sides.sort_unstable_by_key(|s| s.key);
    sides
}

/// Whether the triangles around `v` fall apart into separate fans. Each triangle at `v` joins
/// its other two vertices; the fans are the connected pieces of what they join. Winding does
/// not enter, so an inconsistently wound fan is still one fan.
fn pinched(corners: &Corners, v: u32) -> bool {
    let fan: Vec<[u32; 2]> = corners
        .around(v)
        .iter()
        .copied()
        .filter(|&[next, prev]| next != v && prev != v && next != prev)
        .collect();
    if fan.len() < 2 {
        return false;
    }
    let mut link: Vec<u32> = fan.iter().flatten().copied().collect();
    link.sort_unstable();
    link.dedup();
    let local = |w: u32| link.binary_search(&w).unwrap_or(0) as u32;
    let mut sets = DisjointSets::new(link.len());
    for &[next, prev] in &fan {
        sets.join(local(next), local(prev));
    }
    (0..link.len() as u32)
        .filter(|&i| sets.root(i) == i)
        .count()
        > 1
}

/// Boundary edges joined into loops: the connected pieces of the graph they form.
fn boundary_loops(vertex_count: usize, boundary: &[(u32, u32)]) -> usize {
    let mut sets = DisjointSets::new(vertex_count);
    let mut on_boundary = vec![false; vertex_count];
    for &(a, b) in boundary {
        sets.join(a, b);
        on_boundary[a as usize] = true;
        on_boundary[b as usize] = true;
    }
    (0..vertex_count as u32)
        .filter(|&v| on_boundary[v as usize] && sets.root(v) == v)
        .count()
}

/// Degenerate triangles, the surface area and the signed enclosed volume.
fn geometry(mesh: &Mesh) -> (usize, f64, f64) {
    let diagonal2 = diagonal_squared(mesh);
    mesh.triangles
        .iter()
        .map(|&t| TriangleMeasure::of(mesh, t, diagonal2))
        .fold((0, 0.0, 0.0), |(degenerate, area, volume), m| {
            (
                degenerate + usize::from(m.degenerate),
                area + m.area,
                volume + m.volume,
            )
        })
}

/// Triangles whose vertex set an earlier triangle already had.
fn duplicate_faces(triangles: &[[u32; 3]]) -> usize {
    let mut keys: Vec<[u32; 3]> = triangles
        .iter()
        .map(|t| {
            let mut k = *t;
            k.sort_unstable();
            k
        })
        .collect();
    keys.sort_unstable();
    keys.windows(2).filter(|w| w[0] == w[1]).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The unit cube, wound outwards: 8 vertices, 12 triangles.
    fn cube() -> Mesh {
        let positions = (0..8)
            .map(|i| [(i & 1) as f32, ((i >> 1) & 1) as f32, ((i >> 2) & 1) as f32])
            .collect();
        let quads = [
            [0, 2, 3, 1], // z = 0, facing down
            [4, 5, 7, 6], // z = 1, up
            [0, 1, 5, 4], // y = 0
            [2, 6, 7, 3], // y = 1
            [0, 4, 6, 2], // x = 0
            [1, 3, 7, 5], // x = 1
        ];
        let triangles = quads
            .iter()
            .flat_map(|&[a, b, c, d]| [[a, b, c], [a, c, d]])
            .collect();
        Mesh {
            positions,
            triangles,
            ..Default::default()
        }
    }

    fn report(mesh: &Mesh) -> MeshReport {
        analyze(mesh).expect("analyses")
    }

    #[test]
    fn a_cube_is_a_closed_oriented_sphere() {
        let mut r = report(&cube());
        let volume = r.volume.take().expect("a volume");
        assert!((volume - 1.0).abs() < 1e-12, "{volume}");
        assert_eq!(
            r,
            MeshReport {
                vertices: 8,
                triangles: 12,
                watertight: true,
                consistently_wound: true,
                manifold: true,
                non_manifold_edges: 0,
                non_manifold_vertices: 0,
                holes: 0,
                components: 1,
                genus: Some(0),
                degenerate_faces: 0,
                duplicate_faces: 0,
                self_intersections: 0,
                volume: None,
                area: 6.0,
                bbox: Some([[0.0; 3], [1.0; 3]]),
            }
        );
    }

    #[test]
    fn an_open_box_has_one_hole_and_no_volume() {
        let mut open = cube();
        open.triangles.drain(2..4); // the top
        let r = report(&open);
        assert!(!r.watertight && r.consistently_wound && r.manifold, "{r:?}");
        assert_eq!((r.holes, r.components, r.genus), (1, 1, Some(0)));
        assert_eq!(r.volume, None);
        assert_eq!(r.area, 5.0);
    }

    #[test]
    fn a_flipped_face_breaks_the_winding_but_not_the_closure() {
        let mut flipped = cube();
        flipped.triangles[5].swap(1, 2);
        let r = report(&flipped);
        assert!(r.watertight && r.manifold && !r.consistently_wound, "{r:?}");
        assert_eq!((r.volume, r.genus), (None, None));
    }

    #[test]
    fn a_moebius_strip_cannot_be_wound_consistently() {
        // Five quads round a loop, the last one joined with a half twist.
        let k = 5;
        let mut positions = Vec::new();
        for i in 0..k {
            let angle = i as f32 / k as f32 * std::f32::consts::TAU;
            let twist = angle / 2.0;
            let (s, c) = angle.sin_cos();
            for w in [-0.3f32, 0.3] {
                let r = 1.0 + w * twist.cos();
                positions.push([r * c, r * s, w * twist.sin()]);
            }
        }
        let mut triangles = Vec::new();
        for i in 0..k as u32 {
            let (a, b) = (2 * i, 2 * i + 1);
            // The half twist: the last quad joins the first one's edges swapped.
            let (c, d) = if i + 1 == k as u32 {
                (1, 0)
            } else {
                (2 * i + 2, 2 * i + 3)
            };
            triangles.push([a, c, d]);
            triangles.push([a, d, b]);
        }
        let r = report(&Mesh {
            positions,
            triangles,
            ..Default::default()
        });
        assert!(
            !r.consistently_wound && r.manifold && !r.watertight,
            "{r:?}"
        );
        // One rim, twice round.
        assert_eq!(
            (r.holes, r.components, r.genus, r.volume),
            (1, 1, None, None)
        );
    }

    #[test]
    fn two_cubes_on_one_edge_are_not_manifold() {
        let mut two = cube();
        let mut other = cube();
        // Shifted by (1, 1, 0): it shares the cube's edge from (1,1,0) to (1,1,1).
        for p in &mut other.positions {
            p[0] += 1.0;
            p[1] += 1.0;
        }
        let offset = two.positions.len() as u32;
        // Weld the shared edge: the other cube's (0,0,z) vertices are this one's (1,1,z).
        let weld = |v: u32| match v {
            0 => 3,
            4 => 7,
            v => v + offset,
        };
        two.positions.extend(other.positions);
        two.triangles
            .extend(other.triangles.iter().map(|t| t.map(weld)));
        let r = report(&two);
        assert_eq!(r.non_manifold_edges, 1, "{r:?}");
        assert!(!r.manifold && !r.watertight, "{r:?}");
        assert_eq!((r.components, r.holes, r.genus), (1, 0, None));
        assert_eq!(r.area, 12.0);
    }

    #[test]
    fn two_cubes_on_one_corner_pinch_it() {
        let mut two = cube();
        let offset = two.positions.len() as u32;
        two.positions
            .extend(cube().positions.iter().map(|p| p.map(|c| c + 1.0)));
        // The other cube's (0,0,0) is this one's (1,1,1).
        let weld = |v: u32| if v == 0 { 7 } else { v + offset };
        two.triangles
            .extend(cube().triangles.iter().map(|t| t.map(weld)));
        let r = report(&two);
        assert_eq!(
            (r.non_manifold_vertices, r.non_manifold_edges),
            (1, 0),
            "{r:?}"
        );
        assert!(r.watertight && r.consistently_wound && !r.manifold, "{r:?}");
        assert_eq!((r.components, r.genus), (1, None));
    }

    #[test]
    fn degenerate_and_duplicate_faces_are_counted() {
        let mut m = cube();
        m.triangles.push([0, 0, 1]);
        let t = m.triangles[0];
        m.triangles.push([t[0], t[2], t[1]]);
        let r = report(&m);
        assert_eq!((r.degenerate_faces, r.duplicate_faces), (1, 1), "{r:?}");
        assert!(!r.manifold);
    }

    #[test]
    fn fits_compares_the_extent_with_the_build_volume() {
        let r = report(&cube());
        assert!(r.fits([1.0, 1.0, 1.0]));
        assert!(!r.fits([1.0, 0.5, 1.0]));
        assert!(!report(&Mesh::default()).fits([1.0; 3]));
    }

    #[test]
    fn meaningless_meshes_are_errors() {
        let mut nan = cube();
        nan.positions[2][1] = f32::NAN;
        let e = analyze(&nan).expect_err("NaN accepted");
        assert!(e.to_string().contains("vertex 2"), "{e}");
        let mut out = cube();
        out.triangles[4] = [0, 1, 99];
        let e = analyze(&out).expect_err("index accepted");
        assert!(e.to_string().contains("triangle 4"), "{e}");
        let empty = report(&Mesh::default());
        assert!(!empty.watertight && empty.bbox.is_none() && empty.components == 0);
    }
}
