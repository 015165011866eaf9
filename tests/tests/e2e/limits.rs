//! Bad input at the report API, sent over real gRPC and mutual TLS with a
//! real agent certificate (as a compromised or broken agent could): every
//! limit rejects the report whole with a status naming the limit, malformed
//! bytes are an error, hostile strings are stored and shown inert, a flood
//! is rate-limited — and through all of it the host's last good state stays
//! and other hosts keep reporting.

use std::time::{Duration, Instant};

use envparity_proto::v1::{EnvVar, HeartbeatRequest, HostSnapshot, Label};
use envparity_tests::answer::{Findings, Hosts};
use envparity_tests::grpc::{ReportClient, container, rehash, snapshot};
use envparity_tests::{Fleet, Result, Run, free_port};
use prost::Message;

use super::alerting::{metrics, sample};

const REPORT_TIMEOUT: Duration = Duration::from_secs(30);

fn label(key: &str, value: &str) -> Label {
    Label {
        key: key.to_owned(),
        value: value.to_owned(),
    }
}

fn env(name: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        fingerprint: "f".repeat(64),
        value: None,
    }
}

/// The containers `envparity hosts` lists for `host`.
fn containers_of(fleet: &Fleet, host: &str) -> Result<u64> {
    let hosts = fleet.cli(&["hosts"])?;
    hosts.assert_code(0);
    Ok(hosts
        .answer::<Hosts>()
        .hosts
        .iter()
        .find(|h| h.host_id == host)
        .map(|h| u64::from(h.container_count))
        .unwrap_or_else(|| panic!("{host} not listed: {hosts}")))
}

#[test]
fn every_limit_rejects_the_report_whole_and_the_last_good_state_stays() -> Result<()> {
    let fleet = Fleet::builder().host("edge").start()?;
    let metrics_port = free_port()?;
    let _aggregator = fleet
        .aggregator()
        .arg("--metrics-listen")
        .arg(format!("127.0.0.1:{metrics_port}"))
        .start()?;
    let client = ReportClient::connect_as(&fleet, "edge")?;

    // The last good state: two containers, one with hostile strings that a
    // real engine would pass through (labels are free text).
    let hostile = "\u{1b}[2J\u{1b}]0;pwned\u{7}\r\u{202e}evil\u{0}";
    let mut shown = container("shop");
    shown.labels = vec![label("note", hostile), label("long", &"L".repeat(10_000))];
    shown.explicit_env = vec![EnvVar {
        name: "MODE".to_owned(),
        fingerprint: "a".repeat(64),
        value: Some(hostile.to_owned()),
    }];
    let good = snapshot("edge", "production", 1, vec![shown, container("cart")]);
    client
        .push(good.clone())
        .expect("a good snapshot is stored");
    assert_eq!(containers_of(&fleet, "edge")?, 2);

    let variant = |sequence: u64, change: &dyn Fn(&mut HostSnapshot)| {
        let mut s = snapshot("edge", "production", sequence, vec![container("shop")]);
        change(&mut s);
        rehash(&mut s);
        s
    };
    let bad: Vec<(&str, HostSnapshot, &str)> = vec![
        (
            "too many containers",
            variant(2, &|s| s.containers = vec![container("x"); 5_001]),
            "5001 containers, over the limit of 5000",
        ),
        (
            "too many env entries",
            variant(3, &|s| s.containers[0].explicit_env = vec![env("A"); 4_097]),
            "4097 env entries, over the limit of 4096",
        ),
        (
            "too many container labels",
            variant(4, &|s| {
                s.containers[0].labels = vec![label("k", "v"); 1_025]
            }),
            "1025 labels, over the limit of 1024",
        ),
        (
            "too many host labels",
            variant(5, &|s| s.labels = vec![label("k", "v"); 1_025]),
            "1025 host labels, over the limit of 1024",
        ),
        (
            "a host id too long",
            variant(6, &|s| s.containers[0].name = "n".repeat(254)),
            "254 bytes long, over the limit of 253",
        ),
        (
            "a label value too long",
            variant(7, &|s| {
                s.containers[0].labels = vec![label("blob", &"b".repeat(64 * 1024 + 1))];
            }),
            "65537 bytes long, over the limit of 65536",
        ),
        (
            "control characters in a name",
            variant(8, &|s| s.containers[0].name = "shop\u{1b}[31m".to_owned()),
            "contains control characters",
        ),
    ];
    for (what, snapshot, limit) in bad {
        let status = client.push(snapshot).expect_err(what);
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{what}: {status:?}"
        );
        assert!(
            status.message().contains(limit),
            "{what}: {:?}",
            status.message()
        );
    }

    // Over the message-size limit (16 MiB): refused before decoding.
    let huge = variant(9, &|s| {
        s.containers[0].explicit_env = (0..3_000)
            .map(|i| EnvVar {
                name: format!("V{i}"),
                fingerprint: "f".repeat(64),
                value: Some("v".repeat(6_000)),
            })
            .collect();
    });
    assert!(huge.encoded_len() > 16 * 1024 * 1024);
    let status = client.push(huge).expect_err("an oversize message");
    assert_eq!(status.code(), tonic::Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("too large"), "{status:?}");

    // Malformed bytes: not protobuf, and a string field holding invalid
    // UTF-8 (field 1 of HostSnapshot is host_id, inside field 1 of the
    // request).
    for (what, body) in [
        ("garbage", vec![0xff; 64]),
        ("invalid UTF-8", vec![0x0a, 0x04, 0x0a, 0x02, 0xc3, 0x28]),
    ] {
        let status = client.push_raw(body).expect_err(what);
        assert!(
            status.message().contains("decode"),
            "{what}: a decode error, not {status:?}"
        );
        // The caller's fault, not the server's.
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{what}: {status:?}"
        );
    }

    // A heartbeat must not claim another state either.
    let status = client
        .heartbeat(HeartbeatRequest {
            host_id: "edge".to_owned(),
            environment: "Production!".to_owned(),
            boot_id: "boot-test".to_owned(),
            ..HeartbeatRequest::default()
        })
        .expect_err("a bad environment");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);

    // Nothing of the rejected reports was stored; the last good state stays
    // and is shown inert, and the rejections were counted.
    assert_eq!(containers_of(&fleet, "edge")?, 2);
    let table = fleet
        .cli_command()?
        .args(["service", "shop"])
        .output()
        .expect("run");
    assert!(table.status.success());
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        !table
            .stdout
            .iter()
            .any(|b| *b == 0x1b || *b == 0x07 || *b == b'\r' || *b == 0),
        "terminal control bytes reached the table: {text:?}"
    );
    assert!(text.contains("\\u{1b}[2J"), "shown escaped: {text}");
    let json = fleet.cli(&["service", "shop"])?;
    assert!(
        json.stdout
            .contains("\\u001b[2J\\u001b]0;pwned\\u0007\\r\\u202eevil\\u0000")
            || json.stdout.contains(r"\u001b[2J"),
        "JSON keeps the exact string, escaped: {}",
        json.stdout
    );
    let text = metrics(&format!("http://127.0.0.1:{metrics_port}/metrics"))?;
    let invalid = sample(
        &text,
        r#"envparity_reports_rejected_total{reason="invalid"}"#,
    );
    assert!(invalid >= Some(8.0), "{invalid:?}\n{text}");

    // The host is shown as refused, with why, not as fresh: its containers
    // are the last ones stored.
    let refused = fleet.cli(&["hosts"])?;
    let edge = &refused.answer::<Hosts>().hosts[0];
    assert_eq!(edge.state, "refused", "{refused}");
    let reason = edge.refused_reason.as_deref().unwrap_or_default();
    assert!(reason.contains("contains control characters"), "{refused}");
    assert!(edge.refused_at.is_some(), "{refused}");
    let table = fleet.cli_command()?.arg("hosts").output().expect("run");
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("refused") && text.contains("edge: latest report refused at "),
        "{text}"
    );
    assert!(!table.stdout.contains(&0x1b), "{text:?}");
    let text = metrics(&format!("http://127.0.0.1:{metrics_port}/metrics"))?;
    assert_eq!(
        sample(
            &text,
            r#"envparity_hosts{environment="production",state="refused"}"#
        ),
        Some(1.0),
        "{text}"
    );

    // And the host can still report: the next good snapshot is taken, and
    // the host is fresh again.
    let mut next = good;
    next.sequence = 20;
    next.containers.truncate(1);
    rehash(&mut next);
    client
        .push(next)
        .expect("a good snapshot after the bad ones");
    assert_eq!(containers_of(&fleet, "edge")?, 1);
    let hosts = fleet.cli(&["hosts"])?;
    let edge = &hosts.answer::<Hosts>().hosts[0];
    assert_eq!(edge.state, "fresh", "{hosts}");
    assert!(!hosts.stdout.contains("refused_reason"), "{hosts}");
    assert_eq!(edge.refused_reason, None, "{hosts}");
    Ok(())
}

#[test]
fn a_flooding_agent_is_rate_limited_and_others_keep_reporting() -> Result<()> {
    let fleet = Fleet::builder().host("flood").host("calm").start()?;
    let metrics_port = free_port()?;
    let (rate, burst) = (5.0, 10.0);
    let _aggregator = fleet
        .aggregator()
        .arg("--report-rate")
        .arg(rate.to_string())
        .arg("--report-burst")
        .arg(burst.to_string())
        .arg("--metrics-listen")
        .arg(format!("127.0.0.1:{metrics_port}"))
        .start()?;
    let calm = fleet.host("calm");
    calm.import_image("shop:1", envparity_tests::ImageSpec::new().file("/v", "1"))?;
    let _agent = fleet.start_agent(calm)?;
    fleet.wait_for_hosts(&["calm"], REPORT_TIMEOUT)?;

    // Four connections flood for three seconds while calm's engine changes.
    let flood_for = Duration::from_secs(3);
    let floods: Vec<_> = (0..4)
        .map(|_| {
            let client = ReportClient::connect_as(&fleet, "flood")?;
            Ok(std::thread::spawn(move || {
                let (mut ok, mut limited, mut messages) = (0u32, 0u32, Vec::new());
                let started = Instant::now();
                let mut sequence = 1;
                while started.elapsed() < flood_for {
                    sequence += 1;
                    match client.push(snapshot(
                        "flood",
                        "production",
                        sequence,
                        vec![container("x")],
                    )) {
                        Ok(()) => ok += 1,
                        Err(s) if s.code() == tonic::Code::ResourceExhausted => {
                            limited += 1;
                            if messages.is_empty() {
                                messages.push(s.message().to_owned());
                            }
                        }
                        Err(s) => panic!("unexpected status {s:?}"),
                    }
                }
                (ok, limited, messages)
            }))
        })
        .collect::<Result<_>>()?;
    calm.run(
        Run::new("shop:1")
            .name("shop")
            .label("envparity.service", "shop"),
    )?;
    fleet.cli_until(
        REPORT_TIMEOUT,
        "calm's new container while flood floods",
        &["hosts"],
        |out| {
            out.try_answer::<Hosts>().is_some_and(|a| {
                a.hosts
                    .iter()
                    .any(|h| h.host_id == "calm" && h.container_count == 1 && h.state == "fresh")
            })
        },
    )?;
    let (mut ok, mut limited, mut messages) = (0, 0, Vec::new());
    for flood in floods {
        let (o, l, m) = flood.join().expect("a flood thread");
        ok += o;
        limited += l;
        messages.extend(m);
    }
    // Through: at most the burst plus the rate over the flood (with a
    // second of slack for the threads' start), the rest refused.
    let allowed = burst + rate * (flood_for.as_secs_f64() + 1.0);
    assert!(
        f64::from(ok) <= allowed,
        "{ok} reports got through, allowed {allowed}"
    );
    assert!(ok >= 1, "the burst lets the first reports through");
    assert!(limited > 100, "a flood, mostly refused: {limited}");
    assert!(
        messages[0]
            .contains("\"flood\" reports faster than the limit of 5/s (bursts of 10); retry in"),
        "{messages:?}"
    );
    let text = metrics(&format!("http://127.0.0.1:{metrics_port}/metrics"))?;
    let counted = sample(
        &text,
        r#"envparity_reports_rejected_total{reason="rate_limited"}"#,
    );
    assert_eq!(counted, Some(f64::from(limited)), "{text}");
    Ok(())
}

#[test]
fn terminal_escapes_in_image_names_are_refused_and_never_reach_the_log_raw() -> Result<()> {
    let fleet = Fleet::builder().host("edge").host("stage").start()?;
    let aggregator = fleet.aggregator().start()?;
    let client = ReportClient::connect_as(&fleet, "edge")?;
    ReportClient::connect_as(&fleet, "stage")?
        .push(snapshot("stage", "staging", 1, vec![container("shop")]))
        .expect("staging reports");
    // A digest followed by a window title, a clear screen and an OSC 52
    // clipboard write, as a hostile agent would report it.
    let escapes = "\u{1b}]0;owned\u{7}\u{1b}[2J\u{1b}]52;c;ZXZpbA==\u{7}";
    let mut hostile = container("shop");
    let image = hostile.image.as_mut().expect("image");
    image.repo_digests = vec![format!("reg/shop@sha256:{}{escapes}", "a".repeat(64))];
    let refused = client
        .push(snapshot("edge", "production", 1, vec![hostile]))
        .expect_err("a digest with escapes is refused");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(
        refused.message().contains("repo digest"),
        "the refusal names the field: {refused:?}"
    );
    // Digests that only look like digests: too short, upper-case, junk
    // after the 64 digits, a repo digest without a repository, an image id
    // that claims sha256 but is not one.
    type Spoil = Box<dyn Fn(&mut envparity_proto::v1::ImageInfo)>;
    let near_misses: Vec<(&str, Spoil)> = vec![
        (
            "repo digest",
            Box::new(|i| i.repo_digests = vec!["reg/shop@sha256:abc".into()]),
        ),
        (
            "repo digest",
            Box::new(|i| i.repo_digests = vec![format!("reg/shop@sha256:{}", "A".repeat(64))]),
        ),
        (
            "repo digest",
            Box::new(|i| i.repo_digests = vec![format!("reg/shop@sha256:{}x", "a".repeat(64))]),
        ),
        (
            "repo digest",
            Box::new(|i| i.repo_digests = vec![format!("sha256:{}", "a".repeat(64))]),
        ),
        ("image id", Box::new(|i| i.image_id = "sha256:abc".into())),
    ];
    for (sequence, (field, spoil)) in (2..).zip(near_misses) {
        let mut c = container("shop");
        spoil(c.image.as_mut().expect("image"));
        let refused = client
            .push(snapshot("edge", "production", sequence, vec![c]))
            .expect_err("a malformed digest is refused");
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
        assert!(
            refused.message().contains(field)
                && refused
                    .message()
                    .contains("expected sha256: followed by 64 lower-case hex digits"),
            "{field}: {refused:?}"
        );
    }
    // The gate refuses a candidate that is not a strict digest.
    let gate = fleet.cli(&[
        "gate",
        "--service",
        "shop",
        "--to",
        "production",
        "--image",
        &format!("reg/shop@sha256:{}", "A".repeat(64)),
    ])?;
    gate.assert_code(2);
    assert!(gate.stderr.contains("is not pinned"), "{gate}");
    client
        .push(snapshot("edge", "production", 20, vec![container("shop")]))
        .expect("the next good report is taken");
    // The gate, which logs the digests agents reported, and the log as a
    // whole: no raw escape, not even colour (the log is not a terminal).
    let gate = fleet.cli(&["gate", "--service", "shop", "--to", "production"])?;
    assert!(gate.code == 0 || gate.code == 1, "{gate}");
    let log = aggregator.log();
    assert!(log.contains("gate decided"), "{gate}\n{log}");
    assert!(
        !log.contains('\u{1b}') && !log.contains('\u{7}'),
        "raw terminal escapes in the aggregator's log:\n{}",
        log.escape_debug()
    );
    Ok(())
}

#[test]
fn one_container_over_the_limits_never_blinds_its_host() -> Result<()> {
    use envparity_tests::ImageSpec;
    let fleet = Fleet::builder().host("edge").start()?;
    let host = fleet.host("edge");
    host.import_image("app:1", ImageSpec::new().file("/v", "1"))?;
    // A 70,000-byte annotation and 1,100 labels: each alone is over a limit
    // the aggregator enforces by refusing the whole report.
    let mut big = Run::new("app:1")
        .name("big")
        .label("envparity.service", "big")
        .label(
            "kubectl.kubernetes.io/last-applied-configuration",
            "x".repeat(70_000),
        );
    for i in 0..1_100 {
        big = big.label(format!("l{i:04}"), "v");
    }
    host.run(big)?;
    // And a report the aggregator refuses as invalid, at the head of the
    // agent's journal (as an older agent, or one with other limits, left
    // it): it must be moved past, not retried forever.
    let journal = fleet.dir().join("state-edge").join("journal");
    std::fs::create_dir_all(&journal).expect("journal dir");
    let mut refused = snapshot("edge", "edge", 1, vec![container("old")]);
    refused.content_hash = "not-a-hash".to_owned();
    std::fs::write(
        journal.join(format!("{:020}.snapshot", 1)),
        refused.encode_to_vec(),
    )
    .expect("plant a journal entry");
    let _aggregator = fleet.start_aggregator()?;
    let agent = fleet.start_agent(host)?;
    fleet.wait_for_hosts(&["edge"], REPORT_TIMEOUT)?;
    envparity_tests::wait_until(REPORT_TIMEOUT, "the big container, cut down", || {
        containers_of(&fleet, "edge").is_ok_and(|n| n == 1)
    })?;
    // Then one whose 300 labels of 60,000 bytes are each within the limits,
    // together over the 16 MiB a report may be (too long for a command line:
    // a label file). Its start event carries its labels: 18 MB, over what
    // the agent reads of one event, so the event is skipped and every
    // container read again.
    let labels = fleet.dir().join("huge.labels");
    let mut file = String::new();
    for i in 0..300 {
        file.push_str(&format!("h{i:03}={}\n", "y".repeat(60_000)));
    }
    std::fs::write(&labels, file).expect("write the label file");
    host.run(
        Run::new("app:1")
            .name("huge")
            .label("envparity.service", "huge")
            .arg(format!("--label-file={}", labels.display())),
    )?;
    envparity_tests::wait_until(
        Duration::from_secs(10),
        "the container with 18 MB of labels",
        || containers_of(&fleet, "edge").is_ok_and(|n| n == 2),
    )?;
    // A redeploy beside them is seen within one collection.
    host.run(
        Run::new("app:1")
            .name("shop")
            .label("envparity.service", "shop"),
    )?;
    envparity_tests::wait_until(
        Duration::from_secs(10),
        "the container started beside it",
        || containers_of(&fleet, "edge").is_ok_and(|n| n == 3),
    )?;
    let hosts = fleet.cli(&["hosts"])?;
    assert!(hosts.stdout.contains("fresh"), "{hosts}");
    // Each cut container is a finding that says what was cut; the one
    // reported whole is not.
    let findings = fleet.cli(&["findings"])?;
    let unreportable: Vec<(String, String)> = findings
        .answer::<Findings>()
        .findings
        .into_iter()
        .filter(|f| f.kind == "container_unreportable")
        .map(|f| (f.key, f.summary))
        .collect();
    let keys: Vec<&str> = unreportable.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["big", "huge"], "{findings}");
    assert!(unreportable[0].1.contains("70000 bytes"), "{findings}");
    assert!(
        unreportable[1].1.contains("300 label value(s) shortened"),
        "{findings}"
    );
    // The agent said what it cut, naming the container, once.
    let log = agent.log();
    let cut = "container over the aggregator's limits";
    assert!(
        log.lines()
            .any(|l| l.contains(cut) && l.contains("big") && l.contains("70000 bytes")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains(cut) && l.contains("1102 labels")),
        "{log}"
    );
    assert_eq!(
        log.lines().filter(|l| l.contains("70000 bytes")).count(),
        1,
        "each cut is logged once"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("refused this snapshot as invalid") && l.contains("content_hash")),
        "{log}"
    );
    assert!(
        log.contains("an engine event over the agent's limit was skipped"),
        "{log}"
    );
    Ok(())
}

#[test]
fn in_plain_text_new_hosts_beyond_the_cap_are_refused_and_known_ones_keep_reporting() -> Result<()>
{
    use envparity_proto::v1::PushSnapshotRequest;
    use envparity_proto::v1::report_service_client::ReportServiceClient;
    let fleet = Fleet::builder().host("edge").start()?;
    let aggregator = fleet
        .aggregator()
        .plaintext()
        .arg("--max-plaintext-hosts")
        .arg("2")
        .start()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let push = |host: &str, sequence: u64| {
        rt.block_on(async {
            let mut client = ReportServiceClient::connect(aggregator.url())
                .await
                .expect("plain-text connection");
            client
                .push_snapshot(PushSnapshotRequest {
                    snapshot: Some(snapshot(
                        host,
                        "production",
                        sequence,
                        vec![container("shop")],
                    )),
                })
                .await
                .map(drop)
        })
    };
    push("h1", 1).expect("the first host");
    push("h2", 1).expect("the second host");
    let refused = push("h3", 1).expect_err("a third host is over the cap");
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
    assert!(
        refused.message().contains("max_plaintext_hosts") && refused.message().contains("h3"),
        "{refused:?}"
    );
    // Known hosts keep reporting.
    push("h1", 2).expect("a known host");
    let out = fleet.cli(&["hosts"])?;
    out.assert_code(0);
    assert!(
        out.stdout.contains("\"h1\"") && !out.stdout.contains("\"h3\""),
        "{out}"
    );
    assert!(
        aggregator
            .log()
            .contains("report from a new host refused: the plain-text host cap is reached"),
        "{}",
        aggregator.log()
    );
    Ok(())
}

/// The peak resident memory of process `pid`, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// An engine whose container list is 50 MiB (100 containers carrying 500 KB
/// of labels each): the agent reads it in bounded memory and still reports
/// every container, each cut down and flagged. Before the agent read the
/// engine itself, it buffered and decoded the whole list (293 MiB for 50 MiB
/// in the original report).
#[test]
fn a_huge_container_list_is_read_in_bounded_memory_and_reported() -> Result<()> {
    use envparity_tests::fake_engine::{FakeEngine, Shape};
    const CONTAINERS: usize = 100;
    let fleet = Fleet::builder().host("edge").start()?;
    let engine = FakeEngine::start(
        fleet.dir(),
        Shape {
            containers: CONTAINERS,
            label_bytes: 500_000,
        },
    )?;
    let _aggregator = fleet.start_aggregator()?;
    let mut agent = fleet
        .agent(fleet.host("edge"))
        .docker_host(&engine.url())
        .start()?;
    envparity_tests::wait_until(REPORT_TIMEOUT, "every container reported", || {
        fleet.cli(&["hosts"]).is_ok_and(|out| {
            out.try_answer::<Hosts>().is_some_and(|a| {
                a.hosts.first().map(|h| h.container_count as usize) == Some(CONTAINERS)
            })
        })
    })?;
    let pid = agent.process().pid();
    let peak_mib = peak_rss_kib(pid).expect("the agent's peak RSS") / 1024;
    eprintln!("agent peak RSS reading a 50 MiB container list: {peak_mib} MiB");
    assert!(
        peak_mib < 64,
        "the agent peaked at {peak_mib} MiB reading a 50 MiB container list"
    );
    // Each container was cut down to its share of a report, and says so.
    let findings = fleet.cli(&["findings"])?;
    let unreportable = findings
        .answer::<Findings>()
        .findings
        .iter()
        .filter(|f| f.kind == "container_unreportable")
        .count();
    assert_eq!(unreportable, CONTAINERS, "{findings}");
    Ok(())
}
