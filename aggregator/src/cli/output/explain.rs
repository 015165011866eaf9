//! `explain`'s answer: what two environments' images of a service say about
//! themselves, the layers they share, and the configuration files their
//! replicas read.

use envparity_proto::v1;
use serde::Serialize;

use super::service::config_files;
use super::{ConfigFile, SCHEMA_VERSION};

/// `explain` output.
#[derive(Debug, Serialize)]
pub struct Explain {
    pub schema_version: u32,
    pub service: String,
    pub a: ExplainSide,
    pub b: ExplainSide,
    /// True when both sides run exactly the same content.
    pub same_content: bool,
    /// Layers shared from the bottom, when each side runs one image.
    pub shared_layers: Option<SharedLayers>,
    /// The replicas of A, then of B, with their configuration files (the
    /// table output shows them as keys × environments).
    pub replicas: Vec<Replica>,
}

/// One replica's configuration files.
#[derive(Debug, Serialize)]
pub struct Replica {
    pub environment: String,
    pub host_id: String,
    pub container_name: String,
    /// Key by key, as in `service`; absent when the replica's agent did not
    /// read them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_files: Option<Vec<ConfigFile>>,
}

/// One environment's images.
#[derive(Debug, Serialize)]
pub struct ExplainSide {
    pub environment: String,
    pub images: Vec<ExplainImage>,
}

/// What an image says about itself.
#[derive(Debug, Serialize)]
pub struct ExplainImage {
    pub reference: String,
    pub digest: String,
    pub image_id: String,
    pub architecture: String,
    pub created: String,
    /// OCI labels `revision`, `version`, `created`, `base.digest`, `source`
    /// (empty when the image does not set them).
    pub revision: String,
    pub version: String,
    pub created_label: String,
    pub base_digest: String,
    pub source: String,
    pub layer_count: u32,
    pub hosts: Vec<String>,
}

/// Shared layers.
#[derive(Debug, Serialize)]
pub struct SharedLayers {
    /// Layers both images share from the bottom: divergence starts at layer
    /// `shared + 1`.
    pub shared: u32,
    pub a_total: u32,
    pub b_total: u32,
}

impl Explain {
    /// From the wire.
    pub fn from_proto(r: &v1::ExplainResponse) -> Self {
        let side = |s: Option<&v1::ExplainSide>| {
            let s = s.cloned().unwrap_or_default();
            ExplainSide {
                environment: s.environment,
                images: s
                    .images
                    .into_iter()
                    .map(|i| ExplainImage {
                        reference: i.reference,
                        digest: i.digest,
                        image_id: i.image_id,
                        architecture: i.architecture,
                        created: i.created,
                        revision: i.revision,
                        version: i.version,
                        created_label: i.created_label,
                        base_digest: i.base_digest,
                        source: i.source,
                        layer_count: i.layer_count,
                        hosts: i.hosts,
                    })
                    .collect(),
            }
        };
        Explain {
            schema_version: SCHEMA_VERSION,
            service: r.service.clone(),
            a: side(r.a.as_ref()),
            b: side(r.b.as_ref()),
            same_content: r.same_content,
            shared_layers: r.shared_layers.map(|s| SharedLayers {
                shared: s.shared,
                a_total: s.a_total,
                b_total: s.b_total,
            }),
            replicas: r
                .replicas
                .iter()
                .map(|r| Replica {
                    environment: r.environment.clone(),
                    host_id: r.host_id.clone(),
                    container_name: r.container_name.clone(),
                    config_files: r.config_files.as_ref().map(config_files),
                })
                .collect(),
        }
    }
}
