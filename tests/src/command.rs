//! Running a command to completion, with a time limit, so a hung daemon fails
//! a test instead of hanging the suite.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::Duration;

use rustix::process::Signal;

use crate::error::{Error, Result};
use crate::pids;
use crate::process::display_command;

/// How long one `docker`, `tar` or CLI invocation may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// What a finished command printed.
#[derive(Debug, Clone)]
pub struct Output {
    /// The command line, for messages.
    pub command: String,
    /// How it exited.
    pub status: ExitStatus,
    /// Its stdout (lossy UTF-8).
    pub stdout: String,
    /// Its stderr (lossy UTF-8).
    pub stderr: String,
}

/// Runs `command` (stdin closed) and collects its output; fails only if it
/// cannot be started or runs longer than `timeout` (then it is killed).
pub fn output(mut command: Command, timeout: Duration) -> Result<Output> {
    let shown = display_command(&command);
    let mut child = pids::spawn(
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .map_err(Error::io(format!("spawn `{shown}`")))?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status = wait_or_kill(&mut child, timeout, &shown);
    pids::forget(child.id());
    let status = status?;
    Ok(Output {
        command: shown,
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// Runs `command` and returns its stdout without the trailing newline; a
/// non-zero exit is an [`Error::Command`] carrying the command and its stderr.
pub fn checked(command: Command) -> Result<String> {
    let out = output(command, COMMAND_TIMEOUT)?;
    if out.status.success() {
        Ok(out.stdout.trim_end_matches('\n').to_owned())
    } else {
        Err(Error::Command {
            command: out.command,
            status: out.status.to_string(),
            stderr: out.stderr.trim().to_owned(),
        })
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn wait_or_kill(child: &mut Child, timeout: Duration, shown: &str) -> Result<ExitStatus> {
    let start = std::time::Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child
            .try_wait()
            .map_err(Error::io(format!("wait for `{shown}`")))?
        {
            return Ok(status);
        }
        if start.elapsed() >= timeout {
            pids::signal(child.id(), Signal::KILL);
            let _ = child.wait();
            return Err(Error::Timeout {
                what: format!("`{shown}` to finish (killed it)"),
                after: timeout,
                last: String::new(),
            });
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}
