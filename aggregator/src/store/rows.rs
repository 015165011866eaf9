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

/// What reading stored hosts back yields, host by host: a host, a host
/// that cannot be read back ([`Damaged`]), or a read error of either row
/// stream (`E`). Nothing follows a damaged host or an error.
pub(super) type Assembled<E> = Result<Result<StoredHost, Damaged>, E>;

/// Assembles hosts from `hosts` (ascending by host id) and `containers`
/// (ascending by host id, then container id), as both backends read them,
/// one host at a time: a host is built from its rows when it is asked for,
/// so that a caller keeping hosts compactly never holds every host whole.
pub(super) fn assemble<E, H, C>(hosts: H, containers: C) -> impl Iterator<Item = Assembled<E>>
where
    H: IntoIterator<Item = Result<HostRow, E>>,
    C: IntoIterator<Item = Result<ContainerRow, E>>,
{
    let mut hosts = hosts.into_iter();
    let mut containers = containers.into_iter().peekable();
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let next = match hosts.next() {
            Some(Ok(row)) => one_host(row, &mut containers),
            Some(Err(e)) => Err(e),
            // Every host read: a container row left over has no host.
            None => {
                done = true;
                return match containers.next()? {
                    Ok(c) => Some(Ok(Err(Damaged {
                        host_id: c.host_id,
                        reason: format!("container {:?} belongs to no stored host", c.container_id),
                    }))),
                    Err(e) => Some(Err(e)),
                };
            }
        };
        done = !matches!(next, Ok(Ok(_)));
        Some(next)
    })
}

/// The host of `row`, with its container rows taken from the front of
/// `containers`.
fn one_host<E>(
    row: HostRow,
    containers: &mut std::iter::Peekable<impl Iterator<Item = Result<ContainerRow, E>>>,
) -> Assembled<E> {
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
    Ok(Ok(StoredHost {
        snapshot: Arc::new(snapshot),
        received_at: from_unix_millis(row.received_ms),
        last_seen: from_unix_millis(row.seen_ms),
        engine_state: EngineState::try_from(row.engine_state).unwrap_or(EngineState::Unspecified),
    }))
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

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn host_row(id: &str) -> HostRow {
        HostRow {
            host_id: id.to_owned(),
            snapshot: HostSnapshot {
                host_id: id.to_owned(),
                ..HostSnapshot::default()
            }
            .encode_to_vec(),
            order: None,
            received_ms: 1,
            seen_ms: 2,
            engine_state: EngineState::Ok as i32,
        }
    }

    fn container_row(host: &str, id: &str) -> ContainerRow {
        ContainerRow {
            host_id: host.to_owned(),
            container_id: id.to_owned(),
            body: Container {
                id: id.to_owned(),
                ..Container::default()
            }
            .encode_to_vec(),
        }
    }

    /// `rows` as a stream that counts how many were read.
    fn counted<'a, T: 'a>(
        rows: Vec<T>,
        read: &'a Cell<usize>,
    ) -> impl Iterator<Item = Result<T, ()>> + 'a {
        rows.into_iter().map(move |r| {
            read.set(read.get() + 1);
            Ok(r)
        })
    }

    fn ids(host: &StoredHost) -> Vec<&str> {
        host.snapshot
            .containers
            .iter()
            .map(|c| c.id.as_str())
            .collect()
    }

    #[test]
    fn hosts_are_assembled_one_at_a_time_reading_no_further_than_the_next_host() {
        let (hosts_read, containers_read) = (Cell::new(0), Cell::new(0));
        let hosts = counted(
            vec![host_row("a"), host_row("b"), host_row("c")],
            &hosts_read,
        );
        let containers = counted(
            vec![
                container_row("a", "1"),
                container_row("a", "2"),
                container_row("b", "1"),
                container_row("c", "1"),
                container_row("c", "2"),
            ],
            &containers_read,
        );
        let mut assembled = assemble(hosts, containers);
        let a = assembled.next().unwrap().unwrap().unwrap();
        assert_eq!((a.host_id(), ids(&a)), ("a", vec!["1", "2"]));
        // The first host's rows, and a peek at the next host's first row.
        assert_eq!((hosts_read.get(), containers_read.get()), (1, 3));
        let b = assembled.next().unwrap().unwrap().unwrap();
        assert_eq!((b.host_id(), ids(&b)), ("b", vec!["1"]));
        assert_eq!((hosts_read.get(), containers_read.get()), (2, 4));
        let c = assembled.next().unwrap().unwrap().unwrap();
        assert_eq!((c.host_id(), ids(&c)), ("c", vec!["1", "2"]));
        assert!(assembled.next().is_none());
        assert_eq!((hosts_read.get(), containers_read.get()), (3, 5));
    }

    #[test]
    fn a_damaged_host_or_a_stray_container_ends_the_hosts_naming_it() {
        let mut bad = host_row("b");
        bad.snapshot = vec![0xff, 0xff];
        let (h, c) = (Cell::new(0), Cell::new(0));
        let out: Vec<_> = assemble(
            counted(vec![host_row("a"), bad, host_row("c")], &h),
            counted(vec![container_row("c", "1")], &c),
        )
        .collect();
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0].as_ref().unwrap().as_ref().unwrap().host_id(), "a");
        let damaged = out[1].as_ref().unwrap().as_ref().unwrap_err();
        assert_eq!(damaged.host_id, "b");
        assert_eq!(h.get(), 2, "nothing read after the damaged host");

        let (h, c) = (Cell::new(0), Cell::new(0));
        let out: Vec<_> = assemble(
            counted(vec![host_row("a")], &h),
            counted(vec![container_row("a", "1"), container_row("z", "9")], &c),
        )
        .collect();
        assert_eq!(out.len(), 2, "{out:?}");
        let stray = out[1].as_ref().unwrap().as_ref().unwrap_err();
        assert_eq!(stray.host_id, "z");
        assert!(
            stray.reason.contains("\"9\" belongs to no stored host"),
            "{}",
            stray.reason
        );
    }

    #[test]
    fn a_read_error_of_either_stream_ends_the_hosts() {
        let hosts = vec![Ok(host_row("a")), Err("hosts broke"), Ok(host_row("c"))];
        let out: Vec<_> = assemble(hosts, Vec::<Result<ContainerRow, _>>::new()).collect();
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].as_ref().unwrap_err(), &"hosts broke");

        let containers = vec![Ok(container_row("a", "1")), Err("containers broke")];
        let out: Vec<_> =
            assemble(vec![Ok(host_row("a")), Ok(host_row("b"))], containers).collect();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].as_ref().unwrap_err(), &"containers broke");
    }
}
