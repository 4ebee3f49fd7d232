//! Wavefront OBJ (+ MTL + texture PNG): the lowest common denominator for colour models.
//!
//! Millimetres, +z up, as the mesh (OBJ has no unit; importers that assume +y up will show the
//! relief lying down, which is also how it prints). OBJ's texture origin is bottom-left, ours
//! top-left, so `vt` holds `1 - v`. Normals are not written: the solid has sharp edges that
//! smooth per-vertex normals would blur, and every importer computes flat normals itself.
//!
//! A textured model is three files that name each other: `<stem>.obj` says `mtllib <stem>.mtl`,
//! which says `map_Kd <stem>.png`. Without a texture, vertex colours are written as
//! `v x y z r g b` (floats in 0..1), an extension read by MeshLab, Blender and trimesh.

use std::io::{self, Write};

use super::texture::TexturePng;
use super::{ExportInput, MeshFormat, Part, GENERATOR};
use crate::error::Result;
use crate::mesh::Mesh;

/// Material name used in `usemtl`/`newmtl`.
const MATERIAL: &str = "orfeas_texture";

/// Whether `save` writes the `.mtl` and `.png` side files.
pub(super) fn is_textured(input: &ExportInput<'_>) -> bool {
    input.texture.is_some() && !input.mesh.uvs.is_empty()
}

/// The `.obj` part, then the `.mtl` and `.png` parts when textured and a stem names them.
pub(super) fn parts<'a>(
    input: &ExportInput<'a>,
    stem: Option<&'a str>,
    png: &'a TexturePng,
) -> Result<Vec<Part<'a>>> {
    let mesh = input.mesh;
    let (Some(texture), Some(stem)) = (input.texture.filter(|_| is_textured(input)), stem) else {
        return Ok(vec![Part::new("obj", "obj", move |out| {
            write_obj(mesh, None, out)
        })]);
    };
    let png = png.get(MeshFormat::Obj, texture)?;
    Ok(vec![
        Part::new("obj", "obj", move |out| write_obj(mesh, Some(stem), out)),
        Part::new("mtl", "mtl", move |out| write_mtl(stem, out)),
        Part::new("png", "png", move |out| out.write_all(png)),
    ])
}

/// The `.obj` text; `material_stem` names `<stem>.mtl` (and switches vertex colours off).
fn write_obj(mesh: &Mesh, material_stem: Option<&str>, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "# {GENERATOR}, units mm, +z up")?;
    writeln!(
        out,
        "# {} vertices, {} triangles",
        mesh.positions.len(),
        mesh.triangles.len()
    )?;
    if let Some(stem) = material_stem {
        writeln!(out, "mtllib {stem}.mtl")?;
    }
    let colored = material_stem.is_none() && !mesh.colors.is_empty();
    for (i, [x, y, z]) in mesh.positions.iter().enumerate() {
        if colored {
            let [r, g, b] = mesh.colors[i].map(|c| f32::from(c) / 255.0);
            writeln!(out, "v {x} {y} {z} {r} {g} {b}")?;
        } else {
            writeln!(out, "v {x} {y} {z}")?;
        }
    }
    for [u, v] in &mesh.uvs {
        writeln!(out, "vt {u} {}", 1.0 - v)?;
    }
    if material_stem.is_some() {
        writeln!(out, "usemtl {MATERIAL}")?;
    }
    let with_uv = !mesh.uvs.is_empty();
    for t in &mesh.triangles {
        let [a, b, c] = t.map(|i| u64::from(i) + 1);
        if with_uv {
            writeln!(out, "f {a}/{a} {b}/{b} {c}/{c}")?;
        } else {
            writeln!(out, "f {a} {b} {c}")?;
        }
    }
    Ok(())
}

/// A plain diffuse material whose colour is the texture (white factors so it is not tinted).
fn write_mtl(stem: &str, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "# {GENERATOR}")?;
    writeln!(out, "newmtl {MATERIAL}")?;
    writeln!(out, "Ka 1 1 1\nKd 1 1 1\nKs 0 0 0\nd 1\nillum 1")?;
    writeln!(out, "map_Kd {stem}.png")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_v_and_uses_one_based_indices() -> io::Result<()> {
        let mesh = Mesh {
            positions: vec![[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
            triangles: vec![[0, 1, 2]],
            uvs: vec![[0.0, 0.0], [1.0, 0.25], [0.0, 1.0]],
            colors: vec![[255, 0, 0]; 3],
        };
        let mut out = Vec::new();
        write_obj(&mesh, Some("m"), &mut out)?;
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("mtllib m.mtl\n"), "{text}");
        assert!(
            text.contains("vt 1 0.75\n") && text.contains("vt 0 1\n"),
            "{text}"
        );
        assert!(
            text.contains("\nv 1 0 0\n"),
            "colours must be off with a material: {text}"
        );
        assert!(
            text.ends_with("usemtl orfeas_texture\nf 1/1 2/2 3/3\n"),
            "{text}"
        );
        Ok(())
    }
}
