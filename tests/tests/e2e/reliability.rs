//! Nothing acknowledged is lost, and nothing is invented, through the faults
//! an SRE meets: the aggregator down or killed with SIGKILL, its PostgreSQL
//! database down for a minute, the Docker engine restarted under a running
//! agent, an agent journal filling up, replayed and reordered reports. Real
//! dockerd hosts, a real PostgreSQL, the real binaries and real gRPC over
//! mutual TLS.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use envparity_tests::answer::{History, Hosts};
use envparity_tests::grpc::{ReportClient, container, push_until, snapshot};
use envparity_tests::{CliOutput, Fleet, ImageSpec, Postgres, Result, Run, free_port};

use super::alerting::{metrics, sample};

const REPORT_TIMEOUT: Duration = Duration::from_secs(45);

/// How long the database stays down in the outage test (issue 18: "for a
/// minute").
const DATABASE_OUTAGE: Duration = Duration::from_secs(60);

/// `envparity history SERVICE` events as `(host, container, change,
/// new_image, observed_at, received_at)`.
type Event = (String, String, String, String, SystemTime, SystemTime);

fn time(v: Option<String>) -> SystemTime {
    let text = v.unwrap_or_else(|| panic!("a time, not null"));
    let text = text.as_str();
    humantime::parse_rfc3339(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn history(fleet: &Fleet, service: &str) -> Result<Vec<Event>> {
    let out = fleet.cli(&["history", service, "--limit", "1000000"])?;
    out.assert_code(0);
    Ok(out
        .answer::<History>()
        .events
        .into_iter()
        .map(|e| {
            (
                e.host_id,
                e.container,
                e.change,
                e.new_image,
                time(e.observed_at),
                time(e.received_at),
            )
        })
        .collect())
}

/// Waits until `envparity hosts` shows every `(host, state, containers)`.
fn wait_for_state(fleet: &Fleet, what: &str, want: &[(&str, &str, u64)]) -> Result<CliOutput> {
    fleet.cli_until(REPORT_TIMEOUT, what, &["hosts"], |out| {
        let Some(answer) = out.try_answer::<Hosts>() else {
            return false;
        };
        want.iter().all(|(host, state, count)| {
            answer.hosts.iter().any(|h| {
                h.host_id == *host && h.state == *state && u64::from(h.container_count) == *count
            })
        })
    })
}

fn web(image: &str, name: &str) -> Run {
    Run::new(image).name(name).label("envparity.service", "web")
}

/// Seconds resolution: the history shows times to the second.
fn within(t: SystemTime, from: SystemTime, to: SystemTime) -> bool {
    let secs = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs()
    };
    secs(from) <= secs(t) && secs(t) <= secs(to) + 3
}

/// PostgreSQL stopped for a minute under a running aggregator and agent:
/// nothing is acknowledged while it is down (the aggregator goes on showing
/// what the database holds; the agent keeps the change in its journal), and
/// once it is back the change arrives, with the time it was observed, at
/// the same aggregator process, which reconnected by itself.
#[test]
fn a_database_outage_acknowledges_nothing_and_converges_afterwards_without_a_restart() -> Result<()>
{
    let mut postgres = Postgres::start()?;
    postgres.sql("postgres", "CREATE DATABASE envparity")?;
    let fleet = Fleet::builder().host("one").start()?;
    let one = fleet.host("one");
    one.import_image("app:1", ImageSpec::new().file("/v", "1"))?;
    one.run(web("app:1", "web"))?;
    let mut aggregator = fleet
        .aggregator()
        .store(postgres.url("envparity"))
        .metrics()
        .start()?;
    let _agent = fleet.start_agent(one)?;
    wait_for_state(&fleet, "one with web", &[("one", "fresh", 1)])?;
    let stored = |postgres: &Postgres| {
        postgres.sql(
            "envparity",
            "SELECT COUNT(*) FROM containers WHERE host_id = 'one'",
        )
    };
    assert_eq!(stored(&postgres)?, "1");

    postgres.stop()?;
    let down = SystemTime::now();
    one.run(web("app:1", "web-2"))?;
    let started = SystemTime::now();
    let until = std::time::Instant::now() + DATABASE_OUTAGE;
    let mut looked = 0;
    while std::time::Instant::now() < until {
        let out = fleet.cli(&["hosts"])?;
        out.assert_code(0);
        let hosts = out.answer::<Hosts>();
        let count = hosts
            .hosts
            .iter()
            .find(|h| h.host_id == "one")
            .map(|h| h.container_count);
        assert_eq!(
            count,
            Some(1),
            "a report was taken while the database was down: {hosts:#?}"
        );
        looked += 1;
        std::thread::sleep(Duration::from_secs(5));
    }
    assert!(looked >= 10, "looked only {looked} times during the outage");
    let log = aggregator.log();
    let failure = format!(
        "report could not be stored host=one error=database {}",
        postgres.url("envparity")
    );
    assert!(
        log.contains(&failure),
        "the aggregator's log does not say {failure:?}:\n{log}"
    );
    assert!(
        aggregator
            .process()
            .is_some_and(|p| p.ensure_running().is_ok()),
        "the aggregator exited during the database outage:\n{log}"
    );

    // The outage is counted where a dashboard sees it: failed store calls
    // (the report, by its call and the error's class) and failed renewals
    // of the writer lease.
    let url = aggregator
        .metrics_url("/metrics")
        .expect("a metrics listener");
    let text = metrics(&url)?;
    for series in [
        "envparity_store_errors_total{op=\"save_reports\",error=\"database\"}",
        "envparity_writer_lease_errors_total{op=\"renew\"}",
    ] {
        let count = sample(&text, series);
        assert!(
            count.is_some_and(|n| n >= 1.0),
            "{series} is {count:?} after a minute without the database:\n{text}"
        );
    }

    let back = SystemTime::now();
    postgres.start_again()?;
    wait_for_state(&fleet, "web-2 after the outage", &[("one", "fresh", 2)])?;
    // The outage outlasted the writer lease (the harness's 2 s); nobody
    // else took it, so the same process took it again and went on.
    let log = aggregator.log();
    assert!(
        log.contains("no other replica took it: this replica holds it again"),
        "{log}"
    );
    assert_eq!(stored(&postgres)?, "2");
    let added: Vec<Event> = history(&fleet, "web")?
        .into_iter()
        .filter(|e| e.0 == "one" && e.1 == "web-2" && e.2 == "added")
        .collect();
    assert_eq!(added.len(), 1, "{added:#?}");
    let (observed, received) = (added[0].4, added[0].5);
    assert!(
        within(observed, down, started),
        "web-2 observed at {observed:?}, started in {:?}",
        (down, started)
    );
    assert!(
        received >= back - Duration::from_secs(1),
        "web-2 received at {received:?}, while the database was down (back at {back:?})"
    );
    Ok(())
}

#[test]
fn changes_during_an_aggregator_outage_arrive_afterwards_with_their_real_times() -> Result<()> {
    let fleet = Fleet::builder().host("one").host("two").start()?;
    let (one, two) = (fleet.host("one"), fleet.host("two"));
    for host in [one, two] {
        host.import_image("app:1", ImageSpec::new().file("/v", "1"))?;
        host.import_image("app:2", ImageSpec::new().file("/v", "2"))?;
        host.run(web("app:1", "web"))?;
    }
    let app2 = two.image_id("app:2")?;
    let mut aggregator = fleet.start_aggregator()?;
    let _agents = [fleet.start_agent(one)?, fleet.start_agent(two)?];
    wait_for_state(
        &fleet,
        "both hosts with web",
        &[("one", "fresh", 1), ("two", "fresh", 1)],
    )?;

    // The outage: start, stop and replace containers while nobody listens.
    aggregator.stop()?;
    let mark = |f: &mut dyn FnMut() -> Result<()>| -> Result<(SystemTime, SystemTime)> {
        let before = SystemTime::now();
        f()?;
        std::thread::sleep(Duration::from_millis(1_200));
        Ok((before, SystemTime::now()))
    };
    let started = mark(&mut || one.run(web("app:1", "web-2")).map(drop))?;
    let stopped = mark(&mut || one.rm("web"))?;
    let replaced = mark(&mut || {
        two.rm("web")?;
        two.run(web("app:2", "web")).map(drop)
    })?;
    let back = SystemTime::now();
    aggregator.restart()?;

    // Same container counts as before the outage, so wait for the history.
    let mut events = Vec::new();
    envparity_tests::wait_for(
        REPORT_TIMEOUT,
        "the changes made during the outage in the history",
        || {
            events = history(&fleet, "web")?;
            let seen = |host: &str, container: &str, pred: &dyn Fn(&Event) -> bool| {
                events
                    .iter()
                    .any(|e| e.0 == host && e.1 == container && pred(e))
            };
            Ok((seen("one", "web-2", &|e| e.2 == "added")
                && seen("one", "web", &|e| e.2 == "removed")
                && seen("two", "web", &|e| e.3 == app2))
            .then_some(()))
        },
    )?;
    let events = events;
    let find = |host: &str, container: &str, change: &str| {
        events
            .iter()
            .filter(|e| e.0 == host && e.1 == container && e.2 == change)
            .cloned()
            .collect::<Vec<_>>()
    };
    let check = |what: &str, found: Vec<Event>, window: (SystemTime, SystemTime)| {
        assert_eq!(found.len(), 1, "{what}: exactly one event in {events:#?}");
        let (observed, received) = (found[0].4, found[0].5);
        assert!(
            within(observed, window.0, window.1),
            "{what}: observed at {observed:?}, the change was made in {window:?}"
        );
        assert!(
            observed < back && received >= back - Duration::from_secs(1),
            "{what}: observed during the outage, received after it: {found:?}"
        );
    };
    check(
        "web-2 started on one",
        find("one", "web-2", "added"),
        started,
    );
    check("web stopped on one", find("one", "web", "removed"), stopped);
    let replaced_events: Vec<Event> = events
        .iter()
        .filter(|e| e.0 == "two" && e.1 == "web" && e.3 == app2)
        .cloned()
        .collect();
    check("web replaced on two", replaced_events, replaced);

    // The final state matches the engines.
    let service = fleet.cli(&["service", "web"])?;
    let text = service.stdout.clone();
    assert!(text.contains("web-2") && text.contains(&app2), "{text}");
    Ok(())
}

#[test]
fn a_full_journal_compacts_visibly_and_the_final_state_is_exact() -> Result<()> {
    let fleet = Fleet::builder().host("busy").start()?;
    let busy = fleet.host("busy");
    busy.import_image("app:1", ImageSpec::new().file("/v", "1"))?;
    let mut aggregator = fleet.start_aggregator()?;
    let agent_metrics = free_port()?;
    let agent = fleet
        .agent(busy)
        .arg("--journal-max-bytes")
        .arg("6KiB")
        .arg("--metrics-listen")
        .arg(format!("127.0.0.1:{agent_metrics}"))
        .start()?;
    wait_for_state(&fleet, "busy, empty", &[("busy", "fresh", 0)])?;

    aggregator.stop()?;
    for i in 1..=8 {
        busy.run(web("app:1", &format!("web-{i}")))?;
        std::thread::sleep(Duration::from_millis(500));
    }
    let url = format!("http://127.0.0.1:{agent_metrics}/metrics");
    let text = metrics(&url)?;
    let compactions = sample(&text, "envparity_agent_journal_compactions_total");
    let dropped = sample(&text, "envparity_agent_journal_dropped_snapshots_total");
    let bytes = sample(&text, "envparity_agent_journal_bytes");
    assert!(compactions >= Some(1.0), "compacted: {text}");
    assert!(dropped >= Some(1.0), "dropped some: {text}");
    assert!(bytes <= Some(6.0 * 1024.0), "bounded: {text}");
    assert!(
        agent.log().contains("journal full: compacted"),
        "{}",
        agent.log()
    );

    aggregator.restart()?;
    wait_for_state(&fleet, "all eight containers", &[("busy", "fresh", 8)])?;
    let names: BTreeSet<String> = history(&fleet, "web")?
        .into_iter()
        .filter(|e| e.2 == "added")
        .map(|e| e.1)
        .collect();
    let expected: BTreeSet<String> = (1..=8).map(|i| format!("web-{i}")).collect();
    assert_eq!(names, expected, "every container is in the history");
    let text = metrics(&url)?;
    assert_eq!(
        sample(&text, "envparity_agent_unacknowledged_snapshots"),
        Some(0.0),
        "{text}"
    );
    Ok(())
}

#[test]
fn killing_the_aggregator_repeatedly_loses_no_acknowledged_snapshot() -> Result<()> {
    const CYCLES: usize = 12;
    const HOSTS: [&str; 3] = ["a", "b", "c"];
    let mut builder = Fleet::builder();
    for host in HOSTS {
        builder = builder.identity(host);
    }
    let fleet = builder.start()?;
    let mut aggregator = fleet
        .aggregator()
        .arg("--report-rate")
        .arg("100000")
        .arg("--report-burst")
        .arg("100000")
        .start()?;
    let done = AtomicBool::new(false);
    let acked: BTreeMap<&str, Vec<String>> = std::thread::scope(|scope| -> Result<_> {
        let pushers: Vec<_> = HOSTS
            .iter()
            .map(|&host| {
                let client = ReportClient::connect_as(&fleet, host)?;
                let done = &done;
                Ok(scope.spawn(move || (host, push_until(&client, host, "production", done))))
            })
            .collect::<Result<_>>()?;
        let mut result = Ok(());
        for _ in 0..CYCLES {
            std::thread::sleep(Duration::from_millis(400));
            if let Err(e) = aggregator.crash().and_then(|()| aggregator.restart()) {
                result = Err(e);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(400));
        done.store(true, Ordering::Relaxed);
        let acked = pushers
            .into_iter()
            .map(|p| p.join().expect("a pusher thread"))
            .collect();
        result.map(|()| acked)
    })?;

    // Every snapshot acknowledged before a SIGKILL is in the store: each one
    // changed the image, so each is an event in its host's history.
    for (host, images) in &acked {
        assert!(
            images.len() > CYCLES,
            "{host}: ingest went on between the crashes ({} acknowledged)",
            images.len()
        );
        let stored: BTreeSet<String> = history(&fleet, &format!("svc-{host}"))?
            .into_iter()
            .map(|e| e.3)
            .collect();
        let lost: Vec<&String> = images.iter().filter(|i| !stored.contains(*i)).collect();
        assert!(
            lost.is_empty(),
            "{host}: {} of {} acknowledged snapshots lost over {CYCLES} kill -9 cycles, e.g. {:?}",
            lost.len(),
            images.len(),
            &lost[..lost.len().min(3)]
        );
    }
    eprintln!(
        "{CYCLES} kill -9 cycles, acknowledged snapshots kept: {:?}",
        acked.iter().map(|(h, i)| (h, i.len())).collect::<Vec<_>>()
    );
    Ok(())
}

#[test]
fn replayed_and_reordered_reports_never_regress_the_state() -> Result<()> {
    let fleet = Fleet::builder().identity("r").start()?;
    let _aggregator = fleet.start_aggregator()?;
    let client = ReportClient::connect_as(&fleet, "r")?;
    let at = |sequence: u64, image: &str| {
        let mut c = container("svc-r");
        if let Some(i) = c.image.as_mut() {
            i.image_id = image.to_owned();
        }
        snapshot("r", "production", sequence, vec![c])
    };
    let (old, new, late) = (
        format!("sha256:{}", "1".repeat(64)),
        format!("sha256:{}", "3".repeat(64)),
        format!("sha256:{}", "2".repeat(64)),
    );
    let ack = |s| client.push_acked(s).expect("acknowledged");
    assert!(!ack(at(1, &old)).duplicate);
    assert!(!ack(at(3, &new)).duplicate);
    // A delayed report (2) and a replay (3) arrive after 3: acknowledged as
    // already held, and nothing changes.
    assert!(
        ack(at(2, &late)).duplicate,
        "an older report is not applied"
    );
    assert!(ack(at(3, &new)).duplicate, "a replay is idempotent");
    let service = fleet.cli(&["service", "svc-r"])?;
    assert!(
        service.stdout.contains(&new) && !service.stdout.contains(&late),
        "{service}"
    );
    let events = history(&fleet, "svc-r")?;
    let images: Vec<&str> = events.iter().map(|e| e.3.as_str()).collect();
    assert_eq!(images, [old.as_str(), new.as_str()], "{events:#?}");
    Ok(())
}

#[test]
fn an_engine_restart_under_a_running_agent_is_survived_without_false_removals() -> Result<()> {
    let mut fleet = Fleet::builder().host("bounce").start()?;
    {
        let host = fleet.host("bounce");
        host.import_image("app:1", ImageSpec::new().file("/v", "1"))?;
        host.run(web("app:1", "web").arg("--restart=always"))?;
    }
    let _aggregator = fleet.start_aggregator()?;
    let agent = fleet.start_agent(fleet.host("bounce"))?;
    wait_for_state(&fleet, "bounce with web", &[("bounce", "fresh", 1)])?;

    fleet.host_mut("bounce").stop_engine()?;
    // Unreachable, not "no containers": the last known ones stay.
    wait_for_state(
        &fleet,
        "bounce marked engine_unreachable with its container kept",
        &[("bounce", "engine_unreachable", 1)],
    )?;
    fleet.host_mut("bounce").start_engine()?;
    wait_for_state(&fleet, "bounce back", &[("bounce", "fresh", 1)])?;

    // It recovered by itself: a container started now is seen through a new
    // event subscription.
    fleet.host("bounce").run(web("app:1", "web-2"))?;
    wait_for_state(&fleet, "the new container", &[("bounce", "fresh", 2)])?;
    let events = history(&fleet, "web")?;
    assert!(
        events.iter().all(|e| e.2 == "added"),
        "no removal was recorded for the outage: {events:#?}"
    );
    assert!(
        agent.log().contains("resubscribing") || agent.log().contains("watching"),
        "{}",
        agent.log()
    );
    Ok(())
}

#[test]
fn both_daemons_tell_systemd_they_are_ready_and_stop_cleanly_on_sigterm() -> Result<()> {
    use std::os::unix::net::UnixDatagram;

    let fleet = Fleet::builder().host("quiet").start()?;
    let socket = fleet.dir().join("notify.sock");
    let notify = UnixDatagram::bind(&socket).expect("bind the notify socket");
    notify
        .set_read_timeout(Some(REPORT_TIMEOUT))
        .expect("a read timeout");
    let next = || {
        let mut buf = [0u8; 256];
        let n = notify.recv(&mut buf).expect("a notification in time");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let path = socket.display().to_string();

    let mut aggregator = fleet.aggregator().env("NOTIFY_SOCKET", &path).start()?;
    assert_eq!(next(), "READY=1", "the aggregator is ready once it serves");
    let mut agent = fleet
        .agent(fleet.host("quiet"))
        .env("NOTIFY_SOCKET", &path)
        .start()?;
    assert_eq!(next(), "READY=1", "the agent is ready once it runs");
    wait_for_state(&fleet, "quiet reporting", &[("quiet", "fresh", 0)])?;

    let status = agent.process().stop()?;
    assert!(status.success(), "the agent exits 0 on SIGTERM: {status}");
    assert_eq!(next(), "STOPPING=1");
    assert!(agent.log().contains("shutting down"), "{}", agent.log());
    let process = aggregator.process().expect("running");
    let status = process.stop()?;
    assert!(
        status.success(),
        "the aggregator exits 0 on SIGTERM: {status}"
    );
    assert_eq!(next(), "STOPPING=1");
    assert!(
        aggregator.log().contains("envparity aggregator stopped"),
        "{}",
        aggregator.log()
    );
    Ok(())
}

#[test]
fn restarts_of_either_daemon_resend_nothing_and_record_nothing() -> Result<()> {
    let fleet = Fleet::builder().host("steady").start()?;
    let host = fleet.host("steady");
    host.import_image("app:1", ImageSpec::new().file("/v", "1"))?;
    host.run(web("app:1", "web"))?;
    let mut aggregator = fleet.start_aggregator()?;
    let mut agent = fleet.start_agent(host)?;
    wait_for_state(&fleet, "steady with web", &[("steady", "fresh", 1)])?;
    let before = history(&fleet, "web")?;
    assert_eq!(before.len(), 1, "{before:#?}");

    // The aggregator restarts: its state comes from the store, and the
    // agent's heartbeats (every second here) vouch for the same content, so
    // no full snapshot is asked for or sent.
    let pushed = |log: &str| log.matches("snapshot pushed").count();
    let pushed_before = pushed(&agent.log());
    aggregator.restart()?;
    std::thread::sleep(Duration::from_secs(4));
    wait_for_state(&fleet, "steady still fresh", &[("steady", "fresh", 1)])?;
    let log = agent.log();
    assert_eq!(pushed(&log), pushed_before, "no snapshot re-sent: {log}");
    assert!(!log.contains("asked for the full snapshot"), "{log}");

    // The agent restarts (a new boot): one snapshot of the same containers,
    // and no history event, neither removed nor added.
    agent.stop()?;
    let _agent = fleet.start_agent(host)?;
    std::thread::sleep(Duration::from_secs(3));
    wait_for_state(
        &fleet,
        "steady after the agent restart",
        &[("steady", "fresh", 1)],
    )?;
    assert_eq!(history(&fleet, "web")?, before, "nothing recorded");
    Ok(())
}

#[test]
fn a_skewed_agent_clock_is_recorded_beside_the_receive_time_and_order_follows_sequence()
-> Result<()> {
    let fleet = Fleet::builder().identity("skew").start()?;
    let _aggregator = fleet.start_aggregator()?;
    let client = ReportClient::connect_as(&fleet, "skew")?;
    let at = |sequence: u64, image: &str, collected: SystemTime| {
        let mut c = container("svc-skew");
        if let Some(i) = c.image.as_mut() {
            i.image_id = image.to_owned();
        }
        let mut s = snapshot("skew", "production", sequence, vec![c]);
        s.collected_at = Some(envparity_proto::time::to_timestamp(collected));
        envparity_tests::grpc::rehash(&mut s);
        s
    };
    let now = SystemTime::now();
    let hour = Duration::from_secs(3600);
    let (first, second) = (
        format!("sha256:{}", "a".repeat(64)),
        format!("sha256:{}", "b".repeat(64)),
    );
    // The agent's clock jumps back an hour between two reports: the later
    // sequence still wins.
    client.push(at(1, &first, now)).expect("stored");
    client.push(at(2, &second, now - hour)).expect("stored");
    let service = fleet.cli(&["service", "svc-skew"])?;
    assert!(service.stdout.contains(&second), "{service}");
    let events = history(&fleet, "svc-skew")?;
    let last = events.last().expect("events");
    assert_eq!(last.3, second);
    assert!(
        within(last.4, now - hour, now - hour),
        "observed_at is the agent's time: {last:?}"
    );
    assert!(
        within(last.5, now, SystemTime::now()),
        "received_at is the aggregator's: {last:?}"
    );
    Ok(())
}

/// Unmounts a bind mount when dropped (also when the test panics).
struct BindMount(std::path::PathBuf);

impl Drop for BindMount {
    fn drop(&mut self) {
        let mut umount = std::process::Command::new("umount");
        umount.arg(&self.0);
        let _ = envparity_tests::output(umount, envparity_tests::COMMAND_TIMEOUT);
    }
}

#[test]
fn a_store_that_cannot_be_written_stops_serve_and_check_config_with_a_clear_error() -> Result<()> {
    let fleet = Fleet::builder().host("ro").start()?;
    let data = fleet.dir().join("data");
    let run_for = |args: &[&str], limit: Duration| -> Result<envparity_tests::Output> {
        let mut cmd = envparity_tests::project_command(&envparity_tests::cargo_bin("envparity")?);
        cmd.args(args).arg("--data-dir").arg(&data).args([
            "--insecure-plaintext",
            "--listen",
            "127.0.0.1:0",
        ]);
        envparity_tests::output(cmd, limit)
    };
    let run = |args: &[&str]| run_for(args, Duration::from_secs(20));
    // A store with a database in it, as a running aggregator leaves it:
    // serve for two seconds (the harness kills it then).
    let _ = run_for(&["serve"], Duration::from_secs(2));
    assert!(data.join("envparity.db").exists(), "serve made no store");
    let out = run(&["check-config"])?;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // The same directory, now on a read-only file system.
    let mount = |args: &[&str]| {
        let mut mount = std::process::Command::new("mount");
        mount.args(args).arg(&data).arg(&data);
        let ok = envparity_tests::output(mount, envparity_tests::COMMAND_TIMEOUT)
            .is_ok_and(|o| o.status.success());
        assert!(ok, "mount {args:?} failed");
    };
    mount(&["--bind"]);
    let _mounted = BindMount(data.clone());
    mount(&["-o", "remount,bind,ro"]);

    for args in [&["check-config"][..], &["serve"][..]] {
        let out = run(args)?;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(
            out.stderr.contains("is read-only") && out.stderr.contains("envparity.db"),
            "{args:?} names the store and why: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("listening"), "{}", out.stderr);
    }
    Ok(())
}
