//! Podman, read through its Docker-compatible API: the Docker code with
//! Podman's [`Dialect`].
//!
//! What Podman does differently, measured on Podman 4.3:
//! - a removed container's event is `remove`, not `destroy`;
//! - it injects `container=podman` and `HOSTNAME=<id>`, and `PATH` and
//!   `TERM=xterm` when the image sets none: set apart as injected, never
//!   compared ([`crate::envsplit::Injection`]);
//! - its container inspect does not spell the image id as Docker does: the
//!   id comes from the image's inspect (equal to Docker's and containerd's
//!   for the same image);
//! - it reports the working directory `/` where Docker reports none (both
//!   runtimes are spelled one way, [`super::working_dir`]).
//!
//! Not handled here: Podman gives local builds a digest before any push, and
//! lists both the index and the platform digest of a multi-arch pull, so its
//! digest sets and Docker's only intersect. Comparing digest sets by
//! intersection is the parity engine's job.

use super::RuntimeKind;
use super::docker::Dialect;
use crate::envsplit::Injection;

/// Podman's container event actions: Docker's, and `remove`.
pub const PODMAN_ACTIONS: &[&str] = &[
    "start", "stop", "die", "rename", "destroy", "remove", "pause", "unpause", "update",
];

/// Podman's dialect of the Docker Engine API.
pub const PODMAN: Dialect = Dialect {
    kind: RuntimeKind::Podman,
    actions: PODMAN_ACTIONS,
    removed: "remove",
    injection: Injection {
        engine: true,
        podman_defaults: true,
        service_links: false,
    },
    image_id_from_image: true,
};

#[cfg(test)]
mod tests {
    use super::super::docker::WATCHED_ACTIONS;
    use super::*;

    #[test]
    fn podman_watches_every_docker_action_and_remove() {
        for action in WATCHED_ACTIONS {
            assert!(PODMAN_ACTIONS.contains(action), "{action}");
        }
        assert!(PODMAN_ACTIONS.contains(&PODMAN.removed));
    }
}
