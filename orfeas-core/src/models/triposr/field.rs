//! The dense density field that `TSR.extract_mesh` hands to marching cubes: `density_act` at
//! every point of an `R³` grid over the renderer's cube, indexed `[x][y][z]`.
//!
//! The grid is the reference's: `linspace(0, 1, R)` per axis (PyTorch's two-sided formula),
//! mapped to `(-radius, radius)` with `scale_tensor` and back to `(-1, 1)` by `query_triplane`,
//! each step in f32 as PyTorch evaluates it, so the points are the reference's to the bit.
//! It is evaluated in chunks of whole x-slices: memory beyond the `R³` result stays bounded,
//! and the caller sees progress and may cancel between chunks.

use candle_core::Tensor;

use super::decoder::{internal, FieldDecoder, Normaliser, Planes, CHUNK_POINTS};
use super::scene::{DensityGrid, SceneCode};
use crate::cancel::CancelToken;
use crate::error::OrfeasError;

impl FieldDecoder {
    /// The dense `resolution³` field (the fused CPU kernel on the CPU, [`FieldDecoder::query`]
    /// per chunk elsewhere); `on_progress(fraction done)` after every chunk, `cancel` checked
    /// before each.
    pub(crate) fn density_grid(
        &self,
        code: &SceneCode,
        resolution: usize,
        cancel: &CancelToken,
        on_progress: &mut dyn FnMut(f32),
    ) -> crate::Result<DensityGrid> {
        let r = resolution;
        if r == 0 {
            return Err(OrfeasError::InvalidInput(
                "triposr: a density grid needs a resolution of at least 1".into(),
            ));
        }
        let Some(total) = r.checked_pow(3) else {
            return Err(OrfeasError::InvalidInput(format!(
                "triposr: a {r}³ grid is too large"
            )));
        };
        let planes = self.planes(code)?;
        let radius = self.radius();
        let world = grid_axis(r, radius);
        let scale = Normaliser::new(radius);
        let unit: Vec<f32> = world.iter().map(|&p| scale.apply(p)).collect();
        let slice = r * r;
        let slices_per_chunk = (CHUNK_POINTS / slice).max(1);
        let mut values = vec![0f32; total];
        let mut done = 0;
        for (chunk_index, chunk) in values.chunks_mut(slices_per_chunk * slice).enumerate() {
            cancel.check()?;
            let first_x = chunk_index * slices_per_chunk;
            match &planes {
                Planes::Host(planes) => {
                    let point = |i: usize| {
                        let (x, rest) = (first_x + i / slice, i % slice);
                        [unit[x], unit[rest / r], unit[rest % r]]
                    };
                    self.kernel(planes)
                        .run(point, chunk, None)
                        .map_err(internal)?;
                }
                Planes::Device(planes) => {
                    let mut flat = Vec::with_capacity(3 * chunk.len());
                    for i in 0..chunk.len() {
                        let (x, rest) = (first_x + i / slice, i % slice);
                        flat.extend([world[x], world[rest / r], world[rest % r]]);
                    }
                    let points = Tensor::from_vec(flat, (chunk.len(), 3), self.device())
                        .map_err(internal)?;
                    let (density, _) =
                        self.query_parts(planes, &points, false).map_err(internal)?;
                    let density: Vec<f32> = density
                        .to_dtype(candle_core::DType::F32)
                        .and_then(|d| d.to_vec1())
                        .map_err(internal)?;
                    chunk.copy_from_slice(&density);
                }
            }
            done += chunk.len();
            on_progress(done as f32 / total as f32);
        }
        Ok(DensityGrid {
            resolution: r,
            radius,
            values,
        })
    }
}

/// The grid's coordinates on one axis in the renderer frame: `torch.linspace(0, 1, r)` (the
/// first half counted up from 0, the rest down from 1, with an f32 step; `[0]` for one step),
/// then
/// `scale_tensor((0, 1) → (-radius, radius))` as `g · 2radius + (-radius)`.
pub(super) fn grid_axis(r: usize, radius: f32) -> Vec<f32> {
    let step = if r > 1 { 1.0 / (r - 1) as f32 } else { 0.0 };
    let span = radius + radius;
    (0..r)
        .map(|i| {
            let g = if i < r / 2 || r == 1 {
                step * i as f32
            } else {
                1.0 - step * (r - 1 - i) as f32
            };
            g * span + -radius
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::super::fixture;
    use super::*;
    use crate::kernels::with_kernels_disabled;

    fn tiny() -> FieldDecoder {
        fixture::field_decoder()
    }

    fn scene_code() -> SceneCode {
        let planes = &fixture::reference()["scene_codes"];
        let (_, _, c, r, _) = planes.dims5().expect("dims");
        SceneCode {
            channels: c,
            resolution: r,
            values: planes
                .flatten_all()
                .and_then(|t| t.to_vec1())
                .expect("values"),
        }
    }

    /// `density_grid(24)` against the reference's `extract_mesh` field, on the fused kernel
    /// and on the generic path; progress rises to 1.
    #[test]
    fn the_field_matches_the_reference_on_both_paths() {
        let want = &fixture::reference()["field"];
        let r = want.dim(0).expect("R");
        let decoder = tiny();
        let code = scene_code();
        let run = || {
            let mut progress = Vec::new();
            let grid = decoder
                .density_grid(&code, r, &CancelToken::new(), &mut |f| progress.push(f))
                .expect("grid");
            (grid, progress)
        };
        for (path, (grid, progress)) in [("kernel", run()), ("generic", with_kernels_disabled(run))]
        {
            assert_eq!((grid.resolution, grid.radius), (r, 0.87));
            let got = Tensor::from_vec(grid.values, (r, r, r), &Device::Cpu).expect("field");
            let err = fixture::relative_error(&got, want);
            eprintln!("field ({path}): relative error {err:.2e}");
            assert!(err <= 1e-4, "{path}: relative error {err}");
            assert!(progress.windows(2).all(|w| w[0] < w[1]), "{progress:?}");
            assert_eq!(progress.last(), Some(&1.0));
        }
    }

    /// Chunks of whole x-slices: a grid of several chunks and a partial last one is the same
    /// field as point queries at the same coordinates, and reports progress per chunk.
    #[test]
    fn chunked_grids_equal_point_queries_and_report_each_chunk() {
        let decoder = tiny();
        let code = scene_code();
        // 80² = 6400 points a slice: 40 slices a chunk, so 80 slices are 2 chunks.
        let r = 80;
        let mut progress = Vec::new();
        let grid = decoder
            .density_grid(&code, r, &CancelToken::new(), &mut |f| progress.push(f))
            .expect("grid");
        assert_eq!(progress.len(), r.div_ceil(CHUNK_POINTS / (r * r)));
        let axis = grid_axis(r, 0.87);
        let picks = [
            (0, 0, 0),
            (79, 79, 79),
            (41, 3, 77),
            (39, 40, 0),
            (40, 12, 5),
        ];
        let points: Vec<[f32; 3]> = picks
            .iter()
            .map(|&(x, y, z)| [axis[x], axis[y], axis[z]])
            .collect();
        let direct = decoder.density(&code, &points).expect("points");
        for (&(x, y, z), d) in picks.iter().zip(direct) {
            let g = grid.values[(x * r + y) * r + z];
            assert!(
                (g - d).abs() <= 1e-6 * d.abs().max(1.0),
                "({x}, {y}, {z}): {g} vs {d}"
            );
        }
    }

    #[test]
    fn a_cancelled_field_stops_and_one_step_grids_sit_at_the_corner() {
        let decoder = tiny();
        let code = scene_code();
        let cancel = CancelToken::new();
        cancel.cancel();
        let err = decoder
            .density_grid(&code, 8, &cancel, &mut |_| {})
            .expect_err("cancelled");
        assert_eq!(err.code(), "ERR_CANCELLED");
        assert!(decoder
            .density_grid(&code, 0, &CancelToken::new(), &mut |_| {})
            .is_err());
        let one = decoder
            .density_grid(&code, 1, &CancelToken::new(), &mut |_| {})
            .expect("R = 1");
        let corner = decoder.density(&code, &[[-0.87; 3]]).expect("corner");
        assert_eq!(one.values, corner);
        assert_eq!(grid_axis(1, 0.87), vec![-0.87]);
        let axis = grid_axis(5, 0.87);
        assert_eq!((axis[0], axis[4]), (-0.87, 0.87));
        assert!((axis[2]).abs() < 1e-7);
    }
}
