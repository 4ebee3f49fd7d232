//! `orfeas.CancelToken`: lets Python code (another thread, an asyncio task) stop a running call.

use orfeas_core::CancelToken;
use pyo3::prelude::*;

/// A flag shared with a running `run`/`image_to_mesh`/`estimate_depth`: `cancel()` makes the
/// jobs stop at their next check (queued jobs never start; running ones leave no files).
#[pyclass(module = "orfeas._orfeas", name = "CancelToken", frozen)]
#[derive(Clone, Debug, Default)]
pub(crate) struct PyCancelToken {
    pub(crate) token: CancelToken,
}

#[pymethods]
impl PyCancelToken {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Asks every call using this token to stop; safe from any thread, idempotent.
    fn cancel(&self) {
        self.token.cancel();
    }

    /// Whether `cancel()` was called.
    #[getter]
    fn cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    fn __repr__(&self) -> String {
        format!(
            "CancelToken(cancelled={})",
            if self.token.is_cancelled() {
                "True"
            } else {
                "False"
            }
        )
    }
}

/// The token a call uses: the caller's, or a fresh one.
pub(crate) fn token_of(cancel: Option<&PyCancelToken>) -> CancelToken {
    cancel.map(|c| c.token.clone()).unwrap_or_default()
}
