use proptest::prelude::*;

use super::*;
use crate::fingerprint::FleetKey;

fn flat(format: Format, text: &str) -> Vec<(String, String)> {
    flatten(format, text.as_bytes()).unwrap_or_else(|e| panic!("{format}: {e}\n{text}"))
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn yaml_nested_keys_sequences_and_scalars_become_key_paths() {
    let got = flat(
        Format::Yaml,
        "server:\n  tls:\n    enabled: true\n  port: 8080\nfeatures: [a, b, c]\nempty: {}\nnone: []\nnothing: ~\n\"odd.key\": 1\n",
    );
    assert_eq!(
        got,
        pairs(&[
            ("[\"odd.key\"]", "1"),
            ("empty", "{}"),
            ("features[0]", "a"),
            ("features[1]", "b"),
            ("features[2]", "c"),
            ("none", "[]"),
            ("nothing", "null"),
            ("server.port", "8080"),
            ("server.tls.enabled", "true"),
        ])
    );
}

#[test]
fn yaml_key_order_comments_and_whitespace_do_not_change_the_keys() {
    let a = flat(Format::Yaml, "a: 1\nb:\n  c: x\n");
    let b = flat(
        Format::Yaml,
        "# a comment\nb:\n    c:   x   # trailing\n\n\na:    1\n",
    );
    assert_eq!(a, b);
}

#[test]
fn yaml_several_documents_are_prefixed_from_one() {
    let got = flat(Format::Yaml, "a: 1\n---\na: 2\n---\nplain\n");
    assert_eq!(
        got,
        pairs(&[("[doc1]a", "1"), ("[doc2]a", "2"), ("[doc3]$", "plain")])
    );
    // One document: no prefix, even with an explicit start marker.
    assert_eq!(flat(Format::Yaml, "---\na: 1\n"), pairs(&[("a", "1")]));
}

#[test]
fn yaml_merge_keys_are_applied() {
    let got = flat(
        Format::Yaml,
        "base: &b {x: 1, y: 2}\nprod:\n  <<: *b\n  y: 3\n",
    );
    assert!(got.contains(&("prod.x".into(), "1".into())), "{got:?}");
    assert!(got.contains(&("prod.y".into(), "3".into())), "{got:?}");
}

#[test]
fn yaml_billion_laughs_is_refused_not_expanded() {
    let mut bomb = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for (i, name) in ["b", "c", "d", "e", "f", "g", "h", "i"].iter().enumerate() {
        let prev = ["a", "b", "c", "d", "e", "f", "g", "h"][i];
        let refs = vec![format!("*{prev}"); 9].join(",");
        bomb.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    let started = std::time::Instant::now();
    let err = flatten(Format::Yaml, bomb.as_bytes()).unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(
        matches!(err, FlattenError::Syntax { .. } | FlattenError::TooManyKeys),
        "{err}"
    );
}

#[test]
fn yaml_malformed_is_a_syntax_error_naming_the_line() {
    let err = flatten(Format::Yaml, b"a: 1\nb: [unclosed\nc: 2\n").unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("yaml: "), "{msg}");
    assert!(msg.contains("line"), "{msg}");
}

#[test]
fn yaml_parse_error_never_quotes_the_value() {
    let err = flatten(Format::Yaml, b"password: \"hunter2-planted\n  x: [").unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn json_flattens_like_yaml() {
    let json = flat(
        Format::Json,
        r#"{"server": {"tls": {"enabled": true}, "port": 8080}, "features": ["a", "b"]}"#,
    );
    let yaml = flat(
        Format::Yaml,
        "server: {tls: {enabled: true}, port: 8080}\nfeatures: [a, b]\n",
    );
    assert_eq!(json, yaml);
}

#[test]
fn json_too_deep_is_refused() {
    let deep = "[".repeat(200) + &"]".repeat(200);
    assert!(flatten(Format::Json, deep.as_bytes()).is_err());
}

#[test]
fn toml_tables_arrays_and_datetimes() {
    let got = flat(
        Format::Toml,
        "title = \"x\"\n[server]\nport = 8080\nratio = 0.5\nwhen = 1979-05-27T07:32:00Z\n[[hosts]]\nname = \"a\"\n",
    );
    assert_eq!(
        got,
        pairs(&[
            ("hosts[0].name", "a"),
            ("server.port", "8080"),
            ("server.ratio", "0.5"),
            ("server.when", "1979-05-27T07:32:00Z"),
            ("title", "x"),
        ])
    );
    let err = flatten(Format::Toml, b"a = 1\nb = \"secret-planted\n").unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");
    assert!(!err.to_string().contains("secret-planted"), "{err}");
}

#[test]
fn ini_sections_and_comments() {
    let got = flat(
        Format::Ini,
        "top = 1\n; c\n# c\n[db]\nhost = db.internal\nport: 5432\n[ cache ]\nttl=60\n",
    );
    assert_eq!(
        got,
        pairs(&[
            ("cache.ttl", "60"),
            ("db.host", "db.internal"),
            ("db.port", "5432"),
            ("top", "1"),
        ])
    );
    let err = flatten(Format::Ini, b"[a]\nnot a pair\n").unwrap_err();
    assert_eq!(err.to_string(), "ini: expected key = value at line 2");
}

#[test]
fn dotenv_quotes_export_and_comments() {
    let got = flat(
        Format::Dotenv,
        "# c\nexport A=1\nB=\"two\\nlines\"\nC='lit\\n'\nD=plain # comment\nE=\n",
    );
    assert_eq!(
        got,
        pairs(&[
            ("A", "1"),
            ("B", "two\nlines"),
            ("C", "lit\\n"),
            ("D", "plain"),
            ("E", ""),
        ])
    );
    let err = flatten(Format::Dotenv, b"A=1\nB\n").unwrap_err();
    assert_eq!(err.to_string(), "env: expected KEY=value at line 2");
}

#[test]
fn properties_separators_continuations_and_escapes() {
    let got = flat(
        Format::Properties,
        "# c\n! c\nserver.port=8080\nname: app\nspaced value here\nlong = a,\\\n   b\nu=\\u0041\\t\nkey\\=x = y\n",
    );
    assert_eq!(
        got,
        pairs(&[
            ("key=x", "y"),
            ("long", "a,b"),
            ("name", "app"),
            ("server.port", "8080"),
            ("spaced", "value here"),
            ("u", "A\t"),
        ])
    );
    assert!(flatten(Format::Properties, b"a=\\u00\n").is_err());
}

#[test]
fn detection_by_extension_then_content() {
    assert_eq!(detect("/etc/app/app.yaml", b"{"), Format::Yaml);
    assert_eq!(detect("/etc/app/app.YML", b""), Format::Yaml);
    assert_eq!(detect("/etc/app/a.json", b""), Format::Json);
    assert_eq!(detect("/etc/app/a.toml", b""), Format::Toml);
    assert_eq!(detect("/etc/app/a.ini", b""), Format::Ini);
    assert_eq!(detect("/app/config/.env", b""), Format::Dotenv);
    assert_eq!(detect("/app/config/prod.env", b""), Format::Dotenv);
    assert_eq!(detect("/etc/a.properties", b""), Format::Properties);
    assert_eq!(detect("/etc/app/settings", b" {\"a\": 1}"), Format::Json);
    assert_eq!(detect("/etc/app/settings", b"---\na: 1\n"), Format::Yaml);
    assert_eq!(detect("/etc/app/settings", b"{not json"), Format::Unknown);
    assert_eq!(detect("/etc/app/a.conf", b"[x]\na = 1\n"), Format::Ini);
    assert_eq!(
        detect("/etc/nginx/nginx.conf", b"server {\n listen 80;\n}\n"),
        Format::Unknown
    );
    assert!(flat(Format::Unknown, "anything").is_empty());
}

#[test]
fn binary_content_is_recognised() {
    assert!(looks_binary(b"\x7fELF\0\0\0"));
    assert!(looks_binary(&[0xff, 0xfe, 0x41]));
    assert!(!looks_binary(b"a: 1\n"));
}

#[test]
fn too_many_keys_is_refused_not_cut() {
    let text: String = (0..=MAX_KEYS).map(|i| format!("k{i}=v\n")).collect();
    assert_eq!(
        flatten(Format::Dotenv, text.as_bytes()).unwrap_err(),
        FlattenError::TooManyKeys
    );
}

fn key() -> FleetKey {
    FleetKey::from_bytes(*b"0123456789abcdef")
}

#[test]
fn values_are_fingerprinted_by_default_and_bound_to_file_and_key() {
    let policy = ClearConfigPolicy::default();
    let a = protect(
        &key(),
        &policy,
        "/etc/a.yaml",
        false,
        pairs(&[("x", "1"), ("y", "1")]),
    );
    let b = protect(&key(), &policy, "/etc/b.yaml", false, pairs(&[("x", "1")]));
    let fp = |k: &ConfigKey| {
        assert_eq!(k.value, None);
        k.fingerprint.clone()
    };
    assert_eq!(fp(&a[0]).len(), 64);
    assert_ne!(fp(&a[0]), fp(&a[1]), "same value, other key");
    assert_ne!(fp(&a[0]), fp(&b[0]), "same key and value, other file");
    assert_ne!(
        fp(&a[0]),
        key().fingerprint("x", "1"),
        "never an env fingerprint"
    );
    let again = protect(&key(), &policy, "/etc/a.yaml", false, pairs(&[("x", "1")]));
    assert_eq!(fp(&a[0]), fp(&again[0]));
}

#[test]
fn allowlisted_keys_go_in_clear_but_never_secrets() {
    let policy = ClearConfigPolicy::parse(&["/etc/app/*.yaml=features.*"]).unwrap();
    let got = protect(
        &key(),
        &policy,
        "/etc/app/app.yaml",
        false,
        pairs(&[
            ("features.checkout", "on"),
            ("features.api_token", "s3cr3t"),
            ("features.db", "postgres://u:pw@db/app"),
            ("server.port", "80"),
        ]),
    );
    assert_eq!(got[0].value.as_deref(), Some("on"));
    assert_eq!(got[0].fingerprint.len(), 64);
    for k in &got[1..] {
        assert_eq!(k.value, None, "{k:?}");
    }
    // Another file: not allowlisted.
    let other = protect(
        &key(),
        &policy,
        "/etc/other.yaml",
        false,
        pairs(&[("features.x", "on")]),
    );
    assert_eq!(other[0].value, None);
    // A secret mount: never clear, whatever the allowlist.
    let everything = ClearConfigPolicy::parse(&["/*=*"]).unwrap();
    let secret = protect(
        &key(),
        &everything,
        "/run/secrets/app.yaml",
        true,
        pairs(&[("mode", "x")]),
    );
    assert_eq!(secret[0].value, None);
}

#[test]
fn secret_mounts_are_recognised() {
    assert!(is_secret_mount("/run/secrets/db", "/srv/secrets/db"));
    assert!(is_secret_mount(
        "/etc/creds/token",
        "/var/lib/kubelet/pods/x/volumes/kubernetes.io~secret/creds"
    ));
    assert!(is_secret_mount(
        "/etc/creds/token",
        "/var/lib/kubelet/pods/x/volumes/kubernetes.io~projected/creds"
    ));
    assert!(!is_secret_mount(
        "/etc/app/app.yaml",
        "/var/lib/kubelet/pods/x/volumes/kubernetes.io~configmap/app"
    ));
}

#[test]
fn clear_config_entries_must_name_a_file_glob_and_a_key() {
    for bad in ["features.*", "/etc/x.yaml=", "etc/x=y"] {
        let err = ClearConfigPolicy::parse(&[bad]).unwrap_err();
        assert!(err.to_string().contains(bad), "{err}");
    }
}

/// A YAML value tree, as text, with the pairs it must flatten into.
fn yaml_tree() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::btree_map("[a-z][a-z0-9_]{0,6}", "[a-z0-9 ]{0,8}", 1..12)
        .prop_map(|m| m.into_iter().collect())
}

proptest! {
    #[test]
    fn every_flattener_is_total_on_any_text(text in "\\PC{0,200}", ext in prop::sample::select(vec!["yaml", "json", "toml", "ini", "env", "properties", "conf", "txt"])) {
        let path = format!("/etc/x.{ext}");
        let format = detect(&path, text.as_bytes());
        if let Ok(pairs) = flatten(format, text.as_bytes()) {
            prop_assert!(pairs.len() <= MAX_KEYS);
            prop_assert!(pairs.windows(2).all(|w| w[0].0 < w[1].0));
        }
    }

    #[test]
    fn yaml_key_order_never_matters(pairs in yaml_tree(), seed in any::<u64>()) {
        // Each key under the same parent, written in two orders.
        let mut lines: Vec<String> = pairs.iter().map(|(k, v)| format!("  {k}: \"{v}\"\n")).collect();
        let forward = format!("sec:\n{}", lines.concat());
        let mut rng = fastrand::Rng::with_seed(seed);
        rng.shuffle(&mut lines);
        let shuffled = format!("# c\nsec:\n{}", lines.concat());
        prop_assert_eq!(flat(Format::Yaml, &forward), flat(Format::Yaml, &shuffled));
        let expected: Vec<(String, String)> = pairs.iter().map(|(k, v)| (format!("sec.{k}"), v.clone())).collect();
        prop_assert_eq!(flat(Format::Yaml, &forward), expected);
    }

    #[test]
    fn json_and_yaml_agree_on_the_same_tree(pairs in yaml_tree()) {
        let object: serde_json::Map<String, serde_json::Value> = pairs.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
        let json = serde_json::to_string(&serde_json::json!({"root": object, "list": [1, true, null]})).unwrap();
        // JSON is YAML.
        prop_assert_eq!(flat(Format::Json, &json), flat(Format::Yaml, &json));
    }

    #[test]
    fn no_clear_value_without_an_allowlist(pairs in yaml_tree()) {
        let out = protect(&key(), &ClearConfigPolicy::default(), "/etc/a.yaml", false, pairs.clone());
        prop_assert_eq!(out.len(), pairs.len());
        for k in &out {
            prop_assert!(k.value.is_none(), "clear without allowlist: {:?}", k);
        }
    }
}

#[test]
fn an_overlong_key_path_is_refused_and_a_long_value_never_in_clear() {
    let long = "k".repeat(2000);
    assert_eq!(
        flatten(Format::Dotenv, format!("{long}=1\n").as_bytes()).unwrap_err(),
        FlattenError::KeyTooLong
    );
    let policy = ClearConfigPolicy::parse(&["/etc/*=*"]).unwrap();
    let got = protect(
        &key(),
        &policy,
        "/etc/a",
        false,
        pairs(&[("a", &"v".repeat(5000)), ("b", "short")]),
    );
    assert_eq!(got[0].value, None);
    assert_eq!(got[1].value.as_deref(), Some("short"));
}
