//! Podman beside Docker, end to end: a real scratch Podman service read by a
//! real `envparity-agent` through its Docker-compatible socket, which the
//! agent must recognise as Podman by itself (`--runtime auto`). Staging runs
//! on Docker, production on Podman, the same images from one registry.

use std::time::Duration;

use envparity_tests::answer::{Findings, Hosts};
use envparity_tests::{CliOutput, Fleet, ImageSpec, PodmanHost, Result, Run};

/// Agents register and report within this time on a loaded 2-core CI
/// machine; less than the agents' resync interval (1 min), so a change seen
/// in time was seen through Podman's events.
const REPORT_TIMEOUT: Duration = Duration::from_secs(30);

type Finding = (String, String, String);

/// `(kind, service, key)` of every finding, sorted; `None` when the output
/// is no list of findings (yet).
fn findings(out: &CliOutput) -> Option<Vec<Finding>> {
    let mut found: Vec<Finding> = out
        .try_answer::<Findings>()?
        .findings
        .into_iter()
        .map(|f| (f.kind, f.service, f.key))
        .collect();
    found.sort();
    Some(found)
}

/// `service_findings`, sorted: Podman's engine facts are not compared with
/// Docker's (another runtime).
fn expect(service_findings: &[(&str, &str, &str)]) -> Vec<Finding> {
    let mut all: Vec<Finding> = service_findings
        .iter()
        .map(|(k, s, key)| ((*k).to_owned(), (*s).to_owned(), (*key).to_owned()))
        .collect();
    all.sort();
    all
}

fn diff_until(fleet: &Fleet, expected: &[Finding]) -> Result<CliOutput> {
    fleet.cli_until(
        REPORT_TIMEOUT,
        &format!("the findings {expected:?}"),
        &["diff", "staging", "production"],
        |out| findings(out).as_deref() == Some(expected),
    )
}

#[test]
fn a_docker_staging_and_a_podman_production_agree_and_drift_is_seen_through_podman_events()
-> Result<()> {
    let fleet = Fleet::builder()
        .host("staging")
        .identity("production")
        .registry()
        .start()?;
    let staging = fleet.host("staging");
    let mut images = Vec::new();
    for version in ["1", "2"] {
        let tag = format!("shop:{version}");
        staging.import_image(
            &tag,
            ImageSpec::new()
                .file("/app/version", version)
                .env("BAKED", "1"),
        )?;
        images.push(fleet.registry().push_from(staging, &tag)?);
    }
    // Dropped before the fleet: it lives in the fleet's dir.
    let mut podman: PodmanHost = fleet.start_podman("production")?;
    for image in &images {
        podman.pull(image)?;
    }
    let web = |image: &str, name: &str, level: &str| {
        Run::new(image)
            .name(name)
            .label("envparity.service", "shop/web")
            .env("LOG_LEVEL", level)
    };
    staging.run(web(&images[0], "web-1", "info"))?;
    podman.run(web(&images[0], "web-1", "info"))?;

    let _aggregator = fleet.start_aggregator()?;
    let _staging = fleet.start_agent(staging)?;
    let production = fleet.podman_agent(&podman).start()?;
    fleet.wait_for_hosts(&["staging", "production"], REPORT_TIMEOUT)?;

    // Same digest, same explicit env, same settings: Podman's container,
    // HOSTNAME, PATH and TERM are injected, its working directory `/` is
    // Docker's none.
    diff_until(&fleet, &expect(&[]))?;
    let hosts = fleet.cli(&["hosts"])?;
    let runtime = hosts
        .answer::<Hosts>()
        .hosts
        .into_iter()
        .find(|h| h.host_id == "production")
        .and_then(|h| h.engine.get("runtime").cloned());
    assert_eq!(runtime.as_deref(), Some("podman"), "{hosts}");
    assert!(
        production.log().contains("runtime=podman"),
        "auto-detection did not say it found Podman: {}",
        production.log()
    );

    // Redeployed with another value: found, through Podman's events.
    podman.rm("web-1")?;
    podman.run(web(&images[0], "web-1", "debug"))?;
    diff_until(&fleet, &expect(&[("env_value", "shop/web", "LOG_LEVEL")]))?;

    // The API service restarts (the containers run on under conmon); a
    // second replica on other content after it is seen: digest and
    // replica drift.
    podman.stop_engine()?;
    podman.start_engine()?;
    podman.run(web(&images[1], "web-2", "debug"))?;
    diff_until(
        &fleet,
        &expect(&[
            ("env_value", "shop/web", "LOG_LEVEL"),
            ("image_digest", "shop/web", ""),
            ("replica_drift", "shop/web", "image"),
        ]),
    )?;
    Ok(())
}

#[test]
fn a_mounted_yaml_is_read_on_podman_and_one_key_differing_is_one_config_value() -> Result<()> {
    let fleet = Fleet::builder()
        .host("staging")
        .identity("production")
        .registry()
        .start()?;
    let staging = fleet.host("staging");
    staging.import_image("shop:1", ImageSpec::new().file("/app/version", "1"))?;
    let image = fleet.registry().push_from(staging, "shop:1")?;
    let podman: PodmanHost = fleet.start_podman("production")?;
    podman.pull(&image)?;
    // The same keys in another order and spacing; one value differs.
    let files = [
        (
            "staging",
            "server:\n  port: 8080\nfeatures:\n  checkout: true\n  search: false\n",
        ),
        (
            "production",
            "features:\n    search: false\n    checkout: false\nserver:\n    port: 8080\n",
        ),
    ];
    let mut runs = Vec::new();
    for (env, yaml) in files {
        let path = fleet.dir().join(format!("app-{env}.yaml"));
        std::fs::write(&path, yaml).expect("write a config file");
        runs.push(
            Run::new(&image)
                .name("web-1")
                .label("envparity.service", "shop/web")
                .arg(format!("--volume={}:/etc/app/app.yaml:ro", path.display())),
        );
    }
    let mut runs = runs.into_iter();
    staging.run(runs.next().expect("staging's"))?;
    podman.run(runs.next().expect("production's"))?;

    let _aggregator = fleet.start_aggregator()?;
    let _staging = fleet.start_agent(staging)?;
    let _production = fleet.podman_agent(&podman).start()?;
    fleet.wait_for_hosts(&["staging", "production"], REPORT_TIMEOUT)?;
    diff_until(
        &fleet,
        &expect(&[(
            "config_value",
            "shop/web",
            "/etc/app/app.yaml:features.checkout",
        )]),
    )?;
    Ok(())
}

/// A Podman local build carries a digest of its own, and Podman 4.3 keeps
/// listing only that one after a push, while a Docker host that pulled the
/// push lists the registry's: no digest in common, one image id (the
/// config's digest). Both run the same content: no `image_digest`, no
/// `same_tag_different_digest` (they were raised before the engine
/// compared image ids beside digests).
#[test]
fn a_podman_local_build_pushed_and_pulled_by_docker_is_the_same_content() -> Result<()> {
    let fleet = Fleet::builder()
        .host("staging")
        .identity("production")
        .registry()
        .start()?;
    let staging = fleet.host("staging");
    staging.import_image("base:1", ImageSpec::new().file("/app/version", "1"))?;
    let base = fleet.registry().push_from(staging, "base:1")?;
    let podman: PodmanHost = fleet.start_podman("production")?;
    podman.pull(&base)?;

    // Built on Podman: a container of the base, changed and committed
    // under the registry's name, then pushed there.
    let shop = fleet.registry().reference("shop:1");
    podman.podman(["run", "-d", "--network", "none", "--name", "builder", &base])?;
    podman.podman(["exec", "builder", "sh", "-c", "echo 2 > /app/version"])?;
    podman.podman(["commit", "builder", &shop])?;
    podman.podman(["rm", "--force", "builder"])?;
    let digests = |podman: &PodmanHost| -> Result<Vec<String>> {
        let out = podman.podman([
            "image",
            "inspect",
            "--format",
            "{{json .RepoDigests}}",
            &shop,
        ])?;
        Ok(serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{out}: {e}")))
    };
    let local = digests(&podman)?;
    assert_eq!(local.len(), 1, "a local build's own digest: {local:?}");
    podman.podman(["push", "--tls-verify=false", &shop])?;
    let pulled = fleet.registry().pull_to(staging, "shop:1")?;
    assert_eq!(
        digests(&podman)?,
        local,
        "Podman now lists the push's digest too: the case tested is gone"
    );
    assert!(!local.contains(&pulled), "{pulled} is the local digest");

    let web = || {
        Run::new(&shop)
            .name("web-1")
            .label("envparity.service", "shop/web")
    };
    staging.run(web())?;
    podman.run(web())?;
    let _aggregator = fleet.start_aggregator()?;
    let _staging = fleet.start_agent(staging)?;
    let _production = fleet.podman_agent(&podman).start()?;
    fleet.wait_for_hosts(&["staging", "production"], REPORT_TIMEOUT)?;
    // Run by tag, as a build is: unpinned on both sides, and nothing else
    // (no image_digest, no same_tag_different_digest).
    let unpinned = ("unpinned_image", "shop/web", "");
    diff_until(&fleet, &expect(&[unpinned, unpinned]))?;
    // What made it worth testing reached the aggregator: production's
    // replica lists the local build's digest too.
    let local_digest = local[0].rsplit('@').next().unwrap_or_default();
    let service = fleet.cli(&["service", "shop/web"])?;
    assert!(
        service.stdout.contains(local_digest),
        "production's replica does not list the local build's digest {local_digest}: {service}\n{}",
        service.stdout
    );
    Ok(())
}
