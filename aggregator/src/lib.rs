//! The envparity aggregator and CLI.
#![forbid(unsafe_code)]

pub mod history;
pub mod parity;
pub mod store;
