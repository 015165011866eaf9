//! What `serve` does before it listens: the policy, the store (on
//! PostgreSQL only once this replica holds the writer lease, `writer.rs`),
//! and the fleet and the alerts loaded from it.

use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context;
use tokio::net::TcpListener;

use super::scrape::Scrape;
use super::writer::{self, Kept, Writer};
use super::{ServeConfig, initial_policy};
use super::{conn, forward};
use crate::alert::Alerting;
use crate::fleet::Fleet;
use crate::metrics::Metrics;
use crate::store::{Counted, Location, PgStore, SqliteStore, Store, StoreError};

/// What the server serves from.
pub(super) struct Loaded {
    pub fleet: Arc<Fleet>,
    pub alerting: Arc<Alerting>,
    pub metrics: Arc<Metrics>,
    /// The store, as logs name it.
    pub db_name: String,
    /// Where the policy came from.
    pub policy_source: String,
    /// On PostgreSQL, this replica's hold on the writer lease, kept since
    /// it was taken.
    pub writer: Option<Kept>,
}

/// Starts the metrics listener and loads what `config` serves; on
/// PostgreSQL, waits (as a standby, passing the connections `listener`
/// takes to the replica that serves) until this replica holds the writer
/// lease first. Returns `None` when `shutdown` came first; else what it
/// loaded and the metrics listener.
pub(super) async fn load(
    config: &ServeConfig,
    listener: &TcpListener,
    shutdown: &mut (impl Future<Output = ()> + Unpin),
) -> anyhow::Result<Option<(Loaded, Scrape)>> {
    let policy = initial_policy(config)?;
    let metrics = Arc::new(Metrics::new());
    let scrape = Scrape::start(config.metrics_listen, &metrics).await?;
    match load_behind(config, listener, policy, metrics, shutdown).await {
        Ok(Some(loaded)) => Ok(Some((loaded, scrape))),
        done => {
            scrape.stop().await;
            done.map(|_| None)
        }
    }
}

/// [`load`] once the metrics listener is up.
async fn load_behind(
    config: &ServeConfig,
    listener: &TcpListener,
    policy: crate::fleet::LoadedPolicy,
    metrics: Arc<Metrics>,
    shutdown: &mut (impl Future<Output = ()> + Unpin),
) -> anyhow::Result<Option<Loaded>> {
    let policy_source = policy.source.clone();
    // Opening the store and loading from it block (and the PostgreSQL store
    // must not be called on a runtime worker: store/postgres/mod.rs), so
    // all of it runs on the blocking pool.
    let location = config.store();
    let db_name = location.name();
    let opened = tokio::task::spawn_blocking(move || match location {
        Location::Sqlite(dir) => {
            SqliteStore::open(&dir).map(|s| (Arc::new(s) as Arc<dyn Store>, None))
        }
        Location::Postgres(target) => PgStore::open(&target).map(|s| {
            let s = Arc::new(s);
            (Arc::clone(&s) as Arc<dyn Store>, Some(s))
        }),
    })
    .await
    .context("store task")??;
    let (store, postgres) = opened;
    let mut writer = match postgres {
        Some(pg) => {
            let me = writer::replica_name();
            let address = advertised(config, listener)?;
            let (holder, forward_to) = tokio::sync::watch::channel(None);
            // Each forwarded connection takes two descriptors.
            let max = conn::ConnLimits::for_nofile(conn::raise_nofile_limit()).max_connections / 2;
            let taking = Writer::take(
                pg,
                me,
                address,
                config.lease_ttl,
                Arc::clone(&metrics),
                &holder,
            );
            tokio::select! {
                // Kept from now on: loading may take many terms.
                writer = taking => Some(Kept::start(writer)),
                () = forward::forward(listener, forward_to, max) => unreachable!("forwarding never ends"),
                () = shutdown => return Ok(None),
            }
        }
        None => None,
    };
    // Every store call's failure is counted, whichever the backend.
    let store: Arc<dyn Store> = Arc::new(Counted::new(store, Arc::clone(&metrics)));
    let (stale_after, alerts) = (config.stale_after, config.alerts.clone());
    let alerts_metrics = Arc::clone(&metrics);
    let loading = tokio::task::spawn_blocking(move || {
        let fleet = Fleet::load(store, stale_after, policy, SystemTime::now())?;
        let alerting = Alerting::load(alerts, fleet.store(), alerts_metrics)?;
        Ok::<_, StoreError>((Arc::new(fleet), Arc::new(alerting)))
    });
    let loaded = match writer.as_mut() {
        // Another replica took the lease meanwhile (this one could not
        // renew it): what is loading is not what that one writes.
        Some(kept) => tokio::select! {
            loaded = loading => loaded,
            lost = kept.lost() => return Err(lost.into()),
        },
        None => loading.await,
    };
    let (fleet, alerting) = loaded.context("store task")??;
    Ok(Some(Loaded {
        fleet,
        alerting,
        metrics,
        db_name,
        policy_source,
        writer,
    }))
}

/// Where the other replicas reach this one: `--advertise`, else the
/// listen address, else (listening on every address) the host name and
/// the port.
fn advertised(config: &ServeConfig, listener: &TcpListener) -> anyhow::Result<String> {
    if let Some(address) = &config.advertise {
        return Ok(address.clone());
    }
    let local = listener.local_addr().context("listener address")?;
    if !local.ip().is_unspecified() {
        return Ok(local.to_string());
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .context("listening on every address, and the host name is unknown: set --advertise")?;
    Ok(format!("{host}:{}", local.port()))
}
