//! The change generation: a number that moves whenever what the fleet shows
//! may have changed, so that a reader (the web view's `/events`) can wait
//! for it instead of asking again and again.
//!
//! It moves on every commit of a report that changed something, on every
//! change of the open findings (time passing included: a host that goes
//! stale opens a `stale_host` finding, whatever the policy, and resolves it
//! when heard from again, so staleness moves it through the findings), on
//! an engine state stored from a heartbeat, on a refused report, a
//! forgotten host, a new policy, and on every change of the alerts. It does not move for liveness alone (a heartbeat that changes
//! nothing but "last seen"): that would move it every second.
//!
//! It starts at the Unix time, in milliseconds, at which the fleet was
//! loaded, and only grows: a reader that saw a generation of an earlier
//! process (before a restart) does not take a new one for it. What it counts
//! is "something changed", not what.

use tokio::sync::watch;

use super::Fleet;

/// The counter, and whoever waits for it.
#[derive(Debug)]
pub struct Generation {
    current: watch::Sender<u64>,
}

impl Generation {
    /// A generation starting at `start`.
    pub fn starting_at(start: u64) -> Self {
        Generation {
            current: watch::Sender::new(start),
        }
    }

    /// Something changed: moves the generation and wakes every watcher.
    pub fn bump(&self) {
        self.current.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// The generation now.
    pub fn current(&self) -> u64 {
        *self.current.borrow()
    }

    /// A receiver that sees every move (at least the latest of a burst).
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.current.subscribe()
    }
}

impl Fleet {
    /// The change generation (the web view's live updates wait for it).
    pub fn generation(&self) -> &Generation {
        &self.generation
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use envparity_proto::v1::{EngineState, HeartbeatRequest};

    use super::Generation;
    use crate::fleet::LoadedPolicy;
    use crate::fleet::tests::{container, empty_fleet_stale_after, report};

    /// Each change a page shows moves the generation; liveness alone, and
    /// a tick that changes nothing, do not.
    #[tokio::test]
    async fn the_fleet_moves_it_on_what_a_page_shows_and_not_on_liveness_alone() {
        let (_dir, fleet, t0) = empty_fleet_stale_after(Duration::from_secs(30));
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut last = fleet.generation().current();
        let mut moved = |why: &str, expected: bool| {
            let now = fleet.generation().current();
            assert_eq!(now > last, expected, "{why}: {last} then {now}");
            assert!(now >= last, "{why}: it went back");
            last = now;
        };
        fleet
            .push(
                report("h1", "staging", 1, vec![container("shop", 1, 0)]),
                at(0),
            )
            .await
            .unwrap();
        moved("a report", true);
        let held = fleet.held("h1").unwrap();
        let beat = |engine_state: EngineState| HeartbeatRequest {
            host_id: "h1".into(),
            environment: "staging".into(),
            content_hash: held.content_hash.clone(),
            boot_id: "b".into(),
            sequence: 1,
            sent_at: None,
            engine_state: engine_state as i32,
        };
        fleet
            .heartbeat(&beat(EngineState::Ok), at(1))
            .await
            .unwrap();
        fleet.tick(at(2)).await.unwrap();
        moved("liveness alone and a tick", false);
        fleet
            .heartbeat(&beat(EngineState::Unreachable), at(3))
            .await
            .unwrap();
        moved("an engine state change", true);
        fleet.tick(at(60)).await.unwrap();
        moved("a host going stale", true);
        fleet.tick(at(61)).await.unwrap();
        moved("a tick that changes nothing", false);
        fleet
            .set_policy(LoadedPolicy::defaults(at(62)), at(62))
            .await
            .unwrap();
        moved("a new policy", true);
        fleet.refused("h1", "a test refusal", at(63));
        moved("a refused report", true);
        // A host whose going changes no finding (h1 holds them).
        fleet
            .push(
                report("h2", "staging", 1, vec![container("shop", 1, 0)]),
                at(64),
            )
            .await
            .unwrap();
        moved("a report", true);
        fleet.forget("h2", at(65)).await.unwrap();
        moved("a forgotten host", true);
    }

    #[tokio::test]
    async fn a_bump_wakes_a_watcher_and_a_burst_is_seen_as_its_latest() {
        let g = Generation::starting_at(0);
        let mut rx = g.watch();
        assert_eq!(g.current(), 0);
        g.bump();
        g.bump();
        g.bump();
        rx.changed().await.unwrap();
        assert_eq!(*rx.borrow_and_update(), 3);
        assert!(!rx.has_changed().unwrap());
    }
}
