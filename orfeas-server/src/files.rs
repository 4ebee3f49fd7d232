//! Opening job outputs for download: only files the server recorded, only inside the data
//! directory, never through a symbolic link.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::ApiError;
use crate::jobs::{JobRecord, OutputRecord};
use crate::state::AppState;

/// An output opened for reading.
#[derive(Debug)]
pub struct OpenedOutput {
    pub file: File,
    pub len: u64,
    pub path: PathBuf,
}

/// Opens `output` of `job`. The name was recorded by the server (a single plain component,
/// see `persist::is_plain_file_name`); on top of that the path is refused when it is a
/// symlink, not a regular file, or resolves outside the canonical data directory.
pub fn open_output(
    state: &AppState,
    job: &JobRecord,
    output: &OutputRecord,
) -> Result<OpenedOutput, ApiError> {
    let gone = || ApiError::not_found(format!("{} is no longer available", output.file));
    let path = state.out_dir(&job.job_id).join(&output.file);
    let meta = std::fs::symlink_metadata(&path).map_err(|_| gone())?;
    if meta.file_type().is_symlink() || !meta.is_file() {
        tracing::warn!(path = %path.display(), "refusing to serve a symlink or non-regular file");
        return Err(gone());
    }
    let canonical = path.canonicalize().map_err(|_| gone())?;
    if !is_inside(&canonical, state.data_dir()) {
        tracing::warn!(path = %path.display(), "refusing to serve a file outside the data directory");
        return Err(gone());
    }
    let file = File::open(&canonical).map_err(|_| gone())?;
    let meta = file.metadata().map_err(|_| gone())?;
    if !meta.is_file() {
        return Err(gone());
    }
    Ok(OpenedOutput {
        file,
        len: meta.len(),
        path: canonical,
    })
}

fn is_inside(path: &Path, dir: &Path) -> bool {
    path.starts_with(dir) && path != dir
}

/// The Content-Type of an output file, by the format the server recorded.
pub fn content_type(format: &str, file: &str) -> &'static str {
    match format {
        "stl" | "stl-ascii" => "model/stl",
        "obj" => "model/obj",
        "mtl" => "model/mtl",
        "glb" => "model/gltf-binary",
        "ply" => "application/x-ply",
        "3mf" => "model/3mf",
        "png" | "depth16" => "image/png",
        "depth.npy" | "npy" => "application/octet-stream",
        _ => mime_guess::from_path(file)
            .first_raw()
            .unwrap_or("application/octet-stream"),
    }
}

/// `attachment; filename="..."; filename*=UTF-8''...` with the name made header-safe.
pub fn attachment(file: &str) -> String {
    let ascii: String = file
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in file.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_safe() {
        assert_eq!(
            attachment("cat.stl"),
            "attachment; filename=\"cat.stl\"; filename*=UTF-8''cat.stl"
        );
        assert_eq!(
            attachment("a\"b.glb"),
            "attachment; filename=\"a_b.glb\"; filename*=UTF-8''a%22b.glb"
        );
        assert_eq!(content_type("glb", "x.glb"), "model/gltf-binary");
        assert_eq!(content_type("stl", "x.stl"), "model/stl");
    }
}
