//! `envparity-cri-node`: one scratch containerd node, driven over stdin, for
//! `tests/deploy/measure-agent.sh --runtime containerd` (docs/benchmarks.md).
//! It is the e2e harness's node ([`ContainerdHost`], pods made through the
//! CRI as the kubelet makes them), with a sandboxed dockerd to build the
//! pause and app images and a local registry they are pulled from, so pods
//! run `app:1` by its registry digest. As root.
//!
//! It prints `socket PATH` (the CRI socket) and `ready`, then answers one line
//! per command line, `ok …` or `error …`:
//!
//! - `pods N`: runs pods `app-1` … `app-N` (those not running yet), each of
//!   service `svc-(i mod 10)` with a `team=demo` pod label and 4 env entries,
//!   as `measure-agent.sh` runs its Docker containers;
//! - `run NAME SERVICE [KEY=VALUE…]`: one pod NAME (service SERVICE, `-` for
//!   none: then the pod's namespace and container name it), its container
//!   started with that env; answers `ok MS`, the milliseconds the CRI took
//!   (pull check, sandbox, create, start);
//! - `rm NAME`: stops and removes pod NAME.
//!
//! At the end of its input it stops the pods, containerd, dockerd and the
//! registry by pid. A benchmark tool: it asserts nothing.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::time::Instant;

use envparity_tests::{ContainerdHost, Fleet, ImageSpec, Pod, PodContainer, Result, RunningPod};

/// The namespace every pod runs in.
const NAMESPACE: &str = "bench";

fn main() {
    if let Err(e) = run() {
        eprintln!("envparity-cri-node: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let fleet = Fleet::builder().host("builder").registry().start()?;
    let builder = fleet.host("builder");
    builder.import_image(
        "app:1",
        ImageSpec::new()
            .file("/app/version", "1.0.0")
            .env("APP_VERSION", "1.0.0")
            .label("org.opencontainers.image.version", "1.0.0")
            .cmd(&["/bin/sleep", "2147483647"]),
    )?;
    let image = fleet.registry().push_from(builder, "app:1")?;
    let mut node = fleet.start_containerd("node")?;
    let mut out = std::io::stdout().lock();
    let say = |out: &mut std::io::StdoutLock<'_>, line: &str| {
        // A closed stdout ends the run like a closed stdin.
        writeln!(out, "{line}").and_then(|()| out.flush()).is_ok()
    };
    say(&mut out, &format!("socket {}", node.socket().display()));
    say(&mut out, "ready");
    let mut pods: HashMap<String, RunningPod> = HashMap::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        let answer = match words.as_slice() {
            ["pods", n] => match n.parse::<usize>() {
                Ok(n) => run_pods(&mut node, &image, &mut pods, n).map(|()| "ok".to_owned()),
                Err(_) => Ok(format!("error: pods {n}: not a number")),
            },
            ["run", name, service, env @ ..] => {
                let started = Instant::now();
                run_pod(&mut node, &image, &mut pods, name, service, env)
                    .map(|()| format!("ok {}", started.elapsed().as_millis()))
            }
            ["rm", name] => match pods.remove(*name) {
                Some(pod) => node.remove_pod(&pod).map(|()| "ok".to_owned()),
                None => Ok(format!("error: no pod {name}")),
            },
            _ => Ok(format!("error: unknown command {line:?}")),
        };
        let answer = answer.unwrap_or_else(|e| format!("error: {e}"));
        if !say(&mut out, &answer) {
            break;
        }
    }
    drop(node);
    drop(fleet);
    Ok(())
}

/// Pods `app-1` … `app-N`, as `measure-agent.sh` runs its Docker containers.
fn run_pods(
    node: &mut ContainerdHost,
    image: &str,
    pods: &mut HashMap<String, RunningPod>,
    n: usize,
) -> Result<()> {
    for i in 1..=n {
        let name = format!("app-{i}");
        if pods.contains_key(&name) {
            continue;
        }
        let password = format!("DB_PASSWORD=pw-{i}");
        let env = [
            "LOG_LEVEL=info",
            password.as_str(),
            "FEATURE_X=on",
            "WORKERS=4",
        ];
        run_pod(node, image, pods, &name, &format!("svc-{}", i % 10), &env)?;
    }
    Ok(())
}

/// One pod NAME of SERVICE (`-`: none), its container `app` with ENV.
fn run_pod(
    node: &mut ContainerdHost,
    image: &str,
    pods: &mut HashMap<String, RunningPod>,
    name: &str,
    service: &str,
    env: &[&str],
) -> Result<()> {
    let mut container = PodContainer::new("app", image);
    for entry in env {
        let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
        container = container.env(key, value);
    }
    let mut pod = Pod::new(NAMESPACE, name).label("team", "demo");
    if service != "-" {
        pod = pod.label("envparity.service", service);
    }
    let running = node.run_pod(pod.container(container))?;
    pods.insert(name.to_owned(), running);
    Ok(())
}
