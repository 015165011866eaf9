//! The harness checked against the real engine and registry. If these fail,
//! no product test can be trusted.

use std::path::Path;
use std::time::{Duration, Instant};

use envparity_tests::pids::{self, is_alive, processes_under};
use envparity_tests::{DockerHost, Error, Fleet, ImageSpec, KEEP_ENV, Result, Run, mounts_under};

/// Asserts that nothing of `dir` survives: no process, no mount, no files.
#[track_caller]
fn assert_gone(dir: &Path, pids: &[u32]) {
    let alive: Vec<u32> = pids.iter().copied().filter(|&pid| is_alive(pid)).collect();
    assert!(
        alive.is_empty(),
        "pids {alive:?} of {} are still alive",
        dir.display()
    );
    assert_eq!(
        processes_under(dir),
        Vec::<u32>::new(),
        "processes under {}",
        dir.display()
    );
    assert_eq!(
        mounts_under(dir),
        Vec::<std::path::PathBuf>::new(),
        "mounts under {}",
        dir.display()
    );
    if std::env::var_os(KEEP_ENV).is_none() {
        assert!(!dir.exists(), "{} still exists", dir.display());
    }
}

#[test]
fn an_image_pushed_from_one_host_pulls_with_the_same_digest_on_another() -> Result<()> {
    let fleet = Fleet::builder()
        .host("staging")
        .host("production")
        .registry()
        .start()?;
    let (staging, prod) = (fleet.host("staging"), fleet.host("production"));
    let registry = fleet.registry();

    prod.import_image(
        "myapp:1",
        ImageSpec::new().file("/app/version", "1").env("BAKED", "1"),
    )?;
    let pushed = registry.push_from(prod, "myapp:1")?;
    let pulled = registry.pull_to(staging, "myapp:1")?;

    let repository = format!("127.0.0.1:{}/myapp", registry.port());
    assert!(
        pushed.starts_with(&format!("{repository}@sha256:")),
        "{pushed}"
    );
    assert_eq!(pulled, pushed, "repo digest on staging vs production");
    let reference = registry.reference("myapp:1");
    assert_eq!(
        staging.image_id(&reference)?,
        prod.image_id(&reference)?,
        "image id on both hosts"
    );
    assert_eq!(registry.digest_of(prod, "myapp:1")?, pushed);
    Ok(())
}

#[test]
fn a_container_runs_without_a_network_with_its_env_labels_and_files() -> Result<()> {
    let host = DockerHost::start("solo")?;
    host.import_image(
        "myapp:1",
        ImageSpec::new()
            .file("/app/version", "1.2.3\n")
            .env("BAKED", "1"),
    )?;
    let id = host.run(
        Run::new("myapp:1")
            .name("shop")
            .env("FOO", "bar baz")
            .label("envparity.service", "shop"),
    )?;

    let container = host.inspect("shop")?;
    assert_eq!(container["Id"], id.as_str());
    assert_eq!(container["State"]["Running"], true);
    assert_eq!(container["HostConfig"]["NetworkMode"], "none");
    let env: Vec<&str> = container["Config"]["Env"]
        .as_array()
        .map(|vars| vars.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    assert!(env.contains(&"FOO=bar baz"), "run env in {env:?}");
    assert!(env.contains(&"BAKED=1"), "baked env in {env:?}");
    assert_eq!(container["Config"]["Labels"]["envparity.service"], "shop");
    assert_eq!(host.exec("shop", &["cat", "/app/version"])?, "1.2.3");
    assert_eq!(
        host.exec("shop", &["ls", "/sys/class/net"])?,
        "lo",
        "only loopback inside"
    );

    host.rm("shop")?;
    assert_eq!(host.containers()?, Vec::<String>::new());
    Ok(())
}

#[test]
fn the_same_files_give_the_same_layer_and_a_new_version_a_new_one() -> Result<()> {
    let host = DockerHost::start("layers")?;
    let layers = |image: &str| -> Result<serde_json::Value> {
        Ok(host.inspect(image)?["RootFS"]["Layers"].take())
    };
    host.import_image("app:1", ImageSpec::new().file("/app/version", "1"))?;
    host.import_image(
        "app:1-again",
        ImageSpec::new()
            .file("/app/version", "1")
            .env("ONLY", "config"),
    )?;
    host.import_image("app:2", ImageSpec::new().file("/app/version", "2"))?;

    assert_eq!(
        layers("app:1")?,
        layers("app:1-again")?,
        "same files, same layer"
    );
    assert_ne!(
        layers("app:1")?,
        layers("app:2")?,
        "another version, another layer"
    );
    assert_ne!(
        host.image_id("app:1")?,
        host.image_id("app:1-again")?,
        "config is part of the id"
    );
    Ok(())
}

#[test]
fn a_failing_docker_command_names_the_command_the_host_and_the_cause() -> Result<()> {
    let host = DockerHost::start("errors")?;
    let error = host
        .docker(["inspect", "no-such-container"])
        .expect_err("inspect must fail");
    let message = error.to_string();
    assert!(matches!(error, Error::Command { .. }), "{message}");
    assert!(
        message.contains("/usr/bin/docker inspect no-such-container"),
        "{message}"
    );
    assert!(
        message.contains(&host.docker_host()),
        "names the host: {message}"
    );
    assert!(message.contains("No such"), "carries stderr: {message}");
    Ok(())
}

#[test]
fn dropping_a_host_ends_its_daemons_and_containers_and_removes_its_dir() -> Result<()> {
    let host = DockerHost::start("guarded")?;
    host.import_image("app:1", ImageSpec::new())?;
    host.run(Run::new("app:1").name("app"))?;
    let dir = host.dir().to_owned();
    let pids = host.pids();
    // dockerd, containerd, the shim, the container's sh and its sleep.
    assert!(
        pids.contains(&host.pid()),
        "dockerd {} in {pids:?}",
        host.pid()
    );
    assert!(
        pids.len() >= 5,
        "expected dockerd, containerd, shim and container processes: {pids:?}"
    );
    assert!(
        !mounts_under(&dir).is_empty(),
        "dockerd mounts its data root"
    );

    drop(host);
    assert_gone(&dir, &pids);
    Ok(())
}

#[test]
fn a_host_whose_dockerd_was_killed_is_still_cleaned_up() -> Result<()> {
    let host = DockerHost::start("crashed")?;
    host.import_image("app:1", ImageSpec::new())?;
    host.run(Run::new("app:1"))?;
    let dir = host.dir().to_owned();
    let pids = host.pids();

    // A crash leaves containerd, the shim and the container orphaned, and mounts behind.
    pids::kill(host.pid());
    drop(host);
    assert_gone(&dir, &pids);
    Ok(())
}

#[test]
fn a_three_host_fleet_with_a_registry_starts_and_stops_without_leftovers() -> Result<()> {
    let started = Instant::now();
    let fleet = Fleet::builder()
        .host("dev")
        .host("staging")
        .host("production")
        .registry()
        .start()?;
    let start_time = started.elapsed();

    for host in fleet.hosts() {
        host.import_image("myapp:1", ImageSpec::new().file("/app/version", "1"))?;
        host.run(Run::new("myapp:1").name("shop"))?;
    }
    let dir = fleet.dir().to_owned();
    let pids = processes_under(&dir);
    assert!(pids.contains(&fleet.registry().process().pid()));
    for host in fleet.hosts() {
        assert!(pids.contains(&host.pid()), "dockerd of {}", host.name());
        assert!(host.dir().starts_with(&dir));
    }
    assert!(fleet.fingerprint_key().is_file());

    let stopping = Instant::now();
    drop(fleet);
    let stop_time = stopping.elapsed();
    assert_gone(&dir, &pids);
    eprintln!(
        "3 hosts + registry: started in {start_time:?}, stopped (3 running containers) in {stop_time:?}"
    );
    assert!(start_time < Duration::from_secs(30) && stop_time < Duration::from_secs(30));
    Ok(())
}
