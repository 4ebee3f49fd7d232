//! 3×3 convolutions (stride 1, padding 1) as matrix products, written with tensor views so the
//! same code runs on every candle device.
//!
//! Why not `candle_nn::Conv2d`: on the CPU, candle 0.11 runs 3×3 convolutions through a tiled
//! im2col that gathers one element at a time, and the DPT neck and head (fusion blocks at up to
//! 296², the head's last 3×3 at 518²) spent about a quarter of the forward pass there. Here the
//! im2col matrix is built from nine contiguous slices of the zero-padded input: with the output
//! laid out over the padded width (two throw-away columns per row), each kernel tap is one shifted
//! window of the flattened image, so building it is a row-wise memcpy and the product is a single
//! large GEMM. Rows are processed in chunks to bound the temporary matrix.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

/// Upper bound on the elements of one chunk's im2col matrix (64 MB of f32).
const CHUNK_ELEMENTS: usize = 16 << 20;

/// A 3×3, stride-1, padding-1 convolution with the weights of a PyTorch `nn.Conv2d`.
#[derive(Debug)]
pub(super) struct Conv3x3 {
    /// `[c_out, c_in * 9]`, the PyTorch `[c_out, c_in, 3, 3]` weight flattened.
    weight: Tensor,
    /// `[1, c_out, 1, 1]`.
    bias: Option<Tensor>,
    c_in: usize,
    c_out: usize,
}

impl Conv3x3 {
    /// Loads `weight` (and `bias` when `with_bias`) from `vb`.
    pub(super) fn new(c_in: usize, c_out: usize, with_bias: bool, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get((c_out, c_in, 3, 3), "weight")?.reshape((c_out, c_in * 9))?;
        let bias = if with_bias { Some(vb.get(c_out, "bias")?.reshape((1, c_out, 1, 1))?) } else { None };
        Ok(Self { weight, bias, c_in, c_out })
    }
}

impl Module for Conv3x3 {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        if c != self.c_in {
            candle_core::bail!("conv3x3: expected {} input channels, got {c}", self.c_in)
        }
        let row = w + 2;
        // One zero pixel around the image, plus a second bottom row so that the window of the
        // last tap (offset 2 * row + 2) stays inside the buffer.
        let padded = x.pad_with_zeros(2, 1, 2)?.pad_with_zeros(3, 1, 1)?.flatten_from(2)?.contiguous()?;
        let weight = if b == 1 { self.weight.unsqueeze(0)? } else { self.weight.broadcast_left(b)?.contiguous()? };
        let rows_per_chunk = (CHUNK_ELEMENTS / (c * 9 * row)).clamp(1, h);
        let mut chunks = Vec::with_capacity(h.div_ceil(rows_per_chunk));
        for y0 in (0..h).step_by(rows_per_chunk) {
            let len = rows_per_chunk.min(h - y0) * row;
            let taps = (0..9)
                .map(|k| padded.narrow(2, (y0 + k / 3) * row + k % 3, len))
                .collect::<Result<Vec<_>>>()?;
            // [b, c, 9, len] → [b, c * 9, len]: row index c * 9 + kh * 3 + kw, as in the weight.
            let columns = Tensor::stack(&taps, 2)?.reshape((b, c * 9, len))?;
            chunks.push(weight.matmul(&columns)?);
        }
        let y = Tensor::cat(&chunks, 2)?.reshape((b, self.c_out, h, row))?.narrow(3, 0, w)?;
        match &self.bias {
            Some(bias) => y.broadcast_add(bias),
            None => y.contiguous(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::{Conv2d, Conv2dConfig};

    /// Same result as candle's own convolution, for odd sizes, batch 2 and several chunks.
    #[test]
    fn matches_candle_conv2d() {
        let dev = Device::Cpu;
        for (b, c_in, c_out, h, w, bias) in [(1, 3, 5, 7, 9, true), (2, 4, 2, 13, 5, false), (1, 2, 3, 1, 1, true)] {
            let weight = Tensor::randn(0f32, 1.0, (c_out, c_in, 3, 3), &dev).expect("w");
            let b_t = Tensor::randn(0f32, 1.0, c_out, &dev).expect("b");
            let x = Tensor::randn(0f32, 1.0, (b, c_in, h, w), &dev).expect("x");
            let mut map = std::collections::HashMap::new();
            map.insert("weight".to_owned(), weight.clone());
            map.insert("bias".to_owned(), b_t.clone());
            let vb = VarBuilder::from_tensors(map, DType::F32, &dev);
            let ours = Conv3x3::new(c_in, c_out, bias, vb).expect("conv");
            let cfg = Conv2dConfig { padding: 1, ..Default::default() };
            let reference = Conv2d::new(weight, bias.then_some(b_t), cfg);
            let got = ours.forward(&x).expect("ours");
            let want = reference.forward(&x).expect("candle");
            assert_eq!(got.dims(), want.dims());
            let err = (got - want)
                .and_then(|d| d.abs())
                .and_then(|d| d.flatten_all())
                .and_then(|d| d.max(0))
                .and_then(|d| d.to_scalar::<f32>())
                .expect("diff");
            assert!(err < 1e-4, "{b}x{c_in}x{h}x{w}: {err}");
        }
    }
}
