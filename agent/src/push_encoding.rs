//! A `PushSnapshot` request encoded straight from the agent's one shared
//! copy of the snapshot.
//!
//! The generated client takes a `PushSnapshotRequest` by value, which would
//! cost a whole copy of the snapshot per push (with 500 mounted files, about
//! 7.6 MB for 50,000 config keys) on top of the one the agent holds. This
//! codec encodes an `Arc<HostSnapshot>` as that request instead: the same
//! bytes (field 1, the snapshot, length-delimited), made from the shared
//! copy. It also reserves the message's exact size before encoding, so that
//! tonic's encode buffer holds one encoded message, not up to twice that
//! after growing by doubling (tonic has no setting that bounds it: a unary
//! message is encoded whole before it is framed; `max_encoding_message_size`
//! only refuses larger ones).
//!
//! The answer decodes as the generated client decodes it
//! ([`envparity_proto::codec`]), so an answer that does not decode fails the
//! same way.

use std::sync::Arc;

use bytes::BufMut;
use envparity_proto::v1::{HostSnapshot, PushSnapshotRequest, PushSnapshotResponse};
use tonic::Status;
use tonic::codec::{Codec, EncodeBuf, Encoder};

/// The field number of `PushSnapshotRequest.snapshot`.
const SNAPSHOT_FIELD: u32 = 1;

/// Encodes `Arc<HostSnapshot>` as a `PushSnapshotRequest`; decodes a
/// `PushSnapshotResponse`.
#[derive(Debug, Default, Clone)]
pub struct SharedPushCodec;

impl Codec for SharedPushCodec {
    type Encode = Arc<HostSnapshot>;
    type Decode = PushSnapshotResponse;
    type Encoder = SharedPushEncoder;
    type Decoder = envparity_proto::codec::Decoder<PushSnapshotResponse>;

    fn encoder(&mut self) -> Self::Encoder {
        SharedPushEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        envparity_proto::codec::Codec::<PushSnapshotRequest, PushSnapshotResponse>::default()
            .decoder()
    }
}

/// The encoding half of [`SharedPushCodec`].
#[derive(Debug, Default, Clone)]
pub struct SharedPushEncoder;

impl Encoder for SharedPushEncoder {
    type Item = Arc<HostSnapshot>;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.reserve(encoded_len(&item));
        encode(&item, dst);
        Ok(())
    }
}

/// The length of `PushSnapshotRequest { snapshot: Some(snapshot) }`.
pub fn encoded_len(snapshot: &HostSnapshot) -> usize {
    prost::encoding::message::encoded_len(SNAPSHOT_FIELD, snapshot)
}

/// Writes `PushSnapshotRequest { snapshot: Some(snapshot) }` to `buf`.
pub fn encode(snapshot: &HostSnapshot, buf: &mut impl BufMut) {
    prost::encoding::message::encode(SNAPSHOT_FIELD, snapshot, buf);
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn a_shared_snapshot_encodes_to_the_very_bytes_of_the_generated_request() {
        let snapshot = envparity_proto::fixtures::snapshot("h1", "staging")
            .container(envparity_proto::fixtures::container("shop").id("c1"))
            .container(envparity_proto::fixtures::container("cart").id("c2"))
            .build();
        let generated = PushSnapshotRequest {
            snapshot: Some(snapshot.clone()),
        }
        .encode_to_vec();
        let mut ours = Vec::new();
        encode(&snapshot, &mut ours);
        assert_eq!(ours, generated);
        assert_eq!(encoded_len(&snapshot), generated.len());
        let empty = HostSnapshot::default();
        let mut ours = Vec::new();
        encode(&empty, &mut ours);
        assert_eq!(
            ours,
            PushSnapshotRequest {
                snapshot: Some(empty)
            }
            .encode_to_vec()
        );
    }
}
