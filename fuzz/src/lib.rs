//! Shared parts of envparity's fuzz targets (`fuzz_targets/`): hostile
//! strings, generated reports over a small realistic fleet, the real SQLite
//! store reset per input, and the properties of the CLI's output.
//!
//! Run them with `scripts/fuzz.sh`; docs/security.md records the last run.
#![forbid(unsafe_code)]

pub mod fleet;
pub mod render;
pub mod report;
pub mod store;
pub mod text;
