//! BiRefNet (ZhengPeng7/BiRefNet, MIT code and weights): dichotomous image segmentation, the
//! learned background remover of the masking stage. Inference path only, written against
//! candle-core/candle-nn and checked against the authors' code at commit 25cb930 on tiny random
//! weights in the published layout (`tests/fixtures/birefnet`, made by its `make_fixtures.py`).
//!
//! - `swin`: the Swin-V1 backbone; T (BiRefNet_lite) and L (BiRefNet) are told apart by the
//!   checkpoint's tensor shapes, as is every other width.
//! - the encoder (here): the backbone on the input and on the input halved (bilinear,
//!   `align_corners=True`), the halved features resized back and concatenated, the first three
//!   levels resized to the last and concatenated before it (`cxt`).
//! - `decoder`: squeeze block, decoder blocks with deformable ASPP
//!   ([`crate::kernels::deform_conv2d`]), lateral blocks, image patches, gradient attention.

mod decoder;
mod layers;
mod swin;
mod weights;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;

use candle_core::{Device, Tensor};

use self::decoder::Decoder;
use self::layers::resize_align_corners;
use self::swin::Swin;
use self::weights::Weights;
use crate::cancel::CancelToken;
use crate::error::{OrfeasError, Result};

/// Which published model a checkpoint is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BiRefNetSize {
    /// BiRefNet_lite: Swin-T (embed 96, depths 2/2/6/2).
    Lite,
    /// BiRefNet: Swin-L (embed 192, depths 2/2/18/2).
    General,
    /// Another backbone size (the tests' tiny model).
    Other,
}

impl fmt::Display for BiRefNetSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Lite => "lite",
            Self::General => "general",
            Self::Other => "other",
        })
    }
}

/// The model, shared by every slot.
pub struct BiRefNet {
    swin: Swin,
    decoder: Decoder,
    size: BiRefNetSize,
}

impl fmt::Debug for BiRefNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BiRefNet")
            .field("size", &self.size)
            .field("backbone", &self.swin.config)
            .finish_non_exhaustive()
    }
}

impl BiRefNet {
    /// Loads `model.safetensors` in the published layout; a missing or misshapen tensor is
    /// ERR_WEIGHTS_INVALID naming the file and the tensor.
    pub fn load(file: &Path, device: &Device) -> Result<Self> {
        let w = Weights::open(file, device)?;
        let swin = Swin::load(&w)?;
        let decoder = Decoder::load(&w)?;
        let c = &swin.config;
        let size = match (c.embed, c.depths.as_slice()) {
            (96, [2, 2, 6, 2]) => BiRefNetSize::Lite,
            (192, [2, 2, 18, 2]) => BiRefNetSize::General,
            _ => BiRefNetSize::Other,
        };
        Ok(Self {
            swin,
            decoder,
            size,
        })
    }

    pub fn size(&self) -> BiRefNetSize {
        self.size
    }

    /// Logits `[B, 1, S, S]` for ImageNet-normalised pixels `[B, 3, S, S]` (S a multiple of 32).
    pub fn forward(&self, pixels: &Tensor, cancel: &CancelToken) -> Result<Tensor> {
        let (_, c, h, w) = pixels
            .dims4()
            .map_err(|e| OrfeasError::Internal(format!("BiRefNet input: {e}")))?;
        if c != 3 || h == 0 || w == 0 || h % 32 != 0 || w % 32 != 0 {
            return Err(OrfeasError::Internal(format!(
                "BiRefNet input {:?}: expected [B, 3, H, W] with H, W multiples of 32",
                pixels.dims()
            )));
        }
        let levels = self.encode(pixels, cancel)?;
        cancel.check()?;
        self.decoder.forward(pixels, levels, cancel)
    }

    /// `forward_enc`: the four levels the decoder starts from.
    fn encode(&self, x: &Tensor, cancel: &CancelToken) -> Result<[Tensor; 4]> {
        let err = |e: candle_core::Error| OrfeasError::Internal(format!("BiRefNet encoder: {e}"));
        let (_, _, h, w) = x.dims4().map_err(err)?;
        let full = self.swin.forward(x).map_err(err)?;
        cancel.check()?;
        let half_input = resize_align_corners(x, h / 2, w / 2).map_err(err)?;
        let half = self.swin.forward(&half_input).map_err(err)?;
        cancel.check()?;
        let mut levels = Vec::with_capacity(4);
        for (f, hf) in full.iter().zip(&half) {
            let (_, _, fh, fw) = f.dims4().map_err(err)?;
            let up = resize_align_corners(hf, fh, fw).map_err(err)?;
            levels.push(Tensor::cat(&[f, &up], 1).map_err(err)?);
        }
        let (_, _, h4, w4) = levels[3].dims4().map_err(err)?;
        let context = levels[..3]
            .iter()
            .map(|l| resize_align_corners(l, h4, w4))
            .chain(std::iter::once(Ok(levels[3].clone())))
            .collect::<candle_core::Result<Vec<_>>>()
            .map_err(err)?;
        let x4 = Tensor::cat(&context, 1).map_err(err)?;
        let mut it = levels.into_iter();
        let (Some(x1), Some(x2), Some(x3)) = (it.next(), it.next(), it.next()) else {
            return Err(OrfeasError::Internal(
                "BiRefNet encoder: fewer than four levels".into(),
            ));
        };
        Ok([x1, x2, x3, x4])
    }
}
