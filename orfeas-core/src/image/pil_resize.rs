//! A bit-exact port of Pillow's `Image.resize` for 8-bit images (`src/libImaging/Resample.c`).
//!
//! BiRefNet's authors preprocess with torchvision `Resize((1024, 1024))` on a PIL RGB image, which
//! is Pillow's antialiased BILINEAR resize, and resize the predicted mask back with
//! `ToPILImage()(pred).resize(image.size)`, Pillow's default BICUBIC on a mode "L" image. Any
//! other resampler (ours, `image`'s, a float one) differs by one or two levels on many pixels,
//! and those differences reach the network's input and the mask's edges. So this module copies
//! Pillow's arithmetic rather than its idea:
//!
//! * coefficients per output index computed in `f64` exactly as `precompute_coeffs` does
//!   (support = filter support × max(scale, 1), window bounds rounded by `(int)(v + 0.5)` and
//!   clamped, weights normalised by their sum), then turned into 22-bit fixed point by
//!   `normalize_coeffs_8bpc` (round half away from zero, truncating cast);
//! * two separable passes with an **8-bit intermediate image**, each pixel accumulated in `i32`
//!   starting at `1 << 21` and clipped with `clip8` (`>> 22`, clamp to 0..=255);
//! * a pass is skipped when its axis keeps its size, an unchanged size returns a copy;
//! * the pass order of Pillow 13 ([`PassOrder::Pillow13`]): vertical first when the height shrinks
//!   by more than twice as many pixels as the width does, horizontal first otherwise. Because the
//!   intermediate is 8-bit, the order changes output values; older Pillow releases order the
//!   passes differently (see [`PassOrder`]).
//!
//! Pillow's cropped horizontal pass (only the rows the vertical pass reads are resampled) is kept:
//! it changes no value, only work.
//!
//! Not ported: the `box` and `reducing_gap` arguments (torchvision passes neither), NEAREST, the
//! MKS filters, 16/32-bit modes, and the premultiplied-alpha round trip Pillow does for "LA" and
//! "RGBA" (`convert("La"/"RGBa")` first). Bands are resampled independently, so 1 (L), 3 (RGB;
//! Pillow stores it as 4-byte pixels but the math is per band) and alpha-less 4-band modes (RGBX,
//! CMYK) match Pillow; a 2- or 4-channel image with alpha does **not** match `Image.resize`.
//!
//! Coefficients use plain `f64` multiply-adds with no fused multiply-add, which is what Pillow's
//! x86-64 wheels compute; a Pillow build that contracts to FMA (e.g. GCC on aarch64) can differ
//! in rare coefficients.

use rayon::prelude::*;

/// Pillow's fixed-point fraction bits for 8-bit data: 32 bits less 8 for the value and 2 for the
/// overshoot of filters with negative lobes.
const PRECISION_BITS: u32 = 32 - 8 - 2;
/// Accumulator start value: rounds the fixed-point sum to nearest in `clip8`.
const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// Pillow's resampling filters (`Image.Resampling`), less NEAREST and the MKS filters.
#[cfg_attr(not(test), allow(dead_code))] // the pipeline uses bilinear and bicubic; all are tested
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PilFilter {
    Box,
    Bilinear,
    Hamming,
    /// Pillow's default for `Image.resize` on every mode but "1" and "P".
    Bicubic,
    Lanczos,
}

impl PilFilter {
    fn support(self) -> f64 {
        match self {
            Self::Box => 0.5,
            Self::Bilinear | Self::Hamming => 1.0,
            Self::Bicubic => 2.0,
            Self::Lanczos => 3.0,
        }
    }

    /// The kernels of `Resample.c`, same operations in the same order.
    fn eval(self, x: f64) -> f64 {
        match self {
            Self::Box => {
                if x > -0.5 && x <= 0.5 {
                    1.0
                } else {
                    0.0
                }
            }
            Self::Bilinear => {
                let x = x.abs();
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
            Self::Hamming => {
                let x = x.abs();
                if x == 0.0 {
                    1.0
                } else if x >= 1.0 {
                    0.0
                } else {
                    let x = x * std::f64::consts::PI;
                    // Pillow writes `0.54f + 0.46f * cos(x)`: single-precision constants.
                    x.sin() / x * (f64::from(0.54f32) + f64::from(0.46f32) * x.cos())
                }
            }
            Self::Bicubic => {
                const A: f64 = -0.5;
                let x = x.abs();
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
            Self::Lanczos => {
                if (-3.0..3.0).contains(&x) {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
        }
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        return 1.0;
    }
    let x = x * std::f64::consts::PI;
    x.sin() / x
}

/// Which pass runs first. The intermediate image is 8-bit, so the order changes values.
#[cfg_attr(not(test), allow(dead_code))] // Pillow 12.3's order is only tested
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PassOrder {
    /// Pillow 13: vertical first iff `src_h - dst_h > 0 && src_h - dst_h > 2 * (src_w - dst_w)`.
    Pillow13,
    /// Pillow 12.3: vertical first iff `src_h > 100 * src_w && dst_h < src_h` (done in Python as two
    /// calls), horizontal first otherwise.
    Pillow12_3,
    /// Pillow 12.2 and older: always horizontal first.
    HorizontalFirst,
}

impl PassOrder {
    fn vertical_first(self, w: u32, h: u32, dst_w: u32, dst_h: u32) -> bool {
        let (w, h, dst_w, dst_h) = (
            i64::from(w),
            i64::from(h),
            i64::from(dst_w),
            i64::from(dst_h),
        );
        match self {
            Self::Pillow13 => h - dst_h > 0 && h - dst_h > (w - dst_w) * 2,
            Self::Pillow12_3 => h > w * 100 && dst_h < h,
            Self::HorizontalFirst => false,
        }
    }
}

/// Requests this port refuses (Pillow raises for them too, or could not represent them).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum PilResizeError {
    /// Pillow: "height and width must be > 0".
    #[error("resize target {width}x{height} has a zero side")]
    ZeroTarget { width: u32, height: u32 },
    #[error("{0} channels per pixel: Pillow's 8-bit modes have 1 to 4 bands")]
    Channels(usize),
    #[error("pixel buffer holds {actual} bytes, {expected} expected")]
    BufferLength { expected: usize, actual: usize },
    /// Pillow keeps sizes and coefficient-table lengths in C `int`.
    #[error("image or filter too large for Pillow's int sizes")]
    TooLarge,
}

/// Pillow's `Image.resize((dst_width, dst_height), filter)` on 8-bit interleaved pixels with
/// `channels` bands, row-major, no padding, with Pillow 13's pass order.
///
/// Zero-area targets are rejected as Pillow rejects them; an empty source with a non-empty target
/// gives zeros, as Pillow does (every weight sum is zero).
pub(crate) fn resize(
    src: &[u8],
    width: u32,
    height: u32,
    channels: usize,
    dst_width: u32,
    dst_height: u32,
    filter: PilFilter,
) -> Result<Vec<u8>, PilResizeError> {
    resize_with_order(
        src,
        width,
        height,
        channels,
        dst_width,
        dst_height,
        filter,
        PassOrder::Pillow13,
    )
}

/// [`resize`] with the pass order of a chosen Pillow release.
#[allow(clippy::too_many_arguments)]
pub(crate) fn resize_with_order(
    src: &[u8],
    width: u32,
    height: u32,
    channels: usize,
    dst_width: u32,
    dst_height: u32,
    filter: PilFilter,
    order: PassOrder,
) -> Result<Vec<u8>, PilResizeError> {
    if dst_width == 0 || dst_height == 0 {
        return Err(PilResizeError::ZeroTarget {
            width: dst_width,
            height: dst_height,
        });
    }
    if !(1..=4).contains(&channels) {
        return Err(PilResizeError::Channels(channels));
    }
    let int_max = i32::MAX as u32;
    if width > int_max || height > int_max || dst_width > int_max || dst_height > int_max {
        return Err(PilResizeError::TooLarge);
    }
    let expected = (width as usize)
        .checked_mul(height as usize)
        .and_then(|n| n.checked_mul(channels))
        .ok_or(PilResizeError::TooLarge)?;
    if src.len() != expected {
        return Err(PilResizeError::BufferLength {
            expected,
            actual: src.len(),
        });
    }
    (dst_width as usize)
        .checked_mul(dst_height as usize)
        .and_then(|n| n.checked_mul(channels))
        .ok_or(PilResizeError::TooLarge)?;

    // Image.py: same size and the default box: `self.copy()`.
    let need_horizontal = dst_width != width;
    let need_vertical = dst_height != height;
    if !need_horizontal && !need_vertical {
        return Ok(src.to_vec());
    }
    let img = Plane {
        data: std::borrow::Cow::Borrowed(src),
        width: width as usize,
        height: height as usize,
        channels,
    };
    let out = if order.vertical_first(width, height, dst_width, dst_height) {
        // `need_vertical` holds here: the height shrinks.
        let v = Coeffs::new(height, dst_height, filter)?;
        let tmp = vertical(&img, &v);
        if need_horizontal {
            let h = Coeffs::new(width, dst_width, filter)?;
            horizontal(&tmp, &h, 0, tmp.height)
        } else {
            tmp
        }
    } else {
        let mut v = Coeffs::new(height, dst_height, filter)?;
        let tmp = if need_horizontal {
            // Only the source rows the vertical pass will read are resampled.
            let first = v.bounds[0].0;
            let last = v.bounds.last().map_or(0, |&(min, len)| min + len);
            for b in &mut v.bounds {
                b.0 -= first;
            }
            let h = Coeffs::new(width, dst_width, filter)?;
            horizontal(&img, &h, first, last - first)
        } else {
            img
        };
        if need_vertical {
            vertical(&tmp, &v)
        } else {
            tmp
        }
    };
    Ok(out.data.into_owned())
}

/// torchvision's `ToPILImage` on a float map in [0, 1]: `(x * 255).astype(np.uint8)` (0.29) /
/// `x.mul(255).byte()` (older), both an `f32` product then a truncating cast.
///
/// Truncation, not rounding: 0.999999 gives 254 and only exactly 1.0 gives 255, so a sigmoid
/// output never quite reaches 255 unless it saturates in `f32`. In [0, 1] numpy, torch and this
/// agree bit for bit (checked against fixtures). Outside it the C cast is undefined and torch or
/// numpy wrap or give platform values (torch gives 1 for -1.0); Rust's `as` saturates (negative
/// and NaN to 0, above 255 to 255). Only valid for `f32` maps: for an `f16` prediction the
/// product is rounded to `f16` before the cast (0.999999 becomes 255), so convert the way the
/// model's output dtype dictates.
pub(crate) fn to_u8_truncating(values: &[f32]) -> Vec<u8> {
    values.iter().map(|&v| (v * 255.0) as u8).collect()
}

/// An interleaved 8-bit image, borrowed (the source) or owned (a pass's output).
struct Plane<'a> {
    data: std::borrow::Cow<'a, [u8]>,
    width: usize,
    height: usize,
    channels: usize,
}

/// Fixed-point filter weights for one axis: for output index `i`, `bounds[i] = (first input
/// index, tap count)` and its weights are `k[i * ksize..][..tap count]`.
struct Coeffs {
    bounds: Vec<(usize, usize)>,
    ksize: usize,
    k: Vec<i32>,
}

impl Coeffs {
    /// `precompute_coeffs` (with the default box `0..in_size`) then `normalize_coeffs_8bpc`.
    fn new(in_size: u32, out_size: u32, filter: PilFilter) -> Result<Self, PilResizeError> {
        // Pillow passes the box as C `float`: `(double)(in1 - in0) / outSize`.
        let in0 = 0.0f32;
        let in1 = in_size as f32;
        let scale = f64::from(in1 - in0) / f64::from(out_size);
        let filterscale = scale.max(1.0);
        let support = filter.support() * filterscale;
        // `(int)ceil(support) * 2 + 1`, and Pillow's `outSize * ksize * sizeof(double)` int check.
        let ksize_f = support.ceil() * 2.0 + 1.0;
        if ksize_f * f64::from(out_size) * 8.0 > f64::from(i32::MAX) {
            return Err(PilResizeError::TooLarge);
        }
        let ksize = ksize_f as usize;
        let out_size = out_size as usize;
        let in_size = in_size as i64;
        let mut bounds = Vec::with_capacity(out_size);
        let mut k = vec![0i32; out_size * ksize];
        let mut w = vec![0f64; ksize];
        let inv_filterscale = 1.0 / filterscale;
        for (xx, row) in k.chunks_exact_mut(ksize).enumerate() {
            let center = f64::from(in0) + (xx as f64 + 0.5) * scale;
            // `(int)(v + 0.5)`: truncation toward zero, then clamped.
            let xmin = ((center - support + 0.5) as i64).max(0);
            let xmax = ((center + support + 0.5) as i64).min(in_size);
            let taps = (xmax - xmin).max(0) as usize;
            let mut ww = 0.0;
            for (x, wx) in w[..taps].iter_mut().enumerate() {
                let t = filter.eval(((x as i64 + xmin) as f64 - center + 0.5) * inv_filterscale);
                *wx = t;
                ww += t;
            }
            if ww != 0.0 {
                for wx in &mut w[..taps] {
                    *wx /= ww;
                }
            }
            for (kx, &wx) in row.iter_mut().zip(&w[..taps]) {
                let fixed = wx * f64::from(1u32 << PRECISION_BITS);
                *kx = if wx < 0.0 {
                    (-0.5 + fixed) as i32
                } else {
                    (0.5 + fixed) as i32
                };
            }
            bounds.push((xmin as usize, taps));
        }
        Ok(Self { bounds, ksize, k })
    }

    fn taps(&self, i: usize) -> (usize, &[i32]) {
        let (min, len) = self.bounds[i];
        (min, &self.k[i * self.ksize..][..len])
    }
}

/// `clip8`: the fixed-point sum back to a byte (Pillow's lookup table covers -640..=639 after the
/// shift, i.e. every reachable sum, and clamps).
#[inline(always)]
fn clip8(ss: i32) -> u8 {
    (ss >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Rows below this many output bytes are not worth a rayon task each.
const ROWS_PER_TASK_BYTES: usize = 16 * 1024;

fn rows_per_task(row_bytes: usize) -> usize {
    (ROWS_PER_TASK_BYTES / row_bytes.max(1)).max(1)
}

/// `_ImagingResampleHorizontal_8bpc` on source rows `first..first + rows`.
fn horizontal(img: &Plane<'_>, c: &Coeffs, first: usize, rows: usize) -> Plane<'static> {
    let ch = img.channels;
    let out_w = c.bounds.len();
    let in_row = img.width * ch;
    let out_row = out_w * ch;
    let mut out = vec![0u8; out_row * rows];
    if out_row > 0 {
        let chunk = rows_per_task(out_row);
        out.par_chunks_mut(out_row * chunk)
            .enumerate()
            .for_each(|(t, block)| {
                for (r, line_out) in block.chunks_exact_mut(out_row).enumerate() {
                    let y = first + t * chunk + r;
                    let line_in = &img.data[y * in_row..][..in_row];
                    match ch {
                        1 => horizontal_row::<1>(line_in, line_out, c),
                        2 => horizontal_row::<2>(line_in, line_out, c),
                        3 => horizontal_row::<3>(line_in, line_out, c),
                        _ => horizontal_row::<4>(line_in, line_out, c),
                    }
                }
            });
    }
    Plane {
        data: out.into(),
        width: out_w,
        height: rows,
        channels: ch,
    }
}

#[inline(always)]
fn horizontal_row<const C: usize>(line_in: &[u8], line_out: &mut [u8], c: &Coeffs) {
    for (xx, px) in line_out.chunks_exact_mut(C).enumerate() {
        let (xmin, k) = c.taps(xx);
        let src = &line_in[xmin * C..][..k.len() * C];
        let mut ss = [HALF; C];
        for (s, &kx) in src.chunks_exact(C).zip(k) {
            for i in 0..C {
                // Wrapping like Pillow's C int (never reached for 8-bit data).
                ss[i] = ss[i].wrapping_add(i32::from(s[i]).wrapping_mul(kx));
            }
        }
        for i in 0..C {
            px[i] = clip8(ss[i]);
        }
    }
}

/// `_ImagingResampleVertical_8bpc`. Accumulates a whole output row at a
/// time (one tap row after another), which sums the same terms in the same order as Pillow's
/// per-pixel loop.
fn vertical(img: &Plane<'_>, c: &Coeffs) -> Plane<'static> {
    let row = img.width * img.channels;
    let out_h = c.bounds.len();
    let mut out = vec![0u8; row * out_h];
    if row > 0 {
        let chunk = rows_per_task(row);
        out.par_chunks_mut(row * chunk).enumerate().for_each_init(
            || vec![0i32; row],
            |acc, (t, block)| {
                for (r, line_out) in block.chunks_exact_mut(row).enumerate() {
                    let (ymin, k) = c.taps(t * chunk + r);
                    acc.fill(HALF);
                    for (y, &ky) in k.iter().enumerate() {
                        let line_in = &img.data[(ymin + y) * row..][..row];
                        for (a, &s) in acc.iter_mut().zip(line_in) {
                            *a = a.wrapping_add(i32::from(s).wrapping_mul(ky));
                        }
                    }
                    for (o, &a) in line_out.iter_mut().zip(acc.iter()) {
                        *o = clip8(a);
                    }
                }
            },
        );
    }
    Plane {
        data: out.into(),
        width: img.width,
        height: out_h,
        channels: img.channels,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pil_resize")
    }

    // The integer-only source patterns of `make_fixture.py`.
    fn noise(x: u32, y: u32, c: u32, seed: u32) -> u8 {
        let mut h = x
            .wrapping_mul(0x9E37_79B1)
            .wrapping_add(y.wrapping_mul(0x85EB_CA77))
            .wrapping_add(c.wrapping_mul(0xC2B2_AE3D))
            .wrapping_add(seed.wrapping_mul(0x27D4_EB2F));
        h ^= h >> 15;
        h = h.wrapping_mul(0x2C1B_3C6D);
        h ^= h >> 12;
        h = h.wrapping_mul(0x297A_2D39);
        h ^= h >> 15;
        (h & 255) as u8
    }

    fn smooth(x: u32, y: u32, c: u32, w: u32, h: u32) -> u32 {
        let gx = x * 255 / (w.max(2) - 1);
        let gy = y * 255 / (h.max(2) - 1);
        (gx * (3 - c % 3) + gy * (1 + c % 3)) / 4
    }

    fn source(pattern: &str, channels: usize, w: u32, h: u32) -> Vec<u8> {
        let mut v = Vec::with_capacity(w as usize * h as usize * channels);
        for y in 0..h {
            for x in 0..w {
                for c in 0..channels as u32 {
                    v.push(match pattern {
                        "noise" => noise(x, y, c, 1),
                        "smooth" => smooth(x, y, c, w, h) as u8,
                        "mixed" => {
                            ((smooth(x, y, c, w, h) * 3 + u32::from(noise(x, y, c, 2))) / 4) as u8
                        }
                        "checker" => {
                            if (x / 2 + y / 3 + c) % 2 == 1 {
                                255
                            } else {
                                0
                            }
                        }
                        other => panic!("unknown pattern {other}"),
                    });
                }
            }
        }
        v
    }

    fn filter(name: &str) -> PilFilter {
        match name {
            "box" => PilFilter::Box,
            "bilinear" => PilFilter::Bilinear,
            "hamming" => PilFilter::Hamming,
            "bicubic" => PilFilter::Bicubic,
            "lanczos" => PilFilter::Lanczos,
            other => panic!("unknown filter {other}"),
        }
    }

    /// Every case of `cases.txt`, byte for byte against Pillow 13.0.0.
    #[test]
    fn matches_pillow_fixtures() {
        let dir = fixture_dir();
        let cases = std::fs::read_to_string(dir.join("cases.txt")).unwrap();
        let mut n = 0;
        let mut failures = Vec::new();
        for line in cases
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [name, ch, sw, sh, dw, dh, filt, pattern, order] = f[..] else {
                panic!("bad case line {line}");
            };
            let ch: usize = ch.parse().unwrap();
            let [sw, sh, dw, dh]: [u32; 4] = [sw, sh, dw, dh].map(|s| s.parse().unwrap());
            let src = source(pattern, ch, sw, sh);
            let filt = filter(filt);
            let got = match order {
                "auto" => resize(&src, sw, sh, ch, dw, dh, filt).unwrap(),
                "hfirst" => {
                    resize_with_order(&src, sw, sh, ch, dw, dh, filt, PassOrder::HorizontalFirst)
                        .unwrap()
                }
                "vfirst" => {
                    // Two single-axis resizes, as the fixture composes them.
                    let tmp = resize(&src, sw, sh, ch, sw, dh, filt).unwrap();
                    resize(&tmp, sw, dh, ch, dw, dh, filt).unwrap()
                }
                other => panic!("unknown order {other}"),
            };
            let want = std::fs::read(dir.join(format!("{name}.bin"))).unwrap();
            assert_eq!(want.len(), got.len(), "{name}: length");
            let diff = want.iter().zip(&got).filter(|(a, b)| a != b).count();
            if diff != 0 {
                failures.push(format!("{name}: {diff} of {} bytes differ", want.len()));
            }
            n += 1;
        }
        assert!(n >= 20, "only {n} cases read");
        assert!(failures.is_empty(), "{failures:#?}");
    }

    /// The vertical-first cases of the fixtures really exercise the Pillow 13 rule: forcing the
    /// other order changes bytes.
    #[test]
    fn pass_order_matters_and_follows_pillow13() {
        assert!(PassOrder::Pillow13.vertical_first(100, 120, 90, 30));
        assert!(!PassOrder::Pillow13.vertical_first(4000, 3000, 1024, 1024));
        assert!(!PassOrder::Pillow13.vertical_first(3000, 4000, 1024, 1024));
        assert!(PassOrder::Pillow13.vertical_first(1000, 3000, 1024, 1024));
        assert!(!PassOrder::Pillow13.vertical_first(1024, 1024, 3000, 4000));
        assert!(PassOrder::Pillow12_3.vertical_first(1, 300, 3, 40));
        assert!(!PassOrder::Pillow12_3.vertical_first(100, 120, 90, 30));
        let src = source("mixed", 3, 100, 120);
        let a = resize(&src, 100, 120, 3, 90, 30, PilFilter::Bilinear).unwrap();
        let b = resize_with_order(
            &src,
            100,
            120,
            3,
            90,
            30,
            PilFilter::Bilinear,
            PassOrder::HorizontalFirst,
        )
        .unwrap();
        assert_ne!(a, b);
    }

    /// ToPILImage's byte for every value pair generated with torch and numpy.
    #[test]
    fn to_u8_matches_torchvision() {
        let text = std::fs::read_to_string(fixture_dir().join("to_u8.txt")).unwrap();
        let (mut vals, mut want) = (Vec::new(), Vec::new());
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (bits, byte) = line.split_once(' ').unwrap();
            vals.push(f32::from_bits(u32::from_str_radix(bits, 16).unwrap()));
            want.push(byte.parse::<u8>().unwrap());
        }
        assert!(vals.len() > 2000);
        assert_eq!(to_u8_truncating(&vals), want);
        assert_eq!(
            to_u8_truncating(&[0.0, 1.0, 0.999_999, -0.0]),
            [0, 255, 254, 0]
        );
        // Out of range: saturating (documented difference from torch/numpy's undefined cast).
        assert_eq!(to_u8_truncating(&[-1.0, 2.0, f32::NAN]), [0, 255, 0]);
    }

    #[test]
    fn rejects_bad_requests() {
        let px = [1u8, 2, 3, 4];
        assert_eq!(
            resize(&px, 2, 2, 1, 0, 3, PilFilter::Bicubic),
            Err(PilResizeError::ZeroTarget {
                width: 0,
                height: 3
            })
        );
        assert_eq!(
            resize(&px, 2, 2, 1, 3, 0, PilFilter::Bicubic),
            Err(PilResizeError::ZeroTarget {
                width: 3,
                height: 0
            })
        );
        assert_eq!(
            resize(&px, 2, 2, 0, 3, 3, PilFilter::Bicubic),
            Err(PilResizeError::Channels(0))
        );
        assert_eq!(
            resize(&px, 2, 2, 5, 3, 3, PilFilter::Bicubic),
            Err(PilResizeError::Channels(5))
        );
        assert_eq!(
            resize(&px, 2, 2, 3, 3, 3, PilFilter::Bicubic),
            Err(PilResizeError::BufferLength {
                expected: 12,
                actual: 4
            })
        );
        assert_eq!(
            resize(&px, 4, 1, 1, u32::MAX, 1, PilFilter::Bilinear),
            Err(PilResizeError::TooLarge)
        );
        // Pillow's coefficient-table int check: 2^28 outputs × 3 taps × 8 bytes overflows.
        assert_eq!(
            resize(&px, 4, 1, 1, 1 << 28, 1, PilFilter::Bilinear),
            Err(PilResizeError::TooLarge)
        );
    }

    #[test]
    fn single_pixels_and_empty_sources() {
        // A single pixel spreads unchanged (weights sum to one after normalisation).
        for f in [
            PilFilter::Box,
            PilFilter::Bilinear,
            PilFilter::Hamming,
            PilFilter::Bicubic,
            PilFilter::Lanczos,
        ] {
            let out = resize(&[10, 200, 77], 1, 1, 3, 7, 5, f).unwrap();
            assert_eq!(out, [10, 200, 77].repeat(35), "{f:?}");
            assert_eq!(resize(&[42], 1, 1, 1, 1, 1, f).unwrap(), [42]);
            // Down to one pixel of a constant image stays constant.
            assert_eq!(resize(&[9; 300], 20, 15, 1, 1, 1, f).unwrap(), [9]);
        }
        // Pillow gives zeros for an empty source (every weight sum is zero).
        assert_eq!(
            resize(&[], 0, 5, 1, 3, 2, PilFilter::Bicubic).unwrap(),
            [0; 6]
        );
        assert_eq!(
            resize(&[], 4, 0, 3, 2, 2, PilFilter::Bilinear).unwrap(),
            [0; 12]
        );
    }

    #[test]
    fn huge_scales() {
        // 1 → 100 000 columns and 100 000 → 1: finite supports, constant stays constant.
        assert_eq!(
            resize(&[200, 100], 1, 1, 2, 100_000, 1, PilFilter::Lanczos).unwrap(),
            [200, 100].repeat(100_000)
        );
        let wide = vec![77u8; 100_000];
        assert_eq!(
            resize(&wide, 100_000, 1, 1, 1, 1, PilFilter::Bicubic).unwrap(),
            [77]
        );
        // Saturation at both ends under the bicubic overshoot.
        let edge: Vec<u8> = (0..64).map(|x| if x < 32 { 0 } else { 255 }).collect();
        let up = resize(&edge, 64, 1, 1, 1000, 1, PilFilter::Bicubic).unwrap();
        assert_eq!((up[0], up[999]), (0, 255));
    }

    /// BiRefNet's sizes: a 4000×3000 photo to 1024², and a 1024² mask back up. Run with
    /// `cargo test --release -p orfeas-core pil_resize_timing -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing; run in release"]
    fn pil_resize_timing() {
        let src = source("mixed", 3, 4000, 3000);
        let mask = source("smooth", 1, 1024, 1024);
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let _ = resize(&src, 4000, 3000, 3, 1024, 1024, PilFilter::Bilinear).unwrap();
                let t = std::time::Instant::now();
                let reps = 10;
                for _ in 0..reps {
                    std::hint::black_box(resize(&src, 4000, 3000, 3, 1024, 1024, PilFilter::Bilinear).unwrap());
                }
                let down = t.elapsed() / reps;
                let t = std::time::Instant::now();
                for _ in 0..reps {
                    std::hint::black_box(resize(&mask, 1024, 1024, 1, 4000, 3000, PilFilter::Bicubic).unwrap());
                }
                let up = t.elapsed() / reps;
                eprintln!("{threads} thread(s): RGB 4000x3000 -> 1024² bilinear {down:?}; L 1024² -> 4000x3000 bicubic {up:?}");
            });
        }
    }
}
