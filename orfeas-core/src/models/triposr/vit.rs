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

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{
    conv2d, layer_norm, linear_b, Conv2d, Conv2dConfig, LayerNorm, Linear, VarBuilder,
};

use super::config::VitConfig;
use crate::depth::depth_anything::bicubic_scale_factor;
use crate::kernels::{self, Dense};

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
    /// Query, key and value stacked into one `[3C, C]` projection (one product instead of
    /// three), the query rows pre-scaled by `1/√head_dim` instead of dividing every score.
    qkv: Dense,
    attention_output: Dense,
    layernorm_after: LayerNorm,
    intermediate: Dense,
    output: Dense,
}

/// `[3C, C]` from the three `[C, C]` projections, the query scaled.
fn fused_qkv(q: Linear, k: Linear, v: Linear, q_scale: f64) -> Result<Linear> {
    let q = Linear::new(
        (q.weight() * q_scale)?,
        q.bias().map(|b| b * q_scale).transpose()?,
    );
    let parts = [&q, &k, &v];
    let weight = Tensor::cat(&parts.map(|l| l.weight()), 0)?;
    let bias = match parts.map(|l| l.bias()) {
        [Some(a), Some(b), Some(c)] => Some(Tensor::cat(&[a, b, c], 0)?),
        _ => None,
    };
    Ok(Linear::new(weight, bias))
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
                let qkv = |name: &str| linear_b(h, h, cfg.qkv_bias, a.pp("attention").pp(name));
                let scale = ((h / cfg.num_attention_heads) as f64).powf(-0.5);
                Ok(Layer {
                    layernorm_before: layer_norm(h, eps, l.pp("layernorm_before"))?,
                    qkv: Dense::new(fused_qkv(qkv("query")?, qkv("key")?, qkv("value")?, scale)?)?,
                    attention_output: Dense::new(linear_b(
                        h,
                        h,
                        true,
                        a.pp("output").pp("dense"),
                    )?)?,
                    layernorm_after: layer_norm(h, eps, l.pp("layernorm_after"))?,
                    intermediate: Dense::new(linear_b(
                        h,
                        cfg.intermediate_size,
                        true,
                        l.pp("intermediate").pp("dense"),
                    )?)?,
                    output: Dense::new(linear_b(
                        cfg.intermediate_size,
                        h,
                        true,
                        l.pp("output").pp("dense"),
                    )?)?,
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
        let x = l.attention_output.forward(
            &self.attention(&l.qkv.forward(&h, false, None)?)?,
            false,
            Some(x),
        )?;
        let h = l.layernorm_after.forward(&x)?;
        let h = match self.activation {
            Activation::GeluErf => l.intermediate.forward(&h, true, None)?,
            Activation::GeluTanh => l.intermediate.forward(&h, false, None)?.gelu()?,
            Activation::Relu => l.intermediate.forward(&h, false, None)?.relu()?,
        };
        l.output.forward(&h, false, Some(&x))
    }

    /// `ViTSelfAttention` on the fused projection `[B, N, 3C]`: eager softmax attention (the
    /// `1/√head_dim` already in the queries); one fused op on the CPU.
    fn attention(&self, qkv: &Tensor) -> Result<Tensor> {
        if kernels::applies_to(qkv) && qkv.is_contiguous() {
            return qkv.apply_op1_no_bwd(&kernels::FusedAttention { heads: self.heads });
        }
        let (b, n, c3) = qkv.dims3()?;
        let c = c3 / 3;
        let split = |i: usize| {
            qkv.narrow(2, i * c, c)?
                .reshape((b, n, self.heads, c / self.heads))?
                .transpose(1, 2)?
                .contiguous()
        };
        let (q, k, v) = (split(0)?, split(1)?, split(2)?);
        let probs = candle_nn::ops::softmax_last_dim(&q.matmul(&k.t()?)?)?;
        probs.matmul(&v)?.transpose(1, 2)?.reshape((b, n, c))
    }

    /// The final LayerNorm: `last_hidden_state`.
    pub(crate) fn finish(&self, x: &Tensor) -> Result<Tensor> {
        self.layernorm.forward(x)
    }
}
