//! The fleet's compact form of a host: the snapshot's header, and each
//! container as its id and name beside a content that every identical
//! container of the fleet shares.
//!
//! Replicas of a service run the same image with the same configuration,
//! so across a fleet most containers differ only in their id and name:
//! holding each distinct content once is what keeps the aggregator's memory
//! near the ids and names it must hold anyway (docs/benchmarks.md). The
//! whole snapshot stays in the store; [`HeldHost::whole`] rebuilds it
//! exactly, for the few answers that show it.
//!
//! A container's configuration files (`HostSnapshot.config_files`, issue
//! 20) are held the same way, beside its content: the first entry naming a
//! container moves to every held container with that id, interned, and the
//! header keeps an empty entry in its place so that the order comes back
//! exactly; an entry naming no container stays in the header whole.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Weak};
use std::time::SystemTime;

use envparity_proto::hash::{ContentDigest, content_digest};
use envparity_proto::v1::{Container, ContainerConfigFiles, EngineState, HostSnapshot};
use prost::Message;

use crate::parity::HeldContainer;
use crate::store::{ContainerRows, HostWrite, StoredHost, order_of};

/// The service `c` runs, if any.
fn service_of(c: &HeldContainer) -> Option<&str> {
    c.content.service.as_ref().map(|s| s.name.as_str())
}

/// A host as the fleet holds it in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldHost {
    /// The latest stored snapshot without its containers (every other
    /// field as stored).
    pub snapshot: Arc<HostSnapshot>,
    /// Its containers, in the snapshot's order.
    pub containers: Vec<HeldContainer>,
    /// When the snapshot was stored.
    pub received_at: SystemTime,
    /// When the host was last heard from.
    pub last_seen: SystemTime,
    /// The engine state of its latest report.
    pub engine_state: EngineState,
    /// The positions in `containers` of those that run a service, ordered
    /// by service name (then position): where [`HeldHost::running`] finds
    /// a service's containers without reading the others.
    by_service: Box<[u32]>,
}

impl HeldHost {
    /// A host holding `containers`, last heard of when received.
    fn new(
        snapshot: Arc<HostSnapshot>,
        containers: Vec<HeldContainer>,
        received_at: SystemTime,
        engine_state: EngineState,
    ) -> Self {
        let mut by_service: Vec<u32> = (0..containers.len())
            .filter(|&i| service_of(&containers[i]).is_some())
            .filter_map(|i| u32::try_from(i).ok())
            .collect();
        // Stable: positions stay in order within a service.
        by_service.sort_by_key(|&i| service_of(&containers[i as usize]));
        HeldHost {
            snapshot,
            containers,
            received_at,
            last_seen: received_at,
            engine_state,
            by_service: by_service.into_boxed_slice(),
        }
    }

    /// The services its containers run, sorted, each once.
    pub fn distinct_services(&self) -> impl Iterator<Item = &str> {
        let mut last = None;
        self.by_service.iter().filter_map(move |&i| {
            let service = service_of(&self.containers[i as usize])?;
            (last != Some(service)).then(|| {
                last = Some(service);
                service
            })
        })
    }

    /// The positions in `containers` of those running `service`, in order.
    pub fn running(&self, service: &str) -> &[u32] {
        let name = |i: &u32| service_of(&self.containers[*i as usize]).unwrap_or_default();
        let start = self.by_service.partition_point(|i| name(i) < service);
        let rest = &self.by_service[start..];
        &rest[..rest.partition_point(|i| name(i) == service)]
    }

    /// The host id.
    pub fn host_id(&self) -> &str {
        &self.snapshot.host_id
    }

    /// The services its containers run.
    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.containers.iter().filter_map(service_of)
    }

    /// The services its managed containers run: those with a `status`
    /// cell (an unmanaged container is no service).
    pub fn managed_services(&self) -> impl Iterator<Item = &str> {
        self.containers
            .iter()
            .filter(|c| !c.content.unmanaged)
            .filter_map(service_of)
    }

    /// The snapshot whole again, exactly as stored.
    pub fn whole(&self) -> HostSnapshot {
        let mut snapshot = self.header();
        snapshot.containers = self.containers.iter().map(HeldContainer::whole).collect();
        snapshot
    }

    /// The snapshot without its containers, exactly as stored: the held
    /// header with the configuration files its containers hold put back.
    fn header(&self) -> HostSnapshot {
        let mut snapshot = HostSnapshot::clone(&self.snapshot);
        let mut refilled = std::collections::HashSet::new();
        for entry in &mut snapshot.config_files {
            if !refilled.insert(entry.container_id.clone()) {
                continue;
            }
            let held = self
                .containers
                .iter()
                .find(|c| *c.id == *entry.container_id)
                .and_then(|c| c.config.as_ref());
            if let Some(files) = held {
                entry.files = files.files.clone();
            }
        }
        snapshot
    }

    /// What the store writes of this host, `containers` being its
    /// containers whole (in its order, as received) and `previous` the host
    /// as held and stored before: only the containers added or changed
    /// since (a content not shared with the container of the same id, or
    /// another name) and the ids of those gone; all of them for a new host.
    pub fn write(&self, previous: Option<&HeldHost>, containers: Vec<Container>) -> HostWrite {
        debug_assert_eq!(containers.len(), self.containers.len());
        let order = order_of(self.containers.iter().map(|c| &*c.id));
        let rows = match previous {
            None => ContainerRows::All(containers),
            Some(previous) => {
                let before: HashMap<&str, &HeldContainer> =
                    previous.containers.iter().map(|c| (&*c.id, c)).collect();
                let now: HashSet<&str> = self.containers.iter().map(|c| &*c.id).collect();
                let upserted = containers
                    .into_iter()
                    .zip(&self.containers)
                    .filter(|(_, held)| {
                        before.get(&*held.id).is_none_or(|was| {
                            !Arc::ptr_eq(&was.content, &held.content) || was.name != held.name
                        })
                    })
                    .map(|(whole, _)| whole)
                    .collect();
                let removed = previous
                    .containers
                    .iter()
                    .filter(|c| !now.contains(&*c.id))
                    .map(|c| c.id.to_string())
                    .collect();
                ContainerRows::Changed { upserted, removed }
            }
        };
        // The held header keeps empty places for the configuration files
        // its containers hold; the store gets them back.
        let header = if self.snapshot.config_files.is_empty() {
            Arc::clone(&self.snapshot)
        } else {
            Arc::new(self.header())
        };
        HostWrite {
            header,
            received_at: self.received_at,
            last_seen: self.last_seen,
            engine_state: self.engine_state,
            containers: rows,
            order,
        }
    }

    /// Whether a delta whose header is `header` can be applied to this
    /// host as held ([`Interner::hold_delta`]), or why it must be rebuilt
    /// whole: configuration files travel in the header (issue 20) and an
    /// unreachable engine keeps the containers held, both of which only
    /// the whole path handles; and a delta's containers belong in
    /// `upserted`.
    pub fn takes_delta(&self, header: &HostSnapshot) -> Result<(), &'static str> {
        if !header.containers.is_empty() {
            return Err("a delta's header carries containers; they belong in `upserted`");
        }
        if !header.config_files.is_empty() || self.containers.iter().any(|c| c.config.is_some()) {
            return Err("configuration files travel with whole snapshots");
        }
        if header.engine_state == EngineState::Unreachable as i32 {
            return Err("a report of an unreachable engine travels whole");
        }
        Ok(())
    }

    /// What the store writes of this host when a delta made it
    /// ([`Interner::hold_delta`]): the header, the containers the delta
    /// upserted (whole) and the ids of those it removed; its containers
    /// are in id order, so no order is kept.
    pub fn delta_write(&self, upserted: Vec<Container>, removed: Vec<String>) -> HostWrite {
        HostWrite {
            header: Arc::clone(&self.snapshot),
            received_at: self.received_at,
            last_seen: self.last_seen,
            engine_state: self.engine_state,
            containers: ContainerRows::Changed { upserted, removed },
            order: None,
        }
    }

    /// The record as the store has it.
    pub fn stored(&self) -> StoredHost {
        StoredHost {
            snapshot: Arc::new(self.whole()),
            received_at: self.received_at,
            last_seen: self.last_seen,
            engine_state: self.engine_state,
        }
    }
}

/// Hands out one shared content per distinct container content.
#[derive(Debug)]
pub struct Interner {
    /// The first 8 bytes of a content's digest -> the contents with them.
    by_hash: HashMap<u64, Vec<Weak<Container>>>,
    /// Hash of the encoded configuration files (`container_id` cleared)
    /// -> the files with that hash.
    files_by_hash: HashMap<u64, Vec<Weak<ContainerConfigFiles>>>,
    /// Random keys, so that nobody can choose contents that collide.
    keys: RandomState,
    /// Contents interned since the last sweep of dropped ones.
    since_sweep: usize,
}

impl Default for Interner {
    fn default() -> Self {
        Interner {
            by_hash: HashMap::new(),
            files_by_hash: HashMap::new(),
            keys: RandomState::new(),
            since_sweep: 0,
        }
    }
}

impl Interner {
    /// `record` in compact form.
    pub fn hold(&mut self, record: StoredHost) -> HeldHost {
        let mut snapshot = Arc::unwrap_or_clone(record.snapshot);
        let mut held = self.hold_mut(&mut snapshot, record.received_at, record.engine_state, None);
        held.last_seen = record.last_seen;
        held
    }

    /// A host just stored, `snapshot` at `received_at` (and last heard of
    /// then), as the fleet holds it: only contents not held yet are copied
    /// (`snapshot` is left as it was). A container whose content is that
    /// of the container with its id in `previous` (the host as held before)
    /// keeps that content, found by a comparison instead of encoding and
    /// hashing it: a report that changed one container interns one.
    pub fn hold_mut(
        &mut self,
        snapshot: &mut HostSnapshot,
        received_at: SystemTime,
        engine_state: EngineState,
        previous: Option<&HeldHost>,
    ) -> HeldHost {
        let before: HashMap<&str, &HeldContainer> = previous
            .iter()
            .flat_map(|p| &p.containers)
            .map(|c| (&*c.id, c))
            .collect();
        let mut containers = std::mem::take(&mut snapshot.containers);
        let all_files = std::mem::take(&mut snapshot.config_files);
        // The first entry naming a container moves to it, interned; the
        // header keeps an empty one in its place (see the module doc).
        let mut files: HashMap<&str, Arc<ContainerConfigFiles>> = HashMap::new();
        let mut header_files = Vec::with_capacity(all_files.len());
        for entry in &all_files {
            let id = entry.container_id.as_str();
            if files.contains_key(id) || !containers.iter().any(|c| c.id == id) {
                header_files.push(entry.clone());
                continue;
            }
            let content = ContainerConfigFiles {
                container_id: String::new(),
                files: entry.files.clone(),
            };
            let key = self.keys.hash_one(content.encode_to_vec());
            files.insert(id, intern(&mut self.files_by_hash, key, &content));
            header_files.push(ContainerConfigFiles {
                container_id: entry.container_id.clone(),
                files: Vec::new(),
            });
        }
        snapshot.config_files = header_files;
        let header = Arc::new(HostSnapshot::clone(snapshot));
        let held = containers
            .iter_mut()
            .map(|c| {
                let mut held = self.container_mut(c, &before);
                held.config = files.get(c.id.as_str()).cloned();
                held
            })
            .collect();
        drop(files);
        snapshot.containers = containers;
        snapshot.config_files = all_files;
        HeldHost::new(header, held, received_at, engine_state)
    }

    /// The host a delta report makes of `previous` (which
    /// [`HeldHost::takes_delta`] of its `header`): its
    /// containers less those `removed` and those replaced by `upserted`,
    /// plus `upserted` (left as they were), ordered by id as a delta's
    /// snapshot is. Only the upserted containers are compared and interned:
    /// the others keep the content `previous` holds, so a report that
    /// changed one container costs one, whatever the host runs. Why not,
    /// when the delta names a container twice or removes one not held.
    pub fn hold_delta(
        &mut self,
        previous: &HeldHost,
        header: HostSnapshot,
        upserted: &mut [Container],
        removed: &[String],
        received_at: SystemTime,
        engine_state: EngineState,
    ) -> Result<HeldHost, String> {
        debug_assert_eq!(previous.takes_delta(&header), Ok(()));
        let mut held: BTreeMap<&str, &HeldContainer> =
            previous.containers.iter().map(|c| (&*c.id, c)).collect();
        for id in removed {
            if held.remove(id.as_str()).is_none() {
                return Err(format!(
                    "container {:?} is removed but the base does not run it",
                    id.escape_debug().to_string()
                ));
            }
        }
        let before: HashMap<&str, &HeldContainer> =
            previous.containers.iter().map(|c| (&*c.id, c)).collect();
        let mut new: BTreeMap<String, HeldContainer> = BTreeMap::new();
        for c in upserted.iter_mut() {
            if removed.contains(&c.id) {
                return Err(format!(
                    "container {:?} is both removed and upserted",
                    c.id.escape_debug().to_string()
                ));
            }
            let container = self.container_mut(c, &before);
            if new.insert(c.id.clone(), container).is_some() {
                return Err(format!(
                    "container {:?} is upserted twice",
                    c.id.escape_debug().to_string()
                ));
            }
        }
        let mut containers = Vec::with_capacity(held.len() + new.len());
        let mut new = new.into_values().peekable();
        for (id, c) in held {
            while let Some(n) = new.next_if(|n| &*n.id < id) {
                containers.push(n);
            }
            match new.next_if(|n| &*n.id == id) {
                Some(n) => containers.push(n),
                None => containers.push(c.clone()),
            }
        }
        containers.extend(new);
        Ok(HeldHost::new(
            Arc::new(header),
            containers,
            received_at,
            engine_state,
        ))
    }

    /// `c` as the fleet holds it; `c` is left as it was. Its content (and
    /// digest) is the one `before` holds under its id when equal.
    fn container_mut(
        &mut self,
        c: &mut Container,
        before: &HashMap<&str, &HeldContainer>,
    ) -> HeldContainer {
        let id = std::mem::take(&mut c.id);
        let name = std::mem::take(&mut c.name);
        let (content, digest) = match before.get(id.as_str()) {
            Some(held) if *held.content == *c => (Arc::clone(&held.content), held.digest),
            _ => self.intern(c),
        };
        let held = HeldContainer {
            id: id.as_str().into(),
            name: name.as_str().into(),
            content,
            digest,
            config: None,
        };
        (c.id, c.name) = (id, name);
        held
    }

    /// The shared content equal to `content` (whose id and name are empty),
    /// copied only when none is held yet, and its digest, which is also
    /// what it is found by.
    fn intern(&mut self, content: &Container) -> (Arc<Container>, ContentDigest) {
        let digest = content_digest(content);
        let key = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes of 32"));
        let held = (intern(&mut self.by_hash, key, content), digest);
        self.since_sweep += 1;
        if self.since_sweep > self.by_hash.len().max(1024) {
            self.sweep();
        }
        held
    }

    /// Forgets the contents no host holds any more.
    fn sweep(&mut self) {
        sweep(&mut self.by_hash);
        sweep(&mut self.files_by_hash);
        self.since_sweep = 0;
    }

    /// Distinct configuration file sets held.
    #[cfg(test)]
    pub fn distinct_files(&self) -> usize {
        self.files_by_hash
            .values()
            .flatten()
            .filter(|w| w.strong_count() > 0)
            .count()
    }

    /// Distinct contents held.
    #[cfg(test)]
    pub fn distinct(&self) -> usize {
        self.by_hash
            .values()
            .flatten()
            .filter(|w| w.strong_count() > 0)
            .count()
    }
}

/// The value of `by_hash` equal to `value`, whose hash is `key`, copied in
/// only when none is held yet: one interning for container contents and
/// configuration files.
fn intern<T: PartialEq + Clone>(
    by_hash: &mut HashMap<u64, Vec<Weak<T>>>,
    key: u64,
    value: &T,
) -> Arc<T> {
    let same = by_hash.entry(key).or_default();
    if let Some(held) = same
        .iter()
        .filter_map(Weak::upgrade)
        .find(|held| **held == *value)
    {
        return held;
    }
    let held = Arc::new(value.clone());
    same.retain(|w| w.strong_count() > 0);
    same.push(Arc::downgrade(&held));
    held
}

/// Forgets the values no host holds any more.
fn sweep<T>(by_hash: &mut HashMap<u64, Vec<Weak<T>>>) {
    by_hash.retain(|_, same| {
        same.retain(|w| w.strong_count() > 0);
        !same.is_empty()
    });
}

#[cfg(test)]
mod tests {
    use envparity_proto::fixtures;

    use super::*;

    fn container(id: &str, name: &str, fingerprint: &str) -> Container {
        fixtures::container("shop")
            .id(id)
            .name(name)
            .env("MODE", fingerprint)
            .build()
    }

    fn record(host: &str, containers: Vec<Container>) -> StoredHost {
        let t = SystemTime::UNIX_EPOCH;
        StoredHost {
            snapshot: Arc::new(
                fixtures::snapshot(host, "staging")
                    .containers(containers)
                    .build(),
            ),
            received_at: t,
            last_seen: t,
            engine_state: EngineState::Ok,
        }
    }

    /// Replicas that differ only in id and name share one content; a
    /// different content is held apart; the whole record comes back exactly.
    #[test]
    fn identical_replicas_share_one_content_and_come_back_whole() {
        let mut interner = Interner::default();
        let a = record("h1", vec![container("1", "shop-1", "fp1")]);
        let b = record(
            "h2",
            vec![
                container("2", "shop-2", "fp1"),
                container("3", "shop-3", "fp2"),
            ],
        );
        let (ha, hb) = (interner.hold(a.clone()), interner.hold(b.clone()));
        assert!(Arc::ptr_eq(
            &ha.containers[0].content,
            &hb.containers[0].content
        ));
        assert!(!Arc::ptr_eq(
            &hb.containers[0].content,
            &hb.containers[1].content
        ));
        assert_eq!(interner.distinct(), 2);
        assert_eq!(ha.stored(), a);
        assert_eq!(hb.whole(), *b.snapshot);
        assert!(ha.snapshot.containers.is_empty());

        // Once no host holds a content, it goes.
        drop(hb);
        assert_eq!(interner.distinct(), 1);
        interner.sweep();
        assert_eq!(interner.by_hash.len(), 1);
    }

    /// A host's next report keeps the contents of the containers it did not
    /// change and holds the changed one's new content, even under the same
    /// container id; it comes back whole.
    #[test]
    fn a_next_report_keeps_unchanged_contents_and_holds_the_changed_one() {
        let mut interner = Interner::default();
        let first = record(
            "h1",
            vec![
                container("1", "shop-1", "fp1"),
                container("2", "shop-2", "fp2"),
            ],
        );
        let held = interner.hold(first);
        let mut next = HostSnapshot::clone(
            &record(
                "h1",
                vec![
                    container("1", "shop-1", "fp1"),
                    container("2", "shop-2", "fp3"),
                ],
            )
            .snapshot,
        );
        let expected = next.clone();
        let again = interner.hold_mut(
            &mut next,
            SystemTime::UNIX_EPOCH,
            EngineState::Ok,
            Some(&held),
        );
        assert_eq!(next, expected, "the snapshot is left as it was");
        assert!(Arc::ptr_eq(
            &held.containers[0].content,
            &again.containers[0].content
        ));
        assert!(!Arc::ptr_eq(
            &held.containers[1].content,
            &again.containers[1].content
        ));
        assert_eq!(
            again.containers[1].content.explicit_env[0].fingerprint,
            "fp3"
        );
        assert_eq!(again.whole(), expected);
    }

    /// The rows a next report writes: the container whose content changed,
    /// the renamed one and the new one, and the id of the one gone; none
    /// of the unchanged one. A first report writes them all.
    #[test]
    fn a_report_writes_the_containers_it_changed() {
        let mut interner = Interner::default();
        let first = record(
            "h1",
            vec![
                container("1", "shop-1", "fp1"),
                container("2", "shop-2", "fp2"),
                container("3", "shop-3", "fp3"),
                container("4", "shop-4", "fp4"),
            ],
        );
        let held = interner.hold(first.clone());
        let again = held.write(None, first.snapshot.containers.clone());
        assert_eq!(
            again.containers,
            ContainerRows::All(first.snapshot.containers.clone())
        );
        assert_eq!(again.order, None);

        let next_containers = vec![
            container("1", "shop-1", "fp1"),
            container("2", "shop-2", "fp-new"),
            container("4", "shop-four", "fp4"),
            container("5", "shop-5", "fp5"),
        ];
        let mut next = HostSnapshot::clone(&record("h1", next_containers.clone()).snapshot);
        let now = interner.hold_mut(
            &mut next,
            SystemTime::UNIX_EPOCH,
            EngineState::Ok,
            Some(&held),
        );
        let write = now.write(Some(&held), next.containers);
        assert_eq!(
            write.containers,
            ContainerRows::Changed {
                upserted: next_containers[1..].to_vec(),
                removed: vec!["3".into()],
            }
        );
        assert!(write.header.containers.is_empty());
        assert_eq!(write.header.host_id, "h1");
    }

    /// Replicas with the same configuration files share them; the order of
    /// the entries, an empty one and one naming no container come back
    /// exactly, and the held header keeps only empty places for the moved.
    #[test]
    fn configuration_files_are_shared_by_replicas_and_come_back_whole() {
        use envparity_proto::v1::{ConfigFile, ContainerConfigFiles};
        let files = |id: &str, path: &str| ContainerConfigFiles {
            container_id: id.to_owned(),
            files: vec![ConfigFile {
                path: path.to_owned(),
                fingerprint: "fp".to_owned(),
                ..ConfigFile::default()
            }],
        };
        let mut interner = Interner::default();
        let with = |host: &str, ids: [&str; 2], entries: Vec<ContainerConfigFiles>| {
            let mut r = record(
                host,
                vec![
                    container(ids[0], "shop-a", "fp1"),
                    container(ids[1], "shop-b", "fp1"),
                ],
            );
            Arc::make_mut(&mut r.snapshot).config_files = entries;
            r
        };
        let a = with(
            "h1",
            ["1", "2"],
            vec![
                files("2", "/etc/a.yaml"),
                files("1", "/etc/a.yaml"),
                files("gone", "/etc/x"),
            ],
        );
        let b = with(
            "h2",
            ["3", "4"],
            vec![
                files("3", "/etc/a.yaml"),
                ContainerConfigFiles {
                    container_id: "4".into(),
                    files: Vec::new(),
                },
            ],
        );
        let (ha, hb) = (interner.hold(a.clone()), interner.hold(b.clone()));
        let config = |h: &HeldHost, i: usize| h.containers[i].config.clone().expect("read");
        assert!(Arc::ptr_eq(&config(&ha, 0), &config(&ha, 1)));
        assert!(Arc::ptr_eq(&config(&ha, 0), &config(&hb, 0)));
        assert!(config(&hb, 1).files.is_empty());
        assert_eq!(interner.distinct_files(), 2);
        assert!(
            ha.snapshot.config_files[..2]
                .iter()
                .all(|e| e.files.is_empty())
        );
        assert_eq!(ha.snapshot.config_files[2], files("gone", "/etc/x"));
        assert_eq!(ha.stored(), a);
        assert_eq!(hb.stored(), b);
        // Not read: no entry, held as such.
        let c = interner.hold(record("h3", vec![container("5", "shop-c", "fp1")]));
        assert_eq!(c.containers[0].config, None);
    }
}
