//! The DPT neck (keys under `neck.`): reassemble the backbone tokens into feature maps at four
//! scales, project them to `fusion_hidden_size`, and fuse them coarse to fine.

use candle_core::{Module, Result, Tensor};
use candle_nn::{
    conv2d, conv_transpose2d, Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig,
    VarBuilder,
};

use super::config::DepthAnythingConfig;
use super::conv::Conv3x3;
use super::resample;


#[derive(Debug)]
enum Resize {
    /// Factor > 1: `ConvTranspose2d(kernel = stride = factor)`.
    Up(ConvTranspose2d),
    Identity,
    /// Factor < 1: `Conv2d(kernel 3, stride 1/factor, padding 1)`.
    Down(Conv2d),
}

#[derive(Debug)]
struct ReassembleLayer {
    projection: Conv2d,
    resize: Resize,
}

impl ReassembleLayer {
    fn new(input: usize, channels: usize, factor: f64, vb: VarBuilder) -> Result<Self> {
        let projection = conv2d(input, channels, 1, Default::default(), vb.pp("projection"))?;
        let resize = if factor > 1.0 {
            let k = factor.round() as usize;
            let cfg = ConvTranspose2dConfig { stride: k, ..Default::default() };
            Resize::Up(conv_transpose2d(channels, channels, k, cfg, vb.pp("resize"))?)
        } else if factor == 1.0 {
            Resize::Identity
        } else {
            let cfg = Conv2dConfig { padding: 1, stride: (1.0 / factor).round() as usize, ..Default::default() };
            Resize::Down(conv2d(channels, channels, 3, cfg, vb.pp("resize"))?)
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
    convolution1: Conv3x3,
    convolution2: Conv3x3,
}

impl ResidualUnit {
    fn new(c: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            convolution1: Conv3x3::new(c, c, true, vb.pp("convolution1"))?,
            convolution2: Conv3x3::new(c, c, true, vb.pp("convolution2"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.convolution1.forward(&x.relu()?)?;
        let h = self.convolution2.forward(&h.relu()?)?;
        h + x
    }
}

#[derive(Debug)]
struct FusionLayer {
    projection: Conv2d,
    /// Absent in the first (coarsest) fusion layer's use: the checkpoint has its weights but the
    /// reference never calls it there, so it is not loaded.
    residual_layer1: Option<ResidualUnit>,
    residual_layer2: ResidualUnit,
}

impl FusionLayer {
    fn new(c: usize, with_residual: bool, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            projection: conv2d(c, c, 1, Default::default(), vb.pp("projection"))?,
            residual_layer1: if with_residual { Some(ResidualUnit::new(c, vb.pp("residual_layer1"))?) } else { None },
            residual_layer2: ResidualUnit::new(c, vb.pp("residual_layer2"))?,
        })
    }

    /// `size`: the next (finer) feature's size, else ×2. Bilinear with `align_corners=True`
    /// because the reference uses it (candle-transformers uses nearest here).
    fn forward(&self, x: &Tensor, residual: Option<&Tensor>, size: Option<(usize, usize)>) -> Result<Tensor> {
        let mut x = x.clone();
        if let (Some(r), Some(unit)) = (residual, &self.residual_layer1) {
            let (_, _, h, w) = x.dims4()?;
            // The reference resizes a mismatched residual with align_corners=False.
            let r = if r.dims() != x.dims() { resample::bilinear(r, h, w, false)? } else { r.clone() };
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
    convs: Vec<Conv3x3>,
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
            .map(|(i, (&c, &factor))| ReassembleLayer::new(cfg.reassemble_hidden_size, c, factor, rs.pp(i)))
            .collect::<Result<Vec<_>>>()?;
        let convs = cfg
            .neck_hidden_sizes
            .iter()
            .enumerate()
            .map(|(i, &c)| Conv3x3::new(c, f, false, vb.pp("convs").pp(i)))
            .collect::<Result<Vec<_>>>()?;
        let fusion = (0..n)
            .map(|i| FusionLayer::new(f, i > 0, vb.pp("fusion_stage").pp("layers").pp(i)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { reassemble, convs, fusion })
    }

    /// `hidden`: backbone states `[B, 1 + h*w, C]`. Returns the fused maps, coarsest first
    /// (the reference's order), the last one at `8h × 8w` for the standard factors.
    pub fn forward(&self, hidden: &[Tensor], h: usize, w: usize) -> Result<Vec<Tensor>> {
        let mut features = Vec::with_capacity(hidden.len());
        for ((state, layer), conv) in hidden.iter().zip(&self.reassemble).zip(&self.convs) {
            let (b, n, c) = state.dims3()?;
            // readout "ignore": drop the CLS token, tokens back onto the patch grid.
            let x = state.narrow(1, 1, n - 1)?.reshape((b, h, w, c))?.permute((0, 3, 1, 2))?.contiguous()?;
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
