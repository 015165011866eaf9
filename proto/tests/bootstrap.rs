//! Regenerates the checked-in code from `envparity/v1/*.proto` and fails when it
//! differs from what is committed, so the contract and the code never drift.
//!
//! The generator is pure Rust (protox parses the .proto files), so neither this
//! test nor a plain `cargo build` needs `protoc`.
//!
//! After editing a .proto file, refresh the checked-in code with:
//! `ENVPARITY_BLESS=1 cargo test -p envparity-proto --test bootstrap`

use std::path::{Path, PathBuf};

const PROTOS: &[&str] = &[
    "envparity/v1/snapshot.proto",
    "envparity/v1/report.proto",
    "envparity/v1/query.proto",
];

#[test]
fn generated_code_matches_the_proto_files() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let fds = protox::Compiler::new([&root])
        .expect("proto include path")
        .include_source_info(true)
        .include_imports(true)
        .open_files(PROTOS)
        .unwrap_or_else(|e| panic!("proto files do not compile: {e:?}"))
        .file_descriptor_set();

    let out = tempfile::tempdir().expect("temp dir");
    let descriptor = out.path().join("envparity_descriptor.bin");
    std::fs::write(&descriptor, prost::Message::encode_to_vec(&fds)).expect("write descriptor");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .codec_path("crate::codec::Codec")
        .emit_rerun_if_changed(false)
        .out_dir(out.path())
        .compile_fds(fds)
        .expect("code generation");

    let committed = root.join("src/generated");
    let bless = std::env::var_os("ENVPARITY_BLESS").is_some();
    let mut stale = Vec::new();
    for name in ["envparity.v1.rs", "envparity_descriptor.bin"] {
        let fresh = std::fs::read(out.path().join(name)).expect("generated file");
        let path = committed.join(name);
        if std::fs::read(&path).ok().as_deref() != Some(fresh.as_slice()) {
            if bless {
                std::fs::write(&path, &fresh).expect("write generated file");
            } else {
                stale.push(display(&path));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "checked-in generated code is stale: {stale:?}; run \
         `ENVPARITY_BLESS=1 cargo test -p envparity-proto --test bootstrap` and commit the result"
    );
}

fn display(path: &Path) -> String {
    path.display().to_string()
}
