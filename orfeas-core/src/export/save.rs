//! Atomic, no-clobber file output.
//!
//! A reader (a slicer, the download route, a user's file manager) must never see a half-written
//! model under its final name, and a job must never silently replace another job's output.
//! So every file is written under a hidden temporary name in the same directory (same file
//! system, so the final step is a cheap metadata operation), flushed, then published with
//! `hard_link` — which fails atomically if the final name exists — and the temporary name
//! removed. Where hard links are unsupported we fall back to "check, then rename".
//!
//! Publishing is not syncing: a crash of the machine (not of the process) can still lose a
//! file published moments before. Whoever needs outputs to survive that syncs them once per
//! job with [`sync_published`], files and directory together, instead of once per file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{OutputFile, Part, WriteFn};
use crate::error::{OrfeasError, Result};

/// Distinguishes temporary names of concurrent saves within one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Rejects stems that would escape `dir` or produce hidden/odd names.
pub(super) fn check_stem(stem: &str) -> Result<()> {
    let bad = stem.is_empty()
        || stem == "."
        || stem == ".."
        || stem.starts_with('.')
        || stem
            .chars()
            .any(|c| matches!(c, '/' | '\\' | '\0') || c.is_control());
    if bad {
        return Err(OrfeasError::InvalidInput(format!(
            "invalid output file stem {stem:?}: it must be a plain file name without path separators"
        )));
    }
    Ok(())
}

/// Writes all parts to temporary files, then publishes them; all or nothing.
pub(super) fn save_parts(parts: Vec<Part<'_>>, dir: &Path, stem: &str) -> Result<Vec<OutputFile>> {
    let finals: Vec<PathBuf> = parts
        .iter()
        .map(|p| dir.join(format!("{stem}.{}", p.extension)))
        .collect();
    // Refuse before doing any work; publishing checks again, atomically.
    if let Some(existing) = finals.iter().find(|p| fs::symlink_metadata(p).is_ok()) {
        return Err(already_exists(existing));
    }
    let mut written: Vec<(PathBuf, OutputFile)> = Vec::with_capacity(parts.len());
    for (part, final_path) in parts.into_iter().zip(&finals) {
        let tmp = dir.join(format!(
            ".{stem}.{}.tmp-{}-{}",
            part.extension,
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        match write_temp(&tmp, part.write) {
            Ok(bytes) => written.push((
                tmp,
                OutputFile {
                    format: part.kind.to_owned(),
                    path: final_path.clone(),
                    bytes,
                },
            )),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                remove_all(written.iter().map(|(t, _)| t));
                return Err(OrfeasError::io(tmp, e));
            }
        }
    }
    let mut published: Vec<&Path> = Vec::with_capacity(written.len());
    for (tmp, file) in &written {
        if let Err(e) = publish(tmp, &file.path) {
            remove_all(written.iter().map(|(t, _)| t));
            remove_all(published);
            return Err(e);
        }
        published.push(&file.path);
    }
    Ok(written.into_iter().map(|(_, f)| f).collect())
}

/// Creates `tmp` (never an existing file), streams the part into it; returns its size.
fn write_temp(tmp: &Path, write: WriteFn<'_>) -> io::Result<u64> {
    let file = OpenOptions::new().write(true).create_new(true).open(tmp)?;
    let mut out = BufWriter::with_capacity(1 << 16, file);
    write(&mut out)?;
    let file: File = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    Ok(file.metadata()?.len())
}

/// Makes published files durable: each file's data, then each directory holding them (so
/// that their names survive a power cut too), each directory once.
pub(super) fn sync_published<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Result<()> {
    let mut dirs: Vec<&Path> = Vec::new();
    for path in paths {
        File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(|e| OrfeasError::io(path, e))?;
        if let Some(dir) = path.parent().filter(|d| !dirs.contains(d)) {
            dirs.push(dir);
        }
    }
    for dir in dirs {
        sync_dir(dir).map_err(|e| OrfeasError::io(dir, e))?;
    }
    Ok(())
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Directories cannot be opened as files here; the file system orders the rename itself.
#[cfg(not(unix))]
fn sync_dir(_: &Path) -> io::Result<()> {
    Ok(())
}

/// Moves `tmp` to `final_path` unless that name exists; removes `tmp` on success.
fn publish(tmp: &Path, final_path: &Path) -> Result<()> {
    match fs::hard_link(tmp, final_path) {
        Ok(()) => {
            let _ = fs::remove_file(tmp);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(already_exists(final_path)),
        Err(_) => {
            // No hard links here (some network or FAT file systems): check, then rename.
            if fs::symlink_metadata(final_path).is_ok() {
                return Err(already_exists(final_path));
            }
            fs::rename(tmp, final_path).map_err(|e| OrfeasError::io(final_path, e))
        }
    }
}

fn already_exists(path: &Path) -> OrfeasError {
    OrfeasError::io(
        path,
        io::Error::new(
            io::ErrorKind::AlreadyExists,
            "refusing to overwrite an existing file",
        ),
    )
}

/// Best-effort cleanup after a failure (the original error is what matters).
fn remove_all<P: AsRef<Path>>(paths: impl IntoIterator<Item = P>) {
    for p in paths {
        let _ = fs::remove_file(p.as_ref());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn syncing_published_files_syncs_them_and_their_folder_or_says_which_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.stl"), dir.path().join("b.glb"));
        fs::write(&a, b"a").unwrap();
        fs::write(&b, b"b").unwrap();
        sync_published([a.as_path(), b.as_path()]).expect("synced");
        fs::remove_file(&b).unwrap();
        let err = sync_published([a.as_path(), b.as_path()]).expect_err("b is gone");
        assert_eq!(err.code(), "ERR_IO");
        assert!(err.to_string().contains("b.glb"), "{err}");
    }
}
