//! The cube-case triangulations, derived at first use from two rules instead of typed in.
//!
//! The classic 256-entry table (Lorensen & Cline, Bourke's transcription) resolves the
//! ambiguous faces of complementary cases differently, which leaves holes between cubes.
//! Deriving every case from per-face contour segments makes the face decision a function of
//! that face's four values alone, so the two cubes sharing a face always agree and the surface
//! closes. Each face decision is an input (one bit per face): the caller evaluates the
//! asymptotic decider on the face and picks the entry, so the contour follows the bilinear
//! interpolant's topology on every face. The interior of the cube is always a set of disks (no
//! tunnels), which never affects a neighbour.
//!
//! The segments of a cube close into loops on its surface; each loop becomes one disk. A
//! diagonal of that disk joining two vertices of a four-crossing face could be chosen by the
//! neighbour across the face too, and the edge would then carry four triangles; so such
//! diagonals belong to the cube on the face's low side only (the face is that cube's side-1
//! face). A few loops (12 of the 16 384 entries: nine-vertex loops through three crowded
//! low faces) cannot be triangulated under that rule; they get a vertex of their own at the
//! loop's centroid, which no other cube sees.

/// A cube corner is `dx | dy << 1 | dz << 2`.
pub(super) fn corner_offset(corner: usize) -> [usize; 3] {
    [corner & 1, (corner >> 1) & 1, (corner >> 2) & 1]
}

/// Edge `axis * 4 + j`, where `j` holds the two other coordinates (lower axis in bit 0).
/// Returns its corners, the lower one along `axis` first.
pub(super) fn edge_corners(edge: usize) -> [usize; 2] {
    let (axis, j) = (edge / 4, edge % 4);
    let others = other_axes(axis);
    let base = ((j & 1) << others[0]) | ((j >> 1) << others[1]);
    [base, base | (1 << axis)]
}

fn other_axes(axis: usize) -> [usize; 2] {
    match axis {
        0 => [1, 2],
        1 => [0, 2],
        _ => [0, 1],
    }
}

/// The edge joining two corners that differ in exactly one coordinate.
fn edge_between(a: usize, b: usize) -> usize {
    let axis = (a ^ b).trailing_zeros() as usize;
    let low = a & b;
    let others = other_axes(axis);
    axis * 4 + ((low >> others[0]) & 1) + (((low >> others[1]) & 1) << 1)
}

/// Face `axis * 2 + side`: its corners in cyclic order (consecutive corners share an edge).
pub(super) fn face_corners(face: usize) -> [usize; 4] {
    let (axis, side) = (face / 2, face % 2);
    let [b, c] = other_axes(axis);
    let at = |ub: usize, uc: usize| (side << axis) | (ub << b) | (uc << c);
    [at(0, 0), at(1, 0), at(1, 1), at(0, 1)]
}

/// Whether a face's inside corners are the two ends of one diagonal (the ambiguous pattern).
fn face_is_ambiguous(case: usize, face: usize) -> bool {
    let c = face_corners(face).map(|k| (case >> k) & 1);
    c[0] == c[2] && c[1] == c[3] && c[0] != c[1]
}

/// The vertex id that stands for an entry's centroid vertex (see the module comment).
pub(super) const CENTER: u8 = 12;

/// Triangles (as cube-edge ids, counter-clockwise seen from the lower values) for every case
/// and every combination of face decisions.
#[derive(Debug)]
pub(super) struct CaseTable {
    ambiguous: [u8; 256],
    start: Vec<u32>,
    /// Per entry, the edges whose vertices the [`CENTER`] vertex averages (0: no centre).
    center: Vec<u16>,
    triangles: Vec<[u8; 3]>,
}

impl CaseTable {
    /// Bit `f` set: face `f` has the ambiguous pattern in `case`, so its decision matters.
    pub(super) fn ambiguous_faces(&self, case: usize) -> u8 {
        self.ambiguous[case]
    }

    /// `join` bit `f` set: the inside corners of ambiguous face `f` are connected across it.
    /// Returns the triangles and the edge mask of the centroid vertex they may use.
    pub(super) fn triangles(&self, case: usize, join: u8) -> (&[[u8; 3]], u16) {
        let entry = case * 64 + usize::from(join & self.ambiguous[case]);
        (
            &self.triangles[self.start[entry] as usize..self.start[entry + 1] as usize],
            self.center[entry],
        )
    }

    /// Derives the table; `None` only if the construction contradicted itself (a bug the unit
    /// tests rule out for every entry).
    pub(super) fn build() -> Option<Self> {
        let mut ambiguous = [0u8; 256];
        let mut start = Vec::with_capacity(256 * 64 + 1);
        let mut center = vec![0u16; 256 * 64];
        let mut triangles = Vec::new();
        for (case, amb) in ambiguous.iter_mut().enumerate() {
            *amb = (0..6)
                .filter(|&f| face_is_ambiguous(case, f))
                .fold(0u8, |m, f| m | (1 << f));
            for join in 0..64u8 {
                start.push(u32::try_from(triangles.len()).ok()?);
                if join & !*amb == 0 {
                    let (tris, ring) = triangulate_case(case, join)?;
                    triangles.extend(tris);
                    center[case * 64 + usize::from(join)] = ring;
                }
            }
        }
        start.push(u32::try_from(triangles.len()).ok()?);
        Some(Self {
            ambiguous,
            start,
            center,
            triangles,
        })
    }
}

fn midpoint(edge: usize) -> [f64; 3] {
    let [a, b] = edge_corners(edge).map(corner_offset);
    [0, 1, 2].map(|k| (a[k] + b[k]) as f64 / 2.0)
}

fn corner_pos(corner: usize) -> [f64; 3] {
    corner_offset(corner).map(|c| c as f64)
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// The contour segments of one face, oriented so that seen from outside the cube the inside
/// corners lie to the right; that is the direction the surface's boundary runs when the
/// surface is counter-clockwise seen from the lower values.
fn face_segments(case: usize, face: usize, join: bool) -> Vec<[usize; 2]> {
    let inside = |k: usize| (case >> k) & 1 == 1;
    let c = face_corners(face);
    let edge = |i: usize| edge_between(c[i % 4], c[(i + 1) % 4]);
    let crossed: Vec<usize> = (0..4)
        .filter(|&i| inside(c[i]) != inside(c[(i + 1) % 4]))
        .collect();
    let mut segments = Vec::new();
    match crossed.len() {
        2 => segments.push([edge(crossed[0]), edge(crossed[1])]),
        4 => {
            // Cut off the corners that are not connected across the face: the outside ones
            // when the inside diagonal joins, the inside ones otherwise.
            for (i, &corner) in c.iter().enumerate() {
                if inside(corner) != join {
                    segments.push([edge(i + 3), edge(i)]);
                }
            }
        }
        _ => {}
    }
    let axis = face / 2;
    let mut normal = [0.0; 3];
    normal[axis] = if face % 2 == 1 { 1.0 } else { -1.0 };
    for seg in &mut segments {
        let (ma, mb) = (midpoint(seg[0]), midpoint(seg[1]));
        let [k0, k1] = edge_corners(seg[0]);
        let inner = if inside(k0) { k0 } else { k1 };
        let towards_inside = sub(corner_pos(inner), ma);
        if dot(normal, cross(towards_inside, sub(mb, ma))) < 0.0 {
            seg.swap(0, 1);
        }
    }
    segments
}

fn triangulate_case(case: usize, join: u8) -> Option<(Vec<[u8; 3]>, u16)> {
    let mut next = [usize::MAX; 12];
    let mut has_prev = [false; 12];
    let mut crossings_on_face = [0usize; 6];
    for (face, crossings) in crossings_on_face.iter_mut().enumerate() {
        for [a, b] in face_segments(case, face, join & (1 << face) != 0) {
            if next[a] != usize::MAX || has_prev[b] {
                return None;
            }
            next[a] = b;
            has_prev[b] = true;
            *crossings += 2;
        }
    }
    // Whether two vertices lie on a four-crossing face whose diagonals this cube may not use.
    let shared_crowded_face = |a: usize, b: usize| {
        (0..6).any(|f| {
            let edges: Vec<usize> = (0..4)
                .map(|i| edge_between(face_corners(f)[i], face_corners(f)[(i + 1) % 4]))
                .collect();
            f % 2 == 0 && crossings_on_face[f] == 4 && edges.contains(&a) && edges.contains(&b)
        })
    };
    let mut triangles = Vec::new();
    let mut center = 0u16;
    let mut visited = [false; 12];
    for first in 0..12 {
        if next[first] == usize::MAX || visited[first] {
            continue;
        }
        let mut ring = Vec::new();
        let mut at = first;
        while !visited[at] {
            visited[at] = true;
            ring.push(at);
            at = next[at];
            if at == usize::MAX || !has_prev[at] {
                return None;
            }
        }
        if at != first || ring.len() < 3 {
            return None;
        }
        if let Some(tris) = triangulate_ring(&ring, &shared_crowded_face) {
            triangles.extend(tris);
        } else if center == 0 {
            center = ring.iter().fold(0u16, |m, &e| m | (1 << e));
            for i in 0..ring.len() {
                let (a, b) = (ring[i], ring[(i + 1) % ring.len()]);
                triangles.push([CENTER, a as u8, b as u8]);
            }
        } else {
            return None;
        }
    }
    Some((triangles, center))
}

/// Minimum-total-diagonal-length triangulation (on the edge midpoints) of one loop, with the
/// forbidden diagonals priced out; order along the loop is kept, so is the winding.
fn triangulate_ring(
    ring: &[usize],
    forbidden: &dyn Fn(usize, usize) -> bool,
) -> Option<Vec<[u8; 3]>> {
    let n = ring.len();
    let weight = |i: usize, j: usize| -> f64 {
        if j == i + 1 || (i == 0 && j == n - 1) {
            0.0
        } else if forbidden(ring[i], ring[j]) {
            f64::INFINITY
        } else {
            let d = sub(midpoint(ring[i]), midpoint(ring[j]));
            dot(d, d).sqrt()
        }
    };
    let mut cost = vec![vec![0.0f64; n]; n];
    let mut split = vec![vec![0usize; n]; n];
    for len in 2..n {
        for i in 0..n - len {
            let j = i + len;
            let (best, k) = (i + 1..j)
                .map(|k| (cost[i][k] + cost[k][j] + weight(i, k) + weight(k, j), k))
                .fold((f64::INFINITY, i + 1), |a, b| if b.0 < a.0 { b } else { a });
            split[i][j] = k;
            cost[i][j] = best;
        }
    }
    if !cost[0][n - 1].is_finite() {
        return None;
    }
    let mut out = Vec::with_capacity(n - 2);
    let mut stack = vec![(0usize, n - 1)];
    while let Some((i, j)) = stack.pop() {
        if j <= i + 1 {
            continue;
        }
        let k = split[i][j];
        out.push([ring[i], ring[k], ring[j]].map(|e| e as u8));
        stack.push((i, k));
        stack.push((k, j));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_and_decision_triangulates() {
        let table = CaseTable::build().expect("table builds");
        assert!(table.triangles(0, 0).0.is_empty());
        assert!(table.triangles(255, 0).0.is_empty());
        // One inside corner: one triangle; the checkerboard: four corners cut off.
        assert_eq!(table.triangles(1, 0).0.len(), 1);
        assert_eq!(table.ambiguous_faces(0b1001_0110), 0b11_1111);
        assert_eq!(table.triangles(0b1001_0110, 0).0.len(), 4);
        let mut centred = 0;
        for case in 0..256 {
            let amb = table.ambiguous_faces(case);
            for join in 0..64u8 {
                if join & !amb != 0 {
                    continue;
                }
                let (tris, center) = table.triangles(case, join);
                let crossed = (0..12)
                    .filter(|&e| {
                        let [a, b] = edge_corners(e);
                        (case >> a) & 1 != (case >> b) & 1
                    })
                    .count();
                // Every crossed edge is used, and each loop of L vertices gives L - 2 triangles.
                let mut used = [false; 13];
                for t in tris {
                    for &e in t {
                        used[e as usize] = true;
                    }
                }
                assert_eq!(
                    used[..12].iter().filter(|&&u| u).count(),
                    crossed,
                    "case {case}"
                );
                assert_eq!(used[12], center != 0);
                if center == 0 {
                    assert!(tris.len() <= crossed.saturating_sub(2));
                } else {
                    centred += 1;
                    assert!(tris.len() <= crossed);
                }
            }
        }
        assert_eq!(centred, 12);
    }

    #[test]
    fn edges_and_faces_agree() {
        for e in 0..12 {
            let [a, b] = edge_corners(e);
            assert_eq!(edge_between(a, b), e);
            assert_eq!((a ^ b).count_ones(), 1);
        }
        for f in 0..6 {
            let c = face_corners(f);
            for i in 0..4 {
                assert_eq!((c[i] ^ c[(i + 1) % 4]).count_ones(), 1);
            }
        }
    }
}
