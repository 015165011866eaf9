//! Delta reports: a snapshot as what changed since one the aggregator
//! holds. One definition for both ends: the agent builds a delta with
//! [`between`], the aggregator rebuilds the snapshot with [`apply`] and
//! checks its content hash.

use std::collections::{BTreeMap, BTreeSet};

use crate::v1::{Container, HostSnapshot, PushDeltaRequest};

/// Why a delta cannot be applied to a base.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    /// The request has no snapshot header.
    #[error("PushDeltaRequest.snapshot is missing")]
    NoSnapshot,
    /// The header carries containers (they belong in `upserted`).
    #[error("PushDeltaRequest.snapshot carries {0} container(s); a delta sends them in `upserted`")]
    ContainersInHeader(usize),
    /// The base is not the snapshot the delta was made against.
    #[error("the delta is against content {wanted:?}, but the base held is {held:?}")]
    OtherBase {
        /// The base the delta names.
        wanted: String,
        /// The base held.
        held: String,
    },
    /// A container id is upserted twice.
    #[error("container {0:?} is upserted twice")]
    DuplicateUpsert(String),
    /// A removed container is not in the base, or is also upserted.
    #[error("container {0:?} is removed but the base does not run it, or it is also upserted")]
    UnknownRemoval(String),
}

/// The delta that turns `base` into `next`: `next` without its containers,
/// the containers of `next` that `base` lacks or holds otherwise, and the
/// ids of `base`'s containers that `next` lacks. `next`'s containers are
/// expected sorted by id, as agents send them (then [`apply`] rebuilds
/// `next` exactly).
pub fn between(base: &HostSnapshot, next: &HostSnapshot) -> PushDeltaRequest {
    let held: BTreeMap<&str, &Container> =
        base.containers.iter().map(|c| (c.id.as_str(), c)).collect();
    let upserted: Vec<Container> = next
        .containers
        .iter()
        .filter(|c| held.get(c.id.as_str()) != Some(c))
        .cloned()
        .collect();
    let kept: BTreeSet<&str> = next.containers.iter().map(|c| c.id.as_str()).collect();
    let removed: Vec<String> = held
        .keys()
        .filter(|id| !kept.contains(*id))
        .map(|id| (*id).to_owned())
        .collect();
    let mut header = next.clone();
    header.containers.clear();
    PushDeltaRequest {
        snapshot: Some(header),
        base_content_hash: base.content_hash.clone(),
        upserted,
        removed,
    }
}

/// The snapshot `delta` describes, rebuilt from `base` (consumed: its
/// containers are moved into the result): the caller then checks that its
/// content hash is the one the header claims.
pub fn apply(base: HostSnapshot, delta: PushDeltaRequest) -> Result<HostSnapshot, DeltaError> {
    let mut next = delta.snapshot.ok_or(DeltaError::NoSnapshot)?;
    if !next.containers.is_empty() {
        return Err(DeltaError::ContainersInHeader(next.containers.len()));
    }
    if delta.base_content_hash != base.content_hash {
        return Err(DeltaError::OtherBase {
            wanted: delta.base_content_hash,
            held: base.content_hash,
        });
    }
    let mut upserted = BTreeSet::new();
    if let Some(twice) = delta
        .upserted
        .iter()
        .find(|c| !upserted.insert(c.id.as_str()))
    {
        return Err(DeltaError::DuplicateUpsert(twice.id.clone()));
    }
    // The base's containers are moved, not copied.
    let mut containers: BTreeMap<String, Container> = base
        .containers
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect();
    for id in &delta.removed {
        if upserted.contains(id.as_str()) || containers.remove(id).is_none() {
            return Err(DeltaError::UnknownRemoval(id.clone()));
        }
    }
    for c in delta.upserted {
        containers.insert(c.id.clone(), c);
    }
    next.containers = containers.into_values().collect();
    Ok(next)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::fixtures;
    use crate::hash::content_hash;

    /// A container of id `c{id}` whose content is `version`.
    fn container(id: u8, version: u8) -> Container {
        fixtures::container("shop")
            .id(format!("c{id:03}"))
            .name(format!("n{id}"))
            .env("V", format!("fp{version}"))
            .build()
    }

    /// A snapshot of `containers` (id → version), sorted by id, hashed.
    fn snapshot(containers: &BTreeMap<u8, u8>, sequence: u64) -> HostSnapshot {
        fixtures::snapshot("h1", "staging")
            .sequence(sequence)
            .containers(containers.iter().map(|(i, v)| container(*i, *v)))
            .build()
    }

    proptest! {
        /// Whatever appeared, changed or went, the delta rebuilds the next
        /// snapshot exactly (its hash too), and sends only what changed.
        #[test]
        fn a_delta_rebuilds_the_next_snapshot_exactly(
            base in proptest::collection::btree_map(0u8..40, 0u8..3, 0..30),
            next in proptest::collection::btree_map(0u8..40, 0u8..3, 0..30),
        ) {
            let (base, next) = (snapshot(&base, 1), snapshot(&next, 2));
            let delta = between(&base, &next);
            let changed = next
                .containers
                .iter()
                .filter(|c| !base.containers.contains(c))
                .count();
            prop_assert_eq!(delta.upserted.len(), changed);
            let rebuilt = apply(base.clone(), delta).unwrap();
            prop_assert_eq!(content_hash(&rebuilt), next.content_hash.clone());
            prop_assert_eq!(rebuilt, next);
        }
    }

    #[test]
    fn a_delta_against_another_base_or_inconsistent_is_refused() {
        let base = snapshot(&[(1, 0), (2, 0)].into(), 1);
        let next = snapshot(&[(2, 1), (3, 0)].into(), 2);
        let delta = between(&base, &next);

        let other = snapshot(&[(1, 1)].into(), 1);
        assert!(matches!(
            apply(other, delta.clone()),
            Err(DeltaError::OtherBase { .. })
        ));

        let mut twice = delta.clone();
        twice.upserted.push(twice.upserted[0].clone());
        assert_eq!(
            apply(base.clone(), twice),
            Err(DeltaError::DuplicateUpsert("c002".into()))
        );

        let mut stranger = delta.clone();
        stranger.removed.push("c009".into());
        assert_eq!(
            apply(base.clone(), stranger),
            Err(DeltaError::UnknownRemoval("c009".into()))
        );

        let mut crowded = delta.clone();
        crowded
            .snapshot
            .as_mut()
            .unwrap()
            .containers
            .push(container(5, 0));
        assert_eq!(
            apply(base.clone(), crowded),
            Err(DeltaError::ContainersInHeader(1))
        );

        let headless = PushDeltaRequest {
            snapshot: None,
            ..delta
        };
        assert_eq!(apply(base, headless), Err(DeltaError::NoSnapshot));
    }
}
