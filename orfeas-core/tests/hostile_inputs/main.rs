//! Generated hostile input on stable Rust (proptest): every untrusted input of the core gets
//! a clear, coded error or a valid result, never a panic and never an allocation sized by a
//! header's claim.
//!
//! - `images`: the image decoder on valid images mutated (bit flips, truncation, junk EXIF and
//!   chunks, declared dimensions beyond the limits) and on random bytes.
//! - `meshes`: every exporter on random meshes (degenerate triangles, huge coordinates),
//!   read back by the independent readers of `export_roundtrip.rs`; NaN/inf coordinates or
//!   UVs, out-of-range indices and empty meshes are `ERR_EXPORT`, never a file.
//! - `solids`: height field → closed solid over random masks and heights: printable or
//!   `ERR_MESHING`.
//! - `weights`: the Depth Anything, TripoSR and BiRefNet loaders on mutated configs and
//!   checkpoints (the tiny fixtures as seeds).
//! - `regressions`: each failure these properties found, minimised, as a plain test.
//!
//! The number of cases per property is small by default (the whole binary takes seconds);
//! `ORFEAS_FUZZ_CASES=N` (or `PROPTEST_CASES`) runs every property N times instead, as
//! `scripts/fuzz.sh` does. `PROPTEST_RNG_SEED` replays a run.
#![allow(clippy::unwrap_used)]

mod alloc_cap;
mod images;
mod meshes;
mod regressions;
mod solids;
mod weights;

use proptest::test_runner::Config;

/// The proptest configuration of a property whose normal budget is `default_cases`.
pub fn config(default_cases: u32) -> Config {
    let from_env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u32>().ok());
    let cases = from_env("ORFEAS_FUZZ_CASES")
        .or_else(|| from_env("PROPTEST_CASES"))
        .unwrap_or(default_cases);
    Config {
        cases,
        // Failures become named tests in `regressions.rs`, not files proptest writes.
        failure_persistence: None,
        ..Config::default()
    }
}
