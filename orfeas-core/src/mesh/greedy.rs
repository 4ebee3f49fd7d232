//! Greedy point insertion: the refinement that gives the mesher its triangle counts.
//!
//! Garland and Heckbert's greedy insertion (the algorithm of fogleman/hmm): repeatedly take
//! the triangle whose worst grid point is furthest from its plane, insert that point, and
//! restore the Delaunay property by edge flips. Every triangle's error is measured over
//! *every* grid point it covers, so the tolerance the mesh reports is a guarantee.
//!
//! It starts from a conforming mesh rather than from two triangles: a coarse tiling of the
//! rectangle, or the coarsest RTIN mesh that respects the foreground mask. Splits and flips
//! never change the region the triangles cover (a flip re-triangulates the convex quad of two
//! triangles, a split subdivides one), so the outline of the start mesh, with its pinch points
//! already removed, is the outline of the result; only the inside gets new points.
//!
//! Where it differs from hmm, for speed:
//! * Each triangle is scanned row by row over its exact span (integer edge bounds stepped per
//!   row, no division in the loop) instead of testing every point of its bounding box; the
//!   plane is evaluated per point, not accumulated, and the position of the worst point is
//!   looked for only in a row that beats the best so far.
//! * The start mesh is measured in parallel, and tiles (`tiled.rs`) run their insertion loops
//!   side by side.
//! * Triangles already within tolerance never enter the queue, and stale queue entries are
//!   skipped (their error no longer matches the slot's) instead of being removed in place.

use std::collections::{BinaryHeap, HashMap, HashSet};

use rayon::prelude::*;

use crate::cancel::CancelToken;
use crate::error::Result;

/// No neighbour across this half-edge: it is on the outline.
const NONE: u32 = u32::MAX;

/// The error of a slot changed since it was measured: no queue entry carries it.
const STALE: f32 = -1.0;

/// How many insertions run between two looks at the cancel token.
const CANCEL_EVERY: usize = 4096;

/// An undirected edge by its ends' grid indices, smaller first.
pub(super) fn edge_key_of(a: [i32; 2], b: [i32; 2], stride: usize) -> u64 {
    let id = |p: [i32; 2]| (p[1] as usize * stride + p[0] as usize) as u64;
    let (i, j) = (id(a), id(b));
    (i.min(j) << 32) | i.max(j)
}

/// A triangle's queue entry. Non-negative `f32` bits order like the floats, so the heap
/// compares integers; the slot breaks ties deterministically. An entry is current while its
/// error is the slot's: a slot that changed is measured again, and in the rare case that it
/// gets the very same error the entry is simply a request to refine what the slot holds now.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Entry {
    pub error_bits: u32,
    pub tri: u32,
}

/// A conforming, counter-clockwise triangulation in grid coordinates to refine from.
pub(super) struct StartMesh {
    pub points: Vec<[i32; 2]>,
    pub triangles: Vec<[u32; 3]>,
}

/// The result of refinement, in grid coordinates.
pub(super) struct Refined {
    pub points: Vec<[i32; 2]>,
    pub triangles: Vec<[u32; 3]>,
    /// Largest error left among the triangles: at most the tolerance unless the cap stopped
    /// the insertion first.
    pub max_error: f32,
}

/// Triangles as vertex triples, counter-clockwise in grid coordinates (`orient > 0`), with
/// half-edge `3t + k` running from vertex `k` to vertex `k + 1` of triangle `t`.
pub(super) struct Refiner<'g> {
    heights: &'g [f32],
    stride: usize,
    points: Vec<[i32; 2]>,
    tris: Vec<[u32; 3]>,
    /// The opposite half-edge of each half-edge, or `NONE`.
    opposite: Vec<u32>,
    error: Vec<f32>,
    candidate: Vec<[i32; 2]>,
    /// Slots changed since they were last measured.
    pending: Vec<u32>,
    is_pending: Vec<bool>,
    /// Half-edges still to legalize, each facing `inserted`.
    flips: Vec<u32>,
    inserted: u32,
    queue: BinaryHeap<Entry>,
    tolerance: f32,
    /// Outline edges this tile shares with a neighbouring tile (key → half-edge): a point on
    /// one must be inserted on both sides at once, so the tile defers it.
    shared: HashMap<u64, u32>,
    deferred: Vec<Entry>,
}

impl<'g> Refiner<'g> {
    /// `start`'s triangles must cover only grid points of the `stride`-wide `heights` that
    /// may be meshed.
    pub fn new(heights: &'g [f32], stride: usize, start: StartMesh, tolerance: f32) -> Self {
        let StartMesh {
            points,
            triangles: tris,
        } = start;
        let opposite = link_half_edges(points.len(), &tris);
        let mut refiner = Self {
            heights,
            stride,
            points,
            opposite,
            error: Vec::new(),
            candidate: Vec::new(),
            pending: Vec::new(),
            is_pending: vec![false; tris.len()],
            flips: Vec::new(),
            inserted: NONE,
            queue: BinaryHeap::new(),
            tolerance,
            shared: HashMap::new(),
            deferred: Vec::new(),
            tris,
        };
        let measured: Vec<(f32, [i32; 2])> = refiner
            .tris
            .par_iter()
            .map(|t| refiner.measure(*t))
            .collect();
        (refiner.error, refiner.candidate) = measured.into_iter().unzip();
        let entries: Vec<Entry> = (0..refiner.tris.len() as u32)
            .filter(|&t| refiner.error[t as usize] > tolerance)
            .map(|t| refiner.entry(t))
            .collect();
        refiner.queue = BinaryHeap::from(entries);
        refiner
    }

    pub fn into_refined(self, max_error: f32) -> Refined {
        Refined {
            points: self.points,
            triangles: self.tris,
            max_error,
        }
    }

    /// Triangles now.
    pub fn len(&self) -> usize {
        self.tris.len()
    }

    /// The current entry with the largest error, stale entries dropped on the way.
    pub fn top(&mut self) -> Option<Entry> {
        while let Some(&top) = self.queue.peek() {
            if self.is_current(top) {
                return Some(top);
            }
            self.queue.pop();
        }
        None
    }

    /// The largest error of a triangle above tolerance, deferred ones included; 0 if none.
    pub fn top_error(&mut self) -> f32 {
        let queued = self.top().map_or(0.0, |e| f32::from_bits(e.error_bits));
        self.deferred
            .iter()
            .map(|e| f32::from_bits(e.error_bits))
            .fold(queued, f32::max)
    }

    /// The errors of the queued triangles above `theta`.
    pub fn errors_above(&self, theta: f32) -> impl Iterator<Item = f32> + '_ {
        self.queue
            .iter()
            .filter(|e| self.is_current(**e))
            .map(|e| f32::from_bits(e.error_bits))
            .filter(move |&e| e > theta)
    }

    /// Queued triangles whose error is above `theta`.
    pub fn count_above(&self, theta: f32) -> usize {
        self.errors_above(theta).count()
    }

    /// Inserts while the worst triangle is above `theta`, at most `budget` points. Points
    /// on a shared edge are set aside for [`Refiner::take_deferred`]. Returns the insertions.
    pub fn run_to(&mut self, theta: f32, budget: usize, cancel: &CancelToken) -> Result<usize> {
        let mut inserted = 0;
        while inserted < budget {
            let Some(top) = self.top() else { break };
            if f32::from_bits(top.error_bits) <= theta {
                break;
            }
            if self.shared_edge_of(top.tri).is_some() {
                self.queue.pop();
                self.deferred.push(top);
                continue;
            }
            self.insert_top();
            inserted += 1;
            if inserted.is_multiple_of(CANCEL_EVERY) {
                cancel.check()?;
            }
        }
        Ok(inserted)
    }

    /// Inserts the worst triangle's point, which must not lie on a shared edge.
    pub fn insert_top(&mut self) {
        if let Some(top) = self.queue.pop() {
            self.insert(top.tri);
            self.measure_pending();
        }
    }

    /// The deferred entries that are still current (a changed triangle was measured and
    /// queued again).
    pub fn take_deferred(&mut self) -> Vec<Entry> {
        let mut deferred = std::mem::take(&mut self.deferred);
        deferred.retain(|e| self.is_current(*e));
        deferred
    }

    /// Whether `entry` still describes its triangle.
    pub fn is_current(&self, entry: Entry) -> bool {
        self.error[entry.tri as usize].to_bits() == entry.error_bits
    }

    /// The grid point triangle `t` would insert.
    pub fn candidate_of(&self, t: u32) -> [i32; 2] {
        self.candidate[t as usize]
    }

    /// Puts a deferred triangle back in the queue (its point was not inserted).
    pub fn requeue(&mut self, entry: Entry) {
        if self.is_current(entry) {
            self.queue.push(entry);
        }
    }

    /// The key of the shared edge that the candidate of `t` lies on, if any.
    pub fn shared_edge_of(&self, t: u32) -> Option<u64> {
        if self.shared.is_empty() {
            return None;
        }
        let p = self.candidate[t as usize];
        let tv = self.tris[t as usize];
        (0..3).find_map(|k| {
            let (a, b) = (tv[k], tv[(k + 1) % 3]);
            let on = self.opposite[3 * t as usize + k] == NONE
                && orient(self.points[a as usize], self.points[b as usize], p) == 0;
            let key = self.edge_key(a, b);
            (on && self.shared.contains_key(&key)).then_some(key)
        })
    }

    /// Splits the shared edge `key` at `p` (a grid point on it) on this tile's side.
    pub fn split_shared(&mut self, key: u64, p: [i32; 2]) {
        let Some(e) = self.shared.remove(&key) else {
            debug_assert!(false, "edge {key} is not shared by this tile");
            return;
        };
        let (t, k) = (e / 3, e as usize % 3);
        let tv = self.tris[t as usize];
        let (a, b) = (tv[k], tv[(k + 1) % 3]);
        let n = self.points.len() as u32;
        self.points.push(p);
        self.inserted = n;
        let (first, second) = self.split_edge(t, k, n);
        let (ka, kb) = (self.edge_key(a, n), self.edge_key(n, b));
        self.shared.insert(ka, first);
        self.shared.insert(kb, second);
        while let Some(e) = self.flips.pop() {
            self.legalize(e);
        }
        self.measure_pending();
    }

    /// Marks which outline edges are shared with other tiles (keys from [`edge_key_of`]).
    pub fn share(&mut self, keys: &HashSet<u64>) {
        for e in 0..self.opposite.len() as u32 {
            if self.opposite[e as usize] == NONE {
                let (t, k) = (e / 3, e as usize % 3);
                let tv = self.tris[t as usize];
                let key = self.edge_key(tv[k], tv[(k + 1) % 3]);
                if keys.contains(&key) {
                    self.shared.insert(key, e);
                }
            }
        }
    }

    /// Keys of this tile's outline edges whose both ends satisfy `on_line`.
    pub fn outline_keys(&self, on_line: impl Fn([i32; 2], [i32; 2]) -> bool) -> Vec<u64> {
        (0..self.opposite.len())
            .filter(|&e| self.opposite[e] == NONE)
            .filter_map(|e| {
                let tv = self.tris[e / 3];
                let (a, b) = (tv[e % 3], tv[(e % 3 + 1) % 3]);
                on_line(self.points[a as usize], self.points[b as usize])
                    .then(|| self.edge_key(a, b))
            })
            .collect()
    }

    fn edge_key(&self, a: u32, b: u32) -> u64 {
        edge_key_of(
            self.points[a as usize],
            self.points[b as usize],
            self.stride,
        )
    }

    fn entry(&self, t: u32) -> Entry {
        Entry {
            error_bits: self.error[t as usize].to_bits(),
            tri: t,
        }
    }

    fn height(&self, p: [i32; 2]) -> f32 {
        self.heights[p[1] as usize * self.stride + p[0] as usize]
    }

    /// The worst vertical distance between the triangle's plane and the grid points it
    /// covers (closed triangle), and where it is. A worst point on a vertex counts as zero:
    /// only rounding can put it there, and it cannot be inserted again.
    fn measure(&self, t: [u32; 3]) -> (f32, [i32; 2]) {
        let [a, b, c] = t.map(|i| self.points[i as usize]);
        let (ha, hb, hc) = (self.height(a), self.height(b), self.height(c));
        let (e1, e2) = ([b[0] - a[0], b[1] - a[1]], [c[0] - a[0], c[1] - a[1]]);
        let det = (e1[0] as i64 * e2[1] as i64 - e1[1] as i64 * e2[0] as i64) as f32;
        let gx = ((hb - ha) * e2[1] as f32 - (hc - ha) * e1[1] as f32) / det;
        let gy = ((hc - ha) * e1[0] as f32 - (hb - ha) * e2[0] as f32) / det;
        let y0 = a[1].min(b[1]).min(c[1]);
        let y1 = a[1].max(b[1]).max(c[1]);
        let x0 = a[0].min(b[0]).min(c[0]);
        let x1 = a[0].max(b[0]).max(c[0]);
        let mut bounds = [
            EdgeBound::new(a, b, y0),
            EdgeBound::new(b, c, y0),
            EdgeBound::new(c, a, y0),
        ];
        let mut worst = 0.0f32;
        let mut at = a;
        for y in y0..=y1 {
            let (mut lo, mut hi) = (x0, x1);
            for bound in &mut bounds {
                bound.clip(&mut lo, &mut hi);
                bound.next_row();
            }
            if lo > hi {
                continue;
            }
            let row = &self.heights[y as usize * self.stride..][lo as usize..=hi as usize];
            let base = ha + gy * (y - a[1]) as f32 + gx * (lo - a[0]) as f32;
            let distance = |k: usize, h: f32| (h - (base + gx * k as f32)).abs();
            // A plain max first (vectorises); the position only when the row wins.
            let mut row_worst = 0.0f32;
            for (k, &h) in row.iter().enumerate() {
                let d = distance(k, h);
                if d > row_worst {
                    row_worst = d;
                }
            }
            if row_worst > worst {
                worst = row_worst;
                let k = row
                    .iter()
                    .enumerate()
                    .position(|(k, &h)| distance(k, h) == row_worst)
                    .unwrap_or(0);
                at = [lo + k as i32, y];
            }
        }
        if at == a || at == b || at == c {
            return (0.0, a);
        }
        (worst, at)
    }

    fn measure_pending(&mut self) {
        while let Some(t) = self.pending.pop() {
            let slot = t as usize;
            self.is_pending[slot] = false;
            let (error, candidate) = self.measure(self.tris[slot]);
            self.error[slot] = error;
            self.candidate[slot] = candidate;
            if error > self.tolerance {
                self.queue.push(self.entry(t));
            }
        }
    }

    /// Inserts triangle `t`'s candidate: inside it (three triangles), or on one of its
    /// edges (that edge and the triangle across it are split in two).
    fn insert(&mut self, t: u32) {
        let p = self.candidate[t as usize];
        let v = self.tris[t as usize].map(|i| self.points[i as usize]);
        let on_edge = (0..3).find(|&k| orient(v[k], v[(k + 1) % 3], p) == 0);
        let n = self.points.len() as u32;
        self.points.push(p);
        self.inserted = n;
        match on_edge {
            None => self.split_inside(t, n),
            Some(k) => {
                self.split_edge(t, k, n);
            }
        }
        while let Some(e) = self.flips.pop() {
            self.legalize(e);
        }
    }

    fn set(&mut self, t: u32, vertices: [u32; 3]) {
        let slot = t as usize;
        if slot == self.tris.len() {
            self.tris.push(vertices);
            self.opposite.extend([NONE; 3]);
            self.error.push(STALE);
            self.candidate.push([0, 0]);
            self.is_pending.push(false);
        } else {
            self.tris[slot] = vertices;
            // No entry matches until the slot is measured again.
            self.error[slot] = STALE;
        }
        if !self.is_pending[slot] {
            self.is_pending[slot] = true;
            self.pending.push(t);
        }
    }

    fn link(&mut self, e: u32, f: u32) {
        self.opposite[e as usize] = f;
        if f != NONE {
            self.opposite[f as usize] = e;
        } else if !self.shared.is_empty() {
            let tv = self.tris[e as usize / 3];
            let k = e as usize % 3;
            let key = self.edge_key(tv[k], tv[(k + 1) % 3]);
            if let Some(slot) = self.shared.get_mut(&key) {
                *slot = e;
            }
        }
    }

    fn split_inside(&mut self, t: u32, p: u32) {
        let [a, b, c] = self.tris[t as usize];
        let [hab, hbc, hca] = [0, 1, 2].map(|k| self.opposite[3 * t as usize + k]);
        let (t0, t1, t2) = (t, self.tris.len() as u32, self.tris.len() as u32 + 1);
        self.set(t0, [a, b, p]);
        self.set(t1, [b, c, p]);
        self.set(t2, [c, a, p]);
        self.link(3 * t0, hab);
        self.link(3 * t1, hbc);
        self.link(3 * t2, hca);
        self.link(3 * t0 + 1, 3 * t1 + 2);
        self.link(3 * t1 + 1, 3 * t2 + 2);
        self.link(3 * t2 + 1, 3 * t0 + 2);
        self.flips.extend([3 * t0, 3 * t1, 3 * t2]);
    }

    /// `p` lies on edge `k` (a→b) of `t`. Returns the half-edges a→p and p→b on `t`'s side.
    fn split_edge(&mut self, t: u32, k: usize, p: u32) -> (u32, u32) {
        let tv = self.tris[t as usize];
        let (a, b, c) = (tv[k], tv[(k + 1) % 3], tv[(k + 2) % 3]);
        let half = |k: usize| self.opposite[3 * t as usize + k % 3];
        let (hab, hbc, hca) = (half(k), half(k + 1), half(k + 2));
        let t0 = t;
        let t1 = self.tris.len() as u32;
        self.set(t0, [a, p, c]);
        self.set(t1, [p, b, c]);
        self.link(3 * t0 + 1, 3 * t1 + 2);
        self.link(3 * t0 + 2, hca);
        self.link(3 * t1 + 1, hbc);
        self.flips.extend([3 * t0 + 2, 3 * t1 + 1]);
        if hab == NONE {
            self.link(3 * t0, NONE);
            self.link(3 * t1, NONE);
            return (3 * t0, 3 * t1);
        }
        // The triangle across holds b→a as its edge j; d is its third vertex.
        let (u, j) = (hab / 3, hab as usize % 3);
        let d = self.tris[u as usize][(j + 2) % 3];
        let had = self.opposite[3 * u as usize + (j + 1) % 3];
        let hdb = self.opposite[3 * u as usize + (j + 2) % 3];
        let u0 = u;
        let u1 = self.tris.len() as u32;
        self.set(u0, [b, p, d]);
        self.set(u1, [p, a, d]);
        self.link(3 * t0, 3 * u1);
        self.link(3 * t1, 3 * u0);
        self.link(3 * u0 + 1, 3 * u1 + 2);
        self.link(3 * u0 + 2, hdb);
        self.link(3 * u1 + 1, had);
        self.flips.extend([3 * u0 + 2, 3 * u1 + 1]);
        (3 * t0, 3 * t1)
    }

    /// Lawson's flip for half-edge `e` (a→b) of triangle (a, b, c), `c` the new point: when
    /// the vertex `d` across it lies strictly inside the circumcircle and the quad is
    /// convex, the diagonal a–b becomes c–d and the two edges now facing `c` are checked.
    fn legalize(&mut self, e: u32) {
        let f = self.opposite[e as usize];
        if f == NONE {
            return;
        }
        let (t, k) = (e / 3, e as usize % 3);
        let (u, j) = (f / 3, f as usize % 3);
        let tv = self.tris[t as usize];
        let (a, b, c) = (tv[k], tv[(k + 1) % 3], tv[(k + 2) % 3]);
        if c != self.inserted {
            return; // the slot was re-triangulated by a flip after this edge was queued
        }
        let d = self.tris[u as usize][(j + 2) % 3];
        let [pa, pb, pc, pd] = [a, b, c, d].map(|i| self.points[i as usize]);
        if !in_circle(pa, pb, pc, pd) || orient(pa, pd, pc) <= 0 || orient(pd, pb, pc) <= 0 {
            return;
        }
        let hbc = self.opposite[3 * t as usize + (k + 1) % 3];
        let hca = self.opposite[3 * t as usize + (k + 2) % 3];
        let had = self.opposite[3 * u as usize + (j + 1) % 3];
        let hdb = self.opposite[3 * u as usize + (j + 2) % 3];
        self.set(t, [a, d, c]);
        self.set(u, [d, b, c]);
        self.link(3 * t, had);
        self.link(3 * t + 1, 3 * u + 2);
        self.link(3 * t + 2, hca);
        self.link(3 * u, hdb);
        self.link(3 * u + 1, hbc);
        self.flips.extend([3 * t, 3 * u]);
    }
}

/// One edge's limit on the columns of a row: `orient(p, q, (x, y)) ≥ 0`, i.e.
/// `dy·(x − px) ≤ dx·(y − py)`, a bound `px ± ⌊dx·(y − py) / |dy|⌋` stepped by adding.
/// All in `i32`: grid coordinates below 2^15 keep `dx·(y − py)` below 2^30.
#[derive(Clone, Copy)]
struct EdgeBound {
    /// Which side the edge bounds; a horizontal edge bounds no row inside the triangle.
    side: Side,
    px: i32,
    /// `⌊m / div⌋` and `m mod div` for the current row's `m = dx·(y − py)`.
    quotient: i32,
    remainder: i32,
    div: i32,
    step_quotient: i32,
    step_remainder: i32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Upper,
    Lower,
    Neither,
}

impl EdgeBound {
    #[inline]
    fn new(p: [i32; 2], q: [i32; 2], y0: i32) -> Self {
        let (dx, dy) = (q[0] - p[0], q[1] - p[1]);
        let div = dy.abs().max(1);
        let (quotient, remainder) = floor_div(dx * (y0 - p[1]), div);
        let (step_quotient, step_remainder) = floor_div(dx, div);
        Self {
            side: match dy.signum() {
                1 => Side::Upper,
                -1 => Side::Lower,
                _ => Side::Neither,
            },
            px: p[0],
            quotient,
            remainder,
            div,
            step_quotient,
            step_remainder,
        }
    }

    #[inline]
    fn clip(&self, lo: &mut i32, hi: &mut i32) {
        match self.side {
            Side::Upper => *hi = (*hi).min(self.px + self.quotient),
            Side::Lower => *lo = (*lo).max(self.px - self.quotient),
            Side::Neither => {}
        }
    }

    #[inline]
    fn next_row(&mut self) {
        self.quotient += self.step_quotient;
        self.remainder += self.step_remainder;
        if self.remainder >= self.div {
            self.quotient += 1;
            self.remainder -= self.div;
        }
    }
}

/// `(⌊n / d⌋, n mod d)` for `d > 0`; no division at all for the many edges with `d = 1`.
#[inline]
fn floor_div(n: i32, d: i32) -> (i32, i32) {
    if d == 1 {
        return (n, 0);
    }
    let (q, r) = (n / d, n % d);
    if r < 0 {
        (q - 1, r + d)
    } else {
        (q, r)
    }
}

/// Twice the signed area of (a, b, c); positive when counter-clockwise in grid coordinates.
pub(super) fn orient(a: [i32; 2], b: [i32; 2], c: [i32; 2]) -> i64 {
    (b[0] - a[0]) as i64 * (c[1] - a[1]) as i64 - (b[1] - a[1]) as i64 * (c[0] - a[0]) as i64
}

/// Whether `d` lies strictly inside the circumcircle of the counter-clockwise (a, b, c).
/// Exact: grid coordinates below 2^15 keep every product within `i64`.
fn in_circle(a: [i32; 2], b: [i32; 2], c: [i32; 2], d: [i32; 2]) -> bool {
    let rel = |p: [i32; 2]| {
        let (x, y) = ((p[0] - d[0]) as i64, (p[1] - d[1]) as i64);
        (x, y, x * x + y * y)
    };
    let (ax, ay, al) = rel(a);
    let (bx, by, bl) = rel(b);
    let (cx, cy, cl) = rel(c);
    ax * (by * cl - bl * cy) - ay * (bx * cl - bl * cx) + al * (bx * cy - by * cx) > 0
}

/// The opposite of every half-edge, found by sorting the undirected edges.
fn link_half_edges(vertex_count: usize, tris: &[[u32; 3]]) -> Vec<u32> {
    let key = |a: u32, b: u32| (a.min(b) as u64) * vertex_count as u64 + a.max(b) as u64;
    let mut edges: Vec<(u64, u32)> = tris
        .iter()
        .enumerate()
        .flat_map(|(t, v)| {
            (0..3).map(move |k| (key(v[k], v[(k + 1) % 3]), 3 * t as u32 + k as u32))
        })
        .collect();
    edges.par_sort_unstable();
    let mut opposite = vec![NONE; edges.len()];
    for pair in edges.windows(2) {
        if pair[0].0 == pair[1].0 {
            opposite[pair[0].1 as usize] = pair[1].1;
            opposite[pair[1].1 as usize] = pair[0].1;
        }
    }
    opposite
}
