//! Self-intersections: pairs of triangles of one mesh that cross each other.
//!
//! A stated approximation, in exchange for speed on large meshes:
//! - only pairs that share no vertex are tested (neighbours meeting along their shared edge
//!   or corner are how a mesh is made, not a defect);
//! - a pair counts when an edge of one passes through the other's interior (segment against
//!   triangle, Möller–Trumbore in f64); two coplanar triangles that overlap are not counted.
//!
//! Candidate pairs come from a uniform grid over the triangles' bounding boxes, with a cell
//! about the size of a typical triangle, so a mesh of well-shaped triangles costs close to
//! linear time.

use std::collections::HashMap;

use super::Mesh;

/// Grid cells one triangle may cover before it is tested against all triangles instead.
const MAX_CELLS_PER_TRIANGLE: i64 = 4096;

/// Pairs of triangles that cross each other (see the module's approximation).
pub fn self_intersections(mesh: &Mesh) -> usize {
    let p = |i: u32| mesh.positions[i as usize].map(f64::from);
    let boxes: Vec<([f64; 3], [f64; 3])> = mesh
        .triangles
        .iter()
        .map(|t| {
            let (a, b, c) = (p(t[0]), p(t[1]), p(t[2]));
            let lo = [0, 1, 2].map(|k| a[k].min(b[k]).min(c[k]));
            let hi = [0, 1, 2].map(|k| a[k].max(b[k]).max(c[k]));
            (lo, hi)
        })
        .collect();
    if boxes.len() < 2 {
        return 0;
    }
    let mean_extent = boxes
        .iter()
        .map(|(lo, hi)| (0..3).map(|k| hi[k] - lo[k]).fold(0.0, f64::max))
        .sum::<f64>()
        / boxes.len() as f64;
    let cell = if mean_extent > 0.0 { mean_extent } else { 1.0 };
    let index = |x: f64| (x / cell).floor() as i64;

    let mut grid: HashMap<[i64; 3], Vec<u32>> = HashMap::new();
    // Triangles far larger than the typical one would fill too many cells: each is tested
    // against every triangle instead (a ground plane under a fine model, say).
    let mut oversized: Vec<u32> = Vec::new();
    for (t, (lo, hi)) in boxes.iter().enumerate() {
        let (l, h) = (lo.map(index), hi.map(index));
        let cells: i64 = (0..3).map(|k| h[k] - l[k] + 1).product();
        if cells > MAX_CELLS_PER_TRIANGLE {
            oversized.push(t as u32);
            continue;
        }
        for x in l[0]..=h[0] {
            for y in l[1]..=h[1] {
                for z in l[2]..=h[2] {
                    grid.entry([x, y, z]).or_default().push(t as u32);
                }
            }
        }
    }
    let mut pairs: Vec<(u32, u32)> = Vec::new();
    let mut candidate = |s: u32, t: u32| {
        let (s, t) = (s.min(t), s.max(t));
        if s != t
            && boxes_overlap(&boxes[s as usize], &boxes[t as usize])
            && !share_a_vertex(&mesh.triangles[s as usize], &mesh.triangles[t as usize])
        {
            pairs.push((s, t));
        }
    };
    for &big in &oversized {
        for t in 0..boxes.len() as u32 {
            candidate(big, t);
        }
    }
    for members in grid.values() {
        for (i, &s) in members.iter().enumerate() {
            for &t in &members[i + 1..] {
                candidate(s, t);
            }
        }
    }
    // A pair in several cells is one pair.
    pairs.sort_unstable();
    pairs.dedup();
    pairs
        .into_iter()
        .filter(|&(s, t)| {
            let corners = |t: u32| mesh.triangles[t as usize].map(p);
            triangles_cross(&corners(s), &corners(t))
        })
        .count()
}

fn boxes_overlap(a: &([f64; 3], [f64; 3]), b: &([f64; 3], [f64; 3])) -> bool {
    (0..3).all(|k| a.0[k] <= b.1[k] && b.0[k] <= a.1[k])
}

fn share_a_vertex(a: &[u32; 3], b: &[u32; 3]) -> bool {
    a.iter().any(|v| b.contains(v))
}

/// Whether an edge of either triangle passes through the other.
fn triangles_cross(a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]) -> bool {
    let edges = |t: &[[f64; 3]; 3]| [(t[0], t[1]), (t[1], t[2]), (t[2], t[0])];
    edges(a).iter().any(|&(p, q)| segment_hits(p, q, b))
        || edges(b).iter().any(|&(p, q)| segment_hits(p, q, a))
}

/// Möller–Trumbore: whether the segment `p → q` meets the triangle's interior. Segments in
/// the triangle's plane are not hits (coplanar overlap is outside the approximation).
fn segment_hits(p: [f64; 3], q: [f64; 3], t: &[[f64; 3]; 3]) -> bool {
    let sub = |a: [f64; 3], b: [f64; 3]| [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
    let cross = |a: [f64; 3], b: [f64; 3]| {
        [
            a[1] * b[2] - a[2] * b[1],
            a[2] * b[0] - a[0] * b[2],
            a[0] * b[1] - a[1] * b[0],
        ]
    };
    let dot = |a: [f64; 3], b: [f64; 3]| a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
    let direction = sub(q, p);
    let (e1, e2) = (sub(t[1], t[0]), sub(t[2], t[0]));
    let h = cross(direction, e2);
    let det = dot(e1, h);
    let scale = dot(e1, e1).max(dot(e2, e2)) * dot(direction, direction).sqrt();
    if det.abs() <= 1e-12 * scale {
        return false;
    }
    let s = sub(p, t[0]);
    let u = dot(s, h) / det;
    let qv = cross(s, e1);
    let v = dot(direction, qv) / det;
    let along = dot(e2, qv) / det;
    // Strictly inside the triangle and strictly between the segment's ends: touching at an
    // edge or a corner is not crossing.
    let eps = 1e-9;
    u > eps && v > eps && u + v < 1.0 - eps && along > eps && along < 1.0 - eps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mesh(positions: Vec<[f32; 3]>, triangles: Vec<[u32; 3]>) -> Mesh {
        Mesh {
            positions,
            triangles,
            ..Default::default()
        }
    }

    #[test]
    fn two_crossing_triangles_are_one_intersection() {
        let crossing = mesh(
            vec![
                [0.0, 0.0, 0.0],
                [2.0, 0.0, 0.0],
                [1.0, 2.0, 0.0],
                [1.0, 0.5, -1.0],
                [1.0, 0.5, 1.0],
                [1.0, 3.0, 0.0],
            ],
            vec![[0, 1, 2], [3, 4, 5]],
        );
        assert_eq!(self_intersections(&crossing), 1);
        // Moved away along x: apart.
        let mut apart = crossing.clone();
        for v in &mut apart.positions[3..] {
            v[0] += 5.0;
        }
        assert_eq!(self_intersections(&apart), 0);
    }

    #[test]
    fn neighbours_and_closed_solids_do_not_count() {
        // Two triangles folded along a shared edge, and a unit cube.
        let folded = mesh(
            vec![
                [0.0, 0.0, 0.0],
                [1.0, 0.0, 0.0],
                [0.0, 1.0, 0.0],
                [0.2, 0.2, 0.0],
            ],
            vec![[0, 1, 2], [0, 1, 3]],
        );
        assert_eq!(self_intersections(&folded), 0);
        let positions = (0..8)
            .map(|i| [(i & 1) as f32, ((i >> 1) & 1) as f32, ((i >> 2) & 1) as f32])
            .collect();
        let quads = [
            [0, 2, 3, 1],
            [4, 5, 7, 6],
            [0, 1, 5, 4],
            [2, 6, 7, 3],
            [0, 4, 6, 2],
            [1, 3, 7, 5],
        ];
        let triangles = quads
            .iter()
            .flat_map(|&[a, b, c, d]| [[a, b, c], [a, c, d]])
            .collect();
        let mut cube = mesh(positions, triangles);
        assert_eq!(self_intersections(&cube), 0);

        // A sliver through the cube from x = -1 to x = 2 pierces one triangle of the x = 0
        // face and one of the x = 1 face.
        cube.positions
            .extend([[-1.0, 0.3, 0.6], [2.0, 0.3, 0.6], [2.0, 0.31, 0.62]]);
        cube.triangles.push([8, 9, 10]);
        assert_eq!(self_intersections(&cube), 2);
        cube.triangles.pop();
        cube.positions.truncate(8);

        // Thousands of small triangles far away keep the grid fine; a huge sheet at z = 0.5
        // then covers too many cells and is tested against every triangle. It cuts both
        // triangles of each of the cube's four sides.
        for i in 0..2000 {
            let x = 100.0 + (i % 50) as f32;
            let y = (i / 50) as f32;
            let v = cube.positions.len() as u32;
            cube.positions
                .extend([[x, y, 5.0], [x + 0.5, y, 5.0], [x, y + 0.5, 5.0]]);
            cube.triangles.push([v, v + 1, v + 2]);
        }
        let v = cube.positions.len() as u32;
        cube.positions.extend([
            [-1000.0, -1000.0, 0.5],
            [1000.0, -1000.0, 0.5],
            [0.0, 1000.0, 0.5],
        ]);
        cube.triangles.push([v, v + 1, v + 2]);
        assert_eq!(self_intersections(&cube), 8);
    }
}
