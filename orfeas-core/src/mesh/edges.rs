//! Directed edges as sorted `u64` keys: the one structure both the solid builder (to find
//! outlines) and the checker (to prove closure) need. Sorting beats hashing here by a wide
//! margin for millions of edges.

/// `a → b` packed so that sorting groups edges by their start vertex.
pub(crate) fn key(a: u32, b: u32) -> u64 {
    (u64::from(a) << 32) | u64::from(b)
}

/// The same edge walked the other way.
pub(crate) fn reverse(k: u64) -> u64 {
    k.rotate_right(32)
}

/// `(start, end)` of a packed edge.
pub(crate) fn ends(k: u64) -> (u32, u32) {
    ((k >> 32) as u32, k as u32)
}

/// Every directed edge of every triangle, sorted (duplicates kept).
pub(crate) fn sorted_directed_edges(triangles: &[[u32; 3]]) -> Vec<u64> {
    let mut all: Vec<u64> = triangles.iter().flat_map(|&[a, b, c]| [key(a, b), key(b, c), key(c, a)]).collect();
    all.sort_unstable();
    all
}

/// Whether the sorted edge list holds the edge opposite to `k`.
pub(crate) fn has_opposite(sorted: &[u64], k: u64) -> bool {
    sorted.binary_search(&reverse(k)).is_ok()
}
