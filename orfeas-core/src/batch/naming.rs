//! Output names: derived from the input, safe on every file system, never colliding.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::Job;
use crate::export::{self, MeshFormat};

/// A file stem from an input name: the last path component without its extension, with
/// separators, control and reserved characters replaced, leading dots removed (no hidden or
/// `..` names) and the length bounded. Never empty.
pub fn sanitize_stem(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let stem = match last.rfind('.') {
        Some(i) if i > 0 => &last[..i],
        _ => last,
    };
    let cleaned: String = stem
        .chars()
        .map(|c| {
            if c.is_control() || "<>:\"/\\|?*".contains(c) {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim_matches(|c: char| c == '.' || c.is_whitespace());
    let mut out: String = trimmed.chars().take(100).collect();
    if out.is_empty() {
        out.push_str("image");
    }
    out
}

/// Gives every job without a stem one derived from its input, unique within the batch and
/// such that none of its output files exists yet: `photo`, then `photo_1`, `photo_2`, ...
/// Names compare case-insensitively, so the result is safe on macOS and Windows too.
pub fn assign_stems(jobs: &mut [Job], formats: &[MeshFormat]) {
    let mut existing: HashMap<PathBuf, HashSet<String>> = HashMap::new();
    let mut taken: HashSet<(PathBuf, String)> = HashSet::new();
    for job in jobs.iter() {
        if let Some(stem) = &job.stem {
            taken.insert((job.out_dir.clone(), stem.to_lowercase()));
        }
    }
    for job in jobs.iter_mut().filter(|j| j.stem.is_none()) {
        let on_disk = existing
            .entry(job.out_dir.clone())
            .or_insert_with(|| lowercase_names(&job.out_dir));
        let base = sanitize_stem(&job.input.name());
        // The pipeline always attaches the image as texture, so OBJ writes all three files.
        let free = |stem: &str| {
            !taken.contains(&(job.out_dir.clone(), stem.to_lowercase()))
                && formats
                    .iter()
                    .flat_map(|&f| export::file_names(f, stem, true))
                    .all(|name| !on_disk.contains(&name.to_lowercase()))
        };
        let mut stem = base.clone();
        let mut n = 1;
        while !free(&stem) {
            stem = format!("{base}_{n}");
            n += 1;
        }
        taken.insert((job.out_dir.clone(), stem.to_lowercase()));
        job.stem = Some(stem);
    }
}

/// File names already in `dir`, lowercased (none when it does not exist yet).
fn lowercase_names(dir: &Path) -> HashSet<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().to_lowercase())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::ImageSource;

    #[test]
    fn hostile_names_become_safe_stems() {
        assert_eq!(sanitize_stem("photos/cat.jpg"), "cat");
        assert_eq!(sanitize_stem("..\\..\\etc\\passwd"), "passwd");
        assert_eq!(sanitize_stem("../../.."), "image");
        assert_eq!(sanitize_stem(".hidden.png"), "hidden");
        assert_eq!(sanitize_stem("a<b>c|d?.png"), "a_b_c_d_");
        assert_eq!(sanitize_stem("nul\u{0}byte.png"), "nul_byte");
        assert_eq!(sanitize_stem(""), "image");
        assert_eq!(sanitize_stem(&"x".repeat(500)).len(), 100);
    }

    #[test]
    fn collisions_get_suffixes_and_existing_files_are_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("cat.stl"), b"keep me").expect("write");
        let job = |name: &str| Job::new(name, ImageSource::Path(name.into()), dir.path());
        let mut jobs = vec![
            job("a/cat.png"),
            job("b/cat.jpg"),
            job("dog.png"),
            job("b/CAT.webp"),
        ];
        assign_stems(&mut jobs, &[MeshFormat::Stl, MeshFormat::Glb]);
        let stems: Vec<_> = jobs
            .iter()
            .map(|j| j.stem.clone().unwrap_or_default())
            .collect();
        assert_eq!(stems, ["cat_1", "cat_2", "dog", "CAT_3"]);
    }
}
