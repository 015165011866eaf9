//! An image archive as `docker save` writes it (`manifest.json`, config
//! JSON, one tar per layer), or an OCI layout (`index.json`, `blobs/`),
//! read as one stream: nothing is written to disk, and nothing but the
//! small JSON files and the package database files is held.
//!
//! The order of an archive's entries is the writer's: `docker save` writes
//! the layers before `manifest.json`. So each entry is recognised by its
//! first block (a tar header, a gzip magic, JSON) and every layer is read
//! when it passes; the manifest then says which layers make which image.
//! A layer a manifest names but the archive does not hold, a compressed
//! layer, a DiffID that does not match the layer's digest: each is an error
//! naming the archive and the layer.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::bounded::Capped;
use crate::config::{self, ImageConfig};
use crate::digest::DigestKey;
use crate::layer::{Layer, read_layer};
use crate::path::{normalise, resolve_link};
use crate::tar::{EntryKind, TarCaps, TarReader};
use crate::{ContentError, Limits};

/// How many times [`Limits::max_json`] the JSON files of one archive may
/// hold together.
const JSON_FILES_HELD: u64 = 8;

/// One image of an archive.
#[derive(Debug, Clone)]
pub struct ArchivedImage {
    /// Its tags (`RepoTags`, or the OCI ref name), possibly none.
    pub names: Vec<String>,
    /// `sha256:<hex>` of its config: the image id.
    pub id: String,
    /// Its config.
    pub config: ImageConfig,
    /// Its layers, bottom first; shared layers are shared.
    pub layers: Vec<Arc<Layer>>,
}

/// The images of one archive.
#[derive(Debug, Clone)]
pub struct Archive {
    /// The archive's name in errors.
    pub input: String,
    /// The images, in the manifest's order.
    pub images: Vec<ArchivedImage>,
    /// Bytes read.
    pub bytes: u64,
}

impl Archive {
    /// The image named `name`: a tag (`busybox` means `busybox:latest`) or
    /// an id or a prefix of one (`sha256:` optional).
    pub fn image(&self, name: &str) -> Result<&ArchivedImage, ContentError> {
        let tagged = if name
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
        {
            name.to_owned()
        } else {
            format!("{name}:latest")
        };
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        self.images
            .iter()
            .find(|i| i.names.iter().any(|n| n == name || *n == tagged))
            .or_else(|| {
                (hex.len() >= 12 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
                    .then(|| self.images.iter().find(|i| i.id[7..].starts_with(hex)))
                    .flatten()
            })
            .ok_or_else(|| ContentError::NoSuchImage {
                input: self.input.clone(),
                name: name.to_owned(),
                held: self.held(),
            })
    }

    /// The archive's one image; an error when it holds none or several.
    pub fn only(&self) -> Result<&ArchivedImage, ContentError> {
        match self.images.as_slice() {
            [one] => Ok(one),
            _ => Err(ContentError::Layout {
                input: self.input.clone(),
                reason: format!(
                    "holds {} images ({}); name one",
                    self.images.len(),
                    self.held()
                ),
            }),
        }
    }

    fn held(&self) -> String {
        let names: Vec<String> = self
            .images
            .iter()
            .map(|i| i.names.first().cloned().unwrap_or_else(|| i.id.clone()))
            .collect();
        if names.is_empty() {
            "nothing".to_owned()
        } else {
            names.join(", ")
        }
    }
}

/// What an outer entry turned out to be.
enum Blob {
    Layer(Arc<Layer>),
    Json(Vec<u8>),
    Compressed,
    Other,
}

/// Reads an archive from `r`, named `input` in errors.
pub fn read_archive(
    r: impl Read,
    input: &str,
    limits: &Limits,
    key: &DigestKey,
) -> Result<Archive, ContentError> {
    let mut capped = Capped::new(r, limits.max_bytes);
    let caps = TarCaps {
        max_path: limits.max_path,
        max_entries: limits.max_entries,
    };
    let mut outer = TarReader::new(&mut capped, input, caps);
    let mut blobs: HashMap<String, Blob> = HashMap::new();
    let mut links: HashMap<String, String> = HashMap::new();
    let mut held = crate::layer::Held::default();
    let mut inner_entries = 0u64;
    let mut layers_seen = 0usize;
    let mut json_held = 0u64;
    while let Some(h) = outer.next_header()? {
        let Some(path) = normalise(&h.path, input)? else {
            continue;
        };
        match h.kind {
            EntryKind::Symlink => {
                if let Some(target) = resolve_link(&path, &h.link) {
                    links.insert(path, target);
                }
                continue;
            }
            EntryKind::Hardlink => {
                if let Some(target) = normalise(&h.link, input)? {
                    links.insert(path, target);
                }
                continue;
            }
            EntryKind::File => {}
            _ => continue,
        }
        if outer.entries() + inner_entries > limits.max_entries {
            return Err(ContentError::OverCap {
                input: input.to_owned(),
                what: "entries",
                cap: limits.max_entries,
            });
        }
        let size = h.size;
        let name = format!("{input}: {path}");
        let left = limits
            .max_entries
            .saturating_sub(outer.entries() + inner_entries);
        let mut data = outer.data();
        let mut head = Vec::with_capacity(512);
        (&mut data)
            .take(512)
            .read_to_end(&mut head)
            .map_err(|e| ContentError::io(&name, e))?;
        let is_tar =
            head.len() == 512 && (&head[257..262] == b"ustar" || head.iter().all(|&b| b == 0));
        let blob = if is_tar {
            layers_seen += 1;
            if layers_seen > limits.max_layers * 4 {
                return Err(ContentError::OverCap {
                    input: input.to_owned(),
                    what: "layers",
                    cap: (limits.max_layers * 4) as u64,
                });
            }
            let layer = read_layer(head.chain(&mut data), &name, limits, key, &mut held, left)
                .map_err(|e| match e {
                    // The layer was given what was left of the archive's
                    // entries; the cap to name is the archive's.
                    ContentError::OverCap {
                        input,
                        what: "entries",
                        ..
                    } => ContentError::OverCap {
                        input,
                        what: "entries",
                        cap: limits.max_entries,
                    },
                    e => e,
                })?;
            inner_entries += layer.tar_entries;
            Blob::Layer(Arc::new(layer))
        } else if head.starts_with(&[0x1f, 0x8b]) {
            Blob::Compressed
        } else if matches!(head.first(), Some(b'{' | b'[')) && size <= limits.max_json {
            // Each JSON file is small, but an archive could hold many.
            json_held += size;
            if json_held > JSON_FILES_HELD * limits.max_json {
                return Err(ContentError::OverCap {
                    input: input.to_owned(),
                    what: "bytes of JSON files",
                    cap: JSON_FILES_HELD * limits.max_json,
                });
            }
            let mut json = head;
            data.read_to_end(&mut json)
                .map_err(|e| ContentError::io(&name, e))?;
            Blob::Json(json)
        } else {
            Blob::Other
        };
        blobs.insert(path, blob);
    }
    drop(outer);
    // The rest of the stream (past the end-of-archive blocks) is not read:
    // a writer pads to a record size, and nothing after it is ours.
    let bytes = capped.bytes_read();
    let plan = Plan {
        input,
        blobs: &blobs,
        links: &links,
        limits,
    };
    let images = match blobs.get("manifest.json") {
        Some(Blob::Json(json)) => plan.docker(json)?,
        _ => match blobs.get("index.json") {
            Some(Blob::Json(json)) => plan.oci(json)?,
            _ => {
                return Err(ContentError::Layout {
                    input: input.to_owned(),
                    reason: "neither manifest.json nor index.json: not an image archive (docker save or OCI layout)".to_owned(),
                });
            }
        },
    };
    Ok(Archive {
        input: input.to_owned(),
        images,
        bytes,
    })
}

#[derive(Deserialize)]
struct DockerManifest {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

#[derive(Deserialize)]
struct OciIndex {
    #[serde(default)]
    manifests: Vec<OciDescriptor>,
}

#[derive(Deserialize)]
struct OciDescriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    annotations: HashMap<String, String>,
}

#[derive(Deserialize)]
struct OciManifest {
    config: OciDescriptor,
    #[serde(default)]
    layers: Vec<OciDescriptor>,
}

struct Plan<'a> {
    input: &'a str,
    blobs: &'a HashMap<String, Blob>,
    links: &'a HashMap<String, String>,
    limits: &'a Limits,
}

impl Plan<'_> {
    fn layout(&self, reason: String) -> ContentError {
        ContentError::Layout {
            input: self.input.to_owned(),
            reason,
        }
    }

    /// The blob at `path`, following the archive's own links (docker save
    /// links a repeated layer to its first copy), at most 16 hops.
    fn blob(&self, path: &str) -> Result<&Blob, ContentError> {
        let mut at = normalise(path, self.input)?.unwrap_or_default();
        for _ in 0..16 {
            if let Some(blob) = self.blobs.get(&at) {
                return Ok(blob);
            }
            match self.links.get(&at) {
                Some(next) => at = next.clone(),
                None => return Err(self.layout(format!("{path} is named but not in the archive"))),
            }
        }
        Err(self.layout(format!("{path}: a loop of links")))
    }

    fn json(&self, path: &str) -> Result<&[u8], ContentError> {
        match self.blob(path)? {
            Blob::Json(json) => Ok(json),
            _ => Err(self.layout(format!(
                "{path} is not a JSON file of at most {} bytes",
                self.limits.max_json
            ))),
        }
    }

    fn image(
        &self,
        names: Vec<String>,
        config_path: &str,
        layer_paths: &[String],
    ) -> Result<ArchivedImage, ContentError> {
        if layer_paths.len() > self.limits.max_layers {
            return Err(ContentError::OverCap {
                input: format!("{}: {config_path}", self.input),
                what: "layers",
                cap: self.limits.max_layers as u64,
            });
        }
        let json = self.json(config_path)?;
        let config = config::parse(json, &format!("{}: {config_path}", self.input))?;
        let id = format!("sha256:{}", hex::encode(Sha256::digest(json)));
        let mut layers = Vec::new();
        for (i, path) in layer_paths.iter().enumerate() {
            let layer = match self.blob(path)? {
                Blob::Layer(l) => l.clone(),
                Blob::Compressed => {
                    return Err(self.layout(format!(
                        "layer {path} is compressed (gzip); only uncompressed layers are read, as docker save writes them"
                    )));
                }
                _ => return Err(self.layout(format!("layer {path} is not a tar"))),
            };
            if let Some(want) = config.diff_ids.get(i)
                && *want != layer.diff_id
            {
                return Err(self.layout(format!(
                    "layer {path} has digest {} but the config says {want}",
                    layer.diff_id
                )));
            }
            layers.push(layer);
        }
        if config.diff_ids.len() != layers.len() {
            return Err(self.layout(format!(
                "{config_path} lists {} layers, the manifest {}",
                config.diff_ids.len(),
                layers.len()
            )));
        }
        Ok(ArchivedImage {
            names,
            id,
            config,
            layers,
        })
    }

    fn docker(&self, json: &[u8]) -> Result<Vec<ArchivedImage>, ContentError> {
        let manifest: Vec<DockerManifest> =
            serde_json::from_slice(json).map_err(|e| self.layout(format!("manifest.json: {e}")))?;
        manifest
            .into_iter()
            .map(|m| self.image(m.repo_tags.unwrap_or_default(), &m.config, &m.layers))
            .collect()
    }

    fn oci(&self, json: &[u8]) -> Result<Vec<ArchivedImage>, ContentError> {
        let index: OciIndex =
            serde_json::from_slice(json).map_err(|e| self.layout(format!("index.json: {e}")))?;
        let blob_path = |digest: &str| digest.replacen(':', "/", 1);
        let mut images = Vec::new();
        for m in index.manifests {
            if m.media_type.contains("index") || m.media_type.contains("manifest.list") {
                return Err(self.layout(format!(
                    "{} is a multi-platform index; only single-platform images are read",
                    m.digest
                )));
            }
            let path = format!("blobs/{}", blob_path(&m.digest));
            let manifest: OciManifest = serde_json::from_slice(self.json(&path)?)
                .map_err(|e| self.layout(format!("{path}: {e}")))?;
            let names = m
                .annotations
                .get("io.containerd.image.name")
                .or_else(|| m.annotations.get("org.opencontainers.image.ref.name"))
                .cloned()
                .into_iter()
                .collect();
            let layers: Vec<String> = manifest
                .layers
                .iter()
                .map(|l| format!("blobs/{}", blob_path(&l.digest)))
                .collect();
            images.push(self.image(
                names,
                &format!("blobs/{}", blob_path(&manifest.config.digest)),
                &layers,
            )?);
        }
        Ok(images)
    }
}

#[cfg(test)]
#[path = "archive_tests.rs"]
mod tests;
