//! A call to a CRI socket: how long it may take, and how it fails, naming
//! the socket and the call. Shared by the runtime ([`super::containerd`])
//! and its event stream ([`super::events`]).

use std::path::PathBuf;
use std::time::Duration;

use envparity_cri::channel::ConnectError;

use super::cri_container::JsonError;

/// Per-call timeout; the event stream is not bounded.
pub const CRI_TIMEOUT: Duration = Duration::from_secs(10);

/// A failed CRI call, naming the socket and the call.
#[derive(Debug, thiserror::Error)]
pub enum CriError {
    /// The socket could not be connected to.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// A call failed.
    #[error("{operation} on {}: {} ({:?})", socket.display(), status.message(), status.code())]
    Call {
        /// The socket.
        socket: PathBuf,
        /// What was asked, e.g. `ContainerStatus 3f2a…`.
        operation: String,
        /// What the runtime said.
        status: tonic::Status,
    },
    /// An answer's JSON did not parse.
    #[error("{operation} on {}: {source}", socket.display())]
    Json {
        /// The socket.
        socket: PathBuf,
        /// What was asked.
        operation: String,
        /// Where it failed (never what it held).
        source: JsonError,
    },
}
