//! The parity engine: host snapshots and a policy in, findings out.
//!
//! Pure code by design — no I/O, no clock, no async. Everything the engine
//! needs (the snapshots, which hosts are current, the policy, "now") is passed
//! in, so every verdict can be unit- and property-tested in milliseconds, and
//! the server and the CLI share one implementation.
//!
//! - [`evaluate`] computes the findings of a [`Scope`] (every kind is listed in
//!   [`Kind`] and explained in `docs/findings.md`);
//! - a [`Ledger`] tracks them over time (first/last seen, opened/resolved),
//!   and [`judge`] says whether each is pending, active or waived;
//! - [`explain`] says what is known about why two images differ.

pub mod digest;
mod env;
mod evaluate;
pub mod explain;
mod finding;
pub mod gate;
mod ledger;
mod order;
pub mod policy;
pub mod runtime;

pub use evaluate::{HOST_FACT_COUNT, HeldContainer, HostView, Scope, evaluate, host_fact_values};
pub use finding::{
    Basis, Finding, FindingKey, Kind, Severity, Side, State, Status, UnknownName, WaiverNote,
};
pub use ledger::{
    Cover, Delta, Entry, HostLevel, Ledger, Observation, Seen, Transition, judge, judged_state,
    judged_until,
};
pub use order::{Position, Tally, order, sort};
pub use policy::{Level, Policy, PolicyError};
