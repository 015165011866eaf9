//! Mounted configuration files read through a real, isolated Docker engine's
//! archive API (`envparity_agent::config_files::read`).

use std::os::unix::fs::symlink;

use envparity_agent::collect::{Collector, SnapshotHeader};
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

#[test]
fn unchanged_files_are_not_fetched_again_and_an_edited_one_is() -> anyhow::Result<()> {
    use envparity_agent::config_files::ClearConfigPolicy;
    use envparity_agent::config_files::read::Reader;
    use envparity_agent::runtime::docker::DockerEngine;

    let engine = DockerHost::start("config-cache")?;
    engine.import_image(IMAGE, ImageSpec::new().cmd(&["/bin/sleep", "3600"]))?;
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("a.yaml"), "a: 1\nb: 2\n")?;
    std::fs::write(dir.path().join("b.env"), "X=1\n")?;
    let id = engine.run(
        Run::new(IMAGE)
            .name("web")
            .arg(format!("--volume={}:/etc/app:ro", dir.path().display())),
    )?;
    let cfg = config("http://127.0.0.1:9", &engine.docker_host());
    let mut reader = Reader::new(cfg.config_files.clone(), ClearConfigPolicy::default());
    let docker = runtime().block_on(DockerEngine::connect(&engine.docker_host()))?;
    let ids = [id];
    let read = |reader: &mut Reader| {
        runtime().block_on(reader.read(docker.http(), &ids, &cfg.fingerprint_key))
    };
    let first = read(&mut reader);
    assert_eq!(first[0].files.files.len(), 2, "{first:?}");
    let mount_bytes = ("a: 1\nb: 2\n".len() + "X=1\n".len()) as u64;
    assert_eq!(reader.fetched(), mount_bytes);
    let second = read(&mut reader);
    assert_eq!(second, first);
    assert_eq!(
        reader.fetched(),
        mount_bytes,
        "unchanged: nothing fetched again"
    );
    // Same size, another value: the mtime tells.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(dir.path().join("a.yaml"), "a: 1\nb: 3\n")?;
    let third = read(&mut reader);
    assert_ne!(third, first);
    assert_eq!(
        reader.fetched(),
        2 * mount_bytes,
        "the edited mount is read again"
    );
    Ok(())
}
