use super::*;
use crate::fixture::{FixtureImage, docker_save};
use crate::tar::build::*;

fn read(data: &[u8], limits: &Limits) -> Result<Archive, ContentError> {
    read_archive(data, "img.tar", limits, &DigestKey::Plain)
}

fn app() -> FixtureImage {
    FixtureImage::new("app:1")
        .env("NODE_VERSION=20.10.0")
        .layer(
            "ADD rootfs /",
            vec![dir("etc"), file("etc/os-release", b"ID=alpine\n")],
        )
        .layer("COPY . /app", vec![file("app/index.js", b"1")])
}

#[test]
fn a_docker_save_archive_reads_back_its_images_and_layers() {
    let base = app();
    let other = FixtureImage::new("app:2").layer("ADD rootfs /", base.layers[0].1.clone());
    let archive = read(&docker_save(&[base, other]), &Limits::default()).unwrap();
    assert_eq!(archive.images.len(), 2);
    let one = archive.image("app:1").unwrap();
    assert_eq!(one.layers.len(), 2);
    assert_eq!(one.config.created_by[1].as_deref(), Some("COPY . /app"));
    let two = archive.image("app:2").unwrap();
    // The shared layer was read once and is shared.
    assert!(Arc::ptr_eq(&one.layers[0], &two.layers[0]));
    assert_eq!(archive.image(&one.id[..19]).unwrap().id, one.id);
    let err = archive.image("nope").unwrap_err().to_string();
    assert_eq!(
        err,
        "img.tar: no image \"nope\" in it (it holds: app:1, app:2)"
    );
    assert!(archive.only().is_err());
}

#[test]
fn a_tar_bomb_over_the_byte_cap_is_an_error() {
    let bomb =
        FixtureImage::new("bomb:1").layer("RUN dd", vec![file("zeros", &vec![0u8; 200_000])]);
    let data = docker_save(&[bomb]);
    let limits = Limits {
        max_bytes: 100_000,
        ..Limits::default()
    };
    let err = read(&data, &limits).unwrap_err();
    assert!(
        matches!(
            err,
            ContentError::OverCap {
                what: "bytes",
                cap: 100_000,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().starts_with("img.tar: "), "{err}");
    assert!(read(&data, &Limits::default()).is_ok());
}

#[test]
fn too_many_entries_or_layers_are_errors() {
    let data = docker_save(&[app()]);
    let few = Limits {
        max_entries: 5,
        ..Limits::default()
    };
    let err = read(&data, &few).unwrap_err();
    assert!(matches!(
        err,
        ContentError::OverCap {
            what: "entries",
            cap: 5,
            ..
        }
    ));
    let one_layer = Limits {
        max_layers: 1,
        ..Limits::default()
    };
    let err = read(&data, &one_layer).unwrap_err();
    assert!(
        matches!(err, ContentError::OverCap { what: "layers", .. }),
        "{err}"
    );
}

#[test]
fn a_layer_link_loop_is_an_error_not_a_hang() {
    let layer = tar(&[file("a", b"1")]);
    let id = hex::encode(Sha256::digest(&layer));
    let config = serde_json::to_vec(&serde_json::json!({
        "os": "linux", "architecture": "amd64",
        "rootfs": {"diff_ids": [format!("sha256:{id}")]},
    }))
    .unwrap();
    let manifest = br#"[{"Config":"c.json","RepoTags":["loop:1"],"Layers":["x/layer.tar"]}]"#;
    let data = tar(&[
        symlink("x/layer.tar", "../y/layer.tar"),
        symlink("y/layer.tar", "../x/layer.tar"),
        file("c.json", &config),
        file("manifest.json", manifest),
    ]);
    let err = read(&data, &Limits::default()).unwrap_err().to_string();
    assert_eq!(err, "img.tar: x/layer.tar: a loop of links");
}

#[test]
fn a_layer_that_is_not_its_diff_id_or_is_missing_is_an_error() {
    let mut data = docker_save(&[app()]);
    // Change one byte of file content inside the first layer: its tar
    // still reads, but its digest no longer is the config's DiffID.
    let at = data.windows(9).position(|w| w == b"ID=alpine").unwrap();
    data[at] = b'X';
    let err = read(&data, &Limits::default()).unwrap_err().to_string();
    assert!(err.contains("but the config says sha256:"), "{err}");

    let manifest = br#"[{"Config":"c.json","RepoTags":["x:1"],"Layers":["gone/layer.tar"]}]"#;
    let data = tar(&[file("c.json", b"{}"), file("manifest.json", manifest)]);
    let err = read(&data, &Limits::default()).unwrap_err().to_string();
    assert_eq!(
        err,
        "img.tar: gone/layer.tar is named but not in the archive"
    );
}

#[test]
fn garbage_and_truncated_archives_are_clear_errors() {
    let err = read(b"this is not a tar archive at all", &Limits::default()).unwrap_err();
    assert!(matches!(err, ContentError::Corrupt { .. }), "{err}");
    let data = docker_save(&[app()]);
    let err = read(&data[..data.len() / 2], &Limits::default())
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("img.tar"), "{err}");
    let err = read(&tar(&[file("hello.txt", b"hi")]), &Limits::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("neither manifest.json nor index.json"),
        "{err}"
    );
}

#[test]
fn an_oci_layout_is_read_through_its_index() {
    let layer = tar(&[file("etc/os-release", b"ID=debian\n")]);
    let layer_id = hex::encode(Sha256::digest(&layer));
    let config = serde_json::to_vec(&serde_json::json!({
        "os": "linux", "architecture": "arm64",
        "rootfs": {"diff_ids": [format!("sha256:{layer_id}")]},
        "history": [{"created_by": "ADD x /"}],
    }))
    .unwrap();
    let config_id = hex::encode(Sha256::digest(&config));
    let manifest = serde_json::to_vec(&serde_json::json!({
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{config_id}")},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": format!("sha256:{layer_id}")}],
    }))
    .unwrap();
    let manifest_id = hex::encode(Sha256::digest(&manifest));
    let index = serde_json::to_vec(&serde_json::json!({
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{manifest_id}"),
            "annotations": {"io.containerd.image.name": "docker.io/library/deb:12"}}],
    }))
    .unwrap();
    let data = tar(&[
        file(&format!("blobs/sha256/{layer_id}"), &layer),
        file(&format!("blobs/sha256/{config_id}"), &config),
        file(&format!("blobs/sha256/{manifest_id}"), &manifest),
        file("index.json", &index),
    ]);
    let archive = read(&data, &Limits::default()).unwrap();
    let image = archive.only().unwrap();
    assert_eq!(image.names, vec!["docker.io/library/deb:12".to_owned()]);
    assert_eq!(image.config.architecture, "arm64");
    assert_eq!(image.id, format!("sha256:{config_id}"));
}

#[test]
fn many_small_json_files_are_capped_together() {
    let mut json = b"{\"a\":\"".to_vec();
    json.resize(1000, b'x');
    json.extend_from_slice(b"\"}");
    let items: Vec<_> = (0..20).map(|i| file(&format!("{i}.json"), &json)).collect();
    let limits = Limits {
        max_json: 1024,
        ..Limits::default()
    };
    let err = read(&tar(&items), &limits).unwrap_err();
    assert_eq!(
        err.to_string(),
        "img.tar: over the cap of 8192 bytes of JSON files; not read further"
    );
}
