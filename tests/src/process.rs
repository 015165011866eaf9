//! [`Process`]: a child process the test owns, with its output in a log file.
//!
//! Used for dockerd, the registry and envparity's own binaries alike. The
//! guard ends its process by pid on drop (SIGTERM, then SIGKILL after a
//! timeout), and when the test is failing it prints the tail of the log, which
//! is usually the first thing one wants to read.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::Signal;

use crate::error::{Error, Result};
use crate::pids;
use crate::scratch::KEEP_ENV;
use crate::wait::wait_for;

/// How long [`Process::stop`] waits after SIGTERM before SIGKILL, by default.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// How many log lines a failing test prints per process.
const TAIL_LINES: usize = 40;

/// A running child process, stopped by pid when dropped.
#[derive(Debug)]
pub struct Process {
    name: String,
    command: String,
    child: Child,
    log: PathBuf,
    stop_timeout: Duration,
    exited: Option<ExitStatus>,
    stopped_by_us: bool,
    tail_printed: bool,
}

impl Process {
    /// Spawns `command` with stdin closed and stdout and stderr appended to
    /// `log`. `name` says what the process is in messages ("aggregator",
    /// "dockerd production").
    pub fn spawn(
        name: impl Into<String>,
        mut command: Command,
        log: impl Into<PathBuf>,
    ) -> Result<Self> {
        let name = name.into();
        let log = log.into();
        let shown = display_command(&command);
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(Error::io(format!("open log {} for {name}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(Error::io(format!("clone log handle {}", log.display())))?;
        let child = pids::spawn(command.stdin(Stdio::null()).stdout(out).stderr(err))
            .map_err(Error::io(format!("spawn {name}: `{shown}`")))?;
        Ok(Self {
            name,
            command: shown,
            child,
            log,
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            exited: None,
            stopped_by_us: false,
            tail_printed: false,
        })
    }

    /// Sets how long [`Process::stop`] (and drop) wait between SIGTERM and SIGKILL.
    #[must_use]
    pub fn with_stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = timeout;
        self
    }

    /// What the process is, as given to [`Process::spawn`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The command line it was started with.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log file holding its stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The whole log so far (lossy UTF-8; empty if unreadable).
    pub fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    /// Its exit status if it has exited, without blocking.
    pub fn try_exit_status(&mut self) -> Result<Option<ExitStatus>> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().map_err(Error::io(format!(
                "check {} (pid {})",
                self.name,
                self.pid()
            )))?;
            if self.exited.is_some() {
                pids::forget(self.pid());
            }
        }
        Ok(self.exited)
    }

    /// True while it runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.try_exit_status(), Ok(None))
    }

    /// Fails with its exit status and log tail if it is no longer running.
    pub fn ensure_running(&mut self) -> Result<()> {
        match self.try_exit_status()? {
            None => Ok(()),
            Some(status) => Err(Error::Exited {
                what: format!("{} (pid {}, `{}`)", self.name, self.pid(), self.command),
                status: status.to_string(),
                log: self.log.clone(),
                tail: self.log_tail(TAIL_LINES),
            }),
        }
    }

    /// Sends SIGTERM and returns at once; see [`Process::stop`] to wait.
    pub fn terminate(&mut self) {
        if self.is_running() {
            self.stopped_by_us = true;
            pids::signal(self.pid(), Signal::TERM);
        }
    }

    /// Waits up to `timeout` for it to exit by itself.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(status) = self.try_exit_status()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then SIGKILL if it is still running after the stop timeout.
    /// Returns its exit status; stopping an exited process returns its status.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        self.terminate();
        if let Some(status) = self.wait_timeout(self.stop_timeout)? {
            return Ok(status);
        }
        pids::signal(self.pid(), Signal::KILL);
        let status = self.child.wait().map_err(Error::io(format!(
            "wait for {} (pid {})",
            self.name,
            self.pid()
        )))?;
        pids::forget(self.pid());
        self.exited = Some(status);
        Ok(status)
    }

    /// SIGKILL at once — a crash, not a shutdown — and reaps it.
    pub fn kill(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.try_exit_status()? {
            return Ok(status);
        }
        self.stopped_by_us = true;
        pids::signal(self.pid(), Signal::KILL);
        let status = self.child.wait().map_err(Error::io(format!(
            "wait for {} (pid {})",
            self.name,
            self.pid()
        )))?;
        pids::forget(self.pid());
        self.exited = Some(status);
        Ok(status)
    }

    /// Waits until `addr` accepts TCP connections, failing early (with the log
    /// tail) if the process exits first.
    pub fn wait_for_port(&mut self, addr: SocketAddr, timeout: Duration) -> Result<()> {
        let what = format!(
            "{} (pid {}) to accept connections on {addr}",
            self.name,
            self.pid()
        );
        wait_for(timeout, &what, || {
            self.ensure_running()?;
            Ok(
                TcpStream::connect_timeout(&addr, Duration::from_millis(200))
                    .ok()
                    .map(drop),
            )
        })
    }

    /// Waits until its log contains `needle`, failing early if it exits.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> Result<()> {
        let what = format!(
            "{} (pid {}) to log {needle:?} in {}",
            self.name,
            self.pid(),
            self.log.display()
        );
        wait_for(timeout, &what, || {
            if self.log().contains(needle) {
                return Ok(Some(()));
            }
            self.ensure_running()?;
            Ok(None)
        })
    }

    /// Prints the log tail to stderr (libtest shows it for failing tests);
    /// drop then does not print it again.
    pub fn print_log_tail(&mut self, reason: &str) {
        self.tail_printed = true;
        eprintln!(
            "---- {} (pid {}) {reason}; last {TAIL_LINES} lines of {} ({KEEP_ENV}=1 keeps it) ----\n{}\n---- end of {} log ----",
            self.name,
            self.pid(),
            self.log.display(),
            self.log_tail(TAIL_LINES).trim_end(),
            self.name,
        );
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // It crashed or exited on its own while the test ran: usually the story of the failure.
        let died_early = !self.stopped_by_us && matches!(self.try_exit_status(), Ok(Some(_)));
        if self.tail_printed {
            // Already shown.
        } else if thread::panicking() {
            self.print_log_tail("test failed");
        } else if died_early {
            let status = self.exited.map(|s| s.to_string()).unwrap_or_default();
            self.print_log_tail(&format!("exited by itself ({status})"));
        }
        if let Err(error) = self.stop() {
            eprintln!("envparity-tests: {error}");
        }
    }
}

/// The last `lines` lines of a file, reading at most its last 64 KiB.
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    const WINDOW: u64 = 64 * 1024;
    let Ok(mut file) = File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(WINDOW)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `[DOCKER_HOST=…] program arg …`, shell-quoted, for messages.
pub(crate) fn display_command(command: &Command) -> String {
    let mut parts: Vec<String> = command
        .get_envs()
        .filter_map(|(key, value)| {
            Some(format!(
                "{}={}",
                key.to_string_lossy(),
                value?.to_string_lossy()
            ))
        })
        .filter(|assignment| assignment.starts_with("DOCKER_HOST="))
        .collect();
    parts.push(command.get_program().to_string_lossy().into_owned());
    parts.extend(
        command
            .get_args()
            .map(|arg| shell_word(&arg.to_string_lossy())),
    );
    parts.join(" ")
}

fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
