//! Helpers shared by the integration tests (each test file that needs one says `mod common;`).

pub mod gpu;
