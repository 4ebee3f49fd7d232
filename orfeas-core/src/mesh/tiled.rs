//! Greedy insertion on both cores: the grid in square tiles, refined side by side.
//!
//! Each tile is its own [`Refiner`] over its part of the start mesh. Tiles never flip
//! across their common edges, and a point that falls on one (a shared edge) is inserted on
//! both sides at once, between the parallel passes, so the tiles stay one conforming mesh.
//!
//! Without a cap that can bind, every tile simply refines to the tolerance. With one, the
//! order across tiles matters: refinement runs in rounds of falling error thresholds (half
//! the worst error left, or the threshold the rest of the cap can afford), every tile down to
//! the round's threshold within its share of what is left of the cap (proportional to how many
//! of its triangles are above the threshold). When little is left, or a round uses up a
//! share, the rest of the cap goes to the exact greedy order across all tiles, one point at a
//! time, so the result is the greedy one up to the rounds' granularity.
//!
//! Every step is deterministic: the tiles do not see each other while they run in parallel.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;

use super::greedy::{edge_key_of, Refined, Refiner, StartMesh};
use super::heightfield::CornerGrid;
use crate::cancel::CancelToken;
use crate::error::Result;

/// Each round lowers the threshold to this fraction of the largest error left.
const ROUND_RATIO: f32 = 0.5;

/// Below this many affordable insertions the cap's last points go in one at a time.
const MIN_ROUND: usize = 1024;

/// Refines a conforming start mesh of the `width × height` grid in tiles of `tile` cells
/// (a power of two; every start triangle must lie within one tile).
pub(super) fn refine_in_tiles(
    grid: &CornerGrid,
    start: StartMesh,
    tile: i32,
    tolerance: f32,
    max_triangles: usize,
    cancel: &CancelToken,
) -> Result<Refined> {
    let (width, height, heights) = (grid.width(), grid.height(), grid.heights());
    let stride = width as usize;
    let tiles_x = (width as i32 - 2) / tile + 1;
    let tiles_y = (height as i32 - 2) / tile + 1;
    let mut tiles = split_into_tiles(heights, stride, start, tile, tiles_x, tiles_y, tolerance);

    // Outline edges on a tile line found in two tiles are shared between them.
    let on_tile_line = |a: [i32; 2], b: [i32; 2]| {
        (a[0] == b[0] && a[0] % tile == 0) || (a[1] == b[1] && a[1] % tile == 0)
    };
    let mut owners: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, t) in tiles.iter().enumerate() {
        for key in t.outline_keys(on_tile_line) {
            owners.entry(key).or_default().push(i);
        }
    }
    owners.retain(|_, o| o.len() == 2);
    let shared: HashSet<u64> = owners.keys().copied().collect();
    tiles.par_iter_mut().for_each(|t| t.share(&shared));
    let mut owners: HashMap<u64, [usize; 2]> =
        owners.into_iter().map(|(k, o)| (k, [o[0], o[1]])).collect();

    // A full triangulation of the grid has 2·cells triangles: a cap above that cannot bind.
    let cap_binds = (max_triangles as u64) < 2 * (width as u64 - 1) * (height as u64 - 1);
    let mut per_above = 4.0f64;
    // Whether the rest of the cap goes in the exact greedy order.
    let finish_exactly = loop {
        cancel.check()?;
        let top = top_error(&mut tiles);
        if top <= tolerance || count(&tiles) + 2 > max_triangles {
            break false;
        }
        let remaining = (max_triangles - count(&tiles)) / 2;
        let Some(theta) = next_threshold(&tiles, top, tolerance, cap_binds, remaining, per_above)
        else {
            break true;
        };
        let above: Vec<usize> = tiles.par_iter().map(|t| t.count_above(theta)).collect();
        let total_above: usize = above.iter().sum();
        let before = count(&tiles);
        // Shares of what is left of the cap; every tile gets some, as a neighbour's split
        // can give it work above the threshold.
        let weight = |a: usize| a as u128 + 1;
        let total_weight: u128 = above.iter().map(|&a| weight(a)).sum();
        let mut budgets: Vec<usize> = above
            .iter()
            .map(|&a| (remaining as u128 * weight(a) / total_weight) as usize)
            .collect();
        loop {
            let done: Vec<Result<usize>> = tiles
                .par_iter_mut()
                .zip(&budgets)
                .map(|(t, &b)| t.run_to(theta, b, cancel))
                .collect();
            for (budget, done) in budgets.iter_mut().zip(done) {
                *budget -= done?;
            }
            let more = split_shared_edges(&mut tiles, &mut owners, stride, max_triangles);
            if !more {
                break;
            }
        }
        // A tile that stopped on its share with work left above the threshold: the cap
        // binds within this round.
        let spent_share = tiles
            .iter_mut()
            .zip(&budgets)
            .any(|(t, &b)| b == 0 && t.top_error() > theta);
        let added = count(&tiles) - before;
        per_above = added as f64 / 2.0 / total_above.max(1) as f64;
        if spent_share {
            break true;
        }
        if added == 0 {
            break false; // nothing could be inserted (only points the cap leaves no room for)
        }
    };
    if finish_exactly {
        exact_tail(
            &mut tiles,
            &mut owners,
            stride,
            tolerance,
            max_triangles,
            cancel,
        )?;
    }
    let max_error = top_error(&mut tiles).max(tolerance);
    Ok(merge(tiles, stride, tile, max_error))
}

/// The threshold of the next round: a fixed fraction of the worst error, or, where that
/// round might not fit what is left of the cap (at `per_above` insertions per triangle above
/// it, as the last round had them), the error above which the triangles it can afford lie.
/// `None` when what is left is better spent one point at a time.
fn next_threshold(
    tiles: &[Refiner],
    top: f32,
    tolerance: f32,
    cap_binds: bool,
    remaining: usize,
    per_above: f64,
) -> Option<f32> {
    if !cap_binds {
        return Some(tolerance); // the order across tiles does not matter
    }
    let theta = (top * ROUND_RATIO).max(tolerance);
    let mut errors: Vec<f32> = tiles.iter().flat_map(|t| t.errors_above(theta)).collect();
    let affordable = (remaining as f64 / (2.0 * per_above)) as usize;
    if errors.len() <= affordable {
        return Some(theta);
    }
    if affordable < MIN_ROUND {
        return None;
    }
    let (_, kth, _) = errors.select_nth_unstable_by(affordable, |a, b| b.total_cmp(a));
    let kth = *kth;
    Some(kth)
}

/// The rest of the cap in the exact greedy order: always the worst triangle of all tiles.
fn exact_tail(
    tiles: &mut [Refiner],
    owners: &mut HashMap<u64, [usize; 2]>,
    stride: usize,
    tolerance: f32,
    max_triangles: usize,
    cancel: &CancelToken,
) -> Result<()> {
    // Points deferred in the last round go back to their queues; here they are inserted on
    // both sides as they come up.
    for t in tiles.iter_mut() {
        for entry in t.take_deferred() {
            t.requeue(entry);
        }
    }
    // The last insertions before the cap can leave a flipped triangle worse than anything
    // before them, with nothing left to fix it: the greedy order stops a little short of the
    // cap, and the reserve then goes only to triangles above the error reached there.
    let reserve = (max_triangles / 1000).max(16);
    let mut steps = 0usize;
    let mut floor = tolerance;
    loop {
        let total = count(tiles);
        if total + 2 > max_triangles {
            break;
        }
        if total + 2 + reserve > max_triangles && floor == tolerance {
            floor = top_error(tiles).max(tolerance);
        }
        let worst = tiles
            .iter_mut()
            .enumerate()
            .filter_map(|(i, t)| t.top().map(|e| (e, std::cmp::Reverse(i))))
            .max();
        let Some((top, std::cmp::Reverse(i))) = worst else {
            break;
        };
        if f32::from_bits(top.error_bits) <= floor {
            break;
        }
        match tiles[i].shared_edge_of(top.tri) {
            None => tiles[i].insert_top(),
            Some(key) => {
                let p = tiles[i].candidate_of(top.tri);
                if !split_on_both_sides(tiles, owners, stride, key, p) {
                    // Tiles and owners always agree on shared edges; stop rather than spin.
                    debug_assert!(false, "shared edge {key} has no owners");
                    break;
                }
            }
        }
        steps += 1;
        if steps.is_multiple_of(4096) {
            cancel.check()?;
        }
    }
    Ok(())
}

fn top_error(tiles: &mut [Refiner]) -> f32 {
    tiles.iter_mut().map(|t| t.top_error()).fold(0.0, f32::max)
}

fn count(tiles: &[Refiner]) -> usize {
    tiles.iter().map(Refiner::len).sum()
}

/// Inserts every deferred point on both sides of its shared edge while the cap allows;
/// whether any was inserted (the tiles then have new triangles to refine).
fn split_shared_edges(
    tiles: &mut [Refiner],
    owners: &mut HashMap<u64, [usize; 2]>,
    stride: usize,
    max_triangles: usize,
) -> bool {
    let mut any = false;
    for i in 0..tiles.len() {
        for entry in tiles[i].take_deferred() {
            // An earlier split in this pass may have changed the triangle: then it has been
            // measured again and queued anew, and this entry is stale.
            if !tiles[i].is_current(entry) {
                continue;
            }
            let Some(key) = tiles[i].shared_edge_of(entry.tri) else {
                tiles[i].requeue(entry);
                continue;
            };
            if count(tiles) + 2 > max_triangles {
                tiles[i].requeue(entry);
                continue;
            }
            let p = tiles[i].candidate_of(entry.tri);
            if split_on_both_sides(tiles, owners, stride, key, p) {
                any = true;
            } else {
                tiles[i].requeue(entry);
            }
        }
    }
    any
}

/// Splits shared edge `key` at `p` in both tiles that hold it; false (nothing changed) if
/// no two tiles hold it.
fn split_on_both_sides(
    tiles: &mut [Refiner],
    owners: &mut HashMap<u64, [usize; 2]>,
    stride: usize,
    key: u64,
    p: [i32; 2],
) -> bool {
    let Some(pair) = owners.remove(&key) else {
        return false;
    };
    for &i in &pair {
        tiles[i].split_shared(key, p);
    }
    let point = |id: u64| [(id as usize % stride) as i32, (id as usize / stride) as i32];
    let (a, b) = (point(key >> 32), point(key & 0xFFFF_FFFF));
    owners.insert(edge_key_of(a, p, stride), pair);
    owners.insert(edge_key_of(p, b, stride), pair);
    true
}

/// Distributes the start triangles over the tiles (each lies within one) and builds a
/// refiner per tile, in parallel.
fn split_into_tiles<'g>(
    heights: &'g [f32],
    stride: usize,
    StartMesh { points, triangles }: StartMesh,
    tile: i32,
    tiles_x: i32,
    tiles_y: i32,
    tolerance: f32,
) -> Vec<Refiner<'g>> {
    let mut per_tile: Vec<Vec<[u32; 3]>> = vec![Vec::new(); (tiles_x * tiles_y) as usize];
    for t in triangles {
        let [a, b, c] = t.map(|i| points[i as usize]);
        // The centroid lies strictly inside the triangle's tile.
        let tx = ((a[0] + b[0] + c[0]) / 3 / tile).min(tiles_x - 1);
        let ty = ((a[1] + b[1] + c[1]) / 3 / tile).min(tiles_y - 1);
        per_tile[(ty * tiles_x + tx) as usize].push(t);
    }
    let mut local = vec![u32::MAX; points.len()];
    let parts: Vec<StartMesh> = per_tile
        .into_iter()
        .map(|tris| {
            let (mut pts, mut used) = (Vec::new(), Vec::new());
            let tris: Vec<[u32; 3]> = tris
                .iter()
                .map(|t| {
                    t.map(|g| {
                        let slot = &mut local[g as usize];
                        if *slot == u32::MAX {
                            *slot = pts.len() as u32;
                            pts.push(points[g as usize]);
                            used.push(g);
                        }
                        *slot
                    })
                })
                .collect();
            for g in used {
                local[g as usize] = u32::MAX;
            }
            StartMesh {
                points: pts,
                triangles: tris,
            }
        })
        .collect();
    parts
        .into_par_iter()
        .map(|part| Refiner::new(heights, stride, part, tolerance))
        .collect()
}

/// One mesh from the tiles: points on a tile line are shared, found by grid index.
fn merge(tiles: Vec<Refiner>, stride: usize, tile: i32, max_error: f32) -> Refined {
    let mut points = Vec::new();
    let mut triangles = Vec::new();
    let mut on_lines: HashMap<usize, u32> = HashMap::new();
    for t in tiles {
        let part = t.into_refined(max_error);
        let index: Vec<u32> = part
            .points
            .iter()
            .map(|&p| {
                let mut fresh = || {
                    points.push(p);
                    points.len() as u32 - 1
                };
                if p[0] % tile == 0 || p[1] % tile == 0 {
                    *on_lines
                        .entry(p[1] as usize * stride + p[0] as usize)
                        .or_insert_with(fresh)
                } else {
                    fresh()
                }
            })
            .collect();
        triangles.extend(part.triangles.iter().map(|t| t.map(|v| index[v as usize])));
    }
    Refined {
        points,
        triangles,
        max_error,
    }
}
