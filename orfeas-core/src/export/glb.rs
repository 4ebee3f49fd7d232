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
use super::texture::TexturePng;
use super::{export_error, ExportInput, MeshFormat, GENERATOR};
use crate::error::Result;

/// Builds the whole GLB file in memory (its header states the total length up front).
pub(super) fn encode(input: &ExportInput<'_>, png: &TexturePng) -> Result<Glb> {
    let mesh = input.mesh;
    let texture = input.texture.filter(|_| !mesh.uvs.is_empty());
    let colored = texture.is_none() && !mesh.colors.is_empty();
    let split = split_at_creases(mesh, CREASE_DEGREES);
    let count = split.source.len();
    let texture_png = texture.map(|t| png.get(MeshFormat::Glb, t)).transpose()?;

    // Every view's size is known: the BIN chunk is allocated once, at its final size, and
    // each attribute is written straight into it.
    let per_vertex = 12 + 12 + if texture.is_some() { 8 } else { 0 } + if colored { 4 } else { 0 };
    let bin_len = count * per_vertex
        + split.triangles.len() * 12
        + texture_png
            .as_ref()
            .map_or(0, |p| p.len().next_multiple_of(4));
    let mut b = Builder::with_capacity(bin_len);
    let (mut min, mut max) = ([f32::INFINITY; 3], [f32::NEG_INFINITY; 3]);
    let view = b.view_with(
        count * 12,
        Some(12),
        Some(buffer::Target::ArrayBuffer),
        |bin| {
            for &s in &split.source {
                let p = to_gltf(mesh.positions[s as usize]).map(|c| c / 1000.0);
                for k in 0..3 {
                    min[k] = min[k].min(p[k]);
                    max[k] = max[k].max(p[k]);
                }
                put_f32s(bin, &p);
            }
        },
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

    let view = b.view_with(
        count * 12,
        Some(12),
        Some(buffer::Target::ArrayBuffer),
        |bin| {
            for &n in &split.normals {
                put_f32s(bin, &to_gltf(n));
            }
        },
    );
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
    if let Some(texture_png) = texture_png {
        let view = b.view_with(
            count * 8,
            Some(8),
            Some(buffer::Target::ArrayBuffer),
            |bin| {
                for &s in &split.source {
                    put_f32s(bin, &mesh.uvs[s as usize]);
                }
            },
        );
        let uv = b.accessor(
            view,
            count,
            accessor::ComponentType::F32,
            accessor::Type::Vec2,
            false,
        );
        attributes.insert(Valid(mesh::Semantic::TexCoords(0)), uv);
        base_color_texture = Some(b.texture(texture_png));
    } else if colored {
        // VEC3 u8 is 3 bytes: pad each element to 4 so every vertex starts 4-byte aligned.
        let view = b.view_with(
            count * 4,
            Some(4),
            Some(buffer::Target::ArrayBuffer),
            |bin| {
                for &s in &split.source {
                    let [r, g, b] = mesh.colors[s as usize];
                    bin.extend_from_slice(&[r, g, b, 0]);
                }
            },
        );
        let color = b.accessor(
            view,
            count,
            accessor::ComponentType::U8,
            accessor::Type::Vec3,
            true,
        );
        attributes.insert(Valid(mesh::Semantic::Colors(0)), color);
    }

    let view = b.view_with(
        split.triangles.len() * 12,
        None,
        Some(buffer::Target::ElementArrayBuffer),
        |bin| {
            for &i in split.triangles.iter().flatten() {
                bin.extend_from_slice(&i.to_le_bytes());
            }
        },
    );
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
struct Builder {
    root: Root,
    bin: Vec<u8>,
}

/// A finished GLB: the header and JSON chunk, and the BIN chunk (header included), kept
/// apart so that the file is streamed without copying the BIN chunk once more.
pub(super) struct Glb {
    head: Vec<u8>,
    bin: Vec<u8>,
}

impl Glb {
    pub(super) fn write_to(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        out.write_all(&self.head)?;
        out.write_all(&self.bin)
    }
}

impl Builder {
    /// Room for `bin_len` bytes of views and the BIN chunk's 8-byte header.
    fn with_capacity(bin_len: usize) -> Self {
        let mut bin = Vec::with_capacity(8 + bin_len);
        bin.resize(8, 0); // the chunk header, filled in by `finish`
        Self {
            root: Root::default(),
            bin,
        }
    }

    /// Appends a new bufferView of `len` bytes, starting at a 4-byte aligned offset, that
    /// `fill` writes straight into the BIN chunk.
    fn view_with(
        &mut self,
        len: usize,
        stride: Option<usize>,
        target: Option<buffer::Target>,
        fill: impl FnOnce(&mut Vec<u8>),
    ) -> Index<buffer::View> {
        pad_to_4(&mut self.bin, 0);
        let start = self.bin.len();
        fill(&mut self.bin);
        debug_assert_eq!(self.bin.len() - start, len, "bufferView length");
        self.root.push(buffer::View {
            buffer: Index::new(0),
            byte_length: USize64::from(len),
            byte_offset: Some(USize64::from(start - 8)),
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
        let view = self.view_with(png.len(), None, None, |bin| bin.extend_from_slice(png));
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
    fn finish(mut self) -> Result<Glb> {
        pad_to_4(&mut self.bin, 0);
        let bin_len = self.bin.len() - 8;
        self.root.asset = json::Asset {
            generator: Some(GENERATOR.to_owned()),
            version: "2.0".to_owned(),
            ..Default::default()
        };
        self.root.push(json::Buffer {
            byte_length: USize64::from(bin_len),
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
        let total = 12 + 8 + text.len() + 8 + bin_len;
        let too_big = || {
            export_error(
                MeshFormat::Glb,
                format!("the model needs {total} bytes; GLB holds at most 4 GiB"),
            )
        };
        let total32 = u32::try_from(total).map_err(|_| too_big())?;
        let text_len = u32::try_from(text.len()).map_err(|_| too_big())?;
        let bin_len32 = u32::try_from(bin_len).map_err(|_| too_big())?;
        let mut head = Vec::with_capacity(20 + text.len());
        head.extend_from_slice(b"glTF");
        head.extend_from_slice(&2u32.to_le_bytes());
        head.extend_from_slice(&total32.to_le_bytes());
        head.extend_from_slice(&text_len.to_le_bytes());
        head.extend_from_slice(b"JSON");
        head.extend_from_slice(&text);
        self.bin[..4].copy_from_slice(&bin_len32.to_le_bytes());
        self.bin[4..8].copy_from_slice(b"BIN\0");
        Ok(Glb {
            head,
            bin: self.bin,
        })
    }
}

/// (x, y, z) in our +Z-up frame → (x, z, -y) in glTF's +Y-up frame (a proper rotation).
fn to_gltf([x, y, z]: [f32; 3]) -> [f32; 3] {
    [x, z, -y]
}

/// Appends little-endian floats.
fn put_f32s(bin: &mut Vec<u8>, values: &[f32]) {
    for v in values {
        bin.extend_from_slice(&v.to_le_bytes());
    }
}

fn pad_to_4(bytes: &mut Vec<u8>, fill: u8) {
    bytes.resize(bytes.len().next_multiple_of(4), fill);
}
