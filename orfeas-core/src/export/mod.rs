//! Mesh exporters, one file per format.
//!
//! Every writer serialises into any [`std::io::Write`] (so the same code serves files, HTTP
//! responses and Python `bytes`); [`save`] adds the disk side: atomic writes under a temporary
//! name, never overwriting an existing file.
//!
//! Each format is prepared in two steps: everything that can fail for a reason other than I/O
//! (invalid mesh, PNG encoding, GLB layout) happens first and yields `Part`s; writing a part
//! can then only fail with an `io::Error`, which [`save`] reports with the path it concerns.

mod depth;
mod field;
mod format;
mod glb;
mod mask;
mod normals;
mod npy;
mod obj;
mod ply;
mod save;
mod stl;
mod texture;
mod threemf;

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::depth::HeightMap;
use crate::error::{OrfeasError, Result};
use crate::foreground::Foreground;
use crate::mesh::{Mesh, Texture};
use crate::models::triposr::DensityGrid;

pub use format::MeshFormat;
pub(crate) use texture::TexturePng;

/// The `asset.generator` / file comment naming this library and its version.
pub(crate) const GENERATOR: &str = concat!("orfeas ", env!("CARGO_PKG_VERSION"));

/// One file written for a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OutputFile {
    /// The format name (`stl`, `obj`, `mtl`, `png`, ...).
    pub format: String,
    pub path: PathBuf,
    /// Size of the final file in bytes.
    pub bytes: u64,
}

/// What a job hands to the exporters.
#[derive(Clone, Copy, Debug)]
pub struct ExportInput<'a> {
    pub mesh: &'a Mesh,
    pub texture: Option<&'a Texture>,
    /// Raw estimator output at the original image resolution (for the depth formats).
    pub depth: Option<&'a HeightMap>,
    /// An object's density field (for `field.npy`).
    pub field: Option<&'a DensityGrid>,
    /// The foreground mask at the image's size (for `mask.png`, `mask.npy`).
    pub mask: Option<&'a Foreground>,
}

impl<'a> ExportInput<'a> {
    /// A mesh without texture or height map.
    pub fn mesh(mesh: &'a Mesh) -> Self {
        Self {
            mesh,
            texture: None,
            depth: None,
            field: None,
            mask: None,
        }
    }
}

/// Writes one format to any writer (single-file formats; OBJ writes only the `.obj` part,
/// without `mtllib`, since the material file's name is not known here).
///
/// I/O failures of `out` are reported as `ERR_EXPORT` (there is no path to name).
pub fn write_format(
    format: MeshFormat,
    input: &ExportInput<'_>,
    out: &mut dyn Write,
) -> Result<()> {
    let png = TexturePng::default();
    let Some(main) = parts(format, input, None, &png)?.into_iter().next() else {
        return Err(export_error(format, "nothing to write"));
    };
    let mut buffered = BufWriter::new(out);
    (main.write)(&mut buffered)
        .and_then(|()| buffered.flush())
        .map_err(|e| export_error(format, format!("write failed: {e}")))
}

/// Serialises one format into memory (the main file, as [`write_format`]).
pub fn to_bytes(format: MeshFormat, input: &ExportInput<'_>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    write_format(format, input, &mut out)?;
    Ok(out)
}

/// The file names [`save`] would write for `format` with this input and stem, main file first.
/// Lets callers pick a stem that collides with nothing before writing.
pub fn output_names(format: MeshFormat, input: &ExportInput<'_>, stem: &str) -> Vec<String> {
    file_names(format, stem, obj::is_textured(input))
}

/// The file names of `format` for a stem, before the input is known: `textured` says whether
/// OBJ will carry its `.mtl` and `.png` companions.
pub fn file_names(format: MeshFormat, stem: &str, textured: bool) -> Vec<String> {
    let mut names = vec![format!("{stem}.{}", format.extension())];
    if format == MeshFormat::Obj && textured {
        names.push(format!("{stem}.mtl"));
        names.push(format!("{stem}.png"));
    }
    names
}

/// Writes every file of `format` as `<dir>/<stem>.<ext>` atomically (temp name, then rename).
///
/// Refuses (`ERR_IO`, kind `AlreadyExists`) when any final name already exists: callers
/// choose unique stems and nothing is ever overwritten. On any failure no temporary file is
/// left behind and no file of this call remains. Returns the files main first, e.g. OBJ gives
/// `obj`, then `mtl` and `png` when textured.
pub fn save(
    format: MeshFormat,
    input: &ExportInput<'_>,
    dir: &Path,
    stem: &str,
) -> Result<Vec<OutputFile>> {
    save_sharing(format, input, dir, stem, &TexturePng::default())
}

/// [`save`] for one of several formats of the same input: the texture PNG in `png` is
/// encoded by the first format that needs it and reused by the others.
pub(crate) fn save_sharing(
    format: MeshFormat,
    input: &ExportInput<'_>,
    dir: &Path,
    stem: &str,
    png: &TexturePng,
) -> Result<Vec<OutputFile>> {
    save::check_stem(stem)?;
    let parts = parts(format, input, Some(stem), png)?;
    save::save_parts(parts, dir, stem)
}

/// Syncs files [`save`] published to the disk, their directories included: once per job,
/// after its last file, for callers that promise outputs survive a power cut (`orfeas serve`,
/// `BatchConfig::durable`). `save` itself only publishes by rename, which survives a crash of
/// the process but not of the machine.
pub fn sync_outputs(files: &[OutputFile]) -> Result<()> {
    save::sync_published(files.iter().map(|f| f.path.as_path()))
}

/// Removes files [`save`] published, to roll back a job that failed or was cancelled after
/// writing them. Best effort: a file that cannot be removed is logged, and the job's own
/// outcome (the error, or `cancelled`) is what its caller reports.
pub fn remove_outputs(files: &[OutputFile]) {
    for file in files {
        if let Err(e) = std::fs::remove_file(&file.path) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %file.path.display(), "cannot remove an output: {e}");
            }
        }
    }
}

/// Streams one file's bytes; only I/O can fail at this point.
pub(crate) type WriteFn<'a> = Box<dyn FnOnce(&mut dyn Write) -> io::Result<()> + 'a>;

/// One file of a format, validated and ready to be streamed.
pub(crate) struct Part<'a> {
    /// Value of [`OutputFile::format`].
    kind: &'static str,
    /// Extension of the file name after `<stem>.`.
    extension: &'static str,
    write: WriteFn<'a>,
}

impl<'a> Part<'a> {
    fn new(
        kind: &'static str,
        extension: &'static str,
        write: impl FnOnce(&mut dyn Write) -> io::Result<()> + 'a,
    ) -> Self {
        Self {
            kind,
            extension,
            write: Box::new(write),
        }
    }

    /// A part whose bytes are already in memory (encoded PNG, GLB).
    fn bytes(kind: &'static str, extension: &'static str, bytes: Vec<u8>) -> Self {
        Self::new(kind, extension, move |out| out.write_all(&bytes))
    }
}

/// Validates the input for `format` and prepares its files (main file first).
/// `stem` is `None` when writing a single stream (no companion files).
fn parts<'a>(
    format: MeshFormat,
    input: &ExportInput<'a>,
    stem: Option<&'a str>,
    png: &'a TexturePng,
) -> Result<Vec<Part<'a>>> {
    let name = format.as_str();
    let ext = format.extension();
    if format.is_field() {
        let grid = input.field.ok_or_else(|| {
            export_error(
                format,
                "no density field was given (field.npy exports a full 3D object's field)",
            )
        })?;
        field::check(grid)?;
        return Ok(vec![Part::new(name, ext, move |out| {
            field::write_npy(grid, out)
        })]);
    }
    if format.is_mask() {
        let mask = input.mask.ok_or_else(|| {
            export_error(
                format,
                "no foreground mask was given (the mask formats export it)",
            )
        })?;
        mask::check(format, mask)?;
        return Ok(vec![match format {
            MeshFormat::MaskPng => Part::bytes(name, ext, mask::encode_png(format, mask)?),
            _ => {
                let (side, values) = mask::npy_values(format, mask)?;
                Part::new(name, ext, move |out| mask::write_npy(side, &values, out))
            }
        }]);
    }
    if format.is_depth() {
        let map = input.depth.ok_or_else(|| {
            export_error(
                format,
                "no height map was given (the depth formats export the estimator output)",
            )
        })?;
        return Ok(vec![match format {
            MeshFormat::Depth16 => Part::bytes(name, ext, depth::encode_png16(format, map)?),
            _ => Part::new(name, ext, move |out| depth::write_npy(map, out)),
        }]);
    }
    let mesh = input.mesh;
    check_mesh(format, mesh)?;
    Ok(match format {
        MeshFormat::Stl => vec![Part::new(name, ext, move |out| {
            stl::write_binary(mesh, out)
        })],
        MeshFormat::StlAscii => vec![Part::new(name, ext, move |out| stl::write_ascii(mesh, out))],
        MeshFormat::Ply => vec![Part::new(name, ext, move |out| ply::write(mesh, out))],
        MeshFormat::Glb => {
            let glb = glb::encode(input, png)?;
            vec![Part::new(name, ext, move |out| glb.write_to(out))]
        }
        MeshFormat::ThreeMf => vec![Part::bytes(
            name,
            ext,
            threemf::encode(mesh).map_err(|e| export_error(format, e))?,
        )],
        _ => obj::parts(input, stem, png)?,
    })
}

/// Rejects meshes no writer can represent faithfully, before anything is written.
fn check_mesh(format: MeshFormat, mesh: &Mesh) -> Result<()> {
    let n = mesh.positions.len();
    let bad = |detail: String| Err(export_error(format, detail));
    if n == 0 || mesh.triangles.is_empty() {
        return bad(format!(
            "the mesh is empty ({n} vertices, {} triangles)",
            mesh.triangles.len()
        ));
    }
    if u32::try_from(n).is_err() || u32::try_from(mesh.triangles.len()).is_err() {
        return bad("the mesh has more than 4294967295 vertices or triangles".into());
    }
    if !mesh.uvs.is_empty() && mesh.uvs.len() != n {
        return bad(format!("{} uvs for {n} vertices", mesh.uvs.len()));
    }
    if !mesh.colors.is_empty() && mesh.colors.len() != n {
        return bad(format!("{} colours for {n} vertices", mesh.colors.len()));
    }
    if let Some(i) = mesh
        .positions
        .iter()
        .position(|p| !p.iter().all(|c| c.is_finite()))
    {
        return bad(format!("vertex {i} has a non-finite coordinate"));
    }
    if let Some(i) = mesh
        .uvs
        .iter()
        .position(|p| !p.iter().all(|c| c.is_finite()))
    {
        return bad(format!("uv {i} is not finite"));
    }
    if let Some(t) = mesh
        .triangles
        .iter()
        .position(|t| t.iter().any(|&i| i as usize >= n))
    {
        return bad(format!(
            "triangle {t} refers to a vertex beyond the {n} vertices"
        ));
    }
    Ok(())
}

/// `ERR_EXPORT` for `format`.
pub(crate) fn export_error(format: MeshFormat, detail: impl Into<String>) -> OrfeasError {
    OrfeasError::Export {
        format: format.as_str().to_owned(),
        detail: detail.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_mesh_and_missing_depth_are_export_errors() {
        let mesh = Mesh::default();
        let input = ExportInput::mesh(&mesh);
        for f in MeshFormat::ALL {
            let Err(e) = to_bytes(f, &input) else {
                panic!("{f} wrote an empty input")
            };
            assert_eq!(e.code(), "ERR_EXPORT", "{f}");
        }
        let bad = Mesh {
            positions: vec![[0.0; 3]; 3],
            triangles: vec![[0, 1, 3]],
            ..Mesh::default()
        };
        let Err(e) = to_bytes(MeshFormat::Stl, &ExportInput::mesh(&bad)) else {
            panic!("index 3 accepted")
        };
        assert!(e.to_string().contains("triangle 0"), "{e}");
    }
}
