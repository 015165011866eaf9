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
/// `PGPASSWORD`).
pub fn postgres_target(
    url: &str,
    password_file: Option<&Path>,
    env: &dyn EnvSource,
) -> Result<PgTarget, String> {
    let mut config = tokio_postgres::Config::from_str(url)
        .map_err(|e| format!("is not a PostgreSQL URL ({e})"))?;
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
    Ok(PgTarget::new(config))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn a_url_with_a_password_is_refused_without_repeating_it() {
        let env = BTreeMap::<&str, &str>::new();
        let err =
            postgres_target("postgres://envparity:hunter2@db/envparity", None, &env).unwrap_err();
        assert!(err.contains("holds a password"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        assert!(postgres_target("postgres://envparity@db/envparity", None, &env).is_ok());
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
        let target = postgres_target("postgres://", None, &env).unwrap();
        assert_eq!(
            target.name(),
            "postgres://ops@/fleet?host=/tmp/pg&port=5433"
        );
        assert_eq!(target.config().get_password(), Some(&b"s3cret"[..]));
        let target = postgres_target("postgres://me@db:6000/x", None, &env).unwrap();
        assert_eq!(target.name(), "postgres://me@db:6000/x");
        let err =
            postgres_target("postgres://db/x", None, &BTreeMap::<&str, &str>::new()).unwrap_err();
        assert!(err.contains("PGUSER"), "{err}");
    }
}
