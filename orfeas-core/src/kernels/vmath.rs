//! `exp` and `erf` over slices, written so the compiler vectorises them: branch-free scalar
//! formulas, with the loops compiled again for AVX2 + FMA and for AVX-512 and chosen at run
//! time.
//!
//! Why: candle's CPU softmax and GELU call scalar libm (`expf`, an f64 `erf`) once per element;
//! at 518² that is 135 M exponentials for the attention of the ViT-S backbone alone and 25 M
//! error functions for its MLPs, about a tenth of the forward pass. The approximations are the
//! ones PyTorch's vectorised CPU kernels use (Cephes `expf`, within 2 ulp; Abramowitz–Stegun
//! 7.1.26 `erf`, within 1.5e-7 absolute), so results stay within float rounding of the reference.

/// Calls `$f` compiled for the widest instruction set [`isa`](super::isa) allows, else the
/// baseline build of the same body.
macro_rules! dispatch {
    ($f:ident($($arg:expr),*)) => {{
        match super::isa() {
            // SAFETY: `isa` found every feature `avx512::$f` is compiled for.
            #[cfg(target_arch = "x86_64")]
            super::Isa::Avx512 => unsafe { avx512::$f($($arg),*) },
            // SAFETY: `isa` found every feature `avx2::$f` is compiled for.
            #[cfg(target_arch = "x86_64")]
            super::Isa::Avx2 => unsafe { avx2::$f($($arg),*) },
            // SAFETY: the baseline build needs nothing beyond the target's default features.
            _ => unsafe { baseline::$f($($arg),*) },
        }
    }};
}

/// How `a · b + c` is computed: one fused instruction where the build has FMA (fewer
/// instructions, one rounding), else a multiply and an add (a fused call would be libm's slow
/// software `fmaf`).
trait MulAdd {
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
}

/// For the AVX2 and AVX-512 builds (both have FMA).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
struct Fused;

/// For the baseline build.
struct Separate;

impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

impl MulAdd for Separate {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// `exp(x)` for `x` in [-87.3, 88]: `x = n ln2 + r`, `|r| ≤ ln2 / 2`, `exp(r)` by Cephes'
/// polynomial and `2^n` built in the exponent bits. Smaller inputs give ~1e-38 instead of a
/// denormal or 0, which no sum of probabilities can tell apart.
#[inline(always)]
fn exp<M: MulAdd>(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 · 2²³: adding it rounds to the nearest integer and leaves that integer in the low
    // mantissa bits, so no float→int conversion (which does not vectorise well) is needed.
    const ROUND: f32 = 12_582_912.0;
    const P: [f32; 6] = [
        1.987_569_1e-4,
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ];
    let x = x.clamp(-87.3, 88.0);
    let shifted = M::mul_add(x, LOG2E, ROUND);
    let n = shifted - ROUND;
    let r = M::mul_add(-n, LN2_LO, M::mul_add(-n, LN2_HI, x));
    // Cephes' last coefficient is 5.0000001201e-1, which is 0.5 in f32.
    let p = P[1..].iter().fold(P[0], |p, &c| M::mul_add(p, r, c));
    let e = M::mul_add(p, r * r, r) + 1.0;
    let n_int = (shifted.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    e * f32::from_bits((n_int.wrapping_add(127) << 23) as u32)
}

/// `erf(x)`, Abramowitz–Stegun 7.1.26 (PyTorch's vectorised CPU `erf`).
#[inline(always)]
fn erf<M: MulAdd>(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        1.061_405_4,
        -1.453_152_1,
        1.421_413_8,
        -0.284_496_74,
        0.254_829_6,
    ];
    let a = x.abs();
    let t = 1.0 / M::mul_add(P, a, 1.0);
    let poly = A[1..].iter().fold(A[0], |p, &c| M::mul_add(p, t, c)) * t;
    let y = M::mul_add(-poly, exp::<M>(-a * a), 1.0);
    y.copysign(x)
}

/// Exact (erf) GELU, `0.5 x (1 + erf(x / √2))`.
#[inline(always)]
fn gelu<M: MulAdd>(x: f32) -> f32 {
    0.5 * x * (1.0 + erf::<M>(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// Replaces every value by `exp(v - max)` and returns the sum of the results: the numerator
/// and the denominator of a softmax row in one pass.
pub(crate) fn exp_shifted_sum(row: &mut [f32], max: f32) -> f32 {
    dispatch!(exp_shifted_sum_impl(row, max))
}

/// The largest value of `row` (-∞ when empty).
pub(crate) fn max(row: &[f32]) -> f32 {
    dispatch!(max_impl(row))
}

/// Applies the exact GELU in place.
pub(crate) fn gelu_in_place(values: &mut [f32]) {
    dispatch!(gelu_impl(values))
}

/// Applies SiLU, `x / (1 + exp(-x))` (PyTorch's vectorised CPU formula), in place: the NeRF
/// MLP's activation, 8.6 G evaluations for one R = 256 field.
pub(crate) fn silu_in_place(values: &mut [f32]) {
    dispatch!(silu_impl(values))
}

/// Partial sums/maxima per reduction.
const LANES: usize = 16;

/// The loop bodies, instantiated once per instruction set by [`kernels!`].
macro_rules! kernels {
    ($mul_add:ident $(, $attr:meta)?) => {
        use super::{$mul_add, LANES};

        // Sixteen independent partial sums/maxima: the compiler may not reorder a float
        // reduction itself; sixteen lanes are one AVX-512 register or two AVX ones.
        $(#[$attr])?
        pub(super) unsafe fn exp_shifted_sum_impl(row: &mut [f32], max: f32) -> f32 {
            let mut acc = [0f32; LANES];
            let mut chunks = row.chunks_exact_mut(LANES);
            for chunk in &mut chunks {
                for (v, a) in chunk.iter_mut().zip(&mut acc) {
                    *v = super::exp::<$mul_add>(*v - max);
                    *a += *v;
                }
            }
            // The last `len % 16` values (10 of a 1370-token row) as one more vector: a scalar
            // tail costs as much as a tenth of the row. The padding is never summed.
            let rest = chunks.into_remainder();
            let mut tail = [f32::NEG_INFINITY; LANES];
            tail[..rest.len()].copy_from_slice(rest);
            for v in &mut tail {
                *v = super::exp::<$mul_add>(*v - max);
            }
            rest.copy_from_slice(&tail[..rest.len()]);
            rest.iter().sum::<f32>() + acc.iter().sum::<f32>()
        }

        $(#[$attr])?
        pub(super) unsafe fn max_impl(row: &[f32]) -> f32 {
            let mut acc = [f32::NEG_INFINITY; LANES];
            let mut chunks = row.chunks_exact(LANES);
            for chunk in &mut chunks {
                for (v, a) in chunk.iter().zip(&mut acc) {
                    *a = if *v > *a { *v } else { *a };
                }
            }
            let rest = chunks.remainder().iter().fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
            acc.iter().fold(rest, |m, &v| if v > m { v } else { m })
        }

        $(#[$attr])?
        pub(super) unsafe fn gelu_impl(values: &mut [f32]) {
            for v in values {
                *v = super::gelu::<$mul_add>(*v);
            }
        }

        // `exp` clamps its argument, so `-x` beyond 88 gives `x / 1.7e38` (≈ -0) where libm's
        // infinity gives -0, and no NaN for any finite input.
        $(#[$attr])?
        pub(super) unsafe fn silu_impl(values: &mut [f32]) {
            for v in values {
                *v = *v / (1.0 + super::exp::<$mul_add>(-*v));
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code, unsafe_op_in_unsafe_fn)]
mod avx512 {
    kernels!(Fused, target_feature(enable = "avx512f,avx2,fma"));
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code, unsafe_op_in_unsafe_fn)]
mod avx2 {
    kernels!(Fused, target_feature(enable = "avx2,fma"));
}

#[allow(unsafe_code, clippy::missing_safety_doc)]
mod baseline {
    kernels!(Separate);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_a_few_ulp_of_libm() {
        for i in -8730..=8799 {
            let x = i as f32 * 0.01 + 0.003;
            for (got, want) in [(exp::<Separate>(x), x.exp()), (exp::<Fused>(x), x.exp())] {
                assert!(
                    ((got - want) / want).abs() < 3e-7,
                    "exp({x}) = {got}, libm {want}"
                );
            }
        }
    }

    #[test]
    fn erf_and_gelu_match_the_exact_functions() {
        for i in -600..=600 {
            let x = i as f32 * 0.01;
            let want = libm_erf(x as f64);
            let g = 0.5 * x as f64 * (1.0 + libm_erf(x as f64 / std::f64::consts::SQRT_2));
            for (erf, gelu) in [
                (erf::<Separate>(x), gelu::<Separate>(x)),
                (erf::<Fused>(x), gelu::<Fused>(x)),
            ] {
                // 1.5e-7 from the approximation plus f32 rounding of its terms.
                assert!(
                    (erf as f64 - want).abs() < 3e-7,
                    "erf({x}) = {erf}, exact {want}"
                );
                assert!(
                    (gelu as f64 - g).abs() < 1e-6 * (1.0 + g.abs()),
                    "gelu({x})"
                );
            }
        }
    }

    type Builds = (
        unsafe fn(&mut [f32], f32) -> f32,
        unsafe fn(&[f32]) -> f32,
        unsafe fn(&mut [f32]),
        unsafe fn(&mut [f32]),
    );

    /// The builds this CPU can run, the dispatched one first.
    fn builds() -> Vec<(&'static str, Builds)> {
        let dispatched: Builds = (
            |r, m| exp_shifted_sum(r, m),
            |r| max(r),
            |v| gelu_in_place(v),
            |v| silu_in_place(v),
        );
        let mut builds = vec![("dispatched", dispatched)];
        #[cfg(target_arch = "x86_64")]
        {
            use super::super::{isa, Isa};
            if isa() >= Isa::Avx512 {
                builds.push((
                    "avx512",
                    (
                        avx512::exp_shifted_sum_impl,
                        avx512::max_impl,
                        avx512::gelu_impl,
                        avx512::silu_impl,
                    ),
                ));
            }
            if isa() >= Isa::Avx2 {
                builds.push((
                    "avx2",
                    (
                        avx2::exp_shifted_sum_impl,
                        avx2::max_impl,
                        avx2::gelu_impl,
                        avx2::silu_impl,
                    ),
                ));
            }
        }
        builds.push((
            "baseline",
            (
                baseline::exp_shifted_sum_impl,
                baseline::max_impl,
                baseline::gelu_impl,
                baseline::silu_impl,
            ),
        ));
        builds
    }

    /// Every instruction-set build gives the same softmax numerator and sum as plain libm.
    #[test]
    fn slice_kernels_agree_with_scalar_code() {
        let row: Vec<f32> = (0..1373)
            .map(|i| ((i * 7919 % 2003) as f32 - 1000.0) * 0.013)
            .collect();
        let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let want: Vec<f64> = row.iter().map(|&v| ((v - m) as f64).exp()).collect();
        let want_sum: f64 = want.iter().sum();
        for (name, (exp_shifted_sum, max, gelu_in_place, silu_in_place)) in builds() {
            // SAFETY: `builds` lists only what this CPU supports.
            unsafe {
                assert_eq!(max(&row), m, "{name}");
                let mut ours = row.clone();
                let sum = exp_shifted_sum(&mut ours, m);
                assert!((sum as f64 - want_sum).abs() < 1e-5 * want_sum, "{name}");
                for (a, b) in ours.iter().zip(&want) {
                    assert!((*a as f64 - b).abs() < 1e-6 * (1.0 + b), "{name}");
                }
                let mut g = row.clone();
                gelu_in_place(&mut g);
                for (v, x) in g.iter().zip(&row) {
                    assert!(
                        (v - gelu::<Separate>(*x)).abs() <= 1e-6 * (1.0 + v.abs()),
                        "{name}"
                    );
                }
                let mut silu = row.clone();
                silu.extend([-200.0, -88.5, 88.5, 200.0]);
                silu_in_place(&mut silu);
                for (v, x) in silu
                    .iter()
                    .zip(row.iter().chain(&[-200.0, -88.5, 88.5, 200.0]))
                {
                    let want = f64::from(*x) / (1.0 + (-f64::from(*x)).exp());
                    assert!(
                        (f64::from(*v) - want).abs() <= 1e-6 * (1.0 + want.abs()),
                        "{name}: silu({x}) = {v}, want {want}"
                    );
                }
                assert_eq!(max(&[]), f32::NEG_INFINITY, "{name}");
            }
        }
    }

    /// erf by its Taylor series (|x| < 3) or continued fraction, in f64: the test's own
    /// reference, independent of the approximation under test.
    fn libm_erf(x: f64) -> f64 {
        let a = x.abs();
        let r = if a < 3.0 {
            let (mut term, mut sum, mut n) = (a, a, 0.0);
            while term.abs() > 1e-17 {
                n += 1.0;
                term *= -a * a / n;
                sum += term / (2.0 * n + 1.0);
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            let mut f = 0.0;
            for k in (1..60).rev() {
                f = k as f64 / 2.0 / (a + f);
            }
            1.0 - (-a * a).exp() / std::f64::consts::PI.sqrt() / (a + f)
        };
        r.copysign(x)
    }
}
