//! Which containers the runtime's events named since the last collection.
//!
//! A collection after an event only needs to read the containers the event
//! names: inspecting every container after every `docker run` made the
//! report's latency grow with the number of containers on the host. The
//! periodic resync and the collection after every (re)subscription still
//! read everything, so an event that never arrived costs at most one resync
//! interval, as before.

use std::collections::BTreeMap;

/// What to do about one container at the next collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Read it again: it started, stopped, was renamed, paused, updated…
    /// Whether it is still reported is up to what the engine says then.
    Inspect,
    /// It no longer exists (Docker's `destroy`, Podman's `remove`,
    /// containerd's `/containers/delete`): drop it without asking.
    Remove,
}

/// One runtime event about a container, in the same terms for every
/// runtime.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerEvent {
    /// The container it names; `None` or empty when it names none (an
    /// event the agent could not read), which makes the agent read every
    /// container again.
    pub id: Option<String>,
    /// The runtime's word for what happened (`start`, `/tasks/exit`, …),
    /// for logs.
    pub action: String,
    /// Whether the container is gone for good.
    pub removed: bool,
}

/// The containers named by engine events since the last collection, each
/// with what its latest event asks for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    containers: BTreeMap<String, Change>,
}

impl Changes {
    /// Notes `event`. Returns `false` when the event names no container, so
    /// the caller cannot know what changed and must read everything.
    pub fn note(&mut self, event: &ContainerEvent) -> bool {
        let Some(id) = event.id.as_deref().filter(|id| !id.is_empty()) else {
            return false;
        };
        let change = if event.removed {
            Change::Remove
        } else {
            Change::Inspect
        };
        // The latest event wins: the engine emits one after each change of
        // state, so what it says last is what the container is now.
        self.containers.insert(id.to_owned(), change);
        true
    }

    /// Whether no container was named.
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty()
    }

    /// How many containers were named.
    pub fn len(&self) -> usize {
        self.containers.len()
    }

    /// The containers to inspect again, by id.
    pub fn to_inspect(&self) -> impl Iterator<Item = &str> {
        self.with(Change::Inspect)
    }

    /// The containers that are gone, by id.
    pub fn removed(&self) -> impl Iterator<Item = &str> {
        self.with(Change::Remove)
    }

    fn with(&self, wanted: Change) -> impl Iterator<Item = &str> {
        self.containers
            .iter()
            .filter(move |(_, change)| **change == wanted)
            .map(|(id, _)| id.as_str())
    }
}

impl<S: Into<String>> FromIterator<(S, Change)> for Changes {
    fn from_iter<I: IntoIterator<Item = (S, Change)>>(iter: I) -> Self {
        Self {
            containers: iter.into_iter().map(|(id, c)| (id.into(), c)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: &str, id: Option<&str>) -> ContainerEvent {
        ContainerEvent {
            id: id.map(str::to_owned),
            action: action.to_owned(),
            removed: action == "destroy",
        }
    }

    #[test]
    fn the_latest_event_for_a_container_decides() {
        let mut changes = Changes::default();
        assert!(changes.note(&event("start", Some("a"))));
        assert!(changes.note(&event("die", Some("b"))));
        assert!(changes.note(&event("destroy", Some("b"))));
        assert!(changes.note(&event("stop", Some("c"))));
        assert!(changes.note(&event("destroy", Some("c"))));
        // Cannot happen (ids are not reused), but if it did, reading it is safe.
        assert!(changes.note(&event("start", Some("c"))));
        assert_eq!(changes.to_inspect().collect::<Vec<_>>(), ["a", "c"]);
        assert_eq!(changes.removed().collect::<Vec<_>>(), ["b"]);
        assert_eq!(changes.len(), 3);
    }

    #[test]
    fn an_event_naming_no_container_asks_for_everything() {
        let mut changes = Changes::default();
        assert!(!changes.note(&event("start", None)));
        assert!(!changes.note(&event("start", Some(""))));
        assert!(!changes.note(&ContainerEvent::default()));
        assert!(changes.is_empty());
    }
}
