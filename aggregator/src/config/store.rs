//! Where the store lives (`--store`): the embedded SQLite database
//! (`sqlite://PATH`, as `--data-dir PATH`) or a PostgreSQL database
//! (`postgres://USER@HOST/DATABASE`, docs/store.md).
//!
//! A password never goes in the URL, where process lists, shell history
//! and logs would show it: a URL holding one is refused. It comes from
//! `--store-password-file`, else `PGPASSWORD`. tokio-postgres reads no
//! environment variable itself; of libpq's, [`PG_VARS`] are read here, each
//! only for what the URL leaves out.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use envparity_settings::EnvSource;

use crate::store::PgTarget;

/// The libpq variables envparity reads, each for what the URL leaves out
/// (`PGPASSWORD` only without `--store-password-file`). Others (`PGSSLMODE`,
/// `PGPASSFILE`, `PGSERVICE`, …) are not read.
pub const PG_VARS: [&str; 5] = ["PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD"];

/// The socket directory used when neither the URL nor `PGHOST` names a
/// host: Debian's (libpq's default there).
pub const DEFAULT_PG_SOCKET_DIR: &str = "/var/run/postgresql";

/// What `--store` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `sqlite://PATH`: the data directory of the embedded store.
    Sqlite(PathBuf),
    /// `postgres://…` (or `postgresql://…`), without a password.
    Postgres(String),
}

impl envparity_settings::Show for StoreUrl {
    fn show(&self) -> String {
        match self {
            StoreUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
            // A URL with a password is refused before anything is shown;
            // should one be shown anyway, it is not.
            StoreUrl::Postgres(url) => match tokio_postgres::Config::from_str(url) {
                Ok(c) if c.get_password().is_none() => url.clone(),
                _ => "postgres://(not shown)".to_owned(),
            },
        }
    }
}

/// Parses a `--store` value: its scheme only. A PostgreSQL URL is checked
/// by [`postgres_target`], whose errors never repeat it (it may hold a
/// password, and a parser's error would be printed with the value).
pub fn parse(text: &str) -> Result<StoreUrl, String> {
    if let Some(path) = text.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err("sqlite:// names no directory: write sqlite://PATH".to_owned());
        }
        return Ok(StoreUrl::Sqlite(PathBuf::from(path)));
    }
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        return Ok(StoreUrl::Postgres(text.to_owned()));
    }
    Err("is neither sqlite://PATH nor postgres://USER@HOST/DATABASE".to_owned())
}

/// The database `url` (a parsed [`StoreUrl::Postgres`]) names, completed
/// from [`PG_VARS`] in `env`, with the password of `password_file` (else
/// `PGPASSWORD`), over TLS verified against `ca_file` when given.
pub fn postgres_target(
    url: &str,
    password_file: Option<&Path>,
    ca_file: Option<&Path>,
    env: &dyn EnvSource,
) -> Result<PgTarget, String> {
    use tokio_postgres::config::SslMode;
    let mut config = tokio_postgres::Config::from_str(url)
        .map_err(|e| format!("is not a PostgreSQL URL ({e})"))?;
    match (config.get_ssl_mode(), ca_file) {
        (SslMode::Require, None) => {
            return Err(
                "asks for sslmode=require, but no CA is given to verify the \
                        server's certificate against: set --store-ca-file (envparity \
                        always verifies the certificate and the host name)"
                    .to_owned(),
            );
        }
        (SslMode::Disable, Some(_)) => {
            return Err("says sslmode=disable, but --store-ca-file asks for TLS: \
                        keep one"
                .to_owned());
        }
        _ => {}
    }
    if config.get_password().is_some() {
        return Err(
            "holds a password; a password never goes in the URL (process lists, \
                    logs and shell history would show it): put it in the file \
                    --store-password-file names, or in PGPASSWORD"
                .to_owned(),
        );
    }
    if config.get_hosts().is_empty() {
        let hosts = env
            .var("PGHOST")
            .unwrap_or_else(|| DEFAULT_PG_SOCKET_DIR.to_owned());
        for host in hosts.split(',') {
            config.host(host);
        }
    }
    if config.get_ports().is_empty()
        && let Some(port) = env.var("PGPORT")
    {
        let port = port
            .parse::<u16>()
            .map_err(|_| format!("PGPORT {port:?} is not a port number"))?;
        config.port(port);
    }
    if config.get_user().is_none() {
        let user = env
            .var("PGUSER")
            .ok_or("names no user: write postgres://USER@HOST/DATABASE or set PGUSER".to_owned())?;
        config.user(user);
    }
    if config.get_dbname().is_none()
        && let Some(db) = env.var("PGDATABASE")
    {
        config.dbname(db);
    }
    match password_file {
        Some(path) => {
            let secret = super::read_secret(path)
                .map_err(|e| format!("store password file {}: {e}", path.display()))?;
            config.password(secret.expose());
        }
        None => {
            if let Some(password) = env.var("PGPASSWORD") {
                config.password(password);
            }
        }
    }
    let target = PgTarget::new(config);
    Ok(match ca_file {
        Some(path) => target.with_tls(tls_verifying_with(path)?),
        None => target,
    })
}

/// A TLS client configuration that trusts the CA certificates of the PEM
/// file `path` only (TLS 1.2 and 1.3, what PostgreSQL speaks).
fn tls_verifying_with(path: &Path) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let shown = || format!("store CA file {}", path.display());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", shown()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", shown()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in the file", shown()));
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| format!("{}: {e}", shown()))?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("{}: {e}", shown()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(std::sync::Arc::new(config))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn a_url_with_a_password_is_refused_without_repeating_it() {
        let env = BTreeMap::<&str, &str>::new();
        let err = postgres_target(
            "postgres://envparity:hunter2@db/envparity",
            None,
            None,
            &env,
        )
        .unwrap_err();
        assert!(err.contains("holds a password"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        assert!(postgres_target("postgres://envparity@db/envparity", None, None, &env).is_ok());
    }

    /// TLS only with a CA to verify against, and never against what the
    /// URL says; a CA file that holds no certificate is named.
    #[test]
    fn tls_to_postgres_needs_a_ca_and_agrees_with_sslmode() {
        let env = BTreeMap::<&str, &str>::new();
        let err =
            postgres_target("postgres://u@db/x?sslmode=require", None, None, &env).unwrap_err();
        assert!(err.contains("--store-ca-file"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let cert = rcgen::generate_simple_self_signed(vec!["db".to_owned()]).unwrap();
        std::fs::write(&ca, cert.cert.pem()).unwrap();
        let err = postgres_target("postgres://u@db/x?sslmode=disable", None, Some(&ca), &env)
            .unwrap_err();
        assert!(err.contains("keep one"), "{err}");
        let target = postgres_target("postgres://u@db/x", None, Some(&ca), &env).unwrap();
        assert!(target.uses_tls());
        assert_eq!(
            target.config().get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        assert!(
            !postgres_target("postgres://u@db/x", None, None, &env)
                .unwrap()
                .uses_tls()
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = postgres_target("postgres://u@db/x", None, Some(&empty), &env).unwrap_err();
        assert!(
            err.contains("store CA file") && err.contains("empty.pem") && err.contains("no PEM"),
            "{err}"
        );
    }

    #[test]
    fn sqlite_urls_name_a_directory_and_other_schemes_are_refused() {
        assert_eq!(
            parse("sqlite:///var/lib/envparity").unwrap(),
            StoreUrl::Sqlite("/var/lib/envparity".into())
        );
        assert!(parse("sqlite://").is_err());
        assert!(parse("mysql://x@y/z").unwrap_err().contains("neither"));
    }

    #[test]
    fn pg_variables_fill_what_the_url_leaves_out() {
        let env = BTreeMap::from([
            ("PGHOST", "/tmp/pg"),
            ("PGUSER", "ops"),
            ("PGDATABASE", "fleet"),
            ("PGPASSWORD", "s3cret"),
            ("PGPORT", "5433"),
        ]);
        let target = postgres_target("postgres://", None, None, &env).unwrap();
        assert_eq!(
            target.name(),
            "postgres://ops@/fleet?host=/tmp/pg&port=5433"
        );
        assert_eq!(target.config().get_password(), Some(&b"s3cret"[..]));
        let target = postgres_target("postgres://me@db:6000/x", None, None, &env).unwrap();
        assert_eq!(target.name(), "postgres://me@db:6000/x");
        let err = postgres_target(
            "postgres://db/x",
            None,
            None,
            &BTreeMap::<&str, &str>::new(),
        )
        .unwrap_err();
        assert!(err.contains("PGUSER"), "{err}");
    }
}
