//! BiRefNet's decoder as its authors' `Decoder` runs at inference (`models/birefnet.py`): the
//! squeeze block, four decoder blocks with deformable ASPP, lateral connections, the image's
//! patches fed back at every level, the gradient attention of `out_ref`, the final 1×1 head.
//! The training-only heads (`conv_ms_spvn_*`, `gdt_convs_pred_*`) are not loaded.

use candle_core::{Tensor, D};

use super::layers::{fold_batch_norm, image_to_patches, resize_align_corners, Conv};
use super::weights::Weights;
use crate::cancel::CancelToken;
use crate::error::{OrfeasError, Result};
use crate::kernels::{deform_conv2d, DeformGeometry};

/// `DeformableConv2d` + its BatchNorm + ReLU (`_ASPPModuleDeformable`).
#[derive(Debug)]
pub(super) struct DeformBranch {
    pub(super) offset: Conv,
    pub(super) modulator: Conv,
    /// The regular convolution's weight with the BatchNorm folded in, and the folded bias.
    weight: Tensor,
    bias: Tensor,
    kernel: usize,
}

impl DeformBranch {
    fn load(w: &Weights, p: &str) -> Result<Self> {
        let offset = Conv::load(w, &format!("{p}.atrous_conv.offset_conv"), None)?;
        let modulator = Conv::load(w, &format!("{p}.atrous_conv.modulator_conv"), None)?;
        let weight = w.get(&format!("{p}.atrous_conv.regular_conv.weight"), 4)?;
        let (c_out, c_in, k, _) = weight.dims4().map_err(|e| w.invalid(e.to_string()))?;
        if offset.c_out != 2 * k * k || modulator.c_out != k * k || offset.c_in != c_in {
            return Err(w.invalid(format!(
                "{p}: offset/modulator convolutions do not match a {k}×{k} kernel over {c_in} channels"
            )));
        }
        let zero = Tensor::zeros(c_out, candle_core::DType::F32, weight.device())
            .map_err(|e| w.invalid(e.to_string()))?;
        let (weight, bias) = fold_batch_norm(w, &format!("{p}.bn"), &weight, &zero, c_out)?;
        Ok(Self {
            offset,
            modulator,
            weight,
            bias,
            kernel: k,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let offset = self.offset.forward(x, false)?;
        let mask = (candle_nn::ops::sigmoid(&self.modulator.forward(x, false)?)? * 2.0)?;
        deform_conv2d(
            x,
            &offset,
            &mask,
            &self.weight,
            Some(&self.bias),
            DeformGeometry::padding(self.kernel / 2),
        )?
        .relu()
    }
}

/// `ASPPDeformable`: a 1×1 deformable branch, the deformable 1/3/7 branches, the global average
/// branch broadcast back, concatenated, 1×1 conv + BN + ReLU (dropout is off at inference).
#[derive(Debug)]
pub(super) struct Aspp {
    pub(super) branches: Vec<DeformBranch>,
    pool: Conv,
    project: Conv,
}

impl Aspp {
    pub(super) fn load(w: &Weights, p: &str) -> Result<Self> {
        let mut branches = vec![DeformBranch::load(w, &format!("{p}.aspp1"))?];
        let mut i = 0;
        while w.has(&format!(
            "{p}.aspp_deforms.{i}.atrous_conv.regular_conv.weight"
        )) {
            branches.push(DeformBranch::load(w, &format!("{p}.aspp_deforms.{i}"))?);
            i += 1;
        }
        let pool = Conv::load(
            w,
            &format!("{p}.global_avg_pool.1"),
            Some(&format!("{p}.global_avg_pool.2")),
        )?;
        let project = Conv::load(w, &format!("{p}.conv1"), Some(&format!("{p}.bn1")))?;
        Ok(Self {
            branches,
            pool,
            project,
        })
    }

    pub(super) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, _, h, wd) = x.dims4()?;
        let mut parts = self
            .branches
            .iter()
            .map(|br| br.forward(x))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let pooled = x.mean_keepdim(D::Minus1)?.mean_keepdim(D::Minus2)?;
        let pooled = self.pool.forward(&pooled, true)?;
        parts.push(
            pooled
                .broadcast_as((b, pooled.dim(1)?, h, wd))?
                .contiguous()?,
        );
        self.project.forward(&Tensor::cat(&parts, 1)?, true)
    }
}

/// `BasicDecBlk`: conv 3×3 + BN + ReLU, ASPPDeformable, conv 3×3 + BN (no final ReLU).
#[derive(Debug)]
pub(super) struct DecoderBlock {
    conv_in: Conv,
    aspp: Aspp,
    conv_out: Conv,
}

impl DecoderBlock {
    fn load(w: &Weights, p: &str) -> Result<Self> {
        Ok(Self {
            conv_in: Conv::load(w, &format!("{p}.conv_in"), Some(&format!("{p}.bn_in")))?,
            aspp: Aspp::load(w, &format!("{p}.dec_att"))?,
            conv_out: Conv::load(w, &format!("{p}.conv_out"), Some(&format!("{p}.bn_out")))?,
        })
    }

    pub(super) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let x = self.conv_in.forward(x, true)?;
        let x = self.aspp.forward(&x)?;
        self.conv_out.forward(&x, false)
    }
}

/// `SimpleConvs`: two 3×3 convolutions, no activation between them.
#[derive(Debug)]
pub(super) struct PatchBlock(Conv, Conv);

impl PatchBlock {
    fn load(w: &Weights, p: &str) -> Result<Self> {
        Ok(Self(
            Conv::load(w, &format!("{p}.conv1"), None)?,
            Conv::load(w, &format!("{p}.conv_out"), None)?,
        ))
    }

    /// The image cut into patches of `size` (or, at full size, the image), then the convs.
    pub(super) fn forward(
        &self,
        image: &Tensor,
        h: usize,
        w: usize,
    ) -> candle_core::Result<Tensor> {
        let patches = image_to_patches(image, h, w)?;
        self.1.forward(&self.0.forward(&patches, false)?, false)
    }
}

/// `gdt_convs_k` (3×3 conv + BN + ReLU) and `gdt_convs_attn_k` (1×1): `p · sigmoid(attn)`.
#[derive(Debug)]
pub(super) struct GradientAttention(Conv, Conv);

impl GradientAttention {
    fn load(w: &Weights, k: usize) -> Result<Self> {
        Ok(Self(
            Conv::load(
                w,
                &format!("decoder.gdt_convs_{k}.0"),
                Some(&format!("decoder.gdt_convs_{k}.1")),
            )?,
            Conv::load(w, &format!("decoder.gdt_convs_attn_{k}.0"), None)?,
        ))
    }

    pub(super) fn forward(&self, p: &Tensor) -> candle_core::Result<Tensor> {
        let attn = candle_nn::ops::sigmoid(&self.1.forward(&self.0.forward(p, true)?, false)?)?;
        p.broadcast_mul(&attn)
    }
}

#[derive(Debug)]
pub(super) struct Decoder {
    pub(super) squeeze: DecoderBlock,
    pub(super) blocks: [DecoderBlock; 4],
    pub(super) patches: [PatchBlock; 5],
    pub(super) laterals: [Conv; 3],
    pub(super) attention: [GradientAttention; 3],
    out: Conv,
}

impl Decoder {
    pub(super) fn load(w: &Weights) -> Result<Self> {
        let block = |k: usize| DecoderBlock::load(w, &format!("decoder.decoder_block{k}"));
        let patch = |k: usize| PatchBlock::load(w, &format!("decoder.ipt_blk{k}"));
        let lateral = |k: usize| Conv::load(w, &format!("decoder.lateral_block{k}.conv"), None);
        let decoder = Self {
            squeeze: DecoderBlock::load(w, "squeeze_module.0")?,
            blocks: [block(4)?, block(3)?, block(2)?, block(1)?],
            patches: [patch(5)?, patch(4)?, patch(3)?, patch(2)?, patch(1)?],
            laterals: [lateral(4)?, lateral(3)?, lateral(2)?],
            attention: [
                GradientAttention::load(w, 4)?,
                GradientAttention::load(w, 3)?,
                GradientAttention::load(w, 2)?,
            ],
            out: Conv::load(w, "decoder.conv_out1.0", None)?,
        };
        if w.has("squeeze_module.1.conv_in.weight") {
            return Err(
                w.invalid("squeeze_module has more than one block; the published models have one")
            );
        }
        Ok(decoder)
    }

    /// The logits `[B, 1, H, W]` from the input `[B, 3, H, W]` and the encoder's four levels.
    pub(super) fn forward(
        &self,
        image: &Tensor,
        levels: [Tensor; 4],
        cancel: &CancelToken,
    ) -> Result<Tensor> {
        let err = |e: candle_core::Error| OrfeasError::Internal(format!("BiRefNet decoder: {e}"));
        let [x1, x2, x3, x4] = levels;
        let x4 = self.squeeze.forward(&x4).map_err(err)?;
        let (_, _, h, w) = image.dims4().map_err(err)?;
        let dims = |t: &Tensor| t.dims4().map(|(_, _, h, w)| (h, w));
        let with_patches = |p: &Tensor, block: &PatchBlock| -> candle_core::Result<Tensor> {
            let (ph, pw) = dims(p)?;
            Tensor::cat(&[p.clone(), block.forward(image, ph, pw)?], 1)
        };
        let mut p = self.blocks[0]
            .forward(&with_patches(&x4, &self.patches[0]).map_err(err)?)
            .map_err(err)?;
        // Level by level up from x4: the gradient attention, up to the skip's size, plus its
        // lateral, the image's patches, the next decoder block.
        let steps = self
            .attention
            .iter()
            .zip(&self.laterals)
            .zip(&self.patches[1..4]);
        for (((attention, lateral), patches), (skip, block)) in
            steps.zip([&x3, &x2, &x1].into_iter().zip(&self.blocks[1..]))
        {
            cancel.check()?;
            p = attention.forward(&p).map_err(err)?;
            let (sh, sw) = dims(skip).map_err(err)?;
            let up = resize_align_corners(&p, sh, sw).map_err(err)?;
            let merged = (up + lateral.forward(skip, false).map_err(err)?).map_err(err)?;
            p = block
                .forward(&with_patches(&merged, patches).map_err(err)?)
                .map_err(err)?;
        }
        let p = resize_align_corners(&p, h, w).map_err(err)?;
        let p = with_patches(&p, &self.patches[4]).map_err(err)?;
        self.out.forward(&p, false).map_err(err)
    }
}
