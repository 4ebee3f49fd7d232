//! Per-vertex adjacency in compressed rows, built by counting sort: the structure both the
//! solid builder (to find outlines) and the checker (to prove closure and manifoldness) need.
//! Linear time with small constants — sorting millions of packed edges cost ten times more.

/// For every vertex, the corners of the triangles around it: `(next, prev)` in winding order,
/// so the directed edges leaving `v` are `v → next` and the ones arriving are `prev → v`.
pub(crate) struct Corners {
    start: Vec<u32>,
    corners: Vec<[u32; 2]>,
}

impl Corners {
    /// Groups the corners of `triangles` by vertex. Indices must be `< vertex_count`.
    pub(crate) fn new(vertex_count: usize, triangles: &[[u32; 3]]) -> Self {
        let mut start = vec![0u32; vertex_count + 1];
        for t in triangles {
            for &v in t {
                start[v as usize + 1] += 1;
            }
        }
        for i in 0..vertex_count {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut corners = vec![[0u32; 2]; triangles.len() * 3];
        for &[a, b, c] in triangles {
            for (v, next, prev) in [(a, b, c), (b, c, a), (c, a, b)] {
                let slot = &mut fill[v as usize];
                corners[*slot as usize] = [next, prev];
                *slot += 1;
            }
        }
        Self { start, corners }
    }

    /// Corners around `v`.
    pub(crate) fn around(&self, v: u32) -> &[[u32; 2]] {
        &self.corners[self.start[v as usize] as usize..self.start[v as usize + 1] as usize]
    }

    /// How many triangles hold the directed edge `a → b`.
    pub(crate) fn edge_count(&self, a: u32, b: u32) -> usize {
        self.around(a).iter().filter(|c| c[0] == b).count()
    }

    /// Every directed edge `a → b` of the triangles whose opposite `b → a` is missing, in
    /// vertex order: the outlines of an open surface.
    pub(crate) fn open_edges(&self) -> Vec<(u32, u32)> {
        let n = self.start.len() - 1;
        (0..n as u32)
            .flat_map(|a| self.around(a).iter().map(move |c| (a, c[0])))
            .filter(|&(a, b)| self.edge_count(b, a) == 0)
            .collect()
    }

    /// Whether the triangles around `v` form more than one fan (a pinch); a vertex no
    /// triangle uses is not pinched.
    pub(crate) fn is_pinched(&self, v: u32) -> bool {
        let fan = self.around(v);
        let Some(&[first_next, first_prev]) = fan.first() else {
            return false;
        };
        // Walk next → next from the first corner until the walk closes or breaks.
        let mut seen = 1;
        let mut at = first_next;
        while at != first_prev && seen <= fan.len() {
            match fan.iter().find(|c| c[1] == at) {
                Some(c) => {
                    at = c[0];
                    seen += 1;
                }
                None => break,
            }
        }
        // A closed fan visits every corner; an open one (a boundary vertex) is fine only if
        // walking backwards from the first corner covers the rest.
        if at == first_prev && seen == fan.len() {
            return false;
        }
        let mut back = first_prev;
        let mut seen_back = 0;
        while let Some(c) = fan.iter().find(|c| c[0] == back) {
            back = c[1];
            seen_back += 1;
            if seen_back > fan.len() {
                break;
            }
        }
        seen + seen_back != fan.len()
    }
}
