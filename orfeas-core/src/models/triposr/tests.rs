//! The parts of the model that are not public (the ViT, the checkpoint check) against the
//! fixture in `tests/fixtures/triposr` (tiny random weights and the authors' outputs).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use super::config::{FeatureReduction, FieldActivation, MlpActivation, TripoSrConfig, VitConfig};
use super::vit::DinoVit;
use super::{normalised_pixels, weights, CondImage};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/triposr")
}

fn reference(name: &str) -> Tensor {
    let mut all =
        candle_core::safetensors::load(fixture().join("reference.safetensors"), &Device::Cpu)
            .expect("reference tensors");
    all.remove(name).expect("tensor in reference.safetensors")
}

/// Max abs error over max abs reference value.
fn relative_error(got: &Tensor, want: &Tensor) -> f32 {
    assert_eq!(got.dims(), want.dims(), "shapes differ");
    let max = |t: Tensor| {
        t.abs()
            .and_then(|t| t.max_all())
            .and_then(|t| t.to_scalar::<f32>())
            .expect("max")
    };
    max((got - want).expect("diff")) / max(want.clone())
}

#[test]
fn the_tiny_config_parses_with_defaults_and_its_vit_directory() {
    let cfg = TripoSrConfig::from_file(&fixture().join("tiny/config.yaml")).expect("tiny config");
    assert_eq!(cfg.cond_image_size, 48);
    assert_eq!(cfg.backbone.in_channels, 64, "${{tokenizer.num_channels}}");
    assert_eq!(cfg.backbone.norm_num_groups, 32, "Transformer1D's default");
    assert_eq!(cfg.backbone.inner_dim(), 32);
    assert!(!cfg.backbone.attention_bias);
    assert_eq!(cfg.decoder.activation, MlpActivation::Silu);
    assert!(cfg.decoder.bias);
    assert_eq!(cfg.renderer.density_activation, FieldActivation::Exp);
    assert_eq!(cfg.renderer.color_activation, FieldActivation::Sigmoid);
    assert_eq!(cfg.renderer.feature_reduction, FeatureReduction::Concat);
    assert_eq!(
        cfg.vit,
        VitConfig {
            hidden_size: 32,
            num_hidden_layers: 2,
            num_attention_heads: 2,
            intermediate_size: 64,
            hidden_act: "gelu".into(),
            layer_norm_eps: 1e-12,
            image_size: 32,
            patch_size: 8,
            num_channels: 3,
            qkv_bias: true,
        }
    );
    assert_eq!(
        weights::expected(&cfg).len(),
        97,
        "the fixture's tensor count, pooler included"
    );
}

/// The ViT (transformers 4.35 `ViTModel`, position grid 4×4 interpolated to 6×6 by scale factor)
/// on the reference conditioning image gives the reference tokens.
#[test]
fn vit_tokens_match_transformers_4_35() {
    let cfg = TripoSrConfig::from_file(&fixture().join("tiny/config.yaml")).expect("config");
    let tensors = weights::load(&fixture().join("tiny/model.ckpt"), &cfg).expect("weights");
    let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
    let vit = DinoVit::new(&cfg.vit, vb.pp("image_tokenizer").pp("model")).expect("vit");
    let cond = reference("cond_image");
    let image = CondImage {
        size: 48,
        rgb: cond.flatten_all().and_then(|t| t.to_vec1()).expect("rgb"),
    };
    let mut x = vit
        .embed(&normalised_pixels(&[&image], &Device::Cpu).expect("pixels"))
        .expect("embed");
    for i in 0..vit.num_layers() {
        x = vit.layer(i, &x).expect("layer");
    }
    let tokens = vit.finish(&x).expect("layernorm");
    let err = relative_error(&tokens, &reference("image_tokens"));
    eprintln!("image_tokens: relative error {err:.2e}");
    assert!(err <= 1e-4, "image_tokens: {err}");
}
