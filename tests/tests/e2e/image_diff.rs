//! `envparity image-diff` on images a real engine built and saved: two
//! builds of one base that differ by a dpkg stanza, a runtime ENV and a
//! large file, compared from `docker save` archives and from the engine's
//! own export; exit codes 0 within the thresholds, 1 beyond, 2 on a corrupt
//! archive or a missing image.

use std::path::{Path, PathBuf};
use std::process::Command;

use envparity_tests::{
    CLI_BIN, COMMAND_TIMEOUT, DockerHost, Error, ImageSpec, Result, cargo_bin, project_command,
};
use serde_json::Value;

/// A dpkg status file of one package at `version`, with a `+` in it.
fn status(version: &str, extra: &str) -> String {
    format!(
        "Package: libssl3\nStatus: install ok installed\nPriority: optional\nArchitecture: amd64\n\
Version: {version}\nDescription: Secure Sockets Layer toolkit\n shared libraries\n\n{extra}"
    )
}

/// What one `envparity image-diff` run returned.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }
}

fn image_diff(docker_host: Option<&str>, args: &[&str]) -> Result<Run> {
    let mut cli: Command = project_command(&cargo_bin(CLI_BIN)?);
    cli.arg("image-diff").args(args);
    match docker_host {
        Some(host) => cli.env("DOCKER_HOST", host),
        None => cli.env("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
    };
    let out = envparity_tests::output(cli, COMMAND_TIMEOUT)?;
    Ok(Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: out.stderr,
    })
}

/// Builds `tag` from `dockerfile` and the `files` beside it, offline.
fn build(
    host: &DockerHost,
    dir: &Path,
    tag: &str,
    dockerfile: &str,
    files: &[(&str, &[u8])],
) -> Result<()> {
    let context = dir.join(tag.replace(':', "-"));
    std::fs::create_dir_all(&context)
        .map_err(Error::io(format!("create {}", context.display())))?;
    std::fs::write(context.join("Dockerfile"), dockerfile)
        .map_err(Error::io("write Dockerfile"))?;
    for (name, data) in files {
        std::fs::write(context.join(name), data).map_err(Error::io(format!("write {name}")))?;
    }
    let mut docker = host.docker_command();
    docker
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "--no-cache", "--network", "none", "-q", "-t", tag])
        .arg(&context);
    envparity_tests::checked(docker).map(drop)
}

fn save(host: &DockerHost, dir: &Path, tag: &str) -> Result<PathBuf> {
    let path = dir.join(format!("{}.tar", tag.replace(':', "-")));
    host.docker([
        "save".as_ref(),
        "-o".as_ref(),
        path.as_os_str(),
        tag.as_ref(),
    ])?;
    Ok(path)
}

const BIG: usize = 3 << 20;

/// A host with `app:1` and `app:2` built from one base, and their archives.
fn two_builds(name: &str) -> Result<(DockerHost, PathBuf, PathBuf)> {
    let host = DockerHost::start(name)?;
    host.import_image(
        "base:1",
        ImageSpec::new().file(
            "/etc/os-release",
            "ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n",
        ),
    )?;
    let dir = host.dir().join("builds");
    let one = status("3.0.11-1~deb12u1", "");
    build(
        &host,
        &dir,
        "app:1",
        "FROM base:1\nENV PYTHON_VERSION=3.11.7\nCOPY status /var/lib/dpkg/status\n",
        &[("status", one.as_bytes())],
    )?;
    let two = status(
        "3.0.11-1~deb12u2",
        "Package: curl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 7.88.1-10+deb12u5\n",
    );
    let big: Vec<u8> = (0..BIG).map(|i| (i % 251) as u8).collect();
    build(
        &host,
        &dir,
        "app:2",
        "FROM base:1\nENV PYTHON_VERSION=3.12.1\nCOPY status /var/lib/dpkg/status\nCOPY big.bin /opt/data/big.bin\n",
        &[("status", two.as_bytes()), ("big.bin", &big)],
    )?;
    let a = save(&host, &dir, "app:1")?;
    let b = save(&host, &dir, "app:2")?;
    Ok((host, a, b))
}

/// The checks both modes share: what differs between app:1 and app:2.
fn assert_the_differences(answer: &Value) {
    let runtimes = answer["runtimes"].as_array().expect("runtimes");
    let python = runtimes
        .iter()
        .find(|r| r["name"] == "python")
        .expect("python runtime");
    assert_eq!(python["a"], "3.11.7", "{answer:#}");
    assert_eq!(python["b"], "3.12.1");
    let apt = answer["packages"]
        .as_array()
        .and_then(|p| p.iter().find(|e| e["ecosystem"] == "apt"))
        .expect("apt packages");
    assert_eq!(apt["changed"][0]["name"], "libssl3:amd64", "{apt:#}");
    assert_eq!(apt["changed"][0]["from"], "3.0.11-1~deb12u1");
    assert_eq!(apt["changed"][0]["to"], "3.0.11-1~deb12u2");
    assert_eq!(apt["changed"][0]["direction"], "upgrade");
    assert_eq!(apt["added"][0]["name"], "curl:amd64");
    assert_eq!(apt["added"][0]["version"], "7.88.1-10+deb12u5");
    let big = answer["file_changes"]
        .as_array()
        .and_then(|f| f.iter().find(|c| c["path"] == "opt/data/big.bin"))
        .expect("the large file");
    assert_eq!(big["change"], "added");
    assert_eq!(big["size_b"], BIG as u64);
    assert_eq!(answer["a"]["os"]["id"], "debian");
    assert!(
        answer["size"]["size_delta"].as_i64().unwrap() >= BIG as i64,
        "{:#}",
        answer["size"]
    );
    assert_eq!(
        answer["layers"]["shared"], 1,
        "the base layer: {:#}",
        answer["layers"]
    );
    assert!(
        answer["layers"]["created_by_b"]
            .as_str()
            .unwrap_or("")
            .contains("COPY"),
        "{:#}",
        answer["layers"]
    );
}

#[test]
fn two_saved_builds_differ_by_a_package_a_runtime_and_a_large_file() -> Result<()> {
    let (_host, a, b) = two_builds("image-diff-archive")?;
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());

    let run = image_diff(None, &["--archive", a, b, "-o", "json"])?;
    assert_eq!(
        run.code, 1,
        "no thresholds, the images differ: {}",
        run.stderr
    );
    assert_the_differences(&run.json());

    let within = image_diff(
        None,
        &[
            "--archive",
            a,
            b,
            "-o",
            "json",
            "--max-size-delta",
            "10MiB",
            "--max-files-changed",
            "10",
            "--max-packages-changed",
            "5",
        ],
    )?;
    assert_eq!(within.code, 0, "{}\n{}", within.stdout, within.stderr);
    assert_eq!(within.json()["verdict"]["within"], true);

    let beyond = image_diff(
        None,
        &[
            "--archive",
            a,
            b,
            "-o",
            "json",
            "--max-size-delta",
            "1MiB",
            "--max-packages-changed",
            "1",
        ],
    )?;
    assert_eq!(beyond.code, 1, "{}", beyond.stderr);
    let summary = beyond.json()["verdict"]["summary"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        summary, "+3 MiB > 1 MiB; 2 packages > 1",
        "{}",
        beyond.stdout
    );

    // `all`: the package threshold alone is not enough.
    let all = image_diff(
        None,
        &[
            "--archive",
            a,
            b,
            "--max-size-delta",
            "10MiB",
            "--max-packages-changed",
            "1",
            "--threshold-mode",
            "all",
        ],
    )?;
    assert_eq!(all.code, 0, "{}\n{}", all.stdout, all.stderr);

    // --type apt: only Debian packages shown and counted.
    let apt = image_diff(None, &["--archive", a, b, "--type", "apt", "-o", "json"])?;
    assert_eq!(apt.code, 1);
    let answer = apt.json();
    assert!(
        answer.get("runtimes").is_none() && answer.get("file_changes").is_none(),
        "{answer:#}"
    );

    let same = image_diff(None, &["--archive", a, a])?;
    assert_eq!(
        same.code, 0,
        "an image against itself: {}\n{}",
        same.stdout, same.stderr
    );
    assert!(
        same.stdout.contains("WITHIN same content"),
        "{}",
        same.stdout
    );

    let table = image_diff(None, &["--archive", a, b])?;
    assert_eq!(table.code, 1);
    assert!(
        table.stdout.contains("BEYOND the images differ"),
        "{}",
        table.stdout
    );
    let libssl = table
        .stdout
        .lines()
        .find(|l| l.contains("libssl3:amd64"))
        .unwrap_or_else(|| panic!("no libssl3 row: {}", table.stdout));
    let cells: Vec<&str> = libssl.split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "~",
            "libssl3:amd64",
            "3.0.11-1~deb12u1",
            "3.0.11-1~deb12u2",
            "upgrade"
        ],
        "{}",
        table.stdout
    );
    Ok(())
}

#[test]
fn a_corrupt_archive_or_a_missing_one_is_exit_2_naming_it() -> Result<()> {
    let (host, a, b) = two_builds("image-diff-corrupt")?;
    let data = std::fs::read(&b).map_err(Error::io("read the archive"))?;
    let cut = host.dir().join("cut.tar");
    std::fs::write(&cut, &data[..data.len() / 2]).map_err(Error::io("write cut.tar"))?;
    let cut = cut.to_str().unwrap();
    let run = image_diff(None, &["--archive", a.to_str().unwrap(), cut])?;
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(cut),
        "names the archive: {}",
        run.stderr
    );

    let run = image_diff(
        None,
        &["--archive", a.to_str().unwrap(), "/nonexistent/b.tar"],
    )?;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("/nonexistent/b.tar: cannot open"),
        "{}",
        run.stderr
    );

    // A tar bomb, as far as the reader can tell: B is over --max-read,
    // which A is within.
    let cap = std::fs::metadata(&a).map_err(Error::io("stat A"))?.len() + 4096;
    let b = b.to_str().unwrap();
    let max_read = cap.to_string();
    let run = image_diff(
        None,
        &["--archive", a.to_str().unwrap(), b, "--max-read", &max_read],
    )?;
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.starts_with(&format!("error: {b}: "))
            && run.stderr.contains(&format!("over the cap of {cap} bytes")),
        "{}",
        run.stderr
    );
    Ok(())
}

#[test]
fn a_huge_metadata_file_is_a_note_not_a_failure_and_not_held() -> Result<()> {
    let host = DockerHost::start("image-diff-hostile")?;
    host.import_image("base:1", ImageSpec::new())?;
    let dir = host.dir().join("builds");
    let mut metadata = b"Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n\n".to_vec();
    metadata.resize(20 << 20, b'x');
    build(
        &host,
        &dir,
        "hostile:1",
        "FROM base:1\nCOPY METADATA /usr/lib/python3/site-packages/evil-1.0.dist-info/METADATA\n\
         COPY ok /usr/lib/python3/site-packages/fine-2.0.dist-info/METADATA\n",
        &[
            ("METADATA", &metadata),
            ("ok", b"Metadata-Version: 2.1\nName: fine\nVersion: 2.0\n"),
        ],
    )?;
    let run = image_diff(
        Some(&host.docker_host()),
        &["base:1", "hostile:1", "-o", "json"],
    )?;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let answer = run.json();
    assert_eq!(
        answer["b"]["notes"][0],
        "usr/lib/python3/site-packages/evil-1.0.dist-info/METADATA: 20971520 bytes, over the cap of 16777216; not read",
        "{answer:#}"
    );
    let pip = answer["packages"]
        .as_array()
        .and_then(|p| p.iter().find(|e| e["ecosystem"] == "pip"))
        .expect("pip packages");
    assert_eq!(
        pip["added"],
        serde_json::json!([{"name": "fine", "version": "2.0"}])
    );
    Ok(())
}

#[test]
fn the_engine_export_gives_the_same_answer_and_a_missing_image_is_exit_2() -> Result<()> {
    let (host, _, _) = two_builds("image-diff-engine")?;
    let docker_host = host.docker_host();

    let run = image_diff(Some(&docker_host), &["app:1", "app:2", "-o", "json"])?;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_the_differences(&run.json());

    let run = image_diff(
        Some(&docker_host),
        &["app:1", "app:1", "--max-files-changed", "0"],
    )?;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);

    // The same Dockerfile rebuilt with --no-cache: another image id (and
    // another COPY layer: the file's mtime is new), the same content.
    let dir = host.dir().join("rebuild");
    build(
        &host,
        &dir,
        "app:1-rebuilt",
        "FROM base:1\nENV PYTHON_VERSION=3.11.7\nCOPY status /var/lib/dpkg/status\n",
        &[("status", status("3.0.11-1~deb12u1", "").as_bytes())],
    )?;
    assert_ne!(host.image_id("app:1")?, host.image_id("app:1-rebuilt")?);
    let run = image_diff(
        Some(&docker_host),
        &["app:1", "app:1-rebuilt", "-o", "json"],
    )?;
    assert_eq!(
        run.code, 0,
        "a content-identical rebuild: {}\n{}",
        run.stdout, run.stderr
    );
    let answer = run.json();
    assert_eq!(
        answer["verdict"]["summary"],
        "same content (no threshold set)"
    );
    assert_eq!(answer["size"]["drift_score"], 0.0);
    assert_ne!(answer["a"]["id"], answer["b"]["id"]);

    let run = image_diff(Some(&docker_host), &["app:1", "nope:9"])?;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("image nope:9: not found in the engine"),
        "{}",
        run.stderr
    );
    Ok(())
}
