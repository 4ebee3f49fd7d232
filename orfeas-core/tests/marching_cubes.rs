//! Closed marching cubes: geometry against analytic shapes and scikit-image, and a printable
//! solid for every field, however hostile (noise, values exactly at the level, plateaus,
//! one-voxel features, tiny and non-cubic grids).

use std::path::Path;

use orfeas_core::mesh::{check_solid, keep_largest_component, marching_cubes, Mesh, SolidReport};
use orfeas_core::{CancelToken, OrfeasError};

fn grid(dims: [usize; 3], mut f: impl FnMut(f32, f32, f32) -> f32) -> Vec<f32> {
    let mut v = Vec::with_capacity(dims[0] * dims[1] * dims[2]);
    for x in 0..dims[0] {
        for y in 0..dims[1] {
            for z in 0..dims[2] {
                v.push(f(x as f32, y as f32, z as f32));
            }
        }
    }
    v
}

fn mesh(values: &[f32], dims: [usize; 3], iso: f32, outside: f32) -> Mesh {
    marching_cubes(values, dims, iso, outside, &CancelToken::new()).expect("marching cubes")
}

#[track_caller]
fn assert_printable(m: &Mesh, what: &str) -> SolidReport {
    let r = check_solid(m);
    assert!(r.is_printable(), "{what}: {r:?}");
    assert!(m.uvs.is_empty() && m.colors.is_empty());
    r
}

fn area(m: &Mesh) -> f64 {
    m.triangles
        .iter()
        .map(|t| {
            let [a, b, c] = t.map(|i| m.positions[i as usize].map(f64::from));
            let u = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
            let v = [c[0] - a[0], c[1] - a[1], c[2] - a[2]];
            let n = [
                u[1] * v[2] - u[2] * v[1],
                u[2] * v[0] - u[0] * v[2],
                u[0] * v[1] - u[1] * v[0],
            ];
            (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt() / 2.0
        })
        .sum()
}

/// xorshift64*: deterministic noise without a dependency.
struct Rng(u64);

impl Rng {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32) / (1u64 << 24) as f32
    }
}

#[test]
fn sphere_area_and_volume_match_the_analytic_ones() {
    let (n, r, c) = (64, 20.0f64, 31.3f32);
    let dims = [n, n, n];
    let values = grid(dims, |x, y, z| {
        r as f32 - ((x - c).powi(2) + (y - c).powi(2) + (z - c).powi(2)).sqrt()
    });
    let m = mesh(&values, dims, 0.0, -100.0);
    let rep = assert_printable(&m, "sphere");
    assert_eq!((rep.components, rep.genus_sum), (1, 0));
    let pi = std::f64::consts::PI;
    let (a, v) = (area(&m), rep.volume);
    assert!((a / (4.0 * pi * r * r) - 1.0).abs() < 0.01, "area {a}");
    assert!(
        (v / (4.0 / 3.0 * pi * r.powi(3)) - 1.0).abs() < 0.01,
        "volume {v}"
    );
    // Outward: every vertex normal points away from the centre.
    let normals = m.vertex_normals();
    for (p, nrm) in m.positions.iter().zip(&normals) {
        let d = [p[0] - c, p[1] - c, p[2] - c];
        let len = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
        assert!(d[0] * nrm[0] + d[1] * nrm[1] + d[2] * nrm[2] > 0.95 * len);
    }
}

#[test]
fn matches_scikit_image_on_the_fixture_field() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/marching_cubes");
    let tensors =
        candle_core::safetensors::load(dir.join("field.safetensors"), &candle_core::Device::Cpu)
            .expect("fixture field");
    let field = &tensors["field"];
    let dims: [usize; 3] = field.dims().try_into().expect("3-D field");
    let values = field
        .flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .expect("f32 field");
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("reference.json")).expect("reference.json"),
    )
    .expect("reference json");
    assert_eq!(reference["dims"], serde_json::json!(dims));
    let level = reference["level"].as_f64().expect("level") as f32;
    let outside = reference["outside"].as_f64().expect("outside") as f32;
    let faces = reference["lewiner"]["faces"].as_f64().expect("faces");
    let ref_area = reference["lewiner"]["area"].as_f64().expect("area");

    let m = mesh(&values, dims, level, outside);
    let rep = assert_printable(&m, "fixture");
    // Four bodies, one of them the torus.
    assert_eq!((rep.components, rep.genus_sum), (4, 1), "{rep:?}");
    let face_diff = m.triangles.len() as f64 / faces - 1.0;
    let area_diff = area(&m) / ref_area - 1.0;
    eprintln!(
        "fixture: {} faces vs lewiner {faces} ({:+.3}%), area {:.3} vs {ref_area:.3} ({:+.4}%)",
        m.triangles.len(),
        100.0 * face_diff,
        area(&m),
        100.0 * area_diff
    );
    assert!(face_diff.abs() < 0.01 && area_diff.abs() < 0.01);

    let largest = keep_largest_component(&m);
    let rep = assert_printable(&largest, "largest fixture component");
    assert_eq!(rep.components, 1);
    assert!(largest.triangles.len() < m.triangles.len());
}

#[test]
fn seeded_noise_is_always_a_printable_solid() {
    for seed in 1..=40u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let dims = [
            3 + (seed as usize % 7),
            4 + (seed as usize % 5),
            5 + (seed as usize % 9),
        ];
        let values: Vec<f32> = (0..dims.iter().product::<usize>())
            .map(|_| rng.next_f32() * 2.0 - 1.0)
            .collect();
        let m = mesh(&values, dims, 0.0, -2.0);
        assert_printable(&m, &format!("noise seed {seed} {dims:?}"));
    }
}

#[test]
fn values_exactly_at_the_level_collapse_nothing() {
    // Each value is below, exactly at or just above the level: vertices want to sit on grid
    // points, where unclamped interpolation would stack them.
    let levels = [-1.0, 0.25, 0.25, 0.25, 0.25 + f32::EPSILON, 1.0];
    for seed in 1..=30u64 {
        let mut rng = Rng(seed * 7919 + 3);
        let dims = [6, 7, 5];
        let values: Vec<f32> = (0..210)
            .map(|_| levels[(rng.next_f32() * levels.len() as f32) as usize % levels.len()])
            .collect();
        if !values.iter().any(|&v| v > 0.25) {
            continue;
        }
        let m = mesh(&values, dims, 0.25, -3.0);
        assert_printable(&m, &format!("at-level seed {seed}"));
    }
}

#[test]
fn plateaus_at_the_level_and_tiny_excursions() {
    let dims = [12, 10, 9];
    // A sea exactly at the level with a box barely above it and a ridge far above it.
    let values = grid(dims, |x, y, z| {
        if (3.0..=6.0).contains(&x) && (2.0..=5.0).contains(&y) && (2.0..=4.0).contains(&z) {
            1.0 + 1e-6
        } else if x == 9.0 {
            1e6
        } else {
            1.0
        }
    });
    let m = mesh(&values, dims, 1.0, 0.0);
    let rep = assert_printable(&m, "plateau");
    assert_eq!(rep.components, 2);
}

#[test]
fn a_single_voxel_above_the_level_is_an_octahedron_at_its_index() {
    let dims = [3, 4, 5];
    let values = grid(dims, |x, y, z| {
        if (x, y, z) == (1.0, 2.0, 3.0) {
            1.0
        } else {
            -1.0
        }
    });
    let m = mesh(&values, dims, 0.0, -1.0);
    assert_printable(&m, "single voxel");
    assert_eq!((m.positions.len(), m.triangles.len()), (6, 8));
    let (lo, hi) = m.bounds().expect("vertices");
    for (k, c) in [1.0, 2.0, 3.0].into_iter().enumerate() {
        assert!((lo[k] - (c - 0.5)).abs() < 1e-6 && (hi[k] - (c + 0.5)).abs() < 1e-6);
    }
    // Barely above the level: the clamp keeps the octahedron non-degenerate.
    let faint: Vec<f32> = values
        .iter()
        .map(|&v| if v > 0.0 { 1e-30 } else { v })
        .collect();
    let m = mesh(&faint, dims, 0.0, -1.0);
    assert_printable(&m, "faint voxel");
}

#[test]
fn a_grid_entirely_above_the_level_is_closed_by_the_pad() {
    let dims = [5, 3, 4];
    let values = vec![3.0; 60];
    let m = mesh(&values, dims, 1.0, -1.0);
    let rep = assert_printable(&m, "full grid");
    assert_eq!((rep.components, rep.genus_sum), (1, 0));
    // The pad at -1 and n: the crossing sits half-way (3 → -1 crosses 1 at 0.5).
    let (lo, hi) = m.bounds().expect("vertices");
    assert_eq!(lo, [-0.5, -0.5, -0.5]);
    assert_eq!(hi, [4.5, 2.5, 3.5]);
}

#[test]
fn one_voxel_sheets_and_diagonal_lines_are_solid() {
    let dims = [10, 11, 12];
    let sheet = grid(dims, |_, _, z| if z == 5.0 { 1.0 } else { 0.0 });
    let rep = assert_printable(&mesh(&sheet, dims, 0.5, 0.0), "sheet");
    assert_eq!(rep.components, 1);
    // A slanted sheet and a staircase line touch only along edges and corners: the
    // ambiguous faces are where a wrong table opens holes.
    let slanted = grid(dims, |x, y, _| if x == y { 1.0 } else { 0.0 });
    assert_printable(&mesh(&slanted, dims, 0.5, 0.0), "slanted sheet");
    let line = grid(dims, |x, y, z| if x == y && y == z { 1.0 } else { 0.0 });
    assert_printable(&mesh(&line, dims, 0.5, 0.0), "diagonal line");
    let checker = grid(dims, |x, y, z| ((x + y + z) as i32 % 2) as f32);
    assert_printable(&mesh(&checker, dims, 0.5, 0.0), "checkerboard");
}

#[test]
fn every_two_by_two_pattern_and_tiny_grid() {
    for pattern in 1..256u32 {
        for strength in [1.0f32, 1e-7, 3.0] {
            let values: Vec<f32> = (0..8)
                .map(|i| {
                    if pattern >> i & 1 == 1 {
                        strength
                    } else {
                        -1.0 + i as f32 * 0.1
                    }
                })
                .collect();
            let m = mesh(&values, [2, 2, 2], 0.0, -1.0);
            assert_printable(&m, &format!("2x2x2 pattern {pattern:08b} at {strength}"));
        }
    }
    let one = mesh(&[5.0], [1, 1, 1], 0.0, -5.0);
    assert_eq!(assert_printable(&one, "1x1x1").components, 1);
    assert!(mesh(&[0.0], [1, 1, 1], 0.0, -5.0).triangles.is_empty());
    assert!(mesh(&[], [0, 3, 3], 0.0, -5.0).triangles.is_empty());
    let row = mesh(&[1.0, -1.0, 1.0, 1.0], [1, 1, 4], 0.0, -1.0);
    assert_eq!(assert_printable(&row, "1x1x4").components, 2);
}

#[test]
fn the_loop_that_needs_a_centre_vertex_gets_one() {
    // Corners 1, 2 and 4 of the cube above iso, corner 0 below, and values chosen so the
    // asymptotic decider joins the inside corners across the x = 0 and y = 0 faces but not
    // across z = 0: a nine-vertex loop that no diagonal-only triangulation closes safely.
    let at = |dx: usize, dy: usize, dz: usize| (dx * 2 + dy) * 2 + dz;
    let mut values = vec![-1.0f32; 8];
    values[at(1, 0, 0)] = 0.5;
    values[at(0, 1, 0)] = 0.5;
    values[at(0, 0, 1)] = 2.0;
    values[at(0, 0, 0)] = -0.5;
    values[at(0, 1, 1)] = -0.5;
    values[at(1, 0, 1)] = -0.5;
    values[at(1, 1, 0)] = -2.0;
    let m = mesh(&values, [2, 2, 2], 0.0, -1.0);
    assert_printable(&m, "centred loop");
    let off_grid = m
        .positions
        .iter()
        .filter(|p| p.iter().all(|c| c.fract() != 0.0))
        .count();
    assert_eq!(off_grid, 1, "{:?}", m.positions);
}

#[test]
fn random_tiny_and_non_cubic_grids_with_real_values() {
    for seed in 1..=300u64 {
        let mut rng = Rng(seed * 104_729 + 11);
        let dims = [
            1 + (rng.next_f32() * 4.0) as usize,
            1 + (rng.next_f32() * 4.0) as usize,
            1 + (rng.next_f32() * 4.0) as usize,
        ];
        let values: Vec<f32> = (0..dims.iter().product::<usize>())
            .map(|_| rng.next_f32() - 0.5)
            .collect();
        let m = mesh(&values, dims, 0.0, -1.0);
        if values.iter().any(|&v| v > 0.0) {
            assert_printable(&m, &format!("tiny seed {seed} {dims:?}"));
        } else {
            assert!(m.triangles.is_empty());
        }
    }
}

#[test]
fn the_result_does_not_depend_on_the_thread_count() {
    let dims = [41, 23, 30];
    let mut rng = Rng(99);
    let values = grid(dims, |x, y, z| {
        (x * 0.4).sin() + (y * 0.3).cos() + (z * 0.5).sin() + 0.3 * rng.next_f32() - 0.2
    });
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool")
            .install(|| mesh(&values, dims, 0.0, -5.0))
    };
    let one = run(1);
    let rep = assert_printable(&one, "1 thread");
    for threads in [2, 7, 16] {
        let many = run(threads);
        let r = assert_printable(&many, &format!("{threads} threads"));
        assert_eq!(many.triangles.len(), one.triangles.len());
        assert_eq!(many.positions.len(), one.positions.len());
        assert_eq!((r.components, r.genus_sum), (rep.components, rep.genus_sum));
        assert!((r.volume - rep.volume).abs() < 1e-6 * rep.volume);
    }
}

#[test]
fn bad_input_is_refused() {
    let cancel = CancelToken::new();
    let mut values = vec![1.0f32; 27];
    values[4] = f32::NAN;
    values[9] = f32::INFINITY;
    let err = marching_cubes(&values, [3, 3, 3], 0.0, -1.0, &cancel).expect_err("nan");
    assert_eq!(err.code(), "ERR_MESHING");
    assert!(err.to_string().contains("2 of 27"), "{err}");

    let ok = vec![1.0f32; 27];
    for (iso, outside) in [
        (0.0, 0.0),
        (0.0, 1.0),
        (f32::NAN, -1.0),
        (0.0, f32::NEG_INFINITY),
    ] {
        let err = marching_cubes(&ok, [3, 3, 3], iso, outside, &cancel).expect_err("levels");
        assert!(matches!(err, OrfeasError::InvalidInput(_)), "{err}");
    }
    let err = marching_cubes(&ok, [3, 3, 2], 0.0, -1.0, &cancel).expect_err("length");
    assert!(matches!(err, OrfeasError::InvalidInput(_)), "{err}");
}

#[test]
fn no_crossing_gives_an_empty_mesh() {
    let values = vec![-1.0f32; 64];
    let m = mesh(&values, [4, 4, 4], 0.0, -2.0);
    assert_eq!(m, Mesh::default());
}

#[test]
fn a_cancelled_token_stops_it() {
    let cancel = CancelToken::new();
    cancel.cancel();
    let values = vec![1.0f32; 64];
    let err = marching_cubes(&values, [4, 4, 4], 0.0, -2.0, &cancel).expect_err("cancelled");
    assert_eq!(err.code(), "ERR_CANCELLED");
}

/// Not a test: the R = 256 timing for the docs. Run with
/// `cargo test --release -p orfeas-core --test marching_cubes -- --ignored --nocapture`.
#[test]
#[ignore]
fn timing_r256() {
    let n = 256;
    let dims = [n; 3];
    let c = |v: f32| v / (n - 1) as f32 * 2.0 - 1.0;
    let values = grid(dims, |x, y, z| blobs(c(x), c(y), c(z)));
    let _ = mesh(&values, dims, 25.0, 0.0);
    let mut best = f64::INFINITY;
    let mut m = Mesh::default();
    for _ in 0..5 {
        let t = std::time::Instant::now();
        m = mesh(&values, dims, 25.0, 0.0);
        best = best.min(t.elapsed().as_secs_f64());
    }
    let rep = assert_printable(&m, "R=256 blobs");
    eprintln!(
        "R=256: {:.1} ms (best of 5, {} threads), {} triangles, {} vertices, area {:.1}, {} components",
        best * 1e3,
        rayon::current_num_threads(),
        m.triangles.len(),
        m.positions.len(),
        area(&m),
        rep.components
    );
}

/// A density-like field in (-1, 1)³ crossing 25 around a few blobs and a ring; the same
/// formula is in benches/marching_cubes_skimage.py, which times scikit-image on it.
fn blobs(x: f32, y: f32, z: f32) -> f32 {
    let g = |cx: f32, cy: f32, cz: f32, s: f32, a: f32| {
        a * (-((x - cx).powi(2) + (y - cy).powi(2) + (z - cz).powi(2)) / (2.0 * s * s)).exp()
    };
    let ring = ((y - 0.1).powi(2) + (z + 0.2).powi(2)).sqrt() - 0.4;
    50.0 * (g(-0.3, -0.2, 0.1, 0.25, 1.0)
        + g(0.35, 0.3, -0.1, 0.2, 0.9)
        + g(0.1, -0.4, 0.5, 0.15, 1.0)
        + (-(ring * ring + (x - 0.2).powi(2)) / (2.0 * 0.08 * 0.08)).exp())
        + 3.0 * (7.0 * x).sin() * (5.0 * y).cos() * (6.0 * z + 1.0).sin()
}
