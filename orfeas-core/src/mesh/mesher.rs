//! Error-bounded triangulation of a height field with a foreground mask.
//!
//! Two meshers, chosen by how much of the grid the result needs:
//!
//! * **Greedy insertion** (`greedy.rs`, in parallel tiles by `tiled.rs`) for meshes that
//!   keep a small part of the grid's points: smooth depth maps, or a cap far below the
//!   grid's size. It needs about hmm's triangles at equal error (the fewest of the two),
//!   and its time grows with the triangles it makes.
//! * **Exact-error RTIN** (`rtin.rs`) for dense meshes: its time grows with the grid, not the
//!   result — about 20 parallel passes — so where most points stay it is several times faster
//!   than inserting them one by one, at up to 1.65× the triangles.
//!
//! The choice is made before meshing from a one-pass estimate of the result's density (see
//! [`expected_density`]). Both guarantee `max_error` over every grid point, cover exactly the
//! mask (outline cells whole, pinch points removed) and meet the cap.

use rayon::prelude::*;

use super::greedy::StartMesh;
use super::heightfield::{CornerGrid, HeightfieldMesh, MeshingLimits};
use super::rtin::Rtin;
use super::tiled::refine_in_tiles;
use super::tiling::block_tiling;
use crate::cancel::CancelToken;
use crate::error::{OrfeasError, Result};

/// Block side of the start tiling of an unmasked grid, in cells: coarse enough that the
/// start fixes few vertices the greedy order would not choose, fine enough that the first
/// insertions do not each re-measure a large part of the grid. On the smooth benchmark map
/// 32 gave the fewest triangles (8.3 k, against 8.8–9.1 k at 64–256) and the shortest time.
/// The price: a flat grid keeps its two triangles per block.
const START_BLOCK: u32 = 32;

/// Above this expected share of the grid's cells in the result, RTIN meshes instead of
/// greedy insertion. On a 1025² grid (2 threads) greedy insertion takes about 0.13 s at a
/// 10 % share and 0.9 s at 45 %, RTIN 0.05–0.16 s at any share; a quarter is where the
/// greedy mesher's 15–40 % fewer triangles stop being worth the extra time.
const DENSE_SHARE: f64 = 0.25;

/// Meshes `grid` within `limits`. Fails only when the mask leaves nothing to mesh.
pub fn triangulate_heightfield(
    grid: &CornerGrid,
    limits: &MeshingLimits,
    cancel: &CancelToken,
) -> Result<HeightfieldMesh> {
    let tolerance = limits.max_error.max(0.0);
    let mesh = if expected_density(grid, limits) > DENSE_SHARE {
        mesh_with_rtin(grid, limits, cancel)?
    } else {
        mesh_greedily(grid, tolerance, limits.max_triangles, cancel)?
    };
    if mesh.triangles.len() > limits.max_triangles {
        tracing::warn!(
            triangles = mesh.triangles.len(),
            cap = limits.max_triangles,
            "the outline alone needs more triangles than the cap allows"
        );
    }
    Ok(mesh)
}

/// The share of the grid's cells the mesh is expected to need: the share of inside points
/// whose height is further than the tolerance from the mean of its two neighbours along x
/// or along y (such a point cannot lie inside a triangle spanning both neighbours), or the
/// cap's share of a full triangulation, whichever is smaller. On our inputs the first tracks
/// greedy insertion's result to within a few per cent of the cells (0.08 vs 0.10 on a noisy
/// photo, 0.49 vs 0.44 at the `high` preset, 0.00 vs 0.004 on a smooth map).
fn expected_density(grid: &CornerGrid, limits: &MeshingLimits) -> f64 {
    let (w, h) = (grid.width() as usize, grid.height() as usize);
    let (heights, inside) = (grid.heights(), grid.inside());
    let tolerance = limits.max_error.max(0.0);
    let (rough, total) = (1..h.saturating_sub(1))
        .into_par_iter()
        .map(|y| {
            let (mut rough, mut total) = (0usize, 0usize);
            for x in 1..w - 1 {
                let i = y * w + x;
                if !inside[i] {
                    continue;
                }
                total += 1;
                let c = heights[i];
                let along_x = (c - 0.5 * (heights[i - 1] + heights[i + 1])).abs();
                let along_y = (c - 0.5 * (heights[i - w] + heights[i + w])).abs();
                if along_x.max(along_y) > tolerance {
                    rough += 1;
                }
            }
            (rough, total)
        })
        .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    let by_detail = rough as f64 / total.max(1) as f64;
    let full = 2.0 * (w as f64 - 1.0) * (h as f64 - 1.0) * total.max(1) as f64 / (w * h) as f64;
    by_detail.min(limits.max_triangles as f64 / full)
}

/// The RTIN over the enclosing `(2^k + 1)²` square with exact errors, at the smallest
/// tolerance that fits the cap.
fn mesh_with_rtin(
    grid: &CornerGrid,
    limits: &MeshingLimits,
    cancel: &CancelToken,
) -> Result<HeightfieldMesh> {
    let mut rtin = prepared_rtin(grid)?;
    rtin.compute_errors(cancel, true)?;
    cancel.check()?;
    let tolerance = rtin.tolerance_for(limits);
    non_empty(rtin.extract(tolerance, i32::MAX))
}

/// Greedy insertion from a coarse start, in parallel tiles.
fn mesh_greedily(
    grid: &CornerGrid,
    tolerance: f32,
    max_triangles: usize,
    cancel: &CancelToken,
) -> Result<HeightfieldMesh> {
    let block = start_block(grid, max_triangles);
    let tile = tile_side(grid).max(block as i32);
    mesh_greedily_in_tiles(grid, tolerance, max_triangles, block, tile, cancel)
}

/// [`mesh_greedily`] with the start blocks and tiles given (tests use small tiles on small
/// grids); `tile` is a multiple of `block`.
fn mesh_greedily_in_tiles(
    grid: &CornerGrid,
    tolerance: f32,
    max_triangles: usize,
    block: u32,
    tile: i32,
    cancel: &CancelToken,
) -> Result<HeightfieldMesh> {
    let start = if grid.inside().iter().all(|&i| i) {
        block_tiling(grid.width(), grid.height(), block)
    } else {
        // The coarsest RTIN mesh that keeps to the mask, no triangle larger than a tile.
        let mut rtin = prepared_rtin(grid)?;
        rtin.compute_errors(cancel, false)?;
        let mesh = non_empty(rtin.extract(f32::MAX, tile))?;
        StartMesh {
            points: mesh.vertices.iter().map(|v| v.map(|c| c as i32)).collect(),
            triangles: mesh.triangles,
        }
    };
    cancel.check()?;
    let refined = refine_in_tiles(grid, start, tile, tolerance, max_triangles, cancel)?;
    let stride = grid.width() as usize;
    Ok(HeightfieldMesh {
        grid_width: grid.width(),
        grid_height: grid.height(),
        heights: refined
            .points
            .iter()
            .map(|p| grid.heights()[p[1] as usize * stride + p[0] as usize])
            .collect(),
        vertices: refined.points.iter().map(|p| p.map(|c| c as u32)).collect(),
        triangles: refined.triangles,
        max_error: refined.max_error,
    })
}

/// [`START_BLOCK`], doubled while the start tiling alone would pass the cap: a cap of two
/// triangles gets two, as it would from RTIN.
fn start_block(grid: &CornerGrid, max_triangles: usize) -> u32 {
    let cells = |n: u32, side: u32| (n - 1).div_ceil(side) as usize;
    let largest = (grid.width().max(grid.height()) - 1).next_power_of_two();
    let mut side = START_BLOCK;
    while side < largest
        && 2 * cells(grid.width(), side) * cells(grid.height(), side) > max_triangles
    {
        side *= 2;
    }
    side
}

/// Side of the tiles refined in parallel: a quarter of the enclosing power of two (16 tiles
/// on a 1025² grid, enough for two threads to share evenly), but at least 256 cells, as
/// tile lines cost triangles (no flips across them: 5–30 % more on small grids). A power of
/// two and a multiple of the start block, so that no start triangle crosses a tile line.
fn tile_side(grid: &CornerGrid) -> i32 {
    let side = (grid.width().max(grid.height()) - 1).next_power_of_two();
    (side / 4).max(256) as i32
}

/// An RTIN over the grid with its pinch points removed; `ERR_MESHING` when nothing is left.
fn prepared_rtin(grid: &CornerGrid) -> Result<Rtin<'_>> {
    let mut rtin = Rtin::new(grid);
    let had_foreground = rtin.has_foreground();
    rtin.remove_pinch_points();
    if rtin.has_foreground() {
        return Ok(rtin);
    }
    let detail = if had_foreground {
        "the foreground is only pixels that touch at corners (no two share an edge); such \
         points cannot be part of a closed solid, and removing them left nothing"
    } else {
        "the foreground mask is empty"
    };
    Err(OrfeasError::Meshing {
        name: String::new(),
        detail: detail.into(),
    })
}

fn non_empty(mesh: HeightfieldMesh) -> Result<HeightfieldMesh> {
    if mesh.triangles.is_empty() {
        return Err(OrfeasError::Meshing {
            name: String::new(),
            detail: "the foreground is too thin to mesh (no pixel block of 1x1 survives)".into(),
        });
    }
    Ok(mesh)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::greedy::orient;
    use crate::mesh::{build_solid, check_solid, Scale};

    fn grid(w: u32, h: u32, f: impl Fn(u32, u32) -> (f32, bool)) -> CornerGrid {
        CornerGrid::from_fn(w, h, f).expect("a valid grid")
    }

    /// Deterministic white noise in [0, 1).
    fn noise(x: u32, y: u32) -> f32 {
        let mut h = (x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (y as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        h ^= h >> 31;
        h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h ^= h >> 29;
        (h >> 40) as f32 / (1u64 << 24) as f32
    }

    fn mesh(g: &CornerGrid, e: f32, cap: usize) -> HeightfieldMesh {
        triangulate_heightfield(
            g,
            &MeshingLimits {
                max_error: e,
                max_triangles: cap,
            },
            &CancelToken::new(),
        )
        .expect("mesh")
    }

    /// The true max vertical error of a mesh against the grid, by brute force.
    fn true_error(g: &CornerGrid, m: &HeightfieldMesh) -> f32 {
        let mut worst = 0.0f32;
        for t in &m.triangles {
            let p = t.map(|i| m.vertices[i as usize].map(|c| c as f64));
            let h = t.map(|i| m.heights[i as usize] as f64);
            let (xs, ys) = (p.map(|v| v[0]), p.map(|v| v[1]));
            let det = (p[1][0] - p[0][0]) * (p[2][1] - p[0][1])
                - (p[2][0] - p[0][0]) * (p[1][1] - p[0][1]);
            for y in ys.iter().cloned().fold(f64::MAX, f64::min) as u32
                ..=ys.iter().cloned().fold(0.0, f64::max) as u32
            {
                for x in xs.iter().cloned().fold(f64::MAX, f64::min) as u32
                    ..=xs.iter().cloned().fold(0.0, f64::max) as u32
                {
                    let (fx, fy) = (x as f64, y as f64);
                    let l1 =
                        ((p[1][0] - fx) * (p[2][1] - fy) - (p[2][0] - fx) * (p[1][1] - fy)) / det;
                    let l2 =
                        ((p[2][0] - fx) * (p[0][1] - fy) - (p[0][0] - fx) * (p[2][1] - fy)) / det;
                    let l3 = 1.0 - l1 - l2;
                    if l1 < -1e-9 || l2 < -1e-9 || l3 < -1e-9 {
                        continue;
                    }
                    let plane = l1 * h[0] + l2 * h[1] + l3 * h[2];
                    let d = (g.heights()[(y * g.width() + x) as usize] as f64 - plane).abs();
                    assert!(
                        g.inside()[(y * g.width() + x) as usize],
                        "a triangle covers the outside point ({x}, {y})"
                    );
                    worst = worst.max(d as f32);
                }
            }
        }
        worst
    }

    fn area2(m: &HeightfieldMesh) -> i64 {
        m.triangles
            .iter()
            .map(|t| {
                let p = t.map(|i| m.vertices[i as usize].map(|c| c as i32));
                orient(p[0], p[1], p[2])
            })
            .sum()
    }

    #[test]
    fn a_flat_grid_keeps_only_its_start_blocks() {
        let g = grid(65, 65, |_, _| (0.5, true));
        let m = mesh(&g, 0.001, 1_000_000);
        assert_eq!(
            m.triangles.len(),
            2 * 2 * 2,
            "two triangles per 32-cell block"
        );
        assert_eq!(area2(&m), 2 * 64 * 64);
    }

    #[test]
    fn leaf_pattern_is_union_jack() {
        // At zero tolerance on noise every leaf is emitted; check the diagonal pattern the
        // pinch-point analysis relies on.
        let g = grid(9, 9, |x, y| (noise(x, y), true));
        let m = mesh(&g, 0.0, usize::MAX);
        assert_eq!(m.triangles.len(), 2 * 8 * 8);
        for t in &m.triangles {
            let p = t.map(|i| m.vertices[i as usize]);
            // The hypotenuse (the edge not axis-aligned) must touch the odd-odd corner.
            let diag = [(p[0], p[1]), (p[1], p[2]), (p[2], p[0])]
                .into_iter()
                .find(|(a, b)| a[0] != b[0] && a[1] != b[1])
                .expect("leaf has a diagonal");
            let odd = |v: [u32; 2]| v[0] % 2 == 1 && v[1] % 2 == 1;
            assert!(
                odd(diag.0) || odd(diag.1),
                "diagonal {diag:?} misses the odd corner"
            );
        }
    }

    #[test]
    fn error_bound_is_exact_and_count_shrinks_with_tolerance() {
        let g = grid(129, 129, |x, y| {
            let (fx, fy) = (x as f32 / 128.0, y as f32 / 128.0);
            ((fx * 9.0).sin() * (fy * 7.0).cos() * 0.5 + 0.5, true)
        });
        let mut last = usize::MAX;
        for e in [0.001, 0.005, 0.02, 0.1] {
            let m = mesh(&g, e, usize::MAX);
            let err = true_error(&g, &m);
            assert!(err <= e + 1e-6, "tolerance {e}: true error {err}");
            assert!(m.triangles.len() < last);
            last = m.triangles.len();
            assert_eq!(area2(&m), 2 * 128 * 128, "triangles must tile the square");
        }
    }

    #[test]
    fn cap_is_met_exactly_by_raising_the_tolerance() {
        let g = grid(257, 257, |x, y| (noise(x, y), true));
        let m = mesh(&g, 0.0, 5_000);
        assert!(m.triangles.len() <= 5_000, "{}", m.triangles.len());
        assert!(
            m.triangles.len() > 4_000,
            "cap should be used, got {}",
            m.triangles.len()
        );
        assert!(m.max_error > 0.0);
        assert!(true_error(&g, &m) <= m.max_error + 1e-6);
    }

    #[test]
    fn non_square_grid_is_covered_exactly() {
        let g = grid(101, 37, |x, y| {
            ((x as f32 * 0.1).sin() * 0.3 + y as f32 * 0.01, true)
        });
        let m = mesh(&g, 0.002, usize::MAX);
        assert_eq!(area2(&m), 2 * 100 * 36);
        assert!(m.vertices.iter().all(|v| v[0] < 101 && v[1] < 37));
    }

    #[test]
    fn pinch_points_are_removed() {
        // Two squares touching at one corner.
        let g = grid(9, 9, |x, y| (0.0, (x <= 4 && y <= 4) || (x >= 4 && y >= 4)));
        let m = mesh(&g, 0.01, usize::MAX);
        let mut uses = std::collections::HashMap::new();
        for t in &m.triangles {
            for i in t {
                *uses.entry(m.vertices[*i as usize]).or_insert(0) += 1;
            }
        }
        // Either the corner vertex is gone or all its triangles form one fan; the solid
        // checker verifies the latter in solid.rs tests. Here: it is no longer shared by
        // both squares.
        let corner_tris: Vec<_> = m
            .triangles
            .iter()
            .filter(|t| t.iter().any(|&i| m.vertices[i as usize] == [4, 4]))
            .collect();
        let touches_a = corner_tris
            .iter()
            .any(|t| t.iter().any(|&i| m.vertices[i as usize][0] < 4));
        let touches_b = corner_tris
            .iter()
            .any(|t| t.iter().any(|&i| m.vertices[i as usize][0] > 4));
        assert!(!(touches_a && touches_b));
        assert!(!m.triangles.is_empty());
    }

    #[test]
    fn empty_mask_is_an_error() {
        let g = grid(5, 5, |_, _| (0.0, false));
        let r = triangulate_heightfield(
            &g,
            &MeshingLimits {
                max_error: 0.1,
                max_triangles: 10,
            },
            &CancelToken::new(),
        );
        assert_eq!(r.map(|_| ()).map_err(|e| e.code()), Err("ERR_MESHING"));
    }

    /// The solid built on the mesh is closed and manifold: no cracks at tile lines, no
    /// T-junctions, outline cells whole.
    fn assert_closed(m: &HeightfieldMesh) {
        let scale = Scale {
            mm_per_cell: 0.5,
            depth_mm: 10.0,
            base_mm: 2.0,
        };
        let report = check_solid(&build_solid(m, scale).expect("solid"));
        assert!(report.is_printable(), "{report:?}");
    }

    #[test]
    fn the_density_estimate_sends_detail_to_rtin_and_smooth_maps_to_greedy_insertion() {
        let limits = |e: f32, cap: usize| MeshingLimits {
            max_error: e,
            max_triangles: cap,
        };
        let noisy = grid(129, 129, |x, y| (noise(x, y), true));
        assert!(expected_density(&noisy, &limits(0.01, usize::MAX)) > DENSE_SHARE);
        // A cap far below the grid's size makes even noise sparse.
        assert!(expected_density(&noisy, &limits(0.01, 2_000)) < DENSE_SHARE);
        let smooth = grid(129, 129, |x, y| {
            ((x as f32 * 0.05).sin() * (y as f32 * 0.04).cos(), true)
        });
        assert!(expected_density(&smooth, &limits(0.001, usize::MAX)) < DENSE_SHARE);
    }

    #[test]
    fn greedy_tiles_join_without_cracks_on_a_non_square_grid() {
        // 700 x 300: tiles of 256 (6 of them, the last row and column partial), a ridge
        // pattern that crosses every tile line.
        let g = grid(701, 301, |x, y| {
            let (fx, fy) = (x as f32 / 700.0, y as f32 / 300.0);
            (((fx * 9.0).sin() * (fy * 5.0).cos()) * 0.4 + 0.5, true)
        });
        for (e, cap) in [(0.001, usize::MAX), (0.001, 3_000)] {
            assert!(expected_density(&g, &limits_of(e, cap)) < DENSE_SHARE);
            let m = mesh(&g, e, cap);
            assert!(m.triangles.len() <= cap);
            assert!(true_error(&g, &m) <= m.max_error + 1e-6);
            assert_eq!(
                area2(&m),
                2 * 700 * 300,
                "triangles must tile the rectangle"
            );
            assert!(m.vertices.iter().all(|v| v[0] < 701 && v[1] < 301));
            assert_closed(&m);
        }
    }

    #[test]
    fn greedy_insertion_keeps_to_a_mask_with_holes_and_islands() {
        // 600 x 500: six tiles, the ring crossing tile lines.
        let g = grid(601, 501, |x, y| {
            let d = ((x as f32 - 300.0).powi(2) + (y as f32 - 250.0).powi(2)).sqrt();
            let ring = (60.0..230.0).contains(&d);
            let island = d < 30.0;
            let h = ((x as f32 * 0.02).sin() * (y as f32 * 0.015).cos()) * 0.3 + 0.5;
            (h, ring || island)
        });
        let e = 0.001;
        assert!(expected_density(&g, &limits_of(e, usize::MAX)) < DENSE_SHARE);
        let m = mesh(&g, e, usize::MAX);
        // `true_error` also fails on any covered point outside the mask.
        assert!(true_error(&g, &m) <= e + 1e-6);
        let inside = g.inside().iter().filter(|&&i| i).count();
        assert!(
            m.triangles.len() < inside / 4,
            "{} triangles",
            m.triangles.len()
        );
        assert_closed(&m);
    }

    #[test]
    fn greedy_insertion_needs_fewer_triangles_than_rtin_on_a_photo_like_field() {
        // Smooth shapes under fine grain; a tolerance just above the grain.
        let g = grid(257, 257, |x, y| {
            let (fx, fy) = (x as f32 / 256.0, y as f32 / 256.0);
            let shape = (fx * 7.0).sin() * (fy * 5.0 + fx * 3.0).cos() * 0.3 + 0.5;
            (shape + 0.02 * noise(x, y), true)
        });
        let (e, cancel) = (0.025, CancelToken::new());
        let greedy = mesh_greedily(&g, e, usize::MAX, &cancel).expect("greedy");
        let rtin = mesh_with_rtin(&g, &limits_of(e, usize::MAX), &cancel).expect("rtin");
        for m in [&greedy, &rtin] {
            assert!(true_error(&g, m) <= e + 1e-6);
            assert_closed(m);
        }
        assert!(
            (greedy.triangles.len() as f64) < 0.8 * rtin.triangles.len() as f64,
            "greedy {} vs rtin {}",
            greedy.triangles.len(),
            rtin.triangles.len()
        );
    }

    #[test]
    fn cancelling_stops_greedy_insertion() {
        let g = grid(129, 129, |x, y| (noise(x, y), true));
        let cancel = CancelToken::new();
        cancel.cancel();
        let err = mesh_greedily(&g, 0.0, usize::MAX, &cancel).expect_err("cancelled");
        assert_eq!(err.code(), "ERR_CANCELLED");
    }

    fn limits_of(max_error: f32, max_triangles: usize) -> MeshingLimits {
        MeshingLimits {
            max_error,
            max_triangles,
        }
    }

    #[test]
    fn small_tiles_with_random_masks_and_caps_stay_closed_and_within_tolerance() {
        // Tiles of 32 cells on grids of a few hundred cells: many tile lines, outlines
        // crossing them, caps that bind in the middle of a round.
        for seed in 0..24u32 {
            let (w, h) = (97 + 13 * (seed % 5), 70 + 17 * (seed % 3));
            let blob = |x: u32, y: u32| {
                let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
                let s = seed as f32;
                ((fx * (3.0 + s % 4.0) + s).sin() * (fy * (2.0 + s % 3.0) - s).cos()) > -0.3
            };
            let g = grid(w, h, |x, y| {
                let shape = ((x as f32 * 0.05).sin() * (y as f32 * 0.04).cos()) * 0.3 + 0.5;
                let grain = if seed % 2 == 0 {
                    0.01 * noise(x + seed, y)
                } else {
                    0.0
                };
                (shape + grain, seed % 4 == 3 || blob(x, y))
            });
            let cap = [usize::MAX, 1_500, 4_000][(seed % 3) as usize];
            let e = [0.002, 0.0, 0.005][(seed % 3) as usize];
            let m = match mesh_greedily_in_tiles(&g, e, cap, 32, 32, &CancelToken::new()) {
                Ok(m) => m,
                Err(err) => panic!("seed {seed}: {err}"),
            };
            assert!(m.triangles.len() <= cap, "seed {seed}");
            assert!(m.max_error >= e);
            assert!(true_error(&g, &m) <= m.max_error + 1e-6, "seed {seed}");
            assert_closed(&m);
        }
    }
}
