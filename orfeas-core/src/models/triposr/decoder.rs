//! The field: `NeRFMLP` on the triplane features that `TriplaneNeRFRenderer.query_triplane`
//! samples, and its activations.
//!
//! `query_triplane`: points in the renderer's cube `(-radius, radius)³` are scaled to
//! `(-1, 1)`; each of the xy, xz, yz planes is sampled with `grid_sample(bilinear,
//! align_corners=False, zero padding)` at the point's two coordinates (the first along the
//! plane's width); the samples are concatenated plane-major (or averaged); the MLP gives a
//! density and three colour features; `density_act = activation(density + density_bias)`,
//! `color = colour activation(features)`.
//!
//! Two implementations: on the CPU the fused kernel of `crate::kernels` (features, MLP and
//! activations per block of points in cache); elsewhere [`FieldDecoder::query`], the same
//! function as candle tensor ops (`grid_sample`'s four taps gathered with `index_select`).

use candle_core::{bail, DType, Device, Module, Result, Tensor, D};
use candle_nn::VarBuilder;

use super::config::{
    DecoderConfig, FeatureReduction, FieldActivation, MlpActivation, RendererConfig,
};
use super::scene::SceneCode;
use crate::error::OrfeasError;
use crate::kernels::{self, FieldMlp, FieldQuery, Hidden, Output, Reduction, Triplanes};

/// Points per tensor-op query: the `[N, 120]` features and `[N, 64]` activations of one chunk
/// take tens of MB on the device, not the GB a whole R = 256 grid would.
pub(super) const CHUNK_POINTS: usize = 1 << 18;

/// The plane coordinates each plane is sampled at, `(width axis, height axis)`: xy, xz, yz.
const PLANE_AXES: [(usize, usize); 3] = [(0, 1), (0, 2), (1, 2)];

#[derive(Debug)]
pub(crate) struct FieldDecoder {
    /// The MLP's linears on `device` (the tensor-op path).
    layers: Vec<candle_nn::Linear>,
    /// The same weights packed for the CPU kernel (~50 k values).
    packed: FieldMlp,
    hidden: MlpActivation,
    renderer: RendererConfig,
    /// Channels per plane the MLP's input expects.
    plane_channels: usize,
    device: Device,
}

impl FieldDecoder {
    /// `vb` at `decoder` (`layers.0`, `layers.2`, …: the reference's `nn.Sequential` puts an
    /// activation between the linears).
    pub(crate) fn new(
        decoder: &DecoderConfig,
        renderer: &RendererConfig,
        vb: VarBuilder,
        device: &Device,
    ) -> Result<Self> {
        // `in → n`, then `n_hidden_layers - 1` × `n → n`, then `n → 4`.
        let middle = decoder.n_hidden_layers.saturating_sub(1);
        let mut shapes = vec![(decoder.in_channels, decoder.n_neurons)];
        shapes.extend(std::iter::repeat_n(
            (decoder.n_neurons, decoder.n_neurons),
            middle,
        ));
        shapes.push((decoder.n_neurons, 4));
        let vb = vb.pp("layers");
        let layers = shapes
            .iter()
            .enumerate()
            .map(|(i, &(inp, out))| candle_nn::linear_b(inp, out, decoder.bias, vb.pp(2 * i)))
            .collect::<Result<Vec<_>>>()?;
        let host = layers
            .iter()
            .zip(&shapes)
            .map(|(l, &(inp, out))| {
                let w = l.weight().to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
                let b = match l.bias() {
                    Some(b) => b.to_dtype(DType::F32)?.to_vec1()?,
                    None => Vec::new(),
                };
                Ok((w, b, out, inp))
            })
            .collect::<Result<Vec<_>>>()?;
        let hidden = match decoder.activation {
            MlpActivation::Relu => Hidden::Relu,
            MlpActivation::Silu => Hidden::Silu,
        };
        let plane_channels = match renderer.feature_reduction {
            FeatureReduction::Concat => {
                if !decoder.in_channels.is_multiple_of(3) {
                    bail!(
                        "decoder: {} inputs are not three planes' concatenated features",
                        decoder.in_channels
                    )
                }
                decoder.in_channels / 3
            }
            FeatureReduction::Mean => decoder.in_channels,
        };
        Ok(Self {
            layers,
            packed: FieldMlp::new(&host, hidden)?,
            hidden: decoder.activation,
            renderer: *renderer,
            plane_channels,
            device: device.clone(),
        })
    }

    pub(crate) fn radius(&self) -> f32 {
        self.renderer.radius
    }

    /// `query_triplane` as tensor ops (any device): `planes = [3, C, R, R]`, `points = [N, 3]`
    /// in the renderer frame → `(density_act [N], color [N, 3])`. The model's interface for
    /// work that stays on the device (batched jobs on CUDA); the host-side queries below call
    /// [`query_parts`](Self::query_parts) directly.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn query(&self, planes: &Tensor, points: &Tensor) -> Result<(Tensor, Tensor)> {
        let (density, color) = self.query_parts(planes, points, true)?;
        match color {
            Some(color) => Ok((density, color)),
            None => bail!("field query: no colour"),
        }
    }

    /// [`query`](Self::query), the colour only when `with_color`.
    pub(super) fn query_parts(
        &self,
        planes: &Tensor,
        points: &Tensor,
        with_color: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let (np, c, h, w) = planes.dims4()?;
        let (_, three) = points.dims2()?;
        if np != 3 || c != self.plane_channels || three != 3 {
            bail!(
                "field query: planes {:?} and points {:?}, expected [3, {}, R, R] and [N, 3]",
                planes.dims(),
                points.dims(),
                self.plane_channels
            )
        }
        let r = f64::from(self.renderer.radius);
        // scale_tensor((-r, r) → (-1, 1)).
        let unit = ((((points + r)? / (2.0 * r))? * 2.0)? - 1.0)?;
        // Channel-last, so that a tap is one row: `[3, H·W, C]`.
        let texels = planes
            .permute((0, 2, 3, 1))?
            .contiguous()?
            .reshape((3, h * w, c))?;
        let samples = PLANE_AXES
            .iter()
            .enumerate()
            .map(|(p, &(wa, ha))| {
                let u = unit.narrow(1, wa, 1)?.squeeze(1)?;
                let v = unit.narrow(1, ha, 1)?.squeeze(1)?;
                bilinear(&texels.get(p)?, (h, w), &u, &v)
            })
            .collect::<Result<Vec<_>>>()?;
        let features = match self.renderer.feature_reduction {
            FeatureReduction::Concat => Tensor::cat(&samples, 1)?,
            FeatureReduction::Mean => (((&samples[0] + &samples[1])? + &samples[2])? / 3.0)?,
        };
        let mut y = features;
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            y = layer.forward(&y)?;
            if i < last {
                y = match self.hidden {
                    MlpActivation::Silu => y.silu()?,
                    MlpActivation::Relu => y.relu()?,
                };
            }
        }
        let density =
            (y.narrow(D::Minus1, 0, 1)?.squeeze(1)? + f64::from(self.renderer.density_bias))?;
        let density = activate(&density, self.renderer.density_activation)?;
        let color = if with_color {
            Some(activate(
                &y.narrow(D::Minus1, 1, 3)?,
                self.renderer.color_activation,
            )?)
        } else {
            None
        };
        Ok((density, color))
    }

    /// `density_act` at `points` (renderer frame).
    pub(crate) fn density(&self, code: &SceneCode, points: &[[f32; 3]]) -> crate::Result<Vec<f32>> {
        Ok(self.at_points(code, points, false)?.0)
    }

    /// The activated colour at `points` (renderer frame).
    pub(crate) fn color(
        &self,
        code: &SceneCode,
        points: &[[f32; 3]],
    ) -> crate::Result<Vec<[f32; 3]>> {
        match self.at_points(code, points, true)?.1 {
            Some(color) => Ok(color),
            None => Err(OrfeasError::Internal("triposr: no colour computed".into())),
        }
    }

    /// Density (and colour) at arbitrary points: the fused kernel on the CPU, chunked tensor
    /// queries elsewhere.
    fn at_points(
        &self,
        code: &SceneCode,
        points: &[[f32; 3]],
        with_color: bool,
    ) -> crate::Result<Samples> {
        let planes = self.planes(code)?;
        let mut density = vec![0f32; points.len()];
        let mut color = with_color.then(|| vec![[0f32; 3]; points.len()]);
        match &planes {
            Planes::Host(planes) => {
                let scale = Normaliser::new(self.renderer.radius);
                self.kernel(planes)
                    .run(
                        |i| points[i].map(|v| scale.apply(v)),
                        &mut density,
                        color.as_deref_mut(),
                    )
                    .map_err(internal)?;
            }
            Planes::Device(planes) => {
                for (i, chunk) in points.chunks(CHUNK_POINTS).enumerate() {
                    let first = i * CHUNK_POINTS;
                    let flat: Vec<f32> = chunk.iter().flatten().copied().collect();
                    let pts =
                        Tensor::from_vec(flat, (chunk.len(), 3), &self.device).map_err(internal)?;
                    let (d, c) = self
                        .query_parts(planes, &pts, with_color)
                        .map_err(internal)?;
                    density[first..first + chunk.len()].copy_from_slice(
                        &d.to_dtype(DType::F32)
                            .and_then(|d| d.to_vec1())
                            .map_err(internal)?,
                    );
                    if let (Some(all), Some(c)) = (color.as_mut(), c) {
                        let rows: Vec<Vec<f32>> = c
                            .to_dtype(DType::F32)
                            .and_then(|c| c.to_vec2())
                            .map_err(internal)?;
                        for (out, row) in all[first..].iter_mut().zip(rows) {
                            *out = [row[0], row[1], row[2]];
                        }
                    }
                }
            }
        }
        Ok((density, color))
    }

    /// The scene code checked against the decoder and made ready for one of the two paths.
    pub(super) fn planes(&self, code: &SceneCode) -> crate::Result<Planes> {
        let res = code.resolution;
        if code.channels != self.plane_channels
            || code.values.len() != 3 * code.channels * res * res
        {
            return Err(OrfeasError::InvalidInput(format!(
                "triposr: a scene code of {} values as 3 × {} × {res}², for a decoder of {} channels per plane",
                code.values.len(),
                code.channels,
                self.plane_channels
            )));
        }
        if kernels::enabled_on(&self.device) {
            Triplanes::from_channels_first(&code.values, code.channels, res)
                .map(Planes::Host)
                .map_err(internal)
        } else {
            Tensor::from_slice(&code.values, (3, code.channels, res, res), &self.device)
                .map(Planes::Device)
                .map_err(internal)
        }
    }

    /// The fused kernel's view of this decoder on `planes`.
    pub(super) fn kernel<'a>(&'a self, planes: &'a Triplanes) -> FieldQuery<'a> {
        FieldQuery {
            planes,
            mlp: &self.packed,
            reduction: match self.renderer.feature_reduction {
                FeatureReduction::Concat => Reduction::Concat,
                FeatureReduction::Mean => Reduction::Mean,
            },
            density_bias: self.renderer.density_bias,
            density: output(self.renderer.density_activation),
            color: output(self.renderer.color_activation),
        }
    }

    pub(super) fn device(&self) -> &Device {
        &self.device
    }
}

/// Densities, and colours when asked for.
type Samples = (Vec<f32>, Option<Vec<[f32; 3]>>);

/// A scene code ready for the CPU kernel or as a tensor on the decoder's device.
#[derive(Debug)]
pub(super) enum Planes {
    Host(Triplanes),
    Device(Tensor),
}

/// `scale_tensor(p, (-r, r), (-1, 1))` in f32 as PyTorch evaluates it: `(p + r) / 2r`, then
/// `· 2 − 1`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Normaliser {
    radius: f32,
    span: f32,
}

impl Normaliser {
    pub(super) fn new(radius: f32) -> Self {
        Self {
            radius,
            span: radius + radius,
        }
    }

    pub(super) fn apply(self, p: f32) -> f32 {
        (p + self.radius) / self.span * 2.0 - 1.0
    }
}

/// One bilinear `grid_sample` (`align_corners=False`, zero padding) of `texels = [H·W, C]` at
/// `u, v = [N]` in `[-1, 1]` (u along the width) → `[N, C]`, as PyTorch's CPU kernel weights
/// the four taps.
fn bilinear(texels: &Tensor, (h, w): (usize, usize), u: &Tensor, v: &Tensor) -> Result<Tensor> {
    let x = ((u + 1.0)? * (w as f64 / 2.0))?.affine(1.0, -0.5)?;
    let y = ((v + 1.0)? * (h as f64 / 2.0))?.affine(1.0, -0.5)?;
    let (x_w, y_n) = (x.floor()?, y.floor()?);
    // The distances past the west column and the north row, and their complements.
    let dx = (&x - &x_w)?;
    let dy = (&y - &y_n)?;
    let (ex, ey) = (dx.affine(-1.0, 1.0)?, dy.affine(-1.0, 1.0)?);
    let (x_e, y_s) = ((&x_w + 1.0)?, (&y_n + 1.0)?);
    let taps = [
        (&x_w, &y_n, (&ey * &ex)?),
        (&x_e, &y_n, (&ey * &dx)?),
        (&x_w, &y_s, (&dy * &ex)?),
        (&x_e, &y_s, (&dy * &dx)?),
    ];
    let mut out: Option<Tensor> = None;
    for (tx, ty, weight) in taps {
        let inside = |t: &Tensor, size: usize| -> Result<Tensor> {
            t.ge(0.0)?.to_dtype(DType::F32)? * t.lt(size as f64)?.to_dtype(DType::F32)?
        };
        let weight = ((weight * inside(tx, w)?)? * inside(ty, h)?)?;
        let column = tx.clamp(0.0, (w - 1) as f64)?;
        let row = ty.clamp(0.0, (h - 1) as f64)?;
        let index = ((row * w as f64)? + column)?.to_dtype(DType::U32)?;
        let term = texels
            .index_select(&index, 0)?
            .broadcast_mul(&weight.unsqueeze(1)?)?;
        out = Some(match out {
            Some(sum) => (sum + term)?,
            None => term,
        });
    }
    match out {
        Some(out) => Ok(out),
        None => bail!("bilinear: no taps"),
    }
}

/// `get_activation(name)` as tensor ops.
fn activate(x: &Tensor, activation: FieldActivation) -> Result<Tensor> {
    match activation {
        FieldActivation::Identity => Ok(x.clone()),
        FieldActivation::Exp => x.exp(),
        FieldActivation::Sigmoid => candle_nn::ops::sigmoid(x),
        FieldActivation::Tanh => x.tanh(),
        // PyTorch's softplus (beta 1, threshold 20): `x` above 20, else `log(1 + exp(x))`.
        FieldActivation::Softplus => {
            let soft = (x.clamp(f64::MIN, 20.0)?.exp()? + 1.0)?.log()?;
            x.gt(20.0)?.where_cond(x, &soft)
        }
        FieldActivation::Relu => x.relu(),
    }
}

fn output(activation: FieldActivation) -> Output {
    match activation {
        FieldActivation::Identity => Output::Identity,
        FieldActivation::Exp => Output::Exp,
        FieldActivation::Sigmoid => Output::Sigmoid,
        FieldActivation::Tanh => Output::Tanh,
        FieldActivation::Softplus => Output::Softplus,
        FieldActivation::Relu => Output::Relu,
    }
}

/// A candle failure inside the field: a bug or an exhausted device.
pub(super) fn internal(e: candle_core::Error) -> OrfeasError {
    OrfeasError::Internal(format!(
        "triposr: {}",
        crate::depth::depth_anything::root(&e)
    ))
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::kernels::with_kernels_disabled;

    fn tiny() -> FieldDecoder {
        fixture::field_decoder()
    }

    fn scene_code(planes: &Tensor) -> SceneCode {
        let (_, c, r, _) = planes.dims4().expect("dims");
        SceneCode {
            channels: c,
            resolution: r,
            values: planes
                .flatten_all()
                .and_then(|t| t.to_vec1())
                .expect("values"),
        }
    }

    fn host_points(points: &Tensor) -> Vec<[f32; 3]> {
        points
            .to_vec2::<f32>()
            .expect("points")
            .into_iter()
            .map(|p| [p[0], p[1], p[2]])
            .collect()
    }

    /// `query_triplane` at the reference's points (inside, on faces, edges and corners, and
    /// outside where the zero padding blends in): the tensor-op query, and `density`/`color`
    /// on the fused kernel and on the generic path.
    #[test]
    fn queries_match_the_reference_on_both_paths() {
        let reference = fixture::reference();
        let decoder = tiny();
        let planes = reference["scene_codes"].get(0).expect("planes");
        let points = &reference["points"];
        let (want_density, want_color) = (&reference["density_act"], &reference["color"]);
        let (density, color) = decoder.query(&planes, points).expect("query");
        let errors = [
            (
                "query density_act",
                fixture::relative_error(&density, want_density),
            ),
            ("query color", fixture::relative_error(&color, want_color)),
        ];
        let code = scene_code(&planes);
        let pts = host_points(points);
        let n = pts.len();
        let run = || {
            let density = decoder.density(&code, &pts).expect("density");
            let color = decoder.color(&code, &pts).expect("color");
            (
                Tensor::from_vec(density, n, &Device::Cpu).expect("density"),
                Tensor::from_vec(color.concat(), (n, 3), &Device::Cpu).expect("color"),
            )
        };
        let mut all = errors.to_vec();
        for (path, (density, color)) in [("kernel", run()), ("generic", with_kernels_disabled(run))]
        {
            let d = fixture::relative_error(&density, want_density);
            let c = fixture::relative_error(&color, want_color);
            all.push((
                if path == "kernel" {
                    "kernel density_act"
                } else {
                    "generic density_act"
                },
                d,
            ));
            all.push((
                if path == "kernel" {
                    "kernel color"
                } else {
                    "generic color"
                },
                c,
            ));
        }
        for (name, err) in all {
            eprintln!("{name}: relative error {err:.2e}");
            assert!(err <= 1e-4, "{name}: relative error {err}");
        }
    }

    /// The fused kernel against the tensor ops on random planes at many points: several
    /// blocks and a partial one, points on texel centres, plane edges and outside the cube.
    #[test]
    fn fused_kernel_matches_the_tensor_ops_on_random_planes() {
        let decoder = tiny();
        let dev = Device::Cpu;
        // Deterministic pseudo-random planes in about ±1.7 (unseeded ones made the test's
        // margin depend on the draw).
        let values: Vec<f32> = (0..3 * 8 * 7 * 7)
            .map(|i| ((i as f32 * 12.9898).sin() * 43_758.547).fract() * 3.4 - 1.7)
            .collect();
        let planes = Tensor::from_vec(values, (3, 8, 7, 7), &dev).expect("planes");
        let code = scene_code(&planes);
        let mut points: Vec<[f32; 3]> = (0..1000)
            .map(|i| {
                let f = |k: usize| ((i * 7919 + k * 104_729) % 2003) as f32 / 2003.0 * 2.2 - 1.1;
                [f(1), f(2), f(3)]
            })
            .collect();
        points.extend([
            [0.87, -0.87, 0.0],
            [-0.87, 0.87, 0.87],
            [0.0, 0.0, 0.0],
            [5.0, 0.0, -3.0],
        ]);
        let fused = decoder.density(&code, &points).expect("kernel");
        let fused_color = decoder.color(&code, &points).expect("kernel colour");
        let generic = with_kernels_disabled(|| decoder.density(&code, &points)).expect("generic");
        let generic_color =
            with_kernels_disabled(|| decoder.color(&code, &points)).expect("generic colour");
        let n = points.len();
        let t = |v: Vec<f32>, shape: (usize, usize)| Tensor::from_vec(v, shape, &dev).expect("t");
        let d = fixture::relative_error(&t(fused, (n, 1)), &t(generic, (n, 1)));
        let c = fixture::relative_error(
            &t(fused_color.concat(), (n, 3)),
            &t(generic_color.concat(), (n, 3)),
        );
        eprintln!("fused vs tensor ops: density {d:.2e}, colour {c:.2e}");
        // The measure, 1e-4: `exp` turns the two summation orders' rounding in the
        // pre-activation into relative density errors of ~1e-5 (a wrong kernel gives ~1).
        assert!(d < 1e-4 && c < 1e-4, "density {d}, colour {c}");
    }

    #[test]
    fn a_scene_code_of_the_wrong_size_is_refused() {
        let decoder = tiny();
        let code = SceneCode {
            channels: 7,
            resolution: 2,
            values: vec![0.0; 3 * 7 * 4],
        };
        let err = decoder.density(&code, &[[0.0; 3]]).expect_err("refused");
        assert_eq!(err.code(), "ERR_INVALID_INPUT");
        let short = SceneCode {
            channels: 8,
            resolution: 2,
            values: vec![0.0; 10],
        };
        assert!(decoder.density(&short, &[[0.0; 3]]).is_err());
    }
}
