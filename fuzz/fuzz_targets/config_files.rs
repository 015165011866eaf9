//! The agent's config file flatteners (`envparity_agent::config_files`):
//! YAML, JSON, TOML, INI, `.env` and `.properties`, and format detection.
//!
//! Input: the first byte picks the format (modulo the seven, the last being
//! detection from a path `/etc/app/settings` and the content); the rest is
//! the file.
//!
//! Asserted, besides "never panics" (and, under libFuzzer's limits, never
//! runs away on alias bombs or deep nesting):
//! - a flattened file has at most `MAX_KEYS` keys, sorted and unique;
//! - no key path is empty;
//! - with no `--clear-config` allowlist every value leaves as a 64-hex
//!   fingerprint, never in clear.
#![no_main]

use envparity_agent::config_files::{
    ClearConfigPolicy, Format, MAX_KEYS, detect, flatten, looks_binary, protect,
};
use envparity_agent::fingerprint::FleetKey;
use libfuzzer_sys::fuzz_target;

const FORMATS: [Format; 6] = [
    Format::Yaml,
    Format::Json,
    Format::Toml,
    Format::Ini,
    Format::Dotenv,
    Format::Properties,
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, content)) = data.split_first() else {
        return;
    };
    let format = FORMATS
        .get(usize::from(pick) % 7)
        .copied()
        .unwrap_or_else(|| detect("/etc/app/settings", content));
    let _ = looks_binary(content);
    let Ok(pairs) = flatten(format, content) else {
        return;
    };
    assert!(pairs.len() <= MAX_KEYS);
    assert!(pairs.windows(2).all(|w| w[0].0 < w[1].0), "{pairs:?}");
    assert!(pairs.iter().all(|(k, _)| !k.is_empty()), "{pairs:?}");
    let key = FleetKey::from_bytes(*b"fuzz-fleet-key-0123");
    for k in protect(
        &key,
        &ClearConfigPolicy::default(),
        "/etc/app/settings",
        false,
        pairs,
    ) {
        assert_eq!(k.fingerprint.len(), 64);
        assert!(k.value.is_none(), "clear value without an allowlist: {k:?}");
    }
});
