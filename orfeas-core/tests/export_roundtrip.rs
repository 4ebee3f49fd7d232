//! Every export format written to disk and read back by an independent reader
//! (`stl_io`, `tobj`, `gltf`, `ply-rs`, `image`, and a hand-written `.npy` parser).
//!
//! The test solid is a 20 x 20 mm height-field box: a 3 x 3 grid top at z = 5 with the centre
//! raised to z = 8, flat base at z = 0, walls between; 18 vertices, 32 triangles, volume
//! 20·20·5 + 3·400/3 = 2400 mm³ (the centre's hat function covers all 8 top triangles).
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::Cursor;
use std::path::Path;

use orfeas_core::export::{self, ExportInput, MeshFormat};
use orfeas_core::models::triposr::DensityGrid;
use orfeas_core::{HeightMap, Mesh, Texture};

const VOLUME: f64 = 2400.0;

fn solid() -> Mesh {
    let mut m = Mesh::default();
    for base in [false, true] {
        for j in 0..3 {
            for i in 0..3 {
                let z = if base {
                    0.0
                } else if (i, j) == (1, 1) {
                    8.0
                } else {
                    5.0
                };
                let (x, y) = (10.0 * i as f32, 10.0 * j as f32);
                m.positions.push([x, y, z]);
                m.uvs.push([x / 20.0, 1.0 - y / 20.0]);
                m.colors
                    .push([i as u8 * 100, j as u8 * 100, if base { 50 } else { 200 }]);
            }
        }
    }
    let top = |i: u32, j: u32| j * 3 + i;
    for j in 0..2 {
        for i in 0..2 {
            let (a, b, c, d) = (top(i, j), top(i + 1, j), top(i + 1, j + 1), top(i, j + 1));
            // diagonals through the centre vertex; counter-clockwise seen from +z
            let tris = if (i + j) % 2 == 0 {
                [[a, b, c], [a, c, d]]
            } else {
                [[a, b, d], [b, c, d]]
            };
            for [p, q, r] in tris {
                m.triangles.push([p, q, r]);
                m.triangles.push([r + 9, q + 9, p + 9]); // base, seen from -z
            }
        }
    }
    let ring = [
        (0, 0),
        (1, 0),
        (2, 0),
        (2, 1),
        (2, 2),
        (1, 2),
        (0, 2),
        (0, 1),
    ];
    for k in 0..8 {
        let (p, q) = (
            top(ring[k].0, ring[k].1),
            top(ring[(k + 1) % 8].0, ring[(k + 1) % 8].1),
        );
        m.triangles.push([p, p + 9, q + 9]);
        m.triangles.push([p, q + 9, q]);
    }
    m
}

fn texture() -> Texture {
    let mut rgba = Vec::new();
    for y in 0..4u8 {
        for x in 0..4u8 {
            rgba.extend([x * 60, y * 60, 100, 255]);
        }
    }
    Texture {
        width: 4,
        height: 4,
        rgba,
    }
}

fn height_map() -> HeightMap {
    HeightMap::new(3, 2, vec![0.0, 0.25, 0.5, 1.0, f32::NAN, 0.75]).expect("map")
}

fn signed_volume(positions: &[[f32; 3]], triangles: &[[u32; 3]]) -> f64 {
    triangles
        .iter()
        .map(|t| {
            let [a, b, c] = t.map(|i| positions[i as usize].map(f64::from));
            let cross = [
                b[1] * c[2] - b[2] * c[1],
                b[2] * c[0] - b[0] * c[2],
                b[0] * c[1] - b[1] * c[0],
            ];
            (a[0] * cross[0] + a[1] * cross[1] + a[2] * cross[2]) / 6.0
        })
        .sum()
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-5 * (1.0 + a.abs().max(b.abs()))
}

/// Names in `dir`, sorted; used to prove no temporary file is left behind.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn solid_fixture_is_closed_and_positive() {
    let m = solid();
    assert_eq!((m.positions.len(), m.triangles.len()), (18, 32));
    assert!((signed_volume(&m.positions, &m.triangles) - VOLUME).abs() < 1e-9);
}

#[test]
fn stl_binary_and_ascii_round_trip() {
    let mesh = solid();
    let dir = tempfile::tempdir().unwrap();
    for format in [MeshFormat::Stl, MeshFormat::StlAscii] {
        let stem = format.as_str();
        let files = export::save(format, &ExportInput::mesh(&mesh), dir.path(), stem).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].path, dir.path().join(format!("{stem}.stl")));
        assert_eq!(files[0].format, format.as_str());
        let bytes = fs::read(&files[0].path).unwrap();
        assert_eq!(files[0].bytes, bytes.len() as u64);
        if format == MeshFormat::Stl {
            assert_eq!(bytes.len(), 84 + 32 * 50);
            assert!(!bytes.starts_with(b"solid"));
        } else {
            assert!(bytes.starts_with(b"solid orfeas\n") && bytes.ends_with(b"endsolid orfeas\n"));
        }
        assert_eq!(
            export::to_bytes(format, &ExportInput::mesh(&mesh)).unwrap(),
            bytes
        );

        let read = stl_io::read_stl(&mut Cursor::new(bytes)).unwrap();
        assert_eq!(
            (read.vertices.len(), read.faces.len()),
            (18, 32),
            "{format}"
        );
        let positions: Vec<[f32; 3]> = read.vertices.iter().map(|v| [v[0], v[1], v[2]]).collect();
        let triangles: Vec<[u32; 3]> = read
            .faces
            .iter()
            .map(|f| f.vertices.map(|i| i as u32))
            .collect();
        assert!(
            (signed_volume(&positions, &triangles) - VOLUME).abs() < 1e-6,
            "{format}"
        );
        for (t, face) in read.faces.iter().enumerate() {
            let corners = face.vertices.map(|i| positions[i]);
            assert_eq!(
                corners,
                mesh.triangles[t].map(|i| mesh.positions[i as usize]),
                "{format} triangle {t}"
            );
            let n = mesh.face_normal(t);
            assert!(
                (0..3).all(|k| close(face.normal[k], n[k])),
                "{format} normal {t}"
            );
        }
    }
    assert_eq!(listing(dir.path()), ["stl-ascii.stl", "stl.stl"]);
}

#[test]
fn obj_with_texture_writes_three_files_that_name_each_other() {
    let (mesh, tex) = (solid(), texture());
    let dir = tempfile::tempdir().unwrap();
    let input = ExportInput {
        mesh: &mesh,
        texture: Some(&tex),
        depth: None,
        field: None,
        mask: None,
    };
    assert_eq!(
        export::output_names(MeshFormat::Obj, &input, "model"),
        ["model.obj", "model.mtl", "model.png"]
    );
    let files = export::save(MeshFormat::Obj, &input, dir.path(), "model").unwrap();
    let formats: Vec<&str> = files.iter().map(|f| f.format.as_str()).collect();
    assert_eq!(formats, ["obj", "mtl", "png"]);
    assert_eq!(listing(dir.path()), ["model.mtl", "model.obj", "model.png"]);
    for f in &files {
        assert_eq!(f.bytes, fs::metadata(&f.path).unwrap().len());
    }
    let obj_text = fs::read_to_string(&files[0].path).unwrap();
    assert!(obj_text.contains("\nmtllib model.mtl\n"));
    assert!(fs::read_to_string(&files[1].path)
        .unwrap()
        .contains("\nmap_Kd model.png\n"));

    let options = tobj::LoadOptions {
        single_index: true,
        triangulate: true,
        ..Default::default()
    };
    let (models, materials) = tobj::load_obj(&files[0].path, &options).unwrap();
    assert_eq!(models.len(), 1);
    let m = &models[0].mesh;
    assert_eq!(
        (m.positions.len(), m.indices.len(), m.texcoords.len()),
        (18 * 3, 96, 18 * 2)
    );
    let positions: Vec<[f32; 3]> = m.positions.chunks(3).map(|c| [c[0], c[1], c[2]]).collect();
    let triangles: Vec<[u32; 3]> = m.indices.chunks(3).map(|c| [c[0], c[1], c[2]]).collect();
    assert!((signed_volume(&positions, &triangles) - VOLUME).abs() < 1e-6);
    for (t, tri) in triangles.iter().enumerate() {
        let orig = mesh.triangles[t];
        for k in 0..3 {
            let (i, o) = (tri[k] as usize, orig[k] as usize);
            assert_eq!(positions[i], mesh.positions[o]);
            // OBJ's v axis points up: vt = 1 - v
            assert!(close(m.texcoords[2 * i], mesh.uvs[o][0]));
            assert!(
                close(1.0 - m.texcoords[2 * i + 1], mesh.uvs[o][1]),
                "uv of triangle {t}"
            );
        }
    }
    let materials = materials.unwrap();
    assert_eq!(models[0].mesh.material_id, Some(0));
    assert_eq!(materials[0].diffuse_texture.as_deref(), Some("model.png"));
    let png = image::open(dir.path().join("model.png"))
        .unwrap()
        .to_rgba8();
    assert_eq!(png.dimensions(), (4, 4));
    assert_eq!(png.get_pixel(3, 2).0, [180, 120, 100, 255]);
}

#[test]
fn obj_without_texture_carries_vertex_colours() {
    let mesh = solid();
    let dir = tempfile::tempdir().unwrap();
    let files = export::save(
        MeshFormat::Obj,
        &ExportInput::mesh(&mesh),
        dir.path(),
        "plain",
    )
    .unwrap();
    assert_eq!(files.len(), 1);
    let text = fs::read_to_string(&files[0].path).unwrap();
    assert!(!text.contains("mtllib"));
    let (models, _) = tobj::load_obj(&files[0].path, &tobj::GPU_LOAD_OPTIONS).unwrap();
    let m = &models[0].mesh;
    assert_eq!(m.vertex_color.len(), 18 * 3);
    // tobj renumbers vertices in order of first use: compare through the faces
    for (c, &i) in m.indices.iter().enumerate() {
        let rgb = &m.vertex_color[3 * i as usize..3 * i as usize + 3];
        let expected =
            mesh.colors[mesh.triangles[c / 3][c % 3] as usize].map(|v| f32::from(v) / 255.0);
        assert!(
            (0..3).all(|k| close(rgb[k], expected[k])),
            "corner {c}: {rgb:?} vs {expected:?}"
        );
    }
    assert!(close(
        m.vertex_color[3 * m.indices[0] as usize + 2],
        200.0 / 255.0
    ));
}

/// glTF is +Y up in metres: undo (x, y, z)mm → (x, z, -y)/1000.
fn from_gltf([x, y, z]: [f32; 3]) -> [f32; 3] {
    [x * 1000.0, -z * 1000.0, y * 1000.0]
}

#[test]
fn glb_with_texture_round_trips_through_gltf_import() {
    let (mesh, tex) = (solid(), texture());
    let dir = tempfile::tempdir().unwrap();
    let input = ExportInput {
        mesh: &mesh,
        texture: Some(&tex),
        depth: None,
        field: None,
        mask: None,
    };
    let files = export::save(MeshFormat::Glb, &input, dir.path(), "model").unwrap();
    let bytes = fs::read(&files[0].path).unwrap();
    assert_eq!(&bytes[..8], b"glTF\x02\0\0\0");
    assert_eq!(
        u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize,
        bytes.len()
    );
    assert_eq!(bytes.len() % 4, 0);
    assert_eq!(&bytes[16..20], b"JSON");

    let (doc, buffers, images) = gltf::import(&files[0].path).unwrap();
    assert_eq!(doc.meshes().count(), 1);
    assert!(doc.default_scene().is_some());
    assert!(doc.asset_generator_contains_orfeas());
    let prim = doc.meshes().next().unwrap().primitives().next().unwrap();
    assert_eq!(prim.mode(), gltf::mesh::Mode::Triangles);
    let reader = prim.reader(|b| Some(&buffers[b.index()]));
    let positions: Vec<[f32; 3]> = reader.read_positions().unwrap().map(from_gltf).collect();
    let normals: Vec<[f32; 3]> = reader.read_normals().unwrap().collect();
    let uvs: Vec<[f32; 2]> = reader.read_tex_coords(0).unwrap().into_f32().collect();
    let indices: Vec<u32> = reader.read_indices().unwrap().into_u32().collect();
    assert!(
        reader.read_colors(0).is_none(),
        "COLOR_0 is not written beside a texture"
    );
    assert_eq!(indices.len(), 96);
    // split at creases: per side (top, base) 1 centre + 4 corners x 3 + 4 edge middles x 2
    assert_eq!(positions.len(), 42);
    let triangles: Vec<[u32; 3]> = indices.chunks(3).map(|c| [c[0], c[1], c[2]]).collect();
    assert!((signed_volume(&positions, &triangles) - VOLUME).abs() < 1e-2);
    for (t, tri) in triangles.iter().enumerate() {
        for (&i, &o) in tri.iter().zip(&mesh.triangles[t]) {
            let (i, o) = (i as usize, o as usize);
            assert!(
                (0..3).all(|c| (positions[i][c] - mesh.positions[o][c]).abs() < 1e-4),
                "triangle {t}"
            );
            assert_eq!(uvs[i], mesh.uvs[o]);
            let n = normals[i];
            assert!(((n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt() - 1.0).abs() < 1e-5);
        }
    }
    // the base is flat: every base corner's normal is straight down (-y in glTF)
    let base: Vec<&[u32; 3]> = triangles
        .iter()
        .enumerate()
        .filter(|(t, _)| mesh.triangles[*t].iter().all(|&i| i >= 9))
        .map(|x| x.1)
        .collect();
    assert_eq!(base.len(), 8);
    assert!(base
        .iter()
        .flat_map(|t| t.iter())
        .all(|&i| normals[i as usize] == [0.0, -1.0, 0.0]));
    let bounds = prim.bounding_box();
    assert_eq!(
        (bounds.min, bounds.max),
        ([0.0, 0.0, -0.02], [0.02, 0.008, 0.0])
    );
    let material = prim.material();
    let info = material
        .pbr_metallic_roughness()
        .base_color_texture()
        .unwrap();
    assert_eq!(material.pbr_metallic_roughness().metallic_factor(), 0.0);
    let texture = info.texture();
    assert_eq!(
        texture.sampler().wrap_s(),
        gltf::texture::WrappingMode::ClampToEdge
    );
    assert!(matches!(
        texture.source().source(),
        gltf::image::Source::View {
            mime_type: "image/png",
            ..
        }
    ));
    let image = &images[texture.source().index()];
    assert_eq!(
        (image.width, image.height, image.format),
        (4, 4, gltf::image::Format::R8G8B8A8)
    );
    assert_eq!(
        image.pixels[(2 * 4 + 3) * 4..(2 * 4 + 3) * 4 + 4],
        [180, 120, 100, 255]
    );
}

trait GeneratorCheck {
    fn asset_generator_contains_orfeas(&self) -> bool;
}

impl GeneratorCheck for gltf::Document {
    fn asset_generator_contains_orfeas(&self) -> bool {
        self.as_json()
            .asset
            .generator
            .as_deref()
            .is_some_and(|g| g.starts_with("orfeas "))
            && self.as_json().asset.version == "2.0"
    }
}

#[test]
fn glb_without_texture_has_vertex_colours() {
    let mesh = solid();
    let bytes = export::to_bytes(MeshFormat::Glb, &ExportInput::mesh(&mesh)).unwrap();
    let (doc, buffers, images) = gltf::import_slice(&bytes).unwrap();
    assert!(images.is_empty());
    let prim = doc.meshes().next().unwrap().primitives().next().unwrap();
    let reader = prim.reader(|b| Some(&buffers[b.index()]));
    assert!(
        reader.read_tex_coords(0).is_none(),
        "no TEXCOORD_0 without a texture"
    );
    let colors: Vec<[u8; 3]> = reader.read_colors(0).unwrap().into_rgb_u8().collect();
    let indices: Vec<u32> = reader.read_indices().unwrap().into_u32().collect();
    for (c, &i) in indices.iter().enumerate() {
        assert_eq!(
            colors[i as usize],
            mesh.colors[mesh.triangles[c / 3][c % 3] as usize]
        );
    }
    assert!(prim
        .material()
        .pbr_metallic_roughness()
        .base_color_texture()
        .is_none());
}

#[test]
fn ply_round_trip_with_colours() {
    use ply_rs::ply::Property;
    let mesh = solid();
    let dir = tempfile::tempdir().unwrap();
    let files = export::save(MeshFormat::Ply, &ExportInput::mesh(&mesh), dir.path(), "m").unwrap();
    let parser = ply_rs::parser::Parser::<ply_rs::ply::DefaultElement>::new();
    let ply = parser
        .read_ply(&mut fs::File::open(&files[0].path).unwrap())
        .unwrap();
    let (vertices, faces) = (&ply.payload["vertex"], &ply.payload["face"]);
    assert_eq!((vertices.len(), faces.len()), (18, 32));
    let float = |p: &Property| match p {
        Property::Float(v) => *v,
        other => panic!("{other:?}"),
    };
    for (i, v) in vertices.iter().enumerate() {
        assert_eq!(
            [float(&v["x"]), float(&v["y"]), float(&v["z"])],
            mesh.positions[i]
        );
        let rgb = ["red", "green", "blue"].map(|k| match v[k] {
            Property::UChar(c) => c,
            ref other => panic!("{other:?}"),
        });
        assert_eq!(rgb, mesh.colors[i]);
    }
    for (t, f) in faces.iter().enumerate() {
        assert_eq!(
            f["vertex_indices"],
            Property::ListUInt(mesh.triangles[t].to_vec())
        );
    }
}

#[test]
fn depth16_png_is_normalised() {
    let (mesh, map) = (Mesh::default(), height_map());
    let dir = tempfile::tempdir().unwrap();
    let input = ExportInput {
        mesh: &mesh,
        texture: None,
        depth: Some(&map),
        field: None,
        mask: None,
    };
    let files = export::save(MeshFormat::Depth16, &input, dir.path(), "d").unwrap();
    assert_eq!(files[0].path, dir.path().join("d.depth16.png"));
    let img = image::open(&files[0].path).unwrap();
    let gray = img.as_luma16().expect("16-bit gray");
    assert_eq!(gray.dimensions(), (3, 2));
    assert_eq!(gray.as_raw(), &[0, 16384, 32768, 65535, 0, 49151]);

    let flat = HeightMap::new(2, 1, vec![0.4, 0.4]).expect("map");
    let bytes = export::to_bytes(
        MeshFormat::Depth16,
        &ExportInput {
            depth: Some(&flat),
            ..input
        },
    )
    .unwrap();
    let img = image::load_from_memory(&bytes).unwrap();
    assert_eq!(img.as_luma16().unwrap().as_raw(), &[0, 0]);
}

#[test]
fn depth_npy_round_trip() {
    let (mesh, map) = (Mesh::default(), height_map());
    let dir = tempfile::tempdir().unwrap();
    let input = ExportInput {
        mesh: &mesh,
        texture: None,
        depth: Some(&map),
        field: None,
        mask: None,
    };
    let files = export::save(MeshFormat::DepthNpy, &input, dir.path(), "d").unwrap();
    assert_eq!(files[0].path, dir.path().join("d.depth.npy"));
    let bytes = fs::read(&files[0].path).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + header_len) % 64, 0);
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(
        header.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"),
        "{header}"
    );
    assert!(header.ends_with('\n'));
    let data: Vec<f32> = bytes[10 + header_len..]
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(data.len(), 6);
    assert_eq!(data[..4], [0.0, 0.25, 0.5, 1.0]);
    assert!(data[4].is_nan() && data[5] == 0.75);
}

#[test]
fn field_npy_holds_the_cube_indexed_x_y_z() {
    let r = 3;
    // value = 100 x + 10 y + z, so the reading order is visible in the numbers.
    let values: Vec<f32> = (0..r * r * r)
        .map(|i| (100 * (i / (r * r)) + 10 * (i / r % r) + i % r) as f32)
        .collect();
    let grid = DensityGrid {
        resolution: r,
        radius: 0.87,
        values: values.clone(),
    };
    let mesh = solid();
    let dir = tempfile::tempdir().unwrap();
    let input = ExportInput {
        field: Some(&grid),
        mask: None,
        ..ExportInput::mesh(&mesh)
    };
    let files = export::save(MeshFormat::FieldNpy, &input, dir.path(), "o").unwrap();
    assert_eq!(files[0].path, dir.path().join("o.field.npy"));
    assert_eq!(files[0].format, "field.npy");
    let bytes = fs::read(&files[0].path).unwrap();
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + header_len) % 64, 0);
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(
        header.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 3, 3), }"),
        "{header}"
    );
    let data: Vec<f32> = bytes[10 + header_len..]
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(data, values);
    // [x][y][z] = [2][1][0] is the 21st value after x = 0 and 1 (9 each) and y = 0 (3).
    assert_eq!(data[2 * 9 + 3], 210.0);
}

#[test]
fn missing_inputs_are_export_errors() {
    let (mesh, dir) = (solid(), tempfile::tempdir().unwrap());
    let err = export::save(
        MeshFormat::Depth16,
        &ExportInput::mesh(&mesh),
        dir.path(),
        "x",
    )
    .unwrap_err();
    assert_eq!(err.code(), "ERR_EXPORT");
    assert!(err.to_string().contains("height map"), "{err}");
    let err = export::save(
        MeshFormat::FieldNpy,
        &ExportInput::mesh(&mesh),
        dir.path(),
        "x",
    )
    .unwrap_err();
    assert_eq!(err.code(), "ERR_EXPORT");
    assert!(err.to_string().contains("density field"), "{err}");
    let empty = Mesh::default();
    let err =
        export::save(MeshFormat::Glb, &ExportInput::mesh(&empty), dir.path(), "x").unwrap_err();
    assert_eq!(err.code(), "ERR_EXPORT");
    assert!(err.to_string().contains("empty"), "{err}");
    assert!(listing(dir.path()).is_empty());
}

#[test]
fn save_never_overwrites_and_leaves_no_temp_files() {
    let (mesh, tex) = (solid(), texture());
    let dir = tempfile::tempdir().unwrap();
    let input = ExportInput {
        mesh: &mesh,
        texture: Some(&tex),
        depth: None,
        field: None,
        mask: None,
    };
    export::save(MeshFormat::Stl, &input, dir.path(), "a").unwrap();
    let before = fs::read(dir.path().join("a.stl")).unwrap();
    // a different format with the same final name must be refused, the file untouched
    let err = export::save(MeshFormat::StlAscii, &input, dir.path(), "a").unwrap_err();
    assert_eq!(err.code(), "ERR_IO");
    assert!(
        err.to_string().contains("a.stl") && err.to_string().contains("overwrite"),
        "{err}"
    );
    assert_eq!(fs::read(dir.path().join("a.stl")).unwrap(), before);

    // OBJ is all or nothing: an existing side file blocks the whole set
    fs::write(dir.path().join("b.png"), b"not mine").unwrap();
    assert_eq!(
        export::save(MeshFormat::Obj, &input, dir.path(), "b")
            .unwrap_err()
            .code(),
        "ERR_IO"
    );
    assert_eq!(listing(dir.path()), ["a.stl", "b.png"]);
    assert_eq!(fs::read(dir.path().join("b.png")).unwrap(), b"not mine");

    // a directory that does not exist: error, nothing created anywhere
    let missing = dir.path().join("missing");
    let err = export::save(MeshFormat::Glb, &input, &missing, "c").unwrap_err();
    assert_eq!(err.code(), "ERR_IO");
    assert!(!missing.exists());
    // bad stems never escape the directory
    for stem in ["", "../x", "a/b", ".hidden"] {
        assert_eq!(
            export::save(MeshFormat::Stl, &input, dir.path(), stem)
                .unwrap_err()
                .code(),
            "ERR_INVALID_INPUT"
        );
    }
    assert_eq!(listing(dir.path()), ["a.stl", "b.png"]);
}

/// Writes every format of the test solid to a kept folder for the external validators:
/// `cargo test -p orfeas-core --test export_roundtrip -- --ignored --nocapture`, then
/// `bash scripts/judges/validate-meshes <dir>/*.stl <dir>/*.glb ...`.
#[test]
#[ignore = "writes files for manual validation"]
#[allow(clippy::print_stdout)]
fn write_samples_for_validation() {
    let (mesh, tex, map) = (solid(), texture(), height_map());
    let dir = tempfile::Builder::new()
        .prefix("orfeas-export-")
        .tempdir()
        .unwrap()
        .keep();
    let textured = ExportInput {
        mesh: &mesh,
        texture: Some(&tex),
        depth: Some(&map),
        field: None,
        mask: None,
    };
    for format in MeshFormat::ALL.into_iter().filter(|f| !f.is_field()) {
        export::save(format, &textured, &dir, &format.as_str().replace('.', "_")).unwrap();
    }
    export::save(MeshFormat::Glb, &ExportInput::mesh(&mesh), &dir, "colors").unwrap();
    println!("samples written to {}", dir.display());
}
