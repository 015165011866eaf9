//! `policy show`'s and `policy check`'s answer: the effective policy.

use envparity_proto::v1;
use serde::Serialize;

use super::{SCHEMA_VERSION, rfc3339};

/// `policy show` output.
#[derive(Debug, Serialize)]
pub struct PolicyShow {
    pub schema_version: u32,
    /// The file it was loaded from, or `built-in defaults`.
    pub source: String,
    pub loaded_at: Option<String>,
    /// The effective policy as TOML.
    pub toml: String,
}

impl PolicyShow {
    /// From the wire.
    pub fn from_proto(r: &v1::GetPolicyResponse) -> Self {
        PolicyShow {
            schema_version: SCHEMA_VERSION,
            source: r.source.clone(),
            loaded_at: rfc3339(r.loaded_at.as_ref()),
            toml: r.toml.clone(),
        }
    }
}
