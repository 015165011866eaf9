//! The harness's one error type. Every variant names what it failed on (the
//! command, the socket, the port, the file), so a red test explains itself.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// `Result` with the harness [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a harness step failed.
#[derive(thiserror::Error)]
pub enum Error {
    /// A system tool the tests drive is not installed.
    #[error(
        "{tool} not found at {path} (Debian package {package}): run `scripts/setup.sh` as root first"
    )]
    MissingTool {
        tool: &'static str,
        path: PathBuf,
        package: &'static str,
    },

    /// The tests start dockerd and unmount its mounts, which needs root.
    #[error(
        "the end-to-end tests start dockerd and need root (euid is {euid}): run them as root, e.g. `sudo scripts/test.sh`"
    )]
    NotRoot { euid: u32 },

    /// A binary of this workspace has not been built.
    #[error("envparity binary `{name}` not found at {path}: run `cargo build --workspace` first")]
    MissingBinary { name: String, path: PathBuf },

    /// A command ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },

    /// A file-system or process operation failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },

    /// A process the harness started exited before it was stopped.
    #[error("{what} exited unexpectedly ({status}); last lines of {log}:\n{tail}")]
    Exited {
        what: String,
        status: String,
        log: PathBuf,
        tail: String,
    },

    /// A condition did not become true in time.
    #[error("timed out after {after:?} waiting for {what}{last}")]
    Timeout {
        what: String,
        after: Duration,
        /// The last probe error, already formatted as `"; last error: …"`, or empty.
        last: String,
    },

    /// Something answered, but not what the harness expected.
    #[error("{what}: {detail}")]
    Unexpected { what: String, detail: String },

    /// Tear-down could not remove everything it started.
    #[error("cleanup of {path} left {detail}")]
    Cleanup { path: PathBuf, detail: String },
}

impl Error {
    /// Wraps an I/O error with what was being attempted:
    /// `fs::read(&p).map_err(Error::io(format!("read {}", p.display())))`.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }

    pub(crate) fn unexpected(what: impl Into<String>, detail: impl Into<String>) -> Error {
        Error::Unexpected {
            what: what.into(),
            detail: detail.into(),
        }
    }
}

/// Tests return `Result<(), Error>`, and libtest prints a failing test's error
/// with `Debug`; so `Debug` is the readable message (every variant already
/// inlines its cause), not a struct dump.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
