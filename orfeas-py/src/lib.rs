//! `orfeas._orfeas`: the native half of the Python package `orfeas`.
//!
//! Thin wrappers over `orfeas-core`, one file per concept. Every call converts its Python
//! arguments into owned Rust values, then runs the work on a worker thread while the calling
//! thread waits without the GIL (see [`worker`]): progress callbacks run on the calling thread,
//! and Ctrl-C cancels the work. The pure-Python package (`python/orfeas/`) adds input
//! normalisation (PIL images, directories), `run_async` and the command line.

mod cancel;
mod depth;
mod errors;
mod events;
mod gpu;
mod mesh;
mod options;
mod processor;
mod result;
mod source;
mod worker;

use pyo3::prelude::*;

#[pymodule]
fn _orfeas(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<processor::PyBatchProcessor>()?;
    m.add_class::<result::PyJobResult>()?;
    m.add_class::<mesh::PyMesh>()?;
    m.add_class::<cancel::PyCancelToken>()?;
    m.add_function(wrap_pyfunction!(mesh::image_to_mesh, m)?)?;
    m.add_function(wrap_pyfunction!(depth::estimate_depth, m)?)?;
    m.add_function(wrap_pyfunction!(gpu::gpu_stats, m)?)?;
    m.add_function(wrap_pyfunction!(mesh::formats, m)?)?;
    Ok(())
}
