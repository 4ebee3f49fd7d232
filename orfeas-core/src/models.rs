//! Where model weights live: an explicit path, the Hugging Face cache, or a download.
//!
//! Weights are never fetched implicitly: `auto` depth only uses what is already on disk, and
//! `orfeas fetch-model` (feature `hub`) is the one place that downloads, into the standard
//! Hugging Face cache so other tools share the files.

use std::path::{Path, PathBuf};

use crate::error::{OrfeasError, Result};

/// A downloadable model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelSpec {
    /// The name used on the command line (`--model`).
    pub name: &'static str,
    /// Hugging Face repository in the transformers layout.
    pub repo_id: &'static str,
    /// Licence of the weights, shown before downloading.
    pub license: &'static str,
}

/// Models orfeas knows how to fetch; the first is the default.
pub const KNOWN_MODELS: [ModelSpec; 3] = [
    ModelSpec { name: "depth-anything-v2-small", repo_id: "depth-anything/Depth-Anything-V2-Small-hf", license: "Apache-2.0" },
    ModelSpec { name: "depth-anything-v2-base", repo_id: "depth-anything/Depth-Anything-V2-Base-hf", license: "CC-BY-NC-4.0" },
    ModelSpec { name: "depth-anything-v2-large", repo_id: "depth-anything/Depth-Anything-V2-Large-hf", license: "CC-BY-NC-4.0" },
];

/// The files of the transformers layout.
pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// A complete set of weights on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightsLocation {
    pub config: PathBuf,
    pub weights: PathBuf,
}

/// How to get weights, for error messages.
pub fn how_to_get_weights() -> String {
    format!(
        "run `orfeas fetch-model` (downloads {} into the Hugging Face cache), or pass --weights DIR \
         with {CONFIG_FILE} and {WEIGHTS_FILE} in the transformers layout",
        KNOWN_MODELS[0].repo_id
    )
}

/// Looks up a model by its command-line name.
pub fn model_spec(name: &str) -> Result<ModelSpec> {
    KNOWN_MODELS.iter().copied().find(|m| m.name == name).ok_or_else(|| {
        let names: Vec<_> = KNOWN_MODELS.iter().map(|m| m.name).collect();
        OrfeasError::InvalidInput(format!("unknown model {name:?}; expected one of {}", names.join(", ")))
    })
}

/// Resolves `--weights PATH` (a directory, or the `.safetensors` file with `config.json`
/// beside it). Anything incomplete is an error that says what is missing.
pub fn weights_at(path: &Path) -> Result<WeightsLocation> {
    let (dir, weights) = if path.is_dir() {
        (path.to_path_buf(), path.join(WEIGHTS_FILE))
    } else {
        (path.parent().map(Path::to_path_buf).unwrap_or_default(), path.to_path_buf())
    };
    let config = dir.join(CONFIG_FILE);
    for needed in [&weights, &config] {
        if !needed.is_file() {
            return Err(OrfeasError::WeightsNotFound(format!(
                "{} does not exist (from --weights {}); {}",
                needed.display(),
                path.display(),
                how_to_get_weights()
            )));
        }
    }
    Ok(WeightsLocation { config, weights })
}

/// The Hugging Face hub cache directory, honouring `HF_HUB_CACHE` and `HF_HOME`.
pub fn hf_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("HF_HUB_CACHE").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    if let Some(home) = std::env::var_os("HF_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(home).join("hub"));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("huggingface").join("hub"))
}

/// A model's files in a Hugging Face cache (`models--org--name/snapshots/<refs/main>/…`).
pub fn cached_weights(cache: &Path, repo_id: &str) -> Option<WeightsLocation> {
    let repo = cache.join(format!("models--{}", repo_id.replace('/', "--")));
    let revision = std::fs::read_to_string(repo.join("refs").join("main")).ok()?;
    let snapshot = repo.join("snapshots").join(revision.trim());
    weights_at(&snapshot).ok()
}

/// The first known model present in the local cache, if any (no network).
pub fn find_cached_weights() -> Option<WeightsLocation> {
    let cache = hf_cache_dir()?;
    KNOWN_MODELS.iter().find_map(|m| cached_weights(&cache, m.repo_id))
}

/// Downloads a known model into the Hugging Face cache and returns where it is.
#[cfg(feature = "hub")]
pub fn fetch_model(spec: &ModelSpec, show_progress: bool) -> Result<WeightsLocation> {
    let mut builder = hf_hub::api::sync::ApiBuilder::new().with_progress(show_progress);
    if let Some(dir) = hf_cache_dir() {
        builder = builder.with_cache_dir(dir);
    }
    let api = builder.build().map_err(|e| OrfeasError::WeightsNotFound(format!("cannot use the Hugging Face hub: {e}")))?;
    let repo = api.model(spec.repo_id.to_owned());
    let get = |file: &str| {
        repo.get(file).map_err(|e| {
            OrfeasError::WeightsNotFound(format!("download of {}/{file} failed: {e} (is the network reachable?)", spec.repo_id))
        })
    };
    Ok(WeightsLocation { config: get(CONFIG_FILE)?, weights: get(WEIGHTS_FILE)? })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, b"{}").expect("write");
    }

    #[test]
    fn explicit_paths_resolve_or_say_what_is_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let err = weights_at(d).expect_err("empty dir");
        assert_eq!(err.code(), "ERR_WEIGHTS_NOT_FOUND");
        assert!(err.to_string().contains("fetch-model"), "{err}");
        touch(&d.join(WEIGHTS_FILE));
        assert!(weights_at(d).expect_err("no config").to_string().contains(CONFIG_FILE));
        touch(&d.join(CONFIG_FILE));
        let loc = weights_at(d).expect("complete");
        assert_eq!(loc, weights_at(&d.join(WEIGHTS_FILE)).expect("file form"));
    }

    #[test]
    fn hugging_face_cache_layout_is_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path().join("models--depth-anything--Depth-Anything-V2-Small-hf");
        assert!(cached_weights(dir.path(), KNOWN_MODELS[0].repo_id).is_none());
        std::fs::create_dir_all(repo.join("refs")).expect("mkdir");
        std::fs::write(repo.join("refs/main"), "abc123\n").expect("write");
        touch(&repo.join("snapshots/abc123").join(CONFIG_FILE));
        assert!(cached_weights(dir.path(), KNOWN_MODELS[0].repo_id).is_none(), "weights file missing");
        touch(&repo.join("snapshots/abc123").join(WEIGHTS_FILE));
        let loc = cached_weights(dir.path(), KNOWN_MODELS[0].repo_id).expect("found");
        assert!(loc.weights.ends_with("snapshots/abc123/model.safetensors"));
        assert!(model_spec("depth-anything-v2-small").is_ok());
        assert_eq!(model_spec("gpt").map_err(|e| e.code()), Err("ERR_INVALID_INPUT"));
    }
}
