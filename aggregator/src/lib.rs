//! The envparity aggregator and CLI.
//!
//! A report enters at [`server`] (`ReportService`), is authenticated and
//! validated there, then folded into the [`fleet`], which re-evaluates what
//! it can change with the pure [`parity`] engine and stores it with
//! [`store`]; verdicts leave through [`server`] (`QueryService`), read from
//! the fleet, and are printed by [`cli`]. docs/architecture.md has the
//! module map.
#![forbid(unsafe_code)]

pub mod alert;
pub mod certs;
pub mod cli;
pub mod config;
pub mod fleet;
pub mod history;
pub mod links;
pub mod metrics;
pub mod parity;
pub mod server;
pub mod store;
pub mod web;
