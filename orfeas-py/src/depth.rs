//! `orfeas.estimate_depth`: the depth map alone, as a float32 numpy array.

use std::path::PathBuf;

use numpy::{PyArray1, PyArray2, PyArrayMethods};
use orfeas_core::{
    estimate_depth as core_estimate_depth, DepthSetup, Device, GenerateSettings, ImageLimits,
};
use pyo3::prelude::*;

use crate::cancel::{token_of, PyCancelToken};
use crate::errors::IntoPyResult;
use crate::options::parse;
use crate::source::extract;
use crate::worker::run_on_worker;

/// The estimator's raw output for one image at its original size, float32 `[H, W]` (what
/// `depth.npy` holds): Depth Anything's relative inverse depth (larger = closer), or the
/// weight-free estimators' heights in [0, 1]. `quality` sets the working and model resolution.
#[pyfunction]
#[pyo3(signature = (image, depth="auto", quality="medium", weights=None, device="auto", cancel=None))]
pub(crate) fn estimate_depth<'py>(
    py: Python<'py>,
    image: Bound<'py, PyAny>,
    depth: &str,
    quality: &str,
    weights: Option<PathBuf>,
    device: &str,
    cancel: Option<PyRef<'py, PyCancelToken>>,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let settings = GenerateSettings {
        quality: parse(quality)?,
        ..GenerateSettings::default()
    };
    let method = parse(depth)?;
    let device: Device = parse(device)?;
    let source = extract(&image, 0)?;
    let token = token_of(cancel.as_deref());
    let worker_token = token.clone();
    let map = run_on_worker(py, &token, None, move |_sink| {
        let source = source.into_source()?;
        // The device is opened (and the weights loaded) on the worker: both can take seconds.
        let setup = DepthSetup::resolve_on(method, weights.as_deref(), device.resolve()?, 1)?;
        core_estimate_depth(
            &source,
            &settings,
            &setup,
            &ImageLimits::default(),
            &worker_token,
        )
    })?
    .py_err()?;
    let (height, width) = (map.height as usize, map.width as usize);
    PyArray1::from_vec(py, map.values).reshape([height, width])
}
