//! A real multi-arch image index, pulled by Docker and by Podman: Docker
//! lists the index's digest alone, Podman lists the index's and the
//! platform manifest's. The two hosts run the same content, and every
//! answer says so: no content finding, `explain` "same content", the gate
//! lets the index's digest through from a stage that runs it on Podman.

use std::time::Duration;

use envparity_tests::answer::{Explain, Findings, Gate};
use envparity_tests::{Fleet, ImageSpec, PodmanHost, Result, Run};

/// Agents register and report within this time on a loaded 2-core CI
/// machine.
const REPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// The digests a Podman host lists for `image`.
fn podman_digests(podman: &PodmanHost, image: &str) -> Result<Vec<String>> {
    let out = podman.docker([
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        image,
    ])?;
    Ok(serde_json::from_str(out.trim()).unwrap_or_default())
}

#[test]
fn a_multi_arch_index_pulled_by_docker_and_podman_is_one_content() -> Result<()> {
    let fleet = Fleet::builder()
        .host("production")
        .identity("staging")
        .registry()
        .start()?;
    let docker = fleet.host("production");
    let registry = fleet.registry();
    // Two images in the registry: the index lists the first for
    // linux/amd64 (this machine) and the second as linux/arm64.
    let (mut platforms, mut built) = (Vec::new(), vec!["rmi", "--force"]);
    let mut ids = Vec::new();
    for version in ["1", "2"] {
        let tag = format!("shop:{version}");
        ids.push(docker.import_image(&tag, ImageSpec::new().file("/app/version", version))?);
        platforms.push(registry.push_from(docker, &tag)?);
    }
    // Gone from the Docker host, so that what it lists is what a pull of
    // the index gives, as on any host that did not build them.
    built.extend(ids.iter().map(String::as_str));
    docker.docker(built)?;
    let index = registry.reference("shop:multi");
    // Dropped before the fleet: it lives in the fleet's dir.
    let podman: PodmanHost = fleet.start_podman("staging")?;
    podman.podman(["manifest", "create", index.as_str()])?;
    for (platform, arch) in platforms.iter().zip(["amd64", "arm64"]) {
        podman.podman([
            "manifest",
            "add",
            "--tls-verify=false",
            "--os",
            "linux",
            "--arch",
            arch,
            index.as_str(),
            &format!("docker://{platform}"),
        ])?;
    }
    podman.podman([
        "manifest",
        "push",
        "--tls-verify=false",
        "--all",
        index.as_str(),
        &format!("docker://{index}"),
    ])?;
    // The list is a local image on Podman; pulled, the platform's image
    // comes from the registry as any host's would.
    podman.podman(["manifest", "rm", index.as_str()])?;

    let index_digest = registry.pull_to(docker, "shop:multi")?;
    podman.pull(&index)?;
    let listed = podman_digests(&podman, &index)?;
    let (_, index_sha) = index_digest.split_once('@').expect("a repo digest");
    let (_, amd64_sha) = platforms[0].split_once('@').expect("a repo digest");
    assert!(
        listed.iter().any(|d| d.ends_with(index_sha))
            && listed.iter().any(|d| d.ends_with(amd64_sha)),
        "Podman lists the index {index_sha} and the platform {amd64_sha}: {listed:?}"
    );
    assert_eq!(
        docker.repo_digests(&index)?,
        vec![index_digest.clone()],
        "Docker lists the index alone"
    );

    let web = |name: &str| {
        Run::new(&index)
            .name(name)
            .label("envparity.service", "shop/web")
            .env("LOG_LEVEL", "info")
    };
    podman.run(web("web-1"))?;
    docker.run(web("web-1"))?;
    let _aggregator = fleet.start_aggregator()?;
    let _production = fleet.start_agent(docker)?;
    let _staging = fleet.podman_agent(&podman).start()?;
    fleet.wait_for_hosts(&["staging", "production"], REPORT_TIMEOUT)?;

    // The same content on both: no finding but that both run a tag
    // (which keeps each host naming the image by the digests it lists).
    let kinds = |f: Findings| -> Vec<String> { f.findings.into_iter().map(|f| f.kind).collect() };
    fleet.cli_until(
        REPORT_TIMEOUT,
        "only the tags run found between staging and production",
        &["diff", "staging", "production"],
        |out| out.try_answer::<Findings>().map(kinds) == Some(vec!["unpinned_image".to_owned(); 2]),
    )?;

    let explained = fleet.cli(&["explain", "shop/web"])?;
    let answer: Explain = explained.answer();
    assert!(answer.same_content, "{explained}");

    // Staging runs the index on Podman: the gate lets its digest through.
    let gate = fleet.cli(&[
        "gate",
        "--service",
        "shop/web",
        "--to",
        "production",
        "--image",
        &index_digest,
    ])?;
    let answer: Gate = gate.answer();
    assert!(answer.allowed, "{gate}");
    assert_eq!(answer.previous_environment, "staging", "{gate}");
    assert_eq!(&answer.candidate, index_sha, "{gate}");
    Ok(())
}
