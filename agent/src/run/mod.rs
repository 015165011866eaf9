//! The agent's main loop: watch the engine, collect, report.
//!
//! One task drives everything, so there is no shared state to lock: engine
//! events, timers and retries are all wake-ups of the same loop. Every
//! collected change goes into the [`Journal`] and stays there, in order,
//! until the aggregator acknowledges it; it is never dropped because a call
//! failed (only a full journal compacts, and says so).

use std::future::{Future, pending};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use envparity_proto::delta;
use envparity_proto::hash::{HashForm, content_hash_in};
use envparity_proto::time::to_timestamp;
use envparity_proto::v1::{
    EngineState, HeartbeatRequest, HostSnapshot, PushDeltaRequest, PushSnapshotResponse,
};
use prost::Message;
use tokio::time::{Instant, sleep};
use tracing::{debug, error, info, warn};

use crate::collect::{Collector, SnapshotHeader, new_boot_id};
use crate::config::Config;
use crate::journal::{EntryKey, Journal, JournalError};
use crate::metrics::{Metrics, Sent};
use crate::report::{Backoff, ReportError, Reporter};
use crate::runtime::changes::Changes;

mod watch;

use watch::Watch;

/// How long to wait after an engine event before collecting, so a burst
/// (`docker compose up` starting ten containers) costs one collection and
/// one report, while a `docker run` is still reported well within a second.
/// That collection reads only the containers the events named.
pub const DEBOUNCE: Duration = Duration::from_millis(150);

/// How many times `--once` tries to deliver its snapshot.
pub const ONCE_ATTEMPTS: u32 = 5;

/// Why the agent stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// `--metrics-listen` could not be bound.
    #[error("cannot serve metrics on {addr}: {source}")]
    Metrics {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The aggregator client could not be set up.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// The journal could not be opened or written.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// `--once` could not deliver its snapshot.
    #[error("{last} (gave up after {attempts} attempts)")]
    NotDelivered {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: ReportError,
    },
    /// `--once` reported the engine as unreachable (so the aggregator knows),
    /// but a one-shot run that could not read its engine has failed.
    #[error(
        "container engine at {runtime} is unreachable; reported the host as engine_unreachable"
    )]
    EngineUnreachable {
        /// Where the runtime was looked for.
        runtime: String,
    },
}

/// Runs the agent until `shutdown` completes (then returns `Ok`), or, with
/// `--once`, until its single snapshot is acknowledged.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
    let boot_id = new_boot_id();
    info!(
        host_id = %config.host_id,
        environment = %config.environment,
        aggregator = %config.aggregator,
        runtime = %config.runtime_target().describe(),
        key_id = %config.fingerprint_key_id,
        clear_env_patterns = config.clear_env.patterns().len(),
        version = env!("CARGO_PKG_VERSION"),
        %boot_id,
        "envparity agent starting"
    );
    if !config.clear_env.patterns().is_empty() {
        info!(
            clear_env = %config.clear_env.patterns().join(","),
            "env values of these names go in clear, except names that look secret (PASSWORD, PWD, TOKEN, KEY, DSN, CONN, AUTH, …) and values that carry a credential (password=/token=/key=… parameters, URL userinfo): those are fingerprinted even when allowlisted; credentials in command lines and labels are replaced by keyed stand-ins (docs/security.md)"
        );
    }
    let reporter = Reporter::with_tls(&config.aggregator, &config.tls)?;
    if !config.aggregator.starts_with("https://") {
        tracing::warn!(
            aggregator = %config.aggregator,
            "reporting in plain text as asked (--insecure-plaintext): snapshots travel unencrypted and this host's identity is not proven; use https:// with --tls-ca, --tls-cert and --tls-key (docs/security.md)"
        );
    }
    let collector = Collector::new(&config, SnapshotHeader::new(&config, &boot_id));
    let metrics = Metrics::new();
    if let Some(addr) = config.metrics_listen {
        let bound = crate::metrics::serve(addr, metrics.clone())
            .await
            .map_err(|source| RunError::Metrics { addr, source })?;
        info!(metrics = %bound, "serving Prometheus metrics at /metrics");
    }
    let journal = match &config.state_dir {
        Some(dir) => {
            let (journal, opened) = Journal::open(&dir.join("journal"), config.journal_max_bytes)?;
            for path in &opened.corrupt {
                error!(path = %path.display(), "journal entry does not decode; set aside, not replayed");
            }
            info!(
                dir = %dir.join("journal").display(),
                recovered = opened.recovered,
                bytes = journal.bytes(),
                max_bytes = journal.max_bytes(),
                "journal opened"
            );
            journal
        }
        None => {
            warn!(
                max_bytes = config.journal_max_bytes,
                "no state_dir: unacknowledged snapshots are kept in memory only and lost if the agent restarts during an aggregator outage"
            );
            Journal::in_memory(config.journal_max_bytes)
        }
    };
    metrics.journal(journal.len(), journal.bytes());
    let mut agent = Agent::new(
        collector,
        reporter,
        metrics,
        journal,
        !config.full_snapshots,
    );
    let mut shutdown = std::pin::pin!(shutdown);

    if config.once {
        let runtime = config.runtime_target().describe();
        return tokio::select! {
            result = agent.once(&runtime) => result,
            () = &mut shutdown => Ok(()),
        };
    }

    let mut watch = Watch::new(agent, &config);
    sd_notify(envparity_proto::systemd::READY);
    loop {
        let wake = tokio::select! {
            biased;
            () = &mut shutdown => break,
            wake = watch.next_wake() => wake,
        };
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            () = watch.handle(wake) => {}
        }
    }
    sd_notify(envparity_proto::systemd::STOPPING);
    info!("shutting down");
    Ok(())
}

/// Tells systemd `state` when it started us with `$NOTIFY_SOCKET`.
fn sd_notify(state: &str) {
    if let Err(error) = envparity_proto::systemd::notify(state) {
        warn!(%error, state, "cannot notify systemd");
    }
}

/// Completes on SIGTERM or SIGINT. If a handler cannot be installed (which
/// only a broken runtime would cause) that signal is logged and ignored
/// rather than stopping the agent.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    async fn wait_for(kind: SignalKind, name: &'static str) {
        match signal(kind) {
            Ok(mut stream) => {
                stream.recv().await;
                info!(signal = name, "received");
            }
            Err(error) => {
                error!(signal = name, %error, "cannot install a signal handler");
                pending::<()>().await;
            }
        }
    }
    tokio::select! {
        () = wait_for(SignalKind::terminate(), "SIGTERM") => {}
        () = wait_for(SignalKind::interrupt(), "SIGINT") => {}
    }
}

/// Reporting state: what was collected, what awaits acknowledgement, and the
/// per-boot sequence.
///
/// A snapshot is held once and shared (`Arc`): the latest collected one,
/// the journal's entry of it (in memory), the one being pushed and the
/// acknowledged base of the next delta are the same allocation whenever they
/// are the same snapshot. With many mounted configuration files a snapshot
/// is megabytes, and holding it four times was most of the agent's memory.
#[derive(Debug)]
struct Agent {
    collector: Collector,
    reporter: Reporter,
    /// Last sequence number used; the first report of a boot gets 1.
    sequence: u64,
    /// The latest collected snapshot (its content is what heartbeats vouch for).
    current: Option<Arc<HostSnapshot>>,
    /// The snapshots to push, numbered, oldest first; retries reuse their
    /// numbers so the aggregator recognizes a retry of something it stored.
    journal: Journal,
    /// Content hash of the last snapshot the aggregator acknowledged.
    acked_hash: Option<String>,
    /// That snapshot, while it is the base of the next delta (or a later
    /// collection of the same content, so that the two share one copy).
    acked: Option<Arc<HostSnapshot>>,
    /// Whether to send a changed snapshot as a delta (off with
    /// `--full-snapshots`, or once the aggregator answered that it takes
    /// none).
    deltas: bool,
    /// The last refusal of a snapshot as invalid, for `--once` to report.
    refused: Option<ReportError>,
    /// When the latest collection that found `current`'s content unchanged
    /// ran (`None`: `current` is the latest collection).
    fresh_at: Option<prost_types::Timestamp>,
    metrics: Metrics,
}

impl Agent {
    fn new(
        collector: Collector,
        reporter: Reporter,
        metrics: Metrics,
        journal: Journal,
        deltas: bool,
    ) -> Self {
        Self {
            collector,
            reporter,
            sequence: 0,
            current: None,
            journal,
            acked_hash: None,
            acked: None,
            deltas,
            refused: None,
            fresh_at: None,
            metrics,
        }
    }

    /// Whether snapshots wait for acknowledgement.
    fn has_pending(&self) -> bool {
        !self.journal.is_empty()
    }

    /// Numbers `snapshot` and appends it to the journal; gives back the
    /// numbered snapshot, shared with the journal. A journal that
    /// cannot be written is logged (the snapshot is then only in memory as
    /// `current`, and the next heartbeat or resync sends it).
    fn enqueue(&mut self, mut snapshot: HostSnapshot) -> Arc<HostSnapshot> {
        snapshot.sequence = self.next_sequence();
        let snapshot = Arc::new(snapshot);
        match self.journal.append(Arc::clone(&snapshot)) {
            Ok(Some(c)) => {
                warn!(
                    dropped = c.dropped,
                    kept = c.kept,
                    max_bytes = c.max_bytes,
                    "journal full: compacted to the first and the latest snapshot; the changes in between are lost to history (the latest state is exact)"
                );
                self.metrics.compacted(c.dropped);
            }
            Ok(None) => {}
            Err(error) => error!(%error, "cannot write the journal"),
        }
        self.metrics
            .journal(self.journal.len(), self.journal.bytes());
        snapshot
    }

    fn next_sequence(&mut self) -> u64 {
        self.sequence += 1;
        self.sequence
    }

    fn header(&self) -> &SnapshotHeader {
        self.collector.header()
    }

    /// Collects (everything, or only the containers `changes` names), and
    /// queues the result for pushing when its content differs from what the
    /// aggregator holds.
    ///
    /// When the current snapshot is what the aggregator holds (or will,
    /// once the journal is through), the collector is asked only whether
    /// anything differs from it ([`Collector::collect_unless_same`]); if
    /// nothing does, the current snapshot stays, shared, and only the time
    /// of this collection is kept, for a snapshot sent again later. That is
    /// what collecting it whole would end in, whatever the collector's hash
    /// form: the same content keeps the hash held ([`keep_the_form_held`])
    /// and is not queued.
    async fn collect(&mut self, changes: Option<&Changes>) {
        let started = Instant::now();
        let latest = self
            .journal
            .newest_hash()
            .or(self.acked_hash.as_deref())
            .map(str::to_owned);
        let unchanged_base = self
            .current
            .as_ref()
            .filter(|c| {
                latest.as_deref() == Some(c.content_hash.as_str())
                    && HashForm::of(&c.content_hash).is_some()
            })
            .cloned();
        let collected = match &unchanged_base {
            Some(current) => self.collector.collect_unless_same(changes, current).await,
            None => Some(self.collector.collect(changes).await),
        };
        self.metrics.collected(started.elapsed());
        self.metrics
            .config_files(&self.collector.take_config_file_counts());
        let Some(mut snapshot) = collected else {
            debug!(
                changed = changes.map(Changes::len),
                "collected: the same content as the current snapshot"
            );
            self.fresh_at = Some(to_timestamp(SystemTime::now()));
            return;
        };
        debug!(
            containers = snapshot.containers.len(),
            changed = changes.map(Changes::len),
            hash = %short(&snapshot.content_hash),
            "collected"
        );
        self.fresh_at = None;
        // The content the aggregator will hold once the journal is
        // through: a change from it is one more entry (so a container
        // started and stopped during an outage is two entries, both in the
        // history).
        if let Some(latest) = latest.as_deref() {
            keep_the_form_held(&mut snapshot, latest);
        }
        if latest.as_deref() != Some(snapshot.content_hash.as_str()) {
            self.current = Some(self.enqueue(snapshot));
            return;
        }
        let snapshot = Arc::new(snapshot);
        // The same content as the acknowledged base: the base of the next
        // delta may as well be this copy, and the older one is let go.
        if self
            .acked
            .as_ref()
            .is_some_and(|acked| acked.content_hash == snapshot.content_hash)
        {
            self.acked = Some(Arc::clone(&snapshot));
        }
        self.current = Some(snapshot);
    }

    /// The current snapshot, to send again: a copy of it, with the time of
    /// the latest collection (which may have found it unchanged).
    fn current_to_send_again(&self, current: Arc<HostSnapshot>) -> HostSnapshot {
        let mut current = Arc::unwrap_or_clone(current);
        if let Some(at) = &self.fresh_at {
            current.collected_at = Some(*at);
        }
        current
    }

    /// Pushes the journal's snapshots, oldest first, until it is empty or a
    /// push fails.
    async fn push_pending(&mut self) -> Result<(), ReportError> {
        loop {
            let snapshot = match self.journal.oldest() {
                Ok(Some(s)) => s,
                Ok(None) => return Ok(()),
                Err(error) => {
                    // Unreadable (the disk failed under us): skip it rather
                    // than retry forever, and say so. Nothing of the current
                    // state is lost: the next heartbeat finds the
                    // aggregator's content differs and sends it.
                    error!(%error, "cannot read the journal's oldest entry; skipping it");
                    self.journal_skip_oldest();
                    continue;
                }
            };
            let sequence = snapshot.sequence;
            // Collected under another host id or environment (the agent's
            // configuration changed since): the aggregator would refuse it
            // for good (a certificate bound to the new environment does), and
            // it no longer says what this agent reports. Newer ones follow.
            let header = self.header();
            if snapshot.host_id != header.host_id || snapshot.environment != header.environment {
                warn!(
                    sequence,
                    journal_host_id = %snapshot.host_id.escape_debug(),
                    journal_environment = %snapshot.environment.escape_debug(),
                    host_id = %header.host_id,
                    environment = %header.environment,
                    "journal entry collected under another host id or environment than this agent's: dropped, not sent"
                );
                self.journal_skip_oldest();
                continue;
            }
            let by_container = HashForm::of(&snapshot.content_hash) == Some(HashForm::ByContainer);
            match self.push_one(snapshot).await {
                Ok(()) => {}
                // Refused as invalid, it would be refused again at every
                // retry, ahead of every newer snapshot: the host would go
                // unseen for good. Move past it (newer snapshots follow; the
                // next heartbeat brings the current state if none does).
                Err(error) if refused_as_invalid(&error) => {
                    if by_container {
                        self.hash_whole_again(&error);
                    }
                    error!(
                        %error,
                        sequence,
                        "the aggregator refused this snapshot as invalid; dropping it from the journal and going on with newer ones"
                    );
                    self.journal_skip_oldest();
                    self.refused = Some(error);
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Drops the oldest entry without an acknowledgement.
    fn journal_skip_oldest(&mut self) {
        if let Err(error) = self.journal.drop_oldest() {
            error!(%error, "cannot remove the unreadable journal entry");
        }
        self.metrics
            .journal(self.journal.len(), self.journal.bytes());
    }

    /// Pushes one snapshot (as a delta when it can) and, once acknowledged,
    /// removes it from the journal.
    async fn push_one(&mut self, snapshot: Arc<HostSnapshot>) -> Result<(), ReportError> {
        let (response, sent) = self.send(&snapshot).await?;
        self.metrics.sent(sent);
        info!(
            host_id = %snapshot.host_id,
            containers = snapshot.containers.len(),
            sequence = snapshot.sequence,
            hash = %short(&snapshot.content_hash),
            engine_state = ?snapshot.engine_state(),
            duplicate = response.duplicate,
            sent = ?sent,
            "snapshot pushed"
        );
        if response.content_hash != snapshot.content_hash {
            warn!(
                sent = %short(&snapshot.content_hash),
                stored = %short(&response.content_hash),
                "aggregator acknowledged a different content hash; the next heartbeat will reconcile"
            );
        }
        if let Err(error) = self.journal.acknowledged(&EntryKey::of(&snapshot)) {
            error!(%error, "cannot remove an acknowledged journal entry");
        }
        self.hash_as_acknowledged(&response);
        // The base of the next delta: what the aggregator now holds.
        self.acked_hash = Some(snapshot.content_hash.clone());
        self.acked = (response.content_hash == snapshot.content_hash).then_some(snapshot);
        self.metrics
            .journal(self.journal.len(), self.journal.bytes());
        Ok(())
    }

    /// Hashes the next snapshots in the form the aggregator that
    /// acknowledged `response` checks: by container when it says so, which
    /// costs it a fraction of the whole form per delta; whole otherwise
    /// (an older aggregator). The next collection then reports the same
    /// content under its hash in the new form, once.
    fn hash_as_acknowledged(&mut self, response: &PushSnapshotResponse) {
        let form = if response.hashes_by_container {
            HashForm::ByContainer
        } else {
            HashForm::Whole
        };
        if form != self.collector.hash_form() {
            info!(
                ?form,
                "the aggregator checks content hashes in this form; hashing the next snapshots so"
            );
            self.collector.set_hash_form(form);
        }
    }

    /// After an aggregator refused a snapshot hashed by container as
    /// invalid (`error`), an older aggregator (a downgrade, or an older
    /// replica behind the same address): hashes whole again, and queues
    /// the current content so hashed, so that the host is not left unseen.
    fn hash_whole_again(&mut self, error: &ReportError) {
        warn!(%error, "the aggregator refused a content hash made by container; hashing whole again");
        self.collector.set_hash_form(HashForm::Whole);
        if let Some(current) = self.current.take() {
            let mut current = self.current_to_send_again(current);
            current.content_hash = content_hash_in(HashForm::Whole, &current);
            self.current = Some(self.enqueue(current));
        }
    }

    /// Sends `snapshot`: as a delta against the snapshot acknowledged last
    /// when there is one and the delta is smaller than the whole, else
    /// whole. A delta the aggregator cannot apply (it holds
    /// another base, or lost it) is followed at once by the whole snapshot;
    /// an aggregator that takes no deltas gets only whole snapshots from
    /// then on.
    async fn send(
        &mut self,
        snapshot: &Arc<HostSnapshot>,
    ) -> Result<(PushSnapshotResponse, Sent), ReportError> {
        if let Some(delta) = self.delta_for(snapshot) {
            match self.reporter.push_delta(delta).await {
                Ok(response) => return Ok((response, Sent::Delta)),
                Err(error) if error.code() == Some(tonic::Code::Unimplemented) => {
                    info!(%error, "the aggregator takes no deltas; sending whole snapshots from now on");
                    self.deltas = false;
                }
                Err(error) if error.code() == Some(tonic::Code::FailedPrecondition) => {
                    debug!(%error, "delta not applied; sending the whole snapshot");
                    self.acked = None;
                }
                Err(error) => {
                    self.metrics.failed(Sent::Delta);
                    return Err(error);
                }
            }
        }
        match self.reporter.push(Arc::clone(snapshot)).await {
            Ok(response) => Ok((response, Sent::Snapshot)),
            Err(error) => {
                self.metrics.failed(Sent::Snapshot);
                Err(error)
            }
        }
    }

    /// The delta that turns the acknowledged snapshot into `snapshot`, when
    /// deltas are on, there is a base, both read their engine, and the delta
    /// is smaller than the whole.
    fn delta_for(&self, snapshot: &HostSnapshot) -> Option<PushDeltaRequest> {
        let base = self.acked.as_ref().filter(|_| self.deltas)?;
        let ok = |s: &HostSnapshot| s.engine_state() == EngineState::Ok;
        if !ok(base) || !ok(snapshot) {
            return None;
        }
        let delta = delta::between(base, snapshot);
        (delta.encoded_len() < snapshot.encoded_len()).then_some(delta)
    }

    /// Sends a heartbeat for the current content; queues the full snapshot
    /// when the aggregator says it lacks it.
    async fn heartbeat(&mut self) -> Result<(), ReportError> {
        let Some(current) = self.current.clone() else {
            return Ok(());
        };
        let header = self.header();
        let request = HeartbeatRequest {
            host_id: header.host_id.clone(),
            environment: header.environment.clone(),
            content_hash: current.content_hash.clone(),
            boot_id: header.agent.boot_id.clone(),
            sequence: self.next_sequence(),
            sent_at: Some(to_timestamp(SystemTime::now())),
            engine_state: current.engine_state,
        };
        let sequence = request.sequence;
        let response = match self.reporter.heartbeat(request).await {
            Ok(r) => r,
            Err(e) => {
                self.metrics.failed(Sent::Heartbeat);
                return Err(e);
            }
        };
        self.metrics.sent(Sent::Heartbeat);
        debug!(
            sequence,
            snapshot_needed = response.snapshot_needed,
            "heartbeat sent"
        );
        if response.snapshot_needed && !self.has_pending() {
            info!(hash = %short(&current.content_hash), "aggregator asked for the full snapshot");
            // Numbered anew: a copy, on this rare path only.
            let again = self.current_to_send_again(current);
            let numbered = self.enqueue(again);
            self.current = Some(numbered);
        }
        Ok(())
    }

    /// `--once`: collect, push with a few retries.
    async fn once(&mut self, runtime: &str) -> Result<(), RunError> {
        self.collect(None).await;
        let engine_lost = self
            .current
            .as_ref()
            .is_some_and(|s| s.engine_state() == EngineState::Unreachable);
        let mut backoff = Backoff::new();
        let mut attempt = 1;
        loop {
            match self.push_pending().await {
                Ok(()) if self.refused.is_some() => {
                    return Err(RunError::NotDelivered {
                        attempts: attempt,
                        last: self.refused.take().expect("checked"),
                    });
                }
                Ok(()) if engine_lost => {
                    return Err(RunError::EngineUnreachable {
                        runtime: runtime.to_owned(),
                    });
                }
                Ok(()) => return Ok(()),
                Err(last) if attempt >= ONCE_ATTEMPTS || !retryable(&last) => {
                    return Err(RunError::NotDelivered {
                        attempts: attempt,
                        last,
                    });
                }
                Err(error) => {
                    let delay = backoff.next_delay();
                    warn!(%error, attempt, retry_in = ?delay, "push failed; retrying");
                    sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }
}

/// Whether retrying a failed call can help without anyone changing
/// anything. A rejected snapshot will be rejected again.
fn retryable(error: &ReportError) -> bool {
    use tonic::Code;
    !matches!(
        error.code(),
        None | Some(
            Code::InvalidArgument
                | Code::PermissionDenied
                | Code::Unauthenticated
                | Code::Unimplemented
                | Code::FailedPrecondition
        )
    )
}

/// Whether the aggregator refused a report for what it is (malformed or
/// over a limit), so that sending it again cannot succeed.
fn refused_as_invalid(error: &ReportError) -> bool {
    matches!(
        error.code(),
        Some(tonic::Code::InvalidArgument | tonic::Code::OutOfRange)
    )
}

/// Gives `snapshot` the hash `latest` (what the aggregator holds, or will
/// once the journal is through) when that is its content's hash in the
/// form `latest` is written in, though the collector now hashes in another:
/// an unchanged content is not reported again only because the form of its
/// hash changed. Its next change travels in the new form.
fn keep_the_form_held(snapshot: &mut HostSnapshot, latest: &str) {
    let Some(held) = HashForm::of(latest) else {
        return;
    };
    if Some(held) == HashForm::of(&snapshot.content_hash) {
        return;
    }
    if content_hash_in(held, snapshot) == latest {
        snapshot.content_hash = latest.to_owned();
    }
}

/// The first 12 characters of a hash, for logs.
fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An unchanged content keeps the hash the aggregator holds in its
    /// form; a changed one, or one held in the same form, keeps its own.
    #[test]
    fn an_unchanged_content_keeps_the_form_of_the_hash_held() {
        let s = envparity_proto::fixtures::snapshot("h1", "staging")
            .container(envparity_proto::fixtures::container("shop").id("c1"))
            .build();
        let whole = content_hash_in(HashForm::Whole, &s);
        let by_container = content_hash_in(HashForm::ByContainer, &s);
        let collected = |hash: &str| HostSnapshot {
            content_hash: hash.to_owned(),
            ..s.clone()
        };
        for (held, hashed) in [(&whole, &by_container), (&by_container, &whole)] {
            let mut again = collected(hashed);
            keep_the_form_held(&mut again, held);
            assert_eq!(&again.content_hash, held, "unchanged: the hash held");
        }
        let mut changed = collected(&by_container);
        changed.containers[0].name = "other".into();
        changed.content_hash = content_hash_in(HashForm::ByContainer, &changed);
        let own = changed.content_hash.clone();
        keep_the_form_held(&mut changed, &whole);
        assert_eq!(changed.content_hash, own, "changed: its own hash");
        let mut same_form = collected(&by_container);
        keep_the_form_held(
            &mut same_form,
            &content_hash_in(HashForm::ByContainer, &changed),
        );
        assert_eq!(same_form.content_hash, by_container);
        let mut not_a_hash = collected(&by_container);
        keep_the_form_held(&mut not_a_hash, "hash-1");
        assert_eq!(not_a_hash.content_hash, by_container);
    }

    fn status_error(code: tonic::Code) -> ReportError {
        ReportError::Call {
            url: "http://x".into(),
            rpc: "PushSnapshot",
            status: tonic::Status::new(code, "m"),
        }
    }

    #[test]
    fn transient_failures_are_retried_rejections_are_not() {
        assert!(retryable(&status_error(tonic::Code::Unavailable)));
        assert!(retryable(&status_error(tonic::Code::DeadlineExceeded)));
        assert!(!retryable(&status_error(tonic::Code::InvalidArgument)));
        assert!(!retryable(&status_error(tonic::Code::Unauthenticated)));
    }

    #[test]
    fn short_hash_is_12_chars_or_less() {
        assert_eq!(short("0123456789abcdef"), "0123456789ab");
        assert_eq!(short("abc"), "abc");
    }
}
