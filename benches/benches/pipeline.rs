//! End-to-end and mesher-only criterion benches.
//!
//! * `pipeline/<depth>/<quality>`: a 1024×1024 photo FILE on disk → closed binary STL FILE on
//!   disk (load → mask → depth → mesh → solid → check → STL), via `image_to_model` +
//!   `export_model`, for `relief` at low/medium/high and for the default `auto`.
//! * `mesher/...`: `triangulate_heightfield` alone on the 1025² corner grids of the smooth
//!   16-bit map (e = 0.001) and the noisy photo luminance (e = 0.001, cap 200 000).
//! * `mask/border_512`: `estimate_mask` on a 512² disc on a plain backdrop (the `medium`
//!   working size), made here, needing no input file. Its outline is checked by the unit test
//!   `mask::tests::a_disc_on_a_512_backdrop_is_cut_out_exactly`; how long it takes is
//!   measured here only.
//!
//! Inputs come from `benches/make_inputs.py`; without them the bench says so and exits.
//! `cargo bench -p orfeas-benches`
#![allow(clippy::print_stdout, missing_debug_implementations)]

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use orfeas_benches::{full_grid, input, load_height_map};
use orfeas_core::mask::estimate_mask;
use orfeas_core::mesh::{triangulate_heightfield, MeshingLimits};
use orfeas_core::{
    export_model, image_to_model, CancelToken, DepthMethod, GenerateSettings, ImageLimits,
    ImageSource, LoadedImage, MeshFormat, Quality,
};

fn pipeline(c: &mut Criterion) {
    let photo = match input("photo1024.png") {
        Ok(p) => p,
        Err(msg) => {
            eprintln!("skipping pipeline benches: {msg}");
            return;
        }
    };
    let out = std::env::temp_dir().join(format!("orfeas-bench-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!(
            "skipping pipeline benches: cannot create {}: {e}",
            out.display()
        );
        return;
    }
    let source = ImageSource::Path(photo);
    let limits = ImageLimits::default();
    let cancel = CancelToken::new();
    let mut group = c.benchmark_group("pipeline");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let runs = [
        (DepthMethod::Relief, Quality::Low),
        (DepthMethod::Relief, Quality::Medium),
        (DepthMethod::Relief, Quality::High),
        (DepthMethod::Auto, Quality::Low),
        (DepthMethod::Auto, Quality::Medium),
        (DepthMethod::Auto, Quality::High),
    ];
    for (depth, quality) in runs {
        let settings = GenerateSettings {
            quality,
            formats: vec![MeshFormat::Stl],
            ..Default::default()
        };
        // One untimed run to print what is being measured.
        match image_to_model(&source, &settings, depth, &limits, &cancel, &mut |_, _| {}) {
            Ok(model) => {
                let relief = model.report.relief().copied();
                println!(
                    "pipeline/{depth}/{quality}: {} triangles (depth {}, working {}x{}, max_error {})",
                    model.report.triangles,
                    model.report.depth,
                    relief.map_or(0, |r| r.working_width),
                    relief.map_or(0, |r| r.working_height),
                    relief.map_or(0.0, |r| r.max_error)
                )
            }
            Err(e) => {
                eprintln!("pipeline/{depth}/{quality} failed: {e}");
                continue;
            }
        }
        group.bench_function(BenchmarkId::new(depth.as_str(), quality.as_str()), |b| {
            // Timed: file → model → STL file. Untimed: deleting the STL (the exporter
            // refuses to overwrite, as the CLI does).
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let model =
                        image_to_model(&source, &settings, depth, &limits, &cancel, &mut |_, _| {})
                            .expect("model");
                    let files = export_model(&model, &[MeshFormat::Stl], &out, "bench", &cancel)
                        .expect("export");
                    total += start.elapsed();
                    drop(model);
                    for f in files {
                        std::fs::remove_file(&f.path).expect("remove the STL");
                    }
                }
                total
            });
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&out);
}

fn mesher(c: &mut Criterion) {
    let cases = [
        (
            "smooth16_e0.001",
            "smooth1024.png",
            MeshingLimits {
                max_error: 0.001,
                max_triangles: usize::MAX,
            },
        ),
        (
            "noisy_e0.001_cap200k",
            "noisy1024.png",
            MeshingLimits {
                max_error: 0.001,
                max_triangles: 200_000,
            },
        ),
    ];
    let mut group = c.benchmark_group("mesher");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for (name, file, limits) in cases {
        let grid = match input(file)
            .map_err(|e| e.to_string())
            .and_then(|p| load_height_map(&p).map_err(|e| e.to_string()))
            .and_then(|map| full_grid(&map).map_err(|e| e.to_string()))
        {
            Ok(grid) => grid,
            Err(msg) => {
                eprintln!("skipping mesher/{name}: {msg}");
                continue;
            }
        };
        let cancel = CancelToken::new();
        group.bench_function(name, |b| {
            b.iter(|| triangulate_heightfield(&grid, &limits, &cancel).expect("mesh"))
        });
    }
    group.finish();
}

fn mask(c: &mut Criterion) {
    let (size, r) = (512u32, 150.0f32);
    let rgba: Vec<u8> = (0..size * size)
        .flat_map(|i| {
            let (x, y) = ((i % size) as f32 + 0.5, (i / size) as f32 + 0.5);
            let inside = (x - 256.0).powi(2) + (y - 250.0).powi(2) <= r * r;
            if inside {
                [40, 90, 30, 255]
            } else {
                [240, 240, 240, 255]
            }
        })
        .collect();
    let luma = rgba
        .chunks_exact(4)
        .map(|p| {
            (0.2126 * f32::from(p[0]) + 0.7152 * f32::from(p[1]) + 0.0722 * f32::from(p[2])) / 255.0
        })
        .collect();
    let image = LoadedImage {
        name: "disc512".into(),
        width: size,
        height: size,
        rgba,
        luma,
        has_alpha: false,
        gray16: false,
    };
    let mut group = c.benchmark_group("mask");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("border_512", |b| b.iter(|| estimate_mask(&image)));
    group.finish();
}

criterion_group!(benches, pipeline, mesher, mask);
criterion_main!(benches);
