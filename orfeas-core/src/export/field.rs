//! `field.npy`: a full 3D object's activated density on the reference grid, float32
//! `[R, R, R]` indexed `[x][y][z]` (x slowest) in TripoSR's own frame, sampled at
//! `linspace(-radius, radius, R)` per axis, exactly what the surface was extracted from.

use std::io::{self, Write};

use super::{export_error, MeshFormat};
use crate::error::Result;
use crate::models::triposr::DensityGrid;

/// Rejects grids whose buffer does not match their resolution.
pub(super) fn check(grid: &DensityGrid) -> Result<()> {
    let r = grid.resolution;
    let expected = r.checked_mul(r).and_then(|rr| rr.checked_mul(r));
    if expected != Some(grid.values.len()) || r == 0 {
        return Err(export_error(
            MeshFormat::FieldNpy,
            format!(
                "density grid of resolution {r} holds {} values",
                grid.values.len()
            ),
        ));
    }
    Ok(())
}

pub(super) fn write_npy(grid: &DensityGrid, out: &mut dyn Write) -> io::Result<()> {
    let r = grid.resolution;
    super::npy::write_f32(&[r, r, r], &grid.values, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_the_cube_and_values_follow_in_order() -> io::Result<()> {
        let grid = DensityGrid {
            resolution: 2,
            radius: 0.87,
            values: (0..8).map(|v| v as f32).collect(),
        };
        assert!(check(&grid).is_ok());
        let mut out = Vec::new();
        write_npy(&grid, &mut out)?;
        assert_eq!(out.len(), 128 + 8 * 4);
        assert!(String::from_utf8_lossy(&out[10..128]).contains("'shape': (2, 2, 2), }"));
        assert_eq!(out[128 + 7 * 4..], 7.0f32.to_le_bytes());
        let short = DensityGrid {
            values: vec![0.0; 7],
            ..grid
        };
        assert_eq!(check(&short).map_err(|e| e.code()), Err("ERR_EXPORT"));
        Ok(())
    }
}
