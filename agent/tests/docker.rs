//! The agent against real, isolated Docker engines (`envparity_tests::DockerHost`).

use std::time::{Duration, SystemTime};

use envparity_agent::collect::{Collector, SnapshotHeader};
use envparity_proto::v1::{Container, EngineState, EnvVar, HostSnapshot, HostState, ServiceSource};
use envparity_tests::{DockerHost, ImageSpec, Result, Run};

use crate::support::agent::Agent;
use crate::support::serve::{Aggregator, time};
use crate::support::{config, fleet_key, runtime};

/// The image the containers here run.
const IMAGE: &str = "envparity-test:1";

/// How quickly a `docker run` must reach the aggregator.
const REPORT_BOUND: Duration = Duration::from_secs(1);

fn names(vars: &[EnvVar]) -> Vec<&str> {
    vars.iter().map(|v| v.name.as_str()).collect()
}

fn find<'a>(snapshot: &'a HostSnapshot, name: &str) -> Option<&'a Container> {
    snapshot.containers.iter().find(|c| c.name == name)
}

fn collect_once(engine: &DockerHost) -> HostSnapshot {
    let cfg = config("http://127.0.0.1:9", &engine.docker_host());
    let mut collector = Collector::new(&cfg, SnapshotHeader::new(&cfg, "boot"));
    runtime().block_on(collector.collect(None))
}

#[test]
fn collects_a_running_container_from_a_real_engine() -> Result<()> {
    let engine = DockerHost::start("collect")?;
    let image_id = engine.import_image(
        IMAGE,
        ImageSpec::new()
            .env("BAKED", "1")
            .cmd(&["/bin/sleep", "3600"]),
    )?;
    let id = engine.run(
        Run::new(IMAGE)
            .name("web")
            .env("FOO", "bar")
            .env("LOG_LEVEL", "debug")
            .env("DB_PASSWORD", "hunter2")
            .label("com.docker.compose.project", "shop")
            .label("com.docker.compose.service", "web")
            .arg("--cap-drop=NET_RAW")
            .arg("--cap-drop=MKNOD")
            .arg("--read-only")
            .arg("--restart=unless-stopped")
            .arg("--volume=/data"),
    )?;
    // A stopped container must not be reported.
    engine.docker(["create", "--name=idle", "--network=none", IMAGE])?;

    let snap = collect_once(&engine);

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
    assert_eq!(image.reference, IMAGE);
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
    assert_eq!(collect_once(&engine).content_hash, snap.content_hash);
    Ok(())
}

#[test]
fn docker_run_is_reported_within_a_second_through_engine_events() -> Result<()> {
    let engine = DockerHost::start("events")?;
    engine.import_image(IMAGE, ImageSpec::new())?;
    let aggregator = Aggregator::start();
    // Resync is 1 h: only an engine event can explain a prompt report.
    let agent = Agent::start(config(&aggregator.url(), &engine.docker_host()));
    aggregator.wait_for_host("the initial snapshot", Duration::from_secs(10), |h| {
        h.state() == HostState::Fresh && h.container_count == 0
    });
    // Let the event subscription settle.
    std::thread::sleep(Duration::from_millis(300));

    engine.run(Run::new(IMAGE).name("late"))?;
    let run_returned = SystemTime::now();
    aggregator.wait_for_replica("late", Duration::from_secs(5));
    // When the aggregator stored the snapshot listing the container, by its
    // own clock (this process's): exact, whatever the polling pace. A newer
    // snapshot stored meanwhile could only make it later, never earlier.
    let host = aggregator.host().expect("the host is listed");
    let latency = time(host.snapshot_received_at.as_ref())
        .duration_since(run_returned)
        .unwrap_or_default();

    engine.rm("late")?;
    aggregator.wait_for_host("the container gone again", Duration::from_secs(5), |h| {
        h.state() == HostState::Fresh && h.container_count == 0
    });
    assert!(aggregator.replicas("late").is_empty());

    agent.stop();
    assert!(
        latency < REPORT_BOUND,
        "docker run was listed by the aggregator {latency:?} after it returned; the bound is {REPORT_BOUND:?}"
    );
    Ok(())
}

/// Waits until the aggregator holds, for the test host, exactly the
/// containers a full collection finds now; panics naming `step` otherwise.
fn wait_for_full_agreement(aggregator: &Aggregator, engine: &DockerHost, step: &str) {
    let mut last = (Vec::new(), Vec::new());
    let agreed = envparity_tests::wait_until(Duration::from_secs(10), step, || {
        let expected = collect_once(engine).containers;
        let count = aggregator.host().map_or(0, |h| h.container_count as usize);
        let reported: Vec<Container> = expected
            .iter()
            .filter_map(|c| {
                let service = c.service.as_ref()?.name.as_str();
                aggregator
                    .replicas(service)
                    .into_iter()
                    .filter(|r| r.host_id == crate::support::HOST_ID)
                    .find_map(|r| r.container.filter(|reported| reported.id == c.id))
            })
            .collect();
        let agreed = count == expected.len() && reported == expected;
        last = (expected, reported);
        agreed
    });
    if let Err(error) = agreed {
        panic!(
            "{error}: a full collection finds {:#?}, the aggregator holds {:#?}",
            last.0, last.1
        );
    }
}

/// The agent's `envparity_agent_reports_sent_total` of `kind`.
fn sent(metrics: std::net::SocketAddr, kind: &str) -> Result<u64> {
    let text = envparity_tests::http::get(&format!("http://{metrics}/metrics"))?.body;
    let series = format!("envparity_agent_reports_sent_total{{type=\"{kind}\"}} ");
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series:?} in\n{text}")))
}

/// Every change is reported exactly: as deltas by default (after the first
/// snapshot, which has no base).
#[test]
fn after_each_event_the_report_equals_a_full_collection() -> Result<()> {
    events_are_reported_exactly("changes", false)
}

/// The same with `--full-snapshots`: what an agent from before deltas
/// sends, whole snapshots only.
#[test]
fn with_full_snapshots_each_event_is_reported_exactly_and_whole() -> Result<()> {
    events_are_reported_exactly("changes-full", true)
}

fn events_are_reported_exactly(name: &str, full_snapshots: bool) -> Result<()> {
    let engine = DockerHost::start(name)?;
    engine.import_image(IMAGE, ImageSpec::new().env("BAKED", "1"))?;
    engine.run(Run::new(IMAGE).name("web").env("A", "1"))?;
    let aggregator = Aggregator::start();
    // Resync is 1 h: after the first collection, only events read the engine.
    let metrics = std::net::SocketAddr::from(([127, 0, 0, 1], envparity_tests::free_port()?));
    let agent = Agent::start(envparity_agent::config::Config {
        full_snapshots,
        metrics_listen: Some(metrics),
        ..config(&aggregator.url(), &engine.docker_host())
    });
    wait_for_full_agreement(&aggregator, &engine, "the first collection");

    let steps: &[(&str, &[&str])] = &[
        (
            "run api",
            &[
                "run",
                "-d",
                "--name=api",
                "--network=none",
                "--env=B=1",
                IMAGE,
            ],
        ),
        ("rename api to api2", &["rename", "api", "api2"]),
        ("pause web", &["pause", "web"]),
        ("unpause web", &["unpause", "web"]),
        (
            "update api2's restart policy",
            &["update", "--restart=always", "api2"],
        ),
        ("restart api2", &["restart", "--time=0", "api2"]),
        ("stop api2", &["stop", "--time=0", "api2"]),
        ("start api2", &["start", "api2"]),
        ("remove web", &["rm", "--force", "web"]),
        (
            "run web again",
            &[
                "run",
                "-d",
                "--name=web",
                "--network=none",
                "--env=A=2",
                IMAGE,
            ],
        ),
        ("kill api2 (restart policy always)", &["kill", "api2"]),
    ];
    for (step, args) in steps {
        engine.docker(*args)?;
        wait_for_full_agreement(&aggregator, &engine, step);
    }

    let (deltas, whole) = (sent(metrics, "delta")?, sent(metrics, "snapshot")?);
    if full_snapshots {
        assert_eq!(deltas, 0, "--full-snapshots sends no delta");
        assert!(whole > steps.len() as u64 / 2, "{whole} whole snapshots");
    } else {
        // Only the first has no base; none was refused.
        assert_eq!(whole, 1, "{whole} whole snapshots beside {deltas} deltas");
        assert!(deltas > steps.len() as u64 / 2, "{deltas} deltas");
    }
    agent.stop();
    Ok(())
}

#[test]
fn engine_restart_is_reported_as_unreachable_then_recovered() -> Result<()> {
    let mut engine = DockerHost::start("restart")?;
    engine.import_image(IMAGE, ImageSpec::new())?;
    let aggregator = Aggregator::start();
    let agent = Agent::start(config(&aggregator.url(), &engine.docker_host()));
    aggregator.wait_for_host(
        "the engine's first snapshot",
        Duration::from_secs(10),
        |h| h.state() == HostState::Fresh,
    );

    // The event stream ends with the engine; the agent resyncs and finds it gone.
    engine.stop_engine()?;
    aggregator.wait_for_host("an unreachable engine", Duration::from_secs(10), |h| {
        h.state() == HostState::EngineUnreachable
    });

    // Back up: the agent resubscribes (resync is off, so only a new event
    // subscription can notice the container).
    engine.start_engine()?;
    engine.run(Run::new(IMAGE).name("after"))?;
    aggregator.wait_for_host("the recovered engine", Duration::from_secs(30), |h| {
        h.state() == HostState::Fresh && !aggregator.replicas("after").is_empty()
    });

    agent.stop();
    Ok(())
}
