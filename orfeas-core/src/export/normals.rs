//! Per-vertex normals with sharp creases kept, for formats that carry normals (GLB).
//!
//! A printable solid has hard edges (top surface to walls, walls to base): one smooth normal
//! per vertex would shade the walls as if they were rounded. So each corner of a triangle
//! averages (area-weighted) only the incident faces whose normal is within the crease angle
//! of its own face's normal; vertices whose corners end up with different normals are split,
//! and equal (vertex, normal) pairs are shared again. Every normal is unit length, including
//! those of degenerate triangles (the smooth vertex normal, else +z), because viewers and the
//! glTF validator reject zero normals.

use rayon::prelude::*;

use crate::mesh::Mesh;

/// Faces bend more than this (degrees) at a crease.
pub(super) const CREASE_DEGREES: f32 = 60.0;

/// A mesh re-indexed so that each vertex has one normal.
#[derive(Debug, Default)]
pub(super) struct SplitMesh {
    /// Index of the source mesh vertex behind each output vertex.
    pub source: Vec<u32>,
    /// Unit normal per output vertex (mesh frame: +z up).
    pub normals: Vec<[f32; 3]>,
    /// Triangles over the output vertices, same order and winding as the source.
    pub triangles: Vec<[u32; 3]>,
}

/// Vertices per block of the parallel pass: enough to amortise a task, few enough that a
/// relief's thousands of vertices still spread over every core.
const BLOCK: usize = 2048;

/// Splits vertices at creases sharper than `crease_degrees`. The mesh is validated (indices in range).
///
/// Most vertices of a solid (every one inside its top surface and its base) have faces that
/// all lie within the crease angle of each other; they get the smooth normal without sorting
/// or grouping. Only vertices on an outline (top to wall, wall to base) take the grouping
/// path. Blocks of vertices run in parallel, each with its own scratch, and write their own
/// ranges of the output, which a prefix sum over the blocks then numbers.
pub(super) fn split_at_creases(mesh: &Mesh, crease_degrees: f32) -> SplitMesh {
    let cos_crease = crease_degrees.to_radians().cos();
    let n = mesh.positions.len();
    // Unnormalised face normals: their length is twice the area, the weight of each face.
    let weighted: Vec<[f32; 3]> = mesh
        .triangles
        .par_iter()
        .map(|t| {
            let [a, b, c] = t.map(|i| mesh.positions[i as usize]);
            cross(sub(b, a), sub(c, a))
        })
        .collect();
    let unit: Vec<[f32; 3]> = weighted.par_iter().map(|&w| normalize(w)).collect();
    let faces = Incidence::of(mesh, n);
    let normals = FaceNormals {
        weighted: &weighted,
        unit: &unit,
        cos_crease,
    };

    // Each block: its output vertices (source, normal) and, for each of its incidence slots,
    // the output vertex within the block; then the blocks' bases are added.
    let mut slot_out = vec![0u32; faces.faces.len()];
    let blocks: Vec<(Vec<u32>, Vec<[f32; 3]>)> = faces
        .blocks(&mut slot_out)
        .into_par_iter()
        .map(|(vertices, slots)| normals.block(&faces, vertices, slots))
        .collect();
    let mut out = SplitMesh::default();
    let total: usize = blocks.iter().map(|(source, _)| source.len()).sum();
    out.source.reserve_exact(total);
    out.normals.reserve_exact(total);
    let mut bases = Vec::with_capacity(blocks.len());
    for (source, block_normals) in blocks {
        bases.push(out.source.len() as u32);
        out.source.extend(source);
        out.normals.extend(block_normals);
    }
    faces
        .blocks(&mut slot_out)
        .into_par_iter()
        .zip(bases)
        .for_each(|((_, slots), base)| slots.iter_mut().for_each(|s| *s += base));
    out.triangles = (0..mesh.triangles.len())
        .into_par_iter()
        .map(|t| [0, 1, 2].map(|k| slot_out[faces.corner_slot[t * 3 + k]]))
        .collect();
    out
}

/// Vertex → incident faces (CSR), remembering each corner's slot.
struct Incidence {
    offsets: Vec<usize>,
    faces: Vec<u32>,
    corner_slot: Vec<usize>,
}

impl Incidence {
    fn of(mesh: &Mesh, n: usize) -> Self {
        let mut offsets = vec![0usize; n + 1];
        for t in &mesh.triangles {
            for &v in t {
                offsets[v as usize + 1] += 1;
            }
        }
        for v in 0..n {
            offsets[v + 1] += offsets[v];
        }
        let mut fill = offsets.clone();
        let mut faces = vec![0u32; offsets[n]];
        let mut corner_slot = vec![0usize; mesh.triangles.len() * 3];
        for (t, tri) in mesh.triangles.iter().enumerate() {
            for (k, &v) in tri.iter().enumerate() {
                let slot = &mut fill[v as usize];
                faces[*slot] = t as u32;
                corner_slot[t * 3 + k] = *slot;
                *slot += 1;
            }
        }
        Self {
            offsets,
            faces,
            corner_slot,
        }
    }

    /// `slots` (one value per incidence slot) cut into the blocks of [`BLOCK`] vertices:
    /// each block's vertices and its slots.
    fn blocks<'s>(&self, slots: &'s mut [u32]) -> Vec<(std::ops::Range<usize>, &'s mut [u32])> {
        let n = self.offsets.len() - 1;
        let mut pieces = Vec::with_capacity(n.div_ceil(BLOCK));
        let mut rest = slots;
        for start in (0..n).step_by(BLOCK) {
            let end = (start + BLOCK).min(n);
            let (piece, tail) = rest.split_at_mut(self.offsets[end] - self.offsets[start]);
            pieces.push((start..end, piece));
            rest = tail;
        }
        pieces
    }
}

struct FaceNormals<'a> {
    weighted: &'a [[f32; 3]],
    unit: &'a [[f32; 3]],
    cos_crease: f32,
}

/// Scratch of the grouping path, reused by every outline vertex of a block.
#[derive(Default)]
struct Scratch {
    order: Vec<([u32; 3], usize)>,
    /// (unit normal, summed weighted normal) per group of identical face normals.
    groups: Vec<([f32; 3], [f32; 3])>,
    group_of: Vec<usize>,
    group_out: Vec<u32>,
}

impl FaceNormals<'_> {
    /// The output vertices of `vertices` (block-local numbering in `slots`, which holds the
    /// incidence slots of exactly these vertices).
    fn block(
        &self,
        faces: &Incidence,
        vertices: std::ops::Range<usize>,
        slots: &mut [u32],
    ) -> (Vec<u32>, Vec<[f32; 3]>) {
        let first_slot = faces.offsets[vertices.start];
        let mut source = Vec::with_capacity(vertices.len() + vertices.len() / 4);
        let mut normals = Vec::with_capacity(source.capacity());
        let mut scratch = Scratch::default();
        for v in vertices {
            let range = faces.offsets[v]..faces.offsets[v + 1];
            if range.is_empty() {
                continue;
            }
            let incident = &faces.faces[range.clone()];
            let local = &mut slots[range.start - first_slot..range.end - first_slot];
            if self.all_within_crease(incident) {
                let smooth = self.sum(incident.iter().copied());
                let index = source.len() as u32;
                source.push(v as u32);
                normals.push(or_up(normalize(smooth), [0.0; 3]));
                local.fill(index);
            } else {
                self.group(v, incident, local, &mut scratch, &mut source, &mut normals);
            }
        }
        (source, normals)
    }

    /// Whether every pair of incident faces is within the crease angle: then every corner's
    /// normal is the vertex's smooth normal (what the grouping would find, at a fraction of
    /// the cost). A face with no area has no direction and sends the vertex to the grouping.
    fn all_within_crease(&self, incident: &[u32]) -> bool {
        incident.iter().enumerate().all(|(i, &f)| {
            let a = self.unit[f as usize];
            a != [0.0; 3]
                && incident[i + 1..]
                    .iter()
                    .all(|&g| dot(a, self.unit[g as usize]) >= self.cos_crease)
        })
    }

    fn sum(&self, faces: impl Iterator<Item = u32>) -> [f32; 3] {
        faces.fold([0.0; 3], |acc, f| add(acc, self.weighted[f as usize]))
    }

    /// Groups the incident faces by identical unit normal, averages each group with the
    /// groups within the crease angle and gives each distinct result one output vertex.
    fn group(
        &self,
        v: usize,
        incident: &[u32],
        local: &mut [u32],
        scratch: &mut Scratch,
        source: &mut Vec<u32>,
        normals: &mut Vec<[f32; 3]>,
    ) {
        let Scratch {
            order,
            groups,
            group_of,
            group_out,
        } = scratch;
        order.clear();
        order.extend(
            incident
                .iter()
                .enumerate()
                .map(|(i, &f)| (self.unit[f as usize].map(f32::to_bits), i)),
        );
        order.sort_unstable();
        groups.clear();
        group_of.clear();
        group_of.resize(incident.len(), 0);
        for (i, &(key, s)) in order.iter().enumerate() {
            let face = incident[s] as usize;
            let w = self.weighted[face];
            if i == 0 || order[i - 1].0 != key {
                groups.push((self.unit[face], w));
            } else if let Some(g) = groups.last_mut() {
                g.1 = add(g.1, w);
            }
            group_of[s] = groups.len() - 1;
        }
        let smooth = normalize(groups.iter().fold([0.0; 3], |acc, g| add(acc, g.1)));
        let first_out = normals.len();
        group_out.clear();
        for &(normal, _) in groups.iter() {
            let mut sum = [0.0f32; 3];
            for &(other, w) in groups.iter() {
                if dot(normal, other) >= self.cos_crease {
                    sum = add(sum, w);
                }
            }
            let result = or_up(normalize(sum), smooth);
            let index = match normals[first_out..].iter().position(|&r| r == result) {
                Some(i) => first_out + i,
                None => {
                    source.push(v as u32);
                    normals.push(result);
                    normals.len() - 1
                }
            };
            group_out.push(index as u32);
        }
        for (s, out) in local.iter_mut().enumerate() {
            *out = group_out[group_of[s]];
        }
    }
}

/// `normal`, or where it is zero (no area) `fallback`, or where that is zero too +z: viewers
/// and the glTF validator reject zero normals.
fn or_up(normal: [f32; 3], fallback: [f32; 3]) -> [f32; 3] {
    if normal != [0.0; 3] {
        normal
    } else if fallback != [0.0; 3] {
        fallback
    } else {
        [0.0, 0.0, 1.0]
    }
}

fn sub(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn add(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

fn dot(a: [f32; 3], b: [f32; 3]) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn cross(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

/// Unit vector, or zero for a zero/non-finite input (computed in f64 for a tight unit length).
fn normalize(v: [f32; 3]) -> [f32; 3] {
    let [x, y, z] = v.map(f64::from);
    let len = (x * x + y * y + z * z).sqrt();
    if len > 0.0 && len.is_finite() {
        [(x / len) as f32, (y / len) as f32, (z / len) as f32]
    } else {
        [0.0; 3]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two triangles folded 90° along the x axis: the shared edge's vertices are split.
    #[test]
    fn splits_sharp_fold_and_keeps_flat_shared() {
        let mesh = Mesh {
            positions: vec![
                [0.0, 0.0, 0.0],
                [1.0, 0.0, 0.0],
                [0.0, 1.0, 0.0],
                [0.0, 0.0, 1.0],
                [2.0, 1.0, 0.0],
            ],
            // flat pair (0,1,2),(1,4,2) in z=0, and a wall (0,3,1) in y=0 facing +y
            triangles: vec![[0, 1, 2], [1, 4, 2], [0, 3, 1]],
            ..Mesh::default()
        };
        let split = split_at_creases(&mesh, CREASE_DEGREES);
        // vertices 0 and 1 each get two normals, 2, 3, 4 one each
        assert_eq!(split.source.len(), 7);
        for (i, n) in split.normals.iter().enumerate() {
            assert!((dot(*n, *n) - 1.0).abs() < 1e-6, "normal {i} {n:?}");
        }
        let [a, b, c] = split.triangles[0];
        assert_eq!(
            [a, b, c].map(|i| split.normals[i as usize]),
            [[0.0, 0.0, 1.0]; 3]
        );
        assert_eq!(split.triangles[1][2], c, "flat neighbours share vertex 2");
        let wall = split.triangles[2].map(|i| split.normals[i as usize]);
        assert_eq!(wall, [[0.0, 1.0, 0.0]; 3]);
    }

    #[test]
    fn degenerate_triangle_gets_a_unit_normal() {
        let mesh = Mesh {
            positions: vec![[0.0; 3], [1.0, 0.0, 0.0], [2.0, 0.0, 0.0]],
            triangles: vec![[0, 1, 2]],
            ..Mesh::default()
        };
        let split = split_at_creases(&mesh, CREASE_DEGREES);
        assert_eq!(split.normals, vec![[0.0, 0.0, 1.0]; 3]);
    }
}

#[cfg(test)]
mod block_tests {
    use super::*;
    use crate::cancel::CancelToken;
    use crate::mesh::{build_solid, triangulate_heightfield, CornerGrid, MeshingLimits, Scale};

    /// A closed relief of a few blocks' worth of vertices: a dome with a step in it.
    fn solid() -> Mesh {
        let grid = CornerGrid::from_fn(120, 90, |x, y| {
            let (u, v) = (x as f32 / 119.0 - 0.5, y as f32 / 89.0 - 0.5);
            let dome = (1.0 - 3.0 * (u * u + v * v)).max(0.0);
            let step = if u > 0.1 { 0.3 } else { 0.0 };
            (dome + step, (u * u + v * v) < 0.2)
        })
        .expect("grid");
        // Every grid point a vertex: several blocks' worth.
        let limits = MeshingLimits {
            max_error: 0.0,
            max_triangles: 1 << 20,
        };
        let hf = triangulate_heightfield(&grid, &limits, &CancelToken::new()).expect("mesh");
        let scale = Scale {
            mm_per_cell: 0.5,
            depth_mm: 20.0,
            base_mm: 2.0,
        };
        build_solid(&hf, scale).expect("solid")
    }

    /// Every corner's normal, one corner at a time: the sum of the incident faces within the
    /// crease angle of its own face, as the module's doc says (`incident`: faces per vertex).
    fn corner_normal(mesh: &Mesh, incident: &[Vec<usize>], t: usize, k: usize) -> [f32; 3] {
        let cos_crease = CREASE_DEGREES.to_radians().cos();
        let face = |t: usize| {
            let [a, b, c] = mesh.triangles[t].map(|i| mesh.positions[i as usize]);
            cross(sub(b, a), sub(c, a))
        };
        let own = normalize(face(t));
        let faces: Vec<[f32; 3]> = incident[mesh.triangles[t][k] as usize]
            .iter()
            .map(|&f| face(f))
            .collect();
        let within = faces
            .iter()
            .filter(|w| dot(own, normalize(**w)) >= cos_crease)
            .fold([0.0; 3], |acc, w| add(acc, *w));
        let smooth = normalize(faces.iter().fold([0.0; 3], |acc, w| add(acc, *w)));
        or_up(normalize(within), smooth)
    }

    #[test]
    fn blocks_and_the_fast_path_give_every_corner_its_crease_normal() {
        let mesh = solid();
        assert!(
            mesh.positions.len() > 2 * BLOCK,
            "{} vertices",
            mesh.positions.len()
        );
        let split = split_at_creases(&mesh, CREASE_DEGREES);
        assert_eq!(split.triangles.len(), mesh.triangles.len());
        let mut incident = vec![Vec::new(); mesh.positions.len()];
        for (t, tri) in mesh.triangles.iter().enumerate() {
            for &v in tri {
                incident[v as usize].push(t);
            }
        }
        for t in 0..mesh.triangles.len() {
            for k in 0..3 {
                let out = split.triangles[t][k] as usize;
                assert_eq!(
                    split.source[out], mesh.triangles[t][k],
                    "triangle {t} corner {k}"
                );
                let want = corner_normal(&mesh, &incident, t, k);
                let got = split.normals[out];
                assert!(
                    (0..3).all(|i| (got[i] - want[i]).abs() < 1e-5),
                    "triangle {t} corner {k}: {got:?} vs {want:?}"
                );
            }
        }
        // A vertex is split only where its corners differ: the walls' top and bottom rims.
        let mut per_source = vec![0usize; mesh.positions.len()];
        for &s in &split.source {
            per_source[s as usize] += 1;
        }
        let split_vertices = per_source.iter().filter(|&&c| c > 1).count();
        assert!(split_vertices > 0 && split_vertices < mesh.positions.len() / 2);
    }
}
