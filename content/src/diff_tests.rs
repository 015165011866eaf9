use super::*;
use crate::fixture::{FixtureImage, docker_save};
use crate::tar::build::*;
use crate::threshold::{SizeLimit, ThresholdMode, Thresholds, judge};
use crate::{DigestKey, Limits, default_ignores, read_archive};

fn base_layer() -> Vec<Item> {
    vec![
        dir("etc"),
        file("etc/os-release", b"ID=debian\nVERSION_ID=\"12\"\n"),
        file(
            "var/lib/dpkg/status",
            b"Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nVersion: 3.0.11-1~deb12u1\n\n\
Package: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2024a-0+deb12u1\n",
        ),
        file("bin/sh", b"#!busybox"),
    ]
}

fn images() -> (ImageContent, ImageContent) {
    let a = FixtureImage::new("app:1")
        .env("PYTHON_VERSION=3.11.7")
        .layer("ADD rootfs /", base_layer())
        .layer(
            "COPY app /app",
            vec![file("app/main.py", b"print(1)"), file("var/cache/x", b"1")],
        );
    let b = FixtureImage::new("app:2")
        .env("PYTHON_VERSION=3.12.1")
        .layer("ADD rootfs /", base_layer())
        .layer(
            "RUN apt-get install libssl3",
            vec![
                file(
                    "var/lib/dpkg/status",
                    b"Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nVersion: 3.0.11-1~deb12u2\n\n\
Package: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2024a-0+deb12u1\n\n\
Package: curl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 7.88.1-10+deb12u5\n",
                ),
                file("app/main.py", b"print(2)"),
                file("app/big.bin", &vec![0u8; 100_000]),
                file("var/cache/x", b"2"),
            ],
        );
    let archive = read_archive(
        &docker_save(&[a, b])[..],
        "two.tar",
        &Limits::default(),
        &DigestKey::Plain,
    )
    .unwrap();
    let limits = Limits::default();
    (
        ImageContent::analyse("app:1", archive.image("app:1").unwrap(), &limits),
        ImageContent::analyse("app:2", archive.image("app:2").unwrap(), &limits),
    )
}

#[test]
fn files_packages_runtimes_and_layers_differ_as_built() {
    let (a, b) = images();
    let d = diff(&a, &b, &default_ignores());
    assert_eq!(d.files.added, 1, "{:?}", d.file_changes);
    assert_eq!(d.files.changed, 2);
    assert_eq!(d.files.removed, 0);
    assert_eq!(d.files.ignored, 1, "var/cache/x is ignored by default");
    let big = d
        .file_changes
        .iter()
        .find(|c| c.path == "app/big.bin")
        .unwrap();
    assert_eq!(big.change, FileChangeKind::Added);
    assert_eq!(big.layer, 1);
    let main = d
        .file_changes
        .iter()
        .find(|c| c.path == "app/main.py")
        .unwrap();
    assert_eq!(main.what, vec!["content"]);
    assert_eq!(
        d.files.bytes_changed,
        100_000
            + 8
            + d.file_changes
                .iter()
                .find(|c| c.path.ends_with("status"))
                .unwrap()
                .bytes()
    );
    assert!(d.size_delta > 100_000);
    assert!(
        d.drift_score > 0.9 && d.drift_score <= 1.0,
        "{}",
        d.drift_score
    );

    let apt = d
        .packages
        .iter()
        .find(|p| p.ecosystem == Ecosystem::Apt)
        .unwrap();
    assert_eq!(
        apt.added,
        vec![PackageVersion {
            name: "curl:amd64".into(),
            version: "7.88.1-10+deb12u5".into()
        }]
    );
    assert_eq!(apt.changed.len(), 1);
    assert_eq!(apt.changed[0].direction, "upgrade");
    assert_eq!(d.packages_changed(), 2);

    assert_eq!(
        d.runtimes,
        vec![RuntimePair {
            name: "python".into(),
            a: Some("3.11.7".into()),
            b: Some("3.12.1".into()),
            differs: true
        }]
    );
    assert_eq!(d.layers.shared, 1);
    assert_eq!(d.layers.diverges_at, Some(1));
    assert_eq!(
        d.layers.created_by_b.as_deref(),
        Some("RUN apt-get install libssl3")
    );
    assert_eq!(d.top_dirs[0].dir, "app");
}

#[test]
fn an_image_against_itself_is_no_change_and_within() {
    let (a, _) = images();
    let d = diff(&a, &a, &default_ignores());
    assert!(!d.differs());
    assert_eq!(d.drift_score, 0.0);
    assert_eq!(d.layers.diverges_at, None);
    assert!(judge(&d, &Thresholds::default()).within);
}

#[test]
fn thresholds_name_the_figures_and_combine_by_mode() {
    let (a, b) = images();
    let d = diff(&a, &b, &default_ignores());
    let t = Thresholds {
        max_files_changed: Some(2),
        max_size_delta: Some(SizeLimit::Bytes(50 * 1024)),
        max_packages_changed: Some(5),
        mode: ThresholdMode::Any,
    };
    let v = judge(&d, &t);
    assert!(!v.within);
    assert_eq!(
        v.summary,
        format!(
            "3 files > 2; {} > 50 KiB",
            crate::threshold::signed_bytes(d.size_delta)
        )
    );
    let v = judge(
        &d,
        &Thresholds {
            mode: ThresholdMode::All,
            ..t.clone()
        },
    );
    assert!(v.within, "{}", v.summary);
    assert!(
        v.summary
            .starts_with("within thresholds (mode all): only 3 files > 2"),
        "{}",
        v.summary
    );
    let v = judge(
        &d,
        &Thresholds {
            max_files_changed: Some(3),
            max_size_delta: Some(SizeLimit::Percent(50_000.0)),
            ..t
        },
    );
    assert!(v.within, "{}", v.summary);
    assert!(!judge(&d, &Thresholds::default()).within);
}

#[test]
fn removals_count_the_first_images_bytes_and_layer() {
    let (a, b) = images();
    let d = diff(&b, &a, &[]);
    let big = d
        .file_changes
        .iter()
        .find(|c| c.path == "app/big.bin")
        .unwrap();
    assert_eq!(big.change, FileChangeKind::Removed);
    assert_eq!(big.bytes(), 100_000);
    assert!(d.size_delta < -100_000);
    assert_eq!(d.files.ignored, 0);
    let apt = d
        .packages
        .iter()
        .find(|p| p.ecosystem == Ecosystem::Apt)
        .unwrap();
    assert_eq!(apt.changed[0].direction, "downgrade");
}
