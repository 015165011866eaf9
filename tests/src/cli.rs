//! Running the `envparity` CLI against an aggregator and reading its verdict.
//!
//! The CLI's contract: exit 0 for parity, 1 for drift found, 2 or more for
//! errors; with `-o json`, its answer is JSON on stdout.

use std::fmt;
use std::path::Path;
use std::process::Command;

use crate::bins::cargo_bin;
use crate::command::{self, COMMAND_TIMEOUT};
use crate::error::{Error, Result};

/// The CLI binary's name.
pub const CLI_BIN: &str = "envparity";

/// Exit code: the compared environments are at parity.
pub const EXIT_PARITY: i32 = 0;
/// Exit code: drift was found.
pub const EXIT_MISMATCH: i32 = 1;

/// What one CLI run returned.
#[derive(Debug, Clone)]
pub struct CliOutput {
    /// The command line, for messages.
    pub command: String,
    /// The exit code.
    pub code: i32,
    /// Stdout: the JSON answer, read as typed rows with
    /// `CliOutput::answer` (answer.rs).
    pub stdout: String,
    /// Stderr (diagnostics).
    pub stderr: String,
}

impl CliOutput {
    /// Runs `envparity --server SERVER -o json ARGS…`. Fails only if the CLI
    /// cannot run or is killed; any exit code is returned in [`CliOutput::code`].
    pub fn run(server: &str, args: &[&str]) -> Result<CliOutput> {
        Self::run_as(server, "json", args)
    }

    /// [`CliOutput::run`] with `-o FORMAT` (`json`, `yaml`, `table`,
    /// `wide`): the CLI refuses a second `-o`, so ARGS must not hold one.
    pub fn run_as(server: &str, format: &str, args: &[&str]) -> Result<CliOutput> {
        let mut cli = project_command(&cargo_bin(CLI_BIN)?);
        cli.args(["--server", server, "-o", format]).args(args);
        let out = command::output(cli, COMMAND_TIMEOUT)?;
        let Some(code) = out.status.code() else {
            return Err(Error::Command {
                command: out.command,
                status: out.status.to_string(),
                stderr: out.stderr,
            });
        };
        Ok(CliOutput {
            command: out.command,
            code,
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    /// True when the CLI reported parity (exit 0).
    pub fn is_parity(&self) -> bool {
        self.code == EXIT_PARITY
    }

    /// True when the CLI reported drift (exit 1).
    pub fn is_mismatch(&self) -> bool {
        self.code == EXIT_MISMATCH
    }

    /// Panics, showing the whole output, unless the exit code is `expected`.
    #[track_caller]
    pub fn assert_code(&self, expected: i32) -> &Self {
        assert_eq!(self.code, expected, "unexpected exit code from {self}");
        self
    }
}

impl fmt::Display for CliOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` (exit {})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command,
            self.code,
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// A command for one of the workspace's binaries, isolated from the
/// developer's shell: `ENVPARITY_*` variables (which flags read) are removed,
/// logs are plain text at `info` unless `RUST_LOG` says otherwise.
pub fn project_command(binary: &Path) -> Command {
    let mut command = Command::new(binary);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("ENVPARITY_") {
            command.env_remove(key);
        }
    }
    if std::env::var_os("RUST_LOG").is_none() {
        command.env("RUST_LOG", "info");
    }
    command.env("NO_COLOR", "1").env("RUST_BACKTRACE", "1");
    command
}
