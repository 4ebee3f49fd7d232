//! The conditioning image exactly as the authors' `run.py` makes it for an image with real
//! alpha, followed by what `TSR.forward`'s `ImagePreprocessor` does to it.
//!
//! Every step follows the reference's arithmetic, because the model sees the 8-bit round trip
//! and a bilinear filter whose taps depend on the exact crop size: an off-by-one crop or a
//! rounding difference moves every token.
//!
//! 1. `resize_foreground`: the box of `alpha > 0`, cropped as numpy's `image[y1:y2, x1:x2]`
//!    with `y2`/`x2` the *last* foreground row/column (so that row and column are dropped), padded
//!    centred with zeros to a square, then to `int(size / ratio)` with zeros.
//! 2. The grey composite in float32, in numpy's order: `rgb * a + (1 - a) * 0.5` with
//!    `rgb = u8 / 255`, `a = alpha / 255`, then `(x * 255).astype(uint8)` (truncation).
//! 3. `np.array(image).astype(float32) / 255`, then `F.interpolate(bilinear, antialias=True,
//!    align_corners=False)` to `size × size`: PyTorch's separable antialiased filter (triangle
//!    kernel widened by the downscale factor, normalised taps, width pass then height pass).

use rayon::prelude::*;

use super::scene::CondImage;
use crate::error::{OrfeasError, Result};

/// The conditioning image for `rgba` (RGBA8, row-major, `width × height`) with `alpha` (one byte
/// per pixel: the image's own alpha, or an orfeas mask as 0/255) as the foreground.
///
/// `ratio` is run.py's `--foreground-ratio` ([`super::FOREGROUND_RATIO`]), in (0, 1]; `size` the
/// model's `cond_image_size`. ERR_NO_FOREGROUND when `alpha` has no non-zero pixel, or when the
/// reference's crop of it would be empty (the foreground is one pixel wide or tall: its last
/// row/column is dropped). The error's `name` is `image`: the caller knows the file name.
///
/// A foreground that touches the image border is cropped exactly as the reference crops it
/// (the box simply ends at the border): no error, the same conditioning image as run.py's
/// (checked on the fixture's `input_border.png`).
pub fn conditioning_image(
    rgba: &[u8],
    width: u32,
    height: u32,
    alpha: &[u8],
    ratio: f32,
    size: u32,
) -> Result<CondImage> {
    let (w, h) = (width as usize, height as usize);
    if rgba.len() != w * h * 4 || alpha.len() != w * h {
        return Err(OrfeasError::InvalidInput(format!(
            "conditioning image: {width}×{height} needs {} RGBA bytes and {} alpha bytes, got {} and {}",
            w * h * 4,
            w * h,
            rgba.len(),
            alpha.len()
        )));
    }
    if !(ratio > 0.0 && ratio <= 1.0) {
        return Err(OrfeasError::InvalidInput(format!(
            "foreground ratio {ratio} is outside (0, 1]"
        )));
    }
    if size == 0 {
        return Err(OrfeasError::InvalidInput(
            "conditioning image size 0".to_owned(),
        ));
    }
    let (x1, x2, y1, y2) = alpha_box(alpha, w).ok_or_else(|| OrfeasError::NoForeground {
        name: "image".to_owned(),
        detail: "the alpha channel (or mask) is empty: every pixel is transparent".to_owned(),
    })?;
    let (crop_w, crop_h) = (x2 - x1, y2 - y1);
    if crop_w == 0 || crop_h == 0 {
        return Err(OrfeasError::NoForeground {
            name: "image".to_owned(),
            detail: format!(
                "the foreground is {}×{} pixels; TripoSR's crop keeps {crop_w}×{crop_h} of it",
                crop_w + 1,
                crop_h + 1
            ),
        });
    }
    let square = crop_w.max(crop_h);
    let side = padded_side(square, ratio);
    // Offsets of the crop inside the final `side × side` canvas: centred in the square, the
    // square centred in the canvas (numpy's `(total - n) // 2` before, the rest after).
    let left = (square - crop_w) / 2 + (side - square) / 2;
    let top = (square - crop_h) / 2 + (side - square) / 2;
    let canvas = composite(rgba, alpha, w, (x1, y1, crop_w, crop_h), (left, top), side);
    let rgb = resize_antialiased(&canvas, side, size as usize);
    Ok(CondImage { size, rgb })
}

/// `(x_min, x_max, y_min, y_max)` of the pixels with `alpha > 0`, inclusive (numpy's
/// `np.where(alpha > 0)` minima and maxima); `None` when there are none.
fn alpha_box(alpha: &[u8], width: usize) -> Option<(usize, usize, usize, usize)> {
    let mut found: Option<(usize, usize, usize, usize)> = None;
    for (y, row) in alpha.chunks_exact(width.max(1)).enumerate() {
        let (Some(first), Some(last)) = (
            row.iter().position(|&a| a > 0),
            row.iter().rposition(|&a| a > 0),
        ) else {
            continue;
        };
        found = Some(match found {
            None => (first, last, y, y),
            Some((x1, x2, y1, _)) => (x1.min(first), x2.max(last), y1, y),
        });
    }
    found
}

/// `int(square / ratio)` as Python computes it for run.py's `--foreground-ratio`: the ratio is
/// a Python float (f64) there. `ratio` arrives as the f32 nearest to that decimal; its shortest
/// decimal form gives the f64 back (0.85f32 → "0.85" → 0.85f64), since `17 / 0.85` is 20.000…04
/// in f64 but 19.99… with 0.85f32 widened, which would pad one pixel less.
fn padded_side(square: usize, ratio: f32) -> usize {
    let ratio = format!("{ratio}")
        .parse::<f64>()
        .unwrap_or(f64::from(ratio));
    (square as f64 / ratio) as usize
}

/// The `side × side` RGB8 canvas: transparent (alpha 0, rgb 0) outside the crop, every pixel
/// composited on grey as run.py does it in float32 and truncated back to 8 bits.
fn composite(
    rgba: &[u8],
    alpha: &[u8],
    width: usize,
    (x1, y1, crop_w, crop_h): (usize, usize, usize, usize),
    (left, top): (usize, usize),
    side: usize,
) -> Vec<u8> {
    // Alpha 0 gives `0 * 0 + 1 * 0.5`, 127 after truncation: the padding's value.
    let background = to_u8(blend(0, 0));
    let mut canvas = vec![background; side * side * 3];
    canvas
        .par_chunks_mut(side * 3)
        .enumerate()
        .skip(top)
        .take(crop_h)
        .for_each(|(y, row)| {
            let src_y = y1 + y - top;
            for x in 0..crop_w {
                let src = src_y * width + x1 + x;
                let a = alpha[src];
                let dst = &mut row[(left + x) * 3..][..3];
                for (c, d) in dst.iter_mut().enumerate() {
                    *d = to_u8(blend(rgba[src * 4 + c], a));
                }
            }
        });
    canvas
}

/// `rgb * a + (1 - a) * 0.5` in float32, each operation rounded as numpy rounds it (no fused
/// multiply-add).
fn blend(value: u8, alpha: u8) -> f32 {
    let rgb = f32::from(value) / 255.0;
    let a = f32::from(alpha) / 255.0;
    rgb * a + (1.0 - a) * 0.5
}

/// `(x * 255.0).astype(np.uint8)`: truncation toward zero (x is in [0, 1]).
fn to_u8(x: f32) -> u8 {
    (x * 255.0) as u8
}

/// One output position's source taps: the first source index and the normalised weights.
struct Taps {
    first: usize,
    weights: Vec<f32>,
}

/// PyTorch's antialiased bilinear weights for one axis (`_compute_indices_min_size_weights_aa`
/// with the triangle filter), computed with the same float/double mix as its float kernel, so
/// the weights are bit-identical to PyTorch's.
fn aa_taps(input: usize, output: usize) -> Vec<Taps> {
    let scale = input as f32 / output as f32;
    let (support, invscale) = if scale >= 1.0 {
        (scale, (1.0 / f64::from(scale)) as f32)
    } else {
        (1.0, 1.0)
    };
    (0..output)
        .map(|i| {
            let center = (f64::from(scale) * (i as f64 + 0.5)) as f32;
            let first = ((f64::from(center - support) + 0.5) as i64).max(0) as usize;
            let end = ((f64::from(center + support) + 0.5) as i64).min(input as i64) as usize;
            let mut weights: Vec<f32> = (first..end)
                .map(|j| {
                    let x = ((f64::from(j as f32 - center) + 0.5) * f64::from(invscale)) as f32;
                    let x = x.abs();
                    if x < 1.0 {
                        1.0 - x
                    } else {
                        0.0
                    }
                })
                .collect();
            let total = weights.iter().fold(0.0f32, |acc, &w| acc + w);
            if total != 0.0 {
                weights.iter_mut().for_each(|w| *w /= total);
            }
            Taps { first, weights }
        })
        .collect()
}

/// `sum_j src[first + j] * w[j]`, left to right, the first term a plain product (PyTorch's
/// loop; its AVX2 build may fuse some of the multiply-adds, a difference of one ulp).
fn apply_taps(taps: &Taps, at: impl Fn(usize) -> f32) -> f32 {
    let mut terms = taps
        .weights
        .iter()
        .enumerate()
        .map(|(j, &w)| at(taps.first + j) * w);
    let first = terms.next().unwrap_or(0.0);
    terms.fold(first, |acc, t| acc + t)
}

/// `F.interpolate(x / 255, (size, size), mode="bilinear", antialias=True, align_corners=False)`
/// of a square RGB8 image, as HWC f32. Width first, then height, each skipped when its size
/// does not change (as PyTorch skips it).
fn resize_antialiased(canvas: &[u8], side: usize, size: usize) -> Vec<f32> {
    let pixels: Vec<f32> = canvas.iter().map(|&v| f32::from(v) / 255.0).collect();
    if side == size {
        return pixels;
    }
    let taps = aa_taps(side, size);
    // Width pass: side rows × size columns.
    let mut wide = vec![0f32; side * size * 3];
    wide.par_chunks_mut(size * 3)
        .zip(pixels.par_chunks(side * 3))
        .for_each(|(dst, src)| {
            for (o, t) in taps.iter().enumerate() {
                for c in 0..3 {
                    dst[o * 3 + c] = apply_taps(t, |x| src[x * 3 + c]);
                }
            }
        });
    // Height pass: size rows.
    let mut out = vec![0f32; size * size * 3];
    out.par_chunks_mut(size * 3)
        .zip(taps.par_iter())
        .for_each(|(dst, t)| {
            for (i, d) in dst.iter_mut().enumerate() {
                *d = apply_taps(t, |y| wide[y * size * 3 + i]);
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small RGBA test image. The expected values below are what run.py's steps (numpy
    /// `resize_foreground`, the float32 composite, `astype(uint8)`, Pillow) and the model's
    /// `F.interpolate(bilinear, antialias=True)` give for the same image, with torch 2.x on the
    /// CPU (computed once for this test).
    fn image(
        w: usize,
        h: usize,
        (x0, x1, y0, y1): (usize, usize, usize, usize),
        seed: usize,
    ) -> (Vec<u8>, Vec<u8>) {
        let mut rgba = Vec::with_capacity(w * h * 4);
        let mut alpha = Vec::with_capacity(w * h);
        for y in 0..h {
            for x in 0..w {
                let a = ((x * 40 + y * 25 + seed * 3) % 256).max(1) as u8;
                let a = if (x0..=x1).contains(&x) && (y0..=y1).contains(&y) {
                    a
                } else {
                    0
                };
                rgba.extend([
                    ((x * 37 + y * 11 + seed) % 256) as u8,
                    ((x * 5 + y * 53 + 7) % 256) as u8,
                    ((x * x + y * 3) % 256) as u8,
                    a,
                ]);
                alpha.push(a);
            }
        }
        (rgba, alpha)
    }

    fn assert_close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= 3e-7, "value {i}: {g} vs PyTorch {w}");
        }
    }

    /// run.py + ImagePreprocessor on an 8×6 image whose foreground touches every border:
    /// crop 7×5 (last row and column dropped), square 7, canvas `int(7 / 0.85)` = 8, then
    /// downsampled to 5 and upsampled to 11.
    #[test]
    fn matches_pytorch_downsampling_and_upsampling() {
        let (rgba, alpha) = image(8, 6, (0, 7, 0, 5), 5);
        let down = conditioning_image(&rgba, 8, 6, &alpha, 0.85, 5).expect("cond image");
        assert_eq!(down.size, 5);
        #[rustfmt::skip]
        let want = [
            0.47959, 0.4749959, 0.47368333, 0.4727273, 0.43446228, 0.4270945, 0.5092023, 0.39797238,
            0.3862745, 0.5922163, 0.36791447, 0.3606655, 0.5636687, 0.43897262, 0.43831632,
            0.4250809, 0.44854423, 0.39393938, 0.43734908, 0.3984938, 0.28553757, 0.5549807,
            0.36021549, 0.19636288, 0.669776, 0.35120904, 0.24166332, 0.5553773, 0.45793232,
            0.44830665, 0.38923797, 0.527399, 0.3253862, 0.4540003, 0.5582789, 0.22408618,
            0.6056305, 0.591088, 0.16414762, 0.5490318, 0.53714603, 0.38530624, 0.4862077,
            0.51782537, 0.46602052, 0.40894565, 0.6159504, 0.33285797, 0.48569357, 0.68828106,
            0.2620189, 0.56004, 0.64824504, 0.31766522, 0.5115953, 0.5751527, 0.42947903,
            0.4481284, 0.5458705, 0.4632799, 0.49803922, 0.49803922, 0.49803922, 0.49803925,
            0.49803925, 0.49803925, 0.49803922, 0.49803922, 0.49803922, 0.49803925, 0.49803925,
            0.49803925, 0.49803922, 0.49803922, 0.49803922,
        ];
        assert_close(&down.rgb, &want);
        let up = conditioning_image(&rgba, 8, 6, &alpha, 0.85, 11).expect("cond image");
        #[rustfmt::skip]
        let row5 = [
            0.38431373, 0.5176471, 0.35490197, 0.39010698, 0.52691627, 0.3120321, 0.41158646,
            0.5401961, 0.2617647, 0.45356506, 0.5562389, 0.2150624, 0.5262924, 0.57762927,
            0.17370766, 0.6205883, 0.6019608, 0.14019608, 0.65516937, 0.5955436, 0.19893058,
            0.5368093, 0.51853836, 0.45276293, 0.4906417, 0.533779, 0.43520498, 0.48297682,
            0.52468807, 0.45169342, 0.49803922, 0.49803922, 0.49803922,
        ];
        assert_close(&up.rgb[5 * 11 * 3..6 * 11 * 3], &row5);
    }

    /// Python divides by the f64 0.85 (`int(17 / 0.85)` is 20, `int(20 / 0.85)` 23); 0.85f32
    /// widened would give 19 for 17.
    #[test]
    fn ratio_padding_uses_python_s_double() {
        assert_eq!(padded_side(17, 0.85), 20);
        assert_eq!(padded_side(20, 0.85), 23);
        assert_eq!(padded_side(7, 1.0), 7);
    }

    #[test]
    fn no_foreground_and_bad_arguments_are_refused() {
        let (rgba, mut alpha) = image(8, 6, (0, 7, 0, 5), 5);
        let code = |r: Result<CondImage>| r.map(|_| ()).map_err(|e| e.code());
        assert_eq!(
            code(conditioning_image(&rgba, 8, 6, &alpha, 0.85, 0)),
            Err("ERR_INVALID_INPUT")
        );
        assert_eq!(
            code(conditioning_image(&rgba, 8, 6, &alpha, 1.5, 4)),
            Err("ERR_INVALID_INPUT")
        );
        assert_eq!(
            code(conditioning_image(&rgba, 8, 5, &alpha, 0.85, 4)),
            Err("ERR_INVALID_INPUT")
        );
        alpha.iter_mut().for_each(|a| *a = 0);
        assert_eq!(
            code(conditioning_image(&rgba, 8, 6, &alpha, 0.85, 4)),
            Err("ERR_NO_FOREGROUND")
        );
        // A one-pixel-wide column: the reference's crop drops its only column.
        for y in 1..5 {
            alpha[y * 8 + 3] = 255;
        }
        let err = conditioning_image(&rgba, 8, 6, &alpha, 0.85, 4).expect_err("1 px wide");
        assert_eq!(err.code(), "ERR_NO_FOREGROUND");
        assert!(err.to_string().contains("1×4"), "{err}");
        alpha[2 * 8 + 4] = 255;
        assert!(
            conditioning_image(&rgba, 8, 6, &alpha, 0.85, 4).is_ok(),
            "2 px wide works"
        );
        assert_eq!(
            code(conditioning_image(&[1, 2, 3, 255], 1, 1, &[255], 0.85, 4)),
            Err("ERR_NO_FOREGROUND")
        );
    }
}
