//! Expanding INPUT arguments into the list of images to process.

use std::path::{Path, PathBuf};

/// Extensions picked up when scanning a directory. Files named explicitly are always used:
/// the decoder judges them by content, not by name.
const IMAGE_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "jpe", "webp", "bmp", "tif", "tiff", "gif",
];

/// Files as given, directories expanded (sorted, hidden entries skipped). A path that does
/// not exist is kept, so it is reported as a failed job rather than silently dropped.
pub fn collect(paths: &[PathBuf], recursive: bool) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            scan_dir(path, recursive, &mut out)?;
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

fn scan_dir(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            if recursive {
                scan_dir(&path, recursive, out)?;
            }
        } else if has_image_extension(&path) {
            out.push(path);
        }
    }
    Ok(())
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_expand_sorted_and_recursion_is_opt_in() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        for name in ["b.PNG", "a.jpg", "notes.txt", ".hidden.png", "sub/c.webp"] {
            let p = d.join(name);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, b"x").expect("write");
        }
        let names = |v: Vec<PathBuf>| {
            v.iter()
                .map(|p| p.strip_prefix(d).expect("prefix").display().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(collect(&[d.to_path_buf()], false).expect("scan")),
            ["a.jpg", "b.PNG"]
        );
        assert_eq!(
            names(collect(&[d.to_path_buf()], true).expect("scan")),
            ["a.jpg", "b.PNG", "sub/c.webp"]
        );
        let explicit =
            collect(&[d.join("notes.txt"), d.join("missing.png")], false).expect("files");
        assert_eq!(
            explicit.len(),
            2,
            "explicit files are kept even when odd or missing"
        );
    }
}
