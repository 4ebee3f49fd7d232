//! glTF 2.0 binary (`.glb`): the preview format for browsers, three.js, Blender and viewers.
//!
//! **Axes and units.** glTF is +Y up in metres; our meshes are +Z up in millimetres. A vertex
//! `(x, y, z)` mm is written as `(x, z, -y) / 1000` m (normals as `(x, z, -y)`): a -90° rotation
//! about X, which is proper (determinant +1), so counter-clockwise triangles stay
//! counter-clockwise and front faces stay outside. The relief ends up lying on the ground,
//! facing up, as it would on a print bed.
//!
//! **Layout.** One mesh, one triangle primitive: POSITION (with exact min/max), NORMAL (unit,
//! split at creases, see [`super::normals`]), TEXCOORD_0 + an embedded PNG baseColor texture
//! when textured (UVs without a texture would only be an unused attribute), else COLOR_0
//! (normalised `u8`, stride 4 for alignment) when the mesh has colours; `u32` indices. Each
//! attribute has its own 4-byte aligned bufferView in the single BIN chunk.

use gltf_json as json;
use json::validation::{Checked::Valid, USize64};
use json::{accessor, buffer, material, mesh, texture, Index, Root};

use super::normals::{split_at_creases, CREASE_DEGREES};
use super::{export_error, texture as png, ExportInput, MeshFormat, GENERATOR};
use crate::error::Result;

/// Builds the whole GLB file in memory (its header states the total length up front).
pub(super) fn encode(input: &ExportInput<'_>) -> Result<Vec<u8>> {
    let mesh = input.mesh;
    let texture = input.texture.filter(|_| !mesh.uvs.is_empty());
    let colored = texture.is_none() && !mesh.colors.is_empty();
    let split = split_at_creases(mesh, CREASE_DEGREES);
    let count = split.source.len();

    let mut b = Builder::default();
    let positions: Vec<[f32; 3]> = split
        .source
        .iter()
        .map(|&s| to_gltf(mesh.positions[s as usize]).map(|c| c / 1000.0))
        .collect();
    let (min, max) = bounds(&positions);
    let view = b.view(
        &flat(&positions),
        Some(12),
        Some(buffer::Target::ArrayBuffer),
    );
    let position = b.accessor(
        view,
        count,
        accessor::ComponentType::F32,
        accessor::Type::Vec3,
        false,
    );
    b.root.accessors[position.value()].min = Some(json::Value::from(min.to_vec()));
    b.root.accessors[position.value()].max = Some(json::Value::from(max.to_vec()));

    let normals: Vec<[f32; 3]> = split.normals.iter().map(|&n| to_gltf(n)).collect();
    let view = b.view(&flat(&normals), Some(12), Some(buffer::Target::ArrayBuffer));
    let normal = b.accessor(
        view,
        count,
        accessor::ComponentType::F32,
        accessor::Type::Vec3,
        false,
    );

    let mut attributes = std::collections::BTreeMap::new();
    attributes.insert(Valid(mesh::Semantic::Positions), position);
    attributes.insert(Valid(mesh::Semantic::Normals), normal);
    let mut base_color_texture = None;
    if let Some(texture) = texture {
        let uvs: Vec<[f32; 2]> = split.source.iter().map(|&s| mesh.uvs[s as usize]).collect();
        let view = b.view(&flat(&uvs), Some(8), Some(buffer::Target::ArrayBuffer));
        let uv = b.accessor(
            view,
            count,
            accessor::ComponentType::F32,
            accessor::Type::Vec2,
            false,
        );
        attributes.insert(Valid(mesh::Semantic::TexCoords(0)), uv);
        base_color_texture = Some(b.texture(&png::encode_png(MeshFormat::Glb, texture)?));
    } else if colored {
        // VEC3 u8 is 3 bytes: pad each element to 4 so every vertex starts 4-byte aligned.
        let rgb0: Vec<u8> = split
            .source
            .iter()
            .flat_map(|&s| mesh.colors[s as usize])
            .collect();
        let rgb0: Vec<u8> = rgb0
            .chunks_exact(3)
            .flat_map(|c| [c[0], c[1], c[2], 0])
            .collect();
        let view = b.view(&rgb0, Some(4), Some(buffer::Target::ArrayBuffer));
        let color = b.accessor(
            view,
            count,
            accessor::ComponentType::U8,
            accessor::Type::Vec3,
            true,
        );
        attributes.insert(Valid(mesh::Semantic::Colors(0)), color);
    }

    let indices: Vec<u8> = split
        .triangles
        .iter()
        .flatten()
        .flat_map(|i| i.to_le_bytes())
        .collect();
    let view = b.view(&indices, None, Some(buffer::Target::ElementArrayBuffer));
    let indices = b.accessor(
        view,
        split.triangles.len() * 3,
        accessor::ComponentType::U32,
        accessor::Type::Scalar,
        false,
    );

    let material = b.root.push(json::Material {
        pbr_metallic_roughness: material::PbrMetallicRoughness {
            base_color_texture: base_color_texture.map(|index| texture::Info {
                index,
                tex_coord: 0,
                extensions: None,
                extras: Default::default(),
            }),
            metallic_factor: material::StrengthFactor(0.0),
            roughness_factor: material::StrengthFactor(1.0),
            ..Default::default()
        },
        double_sided: false,
        ..Default::default()
    });
    let primitive = mesh::Primitive {
        attributes,
        extensions: None,
        extras: Default::default(),
        indices: Some(indices),
        material: Some(material),
        mode: Valid(mesh::Mode::Triangles),
        targets: None,
    };
    let mesh_index = b.root.push(json::Mesh {
        extensions: None,
        extras: Default::default(),
        name: None,
        primitives: vec![primitive],
        weights: None,
    });
    let node = b.root.push(json::Node {
        mesh: Some(mesh_index),
        ..Default::default()
    });
    let scene = b.root.push(json::Scene {
        extensions: None,
        extras: Default::default(),
        name: None,
        nodes: vec![node],
    });
    b.root.scene = Some(scene);
    b.finish()
}

/// Root under construction plus the BIN chunk it describes (one buffer).
#[derive(Default)]
struct Builder {
    root: Root,
    bin: Vec<u8>,
}

impl Builder {
    /// Appends `data` as a new bufferView starting at a 4-byte aligned offset.
    fn view(
        &mut self,
        data: &[u8],
        stride: Option<usize>,
        target: Option<buffer::Target>,
    ) -> Index<buffer::View> {
        pad_to_4(&mut self.bin, 0);
        let offset = self.bin.len();
        self.bin.extend_from_slice(data);
        self.root.push(buffer::View {
            buffer: Index::new(0),
            byte_length: USize64::from(data.len()),
            byte_offset: Some(USize64::from(offset)),
            byte_stride: stride.map(buffer::Stride),
            name: None,
            target: target.map(Valid),
            extensions: None,
            extras: Default::default(),
        })
    }

    fn accessor(
        &mut self,
        view: Index<buffer::View>,
        count: usize,
        component: accessor::ComponentType,
        type_: accessor::Type,
        normalized: bool,
    ) -> Index<json::Accessor> {
        self.root.push(json::Accessor {
            buffer_view: Some(view),
            byte_offset: Some(USize64(0)),
            count: USize64::from(count),
            component_type: Valid(accessor::GenericComponentType(component)),
            extensions: None,
            extras: Default::default(),
            type_: Valid(type_),
            min: None,
            max: None,
            name: None,
            normalized,
            sparse: None,
        })
    }

    /// Embeds a PNG: bufferView (no target), image, linear clamp-to-edge sampler, texture.
    fn texture(&mut self, png: &[u8]) -> Index<json::Texture> {
        let view = self.view(png, None, None);
        let source = self.root.push(json::Image {
            buffer_view: Some(view),
            mime_type: Some(json::image::MimeType("image/png".to_owned())),
            name: None,
            uri: None,
            extensions: None,
            extras: Default::default(),
        });
        let sampler = self.root.push(texture::Sampler {
            mag_filter: Some(Valid(texture::MagFilter::Linear)),
            min_filter: Some(Valid(texture::MinFilter::Linear)),
            wrap_s: Valid(texture::WrappingMode::ClampToEdge),
            wrap_t: Valid(texture::WrappingMode::ClampToEdge),
            ..Default::default()
        });
        self.root.push(json::Texture {
            name: None,
            sampler: Some(sampler),
            source,
            extensions: None,
            extras: Default::default(),
        })
    }

    /// Adds asset and buffer, serialises JSON, and writes the GLB container:
    /// 12-byte header (`glTF`, version 2, total length), JSON chunk padded with spaces,
    /// BIN chunk padded with zeros.
    fn finish(mut self) -> Result<Vec<u8>> {
        pad_to_4(&mut self.bin, 0);
        self.root.asset = json::Asset {
            generator: Some(GENERATOR.to_owned()),
            version: "2.0".to_owned(),
            ..Default::default()
        };
        self.root.push(json::Buffer {
            byte_length: USize64::from(self.bin.len()),
            name: None,
            uri: None,
            extensions: None,
            extras: Default::default(),
        });
        let mut text = self.root.to_vec().map_err(|e| {
            export_error(
                MeshFormat::Glb,
                format!("cannot serialise the glTF JSON: {e}"),
            )
        })?;
        pad_to_4(&mut text, b' ');
        let total = 12 + 8 + text.len() + 8 + self.bin.len();
        let too_big = || {
            export_error(
                MeshFormat::Glb,
                format!("the model needs {total} bytes; GLB holds at most 4 GiB"),
            )
        };
        let total32 = u32::try_from(total).map_err(|_| too_big())?;
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(b"glTF");
        out.extend_from_slice(&2u32.to_le_bytes());
        out.extend_from_slice(&total32.to_le_bytes());
        for (kind, chunk) in [(b"JSON", &text), (b"BIN\0", &self.bin)] {
            let len = u32::try_from(chunk.len()).map_err(|_| too_big())?;
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(kind);
            out.extend_from_slice(chunk);
        }
        Ok(out)
    }
}

/// (x, y, z) in our +Z-up frame → (x, z, -y) in glTF's +Y-up frame (a proper rotation).
fn to_gltf([x, y, z]: [f32; 3]) -> [f32; 3] {
    [x, z, -y]
}

fn bounds(points: &[[f32; 3]]) -> ([f32; 3], [f32; 3]) {
    let init = ([f32::INFINITY; 3], [f32::NEG_INFINITY; 3]);
    points.iter().fold(init, |(mut lo, mut hi), p| {
        for k in 0..3 {
            lo[k] = lo[k].min(p[k]);
            hi[k] = hi[k].max(p[k]);
        }
        (lo, hi)
    })
}

/// Little-endian bytes of fixed-size float arrays.
fn flat<const N: usize>(values: &[[f32; N]]) -> Vec<u8> {
    values
        .iter()
        .flatten()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

fn pad_to_4(bytes: &mut Vec<u8>, fill: u8) {
    bytes.resize(bytes.len().next_multiple_of(4), fill);
}
