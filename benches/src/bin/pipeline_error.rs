//! The true max height error of the pipeline's top surface, per quality.
//!
//! Replays the pipeline's stages for `relief` (load → fit to the preset → mask → relief →
//! corner grid → mesh, the same public functions `image_to_model` calls), measures the mesh
//! against its grid by brute force, and cross-checks the triangle count with
//! `image_to_model` itself.
//!
//! `cargo run --release -p orfeas-benches --bin pipeline_error [-- IMAGE]`
#![allow(clippy::print_stdout)]

use std::path::PathBuf;

use orfeas_benches::{input, true_max_error};
use orfeas_core::depth::ReliefEstimator;
use orfeas_core::image::load_image;
use orfeas_core::mask::estimate_mask;
use orfeas_core::mesh::{triangulate_heightfield, CornerGrid, MeshingLimits};
use orfeas_core::{image_to_model, CancelToken, DepthEstimator, DepthMethod, GenerateSettings, ImageLimits, ImageSource, Mask, Quality};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = match std::env::args().nth(1) {
        Some(p) => PathBuf::from(p),
        None => input("photo1024.png")?,
    };
    let source = ImageSource::Path(path);
    let cancel = CancelToken::new();
    let limits = ImageLimits::default();
    println!("| quality | working size | mask | solid triangles | top triangles | preset max_error | tolerance used | true max error | true max error (mm, depth 20 mm) |");
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|");
    for quality in [Quality::Low, Quality::Medium, Quality::High] {
        let settings = GenerateSettings { quality, ..Default::default() };
        let preset = settings.effective_preset();
        let model = image_to_model(&source, &settings, DepthMethod::Relief, &limits, &cancel, &mut |_, _| {})?;

        let work = load_image(&source, &limits)?.fit_within(preset.working_size);
        let mask = if work.gray16 { Mask::full(work.width, work.height) } else { estimate_mask(&work) };
        let heights = ReliefEstimator::new(preset.smoothing_sigma).estimate(&work, &mask, &cancel)?;
        let grid = CornerGrid::from_height_map(&heights, &mask);
        let ml = MeshingLimits { max_error: preset.max_error, max_triangles: preset.max_triangles };
        let hf = triangulate_heightfield(&grid, &ml, &cancel)?;
        let err = true_max_error(&grid, &hf);
        println!(
            "| {quality} | {}×{} | {:?} (coverage {:.3}) | {} | {} | {} | {:.6} | {:.6} | {:.4} |",
            work.width,
            work.height,
            mask.source,
            mask.coverage(),
            model.report.triangles,
            hf.triangles.len(),
            preset.max_error,
            hf.max_error,
            err.max_error,
            err.max_error * f64::from(settings.depth_mm),
        );
        if (model.report.max_error - hf.max_error).abs() > f32::EPSILON {
            println!("  note: replay tolerance {} differs from the pipeline's {}", hf.max_error, model.report.max_error);
        }
    }
    Ok(())
}
