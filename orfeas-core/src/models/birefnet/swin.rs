//! The Swin Transformer (V1) backbone, as BiRefNet's `models/backbones/swin_v1.py` computes it:
//! 4×4 patch embedding, stages of window attention with relative position bias (every second
//! block on windows shifted by half a window, with the region mask), patch merging between
//! stages, a LayerNorm on each stage's output.
//!
//! Two details of the authors' code decide the numbers: the feature map is zero-padded to a
//! multiple of the window *after* `norm1`, and the padded tokens take part in attention (only
//! the shifted windows are masked, by region, on the padded map); the shift is applied even when
//! the map is smaller than one window.

use candle_core::{DType, Device, Tensor, D};

use super::layers::{Dense, Norm};
use super::weights::Weights;
use crate::error::Result;

/// The largest attention window read from a checkpoint (the published models use 12).
const MAX_WINDOW: usize = 32;

/// The sizes, read from the checkpoint's tensor shapes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct SwinConfig {
    pub embed: usize,
    pub depths: Vec<usize>,
    pub heads: Vec<usize>,
    pub window: usize,
}

impl SwinConfig {
    /// Channels of stage `i`'s output.
    pub(super) fn width(&self, i: usize) -> usize {
        self.embed << i
    }

    fn detect(w: &Weights) -> Result<Self> {
        let embed = w
            .get("bb.patch_embed.proj.weight", 4)?
            .dim(0)
            .map_err(|e| w.invalid(e.to_string()))?;
        let (mut depths, mut heads, mut window) = (Vec::new(), Vec::new(), 0);
        for stage in 0.. {
            let mut depth = 0;
            while w.has(&format!("bb.layers.{stage}.blocks.{depth}.norm1.weight")) {
                depth += 1;
            }
            if depth == 0 {
                break;
            }
            let name = format!("bb.layers.{stage}.blocks.0.attn.relative_position_bias_table");
            let table = w.get(&name, 2)?;
            let (entries, h) = table.dims2().map_err(|e| w.invalid(e.to_string()))?;
            let side = (entries as f64).sqrt().round() as usize;
            if side * side != entries || side.is_multiple_of(2) {
                return Err(w.invalid(format!(
                    "tensor {name} has {entries} rows, not (2·window − 1)²"
                )));
            }
            let win = side.div_ceil(2);
            // The position index and each block's bias grow with window⁴.
            if win > MAX_WINDOW {
                return Err(w.invalid(format!(
                    "tensor {name}: window {win}; Swin-V1 windows are 7 or 12, at most {MAX_WINDOW} \
                     is read"
                )));
            }
            if stage > 0 && win != window {
                return Err(w.invalid(format!("tensor {name}: window {win}, stage 0 has {window}")));
            }
            window = win;
            depths.push(depth);
            heads.push(h);
        }
        if depths.len() != 4 {
            return Err(w.invalid(format!(
                "the backbone has {} stages (bb.layers.N), expected 4",
                depths.len()
            )));
        }
        for (i, &h) in heads.iter().enumerate() {
            if (embed << i) % h != 0 {
                return Err(w.invalid(format!(
                    "stage {i}: {} channels do not split into {h} heads",
                    embed << i
                )));
            }
        }
        Ok(Self {
            embed,
            depths,
            heads,
            window,
        })
    }
}

#[derive(Debug)]
struct Block {
    norm1: Norm,
    qkv: Dense,
    proj: Dense,
    norm2: Norm,
    fc1: Dense,
    fc2: Dense,
    /// `[heads, N, N]`, the relative position bias gathered once.
    bias: Tensor,
    heads: usize,
    shifted: bool,
}

#[derive(Debug)]
struct Stage {
    blocks: Vec<Block>,
    /// PatchMerging: LayerNorm(4C), Linear(4C → 2C) without bias.
    merge: Option<(Norm, Dense)>,
    out_norm: Norm,
    width: usize,
}

#[derive(Debug)]
pub(super) struct Swin {
    pub config: SwinConfig,
    embed_weight: Tensor,
    embed_bias: Tensor,
    embed_norm: Norm,
    stages: Vec<Stage>,
}

impl Swin {
    pub(super) fn load(w: &Weights) -> Result<Self> {
        let config = SwinConfig::detect(w)?;
        let e = config.embed;
        let embed_weight = w
            .get_shaped("bb.patch_embed.proj.weight", &[e, 3, 4, 4])?
            .reshape((e, 48))
            .and_then(|t| t.t())
            .and_then(|t| t.contiguous())
            .map_err(|err| w.invalid(err.to_string()))?;
        let embed_bias = w.get_shaped("bb.patch_embed.proj.bias", &[e])?;
        let embed_norm = Norm::load(w, "bb.patch_embed.norm", e)?;
        let n = config.window * config.window;
        let index = relative_position_index(config.window, embed_weight.device())
            .map_err(|err| w.invalid(err.to_string()))?;
        let mut stages = Vec::new();
        for (s, (&depth, &heads)) in config.depths.iter().zip(&config.heads).enumerate() {
            let c = config.width(s);
            let mut blocks = Vec::with_capacity(depth);
            for i in 0..depth {
                let p = format!("bb.layers.{s}.blocks.{i}");
                let table = w.get_shaped(
                    &format!("{p}.attn.relative_position_bias_table"),
                    &[(2 * config.window - 1).pow(2), heads],
                )?;
                let bias = table
                    .index_select(&index, 0)
                    .and_then(|t| t.reshape((n, n, heads)))
                    .and_then(|t| t.permute((2, 0, 1)))
                    .and_then(|t| t.contiguous())
                    .map_err(|err| w.invalid(err.to_string()))?;
                blocks.push(Block {
                    norm1: Norm::load(w, &format!("{p}.norm1"), c)?,
                    qkv: Dense::load(w, &format!("{p}.attn.qkv"), true)?,
                    proj: Dense::load(w, &format!("{p}.attn.proj"), true)?,
                    norm2: Norm::load(w, &format!("{p}.norm2"), c)?,
                    fc1: Dense::load(w, &format!("{p}.mlp.fc1"), true)?,
                    fc2: Dense::load(w, &format!("{p}.mlp.fc2"), true)?,
                    bias,
                    heads,
                    shifted: i % 2 == 1,
                });
            }
            let merge = if s + 1 < config.depths.len() {
                let p = format!("bb.layers.{s}.downsample");
                Some((
                    Norm::load(w, &format!("{p}.norm"), 4 * c)?,
                    Dense::load(w, &format!("{p}.reduction"), false)?,
                ))
            } else {
                None
            };
            stages.push(Stage {
                blocks,
                merge,
                out_norm: Norm::load(w, &format!("bb.norm{s}"), c)?,
                width: c,
            });
        }
        Ok(Self {
            config,
            embed_weight,
            embed_bias,
            embed_norm,
            stages,
        })
    }

    /// The four stages' normalised outputs, `[B, C·2ⁱ, H/2^(i+2), W/2^(i+2)]`, for `x = [B, 3,
    /// H, W]` with H and W multiples of 4.
    pub(super) fn forward(&self, x: &Tensor) -> candle_core::Result<Vec<Tensor>> {
        let (b, c, h, w) = x.dims4()?;
        if c != 3 || h % 4 != 0 || w % 4 != 0 {
            candle_core::bail!("swin: input {:?}, expected [B, 3, 4k, 4k]", x.dims())
        }
        let (mut h, mut w) = (h / 4, w / 4);
        // The 4×4, stride-4 patch embedding is a product over each patch's 48 values.
        let patches = x
            .reshape((b, 3, h, 4, w, 4))?
            .permute((0, 2, 4, 1, 3, 5))?
            .contiguous()?
            .reshape((b * h * w, 48))?;
        let tokens = patches
            .matmul(&self.embed_weight)?
            .broadcast_add(&self.embed_bias)?
            .reshape((b, h * w, self.config.embed))?;
        let mut x = self.embed_norm.forward(&tokens)?;
        let mut outs = Vec::with_capacity(4);
        for stage in &self.stages {
            let mask = if stage.blocks.len() > 1 {
                Some(shift_mask(h, w, self.config.window, x.device())?)
            } else {
                None
            };
            for block in &stage.blocks {
                x = block.forward(&x, h, w, self.config.window, mask.as_ref())?;
            }
            let out = stage.out_norm.forward(&x)?;
            outs.push(
                out.reshape((b, h, w, stage.width))?
                    .permute((0, 3, 1, 2))?
                    .contiguous()?,
            );
            if let Some((norm, reduction)) = &stage.merge {
                x = merge(&x, b, h, w, stage.width, norm, reduction)?;
                h = h.div_ceil(2);
                w = w.div_ceil(2);
            }
        }
        Ok(outs)
    }
}

impl Block {
    fn forward(
        &self,
        x: &Tensor,
        h: usize,
        w: usize,
        window: usize,
        mask: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let (b, _, c) = x.dims3()?;
        let (hp, wp) = (h.div_ceil(window) * window, w.div_ceil(window) * window);
        let mut t = self.norm1.forward(x)?.reshape((b, h, w, c))?;
        if hp > h {
            t = t.pad_with_zeros(1, 0, hp - h)?;
        }
        if wp > w {
            t = t.pad_with_zeros(2, 0, wp - w)?;
        }
        let shift = window / 2;
        if self.shifted {
            t = t.roll(-(shift as i32), 1)?.roll(-(shift as i32), 2)?;
        }
        let (nh, nw) = (hp / window, wp / window);
        let n = window * window;
        let windows = t
            .reshape((b, nh, window, nw, window, c))?
            .permute((0, 1, 3, 2, 4, 5))?
            .contiguous()?
            .reshape((b * nh * nw, n, c))?;
        let attended = self.attention(
            &windows,
            if self.shifted { mask } else { None },
            b * nh * nw,
        )?;
        let mut t = attended
            .reshape((b, nh, nw, window, window, c))?
            .permute((0, 1, 3, 2, 4, 5))?
            .contiguous()?
            .reshape((b, hp, wp, c))?;
        if self.shifted {
            t = t.roll(shift as i32, 1)?.roll(shift as i32, 2)?;
        }
        if hp > h || wp > w {
            t = t.narrow(1, 0, h)?.narrow(2, 0, w)?;
        }
        let x = (x + t.contiguous()?.reshape((b, h * w, c))?)?;
        let hidden = self.fc1.forward(&self.norm2.forward(&x)?, true, None)?;
        self.fc2.forward(&hidden, false, Some(&x))
    }

    /// Window attention on `[B', N, C]`: `softmax(q·kᵀ/√d + bias (+ mask)) · v`, then `proj`.
    fn attention(
        &self,
        x: &Tensor,
        mask: Option<&Tensor>,
        windows: usize,
    ) -> candle_core::Result<Tensor> {
        let (bw, n, c) = x.dims3()?;
        let hd = c / self.heads;
        let qkv = self
            .qkv
            .forward(x, false, None)?
            .reshape((bw, n, 3, self.heads, hd))?
            .permute((2, 0, 3, 1, 4))?;
        let scale = 1.0 / (hd as f64).sqrt();
        let q = (qkv.get(0)?.contiguous()? * scale)?;
        let k = qkv.get(1)?.contiguous()?;
        let v = qkv.get(2)?.contiguous()?;
        let mut scores = q.matmul(&k.t()?.contiguous()?)?.broadcast_add(&self.bias)?;
        if let Some(mask) = mask {
            let nw = mask.dim(0)?;
            scores = scores
                .reshape((windows / nw, nw, self.heads, n, n))?
                .broadcast_add(&mask.unsqueeze(1)?.unsqueeze(0)?)?
                .reshape((bw, self.heads, n, n))?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((bw, n, c))?;
        self.proj.forward(&out, false, None)
    }
}

/// PatchMerging: pad to even sizes, take the 2×2 neighbours in the order (0,0), (1,0), (0,1),
/// (1,1) (row offset first) as one `4C` token, LayerNorm, reduce to `2C`.
fn merge(
    x: &Tensor,
    b: usize,
    h: usize,
    w: usize,
    c: usize,
    norm: &Norm,
    reduction: &Dense,
) -> candle_core::Result<Tensor> {
    let mut t = x.reshape((b, h, w, c))?;
    if h % 2 == 1 {
        t = t.pad_with_zeros(1, 0, 1)?;
    }
    if w % 2 == 1 {
        t = t.pad_with_zeros(2, 0, 1)?;
    }
    let (h2, w2) = (h.div_ceil(2), w.div_ceil(2));
    let t = t.reshape((b, h2, 2, w2, 2, c))?;
    let pick = |dy: usize, dx: usize| {
        t.narrow(2, dy, 1)?
            .narrow(4, dx, 1)?
            .reshape((b, h2, w2, c))
    };
    let merged = Tensor::cat(
        &[pick(0, 0)?, pick(1, 0)?, pick(0, 1)?, pick(1, 1)?],
        D::Minus1,
    )?
    .reshape((b, h2 * w2, 4 * c))?;
    reduction.forward(&norm.forward(&merged)?, false, None)
}

/// `relative_position_index` of the authors' `WindowAttention`, flattened: for tokens `i`, `j` of
/// a window, `(Δy + w − 1) · (2w − 1) + (Δx + w − 1)`.
fn relative_position_index(window: usize, device: &Device) -> candle_core::Result<Tensor> {
    let n = window * window;
    let side = 2 * window - 1;
    let mut index = Vec::with_capacity(n * n);
    for i in 0..n {
        for j in 0..n {
            let dy = (i / window) as i64 - (j / window) as i64 + window as i64 - 1;
            let dx = (i % window) as i64 - (j % window) as i64 + window as i64 - 1;
            index.push((dy * side as i64 + dx) as u32);
        }
    }
    Tensor::from_vec(index, n * n, device)
}

/// The shifted windows' attention mask on the padded map, `[windows, N, N]`: 0 between tokens
/// of the same region (of the 3 × 3 the cyclic shift creates), −∞ otherwise.
fn shift_mask(h: usize, w: usize, window: usize, device: &Device) -> candle_core::Result<Tensor> {
    let (hp, wp) = (h.div_ceil(window) * window, w.div_ceil(window) * window);
    let shift = window / 2;
    // Python slices (0, −window), (−window, −shift), (−shift, None) on the padded size.
    let region = |p: usize, size: usize| -> usize {
        if p < size.saturating_sub(window) {
            0
        } else if p < size - shift {
            1
        } else {
            2
        }
    };
    let (nh, nw) = (hp / window, wp / window);
    let n = window * window;
    let mut mask = vec![0f32; nh * nw * n * n];
    for wy in 0..nh {
        for wx in 0..nw {
            let label = |t: usize| {
                region(wy * window + t / window, hp) * 3 + region(wx * window + t % window, wp)
            };
            let base = (wy * nw + wx) * n * n;
            for i in 0..n {
                for j in 0..n {
                    if label(i) != label(j) {
                        mask[base + i * n + j] = f32::NEG_INFINITY;
                    }
                }
            }
        }
    }
    Tensor::from_vec(mask, (nh * nw, n, n), device)?.to_dtype(DType::F32)
}
