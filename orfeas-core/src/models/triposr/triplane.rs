//! The learned triplane tokens (`Triplane1DTokenizer`) and the post-processor that turns the
//! backbone's tokens into the field's planes (`TriplaneUpsampleNetwork`).

use candle_core::{bail, Result, Tensor};
use candle_nn::VarBuilder;

use super::config::{TriplaneTokenizerConfig, UpsampleConfig};
use crate::kernels::Dense;

/// `3 × C × P × P` learned embeddings, flattened to `C` channels of `3·P·P` tokens in the
/// order (plane, row, column), as the reference's `rearrange` does.
#[derive(Debug)]
pub(crate) struct TriplaneTokenizer {
    /// `[3, C, P, P]`.
    embeddings: Tensor,
    plane_size: usize,
    channels: usize,
}

impl TriplaneTokenizer {
    /// `vb` at `tokenizer`.
    pub(crate) fn new(cfg: &TriplaneTokenizerConfig, vb: VarBuilder) -> Result<Self> {
        let (p, c) = (cfg.plane_size, cfg.num_channels);
        Ok(Self {
            embeddings: vb.get((3, c, p, p), "embeddings")?,
            plane_size: p,
            channels: c,
        })
    }

    /// `[B, C, 3·P·P]`: the embeddings repeated over the batch.
    pub(crate) fn tokens(&self, batch: usize) -> Result<Tensor> {
        let (p, c) = (self.plane_size, self.channels);
        self.embeddings
            .permute((1, 0, 2, 3))?
            .reshape((1, c, 3 * p * p))?
            .repeat((batch, 1, 1))
    }

    /// `[B, C, 3·P·P]` → `[B, 3, C, P, P]`, the inverse of [`tokens`](Self::tokens)' layout.
    pub(crate) fn detokenize(&self, tokens: &Tensor) -> Result<Tensor> {
        let (p, c) = (self.plane_size, self.channels);
        let (b, ct, nt) = tokens.dims3()?;
        if ct != c || nt != 3 * p * p {
            bail!(
                "detokenize: tokens {:?}, expected [B, {c}, {}]",
                tokens.dims(),
                3 * p * p
            )
        }
        tokens
            .reshape((b, c, 3, p, p))?
            .permute((0, 2, 1, 3, 4))?
            .contiguous()
    }
}

/// `ConvTranspose2d(Ci, Co, kernel 2, stride 2)` on each plane. Kernel and stride being equal,
/// every input texel alone makes its output 2 × 2 block: the layer is one product
/// `[texels, Ci] · [Ci, Co·2·2]` followed by a reshuffle, which runs on the CPU kernels (and
/// any device) instead of a general transposed convolution.
#[derive(Debug)]
pub(crate) struct TriplaneUpsample {
    /// `[Ci] → [Co·2·2]`, columns ordered (channel, row offset, column offset).
    product: Dense,
    in_channels: usize,
    out_channels: usize,
}

impl TriplaneUpsample {
    /// `vb` at `post_processor`; the weight is PyTorch's `[Ci, Co, 2, 2]`.
    pub(crate) fn new(cfg: &UpsampleConfig, vb: VarBuilder) -> Result<Self> {
        let (ci, co) = (cfg.in_channels, cfg.out_channels);
        let vb = vb.pp("upsample");
        let weight = vb.get((ci, co, 2, 2), "weight")?;
        let bias = vb.get(co, "bias")?;
        // As a linear layer: `W' = [Co·4, Ci]`, each bias repeated for its 2 × 2 outputs.
        let weight = weight.reshape((ci, co * 4))?.t()?.contiguous()?;
        let bias = bias.unsqueeze(1)?.repeat((1, 4))?.flatten_all()?;
        Ok(Self {
            product: Dense::new(candle_nn::Linear::new(weight, Some(bias)))?,
            in_channels: ci,
            out_channels: co,
        })
    }

    /// `[B, 3, Ci, P, P]` → `[B, 3, Co, 2P, 2P]`.
    pub(crate) fn forward(&self, planes: &Tensor) -> Result<Tensor> {
        let (b, np, ci, h, w) = planes.dims5()?;
        if np != 3 || ci != self.in_channels {
            bail!(
                "upsample: planes {:?}, expected [B, 3, {}, P, P]",
                planes.dims(),
                self.in_channels
            )
        }
        let co = self.out_channels;
        let texels = planes
            .reshape((b * 3, ci, h * w))?
            .transpose(1, 2)?
            .contiguous()?;
        let blocks = self.product.forward(&texels, false, None)?;
        // [n, i, j, o, a, b] → [n, o, i, a, j, b]: output pixel (2i + a, 2j + b).
        blocks
            .reshape((b * 3, h, w, co, 2, 2))?
            .permute((0, 3, 1, 4, 2, 5))?
            .contiguous()?
            .reshape((b, 3, co, 2 * h, 2 * w))
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture;
    use super::*;
    use crate::kernels::with_kernels_disabled;

    #[test]
    fn tokens_follow_the_plane_row_column_order_and_detokenize_inverts_them() {
        let cfg = fixture::tokenizer();
        let tokenizer =
            TriplaneTokenizer::new(&cfg, fixture::weights().pp("tokenizer")).expect("tokenizer");
        let tokens = tokenizer.tokens(2).expect("tokens");
        let p = cfg.plane_size;
        assert_eq!(tokens.dims(), &[2, cfg.num_channels, 3 * p * p]);
        let emb: Vec<f32> = tokenizer
            .embeddings
            .flatten_all()
            .and_then(|t| t.to_vec1())
            .expect("embeddings");
        let got = tokens.to_vec3::<f32>().expect("tokens");
        let c = cfg.num_channels;
        for (plane, channel, row, col) in [(0, 0, 0, 0), (1, 5, 2, 3), (2, c - 1, p - 1, 1)] {
            let want = emb[((plane * c + channel) * p + row) * p + col];
            assert_eq!(got[1][channel][plane * p * p + row * p + col], want);
        }
        let back = tokenizer.detokenize(&tokens).expect("detokenize");
        let again = tokenizer
            .embeddings
            .unsqueeze(0)
            .and_then(|e| e.repeat((2, 1, 1, 1, 1)))
            .expect("repeat");
        assert_eq!(fixture::relative_error(&back, &again), 0.0);
        assert!(tokenizer
            .detokenize(&tokens.narrow(2, 1, 3 * p * p - 1).expect("narrow"))
            .is_err());
    }

    /// `post_processor(detokenize(backbone_tokens))` against the reference's scene codes, on
    /// the CPU kernel and on the tensor ops other devices run.
    #[test]
    fn upsampled_planes_match_the_reference_on_both_paths() {
        let reference = fixture::reference();
        let vb = fixture::weights();
        let tokenizer =
            TriplaneTokenizer::new(&fixture::tokenizer(), vb.pp("tokenizer")).expect("tokenizer");
        let upsample =
            TriplaneUpsample::new(&fixture::upsample(), vb.pp("post_processor")).expect("upsample");
        let run = || {
            let planes = tokenizer
                .detokenize(&reference["backbone_tokens"])
                .expect("detokenize");
            upsample.forward(&planes).expect("upsample")
        };
        for (path, got) in [("kernels", run()), ("generic", with_kernels_disabled(run))] {
            let err = fixture::relative_error(&got, &reference["scene_codes"]);
            eprintln!("scene_codes ({path}): relative error {err:.2e}");
            assert!(err <= 1e-4, "{path}: relative error {err}");
        }
    }
}
