//! `orfeas.gpu_stats()`: NVIDIA GPU telemetry, `available=False` (with a reason) without one.

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::events::json_to_py;

/// GPU telemetry: `{"available": bool, "gpus": [{index, name, memory_used_mb, memory_total_mb,
/// utilization_percent, temperature_c}], "reason": str}` (`reason` only when unavailable).
#[pyfunction]
pub(crate) fn gpu_stats(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let stats = py.detach(orfeas_core::gpu_stats);
    stats_to_dict(py, &stats)
}

pub(crate) fn stats_to_dict<'py>(
    py: Python<'py>,
    stats: &orfeas_core::GpuStats,
) -> PyResult<Bound<'py, PyDict>> {
    let value = serde_json::to_value(stats).map_err(|e| {
        pyo3::exceptions::PyRuntimeError::new_err(format!("cannot serialise GPU stats: {e}"))
    })?;
    Ok(json_to_py(py, &value)?.cast_into::<PyDict>()?)
}
