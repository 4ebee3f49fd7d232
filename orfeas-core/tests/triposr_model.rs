//! TripoSR against the authors' code (VAST-AI-Research/TripoSR with transformers 4.35.0), on
//! the tiny random weights in `tests/fixtures/triposr` (see its README for how they were made),
//! plus every way a checkpoint or an input can be wrong.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use orfeas_core::models::triposr::config::{FeedForwardKind, FieldActivation, MlpActivation};
use orfeas_core::models::triposr::{
    conditioning_image, CondImage, TripoSr, TripoSrConfig, FOREGROUND_RATIO,
};
use orfeas_core::models::{triposr_weights_at, TripoSrWeights};
use orfeas_core::{CancelToken, OrfeasError};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/triposr")
}

fn reference(name: &str) -> Tensor {
    let mut all =
        candle_core::safetensors::load(fixture().join("reference.safetensors"), &Device::Cpu)
            .expect("reference tensors");
    all.remove(name).expect("tensor in reference.safetensors")
}

/// Max abs error over the reference's max abs value (the "relative" error).
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
const PUBLISHED_CONFIG: &str = include_str!("../src/models/triposr/published_config.yaml");

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
    assert_eq!(
        cfg,
        TripoSrConfig::published(),
        "the built-in published config"
    );
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

fn tiny_location(weights: &str) -> TripoSrWeights {
    TripoSrWeights {
        config: fixture().join("tiny/config.yaml"),
        weights: fixture().join("tiny").join(weights),
    }
}

fn tiny() -> TripoSr {
    TripoSr::load(&tiny_location("model.ckpt"), orfeas_core::Device::Cpu).expect("tiny loads")
}

fn cond_image_from_reference() -> CondImage {
    CondImage {
        size: 48,
        rgb: reference("cond_image")
            .flatten_all()
            .and_then(|t| t.to_vec1())
            .expect("rgb"),
    }
}

fn reference_points() -> Vec<[f32; 3]> {
    reference("points")
        .to_vec2::<f32>()
        .expect("points")
        .into_iter()
        .map(|p| [p[0], p[1], p[2]])
        .collect()
}

/// The whole forward from input.png: preprocessing, ViT, backbone, post-processor, then the
/// field at the reference points and on the reference grid.
#[test]
fn tiny_model_matches_the_authors_code_end_to_end() {
    let model = tiny();
    assert_eq!((model.cond_image_size(), model.radius()), (48, 0.87));
    let img = image::open(fixture().join("input.png"))
        .expect("input.png")
        .to_rgba8();
    let (w, h) = img.dimensions();
    let rgba = img.into_raw();
    let alpha: Vec<u8> = rgba.chunks_exact(4).map(|p| p[3]).collect();
    let cond = conditioning_image(&rgba, w, h, &alpha, FOREGROUND_RATIO, 48).expect("cond");
    let mut fractions = Vec::new();
    let code = model
        .scene_code(&cond, &CancelToken::new(), &mut |f| fractions.push(f))
        .expect("scene code");
    assert_eq!((code.channels, code.resolution), (8, 8));
    assert_eq!(
        fractions.len(),
        2 + 2 + 1,
        "per ViT layer, per block, the post-processor"
    );
    assert!(fractions.windows(2).all(|w| w[0] < w[1]) && fractions.last() == Some(&1.0));
    let err = relative_error(&code.values, &reference("scene_codes"));
    eprintln!("scene_codes: relative error {err:.2e}");
    assert!(err <= 1e-4, "scene_codes: {err}");

    let points = reference_points();
    let density = model.density(&code, &points).expect("density");
    let err = relative_error(&density, &reference("density_act"));
    eprintln!("density_act: relative error {err:.2e}");
    assert!(err <= 1e-4, "density_act: {err}");
    let color: Vec<f32> = model
        .color(&code, &points)
        .expect("color")
        .into_iter()
        .flatten()
        .collect();
    let err = relative_error(&color, &reference("color"));
    eprintln!("color: relative error {err:.2e}");
    assert!(err <= 1e-4, "color: {err}");

    let mut chunks = 0;
    let grid = model
        .density_grid(&code, 24, &CancelToken::new(), &mut |_| chunks += 1)
        .expect("field");
    assert!(chunks >= 1);
    assert_eq!((grid.resolution, grid.radius), (24, 0.87));
    let err = relative_error(&grid.values, &reference("field"));
    eprintln!("field: relative error {err:.2e}");
    assert!(err <= 1e-4, "field: {err}");
}

/// The reference conditioning image straight in (no preprocessing), from the safetensors file:
/// the same triplanes as from the pickle.
#[test]
fn safetensors_weights_give_the_same_scene_code() {
    let from_st = TripoSr::load(
        &tiny_location("model.safetensors"),
        orfeas_core::Device::Cpu,
    )
    .expect("safetensors loads");
    let cond = cond_image_from_reference();
    let a = from_st
        .scene_code(&cond, &CancelToken::new(), &mut |_| {})
        .expect("code");
    let b = tiny()
        .scene_code(&cond, &CancelToken::new(), &mut |_| {})
        .expect("code");
    assert_eq!(a, b);
    let err = relative_error(&a.values, &reference("scene_codes"));
    assert!(
        err <= 1e-4,
        "scene_codes from the reference cond image: {err}"
    );
}

#[test]
fn cancel_stops_the_forward_and_wrong_sizes_are_refused() {
    let model = tiny();
    let cancel = CancelToken::new();
    cancel.cancel();
    let err = model
        .scene_code(&cond_image_from_reference(), &cancel, &mut |_| {})
        .expect_err("cancelled");
    assert_eq!(err.code(), "ERR_CANCELLED");
    let small = CondImage {
        size: 32,
        rgb: vec![0.5; 32 * 32 * 3],
    };
    let err = model
        .scene_code(&small, &CancelToken::new(), &mut |_| {})
        .expect_err("wrong size");
    assert_eq!(err.code(), "ERR_INVALID_INPUT", "{err}");
}

/// Every bad checkpoint through the public loader: the code, the file and the tensor named.
#[test]
fn bad_weights_are_refused_by_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let err = triposr_weights_at(d).expect_err("no config.yaml");
    assert_eq!(err.code(), "ERR_WEIGHTS_NOT_FOUND");
    assert!(err.to_string().contains("config.yaml"), "{err}");

    std::fs::copy(fixture().join("tiny/config.yaml"), d.join("config.yaml")).expect("copy");
    let vit = d.join("vit");
    std::fs::create_dir_all(&vit).expect("mkdir");
    std::fs::copy(
        fixture().join("tiny/vit/config.json"),
        vit.join("config.json"),
    )
    .expect("copy");
    let load = |name: &str, bytes: &[u8]| {
        let path = d.join(name);
        std::fs::write(&path, bytes).expect("write");
        let location = triposr_weights_at(&path).expect("located");
        let err = TripoSr::load(&location, orfeas_core::Device::Cpu).expect_err("refused");
        assert_eq!(err.code(), "ERR_WEIGHTS_INVALID", "{err}");
        let msg = err.to_string();
        eprintln!("{msg}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        std::fs::remove_file(&path).expect("rm");
        msg
    };
    let ckpt = std::fs::read(fixture().join("tiny/model.ckpt")).expect("ckpt");
    assert!(load("model.ckpt", &ckpt[..ckpt.len() * 9 / 10]).contains("damaged or cut short"));
    assert!(load("model.ckpt", b"<html>404 Not Found</html>").contains("not a readable PyTorch"));
    assert!(load("model.ckpt", &[]).contains("empty"));
    // Damaged in the middle (tensor data): the zip's checksum of that tensor fails when the
    // model reads it, and the tensor is named.
    let mut damaged = ckpt.clone();
    let middle = damaged.len() / 2;
    for b in &mut damaged[middle..middle + 16] {
        *b = !*b;
    }
    let msg = load("model.ckpt", &damaged);
    assert!(msg.contains("cannot read tensor"), "{msg}");

    let tensors =
        candle_core::safetensors::load(fixture().join("tiny/model.safetensors"), &Device::Cpu)
            .expect("tensors");
    let save = |edit: &dyn Fn(&mut std::collections::HashMap<String, Tensor>)| {
        let mut t = tensors.clone();
        edit(&mut t);
        let path = d.join("edited.safetensors");
        candle_core::safetensors::save(&t, &path).expect("save");
        let bytes = std::fs::read(&path).expect("read");
        std::fs::remove_file(&path).expect("rm");
        load("model.safetensors", &bytes)
    };
    let name = "image_tokenizer.model.encoder.layer.1.attention.attention.value.weight";
    let msg = save(&|t| {
        t.remove(name);
    });
    assert!(msg.contains(&format!("tensor {name} is missing")), "{msg}");
    let msg = save(&|t| {
        let r = t[name].t().and_then(|r| r.contiguous()).expect("t");
        t.insert(name.to_owned(), r.reshape((16, 64)).expect("reshape"));
    });
    assert!(
        msg.contains(&format!("tensor {name} has shape [16, 64]")),
        "{msg}"
    );
    let msg = save(&|t| {
        t.insert(
            "decoder.layers.8.weight".to_owned(),
            Tensor::zeros((4, 16), candle_core::DType::F32, &Device::Cpu).expect("zeros"),
        );
    });
    assert!(
        msg.contains("unexpected tensor decoder.layers.8.weight"),
        "{msg}"
    );

    // A config naming a class the port does not have: refused before the weights are read.
    let text = std::fs::read_to_string(fixture().join("tiny/config.yaml")).expect("yaml");
    std::fs::write(
        d.join("config.yaml"),
        text.replace("Triplane1DTokenizer", "TriplaneSparseTokenizer"),
    )
    .expect("write");
    std::fs::copy(fixture().join("tiny/model.ckpt"), d.join("model.ckpt")).expect("copy");
    let err = TripoSr::load(
        &triposr_weights_at(d).expect("located"),
        orfeas_core::Device::Cpu,
    )
    .expect_err("unknown class");
    assert_eq!(err.code(), "ERR_WEIGHTS_INVALID");
    assert!(
        err.to_string()
            .contains("tsr.models.tokenizers.triplane.TriplaneSparseTokenizer"),
        "{err}"
    );
}

/// Four images in turn, the conditioning image of each a different mix of the fixture's two.
fn four_cond_images() -> Vec<CondImage> {
    let a = cond_image_from_reference().rgb;
    let b: Vec<f32> = reference("cond_image_border")
        .flatten_all()
        .and_then(|t| t.to_vec1())
        .expect("rgb");
    (0..4)
        .map(|k| {
            let t = k as f32 / 3.0;
            CondImage {
                size: 48,
                rgb: a
                    .iter()
                    .zip(&b)
                    .map(|(x, y)| x * (1.0 - t) + y * t)
                    .collect(),
            }
        })
        .collect()
}

/// Jobs arriving together share one batched forward (what CUDA runs by default) and each gets
/// exactly the scene code it would get alone, with its own progress; a job cancelled while it
/// waits stops at once and the others are unaffected.
#[test]
fn concurrent_jobs_share_one_batched_forward() {
    let images = four_cond_images();
    let alone: Vec<_> = {
        let model = tiny();
        images
            .iter()
            .map(|i| model.scene_code(i, &CancelToken::new(), &mut |_| {}))
            .collect::<Result<_, _>>()
            .expect("one at a time")
    };
    // A long gather window: the four threads below always meet in one batch.
    let model = tiny().with_job_batching(4, std::time::Duration::from_secs(20));
    let results: Vec<(Result<_, OrfeasError>, Vec<f32>)> = std::thread::scope(|s| {
        let handles: Vec<_> = images
            .iter()
            .map(|image| {
                let model = &model;
                s.spawn(move || {
                    let mut fractions = Vec::new();
                    let code =
                        model.scene_code(image, &CancelToken::new(), &mut |f| fractions.push(f));
                    (code, fractions)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert_eq!(
        model.batch_stats().map(|s| s.batch_sizes),
        Some(vec![4]),
        "one batch of four"
    );
    for ((code, fractions), want) in results.into_iter().zip(&alone) {
        let code = code.expect("batched scene code");
        let err = code
            .values
            .iter()
            .zip(&want.values)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(err <= 1e-5, "batched differs from alone by {err}");
        assert_eq!(fractions.last(), Some(&1.0), "progress reached its member");
        assert!(fractions.windows(2).all(|w| w[0] < w[1]), "{fractions:?}");
    }

    // Two jobs, one cancelled while it waits for the batch: it returns at once, the other
    // gets its code from a batch of one.
    let model = tiny().with_job_batching(4, std::time::Duration::from_millis(800));
    let cancel = CancelToken::new();
    let (kept, dropped) = std::thread::scope(|s| {
        let first = s.spawn(|| model.scene_code(&images[0], &CancelToken::new(), &mut |_| {}));
        std::thread::sleep(std::time::Duration::from_millis(100));
        let second = s.spawn(|| model.scene_code(&images[1], &cancel, &mut |_| {}));
        std::thread::sleep(std::time::Duration::from_millis(100));
        cancel.cancel();
        (
            first.join().expect("thread"),
            second.join().expect("thread"),
        )
    });
    assert_eq!(dropped.map_err(|e| e.code()).err(), Some("ERR_CANCELLED"));
    assert_eq!(kept.expect("kept job"), alone[0]);
    assert_eq!(model.batch_stats().map(|s| s.batch_sizes), Some(vec![1]));
}
