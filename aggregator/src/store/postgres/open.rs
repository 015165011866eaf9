//! Connecting: the database a `postgres://` setting names ([`PgTarget`]),
//! the store's runtime and connection pool, the schema on open, and the
//! checks of `check-config`.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::config::Host;

use super::PgStore;
use super::schema;
use crate::store::Migrated;
use crate::store::StoreError;

/// Connections the store keeps open at most: calls come from the blocking
/// pool, and a few at once keep ingest and queries from waiting on each
/// other.
const POOL_SIZE: usize = 4;
/// How long a call waits for a connection, and for one to be made, before
/// it fails (a database that went away fails calls, not hangs them).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A PostgreSQL database to use: where it is, who connects, and the
/// password (never part of the URL; see `config::store`).
#[derive(Clone)]
pub struct PgTarget {
    config: tokio_postgres::Config,
    name: String,
    /// TLS to the server, verified against the CA given
    /// ([`PgTarget::with_tls`]); `None`: no encryption.
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The name, never the password.
        f.write_str(&self.name)
    }
}

impl PgTarget {
    /// The database `config` describes (host, user and database set).
    pub fn new(mut config: tokio_postgres::Config) -> Self {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("envparity");
        let name = name_of(&config);
        PgTarget {
            config,
            name,
            tls: None,
        }
    }

    /// The same database over TLS, required: the server's certificate must
    /// chain to `tls`'s roots and name the host connected to.
    pub fn with_tls(mut self, tls: std::sync::Arc<rustls::ClientConfig>) -> Self {
        self.config
            .ssl_mode(tokio_postgres::config::SslMode::Require);
        self.tls = Some(tls);
        self
    }

    /// Whether connections go over TLS.
    pub fn uses_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The database a complete URL names, for the tests (`serve` reads
    /// `--store` through `config::store`, which also takes the `PG*`
    /// variables and the password file).
    #[cfg(test)]
    pub(crate) fn from_url(url: &str) -> Self {
        use std::str::FromStr as _;
        Self::new(tokio_postgres::Config::from_str(url).expect("a PostgreSQL URL"))
    }

    /// How errors and logs name the database: user, host (or socket) and
    /// database, never the password.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The connection settings.
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// An error of `context` on this database.
    pub(super) fn error(&self, context: &'static str, e: &tokio_postgres::Error) -> StoreError {
        StoreError::Postgres {
            store: self.name.clone(),
            context,
            reason: describe(e),
        }
    }

    /// A pool that could not give a connection.
    pub(super) fn pool_error(&self, e: &deadpool_postgres::PoolError) -> StoreError {
        let reason = match e {
            deadpool_postgres::PoolError::Backend(e) => describe(e),
            deadpool_postgres::PoolError::Timeout(_) => format!(
                "no connection within {}s (is the server up and reachable?)",
                CONNECT_TIMEOUT.as_secs()
            ),
            e => describe(e),
        };
        StoreError::Postgres {
            store: self.name.clone(),
            context: "connect",
            reason,
        }
    }
}

/// `postgres://USER@HOST:PORT/DATABASE`, a Unix socket shown as its
/// directory (`postgres://USER@/DATABASE?host=/run/postgresql`).
fn name_of(config: &tokio_postgres::Config) -> String {
    let user = config.get_user().unwrap_or("");
    let db = config.get_dbname().unwrap_or(user);
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let mut tcp = Vec::new();
    let mut sockets = Vec::new();
    for host in config.get_hosts() {
        match host {
            Host::Tcp(h) => tcp.push(format!("{h}:{port}")),
            Host::Unix(p) => sockets.push(p.display().to_string()),
        }
    }
    let mut name = format!("postgres://{user}@{}/{db}", tcp.join(","));
    if !sockets.is_empty() {
        name.push_str(&format!("?host={}", sockets.join(",")));
        if port != 5432 {
            name.push_str(&format!("&port={port}"));
        }
    }
    name
}

/// An error and its causes on one line: tokio-postgres says "db error" and
/// keeps the server's message (e.g. "password authentication failed for
/// user ...") in its source.
fn describe(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

impl PgStore {
    /// Connects to `target` and brings its schema to this build's version
    /// (see [`PgStore::migrate`]); refuses a newer schema.
    pub fn open(target: &PgTarget) -> Result<Self, StoreError> {
        let store = Self::connect(target)?;
        let migrated = store.block_on(store.migrate_schema())?;
        if let Some(from) = migrated.from.filter(|from| *from != migrated.to) {
            tracing::info!(store = %target.name(), from, to = migrated.to, "migrated the store's schema");
        }
        Ok(store)
    }

    /// Connects to `target` and migrates its schema, once
    /// (`envparity migrate`): what it found and what it left.
    pub fn migrate(target: &PgTarget) -> Result<Migrated, StoreError> {
        let store = Self::connect(target)?;
        store.block_on(store.migrate_schema())
    }

    /// Checks, without changing anything, that `target` can be used
    /// (`check-config`): it answers, the password is right, its schema is
    /// not newer than this build's, and the user may create and write
    /// tables. The schema version found, `None` on an empty database.
    pub fn check(target: &PgTarget) -> Result<Option<i64>, StoreError> {
        let store = Self::connect(target)?;
        store.block_on(store.check_usable())
    }

    /// The store's runtime and pool, with one connection made (so that a
    /// wrong password or an unreachable server fails here, by name).
    fn connect(target: &PgTarget) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("envparity-postgres")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Postgres {
                store: target.name().to_owned(),
                context: "start the store's runtime",
                reason: e.to_string(),
            })?;
        let recycling = || ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match &target.tls {
            Some(tls) => Manager::from_config(
                target.config.clone(),
                tokio_postgres_rustls::MakeRustlsConnect::new(rustls::ClientConfig::clone(tls)),
                recycling(),
            ),
            None => Manager::from_config(target.config.clone(), NoTls, recycling()),
        };
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Postgres {
                store: target.name().to_owned(),
                context: "make the connection pool",
                reason: e.to_string(),
            })?;
        let store = PgStore {
            target: target.clone(),
            pool,
            appends: tokio::sync::Mutex::new(()),
            fence: std::sync::RwLock::new(None),
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        };
        drop(store.block_on(store.client())?);
        Ok(store)
    }

    /// [`PgStore::check`] on a connection.
    async fn check_usable(&self) -> Result<Option<i64>, StoreError> {
        let mut client = self.client().await?;
        let found = schema::version(&**client)
            .await
            .map_err(self.db("read the schema version"))?;
        if let Some(found) = found.filter(|v| *v > schema::SCHEMA_VERSION) {
            return Err(StoreError::SchemaTooNew {
                store: self.target.name().to_owned(),
                found,
                supported: schema::SCHEMA_VERSION,
            });
        }
        // Create and write a table, then roll it all back: what the
        // migrations and every report need.
        let tx = client
            .transaction()
            .await
            .map_err(self.db("begin the permission check"))?;
        tx.batch_execute(
            "CREATE TABLE envparity_check_config (x BIGINT);
             INSERT INTO envparity_check_config VALUES (1);",
        )
        .await
        .map_err(self.db("create and write a table (the permissions envparity needs)"))?;
        if found.is_some() {
            tx.batch_execute(
                "LOCK TABLE hosts, containers, liveness, changes, findings, alerts, alert_outbox
                 IN ROW EXCLUSIVE MODE NOWAIT",
            )
            .await
            .map_err(self.db("check it may write envparity's tables"))?;
        }
        tx.rollback()
            .await
            .map_err(self.db("roll back the permission check"))?;
        Ok(found)
    }
}
