//! NumPy `.npy` version 1.0 writing, shared by `depth.npy` and `field.npy`.

use std::io::{self, Write};

/// float32 little-endian, C order, `shape` as given (the values must number its product).
///
/// The header (magic, version, length, dict, padding, `\n`) is a multiple of 64 bytes, as
/// NumPy writes it, so the data is aligned for memory mapping.
pub(super) fn write_f32(shape: &[usize], values: &[f32], out: &mut dyn Write) -> io::Result<()> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let tuple = match dims.as_slice() {
        [one] => format!("({one},)"),
        _ => format!("({})", dims.join(", ")),
    };
    let mut dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {tuple}, }}");
    let unpadded = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    dict.push('\n');
    let len = u16::try_from(dict.len()).map_err(|_| io::Error::other("npy header too long"))?;
    out.write_all(b"\x93NUMPY\x01\x00")?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(dict.as_bytes())?;
    let mut chunk = Vec::with_capacity(1 << 14);
    for values in values.chunks(4096) {
        chunk.clear();
        chunk.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        out.write_all(&chunk)?;
    }
    Ok(())
}
