//! The process guard, binaries lookup, waiting, ports and keys.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use envparity_tests::pids::is_alive;
use envparity_tests::tools::Tool;
use envparity_tests::{
    Error, FINGERPRINT_KEY_LEN, Process, Result, ScratchDir, cargo_bin, free_port, wait_until,
    write_fingerprint_key,
};

fn shell(script: &str) -> Command {
    let mut sh = Command::new("/bin/sh");
    sh.args(["-c", script]);
    sh
}

#[test]
fn a_process_is_stopped_by_pid_when_its_guard_drops() -> Result<()> {
    let dir = ScratchDir::new()?;
    let process = Process::spawn(
        "sleeper",
        shell("exec sleep 300"),
        dir.path().join("sleeper.log"),
    )?;
    let pid = process.pid();
    assert!(is_alive(pid));
    drop(process);
    assert!(!is_alive(pid), "pid {pid} still alive");
    Ok(())
}

#[test]
fn a_process_that_ignores_sigterm_is_killed_after_the_stop_timeout() -> Result<()> {
    let dir = ScratchDir::new()?;
    // Ignored signals stay ignored across exec, so `sleep` itself ignores SIGTERM.
    let mut process = Process::spawn(
        "stubborn",
        shell("trap '' TERM; echo ignoring; exec sleep 300"),
        dir.path().join("stubborn.log"),
    )?
    .with_stop_timeout(Duration::from_millis(300));
    process.wait_for_log("ignoring", Duration::from_secs(10))?;
    let started = Instant::now();
    let status = process.stop()?;
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "{status}"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    Ok(())
}

#[test]
fn a_process_log_holds_stdout_and_stderr_and_an_early_exit_shows_it() -> Result<()> {
    let dir = ScratchDir::new()?;
    let mut process = Process::spawn(
        "talker",
        shell("echo to-stdout; echo to-stderr >&2; exit 3"),
        dir.path().join("talker.log"),
    )?;
    let status = process
        .wait_timeout(Duration::from_secs(10))?
        .expect("exits by itself");
    assert_eq!(status.code(), Some(3));
    assert!(process.log().contains("to-stdout\n"));
    assert_eq!(process.log_tail(1), "to-stderr");

    let error = process.ensure_running().expect_err("it exited");
    let message = error.to_string();
    assert!(matches!(error, Error::Exited { .. }), "{message}");
    assert!(
        message.contains("talker") && message.contains("to-stderr"),
        "{message}"
    );
    Ok(())
}

#[test]
fn waiting_for_a_port_fails_fast_when_the_process_dies() -> Result<()> {
    let dir = ScratchDir::new()?;
    let mut process = Process::spawn(
        "crasher",
        shell("echo boom >&2; exit 1"),
        dir.path().join("crasher.log"),
    )?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let started = Instant::now();
    let error = process
        .wait_for_port(addr, Duration::from_secs(30))
        .expect_err("never listens");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "waited {:?}",
        started.elapsed()
    );
    assert!(error.to_string().contains("boom"), "{error}");
    Ok(())
}

#[test]
fn wait_until_says_what_it_waited_for() {
    let error = wait_until(Duration::from_millis(50), "the moon to turn blue", || false)
        .expect_err("never true");
    let message = error.to_string();
    assert!(
        message.contains("the moon to turn blue") && message.contains("50ms"),
        "{message}"
    );

    let mut tries = 0;
    wait_until(Duration::from_secs(5), "the third try", || {
        tries += 1;
        tries == 3
    })
    .expect("true on the third try");
}

#[test]
fn free_ports_are_bindable_and_never_handed_out_twice() -> Result<()> {
    let ports: Vec<u16> = (0..20).map(|_| free_port()).collect::<Result<_>>()?;
    let mut unique = ports.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ports.len(), "{ports:?}");
    std::net::TcpListener::bind(("127.0.0.1", ports[0]))
        .map_err(Error::io(format!("bind port {}", ports[0])))?;
    Ok(())
}

#[test]
fn a_missing_binary_says_to_build_the_workspace() {
    let message = cargo_bin("envparity-no-such-binary")
        .expect_err("not built")
        .to_string();
    assert!(message.contains("cargo build --workspace"), "{message}");
}

#[test]
fn a_missing_tool_says_to_run_setup() {
    let tool = Tool {
        name: "dockerd",
        path: "/nonexistent/dockerd",
        package: "docker.io",
    };
    let message = tool.require().expect_err("missing").to_string();
    assert!(
        message.contains("scripts/setup.sh") && message.contains("docker.io"),
        "{message}"
    );
}

#[test]
fn a_fingerprint_key_is_32_private_random_bytes() -> Result<()> {
    let dir = ScratchDir::new()?;
    let (a, b) = (dir.path().join("a.key"), dir.path().join("b.key"));
    write_fingerprint_key(&a)?;
    write_fingerprint_key(&b)?;
    let key = std::fs::read(&a).map_err(Error::io("read a.key"))?;
    assert_eq!(key.len(), FINGERPRINT_KEY_LEN);
    assert_ne!(key, std::fs::read(&b).map_err(Error::io("read b.key"))?);
    let mode = std::fs::metadata(&a)
        .map_err(Error::io("stat a.key"))?
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    assert!(write_fingerprint_key(&a).is_err(), "never overwrites a key");
    Ok(())
}
