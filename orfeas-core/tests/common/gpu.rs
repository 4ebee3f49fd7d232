//! Tests that need a CUDA device run wherever one opens, and never pass silently where none
//! does.
//!
//! A test that returned early without a GPU would look green on every machine, including a GPU
//! machine whose driver set-up broke. So a skip is said out loud, on the process's own stderr,
//! and `ORFEAS_REQUIRE_GPU=1` (set it on GPU runners) turns it into a failure.

use std::io::Write;

/// The variable that makes a missing GPU a failure instead of a skip.
pub const REQUIRE_GPU: &str = "ORFEAS_REQUIRE_GPU";

/// Whether `cuda:0` opens, so that `test` can run on it.
///
/// When it does not (no device, no driver, or a build without the `cuda` feature): with
/// `ORFEAS_REQUIRE_GPU=1` this panics, failing the test; otherwise it writes
/// `SKIPPED: <test>: no CUDA device (<why>)` and returns `false`. The line goes straight to
/// stderr, not through `eprintln!`, because the test harness captures `eprintln!` output of
/// passing tests and the skip must show in every run.
pub fn cuda_or_skip(test: &str) -> bool {
    let why = match orfeas_core::Device::Cuda(0).resolve() {
        Ok(_) => return true,
        Err(e) => e.to_string(),
    };
    if std::env::var(REQUIRE_GPU).as_deref() == Ok("1") {
        panic!("{test}: {REQUIRE_GPU}=1 but there is no CUDA device ({why})");
    }
    let line =
        format!("SKIPPED: {test}: no CUDA device ({why}); set {REQUIRE_GPU}=1 to fail instead\n");
    // Best effort: a closed stderr must not fail the test it explains.
    let _ = std::io::stderr().write_all(line.as_bytes());
    false
}
