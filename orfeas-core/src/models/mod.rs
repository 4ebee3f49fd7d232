//! Where model weights live: an explicit path, the Hugging Face cache, or a download.
//!
//! Weights are never fetched implicitly: `auto` depth only uses what is already on disk, and
//! `orfeas fetch-model` (feature `hub`) is the one place that downloads, into the standard
//! Hugging Face cache so other tools share the files.

pub mod triposr;

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
    ModelSpec {
        name: "depth-anything-v2-small",
        repo_id: "depth-anything/Depth-Anything-V2-Small-hf",
        license: "Apache-2.0",
    },
    ModelSpec {
        name: "depth-anything-v2-base",
        repo_id: "depth-anything/Depth-Anything-V2-Base-hf",
        license: "CC-BY-NC-4.0",
    },
    ModelSpec {
        name: "depth-anything-v2-large",
        repo_id: "depth-anything/Depth-Anything-V2-Large-hf",
        license: "CC-BY-NC-4.0",
    },
];

/// The files of the transformers layout.
pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// Hugging Face repositories holding the authors' original-layout checkpoints, looked for in the
/// local cache after the transformers ones (never downloaded: `fetch-model` gets the -hf layout).
pub const ORIGINAL_LAYOUT_REPOS: [&str; 3] = [
    "depth-anything/Depth-Anything-V2-Small",
    "depth-anything/Depth-Anything-V2-Base",
    "depth-anything/Depth-Anything-V2-Large",
];

/// Checkpoint containers the loader reads: safetensors, and PyTorch pickles (`torch.save`).
const CHECKPOINT_EXTENSIONS: [&str; 3] = ["safetensors", "pth", "pt"];

/// A complete set of weights on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightsLocation {
    /// `config.json`: required by the transformers layout; beside an authors'-layout file it
    /// overrides the architecture otherwise inferred from the weights and the file name.
    pub config: Option<PathBuf>,
    /// The checkpoint: `model.safetensors`, or an authors' `depth_anything_v2_vit?.pth` /
    /// `.safetensors`.
    pub weights: PathBuf,
}

/// How to get weights, for error messages.
pub fn how_to_get_weights() -> String {
    format!(
        "run `orfeas fetch-model` (downloads {} into the Hugging Face cache), or pass --weights DIR \
         with {CONFIG_FILE} and {WEIGHTS_FILE} in the transformers layout, or --weights FILE with the \
         authors' checkpoint (depth_anything_v2_vits.pth or .safetensors)",
        KNOWN_MODELS[0].repo_id
    )
}

/// Looks up a model by its command-line name.
pub fn model_spec(name: &str) -> Result<ModelSpec> {
    KNOWN_MODELS
        .iter()
        .copied()
        .find(|m| m.name == name)
        .ok_or_else(|| {
            let names: Vec<_> = KNOWN_MODELS.iter().map(|m| m.name).collect();
            OrfeasError::InvalidInput(format!(
                "unknown model {name:?}; expected one of {}",
                names.join(", ")
            ))
        })
}

/// Resolves `--weights PATH`: a transformers directory (`config.json` + `model.safetensors`), a
/// directory holding one authors' checkpoint (`depth_anything*.pth`/`.safetensors`), or a
/// checkpoint file (`config.json` beside it is used when present). Anything incomplete or
/// ambiguous is an error that says what is missing.
pub fn weights_at(path: &Path) -> Result<WeightsLocation> {
    let missing = |what: &Path| {
        OrfeasError::WeightsNotFound(format!(
            "{} does not exist (from --weights {}); {}",
            what.display(),
            path.display(),
            how_to_get_weights()
        ))
    };
    if !path.is_dir() {
        if !path.is_file() {
            return Err(missing(path));
        }
        if !is_checkpoint_file(path) {
            return Err(OrfeasError::WeightsNotFound(format!(
                "{} is not a checkpoint file (expected .{}); {}",
                path.display(),
                CHECKPOINT_EXTENSIONS.join(", ."),
                how_to_get_weights()
            )));
        }
        let config = path
            .parent()
            .map(|dir| dir.join(CONFIG_FILE))
            .filter(|c| c.is_file());
        return Ok(WeightsLocation {
            config,
            weights: path.to_path_buf(),
        });
    }
    let (config, weights) = (path.join(CONFIG_FILE), path.join(WEIGHTS_FILE));
    if weights.is_file() {
        return if config.is_file() {
            Ok(WeightsLocation {
                config: Some(config),
                weights,
            })
        } else {
            Err(missing(&config))
        };
    }
    let mut original: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|source| OrfeasError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && is_checkpoint_file(p)
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("depth_anything"))
        })
        .collect();
    original.sort();
    match original.as_slice() {
        [] => Err(missing(&weights)),
        [only] => Ok(WeightsLocation {
            config: config.is_file().then_some(config),
            weights: only.clone(),
        }),
        several => Err(OrfeasError::WeightsNotFound(format!(
            "{} holds several checkpoints ({}); pass the one to use with --weights FILE",
            path.display(),
            several
                .iter()
                .filter_map(|p| p.file_name())
                .map(|n| n.to_string_lossy())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn is_checkpoint_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| CHECKPOINT_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
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

/// The first known model present in the local cache, if any (no network): the transformers
/// layouts first, then the authors' checkpoints.
pub fn find_cached_weights() -> Option<WeightsLocation> {
    let cache = hf_cache_dir()?;
    KNOWN_MODELS
        .iter()
        .map(|m| m.repo_id)
        .chain(ORIGINAL_LAYOUT_REPOS)
        .find_map(|repo| cached_weights(&cache, repo))
}

/// Downloads a known model into the Hugging Face cache and returns where it is.
#[cfg(feature = "hub")]
pub fn fetch_model(spec: &ModelSpec, show_progress: bool) -> Result<WeightsLocation> {
    let mut builder = hf_hub::api::sync::ApiBuilder::new().with_progress(show_progress);
    if let Some(dir) = hf_cache_dir() {
        builder = builder.with_cache_dir(dir);
    }
    let api = builder.build().map_err(|e| {
        OrfeasError::WeightsNotFound(format!("cannot use the Hugging Face hub: {e}"))
    })?;
    let repo = api.model(spec.repo_id.to_owned());
    let get = |file: &str| {
        repo.get(file).map_err(|e| {
            OrfeasError::WeightsNotFound(format!(
                "download of {}/{file} failed: {e} (is the network reachable?)",
                spec.repo_id
            ))
        })
    };
    Ok(WeightsLocation {
        config: Some(get(CONFIG_FILE)?),
        weights: get(WEIGHTS_FILE)?,
    })
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
        assert!(weights_at(d)
            .expect_err("no config")
            .to_string()
            .contains(CONFIG_FILE));
        touch(&d.join(CONFIG_FILE));
        let loc = weights_at(d).expect("complete");
        assert_eq!(loc, weights_at(&d.join(WEIGHTS_FILE)).expect("file form"));
    }

    #[test]
    fn authors_checkpoints_resolve_as_files_or_as_the_one_in_a_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let vits = d.join("depth_anything_v2_vits.pth");
        touch(&vits);
        touch(&d.join("notes.txt"));
        assert_eq!(
            weights_at(d).expect("one checkpoint"),
            WeightsLocation {
                config: None,
                weights: vits.clone()
            }
        );
        assert_eq!(
            weights_at(&vits).expect("file"),
            WeightsLocation {
                config: None,
                weights: vits.clone()
            }
        );
        let err = weights_at(&d.join("notes.txt")).expect_err("not a checkpoint");
        assert!(err.to_string().contains("not a checkpoint file"), "{err}");
        touch(&d.join("depth_anything_v2_vitb.safetensors"));
        let err = weights_at(d).expect_err("two checkpoints");
        assert!(
            err.to_string()
                .contains("depth_anything_v2_vitb.safetensors, depth_anything_v2_vits.pth"),
            "{err}"
        );
        touch(&d.join(CONFIG_FILE));
        assert_eq!(
            weights_at(&vits).expect("file").config,
            Some(d.join(CONFIG_FILE)),
            "a config beside is used"
        );
        assert_eq!(
            weights_at(&d.join("absent.pth")).map_err(|e| e.code()),
            Err("ERR_WEIGHTS_NOT_FOUND")
        );
    }

    #[test]
    fn hugging_face_cache_layout_is_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir
            .path()
            .join("models--depth-anything--Depth-Anything-V2-Small-hf");
        assert!(cached_weights(dir.path(), KNOWN_MODELS[0].repo_id).is_none());
        std::fs::create_dir_all(repo.join("refs")).expect("mkdir");
        std::fs::write(repo.join("refs/main"), "abc123\n").expect("write");
        touch(&repo.join("snapshots/abc123").join(CONFIG_FILE));
        assert!(
            cached_weights(dir.path(), KNOWN_MODELS[0].repo_id).is_none(),
            "weights file missing"
        );
        touch(&repo.join("snapshots/abc123").join(WEIGHTS_FILE));
        let loc = cached_weights(dir.path(), KNOWN_MODELS[0].repo_id).expect("found");
        assert!(loc.weights.ends_with("snapshots/abc123/model.safetensors"));
        assert!(model_spec("depth-anything-v2-small").is_ok());
        assert_eq!(
            model_spec("gpt").map_err(|e| e.code()),
            Err("ERR_INVALID_INPUT")
        );
    }
}
