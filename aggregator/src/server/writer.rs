//! On PostgreSQL, one replica of a database serves at a time: the holder of
//! the `writer` lease (`store/postgres/lease.rs`, docs/store.md). The
//! others are standbys: they listen on nothing and claim the lease until
//! it is free, which it is once its holder released it (a graceful stop) or
//! stopped renewing it for a whole term (a crash, a lost network).
//!
//! The holder renews its term every third of it. A renewal that fails
//! because the database does not answer is tried again: the term may still
//! hold, and once it expired every write fails at the fence anyway, so
//! nothing is acknowledged that is not stored. When the lease lapsed and
//! nobody took it meanwhile, the holder claims it again and goes on: what
//! it holds in memory is still what is stored, since every write since
//! went through it. When another replica held it meanwhile, this one
//! stops ([`Lost`]): it cannot know what the other wrote, and a restart
//! loads it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::metrics::Metrics;
use crate::store::{Claim, PgStore, StoreError, Term};

/// The lease's name.
pub const LEASE: &str = "writer";

/// This process's name among the replicas of a database: the host name
/// (a pod's name on Kubernetes), the process id and the start time in
/// milliseconds, so that a restarted process is never taken for the one
/// before it.
pub fn replica_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "replica".to_owned());
    let started = envparity_proto::time::unix_millis(SystemTime::now());
    format!("{host}-{}-{started}", std::process::id())
}

/// How the writer lease was lost to another replica.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "replica {me} lost the writer lease of epoch {epoch} to replica {holder:?} (epoch {holder_epoch}); it stopped so that a restart loads what that replica wrote, and waits as a standby"
)]
pub struct Lost {
    /// This replica.
    pub me: String,
    /// The epoch it held.
    pub epoch: i64,
    /// Who took the lease.
    pub holder: String,
    /// In which epoch.
    pub holder_epoch: i64,
}

/// This replica's hold on the writer lease.
#[derive(Debug)]
pub struct Writer {
    store: Arc<PgStore>,
    term: Mutex<Term>,
    address: String,
    ttl: Duration,
    metrics: Arc<Metrics>,
}

/// Runs `f` on the store from the blocking pool.
async fn blocking<T: Send + 'static>(
    store: &Arc<PgStore>,
    f: impl FnOnce(&PgStore) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(StoreError::task)?
}

impl Writer {
    /// Waits as a standby until this replica, `me`, serving at `address`,
    /// holds the writer lease of `store` for terms of `ttl`; from then on
    /// the store's writes are fenced by it (and `metrics` show a new epoch
    /// taken). Meanwhile `holder` says where the replica holding it serves.
    /// Never gives up: the caller stops waiting on shutdown.
    pub async fn take(
        store: Arc<PgStore>,
        me: String,
        address: String,
        ttl: Duration,
        metrics: Arc<Metrics>,
        holder: &tokio::sync::watch::Sender<Option<String>>,
    ) -> Self {
        let poll = (ttl / 5).clamp(Duration::from_millis(200), Duration::from_secs(2));
        let mut shown: Option<(String, i64)> = None;
        loop {
            let (name, at) = (me.clone(), address.clone());
            match blocking(&store, move |s| s.claim(LEASE, &name, &at, ttl)).await {
                Ok(Claim::Won { term, previous }) => {
                    tracing::info!(
                        replica = %me,
                        epoch = term.epoch,
                        previous = ?previous.as_ref().map(|(owner, _)| owner),
                        ttl = %humantime::format_duration(ttl),
                        "this replica holds the writer lease: loading the store and serving"
                    );
                    store.hold(Some(term.clone()));
                    holder.send_replace(None);
                    return Writer {
                        store,
                        term: Mutex::new(term),
                        address,
                        ttl,
                        metrics,
                    };
                }
                Ok(Claim::Held {
                    owner,
                    address: serving_at,
                    epoch,
                    expires_in,
                }) => {
                    holder.send_if_modified(|at| {
                        let changed = at.as_deref() != Some(serving_at.as_str());
                        *at = Some(serving_at.clone());
                        changed
                    });
                    let holder = (owner, epoch);
                    if shown.is_none() {
                        // Started, as a standby: systemd (Type=notify) must
                        // not take the wait for a failed start.
                        super::sd_notify(&format!(
                            "{}\nSTATUS=standby: replica {} holds the writer lease",
                            envparity_proto::systemd::READY,
                            holder.0
                        ));
                    }
                    if shown.as_ref() != Some(&holder) {
                        tracing::info!(
                            replica = %me,
                            holder = %holder.0,
                            address = %serving_at,
                            epoch = holder.1,
                            expires_in_ms = expires_in.as_millis() as u64,
                            "standby: another replica holds the writer lease; forwarding connections to it until it is free"
                        );
                        shown = Some(holder);
                    }
                }
                Err(e) => {
                    metrics.lease_error("claim");
                    tracing::warn!(replica = %me, error = %e, "cannot claim the writer lease; trying again");
                }
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// The term held now.
    pub fn term(&self) -> Term {
        self.term.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Renews the lease every third of its term for as long as this
    /// replica holds it; returns when another replica took it.
    async fn keep(&self) -> Lost {
        loop {
            tokio::time::sleep(self.ttl / 3).await;
            let (term, ttl) = (self.term(), self.ttl);
            let renewing = term.clone();
            match blocking(&self.store, move |s| s.renew(&renewing, ttl)).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    self.metrics.lease_error("renew");
                    tracing::warn!(
                        replica = %term.owner,
                        epoch = term.epoch,
                        error = %e,
                        "cannot renew the writer lease; once it expired, writes fail until it is held again"
                    );
                    continue;
                }
            }
            let (me, at) = (term.owner.clone(), self.address.clone());
            match blocking(&self.store, move |s| s.claim(LEASE, &me, &at, ttl)).await {
                Ok(Claim::Won {
                    term: next,
                    previous,
                }) if previous == Some((term.owner.clone(), term.epoch)) => {
                    tracing::warn!(
                        replica = %term.owner,
                        epoch = next.epoch,
                        "the writer lease lapsed (the database was out of reach for longer than its term) and no other replica took it: this replica holds it again"
                    );
                    self.store.hold(Some(next.clone()));
                    self.metrics.serving(next.epoch);
                    *self.term.lock().unwrap_or_else(|e| e.into_inner()) = next;
                }
                Ok(Claim::Won {
                    term: next,
                    previous,
                }) => {
                    // Another replica wrote meanwhile: give the new term
                    // up at once for a standby that will load it all.
                    let (holder, holder_epoch) = previous.unwrap_or_default();
                    let released = next.clone();
                    if let Err(e) = blocking(&self.store, move |s| s.release(&released)).await {
                        self.metrics.lease_error("release");
                        tracing::warn!(error = %e, "cannot release the writer lease; it expires by itself");
                    }
                    return self.lost(term, holder, holder_epoch);
                }
                Ok(Claim::Held { owner, epoch, .. }) => return self.lost(term, owner, epoch),
                Err(e) => {
                    self.metrics.lease_error("claim");
                    tracing::warn!(replica = %term.owner, error = %e, "cannot claim the writer lease again; trying again");
                }
            }
        }
    }

    fn lost(&self, term: Term, holder: String, holder_epoch: i64) -> Lost {
        // Nothing more is written: the fence still holds `term`, which the
        // lease row no longer names.
        Lost {
            me: term.owner,
            epoch: term.epoch,
            holder,
            holder_epoch,
        }
    }

    /// Gives the lease up (a graceful stop), so that a standby takes over
    /// without waiting for it to expire.
    pub async fn release(&self) {
        let term = self.term();
        match blocking(&self.store, move |s| s.release(&term)).await {
            Ok(()) => tracing::info!("released the writer lease"),
            Err(e) => {
                self.metrics.lease_error("release");
                tracing::warn!(error = %e, "cannot release the writer lease; it expires by itself")
            }
        }
    }
}

/// The writer lease held and kept: renewed in the background from the
/// moment it was taken, while the store loads (which can outlast a term
/// many times over at 100,000 hosts) and then while serving, until it is
/// released or lost.
#[derive(Debug)]
pub struct Kept {
    writer: Arc<Writer>,
    keeper: tokio::task::JoinHandle<Lost>,
}

impl Kept {
    /// Starts keeping `writer`'s lease.
    pub fn start(writer: Writer) -> Self {
        let writer = Arc::new(writer);
        let keeper = tokio::spawn({
            let writer = Arc::clone(&writer);
            async move { writer.keep().await }
        });
        Kept { writer, keeper }
    }

    /// The term held now.
    pub fn term(&self) -> Term {
        self.writer.term()
    }

    /// Resolves once another replica took the lease (at most once).
    pub async fn lost(&mut self) -> Lost {
        match (&mut self.keeper).await {
            Ok(lost) => lost,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Aborted: only by dropping or releasing, which end `self`.
            Err(_) => std::future::pending().await,
        }
    }

    /// Stops renewing and gives the lease up (a graceful stop), so that a
    /// standby takes over without waiting for it to expire.
    pub async fn release(self) {
        self.keeper.abort();
        self.writer.release().await;
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        self.keeper.abort();
    }
}
