//! Union-find over vertex indices, and the connected pieces of a triangle list: what the
//! printability check and the analysis of any mesh both count.

/// Connected pieces of the triangles, and how many vertices they use.
pub(super) fn components(vertex_count: usize, triangles: &[[u32; 3]]) -> (usize, usize) {
    let mut sets = DisjointSets::new(vertex_count);
    let mut used = vec![false; vertex_count];
    for &[a, b, c] in triangles {
        sets.join(a, b);
        sets.join(b, c);
        for v in [a, b, c] {
            used[v as usize] = true;
        }
    }
    let pieces = (0..vertex_count as u32)
        .filter(|&v| used[v as usize] && sets.root(v) == v)
        .count();
    (pieces, used.iter().filter(|&&u| u).count())
}

/// Union-find with path halving.
pub(super) struct DisjointSets(Vec<u32>);

impl DisjointSets {
    pub(super) fn new(n: usize) -> Self {
        Self((0..n as u32).collect())
    }

    pub(super) fn root(&mut self, mut x: u32) -> u32 {
        while self.0[x as usize] != x {
            self.0[x as usize] = self.0[self.0[x as usize] as usize];
            x = self.0[x as usize];
        }
        x
    }

    pub(super) fn join(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.root(a), self.root(b));
        if ra != rb {
            self.0[ra as usize] = rb;
        }
    }
}
