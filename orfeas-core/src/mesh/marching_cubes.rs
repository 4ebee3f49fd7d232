//! Closed marching cubes over a dense scalar grid.
//!
//! The grid is meshed as if surrounded by one layer of `outside`, so the surface of anything
//! touching the border closes over it: every output is a solid a slicer accepts, which an open
//! isosurface is not. This is scikit-image's `marching_cubes` on `np.pad(values, 1,
//! constant_values=outside)` shifted back by one, except for the two places where that
//! algorithm can emit a non-manifold or degenerate surface:
//!
//! - **Ambiguous faces** are resolved by the asymptotic decider on the face's own four values
//!   (see `table.rs`), so both cubes sharing a face take the same decision and the surface is
//!   watertight and manifold by construction, with one shared vertex per crossed grid edge.
//! - **Values at or next to `iso`** would put a vertex on a grid point, where up to six edge
//!   vertices then coincide and the triangles between them have no area. The interpolation
//!   parameter is clamped to `[ε, 1 − ε]` with `ε = 1e-5 ×` the padded grid's diagonal: three
//!   vertices on distinct edges of one cube, each at least ε from every corner, span a
//!   triangle whose doubled area is at least about `√3 ε²`, far above `check_solid`'s
//!   `1e-12 × diagonal²`, and ε is at least ~80 f32 ulps of any coordinate, so rounding the
//!   positions to f32 cannot undo it. Moving a vertex by at most ε (0.005 voxel at R = 256)
//!   is far below the method's own error. (ε is capped at a quarter voxel, reached only by
//!   absurdly elongated grids whose f32 positions cannot resolve a voxel anyway.)
//!   Perturbing the values instead would change which side of `iso` a point is on.
//!
//! The work runs on rayon over blocks of x-slabs. Each block keeps only two planes of padded
//! values and their edge-vertex indices (O(ny·nz)), emits its own vertices and triangles, and
//! recomputes its first plane's vertices exactly as the previous block computed its last one,
//! so stitching is an index shift: no O(R³) table, no hashing.

mod table;

use std::sync::OnceLock;

use rayon::prelude::*;

use self::table::{edge_corners, face_corners, CaseTable, CENTER};
use super::Mesh;
use crate::cancel::CancelToken;
use crate::error::{OrfeasError, Result};

const NONE: u32 = u32::MAX;

/// Extracts the closed surface `value = iso` of a `dims = [nx, ny, nz]` grid indexed
/// `[(x * ny + y) * nz + z]`; inside is `value > iso`. Positions are in grid-index units of the
/// unpadded grid (the virtual pad layer sits at −1 and n), wound counter-clockwise seen from
/// the lower values. A field that never exceeds `iso` gives an empty mesh.
pub fn marching_cubes(
    values: &[f32],
    dims: [usize; 3],
    iso: f32,
    outside: f32,
    cancel: &CancelToken,
) -> Result<Mesh> {
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| OrfeasError::InvalidInput(format!("grid {dims:?} is too large")))?;
    if count != values.len() {
        return Err(OrfeasError::InvalidInput(format!(
            "grid {dims:?} needs {count} values, got {}",
            values.len()
        )));
    }
    if !iso.is_finite() || !outside.is_finite() || outside >= iso {
        return Err(OrfeasError::InvalidInput(format!(
            "marching cubes needs finite levels with outside < iso (iso {iso}, outside {outside})"
        )));
    }
    if count == 0 {
        return Ok(Mesh::default());
    }
    // Every crossed edge of the padded grid may get a vertex; u32::MAX marks "none".
    let padded_edges = dims.iter().map(|&d| d as u128 + 2).product::<u128>() * 3;
    if padded_edges >= u128::from(NONE) {
        return Err(OrfeasError::InvalidInput(format!(
            "grid {dims:?} may need more vertices than 32-bit indices hold"
        )));
    }
    cancel.check()?;
    // One pass for both questions: at R = 256 the field is 64 MiB, and reading it is a fair
    // part of the whole run.
    let (non_finite, any_inside) = values
        .par_chunks(1 << 16)
        .map(|chunk| {
            chunk.iter().fold((0usize, false), |(bad, any), &v| {
                (bad + usize::from(!v.is_finite()), any | (v > iso))
            })
        })
        .reduce(|| (0, false), |a, b| (a.0 + b.0, a.1 | b.1));
    if non_finite > 0 {
        return Err(OrfeasError::Meshing {
            name: String::new(),
            detail: format!("{non_finite} of {count} field values are not finite"),
        });
    }
    if !any_inside {
        return Ok(Mesh::default());
    }
    let table = case_table()?;
    let grid = Grid::new(values, dims, iso, outside);

    let slabs = dims[0] + 1;
    let blocks = (rayon::current_num_threads() * 4).clamp(1, slabs);
    let ranges: Vec<(usize, usize)> = (0..blocks)
        .map(|b| (b * slabs / blocks, (b + 1) * slabs / blocks))
        .filter(|(a, b)| a < b)
        .collect();
    let parts = ranges
        .par_iter()
        .map(|&(x0, x1)| grid.block(table, x0, x1, cancel))
        .collect::<Result<Vec<_>>>()?;
    cancel.check()?;
    stitch(parts)
}

fn case_table() -> Result<&'static CaseTable> {
    static TABLE: OnceLock<Option<CaseTable>> = OnceLock::new();
    TABLE.get_or_init(CaseTable::build).as_ref().ok_or_else(|| {
        OrfeasError::Internal("the marching-cubes case table is inconsistent".into())
    })
}

/// The unpadded field plus what every block needs to see it padded.
struct Grid<'a> {
    values: &'a [f32],
    dims: [usize; 3],
    /// Padded plane extents.
    py: usize,
    pz: usize,
    iso: f32,
    outside: f32,
    eps: f64,
}

/// One padded x-plane: values, inside bits and the vertex index of each crossed y/z edge.
///
/// Edge entries are written only for crossed edges and may hold stale indices elsewhere: the
/// case table only ever names crossed edges, so clearing them would be wasted bandwidth.
struct Plane {
    values: Vec<f32>,
    inside: Vec<u8>,
    /// Whether a row holds any inside point: rows without one (most of them, for an object in
    /// a mostly empty field) have no crossed edge along them and no surface cube beside them.
    row_any: Vec<bool>,
    y_edges: Vec<u32>,
    z_edges: Vec<u32>,
}

/// A block's own vertices and triangles, plus where its boundary planes' vertices sit.
struct Part {
    positions: Vec<[f32; 3]>,
    triangles: Vec<[u32; 3]>,
    first_plane: u32,
    last_plane: (u32, u32),
}

impl<'a> Grid<'a> {
    fn new(values: &'a [f32], dims: [usize; 3], iso: f32, outside: f32) -> Self {
        let diag = dims
            .iter()
            .map(|&d| ((d + 1) as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        Self {
            values,
            dims,
            py: dims[1] + 2,
            pz: dims[2] + 2,
            iso,
            outside,
            eps: (1e-5 * diag).min(0.25),
        }
    }

    fn new_plane(&self) -> Plane {
        let n = self.py * self.pz;
        Plane {
            values: vec![self.outside; n],
            inside: vec![0; n],
            row_any: vec![false; self.py],
            y_edges: vec![NONE; n],
            z_edges: vec![NONE; n],
        }
    }

    /// Where a crossed edge from padded point `a` one step along `axis` is cut, in unpadded
    /// index units; the parameter is clamped away from both ends (see the module comment).
    fn vertex(&self, a: [usize; 3], axis: usize, va: f32, vb: f32) -> [f32; 3] {
        let t = ((f64::from(self.iso) - f64::from(va)) / (f64::from(vb) - f64::from(va)))
            .clamp(self.eps, 1.0 - self.eps);
        let mut p = a.map(|c| c as f64 - 1.0);
        p[axis] += t;
        p.map(|c| c as f32)
    }

    /// Loads padded plane `px` (0 and nx + 1 are the pad) and adds its y/z edge vertices. The
    /// pad ring of an interior plane is never written, so it stays `outside`.
    fn load_plane(&self, px: usize, plane: &mut Plane, positions: &mut Vec<[f32; 3]>) {
        let [nx, ny, nz] = self.dims;
        let (py, pz) = (self.py, self.pz);
        if px == 0 || px > nx {
            plane.values.fill(self.outside);
            plane.inside.fill(0);
            plane.row_any.fill(false);
            return;
        }
        for y in 0..ny {
            let src = &self.values[((px - 1) * ny + y) * nz..][..nz];
            let row = (y + 1) * pz + 1;
            plane.values[row..row + nz].copy_from_slice(src);
            let mut any = 0u8;
            for (flag, &v) in plane.inside[row..row + nz].iter_mut().zip(src) {
                *flag = u8::from(v > self.iso);
                any |= *flag;
            }
            plane.row_any[y + 1] = any != 0;
        }
        for y in 0..py {
            let row = y * pz;
            if plane.row_any[y] {
                for i in row..row + pz - 1 {
                    if plane.inside[i + 1] != plane.inside[i] {
                        plane.z_edges[i] = positions.len() as u32;
                        let (va, vb) = (plane.values[i], plane.values[i + 1]);
                        positions.push(self.vertex([px, y, i - row], 2, va, vb));
                    }
                }
            }
            if y + 1 < py && (plane.row_any[y] || plane.row_any[y + 1]) {
                for i in row..row + pz {
                    if plane.inside[i + pz] != plane.inside[i] {
                        plane.y_edges[i] = positions.len() as u32;
                        let (va, vb) = (plane.values[i], plane.values[i + pz]);
                        positions.push(self.vertex([px, y, i - row], 1, va, vb));
                    }
                }
            }
        }
    }

    /// Meshes the cubes between padded planes `x0..=x1`.
    fn block(&self, table: &CaseTable, x0: usize, x1: usize, cancel: &CancelToken) -> Result<Part> {
        let (py, pz) = (self.py, self.pz);
        let mut positions = Vec::new();
        let mut triangles = Vec::new();
        let mut lo = self.new_plane();
        let mut hi = self.new_plane();
        let mut x_edges = vec![NONE; py * pz];
        self.load_plane(x0, &mut lo, &mut positions);
        let first_plane = positions.len() as u32;
        let mut last_plane = (0, first_plane);
        for px in x0..x1 {
            cancel.check()?;
            let start = positions.len() as u32;
            self.load_plane(px + 1, &mut hi, &mut positions);
            last_plane = (start, positions.len() as u32 - start);
            for y in (0..py).filter(|&y| lo.row_any[y] || hi.row_any[y]) {
                let row = y * pz..(y + 1) * pz;
                for (z, slot) in x_edges[row.clone()].iter_mut().enumerate() {
                    let i = row.start + z;
                    if lo.inside[i] != hi.inside[i] {
                        *slot = positions.len() as u32;
                        let (va, vb) = (lo.values[i], hi.values[i]);
                        positions.push(self.vertex([px, y, z], 0, va, vb));
                    }
                }
            }
            self.cubes(table, [&lo, &hi], &x_edges, &mut positions, &mut triangles);
            std::mem::swap(&mut lo, &mut hi);
        }
        Ok(Part {
            positions,
            triangles,
            first_plane,
            last_plane,
        })
    }

    /// Emits the triangles of every cube between two loaded planes.
    fn cubes(
        &self,
        table: &CaseTable,
        planes: [&Plane; 2],
        x_edges: &[u32],
        positions: &mut Vec<[f32; 3]>,
        out: &mut Vec<[u32; 3]>,
    ) {
        let pz = self.pz;
        let py = self.py;
        let iso = f64::from(self.iso);
        for y in 0..py - 1 {
            if !(planes[0].row_any[y]
                || planes[0].row_any[y + 1]
                || planes[1].row_any[y]
                || planes[1].row_any[y + 1])
            {
                continue;
            }
            let r0 = y * pz;
            let r1 = r0 + pz;
            // Bits (dx | dy << 1) of the four corners of column z.
            let column = |z: usize| -> usize {
                usize::from(planes[0].inside[r0 + z])
                    | usize::from(planes[1].inside[r0 + z]) << 1
                    | usize::from(planes[0].inside[r1 + z]) << 2
                    | usize::from(planes[1].inside[r1 + z]) << 3
            };
            let mut left = column(0);
            for z in 0..pz - 1 {
                let right = column(z + 1);
                let case = left | right << 4;
                left = right;
                if case == 0 || case == 255 {
                    continue;
                }
                let corner_value = |k: usize| -> f64 {
                    let [dx, dy, dz] = table::corner_offset(k);
                    f64::from(planes[dx].values[(y + dy) * pz + z + dz]) - iso
                };
                let mut join = 0u8;
                let ambiguous = table.ambiguous_faces(case);
                if ambiguous != 0 {
                    for face in 0..6 {
                        if ambiguous & (1 << face) == 0 {
                            continue;
                        }
                        let c = face_corners(face);
                        let (inner, outer) = if (case >> c[0]) & 1 == 1 {
                            ([c[0], c[2]], [c[1], c[3]])
                        } else {
                            ([c[1], c[3]], [c[0], c[2]])
                        };
                        // The bilinear saddle lies inside iff this holds (its denominator is
                        // positive here); exact in f64, identical for both cubes of the face.
                        let joined = corner_value(inner[0]) * corner_value(inner[1])
                            > corner_value(outer[0]) * corner_value(outer[1]);
                        join |= u8::from(joined) << face;
                    }
                }
                let edge_vertex = |edge: usize| -> u32 {
                    let [a, _] = edge_corners(edge);
                    let [dx, dy, dz] = table::corner_offset(a);
                    let i = (y + dy) * pz + z + dz;
                    match edge / 4 {
                        0 => x_edges[i],
                        1 => planes[dx].y_edges[i],
                        _ => planes[dx].z_edges[i],
                    }
                };
                let (triangles, center_ring) = table.triangles(case, join);
                let mut center = NONE;
                if center_ring != 0 {
                    let ring = (0..12).filter(|e| center_ring & (1 << e) != 0);
                    let mut sum = [0.0f64; 3];
                    let mut n = 0.0;
                    for e in ring {
                        let p = positions[edge_vertex(e) as usize];
                        for k in 0..3 {
                            sum[k] += f64::from(p[k]);
                        }
                        n += 1.0;
                    }
                    center = positions.len() as u32;
                    positions.push(sum.map(|c| (c / n) as f32));
                }
                let vertex = |edge: u8| -> u32 {
                    if edge == CENTER {
                        center
                    } else {
                        edge_vertex(usize::from(edge))
                    }
                };
                out.extend(triangles.iter().map(|t| t.map(vertex)));
            }
        }
    }
}

/// Joins the blocks: each block's first-plane vertices are the previous block's last-plane
/// vertices in the same order, so they are dropped and their indices shifted onto those.
fn stitch(parts: Vec<Part>) -> Result<Mesh> {
    let mut offsets = Vec::with_capacity(parts.len());
    let (mut vertices, mut tris) = (0usize, 0usize);
    for (b, part) in parts.iter().enumerate() {
        let skip = if b == 0 { 0 } else { part.first_plane };
        if b > 0 && parts[b - 1].last_plane.1 != skip {
            return Err(OrfeasError::Internal(
                "marching cubes: neighbouring blocks disagree on their shared plane".into(),
            ));
        }
        offsets.push(vertices);
        vertices += part.positions.len() - skip as usize;
        tris += part.triangles.len();
    }
    if vertices >= NONE as usize {
        return Err(OrfeasError::Meshing {
            name: String::new(),
            detail: format!("the surface has {vertices} vertices, more than 32-bit indices hold"),
        });
    }
    let mut positions = vec![[0.0f32; 3]; vertices];
    let mut triangles = vec![[0u32; 3]; tris];
    let mut pos_chunks = Vec::with_capacity(parts.len());
    let mut tri_chunks = Vec::with_capacity(parts.len());
    let (mut pos_rest, mut tri_rest) = (positions.as_mut_slice(), triangles.as_mut_slice());
    for (b, part) in parts.iter().enumerate() {
        let skip = if b == 0 { 0 } else { part.first_plane as usize };
        let (p, rest) = pos_rest.split_at_mut(part.positions.len() - skip);
        let (t, rest_t) = tri_rest.split_at_mut(part.triangles.len());
        pos_chunks.push(p);
        tri_chunks.push(t);
        pos_rest = rest;
        tri_rest = rest_t;
    }
    pos_chunks
        .into_par_iter()
        .zip(tri_chunks)
        .enumerate()
        .for_each(|(b, (pos, tri))| {
            let part = &parts[b];
            let skip = if b == 0 { 0 } else { part.first_plane };
            pos.copy_from_slice(&part.positions[skip as usize..]);
            let own = offsets[b] as u32;
            // Where the previous block's last plane starts, in global indices.
            let shared = if b == 0 {
                0
            } else {
                let prev = &parts[b - 1];
                let prev_skip = if b == 1 { 0 } else { prev.first_plane };
                offsets[b - 1] as u32 + prev.last_plane.0 - prev_skip
            };
            let map = |i: u32| if i < skip { shared + i } else { own + i - skip };
            for (dst, src) in tri.iter_mut().zip(&part.triangles) {
                *dst = src.map(map);
            }
        });
    Ok(Mesh {
        positions,
        triangles,
        uvs: Vec::new(),
        colors: Vec::new(),
    })
}
