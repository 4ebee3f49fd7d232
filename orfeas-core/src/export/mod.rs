//! Mesh exporters, one file per format.
//!
//! Every writer serialises into any [`std::io::Write`] (so the same code serves files, HTTP
//! responses and Python `bytes`); [`save`] adds the disk side: atomic writes under a temporary
//! name, never overwriting an existing file.
//!
//! Each format is prepared in two steps: everything that can fail for a reason other than I/O
//! (invalid mesh, PNG encoding, GLB layout) happens first and yields [`Part`]s; writing a part
//! can then only fail with an `io::Error`, which [`save`] reports with the path it concerns.

mod depth;
mod glb;
mod normals;
mod obj;
mod ply;
mod save;
mod stl;
mod texture;

use std::fmt;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::depth::HeightMap;
use crate::error::{OrfeasError, Result};
use crate::mesh::{Mesh, Texture};

/// The `asset.generator` / file comment naming this library and its version.
pub(crate) const GENERATOR: &str = concat!("orfeas ", env!("CARGO_PKG_VERSION"));

/// An output format (`--format`).
///
/// Serialised (serde, JSON) and printed under its [`as_str`](Self::as_str) name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MeshFormat {
    /// Binary STL (the default for printing).
    #[serde(rename = "stl")]
    Stl,
    /// ASCII STL.
    #[serde(rename = "stl-ascii")]
    StlAscii,
    /// Wavefront OBJ, with `.mtl` and texture `.png` when a texture is given.
    #[serde(rename = "obj")]
    Obj,
    /// glTF 2.0 binary (+Y up, metres).
    #[serde(rename = "glb")]
    Glb,
    /// Binary little-endian PLY with vertex colours.
    #[serde(rename = "ply")]
    Ply,
    /// The height map as a normalised 16-bit grayscale PNG.
    #[serde(rename = "depth16")]
    Depth16,
    /// The raw height map as a NumPy `.npy` float32 array.
    #[serde(rename = "depth.npy")]
    DepthNpy,
}

impl MeshFormat {
    /// Every format, in the order they are listed to users.
    pub const ALL: [MeshFormat; 7] = [
        Self::Stl,
        Self::StlAscii,
        Self::Obj,
        Self::Glb,
        Self::Ply,
        Self::Depth16,
        Self::DepthNpy,
    ];

    /// The name accepted by [`FromStr`] and used in results (`stl`, `stl-ascii`, ..., `depth.npy`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stl => "stl",
            Self::StlAscii => "stl-ascii",
            Self::Obj => "obj",
            Self::Glb => "glb",
            Self::Ply => "ply",
            Self::Depth16 => "depth16",
            Self::DepthNpy => "depth.npy",
        }
    }

    /// File extension of the main file, without the dot (`depth16.png`, `depth.npy` are double).
    pub fn extension(self) -> &'static str {
        match self {
            Self::Stl | Self::StlAscii => "stl",
            Self::Obj => "obj",
            Self::Glb => "glb",
            Self::Ply => "ply",
            Self::Depth16 => "depth16.png",
            Self::DepthNpy => "depth.npy",
        }
    }

    /// MIME type of the main file, for downloads.
    pub fn mime_type(self) -> &'static str {
        match self {
            Self::Stl | Self::StlAscii => "model/stl",
            Self::Obj => "model/obj",
            Self::Glb => "model/gltf-binary",
            Self::Ply => "application/x-ply",
            Self::Depth16 => "image/png",
            Self::DepthNpy => "application/x-npy",
        }
    }

    /// Whether the format is written from the mesh (`false`: from the height map).
    pub fn needs_mesh(self) -> bool {
        !matches!(self, Self::Depth16 | Self::DepthNpy)
    }

    /// Parses a comma-separated list (`"stl,glb"`), ignoring blanks and repeated entries.
    ///
    /// Errors with `ERR_INVALID_INPUT` naming the unknown entry and listing the valid names,
    /// or when the list names no format at all.
    pub fn parse_list(list: &str) -> Result<Vec<MeshFormat>> {
        let mut out = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let format: MeshFormat = item.parse()?;
            if !out.contains(&format) {
                out.push(format);
            }
        }
        if out.is_empty() {
            return Err(OrfeasError::InvalidInput(format!(
                "no output format given; expected one or more of {}",
                Self::valid_names()
            )));
        }
        Ok(out)
    }

    /// `stl, stl-ascii, obj, glb, ply, depth16, depth.npy`, for messages.
    fn valid_names() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }
}

impl FromStr for MeshFormat {
    type Err = OrfeasError;

    /// Case-insensitive; `_` may stand for `-`, a leading dot and the full extensions
    /// (`depth16.png`) are accepted, and `npy` is short for `depth.npy`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().to_ascii_lowercase().replace('_', "-");
        match name.strip_prefix('.').unwrap_or(&name) {
            "stl" => Ok(Self::Stl),
            "stl-ascii" | "stlascii" => Ok(Self::StlAscii),
            "obj" => Ok(Self::Obj),
            "glb" => Ok(Self::Glb),
            "ply" => Ok(Self::Ply),
            "depth16" | "depth16.png" => Ok(Self::Depth16),
            "depth.npy" | "npy" => Ok(Self::DepthNpy),
            _ => Err(OrfeasError::InvalidInput(format!(
                "unknown output format {:?}; expected one of {}",
                s.trim(),
                Self::valid_names()
            ))),
        }
    }
}

impl fmt::Display for MeshFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
}

impl<'a> ExportInput<'a> {
    /// A mesh without texture or height map.
    pub fn mesh(mesh: &'a Mesh) -> Self {
        Self {
            mesh,
            texture: None,
            depth: None,
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
    let Some(main) = parts(format, input, None)?.into_iter().next() else {
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
    let mut names = vec![format!("{stem}.{}", format.extension())];
    if format == MeshFormat::Obj && obj::is_textured(input) {
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
    save::check_stem(stem)?;
    let parts = parts(format, input, Some(stem))?;
    save::save_parts(parts, dir, stem)
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
) -> Result<Vec<Part<'a>>> {
    let name = format.as_str();
    let ext = format.extension();
    if !format.needs_mesh() {
        let map = input.depth.ok_or_else(|| {
            export_error(
                format,
                "no height map was given (the depth formats export the estimator output)",
            )
        })?;
        depth::check(format, map)?;
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
        MeshFormat::Glb => vec![Part::bytes(name, ext, glb::encode(input)?)],
        _ => obj::parts(input, stem)?,
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
    fn names_round_trip() {
        for f in MeshFormat::ALL {
            assert_eq!(f.as_str().parse::<MeshFormat>().ok(), Some(f));
            assert_eq!(f.to_string(), f.as_str());
            let json = serde_json::to_string(&f).ok();
            assert_eq!(json, Some(format!("\"{}\"", f.as_str())));
        }
        assert_eq!("NPY".parse::<MeshFormat>().ok(), Some(MeshFormat::DepthNpy));
        assert_eq!(
            " STL_ascii ".parse::<MeshFormat>().ok(),
            Some(MeshFormat::StlAscii)
        );
        assert_eq!(MeshFormat::Depth16.extension(), "depth16.png");
    }

    #[test]
    fn parse_list_reports_unknown_format() {
        assert_eq!(
            MeshFormat::parse_list("stl, GLB,stl,").ok(),
            Some(vec![MeshFormat::Stl, MeshFormat::Glb])
        );
        let Err(e) = MeshFormat::parse_list("stl,fbx") else {
            panic!("fbx accepted")
        };
        assert_eq!(e.code(), "ERR_INVALID_INPUT");
        let msg = e.to_string();
        assert!(
            msg.contains("\"fbx\"") && msg.contains("stl-ascii") && msg.contains("depth.npy"),
            "{msg}"
        );
        assert!(MeshFormat::parse_list(" , ").is_err());
    }

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
