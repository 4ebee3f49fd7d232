//! Depth Anything V2 on a CUDA GPU: the reference outputs on the device, and the slots'
//! concurrent forwards on their own streams each giving its job the CPU's answer.
//!
//! Built only with the `cuda` feature. Without a usable GPU each test says so and passes,
//! unless `ORFEAS_REQUIRE_GPU=1` (set it on GPU machines, so that a broken driver set-up fails
//! instead of being skipped).
#![cfg(feature = "cuda")]

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{Device, Tensor};
use orfeas_core::depth::depth_anything::{load_model, DepthAnythingEstimator};
use orfeas_core::{CancelToken, LoadedImage};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/depth_anything")
}

/// Whether GPU 0 opens; a skip (or, with `ORFEAS_REQUIRE_GPU=1`, a failure) when it does not.
fn gpu_available() -> bool {
    match orfeas_core::Device::Cuda(0).resolve() {
        Ok(_) => true,
        Err(e) if std::env::var("ORFEAS_REQUIRE_GPU").as_deref() == Ok("1") => {
            panic!("ORFEAS_REQUIRE_GPU=1 but {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED (no usable GPU; ORFEAS_REQUIRE_GPU=1 makes this a failure): {e}");
            false
        }
    }
}

fn max_abs(t: &Tensor) -> f32 {
    t.abs()
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.max(0))
        .and_then(|t| t.to_scalar::<f32>())
        .expect("max")
}

#[test]
fn tiny_model_on_cuda_matches_the_reference() {
    if !gpu_available() {
        return;
    }
    let device = Device::new_cuda_with_stream(0).expect("cuda:0");
    let model =
        load_model(&fixture().join("tiny"), &device).expect("tiny fixture loads onto the GPU");
    assert!(model.device().is_cuda());
    let cases: HashMap<String, Tensor> =
        candle_core::safetensors::load(fixture().join("cases.safetensors"), &Device::Cpu)
            .expect("cases");
    for name in ["square", "wide", "batch"] {
        let input = cases[&format!("{name}_in")]
            .to_device(&device)
            .expect("upload");
        let want = &cases[&format!("{name}_out")];
        let got = model
            .forward(&input)
            .expect("forward")
            .to_device(&Device::Cpu)
            .expect("download");
        let err = max_abs(&(&got - want).expect("diff"));
        eprintln!("{name}: {:?} max abs error on CUDA {err:.2e}", got.dims());
        assert!(
            max_abs(want) > 0.1,
            "{name}: reference output is degenerate"
        );
        assert!(err <= 1e-4, "{name}: max abs error {err} > 1e-4 on CUDA");
    }
}

#[test]
fn concurrent_slots_on_their_own_streams_each_get_the_cpu_answer() {
    if !gpu_available() {
        return;
    }
    let tiny = fixture().join("tiny");
    let gpu = DepthAnythingEstimator::load(&tiny, orfeas_core::Device::Cuda(0), 4)
        .expect("four replicas")
        .with_target(98);
    let cpu = DepthAnythingEstimator::load_cpu(&tiny)
        .expect("cpu")
        .with_target(98);
    // Eight different pictures, more than the four streams, started together.
    let images: Vec<LoadedImage> = (0..8u32)
        .map(|k| picture(k, 60 + 7 * k, 40 + 3 * k))
        .collect();
    let on_gpu: Vec<Vec<f32>> = std::thread::scope(|scope| {
        let handles: Vec<_> = images
            .iter()
            .map(|image| {
                let gpu = &gpu;
                scope.spawn(move || {
                    gpu.predict(image, &CancelToken::new())
                        .and_then(|p| p.at_size(image.width, image.height))
                        .expect("gpu")
                        .data
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a slot thread panicked"))
            .collect()
    });
    for (image, got) in images.iter().zip(&on_gpu) {
        let want = cpu
            .predict(image, &CancelToken::new())
            .and_then(|p| p.at_size(image.width, image.height))
            .expect("cpu")
            .data;
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        let err = got
            .iter()
            .zip(&want)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(scale > 0.1, "{}: degenerate prediction", image.name);
        assert!(
            err <= 1e-4 * scale.max(1.0),
            "{}: GPU differs from CPU by {err} (scale {scale})",
            image.name
        );
    }
}

/// A deterministic picture that differs per `seed` (so a mixed-up stream would show).
fn picture(seed: u32, width: u32, height: u32) -> LoadedImage {
    let rgba: Vec<u8> = (0..width * height)
        .flat_map(|i| {
            let (x, y) = (i % width, i / width);
            [
                ((x * (seed + 3)) % 256) as u8,
                ((y * 5 + seed * 40) % 256) as u8,
                ((x + y) % 200) as u8,
                255,
            ]
        })
        .collect();
    LoadedImage {
        name: format!("picture-{seed}"),
        width,
        height,
        luma: vec![0.5; (width * height) as usize],
        rgba,
        has_alpha: false,
        gray16: false,
    }
}
