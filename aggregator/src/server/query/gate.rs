//! `Gate`: may this digest of this service go to that environment? The
//! fleet and the history say what the previous stage runs and since when;
//! the pure [`gate`] decides.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use envparity_proto::time::{from_unix_millis, to_timestamp};
use envparity_proto::v1::{GateRequest, GateResponse, HostState};
use tonic::Status;

use super::checks::{known_service, list};
use super::instances_of;
use crate::fleet::Fleet;
use crate::parity::digest::{
    content_identity, identities, one_content, registry_digest, registry_digests,
};
use crate::parity::gate::{self, GateInput, StageReplica};
use crate::server::convert;
use crate::store::PageAt;

/// History rows the gate reads to date the previous stage's replicas.
const GATE_HISTORY: usize = 100_000;

/// The digest a gate request names: `REF@sha256:…`, a bare `sha256:…`, or
/// nothing (`Ok(None)`: what the target runs now).
fn candidate(image: &str) -> Result<Option<String>, String> {
    if image.is_empty() {
        return Ok(None);
    }
    let digest = image.rsplit_once('@').map_or(image, |(_, d)| d);
    match envparity_proto::digest::parse_digest(digest) {
        Ok(digest) => Ok(Some(digest.to_owned())),
        Err(_) => Err(format!(
            "--image {:?} is not pinned: give REF@sha256:<64 lower-case hex digits> or sha256:<64 lower-case hex digits>; a tag can move, so the gate only checks digests",
            envparity_proto::names::escape_hostile(image)
        )),
    }
}

/// The one content the replicas of a stage run, named by an identity every
/// one of them lists ([`identities`]: Podman may list a multi-arch image's
/// platform digest beside the index a Docker host lists alone), a registry
/// digest before the image id; `None`
/// when there is no replica; the identities shown when they run several
/// contents (or no identity is common to all).
fn common_identity(
    running: &[&envparity_proto::v1::ImageInfo],
) -> Result<Option<String>, Vec<String>> {
    let Some(first) = running.first() else {
        return Ok(None);
    };
    let all: Vec<Vec<&str>> = running.iter().map(|i| identities(i)).collect();
    // Named by a registry digest when one is common (what `--image` takes),
    // by the image id only when none is.
    let on_all = |id: &&str| all.iter().all(|ids| ids.contains(id));
    let common = registry_digests(first)
        .into_iter()
        .find(on_all)
        .or_else(|| Some(first.image_id.as_str()).filter(on_all));
    match common {
        Some(id) if one_content(&all) => Ok(Some(id.to_owned())),
        _ => {
            let shown: BTreeSet<String> = running.iter().map(|i| content_identity(i)).collect();
            Err(shown.into_iter().collect())
        }
    }
}

fn chain_names(policy: &crate::parity::Policy) -> String {
    policy
        .chain
        .iter()
        .map(|s| s.0.join("/"))
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// Since when each (host, container) of a service runs its current
/// image, from the stored history (aggregator's clock: immune to agent
/// clock skew).
async fn running_since(
    fleet: &Fleet,
    service: &str,
) -> Result<BTreeMap<(String, String), SystemTime>, Status> {
    let store = fleet.store();
    let service = service.to_owned();
    let changes = tokio::task::spawn_blocking(move || {
        store.changes(Some(&service), PageAt::newest(GATE_HISTORY))
    })
    .await
    .map_err(|e| Status::internal(format!("store task failed: {e}")))?
    .map_err(|e| Status::unavailable(format!("cannot read history: {e}")))?;
    let mut since = BTreeMap::new();
    for c in changes.rows {
        // Oldest first: the last change of a container is what it runs now.
        since.insert((c.host_id, c.container), from_unix_millis(c.received_at_ms));
    }
    Ok(since)
}

/// The gate's verdict on `req`.
pub(super) async fn gate(fleet: &Fleet, req: GateRequest) -> Result<GateResponse, Status> {
    if req.service.is_empty() || req.to.is_empty() {
        return Err(Status::invalid_argument(
            "GateRequest needs a service and a target environment (`to`)",
        ));
    }
    let now = SystemTime::now();
    // What the gate needs of the fleet, read at once: the reading is
    // not held across the history read below.
    let (policy, previous, instances, findings) = {
        let reading = fleet.reading(now);
        if !reading.runs(&req.service) {
            known_service(&reading.services(), &req.service)?;
        }
        let environments = reading.environments();
        let policy = reading.loaded_policy();
        if policy.policy.stage_of(&req.to).is_none() {
            return Err(Status::failed_precondition(format!(
                "{:?} is not a stage of the promotion chain ({}); the gate needs a previous stage to compare with",
                req.to,
                chain_names(&policy.policy)
            )));
        }
        let Some(previous) = policy.policy.previous_stage(&req.to, &environments) else {
            return Err(Status::failed_precondition(format!(
                "no environment of an earlier stage than {:?} has reported; known environments: {}",
                req.to,
                list(&environments)
            )));
        };
        let instances = instances_of(&reading, &req.service);
        let findings = reading.findings(Some(&req.service));
        (policy, previous, instances, findings)
    };
    let policy = &policy.policy;
    let candidate = match candidate(&req.image) {
        Ok(Some(c)) => c,
        Ok(None) => {
            let running: Vec<&envparity_proto::v1::ImageInfo> = instances
                .iter()
                .filter(|i| i.environment == req.to)
                .filter_map(|i| i.container.image.as_ref())
                .collect();
            match common_identity(&running) {
                Ok(Some(identity)) => identity,
                Ok(None) => {
                    return Err(Status::invalid_argument(format!(
                        "{} does not run in {} yet; give the image to promote (--image REF@sha256:...)",
                        req.service, req.to
                    )));
                }
                Err(several) => {
                    return Err(Status::invalid_argument(format!(
                        "{} runs several digests in {} ({}); give the image to promote (--image REF@sha256:...)",
                        req.service,
                        req.to,
                        several.join(", ")
                    )));
                }
            }
        }
        Err(e) => return Err(Status::invalid_argument(e)),
    };
    let since = running_since(fleet, &req.service).await?;
    let replicas: Vec<StageReplica> = instances
        .iter()
        .filter(|i| i.environment == previous)
        .map(|i| {
            let image = i.container.image.clone().unwrap_or_default();
            StageReplica {
                host: i.host_id.clone(),
                digest: registry_digest(&image).unwrap_or_default().to_owned(),
                digests: registry_digests(&image)
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
                image_id: image.image_id.clone(),
                current: i.host_state == HostState::Fresh,
                since: since
                    .get(&(i.host_id.clone(), i.container.name.clone()))
                    .copied(),
            }
        })
        .collect();
    let verdict = gate::decide(&GateInput {
        service: &req.service,
        to: &req.to,
        previous: &previous,
        candidate: &candidate,
        replicas: &replicas,
        findings: &findings,
        policy,
        now,
    });
    tracing::info!(
        service = %req.service.escape_debug(),
        to = %req.to.escape_debug(),
        previous = %previous.escape_debug(),
        candidate = %candidate.escape_debug(),
        allowed = verdict.allowed(),
        "gate decided"
    );
    Ok(GateResponse {
        allowed: verdict.allowed(),
        previous_environment: previous,
        candidate,
        running_since: verdict.running_since.map(to_timestamp),
        reasons: verdict.reasons,
        blocking: verdict.blocking.iter().map(convert::finding).collect(),
        min_time_in_previous: prost_types::Duration::try_from(policy.gate.min_time_in_previous)
            .ok(),
    })
}

#[cfg(test)]
mod tests {
    use envparity_proto::v1::ImageInfo;

    use super::common_identity;

    fn image(id: &str, digests: &[&str]) -> ImageInfo {
        ImageInfo {
            reference: "reg/app:1".into(),
            image_id: id.into(),
            repo_digests: digests.iter().map(|d| format!("reg/app@{d}")).collect(),
            ..ImageInfo::default()
        }
    }

    /// A Podman replica lists a multi-arch image's platform digest beside
    /// the index a Docker replica lists alone: one content, named by the
    /// index both list. Two contents are several, shown by their identities.
    #[test]
    fn the_content_a_stage_runs_is_named_by_an_identity_all_its_replicas_list() {
        let index = format!("sha256:{}", "1".repeat(64));
        let platform = format!("sha256:{}", "2".repeat(64));
        let other = format!("sha256:{}", "3".repeat(64));
        let podman = image("sha256:p", &[&platform, &index]);
        let docker = image("sha256:d", &[&index]);
        assert_eq!(
            common_identity(&[&podman, &docker]),
            Ok(Some(index.clone()))
        );
        assert_eq!(
            common_identity(&[&docker, &podman]),
            Ok(Some(index.clone()))
        );
        let moved = image("sha256:m", &[&other]);
        assert_eq!(
            common_identity(&[&docker, &moved]),
            Err(vec![index.clone(), other.clone()])
        );
        // Without registry digests, the image id names the content.
        let local = image("sha256:l", &[]);
        assert_eq!(
            common_identity(&[&local, &local.clone()]),
            Ok(Some("sha256:l".to_owned()))
        );
        assert_eq!(common_identity(&[]), Ok(None));
    }
}
