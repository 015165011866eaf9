//! The snapshot content hash that heartbeats carry.

use prost::Message;
use sha2::{Digest, Sha256};

use crate::v1::HostSnapshot;

/// Hex SHA-256 of a snapshot's *content*: the encoded message with the fields
/// that change on every report (`sequence`, `collected_at`, `content_hash`)
/// cleared. Two snapshots of an unchanged host hash equal.
///
/// Deterministic because the contract uses no protobuf `map` fields and every
/// list is sorted by the agent.
pub fn content_hash(snapshot: &HostSnapshot) -> String {
    let mut content = snapshot.clone();
    content.sequence = 0;
    content.collected_at = None;
    content.content_hash.clear();
    hex::encode(Sha256::digest(content.encode_to_vec()))
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
