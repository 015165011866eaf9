//! The parity engine: host snapshots in, findings out.
//!
//! Pure code by design — no I/O, no clock, no async. Everything the engine
//! needs (the snapshots, which hosts are current, which environment pairs to
//! compare) is passed in, so every verdict can be unit- and property-tested in
//! milliseconds, and the server and the CLI share one implementation.
//!
//! What v1 compares, per service present in both environments of a pair:
//! - image content ([`Kind::ImageDigest`]): the registry digest when every
//!   replica on both sides has one, else the local image id (see [`digest`]);
//! - explicit env ([`Kind::EnvMissingKey`], [`Kind::EnvExtraKey`],
//!   [`Kind::EnvValue`]): keys and value fingerprints, never image-baked env;
//!
//! and per environment pair, the hosts' kernel versions ([`Kind::Kernel`]).

pub mod digest;
mod env;
pub mod environments;
mod evaluate;
mod finding;

pub use evaluate::{HostView, Scope, evaluate};
pub use finding::{Basis, Finding, Kind, Severity, Side};
