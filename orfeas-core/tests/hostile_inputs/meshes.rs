//! Every exporter on random meshes.
//!
//! Valid meshes (finite coordinates from tiny to `f32::MAX`, degenerate and repeated
//! triangles, with or without UVs, colours and a texture) must be written and read back by
//! the independent readers `export_roundtrip.rs` uses (stl_io, tobj, gltf, ply-rs; zip for
//! 3MF) with the same triangles, corners and attributes. A mesh with one fault (a NaN or
//! infinite coordinate or UV, an index past the vertices, no vertices or no triangles,
//! attribute counts that do not match, a texture whose buffer does not match its size) is
//! `ERR_EXPORT` from every format, and `save` leaves no file behind. The depth, mask and field
//! formats: consistent buffers write files of the stated shape, inconsistent ones are
//! `ERR_EXPORT`.

use std::io::{Cursor, Read};
use std::path::Path;

use orfeas_core::export::{self, ExportInput, MeshFormat};
use orfeas_core::foreground::Foreground;
use orfeas_core::models::triposr::DensityGrid;
use orfeas_core::{HeightMap, MaskSource, Mesh, Texture};
use proptest::prelude::*;
use proptest::sample::Index;

use crate::alloc_cap::assert_no_huge_allocation;

const MESH_FORMATS: [MeshFormat; 6] = [
    MeshFormat::Stl,
    MeshFormat::StlAscii,
    MeshFormat::Obj,
    MeshFormat::Glb,
    MeshFormat::Ply,
    MeshFormat::ThreeMf,
];

/// A finite coordinate: mostly ordinary, sometimes at the edges of `f32`.
fn coordinate() -> impl Strategy<Value = f32> {
    prop_oneof![
        8 => -100.0f32..100.0,
        1 => prop::sample::select(vec![
            0.0, -0.0, 1e30, -1e30, f32::MAX, f32::MIN, f32::MIN_POSITIVE, 1e-40, -1e-40, 1e19,
            -3.5e20,
        ]),
        1 => any::<f32>().prop_filter("finite", |v| v.is_finite()),
    ]
}

/// What a random valid mesh is made of.
#[derive(Clone, Debug)]
pub struct MeshCase {
    pub mesh: Mesh,
    pub texture: Option<Texture>,
}

fn valid_mesh() -> impl Strategy<Value = MeshCase> {
    (1usize..=24).prop_flat_map(|n| {
        let positions = prop::collection::vec([coordinate(), coordinate(), coordinate()], n);
        let index = 0..n as u32;
        let triangles = prop::collection::vec([index.clone(), index.clone(), index], 1..=32);
        let uvs = prop_oneof![
            Just(Vec::new()),
            prop::collection::vec([coordinate(), coordinate()], n),
            prop::collection::vec([0.0f32..=1.0, 0.0f32..=1.0], n),
        ];
        let colors = prop_oneof![Just(Vec::new()), prop::collection::vec(any::<[u8; 3]>(), n)];
        let texture =
            prop::option::of(
                (1u32..=4, 1u32..=4, any::<u8>()).prop_map(|(w, h, s)| Texture {
                    width: w,
                    height: h,
                    rgba: (0..w * h * 4).map(|i| (i as u8).wrapping_mul(s)).collect(),
                }),
            );
        (positions, triangles, uvs, colors, texture).prop_map(
            |(positions, triangles, uvs, colors, texture)| MeshCase {
                mesh: Mesh {
                    positions,
                    triangles,
                    uvs,
                    colors,
                },
                texture,
            },
        )
    })
}

/// One thing wrong with an otherwise valid mesh.
#[derive(Clone, Debug)]
pub enum Fault {
    Position(Index, usize, f32),
    Uv(Index, usize, f32),
    IndexPast(Index, usize, u32),
    NoVertices,
    NoTriangles,
    UvCount(usize),
    ColorCount(usize),
    /// The texture's buffer does not match its size (only OBJ with its side files and GLB
    /// embed the texture).
    Texture(u32, u32, usize),
}

fn non_finite() -> impl Strategy<Value = f32> {
    prop::sample::select(vec![f32::NAN, -f32::NAN, f32::INFINITY, f32::NEG_INFINITY])
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        3 => (any::<Index>(), 0usize..3, non_finite()).prop_map(|(i, k, v)| Fault::Position(i, k, v)),
        2 => (any::<Index>(), 0usize..2, non_finite()).prop_map(|(i, k, v)| Fault::Uv(i, k, v)),
        3 => (any::<Index>(), 0usize..3, any::<u32>()).prop_map(|(t, c, o)| Fault::IndexPast(t, c, o)),
        1 => Just(Fault::NoVertices),
        1 => Just(Fault::NoTriangles),
        1 => (0usize..4).prop_map(Fault::UvCount),
        1 => (0usize..4).prop_map(Fault::ColorCount),
        1 => (0u32..=4, 0u32..=4, 0usize..80).prop_map(|(w, h, n)| Fault::Texture(w, h, n)),
    ]
}

/// Breaks `case` with `fault`; `false` when the fault happens not to break it (a texture
/// whose buffer matches after all), so the case is skipped.
fn inject(case: &mut MeshCase, fault: &Fault) -> bool {
    let m = &mut case.mesh;
    let n = m.positions.len();
    match fault {
        Fault::Position(i, k, v) => m.positions[i.index(n)][*k] = *v,
        Fault::Uv(i, k, v) => {
            if m.uvs.is_empty() {
                m.uvs = vec![[0.5, 0.5]; n];
            }
            m.uvs[i.index(n)][*k] = *v;
        }
        Fault::IndexPast(t, c, offset) => {
            let t = t.index(m.triangles.len());
            m.triangles[t][*c] = (n as u32).saturating_add(offset % (u32::MAX - n as u32));
        }
        Fault::NoVertices => m.positions.clear(),
        Fault::NoTriangles => m.triangles.clear(),
        Fault::UvCount(extra) => {
            m.uvs = vec![[0.0, 0.0]; if *extra == 0 { n - 1 } else { n + extra }]
        }
        Fault::ColorCount(extra) => {
            m.colors = vec![[1, 2, 3]; if *extra == 0 { n - 1 } else { n + extra }]
        }
        Fault::Texture(w, h, len) => {
            if (*w as usize) * (*h as usize) * 4 == *len && *w > 0 && *h > 0 {
                return false;
            }
            if m.uvs.is_empty() {
                m.uvs = vec![[0.5, 0.5]; n];
            }
            case.texture = Some(Texture {
                width: *w,
                height: *h,
                rgba: vec![7; *len],
            });
        }
    }
    // One missing colour or UV on a one-vertex mesh leaves an empty, valid list.
    !(matches!(fault, Fault::UvCount(0) | Fault::ColorCount(0)) && n == 1)
}

fn input<'a>(case: &'a MeshCase) -> ExportInput<'a> {
    ExportInput {
        mesh: &case.mesh,
        texture: case.texture.as_ref(),
        depth: None,
        field: None,
        mask: None,
    }
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn corners(mesh: &Mesh, t: usize) -> [[f32; 3]; 3] {
    mesh.triangles[t].map(|i| mesh.positions[i as usize])
}

fn same_point(a: [f32; 3], b: [f32; 3]) -> bool {
    // `==` so that -0.0 and 0.0 agree (a reader may merge them).
    (0..3).all(|k| a[k] == b[k])
}

fn check_stl(case: &MeshCase, bytes: &[u8], format: MeshFormat) -> Result<(), TestCaseError> {
    let read = stl_io::read_stl(&mut Cursor::new(bytes))
        .map_err(|e| TestCaseError::fail(format!("{format}: stl_io: {e}")))?;
    let mesh = &case.mesh;
    prop_assert_eq!(read.faces.len(), mesh.triangles.len(), "{}", format);
    for (t, face) in read.faces.iter().enumerate() {
        let got = face.vertices.map(|i| {
            let v = read.vertices[i];
            [v[0], v[1], v[2]]
        });
        let want = corners(mesh, t);
        prop_assert!(
            (0..3).all(|k| same_point(got[k], want[k])),
            "{format} triangle {t}: {got:?} vs {want:?}"
        );
        let n = face.normal;
        let len2 = n[0] * n[0] + n[1] * n[1] + n[2] * n[2];
        prop_assert!(
            n.0.iter().all(|c| c.is_finite()) && (len2 == 0.0 || (len2 - 1.0).abs() < 1e-4),
            "{format} normal {t}: {n:?}"
        );
    }
    Ok(())
}

fn check_obj_text(
    case: &MeshCase,
    reader: &mut impl std::io::BufRead,
    textured: bool,
) -> Result<(), TestCaseError> {
    let options = tobj::LoadOptions {
        single_index: true,
        triangulate: true,
        ..Default::default()
    };
    let (models, _) =
        tobj::load_obj_buf(reader, &options, |_| Ok((Vec::new(), Default::default())))
            .map_err(|e| TestCaseError::fail(format!("tobj: {e}")))?;
    prop_assert_eq!(models.len(), 1);
    let m = &models[0].mesh;
    let mesh = &case.mesh;
    prop_assert_eq!(m.indices.len(), mesh.triangles.len() * 3);
    for (c, &i) in m.indices.iter().enumerate() {
        let (i, o) = (i as usize, mesh.triangles[c / 3][c % 3] as usize);
        let got = [
            m.positions[3 * i],
            m.positions[3 * i + 1],
            m.positions[3 * i + 2],
        ];
        prop_assert!(same_point(got, mesh.positions[o]), "corner {c}: {got:?}");
        if !mesh.uvs.is_empty() {
            let [u, v] = mesh.uvs[o];
            prop_assert_eq!(m.texcoords[2 * i], u);
            // OBJ's v axis points up: the file holds 1 - v, computed in f32.
            prop_assert_eq!(m.texcoords[2 * i + 1], 1.0 - v);
        }
        if !mesh.colors.is_empty() && !textured {
            let want = mesh.colors[o].map(|v| f32::from(v) / 255.0);
            let got = &m.vertex_color[3 * i..3 * i + 3];
            prop_assert!(
                (0..3).all(|k| (got[k] - want[k]).abs() < 1e-6),
                "colour {c}"
            );
        }
    }
    Ok(())
}

fn check_ply(case: &MeshCase, bytes: &[u8]) -> Result<(), TestCaseError> {
    use ply_rs::ply::Property;
    let parser = ply_rs::parser::Parser::<ply_rs::ply::DefaultElement>::new();
    let ply = parser
        .read_ply(&mut Cursor::new(bytes))
        .map_err(|e| TestCaseError::fail(format!("ply-rs: {e}")))?;
    let mesh = &case.mesh;
    let (vertices, faces) = (&ply.payload["vertex"], &ply.payload["face"]);
    prop_assert_eq!(vertices.len(), mesh.positions.len());
    prop_assert_eq!(faces.len(), mesh.triangles.len());
    for (i, v) in vertices.iter().enumerate() {
        let xyz = ["x", "y", "z"].map(|k| match v[k] {
            Property::Float(f) => f,
            _ => f32::NAN,
        });
        prop_assert_eq!(xyz.map(f32::to_bits), mesh.positions[i].map(f32::to_bits));
        if !mesh.colors.is_empty() {
            let rgb = ["red", "green", "blue"].map(|k| match v[k] {
                Property::UChar(c) => c,
                _ => 0,
            });
            prop_assert_eq!(rgb, mesh.colors[i]);
        }
    }
    for (t, f) in faces.iter().enumerate() {
        prop_assert_eq!(
            &f["vertex_indices"],
            &Property::ListUInt(mesh.triangles[t].to_vec())
        );
    }
    Ok(())
}

fn check_glb(case: &MeshCase, bytes: &[u8]) -> Result<(), TestCaseError> {
    let (doc, buffers, images) =
        gltf::import_slice(bytes).map_err(|e| TestCaseError::fail(format!("gltf: {e}")))?;
    let mesh = &case.mesh;
    let prim = doc.meshes().next().unwrap().primitives().next().unwrap();
    let reader = prim.reader(|b| Some(&buffers[b.index()]));
    let positions: Vec<[f32; 3]> = reader.read_positions().unwrap().collect();
    let normals: Vec<[f32; 3]> = reader.read_normals().unwrap().collect();
    let indices: Vec<u32> = reader.read_indices().unwrap().into_u32().collect();
    prop_assert_eq!(indices.len(), mesh.triangles.len() * 3);
    let textured = case.texture.is_some() && !mesh.uvs.is_empty();
    let uvs: Option<Vec<[f32; 2]>> = reader.read_tex_coords(0).map(|t| t.into_f32().collect());
    prop_assert_eq!(uvs.is_some(), textured);
    prop_assert_eq!(images.len(), usize::from(textured));
    let colors: Option<Vec<[u8; 3]>> = reader.read_colors(0).map(|c| c.into_rgb_u8().collect());
    prop_assert_eq!(colors.is_some(), !textured && !mesh.colors.is_empty());
    for (c, &i) in indices.iter().enumerate() {
        let (i, o) = (i as usize, mesh.triangles[c / 3][c % 3] as usize);
        // glTF is +Y up in metres: (x, y, z) mm is (x, z, -y) / 1000.
        let [x, y, z] = positions[i].map(|v| f64::from(v) * 1000.0);
        let want = mesh.positions[o].map(f64::from);
        for (got, want) in [x, -z, y].into_iter().zip(want) {
            prop_assert!(
                (got - want).abs() <= 1e-6 * want.abs().max(1e-3),
                "corner {c}: {got} vs {want}"
            );
        }
        let n = normals[i];
        let len = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
        prop_assert!((len - 1.0).abs() < 1e-5, "normal {n:?}");
        if let Some(uvs) = &uvs {
            prop_assert_eq!(uvs[i], mesh.uvs[o]);
        }
        if let Some(colors) = &colors {
            prop_assert_eq!(colors[i], mesh.colors[o]);
        }
    }
    Ok(())
}

/// The `<vertex .../>` and `<triangle .../>` attributes of the 3MF model part.
fn check_3mf(case: &MeshCase, bytes: &[u8]) -> Result<(), TestCaseError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| TestCaseError::fail(format!("3mf zip: {e}")))?;
    let mut xml = String::new();
    archive
        .by_name("3D/3dmodel.model")
        .map_err(|e| TestCaseError::fail(format!("3mf model part: {e}")))?
        .read_to_string(&mut xml)
        .unwrap();
    let attrs = |tag: &str, names: [&str; 3]| -> Vec<[String; 3]> {
        xml.split(&format!("<{tag} "))
            .skip(1)
            .map(|rest| {
                names.map(|n| {
                    let start = rest.find(&format!("{n}=\"")).map_or(0, |s| s + n.len() + 2);
                    rest[start..].split('"').next().unwrap_or("").to_owned()
                })
            })
            .collect()
    };
    let mesh = &case.mesh;
    let vertices = attrs("vertex", ["x", "y", "z"]);
    prop_assert_eq!(vertices.len(), mesh.positions.len());
    for (v, p) in vertices.iter().zip(&mesh.positions) {
        let got = v.clone().map(|s| s.parse::<f32>().unwrap_or(f32::NAN));
        prop_assert_eq!(got.map(f32::to_bits), p.map(f32::to_bits), "{:?}", v);
    }
    let triangles = attrs("triangle", ["v1", "v2", "v3"]);
    prop_assert_eq!(triangles.len(), mesh.triangles.len());
    for (t, want) in triangles.iter().zip(&mesh.triangles) {
        let got = t.clone().map(|s| s.parse::<u32>().unwrap_or(u32::MAX));
        prop_assert_eq!(&got, want);
    }
    Ok(())
}

proptest! {
    #![proptest_config(crate::config(48))]

    /// Valid random meshes round-trip through every mesh format.
    #[test]
    fn valid_meshes_round_trip_through_independent_readers(case in valid_mesh()) {
        let input = input(&case);
        for format in MESH_FORMATS {
            let bytes = export::to_bytes(format, &input)
                .map_err(|e| TestCaseError::fail(format!("{format}: {e}")))?;
            match format {
                MeshFormat::Stl | MeshFormat::StlAscii => check_stl(&case, &bytes, format)?,
                MeshFormat::Obj => check_obj_text(&case, &mut Cursor::new(&bytes), false)?,
                MeshFormat::Glb => check_glb(&case, &bytes)?,
                MeshFormat::Ply => check_ply(&case, &bytes)?,
                _ => check_3mf(&case, &bytes)?,
            }
        }
        // OBJ with its side files: `mtllib`, `usemtl` and the texture PNG beside it.
        let dir = tempfile::tempdir().unwrap();
        let files = export::save(MeshFormat::Obj, &input, dir.path(), "m")
            .map_err(|e| TestCaseError::fail(format!("obj save: {e}")))?;
        let textured = case.texture.is_some() && !case.mesh.uvs.is_empty();
        prop_assert_eq!(files.len(), if textured { 3 } else { 1 });
        let text = std::fs::read(&files[0].path).unwrap();
        check_obj_text(&case, &mut Cursor::new(&text), textured)?;
        assert_no_huge_allocation("mesh export");
    }

    /// A mesh with one fault is ERR_EXPORT from every format, and nothing is left on disk.
    #[test]
    fn broken_meshes_are_export_errors_and_leave_no_file(
        mut case in valid_mesh(),
        fault in fault(),
    ) {
        prop_assume!(inject(&mut case, &fault));
        let input = input(&case);
        let dir = tempfile::tempdir().unwrap();
        let texture_only = matches!(fault, Fault::Texture(..));
        for format in MESH_FORMATS {
            let uses_texture = matches!(format, MeshFormat::Obj | MeshFormat::Glb);
            let saved = export::save(format, &input, dir.path(), "m");
            if texture_only && !uses_texture {
                prop_assert!(saved.is_ok(), "{format}: {:?}", saved.err());
                for f in saved.unwrap() {
                    std::fs::remove_file(&f.path).unwrap();
                }
                continue;
            }
            let e = saved.err();
            prop_assert_eq!(e.as_ref().map(|e| e.code()), Some("ERR_EXPORT"), "{}: {:?}", format, e);
            prop_assert!(listing(dir.path()).is_empty(), "{format} left {:?}", listing(dir.path()));
            if !(texture_only && format == MeshFormat::Obj) {
                // `to_bytes` writes OBJ without side files, so without the texture.
                let e = export::to_bytes(format, &input).err();
                prop_assert_eq!(e.as_ref().map(|e| e.code()), Some("ERR_EXPORT"), "{}: {:?}", format, e);
            }
        }
        assert_no_huge_allocation("broken mesh export");
    }

    /// Depth, mask and field formats: files of the stated shape, or ERR_EXPORT when the
    /// buffers do not match it.
    #[test]
    fn raster_exports_check_their_buffers(
        w in 0u32..=9,
        h in 0u32..=9,
        skew in prop_oneof![3 => Just(0i64), 1 => -3i64..=3],
        values in prop::collection::vec(
            prop_oneof![4 => -10.0f32..10.0, 1 => non_finite(), 1 => coordinate()], 0..=100),
        r in 0usize..=4,
        side in prop_oneof![Just(None), (0u32..=4).prop_map(Some)],
    ) {
        let count = |n: usize| (n as i64 + skew).max(0) as usize;
        let cycle = |n: usize| -> Vec<f32> {
            (0..n).map(|i| values.get(i % values.len().max(1)).copied().unwrap_or(0.5)).collect()
        };
        let pixels = w as usize * h as usize;
        // A map of the wrong length cannot be made: its constructor says so.
        let map = HeightMap::new(w, h, cycle(count(pixels)));
        let depth_ok = pixels > 0 && count(pixels) == pixels;
        prop_assert_eq!(map.is_ok(), depth_ok, "HeightMap::new({}, {}, {} values)", w, h, count(pixels));
        if let Err(e) = &map {
            prop_assert_eq!(e.code(), "ERR_INVALID_INPUT");
        }
        let map = map.ok();
        let grid = DensityGrid { resolution: r, radius: 0.87, values: cycle(count(r * r * r)) };
        let mask = Foreground {
            width: w,
            height: h,
            alpha: cycle(count(pixels)).iter().map(|v| (v.abs() * 25.0) as u8).collect(),
            source: MaskSource::Alpha,
            probability: side.map(|s| (s, cycle(count((s * s) as usize)))),
            missing: None,
        };
        let mesh = Mesh::default();
        let input = ExportInput {
            mesh: &mesh,
            texture: None,
            depth: map.as_ref(),
            field: Some(&grid),
            mask: Some(&mask),
        };
        let field_ok = r > 0 && grid.values.len() == r * r * r;
        let mask_ok = pixels > 0
            && mask.alpha.len() == pixels
            && mask.probability.as_ref().is_none_or(|(s, v)| *s > 0 && v.len() == (s * s) as usize);
        let cases = [
            (MeshFormat::Depth16, depth_ok),
            (MeshFormat::DepthNpy, depth_ok),
            (MeshFormat::FieldNpy, field_ok),
            (MeshFormat::MaskPng, mask_ok),
            (MeshFormat::MaskNpy, mask_ok),
        ];
        for (format, ok) in cases {
            let result = export::to_bytes(format, &input);
            if !ok {
                let e = result.err();
                prop_assert_eq!(e.as_ref().map(|e| e.code()), Some("ERR_EXPORT"), "{}: {:?}", format, e);
                continue;
            }
            let bytes = result.map_err(|e| TestCaseError::fail(format!("{format}: {e}")))?;
            match format {
                MeshFormat::Depth16 | MeshFormat::MaskPng => {
                    let img = image::load_from_memory(&bytes).unwrap();
                    prop_assert_eq!((img.width(), img.height()), (w, h));
                }
                _ => {
                    prop_assert!(bytes.starts_with(b"\x93NUMPY\x01\x00"));
                    let header = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
                    let values = match format {
                        MeshFormat::DepthNpy => pixels,
                        MeshFormat::FieldNpy => r * r * r,
                        _ => mask.probability.as_ref().map_or(1024 * 1024, |(s, _)| (s * s) as usize),
                    };
                    prop_assert_eq!(bytes.len(), 10 + header + 4 * values, "{}", format);
                }
            }
        }
        assert_no_huge_allocation("raster export");
    }
}
