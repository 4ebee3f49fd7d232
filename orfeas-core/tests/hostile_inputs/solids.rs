//! Height field → closed solid over random masks and heights, through the public meshing
//! path the relief pipeline takes (`CornerGrid::from_height_map`, `triangulate_heightfield`,
//! `build_solid`): the solid passes `check_solid`'s printability check (watertight, manifold,
//! no degenerate faces, finite, positive volume), or meshing fails with ERR_MESHING (an empty
//! mask, or one whose every pixel touches the others only at corners).

use orfeas_core::mesh::{
    build_solid, check_solid, triangulate_heightfield, CornerGrid, MeshingLimits, Scale,
};
use orfeas_core::{CancelToken, HeightMap, Mask, MaskSource};
use proptest::prelude::*;

use crate::alloc_cap::assert_no_huge_allocation;

/// A mask pattern on a `w × h` image.
#[derive(Clone, Debug)]
pub enum Pattern {
    Empty,
    Full,
    Pixel(u32, u32),
    Checkerboard,
    Diagonal,
    /// A filled rectangle with a hole (a ring), plus an island inside the hole.
    Ring,
    /// Random pixels at density `p` percent.
    Random(u8, u64),
    /// A few random rectangles (several components, touching or not).
    Blobs(Vec<(u32, u32, u32, u32)>),
}

impl Pattern {
    pub fn mask(&self, w: u32, h: u32) -> Mask {
        let mut data = vec![false; (w * h) as usize];
        let mut set = |x: u32, y: u32| {
            if x < w && y < h {
                data[(y * w + x) as usize] = true;
            }
        };
        match self {
            Pattern::Empty => {}
            Pattern::Full => (0..h).for_each(|y| (0..w).for_each(|x| set(x, y))),
            Pattern::Pixel(x, y) => set(x % w, y % h),
            Pattern::Checkerboard => {
                (0..h).for_each(|y| (0..w).filter(|x| (x + y) % 2 == 0).for_each(|x| set(x, y)))
            }
            Pattern::Diagonal => (0..w.min(h)).for_each(|i| set(i, i)),
            Pattern::Ring => (0..h).for_each(|y| {
                (0..w).for_each(|x| {
                    let edge = x.min(y).min(w - 1 - x).min(h - 1 - y);
                    if !(2..4).contains(&edge) {
                        set(x, y);
                    }
                })
            }),
            Pattern::Random(p, salt) => {
                let mut state = salt | 1;
                (0..h).for_each(|y| {
                    (0..w).for_each(|x| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        if (state % 100) < u64::from(*p) {
                            set(x, y);
                        }
                    })
                })
            }
            Pattern::Blobs(rects) => {
                for &(x0, y0, rw, rh) in rects {
                    for y in y0..y0 + rh {
                        for x in x0..x0 + rw {
                            set(x, y);
                        }
                    }
                }
            }
        }
        Mask {
            width: w,
            height: h,
            data,
            source: MaskSource::Alpha,
        }
    }
}

fn pattern() -> impl Strategy<Value = Pattern> {
    prop_oneof![
        1 => Just(Pattern::Empty),
        1 => Just(Pattern::Full),
        1 => (any::<u32>(), any::<u32>()).prop_map(|(x, y)| Pattern::Pixel(x, y)),
        1 => Just(Pattern::Checkerboard),
        1 => Just(Pattern::Diagonal),
        1 => Just(Pattern::Ring),
        4 => (0u8..=100, any::<u64>()).prop_map(|(p, s)| Pattern::Random(p, s)),
        2 => prop::collection::vec((0u32..20, 0u32..20, 1u32..8, 1u32..8), 1..5)
            .prop_map(Pattern::Blobs),
    ]
}

/// Heights per pixel: constant, smooth, random, spikes, and non-finite values.
#[derive(Clone, Debug)]
pub enum Heights {
    Constant(f32),
    Random(Vec<f32>),
    /// Zero with a few spikes of the given height.
    Spikes(Vec<(usize, f32)>),
}

impl Heights {
    pub fn map(&self, w: u32, h: u32) -> HeightMap {
        let n = (w * h) as usize;
        let data = match self {
            Heights::Constant(v) => vec![*v; n],
            Heights::Random(values) => (0..n).map(|i| values[i % values.len()]).collect(),
            Heights::Spikes(spikes) => {
                let mut d = vec![0.0; n];
                for &(i, v) in spikes {
                    d[i % n] = v;
                }
                d
            }
        };
        HeightMap::new(w, h, data).expect("the sides are 1..=24 and the data their product")
    }
}

fn height() -> impl Strategy<Value = f32> {
    prop_oneof![
        6 => 0.0f32..=1.0,
        1 => -2.0f32..3.0,
        1 => prop::sample::select(vec![
            0.0, 1.0, -1.0, 1e30, -1e30, f32::MAX, f32::MIN, f32::NAN, f32::INFINITY,
            f32::NEG_INFINITY, 1e-40,
        ]),
    ]
}

fn heights() -> impl Strategy<Value = Heights> {
    prop_oneof![
        1 => height().prop_map(Heights::Constant),
        3 => prop::collection::vec(height(), 1..64).prop_map(Heights::Random),
        2 => prop::collection::vec((any::<usize>(), height()), 1..6).prop_map(Heights::Spikes),
    ]
}

fn scale() -> impl Strategy<Value = Scale> {
    (
        prop_oneof![0.001f32..0.01, 0.01f32..10.0, Just(1.0)],
        prop_oneof![Just(0.0f32), 0.0f32..50.0, Just(10.0)],
        prop_oneof![0.05f32..5.0, Just(2.0)],
    )
        .prop_map(|(mm_per_cell, depth_mm, base_mm)| Scale {
            mm_per_cell,
            depth_mm,
            base_mm,
        })
}

fn limits() -> impl Strategy<Value = MeshingLimits> {
    (
        prop_oneof![Just(0.0f32), 0.0f32..0.5, Just(0.01)],
        prop_oneof![1usize..50, 50usize..5000, Just(1 << 20)],
    )
        .prop_map(|(max_error, max_triangles)| MeshingLimits {
            max_error,
            max_triangles,
        })
}

/// The property, for one case.
pub fn check_solid_case(
    w: u32,
    h: u32,
    pattern: &Pattern,
    heights: &Heights,
    limits: &MeshingLimits,
    scale: Scale,
) -> Result<(), TestCaseError> {
    let mask = pattern.mask(w, h);
    let map = heights.map(w, h);
    let grid = match CornerGrid::from_height_map(&map, &mask) {
        Ok(grid) => grid,
        Err(e) => {
            // Depth is screened before meshing; a non-finite height inside the mask that
            // reaches the mesher is the caller's mistake, and said so.
            prop_assert_eq!(e.code(), "ERR_INVALID_INPUT", "{}", e);
            let non_finite_inside = map
                .values()
                .iter()
                .zip(&mask.data)
                .any(|(v, &m)| m && !v.is_finite());
            prop_assert!(non_finite_inside, "a finite map was refused: {e}");
            return Ok(());
        }
    };
    let hf = match triangulate_heightfield(&grid, limits, &CancelToken::new()) {
        Ok(hf) => hf,
        Err(e) => {
            prop_assert_eq!(e.code(), "ERR_MESHING", "{}", e);
            // Only a mask with no pixel block that survives pinch removal fails here.
            let full_block = (0..h.saturating_sub(1)).any(|y| {
                (0..w.saturating_sub(1)).any(|x| {
                    [(0, 0), (1, 0), (0, 1), (1, 1)]
                        .iter()
                        .all(|&(dx, dy)| mask.data[((y + dy) * w + x + dx) as usize])
                })
            });
            prop_assert!(!full_block, "a 2x2 block of foreground did not mesh: {e}");
            return Ok(());
        }
    };
    prop_assert!(!mask.data.iter().all(|&m| !m), "an empty mask meshed");
    let solid = build_solid(&hf, scale).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    let report = check_solid(&solid);
    prop_assert!(report.is_watertight(), "not watertight: {report:?}");
    prop_assert!(report.is_printable(), "not printable: {report:?}");
    let top = scale.base_mm + scale.depth_mm;
    prop_assert!(
        solid
            .positions
            .iter()
            .all(|p| p[2] >= 0.0 && p[2] <= top * (1.0 + 1e-6)),
        "a vertex outside 0..={top}"
    );
    assert_no_huge_allocation("solid");
    Ok(())
}

proptest! {
    #![proptest_config(crate::config(96))]

    #[test]
    fn height_fields_become_printable_solids_or_meshing_errors(
        w in 1u32..=24,
        h in 1u32..=24,
        pattern in pattern(),
        heights in heights(),
        limits in limits(),
        scale in scale(),
    ) {
        check_solid_case(w, h, &pattern, &heights, &limits, scale)?;
    }
}
