//! The DINOv2 ViT backbone, as transformers' `Dinov2Backbone` (keys under `backbone.`).
//!
//! Differences from candle-transformers' `dinov2.rs`, each because the reference does it so:
//! exact (erf) GELU, LayerNorm eps from the config (1e-6, not 1e-5), CLS token and position
//! embeddings broadcast over the batch, bicubic position-embedding interpolation with
//! PyTorch's kernel for any grid, and no classification head.

use std::collections::HashMap;
use std::sync::Mutex;

use candle_core::{Module, Result, Tensor};
use candle_nn::{
    conv2d, layer_norm, linear, linear_b, Conv2d, Conv2dConfig, LayerNorm, Linear, VarBuilder,
};

use super::config::Dinov2Config;
use super::resample;
use crate::kernels::{self, Dense};

/// Interpolated position-embedding tables kept per model (each `(1 + h*w) × C` floats).
const POS_CACHE_LIMIT: usize = 16;

#[derive(Debug)]
struct Embeddings {
    cls_token: Tensor,
    /// `[1, 1 + n*n, C]` for the `n × n` pre-training grid.
    position_embeddings: Tensor,
    patch_embeddings: Conv2d,
    grid: usize,
    patch_size: usize,
    /// Interpolated position embeddings per patch grid `(h, w)`: batches of photos repeat a
    /// few aspect ratios, so recent grids are kept (at most [`POS_CACHE_LIMIT`], a few MB).
    cache: Mutex<HashMap<(usize, usize), Tensor>>,
}

impl Embeddings {
    fn new(cfg: &Dinov2Config, vb: VarBuilder) -> Result<Self> {
        let grid = cfg.image_size / cfg.patch_size;
        let c = cfg.hidden_size;
        let conv = Conv2dConfig {
            stride: cfg.patch_size,
            ..Default::default()
        };
        Ok(Self {
            cls_token: vb.get((1, 1, c), "cls_token")?,
            position_embeddings: vb.get((1, grid * grid + 1, c), "position_embeddings")?,
            patch_embeddings: conv2d(
                cfg.num_channels,
                c,
                cfg.patch_size,
                conv,
                vb.pp("patch_embeddings").pp("projection"),
            )?,
            grid,
            patch_size: cfg.patch_size,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// `interpolate_pos_encoding`: the stored table as is when the patch count matches and the
    /// input is square, else the patch part resized with bicubic (`size=(h, w)`,
    /// `align_corners=False`, computed in f32) and the CLS entry prepended.
    fn position_embeddings(
        &self,
        h: usize,
        w: usize,
        height: usize,
        width: usize,
    ) -> Result<Tensor> {
        if h * w == self.grid * self.grid && height == width {
            return Ok(self.position_embeddings.clone());
        }
        if let Some(t) = self.cache.lock().ok().and_then(|c| c.get(&(h, w)).cloned()) {
            return Ok(t);
        }
        let dim = self.position_embeddings.dim(2)?;
        let dtype = self.position_embeddings.dtype();
        let cls = self.position_embeddings.narrow(1, 0, 1)?;
        let patch = self
            .position_embeddings
            .narrow(1, 1, self.grid * self.grid)?;
        let patch = patch
            .reshape((1, self.grid, self.grid, dim))?
            .permute((0, 3, 1, 2))?
            .to_dtype(candle_core::DType::F32)?;
        let patch = resample::bicubic(&patch, h, w)?
            .to_dtype(dtype)?
            .permute((0, 2, 3, 1))?
            .reshape((1, h * w, dim))?;
        let table = Tensor::cat(&[&cls, &patch], 1)?.contiguous()?;
        if let Ok(mut c) = self.cache.lock() {
            // Bounded: a long-running server sees many aspect ratios.
            if c.len() >= POS_CACHE_LIMIT {
                c.clear();
            }
            c.insert((h, w), table.clone());
        }
        Ok(table)
    }

    fn forward(&self, pixels: &Tensor) -> Result<Tensor> {
        let (b, _, height, width) = pixels.dims4()?;
        let (h, w) = (height / self.patch_size, width / self.patch_size);
        let patches = self
            .patch_embeddings
            .forward(pixels)?
            .flatten_from(2)?
            .transpose(1, 2)?;
        let dim = patches.dim(2)?;
        let cls = self.cls_token.broadcast_as((b, 1, dim))?;
        let x = Tensor::cat(&[&cls, &patches], 1)?;
        x.broadcast_add(&self.position_embeddings(h, w, height, width)?)
    }
}

#[derive(Debug)]
struct Attention {
    /// Query, key and value projections stacked into one `[3C, C]` matrix (one GEMM instead of
    /// three), the query rows pre-scaled by `1/√head_dim`.
    qkv: Dense,
    dense: Dense,
    heads: usize,
}

impl Attention {
    /// `output_scale`: the layer's LayerScale, folded into the output projection.
    fn new(cfg: &Dinov2Config, output_scale: &Tensor, vb: VarBuilder) -> Result<Self> {
        let c = cfg.hidden_size;
        // Published checkpoints use `attention.{query,key,value}` + `output.dense`;
        // transformers 5 renames them in memory to `{q,k,v,o}_proj` and may write those.
        let (q, k, v, o) = if vb.contains_tensor("q_proj.weight") {
            (
                vb.pp("q_proj"),
                vb.pp("k_proj"),
                vb.pp("v_proj"),
                vb.pp("o_proj"),
            )
        } else {
            let a = vb.pp("attention");
            (
                a.pp("query"),
                a.pp("key"),
                a.pp("value"),
                vb.pp("output").pp("dense"),
            )
        };
        // The 1/sqrt(head_dim) score scale is folded into the query projection once, instead
        // of scaling every [heads, n, n] score matrix (n ≈ 1370 tokens at 518²).
        let scale = ((c / cfg.num_attention_heads) as f64).powf(-0.5);
        let query = linear_b(c, c, cfg.qkv_bias, q)?;
        let query = Linear::new(
            (query.weight() * scale)?,
            query.bias().map(|b| b * scale).transpose()?,
        );
        let (key, value) = (
            linear_b(c, c, cfg.qkv_bias, k)?,
            linear_b(c, c, cfg.qkv_bias, v)?,
        );
        let parts = [&query, &key, &value];
        let weight = Tensor::cat(&parts.map(|l| l.weight()), 0)?;
        let bias = match parts.map(|l| l.bias()) {
            [Some(a), Some(b), Some(c)] => Some(Tensor::cat(&[a, b, c], 0)?),
            _ => None,
        };
        Ok(Self {
            qkv: Dense::new(Linear::new(weight, bias))?,
            dense: Dense::new(scaled_rows(linear(c, c, o)?, output_scale)?)?,
            heads: cfg.num_attention_heads,
        })
    }

    /// `residual + attention(x)`.
    fn forward(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        let qkv = self.qkv.forward(x, false, None)?;
        let ctx = if fused_cpu_path(&qkv) {
            qkv.apply_op1_no_bwd(&kernels::FusedAttention { heads: self.heads })?
        } else {
            let (b, n, c3) = qkv.dims3()?;
            let c = c3 / 3;
            let split = |i: usize| {
                qkv.narrow(2, i * c, c)?
                    .reshape((b, n, self.heads, c / self.heads))?
                    .transpose(1, 2)?
                    .contiguous()
            };
            let (q, k, v) = (split(0)?, split(1)?, split(2)?);
            // Eager attention; the 1/√d scale is already in q.
            let scores = q.matmul(&k.t()?)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores)?;
            probs.matmul(&v)?.transpose(1, 2)?.reshape((b, n, c))?
        };
        self.dense.forward(&ctx, false, Some(residual))
    }
}

/// The CPU kernels in [`kernels`] take contiguous f32 CPU tensors.
fn fused_cpu_path(t: &Tensor) -> bool {
    kernels::applies_to(t) && t.is_contiguous()
}

/// `diag(scale) · (x Wᵀ + b)` as one linear layer: LayerScale multiplies the output features of
/// the layer before it, so it is folded into that layer's weights once at load time.
fn scaled_rows(layer: Linear, scale: &Tensor) -> Result<Linear> {
    let weight = layer.weight().broadcast_mul(&scale.unsqueeze(1)?)?;
    let bias = layer.bias().map(|b| b * scale).transpose()?;
    Ok(Linear::new(weight, bias))
}

#[derive(Debug)]
enum Activation {
    /// Exact GELU, `0.5 x (1 + erf(x / √2))`: transformers' `"gelu"`.
    GeluErf,
    /// The tanh approximation (`"gelu_new"`, `"gelu_pytorch_tanh"`).
    GeluTanh,
}

#[derive(Debug)]
enum Mlp {
    Gelu {
        fc1: Dense,
        fc2: Dense,
        act: Activation,
    },
    /// `down(silu(gate(x)) * up(x))`, used by ViT-g only; kept so the config alone decides what
    /// loads.
    SwiGlu {
        gate: Linear,
        up: Linear,
        down: Linear,
    },
}

impl Mlp {
    /// `output_scale`: the layer's LayerScale, folded into the last projection.
    fn new(cfg: &Dinov2Config, output_scale: &Tensor, vb: VarBuilder) -> Result<Self> {
        let c = cfg.hidden_size;
        let hidden = (c as f64 * cfg.mlp_ratio) as usize;
        if cfg.use_swiglu_ffn {
            let hidden = (hidden * 2 / 3).div_ceil(8) * 8;
            if vb.contains_tensor("weights_in.weight") {
                // transformers < 5 stored gate and up stacked in one `weights_in` (gate first).
                let w = vb.get((2 * hidden, c), "weights_in.weight")?;
                let b = vb.get(2 * hidden, "weights_in.bias")?;
                let half = |t: &Tensor, i: usize| t.narrow(0, i * hidden, hidden);
                return Ok(Self::SwiGlu {
                    gate: Linear::new(half(&w, 0)?, Some(half(&b, 0)?)),
                    up: Linear::new(half(&w, 1)?, Some(half(&b, 1)?)),
                    down: scaled_rows(linear(hidden, c, vb.pp("weights_out"))?, output_scale)?,
                });
            }
            return Ok(Self::SwiGlu {
                gate: linear(c, hidden, vb.pp("gate_proj"))?,
                up: linear(c, hidden, vb.pp("up_proj"))?,
                down: scaled_rows(linear(hidden, c, vb.pp("down_proj"))?, output_scale)?,
            });
        }
        let act = match cfg.hidden_act.as_str() {
            "gelu" => Activation::GeluErf,
            _ => Activation::GeluTanh,
        };
        Ok(Self::Gelu {
            fc1: Dense::new(linear(c, hidden, vb.pp("fc1"))?)?,
            fc2: Dense::new(scaled_rows(linear(hidden, c, vb.pp("fc2"))?, output_scale)?)?,
            act,
        })
    }

    /// `residual + mlp(x)`.
    fn forward(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        match self {
            Self::Gelu {
                fc1,
                fc2,
                act: Activation::GeluErf,
            } => fc2.forward(&fc1.forward(x, true, None)?, false, Some(residual)),
            Self::Gelu {
                fc1,
                fc2,
                act: Activation::GeluTanh,
            } => fc2.forward(&fc1.forward(x, false, None)?.gelu()?, false, Some(residual)),
            Self::SwiGlu { gate, up, down } => {
                let g = candle_nn::ops::silu(&gate.forward(x)?)?;
                down.forward(&(g * up.forward(x)?)?)? + residual
            }
        }
    }
}

/// Pre-norm transformer block; LayerScale lives in the attention's and the MLP's last
/// projections (see [`scaled_rows`]).
#[derive(Debug)]
struct Layer {
    norm1: LayerNorm,
    attention: Attention,
    norm2: LayerNorm,
    mlp: Mlp,
}

impl Layer {
    fn new(cfg: &Dinov2Config, vb: VarBuilder) -> Result<Self> {
        let c = cfg.hidden_size;
        let eps = cfg.layer_norm_eps;
        let layer_scale1 = vb.pp("layer_scale1").get(c, "lambda1")?;
        let layer_scale2 = vb.pp("layer_scale2").get(c, "lambda1")?;
        Ok(Self {
            norm1: layer_norm(c, eps, vb.pp("norm1"))?,
            attention: Attention::new(cfg, &layer_scale1, vb.pp("attention"))?,
            norm2: layer_norm(c, eps, vb.pp("norm2"))?,
            mlp: Mlp::new(cfg, &layer_scale2, vb.pp("mlp"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.attention.forward(&self.norm1.forward(x)?, x)?;
        self.mlp.forward(&self.norm2.forward(&x)?, &x)
    }
}

/// The backbone: embeddings, encoder layers, and the final LayerNorm applied to the selected
/// hidden states (`apply_layernorm`).
#[derive(Debug)]
pub struct Dinov2Backbone {
    embeddings: Embeddings,
    layers: Vec<Layer>,
    layernorm: Option<LayerNorm>,
    out_indices: Vec<usize>,
}

impl Dinov2Backbone {
    pub fn new(cfg: &Dinov2Config, out_indices: Vec<usize>, vb: VarBuilder) -> Result<Self> {
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Layer::new(cfg, vb.pp("encoder").pp("layer").pp(i)))
            .collect::<Result<Vec<_>>>()?;
        let layernorm = if cfg.apply_layernorm {
            Some(layer_norm(
                cfg.hidden_size,
                cfg.layer_norm_eps,
                vb.pp("layernorm"),
            )?)
        } else {
            None
        };
        Ok(Self {
            embeddings: Embeddings::new(cfg, vb.pp("embeddings"))?,
            layers,
            layernorm,
            out_indices,
        })
    }

    /// The selected hidden states, each `[B, 1 + h*w, C]` with the CLS token first, in
    /// `out_indices` order. Layers past the last selected index are not run.
    pub fn forward(&self, pixels: &Tensor) -> Result<Vec<Tensor>> {
        let last = self.out_indices.iter().copied().max().unwrap_or(0);
        let mut x = self.embeddings.forward(pixels)?;
        let mut states = vec![None; last + 1];
        states[0] = Some(x.clone());
        for (i, layer) in self.layers.iter().enumerate().take(last) {
            x = layer.forward(&x)?;
            states[i + 1] = Some(x.clone());
        }
        self.out_indices
            .iter()
            .map(|&i| {
                let s = states[i]
                    .as_ref()
                    .ok_or_else(|| candle_core::Error::Msg(format!("no hidden state {i}")))?;
                match &self.layernorm {
                    Some(ln) => ln.forward(s),
                    None => Ok(s.clone()),
                }
            })
            .collect()
    }
}
