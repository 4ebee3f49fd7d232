//! `orfeas._orfeas.BatchProcessor`: the core's slot scheduler, driven from Python.

use std::path::PathBuf;
use std::sync::Arc;

use orfeas_core::{BatchConfig, BatchProcessor, Job};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::cancel::{token_of, PyCancelToken};
use crate::errors::IntoPyResult;
use crate::gpu::stats_to_dict;
use crate::options::{parse, parse_formats, parse_method, ShapeArgs};
use crate::result::PyJobResult;
use crate::source::{extract, PendingSource};
use crate::worker::run_on_worker;

/// Runs batches of jobs on `slots` concurrent slots; the method's model (Depth Anything or
/// TripoSR, if it needs one) and the background remover (BiRefNet, from `segmenter_weights` or
/// the Hugging Face cache) are loaded once here and shared by every batch. Thread-safe:
/// several threads may call `run` at once.
#[pyclass(module = "orfeas._orfeas", name = "BatchProcessor", frozen)]
#[derive(Debug)]
pub(crate) struct PyBatchProcessor {
    inner: Arc<BatchProcessor>,
}

#[pymethods]
impl PyBatchProcessor {
    #[new]
    #[pyo3(signature = (slots=None, device="auto", depth=None, weights=None, threads=None, method=None, segmenter_weights=None, durable=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        slots: Option<usize>,
        device: &str,
        depth: Option<&str>,
        weights: Option<PathBuf>,
        threads: Option<usize>,
        method: Option<&str>,
        segmenter_weights: Option<PathBuf>,
        durable: bool,
    ) -> PyResult<Self> {
        // `background` stays `auto`: BiRefNet is loaded when `segmenter_weights` names it (which
        // must then load) or its weights are cached, and each `run` picks its own background.
        // Leaving it out asks for the device's default; 0 is a mistake, not a request.
        if slots == Some(0) {
            return Err(crate::errors::invalid_input(
                "slots must be at least 1 (leave it out for the default)",
            ));
        }
        let config = BatchConfig {
            slots: slots.unwrap_or(orfeas_core::batch::AUTO_SLOTS),
            device: parse(device)?,
            method: parse_method(method, depth)?,
            weights,
            threads,
            segmenter_weights,
            durable,
            ..BatchConfig::default()
        };
        // Loading weights can take seconds: without the GIL.
        let inner = py.detach(move || BatchProcessor::new(config)).py_err()?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Number of slots.
    #[getter]
    fn slots(&self) -> usize {
        self.inner.slots()
    }

    /// The resolved device (`cpu`, or `cuda:N` in a build with the `cuda` feature).
    #[getter]
    fn device(&self) -> String {
        self.inner.device().to_string()
    }

    /// The requested method (`auto`, `relief`, `inflate`, `depth-anything`, `triposr`).
    #[getter]
    fn method(&self) -> &'static str {
        self.inner.config().method.as_str()
    }

    /// The requested method under its 2.5D name (the same value as `method`).
    #[getter]
    fn depth(&self) -> &'static str {
        self.method()
    }

    /// The backgrounds `run` can use with what is loaded (`birefnet` only with BiRefNet).
    #[getter]
    fn backgrounds(&self) -> Vec<&'static str> {
        self.inner
            .available_backgrounds()
            .into_iter()
            .map(|b| b.as_str())
            .collect()
    }

    /// Slots running a job right now.
    #[getter]
    fn busy_slots(&self) -> usize {
        self.inner.busy_slots()
    }

    /// Jobs waiting for a slot.
    #[getter]
    fn queued(&self) -> usize {
        self.inner.queued()
    }

    /// `orfeas.gpu_stats()` plus `slots: {total, busy}` and `queue` (the `/api/gpu-stats` shape).
    fn gpu_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let stats = py.detach(orfeas_core::gpu_stats);
        let dict = stats_to_dict(py, &stats)?;
        let slots = PyDict::new(py);
        slots.set_item("total", self.inner.slots())?;
        slots.set_item("busy", self.inner.busy_slots())?;
        dict.set_item("slots", slots)?;
        dict.set_item("queue", self.inner.queued())?;
        Ok(dict)
    }

    /// Converts every input into files under `out_dir`; returns one `JobResult` per input, in
    /// input order. A failing input fails its own job only. Raises for arguments no job could
    /// use (unknown format, quality or background, out-of-range sizes; `background="birefnet"`
    /// without BiRefNet loaded), and `KeyboardInterrupt` after cancelling the batch on Ctrl-C.
    #[pyo3(signature = (inputs, out_dir, formats, quality="medium", on_progress=None, width_mm=100.0, depth_mm=20.0, base_mm=2.0, solid=true, max_error=None, max_triangles=None, cancel=None, resolution=None, keep_largest=false, background="auto"))]
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        py: Python<'_>,
        inputs: Vec<Bound<'_, PyAny>>,
        out_dir: PathBuf,
        formats: Vec<String>,
        quality: &str,
        on_progress: Option<Bound<'_, PyAny>>,
        width_mm: f32,
        depth_mm: f32,
        base_mm: f32,
        solid: bool,
        max_error: Option<f32>,
        max_triangles: Option<usize>,
        cancel: Option<PyRef<'_, PyCancelToken>>,
        resolution: Option<usize>,
        keep_largest: bool,
        background: &str,
    ) -> PyResult<Vec<PyJobResult>> {
        let shape = ShapeArgs {
            quality: quality.to_owned(),
            width_mm,
            depth_mm,
            base_mm,
            solid,
            max_error,
            max_triangles,
            resolution,
            keep_largest,
            background: background.to_owned(),
        };
        let settings = shape.settings(parse_formats(&formats)?)?;
        // A background no job could use fails the call, before any job (as a bad format does).
        self.inner.check_background(settings.background).py_err()?;
        let sources: Vec<PendingSource> = inputs
            .iter()
            .enumerate()
            .map(|(i, obj)| extract(obj, i))
            .collect::<PyResult<_>>()?;
        let token = token_of(cancel.as_deref());
        let inner = Arc::clone(&self.inner);
        let worker_token = token.clone();
        let results = run_on_worker(py, &token, on_progress.as_ref(), move |sink| {
            let jobs = sources
                .into_iter()
                .enumerate()
                .map(|(i, source)| {
                    Ok(Job::new(
                        format!("job-{}", i + 1),
                        source.into_source()?,
                        &out_dir,
                    ))
                })
                .collect::<orfeas_core::Result<Vec<Job>>>()?;
            inner.run(jobs, &settings, sink, &worker_token)
        })?
        .py_err()?;
        Ok(results.into_iter().map(PyJobResult::from).collect())
    }

    fn __repr__(&self) -> String {
        format!(
            "BatchProcessor(slots={}, device={:?}, method={:?})",
            self.inner.slots(),
            self.inner.device().to_string(),
            self.method()
        )
    }
}
