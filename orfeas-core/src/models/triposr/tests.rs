//! The parts of the model that are not public (the ViT, the checkpoint check) against the
//! fixture in `tests/fixtures/triposr` (tiny random weights and the authors' outputs).

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use super::config::{FeatureReduction, FieldActivation, MlpActivation, TripoSrConfig, VitConfig};
use super::vit::DinoVit;
use super::{fixture, normalised_pixels, weights, CondImage};

#[test]
fn the_tiny_config_parses_with_defaults_and_its_vit_directory() {
    let cfg =
        TripoSrConfig::from_file(&fixture::dir().join("tiny/config.yaml")).expect("tiny config");
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
    let cfg = TripoSrConfig::from_file(&fixture::dir().join("tiny/config.yaml")).expect("config");
    let tensors = weights::load(&fixture::dir().join("tiny/model.ckpt"), &cfg).expect("weights");
    let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
    let vit = DinoVit::new(&cfg.vit, vb.pp("image_tokenizer").pp("model")).expect("vit");
    let cond = fixture::reference_tensor("cond_image");
    let image = CondImage {
        size: 48,
        rgb: cond.flatten_all().and_then(|t| t.to_vec1()).expect("rgb"),
    };
    let pixels = normalised_pixels(&[&image], &Device::Cpu).expect("pixels");
    let mut x = vit.embed(&pixels).expect("embed");
    for i in 0..vit.num_layers() {
        x = vit.layer(i, &x).expect("layer");
    }
    let tokens = vit.finish(&x).expect("layernorm");
    let err = fixture::relative_error(&tokens, &fixture::reference_tensor("image_tokens"));
    eprintln!("image_tokens (CPU kernels): relative error {err:.2e}");
    assert!(err <= 1e-4, "image_tokens: {err}");
    // The generic tensor ops, which CUDA runs.
    let generic = crate::kernels::with_kernels_disabled(|| {
        let mut x = vit.embed(&pixels)?;
        for i in 0..vit.num_layers() {
            x = vit.layer(i, &x)?;
        }
        vit.finish(&x)
    })
    .expect("generic path");
    let err = fixture::relative_error(&generic, &fixture::reference_tensor("image_tokens"));
    eprintln!("image_tokens (tensor ops): relative error {err:.2e}");
    assert!(err <= 1e-4, "image_tokens, generic: {err}");
}

fn tiny_config() -> TripoSrConfig {
    TripoSrConfig::from_file(&fixture::dir().join("tiny/config.yaml")).expect("config")
}

/// The pickle and the safetensors file hold the same tensors, and both load.
#[test]
fn ckpt_and_safetensors_load_identically() {
    let cfg = tiny_config();
    let a = weights::load(&fixture::dir().join("tiny/model.ckpt"), &cfg).expect("ckpt");
    let b =
        weights::load(&fixture::dir().join("tiny/model.safetensors"), &cfg).expect("safetensors");
    assert_eq!(a.len(), 95, "97 tensors less the unused pooler");
    for (name, t) in &a {
        let u = &b[name];
        let same = (t - u)
            .and_then(|d| d.abs())
            .and_then(|d| d.max_all())
            .and_then(|d| d.to_scalar::<f32>())
            .expect("diff");
        assert_eq!(same, 0.0, "{name}");
    }
}

/// What `weights::load` says about a damaged or mismatched file: the code, the file, the tensor.
fn refusal(file: &Path) -> String {
    let err = weights::load(file, &tiny_config()).expect_err("must be refused");
    assert_eq!(err.code(), "ERR_WEIGHTS_INVALID", "{err}");
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(
        msg.starts_with(&format!("{}: invalid model weights: ", file.display())),
        "{msg}"
    );
    msg
}

#[test]
fn damaged_files_are_refused_with_the_file_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ckpt = std::fs::read(fixture::dir().join("tiny/model.ckpt")).expect("ckpt");
    let st = std::fs::read(fixture::dir().join("tiny/model.safetensors")).expect("safetensors");
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).expect("write");
        p
    };
    let msg = refusal(&write("model.ckpt", &ckpt[..ckpt.len() / 2]));
    assert!(msg.contains("not a readable PyTorch checkpoint"), "{msg}");
    let garbage: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let msg = refusal(&write("model.ckpt", &garbage));
    assert!(msg.contains("not a readable PyTorch checkpoint"), "{msg}");
    let msg = refusal(&write("model.ckpt", &[]));
    assert!(msg.contains("empty"), "{msg}");
    let msg = refusal(&write("model.safetensors", &st[..st.len() - 100]));
    assert!(
        msg.contains("truncated") && msg.contains("ends at byte"),
        "{msg}"
    );
    let msg = refusal(&write("model.safetensors", &garbage));
    assert!(msg.contains("not a readable safetensors file"), "{msg}");
    let msg = refusal(&write("model.safetensors", &[]));
    assert!(msg.contains("empty"), "{msg}");
}

#[test]
fn mismatched_checkpoints_name_the_first_bad_tensor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let all =
        candle_core::safetensors::load(fixture::dir().join("tiny/model.safetensors"), &Device::Cpu)
            .expect("tensors");
    let write = |edit: &dyn Fn(&mut std::collections::HashMap<String, Tensor>)| {
        let mut t = all.clone();
        edit(&mut t);
        let p = dir.path().join("model.safetensors");
        candle_core::safetensors::save(&t, &p).expect("save");
        p
    };
    let q = "backbone.transformer_blocks.1.attn2.to_k.weight";
    let msg = refusal(&write(&|t| {
        t.remove(q);
    }));
    assert!(
        msg.contains(&format!(
            "tensor {q} is missing (config.yaml gives it shape [32, 32])"
        )),
        "{msg}"
    );
    let msg = refusal(&write(&|t| {
        let r = t[q].reshape((16, 64)).expect("reshape");
        t.insert(q.to_owned(), r);
    }));
    assert!(
        msg.contains(&format!(
            "tensor {q} has shape [16, 64], config.yaml gives [32, 32]"
        )),
        "{msg}"
    );
    let msg = refusal(&write(&|t| {
        t.insert(
            "backbone.extra.weight".into(),
            Tensor::zeros(3, DType::F32, &Device::Cpu).expect("zeros"),
        );
    }));
    assert!(
        msg.contains("unexpected tensor backbone.extra.weight (shape [3])"),
        "{msg}"
    );
    let msg = refusal(&write(&|t| {
        let r = t[q].to_dtype(DType::I64).expect("i64");
        t.insert(q.to_owned(), r);
        t.remove("decoder.layers.0.bias");
    }));
    assert!(
        msg.contains("is I64; only float32") && msg.contains("(2 problems in all)"),
        "{msg}"
    );
    // Half precision converts.
    let p = write(&|t| {
        let r = t[q].to_dtype(DType::F16).expect("f16");
        t.insert(q.to_owned(), r);
    });
    let loaded = weights::load(&p, &tiny_config()).expect("f16 loads");
    assert_eq!(loaded[q].dtype(), DType::F32);
}

/// The backbone alone on the reference image tokens (`Transformer1D` of the authors).
#[test]
fn backbone_tokens_match_the_authors_transformer1d() {
    let fixture_dir = fixture::dir().join("tiny");
    let model = super::TripoSr::load(
        &crate::models::TripoSrWeights {
            config: fixture_dir.join("config.yaml"),
            weights: fixture_dir.join("model.ckpt"),
        },
        crate::Device::Cpu,
    )
    .expect("tiny loads");
    let image_tokens = fixture::reference_tensor("image_tokens");
    let tokens = model.tokenizer.tokens(1).expect("tokens");
    let mut hidden = model.backbone.project_in(&tokens).expect("in");
    for i in 0..model.backbone.num_layers() {
        hidden = model
            .backbone
            .block(i, &hidden, &image_tokens)
            .expect("block");
    }
    let out = model.backbone.project_out(&hidden, &tokens).expect("out");
    let err = fixture::relative_error(&out, &fixture::reference_tensor("backbone_tokens"));
    eprintln!("backbone_tokens: relative error {err:.2e}");
    assert!(err <= 1e-4, "backbone_tokens: {err}");
}
