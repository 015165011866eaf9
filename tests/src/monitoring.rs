//! A real Alertmanager and a real Prometheus (Debian's), each on a loopback
//! port under the fleet's dir, stopped by pid when dropped.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::fleet::Fleet;
use crate::http;
use crate::process::Process;
use crate::scratch::ScratchDir;
use crate::tools::{ALERTMANAGER, PROMETHEUS, Tool};
use crate::wait::{free_port, wait_until};

const START_TIMEOUT: Duration = Duration::from_secs(30);

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(Error::io(format!("write {}", path.display())))
}

fn wait_ready(process: &mut Process, base: &str) -> Result<()> {
    let url = format!("{base}/-/ready");
    process.wait_for_port(
        base.trim_start_matches("http://")
            .parse::<SocketAddr>()
            .map_err(|e| Error::Unexpected {
                what: base.to_owned(),
                detail: e.to_string(),
            })?,
        START_TIMEOUT,
    )?;
    wait_until(START_TIMEOUT, format!("{} ready", process.name()), || {
        http::get(&url).is_ok_and(|r| r.status == 200)
    })
}

/// Starts `tool` with `config` written to `<dir>/<kind>.yml`, on a free
/// loopback port, with the flags `args(config, data dir, listen)` give, and
/// waits until it answers `/-/ready`.
fn launch(
    fleet: &Fleet,
    tool: Tool,
    kind: &str,
    config: &str,
    args: impl FnOnce(&Path, &Path, SocketAddr) -> Vec<String>,
) -> Result<(String, Process, ScratchDir)> {
    let binary = tool.require()?;
    let dir = fleet.new_dir(kind)?;
    let config_file = dir.path().join(format!("{kind}.yml"));
    write(&config_file, config)?;
    let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
    let mut command = Command::new(binary);
    command.args(args(&config_file, &dir.path().join("data"), listen));
    let mut process = Process::spawn(
        format!("{kind} {listen}"),
        command,
        dir.path().join(format!("{kind}.log")),
    )?;
    let url = format!("http://{listen}");
    wait_ready(&mut process, &url)?;
    Ok((url, process, dir))
}

/// A running Alertmanager (API v2 at [`Alertmanager::url`]).
#[derive(Debug)]
pub struct Alertmanager {
    url: String,
    _process: Process,
    _dir: ScratchDir,
}

impl Alertmanager {
    /// Starts one with a route to a receiver that sends nowhere: the test
    /// reads alerts through the API, which is what envparity writes to.
    pub fn start(fleet: &Fleet) -> Result<Self> {
        let (url, process, dir) = launch(
            fleet,
            ALERTMANAGER,
            "alertmanager",
            "route:\n  receiver: nowhere\n  group_wait: 1s\nreceivers:\n  - name: nowhere\n",
            |config, data, listen| {
                vec![
                    format!("--config.file={}", config.display()),
                    format!("--storage.path={}", data.display()),
                    format!("--web.listen-address={listen}"),
                    // Standalone: no gossip port.
                    "--cluster.listen-address=".to_owned(),
                ]
            },
        )?;
        Ok(Alertmanager {
            url,
            _process: process,
            _dir: dir,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `GET /api/v2/alerts`: every alert Alertmanager holds.
    pub fn alerts(&self) -> Result<Vec<serde_json::Value>> {
        let r = http::get(&format!("{}/api/v2/alerts", self.url))?;
        let v: serde_json::Value =
            serde_json::from_str(&r.body).map_err(|e| Error::Unexpected {
                what: "Alertmanager /api/v2/alerts".into(),
                detail: format!("{e}: {}", r.body),
            })?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }
}

/// A running Prometheus scraping the given targets every second.
#[derive(Debug)]
pub struct Prometheus {
    url: String,
    _process: Process,
    _dir: ScratchDir,
}

impl Prometheus {
    /// Starts one scraping `targets` (`host:port`, path `/metrics`) as job
    /// `envparity`, with `rule_files` loaded.
    pub fn start(fleet: &Fleet, targets: &[String], rule_files: &[&Path]) -> Result<Self> {
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let rules: Vec<String> = rule_files
            .iter()
            .map(|r| format!("  - '{}'\n", r.display()))
            .collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n{}scrape_configs:\n  - job_name: envparity\n    static_configs:\n      - targets: [{}]\n",
            if rules.is_empty() {
                "  []\n".to_owned()
            } else {
                rules.concat()
            },
            targets.join(", ")
        );
        let (url, process, dir) = launch(
            fleet,
            PROMETHEUS,
            "prometheus",
            &config,
            |config, data, listen| {
                vec![
                    format!("--config.file={}", config.display()),
                    format!("--storage.tsdb.path={}", data.display()),
                    format!("--web.listen-address={listen}"),
                ]
            },
        )?;
        Ok(Prometheus {
            url,
            _process: process,
            _dir: dir,
        })
    }

    /// `GET /api/v1/<path>` as JSON.
    pub fn api(&self, path: &str) -> Result<serde_json::Value> {
        let r = http::get(&format!("{}/api/v1/{path}", self.url))?;
        serde_json::from_str(&r.body).map_err(|e| Error::Unexpected {
            what: format!("Prometheus /api/v1/{path}"),
            detail: format!("{e}: {}", r.body),
        })
    }
}
