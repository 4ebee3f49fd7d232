//! Loading a checkpoint: the transformers layout (`config.json` + `model.safetensors`, as in
//! `depth-anything/Depth-Anything-V2-Small-hf` and -Base-hf, -Large-hf) or the authors' layout
//! (`depth_anything_v2_vits.pth` or `.safetensors`, see `original.rs`). Where the files
//! are is decided by [`crate::models::weights_at`]; the layout by the tensor names.
//!
//! Files are read into memory rather than memory-mapped: mapping is `unsafe` in candle (the file
//! must not change underneath), the workspace denies `unsafe_code`, and the Small checkpoint is
//! only ~100 MB. PyTorch pickles are read by candle's own unpickler, which rebuilds tensors and
//! never runs code from the file.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use super::config::DepthAnythingConfig;
use super::model::DepthAnythingV2;
use super::original;
use crate::error::{OrfeasError, Result};
use crate::models::{self, CONFIG_FILE};

/// How to obtain weights, appended to every "weights not found" message.
pub const WEIGHTS_HINT: &str = "a Depth Anything V2 checkpoint is a directory with `config.json` and \
    `model.safetensors` in the Hugging Face transformers layout (get it with `orfeas fetch-model`, or \
    download the files of `depth-anything/Depth-Anything-V2-Small-hf` into one directory), or the \
    authors' `depth_anything_v2_vits.pth`; pass either with --weights";

fn unusable(path: &Path, what: impl std::fmt::Display) -> OrfeasError {
    OrfeasError::WeightsNotFound(format!("{}: {what}; {WEIGHTS_HINT}", path.display()))
}

/// Reads and validates a transformers `config.json`.
pub fn load_config(file: &Path) -> Result<DepthAnythingConfig> {
    let text = std::fs::read(file).map_err(|source| OrfeasError::Io {
        path: file.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(text).map_err(|e| unusable(file, format!("not UTF-8: {e}")))?;
    DepthAnythingConfig::from_json(&text)
        .map_err(|e| unusable(file, format!("not a usable Depth Anything config: {e}")))
}

/// Loads the model in `f32` on `device` from a checkpoint directory or file (see
/// [`models::weights_at`]).
pub fn load_model(path: &Path, device: &Device) -> Result<DepthAnythingV2> {
    load_model_with_dtype(path, device, DType::F32)
}

/// Loads the model with the given parameter dtype (`F32`; `F16`/`BF16` for CUDA).
pub fn load_model_with_dtype(
    path: &Path,
    device: &Device,
    dtype: DType,
) -> Result<DepthAnythingV2> {
    let (config, tensors, location) = read_checkpoint(path)?;
    build(
        config,
        VarBuilder::from_tensors(tensors, dtype, device),
        &location,
    )
}

/// Builds the model from what [`read_checkpoint`] read: a tensor missing or of the wrong shape
/// is ERR_WEIGHTS_NOT_FOUND naming the checkpoint and the configuration it was read with.
pub(crate) fn build(
    config: DepthAnythingConfig,
    vb: VarBuilder,
    location: &models::WeightsLocation,
) -> Result<DepthAnythingV2> {
    DepthAnythingV2::new(config, vb).map_err(|e| match e {
        OrfeasError::WeightsNotFound(detail) => {
            let config = location
                .config
                .as_ref()
                .map(|c| format!(" with {}", c.display()))
                .unwrap_or_default();
            OrfeasError::WeightsNotFound(format!(
                "{}{config}: {detail}",
                location.weights.display()
            ))
        }
        other => other,
    })
}

/// The configuration and the tensors (CPU, transformers names) of a checkpoint directory or
/// file, read once, and where they were found; callers building several replicas clone the
/// map (the tensors are shared).
pub(crate) fn read_checkpoint(
    path: &Path,
) -> Result<(
    DepthAnythingConfig,
    HashMap<String, Tensor>,
    models::WeightsLocation,
)> {
    let location = models::weights_at(path)?;
    let file = location.weights.as_path();
    let tensors = read_tensors(file)?;
    let config_file = location.config.as_deref();
    let (config, tensors) = if original::is_original_layout(&tensors) {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let config = match config_file {
            Some(c) => load_config(c)?,
            None => original::config_for(|n| tensors.get(n).map(|t| t.dims().to_vec()), &name)
                .map_err(|e| unusable(file, e))?,
        };
        tracing::info!(
            "{}: the authors' checkpoint layout, architecture from {} (hidden {}, out indices {:?}, {:?} depth)",
            file.display(),
            config_file.map_or("the weights and the file name".to_owned(), |c| c.display().to_string()),
            config.backbone_config.hidden_size,
            config.backbone_config.out_indices,
            config.depth_estimation_type,
        );
        let renamed = original::to_transformers_layout(tensors, config.backbone_config.hidden_size)
            .map_err(|e| unusable(file, e))?;
        (config, renamed)
    } else {
        let config_file = config_file.ok_or_else(|| {
            unusable(file, format!("transformers-layout weights need the {CONFIG_FILE} that came with them, beside the file"))
        })?;
        (load_config(config_file)?, tensors)
    };
    Ok((config, tensors, location))
}

/// Every tensor of a safetensors file or a PyTorch pickle, on the CPU, contiguous.
fn read_tensors(file: &Path) -> Result<HashMap<String, Tensor>> {
    let is_safetensors = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("safetensors"));
    let tensors = if is_safetensors {
        let bytes = std::fs::read(file).map_err(|source| OrfeasError::Io {
            path: file.to_path_buf(),
            source,
        })?;
        let unreadable = |e: candle_core::Error| {
            unusable(
                file,
                format!("not a readable safetensors file: {}", super::root(&e)),
            )
        };
        let st = candle_core::safetensors::SliceSafetensors::new(&bytes).map_err(unreadable)?;
        let views = st.tensors();
        // No bytes, so the format's checks pass it, whatever its other dimensions claim (and
        // candle's strides overflow on it).
        if let Some((name, view)) = views.iter().find(|(_, v)| v.shape().contains(&0)) {
            return Err(unusable(
                file,
                format!("tensor {name} has shape {:?}: no elements", view.shape()),
            ));
        }
        views
            .iter()
            .map(|(name, _)| Ok((name.clone(), st.load(name, &Device::Cpu)?)))
            .collect::<candle_core::Result<HashMap<_, _>>>()
            .map_err(unreadable)?
    } else {
        candle_core::pickle::read_all(file)
            .map_err(|e| {
                unusable(
                    file,
                    format!("not a readable PyTorch checkpoint: {}", super::root(&e)),
                )
            })?
            .into_iter()
            .collect()
    };
    if tensors.is_empty() {
        return Err(unusable(file, "holds no tensors"));
    }
    tensors
        .into_iter()
        .map(|(name, t)| t.contiguous().map(|t| (name, t)).map_err(super::internal))
        .collect()
}
