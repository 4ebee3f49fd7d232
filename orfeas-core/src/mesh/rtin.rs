//! The right-triangulated irregular network (RTIN, the "Martini" scheme): the grid is
//! covered by a binary hierarchy of right isosceles triangles, each split at the midpoint of
//! its hypotenuse. It serves the mesher twice:
//!
//! * **Dense meshes** (most of the grid's points needed): every triangle gets its exact
//!   error — the largest vertical distance between its plane and *every* grid point it
//!   covers, not just the hypotenuse midpoint classic RTIN measures — in one parallel pass
//!   per level (≈ 2·log₂ n passes). A triangle is kept whole when its error is within
//!   tolerance. Errors propagate upwards (a triangle's error is at least its children's),
//!   which makes the result crack-free, as in Martini, and the triangle count a monotone
//!   function of the tolerance read off a histogram, so the cap is met by choosing the
//!   tolerance exactly, without re-meshing.
//! * **The start of greedy refinement on a masked grid**: only the mask counts (no
//!   per-triangle scans), giving the coarsest conforming mesh that keeps to it.
//!
//! Either way the mask is part of the error: a triangle that covers any point outside it
//! must split, so the hierarchy refines down to single cells along the outline and never
//! emits a triangle that crosses it. Leaf cells are kept only when all three corners are
//! inside, and pinch points (cells touching only at a corner) are removed first.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use rayon::prelude::*;

use super::greedy::orient;
use super::heightfield::{CornerGrid, HeightfieldMesh, MeshingLimits};
use crate::cancel::CancelToken;
use crate::error::Result;

/// A triangle of the hierarchy: hypotenuse `a`–`b`, right angle at `c`.
#[derive(Clone, Copy, Debug)]
struct Tri {
    a: [i32; 2],
    b: [i32; 2],
    c: [i32; 2],
}

impl Tri {
    fn mid(&self) -> [i32; 2] {
        [(self.a[0] + self.b[0]) >> 1, (self.a[1] + self.b[1]) >> 1]
    }

    /// A leaf has legs of length one: it covers no grid point besides its corners.
    fn is_leaf(&self) -> bool {
        (self.a[0] - self.c[0]).abs() + (self.a[1] - self.c[1]).abs() == 1
    }

    fn children(&self) -> [Tri; 2] {
        let m = self.mid();
        [
            Tri {
                a: self.c,
                b: self.a,
                c: m,
            },
            Tri {
                a: self.b,
                b: self.c,
                c: m,
            },
        ]
    }
}

/// The RTIN over a square grid of side `2^k + 1` that contains the corner grid.
pub(super) struct Rtin<'g> {
    grid: &'g CornerGrid,
    size: i32,
    /// Inside flags on the square grid (points beyond the corner grid are outside).
    inside: Vec<bool>,
    /// Propagated error per hypotenuse midpoint; `INFINITY` where the mask forces a split.
    errors: Vec<f32>,
    /// Whether either triangle split at this midpoint covers any inside point; triangles
    /// that cover none are dropped whole instead of being refined to single cells.
    covers_inside: Vec<bool>,
    /// The whole corner grid is inside (no mask): row scans skip the inside test.
    all_inside: bool,
    /// Whether errors are measured (dense meshing) or only the mask forces splits (the
    /// start of greedy refinement).
    exact: bool,
}

impl<'g> Rtin<'g> {
    pub fn new(grid: &'g CornerGrid) -> Self {
        let needed = grid.width().max(grid.height()).max(2) - 1;
        let size = needed.next_power_of_two() as i32 + 1;
        let n = size as usize;
        let mut inside = vec![false; n * n];
        for y in 0..grid.height() as usize {
            let src = &grid.inside()[y * grid.width() as usize..][..grid.width() as usize];
            inside[y * n..][..grid.width() as usize].copy_from_slice(src);
        }
        let all_inside = grid.inside().iter().all(|&i| i);
        Self {
            grid,
            size,
            inside,
            errors: vec![0.0; n * n],
            covers_inside: vec![false; n * n],
            all_inside,
            exact: true,
        }
    }

    /// Whether any point is still inside (after pinch points are removed).
    pub fn has_foreground(&self) -> bool {
        self.inside.iter().any(|&i| i)
    }

    fn idx(&self, p: [i32; 2]) -> usize {
        p[1] as usize * self.size as usize + p[0] as usize
    }

    fn height(&self, p: [i32; 2]) -> f32 {
        if p[0] < self.grid.width() as i32 && p[1] < self.grid.height() as i32 {
            self.grid.heights()[p[1] as usize * self.grid.width() as usize + p[0] as usize]
        } else {
            0.0
        }
    }

    fn is_inside(&self, p: [i32; 2]) -> bool {
        self.inside[self.idx(p)]
    }

    fn in_square(&self, p: [i32; 2]) -> bool {
        p[0] >= 0 && p[1] >= 0 && p[0] < self.size && p[1] < self.size
    }

    fn inside_or_false(&self, p: [i32; 2]) -> bool {
        self.in_square(p) && self.is_inside(p)
    }

    /// Only a point with an outside neighbour can be a pinch or isolated.
    fn near_outside(&self, p: [i32; 2]) -> bool {
        (-1..=1).any(|dy| (-1..=1).any(|dx| !self.inside_or_false([p[0] + dx, p[1] + dy])))
    }

    /// Number of separate fans of kept leaf triangles around `p`; more than one is a pinch.
    ///
    /// Every cell is split by the diagonal through its corner with both coordinates odd
    /// (the "union jack" pattern of the 4-8 hierarchy), so diagonals join odd-odd to
    /// even-even points: those have 8 sectors around them, mixed-parity points have 4.
    fn fan_count(&self, p: [i32; 2]) -> usize {
        const DIRS: [[i32; 2]; 8] = [
            [1, 0],
            [1, 1],
            [0, 1],
            [-1, 1],
            [-1, 0],
            [-1, -1],
            [0, -1],
            [1, -1],
        ];
        if !self.is_inside(p) {
            return 0;
        }
        let step = if (p[0] ^ p[1]) & 1 == 0 { 1 } else { 2 };
        let spokes = DIRS.len() / step;
        let spoke_inside = |i: usize| {
            let d = DIRS[(i * step) % DIRS.len()];
            self.inside_or_false([p[0] + d[0], p[1] + d[1]])
        };
        let kept = |i: usize| spoke_inside(i) && spoke_inside(i + 1);
        let mut runs = 0;
        let mut all = true;
        for i in 0..spokes {
            let k = kept(i);
            all &= k;
            if k && !kept(i + spokes - 1) {
                runs += 1;
            }
        }
        if all {
            1
        } else {
            runs
        }
    }

    /// Removes grid points where kept cells touch only at a corner: such a point would be a
    /// non-manifold vertex of the solid. Removing one can create another next to it, so this
    /// runs as a work list until none is left; it only ever shrinks the mask.
    pub fn remove_pinch_points(&mut self) {
        if self.all_inside {
            return; // a full rectangle has no pinches
        }
        let n = self.size;
        let mut work: Vec<[i32; 2]> = (0..n)
            .flat_map(|y| (0..n).map(move |x| [x, y]))
            .filter(|&p| self.is_inside(p) && self.near_outside(p) && self.fan_count(p) > 1)
            .collect();
        while let Some(p) = work.pop() {
            if self.fan_count(p) <= 1 {
                continue;
            }
            let i = self.idx(p);
            self.inside[i] = false;
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let q = [p[0] + dx, p[1] + dy];
                    if self.in_square(q) && self.fan_count(q) > 1 {
                        work.push(q);
                    }
                }
            }
        }
        // Points with no kept cell around them are not part of the surface.
        let isolated: Vec<usize> = (0..n)
            .flat_map(|y| (0..n).map(move |x| [x, y]))
            .filter(|&p| self.is_inside(p) && self.near_outside(p) && self.fan_count(p) == 0)
            .map(|p| self.idx(p))
            .collect();
        for i in isolated {
            self.inside[i] = false;
        }
    }

    /// Largest vertical distance between the plane of `t` and the grid points it covers,
    /// or infinity when it covers any point outside the mask.
    fn triangle_error(&self, t: &Tri) -> f32 {
        let (gw, gh) = (self.grid.width() as i32, self.grid.height() as i32);
        let ys = [t.a[1], t.b[1], t.c[1]];
        let (y0, y1) = (
            *ys.iter().min().unwrap_or(&0),
            *ys.iter().max().unwrap_or(&0),
        );
        let xs = [t.a[0], t.b[0], t.c[0]];
        let (x0, x1) = (
            *xs.iter().min().unwrap_or(&0),
            *xs.iter().max().unwrap_or(&0),
        );
        if x1 >= gw || y1 >= gh {
            return f32::INFINITY;
        }
        let (ha, hb, hc) = (self.height(t.a), self.height(t.b), self.height(t.c));
        // Plane h = ha + gx (x - ax) + gy (y - ay), solved from the two edges at a.
        let (e1, e2) = (
            [t.b[0] - t.a[0], t.b[1] - t.a[1]],
            [t.c[0] - t.a[0], t.c[1] - t.a[1]],
        );
        let det = (e1[0] * e2[1] - e1[1] * e2[0]) as f32;
        let gx = ((hb - ha) * e2[1] as f32 - (hc - ha) * e1[1] as f32) / det;
        let gy = ((hc - ha) * e1[0] as f32 - (hb - ha) * e2[0] as f32) / det;
        // Edges are axis-aligned or diagonal: along a non-horizontal edge x moves by -1, 0
        // or +1 per row, so row spans are exact integers without division.
        let edges = [(t.a, t.b), (t.b, t.c), (t.c, t.a)].map(|(p, q)| {
            let (top, bottom) = if p[1] <= q[1] { (p, q) } else { (q, p) };
            let step = if top[1] == bottom[1] {
                0
            } else {
                (bottom[0] - top[0]).signum()
            };
            (top, bottom, step)
        });
        let n = self.size as usize;
        let mut worst = 0.0f32;
        for y in y0..=y1 {
            let (mut lo, mut hi) = (x1, x0);
            for &(top, bottom, step) in &edges {
                if top[1] <= y && y <= bottom[1] {
                    if top[1] == bottom[1] {
                        lo = lo.min(top[0].min(bottom[0]));
                        hi = hi.max(top[0].max(bottom[0]));
                    } else {
                        let x = top[0] + (y - top[1]) * step;
                        lo = lo.min(x);
                        hi = hi.max(x);
                    }
                }
            }
            let row = y as usize * n;
            let grow = y as usize * self.grid.width() as usize;
            let span = (hi - lo) as usize + 1;
            if !self.all_inside && !self.inside[row + lo as usize..][..span].iter().all(|&i| i) {
                return f32::INFINITY;
            }
            let base = ha + gy * (y - t.a[1]) as f32 + gx * (lo - t.a[0]) as f32;
            // Independent per element (no running sum, no NaN-aware max): vectorises.
            for (k, &h) in self.grid.heights()[grow + lo as usize..][..span]
                .iter()
                .enumerate()
            {
                let d = (h - (base + gx * k as f32)).abs();
                if d > worst {
                    worst = d;
                }
            }
        }
        worst
    }

    /// Fills `errors` level by level from the finest up, so that every triangle sees the
    /// final errors of its children (including those raised by a neighbour sharing them).
    ///
    /// The levels of the 4-8 hierarchy are lattices, so they are enumerated by formula, not
    /// stored: from the top, squares of side T split along a diagonal, then "diamonds" whose
    /// hypotenuse is an edge of those squares, then squares of side T/2, and so on. Every
    /// midpoint belongs to exactly one level and is written by exactly one task, so a level
    /// runs in parallel without locks (relaxed atomics are plain loads and stores here).
    pub fn compute_errors(&mut self, cancel: &CancelToken, exact: bool) -> Result<()> {
        self.exact = exact;
        let t = self.size - 1;
        let errors: Vec<AtomicU32> = self
            .errors
            .iter()
            .map(|e| AtomicU32::new(e.to_bits()))
            .collect();
        let covers: Vec<AtomicBool> = self
            .covers_inside
            .iter()
            .map(|&c| AtomicBool::new(c))
            .collect();
        let mut half = 1;
        while 2 * half <= t {
            cancel.check()?;
            // Diamonds: hypotenuse 2·half along an axis, apexes `half` away on either side.
            self.diamond_level(half, &errors, &covers);
            cancel.check()?;
            // Squares of side 2·half split along the diagonal through their odd-odd corner.
            self.square_level(2 * half, &errors, &covers);
            half *= 2;
        }
        self.errors = errors
            .into_iter()
            .map(|e| f32::from_bits(e.into_inner()))
            .collect();
        self.covers_inside = covers.into_iter().map(AtomicBool::into_inner).collect();
        Ok(())
    }

    /// Midpoints `(odd, even)·half` (horizontal hypotenuse) and `(even, odd)·half` (vertical).
    fn diamond_level(&self, half: i32, errors: &[AtomicU32], covers: &[AtomicBool]) {
        let t = self.size - 1;
        let rows = t / half + 1;
        (0..rows).into_par_iter().for_each(|r| {
            let y = r * half;
            // Rows at even multiples hold horizontal hypotenuses, odd rows vertical ones.
            let (x0, horizontal) = if r % 2 == 0 { (half, true) } else { (0, false) };
            let mut x = x0;
            while x <= t {
                let m = [x, y];
                let (p, q, apexes) = if horizontal {
                    ([x - half, y], [x + half, y], [[x, y - half], [x, y + half]])
                } else {
                    ([x, y - half], [x, y + half], [[x - half, y], [x + half, y]])
                };
                let tris = apexes
                    .into_iter()
                    .filter(|&c| self.in_square(c))
                    .map(|c| Tri { a: p, b: q, c });
                self.settle(m, tris, half == 1, half > 1, errors, covers);
                x += 2 * half;
            }
        });
    }

    /// Centres of the squares of side `side`; the two apexes are the other two corners.
    fn square_level(&self, side: i32, errors: &[AtomicU32], covers: &[AtomicBool]) {
        let t = self.size - 1;
        let count = t / side;
        (0..count).into_par_iter().for_each(|j| {
            for i in 0..count {
                let ox = if i % 2 == 1 { i } else { i + 1 };
                let oy = if j % 2 == 1 { j } else { j + 1 };
                let p = [ox * side, oy * side];
                let q = [(2 * i + 1 - ox) * side, (2 * j + 1 - oy) * side];
                let m = [(2 * i + 1) * side / 2, (2 * j + 1) * side / 2];
                let apexes = [[p[0], q[1]], [q[0], p[1]]];
                let tris = apexes.into_iter().map(|c| Tri { a: p, b: q, c });
                self.settle(m, tris, side == 2, true, errors, covers);
            }
        });
    }

    /// Final error of midpoint `m`: its triangles' own errors and their children's.
    /// `finest`: the triangles cover only corners and edge midpoints (O(1) error) — the
    /// hypotenuse-2 diamonds and the side-2 squares. `with_children`: the children have
    /// grid-point midpoints (everything but the hypotenuse-2 diamonds, whose children are leaves).
    fn settle(
        &self,
        m: [i32; 2],
        tris: impl Iterator<Item = Tri>,
        finest: bool,
        with_children: bool,
        errors: &[AtomicU32],
        covers: &[AtomicBool],
    ) {
        let mut e = 0.0f32;
        let mut any = self.is_inside(m);
        for tri in tris {
            // Without `exact` only the mask counts: a triangle covers exactly what its two
            // children cover, so the finest levels' flags carry it up.
            e = e.max(if finest {
                self.edge_midpoint_error(&tri)
            } else if self.exact {
                self.triangle_error(&tri)
            } else {
                0.0
            });
            any = any || self.is_inside(tri.a) || self.is_inside(tri.b) || self.is_inside(tri.c);
            if with_children {
                for kid in tri.children() {
                    let k = self.idx(kid.mid());
                    e = e.max(f32::from_bits(errors[k].load(Ordering::Relaxed)));
                    any = any || covers[k].load(Ordering::Relaxed);
                }
            }
        }
        errors[self.idx(m)].store(e.to_bits(), Ordering::Relaxed);
        covers[self.idx(m)].store(any, Ordering::Relaxed);
    }

    /// Error of a triangle whose only non-corner grid points are the midpoints of its edges
    /// (the two finest levels). The plane at an edge midpoint is the mean of the edge's ends.
    fn edge_midpoint_error(&self, t: &Tri) -> f32 {
        let (gw, gh) = (self.grid.width() as i32, self.grid.height() as i32);
        let mut worst = 0.0f32;
        for (p, q) in [(t.a, t.b), (t.b, t.c), (t.c, t.a)] {
            for v in [p, q] {
                if v[0] >= gw || v[1] >= gh || !self.is_inside(v) {
                    return f32::INFINITY;
                }
            }
            let (dx, dy) = (q[0] - p[0], q[1] - p[1]);
            if dx % 2 == 0 && dy % 2 == 0 {
                let m = [p[0] + dx / 2, p[1] + dy / 2];
                if !self.is_inside(m) {
                    return f32::INFINITY;
                }
                worst = worst.max((self.height(m) - 0.5 * (self.height(p) + self.height(q))).abs());
            }
        }
        worst
    }

    /// The smallest tolerance ≥ the requested one whose mesh fits the triangle cap.
    ///
    /// Each split of a finite-error triangle adds exactly one kept triangle, and every
    /// finite-error midpoint is shared by two triangles (one on the square's border), so the
    /// count at tolerance `e` is `count(∞) + Σ multiplicity(m) · [error(m) > e]`.
    pub fn tolerance_for(&self, limits: &MeshingLimits) -> f32 {
        let requested = limits.max_error.max(0.0);
        let forced = self.count(f32::INFINITY);
        let n = self.size;
        let mut finite: Vec<(f32, usize)> = (0..n)
            .flat_map(|y| (0..n).map(move |x| [x, y]))
            .filter_map(|p| {
                // Every point but the square's four corners is a midpoint; corners keep 0.
                let e = self.errors[self.idx(p)];
                let border = p[0] == 0 || p[1] == 0 || p[0] == n - 1 || p[1] == n - 1;
                (e.is_finite() && e > requested).then_some((e, if border { 1 } else { 2 }))
            })
            .collect();
        let total: usize = forced + finite.iter().map(|&(_, m)| m).sum::<usize>();
        if total <= limits.max_triangles {
            return requested;
        }
        // Largest errors first; walk until the budget is spent.
        finite.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        let mut count = forced;
        let mut i = 0;
        while i < finite.len() {
            // All midpoints with the same error split together.
            let e = finite[i].0;
            let mut j = i;
            let mut add = 0;
            while j < finite.len() && finite[j].0 == e {
                add += finite[j].1;
                j += 1;
            }
            if count + add > limits.max_triangles {
                return e;
            }
            count += add;
            i = j;
        }
        requested
    }

    /// Walks the hierarchy at tolerance `e`, calling `emit` for every kept triangle.
    fn walk(&self, e: f32, max_side: i32, mut emit: impl FnMut(&Tri)) {
        let t = self.size - 1;
        let mut stack = vec![
            Tri {
                a: [0, 0],
                b: [t, t],
                c: [t, 0],
            },
            Tri {
                a: [t, t],
                b: [0, 0],
                c: [0, t],
            },
        ];
        while let Some(tri) = stack.pop() {
            if tri.is_leaf() {
                if self.is_inside(tri.a) && self.is_inside(tri.b) && self.is_inside(tri.c) {
                    emit(&tri);
                }
                continue;
            }
            let err = self.errors[self.idx(tri.mid())];
            let extent = (tri.b[0] - tri.a[0]).abs().max((tri.b[1] - tri.a[1]).abs());
            if err > e || extent > max_side {
                if err.is_infinite() && !self.covers_inside[self.idx(tri.mid())] {
                    continue;
                }
                stack.extend(tri.children());
            } else {
                emit(&tri);
            }
        }
    }

    fn count(&self, e: f32) -> usize {
        let mut n = 0;
        self.walk(e, i32::MAX, |_| n += 1);
        n
    }

    /// The mesh at tolerance `e` with no triangle wider or taller than `max_side`.
    pub fn extract(&self, e: f32, max_side: i32) -> HeightfieldMesh {
        let n = self.size as usize;
        let mut index = vec![u32::MAX; n * n];
        let mut mesh = HeightfieldMesh {
            grid_width: self.grid.width(),
            grid_height: self.grid.height(),
            max_error: e,
            ..Default::default()
        };
        self.walk(e, max_side, |t| {
            // Counter-clockwise in grid coordinates (x right, y down).
            let (p, q, r) = if orient(t.a, t.b, t.c) > 0 {
                (t.a, t.b, t.c)
            } else {
                (t.a, t.c, t.b)
            };
            let tri = [p, q, r].map(|v| {
                let slot = &mut index[v[1] as usize * n + v[0] as usize];
                if *slot == u32::MAX {
                    *slot = mesh.vertices.len() as u32;
                    mesh.vertices.push([v[0] as u32, v[1] as u32]);
                    mesh.heights.push(self.height(v));
                }
                *slot
            });
            mesh.triangles.push(tri);
        });
        mesh
    }
}
