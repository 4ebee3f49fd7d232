//! Shared helpers for the orfeas benchmarks and side-by-side comparisons.
//!
//! Nothing here is timed by `cargo test`: the crate only has to compile there. The timed
//! parts are `benches/pipeline.rs` (criterion) and the `mesher_compare` binary; the inputs
//! are made by `benches/make_inputs.py` (see `docs/performance.md`).

use std::path::{Path, PathBuf};

use orfeas_core::image::{load_image, ImageLimits};
use orfeas_core::mesh::{CornerGrid, HeightfieldMesh};
use orfeas_core::{HeightMap, ImageSource, Mask, OrfeasError};

/// Where the generated inputs live: `$ORFEAS_BENCH_INPUTS`, else `<workspace>/target/bench-inputs`.
pub fn inputs_dir() -> PathBuf {
    match std::env::var_os("ORFEAS_BENCH_INPUTS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("target")
            .join("bench-inputs"),
    }
}

/// The path of one generated input, or a message that says how to make it.
pub fn input(name: &str) -> Result<PathBuf, String> {
    let path = inputs_dir().join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} is missing: run `python3 benches/make_inputs.py {}` first (needs numpy, pillow, scikit-image)",
            path.display(),
            inputs_dir().display()
        ))
    }
}

/// Loads an image as a height map at full precision: luminance (16 bits for 16-bit gray
/// PNGs), min–max normalised to [0, 1] so that the relief height is 1, no smoothing.
pub fn load_height_map(path: &Path) -> Result<HeightMap, OrfeasError> {
    let img = load_image(
        &ImageSource::Path(path.to_path_buf()),
        &ImageLimits::default(),
    )?;
    let mut data = img.luma;
    let (lo, hi) = data
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let span = if hi > lo { hi - lo } else { 1.0 };
    for v in &mut data {
        *v = (*v - lo) / span;
    }
    Ok(HeightMap {
        width: img.width,
        height: img.height,
        data,
    })
}

/// The `(w+1) × (h+1)` corner grid of a height map with every pixel inside (the benchmark
/// maps are generated well-formed, so a failure here is a bug in the generator).
pub fn full_grid(map: &HeightMap) -> CornerGrid {
    CornerGrid::from_height_map(map, &Mask::full(map.width, map.height))
        .expect("benchmark height maps are well-formed")
}

/// The true maximum vertical distance between a meshed height field and its grid, by brute
/// force: every triangle's covered grid points (exact integer inside test, edges included)
/// are compared with the triangle's plane in f64. Independent of the mesher's own error
/// bookkeeping. Also returns how many grid points were covered at least once, so a caller
/// can see that the mesh covers the grid.
pub fn true_max_error(grid: &CornerGrid, mesh: &HeightfieldMesh) -> TrueError {
    let gw = grid.width as usize;
    let mut covered = vec![false; grid.heights.len()];
    let mut worst = 0.0f64;
    let mut worst_at = [0u32; 2];
    for t in &mesh.triangles {
        let p = t.map(|i| mesh.vertices[i as usize].map(i64::from));
        let h = t.map(|i| f64::from(mesh.heights[i as usize]));
        let det =
            (p[1][0] - p[0][0]) * (p[2][1] - p[0][1]) - (p[2][0] - p[0][0]) * (p[1][1] - p[0][1]);
        if det == 0 {
            continue; // degenerate: covers no area (the solid check would reject it anyway)
        }
        let (x0, x1) = (
            p.iter().map(|v| v[0]).min().unwrap_or(0),
            p.iter().map(|v| v[0]).max().unwrap_or(0),
        );
        let (y0, y1) = (
            p.iter().map(|v| v[1]).min().unwrap_or(0),
            p.iter().map(|v| v[1]).max().unwrap_or(0),
        );
        let inv = 1.0 / det as f64;
        for y in y0..=y1 {
            for x in x0..=x1 {
                // Barycentric numerators, exact in integers; same sign as det = inside.
                let w0 = (p[1][0] - x) * (p[2][1] - y) - (p[2][0] - x) * (p[1][1] - y);
                let w1 = (p[2][0] - x) * (p[0][1] - y) - (p[0][0] - x) * (p[2][1] - y);
                let w2 = det - w0 - w1;
                let inside = if det > 0 {
                    w0 >= 0 && w1 >= 0 && w2 >= 0
                } else {
                    w0 <= 0 && w1 <= 0 && w2 <= 0
                };
                if !inside {
                    continue;
                }
                let plane = (w0 as f64 * h[0] + w1 as f64 * h[1] + w2 as f64 * h[2]) * inv;
                let i = y as usize * gw + x as usize;
                covered[i] = true;
                let d = (f64::from(grid.heights[i]) - plane).abs();
                if d > worst {
                    worst = d;
                    worst_at = [x as u32, y as u32];
                }
            }
        }
    }
    TrueError {
        max_error: worst,
        at: worst_at,
        covered_points: covered.iter().filter(|&&c| c).count(),
    }
}

/// Result of [`true_max_error`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrueError {
    /// Largest |grid height − mesh plane| over all covered grid points (height units).
    pub max_error: f64,
    /// Grid point where it occurs.
    pub at: [u32; 2],
    /// Grid points covered by at least one triangle.
    pub covered_points: usize,
}

/// Median of a non-empty slice (the mean of the two middle values for even lengths).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orfeas_core::mesh::{triangulate_heightfield, MeshingLimits};
    use orfeas_core::CancelToken;

    fn wavy(n: u32) -> HeightMap {
        let data = (0..n * n)
            .map(|i| {
                let (x, y) = ((i % n) as f32 / n as f32, (i / n) as f32 / n as f32);
                0.5 + 0.4 * (x * 7.0).sin() * (y * 5.0).cos()
            })
            .collect();
        HeightMap {
            width: n,
            height: n,
            data,
        }
    }

    #[test]
    fn checker_agrees_with_the_mesher_bound_and_covers_the_grid() {
        let grid = full_grid(&wavy(64));
        let limits = MeshingLimits {
            max_error: 0.002,
            max_triangles: usize::MAX,
        };
        let mesh = triangulate_heightfield(&grid, &limits, &CancelToken::new()).expect("mesh");
        let err = true_max_error(&grid, &mesh);
        assert!(err.max_error <= 0.002 + 1e-6, "{err:?}");
        assert!(err.max_error > 0.0);
        assert_eq!(err.covered_points, grid.heights.len());
    }

    #[test]
    fn checker_sees_a_coarse_mesh_error() {
        let grid = full_grid(&wavy(64));
        let limits = MeshingLimits {
            max_error: 0.0,
            max_triangles: 2,
        };
        let mesh = triangulate_heightfield(&grid, &limits, &CancelToken::new()).expect("mesh");
        assert_eq!(mesh.triangles.len(), 2);
        let err = true_max_error(&grid, &mesh);
        // Two triangles cannot follow a ±0.4 wave: the true error must be large and equal
        // to what the mesher reports for the tolerance it had to use.
        assert!(err.max_error > 0.1, "{err:?}");
        assert!(
            (err.max_error - f64::from(mesh.max_error)).abs() < 1e-4,
            "{err:?} vs {}",
            mesh.max_error
        );
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
