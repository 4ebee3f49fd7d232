//! Dropping the small floating pieces a density field leaves around an object.

use super::Mesh;

/// The connected component (triangles joined through shared vertices) with the most
/// triangles; ties go to the component whose first triangle comes first, so the result is
/// deterministic. Vertices keep their relative order, unused ones are dropped, and uvs and
/// colours follow their vertices. Triangle indices must be valid, as in every mesh the crate
/// builds.
pub fn keep_largest_component(mesh: &Mesh) -> Mesh {
    let n = mesh.positions.len();
    let mut parent: Vec<u32> = (0..n as u32).collect();
    for &[a, b, c] in &mesh.triangles {
        union(&mut parent, a, b);
        union(&mut parent, b, c);
    }
    let mut size = vec![0usize; n];
    let mut best: Option<(usize, u32)> = None;
    let roots: Vec<u32> = mesh
        .triangles
        .iter()
        .map(|t| find(&mut parent, t[0]))
        .collect();
    for &r in &roots {
        size[r as usize] += 1;
    }
    for &r in &roots {
        if best.is_none_or(|(s, _)| size[r as usize] > s) {
            best = Some((size[r as usize], r));
        }
    }
    let Some((_, keep)) = best else {
        return Mesh::default();
    };

    let mut used = vec![false; n];
    for (t, &r) in mesh.triangles.iter().zip(&roots) {
        if r == keep {
            for &v in t {
                used[v as usize] = true;
            }
        }
    }
    let mut remap = vec![u32::MAX; n];
    for (new, (slot, _)) in remap.iter_mut().zip(&used).filter(|(_, &u)| u).enumerate() {
        *slot = new as u32;
    }
    Mesh {
        positions: keep_used(&mesh.positions, &used),
        triangles: mesh
            .triangles
            .iter()
            .zip(&roots)
            .filter(|(_, &r)| r == keep)
            .map(|(t, _)| t.map(|v| remap[v as usize]))
            .collect(),
        uvs: keep_used(&mesh.uvs, &used),
        colors: keep_used(&mesh.colors, &used),
    }
}

/// The per-vertex entries of the kept vertices; an empty (absent) attribute stays empty.
fn keep_used<T: Copy>(values: &[T], used: &[bool]) -> Vec<T> {
    if values.len() != used.len() {
        return Vec::new();
    }
    values
        .iter()
        .zip(used)
        .filter(|(_, &u)| u)
        .map(|(v, _)| *v)
        .collect()
}

fn find(parent: &mut [u32], mut x: u32) -> u32 {
    while parent[x as usize] != x {
        parent[x as usize] = parent[parent[x as usize] as usize];
        x = parent[x as usize];
    }
    x
}

fn union(parent: &mut [u32], a: u32, b: u32) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra != rb {
        parent[ra.max(rb) as usize] = ra.min(rb);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tetrahedron of `scale` at `origin`, its vertices appended to `mesh`.
    fn add_tetra(mesh: &mut Mesh, origin: [f32; 3], scale: f32) {
        let base = mesh.positions.len() as u32;
        for d in [
            [0.0, 0.0, 0.0],
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 1.0],
        ] {
            mesh.positions
                .push([0, 1, 2].map(|k| origin[k] + scale * d[k]));
        }
        for t in [[0, 2, 1], [0, 1, 3], [1, 2, 3], [0, 3, 2]] {
            mesh.triangles.push(t.map(|i| base + i));
        }
    }

    #[test]
    fn keeps_the_component_with_most_triangles_and_its_attributes() {
        let mut mesh = Mesh::default();
        add_tetra(&mut mesh, [10.0, 0.0, 0.0], 1.0);
        // An octahedron-like bigger piece: two tetrahedra glued on a face share 3 vertices.
        let base = mesh.positions.len() as u32;
        mesh.positions.extend([
            [0.0, 0.0, 0.0],
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 1.0],
            [0.0, 0.0, -1.0],
        ]);
        for t in [
            [0, 1, 3],
            [1, 2, 3],
            [0, 3, 2],
            [0, 2, 4],
            [2, 1, 4],
            [1, 0, 4],
        ] {
            mesh.triangles.push(t.map(|i: u32| base + i));
        }
        // An unused vertex and a second small piece after the big one.
        mesh.positions.push([50.0, 50.0, 50.0]);
        add_tetra(&mut mesh, [-10.0, 0.0, 0.0], 1.0);
        let n = mesh.positions.len();
        mesh.colors = (0..n).map(|i| [i as u8, 0, 0]).collect();
        mesh.uvs = (0..n).map(|i| [i as f32, 0.0]).collect();

        let kept = keep_largest_component(&mesh);
        assert_eq!(kept.triangles.len(), 6);
        assert_eq!(kept.positions.len(), 5);
        assert_eq!(kept.positions[0], [0.0, 0.0, 0.0]);
        assert_eq!(kept.positions[4], [0.0, 0.0, -1.0]);
        // Attributes follow their vertices: the kept ones were 4..9 of the input.
        assert_eq!(
            kept.colors,
            (4..9).map(|i| [i as u8, 0, 0]).collect::<Vec<_>>()
        );
        assert_eq!(
            kept.uvs,
            (4..9).map(|i| [i as f32, 0.0]).collect::<Vec<_>>()
        );
        // Same triangles, re-indexed compactly.
        let original: Vec<[[f32; 3]; 3]> = mesh.triangles[4..10]
            .iter()
            .map(|t| t.map(|i| mesh.positions[i as usize]))
            .collect();
        let now: Vec<[[f32; 3]; 3]> = kept
            .triangles
            .iter()
            .map(|t| t.map(|i| kept.positions[i as usize]))
            .collect();
        assert_eq!(original, now);
        assert!(crate::mesh::check_solid(&kept).is_printable());
    }

    #[test]
    fn ties_go_to_the_first_component_and_empty_attributes_stay_empty() {
        let mut mesh = Mesh::default();
        add_tetra(&mut mesh, [0.0, 0.0, 0.0], 1.0);
        add_tetra(&mut mesh, [5.0, 0.0, 0.0], 2.0);
        let kept = keep_largest_component(&mesh);
        assert_eq!(kept.positions, mesh.positions[..4].to_vec());
        assert_eq!(kept.triangles, mesh.triangles[..4].to_vec());
        assert!(kept.uvs.is_empty() && kept.colors.is_empty());
    }

    #[test]
    fn vertex_shared_pieces_are_one_component() {
        let mut mesh = Mesh::default();
        add_tetra(&mut mesh, [0.0, 0.0, 0.0], 1.0);
        add_tetra(&mut mesh, [3.0, 0.0, 0.0], 1.0);
        // Point the second piece's first corner at the first piece's vertex 1.
        for t in &mut mesh.triangles[4..] {
            for v in t.iter_mut() {
                if *v == 4 {
                    *v = 1;
                }
            }
        }
        let kept = keep_largest_component(&mesh);
        assert_eq!(kept.triangles.len(), 8);
        assert_eq!(kept.positions.len(), 7);
    }

    #[test]
    fn empty_mesh_stays_empty() {
        assert_eq!(keep_largest_component(&Mesh::default()), Mesh::default());
        let only_points = Mesh {
            positions: vec![[0.0; 3]; 3],
            ..Default::default()
        };
        assert_eq!(keep_largest_component(&only_points), Mesh::default());
    }
}
