//! Image archives built in memory, as `docker save` writes them: for the
//! unit tests, the fuzz seeds and anyone who needs a realistic archive
//! without an engine.

use sha2::{Digest, Sha256};

use crate::tar::build::{Item, file, tar};

/// An image to write into an archive.
#[derive(Debug, Clone, Default)]
pub struct FixtureImage {
    /// Its tag, e.g. `app:1`.
    pub tag: String,
    /// Its env, `KEY=value`.
    pub env: Vec<String>,
    /// Its layers, bottom first, each with the `created_by` it records.
    pub layers: Vec<(String, Vec<Item>)>,
}

impl FixtureImage {
    /// An image tagged `tag` with no layers yet.
    pub fn new(tag: &str) -> Self {
        FixtureImage {
            tag: tag.to_owned(),
            ..Default::default()
        }
    }

    /// Adds an env variable.
    pub fn env(mut self, kv: &str) -> Self {
        self.env.push(kv.to_owned());
        self
    }

    /// Adds a layer.
    pub fn layer(mut self, created_by: &str, items: Vec<Item>) -> Self {
        self.layers.push((created_by.to_owned(), items));
        self
    }
}

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A `docker save` archive (legacy layout: `<id>/layer.tar`, `<id>.json`,
/// `manifest.json` last, as docker 20.10 writes it) of `images`; a layer
/// that two images share is written once.
pub fn docker_save(images: &[FixtureImage]) -> Vec<u8> {
    let mut items: Vec<Item> = Vec::new();
    let mut written: Vec<String> = Vec::new();
    let mut manifest = Vec::new();
    for image in images {
        let mut diff_ids = Vec::new();
        let mut layer_paths = Vec::new();
        let mut history = Vec::new();
        for (created_by, layer_items) in &image.layers {
            let data = tar(layer_items);
            let id = sha(&data);
            diff_ids.push(format!("sha256:{id}"));
            let path = format!("{id}/layer.tar");
            if !written.contains(&id) {
                items.push(file(&path, &data));
                written.push(id);
            }
            layer_paths.push(path);
            history.push(serde_json::json!({ "created_by": created_by }));
            history.push(serde_json::json!({ "created_by": "ENV X=1", "empty_layer": true }));
        }
        let config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": { "Env": image.env },
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
            "history": history,
        });
        let config = serde_json::to_vec(&config).expect("JSON");
        let config_path = format!("{}.json", sha(&config));
        items.push(file(&config_path, &config));
        manifest.push(serde_json::json!({
            "Config": config_path,
            "RepoTags": [image.tag],
            "Layers": layer_paths,
        }));
    }
    items.push(file(
        "manifest.json",
        &serde_json::to_vec(&manifest).expect("JSON"),
    ));
    tar(&items)
}
