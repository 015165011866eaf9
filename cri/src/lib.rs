//! The container runtime interfaces envparity reads on Kubernetes nodes: the
//! CRI (`runtime.v1`) and containerd's event service, as a project-owned copy
//! of just the messages and calls used (`runtime/v1/api.proto`,
//! `containerd/services/events/v1/events.proto`, upstream field numbers).
//!
//! As in `envparity-proto`, the Rust code is generated and checked in
//! (`src/generated/`); `tests/bootstrap.rs` regenerates it and fails on any
//! difference, so neither a build nor that test needs `protoc`.
#![forbid(unsafe_code)]

/// The CRI messages and clients (`runtime.v1`).
#[allow(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    clippy::all,
    clippy::pedantic
)]
pub mod runtime_v1 {
    include!("generated/runtime.v1.rs");
}

/// containerd's event subscription (`containerd.services.events.v1`).
#[allow(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    clippy::all,
    clippy::pedantic
)]
pub mod events_v1 {
    include!("generated/containerd.services.events.v1.rs");
}

pub mod channel;

/// The gRPC metadata key naming the containerd namespace of a call.
pub const NAMESPACE_HEADER: &str = "containerd-namespace";

/// The containerd namespace the CRI plugin keeps Kubernetes' containers in.
pub const K8S_NAMESPACE: &str = "k8s.io";
