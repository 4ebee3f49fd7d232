//! Core errors become instances of the exception classes in `orfeas.errors`.
//!
//! The classes live in Python (so they can subclass both `OrfeasError` and `ValueError` or
//! `OSError`); this side only looks one up by the core's stable `code()` and instantiates it.

use orfeas_core::OrfeasError;
use pyo3::prelude::*;

/// The Python exception for a core error: `orfeas.errors.error_from_code(code, message)`.
pub(crate) fn to_py_err(e: OrfeasError) -> PyErr {
    Python::attach(|py| {
        let build = || -> PyResult<PyErr> {
            let exc = py
                .import("orfeas.errors")?
                .getattr("error_from_code")?
                .call1((e.code(), e.to_string()))?;
            Ok(PyErr::from_value(exc))
        };
        // If the Python half cannot be imported, that import error is the more useful one.
        build().unwrap_or_else(|import_failed| import_failed)
    })
}

/// Shorthand for `Result<T, OrfeasError>` → `PyResult<T>`.
pub(crate) trait IntoPyResult<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, OrfeasError> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py_err)
    }
}

/// An `InvalidInputError` (also a `ValueError`) with this message.
pub(crate) fn invalid_input(message: impl Into<String>) -> PyErr {
    to_py_err(OrfeasError::InvalidInput(message.into()))
}
