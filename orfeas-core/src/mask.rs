//! Foreground mask.
//!
//! Three sources, tried in order:
//! 1. the alpha channel (`alpha >= 128`), when it leaves a plausible foreground (not almost
//!    nothing, and not almost everything: a nearly opaque alpha falls through to 2);
//! 2. the image border: when the border is a near-uniform backdrop (a product shot, a scan, a
//!    logo on white), everything reachable from the border through backdrop-coloured pixels is
//!    background;
//! 3. otherwise, and always for 16-bit gray height maps, the whole image ([`MaskSource::None`]): a photo with a busy background is
//!    better meshed whole than cut badly.
//!
//! Everything is O(pixels): one light blur, one flood fill, a few morphology and labelling passes.

use serde::Serialize;

use crate::image::LoadedImage;
use crate::raster::box_blur;

/// Where a mask came from; reported in job results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MaskSource {
    /// From the image's alpha channel.
    Alpha,
    /// Background estimated from the image border.
    Border,
    /// Background removed by the learned remover (BiRefNet).
    Birefnet,
    /// No foreground found: the whole image.
    None,
}

/// A per-pixel foreground mask, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Mask {
    pub width: u32,
    pub height: u32,
    pub data: Vec<bool>,
    pub source: MaskSource,
}

impl Mask {
    /// Every pixel is foreground.
    pub fn full(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            data: vec![true; width as usize * height as usize],
            source: MaskSource::None,
        }
    }

    /// Whether pixel `(x, y)` is foreground.
    pub fn get(&self, x: u32, y: u32) -> bool {
        self.data[y as usize * self.width as usize + x as usize]
    }

    /// Fraction of pixels that are foreground (0 for an empty mask).
    pub fn coverage(&self) -> f32 {
        if self.data.is_empty() {
            return 0.0;
        }
        self.data.iter().filter(|&&b| b).count() as f32 / self.data.len() as f32
    }
}

/// Alpha masks covering less than this fraction are treated as "no usable alpha".
const MIN_ALPHA_COVERAGE: f32 = 0.001;
/// Alpha masks covering more than this fraction are "nearly opaque": the border decides.
const MAX_ALPHA_COVERAGE: f32 = 0.97;
/// Border masks outside `[MIN_COVERAGE, MAX_COVERAGE]` fall back to the full image.
const MIN_COVERAGE: f32 = 0.01;
const MAX_COVERAGE: f32 = 0.97;
/// Share of border pixels that must be close to the backdrop colour for it to count as one.
const BORDER_UNIFORM_SHARE: f32 = 0.7;
/// "Close" for the uniformity test, in 8-bit RGB Euclidean units.
const BORDER_UNIFORM_DIST: f32 = 30.0;
/// Flood-fill tolerance bounds (same units); the actual value scales with the border's spread.
const FILL_TOL_MIN: f32 = 12.0;
const FILL_TOL_MAX: f32 = 48.0;
/// Components (and holes) smaller than this fraction of the image are noise.
const SPECK_FRACTION: f32 = 0.005;
/// Enclosed backdrop-coloured regions at least this large are real holes (a ring, the gap
/// between an arm and a body), not highlights on the object.
const ENCLOSED_HOLE_FRACTION: f32 = 0.01;

/// Estimates the foreground of `image`.
pub fn estimate_mask(image: &LoadedImage) -> Mask {
    let (w, h) = (image.width as usize, image.height as usize);
    if w == 0 || h == 0 || image.rgba.len() != w * h * 4 {
        return Mask::full(image.width, image.height);
    }
    if image.has_alpha {
        let data: Vec<bool> = image.rgba.chunks_exact(4).map(|p| p[3] >= 128).collect();
        let mask = Mask {
            width: image.width,
            height: image.height,
            data,
            source: MaskSource::Alpha,
        };
        let c = mask.coverage();
        // A nearly opaque alpha (a few stray transparent pixels, as in images that went through
        // an editor with a transparent corner) says nothing about the subject: the colours
        // decide, as for an opaque image. Were it used, the whole frame would be inflated.
        if (MIN_ALPHA_COVERAGE..=MAX_ALPHA_COVERAGE).contains(&c) {
            return mask;
        }
    }
    // A 16-bit gray image is a height map: every pixel is data, whatever its border looks like.
    if image.gray16 {
        return Mask::full(image.width, image.height);
    }
    estimate_border(image).unwrap_or_else(|| Mask::full(image.width, image.height))
}

/// The foreground left when the backdrop seen at the image border is taken away; `None` when
/// the border is no near-uniform backdrop or leaves an implausible share of the image.
pub fn estimate_border(image: &LoadedImage) -> Option<Mask> {
    let (w, h) = (image.width as usize, image.height as usize);
    if w == 0 || h == 0 || image.rgba.len() != w * h * 4 {
        return None;
    }
    let mask = Mask {
        width: image.width,
        height: image.height,
        data: border_mask(image, w, h)?,
        source: MaskSource::Border,
    };
    (MIN_COVERAGE..=MAX_COVERAGE)
        .contains(&mask.coverage())
        .then_some(mask)
}

/// Foreground from the border backdrop, or `None` when the border is not a uniform backdrop.
fn border_mask(image: &LoadedImage, w: usize, h: usize) -> Option<Vec<bool>> {
    // Too small to have a border distinct from the object.
    if w < 8 || h < 8 {
        return None;
    }
    let raw = |i: usize| {
        let p = &image.rgba[i * 4..i * 4 + 3];
        [f32::from(p[0]), f32::from(p[1]), f32::from(p[2])]
    };
    let band = if w.min(h) >= 32 { 2 } else { 1 };
    let border: Vec<usize> = border_indices(w, h, band);
    let backdrop = median_color(border.iter().map(|&i| raw(i)));
    // Distance of every pixel to the backdrop colour, and a lightly blurred (3×3 box) copy of
    // it: the blur bridges JPEG ringing and sensor noise, the raw value keeps the edge where it
    // is (the blur alone would smear the object one pixel outwards). One plane, not three.
    let raw_dist: Vec<f32> = (0..w * h).map(|i| dist(raw(i), backdrop)).collect();
    let soft_dist = box_blur(&raw_dist, w, h, 1);
    let mut dists: Vec<f32> = border.iter().map(|&i| soft_dist[i]).collect();
    let close = dists.iter().filter(|&&d| d <= BORDER_UNIFORM_DIST).count();
    if (close as f32) < BORDER_UNIFORM_SHARE * border.len() as f32 {
        return None;
    }
    // Tolerance from the spread of the border itself: the 90th percentile of its distances
    // among the close ones, times a safety factor.
    dists.retain(|&d| d <= BORDER_UNIFORM_DIST);
    let k = ((dists.len() as f32 * 0.9) as usize).min(dists.len().saturating_sub(1));
    let spread = *dists.select_nth_unstable_by(k, f32::total_cmp).1;
    let tol = (spread * 2.5 + 6.0).clamp(FILL_TOL_MIN, FILL_TOL_MAX);
    let like_backdrop: Vec<bool> = soft_dist
        .iter()
        .zip(&raw_dist)
        .map(|(&s, &r)| s <= tol || r <= tol)
        .collect();
    let background = fill_from_border(&like_backdrop, w, h);
    let mut fg: Vec<bool> = background.iter().map(|&b| !b).collect();

    // Large enclosed backdrop-coloured regions are holes in the object, not part of it.
    let enclosed: Vec<bool> = (0..w * h).map(|i| fg[i] && like_backdrop[i]).collect();
    let big_hole = ((w * h) as f32 * ENCLOSED_HOLE_FRACTION).ceil() as usize;
    if enclosed.contains(&true) {
        let (labels, comps) = components(&enclosed, w, h);
        relabel(&mut fg, &labels, &comps, |c| c.size >= big_hole, false);
    }

    let r = if w.min(h) >= 64 { 2 } else { 1 };
    fg = erode(&dilate(&fg, w, h, r), w, h, r); // close: bridge 1-px cracks
    fg = dilate(&erode(&fg, w, h, r), w, h, r); // open: drop hairs and thin noise
    let speck = ((w * h) as f32 * SPECK_FRACTION).ceil() as usize;
    let (labels, comps) = components(&fg, w, h);
    relabel(&mut fg, &labels, &comps, |c| c.size < speck, false);
    // Holes = background not reachable from the border; usually few pixels, so only those are
    // labelled (labelling the whole backdrop would be the slowest step).
    let not_fg: Vec<bool> = fg.iter().map(|&b| !b).collect();
    let outer = fill_from_border(&not_fg, w, h);
    let holes: Vec<bool> = not_fg.iter().zip(&outer).map(|(&n, &o)| n && !o).collect();
    if holes.contains(&true) {
        let (labels, comps) = components(&holes, w, h);
        relabel(&mut fg, &labels, &comps, |c| c.size < speck, true);
    }
    Some(fg)
}

/// Pixels reachable from the image edge through `passable` pixels (4-connected).
fn fill_from_border(passable: &[bool], w: usize, h: usize) -> Vec<bool> {
    let mut reached = vec![false; w * h];
    let mut stack: Vec<usize> = Vec::new();
    for i in border_indices(w, h, 1) {
        if passable[i] && !reached[i] {
            reached[i] = true;
            stack.push(i);
        }
    }
    while let Some(i) = stack.pop() {
        let x = i % w;
        let mut visit = |n: usize| {
            if passable[n] && !reached[n] {
                reached[n] = true;
                stack.push(n);
            }
        };
        if x > 0 {
            visit(i - 1);
        }
        if x + 1 < w {
            visit(i + 1);
        }
        if i >= w {
            visit(i - w);
        }
        if i + w < w * h {
            visit(i + w);
        }
    }
    reached
}

fn dist(a: [f32; 3], b: [f32; 3]) -> f32 {
    let (dr, dg, db) = (a[0] - b[0], a[1] - b[1], a[2] - b[2]);
    (dr * dr + dg * dg + db * db).sqrt()
}

/// Indices of the pixels within `band` of the image edge, each once.
fn border_indices(w: usize, h: usize, band: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(2 * band * (w + h));
    for y in 0..h {
        if y < band || y >= h - band {
            out.extend((0..w).map(|x| y * w + x));
        } else {
            out.extend((0..band).map(|x| y * w + x));
            out.extend((w - band..w).map(|x| y * w + x));
        }
    }
    out
}

/// Per-channel median: robust to an object that touches a stretch of the border.
fn median_color(colors: impl Iterator<Item = [f32; 3]>) -> [f32; 3] {
    let mut ch: [Vec<f32>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for c in colors {
        for k in 0..3 {
            ch[k].push(c[k]);
        }
    }
    let mut out = [0.0; 3];
    for k in 0..3 {
        let n = ch[k].len();
        if n > 0 {
            out[k] = *ch[k].select_nth_unstable_by(n / 2, f32::total_cmp).1;
        }
    }
    out
}

fn neighbours4(x: usize, y: usize, w: usize, h: usize) -> impl Iterator<Item = usize> {
    let i = y * w + x;
    [
        (x > 0).then(|| i - 1),
        (x + 1 < w).then(|| i + 1),
        (y > 0).then(|| i - w),
        (y + 1 < h).then(|| i + w),
    ]
    .into_iter()
    .flatten()
}

/// One connected component: its pixel count and whether it touches the image edge.
#[derive(Clone, Copy, Debug, Default)]
struct Component {
    size: usize,
    touches_border: bool,
}

/// Label value of pixels that are not in the set.
const NO_LABEL: u32 = u32::MAX;

/// 4-connected components of the set pixels: a label per pixel and the components' stats.
fn components(set: &[bool], w: usize, h: usize) -> (Vec<u32>, Vec<Component>) {
    let mut labels = vec![NO_LABEL; w * h];
    let mut comps = Vec::new();
    let mut stack = Vec::new();
    for start in 0..w * h {
        if !set[start] || labels[start] != NO_LABEL {
            continue;
        }
        let id = comps.len() as u32;
        let mut comp = Component::default();
        labels[start] = id;
        stack.push(start);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            comp.size += 1;
            comp.touches_border |= x == 0 || y == 0 || x == w - 1 || y == h - 1;
            for n in neighbours4(x, y, w, h) {
                if set[n] && labels[n] == NO_LABEL {
                    labels[n] = id;
                    stack.push(n);
                }
            }
        }
        comps.push(comp);
    }
    (labels, comps)
}

/// Sets `mask` to `value` on every pixel whose component satisfies `pick`.
fn relabel(
    mask: &mut [bool],
    labels: &[u32],
    comps: &[Component],
    pick: impl Fn(&Component) -> bool,
    value: bool,
) {
    let picked: Vec<bool> = comps.iter().map(pick).collect();
    if !picked.contains(&true) {
        return;
    }
    for (m, &l) in mask.iter_mut().zip(labels) {
        if l != NO_LABEL && picked[l as usize] {
            *m = value;
        }
    }
}

/// Square structuring element of radius `r`. Windows are cut at the image edge, which for a
/// max/min filter is the same as repeating the edge pixel: an object cut by the frame is not
/// eaten from that side.
fn dilate(m: &[bool], w: usize, h: usize, r: usize) -> Vec<bool> {
    morph(m, w, h, r, true)
}

fn erode(m: &[bool], w: usize, h: usize, r: usize) -> Vec<bool> {
    morph(m, w, h, r, false)
}

/// `grow`: any set pixel in the window sets the output; otherwise any clear pixel clears it.
/// Counts of the decisive value over running windows keep it O(pixels), walking rows in order.
fn morph(m: &[bool], w: usize, h: usize, r: usize, grow: bool) -> Vec<bool> {
    let decisive = grow;
    // Window counts fit a byte: r is at most a few pixels.
    let r = r.min(100);
    let mut rows = vec![0u8; w * h];
    for (src, dst) in m.chunks_exact(w).zip(rows.chunks_exact_mut(w)) {
        let mut count: u8 = src[..(r + 1).min(w)]
            .iter()
            .map(|&b| u8::from(b == decisive))
            .sum();
        for x in 0..w {
            dst[x] = count;
            if x + r + 1 < w {
                count += u8::from(src[x + r + 1] == decisive);
            }
            if x >= r {
                count -= u8::from(src[x - r] == decisive);
            }
        }
    }
    let mut out = vec![!decisive; w * h];
    let mut col = vec![0u32; w];
    for row in rows.chunks_exact(w).take(r + 1) {
        col.iter_mut()
            .zip(row)
            .for_each(|(c, v)| *c += u32::from(*v));
    }
    for y in 0..h {
        for (o, &c) in out[y * w..(y + 1) * w].iter_mut().zip(&col) {
            if c > 0 {
                *o = decisive;
            }
        }
        if y + r + 1 < h {
            col.iter_mut()
                .zip(&rows[(y + r + 1) * w..][..w])
                .for_each(|(c, v)| *c += u32::from(*v));
        }
        if y >= r {
            col.iter_mut()
                .zip(&rows[(y - r) * w..][..w])
                .for_each(|(c, v)| *c -= u32::from(*v));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A tiny deterministic generator (xorshift) for noise in tests.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 40) as f32 / (1u64 << 24) as f32
        }
    }

    fn image(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 4]) -> LoadedImage {
        let mut rgba = Vec::with_capacity((w * h * 4) as usize);
        for y in 0..h {
            for x in 0..w {
                rgba.extend_from_slice(&f(x, y));
            }
        }
        let luma = rgba
            .chunks_exact(4)
            .map(|p| {
                (0.2126 * f32::from(p[0]) + 0.7152 * f32::from(p[1]) + 0.0722 * f32::from(p[2]))
                    / 255.0
            })
            .collect();
        let has_alpha = rgba.chunks_exact(4).any(|p| p[3] < 255);
        LoadedImage {
            name: "test".into(),
            width: w,
            height: h,
            rgba,
            luma,
            has_alpha,
            gray16: false,
        }
    }

    fn in_disc(x: u32, y: u32, cx: f32, cy: f32, r: f32) -> bool {
        let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
        dx * dx + dy * dy <= r * r
    }

    #[test]
    fn dark_disc_on_white() {
        let img = image(200, 160, |x, y| {
            if in_disc(x, y, 100.0, 80.0, 50.0) {
                [40, 30, 30, 255]
            } else {
                [250, 250, 250, 255]
            }
        });
        let m = estimate_mask(&img);
        assert_eq!(m.source, MaskSource::Border);
        let area = std::f32::consts::PI * 50.0 * 50.0;
        let got = m.data.iter().filter(|&&b| b).count() as f32;
        assert!((got - area).abs() / area < 0.02, "{got} vs {area}");
        assert!(m.get(100, 80) && !m.get(2, 2));
    }

    #[test]
    fn noisy_disc_on_white() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let noise: Vec<f32> = (0..300 * 240).map(|_| rng.next() * 24.0 - 12.0).collect();
        let img = image(300, 240, |x, y| {
            let n = noise[(y * 300 + x) as usize];
            let base = if in_disc(x, y, 150.0, 120.0, 70.0) {
                60.0
            } else {
                235.0
            };
            let v = (base + n).clamp(0.0, 255.0) as u8;
            [v, v, v, 255]
        });
        let m = estimate_mask(&img);
        assert_eq!(m.source, MaskSource::Border);
        let area = std::f32::consts::PI * 70.0 * 70.0;
        let got = m.data.iter().filter(|&&b| b).count() as f32;
        assert!((got - area).abs() / area < 0.02, "{got} vs {area}");
    }

    #[test]
    fn ring_keeps_its_hole() {
        let img = image(200, 200, |x, y| {
            if in_disc(x, y, 100.0, 100.0, 80.0) && !in_disc(x, y, 100.0, 100.0, 40.0) {
                [20, 20, 120, 255]
            } else {
                [255, 255, 255, 255]
            }
        });
        let m = estimate_mask(&img);
        assert_eq!(m.source, MaskSource::Border);
        assert!(!m.get(100, 100) && m.get(100, 40));
    }

    #[test]
    fn transparent_sprite_uses_alpha() {
        let img = image(64, 64, |x, y| {
            if in_disc(x, y, 32.0, 32.0, 20.0) {
                [200, 10, 10, 255]
            } else {
                [0, 0, 0, 0]
            }
        });
        let m = estimate_mask(&img);
        assert_eq!(m.source, MaskSource::Alpha);
        assert!(m.get(32, 32) && !m.get(0, 0));
    }

    /// skimage's `horse.png`: RGBA, a black horse on opaque white, with a handful of pixels at
    /// alpha 110 in a corner. The alpha mask would be the whole frame (99.99 %); the horse is
    /// what a user wants.
    #[test]
    fn nearly_opaque_alpha_falls_back_to_the_border() {
        let img = image(200, 160, |x, y| {
            let a = if x < 2 && y < 2 { 110 } else { 255 };
            if in_disc(x, y, 100.0, 80.0, 50.0) {
                [0, 0, 0, a]
            } else {
                [255, 255, 255, a]
            }
        });
        assert!(img.has_alpha);
        let m = estimate_mask(&img);
        assert_eq!(m.source, MaskSource::Border);
        let area = std::f32::consts::PI * 50.0 * 50.0;
        let got = m.data.iter().filter(|&&b| b).count() as f32;
        assert!((got - area).abs() / area < 0.02, "{got} vs {area}");
        // Nearly opaque and no backdrop either: the whole image, not an "alpha" rectangle.
        let mut rng = Rng(7);
        let noise: Vec<u8> = (0..64 * 64).map(|_| (rng.next() * 255.0) as u8).collect();
        let busy = image(64, 64, |x, y| {
            let v = noise[(y * 64 + x) as usize];
            [v, 255 - v, v / 2, if x == 0 && y == 0 { 0 } else { 255 }]
        });
        let m = estimate_mask(&busy);
        assert_eq!(m.source, MaskSource::None);
        assert!(m.data.iter().all(|&b| b));
    }

    #[test]
    fn busy_photo_is_whole() {
        let mut rng = Rng(42);
        let noise: Vec<f32> = (0..128 * 96).map(|_| rng.next() * 80.0 - 40.0).collect();
        let img = image(128, 96, |x, y| {
            let n = noise[(y * 128 + x) as usize];
            let c = |v: f32| (v + n).clamp(0.0, 255.0) as u8;
            [
                c(x as f32 * 2.0),
                c(y as f32 * 2.5),
                c(255.0 - x as f32),
                255,
            ]
        });
        let m = estimate_mask(&img);
        assert_eq!(m.source, MaskSource::None);
        assert!(m.data.iter().all(|&b| b));
    }

    #[test]
    fn tiny_images_are_whole() {
        for (w, h) in [(1, 1), (1, 50), (50, 1), (3, 3)] {
            let img = image(w, h, |_, _| [10, 20, 30, 255]);
            let m = estimate_mask(&img);
            assert_eq!(m.data.len(), (w * h) as usize);
            assert_eq!(m.source, MaskSource::None);
        }
    }

    /// A 512² photo-sized input: the border estimate finds the disc and nothing else (its
    /// speed is measured by the benchmarks, not here).
    #[test]
    fn a_disc_on_a_512_backdrop_is_cut_out_exactly() {
        let img = image(512, 512, |x, y| {
            if in_disc(x, y, 256.0, 256.0, 150.0) {
                [40, 90, 30, 255]
            } else {
                [240, 240, 240, 255]
            }
        });
        let m = estimate_mask(&img);
        assert_eq!(m.source, MaskSource::Border);
        for (x, y) in [(256, 256), (256, 110), (400, 256)] {
            assert!(m.get(x, y), "inside the disc at ({x}, {y})");
        }
        for (x, y) in [(0, 0), (511, 511), (256, 100), (410, 256), (60, 60)] {
            assert!(!m.get(x, y), "backdrop at ({x}, {y})");
        }
        let inside = (0..512 * 512)
            .filter(|&i| in_disc(i % 512, i / 512, 256.0, 256.0, 150.0))
            .count();
        assert_eq!(m.data.iter().filter(|&&v| v).count(), inside);
    }
}
