//! Node.js bindings for orfeas (`npm install orfeas`), built with napi-rs.
//!
//! Thin wrappers over `orfeas-core`, one module per concept. Every call that does real work
//! returns a Promise and runs on a worker thread, so the event loop never blocks; progress comes
//! back through a thread-safe function; errors are `Error` objects with the core's stable `code`.
//! The TypeScript types (`index.d.ts`) are generated from these modules by `napi build`.

// Under `cfg(test)` (which `cargo clippy --all-targets` checks even with `test = false`) the
// `#[napi]` macros register nothing, so every export looks unused to the compiler.
#![cfg_attr(test, allow(dead_code))]

mod abort;
mod batch;
mod depth;
mod errors;
mod gpu;
mod input;
mod mesh;
mod options;
mod progress;
mod promise;
mod single;
