//! What every backend shares of reading hosts back: a host row (its
//! snapshot's header) and its container rows become one [`StoredHost`],
//! checked the same way, so that a damaged row is the same error on SQLite
//! and on PostgreSQL.

use std::collections::HashMap;
use std::sync::Arc;

use envparity_proto::time::from_unix_millis;
use envparity_proto::v1::{Container, EngineState, HostSnapshot};
use prost::Message;

use super::StoredHost;

/// A `hosts` row joined with its liveness.
#[derive(Debug)]
pub(super) struct HostRow {
    pub host_id: String,
    /// The snapshot's header (protobuf, no containers).
    pub snapshot: Vec<u8>,
    /// The containers' order as a JSON list of ids, when not by id.
    pub order: Option<String>,
    pub received_ms: i64,
    pub seen_ms: i64,
    pub engine_state: i32,
}

/// A `containers` row.
#[derive(Debug)]
pub(super) struct ContainerRow {
    pub host_id: String,
    pub container_id: String,
    /// The container (protobuf).
    pub body: Vec<u8>,
}

/// Why a stored host cannot be read back: its id (or the id a stray
/// container row names) and the reason.
#[derive(Debug)]
pub(super) struct Damaged {
    pub host_id: String,
    pub reason: String,
}

/// Assembles hosts from `hosts` (ascending by host id) and `containers`
/// (ascending by host id, then container id), as both backends read them.
/// A read error of either stream is passed through as `E`.
pub(super) fn assemble<E>(
    hosts: impl IntoIterator<Item = Result<HostRow, E>>,
    containers: impl IntoIterator<Item = Result<ContainerRow, E>>,
) -> Result<Result<Vec<StoredHost>, Damaged>, E> {
    let mut containers = containers.into_iter().peekable();
    let mut out = Vec::new();
    for row in hosts {
        let row = row?;
        let host_id = row.host_id;
        let corrupt = |reason: String| Damaged {
            host_id: host_id.clone(),
            reason,
        };
        let mut snapshot = match HostSnapshot::decode(row.snapshot.as_slice()) {
            Ok(s) => s,
            Err(e) => return Ok(Err(corrupt(e.to_string()))),
        };
        if snapshot.host_id != host_id {
            return Ok(Err(corrupt(format!(
                "row holds the snapshot of host {:?}",
                snapshot.host_id
            ))));
        }
        if !snapshot.containers.is_empty() {
            return Ok(Err(corrupt(
                "the host row holds containers; they belong in the containers table".into(),
            )));
        }
        while let Some(next) = containers.peek() {
            let c = match next {
                Ok(c) => c,
                Err(_) => {
                    return Err(containers
                        .next()
                        .and_then(Result::err)
                        .expect("an error row"));
                }
            };
            if c.host_id.as_str() < host_id.as_str() {
                return Ok(Err(Damaged {
                    host_id: c.host_id.clone(),
                    reason: format!("container {:?} belongs to no stored host", c.container_id),
                }));
            }
            if c.host_id != host_id {
                break;
            }
            let id = &c.container_id;
            let container = match Container::decode(c.body.as_slice()) {
                Ok(container) => container,
                Err(e) => return Ok(Err(corrupt(format!("container {id:?}: {e}")))),
            };
            if container.id != *id {
                return Ok(Err(corrupt(format!(
                    "the row of container {id:?} holds container {:?}",
                    container.id
                ))));
            }
            snapshot.containers.push(container);
            containers.next();
        }
        if let Some(order) = row.order {
            match in_order(std::mem::take(&mut snapshot.containers), &order) {
                Ok(ordered) => snapshot.containers = ordered,
                Err(reason) => return Ok(Err(corrupt(reason))),
            }
        }
        out.push(StoredHost {
            snapshot: Arc::new(snapshot),
            received_at: from_unix_millis(row.received_ms),
            last_seen: from_unix_millis(row.seen_ms),
            engine_state: EngineState::try_from(row.engine_state)
                .unwrap_or(EngineState::Unspecified),
        });
    }
    if let Some(next) = containers.next() {
        let c = next?;
        return Ok(Err(Damaged {
            host_id: c.host_id,
            reason: format!("container {:?} belongs to no stored host", c.container_id),
        }));
    }
    Ok(Ok(out))
}

/// A [`HostWrite::order`](super::HostWrite::order) as stored: a JSON list
/// of ids.
pub(super) fn order_text(order: Option<&Vec<String>>) -> Option<String> {
    order.map(|ids| serde_json::to_string(ids).expect("a list of strings serializes"))
}

/// A finding's environments as stored: joined by commas.
pub(super) fn environments_text(environments: &[String]) -> String {
    environments.join(",")
}

/// A finding's environments read back.
pub(super) fn environments_of(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `containers` (ascending by id, as read) in the snapshot's `order` (a
/// JSON list of their ids); why not when the two disagree.
fn in_order(containers: Vec<Container>, order: &str) -> Result<Vec<Container>, String> {
    let ids: Vec<String> = serde_json::from_str(order)
        .map_err(|e| format!("the container order is not a list of ids: {e}"))?;
    if ids.len() != containers.len() {
        return Err(format!(
            "the container order lists {} ids for {} container rows",
            ids.len(),
            containers.len()
        ));
    }
    let mut by_id: HashMap<String, Container> =
        containers.into_iter().map(|c| (c.id.clone(), c)).collect();
    ids.iter()
        .map(|id| {
            by_id
                .remove(id)
                .ok_or_else(|| format!("the container order names {id:?}, which has no row"))
        })
        .collect()
}
