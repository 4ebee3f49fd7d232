//! TripoSR against the authors' code (VAST-AI-Research/TripoSR with transformers 4.35.0), on
//! the tiny random weights in `tests/fixtures/triposr` (see its README for how they were made),
//! plus every way a checkpoint or an input can be wrong.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use orfeas_core::models::triposr::config::{FeedForwardKind, FieldActivation, MlpActivation};
use orfeas_core::models::triposr::{conditioning_image, TripoSrConfig, FOREGROUND_RATIO};
use orfeas_core::OrfeasError;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/triposr")
}

fn reference(name: &str) -> Tensor {
    let mut all =
        candle_core::safetensors::load(fixture().join("reference.safetensors"), &Device::Cpu)
            .expect("reference tensors");
    all.remove(name).expect("tensor in reference.safetensors")
}

/// Max abs error over the reference's max abs value (the issue's "relative" error).
fn relative_error(got: &[f32], want: &Tensor) -> f32 {
    let want = want
        .flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .expect("reference values");
    assert_eq!(got.len(), want.len(), "sizes differ");
    let err = got
        .iter()
        .zip(&want)
        .map(|(g, w)| (g - w).abs())
        .fold(0f32, f32::max);
    let scale = want.iter().map(|w| w.abs()).fold(0f32, f32::max);
    assert!(scale > 0.0, "degenerate reference");
    err / scale
}

/// run.py's preprocessing + ImagePreprocessor on both fixture images, from their own alpha.
#[test]
fn conditioning_images_match_run_py() {
    for (file, name) in [
        ("input.png", "cond_image"),
        ("input_border.png", "cond_image_border"),
    ] {
        let img = image::open(fixture().join(file))
            .expect("fixture image")
            .to_rgba8();
        let (w, h) = img.dimensions();
        let rgba = img.into_raw();
        let alpha: Vec<u8> = rgba.chunks_exact(4).map(|p| p[3]).collect();
        let cond = conditioning_image(&rgba, w, h, &alpha, FOREGROUND_RATIO, 48).expect("cond");
        assert_eq!(cond.size, 48);
        let err = relative_error(&cond.rgb, &reference(name));
        eprintln!("{name}: relative error {err:.2e}");
        assert!(err <= 1e-6, "{name}: {err}");
    }
}

#[test]
fn tiny_and_images_without_foreground_are_refused() {
    let one = conditioning_image(&[200, 10, 10, 255], 1, 1, &[255], FOREGROUND_RATIO, 48)
        .expect_err("1×1");
    assert_eq!(one.code(), "ERR_NO_FOREGROUND", "{one}");
    let clear = vec![0u8; 16 * 16 * 4];
    let err = conditioning_image(&clear, 16, 16, &[0; 256], FOREGROUND_RATIO, 48)
        .expect_err("transparent");
    assert!(
        matches!(&err, OrfeasError::NoForeground { detail, .. } if detail.contains("transparent")),
        "{err}"
    );
}

/// The published `stabilityai/TripoSR` config.yaml, as downloaded.
const PUBLISHED_CONFIG: &str = r#"cond_image_size: 512

image_tokenizer_cls: tsr.models.tokenizers.image.DINOSingleImageTokenizer
image_tokenizer:
  pretrained_model_name_or_path: "facebook/dino-vitb16"

tokenizer_cls: tsr.models.tokenizers.triplane.Triplane1DTokenizer
tokenizer:
  plane_size: 32
  num_channels: 1024

backbone_cls: tsr.models.transformer.transformer_1d.Transformer1D
backbone:
  in_channels: ${tokenizer.num_channels}
  num_attention_heads: 16
  attention_head_dim: 64
  num_layers: 16
  cross_attention_dim: 768

post_processor_cls: tsr.models.network_utils.TriplaneUpsampleNetwork
post_processor:
  in_channels: 1024
  out_channels: 40

decoder_cls: tsr.models.network_utils.NeRFMLP
decoder:
  in_channels: 120 # 3 * 40
  n_neurons: 64
  n_hidden_layers: 9
  activation: silu

renderer_cls: tsr.models.nerf_renderer.TriplaneNeRFRenderer
renderer:
  radius: 0.87 # slightly larger than 0.5 * sqrt(3)
  feature_reduction: concat
  density_activation: exp
  density_bias: -1.0
  num_samples_per_ray: 128
"#;

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// Offline: `facebook/dino-vitb16` is known without its config.json.
#[test]
fn the_published_config_parses_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = TripoSrConfig::from_file(&write_config(dir.path(), PUBLISHED_CONFIG))
        .expect("published config");
    assert_eq!(cfg.cond_image_size, 512);
    assert_eq!(
        (
            cfg.vit.hidden_size,
            cfg.vit.num_hidden_layers,
            cfg.vit.patch_size
        ),
        (768, 12, 16)
    );
    assert_eq!(cfg.vit.layer_norm_eps, 1e-12);
    assert_eq!(
        (cfg.tokenizer.plane_size, cfg.tokenizer.num_channels),
        (32, 1024)
    );
    let b = cfg.backbone;
    assert_eq!(b.in_channels, 1024);
    assert_eq!(
        (b.num_attention_heads, b.attention_head_dim, b.num_layers),
        (16, 64, 16)
    );
    assert_eq!((b.norm_num_groups, b.cross_attention_dim), (32, Some(768)));
    assert_eq!(b.activation_fn, FeedForwardKind::Geglu);
    assert!(b.norm_elementwise_affine && !b.attention_bias);
    assert_eq!(
        (
            cfg.post_processor.in_channels,
            cfg.post_processor.out_channels
        ),
        (1024, 40)
    );
    assert_eq!(
        (
            cfg.decoder.in_channels,
            cfg.decoder.n_neurons,
            cfg.decoder.n_hidden_layers
        ),
        (120, 64, 9)
    );
    assert_eq!(cfg.decoder.activation, MlpActivation::Silu);
    assert_eq!(cfg.renderer.radius, 0.87);
    assert_eq!(cfg.renderer.density_activation, FieldActivation::Exp);
    assert_eq!(cfg.renderer.density_bias, -1.0);
}

#[test]
fn configs_the_port_cannot_run_are_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            PUBLISHED_CONFIG.replace(
                "tsr.models.network_utils.NeRFMLP",
                "tsr.models.network_utils.MyMLP",
            ),
            "tsr.models.network_utils.MyMLP",
        ),
        (
            PUBLISHED_CONFIG.replace("${tokenizer.num_channels}", "${tokenizer.channels}"),
            "tokenizer.channels",
        ),
        (
            PUBLISHED_CONFIG.replace("activation: silu", "activation: gelu"),
            "decoder.activation",
        ),
        (
            PUBLISHED_CONFIG.replace("num_layers: 16", "num_layers: 16\n  norm_type: ada_norm"),
            "norm_type",
        ),
        (
            PUBLISHED_CONFIG.replace(
                "num_layers: 16",
                "num_layers: 16\n  only_cross_attention: true",
            ),
            "only_cross_attention",
        ),
        (
            PUBLISHED_CONFIG.replace("density_activation: exp", "density_activation: gelu"),
            "renderer.density_activation",
        ),
        (
            PUBLISHED_CONFIG.replace(
                "num_samples_per_ray: 128",
                "num_samples_per_ray: 128\n  colour: red",
            ),
            "unknown key renderer.colour",
        ),
        (
            PUBLISHED_CONFIG.replace("in_channels: 120", "in_channels: 40"),
            "decoder.in_channels 40",
        ),
        ("cond_image_size: [1\n".to_owned(), "not valid YAML"),
    ];
    for (text, needle) in cases {
        let path = write_config(dir.path(), &text);
        let err = TripoSrConfig::from_file(&path).expect_err(needle);
        assert_eq!(err.code(), "ERR_WEIGHTS_INVALID", "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("config.yaml") && msg.contains(needle),
            "{needle}: {msg}"
        );
    }
    let err = TripoSrConfig::from_file(&dir.path().join("absent/config.yaml")).expect_err("absent");
    assert_eq!(err.code(), "ERR_WEIGHTS_NOT_FOUND");
    assert!(err.to_string().contains("absent/config.yaml"), "{err}");
    // A ViT named by a directory that is not there (and not in the cache).
    let path = write_config(
        dir.path(),
        &PUBLISHED_CONFIG.replace("facebook/dino-vitb16", "no-such-vit-dir"),
    );
    let err = TripoSrConfig::from_file(&path).expect_err("no vit");
    assert_eq!(err.code(), "ERR_WEIGHTS_NOT_FOUND");
    assert!(err.to_string().contains("no-such-vit-dir"), "{err}");
}
