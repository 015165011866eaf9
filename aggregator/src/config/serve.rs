//! Every setting of `envparity serve` (and of `check-config` and `alerts
//! test`, which take the same), declared once: flag, variable, file key,
//! default, parser, check and help. [`ServeArgs`] makes the flags of the
//! table; `server::resolve` puts the values together into what `serve`
//! runs with, checking what needs the server's own types (TLS files, query
//! tokens, the rate limit), each error naming where its value came from.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgMatches, Command};
use envparity_settings::parse::{self, LogFormat};
use envparity_settings::{EnvSource, Flags, Origin, Setting, Sources, common};

use super::alerts::{self, AlertsConfig, AlertsRepr};
use super::store::{self, StoreUrl, postgres_target};
use super::{ConfigError, defaults};
use crate::parity::{Policy, PolicyError};
use crate::store::PgTarget;

envparity_settings::declare! {
    /// The settings of `serve`, in the order `--help` and `check-config`
    /// show them.
    pub TABLE;

    /// `--config`.
    pub CONFIG: Setting<PathBuf> = common::CONFIG
        .help("Configuration file (TOML; docs/alerting.md and deploy/config/aggregator.toml \
               show every key; keys are the long flag names with `_`). Alert sinks are \
               configured only here.");
    /// `--listen`.
    pub LISTEN: Setting<SocketAddr> = Setting::new("listen", parse::socket_addr)
        .flag("listen")
        .var("ENVPARITY_LISTEN")
        .value_name("ADDR")
        .default(|| defaults::LISTEN)
        .help("Address for the gRPC API (reports, queries, health, reflection).");
    /// `--data-dir`.
    pub DATA_DIR: Setting<PathBuf> = Setting::path("data_dir")
        .flag("data-dir")
        .var("ENVPARITY_DATA_DIR")
        .value_name("PATH")
        .default(|| PathBuf::from(defaults::DATA_DIR))
        .help("Directory of the embedded store (SQLite, WAL mode). Created if missing. The \
               same as --store sqlite://PATH.");
    /// `--store`.
    pub STORE: Setting<StoreUrl> = Setting::new("store", store::parse)
        .flag("store")
        .var("ENVPARITY_STORE")
        .value_name("URL")
        .default_text("sqlite://DATA_DIR (--data-dir)")
        .help("Where the store lives: sqlite://PATH (the embedded store, as --data-dir PATH) \
               or postgres://USER@HOST[:PORT]/DATABASE (a Unix socket: \
               postgres://USER@/DATABASE?host=/run/postgresql). Several replicas may serve one \
               database: one at a time, the others stand by (--lease-ttl, docs/store.md). A URL with a password is refused: see \
               --store-password-file. PGHOST, PGPORT, PGUSER, PGDATABASE and PGPASSWORD fill \
               what the URL leaves out.");
    /// `--store-password-file`.
    pub STORE_PASSWORD_FILE: Setting<PathBuf> = Setting::path("store_password_file")
        .flag("store-password-file")
        .var("ENVPARITY_STORE_PASSWORD_FILE")
        .value_name("FILE")
        .default_text("PGPASSWORD, else none")
        .help("File holding the PostgreSQL password (owner-only mode, e.g. 0600). Without \
               it, PGPASSWORD is used if set.");
    /// `--store-ca-file`.
    pub STORE_CA_FILE: Setting<PathBuf> = Setting::path("store_ca_file")
        .flag("store-ca-file")
        .var("ENVPARITY_STORE_CA_FILE")
        .value_name("FILE")
        .default_text("none: no TLS")
        .help("PEM file of the CA certificate(s) the PostgreSQL server's certificate must \
               chain to. With it, every connection to the store goes over TLS, verified \
               (the chain and the host name, as libpq's sslmode=verify-full); without it, \
               none does: use a Unix socket or a network you trust (docs/store.md).");
    /// `--lease-ttl`.
    pub LEASE_TTL: Setting<Duration> = Setting::new("lease_ttl", parse::duration)
        .flag("lease-ttl")
        .var("ENVPARITY_LEASE_TTL")
        .value_name("DURATION")
        .default(|| defaults::LEASE_TTL)
        .check(lease_ttl)
        .help("On PostgreSQL, how long the writer lease lasts unless renewed (every third of \
               it). Replicas of one database take turns: the lease's holder serves, the others \
               wait as standbys, listening on nothing, and one takes over once the lease \
               expired (docs/store.md). Between 1s and 10m. Unused on SQLite.");
    /// `--advertise`.
    pub ADVERTISE: Setting<String> = Setting::new("advertise", advertise)
        .flag("advertise")
        .var("ENVPARITY_ADVERTISE")
        .value_name("HOST:PORT")
        .default_text("the listen address; HOSTNAME:PORT when it listens on every address")
        .help("On PostgreSQL, where the other replicas reach this one's gRPC port: while it \
               serves, standbys pass the connections they are sent to this address \
               (docs/store.md). On Kubernetes, the pod's IP and port.");
    /// `--max-connection-age`.
    pub MAX_CONNECTION_AGE: Setting<Duration> = Setting::new("max_connection_age", parse::duration)
        .flag("max-connection-age")
        .var("ENVPARITY_MAX_CONNECTION_AGE")
        .value_name("DURATION")
        .default_text("none: a connection lasts as long as its client keeps it")
        .check(max_connection_age)
        .help("Closes each gRPC connection gracefully once it is this old (HTTP/2 GOAWAY; calls \
               in flight get up to a minute to finish): its client connects again, through \
               the load balancer, so that long-lived connections spread over replicas that \
               came up later. Clients reconnect without failing a call. At least 1s; with \
               many hosts keep it long (30m: a handshake per host every half hour).");
    /// `--stale-after`.
    pub STALE_AFTER: Setting<Duration> = Setting::new("stale_after", parse::duration)
        .flag("stale-after")
        .var("ENVPARITY_STALE_AFTER")
        .value_name("DURATION")
        .default(|| defaults::STALE_AFTER)
        .help("A host not heard from for this long is shown as stale.");
    /// `--policy`.
    pub POLICY: Setting<PathBuf> = Setting::path("policy")
        .flag("policy")
        .var("ENVPARITY_POLICY")
        .value_name("PATH")
        .default_text("built-in defaults")
        .check(policy_file)
        .help("The policy file (TOML; see docs/findings.md). Without it the built-in defaults \
               apply (`envparity policy show` prints them). Reloaded on SIGHUP; a bad file then \
               is logged and the last good policy stays.");
    /// `--tls-cert`.
    pub TLS_CERT: Setting<PathBuf> = common::TLS_CERT
        .help("The server's TLS certificate chain (PEM). With --tls-key and --tls-client-ca, \
               gRPC is TLS 1.3 and callers are identified by client certificate \
               (docs/security.md).");
    /// `--tls-key`.
    pub TLS_KEY: Setting<PathBuf> = common::TLS_KEY
        .help("The server's TLS key (PEM).");
    /// `--tls-client-ca`.
    pub TLS_CLIENT_CA: Setting<PathBuf> = Setting::path("tls_client_ca")
        .flag("tls-client-ca")
        .var("ENVPARITY_TLS_CLIENT_CA")
        .value_name("PEM")
        .help("CA certificate(s) (PEM) that agent and query client certificates must chain \
               to.");
    /// `--insecure-plaintext`, a flag of every command (`envparity --help`).
    pub INSECURE_PLAINTEXT: Setting<bool> = common::INSECURE_PLAINTEXT
        .inherited()
        .help("Serve plain-text gRPC (no TLS) on a loopback listen address.");
    /// `--insecure-plaintext-anywhere`, a flag of every command.
    pub INSECURE_PLAINTEXT_ANYWHERE: Setting<bool> = common::INSECURE_PLAINTEXT_ANYWHERE
        .inherited()
        .help("Serve plain-text gRPC on any listen address.");
    /// `--query-tokens-file`.
    pub QUERY_TOKENS_FILE: Setting<PathBuf> = Setting::path("query_tokens_file")
        .flag("query-tokens-file")
        .var("ENVPARITY_QUERY_TOKENS_FILE")
        .value_name("FILE")
        .default_text("none")
        .help("Query bearer tokens: `NAME sha256:HEX` per line (`envparity query-token` makes \
               them).");
    /// `--report-rate`.
    pub REPORT_RATE: Setting<f64> = Setting::new("report_rate", parse::number)
        .flag("report-rate")
        .var("ENVPARITY_REPORT_RATE")
        .value_name("PER_SECOND")
        .number()
        .default(|| defaults::REPORT_RATE)
        .help("Reports (snapshots and heartbeats) each host may send per second on average; \
               faster ones get RESOURCE_EXHAUSTED before they are looked at.");
    /// `--report-burst`.
    pub REPORT_BURST: Setting<u32> = Setting::new("report_burst", parse::number)
        .flag("report-burst")
        .var("ENVPARITY_REPORT_BURST")
        .value_name("COUNT")
        .number()
        .default(|| defaults::REPORT_BURST)
        .help("Reports a host may send at once after a quiet period.");
    /// `--max-plaintext-hosts`.
    pub MAX_PLAINTEXT_HOSTS: Setting<usize> = Setting::new("max_plaintext_hosts", parse::number)
        .flag("max-plaintext-hosts")
        .var("ENVPARITY_MAX_PLAINTEXT_HOSTS")
        .value_name("COUNT")
        .number()
        .default(|| defaults::MAX_PLAINTEXT_HOSTS)
        .check(max_plaintext_hosts)
        .help("In plain text (no certificates, so anyone who reaches the port can report), the \
               most hosts the aggregator accepts; a report from a new host beyond it gets \
               RESOURCE_EXHAUSTED.");
    /// `--metrics-listen`.
    pub METRICS_LISTEN: Setting<SocketAddr> = common::METRICS_LISTEN
        .help("Serve Prometheus metrics (OpenMetrics) at http://ADDR/metrics.");
    /// `--web-listen`.
    pub WEB_LISTEN: Setting<SocketAddr> = Setting::new("web_listen", parse::socket_addr)
        .flag("web-listen")
        .var("ENVPARITY_WEB_LISTEN")
        .value_name("ADDR")
        .default_text("off")
        .help("Serve the web view (docs/web.md) on ADDR: over TLS with the server's \
               certificate when TLS is configured, else in plain text under the rules of \
               --insecure-plaintext.");
    /// `--log-format`.
    pub LOG_FORMAT: Setting<LogFormat> = common::LOG_FORMAT
        .help("Log format on stderr: text or json. The level comes from RUST_LOG (default \
               `info`).");
    /// `[alerts]`: the alerting severity and the sinks (docs/alerting.md).
    pub ALERTS: Setting<AlertsRepr> = Setting::table("alerts")
        .default_text("none: no sink, no alert is sent")
        .help("Where alerts go: `min_severity`, `base_url` and `[[alerts.sinks]]` \
               (docs/alerting.md). In the file only: sinks name secret files.");
}

fn policy_file(path: PathBuf) -> Result<PathBuf, String> {
    read_policy(&path).map_err(|e| e.to_string())?;
    Ok(path)
}

/// Reads and validates a policy file (`serve` reads it again on SIGHUP).
pub fn read_policy(path: &Path) -> Result<Policy, PolicyError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
        origin: origin.clone(),
        message: format!("cannot read the file: {e}"),
    })?;
    Policy::from_toml(&text, &origin)
}

fn advertise(text: &str) -> Result<String, String> {
    let port = text
        .rsplit_once(':')
        .filter(|(host, _)| !host.is_empty())
        .and_then(|(_, port)| port.parse::<u16>().ok())
        .filter(|port| *port != 0);
    match port {
        Some(_) => Ok(text.to_owned()),
        None => Err(format!(
            "{text:?} is not HOST:PORT (a host name or IP address, a colon and a port from 1 to 65535; [IPv6]:PORT)"
        )),
    }
}

fn lease_ttl(ttl: Duration) -> Result<Duration, String> {
    if !(Duration::from_secs(1)..=Duration::from_secs(600)).contains(&ttl) {
        return Err(format!(
            "is {}: give between 1s (renewed every third of it, so a slow database \
             would lose it) and 10m (a standby waits that long after a crash)",
            humantime::format_duration(ttl)
        ));
    }
    Ok(ttl)
}

fn max_connection_age(age: Duration) -> Result<Duration, String> {
    if age < Duration::from_secs(1) {
        return Err(format!(
            "is {}: give at least 1s (every client would reconnect all the time), or leave \
             it out to keep connections",
            humantime::format_duration(age)
        ));
    }
    Ok(age)
}

fn max_plaintext_hosts(hosts: usize) -> Result<usize, String> {
    if hosts == 0 {
        return Err("is 0: no host could ever report; give at least 1".to_owned());
    }
    Ok(hosts)
}

/// The flags of `serve` (and `check-config`, `alerts test`): each setting
/// of [`TABLE`] that has one. Each can also be set by its environment
/// variable or in the `--config` file; flags win over the environment,
/// which wins over the file.
#[derive(Debug, Clone, Default)]
pub struct ServeArgs {
    flags: Flags,
}

impl clap::FromArgMatches for ServeArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(ServeArgs {
            flags: Flags::from(matches),
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.flags = Flags::from(matches);
        Ok(())
    }
}

impl clap::Args for ServeArgs {
    fn augment_args(cmd: Command) -> Command {
        TABLE.augment(cmd, false)
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl ServeArgs {
    /// The flags, the environment and the config file they name (read and
    /// checked), for `server::resolve` to ask.
    pub fn sources<'a>(&'a self, env: &'a dyn EnvSource) -> Result<Sources<'a>, ConfigError> {
        Sources::new(&TABLE, &self.flags, env).open(&CONFIG)
    }
}

/// `[alerts]` of the file, its secrets read; the defaults without one.
pub fn alerts_of(sources: &Sources<'_>) -> Result<AlertsConfig, ConfigError> {
    let Some(repr) = sources.get(&ALERTS)? else {
        return Ok(AlertsConfig::default());
    };
    let base = sources
        .file()
        .and_then(|f| f.path().parent())
        .unwrap_or(Path::new(""));
    alerts::resolve(repr.value.clone(), base).map_err(|message| repr.invalid(message))
}

/// The config file alone, checked as `serve` checks it: every key, and
/// `[alerts]` with every secret file it names (what fuzzing reads).
#[derive(Debug, Clone)]
pub struct FileConfig {
    /// `[alerts]`.
    pub alerts: AlertsConfig,
}

impl FileConfig {
    /// Reads and validates `path`, reading every secret file it names.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let (flags, env) = (
            Flags::default(),
            std::collections::BTreeMap::<&str, &str>::new(),
        );
        let sources = Sources::new(&TABLE, &flags, &env).read(path)?;
        Ok(FileConfig {
            alerts: alerts_of(&sources)?,
        })
    }
}

/// `--store` (or `--data-dir`) resolved: the SQLite directory, and the
/// PostgreSQL database when `--store` names one (with its password and the
/// `PG*` variables it leaves to the environment). Each error names the
/// setting and where its value came from.
pub fn resolve_store(
    sources: &Sources<'_>,
    env: &dyn EnvSource,
) -> Result<(PathBuf, Option<PgTarget>), ConfigError> {
    let data_dir = sources.value(&DATA_DIR)?;
    let password_file = sources.get(&STORE_PASSWORD_FILE)?;
    let ca_file = sources.get(&STORE_CA_FILE)?;
    let Some(store) = sources.get(&STORE)? else {
        if let Some(file) = password_file.or(ca_file) {
            return Err(file.invalid("is only for --store postgres://…, which is not set"));
        }
        return Ok((data_dir.value, None));
    };
    if !matches!(data_dir.origin, Origin::Default(_)) {
        return Err(store.invalid(format!(
            "and {} are both set; keep one (--store sqlite://PATH is --data-dir PATH)",
            data_dir.origin
        )));
    }
    match &store.value {
        StoreUrl::Sqlite(path) => {
            if let Some(file) = password_file.or(ca_file) {
                return Err(file.invalid("is only for --store postgres://…, not sqlite://"));
            }
            Ok((path.clone(), None))
        }
        StoreUrl::Postgres(url) => {
            let target = postgres_target(
                url,
                password_file.as_ref().map(|f| f.value.as_path()),
                ca_file.as_ref().map(|f| f.value.as_path()),
                env,
            )
            .map_err(|m| match (&password_file, &ca_file) {
                (Some(file), _) if m.starts_with("store password file") => file.invalid(m),
                (_, Some(file)) if m.starts_with("store CA file") => file.invalid(m),
                _ => store.invalid(m),
            })?;
            Ok((data_dir.value, Some(target)))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// `resolve` over the variables `vars` (flags and files resolve the
    /// same way: the settings crate's tests).
    fn resolved(vars: &[(&str, &str)]) -> Result<(PathBuf, Option<PgTarget>), String> {
        let env: BTreeMap<&str, &str> = vars.iter().copied().collect();
        let flags = envparity_settings::Flags::default();
        let sources = Sources::new(&TABLE, &flags, &env);
        resolve_store(&sources, &env).map_err(|e| e.to_string())
    }

    #[test]
    fn the_store_is_the_data_dir_unless_set_and_never_both() {
        let (dir, pg) = resolved(&[]).unwrap();
        assert_eq!(dir, PathBuf::from(crate::config::defaults::DATA_DIR));
        assert!(pg.is_none());
        let (dir, _) = resolved(&[("ENVPARITY_STORE", "sqlite:///srv/ep")]).unwrap();
        assert_eq!(dir, PathBuf::from("/srv/ep"));
        let err = resolved(&[
            ("ENVPARITY_STORE", "sqlite:///srv/ep"),
            ("ENVPARITY_DATA_DIR", "/srv/other"),
        ])
        .unwrap_err();
        assert!(
            err.contains("ENVPARITY_STORE") && err.contains("both"),
            "{err}"
        );
        let err = resolved(&[("ENVPARITY_STORE", "postgres://u:pw@db/x")]).unwrap_err();
        assert!(
            err.contains("ENVPARITY_STORE") && err.contains("password"),
            "{err}"
        );
        let (_, pg) = resolved(&[("ENVPARITY_STORE", "postgres://u@db/x")]).unwrap();
        assert_eq!(pg.unwrap().name(), "postgres://u@db:5432/x");
    }

    #[test]
    fn the_password_comes_from_an_owner_only_file_before_pgpassword() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\n").unwrap();
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let file = file.to_str().unwrap();
        let (_, pg) = resolved(&[
            ("ENVPARITY_STORE", "postgres://u@db/x"),
            ("ENVPARITY_STORE_PASSWORD_FILE", file),
            ("PGPASSWORD", "from-env"),
        ])
        .unwrap();
        assert_eq!(pg.unwrap().config().get_password(), Some(&b"from-file"[..]));
        std::fs::set_permissions(file, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        let err = resolved(&[
            ("ENVPARITY_STORE", "postgres://u@db/x"),
            ("ENVPARITY_STORE_PASSWORD_FILE", file),
        ])
        .unwrap_err();
        assert!(
            err.contains("ENVPARITY_STORE_PASSWORD_FILE") && err.contains("chmod 600"),
            "{err}"
        );
        let err = resolved(&[("ENVPARITY_STORE_PASSWORD_FILE", file)]).unwrap_err();
        assert!(err.contains("only for --store postgres"), "{err}");
    }
}
