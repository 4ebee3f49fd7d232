//! Where the background remover's weights live: `--segmenter-weights PATH`, else the Hugging
//! Face cache (`models--ZhengPeng7--BiRefNet_lite`, `models--ZhengPeng7--BiRefNet`), filled by
//! `orfeas fetch-model --model birefnet-lite|birefnet`.

use std::path::{Path, PathBuf};

use super::{cached_snapshot, hf_cache_dir};
use crate::error::{OrfeasError, Result};

/// BiRefNet_lite (Swin-T backbone, 44 M parameters, MIT): the CPU default.
pub const BIREFNET_LITE_REPO: &str = "ZhengPeng7/BiRefNet_lite";
/// BiRefNet (Swin-L backbone, 220 M parameters, MIT): the general model, the GPU default.
pub const BIREFNET_REPO: &str = "ZhengPeng7/BiRefNet";
/// The published checkpoint of both repositories.
pub const BIREFNET_WEIGHTS_FILE: &str = "model.safetensors";

/// A BiRefNet checkpoint on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmenterWeights {
    /// `model.safetensors` in the published layout.
    pub weights: PathBuf,
}

/// How to get the background remover's weights, for ERR_WEIGHTS_NOT_FOUND messages.
pub fn how_to_get_segmenter() -> String {
    format!(
        "run `orfeas fetch-model --model birefnet-lite` (downloads {BIREFNET_LITE_REPO}'s \
         {BIREFNET_WEIGHTS_FILE}, 177 MB, MIT licence, into the Hugging Face cache; \
         `--model birefnet` gets the larger general model, 885 MB), or pass \
         --segmenter-weights DIR holding {BIREFNET_WEIGHTS_FILE}"
    )
}

/// Resolves `--segmenter-weights PATH`: a directory holding `model.safetensors`, or the file.
pub fn segmenter_weights_at(path: &Path) -> Result<SegmenterWeights> {
    let missing = |what: String| {
        OrfeasError::WeightsNotFound(format!(
            "{what} (from --segmenter-weights {}); {}",
            path.display(),
            how_to_get_segmenter()
        ))
    };
    if path.is_file() {
        return Ok(SegmenterWeights {
            weights: path.to_path_buf(),
        });
    }
    if !path.is_dir() {
        return Err(missing(format!("{} does not exist", path.display())));
    }
    let weights = path.join(BIREFNET_WEIGHTS_FILE);
    if !weights.is_file() {
        return Err(missing(format!(
            "{} holds no {BIREFNET_WEIGHTS_FILE}",
            path.display()
        )));
    }
    Ok(SegmenterWeights { weights })
}

/// The cached BiRefNet checkpoint, if any (no network). `prefer_lite`: on the CPU the lite
/// model is the default (about 5× less work per photo); on a GPU the general one.
pub fn find_cached_segmenter(prefer_lite: bool) -> Option<SegmenterWeights> {
    cached_segmenter(&hf_cache_dir()?, prefer_lite)
}

/// [`find_cached_segmenter`] in a given cache directory.
pub fn cached_segmenter(cache: &Path, prefer_lite: bool) -> Option<SegmenterWeights> {
    let order = if prefer_lite {
        [BIREFNET_LITE_REPO, BIREFNET_REPO]
    } else {
        [BIREFNET_REPO, BIREFNET_LITE_REPO]
    };
    order.into_iter().find_map(|repo| {
        segmenter_weights_at(&cached_snapshot(cache, repo)?.join(BIREFNET_WEIGHTS_FILE)).ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(cache: &Path, repo: &str) -> PathBuf {
        let dir = cache.join(format!("models--{}", repo.replace('/', "--")));
        let snap = dir.join("snapshots").join("abc123");
        std::fs::create_dir_all(&snap).expect("snapshot dir");
        std::fs::create_dir_all(dir.join("refs")).expect("refs dir");
        std::fs::write(dir.join("refs").join("main"), "abc123\n").expect("refs/main");
        std::fs::write(snap.join(BIREFNET_WEIGHTS_FILE), b"not read here").expect("weights");
        snap
    }

    #[test]
    fn the_cache_gives_the_preferred_size_first_and_either_when_alone() {
        let cache = tempfile::tempdir().expect("tempdir");
        assert_eq!(cached_segmenter(cache.path(), true), None);
        let general = snapshot(cache.path(), BIREFNET_REPO).join(BIREFNET_WEIGHTS_FILE);
        let found = |lite| cached_segmenter(cache.path(), lite).map(|w| w.weights);
        assert_eq!(found(true).as_ref(), Some(&general));
        let lite = snapshot(cache.path(), BIREFNET_LITE_REPO).join(BIREFNET_WEIGHTS_FILE);
        assert_eq!(found(true), Some(lite));
        assert_eq!(found(false), Some(general));
    }

    #[test]
    fn explicit_paths_name_what_is_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = segmenter_weights_at(dir.path()).err();
        assert!(err.as_ref().map(|e| e.code()) == Some("ERR_WEIGHTS_NOT_FOUND"));
        assert!(err.is_some_and(|e| e.to_string().contains(BIREFNET_WEIGHTS_FILE)));
        let file = dir.path().join(BIREFNET_WEIGHTS_FILE);
        std::fs::write(&file, b"x").expect("write");
        assert_eq!(
            segmenter_weights_at(dir.path()).ok().map(|w| w.weights),
            Some(file.clone())
        );
        assert_eq!(
            segmenter_weights_at(&file).ok().map(|w| w.weights),
            Some(file)
        );
    }
}
