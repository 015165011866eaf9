//! Writes the `snapshot` target's seed corpus (`fuzz/seeds/snapshot/`):
//! encoded reports and heartbeats an agent would send to the baseline
//! fleet, each behind the byte that selects raw-protobuf input (0).
//!
//! `cd fuzz && cargo run --example seeds`; the output is committed.

use envparity_fuzz::report::{baseline, dict, heartbeat_for, host};
use envparity_proto::v1::{EngineState, PushSnapshotRequest};
use prost::Message;

fn main() -> std::io::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/snapshot");
    std::fs::create_dir_all(&dir)?;
    let write = |name: &str, message: &dyn Fn() -> Vec<u8>| {
        let mut bytes = vec![0u8];
        bytes.extend(message());
        std::fs::write(dir.join(name), bytes)
    };
    for (i, mut s) in baseline().into_iter().enumerate() {
        // The next report of each host (a new sequence), a new agent run,
        // and a report while the engine is unreachable.
        s.sequence = 2;
        let next = s.clone();
        write(&format!("next-{i}.pb"), &|| {
            PushSnapshotRequest {
                snapshot: Some(next.clone()),
            }
            .encode_to_vec()
        })?;
        write(&format!("heartbeat-{i}.pb"), &|| {
            heartbeat_for(&next).encode_to_vec()
        })?;
        let mut rebooted = s.clone();
        rebooted.agent.as_mut().expect("agent").boot_id = dict::BOOT_IDS[1].to_owned();
        rebooted.sequence = 1;
        write(&format!("rebooted-{i}.pb"), &|| {
            PushSnapshotRequest {
                snapshot: Some(rebooted.clone()),
            }
            .encode_to_vec()
        })?;
        let mut unreachable = s;
        unreachable.engine_state = EngineState::Unreachable as i32;
        unreachable.containers.clear();
        write(&format!("unreachable-{i}.pb"), &|| {
            PushSnapshotRequest {
                snapshot: Some(unreachable.clone()),
            }
            .encode_to_vec()
        })?;
    }
    // A host in a new environment, running one service of the others.
    let mut qa = host("qa-1", "qa", baseline()[1].containers.clone());
    qa.containers.truncate(1);
    write("new-environment.pb", &|| {
        PushSnapshotRequest {
            snapshot: Some(qa.clone()),
        }
        .encode_to_vec()
    })?;
    Ok(())
}
