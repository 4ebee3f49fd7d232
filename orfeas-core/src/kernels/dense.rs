//! A linear layer that runs [`Linear`](super::Linear) (packed weight, fused epilogue) on the CPU
//! and candle's layer with separate ops elsewhere, from one set of weights.

use candle_core::{DType, Module, Result, Tensor};

use super::sgemm::PackedB;
use super::{applies_to, Linear};

/// `x Wᵀ + b` with an optional exact GELU and residual add.
#[derive(Debug)]
pub(crate) enum Dense {
    /// f32 on the CPU: `Wᵀ` packed once for the kernel, the bias on the host (zeros when the
    /// layer has none). The weight tensor is not kept: one copy of the weights, not two.
    Packed { weight: PackedB, bias: Vec<f32> },
    /// Other devices and dtypes: candle's layer.
    Tensors(candle_nn::Linear),
}

impl Dense {
    pub fn new(layer: candle_nn::Linear) -> Result<Self> {
        let w = layer.weight();
        if !(w.device().is_cpu() && w.dtype() == DType::F32) {
            return Ok(Self::Tensors(layer));
        }
        let (n, k) = w.dims2()?;
        let mut weight = PackedB::default();
        super::with_host_values(w, |values| weight.pack_columns(k, n, values, k))?;
        let bias = match layer.bias() {
            Some(b) => b.to_vec1()?,
            None => vec![0.0; n],
        };
        Ok(Self::Packed { weight, bias })
    }

    /// `x Wᵀ + b`, then exact GELU when `gelu`, then `+ residual` when given.
    pub fn forward(&self, x: &Tensor, gelu: bool, residual: Option<&Tensor>) -> Result<Tensor> {
        let unpacked;
        let layer = match self {
            Self::Packed { weight, bias } if applies_to(x) => {
                let op = Linear { weight, bias, gelu };
                let x = x.contiguous()?;
                return match residual {
                    Some(r) => x.apply_op2_no_bwd(&r.contiguous()?, &op),
                    None => x.apply_op1_no_bwd(&op),
                };
            }
            // Only when the kernels are switched off (tests of the generic path).
            Self::Packed { weight, bias } => {
                let w =
                    Tensor::from_vec(weight.transposed(), (weight.n(), weight.k()), x.device())?;
                unpacked =
                    candle_nn::Linear::new(w, Some(Tensor::new(bias.as_slice(), x.device())?));
                &unpacked
            }
            Self::Tensors(layer) => layer,
        };
        let y = layer.forward(x)?;
        let y = if gelu { y.gelu_erf()? } else { y };
        match residual {
            Some(r) => y + r,
            None => Ok(y),
        }
    }
}
