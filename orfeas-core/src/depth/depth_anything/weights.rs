//! Loading a transformers checkpoint directory: `config.json` + `model.safetensors`, as
//! published in `depth-anything/Depth-Anything-V2-Small-hf` (and -Base-hf, -Large-hf).
//!
//! The safetensors file is read into memory rather than memory-mapped: mapping is `unsafe` in
//! candle (the file must not change underneath), the workspace denies `unsafe_code`, and the
//! Small checkpoint is only ~100 MB.

use std::path::Path;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use super::config::DepthAnythingConfig;
use super::model::DepthAnythingV2;
use crate::error::{OrfeasError, Result};

/// How to obtain weights, appended to every "weights not found" message.
pub const WEIGHTS_HINT: &str = "a Depth Anything V2 checkpoint directory holds `config.json` and \
    `model.safetensors` in the Hugging Face transformers layout; get them with `orfeas fetch-model` \
    or download the files of `depth-anything/Depth-Anything-V2-Small-hf` into one directory and \
    pass it with --weights";

const CONFIG: &str = "config.json";
const WEIGHTS: &str = "model.safetensors";

fn read(dir: &Path, name: &str) -> Result<Vec<u8>> {
    let path = dir.join(name);
    std::fs::read(&path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => {
            OrfeasError::WeightsNotFound(format!("{} is missing; {WEIGHTS_HINT}", path.display()))
        }
        _ => OrfeasError::Io { path, source },
    })
}

/// Reads and validates `dir/config.json`.
pub fn load_config(dir: &Path) -> Result<DepthAnythingConfig> {
    let text = read(dir, CONFIG)?;
    let text = String::from_utf8(text)
        .map_err(|e| OrfeasError::WeightsNotFound(format!("{}: not UTF-8: {e}", dir.join(CONFIG).display())))?;
    DepthAnythingConfig::from_json(&text).map_err(|e| {
        OrfeasError::WeightsNotFound(format!("{}: not a usable Depth Anything config: {e}", dir.join(CONFIG).display()))
    })
}

/// Loads the model in `f32` on `device` from a checkpoint directory.
pub fn load_model(dir: &Path, device: &Device) -> Result<DepthAnythingV2> {
    load_model_with_dtype(dir, device, DType::F32)
}

/// Loads the model with the given parameter dtype (`F32`; `F16`/`BF16` for CUDA).
pub fn load_model_with_dtype(dir: &Path, device: &Device, dtype: DType) -> Result<DepthAnythingV2> {
    if !dir.is_dir() {
        return Err(OrfeasError::WeightsNotFound(format!("{} is not a directory; {WEIGHTS_HINT}", dir.display())));
    }
    let config = load_config(dir)?;
    let bytes = read(dir, WEIGHTS)?;
    let vb = VarBuilder::from_buffered_safetensors(bytes, dtype, device).map_err(|e| {
        OrfeasError::WeightsNotFound(format!("{}: not a readable safetensors file: {e}", dir.join(WEIGHTS).display()))
    })?;
    DepthAnythingV2::new(config, vb)
}
