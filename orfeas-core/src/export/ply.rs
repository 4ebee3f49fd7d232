//! PLY, binary little-endian: compact, exact (raw `f32`), and read by MeshLab, Blender, Open3D
//! and trimesh, with per-vertex colours (`uchar red, green, blue`) when the mesh has them.
//! Millimetres, +z up, as the mesh.

use std::io::{self, Write};

use super::GENERATOR;
use crate::mesh::Mesh;

/// Writes the header and the `vertex` and `face` elements (faces as `list uchar uint`).
pub(super) fn write(mesh: &Mesh, out: &mut dyn Write) -> io::Result<()> {
    let colored = !mesh.colors.is_empty();
    let mut header = String::new();
    header.push_str("ply\nformat binary_little_endian 1.0\n");
    header.push_str(&format!("comment {GENERATOR}, units mm, +z up\n"));
    header.push_str(&format!("element vertex {}\n", mesh.positions.len()));
    header.push_str("property float x\nproperty float y\nproperty float z\n");
    if colored {
        header.push_str("property uchar red\nproperty uchar green\nproperty uchar blue\n");
    }
    header.push_str(&format!("element face {}\n", mesh.triangles.len()));
    header.push_str("property list uchar uint vertex_indices\nend_header\n");
    out.write_all(header.as_bytes())?;

    let mut record = [0u8; 15];
    for (i, p) in mesh.positions.iter().enumerate() {
        for (k, v) in p.iter().enumerate() {
            record[k * 4..k * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
        let len = if colored {
            record[12..15].copy_from_slice(&mesh.colors[i]);
            15
        } else {
            12
        };
        out.write_all(&record[..len])?;
    }
    let mut face = [3u8; 13];
    for t in &mesh.triangles {
        for (k, v) in t.iter().enumerate() {
            face[1 + k * 4..5 + k * 4].copy_from_slice(&v.to_le_bytes());
        }
        out.write_all(&face)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_with_colors() -> io::Result<()> {
        let mesh = Mesh {
            positions: vec![[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
            triangles: vec![[0, 1, 2]],
            uvs: vec![],
            colors: vec![[255, 0, 0], [0, 255, 0], [0, 0, 255]],
        };
        let mut out = Vec::new();
        write(&mesh, &mut out)?;
        let end = b"end_header\n";
        let body = out
            .windows(end.len())
            .position(|w| w == end)
            .map(|p| p + end.len());
        assert_eq!(body.map(|b| out.len() - b), Some(3 * 15 + 13));
        assert_eq!(
            out[out.len() - 13..],
            [3, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]
        );
        Ok(())
    }
}
