//! The snapshot content hash that heartbeats carry.

use prost::Message;
use sha2::{Digest, Sha256};

use crate::v1::{Container, HostSnapshot};

/// Hex SHA-256 of a snapshot's *content*: the encoded message with the fields
/// that change on every report (`sequence`, `collected_at`, `content_hash`)
/// cleared. Two snapshots of an unchanged host hash equal.
///
/// Deterministic because the contract uses no protobuf `map` fields and every
/// list is sorted by the agent.
pub fn content_hash(snapshot: &HostSnapshot) -> String {
    let mut hashing = Hashing::new();
    encode_content(snapshot, &mut hashing, |h| {
        for container in &snapshot.containers {
            prost::encoding::message::encode(10, container, &mut h.buf);
            h.spill();
        }
    });
    hashing.finish()
}

/// [`content_hash`] of the snapshot whose header is `header` (its
/// `containers` ignored) and whose containers are given, in order, as
/// each one's id, name and the rest of it (`content`, whose own id and
/// name are empty): how the aggregator checks a delta against the
/// containers it holds in that form, without putting the whole snapshot
/// together.
pub fn content_hash_of_parts<'a>(
    header: &HostSnapshot,
    containers: impl IntoIterator<Item = (&'a str, &'a str, &'a Container)>,
) -> String {
    let mut hashing = Hashing::new();
    encode_content(header, &mut hashing, |h| {
        for (id, name, rest) in containers {
            encode_container(id, name, rest, &mut h.buf);
            h.spill();
        }
    });
    hashing.finish()
}

/// How many encoded bytes wait before they are hashed.
const CHUNK: usize = 16 * 1024;

/// The encoded content, hashed a chunk at a time as it is written: the
/// buffer stays small enough to stay in cache and never grows by copying
/// (a 50-container snapshot is about 100 KB; growing one buffer to that
/// size copied it several times).
struct Hashing {
    sha: Sha256,
    buf: Vec<u8>,
}

impl Hashing {
    fn new() -> Self {
        Hashing {
            sha: Sha256::new(),
            buf: Vec::with_capacity(2 * CHUNK),
        }
    }

    /// Hashes what waits once it fills a chunk.
    fn spill(&mut self) {
        if self.buf.len() >= CHUNK {
            self.sha.update(&self.buf);
            self.buf.clear();
        }
    }

    fn finish(mut self) -> String {
        self.sha.update(&self.buf);
        hex::encode(self.sha.finalize())
    }
}

/// What prost encodes for field 10 holding a container of `id` and `name`
/// whose other fields are those of `rest` (its id and name empty): id and
/// name are fields 1 and 2, which come first.
fn encode_container(id: &str, name: &str, rest: &Container, buf: &mut Vec<u8>) {
    use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};
    debug_assert!(rest.id.is_empty() && rest.name.is_empty());
    let field_len = |tag, s: &str| {
        if s.is_empty() {
            0
        } else {
            key_len(tag) + encoded_len_varint(s.len() as u64) + s.len()
        }
    };
    let length = field_len(1, id) + field_len(2, name) + rest.encoded_len();
    encode_key(10, WireType::LengthDelimited, buf);
    encode_varint(length as u64, buf);
    for (tag, s) in [(1, id), (2, name)] {
        if !s.is_empty() {
            encode_key(tag, WireType::LengthDelimited, buf);
            encode_varint(s.len() as u64, buf);
            buf.extend_from_slice(s.as_bytes());
        }
    }
    rest.encode_raw(buf);
}

/// What prost encodes for `s` with `sequence`, `collected_at` and
/// `content_hash` cleared, written field by field in field-number order (as
/// the generated code does, with the same `prost::encoding` functions)
/// instead of encoding a cleared copy: the aggregator hashes every delta it
/// rebuilds, and copying a 50-container snapshot cost a tenth of a report.
/// Every field is named, so that a field added to the contract fails to
/// compile here until it is hashed or left out on purpose.
fn encode_content(
    s: &HostSnapshot,
    hashing: &mut Hashing,
    encode_containers: impl FnOnce(&mut Hashing),
) {
    use prost::encoding::{int32, message, string, uint32};
    let HostSnapshot {
        host_id,
        environment,
        labels,
        agent,
        sequence: _,
        collected_at: _,
        host,
        engine,
        engine_state,
        containers: _,
        content_hash: _,
        fingerprint_key_id,
        containers_dropped,
        config_files,
    } = s;
    let buf = &mut hashing.buf;
    if !host_id.is_empty() {
        string::encode(1, host_id, buf);
    }
    if !environment.is_empty() {
        string::encode(2, environment, buf);
    }
    for label in labels {
        message::encode(3, label, buf);
    }
    if let Some(agent) = agent {
        message::encode(4, agent, buf);
    }
    if let Some(host) = host {
        message::encode(7, host, buf);
    }
    if let Some(engine) = engine {
        message::encode(8, engine, buf);
    }
    if *engine_state != 0 {
        int32::encode(9, engine_state, buf);
    }
    encode_containers(hashing);
    let buf = &mut hashing.buf;
    if !fingerprint_key_id.is_empty() {
        string::encode(12, fingerprint_key_id, buf);
    }
    if *containers_dropped != 0 {
        uint32::encode(13, containers_dropped, buf);
    }
    for files in config_files {
        message::encode(14, files, &mut hashing.buf);
        hashing.spill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn snapshot() -> HostSnapshot {
        fixtures::snapshot("h1", "dev")
            .container(fixtures::container("shop").id("c1"))
            .build()
    }

    /// The definition: the hash of a cleared copy's encoding.
    fn hash_of_cleared_copy(snapshot: &HostSnapshot) -> String {
        let mut content = snapshot.clone();
        content.sequence = 0;
        content.collected_at = None;
        content.content_hash.clear();
        hex::encode(Sha256::digest(content.encode_to_vec()))
    }

    proptest::proptest! {
        /// Written field by field, the content is exactly the encoding of
        /// a cleared copy, whatever fields are set (the default values
        /// that proto3 leaves out among them).
        #[test]
        fn the_hash_is_that_of_the_cleared_copy(
            host in "[a-z]{0,3}",
            environment in "[a-z]{0,3}",
            labels in 0usize..3,
            agent in proptest::option::of("[a-z]{0,3}"),
            sequence in 0u64..5,
            kernel in proptest::option::of("[0-9.]{0,4}"),
            engine in proptest::option::of("[0-9.]{0,4}"),
            engine_state in -1i32..4,
            containers in proptest::collection::vec(("[a-z]{1,3}", "[a-z]{0,3}"), 0..4),
            key in "[a-z]{0,2}",
            dropped in 0u32..3,
            files in proptest::collection::vec("[a-z]{0,3}", 0..3),
        ) {
            use crate::v1::{AgentInfo, ContainerConfigFiles, EngineFacts, HostFacts, Label};
            let s = HostSnapshot {
                host_id: host,
                environment,
                labels: (0..labels)
                    .map(|i| Label { key: format!("k{i}"), value: String::new() })
                    .collect(),
                agent: agent.map(|boot_id| AgentInfo { boot_id, ..AgentInfo::default() }),
                sequence,
                collected_at: (sequence > 2).then_some(prost_types::Timestamp { seconds: 3, nanos: 1 }),
                host: kernel.map(|kernel_version| HostFacts { kernel_version, ..HostFacts::default() }),
                engine: engine.map(|server_version| EngineFacts { server_version, ..EngineFacts::default() }),
                engine_state,
                containers: containers
                    .into_iter()
                    .map(|(name, id)| fixtures::container(&name).id(id).name(name).build())
                    .collect(),
                content_hash: "anything".into(),
                fingerprint_key_id: key,
                containers_dropped: dropped,
                config_files: files
                    .into_iter()
                    .map(|container_id| ContainerConfigFiles { container_id, files: Vec::new() })
                    .collect(),
            };
            proptest::prop_assert_eq!(content_hash(&s), hash_of_cleared_copy(&s));
            // Each container as its id, name and the rest: the same hash.
            let rests: Vec<Container> = s
                .containers
                .iter()
                .map(|c| Container { id: String::new(), name: String::new(), ..c.clone() })
                .collect();
            let parts = s
                .containers
                .iter()
                .zip(&rests)
                .map(|(c, rest)| (c.id.as_str(), c.name.as_str(), rest));
            proptest::prop_assert_eq!(content_hash_of_parts(&s, parts), content_hash(&s));
        }
    }

    /// Content spanning many chunks, containers and configuration files
    /// larger than a chunk among them, hashes as its cleared copy does.
    #[test]
    fn content_larger_than_a_chunk_hashes_as_its_cleared_copy() {
        use crate::v1::ContainerConfigFiles;
        let mut s = snapshot();
        for i in 0..30 {
            let mut c = fixtures::container(&format!("s{i}"))
                .id(format!("c{i:02}"))
                .build();
            c.image.get_or_insert_default().reference = "r".repeat(i * 1_500);
            s.containers.push(c);
        }
        s.config_files = (0..3)
            .map(|i| ContainerConfigFiles {
                container_id: "x".repeat(i * 20_000),
                files: Vec::new(),
            })
            .collect();
        assert!(s.encoded_len() > 20 * CHUNK);
        assert_eq!(content_hash(&s), hash_of_cleared_copy(&s));
        let rests: Vec<Container> = s
            .containers
            .iter()
            .map(|c| Container {
                id: String::new(),
                name: String::new(),
                ..c.clone()
            })
            .collect();
        let parts = s.containers.iter().zip(&rests);
        let parts = parts.map(|(c, rest)| (c.id.as_str(), c.name.as_str(), rest));
        assert_eq!(content_hash_of_parts(&s, parts), hash_of_cleared_copy(&s));
    }

    #[test]
    fn volatile_fields_do_not_change_the_hash() {
        let a = snapshot();
        let mut b = snapshot();
        b.sequence = 42;
        b.collected_at = Some(prost_types::Timestamp {
            seconds: 7,
            nanos: 0,
        });
        b.content_hash = "whatever".into();
        assert_eq!(content_hash(&a), content_hash(&b));
    }

    #[test]
    fn content_changes_change_the_hash() {
        let a = snapshot();
        let mut b = snapshot();
        b.containers[0].name = "renamed".into();
        assert_ne!(content_hash(&a), content_hash(&b));
        assert_eq!(content_hash(&a).len(), 64);
    }
}
