//! The checkpoint: `model.safetensors` in the published layout, read tensor by tensor with every
//! failure naming the file and the tensor (ERR_WEIGHTS_INVALID).

use std::path::{Path, PathBuf};

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor};

use crate::error::{OrfeasError, Result};

/// The open checkpoint.
pub(super) struct Weights {
    file: MmapedSafetensors,
    path: PathBuf,
    device: Device,
}

impl Weights {
    pub(super) fn open(path: &Path, device: &Device) -> Result<Self> {
        // SAFETY: the file is mapped read-only; orfeas never writes weight files, and a file
        // changed underneath a running process is outside what any loader can defend against.
        #[allow(unsafe_code)]
        let file =
            unsafe { MmapedSafetensors::new(path) }.map_err(|e| OrfeasError::WeightsInvalid {
                path: path.to_path_buf(),
                detail: format!("not a readable safetensors file: {e}"),
            })?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            device: device.clone(),
        })
    }

    pub(super) fn invalid(&self, detail: impl Into<String>) -> OrfeasError {
        OrfeasError::WeightsInvalid {
            path: self.path.clone(),
            detail: detail.into(),
        }
    }

    /// Whether the checkpoint holds `name`.
    pub(super) fn has(&self, name: &str) -> bool {
        self.file.get(name).is_ok()
    }

    /// `name` as f32 on the device, with `rank` dimensions.
    pub(super) fn get(&self, name: &str, rank: usize) -> Result<Tensor> {
        let Ok(view) = self.file.get(name) else {
            return Err(self.invalid(format!("tensor {name} is missing")));
        };
        // No bytes, so the format's checks pass it, whatever its other dimensions claim; sizes
        // read off it would be unbounded (and candle's strides overflow on it).
        if view.shape().contains(&0) {
            return Err(self.invalid(format!(
                "tensor {name} has shape {:?}: no elements",
                view.shape()
            )));
        }
        let t = self
            .file
            .load(name, &self.device)
            .map_err(|e| self.invalid(format!("tensor {name}: {e}")))?;
        if !matches!(t.dtype(), DType::F32 | DType::F16 | DType::BF16) {
            return Err(self.invalid(format!(
                "tensor {name} is {:?}, not a float type",
                t.dtype()
            )));
        }
        if t.rank() != rank {
            return Err(self.invalid(format!(
                "tensor {name} has shape {:?}, expected {rank} dimensions",
                t.dims()
            )));
        }
        t.to_dtype(DType::F32)
            .map_err(|e| self.invalid(format!("tensor {name}: {e}")))
    }

    /// `name` with exactly `dims`.
    pub(super) fn get_shaped(&self, name: &str, dims: &[usize]) -> Result<Tensor> {
        let t = self.get(name, dims.len())?;
        if t.dims() != dims {
            return Err(self.invalid(format!(
                "tensor {name} has shape {:?}, expected {dims:?}",
                t.dims()
            )));
        }
        Ok(t)
    }
}
