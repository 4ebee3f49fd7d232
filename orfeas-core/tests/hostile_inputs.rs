//! Generated hostile input (stable Rust, `proptest`): whatever the bytes or the mesh, the
//! decoder, the exporters and the heightfield → solid path answer with a value or a clear
//! `ERR_…` error, never a panic, and a mesh they accept is what they promise.
//!
//! The budget is `ORFEAS_FUZZ_CASES` cases per property (64 by default, so the suite stays
//! fast); `scripts/fuzz.sh` runs the same properties with many more. A failure proptest finds
//! is minimised and printed: add it below as a named regression test.

use std::io::Cursor;
use std::sync::Arc;

use orfeas_core::export::{to_bytes, ExportInput};
use orfeas_core::image::load_image;
use orfeas_core::mask::{Mask, MaskSource};
use orfeas_core::mesh::{
    build_solid, check_solid, triangulate_heightfield, CornerGrid, MeshingLimits, Scale,
};
use orfeas_core::{CancelToken, HeightMap, ImageLimits, ImageSource, Mesh, MeshFormat};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("ORFEAS_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

fn small_png(w: u32, h: u32, seed: u8) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(w, h, |x, y| {
        image::Rgba([
            seed ^ x as u8,
            y as u8,
            seed,
            if (x + y) % 3 == 0 { 0 } else { 255 },
        ])
    });
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgba8(img)
        .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
        .expect("png");
    bytes
}

fn small_jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 99]));
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Jpeg)
        .expect("jpeg");
    bytes
}

/// Decoding `bytes` ends in a well-formed image or an `ERR_` code.
fn decode_is_total(bytes: Vec<u8>) -> Result<(), TestCaseError> {
    let limits = ImageLimits {
        max_pixels: 1 << 20,
        ..ImageLimits::default()
    };
    let source = ImageSource::Bytes {
        name: "fuzz.png".into(),
        bytes: Arc::from(bytes),
    };
    match load_image(&source, &limits) {
        Ok(img) => {
            prop_assert!(img.width > 0 && img.height > 0);
            prop_assert!(u64::from(img.width) * u64::from(img.height) <= limits.max_pixels);
            prop_assert_eq!(img.rgba.len(), img.width as usize * img.height as usize * 4);
        }
        Err(e) => prop_assert!(e.code().starts_with("ERR_"), "{e}"),
    }
    Ok(())
}

proptest! {
    // Failures are kept as named regression tests below, not in a persistence file.
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_is_total(bytes)?;
    }

    #[test]
    fn mutated_images_never_panic_the_decoder(
        jpeg in any::<bool>(),
        w in 1u32..24,
        h in 1u32..24,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = if jpeg { small_jpeg(w, h) } else { small_png(w, h, 7) };
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= value;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        decode_is_total(bytes)?;
    }

    #[test]
    fn exporters_refuse_what_they_cannot_write_and_write_the_rest(
        positions in proptest::collection::vec(
            prop::array::uniform3(prop_oneof![8 => -1e6f32..1e6, 1 => Just(f32::NAN), 1 => Just(f32::INFINITY)]),
            0..12,
        ),
        triangles in proptest::collection::vec(prop::array::uniform3(0u32..14), 0..16),
    ) {
        let mesh = Mesh { positions, triangles, uvs: Vec::new(), colors: Vec::new() };
        let n = mesh.positions.len();
        let writable = n > 0
            && !mesh.triangles.is_empty()
            && mesh.positions.iter().all(|p| p.iter().all(|c| c.is_finite()))
            && mesh.triangles.iter().all(|t| t.iter().all(|&i| (i as usize) < n));
        for format in [MeshFormat::Stl, MeshFormat::StlAscii, MeshFormat::Obj, MeshFormat::Glb, MeshFormat::Ply, MeshFormat::ThreeMf] {
            match to_bytes(format, &ExportInput::mesh(&mesh)) {
                Ok(bytes) => {
                    prop_assert!(writable, "{format:?} wrote a mesh it cannot represent");
                    prop_assert!(!bytes.is_empty());
                    if format == MeshFormat::Stl {
                        prop_assert_eq!(bytes.len(), 84 + 50 * mesh.triangles.len());
                    }
                }
                Err(e) => {
                    prop_assert!(!writable, "{format:?} refused a valid mesh: {e}");
                    prop_assert_eq!(e.code(), "ERR_EXPORT");
                }
            }
        }
    }

    #[test]
    fn random_masks_and_heights_give_a_watertight_solid_or_a_clear_error(
        w in 1u32..12,
        h in 1u32..12,
        seed in proptest::collection::vec((any::<bool>(), 0.0f32..1.0), 144),
        spikes in any::<bool>(),
    ) {
        let n = (w * h) as usize;
        let data: Vec<bool> = seed[..n].iter().map(|s| s.0).collect();
        let heights: Vec<f32> = seed[..n]
            .iter()
            .enumerate()
            .map(|(i, s)| if spikes && i % 5 == 0 { 1.0 } else { s.1 })
            .collect();
        let mask = Mask { width: w, height: h, data, source: MaskSource::Alpha };
        let map = HeightMap::new(w, h, heights).expect("well-formed map");
        let grid = CornerGrid::from_height_map(&map, &mask).expect("sizes match");
        let limits = MeshingLimits { max_error: 0.01, max_triangles: 10_000 };
        match triangulate_heightfield(&grid, &limits, &CancelToken::new()) {
            Ok(hf) => {
                let scale = Scale { mm_per_cell: 1.0, depth_mm: 5.0, base_mm: 1.0 };
                match build_solid(&hf, scale) {
                    Ok(solid) => {
                        let report = check_solid(&solid);
                        prop_assert!(report.is_watertight(), "{report:?}");
                        prop_assert_eq!(report.non_finite_vertices, 0);
                    }
                    Err(e) => prop_assert!(e.code().starts_with("ERR_"), "{e}"),
                }
            }
            Err(e) => {
                prop_assert_eq!(e.code(), "ERR_MESHING");
                let empty = !mask.data.iter().any(|&m| m);
                prop_assert_eq!(e.to_string().contains("mask is empty"), empty, "{}", e);
            }
        }
    }
}

/// Found by the property above: two pixels touching only at a corner. The pinch removal
/// rightly drops the shared corner (it would be a non-manifold vertex), which leaves nothing;
/// the error used to say "the foreground mask is empty" of a mask that was not.
#[test]
fn regression_diagonal_pixels_only_say_why_nothing_is_left() {
    let mask = Mask {
        width: 2,
        height: 2,
        data: vec![true, false, false, true],
        source: MaskSource::Alpha,
    };
    let map = HeightMap::new(2, 2, vec![0.0; 4]).expect("map");
    let grid = CornerGrid::from_height_map(&map, &mask).expect("grid");
    let limits = MeshingLimits {
        max_error: 0.01,
        max_triangles: 100,
    };
    let err =
        triangulate_heightfield(&grid, &limits, &CancelToken::new()).expect_err("nothing left");
    assert_eq!(err.code(), "ERR_MESHING");
    assert!(err.to_string().contains("touch at corners"), "{err}");
}
