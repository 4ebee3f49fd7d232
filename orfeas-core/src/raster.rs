//! Small raster helpers shared by masking and depth estimation: blur, distance transform,
//! robust normalisation. All are O(pixels) (blur: O(pixels · radius) for small sigma, O(pixels)
//! for large sigma) and never produce NaN for finite input.

/// Above this sigma a triple box blur replaces the exact kernel: its cost does not grow with
/// sigma, and three passes are within a few percent of a Gaussian.
const BOX_SIGMA: f32 = 3.0;

/// Gaussian blur of a `w × h` plane, edges clamped. `sigma <= 0` returns the input unchanged.
pub(crate) fn gaussian_blur(data: &[f32], w: usize, h: usize, sigma: f32) -> Vec<f32> {
    if sigma.is_nan() || sigma <= 0.0 || w == 0 || h == 0 || data.len() != w * h {
        return data.to_vec();
    }
    if sigma > BOX_SIGMA {
        // Three box passes of width `b` have variance 3(b² − 1)/12 = σ².
        let width = (4.0 * sigma * sigma + 1.0).sqrt();
        let radius = (((width - 1.0) / 2.0).round() as usize).max(1);
        let mut out = data.to_vec();
        for _ in 0..3 {
            out = box_blur(&out, w, h, radius);
        }
        return out;
    }
    let radius = (3.0 * sigma).ceil() as usize;
    let kernel: Vec<f32> = (0..=2 * radius)
        .map(|i| {
            let x = i as f32 - radius as f32;
            (-x * x / (2.0 * sigma * sigma)).exp()
        })
        .collect();
    let sum: f32 = kernel.iter().sum();
    let kernel: Vec<f32> = kernel.iter().map(|k| k / sum).collect();

    // Horizontal pass, row by row.
    let mut tmp = vec![0.0f32; w * h];
    for (src, dst) in data.chunks_exact(w).zip(tmp.chunks_exact_mut(w)) {
        for (x, out) in dst.iter_mut().enumerate() {
            let mut acc = 0.0;
            for (i, k) in kernel.iter().enumerate() {
                let sx = (x + i).saturating_sub(radius).min(w - 1);
                acc += k * src[sx];
            }
            *out = acc;
        }
    }
    // Vertical pass, accumulated a whole row at a time so memory is read in order.
    let mut out = vec![0.0f32; w * h];
    for (y, dst) in out.chunks_exact_mut(w).enumerate() {
        for (i, k) in kernel.iter().enumerate() {
            let sy = (y + i).saturating_sub(radius).min(h - 1);
            let src = &tmp[sy * w..(sy + 1) * w];
            for (o, s) in dst.iter_mut().zip(src) {
                *o += k * s;
            }
        }
    }
    out
}

/// Box blur (mean over a `(2r+1)²` window), edges clamped, running sums: O(pixels) whatever
/// the radius. Both passes walk memory in order (the vertical one keeps a row of column sums).
pub(crate) fn box_blur(data: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    if r == 0 || w == 0 || h == 0 || data.len() != w * h {
        return data.to_vec();
    }
    let norm = 1.0 / (2 * r + 1) as f32;
    let ri = r as isize;
    let clamp = |i: isize, n: usize| i.clamp(0, n as isize - 1) as usize;
    let mut tmp = vec![0.0f32; w * h];
    for (src, dst) in data.chunks_exact(w).zip(tmp.chunks_exact_mut(w)) {
        // f64 accumulator: a long running sum in f32 drifts.
        let mut acc: f64 = (-ri..=ri).map(|i| f64::from(src[clamp(i, w)])).sum();
        for (x, out) in dst.iter_mut().enumerate() {
            *out = acc as f32 * norm;
            let x = x as isize;
            acc += f64::from(src[clamp(x + ri + 1, w)]) - f64::from(src[clamp(x - ri, w)]);
        }
    }
    let mut out = vec![0.0f32; w * h];
    let mut acc = vec![0.0f64; w];
    for i in -ri..=ri {
        let row = &tmp[clamp(i, h) * w..][..w];
        acc.iter_mut()
            .zip(row)
            .for_each(|(a, v)| *a += f64::from(*v));
    }
    for (y, dst) in out.chunks_exact_mut(w).enumerate() {
        dst.iter_mut()
            .zip(&acc)
            .for_each(|(o, a)| *o = *a as f32 * norm);
        let y = y as isize;
        let add = &tmp[clamp(y + ri + 1, h) * w..][..w];
        let sub = &tmp[clamp(y - ri, h) * w..][..w];
        for ((a, p), m) in acc.iter_mut().zip(add).zip(sub) {
            *a += f64::from(*p) - f64::from(*m);
        }
    }
    out
}

/// Exact Euclidean distance (in pixels) from each pixel to the nearest pixel where `inside` is
/// false (Felzenszwalb–Huttenlocher, two separable 1-D passes). Outside pixels get 0. If every
/// pixel is inside, the distance is to the nearest pixel just beyond the image border.
pub(crate) fn distance_transform(inside: &[bool], w: usize, h: usize) -> Vec<f32> {
    if w == 0 || h == 0 {
        return Vec::new();
    }
    if inside.iter().all(|&b| b) {
        let mut out = Vec::with_capacity(w * h);
        for y in 0..h {
            for x in 0..w {
                out.push((x + 1).min(w - x).min(y + 1).min(h - y) as f32);
            }
        }
        return out;
    }
    const INF: f64 = 1e20;
    let mut grid: Vec<f64> = inside.iter().map(|&b| if b { INF } else { 0.0 }).collect();
    let n = w.max(h);
    let mut f = vec![0.0f64; n];
    let mut d = vec![0.0f64; n];
    let mut v = vec![0usize; n];
    let mut z = vec![0.0f64; n + 1];
    for x in 0..w {
        for y in 0..h {
            f[y] = grid[y * w + x];
        }
        edt_1d(&f[..h], &mut d[..h], &mut v, &mut z);
        for y in 0..h {
            grid[y * w + x] = d[y];
        }
    }
    for row in grid.chunks_exact_mut(w) {
        f[..w].copy_from_slice(row);
        edt_1d(&f[..w], &mut d[..w], &mut v, &mut z);
        row.copy_from_slice(&d[..w]);
    }
    grid.iter().map(|&sq| sq.sqrt() as f32).collect()
}

/// 1-D squared distance transform of a sampled function (lower envelope of parabolas).
fn edt_1d(f: &[f64], d: &mut [f64], v: &mut [usize], z: &mut [f64]) {
    let n = f.len();
    let mut k = 0usize;
    v[0] = 0;
    z[0] = f64::NEG_INFINITY;
    z[1] = f64::INFINITY;
    for q in 1..n {
        let qf = q as f64;
        let mut s;
        loop {
            let pf = v[k] as f64;
            s = ((f[q] + qf * qf) - (f[v[k]] + pf * pf)) / (2.0 * qf - 2.0 * pf);
            // z[0] is -inf, so this stops at k == 0 at the latest.
            if s <= z[k] && k > 0 {
                k -= 1;
            } else {
                break;
            }
        }
        k += 1;
        v[k] = q;
        z[k] = s;
        z[k + 1] = f64::INFINITY;
    }
    k = 0;
    for (q, out) in d.iter_mut().enumerate() {
        let qf = q as f64;
        while z[k + 1] < qf {
            k += 1;
        }
        let p = v[k];
        let diff = qf - p as f64;
        *out = diff * diff + f[p];
    }
}

/// Maps `data` to [0, 1] between the `lo_q`/`hi_q` quantiles of the values where `mask` is set
/// (clamping outside that range). Falls back to min–max when the quantiles coincide; a constant
/// input becomes all zeros.
pub(crate) fn normalize_robust(data: &mut [f32], mask: &[bool], lo_q: f32, hi_q: f32) {
    let mut vals: Vec<f32> = data
        .iter()
        .zip(mask)
        .filter(|(v, &m)| m && v.is_finite())
        .map(|(v, _)| *v)
        .collect();
    if vals.is_empty() {
        data.iter_mut().for_each(|v| *v = 0.0);
        return;
    }
    let n = vals.len();
    let idx = |q: f32| ((q * (n - 1) as f32).round() as usize).min(n - 1);
    let (lo_i, hi_i) = (idx(lo_q), idx(hi_q));
    let lo = *vals.select_nth_unstable_by(lo_i, f32::total_cmp).1;
    let hi = *vals.select_nth_unstable_by(hi_i, f32::total_cmp).1;
    let (lo, hi) = if hi - lo > 1e-6 {
        (lo, hi)
    } else {
        let min = vals.iter().copied().fold(f32::INFINITY, f32::min);
        let max = vals.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        (min, max)
    };
    normalize_range(data, f64::from(lo), f64::from(hi));
}

/// Plain min–max normalisation over `mask`, computed in f64 so 16-bit steps survive exactly.
pub(crate) fn normalize_min_max(data: &mut [f32], mask: &[bool]) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for (v, _) in data.iter().zip(mask).filter(|(v, &m)| m && v.is_finite()) {
        lo = lo.min(f64::from(*v));
        hi = hi.max(f64::from(*v));
    }
    normalize_range(data, lo, hi);
}

fn normalize_range(data: &mut [f32], lo: f64, hi: f64) {
    let span = hi - lo;
    if span.is_nan() || span <= 1e-12 || !lo.is_finite() {
        data.iter_mut().for_each(|v| *v = 0.0);
        return;
    }
    for v in data.iter_mut() {
        let t = (f64::from(*v) - lo) / span;
        *v = if t.is_finite() {
            t.clamp(0.0, 1.0) as f32
        } else {
            0.0
        };
    }
}

/// The mask as a plain `w × h` bit plane; a mask of the wrong size (hand-built) counts as full,
/// so estimators never index out of bounds.
pub(crate) fn mask_bits(mask: &crate::mask::Mask, w: usize, h: usize) -> Vec<bool> {
    if mask.data.len() == w * h && mask.width as usize == w && mask.height as usize == h {
        mask.data.clone()
    } else {
        vec![true; w * h]
    }
}

/// Checks that an image's buffers match its dimensions (they can be built by hand).
pub(crate) fn check_image(
    image: &crate::image::LoadedImage,
) -> crate::error::Result<(usize, usize)> {
    let (w, h) = (image.width as usize, image.height as usize);
    if image.luma.len() != w * h || image.rgba.len() != w * h * 4 {
        return Err(crate::error::OrfeasError::InvalidInput(format!(
            "{}: pixel buffers do not match {}x{}",
            image.name, image.width, image.height
        )));
    }
    Ok((w, h))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn blur_keeps_constants_and_mass() {
        let data = vec![0.25f32; 30 * 20];
        for sigma in [0.0, 1.0, 2.5, 8.0] {
            let out = gaussian_blur(&data, 30, 20, sigma);
            assert!(out.iter().all(|v| (v - 0.25).abs() < 1e-5), "sigma {sigma}");
        }
        let mut spike = vec![0.0f32; 41 * 41];
        spike[20 * 41 + 20] = 1.0;
        for sigma in [1.0, 6.0] {
            let out = gaussian_blur(&spike, 41, 41, sigma);
            let sum: f32 = out.iter().sum();
            assert!((sum - 1.0).abs() < 1e-3, "sigma {sigma}: {sum}");
            assert!((out[20 * 41 + 19] - out[20 * 41 + 21]).abs() < 1e-6);
        }
    }

    #[test]
    fn distance_transform_matches_brute_force() {
        let (w, h) = (23, 17);
        let inside: Vec<bool> = (0..w * h).map(|i| (i * 7919 % 13) != 0).collect();
        let d = distance_transform(&inside, w, h);
        for y in 0..h {
            for x in 0..w {
                let mut best = f32::INFINITY;
                for yy in 0..h {
                    for xx in 0..w {
                        if !inside[yy * w + xx] {
                            let dx = x as f32 - xx as f32;
                            let dy = y as f32 - yy as f32;
                            best = best.min((dx * dx + dy * dy).sqrt());
                        }
                    }
                }
                assert!(
                    (d[y * w + x] - best).abs() < 1e-4,
                    "({x},{y}) {} vs {best}",
                    d[y * w + x]
                );
            }
        }
    }

    #[test]
    fn full_mask_uses_the_image_border() {
        let d = distance_transform(&[true; 5 * 3], 5, 3);
        assert_eq!(d[0], 1.0);
        assert_eq!(d[5 + 2], 2.0);
    }

    #[test]
    fn normalisation_of_constants_is_zero() {
        let mut v = vec![3.0f32; 10];
        normalize_robust(&mut v, &[true; 10], 0.005, 0.995);
        assert!(v.iter().all(|&x| x == 0.0));
        let mut v = vec![1.0f32, 2.0, 3.0];
        normalize_min_max(&mut v, &[true; 3]);
        assert_eq!(v, vec![0.0, 0.5, 1.0]);
    }
}
