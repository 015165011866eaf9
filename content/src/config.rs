//! An image's config JSON: platform, env, DiffIDs and layer history.

use serde::Deserialize;

use crate::ContentError;

/// What the image config says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `os`, e.g. `linux`.
    pub os: String,
    /// `architecture`, with its `variant` when there is one (`arm/v7`).
    pub architecture: String,
    /// `config.Env`, as `KEY=value`.
    pub env: Vec<String>,
    /// `rootfs.diff_ids`, bottom layer first.
    pub diff_ids: Vec<String>,
    /// The `created_by` of each layer, aligned with `diff_ids`: history
    /// entries with `empty_layer` are dropped. `None` when the history is
    /// shorter than the layers.
    pub created_by: Vec<Option<String>>,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    config: Option<RawRun>,
    #[serde(default)]
    rootfs: Option<RawRootfs>,
    #[serde(default)]
    history: Vec<RawHistory>,
}

#[derive(Deserialize)]
struct RawRun {
    #[serde(rename = "Env", default)]
    env: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RawRootfs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

#[derive(Deserialize)]
struct RawHistory {
    #[serde(default)]
    created_by: Option<String>,
    #[serde(default)]
    empty_layer: bool,
}

/// Parses a config JSON named `input` in errors.
pub fn parse(data: &[u8], input: &str) -> Result<ImageConfig, ContentError> {
    let raw: Raw = serde_json::from_slice(data).map_err(|e| ContentError::Layout {
        input: input.to_owned(),
        reason: format!("not an image config: {e}"),
    })?;
    let diff_ids = raw.rootfs.map(|r| r.diff_ids).unwrap_or_default();
    let mut created_by: Vec<Option<String>> = raw
        .history
        .into_iter()
        .filter(|h| !h.empty_layer)
        .map(|h| h.created_by)
        .collect();
    created_by.resize(diff_ids.len(), None);
    Ok(ImageConfig {
        os: raw.os,
        architecture: match raw.variant {
            Some(v) if !v.is_empty() => format!("{}/{v}", raw.architecture),
            _ => raw.architecture,
        },
        env: raw.config.and_then(|c| c.env).unwrap_or_default(),
        diff_ids,
        created_by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_layers_are_dropped_from_the_history_so_it_lines_up() {
        let json = br#"{"architecture":"arm","variant":"v7","os":"linux",
            "config":{"Env":["PATH=/bin","PYTHON_VERSION=3.12.1"]},
            "rootfs":{"type":"layers","diff_ids":["sha256:a","sha256:b"]},
            "history":[{"created_by":"ADD rootfs /"},{"created_by":"ENV X=1","empty_layer":true},
                       {"created_by":"RUN make"}]}"#;
        let c = parse(json, "c.json").unwrap();
        assert_eq!(c.architecture, "arm/v7");
        assert_eq!(c.env[1], "PYTHON_VERSION=3.12.1");
        assert_eq!(
            c.created_by,
            vec![Some("ADD rootfs /".to_owned()), Some("RUN make".to_owned())]
        );
        let err = parse(b"[1]", "c.json").unwrap_err().to_string();
        assert!(err.starts_with("c.json: not an image config"), "{err}");
    }
}
