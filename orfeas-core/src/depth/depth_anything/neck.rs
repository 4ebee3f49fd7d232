//! The DPT neck (keys under `neck.`): reassemble the backbone tokens into feature maps at four
//! scales, project them to `fusion_hidden_size`, and fuse them coarse to fine.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::config::DepthAnythingConfig;
use super::conv::Conv;
use super::resample;

#[derive(Debug)]
enum Resize {
    /// Factor > 1: `ConvTranspose2d(kernel = stride = factor)`.
    Up(PixelExpand),
    Identity,
    /// Factor < 1: `Conv2d(kernel 3, stride 1/factor, padding 1)`.
    Down(Conv),
}

/// `ConvTranspose2d` with kernel = stride = `k`: each input pixel expands into its own `k × k`
/// output block, so the whole layer is one matrix product followed by a reshuffle (candle's
/// transposed convolution loops over every element on the CPU).
#[derive(Debug)]
struct PixelExpand {
    /// `[c_out · k², c_in]`: PyTorch's `[c_in, c_out, k, k]` weight, flattened and transposed.
    weight: Tensor,
    /// `[1, c_out, 1, 1]`.
    bias: Tensor,
    k: usize,
    c_out: usize,
}

impl PixelExpand {
    fn new(channels: usize, k: usize, vb: VarBuilder) -> Result<Self> {
        let weight = vb
            .get((channels, channels, k, k), "weight")?
            .reshape((channels, channels * k * k))?
            .t()?
            .contiguous()?;
        let bias = vb.get(channels, "bias")?.reshape((1, channels, 1, 1))?;
        Ok(Self {
            weight,
            bias,
            k,
            c_out: channels,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let k = self.k;
        let weight = if b == 1 {
            self.weight.unsqueeze(0)?
        } else {
            self.weight.broadcast_left(b)?.contiguous()?
        };
        // [b, (co, ky, kx), (y, x)] → [b, co, y, ky, x, kx] → [b, co, y·k + ky, x·k + kx].
        let blocks = weight
            .matmul(&x.reshape((b, c, h * w))?)?
            .reshape((b, self.c_out, k, k, h, w))?;
        let y = blocks
            .permute([0, 1, 4, 2, 5, 3])?
            .reshape((b, self.c_out, h * k, w * k))?;
        y.broadcast_add(&self.bias)
    }
}

#[derive(Debug)]
struct ReassembleLayer {
    projection: Conv,
    resize: Resize,
}

impl ReassembleLayer {
    fn new(input: usize, channels: usize, factor: f64, vb: VarBuilder) -> Result<Self> {
        let projection = Conv::new(input, channels, 1, true, vb.pp("projection"))?;
        let resize = if factor > 1.0 {
            Resize::Up(PixelExpand::new(
                channels,
                factor.round() as usize,
                vb.pp("resize"),
            )?)
        } else if factor == 1.0 {
            Resize::Identity
        } else {
            let stride = (1.0 / factor).round() as usize;
            Resize::Down(Conv::strided(
                channels,
                channels,
                3,
                stride,
                true,
                vb.pp("resize"),
            )?)
        };
        Ok(Self { projection, resize })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.projection.forward(x)?;
        match &self.resize {
            Resize::Up(c) => c.forward(&x),
            Resize::Identity => Ok(x),
            Resize::Down(c) => c.forward(&x),
        }
    }
}

/// Pre-activation residual unit: `x + conv2(relu(conv1(relu(x))))`.
#[derive(Debug)]
struct ResidualUnit {
    convolution1: Conv,
    convolution2: Conv,
}

impl ResidualUnit {
    fn new(c: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            convolution1: Conv::new(c, c, 3, true, vb.pp("convolution1"))?,
            convolution2: Conv::new(c, c, 3, true, vb.pp("convolution2"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.convolution1.forward_with(x, true, false)?;
        let h = self.convolution2.forward_with(&h, true, false)?;
        h + x
    }
}

#[derive(Debug)]
struct FusionLayer {
    projection: Conv,
    /// Absent in the first (coarsest) fusion layer's use: the checkpoint has its weights but the
    /// reference never calls it there, so it is not loaded.
    residual_layer1: Option<ResidualUnit>,
    residual_layer2: ResidualUnit,
}

impl FusionLayer {
    fn new(c: usize, with_residual: bool, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            projection: Conv::new(c, c, 1, true, vb.pp("projection"))?,
            residual_layer1: if with_residual {
                Some(ResidualUnit::new(c, vb.pp("residual_layer1"))?)
            } else {
                None
            },
            residual_layer2: ResidualUnit::new(c, vb.pp("residual_layer2"))?,
        })
    }

    /// `size`: the next (finer) feature's size, else ×2. Bilinear with `align_corners=True`
    /// because the reference uses it (candle-transformers uses nearest here).
    fn forward(
        &self,
        x: &Tensor,
        residual: Option<&Tensor>,
        size: Option<(usize, usize)>,
    ) -> Result<Tensor> {
        let mut x = x.clone();
        if let (Some(r), Some(unit)) = (residual, &self.residual_layer1) {
            let (_, _, h, w) = x.dims4()?;
            // The reference resizes a mismatched residual with align_corners=False.
            let r = if r.dims() != x.dims() {
                resample::bilinear(r, h, w, false)?
            } else {
                r.clone()
            };
            x = (x + unit.forward(&r)?)?;
        }
        let x = self.residual_layer2.forward(&x)?;
        let (_, _, h, w) = x.dims4()?;
        let (th, tw) = size.unwrap_or((2 * h, 2 * w));
        let x = resample::bilinear(&x, th, tw, true)?;
        self.projection.forward(&x)
    }
}

/// Reassemble stage, the 3×3 projections (`neck.convs`) and the fusion stage.
#[derive(Debug)]
pub struct Neck {
    reassemble: Vec<ReassembleLayer>,
    convs: Vec<Conv>,
    fusion: Vec<FusionLayer>,
}

impl Neck {
    pub fn new(cfg: &DepthAnythingConfig, vb: VarBuilder) -> Result<Self> {
        let f = cfg.fusion_hidden_size;
        let n = cfg.neck_hidden_sizes.len();
        let rs = vb.pp("reassemble_stage").pp("layers");
        let reassemble = cfg
            .neck_hidden_sizes
            .iter()
            .zip(&cfg.reassemble_factors)
            .enumerate()
            .map(|(i, (&c, &factor))| {
                ReassembleLayer::new(cfg.reassemble_hidden_size, c, factor, rs.pp(i))
            })
            .collect::<Result<Vec<_>>>()?;
        let convs = cfg
            .neck_hidden_sizes
            .iter()
            .enumerate()
            .map(|(i, &c)| Conv::new(c, f, 3, false, vb.pp("convs").pp(i)))
            .collect::<Result<Vec<_>>>()?;
        let fusion = (0..n)
            .map(|i| FusionLayer::new(f, i > 0, vb.pp("fusion_stage").pp("layers").pp(i)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            reassemble,
            convs,
            fusion,
        })
    }

    /// `hidden`: backbone states `[B, 1 + h*w, C]`. Returns the fused maps, coarsest first
    /// (the reference's order), the last one at `8h × 8w` for the standard factors.
    pub fn forward(&self, hidden: &[Tensor], h: usize, w: usize) -> Result<Vec<Tensor>> {
        let mut features = Vec::with_capacity(hidden.len());
        for ((state, layer), conv) in hidden.iter().zip(&self.reassemble).zip(&self.convs) {
            let (b, n, c) = state.dims3()?;
            // readout "ignore": drop the CLS token, tokens back onto the patch grid.
            let x = state
                .narrow(1, 1, n - 1)?
                .reshape((b, h, w, c))?
                .permute((0, 3, 1, 2))?
                .contiguous()?;
            features.push(conv.forward(&layer.forward(&x)?)?);
        }
        features.reverse();
        let mut fused: Vec<Tensor> = Vec::with_capacity(features.len());
        for (i, (feature, layer)) in features.iter().zip(&self.fusion).enumerate() {
            let size = match features.get(i + 1) {
                Some(next) => {
                    let (_, _, nh, nw) = next.dims4()?;
                    Some((nh, nw))
                }
                None => None,
            };
            let out = match fused.last() {
                None => layer.forward(feature, None, size)?,
                Some(prev) => layer.forward(prev, Some(feature), size)?,
            };
            fused.push(out);
        }
        Ok(fused)
    }
}
