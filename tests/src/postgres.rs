//! [`Postgres`]: a real PostgreSQL 15 server (Debian's `postgresql-15`) in
//! a temp dir of its own, for the store's second backend (docs/store.md).
//!
//! `initdb` refuses root, so the cluster is made with `runuser -u postgres`
//! and the server runs as the `postgres` user too (spawned with its uid, so
//! that the pid the harness holds is the postmaster's own). It listens on
//! a Unix socket in its dir only (`listen_addresses = ''`): no port is
//! taken, nothing outside the machine can reach it. Local connections are
//! trusted, except for [`PASSWORD_ROLE`], which must give its password (the
//! wrong-password tests). Dropping it stops the server by pid (SIGINT, a
//! fast shutdown) and deletes the dir.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rustix::process::Signal;

use crate::error::{Error, Result};
use crate::pids;
use crate::process::Process;
use crate::scratch::ScratchDir;
use crate::tools::{self, INITDB, POSTGRES, PSQL};
use crate::wait::wait_for;

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The role that logs in with a password (`scram-sha-256`); every other
/// local role is trusted. A test creates it with the password it wants.
pub const PASSWORD_ROLE: &str = "envparity_pw";

/// A running PostgreSQL server; dropping it stops the server and deletes
/// its dir.
#[derive(Debug)]
pub struct Postgres {
    /// The running server; `None` while stopped ([`Postgres::stop`]).
    process: Option<Process>,
    server: Server,
    dir: ScratchDir,
}

/// How the server is started, again after a stop.
#[derive(Debug)]
struct Server {
    data: PathBuf,
    socket_dir: PathBuf,
    /// The port of its socket (and of 127.0.0.1 with TLS).
    port: u16,
    /// The `-c` settings of what it listens on.
    listen: Vec<String>,
    uid: u32,
    gid: u32,
    log: PathBuf,
    /// `fsync` on and more shared buffers: for benchmarks
    /// ([`Postgres::start_durable_in`]); tests run without `fsync`.
    durable: bool,
}

impl Server {
    /// Starts `postgres` on the data dir, as the `postgres` user; returns
    /// once it accepts connections.
    fn spawn(&self) -> Result<Process> {
        let mut command = Command::new(POSTGRES.path);
        command
            .arg("-D")
            .arg(&self.data)
            .arg("-k")
            .arg(&self.socket_dir)
            .args(["-p", &self.port.to_string()])
            .args(&self.listen)
            .args(if self.durable {
                ["-c", "fsync=on", "-c", "shared_buffers=256MB"]
            } else {
                ["-c", "fsync=off", "-c", "shared_buffers=32MB"]
            })
            .args(["-c", "max_connections=200"])
            .current_dir(&self.data)
            .uid(self.uid)
            .gid(self.gid);
        let mut process = Process::spawn(
            format!("postgres {}", self.data.display()),
            command,
            &self.log,
        )?;
        let socket = self.socket_dir.join(format!(".s.PGSQL.{}", self.port));
        let ready = wait_for(START_TIMEOUT, "postgres to accept connections", || {
            process.ensure_running()?;
            Ok(socket.exists()
                && Command::new(PSQL.path)
                    .args(["-XqAt", "-U", "postgres", "-d", "postgres"])
                    .args(["-p", &self.port.to_string(), "-h"])
                    .arg(&self.socket_dir)
                    .args(["-c", "SELECT 1"])
                    .output()
                    .is_ok_and(|o| o.status.success()))
            .map(|ok| ok.then_some(()))
        });
        if let Err(e) = ready {
            pids::signal(process.pid(), Signal::INT);
            let _ = process.stop();
            return Err(e);
        }
        Ok(process)
    }
}

/// A server certificate and key for [`Postgres::start_tls`] (PEM files).
#[derive(Debug, Clone, Copy)]
pub struct ServerTls<'a> {
    /// The certificate, for 127.0.0.1.
    pub cert: &'a Path,
    /// Its private key.
    pub key: &'a Path,
}

impl Postgres {
    /// Starts a server in a fresh temp dir of its own.
    pub fn start() -> Result<Self> {
        Self::launch(ScratchDir::new()?, None, false)
    }

    /// Starts a server in `parent/postgres` (which must not exist yet).
    pub fn start_in(parent: &Path) -> Result<Self> {
        Self::launch(ScratchDir::child(parent, "postgres")?, None, false)
    }

    /// [`Postgres::start_in`] as a benchmark wants it: `fsync` on (every
    /// commit durable, as SQLite's are) and 256 MB of shared buffers.
    pub fn start_durable_in(parent: &Path) -> Result<Self> {
        Self::launch(ScratchDir::child(parent, "postgres")?, None, true)
    }

    /// Starts a server that also listens on 127.0.0.1 ([`Postgres::tcp_url`]),
    /// where it takes TLS connections with `tls`'s certificate only: a
    /// connection there without TLS is refused (`pg_hba.conf`).
    pub fn start_tls(tls: ServerTls<'_>) -> Result<Self> {
        Self::launch(ScratchDir::new()?, Some(tls), false)
    }

    fn launch(dir: ScratchDir, tls: Option<ServerTls<'_>>, durable: bool) -> Result<Self> {
        tools::require_root()?;
        for tool in [INITDB, POSTGRES, PSQL] {
            tool.require()?;
        }
        let (uid, gid) = postgres_user()?;
        reachable_by_others(dir.path())?;
        let data = dir.path().join("data");
        let socket_dir = dir.path().join("socket");
        for path in [&data, &socket_dir] {
            std::fs::create_dir(path).map_err(Error::io(format!("create {}", path.display())))?;
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .map_err(Error::io(format!("chown {} to postgres", path.display())))?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
                .map_err(Error::io(format!("chmod {}", path.display())))?;
        }
        let mut initdb = Command::new("runuser");
        initdb
            .args([
                "-u",
                "postgres",
                "--",
                INITDB.path,
                "--no-sync",
                "-A",
                "trust",
            ])
            .args(["-U", "postgres", "-E", "UTF8", "--locale", "C.UTF-8", "-D"])
            .arg(&data);
        crate::command::checked(initdb)?;
        let hba = data.join("pg_hba.conf");
        let mut rules = format!("local all {PASSWORD_ROLE} scram-sha-256\nlocal all all trust\n");
        let mut listen = vec!["-c".to_owned(), "listen_addresses=".to_owned()];
        let port = if let Some(tls) = tls {
            for (from, to) in [(tls.cert, "server.crt"), (tls.key, "server.key")] {
                let to = data.join(to);
                std::fs::copy(from, &to).map_err(Error::io(format!(
                    "copy {} to {}",
                    from.display(),
                    to.display()
                )))?;
                std::os::unix::fs::chown(&to, Some(uid), Some(gid))
                    .map_err(Error::io(format!("chown {} to postgres", to.display())))?;
                std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600))
                    .map_err(Error::io(format!("chmod {}", to.display())))?;
            }
            rules.push_str(
                "hostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
            );
            listen = [
                "listen_addresses=127.0.0.1",
                "ssl=on",
                "ssl_cert_file=server.crt",
                "ssl_key_file=server.key",
            ]
            .iter()
            .flat_map(|c| ["-c".to_owned(), (*c).to_owned()])
            .collect();
            crate::wait::free_port()?
        } else {
            5432
        };
        std::fs::write(&hba, rules).map_err(Error::io(format!("write {}", hba.display())))?;
        let server = Server {
            data,
            socket_dir,
            port,
            listen,
            uid,
            gid,
            log: dir.path().join("postgres.log"),
            durable,
        };
        let process = server.spawn()?;
        Ok(Postgres {
            process: Some(process),
            server,
            dir,
        })
    }

    /// Stops the server by pid (a fast shutdown), keeping its data: a
    /// database outage, which [`Postgres::start_again`] ends.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut process) = self.process.take() {
            pids::signal(process.pid(), Signal::INT);
            process.stop()?;
        }
        Ok(())
    }

    /// Starts the stopped server again, on the same data, socket and port.
    pub fn start_again(&mut self) -> Result<()> {
        if self.process.is_none() {
            self.process = Some(self.server.spawn()?);
        }
        Ok(())
    }

    fn running(&self) -> &Process {
        self.process
            .as_ref()
            .unwrap_or_else(|| panic!("postgres {} is stopped", self.server.data.display()))
    }

    /// The directory of the server's Unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.server.socket_dir
    }

    /// The URL of database `db` as the trusted superuser `postgres`.
    pub fn url(&self, db: &str) -> String {
        let port = match self.server.port {
            5432 => String::new(),
            port => format!("&port={port}"),
        };
        format!(
            "postgres://postgres@/{db}?host={}{port}",
            self.server.socket_dir.display()
        )
    }

    /// The URL of database `db` over TCP on 127.0.0.1 (a server started
    /// with [`Postgres::start_tls`]: TLS only there).
    pub fn tcp_url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.server.port)
    }

    /// Runs `sql` as the superuser on database `db` (psql): its output,
    /// unaligned, without headers.
    pub fn sql(&self, db: &str, sql: &str) -> Result<String> {
        let mut psql = self.psql(db);
        psql.args(["-c", sql]);
        crate::command::checked(psql)
    }

    /// psql as the superuser on database `db` over the Unix socket,
    /// unaligned, without headers, stopping at the first error.
    fn psql(&self, db: &str) -> Command {
        let mut psql = Command::new(PSQL.path);
        psql.args(["-XqAt", "-v", "ON_ERROR_STOP=1", "-U", "postgres"])
            .args(["-p", &self.server.port.to_string()])
            .args(["-d", db, "-h"])
            .arg(&self.server.socket_dir);
        psql
    }

    /// A psql session on database `db`, as the superuser, kept open: what
    /// [`Session::send`] writes runs in it, in order (a transaction holding
    /// a lock, say), until the session is dropped.
    pub fn session(&self, db: &str) -> Result<Session> {
        let child = self
            .psql(db)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .map_err(Error::io(format!("start {} (a session)", PSQL.path)))?;
        Ok(Session { child })
    }

    /// The server's pid (the postmaster's). Panics while stopped.
    pub fn pid(&self) -> u32 {
        self.running().pid()
    }

    /// The server's log. Panics while stopped.
    pub fn log(&self) -> String {
        self.running().log()
    }

    /// The temp dir everything lives in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A tablespace `name` on a file system of its own that holds `bytes`
    /// (a tmpfs mounted in the server's dir, unmounted with it): a disk
    /// that fills up, for the tables put there, while the write-ahead log
    /// stays on the main disk. [`Postgres::resize_tablespace`] frees room.
    pub fn small_tablespace(&self, name: &str, bytes: u64) -> Result<()> {
        let at = self.tablespace_dir(name);
        std::fs::create_dir(&at).map_err(Error::io(format!("create {}", at.display())))?;
        let mut mount = Command::new("mount");
        mount
            .args(["-t", "tmpfs", "-o"])
            .arg(format!(
                "size={bytes},uid={},gid={},mode=0700",
                self.server.uid, self.server.gid
            ))
            .arg("tmpfs")
            .arg(&at);
        crate::command::checked(mount)?;
        self.sql(
            "postgres",
            &format!("CREATE TABLESPACE {name} LOCATION '{}'", at.display()),
        )
        .map(drop)
    }

    /// Gives the tablespace `name` of [`Postgres::small_tablespace`] room
    /// for `bytes` (what it holds stays).
    pub fn resize_tablespace(&self, name: &str, bytes: u64) -> Result<()> {
        let mut mount = Command::new("mount");
        mount
            .args(["-o", &format!("remount,size={bytes}")])
            .arg(self.tablespace_dir(name));
        crate::command::checked(mount).map(drop)
    }

    fn tablespace_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("tablespace-{name}"))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT is PostgreSQL's fast shutdown (SIGTERM would wait for
        // every client to leave); `stop` then waits, and kills if need be.
        let _ = self.stop();
    }
}

/// The uid and gid of the `postgres` user (the Debian package makes it).
fn postgres_user() -> Result<(u32, u32)> {
    let id = |flag: &str| {
        let mut command = Command::new("id");
        command.args([flag, "postgres"]);
        crate::command::checked(command).map(|out| out.trim().parse::<u32>())
    };
    let (uid, gid) = (id("-u")?, id("-g")?);
    match (uid, gid) {
        (Ok(uid), Ok(gid)) => Ok((uid, gid)),
        _ => Err(Error::unexpected(
            "the postgres user",
            "`id postgres` gave no numeric ids; is postgresql-15 installed (scripts/setup.sh)?",
        )),
    }
}

/// Opens `dir` to traversal by others (the server runs as `postgres`) and
/// checks that every directory above it allows it too.
fn reachable_by_others(dir: &Path) -> Result<()> {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))
        .map_err(Error::io(format!("chmod {}", dir.display())))?;
    for ancestor in dir.ancestors().skip(1) {
        let mode = std::fs::metadata(ancestor)
            .map_err(Error::io(format!("stat {}", ancestor.display())))?
            .permissions()
            .mode();
        if mode & 0o001 == 0 {
            return Err(Error::unexpected(
                format!("directory {}", ancestor.display()),
                format!(
                    "mode {:04o}: the postgres user cannot reach the server's dir below it; \
                     `chmod o+x` it (scripts/test.sh does so for its run dir)",
                    mode & 0o7777
                ),
            ));
        }
    }
    Ok(())
}

/// A psql session kept open ([`Postgres::session`]); dropping it ends it
/// (a transaction left open rolls back).
#[derive(Debug)]
pub struct Session {
    child: std::process::Child,
}

impl Session {
    /// Sends `sql` to the session, without waiting for it to run (check its
    /// effect from another connection).
    pub fn send(&mut self, sql: &str) -> Result<()> {
        use std::io::Write as _;
        let stdin = self.child.stdin.as_mut().expect("psql's stdin is piped");
        writeln!(stdin, "{sql}")
            .and_then(|()| stdin.flush())
            .map_err(Error::io("write to a psql session"))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // End of input ends psql; a session stuck on a lock is killed.
        drop(self.child.stdin.take());
        for _ in 0..50 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
