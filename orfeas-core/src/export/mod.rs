//! Mesh exporters, one file per format.
// SKELETON: helper replaces this file (keep the public API).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::depth::HeightMap;
use crate::error::Result;
use crate::mesh::{Mesh, Texture};

/// An output format (`--format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum MeshFormat {
    Stl,
    StlAscii,
    Obj,
    Glb,
    Ply,
    Depth16,
    DepthNpy,
}

impl MeshFormat {
    pub fn extension(self) -> &'static str {
        todo!()
    }
}

/// One file written for a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OutputFile {
    /// The format name (`stl`, `obj`, `mtl`, `png`, ...).
    pub format: String,
    pub path: PathBuf,
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

/// Writes one format to any writer (single-file formats; OBJ writes only the `.obj` part).
pub fn write_format(_format: MeshFormat, _input: &ExportInput<'_>, _out: &mut dyn Write) -> Result<()> {
    todo!()
}

/// Writes every file of `format` as `<dir>/<stem>.<ext>` atomically (temp name, then rename).
pub fn save(_format: MeshFormat, _input: &ExportInput<'_>, _dir: &Path, _stem: &str) -> Result<Vec<OutputFile>> {
    todo!()
}
