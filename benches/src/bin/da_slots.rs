//! How four slots should share one device for Depth Anything V2 — the measurements behind the
//! design in docs/gpu.md ("Slots on a GPU"). Four `[1, 3, S, S]` images through the model:
//!
//! - `sequential`: one model, one forward after another;
//! - `concurrent`: four copies of the model, each on its own CUDA stream, one forward each from
//!   four threads at once (what `BatchProcessor` does on CUDA);
//! - `batched`: one forward of a `[4, 3, S, S]` batch (the alternative: coalescing the slots'
//!   inputs, which only works when their token grids are equal);
//!
//! then a 32-image batch through `BatchProcessor` (decode → mask → model → mesh → STL, quality
//! `high`, so the model runs at 518) with 1 and with 4 slots, sampling NVML every 50 ms for the
//! GPU's utilisation and memory. One JSON line per measurement.
//!
//! `cargo run --release -p orfeas-benches --features cuda --bin da_slots -- WEIGHTS [DEVICE [SIZE [ROUNDS [IMAGES_DIR]]]]`
//!
//! DEVICE is `cuda:N` (default `cuda:0`) or `cpu`; without IMAGES_DIR the batch uses 32
//! generated 800×600 pictures. Runs on the CPU too (slowly), which is how it is kept working in
//! builds without a GPU.
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use orfeas_benches::median;
use orfeas_core::depth::depth_anything::{load_model, DepthAnythingV2};
use orfeas_core::{
    gpu_stats, BatchConfig, BatchProcessor, CancelToken, GenerateSettings, ImageSource, Job,
    JobStatus, Method, NoProgress, Quality,
};
use serde_json::json;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The four-way comparison: as many images as the processor has slots by default.
const IMAGES: usize = 4;
/// The batch the utilisation is sampled over (the "32-image batch").
const BATCH_IMAGES: usize = 32;

fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: da_slots WEIGHTS [DEVICE [SIZE [ROUNDS [IMAGES_DIR]]]]";
    let weights = PathBuf::from(args.next().ok_or(usage)?);
    // Resolved first, so a GPU that does not open is one clear line ("cannot open cuda:0: …").
    let device = args
        .next()
        .as_deref()
        .unwrap_or("cuda:0")
        .parse::<orfeas_core::Device>()?
        .resolve()?;
    let size: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(518);
    let rounds: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5)
        .max(1);
    let images_dir = args.next().map(PathBuf::from);

    // One model per stream, as the estimator builds them; the first also runs the sequential
    // and batched cases.
    let models = (0..IMAGES)
        .map(|_| Ok(load_model(&weights, &candle_device(device)?)?))
        .collect::<Result<Vec<_>, BoxError>>()?;
    let gpu = match device {
        orfeas_core::Device::Cuda(n) => gpu_stats()
            .gpus
            .into_iter()
            .find(|g| g.index as usize == n)
            .map(|g| g.name),
        _ => None,
    };
    println!(
        "{}",
        json!({"device": device.to_string(), "gpu": gpu, "size": size, "rounds": rounds})
    );

    // Tensors live on one stream's device and cannot mix with another's: each model gets its
    // image on its own device, and the first model's copies make the sequential and batched cases.
    let per_stream = (0..IMAGES)
        .map(|i| input(i, size, models[i].device()))
        .collect::<candle_core::Result<Vec<_>>>()?;
    let on_first = (0..IMAGES)
        .map(|i| input(i, size, models[0].device()))
        .collect::<candle_core::Result<Vec<_>>>()?;
    let batch = Tensor::cat(&on_first, 0)?;
    // Warm-up: kernels compiled/loaded and buffers allocated on every stream.
    for (model, x) in models.iter().zip(&per_stream) {
        forward_synced(model, x)?;
    }
    forward_synced(&models[0], &batch)?;

    let mut cases: [(&str, Vec<f64>); 3] = [
        ("sequential", vec![]),
        ("concurrent", vec![]),
        ("batched", vec![]),
    ];
    for _ in 0..rounds {
        cases[0].1.push(timed(|| {
            on_first
                .iter()
                .try_for_each(|x| forward_synced(&models[0], x))
        })?);
        cases[1].1.push(concurrent(&models, &per_stream)?);
        cases[2]
            .1
            .push(timed(|| forward_synced(&models[0], &batch))?);
    }
    let sequential = median(&cases[0].1);
    for (name, times) in &cases {
        let med = median(times);
        let row = json!({
            "case": name, "images": IMAGES, "median_s": med,
            "images_per_s": IMAGES as f64 / med, "speedup_vs_sequential": sequential / med,
        });
        println!("{row}");
    }
    drop(models);

    let dir = tempfile::tempdir()?;
    let sources = batch_inputs(images_dir.as_deref(), dir.path())?;
    for slots in [1, 4] {
        pipeline(
            &weights,
            device,
            slots,
            &sources,
            &dir.path().join(format!("out-{slots}")),
        )?;
    }
    Ok(())
}

/// A fresh candle device: on CUDA each call opens its own stream (as the estimator does).
fn candle_device(device: orfeas_core::Device) -> candle_core::Result<Device> {
    match device {
        orfeas_core::Device::Cuda(n) => Device::new_cuda_with_stream(n),
        orfeas_core::Device::Cpu | orfeas_core::Device::Auto => Ok(Device::Cpu),
    }
}

/// A deterministic, image-like normalised input, different for each image.
fn input(seed: usize, size: usize, device: &Device) -> candle_core::Result<Tensor> {
    let values: Vec<f32> = (0..3 * size * size)
        .map(|i| (((i + seed * 131) * 7919 % 1000) as f32 / 500.0) - 1.0)
        .collect();
    Tensor::from_vec(values, (1, 3, size, size), device)
}

/// A forward that has finished on the device when it returns (CUDA launches are asynchronous).
fn forward_synced(model: &DepthAnythingV2, x: &Tensor) -> Result<(), BoxError> {
    model.forward(x)?;
    model.device().synchronize()?;
    Ok(())
}

fn timed(f: impl FnOnce() -> Result<(), BoxError>) -> Result<f64, BoxError> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed().as_secs_f64())
}

/// Wall time of one forward per model, all started together from their own threads.
fn concurrent(models: &[DepthAnythingV2], inputs: &[Tensor]) -> Result<f64, BoxError> {
    let barrier = Barrier::new(models.len() + 1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = models
            .iter()
            .zip(inputs)
            .map(|(model, x)| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    forward_synced(model, x)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        for handle in handles {
            handle.join().map_err(|_| "a forward thread panicked")??;
        }
        Ok(start.elapsed().as_secs_f64())
    })
}

/// The photos in `dir` (cycled up to 32), or 32 generated pictures written under `scratch`.
fn batch_inputs(dir: Option<&Path>, scratch: &Path) -> Result<Vec<PathBuf>, BoxError> {
    if let Some(dir) = dir {
        let mut photos: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    ["jpg", "jpeg", "png", "webp"].contains(&e.to_ascii_lowercase().as_str())
                })
            })
            .collect();
        photos.sort();
        if photos.is_empty() {
            return Err(format!("no .jpg/.png/.webp images in {}", dir.display()).into());
        }
        return Ok(photos.iter().cycle().take(BATCH_IMAGES).cloned().collect());
    }
    (0..BATCH_IMAGES)
        .map(|i| {
            let path = scratch.join(format!("picture-{i:02}.png"));
            let (w, h) = (800u32, 600u32);
            let picture = image::RgbImage::from_fn(w, h, |x, y| {
                // A lit sphere on a gradient, shifted per picture.
                let (cx, cy) = (400.0 + 8.0 * i as f32, 300.0);
                let r2 = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)) / 200.0f32.powi(2);
                let v = if r2 < 1.0 {
                    80.0 + 170.0 * (1.0 - r2).sqrt()
                } else {
                    40.0 + 60.0 * y as f32 / h as f32
                };
                image::Rgb([v as u8, (v * 0.8) as u8, ((x + 3 * i as u32) % 256) as u8])
            });
            picture.save(&path)?;
            Ok(path)
        })
        .collect()
}

/// The whole pipeline on `sources` with `slots` slots, while NVML is sampled every 50 ms.
fn pipeline(
    weights: &Path,
    device: orfeas_core::Device,
    slots: usize,
    sources: &[PathBuf],
    out: &Path,
) -> Result<(), BoxError> {
    let config = BatchConfig {
        slots,
        method: Method::DepthAnything,
        device,
        weights: Some(weights.to_path_buf()),
        ..BatchConfig::default()
    };
    let processor = BatchProcessor::new(config)?;
    let settings = GenerateSettings {
        quality: Quality::High,
        ..GenerateSettings::default()
    };
    let jobs: Vec<Job> = sources
        .iter()
        .enumerate()
        .map(|(i, p)| Job::new(format!("job-{i}"), ImageSource::Path(p.clone()), out))
        .collect();
    let gpu_index = match device {
        orfeas_core::Device::Cuda(n) => Some(n),
        _ => None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || sample_gpu(gpu_index, &stop))
    };
    let start = Instant::now();
    let results = processor.run(jobs, &settings, Arc::new(NoProgress), &CancelToken::new());
    let seconds = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.join().map_err(|_| "the NVML sampler panicked")?;
    let results = results?;
    if let Some(failed) = results.iter().find(|r| r.status != JobStatus::Complete) {
        return Err(format!(
            "{} failed: {}",
            failed.input,
            failed.error.as_deref().unwrap_or("?")
        )
        .into());
    }
    let (util, memory): (Vec<f64>, Vec<u64>) = samples.into_iter().unzip();
    let mean_util = (!util.is_empty()).then(|| util.iter().sum::<f64>() / util.len() as f64);
    let row = json!({
        "case": "pipeline", "slots": slots, "images": results.len(), "seconds": seconds,
        "images_per_s": results.len() as f64 / seconds, "gpu_samples": util.len(),
        "gpu_util_mean_percent": mean_util, "gpu_util_max_percent": util.iter().copied().reduce(f64::max),
        "gpu_memory_peak_mb": memory.iter().max(),
    });
    println!("{row}");
    Ok(())
}

/// (utilisation %, memory used MB) of GPU `index` every 50 ms until `stop`; empty without NVML.
fn sample_gpu(index: Option<usize>, stop: &AtomicBool) -> Vec<(f64, u64)> {
    let mut samples = Vec::new();
    let Some(index) = index else { return samples };
    while !stop.load(Ordering::Relaxed) {
        let stats = gpu_stats();
        if !stats.available {
            eprintln!("no GPU telemetry: {}", stats.reason.unwrap_or_default());
            return samples;
        }
        if let Some(gpu) = stats.gpus.iter().find(|g| g.index as usize == index) {
            if let Some(util) = gpu.utilization_percent {
                samples.push((f64::from(util), gpu.memory_used_mb));
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    samples
}
