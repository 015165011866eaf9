//! The reporting protocol, against the real aggregator in-process. Most
//! tests leave the engine absent (its socket does not exist), which also
//! pins down how an unreachable engine is reported; the ones that need
//! containers to report start a real engine.

use std::time::Duration;

use envparity_proto::hash::content_hash;
use envparity_proto::v1::{EngineState, HostSnapshot, HostState};
use envparity_tests::{DockerHost, ImageSpec, Result, Run, free_port};

use crate::support::agent::{Agent, run_once};
use crate::support::serve::{Aggregator, time};
use crate::support::{ENVIRONMENT, HOST_ID, NO_ENGINE, config};

/// The image the containers here run.
const IMAGE: &str = "envparity-test:1";

/// How long a `--once` that should succeed may take.
const ONCE_TIMEOUT: Duration = Duration::from_secs(10);

fn boot_id(snapshot: &HostSnapshot) -> &str {
    snapshot.agent.as_ref().map_or("", |a| a.boot_id.as_str())
}

#[test]
fn once_pushes_a_single_snapshot_and_returns() -> Result<()> {
    let engine = DockerHost::start("once")?;
    let image_id = engine.import_image(IMAGE, ImageSpec::new())?;
    let web = engine.run(Run::new(IMAGE).name("web"))?;
    let mut aggregator = Aggregator::start();
    run_once(
        config(&aggregator.url(), &engine.docker_host()),
        ONCE_TIMEOUT,
    )
    .expect("--once failed");

    // --once returns once the aggregator acknowledged the snapshot, which it
    // does only after storing it: no waiting here.
    let host = aggregator
        .host()
        .expect("the host is listed as soon as --once returned");
    assert_eq!(host.environment, ENVIRONMENT);
    assert_eq!(host.state(), HostState::Fresh);
    let labels: Vec<_> = host
        .labels
        .iter()
        .map(|l| (l.key.as_str(), l.value.as_str()))
        .collect();
    assert_eq!(labels, [("region", "eu")]);
    assert!(
        host.host
            .as_ref()
            .is_some_and(|h| !h.kernel_version.is_empty()),
        "{host:#?}"
    );
    assert!(host.engine.is_some(), "engine facts: {host:#?}");
    assert_eq!(host.agent_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(host.container_count, 1);
    assert_eq!(
        time(host.last_seen.as_ref()),
        time(host.snapshot_received_at.as_ref()),
        "--once sends nothing after its snapshot"
    );

    let replicas = aggregator.replicas("web");
    assert_eq!(replicas.len(), 1, "{replicas:#?}");
    assert_eq!(
        (
            replicas[0].environment.as_str(),
            replicas[0].host_id.as_str()
        ),
        (ENVIRONMENT, HOST_ID)
    );
    let container = replicas[0].container.as_ref().expect("the container");
    assert_eq!(container.id, web);
    assert_eq!(
        container.image.as_ref().map(|i| i.image_id.as_str()),
        Some(image_id.as_str())
    );

    aggregator.stop();
    let stored = aggregator.stored();
    assert_eq!(
        stored.sequence, 1,
        "the first report of a boot is sequence 1, and --once sends only it"
    );
    assert_eq!(stored.host_id, HOST_ID);
    assert_eq!(stored.environment, ENVIRONMENT);
    assert_eq!(stored.fingerprint_key_id, "ktest");
    assert_eq!(boot_id(&stored).len(), 32);
    assert_eq!(stored.engine_state(), EngineState::Ok);
    assert_eq!(stored.content_hash, content_hash(&stored));
    Ok(())
}

/// The first snapshot goes hashed whole (the agent does not know yet what
/// the aggregator checks); once acknowledged by an aggregator that checks
/// hashes by container, the next change goes in that form, and is stored.
#[test]
fn the_agent_hashes_by_container_once_the_aggregator_checks_it() -> Result<()> {
    let engine = DockerHost::start("hashform")?;
    engine.import_image(IMAGE, ImageSpec::new())?;
    engine.run(Run::new(IMAGE).name("web"))?;
    let mut aggregator = Aggregator::start();
    let agent = Agent::start(config(&aggregator.url(), &engine.docker_host()));
    let first = aggregator.wait_for_host("the first snapshot", Duration::from_secs(10), |h| {
        h.container_count == 1
    });
    let received = time(first.snapshot_received_at.as_ref());
    aggregator.wait_for_host("a heartbeat", Duration::from_secs(5), |h| {
        time(h.last_seen.as_ref()) > received
    });
    engine.run(Run::new(IMAGE).name("api"))?;
    aggregator.wait_for_host("the second container", Duration::from_secs(10), |h| {
        h.container_count == 2
    });
    // Heartbeats of the new content are recognised (no snapshot asked
    // for again: the one stored stays).
    let second = aggregator.host().expect("the host is listed");
    let received = time(second.snapshot_received_at.as_ref());
    aggregator.wait_for_host("two heartbeats", Duration::from_secs(5), |h| {
        assert_eq!(
            time(h.snapshot_received_at.as_ref()),
            received,
            "a heartbeat of the content stored was answered with snapshot_needed"
        );
        time(h.last_seen.as_ref()) > received + Duration::from_millis(150)
    });
    agent.stop();
    aggregator.stop();
    let stored = aggregator.stored();
    assert!(
        stored.content_hash.starts_with("v2:"),
        "{}",
        stored.content_hash
    );
    assert!(envparity_proto::hash::makes_its_hash(&stored));
    assert_eq!(stored.containers.len(), 2);
    Ok(())
}

#[test]
fn unreachable_engine_is_reported_as_such_never_as_no_containers() {
    let mut aggregator = Aggregator::start();
    // `--once` delivers the engine_unreachable report, then fails: a one-shot
    // run that could not read its engine has not done its job.
    let err = run_once(config(&aggregator.url(), NO_ENGINE), ONCE_TIMEOUT)
        .expect_err("--once without an engine must fail");
    let message = err.to_string();
    assert!(
        message.contains(NO_ENGINE) && message.contains("unreachable"),
        "the error names the engine: {message}"
    );

    let host = aggregator.host().expect("the host is listed");
    assert_eq!(
        host.state(),
        HostState::EngineUnreachable,
        "an engine that does not answer is not an engine without containers"
    );
    assert!(host.engine.is_none(), "no engine facts without an engine");
    assert_eq!(host.container_count, 0);
    aggregator.stop();
    assert_eq!(aggregator.stored().engine_state(), EngineState::Unreachable);
}

#[test]
fn containers_are_kept_while_the_engine_is_unreachable() -> Result<()> {
    let engine = DockerHost::start("kept")?;
    engine.import_image(IMAGE, ImageSpec::new())?;
    engine.run(Run::new(IMAGE).name("web"))?;
    let aggregator = Aggregator::start();
    run_once(
        config(&aggregator.url(), &engine.docker_host()),
        ONCE_TIMEOUT,
    )
    .expect("--once with the engine failed");
    let seen = aggregator.host().expect("the host is listed");
    assert_eq!((seen.state(), seen.container_count), (HostState::Fresh, 1));

    // The same host reports again, its engine gone.
    run_once(config(&aggregator.url(), NO_ENGINE), ONCE_TIMEOUT)
        .expect_err("--once without the engine reports it, then fails");
    let host = aggregator.host().expect("the host is listed");
    assert_eq!(host.state(), HostState::EngineUnreachable);
    assert_eq!(
        host.container_count, 1,
        "the containers last seen are kept, not reported as removed"
    );
    let replicas = aggregator.replicas("web");
    assert_eq!(replicas.len(), 1, "{replicas:#?}");
    assert_eq!(replicas[0].host_state(), HostState::EngineUnreachable);
    Ok(())
}

#[test]
fn once_fails_naming_the_aggregator_when_it_is_down() {
    let port = free_port().expect("a free port");
    let url = format!("http://127.0.0.1:{port}");
    let err = run_once(config(&url, NO_ENGINE), Duration::from_secs(30)).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.starts_with(&format!("aggregator {url}: PushSnapshot failed")),
        "{msg}"
    );
    assert!(msg.contains("gave up after 5 attempts"), "{msg}");
}

#[test]
fn unchanged_content_is_heartbeated_not_pushed_again() {
    let mut aggregator = Aggregator::start();
    let agent = Agent::start(config(&aggregator.url(), NO_ENGINE));
    let first = aggregator.wait_for_host("the first snapshot", Duration::from_secs(5), |_| true);
    let received = time(first.snapshot_received_at.as_ref());

    // Each heartbeat the aggregator accepts moves `last_seen`. One whose
    // content hash differed from the stored snapshot's would be answered
    // with `snapshot_needed`, and the re-push would move
    // `snapshot_received_at`.
    let mut seen = vec![time(first.last_seen.as_ref())];
    envparity_tests::wait_until(Duration::from_secs(5), "three heartbeats", || {
        let host = aggregator.host().expect("the host is still listed");
        assert_eq!(
            time(host.snapshot_received_at.as_ref()),
            received,
            "the content did not change, yet a snapshot was stored again"
        );
        assert_eq!(
            host.state(),
            HostState::EngineUnreachable,
            "heartbeats carry the engine state"
        );
        let last_seen = time(host.last_seen.as_ref());
        if last_seen > seen[seen.len() - 1] {
            seen.push(last_seen);
        }
        seen.len() > 3
    })
    .unwrap_or_else(|error| panic!("{error}; last_seen went {seen:?}"));
    agent.stop();

    aggregator.stop();
    assert_eq!(
        aggregator.stored().sequence,
        1,
        "the first snapshot is still the one stored"
    );
}

#[test]
fn snapshot_is_pushed_again_when_the_aggregator_asks() {
    let mut first = Aggregator::start();
    let port = first.port();
    let agent = Agent::start(config(&first.url(), NO_ENGINE));
    let pushed = first.wait_for_host("the first snapshot", Duration::from_secs(5), |_| true);
    let received = time(pushed.snapshot_received_at.as_ref());
    first.wait_for_host("a heartbeat", Duration::from_secs(5), |h| {
        time(h.last_seen.as_ref()) > received
    });
    first.stop();
    let before = first.stored();
    drop(first);

    // A new aggregator on the same port that has lost all state: it answers
    // the agent's next heartbeat with `snapshot_needed`.
    let mut second = Aggregator::start_on(port);
    let host = second.wait_for_host("the snapshot pushed again", Duration::from_secs(10), |_| {
        true
    });
    agent.stop();
    assert_eq!(host.state(), HostState::EngineUnreachable);

    second.stop();
    let after = second.stored();
    assert_eq!(after.content_hash, before.content_hash, "the same content");
    assert_eq!(
        boot_id(&after),
        boot_id(&before),
        "the same agent run: it was not restarted"
    );
    // Heartbeats and pushes share the per-boot sequence, so the heartbeat
    // that was answered with `snapshot_needed` took a number after the first
    // push, and the re-push one after that.
    assert!(
        after.sequence > before.sequence + 1,
        "a re-push is newer than the heartbeat that asked: sequence {} after {}",
        after.sequence,
        before.sequence
    );
}

#[test]
fn snapshot_is_kept_and_delivered_once_the_aggregator_comes_up() {
    let port = free_port().expect("a free port");
    let agent = Agent::start(config(&format!("http://127.0.0.1:{port}"), NO_ENGINE));
    // Let a few pushes fail (the retry backoff starts at 100-200 ms); nothing
    // outside the agent can observe them, so this waits by the clock.
    std::thread::sleep(Duration::from_millis(800));
    let mut aggregator = Aggregator::start_on(port);
    aggregator.wait_for_host("the retried snapshot", Duration::from_secs(10), |_| true);
    agent.stop();

    aggregator.stop();
    assert_eq!(
        aggregator.stored().sequence,
        1,
        "the retried snapshot keeps its number, so the aggregator can tell a retry"
    );
}
