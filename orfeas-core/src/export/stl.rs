//! STL, binary and ASCII: a triangle soup with one normal per facet, in millimetres (the unit
//! every slicer assumes for STL), +z up, counter-clockwise seen from outside.
//!
//! The mesh is validated by the caller (non-empty, finite, indices in range).

use rayon::prelude::*;
use std::io::{self, Write};

use super::GENERATOR;
use crate::mesh::Mesh;

/// Binary STL: 80-byte header, `u32` triangle count, then per triangle the normal, three
/// vertices (all `f32` little-endian) and a zero `u16` attribute.
///
/// The header must not start with `solid`: readers sniff that word to detect ASCII STL.
pub(super) fn write_binary(mesh: &Mesh, out: &mut dyn Write) -> io::Result<()> {
    let mut header = [b' '; 80];
    let text = format!("{GENERATOR} binary STL, units mm, +z up");
    let n = text.len().min(80);
    header[..n].copy_from_slice(&text.as_bytes()[..n]);
    out.write_all(&header)?;
    let count = u32::try_from(mesh.triangles.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many triangles for STL"))?;
    out.write_all(&count.to_le_bytes())?;
    // Records are encoded in parallel a block at a time, then written with one call per
    // block: a million triangles is 50 MB, and per-record writes dominated the export.
    const BLOCK: usize = 1 << 16;
    let mut buffer = vec![0u8; BLOCK.min(mesh.triangles.len()) * RECORD];
    for (b, block) in mesh.triangles.chunks(BLOCK).enumerate() {
        let bytes = &mut buffer[..block.len() * RECORD];
        bytes
            .par_chunks_mut(RECORD)
            .enumerate()
            .for_each(|(i, record)| {
                let t = b * BLOCK + i;
                let normal = mesh.face_normal(t);
                let corners = mesh.triangles[t].map(|v| mesh.positions[v as usize]);
                let values = std::iter::once(normal).chain(corners).flatten();
                for (k, v) in values.enumerate() {
                    record[k * 4..k * 4 + 4].copy_from_slice(&v.to_le_bytes());
                }
                // record[48..50] stays the zero attribute byte count
            });
        out.write_all(bytes)?;
    }
    Ok(())
}

/// Bytes per binary STL triangle: normal, three corners (12 f32) and a u16 attribute count.
const RECORD: usize = 50;

/// ASCII STL (`solid orfeas` ... `endsolid orfeas`). Numbers use Rust's shortest round-trip
/// formatting, so the values read back are bit-identical to the mesh.
pub(super) fn write_ascii(mesh: &Mesh, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "solid orfeas")?;
    for t in 0..mesh.triangles.len() {
        let [nx, ny, nz] = mesh.face_normal(t);
        writeln!(out, "  facet normal {nx} {ny} {nz}")?;
        writeln!(out, "    outer loop")?;
        for i in mesh.triangles[t] {
            let [x, y, z] = mesh.positions[i as usize];
            writeln!(out, "      vertex {x} {y} {z}")?;
        }
        writeln!(out, "    endloop")?;
        writeln!(out, "  endfacet")?;
    }
    writeln!(out, "endsolid orfeas")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn triangle() -> Mesh {
        Mesh {
            positions: vec![[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 3.0, 0.0]],
            triangles: vec![[0, 1, 2]],
            ..Mesh::default()
        }
    }

    #[test]
    fn binary_layout() -> io::Result<()> {
        let mut out = Vec::new();
        write_binary(&triangle(), &mut out)?;
        assert_eq!(out.len(), 84 + 50);
        assert!(!out.starts_with(b"solid"));
        assert_eq!(out[80..84], 1u32.to_le_bytes());
        // normal (0, 0, 1), then vertex 1 x = 2.0 at offset 84 + 24
        assert_eq!(out[84 + 8..84 + 12], 1f32.to_le_bytes());
        assert_eq!(out[84 + 24..84 + 28], 2f32.to_le_bytes());
        assert_eq!(out[132..134], [0, 0]);
        Ok(())
    }

    #[test]
    fn ascii_layout() -> io::Result<()> {
        let mut out = Vec::new();
        write_ascii(&triangle(), &mut out)?;
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.starts_with("solid orfeas\n  facet normal 0 0 1\n"),
            "{text}"
        );
        assert!(text.contains("vertex 0 3 0\n"));
        assert!(text.ends_with("endsolid orfeas\n"));
        Ok(())
    }
}
