//! The package database parsers (dpkg status, apk installed, Python
//! METADATA, node package.json, os-release) and the runtime env reader, on
//! any bytes.
//!
//! Asserted, besides "never panics": every package read has a non-empty
//! name and version, no more packages come out of a file than it has
//! stanzas, and a Python name normalised twice is normalised once.
#![no_main]

use envparity_content::packages::{apk, dpkg, node, os_release, python};
use envparity_content::runtime::from_env;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let stanzas = text.split("\n\n").count() + text.lines().count();
    let debs = dpkg::parse(&text);
    assert!(debs.len() <= stanzas);
    for p in &debs {
        assert!(!p.name.is_empty() && !p.version.is_empty(), "{p:?}");
    }
    let apks = apk::parse(&text);
    assert!(apks.len() <= stanzas);
    for p in &apks {
        assert!(!p.name.is_empty() && !p.version.is_empty(), "{p:?}");
    }
    if let Some((name, version)) = node::parse(data) {
        assert!(!name.trim().is_empty() && !version.trim().is_empty());
    }
    if let Some((name, _)) = python::parse(&text) {
        assert_eq!(python::normalise(&name), name, "normalising is idempotent");
    }
    let _ = os_release::parse(&text);
    let env: Vec<String> = text.lines().map(str::to_owned).collect();
    for r in from_env(&env) {
        assert!(!r.version.is_empty());
    }
});
