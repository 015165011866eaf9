//! Mounted configuration files read through a real, isolated Docker engine's
//! archive API (`envparity_agent::config_files::read`).

use std::os::unix::fs::symlink;
use std::time::{Duration, SystemTime};

use envparity_agent::collect::{Collector, SnapshotHeader};
use envparity_agent::config_files::ClearConfigPolicy;
use envparity_agent::config_files::read::Reader;
use envparity_agent::runtime::docker::DockerEngine;
use envparity_proto::v1::{ConfigFile, ConfigFileState, ContainerConfigFiles, HostSnapshot};
use envparity_tests::{DockerHost, ImageSpec, Run};
use prost::Message;

use crate::support::{config, runtime};

const IMAGE: &str = "envparity-test:1";
const PLANTED: &str = "planted-config-secret-7f3a91";

fn files_of<'a>(snap: &'a HostSnapshot, id: &str) -> &'a ContainerConfigFiles {
    snap.config_files
        .iter()
        .find(|f| f.container_id == id)
        .unwrap_or_else(|| panic!("no config files for {id}: {:?}", snap.config_files))
}

fn file<'a>(files: &'a ContainerConfigFiles, path: &str) -> &'a ConfigFile {
    files
        .files
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("no {path} in {:?}", paths(files)))
}

fn paths(files: &ContainerConfigFiles) -> Vec<&str> {
    files.files.iter().map(|f| f.path.as_str()).collect()
}

fn key<'a>(file: &'a ConfigFile, path: &str) -> &'a envparity_proto::v1::ConfigKey {
    file.keys
        .iter()
        .find(|k| k.path == path)
        .unwrap_or_else(|| panic!("no key {path} in {}: {:?}", file.path, file.keys))
}

#[test]
fn mounted_config_files_are_read_key_by_key_bounded_and_never_in_clear_when_secret()
-> anyhow::Result<()> {
    let engine = DockerHost::start("config-files")?;
    engine.import_image(IMAGE, ImageSpec::new().cmd(&["/bin/sleep", "3600"]))?;
    let dir = tempfile::tempdir()?;
    let app = dir.path().join("app");
    std::fs::create_dir_all(app.join("skip"))?;
    std::fs::write(
        app.join("app.yaml"),
        "server:\n  tls:\n    enabled: true\n  port: 8080\nfeatures: [a, b, c]\nlog:\n  level: debug\n",
    )?;
    std::fs::write(app.join("skip/ignored.yaml"), "a: 1\n")?;
    std::fs::write(app.join("big.yaml"), "x".repeat(10 * 1024 * 1024))?;
    std::fs::write(app.join("tool.bin"), b"\x7fELF\x02\x01\x01\0\0\0\0")?;
    std::fs::write(app.join("bad.yaml"), "a: 1\nb: [unclosed\n")?;
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
    std::fs::write(app.join("bomb.yaml"), bomb)?;
    symlink("loop-b.yaml", app.join("loop-a.yaml"))?;
    symlink("loop-a.yaml", app.join("loop-b.yaml"))?;
    // Kubernetes' atomic writer: the file is a link through `..data`.
    std::fs::create_dir_all(app.join("..2026_12_04"))?;
    std::fs::write(app.join("..2026_12_04/cm.properties"), "mode=fast\n")?;
    symlink("..2026_12_04", app.join("..data"))?;
    symlink("..data/cm.properties", app.join("cm.properties"))?;
    let single = dir.path().join("single.env");
    std::fs::write(&single, "A=1\nexport B=\"two\"\n")?;
    let secret = dir.path().join("db_password.yaml");
    std::fs::write(&secret, format!("password: {PLANTED}\nuser: app\n"))?;

    let id = engine.run(
        Run::new(IMAGE)
            .name("web")
            .arg(format!("--volume={}:/etc/app:ro", app.display()))
            .arg(format!("--volume={}:/etc/single.env:ro", single.display()))
            .arg(format!(
                "--volume={}:/run/secrets/db.yaml:ro",
                secret.display()
            )),
    )?;

    let cfg = config("http://127.0.0.1:9", &engine.docker_host());
    let mut collector = Collector::new(&cfg, SnapshotHeader::new(&cfg, "boot"));
    let snap = runtime().block_on(collector.collect(None));
    let files = files_of(&snap, &id);

    let app_yaml = file(files, "/etc/app/app.yaml");
    assert_eq!(app_yaml.state(), ConfigFileState::Read, "{app_yaml:?}");
    assert_eq!(app_yaml.format, "yaml");
    let keys: Vec<&str> = app_yaml.keys.iter().map(|k| k.path.as_str()).collect();
    assert_eq!(
        keys,
        [
            "features[0]",
            "features[1]",
            "features[2]",
            "log.level",
            "server.port",
            "server.tls.enabled"
        ]
    );
    assert_eq!(key(app_yaml, "log.level").value.as_deref(), Some("debug"));
    assert_eq!(key(app_yaml, "server.port").value, None);
    assert_eq!(key(app_yaml, "server.port").fingerprint.len(), 64);

    assert!(
        !paths(files).contains(&"/etc/app/skip/ignored.yaml"),
        "excluded"
    );
    let big = file(files, "/etc/app/big.yaml");
    assert_eq!(big.state(), ConfigFileState::NotRead);
    assert_eq!(
        big.reason,
        "too large: 10485760 bytes, over the limit of 262144"
    );
    assert_eq!(file(files, "/etc/app/tool.bin").reason, "binary");
    let bad = file(files, "/etc/app/bad.yaml");
    assert_eq!(bad.state(), ConfigFileState::NotParsed);
    assert!(
        bad.reason.starts_with("yaml: ") && bad.reason.contains("line"),
        "{bad:?}"
    );
    assert_eq!(
        bad.fingerprint.len(),
        64,
        "a file that does not parse still compares whole"
    );
    let bomb = file(files, "/etc/app/bomb.yaml");
    assert_eq!(bomb.state(), ConfigFileState::NotParsed, "{bomb:?}");
    assert_eq!(file(files, "/etc/app/loop-a.yaml").reason, "symlink loop");
    let cm = file(files, "/etc/app/cm.properties");
    assert_eq!(cm.state(), ConfigFileState::Read, "{cm:?}");
    assert_eq!(key(cm, "mode").fingerprint.len(), 64);
    assert!(
        !paths(files).iter().any(|p| p.contains("..")),
        "the atomic writer's own entries are not files: {:?}",
        paths(files)
    );

    let env = file(files, "/etc/single.env");
    assert_eq!(env.format, "env");
    assert_eq!(env.keys.len(), 2);

    // A secret mount: fingerprints only, whatever the allowlist (the test
    // configuration allowlists every key under /run/secrets/).
    let db = file(files, "/run/secrets/db.yaml");
    assert!(db.secret);
    assert_eq!(db.state(), ConfigFileState::Read);
    assert!(db.keys.iter().all(|k| k.value.is_none()), "{db:?}");
    let encoded = snap.encode_to_vec();
    assert!(
        !encoded
            .windows(PLANTED.len())
            .any(|w| w == PLANTED.as_bytes()),
        "the planted secret left the host in clear"
    );

    // Unchanged: the same answer. Changed: read again.
    let again = runtime().block_on(collector.collect(None));
    assert_eq!(files_of(&again, &id), files);
    std::fs::write(
        app.join("app.yaml"),
        "server:\n  tls:\n    enabled: false\n  port: 8080\nfeatures: [a, b, c]\nlog:\n  level: debug\n",
    )?;
    let changed = runtime().block_on(collector.collect(None));
    let changed_yaml = file(files_of(&changed, &id), "/etc/app/app.yaml");
    assert_ne!(
        key(changed_yaml, "server.tls.enabled").fingerprint,
        key(app_yaml, "server.tls.enabled").fingerprint,
        "an edited file is read again"
    );
    assert_eq!(
        key(changed_yaml, "server.port").fingerprint,
        key(app_yaml, "server.port").fingerprint
    );
    Ok(())
}

/// Sets the modification time of `path` to `ago` before now.
fn age(path: &std::path::Path, ago: Duration) -> anyhow::Result<()> {
    std::fs::File::options()
        .write(true)
        .open(path)?
        .set_modified(SystemTime::now() - ago)?;
    Ok(())
}

#[test]
fn a_mounted_directory_is_read_from_one_archive_and_read_again_only_when_a_file_changed()
-> anyhow::Result<()> {
    let engine = DockerHost::start("config-cache")?;
    engine.import_image(IMAGE, ImageSpec::new().cmd(&["/bin/sleep", "3600"]))?;
    let dir = tempfile::tempdir()?;
    let (a, b, c) = (
        dir.path().join("a.yaml"),
        dir.path().join("b.env"),
        dir.path().join("c.json"),
    );
    std::fs::write(&a, "a: 1\nb: 2\n")?;
    std::fs::write(&b, "X=1\n")?;
    std::fs::write(&c, "{\"c\": 3}\n")?;
    for file in [&a, &b, &c] {
        age(file, Duration::from_secs(3600))?;
    }
    let id = engine.run(
        Run::new(IMAGE)
            .name("web")
            .arg(format!("--volume={}:/etc/app:ro", dir.path().display())),
    )?;
    let cfg = config("http://127.0.0.1:9", &engine.docker_host());
    let mut reader = Reader::new(cfg.config_files.clone(), ClearConfigPolicy::default());
    let rt = runtime();
    let docker = rt.block_on(DockerEngine::connect(&engine.docker_host()))?;
    let ids = [id];
    let read = |reader: &mut Reader| {
        let sent = docker.http().requests_sent();
        let read = rt.block_on(reader.read(docker.http(), &ids, &cfg.fingerprint_key));
        (read, docker.http().requests_sent() - sent)
    };
    let (first, requests) = read(&mut reader);
    assert_eq!(first[0].files.files.len(), 3, "{first:?}");
    let mount_bytes = ("a: 1\nb: 2\n".len() + "X=1\n".len() + "{\"c\": 3}\n".len()) as u64;
    assert_eq!(reader.fetched(), mount_bytes);
    assert_eq!(
        requests, 3,
        "the container's mounts, the directory's stat and its archive; no stat per file"
    );

    let (second, requests) = read(&mut reader);
    assert_eq!(second, first);
    assert_eq!(
        reader.fetched(),
        mount_bytes,
        "unchanged: nothing fetched again"
    );
    assert_eq!(requests, 4, "a stat of the directory and of each file");

    // Same size, another value, a later mtime (by seconds: the archive's
    // headers carry no finer time).
    std::fs::write(&a, "a: 1\nb: 3\n")?;
    age(&a, Duration::from_secs(60))?;
    let (third, _) = read(&mut reader);
    assert_ne!(third, first);
    assert_eq!(
        reader.fetched(),
        2 * mount_bytes,
        "the edited mount is read again"
    );
    let (fourth, _) = read(&mut reader);
    assert_eq!(fourth, third);
    assert_eq!(reader.fetched(), 2 * mount_bytes, "and then not");

    // Modified within a second of the reading: read once more, since a
    // second write in that second would keep its size and mtime.
    std::fs::write(&a, "a: 1\nb: 4\n")?;
    age(&a, Duration::ZERO)?;
    let (fifth, _) = read(&mut reader);
    assert_ne!(fifth, third);
    assert_eq!(reader.fetched(), 3 * mount_bytes);
    let (sixth, _) = read(&mut reader);
    assert_eq!(sixth, fifth);
    assert_eq!(
        reader.fetched(),
        4 * mount_bytes,
        "a file read in the second it was written is read again"
    );
    age(&a, Duration::from_secs(30))?;
    read(&mut reader);
    read(&mut reader);
    assert_eq!(
        reader.fetched(),
        5 * mount_bytes,
        "once its mtime changed, and no more after"
    );
    Ok(())
}

#[test]
fn a_collections_engine_calls_share_kept_alive_connections_and_survive_an_engine_restart()
-> anyhow::Result<()> {
    let mut engine = DockerHost::start("keep-alive")?;
    engine.import_image(IMAGE, ImageSpec::new().cmd(&["/bin/sleep", "3600"]))?;
    let dir = tempfile::tempdir()?;
    let mut ids = Vec::new();
    for container in 0..3 {
        let mut run = Run::new(IMAGE)
            .name(format!("web-{container}"))
            .arg("--restart=always");
        for file in 0..5 {
            let path = dir.path().join(format!("{container}-{file}.yaml"));
            std::fs::write(&path, format!("key: {file}\n"))?;
            age(&path, Duration::from_secs(3600))?;
            run = run.arg(format!(
                "--volume={}:/etc/app/f{file}.yaml:ro",
                path.display()
            ));
        }
        ids.push(engine.run(run)?);
    }
    let cfg = config("http://127.0.0.1:9", &engine.docker_host());
    let mut reader = Reader::new(cfg.config_files.clone(), ClearConfigPolicy::default());
    let rt = runtime();
    let docker = rt.block_on(DockerEngine::connect(&engine.docker_host()))?;
    let http = docker.http();
    let files = |read: &[envparity_agent::config_files::read::Read]| -> Vec<usize> {
        read.iter().map(|r| r.files.files.len()).collect()
    };
    let mut first = Vec::new();
    for _ in 0..5 {
        let read = rt.block_on(reader.read(http, &ids, &cfg.fingerprint_key));
        assert_eq!(files(&read), [5, 5, 5], "{read:?}");
        first = read;
    }
    // The containers' mounts, a stat and an archive per file, then a stat
    // per file 4 times: 94 requests with the version's.
    assert_eq!(http.requests_sent(), 94);
    let connections = http.connections_made();
    assert!(
        connections <= envparity_agent::runtime::engine_http::MAX_IDLE as u64,
        "{connections} connections for 94 requests"
    );

    // The kept connections die with the engine; the restarted one is
    // asked on new ones, without an error.
    engine.stop_engine()?;
    engine.start_engine()?;
    for id in &ids {
        let stat = rt.block_on(http.path_stat(id, "/etc/app/f0.yaml"))?;
        assert_eq!(stat.size, "key: 0\n".len() as u64);
    }
    let again = rt.block_on(reader.read(http, &ids, &cfg.fingerprint_key));
    assert_eq!(again, first, "all read, from the cache");
    assert!(
        http.connections_made()
            <= connections + envparity_agent::runtime::engine_http::MAX_IDLE as u64,
        "{} connections",
        http.connections_made()
    );
    Ok(())
}

#[test]
fn an_unchanged_collection_answers_same_without_building_the_snapshot_and_a_change_builds_it_whole()
-> anyhow::Result<()> {
    let engine = DockerHost::start("config-same")?;
    engine.import_image(IMAGE, ImageSpec::new().cmd(&["/bin/sleep", "3600"]))?;
    let dir = tempfile::tempdir()?;
    let a = dir.path().join("a.yaml");
    let single = dir.path().join("single.env");
    std::fs::write(&a, "a: 1\nb: 2\n")?;
    std::fs::write(&single, "X=1\n")?;
    for file in [&a, &single] {
        age(file, Duration::from_secs(3600))?;
    }
    let id = engine.run(
        Run::new(IMAGE)
            .name("web")
            .arg(format!("--volume={}:/etc/app:ro", dir.path().display()))
            .arg(format!("--volume={}:/etc/single.env:ro", single.display())),
    )?;
    let cfg = config("http://127.0.0.1:9", &engine.docker_host());
    let mut collector = Collector::new(&cfg, SnapshotHeader::new(&cfg, "boot"));
    let rt = runtime();
    let first = rt.block_on(collector.collect(None));
    assert_eq!(paths(files_of(&first, &id)).len(), 3, "{first:?}");

    // Nothing changed: nothing built, whatever form the snapshot held was
    // hashed in (an aggregator that hashes by container keeps the whole
    // hash of an unchanged content).
    assert_eq!(
        rt.block_on(collector.collect_unless_same(None, &first)),
        None
    );
    collector.set_hash_form(envparity_proto::hash::HashForm::ByContainer);
    assert_eq!(
        rt.block_on(collector.collect_unless_same(None, &first)),
        None
    );
    collector.set_hash_form(envparity_proto::hash::HashForm::Whole);

    // Something other than the files differs from the snapshot held: built
    // whole, files made again from the cache, the content that of a full
    // collection.
    let mut other = first.clone();
    other.labels.clear();
    let built = rt
        .block_on(collector.collect_unless_same(None, &other))
        .expect("differs from the one held");
    assert_eq!(built.content_hash, first.content_hash);
    assert_eq!(built.config_files, first.config_files);

    // A file changed: read again and built whole.
    std::fs::write(&a, "a: 1\nb: 3\n")?;
    age(&a, Duration::from_secs(60))?;
    let changed = rt
        .block_on(collector.collect_unless_same(None, &first))
        .expect("a file changed");
    assert_ne!(changed.content_hash, first.content_hash);
    let full = rt.block_on(collector.collect(None));
    assert_eq!(full.content_hash, changed.content_hash);
    assert_eq!(full.config_files, changed.config_files);
    assert_eq!(
        rt.block_on(collector.collect_unless_same(None, &changed)),
        None
    );
    Ok(())
}
