//! Progress events as Python dicts: `{"event": name, **data}` with the same fields as the
//! WebSocket events' `data` (docs/reference.md §3), through the core's serde representation.

use orfeas_core::ProgressEvent;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList, PyString};
use serde_json::Value;

/// `{"event": "generation_progress", "job_id": ..., "stage": ..., ...}`.
pub(crate) fn event_to_dict<'py>(
    py: Python<'py>,
    event: &ProgressEvent,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("event", event.name())?;
    let value = serde_json::to_value(event).map_err(|e| {
        pyo3::exceptions::PyRuntimeError::new_err(format!("cannot serialise a progress event: {e}"))
    })?;
    if let Some(Value::Object(data)) = value.get("data") {
        for (key, v) in data {
            dict.set_item(key, json_to_py(py, v)?)?;
        }
    }
    Ok(dict)
}

/// A JSON value as the matching Python object (dict, list, str, int, float, bool, None).
pub(crate) fn json_to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (key, v) in map {
                dict.set_item(key, json_to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}
