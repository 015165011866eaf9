//! [`Replicas`]: several `envparity serve` of one PostgreSQL database
//! behind an ordinary L4 load balancer (HAProxy in TCP mode), as docs/store.md
//! deploys them. The balancer sends connections to every replica that
//! listens; a standby passes them to the one holding the writer lease.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use super::Fleet;
use super::aggregator::Aggregator;
use crate::error::{Error, Result};
use crate::process::Process;
use crate::scratch::ScratchDir;
use crate::tools::HAPROXY;
use crate::wait::{free_port, wait_for};

/// How long a replica may take to serve once started.
const SERVE_TIMEOUT: Duration = Duration::from_secs(30);

/// Running replicas and their balancer; dropping it stops them all.
#[derive(Debug)]
pub struct Replicas {
    replicas: Vec<Aggregator>,
    scheme: String,
    port: u16,
    balancer: Process,
    _dir: ScratchDir,
}

impl Replicas {
    /// Puts HAProxy in front of `replicas` (started) and waits until one
    /// of them serves.
    pub(crate) fn start(fleet: &Fleet, replicas: Vec<Aggregator>) -> Result<Self> {
        let binary = HAPROXY.require()?;
        let dir = fleet.new_dir("balancer")?;
        let port = free_port()?;
        let config = dir.path().join("haproxy.cfg");
        // TCP only: TLS goes through to the replica. A replica that stops
        // listening is marked down within a check; a connection to it that
        // fails is dispatched to another.
        let mut text = format!(
            "global\n  maxconn 512\n\
             defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 1h\n  timeout server 1h\n  retries 3\n  option redispatch\n\
             frontend aggregator\n  bind 127.0.0.1:{port}\n  default_backend replicas\n\
             backend replicas\n  default-server inter 200ms fall 1 rise 1\n"
        );
        for (i, replica) in replicas.iter().enumerate() {
            text.push_str(&format!(
                "  server r{i} 127.0.0.1:{} check\n",
                replica.port()
            ));
        }
        std::fs::write(&config, text).map_err(Error::io(format!("write {}", config.display())))?;
        let mut command = Command::new(binary);
        command.arg("-db").arg("-f").arg(&config);
        let mut balancer =
            Process::spawn("load balancer", command, dir.path().join("haproxy.log"))?;
        balancer.wait_for_port(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), SERVE_TIMEOUT)?;
        let scheme = replicas[0]
            .url()
            .split("://")
            .next()
            .unwrap_or("https")
            .to_owned();
        let mut replicas = Replicas {
            replicas,
            scheme,
            port,
            balancer,
            _dir: dir,
        };
        replicas.wait_for_serving(SERVE_TIMEOUT)?;
        Ok(replicas)
    }

    /// `http(s)://127.0.0.1:PORT` of the balancer.
    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port)
    }

    /// How many replicas there are.
    pub fn len(&self) -> usize {
        self.replicas.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.replicas.is_empty()
    }

    /// Replica `i`.
    pub fn replica(&mut self, i: usize) -> &mut Aggregator {
        &mut self.replicas[i]
    }

    /// The replicas that serve now (running, holding the writer lease:
    /// their `/ready` says 200).
    pub fn serving(&mut self) -> Vec<usize> {
        (0..self.replicas.len())
            .filter(|&i| {
                let replica = &mut self.replicas[i];
                let up = replica.process().is_some_and(Process::is_running);
                up && replica
                    .metrics_url("/ready")
                    .and_then(|url| crate::http::get(&url).ok())
                    .is_some_and(|r| r.status == 200)
            })
            .collect()
    }

    /// Waits until exactly one replica serves; its index.
    pub fn wait_for_serving(&mut self, timeout: Duration) -> Result<usize> {
        self.balancer.ensure_running()?;
        wait_for(timeout, "one replica to serve", || {
            Ok(match self.serving().as_slice() {
                [one] => Some(*one),
                _ => None,
            })
        })
    }
}
