//! `envparity serve --store postgres://…` through the real binary: the same
//! reports (from the load generator) give the same answers as on SQLite,
//! and a restart reads them back from the database (docs/store.md).

use std::process::Command;
use std::time::Duration;

use envparity_tests::answer::{History, Hosts};
use envparity_tests::grpc::{ReportClient, container, snapshot};
use envparity_tests::{
    CliOutput, Fleet, PASSWORD_ROLE, Postgres, Result, ServerTls, cargo_bin, output,
    project_command,
};

use super::alerting::{metrics, sample};

const HOSTS: [&str; 3] = ["host-00000", "host-00001", "host-00002"];

/// What `hosts` and `status` answer after the load generator registered
/// [`HOSTS`] with the aggregator on `store` (`None`: SQLite), before and
/// after a restart, which must agree.
fn answers_on(store: Option<&str>) -> Result<Vec<String>> {
    let fleet = HOSTS
        .iter()
        .fold(Fleet::builder(), |b, h| b.identity(h))
        .start()?;
    let builder = fleet.aggregator();
    let builder = match store {
        Some(url) => builder.store(url),
        None => builder.sqlite(),
    };
    let mut aggregator = builder.start()?;
    load(&fleet, &["--phases", "register"])?;
    let read = |fleet: &Fleet| answers(fleet, &[&["hosts"], &["status"]]);
    let before = read(&fleet)?;
    assert!(before[0].contains("3 host(s)"), "{}", before[0]);
    aggregator.restart()?;
    let after = read(&fleet)?;
    assert_eq!(before, after, "after a restart on {store:?}");
    Ok(before)
}

/// Runs the load generator against `fleet`'s aggregator as [`HOSTS`], 5
/// containers each, with `args` (its phases); fails unless it succeeded.
fn load(fleet: &Fleet, args: &[&str]) -> Result<()> {
    let mut loadgen = Command::new(cargo_bin("envparity-loadgen")?);
    loadgen
        .arg("--server")
        .arg(fleet.server()?)
        .arg("--tls-dir")
        .arg(fleet.pki()?)
        .args(["--query-client", "cli", "--hosts", "3", "--containers", "5"])
        .args(args);
    let out = output(loadgen, Duration::from_secs(60))?;
    assert!(out.status.success(), "envparity-loadgen failed: {out:?}");
    Ok(())
}

/// What the CLI answers to each of `commands` (as tables), with its exit
/// code, ages left out: they differ from run to run, the rest may not.
fn answers(fleet: &Fleet, commands: &[&[&str]]) -> Result<Vec<String>> {
    commands
        .iter()
        .map(|args| {
            let out: CliOutput = fleet.cli_as("table", args)?;
            let lines: Vec<String> = out.stdout.lines().map(without_ages).collect();
            Ok(format!(
                "{args:?}\n{}\n(exit {})",
                lines.join("\n"),
                out.code
            ))
        })
        .collect()
}

/// `line` without ages ("3s ago", "1m ago"), which differ from run to run,
/// and with single spaces.
fn without_ages(line: &str) -> String {
    let age = |w: &str| {
        w == "ago"
            || w.strip_suffix(['s', 'm', 'h'])
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    line.split_whitespace()
        .filter(|w| !age(w))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn serve_on_postgres_answers_as_on_sqlite_and_after_a_restart() -> Result<()> {
    let postgres = Postgres::start()?;
    postgres.sql("postgres", "CREATE DATABASE envparity")?;
    let on_postgres = answers_on(Some(&postgres.url("envparity")))?;
    let on_sqlite = answers_on(None)?;
    assert_eq!(on_postgres, on_sqlite);
    // Read from PostgreSQL, not from a data dir.
    let stored = postgres.sql("envparity", "SELECT COUNT(*) FROM hosts")?;
    assert_eq!(stored, "3");
    Ok(())
}

/// `check-config` and `migrate` through the real binary: each thing wrong
/// with a PostgreSQL store is an exit 2 and an error naming it.
#[test]
fn check_config_and_migrate_name_what_is_wrong_with_a_postgres_store() -> Result<()> {
    let postgres = Postgres::start()?;
    postgres.sql("postgres", "CREATE DATABASE envparity")?;
    postgres.sql(
        "postgres",
        &format!("CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD 'right'"),
    )?;
    let socket = postgres.socket_dir().display().to_string();
    let run = |args: &[&str], env: &[(&str, &str)]| -> Result<envparity_tests::Output> {
        let mut cmd = project_command(&cargo_bin("envparity")?);
        cmd.args(args)
            .args(["--insecure-plaintext"])
            .envs(env.iter().copied());
        output(cmd, Duration::from_secs(30))
    };
    let url = postgres.url("envparity");
    let check = |store: &str, env: &[(&str, &str)]| run(&["check-config", "--store", store], env);

    let with_password = format!("postgres://{PASSWORD_ROLE}:right@/envparity?host={socket}");
    let out = check(&with_password, &[])?;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains("holds a password"), "{}", out.stderr);
    assert!(!out.stderr.contains("right@"), "{}", out.stderr);

    let as_role = format!("postgres://{PASSWORD_ROLE}@/envparity?host={socket}");
    let out = check(&as_role, &[("PGPASSWORD", "Tr0ub4dor")])?;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        out.stderr.contains("password authentication failed"),
        "{}",
        out.stderr
    );

    let out = check("postgres://postgres@/envparity?host=/nonexistent/pg", &[])?;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        out.stderr.contains("/nonexistent/pg") && out.stderr.contains("connect"),
        "{}",
        out.stderr
    );

    let out = check(&url, &[])?;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stdout.contains("no schema yet"), "{}", out.stdout);
    let out = run(&["migrate", "--store", &url], &[])?;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stdout.contains("from version 0 to 2"), "{}", out.stdout);
    let out = check(&url, &[])?;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stdout.contains("schema version 2"), "{}", out.stdout);

    postgres.sql(
        "envparity",
        "INSERT INTO schema_version (version) VALUES (9)",
    )?;
    for args in [&["check-config"][..], &["migrate"][..]] {
        let mut args = args.to_vec();
        args.extend(["--store", &url]);
        let out = run(&args, &[])?;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(
            out.stderr.contains("schema version 9 is newer") && out.stderr.contains("(2)"),
            "{args:?}: {}",
            out.stderr
        );
    }
    Ok(())
}

/// `migrate --from-sqlite`: a fleet served on SQLite (hosts registered,
/// then changed, so that there is history and findings), stopped and
/// moved to PostgreSQL, answers there as it did, history included; a
/// second import is refused and changes nothing.
#[test]
fn an_embedded_store_moved_to_postgres_answers_the_same_there() -> Result<()> {
    let postgres = Postgres::start()?;
    postgres.sql("postgres", "CREATE DATABASE envparity")?;
    let url = postgres.url("envparity");
    let fleet = HOSTS
        .iter()
        .fold(Fleet::builder(), |b, h| b.identity(h))
        .start()?;
    let mut aggregator = fleet
        .aggregator()
        .sqlite()
        .arg("--report-rate")
        .arg("10000")
        .arg("--report-burst")
        .arg("10000")
        .start()?;
    load(
        &fleet,
        &["--phases", "register,snapshot", "--duration", "1s"],
    )?;
    let read = |fleet: &Fleet| {
        answers(
            fleet,
            &[
                &["hosts"],
                &["status", "--all"],
                &["findings"],
                &["history", "svc-00000"],
            ],
        )
    };
    let before = read(&fleet)?;
    assert!(before[0].contains("3 host(s)"), "{}", before[0]);
    assert!(
        before[3].lines().count() > 4,
        "the history has changes: {}",
        before[3]
    );
    aggregator.stop()?;

    let data_dir = aggregator.data_dir().to_owned();
    let migrate = || -> Result<envparity_tests::Output> {
        let mut cmd = project_command(&cargo_bin("envparity")?);
        cmd.args(["migrate", "--insecure-plaintext", "--store", &url])
            .arg("--from-sqlite")
            .arg(&data_dir);
        output(cmd, Duration::from_secs(60))
    };
    let out = migrate()?;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        out.stdout.contains("imported") && out.stdout.contains("3 hosts"),
        "{}",
        out.stdout
    );
    aggregator.restart_on_store(&url)?;
    assert_eq!(read(&fleet)?, before, "PostgreSQL answers as SQLite did");
    assert_eq!(
        postgres.sql("envparity", "SELECT COUNT(*) FROM hosts")?,
        "3"
    );

    let out = migrate()?;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        out.stderr.contains("already holds 3 row(s) in hosts"),
        "{}",
        out.stderr
    );
    assert_eq!(read(&fleet)?, before, "the refused import changed nothing");
    Ok(())
}

/// TLS to PostgreSQL through the real binary, against a server that takes
/// only TLS on 127.0.0.1: with `--store-ca-file` the store is reached and
/// served, verified; without it, with a CA that did not sign the server's
/// certificate, or with `sslmode=require` and no CA, exit 2 naming why.
#[test]
fn the_store_is_reached_over_verified_tls_or_not_at_all() -> Result<()> {
    let fleet = Fleet::builder().start()?;
    let pki = fleet.pki()?.to_owned();
    let postgres = Postgres::start_tls(ServerTls {
        cert: &pki.join("server.pem"),
        key: &pki.join("server-key.pem"),
    })?;
    postgres.sql("postgres", "CREATE DATABASE envparity")?;
    let url = postgres.tcp_url("envparity");
    let ca = pki.join("ca.pem").display().to_string();
    let run = |args: &[&str]| -> Result<envparity_tests::Output> {
        let mut cmd = project_command(&cargo_bin("envparity")?);
        cmd.args(args).args(["--insecure-plaintext"]);
        output(cmd, Duration::from_secs(30))
    };

    let out = run(&["check-config", "--store", &url, "--store-ca-file", &ca])?;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stdout.contains("over TLS (verified)"), "{}", out.stdout);
    let out = run(&["migrate", "--store", &url, "--store-ca-file", &ca])?;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let _aggregator = fleet
        .aggregator()
        .store(&url)
        .arg("--store-ca-file")
        .arg(&ca)
        .start()?;
    let hosts: CliOutput = fleet.cli_as("table", &["hosts"])?;
    assert_eq!(hosts.code, 0, "{hosts:?}");

    // Without the CA: no TLS, which the server refuses there.
    let out = run(&["check-config", "--store", &url])?;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains("no encryption"), "{}", out.stderr);
    // A CA that did not sign the server's certificate.
    let other = Fleet::builder().start()?;
    let wrong = other.pki()?.join("ca.pem").display().to_string();
    let out = run(&["check-config", "--store", &url, "--store-ca-file", &wrong])?;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        out.stderr.contains("TLS handshake") && out.stderr.contains("invalid peer certificate"),
        "{}",
        out.stderr
    );
    // TLS asked for in the URL, with nothing to verify against.
    let require = format!("{url}?sslmode=require");
    let out = run(&["check-config", "--store", &require])?;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains("--store-ca-file"), "{}", out.stderr);
    Ok(())
}

/// A PostgreSQL database that refuses writes (`default_transaction_read_only`,
/// as a hot standby or a database put in maintenance leaves it): `serve` and
/// `check-config` exit 2 naming the database and why, `serve` never listens,
/// and nothing is written there.
#[test]
fn a_read_only_postgres_database_stops_serve_and_check_config_with_a_clear_error() -> Result<()> {
    let postgres = Postgres::start()?;
    postgres.sql("postgres", "CREATE DATABASE envparity")?;
    let url = postgres.url("envparity");
    let run = |args: &[&str]| -> Result<envparity_tests::Output> {
        let mut cmd = project_command(&cargo_bin("envparity")?);
        cmd.args(args).args(["--store", &url]);
        output(cmd, Duration::from_secs(30))
    };
    let out = run(&["migrate"])?;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    postgres.sql(
        "postgres",
        "ALTER DATABASE envparity SET default_transaction_read_only = on",
    )?;
    for args in [
        &["check-config", "--insecure-plaintext"][..],
        &["serve", "--insecure-plaintext", "--listen", "127.0.0.1:0"][..],
    ] {
        let out = run(args)?;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(
            out.stderr.contains(&url) && out.stderr.contains("read-only transaction"),
            "{args:?} names the database and why: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("listening"), "{}", out.stderr);
    }
    assert_eq!(
        postgres.sql("envparity", "SELECT COUNT(*) FROM leases")?,
        "0"
    );
    Ok(())
}

/// Room for the tables of `a_full_disk_under_postgres_…`: the schema and a
/// few dozen of its reports.
const SMALL_DISK: u64 = 3 << 20;

/// Snapshot `sequence` of host `edge`: 20 to 26 containers, each with a new
/// id (so each report adds and removes rows and history) and 40 env
/// fingerprints; container `…-000` is always of service `svc-000`.
fn heavy_snapshot(sequence: u64) -> envparity_proto::v1::HostSnapshot {
    let containers = (0..20 + sequence % 7).map(|i| {
        let mut c = container(&format!("svc-{i:03}"));
        c.id = format!("{sequence:05}-{i:03}");
        c.name = format!("svc-{i:03}-{sequence}");
        c.explicit_env = (0..40u64)
            .map(|k| envparity_proto::v1::EnvVar {
                name: format!("SETTING_{k:02}"),
                fingerprint: format!(
                    "{:032x}{:032x}",
                    u128::from(sequence) * 0x9e37_79b9_7f4a_7c15 + u128::from(i),
                    u128::from(k).wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ u128::from(sequence)
                ),
                value: None,
            })
            .collect();
        c
    });
    snapshot("edge", "production", sequence, containers.collect())
}

/// What the aggregator shows of `edge`: its container count and how many
/// times `svc-000` was added (once per stored report).
fn edge_shown(fleet: &Fleet) -> Result<(u64, usize)> {
    let out = fleet.cli(&["hosts"])?;
    out.assert_code(0);
    let count = out
        .answer::<Hosts>()
        .hosts
        .iter()
        .find(|h| h.host_id == "edge")
        .map_or(0, |h| u64::from(h.container_count));
    let out = fleet.cli(&["history", "svc-000", "--limit", "1000000"])?;
    out.assert_code(0);
    let added = out
        .answer::<History>()
        .events
        .iter()
        .filter(|e| e.host_id == "edge" && e.change == "added")
        .count();
    Ok((count, added))
}

/// The disk under the PostgreSQL database fills up (its tables on a
/// tablespace of 3 MiB) while reports arrive: the first report that does
/// not fit is refused with UNAVAILABLE naming the database and "No space
/// left on device", counted in the store's error metric and logged; the
/// aggregator keeps running and keeps showing the last acknowledged
/// report, of which nothing is half-written. Once there is room again, the
/// refused report is taken as it is, and a restart loads exactly what was
/// acknowledged.
#[test]
fn a_full_disk_under_postgres_refuses_reports_clearly_and_loses_nothing_acknowledged() -> Result<()>
{
    let postgres = Postgres::start()?;
    postgres.small_tablespace("small", SMALL_DISK)?;
    postgres.sql("postgres", "CREATE DATABASE envparity")?;
    postgres.sql(
        "postgres",
        "ALTER DATABASE envparity SET default_tablespace = small",
    )?;
    let url = postgres.url("envparity");
    let fleet = Fleet::builder().identity("edge").start()?;
    let mut aggregator = fleet
        .aggregator()
        .store(&url)
        .metrics()
        .arg("--report-rate")
        .arg("10000")
        .arg("--report-burst")
        .arg("10000")
        .start()?;
    let client = ReportClient::connect_as(&fleet, "edge")?;

    let mut acked = 0;
    let mut refused = None;
    for sequence in 1..=2_000 {
        match client.push(heavy_snapshot(sequence)) {
            Ok(()) => acked = sequence,
            Err(status) => {
                refused = Some((sequence, status));
                break;
            }
        }
    }
    let Some((sequence, status)) = refused else {
        panic!("2,000 reports fitted on a {SMALL_DISK}-byte disk");
    };
    assert!(acked >= 2, "the disk was full after {acked} report(s)");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    for needle in [url.as_str(), "No space left on device"] {
        assert!(
            status.message().contains(needle),
            "the refusal does not say {needle:?}: {status:?}"
        );
    }
    let log = aggregator.log();
    assert!(
        log.contains("report could not be stored host=edge") && log.contains("No space left"),
        "{log}"
    );
    let text = metrics(&aggregator.metrics_url("/metrics").expect("metrics"))?;
    let failed = sample(
        &text,
        "envparity_store_errors_total{op=\"save_reports\",error=\"database\"}",
    );
    assert!(failed.is_some_and(|n| n >= 1.0), "{failed:?}\n{text}");

    // Still serving, and showing the last acknowledged report whole.
    let last = heavy_snapshot(acked).containers.len() as u64;
    assert_eq!(edge_shown(&fleet)?, (last, acked as usize));
    // A retry while the disk is still full is refused as well.
    assert!(client.push(heavy_snapshot(sequence)).is_err());

    postgres.resize_tablespace("small", 64 << 20)?;
    client
        .push(heavy_snapshot(sequence))
        .expect("the refused report, once there is room");
    let now = heavy_snapshot(sequence).containers.len() as u64;
    assert_eq!(edge_shown(&fleet)?, (now, sequence as usize));
    aggregator.restart()?;
    assert_eq!(edge_shown(&fleet)?, (now, sequence as usize));
    Ok(())
}
