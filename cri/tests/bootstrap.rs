//! Regenerates the checked-in code from the .proto copies and fails when it
//! differs from what is committed, so the protos and the code never drift.
//! Pure Rust (protox): no `protoc`.
//!
//! After editing a .proto file, refresh the checked-in code with:
//! `ENVPARITY_BLESS=1 cargo test -p envparity-cri --test bootstrap`

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "runtime/v1/api.proto",
    "containerd/services/events/v1/events.proto",
];

const GENERATED: &[&str] = &["runtime.v1.rs", "containerd.services.events.v1.rs"];

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
    tonic_prost_build::configure()
        // Clients only: the agent and the harness call runtimes, never serve.
        .build_client(true)
        .build_server(false)
        .emit_rerun_if_changed(false)
        .out_dir(out.path())
        .compile_fds(fds)
        .expect("code generation");

    let committed = root.join("src/generated");
    let bless = std::env::var_os("ENVPARITY_BLESS").is_some();
    let mut stale = Vec::new();
    for name in GENERATED {
        let fresh = std::fs::read(out.path().join(name)).expect("generated file");
        let path = committed.join(name);
        if std::fs::read(&path).ok().as_deref() != Some(fresh.as_slice()) {
            if bless {
                std::fs::write(&path, &fresh).expect("write generated file");
            } else {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "checked-in generated code is stale: {stale:?}; run \
         `ENVPARITY_BLESS=1 cargo test -p envparity-cri --test bootstrap` and commit the result"
    );
}
