//! Writes the seed corpora of the content targets (`fuzz/seeds/content_*`):
//! a realistic two-image `docker save` archive, its layers, package files
//! and version triples.
//!
//! `cd fuzz && cargo run --example content_seeds`; the output is committed.

use envparity_content::fixture::{FixtureImage, docker_save};
use envparity_content::tar::build::{dir, file, symlink, tar};

fn main() -> std::io::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let write = |target: &str, name: &str, data: &[u8]| -> std::io::Result<()> {
        let d = root.join(target);
        std::fs::create_dir_all(&d)?;
        std::fs::write(d.join(name), data)
    };
    let dpkg = "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nVersion: 3.0.11-1~deb12u2\nDescription: x\n more\n\nPackage: old\nStatus: deinstall ok config-files\nVersion: 1\n";
    let base = vec![
        dir("etc"),
        file("etc/os-release", b"ID=debian\nVERSION_ID=\"12\"\n"),
        file("var/lib/dpkg/status", dpkg.as_bytes()),
        file(
            "var/lib/dpkg/status.d/tzdata",
            b"Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n",
        ),
        symlink("usr/bin/python3", "python3.12"),
        file("usr/bin/python3.12", b"\x7fELF"),
    ];
    let top = vec![
        file("etc/.wh.os-release", b""),
        file("opt/app/.wh..wh..opq", b""),
        file(
            "usr/lib/python3.12/site-packages/requests-2.31.0.dist-info/METADATA",
            b"Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n",
        ),
        file(
            "app/node_modules/express/package.json",
            br#"{"name":"express","version":"4.18.2"}"#,
        ),
        file("lib/apk/db/installed", b"P:musl\nV:1.2.4-r2\nA:x86_64\n"),
    ];
    let a = FixtureImage::new("app:1")
        .env("PYTHON_VERSION=3.11.7")
        .layer("ADD rootfs /", base.clone());
    let b = FixtureImage::new("app:2")
        .env("PYTHON_VERSION=3.12.1")
        .layer("ADD rootfs /", base.clone())
        .layer("RUN pip install requests", top.clone());
    write("content_archive", "two-images.tar", &docker_save(&[a, b]))?;
    write("content_layer", "base.tar", &tar(&base))?;
    write("content_layer", "whiteouts.tar", &tar(&top))?;
    write("content_packages", "dpkg", dpkg.as_bytes())?;
    write(
        "content_packages",
        "apk",
        b"C:Q1=\nP:busybox\nV:1.36.1-r15\nA:x86_64\n\nP:musl\nV:1.2.4-r2\n",
    )?;
    write(
        "content_packages",
        "metadata",
        b"Metadata-Version: 2.1\nName: Typing_Extensions\nVersion: 4.9.0\n\nbody",
    )?;
    write(
        "content_packages",
        "env",
        b"PYTHON_VERSION=3.12.1\nNODE_VERSION=20.10.0\nPATH=/bin\n",
    )?;
    write(
        "content_versions",
        "debian",
        b"1:2.36-9+deb12u4\x002.36-9~rc1\x002.36-10",
    )?;
    write(
        "content_versions",
        "pep440",
        b"1.0a1.dev2\x001!0.1.post3\x001.0+local.7",
    )?;
    write(
        "content_versions",
        "semver",
        b"1.0.0-alpha.1\x001.0.0-beta.11\x001.0.0+build",
    )?;
    Ok(())
}
