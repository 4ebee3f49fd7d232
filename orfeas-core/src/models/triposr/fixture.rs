//! The tiny TripoSR fixture (`tests/fixtures/triposr/`) for the parts' unit tests: its weights
//! through candle's `VarBuilder`, its reference tensors, and the configuration its
//! `tiny/config.yaml` describes, written out by hand so that these tests depend on the parts
//! alone (the YAML parser has tests of its own).

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use super::config::{
    BackboneConfig, DecoderConfig, FeatureReduction, FeedForwardKind, FieldActivation,
    MlpActivation, RendererConfig, TriplaneTokenizerConfig, UpsampleConfig,
};

/// The fixture folder, `tests/fixtures/triposr`.
pub(super) fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/triposr")
}

/// `tiny/model.safetensors` on the CPU.
pub(super) fn weights() -> VarBuilder<'static> {
    let dev = Device::Cpu;
    let tensors = candle_core::safetensors::load(dir().join("tiny/model.safetensors"), &dev)
        .expect("tiny/model.safetensors");
    VarBuilder::from_tensors(tensors, DType::F32, &dev)
}

/// `reference.safetensors`: what the authors' code computed.
pub(super) fn reference() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(dir().join("reference.safetensors"), &Device::Cpu)
        .expect("reference.safetensors")
}

/// One tensor of `reference.safetensors`.
pub(super) fn reference_tensor(name: &str) -> Tensor {
    reference()
        .remove(name)
        .unwrap_or_else(|| panic!("{name} is not in reference.safetensors"))
}

/// The tiny model's field decoder, on the CPU.
pub(super) fn field_decoder() -> super::decoder::FieldDecoder {
    super::decoder::FieldDecoder::new(
        &decoder(),
        &renderer(),
        weights().pp("decoder"),
        &Device::Cpu,
    )
    .expect("decoder")
}

pub(super) fn tokenizer() -> TriplaneTokenizerConfig {
    TriplaneTokenizerConfig {
        plane_size: 4,
        num_channels: 64,
    }
}

pub(super) fn backbone() -> BackboneConfig {
    BackboneConfig {
        in_channels: 64,
        num_attention_heads: 2,
        attention_head_dim: 16,
        num_layers: 2,
        norm_num_groups: 32,
        cross_attention_dim: Some(32),
        attention_bias: false,
        activation_fn: FeedForwardKind::Geglu,
        norm_elementwise_affine: true,
    }
}

pub(super) fn upsample() -> UpsampleConfig {
    UpsampleConfig {
        in_channels: 64,
        out_channels: 8,
    }
}

pub(super) fn decoder() -> DecoderConfig {
    DecoderConfig {
        in_channels: 24,
        n_neurons: 16,
        n_hidden_layers: 3,
        activation: MlpActivation::Silu,
        bias: true,
    }
}

pub(super) fn renderer() -> RendererConfig {
    RendererConfig {
        radius: 0.87,
        feature_reduction: FeatureReduction::Concat,
        density_activation: FieldActivation::Exp,
        density_bias: -1.0,
        color_activation: FieldActivation::Sigmoid,
    }
}

/// The measure: the largest absolute error over the largest absolute reference value.
pub(super) fn relative_error(got: &Tensor, want: &Tensor) -> f32 {
    assert_eq!(got.dims(), want.dims(), "shapes differ");
    let max = |t: &Tensor| {
        t.abs()
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.max(0))
            .and_then(|t| t.to_scalar::<f32>())
            .expect("max")
    };
    max(&(got - want).expect("difference")) / max(want)
}
