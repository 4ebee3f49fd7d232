//! The model's parts at the published size on random weights, for the speed benchmark
//! (`benches/src/bin/triposr_bench.rs`): the cost of a forward pass does not depend on the
//! weights' values, and the real ones (1.7 GB) cannot be downloaded where the benchmark runs.
//! Not part of the supported API.

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;

use super::backbone::Transformer1D;
use super::config::{
    BackboneConfig, DecoderConfig, FeatureReduction, FeedForwardKind, FieldActivation,
    MlpActivation, RendererConfig, TriplaneTokenizerConfig, UpsampleConfig,
};
use super::decoder::{internal, FieldDecoder};
use super::scene::{DensityGrid, SceneCode};
use super::triplane::{TriplaneTokenizer, TriplaneUpsample};
use crate::cancel::CancelToken;

/// `facebook/dino-vitb16` at the published 512² input: 1 + 32² tokens of width 768.
const IMAGE_TOKENS: (usize, usize) = (1025, 768);

/// Tokenizer, backbone, post-processor and decoder of the published `config.yaml`.
#[derive(Debug)]
pub struct RandomParts {
    tokenizer: TriplaneTokenizer,
    backbone: Transformer1D,
    upsample: TriplaneUpsample,
    decoder: FieldDecoder,
    image_tokens: Tensor,
}

impl RandomParts {
    /// Random weights in the published shapes, on the CPU.
    pub fn published() -> crate::Result<Self> {
        let dev = Device::Cpu;
        let vb = VarBuilder::from_backend(Box::new(Random), DType::F32, dev.clone());
        let tokenizer = TriplaneTokenizerConfig {
            plane_size: 32,
            num_channels: 1024,
        };
        let backbone = BackboneConfig {
            in_channels: 1024,
            num_attention_heads: 16,
            attention_head_dim: 64,
            num_layers: 16,
            norm_num_groups: 32,
            cross_attention_dim: Some(IMAGE_TOKENS.1),
            attention_bias: false,
            activation_fn: FeedForwardKind::Geglu,
            norm_elementwise_affine: true,
        };
        let upsample = UpsampleConfig {
            in_channels: 1024,
            out_channels: 40,
        };
        let decoder = DecoderConfig {
            in_channels: 120,
            n_neurons: 64,
            n_hidden_layers: 9,
            activation: MlpActivation::Silu,
            bias: true,
        };
        let renderer = RendererConfig {
            radius: 0.87,
            feature_reduction: FeatureReduction::Concat,
            density_activation: FieldActivation::Exp,
            density_bias: -1.0,
            color_activation: FieldActivation::Sigmoid,
        };
        let build = || -> candle_core::Result<Self> {
            Ok(Self {
                tokenizer: TriplaneTokenizer::new(&tokenizer, vb.pp("tokenizer"))?,
                backbone: Transformer1D::new(&backbone, vb.pp("backbone"))?,
                upsample: TriplaneUpsample::new(&upsample, vb.pp("post_processor"))?,
                decoder: FieldDecoder::new(&decoder, &renderer, vb.pp("decoder"), &dev)?,
                image_tokens: Tensor::randn(0f32, 1.0, (1, IMAGE_TOKENS.0, IMAGE_TOKENS.1), &dev)?,
            })
        };
        build().map_err(internal)
    }

    pub fn num_layers(&self) -> usize {
        self.backbone.num_layers()
    }

    /// Triplane tokens → backbone (against random image tokens) → post-processor, as the
    /// model runs them; `on_stage(name)` after the tokenizer's projection, every block and the
    /// upsampling, so the caller can time each.
    pub fn scene_code(&self, on_stage: &mut dyn FnMut(&str)) -> crate::Result<SceneCode> {
        let mut run = || -> candle_core::Result<SceneCode> {
            let tokens = self.tokenizer.tokens(1)?;
            let mut hidden = self.backbone.project_in(&tokens)?;
            on_stage("project_in");
            for i in 0..self.backbone.num_layers() {
                hidden = self.backbone.block(i, &hidden, &self.image_tokens)?;
                on_stage("block");
            }
            let tokens = self.backbone.project_out(&hidden, &tokens)?;
            let planes = self
                .upsample
                .forward(&self.tokenizer.detokenize(&tokens)?)?;
            on_stage("upsample");
            let (_, _, channels, resolution, _) = planes.dims5()?;
            Ok(SceneCode {
                channels,
                resolution,
                values: planes.flatten_all()?.to_vec1()?,
            })
        };
        run().map_err(internal)
    }

    /// The dense field, as the model's `density_grid`.
    pub fn density_grid(
        &self,
        code: &SceneCode,
        resolution: usize,
        cancel: &CancelToken,
        on_progress: &mut dyn FnMut(f32),
    ) -> crate::Result<DensityGrid> {
        self.decoder
            .density_grid(code, resolution, cancel, on_progress)
    }

    /// The activated colour at `points` (the vertex colours of a mesh).
    pub fn color(&self, code: &SceneCode, points: &[[f32; 3]]) -> crate::Result<Vec<[f32; 3]>> {
        self.decoder.color(code, points)
    }

    /// The activated density at `points`.
    pub fn density(&self, code: &SceneCode, points: &[[f32; 3]]) -> crate::Result<Vec<f32>> {
        self.decoder.density(code, points)
    }
}

/// Random values of the scale each tensor has after PyTorch's initialisation: matrices
/// uniform in ±1/√fan_in, norm weights near 1, biases and embeddings small.
struct Random;

impl SimpleBackend for Random {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let dims = shape.dims();
        let t = if name.ends_with("embeddings") {
            (Tensor::randn(0f32, 1.0, shape.clone(), dev)? / (dims[1] as f64).sqrt())?
        } else if dims.len() >= 2 {
            let bound = 1.0 / (dims[1..].iter().product::<usize>() as f32).sqrt();
            Tensor::rand(-bound, bound, shape.clone(), dev)?
        } else if name.ends_with("weight") {
            Tensor::rand(0.9f32, 1.1, shape.clone(), dev)?
        } else {
            Tensor::rand(-0.1f32, 0.1, shape.clone(), dev)?
        };
        t.to_dtype(dtype)
    }

    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        candle_core::bail!("random weights: {name} needs a shape")
    }

    fn contains_tensor(&self, _: &str) -> bool {
        true
    }
}
