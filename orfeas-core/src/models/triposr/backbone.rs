//! `Transformer1D`: the backbone that refines the triplane tokens against the image tokens.
//!
//! GroupNorm over `[B, C, N]` → `[B, N, C]` → `proj_in` → blocks of {LayerNorm →
//! self-attention, LayerNorm → cross-attention to the image tokens, LayerNorm → feed-forward},
//! each added to its input → `proj_out` → `[B, C, N]` + the input tokens. The caller runs the
//! blocks one by one ([`Transformer1D::block`]) so it can report progress and honour a cancel
//! between them.
//!
//! On the CPU (f32) the linears, the attention and GEGLU run as the fused kernels of
//! `crate::kernels`; elsewhere as candle tensor ops computing the same function.

use candle_core::{bail, DType, Result, Tensor, D};
use candle_nn::{Module, VarBuilder};

use super::config::{BackboneConfig, FeedForwardKind};
use crate::kernels::{self, CrossAttention, Dense, FusedAttention, GegluDense};

/// The LayerNorm eps of `nn.LayerNorm`'s default, which the reference's blocks use.
const LAYER_NORM_EPS: f64 = 1e-5;
/// The reference's GroupNorm eps.
const GROUP_NORM_EPS: f64 = 1e-6;
/// `FeedForward`'s `mult`.
const FF_MULT: usize = 4;

#[derive(Debug)]
pub(crate) struct Transformer1D {
    norm: candle_nn::GroupNorm,
    proj_in: Dense,
    blocks: Vec<Block>,
    proj_out: Dense,
    in_channels: usize,
}

impl Transformer1D {
    /// `vb` at `backbone`.
    pub(crate) fn new(cfg: &BackboneConfig, vb: VarBuilder) -> Result<Self> {
        let (c, inner) = (cfg.in_channels, cfg.inner_dim());
        if cfg.norm_num_groups == 0 || c % cfg.norm_num_groups != 0 {
            bail!(
                "backbone: {} GroupNorm groups do not divide {c} channels",
                cfg.norm_num_groups
            )
        }
        let nv = vb.pp("norm");
        let norm = candle_nn::GroupNorm::new(
            nv.get(c, "weight")?,
            nv.get(c, "bias")?,
            c,
            cfg.norm_num_groups,
            GROUP_NORM_EPS,
        )?;
        let blocks = (0..cfg.num_layers)
            .map(|i| Block::new(cfg, vb.pp("transformer_blocks").pp(i)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            norm,
            proj_in: Dense::new(candle_nn::linear(c, inner, vb.pp("proj_in"))?)?,
            blocks,
            proj_out: Dense::new(candle_nn::linear(inner, c, vb.pp("proj_out"))?)?,
            in_channels: c,
        })
    }

    pub(crate) fn num_layers(&self) -> usize {
        self.blocks.len()
    }

    /// `tokens = [B, C, N]` → GroupNorm → `[B, N, C]` → `proj_in` → `[B, N, inner]`.
    pub(crate) fn project_in(&self, tokens: &Tensor) -> Result<Tensor> {
        let (_, c, _) = tokens.dims3()?;
        if c != self.in_channels {
            bail!(
                "backbone: tokens {:?}, expected {} channels",
                tokens.dims(),
                self.in_channels
            )
        }
        let normed = self.norm.forward(tokens)?.transpose(1, 2)?.contiguous()?;
        self.proj_in.forward(&normed, false, None)
    }

    /// Block `i` on `hidden = [B, N, inner]` with `image_tokens = [B, Nt, Cx]`.
    pub(crate) fn block(&self, i: usize, hidden: &Tensor, image_tokens: &Tensor) -> Result<Tensor> {
        let Some(block) = self.blocks.get(i) else {
            bail!("backbone: block {i} of {}", self.blocks.len())
        };
        block.forward(hidden, image_tokens)
    }

    /// `proj_out`, back to `[B, C, N]`, plus the tokens the backbone started from.
    pub(crate) fn project_out(&self, hidden: &Tensor, tokens: &Tensor) -> Result<Tensor> {
        let out = self.proj_out.forward(hidden, false, None)?;
        out.transpose(1, 2)?.contiguous()? + tokens
    }
}

/// `nn.LayerNorm(dim, elementwise_affine)`: the weights on the host for the CPU kernel and as
/// tensors for the generic path (a few KB).
#[derive(Debug)]
struct Norm {
    weight: Tensor,
    bias: Tensor,
    host: (Vec<f32>, Vec<f32>),
}

impl Norm {
    fn new(dim: usize, affine: bool, vb: VarBuilder) -> Result<Self> {
        let (weight, bias) = if affine {
            (vb.get(dim, "weight")?, vb.get(dim, "bias")?)
        } else {
            (
                Tensor::ones(dim, vb.dtype(), vb.device())?,
                Tensor::zeros(dim, vb.dtype(), vb.device())?,
            )
        };
        let host = (
            weight.to_dtype(DType::F32)?.to_vec1()?,
            bias.to_dtype(DType::F32)?.to_vec1()?,
        );
        Ok(Self { weight, bias, host })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if kernels::applies_to(x) {
            let op = kernels::LayerNorm {
                weight: &self.host.0,
                bias: &self.host.1,
                eps: LAYER_NORM_EPS as f32,
            };
            return x.contiguous()?.apply_op1_no_bwd(&op);
        }
        // Two-pass moments, as the reference computes them.
        let mean = x.mean_keepdim(D::Minus1)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        centred
            .broadcast_div(&(var + LAYER_NORM_EPS)?.sqrt()?)?
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)
    }
}

#[derive(Debug)]
struct Block {
    norm1: Norm,
    attn1: SelfAttention,
    /// Absent when the config has no `cross_attention_dim` (as the reference's `attn2`).
    cross: Option<(Norm, CrossAttn)>,
    norm3: Norm,
    ff: FeedForward,
}

impl Block {
    fn new(cfg: &BackboneConfig, vb: VarBuilder) -> Result<Self> {
        let dim = cfg.inner_dim();
        let affine = cfg.norm_elementwise_affine;
        let cross = match cfg.cross_attention_dim {
            Some(cx) => Some((
                Norm::new(dim, affine, vb.pp("norm2"))?,
                CrossAttn::new(cfg, cx, vb.pp("attn2"))?,
            )),
            None => None,
        };
        Ok(Self {
            norm1: Norm::new(dim, affine, vb.pp("norm1"))?,
            attn1: SelfAttention::new(cfg, vb.pp("attn1"))?,
            cross,
            norm3: Norm::new(dim, affine, vb.pp("norm3"))?,
            ff: FeedForward::new(cfg.activation_fn, dim, vb.pp("ff").pp("net"))?,
        })
    }

    fn forward(&self, hidden: &Tensor, image_tokens: &Tensor) -> Result<Tensor> {
        let hidden = self.attn1.forward(&self.norm1.forward(hidden)?, hidden)?;
        let hidden = match &self.cross {
            Some((norm, attn)) => attn.forward(&norm.forward(&hidden)?, image_tokens, &hidden)?,
            None => hidden,
        };
        self.ff.forward(&self.norm3.forward(&hidden)?, &hidden)
    }
}

/// `to_q`/`to_k`/`to_v` (a bias only with `attention_bias`) of `in_dim` inputs each, the first
/// scaled by `1/√head_dim` (the attention's score scale, folded into the weights once).
fn projections(
    cfg: &BackboneConfig,
    q_in: usize,
    kv_in: usize,
    vb: &VarBuilder,
) -> Result<[candle_nn::Linear; 3]> {
    let inner = cfg.inner_dim();
    let scale = (cfg.attention_head_dim as f64).powf(-0.5);
    let layer = |name: &str, input: usize| {
        candle_nn::linear_b(input, inner, cfg.attention_bias, vb.pp(name))
    };
    let q = layer("to_q", q_in)?;
    let q = candle_nn::Linear::new(
        (q.weight() * scale)?,
        q.bias().map(|b| b * scale).transpose()?,
    );
    Ok([q, layer("to_k", kv_in)?, layer("to_v", kv_in)?])
}

/// Layers concatenated along their outputs into one (`[to_k; to_v]`, `[to_q; to_k; to_v]`).
fn stacked(layers: &[&candle_nn::Linear]) -> Result<candle_nn::Linear> {
    let weights: Vec<Tensor> = layers.iter().map(|l| l.weight().clone()).collect();
    let biases: Option<Vec<Tensor>> = layers.iter().map(|l| l.bias().cloned()).collect();
    Ok(candle_nn::Linear::new(
        Tensor::cat(&weights, 0)?,
        biases.map(|b| Tensor::cat(&b, 0)).transpose()?,
    ))
}

/// `to_out.0`: always with a bias.
fn output(cfg: &BackboneConfig, vb: &VarBuilder) -> Result<Dense> {
    let inner = cfg.inner_dim();
    Dense::new(candle_nn::linear(inner, inner, vb.pp("to_out").pp(0))?)
}

/// The reference's eager attention: `q = [B, Nq, C]` (scaled), `k`, `v = [B, Nk, C]`.
fn eager_attention(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize) -> Result<Tensor> {
    let split = |t: &Tensor| -> Result<Tensor> {
        let (b, n, c) = t.dims3()?;
        t.reshape((b, n, heads, c / heads))?
            .transpose(1, 2)?
            .contiguous()
    };
    let (b, n, c) = q.dims3()?;
    let scores = split(q)?.matmul(&split(k)?.t()?)?;
    let probs = candle_nn::ops::softmax_last_dim(&scores)?;
    probs
        .matmul(&split(v)?)?
        .transpose(1, 2)?
        .reshape((b, n, c))
}

/// The contiguous f32 CPU tensors the fused kernels take.
fn fused(t: &Tensor) -> bool {
    kernels::applies_to(t) && t.is_contiguous()
}

#[derive(Debug)]
struct SelfAttention {
    /// `[to_q · scale; to_k; to_v]`.
    qkv: Dense,
    out: Dense,
    heads: usize,
}

impl SelfAttention {
    fn new(cfg: &BackboneConfig, vb: VarBuilder) -> Result<Self> {
        let inner = cfg.inner_dim();
        let [q, k, v] = projections(cfg, inner, inner, &vb)?;
        Ok(Self {
            qkv: Dense::new(stacked(&[&q, &k, &v])?)?,
            out: output(cfg, &vb)?,
            heads: cfg.num_attention_heads,
        })
    }

    /// `residual + to_out(attention(x))`.
    fn forward(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        let qkv = self.qkv.forward(x, false, None)?;
        let ctx = if fused(&qkv) {
            qkv.apply_op1_no_bwd(&FusedAttention { heads: self.heads })?
        } else {
            let c = qkv.dim(D::Minus1)? / 3;
            let part = |i: usize| qkv.narrow(D::Minus1, i * c, c);
            eager_attention(&part(0)?, &part(1)?, &part(2)?, self.heads)?
        };
        self.out.forward(&ctx, false, Some(residual))
    }
}

#[derive(Debug)]
struct CrossAttn {
    /// `to_q · scale`.
    q: Dense,
    /// `[to_k; to_v]`, applied to the image tokens.
    kv: Dense,
    out: Dense,
    heads: usize,
}

impl CrossAttn {
    fn new(cfg: &BackboneConfig, cross_dim: usize, vb: VarBuilder) -> Result<Self> {
        let [q, k, v] = projections(cfg, cfg.inner_dim(), cross_dim, &vb)?;
        Ok(Self {
            q: Dense::new(q)?,
            kv: Dense::new(stacked(&[&k, &v])?)?,
            out: output(cfg, &vb)?,
            heads: cfg.num_attention_heads,
        })
    }

    /// `residual + to_out(attention(q(x), kv(image_tokens)))`.
    fn forward(&self, x: &Tensor, image_tokens: &Tensor, residual: &Tensor) -> Result<Tensor> {
        let q = self.q.forward(x, false, None)?;
        let kv = self.kv.forward(image_tokens, false, None)?;
        let ctx = if fused(&q) && fused(&kv) {
            q.apply_op2_no_bwd(&kv, &CrossAttention { heads: self.heads })?
        } else {
            let c = q.dim(D::Minus1)?;
            let (k, v) = (kv.narrow(D::Minus1, 0, c)?, kv.narrow(D::Minus1, c, c)?);
            eager_attention(&q, &k, &v, self.heads)?
        };
        self.out.forward(&ctx, false, Some(residual))
    }
}

/// `FeedForward`: `net.0` (the activation module with its `proj`), `net.2` back to `dim`.
#[derive(Debug)]
struct FeedForward {
    first: FirstHalf,
    second: Dense,
}

#[derive(Debug)]
enum FirstHalf {
    /// `geglu`: `proj` to `2 · inner`, `hidden · gelu_erf(gate)`.
    Geglu(GegluDense),
    /// `gelu`: `proj`, exact GELU (fused into the product on the CPU).
    Gelu(Dense),
    /// `gelu-approximate`: `proj`, tanh GELU.
    GeluTanh(Dense),
    /// `geglu-approximate`: `proj`, `x · sigmoid(1.702 x)`.
    Quick(Dense),
}

impl FeedForward {
    fn new(kind: FeedForwardKind, dim: usize, vb: VarBuilder) -> Result<Self> {
        let inner = dim * FF_MULT;
        let proj = |out: usize| candle_nn::linear(dim, out, vb.pp(0).pp("proj"));
        let first = match kind {
            FeedForwardKind::Geglu => FirstHalf::Geglu(GegluDense::new(proj(2 * inner)?)?),
            FeedForwardKind::Gelu => FirstHalf::Gelu(Dense::new(proj(inner)?)?),
            FeedForwardKind::GeluApproximate => FirstHalf::GeluTanh(Dense::new(proj(inner)?)?),
            FeedForwardKind::GegluApproximate => FirstHalf::Quick(Dense::new(proj(inner)?)?),
        };
        Ok(Self {
            first,
            second: Dense::new(candle_nn::linear(inner, dim, vb.pp(2))?)?,
        })
    }

    /// `residual + net(x)`.
    fn forward(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        let hidden = match &self.first {
            FirstHalf::Geglu(layer) => layer.forward(x)?,
            FirstHalf::Gelu(layer) => layer.forward(x, true, None)?,
            FirstHalf::GeluTanh(layer) => layer.forward(x, false, None)?.gelu()?,
            FirstHalf::Quick(layer) => {
                let y = layer.forward(x, false, None)?;
                (&y * candle_nn::ops::sigmoid(&(&y * 1.702)?)?)?
            }
        };
        self.second.forward(&hidden, false, Some(residual))
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::super::triplane::TriplaneTokenizer;
    use super::*;
    use crate::kernels::with_kernels_disabled;

    /// tokenizer → GroupNorm/proj_in → every block (against the reference's image tokens) →
    /// proj_out + residual, on the CPU kernels and on the generic tensor ops.
    #[test]
    fn backbone_matches_the_reference_on_both_paths() {
        let reference = fixture::reference();
        let vb = fixture::weights();
        let cfg = fixture::backbone();
        let tokenizer =
            TriplaneTokenizer::new(&fixture::tokenizer(), vb.pp("tokenizer")).expect("tokenizer");
        let backbone = Transformer1D::new(&cfg, vb.pp("backbone")).expect("backbone");
        assert_eq!(backbone.num_layers(), cfg.num_layers);
        let image_tokens = &reference["image_tokens"];
        let run = || {
            let tokens = tokenizer.tokens(1).expect("tokens");
            let mut hidden = backbone.project_in(&tokens).expect("project in");
            for i in 0..backbone.num_layers() {
                hidden = backbone.block(i, &hidden, image_tokens).expect("block");
            }
            backbone.project_out(&hidden, &tokens).expect("project out")
        };
        for (path, got) in [("kernels", run()), ("generic", with_kernels_disabled(run))] {
            let err = fixture::relative_error(&got, &reference["backbone_tokens"]);
            eprintln!("backbone_tokens ({path}): relative error {err:.2e}");
            assert!(err <= 1e-4, "{path}: relative error {err}");
        }
        let hidden = backbone
            .project_in(&tokenizer.tokens(1).expect("tokens"))
            .expect("project in");
        assert!(backbone
            .block(cfg.num_layers, &hidden, image_tokens)
            .is_err());
    }

    /// A batch of two runs each image as the batch of one does (the kernels index per image).
    #[test]
    fn a_batch_of_two_matches_two_single_images() {
        let reference = fixture::reference();
        let vb = fixture::weights();
        let tokenizer =
            TriplaneTokenizer::new(&fixture::tokenizer(), vb.pp("tokenizer")).expect("tokenizer");
        let backbone =
            Transformer1D::new(&fixture::backbone(), vb.pp("backbone")).expect("backbone");
        let one = &reference["image_tokens"];
        let other = (one * -0.5).expect("other");
        let run = |images: &Tensor| {
            let tokens = tokenizer
                .tokens(images.dim(0).expect("batch"))
                .expect("tokens");
            let mut hidden = backbone.project_in(&tokens).expect("project in");
            for i in 0..backbone.num_layers() {
                hidden = backbone.block(i, &hidden, images).expect("block");
            }
            backbone.project_out(&hidden, &tokens).expect("project out")
        };
        let both = run(&Tensor::cat(&[one, &other], 0).expect("cat"));
        for (i, images) in [one, &other].into_iter().enumerate() {
            let single = run(images);
            let err = fixture::relative_error(&both.narrow(0, i, 1).expect("narrow"), &single);
            assert!(err < 1e-6, "image {i}: {err}");
        }
    }
}
