//! Per-vertex normals with sharp creases kept, for formats that carry normals (GLB).
//!
//! A printable solid has hard edges (top surface to walls, walls to base): one smooth normal
//! per vertex would shade the walls as if they were rounded. So each corner of a triangle
//! averages (area-weighted) only the incident faces whose normal is within the crease angle
//! of its own face's normal; vertices whose corners end up with different normals are split,
//! and equal (vertex, normal) pairs are shared again. Every normal is unit length, including
//! those of degenerate triangles (the smooth vertex normal, else +z), because viewers and the
//! glTF validator reject zero normals.

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

/// Splits vertices at creases sharper than `crease_degrees`. The mesh is validated (indices in range).
pub(super) fn split_at_creases(mesh: &Mesh, crease_degrees: f32) -> SplitMesh {
    let cos_crease = crease_degrees.to_radians().cos();
    let n = mesh.positions.len();
    // Unnormalised face normals: their length is twice the area, the weight of each face.
    let weighted: Vec<[f32; 3]> = mesh
        .triangles
        .iter()
        .map(|t| {
            let [a, b, c] = t.map(|i| mesh.positions[i as usize]);
            cross(sub(b, a), sub(c, a))
        })
        .collect();
    let unit: Vec<[f32; 3]> = weighted.iter().map(|&w| normalize(w)).collect();

    // Vertex → incident faces (CSR), remembering each corner's slot.
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

    // Per vertex: group incident faces by identical unit normal, average each group with the
    // groups within the crease angle, and give each distinct result one output vertex.
    let mut out = SplitMesh::default();
    let mut slot_out = vec![0u32; faces.len()];
    let mut order: Vec<([u32; 3], usize)> = Vec::new();
    let mut groups: Vec<([f32; 3], [f32; 3])> = Vec::new(); // (unit normal, summed weighted)
    let mut group_of: Vec<usize> = Vec::new();
    for v in 0..n {
        let slots = offsets[v]..offsets[v + 1];
        if slots.is_empty() {
            continue;
        }
        order.clear();
        order.extend(
            slots
                .clone()
                .map(|s| (unit[faces[s] as usize].map(f32::to_bits), s)),
        );
        order.sort_unstable();
        groups.clear();
        group_of.clear();
        group_of.resize(slots.len(), 0);
        for (i, &(key, s)) in order.iter().enumerate() {
            let w = weighted[faces[s] as usize];
            if i == 0 || order[i - 1].0 != key {
                groups.push((unit[faces[s] as usize], w));
            } else if let Some(g) = groups.last_mut() {
                g.1 = add(g.1, w);
            }
            group_of[s - slots.start] = groups.len() - 1;
        }
        let smooth = normalize(groups.iter().fold([0.0; 3], |acc, g| add(acc, g.1)));
        let first_out = out.source.len();
        let mut group_out = Vec::with_capacity(groups.len());
        for &(normal, _) in &groups {
            let mut sum = [0.0f32; 3];
            for &(other, w) in &groups {
                if dot(normal, other) >= cos_crease {
                    sum = add(sum, w);
                }
            }
            let mut result = normalize(sum);
            if result == [0.0; 3] {
                result = if smooth == [0.0; 3] {
                    [0.0, 0.0, 1.0]
                } else {
                    smooth
                };
            }
            let index = match out.normals[first_out..].iter().position(|&r| r == result) {
                Some(i) => first_out + i,
                None => {
                    out.source.push(v as u32);
                    out.normals.push(result);
                    out.normals.len() - 1
                }
            };
            group_out.push(index as u32);
        }
        for s in slots.clone() {
            slot_out[s] = group_out[group_of[s - slots.start]];
        }
    }
    out.triangles = (0..mesh.triangles.len())
        .map(|t| [0, 1, 2].map(|k| slot_out[corner_slot[t * 3 + k]]))
        .collect();
    out
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
