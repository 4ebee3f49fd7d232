//! From a triangulated height field to millimetres: an open surface or a closed solid.
//!
//! The solid is the top surface, one vertical wall quad per boundary edge down to z = 0,
//! and a flat base. The base is a constrained Delaunay triangulation of the boundary loops
//! (spade, exact predicates): it keeps every boundary vertex, so walls and base share edges
//! exactly, and handles holes and separate islands by inside/outside parity.

use spade::{ConstrainedDelaunayTriangulation, Point2, Triangulation};

use super::edges::Corners;
use super::{HeightfieldMesh, Mesh};
use crate::error::{OrfeasError, Result};

/// Grid units to millimetres.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scale {
    /// Size of one grid cell (one working pixel).
    pub mm_per_cell: f32,
    /// Height of the relief: a height of 1 is this far above the base.
    pub depth_mm: f32,
    /// Thickness of the base; the top surface starts here.
    pub base_mm: f32,
}

/// The open top surface, wound counter-clockwise seen from +z.
pub fn build_surface(hf: &HeightfieldMesh, scale: Scale) -> Mesh {
    let ymax = hf.grid_height.saturating_sub(1) as f32;
    let (uw, uh) = (hf.grid_width.saturating_sub(1).max(1) as f32, ymax.max(1.0));
    let positions = hf
        .vertices
        .iter()
        .zip(&hf.heights)
        .map(|(&[gx, gy], &h)| {
            [
                gx as f32 * scale.mm_per_cell,
                (ymax - gy as f32) * scale.mm_per_cell,
                scale.base_mm + h.clamp(0.0, 1.0) * scale.depth_mm,
            ]
        })
        .collect();
    let uvs = hf
        .vertices
        .iter()
        .map(|&[gx, gy]| [gx as f32 / uw, gy as f32 / uh])
        .collect();
    // Counter-clockwise with y down is clockwise with y up: swap to face +z.
    let triangles = hf.triangles.iter().map(|&[a, b, c]| [a, c, b]).collect();
    Mesh {
        positions,
        triangles,
        uvs,
        colors: Vec::new(),
    }
}

/// A closed, outward-wound solid: top surface, walls along every outline, flat base at z = 0.
pub fn build_solid(hf: &HeightfieldMesh, scale: Scale) -> Result<Mesh> {
    if scale.base_mm.is_nan() || scale.base_mm <= 0.0 {
        return Err(OrfeasError::InvalidInput(
            "a solid needs base_mm > 0".into(),
        ));
    }
    let mut mesh = build_surface(hf, scale);
    // Top-surface edges without an opposite are the outlines.
    let boundary = Corners::new(mesh.positions.len(), &mesh.triangles).open_edges();

    // One bottom vertex below every boundary vertex.
    let mut bottom_of = vec![u32::MAX; mesh.positions.len()];
    let mut bottom_grid: Vec<Point2<f64>> = Vec::new();
    for &(a, _) in &boundary {
        if bottom_of[a as usize] == u32::MAX {
            bottom_of[a as usize] = mesh.positions.len() as u32;
            let [x, y, _] = mesh.positions[a as usize];
            mesh.positions.push([x, y, 0.0]);
            let uv = mesh.uvs[a as usize];
            mesh.uvs.push(uv);
            let [gx, gy] = hf.vertices[a as usize];
            bottom_grid.push(Point2::new(f64::from(gx), f64::from(gy)));
        }
    }

    // Walls: the top triangle holds a→b, so the wall holds b→a and faces outwards.
    for &(a, b) in &boundary {
        let (a2, b2) = (bottom_of[a as usize], bottom_of[b as usize]);
        mesh.triangles.push([b, a, a2]);
        mesh.triangles.push([b, a2, b2]);
    }

    let first_bottom = hf.vertices.len() as u32;
    let edges: Vec<[usize; 2]> = boundary
        .iter()
        .map(|&(a, b)| {
            [
                (bottom_of[a as usize] - first_bottom) as usize,
                (bottom_of[b as usize] - first_bottom) as usize,
            ]
        })
        .collect();
    for tri in triangulate_base(bottom_grid, edges)? {
        // Grid y points down, so counter-clockwise in grid coordinates faces -z in the model.
        mesh.triangles.push(tri.map(|i| i as u32 + first_bottom));
    }
    Ok(mesh)
}

/// Triangulates the region enclosed by the outline edges (grid coordinates), returning
/// triangles counter-clockwise in grid coordinates. Inside is decided by crossing parity
/// from the convex hull, which handles holes and islands inside holes alike.
fn triangulate_base(points: Vec<Point2<f64>>, edges: Vec<[usize; 2]>) -> Result<Vec<[usize; 3]>> {
    let n = points.len();
    let cdt = ConstrainedDelaunayTriangulation::<Point2<f64>>::bulk_load_cdt(points, edges)
        .map_err(|e| OrfeasError::Internal(format!("base triangulation failed: {e:?}")))?;
    if cdt.num_vertices() != n {
        return Err(OrfeasError::Internal(
            "base triangulation merged outline vertices".into(),
        ));
    }
    let mut parity: Vec<Option<bool>> = vec![None; cdt.num_all_faces()];
    let mut queue = Vec::new();
    for face in cdt.inner_faces() {
        for edge in face.adjacent_edges() {
            if edge.rev().face().is_outer() {
                let inside = edge.is_constraint_edge();
                if parity[face.fix().index()].is_none() {
                    parity[face.fix().index()] = Some(inside);
                    queue.push(face.fix());
                }
            }
        }
    }
    while let Some(f) = queue.pop() {
        let inside = parity[f.index()].unwrap_or(false);
        for edge in cdt.face(f).adjacent_edges() {
            if let Some(next) = edge.rev().face().as_inner() {
                if parity[next.fix().index()].is_none() {
                    parity[next.fix().index()] = Some(inside ^ edge.is_constraint_edge());
                    queue.push(next.fix());
                }
            }
        }
    }
    let mut out = Vec::new();
    for face in cdt.inner_faces() {
        if parity[face.fix().index()] == Some(true) {
            let [a, b, c] = face.vertices().map(|v| (v.fix().index(), v.position()));
            let cross = (b.1.x - a.1.x) * (c.1.y - a.1.y) - (b.1.y - a.1.y) * (c.1.x - a.1.x);
            out.push(if cross > 0.0 {
                [a.0, b.0, c.0]
            } else {
                [a.0, c.0, b.0]
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cancel::CancelToken;
    use crate::mesh::{check_solid, triangulate_heightfield, CornerGrid, MeshingLimits};

    fn solid_from(w: u32, h: u32, f: impl Fn(u32, u32) -> (f32, bool)) -> Mesh {
        let g = CornerGrid::from_fn(w, h, f).expect("grid");
        let hf = triangulate_heightfield(
            &g,
            &MeshingLimits {
                max_error: 0.01,
                max_triangles: 1 << 20,
            },
            &CancelToken::new(),
        )
        .expect("mesh");
        build_solid(
            &hf,
            Scale {
                mm_per_cell: 0.5,
                depth_mm: 10.0,
                base_mm: 2.0,
            },
        )
        .expect("solid")
    }

    #[test]
    fn box_is_a_closed_solid_with_the_right_volume() {
        let m = solid_from(11, 6, |_, _| (1.0, true));
        let r = check_solid(&m);
        assert!(r.is_printable(), "{r:?}");
        // 10 x 5 cells of 0.5 mm, 12 mm tall.
        assert!((r.volume - 5.0 * 2.5 * 12.0).abs() < 1e-3, "{}", r.volume);
        assert_eq!(r.components, 1);
    }

    #[test]
    fn ring_with_island_and_pinches_is_printable() {
        // A ring (hole in the middle), a separate island inside the hole, and a diagonal
        // pinch, all at once.
        let m = solid_from(41, 41, |x, y| {
            let d = ((x as f32 - 20.0).powi(2) + (y as f32 - 20.0).powi(2)).sqrt();
            let ring = (10.0..18.0).contains(&d);
            let island = d < 4.0;
            let pinch = (x == 2 && y == 2) || (x == 3 && y == 3);
            let h = ((x as f32 * 0.3).sin() + 1.0) * 0.5;
            (h, ring || island || pinch)
        });
        let r = check_solid(&m);
        assert!(r.is_printable(), "{r:?}");
        assert!(r.components >= 2, "{r:?}");
        assert_eq!(r.genus_sum, 1, "the ring has one handle: {r:?}");
    }

    #[test]
    fn surface_faces_up() {
        let mut heights = vec![0.0; 9];
        heights[4] = 1.0;
        let g = CornerGrid::new(3, 3, heights, vec![true; 9]).expect("grid");
        let hf = triangulate_heightfield(
            &g,
            &MeshingLimits {
                max_error: 0.0,
                max_triangles: 100,
            },
            &CancelToken::new(),
        )
        .expect("mesh");
        let m = build_surface(
            &hf,
            Scale {
                mm_per_cell: 1.0,
                depth_mm: 1.0,
                base_mm: 0.0,
            },
        );
        for t in 0..m.triangles.len() {
            assert!(m.face_normal(t)[2] > 0.0);
        }
    }
}
