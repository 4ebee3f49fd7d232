//! Where model weights live: an explicit path, the Hugging Face cache, or a download.
//!
//! Weights are never fetched implicitly: `auto` depth only uses what is already on disk, and
//! `orfeas fetch-model` (feature `hub`) is the one place that downloads, into the standard
//! Hugging Face cache so other tools share the files.

pub mod birefnet;
pub mod loaded;
mod segmenter;
pub mod triposr;

pub use segmenter::{
    cached_segmenter, find_cached_segmenter, how_to_get_segmenter, segmenter_weights_at,
    SegmenterWeights, BIREFNET_LITE_REPO, BIREFNET_REPO, BIREFNET_WEIGHTS_FILE,
};

use std::path::{Path, PathBuf};

use crate::error::{OrfeasError, Result};

/// Which loader a downloadable model's files are for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// A Depth Anything V2 checkpoint in the transformers layout (relief depth).
    DepthAnything,
    /// TripoSR's `config.yaml` + `model.ckpt` (full 3D objects).
    TripoSr,
    /// BiRefNet's `model.safetensors` (background removal).
    BiRefNet,
}

/// A downloadable model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelSpec {
    /// The name used on the command line (`--model`).
    pub name: &'static str,
    /// Hugging Face repository.
    pub repo_id: &'static str,
    /// Licence of the weights, shown before downloading.
    pub license: &'static str,
    pub kind: ModelKind,
    /// The files `fetch-model` downloads from the repository (everything the loader reads).
    pub files: &'static [&'static str],
}

/// Depth Anything's transformers layout.
const DEPTH_ANYTHING_FILES: &[&str] = &[CONFIG_FILE, WEIGHTS_FILE];

/// Models orfeas knows how to fetch; the first is the default.
pub const KNOWN_MODELS: [ModelSpec; 6] = [
    ModelSpec {
        name: "depth-anything-v2-small",
        repo_id: "depth-anything/Depth-Anything-V2-Small-hf",
        license: "Apache-2.0",
        kind: ModelKind::DepthAnything,
        files: DEPTH_ANYTHING_FILES,
    },
    ModelSpec {
        name: "depth-anything-v2-base",
        repo_id: "depth-anything/Depth-Anything-V2-Base-hf",
        license: "CC-BY-NC-4.0",
        kind: ModelKind::DepthAnything,
        files: DEPTH_ANYTHING_FILES,
    },
    ModelSpec {
        name: "depth-anything-v2-large",
        repo_id: "depth-anything/Depth-Anything-V2-Large-hf",
        license: "CC-BY-NC-4.0",
        kind: ModelKind::DepthAnything,
        files: DEPTH_ANYTHING_FILES,
    },
    ModelSpec {
        name: "triposr",
        repo_id: TRIPOSR_REPO,
        license: "MIT",
        kind: ModelKind::TripoSr,
        files: &[TRIPOSR_CONFIG_FILE, TRIPOSR_CKPT_FILE],
    },
    ModelSpec {
        name: "birefnet-lite",
        repo_id: BIREFNET_LITE_REPO,
        license: "MIT",
        kind: ModelKind::BiRefNet,
        files: &[BIREFNET_WEIGHTS_FILE],
    },
    ModelSpec {
        name: "birefnet",
        repo_id: BIREFNET_REPO,
        license: "MIT",
        kind: ModelKind::BiRefNet,
        files: &[BIREFNET_WEIGHTS_FILE],
    },
];

/// TripoSR's published weights (MIT, 1.68 GB of float32).
pub const TRIPOSR_REPO: &str = "stabilityai/TripoSR";
/// TripoSR's configuration, beside its weights.
pub const TRIPOSR_CONFIG_FILE: &str = "config.yaml";
/// TripoSR's published checkpoint (a `torch.save`d state dict).
pub const TRIPOSR_CKPT_FILE: &str = "model.ckpt";
/// The same tensors as safetensors (a conversion some users keep; read without unpickling).
pub const TRIPOSR_SAFETENSORS_FILE: &str = "model.safetensors";

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
    weights_at(&cached_snapshot(cache, repo_id)?).ok()
}

/// The snapshot directory `refs/main` names in a Hugging Face cache, whatever it holds.
pub(crate) fn cached_snapshot(cache: &Path, repo_id: &str) -> Option<PathBuf> {
    let repo = cache.join(format!("models--{}", repo_id.replace('/', "--")));
    let revision = std::fs::read_to_string(repo.join("refs").join("main")).ok()?;
    Some(repo.join("snapshots").join(revision.trim()))
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

/// Downloads a known model's files (`spec.files`) into the Hugging Face cache and returns the
/// snapshot directory holding them (what `--weights DIR` takes for either model kind).
#[cfg(feature = "hub")]
pub fn fetch_model(spec: &ModelSpec, show_progress: bool) -> Result<PathBuf> {
    let mut builder = hf_hub::api::sync::ApiBuilder::new().with_progress(show_progress);
    if let Some(dir) = hf_cache_dir() {
        builder = builder.with_cache_dir(dir);
    }
    let api = builder.build().map_err(|e| {
        OrfeasError::WeightsNotFound(format!("cannot use the Hugging Face hub: {e}"))
    })?;
    let repo = api.model(spec.repo_id.to_owned());
    let mut snapshot = None;
    for file in spec.files {
        let path = repo.get(file).map_err(|e| {
            OrfeasError::WeightsNotFound(format!(
                "download of {}/{file} failed: {e} (is the network reachable?)",
                spec.repo_id
            ))
        })?;
        snapshot = path.parent().map(Path::to_path_buf);
    }
    snapshot.ok_or_else(|| {
        OrfeasError::Internal(format!("model {} lists no files to download", spec.name))
    })
}

/// TripoSR's files on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TripoSrWeights {
    /// `config.yaml`.
    pub config: PathBuf,
    /// `model.ckpt` (the published PyTorch pickle) or `model.safetensors`.
    pub weights: PathBuf,
}

/// How to get TripoSR's weights, for ERR_WEIGHTS_NOT_FOUND messages.
pub fn how_to_get_triposr() -> String {
    format!(
        "run `orfeas fetch-model --model triposr` (downloads {TRIPOSR_REPO}'s \
         {TRIPOSR_CONFIG_FILE} and {TRIPOSR_CKPT_FILE}, 1.7 GB, MIT licence, into the Hugging Face \
         cache), or pass --weights DIR with {TRIPOSR_CONFIG_FILE} and {TRIPOSR_CKPT_FILE} (or \
         {TRIPOSR_SAFETENSORS_FILE})"
    )
}

/// Resolves `--weights PATH` for TripoSR: a directory with `config.yaml` and `model.ckpt` or
/// `model.safetensors` (the safetensors file wins when both are there: it is read without
/// unpickling), or one of those files (the other is looked for beside it). Whatever is missing
/// is named (ERR_WEIGHTS_NOT_FOUND); the files' contents are checked by the loader.
pub fn triposr_weights_at(path: &Path) -> Result<TripoSrWeights> {
    let missing = |what: String| {
        OrfeasError::WeightsNotFound(format!(
            "{what} (from --weights {}); {}",
            path.display(),
            how_to_get_triposr()
        ))
    };
    let (dir, file) = if path.is_dir() {
        (path, None)
    } else if path.is_file() {
        (path.parent().unwrap_or(Path::new(".")), Some(path))
    } else {
        return Err(missing(format!("{} does not exist", path.display())));
    };
    let is_yaml = |p: &Path| {
        p.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
    };
    let config = match file {
        Some(f) if is_yaml(f) => f.to_path_buf(),
        _ => dir.join(TRIPOSR_CONFIG_FILE),
    };
    if !config.is_file() {
        return Err(missing(format!(
            "{} does not exist: TripoSR's weights need the {TRIPOSR_CONFIG_FILE} published with \
             them",
            config.display()
        )));
    }
    let weights = match file {
        Some(f) if !is_yaml(f) => f.to_path_buf(),
        _ => [TRIPOSR_SAFETENSORS_FILE, TRIPOSR_CKPT_FILE]
            .iter()
            .map(|name| dir.join(name))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                missing(format!(
                    "{} holds neither {TRIPOSR_CKPT_FILE} nor {TRIPOSR_SAFETENSORS_FILE}",
                    dir.display()
                ))
            })?,
    };
    Ok(TripoSrWeights { config, weights })
}

/// TripoSR's snapshot in the local Hugging Face cache, if complete (no network).
pub fn find_cached_triposr() -> Option<TripoSrWeights> {
    cached_triposr(&hf_cache_dir()?)
}

/// [`find_cached_triposr`] in a given cache directory.
pub fn cached_triposr(cache: &Path) -> Option<TripoSrWeights> {
    triposr_weights_at(&cached_snapshot(cache, TRIPOSR_REPO)?).ok()
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

    #[test]
    fn triposr_locations_resolve_or_name_what_is_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let err = triposr_weights_at(d).expect_err("empty");
        assert_eq!(err.code(), "ERR_WEIGHTS_NOT_FOUND");
        assert!(err.to_string().contains("config.yaml"), "{err}");
        assert!(
            err.to_string().contains("fetch-model --model triposr"),
            "{err}"
        );
        touch(&d.join(TRIPOSR_CONFIG_FILE));
        let err = triposr_weights_at(d).expect_err("no weights");
        assert!(
            err.to_string()
                .contains("neither model.ckpt nor model.safetensors"),
            "{err}"
        );
        touch(&d.join(TRIPOSR_CKPT_FILE));
        let want = TripoSrWeights {
            config: d.join(TRIPOSR_CONFIG_FILE),
            weights: d.join(TRIPOSR_CKPT_FILE),
        };
        assert_eq!(triposr_weights_at(d).expect("dir"), want);
        assert_eq!(
            triposr_weights_at(&d.join(TRIPOSR_CKPT_FILE)).expect("file"),
            want
        );
        assert_eq!(
            triposr_weights_at(&d.join(TRIPOSR_CONFIG_FILE)).expect("yaml"),
            want
        );
        touch(&d.join(TRIPOSR_SAFETENSORS_FILE));
        assert!(triposr_weights_at(d)
            .expect("both")
            .weights
            .ends_with(TRIPOSR_SAFETENSORS_FILE));
        let other = tempfile::tempdir().expect("tempdir");
        touch(&other.path().join(TRIPOSR_CKPT_FILE));
        let err = triposr_weights_at(&other.path().join(TRIPOSR_CKPT_FILE)).expect_err("no yaml");
        assert!(
            err.to_string().contains("config.yaml does not exist"),
            "{err}"
        );
    }

    #[test]
    fn triposr_is_found_in_the_hugging_face_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(cached_triposr(dir.path()).is_none());
        let repo = dir.path().join("models--stabilityai--TripoSR");
        std::fs::create_dir_all(repo.join("refs")).expect("mkdir");
        std::fs::write(repo.join("refs/main"), "r1\n").expect("write");
        touch(&repo.join("snapshots/r1").join(TRIPOSR_CONFIG_FILE));
        assert!(cached_triposr(dir.path()).is_none(), "weights missing");
        touch(&repo.join("snapshots/r1").join(TRIPOSR_CKPT_FILE));
        let found = cached_triposr(dir.path()).expect("found");
        assert!(found.weights.ends_with("snapshots/r1/model.ckpt"));
        let spec = model_spec("triposr").expect("known");
        assert_eq!(
            (spec.kind, spec.license, spec.repo_id),
            (ModelKind::TripoSr, "MIT", TRIPOSR_REPO)
        );
        assert_eq!(spec.files, &["config.yaml", "model.ckpt"]);
        assert_eq!(
            model_spec("depth-anything-v2-small").expect("da").kind,
            ModelKind::DepthAnything
        );
    }
}
