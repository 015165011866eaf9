//! Collection from a real Docker engine.

use std::time::{Duration, Instant};

use envparity_agent::collect::{Collector, SnapshotHeader};
use envparity_proto::v1::{Container, EngineState, EnvVar, HostSnapshot, ServiceSource};

use crate::support::aggregator::FakeAggregator;
use crate::support::dockerd::DockerHost;
use crate::support::{config, fleet_key};

fn names(vars: &[EnvVar]) -> Vec<&str> {
    vars.iter().map(|v| v.name.as_str()).collect()
}

fn find<'a>(snapshot: &'a HostSnapshot, name: &str) -> Option<&'a Container> {
    snapshot.containers.iter().find(|c| c.name == name)
}

async fn collect_once(engine: &DockerHost) -> HostSnapshot {
    let cfg = config("http://127.0.0.1:9", &engine.url());
    let mut collector = Collector::new(&cfg, SnapshotHeader::new(&cfg, "boot"));
    collector.collect().await
}

#[tokio::test]
async fn collects_a_running_container_from_a_real_engine() {
    let engine = DockerHost::start();
    let image_id = engine.import_busybox(
        "envparity-test:1",
        &["ENV BAKED=1", r#"CMD ["/bin/sleep","3600"]"#],
    );
    let id = engine.docker(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "none",
        "-e",
        "FOO=bar",
        "-e",
        "LOG_LEVEL=debug",
        "-e",
        "DB_PASSWORD=hunter2",
        "-l",
        "com.docker.compose.project=shop",
        "-l",
        "com.docker.compose.service=web",
        "--cap-drop",
        "NET_RAW",
        "--cap-drop",
        "MKNOD",
        "--read-only",
        "--restart",
        "unless-stopped",
        "-v",
        "/data",
        "envparity-test:1",
    ]);
    // A stopped container must not be reported.
    engine.docker(&[
        "create",
        "--name",
        "idle",
        "--network",
        "none",
        "envparity-test:1",
    ]);

    let snap = collect_once(&engine).await;

    assert_eq!(snap.engine_state(), EngineState::Ok);
    let facts = snap.engine.as_ref().expect("engine facts");
    assert_eq!(facts.storage_driver, "vfs");
    assert!(
        !facts.server_version.is_empty() && !facts.api_version.is_empty(),
        "{facts:?}"
    );
    assert_eq!(facts.os_type, "linux");

    assert_eq!(
        snap.containers.len(),
        1,
        "only the running container: {:?}",
        snap.containers
    );
    let web = find(&snap, "web").expect("the web container");
    assert_eq!(web.id, id);
    let service = web.service.as_ref().unwrap();
    assert_eq!(service.name, "shop/web");
    assert_eq!(service.source(), ServiceSource::Compose);

    assert_eq!(
        names(&web.explicit_env),
        ["DB_PASSWORD", "FOO", "LOG_LEVEL"]
    );
    let image_env = names(&web.image_env);
    assert!(image_env.contains(&"BAKED"), "{image_env:?}");
    assert!(
        !names(&web.explicit_env).contains(&"BAKED"),
        "baked env is not explicit"
    );

    let key = fleet_key();
    let env = |name: &str| web.explicit_env.iter().find(|v| v.name == name).unwrap();
    assert_eq!(env("FOO").fingerprint, key.fingerprint("FOO", "bar"));
    assert_eq!(env("FOO").value, None, "FOO is not allowlisted");
    assert_eq!(
        env("LOG_LEVEL").value.as_deref(),
        Some("debug"),
        "allowlisted"
    );
    assert_eq!(
        env("DB_PASSWORD").value,
        None,
        "allowlisted but secret-looking"
    );

    let image = web.image.as_ref().unwrap();
    assert_eq!(image.reference, "envparity-test:1");
    assert_eq!(image.image_id, image_id);
    assert!(
        image.repo_digests.is_empty(),
        "an imported image was never pushed or pulled"
    );
    assert_eq!(image.layers.len(), 1, "{:?}", image.layers);
    assert_eq!(image.os, "linux");
    assert!(!image.created.is_empty());

    let rt = web.runtime.as_ref().unwrap();
    assert_eq!(rt.cmd, ["/bin/sleep", "3600"]);
    assert_eq!(rt.network_mode, "none");
    assert_eq!(rt.cap_drop, ["CAP_MKNOD", "CAP_NET_RAW"], "one spelling");
    assert!(rt.read_only_rootfs);
    assert!(!rt.privileged);
    assert_eq!(rt.restart_policy, "unless-stopped");
    let mounts: Vec<_> = rt
        .mounts
        .iter()
        .map(|m| (m.r#type.as_str(), m.destination.as_str(), m.read_only))
        .collect();
    assert_eq!(mounts, [("volume", "/data", false)]);

    let labels: Vec<_> = web.labels.iter().map(|l| l.key.as_str()).collect();
    assert_eq!(
        labels,
        ["com.docker.compose.project", "com.docker.compose.service"]
    );
    assert!(web.started_at.is_some());

    // Unchanged engine, unchanged content hash.
    assert_eq!(collect_once(&engine).await.content_hash, snap.content_hash);
}

#[tokio::test]
async fn docker_run_is_reported_within_a_second_through_engine_events() {
    let engine = DockerHost::start();
    engine.import_busybox("envparity-test:1", &[r#"CMD ["/bin/sleep","3600"]"#]);
    let aggregator = FakeAggregator::start().await;
    // Resync is 1 h: only an engine event can explain a prompt report.
    let cfg = config(&aggregator.url, &engine.url());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(envparity_agent::run(cfg, async {
        stopped.await.ok();
    }));
    aggregator
        .wait_for_push("the initial snapshot", Duration::from_secs(10), |s| {
            s.engine_state() == EngineState::Ok && s.containers.is_empty()
        })
        .await;
    // Let the event subscription settle.
    tokio::time::sleep(Duration::from_millis(300)).await;

    engine.docker(&[
        "run",
        "-d",
        "--name",
        "late",
        "--network",
        "none",
        "envparity-test:1",
    ]);
    let started = Instant::now();
    aggregator
        .wait_for_push("the new container", Duration::from_secs(5), |s| {
            find(s, "late").is_some()
        })
        .await;
    let latency = started.elapsed();

    engine.docker(&["rm", "-f", "late"]);
    aggregator
        .wait_for_push("the container gone again", Duration::from_secs(5), |s| {
            s.engine_state() == EngineState::Ok && s.containers.is_empty() && s.sequence > 1
        })
        .await;

    stop.send(()).unwrap();
    agent.await.unwrap().unwrap();
    assert!(
        latency < Duration::from_secs(1),
        "docker run reported after {latency:?}"
    );
}

#[tokio::test]
async fn engine_restart_is_reported_as_unreachable_then_recovered() {
    let mut engine = DockerHost::start();
    engine.import_busybox("envparity-test:1", &[r#"CMD ["/bin/sleep","3600"]"#]);
    let aggregator = FakeAggregator::start().await;
    let cfg = config(&aggregator.url, &engine.url());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(envparity_agent::run(cfg, async {
        stopped.await.ok();
    }));
    aggregator
        .wait_for_push(
            "the engine's first snapshot",
            Duration::from_secs(10),
            |s| s.engine_state() == EngineState::Ok,
        )
        .await;

    // The event stream ends with the engine; the agent resyncs and finds it gone.
    engine.stop();
    let down = aggregator
        .wait_for_push("an unreachable engine", Duration::from_secs(10), |s| {
            s.engine_state() == EngineState::Unreachable
        })
        .await;
    assert!(down.containers.is_empty() && down.engine.is_none());

    // Back up: the agent resubscribes (resync is off, so only a new event
    // subscription can notice the container).
    engine.restart();
    engine.docker(&[
        "run",
        "-d",
        "--name",
        "after",
        "--network",
        "none",
        "envparity-test:1",
    ]);
    aggregator
        .wait_for_push("the recovered engine", Duration::from_secs(30), |s| {
            s.engine_state() == EngineState::Ok && find(s, "after").is_some()
        })
        .await;

    stop.send(()).unwrap();
    agent.await.unwrap().unwrap();
}
