//! `C (+)= A·B` in f32 for the CPU kernels, with `B` packed once and reused.
//!
//! Why not the `gemm` crate (which candle uses, and these kernels used before): it packs both
//! operands on every call, so a layer's weight was repacked on every forward and each
//! attention row block repacked its head's keys and values; and its f32 micro-kernel reached
//! ~60 % of this CPU's FMA peak on the model's shapes. Here the weights are packed at load, keys
//! and values once per head, and register-blocked micro-kernels chosen at run time (12 × 32 on
//! AVX-512, with 4 × 32 for the last rows; 6 × 16 on AVX2 + FMA; a portable 6 × 16 otherwise)
//! stream `A` rows straight from memory: 10–25 % more GFLOP/s on the Small model's shapes on
//! the 2-core EPYC of docs/performance.md §3. AVX-512 doubles the lanes per instruction, and
//! PyTorch's oneDNN uses it where the CPU has it: with the AVX2 kernel alone, PyTorch was 1.75×
//! faster on the AVX-512 Xeon of the same section.
//!
//! Layout: `B` (`k × n`) is cut into panels of [`NR`] columns; a panel stores, for each of the
//! `k` rows, its `NR` values in one 64-byte-aligned line (one AVX-512 vector), zero-padded past
//! `n`. A pass over at most [`KC`] rows of a panel (or two) stays in L1–L2 while every row tile
//! of `A` runs over it.

use super::{isa, Isa};

/// Columns of `B` (and `C`) per micro-kernel call and per panel.
pub(crate) const NR: usize = 16;
/// Most depth per pass: a `KC × NR` panel slice is 24 KB, three quarters of L1. Deeper
/// products are cut into equal passes (576 → 2 × 288, not 384 + 192), since a short pass pays
/// the tile's load and store for little work.
const KC: usize = 384;

/// One packed row of a panel.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Line([f32; NR]);

/// `B` (`k × n`) packed into column panels. Reusable: packing again keeps the allocation.
#[derive(Clone, Default)]
pub(crate) struct PackedB {
    k: usize,
    n: usize,
    /// Panel `j` row `p` at `lines[j · k + p]`.
    lines: Vec<Line>,
}

/// The shape only: a model's `Debug` output must not list millions of weights.
impl std::fmt::Debug for PackedB {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedB[{} × {}]", self.k, self.n)
    }
}

impl PackedB {
    /// Sizes the panels for `k × n`. Callers overwrite every value of `B`; only the padding
    /// lanes past `n` are cleared here (clearing everything would be a pass of its own).
    pub fn reset(&mut self, k: usize, n: usize) {
        self.k = k;
        self.n = n;
        self.lines.resize(n.div_ceil(NR) * k, Line([0.0; NR]));
        if !n.is_multiple_of(NR) {
            for line in &mut self.lines[(n / NR) * k..] {
                line.0[n % NR..].fill(0.0);
            }
        }
    }

    /// `B[p][first..first + values.len()] = values` (after [`reset`](Self::reset)).
    pub fn write_row(&mut self, p: usize, first: usize, values: &[f32]) {
        debug_assert!(
            p < self.k && first + values.len() <= self.n,
            "row {p}, columns {first}+{} of {}×{}",
            values.len(),
            self.k,
            self.n
        );
        let (mut j, mut values) = (first, values);
        while !values.is_empty() {
            let (panel, lane) = (j / NR, j % NR);
            let take = (NR - lane).min(values.len());
            let line = &mut self.lines[panel * self.k + p].0;
            match <&[f32; NR]>::try_from(&values[..take]) {
                Ok(full) => *line = *full,
                Err(_) => line[lane..lane + take].copy_from_slice(&values[..take]),
            }
            j += take;
            values = &values[take..];
        }
    }

    /// `B[p][j] = src[p · ld + j]` (B stored row by row).
    pub fn pack_rows(&mut self, k: usize, n: usize, src: &[f32], ld: usize) {
        self.reset(k, n);
        for (panel, lines) in self
            .lines
            .chunks_exact_mut(k.max(1))
            .enumerate()
            .take(n.div_ceil(NR))
        {
            let (first, width) = (panel * NR, NR.min(n - panel * NR));
            for (p, line) in lines.iter_mut().enumerate() {
                let values = &src[p * ld + first..p * ld + first + width];
                match <&[f32; NR]>::try_from(values) {
                    // A fixed-size copy is a few vector moves, not a `memcpy` call per line.
                    Ok(full) => line.0 = *full,
                    Err(_) => line.0[..width].copy_from_slice(values),
                }
            }
        }
    }

    /// `B[p][j] = src[j · ld + p]` (B stored column by column: `Wᵀ` of a `[n, k]` weight, `Kᵀ`
    /// of the keys).
    pub fn pack_columns(&mut self, k: usize, n: usize, src: &[f32], ld: usize) {
        self.reset(k, n);
        for (panel, lines) in self
            .lines
            .chunks_exact_mut(k.max(1))
            .enumerate()
            .take(n.div_ceil(NR))
        {
            for j in 0..NR.min(n - panel * NR) {
                let column = &src[(panel * NR + j) * ld..][..k];
                for (line, &v) in lines.iter_mut().zip(column) {
                    line.0[j] = v;
                }
            }
        }
    }

    pub fn k(&self) -> usize {
        self.k
    }

    pub fn n(&self) -> usize {
        self.n
    }

    /// `Bᵀ` as `[n, k]` row-major values (the layout the weight was packed from).
    pub fn transposed(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.n * self.k];
        for (j, row) in out.chunks_exact_mut(self.k.max(1)).enumerate().take(self.n) {
            for (p, v) in row.iter_mut().enumerate() {
                *v = self.lines[j / NR * self.k + p].0[j % NR];
            }
        }
        out
    }
}

/// A micro-kernel: `C[R × P·NR] (+)= Σ_p A[r][p] · B[p]` over `kc` rows of `P` adjacent panels
/// (panel `q` at `b + q · panel_stride`), `A` row `r` at `a[r]`, `C` row `r` at `c + r · ldc`;
/// `load` adds to `C` instead of overwriting. `P` is the kernel's own; the driver knows it.
type Kernel<const R: usize> =
    unsafe fn(usize, &[*const f32; R], *const f32, usize, *mut f32, usize, bool);

/// The register tiles of one instruction set: `R` rows by `panels` panels, and a one-panel
/// kernel of the same height for a last, odd panel.
struct Kernels<const R: usize> {
    panels: usize,
    wide: Kernel<R>,
    narrow: Kernel<R>,
}

/// `C[m × n] (+)= A[m × k] · B` on the calling thread (callers parallelise over row blocks or
/// over independent products). Row `i` of `A` is the `k` values at `a + i · lda`; row `i` of
/// `C` the `n` values at `c + i · ldc`. `accumulate` adds to `C`, else `C` is overwritten.
///
/// # Safety
/// `a + i · lda .. + k` must be readable and `c + i · ldc .. + n` writable (and not read or
/// written by anyone else meanwhile) for every `i < m`.
pub(crate) unsafe fn gemm(
    m: usize,
    a: *const f32,
    lda: usize,
    b: &PackedB,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    match isa() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            // Whole 12-row tiles, then the rest in 4-row tiles: a 64-channel convolution
            // computes 64 rows, not 72, and a last block of 2 tokens 4, not 12.
            let tall = Kernels {
                panels: 2,
                wide: avx512::kernel::<12, 2>,
                narrow: avx512::kernel::<12, 1>,
            };
            let short = Kernels {
                panels: 2,
                wide: avx512::kernel::<4, 2>,
                narrow: avx512::kernel::<4, 1>,
            };
            let whole = m / 12 * 12;
            drive(&tall, whole, a, lda, b, c, ldc, accumulate);
            drive(
                &short,
                m - whole,
                a.wrapping_add(whole * lda),
                lda,
                b,
                c.wrapping_add(whole * ldc),
                ldc,
                accumulate,
            )
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => drive(
            &Kernels {
                panels: 1,
                wide: avx2::kernel,
                narrow: avx2::kernel,
            },
            m,
            a,
            lda,
            b,
            c,
            ldc,
            accumulate,
        ),
        _ => drive(
            &Kernels {
                panels: 1,
                wide: portable::kernel,
                narrow: portable::kernel,
            },
            m,
            a,
            lda,
            b,
            c,
            ldc,
            accumulate,
        ),
    }
}

/// Most panels a kernel covers at once (the edge tile's width).
const MAX_PANELS: usize = 2;

/// [`gemm`] with the given register tiles: depth passes of ≤ [`KC`], then panels (`kernels.panels`
/// at a time), then `R`-row tiles of `A`; edge tiles go through a zero-padded copy.
///
/// # Safety
/// As [`gemm`].
#[allow(clippy::too_many_arguments)]
unsafe fn drive<const R: usize>(
    kernels: &Kernels<R>,
    m: usize,
    a: *const f32,
    lda: usize,
    b: &PackedB,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    let (k, n) = (b.k, b.n);
    if k == 0 && !accumulate {
        for i in 0..m {
            // Raw writes: `C` may not have been written yet (an `Unfilled` output).
            std::ptr::write_bytes(c.add(i * ldc), 0, n);
        }
    }
    let panel_count = n.div_ceil(NR);
    let pass = k.div_ceil(k.div_ceil(KC).max(1)).max(1);
    for depth in (0..k).step_by(pass) {
        let kc = pass.min(k - depth);
        let load = accumulate || depth > 0;
        for panel in (0..panel_count).step_by(kernels.panels) {
            let (kernel, width) = if panel_count - panel >= kernels.panels {
                (kernels.wide, kernels.panels * NR)
            } else {
                (kernels.narrow, NR)
            };
            let columns = width.min(n - panel * NR);
            let lines = b.lines.as_ptr().add(panel * k + depth).cast::<f32>();
            for top in (0..m).step_by(R) {
                let rows = R.min(m - top);
                // Rows past `m` re-read the last row; their results are discarded below.
                let a_rows: [*const f32; R] =
                    std::array::from_fn(|r| a.add((top + r.min(rows - 1)) * lda + depth));
                let c_tile = c.add(top * ldc + panel * NR);
                if rows == R && columns == width {
                    kernel(kc, &a_rows, lines, k * NR, c_tile, ldc, load);
                    continue;
                }
                let mut tile = [[0f32; MAX_PANELS * NR]; R];
                if load {
                    for (r, tile) in tile.iter_mut().enumerate().take(rows) {
                        tile[..columns].copy_from_slice(std::slice::from_raw_parts(
                            c_tile.add(r * ldc),
                            columns,
                        ));
                    }
                }
                kernel(
                    kc,
                    &a_rows,
                    lines,
                    k * NR,
                    tile.as_mut_ptr().cast(),
                    MAX_PANELS * NR,
                    load,
                );
                for (r, tile) in tile.iter().enumerate().take(rows) {
                    // A raw copy: without `load`, `C` may not have been written yet.
                    std::ptr::copy_nonoverlapping(tile.as_ptr(), c_tile.add(r * ldc), columns);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::NR;

    /// `R × P·16`: one 16-lane vector per row and panel. 12 × 2 accumulators, 2 panel loads
    /// and 12 broadcasts per step leave 5 of the 32 vector registers; a row block of 72
    /// (linear) or 48 (attention) is a whole number of such tiles.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn kernel<const R: usize, const P: usize>(
        kc: usize,
        a: &[*const f32; R],
        b: *const f32,
        panel_stride: usize,
        c: *mut f32,
        ldc: usize,
        load: bool,
    ) {
        let mut acc = [[_mm512_setzero_ps(); P]; R];
        if load {
            for (r, acc) in acc.iter_mut().enumerate() {
                *acc = std::array::from_fn(|q| _mm512_loadu_ps(c.add(r * ldc + q * NR)));
            }
        }
        for p in 0..kc {
            let lines: [__m512; P] =
                std::array::from_fn(|q| _mm512_load_ps(b.add(q * panel_stride + p * NR)));
            for (acc, row) in acc.iter_mut().zip(a) {
                let x = _mm512_set1_ps(*row.add(p));
                for (acc, &line) in acc.iter_mut().zip(&lines) {
                    *acc = _mm512_fmadd_ps(x, line, *acc);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (q, &acc) in acc.iter().enumerate() {
                _mm512_storeu_ps(c.add(r * ldc + q * NR), acc);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::NR;

    pub(super) const ROWS: usize = 6;

    /// 12 accumulators (6 rows × 2 vectors of 8), 2 panel loads and 6 broadcasts per step.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn kernel(
        kc: usize,
        a: &[*const f32; ROWS],
        b: *const f32,
        _panel_stride: usize,
        c: *mut f32,
        ldc: usize,
        load: bool,
    ) {
        let mut acc = [[_mm256_setzero_ps(); 2]; ROWS];
        if load {
            for (r, acc) in acc.iter_mut().enumerate() {
                *acc = [
                    _mm256_loadu_ps(c.add(r * ldc)),
                    _mm256_loadu_ps(c.add(r * ldc + 8)),
                ];
            }
        }
        for p in 0..kc {
            let line = b.add(p * NR);
            let (b0, b1) = (_mm256_load_ps(line), _mm256_load_ps(line.add(8)));
            for (acc, row) in acc.iter_mut().zip(a) {
                let x = _mm256_broadcast_ss(&*row.add(p));
                acc[0] = _mm256_fmadd_ps(x, b0, acc[0]);
                acc[1] = _mm256_fmadd_ps(x, b1, acc[1]);
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            _mm256_storeu_ps(c.add(r * ldc), acc[0]);
            _mm256_storeu_ps(c.add(r * ldc + 8), acc[1]);
        }
    }
}

mod portable {
    use super::NR;

    pub(super) const ROWS: usize = 6;

    /// The AVX2 tile in plain Rust (vectorised by the compiler for the target's baseline SIMD).
    pub(super) unsafe fn kernel(
        kc: usize,
        a: &[*const f32; ROWS],
        b: *const f32,
        _panel_stride: usize,
        c: *mut f32,
        ldc: usize,
        load: bool,
    ) {
        let mut acc = [[0f32; NR]; ROWS];
        if load {
            for (r, acc) in acc.iter_mut().enumerate() {
                acc.copy_from_slice(std::slice::from_raw_parts(c.add(r * ldc), NR));
            }
        }
        for p in 0..kc {
            let line = &*b.add(p * NR).cast::<[f32; NR]>();
            for (acc, row) in acc.iter_mut().zip(a) {
                let x = *row.add(p);
                acc.iter_mut().zip(line).for_each(|(acc, &v)| *acc += x * v);
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            std::slice::from_raw_parts_mut(c.add(r * ldc), NR).copy_from_slice(acc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::with_isa_limit;
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k)
                    .map(|p| f64::from(a[i * k + p]) * f64::from(b[p * n + j]))
                    .sum();
                c[i * n + j] = if accumulate {
                    c[i * n + j] + dot as f32
                } else {
                    dot as f32
                };
            }
        }
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) as f32
                    / 8_388_608.0
                    - 1.0
            })
            .collect()
    }

    /// Edge tiles in both directions, several depth passes, both packings, overwrite and
    /// accumulate, on every micro-kernel this CPU has.
    #[test]
    fn matches_a_naive_product() {
        // One buffer for every shape: repacking must not leave stale values in padding lanes.
        let mut packed = PackedB::default();
        for limit in [Isa::Avx512, Isa::Avx2, Isa::Portable] {
            let isa = with_isa_limit(limit, isa);
            // Shapes around both tile heights (6, 12) and widths (16, 32), odd last panels.
            for (m, n, k) in [
                (13, 37, 2 * KC + 7),
                (6, 16, 5),
                (1, 1, 1),
                (20, 48, KC),
                (7, 21, 9),
                (24, 64, 33),
                (25, 80, 17),
                (12, 33, 3),
            ] {
                let (a, b) = (values(m * k, 1), values(k * n, 2));
                let b_columns: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
                for packing in ["rows", "columns", "row pieces"] {
                    let accumulate = packing != "rows";
                    match packing {
                        "rows" => packed.pack_rows(k, n, &b, n),
                        "columns" => packed.pack_columns(k, n, &b_columns, k),
                        _ => {
                            packed.reset(k, n);
                            for p in 0..k {
                                let (head, tail) = b[p * n..(p + 1) * n].split_at(n / 3);
                                packed.write_row(p, 0, head);
                                packed.write_row(p, n / 3, tail);
                            }
                        }
                    }
                    let start = values(m * n, 3);
                    let (mut want, mut got) = (start.clone(), start);
                    naive(m, n, k, &a, &b, &mut want, accumulate);
                    // SAFETY: `a` is m × k, `got` m × n, both row-major with those strides.
                    with_isa_limit(limit, || unsafe {
                        gemm(m, a.as_ptr(), k, &packed, got.as_mut_ptr(), n, accumulate)
                    });
                    let err = want
                        .iter()
                        .zip(&got)
                        .map(|(w, g)| (w - g).abs())
                        .fold(0f32, f32::max);
                    assert!(
                        err < 1e-4,
                        "{isa:?}, {m}×{n}×{k}, packed by {packing}: {err}"
                    );
                }
                assert_eq!(
                    packed.transposed(),
                    b_columns,
                    "transposed() gives back the packed matrix"
                );
                assert_eq!(format!("{packed:?}"), format!("PackedB[{k} × {n}]"));
            }
        }
    }

    #[test]
    fn an_empty_depth_clears_or_keeps_the_output() {
        let mut packed = PackedB::default();
        packed.pack_rows(0, 3, &[], 3);
        let mut c = vec![1f32; 6];
        // SAFETY: c is 2 × 3; A is never read with k = 0.
        unsafe { gemm(2, [0f32].as_ptr(), 0, &packed, c.as_mut_ptr(), 3, true) };
        assert_eq!(c, vec![1.0; 6]);
        unsafe { gemm(2, [0f32].as_ptr(), 0, &packed, c.as_mut_ptr(), 3, false) };
        assert_eq!(c, vec![0.0; 6]);
    }
}
