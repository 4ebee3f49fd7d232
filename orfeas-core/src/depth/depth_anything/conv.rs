//! The DPT's 1×1 and 3×3 convolutions (padding `k / 2`) as matrix products, with the ReLUs
//! that its blocks put around them.
//!
//! On the CPU (f32) they run as one fused kernel, [`kernels::Conv`], for any stride. Elsewhere they are built
//! from tensor views so the same code runs on every candle device: candle 0.11's own CPU
//! convolution gathers its im2col one element at a time (it took about a quarter of the forward
//! pass), and this path is its replacement off the CPU. For 3×3, with the output laid out over
//! the padded width (two throw-away columns per row), each kernel tap is one shifted window of
//! the flattened, zero-padded image, so the im2col matrix is nine contiguous slices and the
//! product a single large GEMM; rows are processed in chunks to bound the temporary matrix.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use crate::kernels;

/// Upper bound on the elements of one chunk's im2col matrix (64 MB of f32).
const CHUNK_ELEMENTS: usize = 16 << 20;

/// A `kernel × kernel` (1 or 3), padding `kernel / 2` convolution with the weights of a
/// PyTorch `nn.Conv2d`.
#[derive(Debug)]
pub(super) struct Conv {
    /// `[c_out, c_in * k²]`, the PyTorch `[c_out, c_in, k, k]` weight flattened.
    weight: Tensor,
    /// `[c_out]`, zeros for a layer without bias (the fused kernel always starts from a bias).
    bias: Tensor,
    kernel: usize,
    stride: usize,
    c_in: usize,
    c_out: usize,
}

impl Conv {
    /// Stride 1 (output size = input size); loads `weight` (and `bias` when `with_bias`).
    pub(super) fn new(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        with_bias: bool,
        vb: VarBuilder,
    ) -> Result<Self> {
        Self::strided(c_in, c_out, kernel, 1, with_bias, vb)
    }

    pub(super) fn strided(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        with_bias: bool,
        vb: VarBuilder,
    ) -> Result<Self> {
        if !matches!(kernel, 1 | 3) || stride == 0 {
            candle_core::bail!(
                "convolution with kernel {kernel}, stride {stride}: only 1×1 and 3×3 are supported"
            )
        }
        let weight = vb
            .get((c_out, c_in, kernel, kernel), "weight")?
            .reshape((c_out, c_in * kernel * kernel))?;
        let bias = if with_bias {
            vb.get(c_out, "bias")?
        } else {
            Tensor::zeros(c_out, vb.dtype(), vb.device())?
        };
        Ok(Self {
            weight,
            bias,
            kernel,
            stride,
            c_in,
            c_out,
        })
    }

    /// `relu?(conv(relu?(x)))`: the pre-activation residual units and the head apply ReLU
    /// right around their convolutions, which the CPU kernel does in the same pass.
    pub(super) fn forward_with(
        &self,
        x: &Tensor,
        relu_input: bool,
        relu_output: bool,
    ) -> Result<Tensor> {
        let c = x.dim(1)?;
        if c != self.c_in {
            candle_core::bail!(
                "conv{k}x{k}: expected {} input channels, got {c}",
                self.c_in,
                k = self.kernel
            )
        }
        if kernels::applies_to(x) {
            let op = kernels::Conv {
                kernel: self.kernel,
                stride: self.stride,
                relu_input,
                relu_output,
            };
            return x
                .contiguous()?
                .apply_op3_no_bwd(&self.weight, &self.bias, &op);
        }
        let x = if relu_input { x.relu()? } else { x.clone() };
        let y = self.generic(&x)?;
        if relu_output {
            y.relu()
        } else {
            Ok(y)
        }
    }

    /// The device-independent path (tensor ops only).
    fn generic(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let weight = if b == 1 {
            self.weight.unsqueeze(0)?
        } else {
            self.weight.broadcast_left(b)?.contiguous()?
        };
        let bias = self.bias.reshape((1, self.c_out, 1, 1))?;
        if self.stride != 1 {
            let weight = self
                .weight
                .reshape((self.c_out, c, self.kernel, self.kernel))?;
            return x
                .conv2d(&weight, self.kernel / 2, self.stride, 1, 1)?
                .broadcast_add(&bias);
        }
        if self.kernel == 1 {
            let y = weight
                .matmul(&x.reshape((b, c, h * w))?)?
                .reshape((b, self.c_out, h, w))?;
            return y.broadcast_add(&bias);
        }
        let row = w + 2;
        // One zero pixel around the image, plus a second bottom row so that the window of the
        // last tap (offset 2 * row + 2) stays inside the buffer.
        let padded = x
            .pad_with_zeros(2, 1, 2)?
            .pad_with_zeros(3, 1, 1)?
            .flatten_from(2)?
            .contiguous()?;
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
        let y = Tensor::cat(&chunks, 2)?
            .reshape((b, self.c_out, h, row))?
            .narrow(3, 0, w)?;
        y.broadcast_add(&bias)
    }
}

impl Module for Conv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(x, false, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::{Conv2d, Conv2dConfig};

    use crate::depth::depth_anything::max_abs_diff;

    /// Both paths (the fused CPU kernel and the tensor-op one) give candle's own convolution,
    /// for odd sizes, batch 2, several chunks, with and without bias and the ReLUs.
    #[test]
    fn matches_candle_conv2d() {
        let dev = Device::Cpu;
        // Inputs taller than 10 rows also run with stride 2 (the reassemble stage's downsampling).
        let cases = [
            (1, 3, 5, 7, 9, true),
            (2, 4, 2, 13, 5, false),
            (1, 2, 3, 1, 1, true),
            (1, 5, 4, 40, 70, true),
            (1, 3, 2, 19, 37, true),
            (2, 6, 3, 37, 37, false),
        ];
        for (kernel, (b, c_in, c_out, h, w, bias)) in
            [1, 3].into_iter().flat_map(|k| cases.map(|c| (k, c)))
        {
            let weight = Tensor::randn(0f32, 1.0, (c_out, c_in, kernel, kernel), &dev).expect("w");
            let b_t = Tensor::randn(0f32, 1.0, c_out, &dev).expect("b");
            let x = Tensor::randn(0f32, 1.0, (b, c_in, h, w), &dev).expect("x");
            let mut map = std::collections::HashMap::new();
            map.insert("weight".to_owned(), weight.clone());
            map.insert("bias".to_owned(), b_t.clone());
            let vb = VarBuilder::from_tensors(map, DType::F32, &dev);
            let stride = if h > 10 { 2 } else { 1 };
            let ours = Conv::strided(c_in, c_out, kernel, stride, bias, vb).expect("conv");
            let cfg = Conv2dConfig {
                padding: kernel / 2,
                stride,
                ..Default::default()
            };
            let reference = Conv2d::new(weight, bias.then_some(b_t), cfg);
            for (relu_in, relu_out) in [(false, false), (true, false), (false, true)] {
                let input = if relu_in {
                    x.relu().expect("relu")
                } else {
                    x.clone()
                };
                let want = reference.forward(&input).expect("candle");
                let want = if relu_out {
                    want.relu().expect("relu")
                } else {
                    want
                };
                let fused = ours.forward_with(&x, relu_in, relu_out).expect("fused");
                let generic = ours.generic(&input).expect("generic");
                let generic = if relu_out {
                    generic.relu().expect("relu")
                } else {
                    generic
                };
                let case =
                    format!("k{kernel}/{stride} {b}x{c_in}x{h}x{w} relu {relu_in}/{relu_out}");
                assert!(max_abs_diff(&fused, &want) < 1e-4, "fused {case}");
                assert!(max_abs_diff(&generic, &want) < 1e-4, "generic {case}");
            }
        }
    }
}
