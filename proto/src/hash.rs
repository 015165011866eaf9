//! The snapshot content hash that heartbeats carry, in its two forms.
//!
//! **Whole** (64 hex digits, what every agent sends): SHA-256 over the
//! snapshot's content encoded. **By container** (`v2:` then 64 hex digits):
//! SHA-256 over the same encoding with each container replaced by its id,
//! its name and the SHA-256 of the rest of it ([`content_digest`]). Both say
//! whether two snapshots hold the same content; the second lets the
//! aggregator check a delta by hashing the containers that changed and the
//! digests it keeps of the others, instead of the whole host (a third of its
//! CPU per delta in the whole form). An agent hashes by container only once
//! an aggregator's acknowledgement says it checks that form
//! (`PushSnapshotResponse.hashes_by_container`), so that older aggregators
//! keep getting the form they know.

use prost::Message;
use sha2::{Digest, Sha256};

use crate::v1::{Container, HostSnapshot};

/// The form of a content hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashForm {
    /// SHA-256 over the whole content: 64 hex digits.
    #[default]
    Whole,
    /// SHA-256 over the header and each container's id, name and digest:
    /// [`BY_CONTAINER`] then 64 hex digits.
    ByContainer,
}

impl HashForm {
    /// The form `hash` is written in; `None` when it is in neither.
    pub fn of(hash: &str) -> Option<HashForm> {
        let hex = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
        match hash.strip_prefix(BY_CONTAINER) {
            Some(rest) if hex(rest) => Some(HashForm::ByContainer),
            None if hex(hash) => Some(HashForm::Whole),
            _ => None,
        }
    }
}

/// What starts a content hash made by container.
pub const BY_CONTAINER: &str = "v2:";

/// The SHA-256 of a container's content: its encoding without its id and
/// name (fields 1 and 2).
pub type ContentDigest = [u8; 32];

/// [`ContentDigest`] of `container`, whatever its id and name (they are
/// left out without copying it: they are encoded first).
pub fn content_digest(container: &Container) -> ContentDigest {
    let skip = id_and_name_len(&container.id, &container.name);
    let mut buf = Vec::with_capacity(container.encoded_len());
    container.encode_raw(&mut buf);
    Sha256::digest(&buf[skip..]).into()
}

/// The content hash of `snapshot` in `form`.
pub fn content_hash_in(form: HashForm, snapshot: &HostSnapshot) -> String {
    match form {
        HashForm::Whole => content_hash(snapshot),
        HashForm::ByContainer => {
            let digests: Vec<ContentDigest> =
                snapshot.containers.iter().map(content_digest).collect();
            let parts = snapshot
                .containers
                .iter()
                .zip(&digests)
                .map(|(c, d)| (c.id.as_str(), c.name.as_str(), d));
            content_hash_of_digests(snapshot, parts)
        }
    }
}

/// Whether `snapshot` holds the content its `content_hash` claims, in the
/// form that hash is written in (`false` for a hash in neither form).
pub fn makes_its_hash(snapshot: &HostSnapshot) -> bool {
    HashForm::of(&snapshot.content_hash)
        .is_some_and(|form| content_hash_in(form, snapshot) == snapshot.content_hash)
}

/// The content hash by container of the snapshot whose header is `header`
/// (its `containers` ignored) and whose containers are given, in order, as
/// each one's id, name and [`ContentDigest`]: how the aggregator checks a
/// delta with the digests it keeps.
pub fn content_hash_of_digests<'a>(
    header: &HostSnapshot,
    containers: impl IntoIterator<Item = (&'a str, &'a str, &'a ContentDigest)>,
) -> String {
    use prost::encoding::{WireType, encode_key, encode_varint, key_len};
    let mut hashing = Hashing::new();
    encode_content(header, &mut hashing, |h| {
        for (id, name, digest) in containers {
            // Field 10 holding fields 1 (id), 2 (name) and 3 (digest).
            let length = id_and_name_len(id, name) + key_len(3) + 1 + digest.len();
            encode_key(10, WireType::LengthDelimited, &mut h.buf);
            encode_varint(length as u64, &mut h.buf);
            encode_id_and_name(id, name, &mut h.buf);
            encode_bytes(3, digest, &mut h.buf);
            h.spill();
        }
    });
    format!("{BY_CONTAINER}{}", hashing.finish())
}

/// How many bytes a container's id and name take encoded (fields 1 and 2,
/// each left out when empty).
fn id_and_name_len(id: &str, name: &str) -> usize {
    use prost::encoding::{encoded_len_varint, key_len};
    let field_len = |tag, s: &str| {
        if s.is_empty() {
            0
        } else {
            key_len(tag) + encoded_len_varint(s.len() as u64) + s.len()
        }
    };
    field_len(1, id) + field_len(2, name)
}

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
    use prost::encoding::{WireType, encode_key, encode_varint};
    debug_assert!(rest.id.is_empty() && rest.name.is_empty());
    let length = id_and_name_len(id, name) + rest.encoded_len();
    encode_key(10, WireType::LengthDelimited, buf);
    encode_varint(length as u64, buf);
    encode_id_and_name(id, name, buf);
    rest.encode_raw(buf);
}

/// Fields 1 (`id`) and 2 (`name`) as prost encodes them: left out when
/// empty.
fn encode_id_and_name(id: &str, name: &str, buf: &mut Vec<u8>) {
    for (tag, s) in [(1, id), (2, name)] {
        if !s.is_empty() {
            encode_bytes(tag, s.as_bytes(), buf);
        }
    }
}

/// A length-delimited field `tag` holding `bytes`.
fn encode_bytes(tag: u32, bytes: &[u8], buf: &mut Vec<u8>) {
    use prost::encoding::{WireType, encode_key, encode_varint};
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(bytes.len() as u64, buf);
    buf.extend_from_slice(bytes);
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

    /// A snapshot of 30 containers, most larger than a chunk.
    fn larger_than_chunks() -> HostSnapshot {
        let mut s = snapshot();
        for i in 0..30 {
            let mut c = fixtures::container(&format!("s{i}"))
                .id(format!("c{i:02}"))
                .build();
            c.image.get_or_insert_default().reference = "r".repeat(i * 1_500);
            s.containers.push(c);
        }
        s
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
        let mut s = larger_than_chunks();
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

    /// A container as the form by container hashes it.
    #[derive(Clone, PartialEq, prost::Message)]
    struct Entry {
        #[prost(string, tag = "1")]
        id: String,
        #[prost(string, tag = "2")]
        name: String,
        #[prost(bytes = "vec", tag = "3")]
        digest: Vec<u8>,
    }

    /// The definition of the form by container: the cleared copy's fields
    /// before `containers`, each container as an [`Entry`] of its id, name
    /// and the SHA-256 of a copy with them cleared, then the fields after.
    fn hash_by_container_of_cleared_copy(snapshot: &HostSnapshot) -> String {
        let mut before = snapshot.clone();
        before.sequence = 0;
        before.collected_at = None;
        before.content_hash.clear();
        before.containers.clear();
        let mut after = HostSnapshot {
            fingerprint_key_id: std::mem::take(&mut before.fingerprint_key_id),
            containers_dropped: std::mem::take(&mut before.containers_dropped),
            config_files: std::mem::take(&mut before.config_files),
            ..HostSnapshot::default()
        };
        after.containers.clear();
        let mut bytes = before.encode_to_vec();
        for c in &snapshot.containers {
            let rest = Container {
                id: String::new(),
                name: String::new(),
                ..c.clone()
            };
            let entry = Entry {
                id: c.id.clone(),
                name: c.name.clone(),
                digest: Sha256::digest(rest.encode_to_vec()).to_vec(),
            };
            prost::encoding::message::encode(10, &entry, &mut bytes);
        }
        bytes.extend(after.encode_to_vec());
        format!("{BY_CONTAINER}{}", hex::encode(Sha256::digest(bytes)))
    }

    /// The form by container is its definition, on content larger than a
    /// chunk too, and comes back from the digests alone; it is not the
    /// whole form, and each form is recognised as itself.
    #[test]
    fn the_hash_by_container_is_its_definition() {
        use crate::v1::ContainerConfigFiles;
        let mut s = larger_than_chunks();
        s.containers[3].name = String::new();
        s.config_files = vec![ContainerConfigFiles {
            container_id: "c01".into(),
            files: Vec::new(),
        }];
        s.fingerprint_key_id = "k1".into();
        s.containers_dropped = 2;
        let by_container = content_hash_in(HashForm::ByContainer, &s);
        assert_eq!(by_container, hash_by_container_of_cleared_copy(&s));
        let digests: Vec<ContentDigest> = s.containers.iter().map(content_digest).collect();
        let parts = s
            .containers
            .iter()
            .zip(&digests)
            .map(|(c, d)| (c.id.as_str(), c.name.as_str(), d));
        assert_eq!(content_hash_of_digests(&s, parts), by_container);
        let whole = content_hash_in(HashForm::Whole, &s);
        assert_eq!(whole, content_hash(&s));
        assert_eq!(HashForm::of(&whole), Some(HashForm::Whole));
        assert_eq!(HashForm::of(&by_container), Some(HashForm::ByContainer));
        assert_eq!(by_container[BY_CONTAINER.len()..].len(), 64);
        assert_ne!(&by_container[BY_CONTAINER.len()..], whole);
        for not_a_hash in ["", "v2:", "v2:abc", &whole[1..], &format!("v3:{whole}")] {
            assert_eq!(HashForm::of(not_a_hash), None, "{not_a_hash:?}");
        }
    }

    /// Each form checks what it should: a content, id or name change
    /// changes it; volatile fields do not.
    #[test]
    fn the_hash_by_container_follows_the_content() {
        let mut s = snapshot();
        s.content_hash = content_hash_in(HashForm::ByContainer, &s);
        assert!(makes_its_hash(&s));
        let changes: [fn(&mut HostSnapshot); 4] = [
            |s| s.containers[0].name.push('x'),
            |s| s.containers[0].id.push('x'),
            |s| s.containers[0].unmanaged = true,
            |s| s.environment.push('x'),
        ];
        for change in changes {
            let mut other = s.clone();
            change(&mut other);
            assert!(!makes_its_hash(&other), "{other:?}");
        }
        let mut volatile = s.clone();
        volatile.sequence += 7;
        volatile.collected_at = None;
        assert!(makes_its_hash(&volatile));
        volatile.content_hash = content_hash(&volatile);
        assert!(makes_its_hash(&volatile));
        volatile.content_hash = "v2:nothex".into();
        assert!(!makes_its_hash(&volatile));
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
