//! `orfeas.JobResult`: one job's outcome, as in the CLI's `--json` summary.

use orfeas_core::{JobResult, JobStatus};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// How one job ended. `status` is `"complete"`, `"error"` or `"cancelled"`; `outputs` are the
/// written files (main file first); `error`/`code` say why a job failed (`code` is the
/// `ERR_…` of the matching `orfeas.OrfeasError` subclass).
#[pyclass(module = "orfeas._orfeas", name = "JobResult", frozen, get_all)]
#[derive(Clone, Debug)]
pub(crate) struct PyJobResult {
    pub job_id: String,
    pub input: String,
    pub outputs: Vec<String>,
    /// Format name of each entry of `outputs` (`stl`, `obj`, `mtl`, `png`, ...).
    pub output_formats: Vec<String>,
    pub status: String,
    pub error: Option<String>,
    pub code: Option<String>,
    pub depth: Option<String>,
    /// How the shape was made (`relief`, `inflate`, `depth-anything`, `triposr`).
    pub method: Option<String>,
    pub mask: Option<String>,
    /// The marching-cubes grid of an object (`None` for reliefs).
    pub resolution: Option<usize>,
    pub warnings: Vec<String>,
    pub triangles: usize,
    pub watertight: bool,
    pub seconds: f64,
}

impl From<JobResult> for PyJobResult {
    fn from(r: JobResult) -> Self {
        let status = match r.status {
            JobStatus::Complete => "complete",
            JobStatus::Error => "error",
            JobStatus::Cancelled => "cancelled",
        };
        let mask = r
            .mask
            .and_then(|m| serde_json::to_value(m).ok())
            .and_then(|v| v.as_str().map(str::to_owned));
        Self {
            job_id: r.id.0,
            input: r.input,
            outputs: r
                .outputs
                .iter()
                .map(|o| o.path.display().to_string())
                .collect(),
            output_formats: r.outputs.iter().map(|o| o.format.clone()).collect(),
            status: status.to_owned(),
            error: r.error,
            code: r.code.map(str::to_owned),
            depth: r.depth.map(str::to_owned),
            method: r.method.map(str::to_owned),
            mask,
            resolution: r.resolution,
            warnings: r.warnings,
            triangles: r.triangles,
            watertight: r.watertight,
            seconds: r.seconds,
        }
    }
}

#[pymethods]
impl PyJobResult {
    /// `True` when the job completed.
    #[getter]
    fn ok(&self) -> bool {
        self.status == "complete"
    }

    /// The fields as a dict (the shape of one `jobs` entry of `orfeas generate --json`).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("job_id", &self.job_id)?;
        d.set_item("input", &self.input)?;
        d.set_item("outputs", &self.outputs)?;
        d.set_item("status", &self.status)?;
        d.set_item("error", &self.error)?;
        d.set_item("code", &self.code)?;
        d.set_item("depth", &self.depth)?;
        d.set_item("method", &self.method)?;
        d.set_item("mask", &self.mask)?;
        d.set_item("resolution", self.resolution)?;
        d.set_item("warnings", &self.warnings)?;
        d.set_item("triangles", self.triangles)?;
        d.set_item("watertight", self.watertight)?;
        d.set_item("seconds", self.seconds)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        match &self.error {
            Some(e) => format!("JobResult(input={:?}, status={:?}, code={:?}, error={:?})", self.input, self.status, self.code.as_deref().unwrap_or(""), e),
            None => format!(
                "JobResult(input={:?}, status={:?}, outputs={:?}, method={:?}, triangles={}, seconds={:.3})",
                self.input,
                self.status,
                self.outputs,
                self.method.as_deref().unwrap_or(""),
                self.triangles,
                self.seconds
            ),
        }
    }
}
