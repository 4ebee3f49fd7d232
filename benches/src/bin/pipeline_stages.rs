//! Where the end-to-end time goes, and the true max height error, per quality.
//!
//! Replays the pipeline's stages for `relief` with the same public functions
//! `image_to_model` + `export_model` call (load → fit to the preset → mask → relief → corner
//! grid → mesh → solid → printability check → binary STL file), timing each one (median of
//! RUNS after one warm-up), then measures the top surface against its grid by brute force.
//! Not replayed: the per-vertex colour sampling (private to the pipeline, small).
//!
//! `cargo run --release -p orfeas-benches --bin pipeline_stages [-- IMAGE [RUNS]]`
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::time::Instant;

use orfeas_benches::{input, median, true_max_error};
use orfeas_core::depth::ReliefEstimator;
use orfeas_core::export::{save, ExportInput};
use orfeas_core::image::load_image;
use orfeas_core::mask::estimate_mask;
use orfeas_core::mesh::{
    build_solid, check_solid, triangulate_heightfield, CornerGrid, MeshingLimits, Scale,
};
use orfeas_core::{
    CancelToken, DepthEstimator, GenerateSettings, ImageLimits, ImageSource, Mask, MeshFormat,
    Quality,
};

const STAGES: [&str; 10] = [
    "load", "fit", "mask", "relief", "grid", "mesh", "solid", "check", "stl", "total",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = match std::env::args().nth(1) {
        Some(p) => PathBuf::from(p),
        None => input("photo1024.png")?,
    };
    let runs: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
        .max(1);
    let source = ImageSource::Path(path);
    let cancel = CancelToken::new();
    let limits = ImageLimits::default();
    let out = std::env::temp_dir().join(format!("orfeas-stages-{}", std::process::id()));
    std::fs::create_dir_all(&out)?;

    let mut timing_rows = Vec::new();
    let mut error_rows = Vec::new();
    for quality in [Quality::Low, Quality::Medium, Quality::High] {
        let settings = GenerateSettings {
            quality,
            ..Default::default()
        };
        let preset = settings.effective_preset();
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); STAGES.len()];
        for run in 0..=runs {
            let mut t = [0.0f64; STAGES.len()];
            let mut lap = Instant::now();
            let mut tick = |i: usize, t: &mut [f64; STAGES.len()]| {
                t[i] = lap.elapsed().as_secs_f64();
                lap = Instant::now();
            };
            let loaded = load_image(&source, &limits)?;
            tick(0, &mut t);
            let work = loaded.fit_within(preset.working_size);
            drop(loaded);
            tick(1, &mut t);
            let mask = if work.gray16 {
                Mask::full(work.width, work.height)
            } else {
                estimate_mask(&work)
            };
            tick(2, &mut t);
            let heights =
                ReliefEstimator::new(preset.smoothing_sigma).estimate(&work, &mask, &cancel)?;
            tick(3, &mut t);
            let grid = CornerGrid::from_height_map(&heights, &mask)?;
            tick(4, &mut t);
            let ml = MeshingLimits {
                max_error: preset.max_error,
                max_triangles: preset.max_triangles,
            };
            let hf = triangulate_heightfield(&grid, &ml, &cancel)?;
            tick(5, &mut t);
            let scale = Scale {
                mm_per_cell: settings.width_mm / work.width as f32,
                depth_mm: settings.depth_mm,
                base_mm: settings.base_mm,
            };
            let mesh = build_solid(&hf, scale)?;
            tick(6, &mut t);
            let report = check_solid(&mesh);
            tick(7, &mut t);
            let files = save(MeshFormat::Stl, &ExportInput::mesh(&mesh), &out, "stages")?;
            tick(8, &mut t);
            t[9] = t[..9].iter().sum();
            for f in &files {
                std::fs::remove_file(&f.path)?;
            }
            if run > 0 {
                for (s, v) in samples.iter_mut().zip(t) {
                    s.push(v);
                }
            } else {
                let err = true_max_error(&grid, &hf);
                error_rows.push(format!(
                    "| {quality} | {}×{} | {:?} | {} | {} | {} | {:.6} | {:.6} | {:.4} |",
                    work.width,
                    work.height,
                    mask.source,
                    mesh.triangles.len(),
                    hf.triangles.len(),
                    preset.max_error,
                    hf.max_error,
                    err.max_error,
                    err.max_error * f64::from(settings.depth_mm),
                ));
                if !report.is_printable() {
                    println!("WARNING: {quality}: solid not printable: {report:?}");
                }
            }
        }
        let cells: Vec<String> = samples
            .iter()
            .map(|s| format!("{:.3}", median(s)))
            .collect();
        timing_rows.push(format!("| {quality} | {} |", cells.join(" | ")));
    }
    let _ = std::fs::remove_dir_all(&out);

    println!("Stage times, seconds (median of {runs} runs after one warm-up):");
    println!();
    println!("| quality | {} |", STAGES.join(" | "));
    println!("|---|{}", "---:|".repeat(STAGES.len()));
    for r in &timing_rows {
        println!("{r}");
    }
    println!();
    println!("True max height error of the top surface against its grid (brute force):");
    println!();
    println!("| quality | working size | mask | solid triangles | top triangles | preset max_error | tolerance used | true max error | true max error (mm, depth 20 mm) |");
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|");
    for r in &error_rows {
        println!("{r}");
    }
    Ok(())
}
