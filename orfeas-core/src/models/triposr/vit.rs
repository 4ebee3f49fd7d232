//! TripoSR's image tokenizer: DINO ViT-B/16 as transformers **4.35.0**'s `ViTModel` computes it
//! (TripoSR's pinned version), keys under `image_tokenizer.model.`.
//!
//! What 4.35 does and later versions (and candle-transformers) do differently, each followed
//! here because the published weights were trained and are run that way:
//! - `interpolate_pos_encoding`: the table as is when the patch count matches and the input is
//!   square; otherwise bicubic (`align_corners=False`, A = -0.75, borders clamped) **by scale
//!   factor** `(h/patch + 0.1) / √N`, so PyTorch samples the source at `1/scale_factor` steps,
//!   not at `in/out` (at 512² that is 0.43614 against 0.4375: every position embedding moves);
//! - exact (erf) GELU for `"gelu"`; LayerNorm eps from the config (1e-12);
//! - the output is the final-LayerNorm'd `last_hidden_state`, CLS first; the pooler is unused.
//!
//! The forward is split into [`DinoVit::embed`], [`DinoVit::layer`] and [`DinoVit::finish`] so
//! the orchestrator reports progress and checks cancellation between layers.

use std::collections::HashMap;
use std::sync::Mutex;

use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::{
    conv2d, layer_norm, linear_b, Conv2d, Conv2dConfig, LayerNorm, Linear, VarBuilder,
};

use super::config::VitConfig;
use crate::depth::depth_anything::bicubic_scale_factor;

/// Interpolated position tables kept per input grid (a server sees one size per model, but a
/// bound keeps a stream of odd sizes from growing it).
const POS_CACHE_LIMIT: usize = 8;

#[derive(Debug, Clone, Copy)]
enum Activation {
    /// `0.5 x (1 + erf(x / √2))`: transformers' `"gelu"`.
    GeluErf,
    /// The tanh approximation: `"gelu_new"`, `"gelu_pytorch_tanh"`.
    GeluTanh,
    Relu,
}

#[derive(Debug)]
struct Layer {
    layernorm_before: LayerNorm,
    query: Linear,
    key: Linear,
    value: Linear,
    attention_output: Linear,
    layernorm_after: LayerNorm,
    intermediate: Linear,
    output: Linear,
}

/// transformers 4.35 `ViTModel` without its pooler.
#[derive(Debug)]
pub(crate) struct DinoVit {
    cls_token: Tensor,
    position_embeddings: Tensor,
    patch_embeddings: Conv2d,
    layers: Vec<Layer>,
    layernorm: LayerNorm,
    heads: usize,
    patch_size: usize,
    /// Side of the stored position grid.
    grid: usize,
    activation: Activation,
    pos_cache: Mutex<HashMap<(usize, usize), Tensor>>,
}

impl DinoVit {
    /// `vb` at `image_tokenizer.model`.
    pub(crate) fn new(cfg: &VitConfig, vb: VarBuilder) -> Result<Self> {
        let h = cfg.hidden_size;
        let grid = cfg.grid();
        let emb = vb.pp("embeddings");
        let patch_embeddings = conv2d(
            cfg.num_channels,
            h,
            cfg.patch_size,
            Conv2dConfig {
                stride: cfg.patch_size,
                ..Default::default()
            },
            emb.pp("patch_embeddings").pp("projection"),
        )?;
        let eps = cfg.layer_norm_eps;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| {
                let l = vb.pp("encoder").pp("layer").pp(i);
                let a = l.pp("attention");
                Ok(Layer {
                    layernorm_before: layer_norm(h, eps, l.pp("layernorm_before"))?,
                    query: linear_b(h, h, cfg.qkv_bias, a.pp("attention").pp("query"))?,
                    key: linear_b(h, h, cfg.qkv_bias, a.pp("attention").pp("key"))?,
                    value: linear_b(h, h, cfg.qkv_bias, a.pp("attention").pp("value"))?,
                    attention_output: linear_b(h, h, true, a.pp("output").pp("dense"))?,
                    layernorm_after: layer_norm(h, eps, l.pp("layernorm_after"))?,
                    intermediate: linear_b(
                        h,
                        cfg.intermediate_size,
                        true,
                        l.pp("intermediate").pp("dense"),
                    )?,
                    output: linear_b(cfg.intermediate_size, h, true, l.pp("output").pp("dense"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let activation = match cfg.hidden_act.as_str() {
            "gelu" => Activation::GeluErf,
            "gelu_new" | "gelu_pytorch_tanh" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            other => candle_core::bail!("ViT hidden_act {other:?} is not supported"),
        };
        Ok(Self {
            cls_token: emb.get((1, 1, h), "cls_token")?,
            position_embeddings: emb.get((1, grid * grid + 1, h), "position_embeddings")?,
            patch_embeddings,
            layers,
            layernorm: layer_norm(h, eps, vb.pp("layernorm"))?,
            heads: cfg.num_attention_heads,
            patch_size: cfg.patch_size,
            grid,
            activation,
            pos_cache: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// `ViTEmbeddings.forward(pixels, interpolate_pos_encoding=True)`: patches (`[B, 3, H, W]`,
    /// ImageNet-normalised) → `[B, 1 + N, hidden]`, CLS first, position embeddings added.
    pub(crate) fn embed(&self, pixels: &Tensor) -> Result<Tensor> {
        let (b, _, height, width) = pixels.dims4()?;
        let patches = self
            .patch_embeddings
            .forward(pixels)?
            .flatten_from(2)?
            .transpose(1, 2)?;
        let dim = patches.dim(2)?;
        let n = patches.dim(1)?;
        let cls = self.cls_token.broadcast_as((b, 1, dim))?;
        let x = Tensor::cat(&[&cls, &patches], 1)?;
        x.broadcast_add(&self.position_table(n, height, width)?)
    }

    /// 4.35's `interpolate_pos_encoding` for `n` patches of a `height × width` input.
    fn position_table(&self, n: usize, height: usize, width: usize) -> Result<Tensor> {
        if n == self.grid * self.grid && height == width {
            return Ok(self.position_embeddings.clone());
        }
        let (h0, w0) = (height / self.patch_size, width / self.patch_size);
        if let Some(t) = self
            .pos_cache
            .lock()
            .ok()
            .and_then(|c| c.get(&(h0, w0)).cloned())
        {
            return Ok(t);
        }
        let dim = self.position_embeddings.dim(2)?;
        let cls = self.position_embeddings.narrow(1, 0, 1)?;
        let patch = self
            .position_embeddings
            .narrow(1, 1, self.grid * self.grid)?
            .reshape((1, self.grid, self.grid, dim))?
            .permute((0, 3, 1, 2))?
            .to_dtype(DType::F32)?;
        // Python floats: `(h0 + 0.1) / math.sqrt(num_positions)`.
        let sqrt_n = ((self.grid * self.grid) as f64).sqrt();
        let (sh, sw) = ((h0 as f64 + 0.1) / sqrt_n, (w0 as f64 + 0.1) / sqrt_n);
        let patch = bicubic_scale_factor(&patch, sh, sw)?;
        let (_, _, oh, ow) = patch.dims4()?;
        if (oh, ow) != (h0, w0) {
            // transformers asserts the same.
            candle_core::bail!(
                "position embeddings interpolated to {oh}×{ow} for a {h0}×{w0} patch grid"
            );
        }
        let patch = patch
            .to_dtype(self.position_embeddings.dtype())?
            .permute((0, 2, 3, 1))?
            .reshape((1, oh * ow, dim))?;
        let table = Tensor::cat(&[&cls, &patch], 1)?.contiguous()?;
        if let Ok(mut c) = self.pos_cache.lock() {
            if c.len() >= POS_CACHE_LIMIT {
                c.clear();
            }
            c.insert((h0, w0), table.clone());
        }
        Ok(table)
    }

    /// Encoder layer `i` (`ViTLayer`): pre-norm self-attention and MLP, each with its residual.
    pub(crate) fn layer(&self, i: usize, x: &Tensor) -> Result<Tensor> {
        let l = self
            .layers
            .get(i)
            .ok_or_else(|| candle_core::Error::Msg(format!("no ViT layer {i}")))?;
        let h = l.layernorm_before.forward(x)?;
        let x = (l.attention_output.forward(&self.attention(l, &h)?)? + x)?;
        let h = l.intermediate.forward(&l.layernorm_after.forward(&x)?)?;
        let h = match self.activation {
            Activation::GeluErf => h.gelu_erf()?,
            Activation::GeluTanh => h.gelu()?,
            Activation::Relu => h.relu()?,
        };
        l.output.forward(&h)? + x
    }

    /// `ViTSelfAttention`: eager softmax attention, scores divided by `√head_dim`.
    fn attention(&self, l: &Layer, h: &Tensor) -> Result<Tensor> {
        let (b, n, c) = h.dims3()?;
        let d = c / self.heads;
        let split = |t: Tensor| {
            t.reshape((b, n, self.heads, d))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = split(l.query.forward(h)?)?;
        let k = split(l.key.forward(h)?)?;
        let v = split(l.value.forward(h)?)?;
        let scores = (q.matmul(&k.t()?)? / (d as f64).sqrt())?;
        let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
        probs.matmul(&v)?.transpose(1, 2)?.reshape((b, n, c))
    }

    /// The final LayerNorm: `last_hidden_state`.
    pub(crate) fn finish(&self, x: &Tensor) -> Result<Tensor> {
        self.layernorm.forward(x)
    }
}
