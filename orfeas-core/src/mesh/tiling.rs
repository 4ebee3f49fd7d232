//! The start mesh of a rectangle with nothing masked out: square blocks, two triangles each.

use super::greedy::StartMesh;

/// Blocks of `side` cells (the last row and column shorter where the sides are not
/// multiples) over a `width × height` corner grid, each cut along its main diagonal;
/// triangles counter-clockwise in grid coordinates. No padding: the blocks end at the grid.
pub(super) fn block_tiling(width: u32, height: u32, side: u32) -> StartMesh {
    let stops = |n: u32| -> Vec<i32> {
        let last = n as i32 - 1;
        let mut s: Vec<i32> = (0..last).step_by(side.max(1) as usize).collect();
        s.push(last);
        s
    };
    let (xs, ys) = (stops(width), stops(height));
    let points: Vec<[i32; 2]> = ys
        .iter()
        .flat_map(|&y| xs.iter().map(move |&x| [x, y]))
        .collect();
    let columns = xs.len() as u32;
    let mut triangles = Vec::with_capacity(2 * (xs.len() - 1) * (ys.len() - 1));
    for j in 0..ys.len() as u32 - 1 {
        for i in 0..columns - 1 {
            let p00 = j * columns + i;
            let (p10, p01, p11) = (p00 + 1, p00 + columns, p00 + columns + 1);
            triangles.push([p00, p10, p11]);
            triangles.push([p00, p11, p01]);
        }
    }
    StartMesh { points, triangles }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::greedy::orient;

    #[test]
    fn blocks_tile_the_rectangle_without_padding() {
        for (w, h, side) in [(2, 2, 64), (65, 65, 16), (101, 37, 16), (1025, 513, 64)] {
            let StartMesh { points, triangles } = block_tiling(w, h, side);
            let area: i64 = triangles
                .iter()
                .map(|t| {
                    let [a, b, c] = t.map(|i| points[i as usize]);
                    let o = orient(a, b, c);
                    assert!(o > 0, "{w}x{h}: a triangle is not counter-clockwise");
                    o
                })
                .sum();
            assert_eq!(area, 2 * (w as i64 - 1) * (h as i64 - 1), "{w}x{h}");
            assert!(points.iter().all(|p| p[0] < w as i32 && p[1] < h as i32));
        }
    }
}
