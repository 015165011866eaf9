//! Where the aggregator keeps what it was told.
//!
//! One interface, [`Store`], so that the embedded SQLite store (the default,
//! `sqlite/`) and PostgreSQL (`postgres/`, docs/store.md) can be swapped
//! without touching ingest, queries or the parity engine. Both keep the same
//! rows, answer in the same order and page alike; `rows.rs` holds what they
//! share of reading a host back, and `contract_tests.rs` the tests every
//! backend passes. Every method is synchronous: the server calls them on
//! tokio's blocking pool. A method returns only after its write is durable —
//! the report API acknowledges a snapshot only after `save_snapshot` returned.

#[cfg(test)]
mod contract_tests;
mod counted;
mod import;
mod later;
mod postgres;
mod rows;
mod sqlite;
mod tables;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use envparity_proto::v1::{Container, EngineState, HostSnapshot};

pub use counted::Counted;
pub use import::{Imported, sqlite_into_postgres};
pub use later::{FindingsSender, FindingsToCome};
pub use postgres::{Claim, PgStore, PgTarget, Term};
pub use sqlite::{SqliteStore, check_writable};

/// Where a store lives: what `--store` (or `--data-dir`) chose.
#[derive(Debug, Clone)]
pub enum Location {
    /// The embedded store under this data directory.
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres(Box<PgTarget>),
}

impl Location {
    /// How logs and errors name it.
    pub fn name(&self) -> String {
        match self {
            Location::Sqlite(dir) => dir.join("envparity.db").display().to_string(),
            Location::Postgres(target) => target.name().to_owned(),
        }
    }
}

/// Checks, without changing anything, that the store at `at` can be used
/// (`check-config`): an existing SQLite file is writable; a PostgreSQL
/// database answers, takes the password, is not newer than this build and
/// lets its user create and write tables.
/// Returns what it found, as `check-config` shows it.
pub fn check(at: &Location) -> Result<String, StoreError> {
    Ok(match at {
        Location::Sqlite(dir) => {
            check_writable(dir)?;
            format!(
                "SQLite {} (its schema upgrades in place on open)",
                at.name()
            )
        }
        Location::Postgres(target) => {
            let tls = if target.uses_tls() {
                "over TLS (verified)"
            } else {
                "without TLS"
            };
            match PgStore::check(target)? {
                Some(version) => {
                    format!("PostgreSQL {} {tls}, schema version {version}", at.name())
                }
                None => format!(
                    "PostgreSQL {} {tls}, no schema yet (serve or migrate creates it)",
                    at.name()
                ),
            }
        }
    })
}

/// What a migration found and left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// The version found (0: an empty database); `None` when the backend
    /// does not say (SQLite upgrades in place on open).
    pub from: Option<i64>,
    /// The version left: this build's.
    pub to: i64,
}

/// Brings the store's schema at `at` to this build's version (`envparity
/// migrate`). Blocks.
pub fn migrate(at: &Location) -> Result<Migrated, StoreError> {
    match at {
        Location::Sqlite(dir) => {
            SqliteStore::open(dir)?;
            Ok(Migrated {
                from: None,
                to: sqlite::SCHEMA_VERSION,
            })
        }
        Location::Postgres(target) => PgStore::migrate(target),
    }
}

/// The stored state of one host.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredHost {
    /// The host's latest accepted snapshot (shared: queries read it while
    /// ingest replaces it).
    pub snapshot: Arc<HostSnapshot>,
    /// When the aggregator stored that snapshot (aggregator's clock).
    pub received_at: SystemTime,
    /// When the aggregator last heard from the host (aggregator's clock).
    pub last_seen: SystemTime,
    /// The engine state from the host's latest snapshot or heartbeat.
    pub engine_state: EngineState,
}

impl StoredHost {
    /// The host id.
    pub fn host_id(&self) -> &str {
        &self.snapshot.host_id
    }
}

/// What one report writes of a host: its snapshot without the containers,
/// its liveness, and of its containers only what changed since the stored
/// ones. A report that changed one container of fifty writes one container
/// row, not the whole snapshot again.
#[derive(Debug, Clone, PartialEq)]
pub struct HostWrite {
    /// The snapshot's header: every field as received but `containers`,
    /// which is empty.
    pub header: Arc<HostSnapshot>,
    /// When the aggregator stored the report (aggregator's clock).
    pub received_at: SystemTime,
    /// When the aggregator last heard from the host.
    pub last_seen: SystemTime,
    /// The engine state of the report.
    pub engine_state: EngineState,
    /// The container rows to write.
    pub containers: ContainerRows,
    /// The container ids in the snapshot's order, when that is not
    /// ascending by id (the contract's order, and how rows are read back);
    /// `None` when it is.
    pub order: Option<Vec<String>>,
}

/// One report of a [`Store::save_reports`] batch: what it changed of its
/// host, and the changes it brought.
#[derive(Debug, Clone, Copy)]
pub struct Reported<'a> {
    /// What the report changed of its host.
    pub host: &'a HostWrite,
    /// The changes it brought, for the history.
    pub changes: &'a [Change],
}

/// Which container rows a [`HostWrite`] writes.
#[derive(Debug, Clone, PartialEq)]
pub enum ContainerRows {
    /// Every container of the host, replacing any stored before (a host
    /// stored for the first time, or rewritten whole).
    All(Vec<Container>),
    /// The containers added or changed (whole, id and name included) and
    /// the ids of those removed; the others stay as stored.
    Changed {
        /// Added or changed containers.
        upserted: Vec<Container>,
        /// Ids of removed containers.
        removed: Vec<String>,
    },
}

impl HostWrite {
    /// `host` written whole.
    pub fn whole(host: &StoredHost) -> Self {
        let mut header = HostSnapshot::clone(&host.snapshot);
        let containers = std::mem::take(&mut header.containers);
        HostWrite {
            header: Arc::new(header),
            received_at: host.received_at,
            last_seen: host.last_seen,
            engine_state: host.engine_state,
            order: order_of(containers.iter().map(|c| c.id.as_str())),
            containers: ContainerRows::All(containers),
        }
    }
}

/// The ids `ids` as [`HostWrite::order`] keeps them: `None` when they
/// ascend strictly (as the contract orders a snapshot's containers).
pub fn order_of<'a>(ids: impl Iterator<Item = &'a str> + Clone) -> Option<Vec<String>> {
    let mut previous: Option<&str> = None;
    let ascending = ids.clone().all(|id| {
        let ok = previous.is_none_or(|p| p < id);
        previous = Some(id);
        ok
    });
    (!ascending).then(|| ids.map(str::to_owned).collect())
}

/// One change on a host, derived from two consecutive snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The host.
    pub host_id: String,
    /// Its environment.
    pub environment: String,
    /// The service the container belongs to.
    pub service: String,
    /// The container name.
    pub container: String,
    /// What happened.
    pub what: ChangeKind,
    /// The image content before (digest or image id), empty when added.
    pub old_image: String,
    /// The image content after, empty when removed.
    pub new_image: String,
    /// When the agent observed it (agent's clock), Unix milliseconds.
    pub observed_at_ms: i64,
    /// When the aggregator stored it (aggregator's clock), Unix milliseconds.
    pub received_at_ms: i64,
}

/// A finding's lifetime as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingRecord {
    /// Its stable identity.
    pub id: String,
    /// Its kind's stable name.
    pub kind: String,
    /// Its severity's name when it opened.
    pub severity: String,
    /// The service, empty for host-level kinds.
    pub service: String,
    /// The environments, sorted.
    pub environments: Vec<String>,
    /// Its key.
    pub key: String,
    /// Its host.
    pub host: String,
    /// Its summary when it opened.
    pub summary: String,
    /// When it opened (aggregator's clock), Unix milliseconds.
    pub first_seen_ms: i64,
    /// When it was last seen.
    pub last_seen_ms: i64,
    /// When it resolved; `None` while open.
    pub resolved_ms: Option<i64>,
}

/// Which page of a history to read: at most `limit` rows recorded before the
/// row `before` (a [`Page::older`] cursor), or the newest rows when `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageAt {
    /// Rows recorded strictly before this one; `None` for the newest.
    pub before: Option<i64>,
    /// At most this many rows.
    pub limit: usize,
}

impl PageAt {
    /// The newest `limit` rows.
    pub fn newest(limit: usize) -> Self {
        PageAt {
            before: None,
            limit,
        }
    }
}

/// One page of a history: rows oldest first, and where the page before it
/// starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    /// The rows, oldest first.
    pub rows: Vec<T>,
    /// `Some(cursor)` when older rows exist: pass it as [`PageAt::before`]
    /// to read them. `None` when this page reaches the first row.
    pub older: Option<i64>,
}

impl<T> Page<T> {
    /// A page from rows read newest first, at most `limit + 1` of them, each
    /// with its row id: the extra row only tells that older rows exist.
    pub(crate) fn from_newest_first(mut rows: Vec<(i64, T)>, limit: usize) -> Self {
        let more = rows.len() > limit;
        rows.truncate(limit);
        let older = if more {
            rows.last().map(|(id, _)| *id)
        } else {
            None
        };
        Page {
            rows: rows.into_iter().rev().map(|(_, row)| row).collect(),
            older,
        }
    }
}

/// A finding that resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Its identity.
    pub id: String,
    /// When it was last seen.
    pub last_seen_ms: i64,
    /// When it resolved.
    pub resolved_ms: i64,
}

/// Findings that opened and resolved, written with the change that caused
/// them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindingChanges {
    /// Newly open findings.
    pub opened: Vec<FindingRecord>,
    /// Findings that are gone.
    pub resolved: Vec<Resolved>,
}

impl FindingChanges {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.opened.is_empty() && self.resolved.is_empty()
    }
}

/// An alert as stored: its JSON, so the alert model can grow without a
/// schema change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRow {
    /// Its identity.
    pub id: String,
    /// The alert as JSON.
    pub body: String,
    /// When it resolved; `None` while firing.
    pub resolved_ms: Option<i64>,
}

/// A notification waiting for a sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Its place in the outbox (delivery order); 0 before it is stored.
    pub seq: i64,
    /// The sink it is for.
    pub sink: String,
    /// The event as JSON.
    pub event: String,
}

/// What happened to a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A container of the service appeared.
    Added,
    /// A container of the service went away.
    Removed,
    /// The container now runs different image content.
    ImageChanged,
}

impl ChangeKind {
    /// The stable name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::ImageChanged => "image_changed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "added" => Some(ChangeKind::Added),
            "removed" => Some(ChangeKind::Removed),
            "image_changed" => Some(ChangeKind::ImageChanged),
            _ => None,
        }
    }
}

/// Errors of a store. Each names what it was doing and on what.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory could not be created or used.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The database failed.
    #[error("database {path}: {context}: {source}")]
    Database {
        /// The database file.
        path: PathBuf,
        /// What was being done.
        context: &'static str,
        /// The cause.
        source: rusqlite::Error,
    },
    /// A stored row could not be decoded: the store is damaged.
    #[error("database {path}: stored snapshot of host {host_id:?} is unreadable: {reason}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// The host whose row is damaged.
        host_id: String,
        /// Why.
        reason: String,
    },
    /// The database can be read but not written (a read-only file or file
    /// system): every report would fail, so the aggregator must not start.
    #[error(
        "database {path} is read-only (the file or its file system): the aggregator must be able to write its store"
    )]
    ReadOnly {
        /// The database file.
        path: PathBuf,
    },
    /// The blocking task running a store call died.
    #[error("store task failed: {0}")]
    Task(String),
    /// The findings of a group commit never came (their evaluation
    /// failed): nothing of it was stored.
    #[error(
        "the reports' evaluation ended before giving their findings; nothing of them was stored"
    )]
    Abandoned,
    /// A write shared by several reports (group commit) failed; each of
    /// them gets this one error.
    #[error("{0}")]
    Shared(std::sync::Arc<StoreError>),
    /// A PostgreSQL call failed.
    #[error("database {store}: {context}: {reason}")]
    Postgres {
        /// The database, as [`PgTarget`] names it (never with a password).
        store: String,
        /// What was being done.
        context: &'static str,
        /// The cause, with the server's own message when it sent one.
        reason: String,
    },
    /// A stored value is not of the type its column holds: the store is
    /// damaged.
    #[error("database {path} is damaged: {reason}")]
    Damaged {
        /// The database file.
        path: PathBuf,
        /// What is wrong, naming the table and column.
        reason: String,
    },
    /// An import into PostgreSQL was refused or did not complete; the
    /// target is left as it was.
    #[error("import from {from} into {to}: {reason}")]
    Import {
        /// The source.
        from: String,
        /// The target database.
        to: String,
        /// Why.
        reason: String,
    },
    /// This replica's lease term ended (it expired, or another replica
    /// took the lease): the write was refused, so that a stale replica
    /// never overwrites what the lease's new owner writes.
    #[error(
        "database {store}: this replica no longer holds the {lease} lease of epoch {epoch} ({now}); nothing was written"
    )]
    Fenced {
        /// The database.
        store: String,
        /// The lease.
        lease: String,
        /// The epoch this replica held.
        epoch: i64,
        /// What the lease is now.
        now: String,
    },
    /// The database was written by a newer envparity.
    #[error(
        "database {store}: schema version {found} is newer than this envparity supports ({supported}); upgrade envparity"
    )]
    SchemaTooNew {
        /// The database (its file, or its PostgreSQL name).
        store: String,
        /// The version found.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
}

impl StoreError {
    /// A blocking store task that died (panicked or was cancelled).
    pub fn task(e: impl std::fmt::Display) -> Self {
        StoreError::Task(e.to_string())
    }

    /// The error's class, as the `error` label of the store's error
    /// counter names it: a few fixed words, never the error's text.
    pub fn class(&self) -> &'static str {
        match self {
            StoreError::DataDir { .. } => "data_dir",
            StoreError::Database { .. } | StoreError::Postgres { .. } => "database",
            StoreError::Corrupt { .. } | StoreError::Damaged { .. } => "corrupt",
            StoreError::ReadOnly { .. } => "read_only",
            StoreError::Task(_) => "task",
            StoreError::Abandoned => "abandoned",
            StoreError::Shared(inner) => inner.class(),
            StoreError::Import { .. } => "import",
            StoreError::Fenced { .. } => "fenced",
            StoreError::SchemaTooNew { .. } => "schema",
        }
    }
}

/// The storage interface of the aggregator.
pub trait Store: Send + Sync + 'static {
    /// Every stored host, for start-up, handed to `each` one at a time
    /// in ascending host id as it is read: the caller keeps each as it
    /// likes (the fleet compactly), and no call holds every host whole.
    /// A host that cannot be read back stops the read with an error naming
    /// it; the hosts handed before it stay handed.
    fn each_host(&self, each: &mut dyn FnMut(StoredHost)) -> Result<(), StoreError>;

    /// Every stored host, whole, in ascending host id ([`Store::each_host`]
    /// collected; for tests and tools, not for a fleet's start-up).
    fn load_hosts(&self) -> Result<Vec<StoredHost>, StoreError> {
        let mut hosts = Vec::new();
        self.each_host(&mut |h| hosts.push(h))?;
        Ok(hosts)
    }

    /// Atomically writes what several reports changed (group commit): of
    /// each, its host's header, liveness and the container rows it changed,
    /// and its changes, in order; then the findings the reports opened and
    /// resolved together, waiting for them when they are still to come (the
    /// caller evaluates the reports while they are written). All of it is
    /// stored, or none: findings that never come ([`StoreError::Abandoned`])
    /// store nothing.
    fn save_reports(
        &self,
        reports: &[Reported<'_>],
        findings: FindingsToCome,
    ) -> Result<(), StoreError>;

    /// [`Store::save_reports`] of one report.
    fn save_report(
        &self,
        write: &HostWrite,
        changes: &[Change],
        findings: &FindingChanges,
    ) -> Result<(), StoreError> {
        self.save_reports(
            &[Reported {
                host: write,
                changes,
            }],
            FindingsToCome::ready(findings.clone()),
        )
    }

    /// [`Store::save_report`] of a whole snapshot: replaces every container
    /// row of the host.
    fn save_snapshot(
        &self,
        host: &StoredHost,
        changes: &[Change],
        findings: &FindingChanges,
    ) -> Result<(), StoreError> {
        self.save_report(&HostWrite::whole(host), changes, findings)
    }

    /// Records findings that opened and resolved without a snapshot (time
    /// passing, a policy reload).
    fn save_findings(&self, findings: &FindingChanges) -> Result<(), StoreError>;

    /// The findings recorded as open, for start-up.
    fn open_findings(&self) -> Result<Vec<FindingRecord>, StoreError>;

    /// One page of a service's findings (open and resolved), oldest first.
    fn finding_records(&self, service: &str, at: PageAt)
    -> Result<Page<FindingRecord>, StoreError>;

    /// Removes a host's snapshot and liveness (its history stays), in one
    /// transaction; whether the host was stored.
    fn forget_host(&self, host_id: &str) -> Result<bool, StoreError>;

    /// Records that a host was heard from (a heartbeat).
    fn touch(
        &self,
        host_id: &str,
        last_seen: SystemTime,
        engine_state: EngineState,
    ) -> Result<(), StoreError> {
        self.touch_many(&[(host_id.to_owned(), last_seen, engine_state)])
    }

    /// Records several [`Store::touch`]es in one transaction (heartbeats
    /// that arrived together share one commit).
    fn touch_many(&self, touches: &[(String, SystemTime, EngineState)]) -> Result<(), StoreError>;

    /// One page of the changes recorded for a service (or every service),
    /// oldest first.
    fn changes(&self, service: Option<&str>, at: PageAt) -> Result<Page<Change>, StoreError>;

    /// The alerts recorded (firing and recently resolved), for start-up.
    fn load_alerts(&self) -> Result<Vec<AlertRow>, StoreError>;

    /// Atomically records alerts that changed, queues their notifications,
    /// and forgets alerts resolved before `forget_before_ms`.
    fn save_alerts(
        &self,
        alerts: &[AlertRow],
        outbox: &[OutboxRow],
        forget_before_ms: i64,
    ) -> Result<(), StoreError>;

    /// The oldest `limit` notifications queued for `sink`.
    fn outbox(&self, sink: &str, limit: usize) -> Result<Vec<OutboxRow>, StoreError>;

    /// Removes delivered (or given up) notifications.
    fn outbox_done(&self, seqs: &[i64]) -> Result<(), StoreError>;
}
