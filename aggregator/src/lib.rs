//! The envparity aggregator and CLI.
//!
//! A report enters at [`server`] (`ReportService`), is validated, stored by
//! [`store`] and folded into the fleet; verdicts leave through [`server`]
//! (`QueryService`), computed by the pure [`parity`] engine, and are printed
//! by [`cli`].
#![forbid(unsafe_code)]

pub mod alert;
pub mod certs;
pub mod cli;
pub mod config;
pub mod fleet;
pub mod history;
pub mod metrics;
pub mod parity;
pub mod server;
pub mod store;
