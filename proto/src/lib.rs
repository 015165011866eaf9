//! envparity's wire contract, `envparity.v1`, and the few helpers both ends of
//! it need.
//!
//! The Rust code for the protobuf messages is generated from
//! `proto/envparity/v1/*.proto` and checked in (`src/generated/`);
//! `tests/bootstrap.rs` regenerates it and fails on any difference, so a plain
//! `cargo build` never needs `protoc`.
#![forbid(unsafe_code)]

/// The generated `envparity.v1` messages, clients and servers.
#[allow(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    clippy::all,
    clippy::pedantic
)]
pub mod v1 {
    include!("generated/envparity.v1.rs");
}

pub mod codec;
pub mod delta;
pub mod digest;
pub mod exposition;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod glob;
pub mod hash;
pub mod http1;
pub mod limits;
pub mod names;
pub mod systemd;
pub mod time;
pub mod transport;

/// The encoded `FileDescriptorSet` of the contract, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!("generated/envparity_descriptor.bin");
