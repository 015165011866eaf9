//! A real, isolated Docker engine per test: its own data root, exec root and
//! socket under a temp dir, no bridge, no iptables, vfs storage, so it runs
//! next to anything else on the machine and leaves nothing behind.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long an engine may take to come up on a loaded machine.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a static busybox is expected (Debian's busybox-static).
const BUSYBOX: &str = "/bin/busybox";

/// A running isolated engine; stopped and cleaned up on drop.
pub struct DockerHost {
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
    daemon: Option<Child>,
}

/// Panics with an actionable message when `program` cannot run.
fn require(program: &str, version_arg: &str) {
    let ok = Command::new(program)
        .arg(version_arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "the docker integration tests need `{program}` on PATH (Debian packages: docker.io, \
         busybox-static); install it or run `cargo test -p envparity-agent --lib` for unit tests only"
    );
}

impl DockerHost {
    /// Starts an engine and waits until it answers.
    pub fn start() -> Self {
        require("dockerd", "--version");
        require("docker", "--version");
        assert!(
            Path::new(BUSYBOX).exists(),
            "the docker integration tests need a static busybox at {BUSYBOX} (Debian: busybox-static)"
        );

        // Under /tmp, not $TMPDIR: unix socket paths are limited to 107 bytes.
        let dir = tempfile::Builder::new()
            .prefix("epd-")
            .tempdir_in("/tmp")
            .expect("creating the engine's temp dir");
        let root = dir.path().to_owned();
        let mut host = Self {
            dir: Some(dir),
            root,
            daemon: None,
        };
        host.spawn_daemon();
        host
    }

    /// Starts dockerd on this host's dirs and waits until it answers.
    fn spawn_daemon(&mut self) {
        let root = &self.root;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(root.join("dockerd.log"))
            .unwrap();
        let daemon = Command::new("dockerd")
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("--pidfile")
            .arg(root.join("pid"))
            .arg("-H")
            .arg(format!("unix://{}", root.join("sock").display()))
            .args([
                "--storage-driver=vfs",
                "--iptables=false",
                "--bridge=none",
                "--ip-masq=false",
            ])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawning dockerd");
        self.daemon = Some(daemon);
        self.wait_until_ready();
    }

    /// Starts the engine again after [`stop`](Self::stop), on the same
    /// state and socket, as an engine restart would.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn_daemon();
    }

    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.try_docker(&["version"]).is_ok() {
                return;
            }
            if let Some(status) = self
                .daemon
                .as_mut()
                .and_then(|d| d.try_wait().ok().flatten())
            {
                panic!(
                    "dockerd exited with {status} while starting:\n{}",
                    self.log_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "dockerd did not answer within {START_TIMEOUT:?}:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The engine address, `unix:///...`.
    pub fn url(&self) -> String {
        format!("unix://{}", self.root.join("sock").display())
    }

    fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.root.join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn try_docker(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("docker")
            .arg("-H")
            .arg(self.url())
            .args(args)
            .output()
            .map_err(|e| format!("running docker: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    /// Runs the docker CLI against this engine; panics with its stderr on
    /// failure. Returns trimmed stdout.
    pub fn docker(&self, args: &[&str]) -> String {
        self.try_docker(args)
            .unwrap_or_else(|e| panic!("docker {}: {e}", args.join(" ")))
    }

    /// Imports a busybox-only image as `tag` with `changes` (Dockerfile
    /// instructions such as `ENV BAKED=1`); returns its id.
    pub fn import_busybox(&self, tag: &str, changes: &[&str]) -> String {
        let rootfs = self
            .root
            .join(format!("rootfs-{}", tag.replace([':', '/'], "_")));
        fs::create_dir_all(rootfs.join("bin")).unwrap();
        fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
        for applet in ["sh", "sleep"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        let tar = rootfs.with_extension("tar");
        let status = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .expect("running tar");
        assert!(status.success(), "tar of {} failed", rootfs.display());
        let mut args = vec!["import".to_owned()];
        for change in changes {
            args.push("-c".to_owned());
            args.push((*change).to_owned());
        }
        args.push(tar.display().to_string());
        args.push(tag.to_owned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.docker(&args)
    }

    /// Stops the engine (SIGTERM, then SIGKILL after 20 s). Idempotent.
    pub fn stop(&mut self) {
        let Some(mut daemon) = self.daemon.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &daemon.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while daemon.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = daemon.kill();
                let _ = daemon.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Lazily unmounts everything the engine mounted under its dir (shm,
    /// netns, ...), deepest first, so the dir can be removed.
    fn unmount_all(&self) {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let prefix = self.root.display().to_string();
        let mut points: Vec<String> = mountinfo
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .map(|p| p.replace("\\040", " "))
            .filter(|p| p.starts_with(&prefix))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for point in points {
            let _ = Command::new("umount").args(["-l", &point]).status();
        }
    }
}

impl Drop for DockerHost {
    fn drop(&mut self) {
        if self.daemon.is_some()
            && let Ok(ids) = self.try_docker(&["ps", "-aq"])
        {
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids);
                let _ = self.try_docker(&args);
            }
        }
        self.stop();
        self.unmount_all();
        if let Some(dir) = self.dir.take()
            && let Err(e) = dir.close()
        {
            eprintln!("warning: removing {}: {e}", self.root.display());
        }
    }
}
