//! The reporting protocol, against an in-process aggregator. The engine is
//! deliberately absent here (its socket does not exist), which also pins
//! down how an unreachable engine is reported.

use std::time::Duration;

use envparity_agent::run;
use envparity_proto::v1::EngineState;
use tokio::sync::oneshot;

use crate::support::aggregator::FakeAggregator;
use crate::support::{NO_ENGINE, config};

/// A running agent; `stop` shuts it down like SIGTERM would.
struct RunningAgent {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), envparity_agent::RunError>>,
}

impl RunningAgent {
    fn start(config: envparity_agent::Config) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run(config, async {
            stopped.await.ok();
        }));
        Self { stop, task }
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        let result = tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("agent did not stop within 5s of the shutdown signal")
            .expect("agent task panicked");
        assert!(result.is_ok(), "agent stopped with {result:?}");
    }
}

#[tokio::test]
async fn once_pushes_a_single_snapshot_and_returns() {
    let aggregator = FakeAggregator::start().await;
    let mut cfg = config(&aggregator.url, NO_ENGINE);
    cfg.once = true;
    tokio::time::timeout(Duration::from_secs(10), run(cfg, std::future::pending()))
        .await
        .expect("--once did not return")
        .expect("--once failed");
    let pushes = aggregator.pushes();
    assert_eq!(pushes.len(), 1);
    let snap = &pushes[0];
    assert_eq!(snap.sequence, 1, "the first report of a boot is sequence 1");
    assert_eq!(snap.host_id, "test-host");
    assert_eq!(snap.environment, "staging");
    assert_eq!(snap.fingerprint_key_id, "ktest");
    assert_eq!(snap.labels[0].key, "region");
    assert_eq!(snap.agent.as_ref().unwrap().boot_id.len(), 32);
    assert_eq!(snap.content_hash, envparity_proto::hash::content_hash(snap));
    assert!(
        snap.host
            .as_ref()
            .is_some_and(|h| !h.kernel_version.is_empty())
    );
}

#[tokio::test]
async fn unreachable_engine_is_reported_as_such_never_as_no_containers() {
    let aggregator = FakeAggregator::start().await;
    let mut cfg = config(&aggregator.url, NO_ENGINE);
    cfg.once = true;
    run(cfg, std::future::pending()).await.unwrap();
    let snap = &aggregator.pushes()[0];
    assert_eq!(snap.engine_state(), EngineState::Unreachable);
    assert!(snap.engine.is_none(), "no engine facts without an engine");
    assert!(snap.containers.is_empty());
}

#[tokio::test]
async fn once_fails_naming_the_aggregator_when_it_is_down() {
    let port = free_port().await;
    let url = format!("http://127.0.0.1:{port}");
    let mut cfg = config(&url, NO_ENGINE);
    cfg.once = true;
    let err = tokio::time::timeout(Duration::from_secs(30), run(cfg, std::future::pending()))
        .await
        .expect("--once did not give up")
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.starts_with(&format!("aggregator {url}: PushSnapshot failed")),
        "{msg}"
    );
    assert!(msg.contains("gave up after 5 attempts"), "{msg}");
}

#[tokio::test]
async fn unchanged_content_is_heartbeated_not_pushed_again() {
    let aggregator = FakeAggregator::start().await;
    let agent = RunningAgent::start(config(&aggregator.url, NO_ENGINE));
    let first = aggregator
        .wait_for_push("the first snapshot", Duration::from_secs(5), |_| true)
        .await;
    aggregator
        .wait_for_heartbeats(3, Duration::from_secs(5))
        .await;
    agent.stop().await;

    assert_eq!(aggregator.pushes().len(), 1, "content did not change");
    let heartbeats = aggregator.heartbeats();
    let mut last = first.sequence;
    for hb in &heartbeats {
        assert_eq!(hb.content_hash, first.content_hash);
        assert_eq!(hb.boot_id, first.agent.as_ref().unwrap().boot_id);
        assert_eq!(hb.host_id, "test-host");
        assert_eq!(hb.engine_state(), EngineState::Unreachable);
        assert!(hb.sent_at.is_some());
        assert!(hb.sequence > last, "sequence must strictly increase");
        last = hb.sequence;
    }
}

#[tokio::test]
async fn snapshot_is_pushed_again_when_the_aggregator_asks() {
    let aggregator = FakeAggregator::start().await;
    let agent = RunningAgent::start(config(&aggregator.url, NO_ENGINE));
    let first = aggregator
        .wait_for_push("the first snapshot", Duration::from_secs(5), |_| true)
        .await;
    aggregator
        .wait_for_heartbeats(1, Duration::from_secs(5))
        .await;
    aggregator.ask_for_snapshot();
    let again = aggregator
        .wait_for_push("a re-push", Duration::from_secs(5), |s| {
            s.sequence != first.sequence
        })
        .await;
    agent.stop().await;

    assert_eq!(again.content_hash, first.content_hash);
    let asked_at = aggregator
        .heartbeats()
        .iter()
        .map(|h| h.sequence)
        .filter(|s| *s < again.sequence)
        .max()
        .unwrap();
    assert!(
        again.sequence > asked_at,
        "a re-push is newer than the heartbeat that asked"
    );
}

#[tokio::test]
async fn snapshot_is_kept_and_delivered_once_the_aggregator_comes_up() {
    let port = free_port().await;
    let url = format!("http://127.0.0.1:{port}");
    let agent = RunningAgent::start(config(&url, NO_ENGINE));
    // Let a few pushes fail.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let aggregator = FakeAggregator::start_on(format!("127.0.0.1:{port}").parse().unwrap()).await;
    let snap = aggregator
        .wait_for_push("the retried snapshot", Duration::from_secs(10), |_| true)
        .await;
    agent.stop().await;
    assert_eq!(
        snap.sequence, 1,
        "the retried snapshot keeps its number, so the aggregator can tell a retry"
    );
}

/// A loopback port nothing listens on (bound, then released).
async fn free_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}
