//! Depth Anything V2 as a [`DepthEstimator`]: one loaded model shared by every slot.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;

use super::preprocess::{depth_to_size, preprocess, PreprocessOptions};
use super::weights::{build, read_checkpoint};
use super::{internal, DepthAnythingV2};
use crate::cancel::CancelToken;
use crate::depth::{DepthEstimator, HeightMap};
use crate::error::Result;
use crate::image::LoadedImage;
use crate::mask::Mask;
use crate::raster::{check_image, mask_bits, normalize_robust};

/// The model plus the input size to run it at. Cloning shares the weights.
#[derive(Clone)]
pub struct DepthAnythingEstimator {
    replicas: Arc<Vec<Replica>>,
    options: PreprocessOptions,
}

/// One copy of the weights on one device (on CUDA: on its own stream).
struct Replica {
    model: DepthAnythingV2,
    /// Held while a forward runs on a CUDA replica, so each stream serves one job at a time.
    in_use: Mutex<()>,
}

impl std::fmt::Debug for DepthAnythingEstimator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DepthAnythingEstimator")
            .field("replicas", &self.replicas.len())
            .field(
                "device",
                &self
                    .replicas
                    .first()
                    .map(|r| format!("{:?}", r.model.device().location())),
            )
            .field("options", &self.options)
            .finish()
    }
}

/// Spreads waiting jobs over the replicas when every stream is busy.
static NEXT_REPLICA: AtomicUsize = AtomicUsize::new(0);

impl DepthAnythingEstimator {
    /// Loads a checkpoint directory or file (see [`crate::models::weights_at`]) onto the CPU.
    pub fn load_cpu(path: &Path) -> Result<Self> {
        Self::load(path, crate::Device::Cpu, 1)
    }

    /// Loads the weights for `slots` concurrent jobs on `device`. On the CPU one copy is shared
    /// (a forward only reads the weights, and the CPU pool is shared anyway); on CUDA each slot
    /// gets its own copy on its own stream, so forwards of different jobs overlap on the GPU
    /// while the other stages of those jobs run on the CPU.
    pub fn load(path: &Path, device: crate::Device, slots: usize) -> Result<Self> {
        let copies = match device {
            crate::Device::Cuda(_) => slots.max(1),
            crate::Device::Cpu | crate::Device::Auto => 1,
        };
        // Read (and for the authors' layout, renamed) once, whatever the number of copies.
        let (config, tensors, location) = read_checkpoint(path)?;
        let replicas = (0..copies)
            .map(|_| {
                let vb =
                    VarBuilder::from_tensors(tensors.clone(), DType::F32, &device.candle_device()?);
                Ok(Replica {
                    model: build(config.clone(), vb, &location)?,
                    in_use: Mutex::new(()),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            replicas: Arc::new(replicas),
            options: PreprocessOptions::default(),
        })
    }

    /// The same weights run at another processor size (the quality presets' `model_size`).
    pub fn with_target(&self, target: u32) -> Self {
        Self {
            replicas: Arc::clone(&self.replicas),
            options: PreprocessOptions {
                target,
                ..self.options
            },
        }
    }

    /// Runs the model on `image` (any size: it is resized as the reference processor does, so
    /// pass the full-resolution input to match transformers on the same file).
    pub fn predict(&self, image: &LoadedImage, cancel: &CancelToken) -> Result<Prediction> {
        check_image(image)?;
        let pre = preprocess(&image.rgba, image.width, image.height, 4, &self.options)?;
        cancel.check()?;
        let depth = match self.replicas.as_slice() {
            [only] if !only.model.device().is_cuda() => {
                only.model.forward(&pre.to_tensor(only.model.device())?)?
            }
            _ => {
                let (replica, _stream) = self.acquire();
                replica
                    .model
                    .forward(&pre.to_tensor(replica.model.device())?)?
            }
        };
        cancel.check()?;
        Ok(Prediction {
            depth: depth.squeeze(0).map_err(internal)?,
        })
    }

    /// A free replica (its stream idle), else waits for one.
    fn acquire(&self) -> (&Replica, MutexGuard<'_, ()>) {
        for replica in self.replicas.iter() {
            match replica.in_use.try_lock() {
                Ok(guard) => return (replica, guard),
                Err(TryLockError::Poisoned(p)) => return (replica, p.into_inner()),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        let replica =
            &self.replicas[NEXT_REPLICA.fetch_add(1, Ordering::Relaxed) % self.replicas.len()];
        (
            replica,
            replica.in_use.lock().unwrap_or_else(|p| p.into_inner()),
        )
    }
}

/// The model's relative inverse depth (larger = closer) at the model's own resolution.
#[derive(Clone, Debug)]
pub struct Prediction {
    depth: Tensor,
}

impl Prediction {
    /// A prediction made of `depth` (`[h, w]`), for tests of what follows the model.
    #[cfg(test)]
    pub(crate) fn from_tensor(depth: Tensor) -> Self {
        Self { depth }
    }

    /// The raw prediction resampled to `width`×`height`, as transformers'
    /// `post_process_depth_estimation(target_sizes=...)` does it (bicubic, unnormalised).
    pub fn at_size(&self, width: u32, height: u32) -> Result<HeightMap> {
        let data = depth_to_size(&self.depth, width, height)?;
        HeightMap::new(width, height, data)
    }
}

impl DepthEstimator for DepthAnythingEstimator {
    fn name(&self) -> &'static str {
        "depth-anything"
    }

    /// Relative inverse depth (larger = closer) at the image's size, normalised to [0, 1]
    /// between its 1st and 99th percentiles over the mask, so a few outliers do not flatten
    /// the relief.
    fn estimate(
        &self,
        image: &LoadedImage,
        mask: &Mask,
        cancel: &CancelToken,
    ) -> Result<HeightMap> {
        let raw = self
            .predict(image, cancel)?
            .at_size(image.width, image.height)?;
        Ok(heights_from_raw(raw, mask))
    }
}

/// Normalises raw depth to [0, 1] between its 1st and 99th percentiles over the mask, so a few
/// outliers do not flatten the relief.
pub(crate) fn heights_from_raw(mut raw: HeightMap, mask: &Mask) -> HeightMap {
    let bits = mask_bits(mask, raw.width() as usize, raw.height() as usize);
    normalize_robust(raw.values_mut(), &bits, 0.01, 0.99);
    raw
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_fixture_gives_a_finite_normalised_map() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/depth_anything/tiny");
        let est = DepthAnythingEstimator::load_cpu(&dir)
            .expect("tiny weights load")
            .with_target(98);
        let (w, h) = (60u32, 40u32);
        let rgba: Vec<u8> = (0..w * h)
            .flat_map(|i| [(i % 251) as u8, (i / 7 % 256) as u8, 90, 255])
            .collect();
        let image = LoadedImage {
            name: "t".into(),
            width: w,
            height: h,
            luma: vec![0.5; (w * h) as usize],
            rgba,
            has_alpha: false,
            gray16: false,
        };
        let map = est
            .estimate(&image, &Mask::full(w, h), &CancelToken::new())
            .expect("estimate");
        assert_eq!(
            (map.width, map.height, map.data.len()),
            (w, h, (w * h) as usize)
        );
        assert!(map
            .data
            .iter()
            .all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
        assert!(
            map.data.iter().any(|&v| v > 0.9) && map.data.iter().any(|&v| v < 0.1),
            "uses the range"
        );
    }
}
