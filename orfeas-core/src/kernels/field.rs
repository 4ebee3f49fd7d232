//! The triplane field query on the CPU, fused: bilinear samples of three feature planes, the
//! NeRF MLP and the output activations for a block of points at a time.
//!
//! Why: TripoSR's field at R = 256 is 16.7 M points, each three `grid_sample` gathers (4 taps ×
//! C channels per plane) feeding a 120 → 64 × 9 → 4 MLP, ~81 kFLOP a point. As tensor ops
//! every stage writes a fresh `[N, 120]` or `[N, 64]` tensor to memory and reads it back, the
//! gathers go through generic index ops, and SiLU is scalar libm. Here a task takes a block of
//! points, writes their features straight into a `[block, features]` buffer that stays in
//! cache, runs each layer with the packed sgemm (started at the bias) and applies SiLU in place,
//! and writes only the activated density (and colour when asked).
//!
//! The arithmetic is `F.grid_sample(bilinear, align_corners=False, padding zeros)` as PyTorch's
//! vectorised CPU kernel computes it (`(u + 1) · size/2 − 0.5`, weights from the distances to
//! the floor, taps outside the plane contributing zero), then `nn.Linear`s; only the sums'
//! order inside the products differs.

use std::cell::RefCell;

use candle_core::{bail, Result};
use rayon::prelude::*;

use super::sgemm::{self, PackedB};
use super::{isa, vmath, Isa};

/// Points per task: a multiple of the micro-kernels' 6 and 12; the block's features and two
/// hidden buffers (`192 × (120 + 2 · 64)` floats, 190 KB) stay in L2.
const BLOCK: usize = 192;

thread_local! {
    /// Per-thread buffers: the block's features, then the hidden layers' ping-pong pair.
    static SCRATCH: RefCell<[Vec<f32>; 3]> = const { RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
}

/// The three planes (xy, xz, yz) stored channel-last, `[3][res][res][channels]`: one tap is
/// `channels` adjacent values.
#[derive(Clone, Debug)]
pub(crate) struct Triplanes {
    values: Vec<f32>,
    channels: usize,
    res: usize,
}

impl Triplanes {
    /// From the model's `[3, channels, res, res]` layout (height then width).
    pub fn from_channels_first(values: &[f32], channels: usize, res: usize) -> Result<Self> {
        if values.len() != 3 * channels * res * res || channels == 0 || res == 0 {
            bail!(
                "triplanes: {} values for 3 × {channels} × {res} × {res}",
                values.len()
            )
        }
        let mut out = vec![0f32; values.len()];
        let plane = channels * res * res;
        for p in 0..3 {
            for c in 0..channels {
                let from = &values[p * plane + c * res * res..][..res * res];
                for (texel, &v) in from.iter().enumerate() {
                    out[p * plane + texel * channels + c] = v;
                }
            }
        }
        Ok(Self {
            values: out,
            channels,
            res,
        })
    }
}

/// How the three planes' samples become the MLP's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reduction {
    /// Plane-major, `3 · C` features.
    Concat,
    /// Their mean, `C` features.
    Mean,
}

/// The MLP's activation between layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hidden {
    Relu,
    Silu,
}

/// An output activation (`tsr.utils.get_activation`), applied per value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Output {
    Identity,
    Exp,
    Sigmoid,
    Tanh,
    Softplus,
    Relu,
}

impl Output {
    /// libm's functions: a handful per point next to ~40 k multiply-adds.
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Self::Identity => x,
            Self::Exp => x.exp(),
            Self::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Self::Tanh => x.tanh(),
            // PyTorch's softplus (beta 1, threshold 20): linear above 20.
            Self::Softplus => {
                if x > 20.0 {
                    x
                } else {
                    x.exp().ln_1p()
                }
            }
            Self::Relu => x.max(0.0),
        }
    }
}

/// One packed linear layer.
#[derive(Clone, Debug)]
struct Layer {
    weight: PackedB,
    bias: Vec<f32>,
}

/// The NeRF MLP, packed: every layer's `Wᵀ` once at load.
#[derive(Clone, Debug)]
pub(crate) struct FieldMlp {
    layers: Vec<Layer>,
    hidden: Hidden,
}

impl FieldMlp {
    /// `layers`: each `(weight [out, in] row-major, bias)`, the last with 4 outputs (density,
    /// three colour features); `bias` empty when the layer has none.
    pub fn new(layers: &[(Vec<f32>, Vec<f32>, usize, usize)], hidden: Hidden) -> Result<Self> {
        let mut packed = Vec::with_capacity(layers.len());
        let mut width = None;
        for (weight, bias, out, inp) in layers {
            let (out, inp) = (*out, *inp);
            if weight.len() != out * inp
                || !(bias.is_empty() || bias.len() == out)
                || width.is_some_and(|w| w != inp)
            {
                bail!("field MLP: layer [{out}, {inp}] does not chain or has a wrong bias")
            }
            width = Some(out);
            let mut w = PackedB::default();
            w.pack_columns(inp, out, weight, inp);
            let bias = if bias.is_empty() {
                vec![0.0; out]
            } else {
                bias.clone()
            };
            packed.push(Layer { weight: w, bias });
        }
        if width != Some(4) {
            bail!("field MLP: the last layer must give 4 outputs, not {width:?}")
        }
        Ok(Self {
            layers: packed,
            hidden,
        })
    }

    fn inputs(&self) -> usize {
        self.layers.first().map_or(0, |l| l.weight.k())
    }
}

/// Everything one query needs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FieldQuery<'a> {
    pub planes: &'a Triplanes,
    pub mlp: &'a FieldMlp,
    pub reduction: Reduction,
    pub density_bias: f32,
    pub density: Output,
    pub color: Output,
}

impl FieldQuery<'_> {
    /// The activated density (and colour, when `color` is given) at `density.len()` points;
    /// `point(i)` gives point `i` in the planes' normalised frame (`[-1, 1]³`, as `grid_sample`
    /// takes it). Blocks of points run in parallel.
    pub fn run(
        &self,
        point: impl Fn(usize) -> [f32; 3] + Sync,
        density: &mut [f32],
        color: Option<&mut [[f32; 3]]>,
    ) -> Result<()> {
        let features = match self.reduction {
            Reduction::Concat => 3 * self.planes.channels,
            Reduction::Mean => self.planes.channels,
        };
        if features != self.mlp.inputs() {
            bail!(
                "field query: {features} features for an MLP of {} inputs",
                self.mlp.inputs()
            )
        }
        let block = |index: usize, density: &mut [f32], color: Option<&mut [[f32; 3]]>| {
            let first = index * BLOCK;
            let points: Vec<[f32; 3]> = (first..first + density.len()).map(&point).collect();
            SCRATCH.with_borrow_mut(|scratch| self.block(&points, scratch, density, color));
        };
        match color {
            Some(color) => {
                if color.len() != density.len() {
                    bail!(
                        "field query: {} colours for {} densities",
                        color.len(),
                        density.len()
                    )
                }
                density
                    .par_chunks_mut(BLOCK)
                    .zip(color.par_chunks_mut(BLOCK))
                    .enumerate()
                    .for_each(|(i, (d, c))| block(i, d, Some(c)));
            }
            None => density
                .par_chunks_mut(BLOCK)
                .enumerate()
                .for_each(|(i, d)| block(i, d, None)),
        }
        Ok(())
    }

    /// One block (≤ [`BLOCK`] points): features, MLP, activations.
    fn block(
        &self,
        points: &[[f32; 3]],
        [features, a, b]: &mut [Vec<f32>; 3],
        density: &mut [f32],
        color: Option<&mut [[f32; 3]]>,
    ) {
        let m = points.len();
        let width = self.mlp.inputs();
        features.clear();
        features.resize(m * width, 0.0);
        gather(self.planes, points, self.reduction, features);
        let mut k = width;
        let last = self.mlp.layers.len() - 1;
        for (l, layer) in self.mlp.layers.iter().enumerate() {
            // Layer 0 reads the features; then the two hidden buffers take turns.
            let (input, output): (&[f32], &mut Vec<f32>) = match (l, l % 2) {
                (0, _) => (features.as_slice(), &mut *a),
                (_, 1) => (a.as_slice(), &mut *b),
                _ => (b.as_slice(), &mut *a),
            };
            let n = layer.weight.n();
            output.clear();
            for _ in 0..m {
                output.extend_from_slice(&layer.bias);
            }
            // SAFETY: `input` is `m × k` and `output` `m × n`, both row-major at those strides.
            unsafe {
                sgemm::gemm(
                    m,
                    input.as_ptr(),
                    k,
                    &layer.weight,
                    output.as_mut_ptr(),
                    n,
                    true,
                )
            };
            if l < last {
                match self.mlp.hidden {
                    Hidden::Silu => vmath::silu_in_place(output),
                    Hidden::Relu => output.iter_mut().for_each(|v| *v = v.max(0.0)),
                }
            }
            k = n;
        }
        let out: &[f32] = if last % 2 == 1 { b } else { a };
        for (d, row) in density.iter_mut().zip(out.chunks_exact(4)) {
            *d = self.density.apply(row[0] + self.density_bias);
        }
        if let Some(color) = color {
            for (c, row) in color.iter_mut().zip(out.chunks_exact(4)) {
                *c = [1, 2, 3].map(|j| self.color.apply(row[j]));
            }
        }
    }
}

/// The block's features, `[points, width]`, compiled for the widest instruction set this CPU
/// has (the loops over channels vectorise).
fn gather(planes: &Triplanes, points: &[[f32; 3]], reduction: Reduction, out: &mut [f32]) {
    match isa() {
        // SAFETY: `isa` found every feature the build needs.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { gather_avx512(planes, points, reduction, out) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { gather_avx2(planes, points, reduction, out) },
        _ => gather_body(planes, points, reduction, out),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn gather_avx512(
    planes: &Triplanes,
    points: &[[f32; 3]],
    reduction: Reduction,
    out: &mut [f32],
) {
    gather_body(planes, points, reduction, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gather_avx2(
    planes: &Triplanes,
    points: &[[f32; 3]],
    reduction: Reduction,
    out: &mut [f32],
) {
    gather_body(planes, points, reduction, out)
}

/// The pairs of coordinates each plane is sampled at: `(width axis, height axis)`.
const PLANE_AXES: [(usize, usize); 3] = [(0, 1), (0, 2), (1, 2)];

#[inline(always)]
fn gather_body(planes: &Triplanes, points: &[[f32; 3]], reduction: Reduction, out: &mut [f32]) {
    let c = planes.channels;
    let width = match reduction {
        Reduction::Concat => 3 * c,
        Reduction::Mean => c,
    };
    let mut mean = [vec![0f32; c], vec![0f32; c], vec![0f32; c]];
    for (point, row) in points.iter().zip(out.chunks_exact_mut(width)) {
        for (p, &(wa, ha)) in PLANE_AXES.iter().enumerate() {
            let plane = &planes.values[p * planes.res * planes.res * c..];
            let target: &mut [f32] = match reduction {
                Reduction::Concat => &mut row[p * c..(p + 1) * c],
                Reduction::Mean => &mut mean[p],
            };
            sample(plane, planes.res, c, point[wa], point[ha], target);
        }
        if reduction == Reduction::Mean {
            for (j, v) in row.iter_mut().enumerate() {
                *v = (mean[0][j] + mean[1][j] + mean[2][j]) / 3.0;
            }
        }
    }
}

/// One bilinear sample (`align_corners=False`, zero padding) of a `res × res` plane of `c`
/// channels at `(u, v)` in `[-1, 1]` (u along the width), written to `out`.
#[inline(always)]
fn sample(plane: &[f32], res: usize, c: usize, u: f32, v: f32, out: &mut [f32]) {
    let half = res as f32 / 2.0;
    let (x, y) = ((u + 1.0) * half - 0.5, (v + 1.0) * half - 0.5);
    let (x_w, y_n) = (x.floor(), y.floor());
    let (w, n) = (x - x_w, y - y_n);
    let (e, s) = (1.0 - w, 1.0 - n);
    let weights = [s * e, s * w, n * e, n * w];
    // The taps' texel indices, or None outside the plane; float comparisons first, so that
    // points far outside (or NaN) never reach an integer conversion that could wrap.
    let inside = |t: f32| t >= 0.0 && t < res as f32;
    let (x1, y1) = (x_w + 1.0, y_n + 1.0);
    let taps = [(x_w, y_n), (x1, y_n), (x_w, y1), (x1, y1)];
    out.fill(0.0);
    for (&(tx, ty), &weight) in taps.iter().zip(&weights) {
        if inside(tx) && inside(ty) {
            let texel = ty as usize * res + tx as usize;
            let values = &plane[texel * c..(texel + 1) * c];
            for (o, &value) in out.iter_mut().zip(values) {
                *o += value * weight;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::with_isa_limit;
    use super::*;

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7919 + seed * 104_729) % 2003) as f32 / 1001.5 - 1.0)
            .collect()
    }

    /// `grid_sample` by its definition, in f64: texel centres at `(i + 0.5) / size · 2 − 1`.
    fn naive_sample(planes: &[f32], c: usize, res: usize, p: usize, u: f32, v: f32) -> Vec<f64> {
        let x = (f64::from(u) + 1.0) * res as f64 / 2.0 - 0.5;
        let y = (f64::from(v) + 1.0) * res as f64 / 2.0 - 0.5;
        let (x0, y0) = (x.floor(), y.floor());
        let mut out = vec![0f64; c];
        for (tx, ty) in [
            (x0, y0),
            (x0 + 1.0, y0),
            (x0, y0 + 1.0),
            (x0 + 1.0, y0 + 1.0),
        ] {
            if tx < 0.0 || ty < 0.0 || tx >= res as f64 || ty >= res as f64 {
                continue;
            }
            let weight = (1.0 - (x - tx).abs()) * (1.0 - (y - ty).abs());
            for (ch, o) in out.iter_mut().enumerate() {
                let at = ((p * c + ch) * res + ty as usize) * res + tx as usize;
                *o += weight * f64::from(planes[at]);
            }
        }
        out
    }

    /// The whole query in f64 for one point.
    fn naive(
        planes: &[f32],
        (c, res): (usize, usize),
        layers: &[(Vec<f32>, Vec<f32>, usize, usize)],
        reduction: Reduction,
        point: [f32; 3],
    ) -> [f64; 4] {
        let samples: Vec<Vec<f64>> = PLANE_AXES
            .iter()
            .enumerate()
            .map(|(p, &(a, b))| naive_sample(planes, c, res, p, point[a], point[b]))
            .collect();
        let mut x: Vec<f64> = match reduction {
            Reduction::Concat => samples.concat(),
            Reduction::Mean => (0..c)
                .map(|j| (samples[0][j] + samples[1][j] + samples[2][j]) / 3.0)
                .collect(),
        };
        for (l, (w, b, out, inp)) in layers.iter().enumerate() {
            x = (0..*out)
                .map(|o| {
                    let dot: f64 = (0..*inp)
                        .map(|i| f64::from(w[o * inp + i]) * x[i])
                        .sum::<f64>()
                        + b.get(o).map_or(0.0, |&b| f64::from(b));
                    if l + 1 < layers.len() {
                        dot.max(0.0)
                    } else {
                        dot
                    }
                })
                .collect();
        }
        [x[0], x[1], x[2], x[3]]
    }

    /// Mean reduction, ReLU, a layer without bias, identity and tanh outputs: the parts the
    /// published model does not use, against the definition, over several blocks and a
    /// partial one, with points outside the planes.
    #[test]
    fn matches_the_definition_with_mean_features_and_relu() {
        let (c, res) = (5, 6);
        let planes = values(3 * c * res * res, 1);
        let layers = vec![
            (values(7 * c, 2), values(7, 3), 7, c),
            (values(7 * 7, 4), Vec::new(), 7, 7),
            (values(4 * 7, 5), values(4, 6), 4, 7),
        ];
        let mlp = FieldMlp::new(&layers, Hidden::Relu).expect("mlp");
        let triplanes = Triplanes::from_channels_first(&planes, c, res).expect("planes");
        let query = FieldQuery {
            planes: &triplanes,
            mlp: &mlp,
            reduction: Reduction::Mean,
            density_bias: 0.25,
            density: Output::Identity,
            color: Output::Tanh,
        };
        let n = 2 * BLOCK + 17;
        let point = |i: usize| {
            let v = values(3, i);
            [v[0] * 1.3, v[1] * 1.3, v[2] * 0.9]
        };
        let mut density = vec![0f32; n];
        let mut color = vec![[0f32; 3]; n];
        query
            .run(point, &mut density, Some(&mut color))
            .expect("run");
        for i in 0..n {
            let want = naive(&planes, (c, res), &layers, Reduction::Mean, point(i));
            assert!(
                (f64::from(density[i]) - (want[0] + 0.25)).abs() < 1e-5,
                "point {i}"
            );
            for j in 0..3 {
                assert!(
                    (f64::from(color[i][j]) - want[j + 1].tanh()).abs() < 1e-5,
                    "point {i}"
                );
            }
        }
    }

    /// Every instruction-set build of the gather gives the concatenated features of the
    /// definition, on taps inside, on and beyond the planes' edges.
    #[test]
    fn gather_builds_match_the_definition() {
        let (c, res) = (19, 4);
        let planes = values(3 * c * res * res, 7);
        let triplanes = Triplanes::from_channels_first(&planes, c, res).expect("planes");
        let points: Vec<[f32; 3]> = (0..50)
            .map(|i| {
                let v = values(3, i + 100);
                [v[0] * 1.4, v[1] * 1.4, v[2] * 1.4]
            })
            .chain([
                [1.0, -1.0, 0.75],
                [-0.75, 0.75, 1.25],
                [9.0, f32::MAX, -9.0],
            ])
            .collect();
        for limit in [Isa::Avx512, Isa::Avx2, Isa::Portable] {
            let mut out = vec![0f32; points.len() * 3 * c];
            with_isa_limit(limit, || {
                gather(&triplanes, &points, Reduction::Concat, &mut out)
            });
            for (point, row) in points.iter().zip(out.chunks_exact(3 * c)) {
                for (p, &(a, b)) in PLANE_AXES.iter().enumerate() {
                    let want = naive_sample(&planes, c, res, p, point[a], point[b]);
                    for (got, want) in row[p * c..(p + 1) * c].iter().zip(want) {
                        assert!(
                            (f64::from(*got) - want).abs() < 1e-6,
                            "{limit:?} at {point:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn inconsistent_shapes_are_refused() {
        assert!(Triplanes::from_channels_first(&[0.0; 10], 2, 2).is_err());
        let chained = [(vec![0.0; 6], vec![], 3, 2), (vec![0.0; 8], vec![], 4, 2)];
        assert!(
            FieldMlp::new(&chained, Hidden::Silu).is_err(),
            "3 outputs feed 2 inputs"
        );
        let three = [(vec![0.0; 6], vec![], 3, 2)];
        assert!(
            FieldMlp::new(&three, Hidden::Silu).is_err(),
            "the last layer gives 4"
        );
        let mlp = FieldMlp::new(&[(vec![0.0; 8], vec![0.0; 4], 4, 2)], Hidden::Silu).expect("mlp");
        let planes = Triplanes::from_channels_first(&[0.0; 12], 1, 2).expect("planes");
        let query = FieldQuery {
            planes: &planes,
            mlp: &mlp,
            reduction: Reduction::Concat,
            density_bias: 0.0,
            density: Output::Exp,
            color: Output::Sigmoid,
        };
        assert!(
            query.run(|_| [0.0; 3], &mut [0.0; 3], None).is_err(),
            "3 features for 2 inputs"
        );
        let mean = FieldQuery {
            reduction: Reduction::Mean,
            ..query
        };
        assert!(mean
            .run(|_| [0.0; 3], &mut [0.0; 3], Some(&mut [[0.0; 3]; 2]))
            .is_err());
    }
}
