//! The daemon loop's wake-ups: engine events (debounced), the periodic
//! resync, push retries and heartbeats, each a timer or a stream of the one
//! loop that drives the [`Agent`].

use std::future::pending;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use tokio::time::{Instant, sleep_until};
use tracing::{debug, error, info, warn};

use super::{Agent, DEBOUNCE, retryable};
use crate::config::Config;
use crate::report::Backoff;
use crate::runtime::changes::{Changes, ContainerEvent};
use crate::runtime::detect::{self, Target};
use crate::runtime::{ContainerRuntime, EventStream, RuntimeError};

/// What woke the loop.
#[derive(Debug)]
pub(super) enum Wake {
    /// An item (or the end) of the engine event stream.
    Event(Option<Result<ContainerEvent, RuntimeError>>),
    /// Time to (re)subscribe to engine events.
    Subscribe,
    /// The debounce after an event elapsed, or a collection was requested.
    Collect,
    /// Time for the periodic full re-collection: the safety net for a
    /// change no event told of.
    Resync,
    /// Time to retry pushing the pending snapshot.
    RetryPush,
    /// Time for a heartbeat.
    Heartbeat,
}

/// The daemon loop's timers and event subscription.
pub(super) struct Watch {
    agent: Agent,
    target: Target,
    heartbeat_interval: Duration,
    resync_interval: Duration,
    events: Option<EventStream>,
    /// The containers named by events since the last collection.
    changes: Changes,
    /// Whether the next collection must read every container: the first
    /// one, and every one after (re)subscribing to events, since whatever
    /// happened while unsubscribed went untold.
    collect_all: bool,
    events_backoff: Backoff,
    push_backoff: Backoff,
    heartbeat_backoff: Backoff,
    subscribe_at: Option<Instant>,
    collect_at: Option<Instant>,
    resync_at: Instant,
    retry_at: Option<Instant>,
    heartbeat_at: Instant,
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => pending().await,
    }
}

impl Watch {
    pub(super) fn new(agent: Agent, config: &Config) -> Self {
        let now = Instant::now();
        Self {
            agent,
            target: config.runtime_target(),
            heartbeat_interval: config.heartbeat_interval,
            resync_interval: config.resync_interval,
            events: None,
            changes: Changes::default(),
            collect_all: true,
            events_backoff: Backoff::new(),
            push_backoff: Backoff::new(),
            heartbeat_backoff: Backoff::new(),
            // Subscribing triggers the first collection.
            subscribe_at: Some(now),
            collect_at: None,
            resync_at: now + config.resync_interval,
            retry_at: None,
            heartbeat_at: now + config.heartbeat_interval,
        }
    }

    pub(super) async fn next_wake(&mut self) -> Wake {
        let events = &mut self.events;
        let next_event = async move {
            match events {
                Some(stream) => stream.next().await,
                None => pending().await,
            }
        };
        tokio::select! {
            biased;
            event = next_event => Wake::Event(event),
            () = sleep_until_some(self.subscribe_at) => Wake::Subscribe,
            () = sleep_until_some(self.collect_at) => Wake::Collect,
            () = sleep_until_some(self.retry_at) => Wake::RetryPush,
            () = sleep_until(self.resync_at) => Wake::Resync,
            () = sleep_until(self.heartbeat_at) => Wake::Heartbeat,
        }
    }

    pub(super) async fn handle(&mut self, wake: Wake) {
        let now = Instant::now();
        match wake {
            Wake::Event(Some(Ok(event))) => {
                self.events_backoff.reset();
                self.agent.metrics.event();
                debug!(action = %event.action, "container event");
                if !self.changes.note(&event) {
                    self.collect_all = true;
                }
                self.collect_at.get_or_insert(now + DEBOUNCE);
            }
            Wake::Event(Some(Err(error))) => {
                let delay = self.events_backoff.next_delay();
                warn!(runtime = %self.target.describe(), %error, retry_in = ?delay, "container event stream failed; resubscribing");
                self.events = None;
                self.subscribe_at = Some(now + delay);
            }
            Wake::Event(None) => {
                let delay = self.events_backoff.next_delay();
                warn!(runtime = %self.target.describe(), retry_in = ?delay, "container event stream ended; resubscribing");
                self.events = None;
                self.subscribe_at = Some(now + delay);
            }
            Wake::Subscribe => {
                self.subscribe_at = None;
                // The collector pins the runtime auto-detection found.
                self.target = self.agent.collector.target().clone();
                match detect::connect(&self.target).await {
                    Ok(engine) => {
                        // A second back covers clock granularity: replayed
                        // duplicates only cost a collection.
                        let since = SystemTime::now() - Duration::from_secs(1);
                        self.events = engine.events(since);
                        if self.events.is_some() {
                            debug!(runtime = %engine.kind(), "watching container events");
                        } else {
                            info!(
                                runtime = %engine.kind(),
                                resync = ?self.resync_interval,
                                "this runtime has no event stream: changes are seen at each resync"
                            );
                        }
                    }
                    Err(error) => {
                        // The collection below reports the outage; this is
                        // the same cause seen a second time.
                        let delay = self.events_backoff.next_delay();
                        debug!(runtime = %self.target.describe(), %error, retry_in = ?delay, "cannot watch container events");
                        self.subscribe_at = Some(now + delay);
                    }
                }
                // Whatever happened while unsubscribed is only seen by
                // reading everything.
                self.collect_all = true;
                self.collect_at = Some(now);
            }
            Wake::Collect | Wake::Resync => {
                if matches!(wake, Wake::Resync) {
                    self.resync_at = now + self.resync_interval;
                }
                self.collect_at = None;
                let changes = std::mem::take(&mut self.changes);
                if std::mem::take(&mut self.collect_all) || matches!(wake, Wake::Resync) {
                    self.agent.collect(None).await;
                } else {
                    self.agent.collect(Some(&changes)).await;
                }
                if self.agent.has_pending() && self.retry_at.is_none() {
                    self.retry_at = Some(Instant::now());
                }
            }
            Wake::RetryPush => {
                self.retry_at = None;
                match self.agent.push_pending().await {
                    Ok(()) => {
                        self.push_backoff.reset();
                        self.heartbeat_at = Instant::now() + self.heartbeat_interval;
                    }
                    Err(error) => {
                        let delay = self.push_backoff.next_delay();
                        if retryable(&error) {
                            warn!(%error, retry_in = ?delay, "snapshot push failed; will retry");
                        } else {
                            error!(%error, retry_in = ?delay, "aggregator rejected the snapshot; will retry");
                        }
                        self.retry_at = Some(Instant::now() + delay);
                    }
                }
            }
            Wake::Heartbeat => {
                self.heartbeat_at = now + self.heartbeat_interval;
                if self.agent.has_pending() {
                    // A push is being retried; that is the liveness signal.
                    return;
                }
                match self.agent.heartbeat().await {
                    Ok(()) => {
                        self.heartbeat_backoff.reset();
                        if self.agent.has_pending() {
                            self.retry_at = Some(Instant::now());
                        }
                    }
                    Err(error) => {
                        let delay = self
                            .heartbeat_backoff
                            .next_delay()
                            .min(self.heartbeat_interval);
                        warn!(%error, retry_in = ?delay, "heartbeat failed");
                        self.heartbeat_at = Instant::now() + delay;
                    }
                }
            }
        }
    }
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("agent", &self.agent)
            .field("subscribed", &self.events.is_some())
            .finish_non_exhaustive()
    }
}
