//! Depth Anything V2 against the reference (transformers), on CPU.
//!
//! The fixture (tiny random weights in the transformers layout, inputs, reference outputs, a
//! real photo and the reference image processor's output for it) is made once by
//! `tests/fixtures/depth_anything/make_fixture.py`; see the README beside it for versions.

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use orfeas_core::depth::depth_anything::{
    load_model, preprocess::preprocess, DepthAnythingConfig, DepthAnythingV2, PreprocessOptions,
};
use orfeas_core::OrfeasError;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/depth_anything")
}

fn load(name: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture().join(name), &Device::Cpu).expect("fixture tensors")
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    (a - b)
        .and_then(|d| d.abs())
        .and_then(|d| d.flatten_all())
        .and_then(|d| d.max(0))
        .and_then(|d| d.to_scalar::<f32>())
        .expect("diff")
}

fn tiny() -> DepthAnythingV2 {
    load_model(&fixture().join("tiny"), &Device::Cpu)
        .expect("tiny fixture loads through the real loader")
}

fn check_case(model: &DepthAnythingV2, cases: &HashMap<String, Tensor>, name: &str) {
    let input = &cases[&format!("{name}_in")];
    let want = &cases[&format!("{name}_out")];
    let got = model.forward(input).expect("forward");
    let err = max_abs_diff(&got, want);
    let scale = want
        .abs()
        .and_then(|t| t.max_all())
        .and_then(|t| t.to_scalar::<f32>())
        .expect("max");
    eprintln!(
        "{name}: {:?} max abs error {err:.2e} (reference max {scale:.3})",
        got.dims()
    );
    assert!(scale > 0.1, "{name}: reference output is degenerate");
    assert!(err <= 1e-4, "{name}: max abs error {err} > 1e-4");
}

#[test]
fn tiny_model_matches_reference_square_non_square_and_batch() {
    let model = tiny();
    let cases = load("cases.safetensors");
    for name in ["square", "wide", "batch"] {
        check_case(&model, &cases, name);
    }
    // Running the square case again hits the cached position embeddings: same result.
    check_case(&model, &cases, "square");
}

#[test]
fn forward_rejects_sizes_that_are_not_multiples_of_14() {
    let x = Tensor::zeros((1, 3, 100, 98), DType::F32, &Device::Cpu).expect("zeros");
    assert!(matches!(
        tiny().forward(&x),
        Err(OrfeasError::InvalidInput(_))
    ));
}

#[test]
fn missing_or_incomplete_weights_say_how_to_get_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = load_model(dir.path(), &Device::Cpu).expect_err("empty dir");
    assert!(
        matches!(&err, OrfeasError::WeightsNotFound(m) if m.contains("Depth-Anything-V2-Small-hf")),
        "{err}"
    );
    // A config without the weights file.
    std::fs::copy(
        fixture().join("tiny/config.json"),
        dir.path().join("config.json"),
    )
    .expect("copy");
    let err = load_model(dir.path(), &Device::Cpu).expect_err("no safetensors");
    assert!(
        matches!(&err, OrfeasError::WeightsNotFound(m) if m.contains("model.safetensors")),
        "{err}"
    );
    // Weights that do not match the config (Small config, tiny weights).
    let small = serde_json::to_string(&DepthAnythingConfig::small()).expect("json");
    std::fs::write(dir.path().join("config.json"), small).expect("write");
    std::fs::copy(
        fixture().join("tiny/model.safetensors"),
        dir.path().join("model.safetensors"),
    )
    .expect("copy");
    let err = load_model(dir.path(), &Device::Cpu).expect_err("mismatch");
    assert!(matches!(err, OrfeasError::WeightsNotFound(_)), "{err}");
}

/// The authors' layout of the same tiny weights (`tiny/depth_anything_v2_tiny.pth`, written by
/// `make_original_layout.py` with the inverse of transformers' own conversion table) gives the
/// same model: as a PyTorch pickle and as safetensors, next to the tiny `config.json`.
#[test]
fn authors_layout_loads_as_pickle_and_as_safetensors() {
    let cases = load("cases.safetensors");
    let pth = fixture().join("tiny/depth_anything_v2_tiny.pth");
    let from_pickle = load_model(&pth, &Device::Cpu).expect("authors' .pth loads");
    let reference = tiny()
        .forward(&cases["wide_in"])
        .expect("transformers layout");
    assert_eq!(
        max_abs_diff(
            &from_pickle.forward(&cases["wide_in"]).expect("forward"),
            &reference
        ),
        0.0
    );
    for name in ["square", "wide", "batch"] {
        check_case(&from_pickle, &cases, name);
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let tensors: HashMap<String, Tensor> = candle_core::pickle::read_all(&pth)
        .expect("pickle")
        .into_iter()
        .collect();
    let st = dir.path().join("depth_anything_v2_tiny.safetensors");
    candle_core::safetensors::save(&tensors, &st).expect("save");
    std::fs::copy(
        fixture().join("tiny/config.json"),
        dir.path().join("config.json"),
    )
    .expect("copy");
    let from_safetensors =
        load_model(dir.path(), &Device::Cpu).expect("the one checkpoint in the directory");
    assert_eq!(
        max_abs_diff(
            &from_safetensors
                .forward(&cases["wide_in"])
                .expect("forward"),
            &reference
        ),
        0.0
    );
}

#[test]
fn authors_layout_without_a_known_size_or_intact_file_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pth = dir.path().join("depth_anything_v2_vits.pth");
    std::fs::copy(fixture().join("tiny/depth_anything_v2_tiny.pth"), &pth).expect("copy");
    // No config.json: the tiny width (32) is no published encoder.
    let err = load_model(&pth, &Device::Cpu).expect_err("unknown size");
    assert!(
        matches!(&err, OrfeasError::WeightsNotFound(m) if m.contains("hidden width 32") && m.contains("config.json")),
        "{err}"
    );
    let bytes = std::fs::read(&pth).expect("read");
    for (what, damaged) in [
        ("truncated", &bytes[..bytes.len() / 2]),
        ("garbage", &b"not a zip archive at all"[..]),
        ("empty", &[][..]),
    ] {
        std::fs::write(&pth, damaged).expect("write");
        let err = load_model(&pth, &Device::Cpu).expect_err(what);
        assert!(
            matches!(&err, OrfeasError::WeightsNotFound(m) if m.contains("not a readable PyTorch checkpoint")),
            "{what}: {err}"
        );
    }
    // A transformers-layout file on its own lacks the config that describes it.
    let lone = dir.path().join("model.safetensors");
    std::fs::copy(fixture().join("tiny/model.safetensors"), &lone).expect("copy");
    let err = load_model(&lone, &Device::Cpu).expect_err("no config");
    assert!(
        matches!(&err, OrfeasError::WeightsNotFound(m) if m.contains("config.json")),
        "{err}"
    );
}

#[test]
fn model_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<DepthAnythingV2>();
}

fn photo() -> (Vec<u8>, u32, u32) {
    let img = image::open(fixture().join("photo.png"))
        .expect("photo")
        .to_rgb8();
    let (w, h) = img.dimensions();
    (img.into_raw(), w, h)
}

/// Tolerance: the resize is a bit-exact port of Pillow's 8-bit bicubic, so the only residual
/// is float rounding in rescale/normalise (the processor works in float64 then casts):
/// ≤ 1e-5 after normalisation. Measured: see the test output.
const PREPROCESS_TOL: f32 = 1e-5;

#[test]
fn preprocessing_matches_the_reference_processor_on_a_photo() {
    let (rgb, w, h) = photo();
    let refs = load("preprocess.safetensors");

    // Size 98: a downscale (antialiased bicubic); the whole tensor is compared.
    let opts = PreprocessOptions {
        target: 98,
        ..Default::default()
    };
    let got = preprocess(&rgb, w, h, 3, &opts)
        .expect("preprocess")
        .to_tensor(&Device::Cpu)
        .expect("tensor");
    let err = max_abs_diff(&got, &refs["small_pixel_values"]);
    eprintln!(
        "preprocess size 98: {:?} max abs error {err:.2e}",
        got.dims()
    );
    assert!(err <= PREPROCESS_TOL, "size 98: {err}");

    // Default size 518 (an upscale for this photo): shape, a stride-7 subsample, per-channel stats.
    let pre = preprocess(&rgb, w, h, 3, &PreprocessOptions::default()).expect("preprocess");
    let shape: Vec<usize> = refs["default_shape"]
        .to_vec1::<f32>()
        .expect("shape")
        .iter()
        .map(|&v| v as usize)
        .collect();
    assert_eq!(shape, vec![1, 3, pre.height as usize, pre.width as usize]);
    let got = pre.to_tensor(&Device::Cpu).expect("tensor");
    let idx = |n: usize| {
        Tensor::from_vec(
            (0..n).step_by(7).map(|i| i as u32).collect::<Vec<_>>(),
            n.div_ceil(7),
            &Device::Cpu,
        )
    };
    let sub = got
        .index_select(&idx(pre.height as usize).expect("idx"), 2)
        .and_then(|t| t.index_select(&idx(pre.width as usize).expect("idx"), 3))
        .expect("subsample");
    let err = max_abs_diff(&sub, &refs["default_stride7"]);
    eprintln!(
        "preprocess size 518: {:?} stride-7 max abs error {err:.2e}",
        got.dims()
    );
    assert!(err <= PREPROCESS_TOL, "size 518: {err}");
    let mean = got.mean((0, 2, 3)).expect("mean");
    assert!(max_abs_diff(&mean, &refs["default_mean"]) <= 1e-4);
}

/// Reference: `F.interpolate(d, size=(3, 4), mode="bicubic", align_corners=False)` in PyTorch
/// 2.15, what transformers' `post_process_depth_estimation` does.
#[test]
fn depth_goes_back_to_the_image_size_like_transformers() {
    let d = Tensor::from_vec(vec![0f32, 1.0, 2.0, 3.0], (1, 2, 2), &Device::Cpu).expect("tensor");
    let out =
        orfeas_core::depth::depth_anything::preprocess::depth_to_size(&d, 4, 3).expect("resize");
    let reference = [
        -0.27907994,
        0.052951373,
        0.5998265,
        0.9318578,
        0.89453125,
        1.2265625,
        1.7734375,
        2.1054688,
        2.0681422,
        2.4001732,
        2.9470487,
        3.2790797,
    ];
    assert_eq!(out.len(), reference.len());
    for (got, want) in out.iter().zip(reference) {
        assert!((got - want).abs() < 1e-5, "{out:?}");
    }
}

/// Not a test: the CPU time of one forward of the Small architecture at 518×518 with random
/// weights. `cargo test --release -p orfeas-core --test depth_anything_model -- --ignored --nocapture`
#[test]
#[ignore]
fn small_architecture_518_cpu_timing() {
    let dev = Device::Cpu;
    let varmap = candle_nn::VarMap::new();
    let vb = candle_nn::VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let model = DepthAnythingV2::new(DepthAnythingConfig::small(), vb).expect("model");
    let x = Tensor::randn(0f32, 1.0, (1, 3, 518, 518), &dev).expect("input");
    let t = std::time::Instant::now();
    let out = model.forward(&x).expect("forward");
    eprintln!("first forward (warm-up) {:.3} s", t.elapsed().as_secs_f64());
    assert_eq!(out.dims(), &[1, 518, 518]);
    let runs = 3;
    let t = std::time::Instant::now();
    for _ in 0..runs {
        model.forward(&x).expect("forward");
    }
    eprintln!(
        "candle Small 518x518 CPU ({} threads): {:.3} s/image",
        candle_core::utils::get_num_threads(),
        t.elapsed().as_secs_f64() / runs as f64
    );
}
