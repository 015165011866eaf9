//! Configuration passed as files (issue 20), end to end: files bind-mounted
//! into containers on real, isolated dockerd hosts, read by the real agents
//! through the engine's archive API, judged by the real aggregator, told by
//! the CLI.

use std::path::Path;
use std::time::Duration;

use envparity_tests::answer::{Explain, Findings};
use envparity_tests::{
    EXIT_MISMATCH, Fleet, ImageSpec, Result, Run, daemon_outputs, free_port, journaled_snapshots,
};

const REPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// A planted secret value in a Compose-style secret file.
const PLANTED: [&str; 2] = [
    "planted-cfg-secret-staging-51c2",
    "planted-cfg-secret-prod-8e07",
];

/// `(kind, key)` of every finding.
fn kinds(findings: &Findings) -> Vec<(String, String)> {
    findings
        .findings
        .iter()
        .map(|f| (f.kind.clone(), f.key.clone()))
        .collect()
}

fn write(dir: &Path, name: &str, content: impl AsRef<[u8]>) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("create the config dir");
    std::fs::write(path, content).expect("write a config file");
}

/// The files of one environment: `app.yaml`, `db.yaml`, the hostile ones
/// (identical on both sides: each must be bounded and quiet), and a secret.
fn config_dir(root: &Path, env: &str, app: &str, db: &str, secret: &str) -> std::path::PathBuf {
    let dir = root.join(format!("config-{env}"));
    write(&dir, "app/app.yaml", app);
    write(&dir, "app/db.yaml", db);
    write(&dir, "app/big.yaml", "x".repeat(10 * 1024 * 1024));
    write(&dir, "app/tool.bin", b"\x7fELF\x02\x01\x01\0\0\0\0\0");
    write(&dir, "app/bad.yaml", "a: 1\nb: [unclosed\n");
    let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x]\n");
    for (name, prev) in [
        ("b", "a"),
        ("c", "b"),
        ("d", "c"),
        ("e", "d"),
        ("f", "e"),
        ("g", "f"),
        ("h", "g"),
        ("i", "h"),
    ] {
        bomb.push_str(&format!(
            "{name}: &{name} [{}]\n",
            vec![format!("*{prev}"); 9].join(",")
        ));
    }
    write(&dir, "app/bomb.yaml", bomb);
    // A key that does not look secret: only the mount keeps it fingerprinted.
    write(&dir, "secrets/api.yaml", format!("note: {secret}\n"));
    dir
}

#[test]
fn one_yaml_key_differing_is_one_config_value_and_nothing_else_leaks_or_differs() -> Result<()> {
    let fleet = Fleet::builder()
        .host("staging")
        .host("production")
        .registry()
        .start()?;
    let registry = fleet.registry();
    let staging = fleet.host("staging");
    staging.import_image("app:1", ImageSpec::new().file("/app/version", "1"))?;
    registry.push_from(staging, "app:1")?;
    registry.pull_to(fleet.host("production"), "app:1")?;
    let image = registry.digest_of(staging, "app:1")?;

    let dirs = [
        config_dir(
            fleet.dir(),
            "staging",
            "server:\n  port: 8080\n  tls:\n    enabled: true\nfeatures:\n  checkout: true\n  search: false\n",
            "database:\n  url: postgres://db-staging/app\n  replica_url: postgres://replica-staging/app\n",
            PLANTED[0],
        ),
        config_dir(
            fleet.dir(),
            "production",
            // Another order, comments and spacing; one value differs.
            "# production\nfeatures:\n    search:   false\n    checkout: false   # the drift\nserver:\n    tls: {enabled: true}\n    port: 8080\n",
            // The url differs, as expected; the replica url is missing.
            "database:\n  url: postgres://db-prod/app\n",
            PLANTED[1],
        ),
    ];
    for (name, dir) in ["staging", "production"].iter().zip(&dirs) {
        fleet.host(name).run(
            Run::new(&image)
                .name("shop")
                .label("envparity.service", "shop")
                .arg(format!(
                    "--volume={}:/etc/app:ro",
                    dir.join("app").display()
                ))
                .arg(format!(
                    "--volume={}:/run/secrets/api.yaml:ro",
                    dir.join("secrets/api.yaml").display()
                )),
        )?;
    }

    let policy = fleet.dir().join("policy.toml");
    std::fs::write(
        &policy,
        "[pinning]\nrequired = []\nelsewhere = \"off\"\n[config]\nexpected_to_differ = [\"/etc/app/db.yaml:*url\"]\n",
    )
    .expect("write the policy");
    let metrics_port = free_port()?;
    let config = fleet.dir().join("aggregator.toml");
    std::fs::write(
        &config,
        format!("metrics_listen = \"127.0.0.1:{metrics_port}\"\n"),
    )
    .expect("write the config");
    let mut aggregator = fleet
        .aggregator()
        .env("RUST_LOG", "debug")
        .arg("--config")
        .arg(config.display().to_string())
        .arg("--policy")
        .arg(policy.display().to_string())
        .start()?;
    let agent_metrics_port = free_port()?;
    let state_dir = fleet.dir().join("state-staging");
    let agents = [
        fleet
            .agent(fleet.host("staging"))
            .env("RUST_LOG", "debug")
            .state_dir(&state_dir)
            .arg("--metrics-listen")
            .arg(format!("127.0.0.1:{agent_metrics_port}"))
            // Everything under the secrets asked for in clear: never given.
            .arg("--clear-config")
            .arg("/run/secrets/*=*")
            .start()?,
        fleet
            .agent(fleet.host("production"))
            .env("RUST_LOG", "debug")
            .start()?,
    ];
    fleet.wait_for_hosts(&["staging", "production"], REPORT_TIMEOUT)?;

    let diff = fleet.cli(&["diff", "staging", "production", "--service", "shop"])?;
    diff.assert_code(EXIT_MISMATCH);
    let answer = diff.answer::<Findings>();
    assert_eq!(
        kinds(&answer),
        [
            (
                "config_key_missing".to_owned(),
                "/etc/app/db.yaml:database.replica_url".to_owned()
            ),
            (
                "config_value".to_owned(),
                "/etc/app/app.yaml:features.checkout".to_owned()
            ),
            (
                "config_value".to_owned(),
                "/run/secrets/api.yaml:note".to_owned()
            ),
        ],
        "{diff}"
    );
    let value = &answer.findings[1];
    assert_eq!(value.basis, "fingerprint", "{diff}");
    assert!(
        value.summary.contains("features.checkout") && value.summary.contains("/etc/app/app.yaml")
    );

    // The agents are unharmed by the 10 MB file, the binary, the malformed
    // file and the bomb: both still report, and `service` says of each why
    // it was not read or not parsed, keys × environments beside.
    fleet.wait_for_hosts(&["staging", "production"], REPORT_TIMEOUT)?;
    let table = fleet
        .cli_command()?
        .args(["-o", "table", "service", "shop"])
        .output()
        .expect("run envparity service");
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    let row = |file: &str, key: &str| {
        table
            .lines()
            .find(|l| l.contains(file) && l.contains(key))
            .unwrap_or_else(|| panic!("no row {file} {key} in\n{table}"))
            .to_owned()
    };
    assert!(
        row("/etc/app/big.yaml", "(not read)").contains("too large: 10485760 bytes"),
        "{table}"
    );
    assert!(
        row("/etc/app/tool.bin", "(not read)").contains("binary"),
        "{table}"
    );
    assert!(
        row("/etc/app/bad.yaml", "(not parsed)").contains("yaml: "),
        "{table}"
    );
    assert!(
        row("/etc/app/bomb.yaml", "(not parsed)").contains("yaml: "),
        "{table}"
    );
    let checkout = row("/etc/app/app.yaml", "features.checkout");
    assert_eq!(
        checkout.matches("fp:").count(),
        2,
        "one value per environment: {checkout}"
    );
    let replica = row("/etc/app/db.yaml", "database.replica_url");
    assert!(
        replica.contains("fp:") && replica.trim_end().ends_with(" -"),
        "set in staging, absent in production: {replica}"
    );

    // `explain` prints the same keys × environments; its JSON carries each
    // replica's files, key by key, by fingerprint.
    let explained = fleet.cli_as("table", &["explain", "shop"])?.stdout;
    assert!(
        explained.lines().any(|l| l == checkout),
        "the row of service in explain: {checkout}\n{explained}"
    );
    let answer = fleet.cli(&["explain", "shop"])?.answer::<Explain>();
    let checkout_of = |environment: &str| {
        let replica = answer
            .replicas
            .iter()
            .find(|r| r.environment == environment)
            .unwrap_or_else(|| panic!("no {environment} replica in {answer:?}"));
        let files = replica.config_files.as_ref().expect("its files were read");
        let app = files
            .iter()
            .find(|f| f.path == "/etc/app/app.yaml" && f.state == "read")
            .expect("app.yaml read");
        let key = app
            .keys
            .iter()
            .find(|k| k.name == "features.checkout")
            .expect("features.checkout");
        assert_eq!(key.value, None, "not allowlisted: never in clear");
        key.fingerprint.clone()
    };
    assert_ne!(checkout_of("staging"), checkout_of("production"));
    assert_eq!(answer.replicas.len(), 2, "{answer:?}");

    // The planted secrets never left the hosts in clear.
    let mut seen: Vec<(String, Vec<u8>)> = vec![("diff".into(), diff.stdout.clone().into_bytes())];
    for format in ["json", "yaml", "table", "wide"] {
        for args in [
            vec!["service", "shop"],
            vec!["explain", "shop"],
            vec!["status"],
            vec!["findings"],
        ] {
            // Each answers (a second `-o` made every one a usage error
            // with nothing on stdout, and this loop vacuous).
            let out = fleet.cli_as(format, &args)?;
            assert!(out.code < 2 && !out.stdout.is_empty(), "{out}");
            seen.push((
                format!("{} -o {format}", args.join(" ")),
                out.stdout.into_bytes(),
            ));
        }
    }
    seen.extend(daemon_outputs(
        &aggregator,
        &agents,
        metrics_port,
        agent_metrics_port,
    )?);
    // The journal: with the aggregator gone, a new container's snapshot
    // (with every container's config files) is kept on disk, unsent.
    aggregator.stop()?;
    fleet.host("staging").run(
        Run::new(&image)
            .name("shop-2")
            .label("envparity.service", "shop")
            .arg(format!(
                "--volume={}:/etc/app:ro",
                dirs[0].join("app").display()
            ))
            .arg(format!(
                "--volume={}:/run/secrets/api.yaml:ro",
                dirs[0].join("secrets/api.yaml").display()
            )),
    )?;
    let journaled = journaled_snapshots(&state_dir.join("journal"), REPORT_TIMEOUT)?;
    let has =
        |bytes: &[u8], needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(
        has(&journaled, "shop-2")
            && has(&journaled, "features.checkout")
            && has(&journaled, "/run/secrets/api.yaml"),
        "the journal holds the new snapshot with its config files"
    );
    seen.push(("staging agent's journal".into(), journaled));
    // Control: the store holds the config keys, so not finding the values
    // means something.
    assert!(
        seen.iter()
            .any(|(p, b)| p.starts_with("store: ") && has(b, "features.checkout")),
        "the store holds no config keys"
    );
    for secret in PLANTED {
        for (place, bytes) in &seen {
            assert!(
                !has(bytes, secret),
                "planted secret {secret:?} found in {place}"
            );
        }
    }
    Ok(())
}

/// The value of the agent's series `name{labels}` (labels as written), 0
/// when absent.
fn agent_sample(port: u16, series: &str) -> Result<f64> {
    let body = envparity_tests::http::get(&format!("http://127.0.0.1:{port}/metrics"))?.body;
    Ok(body
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0))
}

/// The fingerprint the aggregator holds of the key `key` of `service` (in
/// `service`'s JSON, wherever an object names it), if any.
fn fingerprint_of(fleet: &Fleet, service: &str, key: &str) -> Result<Option<String>> {
    fn find(v: &serde_json::Value, key: &str) -> Option<String> {
        match v {
            serde_json::Value::Object(o) => {
                if o.get("name").and_then(|n| n.as_str()) == Some(key)
                    && let Some(fp) = o.get("fingerprint").and_then(|f| f.as_str())
                {
                    return Some(fp.to_owned());
                }
                o.values().find_map(|v| find(v, key))
            }
            serde_json::Value::Array(a) => a.iter().find_map(|v| find(v, key)),
            _ => None,
        }
    }
    let out = fleet.cli(&["service", service])?;
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_default();
    Ok(find(&json, key))
}

#[test]
fn a_rewritten_mounted_file_is_read_again_at_the_next_collection_and_an_unchanged_one_is_not()
-> Result<()> {
    let fleet = Fleet::builder().host("staging").start()?;
    let staging = fleet.host("staging");
    staging.import_image("app:1", ImageSpec::new().file("/app/version", "1"))?;
    let dir = fleet.dir().join("files");
    write(&dir, "app.yaml", "features:\n  checkout: true\n");
    write(&dir, "db.yaml", "database:\n  pool: 5\n");
    staging.run(
        Run::new("app:1")
            .name("shop")
            .label("envparity.service", "shop")
            // Single-file bind mounts: the file is rewritten in place (a
            // rename would leave the container on the old inode).
            .arg(format!(
                "--volume={}:/etc/app/app.yaml:ro",
                dir.join("app.yaml").display()
            ))
            .arg(format!(
                "--volume={}:/etc/app/db.yaml:ro",
                dir.join("db.yaml").display()
            )),
    )?;
    let _aggregator = fleet.aggregator().start()?;
    let port = free_port()?;
    let _agent = fleet
        .agent(staging)
        .arg("--resync-interval")
        .arg("1s")
        .arg("--metrics-listen")
        .arg(format!("127.0.0.1:{port}"))
        .start()?;
    fleet.wait_for_hosts(&["staging"], REPORT_TIMEOUT)?;
    let before = envparity_tests::wait_for(REPORT_TIMEOUT, "features.checkout reported", || {
        fingerprint_of(&fleet, "shop", "features.checkout")
    })?;

    // Collections with nothing changed serve both mounts from the cache.
    let hits = "envparity_agent_config_file_mounts_total{cache=\"hit\"}";
    let misses = "envparity_agent_config_file_mounts_total{cache=\"miss\"}";
    envparity_tests::wait_until(REPORT_TIMEOUT, "4 cache hits", || {
        agent_sample(port, hits).is_ok_and(|n| n >= 4.0)
    })?;
    let read_before = agent_sample(port, misses)?;
    assert_eq!(
        read_before, 2.0,
        "each mount read once, at the first collection"
    );

    write(&dir, "app.yaml", "features:\n  checkout: false\n");
    let after = envparity_tests::wait_for(REPORT_TIMEOUT, "the new features.checkout", || {
        Ok(fingerprint_of(&fleet, "shop", "features.checkout")?.filter(|fp| *fp != before))
    })?;
    assert_ne!(after, before);
    // Only the rewritten mount was read again.
    // (Once more if a collection fell between the truncation and the write.)
    let read_after = agent_sample(port, misses)?;
    assert!(
        (3.0..=4.0).contains(&read_after),
        "app.yaml read again, db.yaml not: {read_after} reads"
    );
    let unchanged = "envparity_agent_config_files_total{outcome=\"unchanged\",reason=\"\"}";
    assert!(agent_sample(port, unchanged)? >= 4.0);
    Ok(())
}
