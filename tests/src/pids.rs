//! Finding and ending processes by pid, through `/proc`.
//!
//! Everything the harness starts runs with its state under one temp dir, so
//! "the processes of this dir" is a precise question: a process whose command
//! line mentions the dir, or whose root or working directory lies inside it
//! (container processes, whose root is an image layer under the data root).
//! Nothing here matches by process name, so tests running side by side, or a
//! developer's own dockerd, are never touched.

use std::path::Path;
use std::process::{Child, Command};
use std::sync::{Mutex, MutexGuard, Once};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitOptions};

/// Children spawned through std, which std waits for itself: [`reap_orphans`]
/// must never take their exit status.
static SPAWNED: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn spawned() -> MutexGuard<'static, Vec<u32>> {
    SPAWNED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Spawns `command` and records the child as std's to reap. The lock is held
/// across the spawn, so a concurrent [`reap_orphans`] cannot mistake a child
/// that exits at once for an orphan.
pub(crate) fn spawn(command: &mut Command) -> std::io::Result<Child> {
    become_subreaper();
    let mut spawned = spawned();
    let child = command.spawn()?;
    spawned.push(child.id());
    Ok(child)
}

/// Forgets a child once std has reaped it.
pub(crate) fn forget(pid: u32) {
    spawned().retain(|&p| p != pid);
}

/// Makes this process the reaper of its orphaned descendants. When a dockerd
/// dies, its containerd and shims would otherwise be re-parented to the
/// machine's init, which may reap late or never: they would linger as zombies
/// in `pgrep` after the tests. As their reaper, the harness collects them in
/// [`reap_orphans`].
fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Best effort: without it, orphans are only reaped later by init.
        let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
    });
}

/// Reaps the exited orphans re-parented to this process (never a child std
/// waits for).
pub(crate) fn reap_orphans() {
    let me = std::process::id();
    let spawned = spawned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for pid in entries.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok()) {
        if !is_alive(pid)
            && parent_of(pid) == Some(me)
            && !spawned.contains(&pid)
            && let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw)
        {
            let _ = rustix::process::waitpid(Some(pid), WaitOptions::NOHANG);
        }
    }
}

/// True while `pid` exists and is not a zombie.
///
/// A process whose parent has died may linger as a zombie when the machine's
/// init does not reap; for the harness that process is gone.
pub fn is_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) S …`: comm may hold spaces and parentheses, the state follows the last `)`.
    let state = stat
        .rfind(')')
        .and_then(|end| stat[end + 1..].trim_start().chars().next());
    !matches!(state, None | Some('Z' | 'X'))
}

/// Live processes (other than this one) whose command line mentions `dir`, or
/// whose root or working directory lies under it, and all their descendants.
///
/// Descendants matter for containers: their processes live in their own mount
/// namespace, so their `/proc/PID/root` reads as `/`, but they descend from a
/// containerd shim whose command line names the host's exec root.
pub fn processes_under(dir: &Path) -> Vec<u32> {
    processes_under_except(dir, None)
}

/// [`processes_under`], not counting mentions of `except` (a path under
/// `dir`) in command lines: clients of a host's Docker socket (an agent, a
/// socket proxy) name the socket but are not the host's processes.
pub fn processes_under_except(dir: &Path, except: Option<&Path>) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let all: Vec<(u32, u32)> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&pid| pid != me && is_alive(pid))
        .filter_map(|pid| Some((pid, parent_of(pid)?)))
        .collect();
    let mut ours: Vec<u32> = all
        .iter()
        .map(|&(pid, _)| pid)
        .filter(|&pid| belongs_to(pid, dir, except))
        .collect();
    // Add children of what is ours until nothing new turns up (a tree is shallow).
    loop {
        let before = ours.len();
        for &(pid, parent) in &all {
            if ours.contains(&parent) && !ours.contains(&pid) {
                ours.push(pid);
            }
        }
        if ours.len() == before {
            break;
        }
    }
    ours.sort_unstable();
    ours
}

/// The parent pid, from `/proc/PID/stat` (the field after the state).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(1)?.parse().ok()
}

fn belongs_to(pid: u32, dir: &Path, except: Option<&Path>) -> bool {
    let inside = |link: &str| {
        std::fs::read_link(format!("/proc/{pid}/{link}"))
            .is_ok_and(|target| target.starts_with(dir))
    };
    let mut cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if let Some(except) = except {
        cmdline = without(&cmdline, except.as_os_str().as_encoded_bytes());
    }
    mentions(&cmdline, dir.as_os_str().as_encoded_bytes()) || inside("root") || inside("cwd")
}

/// `haystack` with every occurrence of `needle` removed.
fn without(haystack: &[u8], needle: &[u8]) -> Vec<u8> {
    if needle.is_empty() {
        return haystack.to_vec();
    }
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(needle) {
            i += needle.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

/// True when `haystack` holds `dir` as a whole path: followed by `/`, a NUL
/// (argument separator) or the end, so `/tmp/a` does not match `/tmp/ab`.
fn mentions(haystack: &[u8], dir: &[u8]) -> bool {
    if dir.is_empty() {
        return false;
    }
    haystack.windows(dir.len()).enumerate().any(|(at, window)| {
        window == dir && matches!(haystack.get(at + dir.len()), None | Some(b'/' | 0))
    })
}

/// SIGKILL to `pid`, as a crash would end it (for tests of crash handling).
pub fn kill(pid: u32) {
    signal(pid, Signal::KILL);
}

/// Sends `signal` to `pid`; a process that is already gone is not an error.
pub(crate) fn signal(pid: u32, signal: Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        // ESRCH (already gone) is the only expected failure, and it is success here.
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// Waits until none of `pids` is alive, for at most `timeout`. Returns the survivors.
pub(crate) fn wait_gone(pids: &[u32], timeout: Duration) -> Vec<u32> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(2);
    loop {
        let alive: Vec<u32> = pids.iter().copied().filter(|&pid| is_alive(pid)).collect();
        if alive.is_empty() || Instant::now() >= deadline {
            return alive;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// SIGTERM to all of `pids` at once, SIGKILL to whoever is left after `grace`.
/// Returns the pids still alive after that (which should never happen).
pub(crate) fn terminate(pids: &[u32], grace: Duration) -> Vec<u32> {
    for &pid in pids {
        signal(pid, Signal::TERM);
    }
    let stubborn = wait_gone(pids, grace);
    for &pid in &stubborn {
        signal(pid, Signal::KILL);
    }
    let survivors = wait_gone(&stubborn, Duration::from_secs(5));
    reap_orphans();
    survivors
}

#[cfg(test)]
mod tests {
    use super::{mentions, without};

    #[test]
    fn a_dir_is_mentioned_only_as_a_whole_path() {
        assert!(mentions(b"dockerd\0--data-root\0/tmp/a/data", b"/tmp/a"));
        assert!(mentions(b"x\0/tmp/a\0y", b"/tmp/a"));
        assert!(mentions(b"x\0/tmp/a", b"/tmp/a"));
        assert!(!mentions(b"x\0/tmp/ab/data", b"/tmp/a"));
        assert!(!mentions(b"unrelated", b"/tmp/a"));
    }

    #[test]
    fn a_client_of_the_socket_is_not_the_hosts_process() {
        let agent = b"envparity-agent\0--docker-host\0unix:///tmp/a/docker.sock";
        let dockerd = b"dockerd\0--data-root\0/tmp/a/data\0-H\0unix:///tmp/a/docker.sock";
        let sock = b"/tmp/a/docker.sock";
        assert!(!mentions(&without(agent, sock), b"/tmp/a"));
        assert!(mentions(&without(dockerd, sock), b"/tmp/a"));
    }
}
