//! Tests of parsing, printing, validating and applying a policy.

use super::*;

const FULL: &str = r#"
grace = "2m"
alert_grace = "10m"
chain = ["dev", ["staging", "preprod"], "production"]

[pinning]
required = ["production", "preprod"]
elsewhere = "off"

[env]
expected_to_differ = ["ENVIRONMENT", "DATABASE_URL"]
ignored = ["HOSTNAME"]

[runtime]
ignored = ["ports"]

[gate]
min_time_in_previous = "30m"
block_on = "warning"

[severity]
kernel = "info"
unpinned_image = "critical"

[[pairs]]
environments = ["dev", "staging"]
level = "ignore"

[services.shop]
expected_to_differ = ["FEATURE_FLAGS"]
ignored_runtime = ["cmd"]
environments = ["staging", "production"]

[services.legacy]
ignore = true

[[waivers]]
kind = "env_value"
service = "shop"
key = "LOG_LEVEL"
environments = ["staging", "production"]
reason = "verbose logs while we debug INC-42"
owner = "team-shop"
expires = 2027-01-31
"#;

fn parse(text: &str) -> Result<Policy, PolicyError> {
    Policy::from_toml(text, "policy.toml")
}

#[test]
fn a_full_policy_parses_into_every_rule() {
    let p = parse(FULL).unwrap();
    assert_eq!(p.grace, Duration::from_secs(120));
    assert_eq!(p.stage_of("preprod"), Some(1));
    assert_eq!(p.stage_of("prod"), None, "the chain replaces the defaults");
    assert!(p.expected_to_differ("shop", "FEATURE_FLAGS"));
    assert!(!p.expected_to_differ("cart", "FEATURE_FLAGS"));
    assert!(p.expected_to_differ("cart", "DATABASE_URL"));
    assert!(p.env_ignored("cart", "HOSTNAME"));
    assert!(p.runtime_ignored("shop", RuntimeField::Cmd));
    assert!(p.runtime_ignored("cart", RuntimeField::Ports));
    assert!(!p.runtime_ignored("cart", RuntimeField::Cmd));
    assert!(p.service_ignored("legacy"));
    assert!(p.should_run("shop", "production") && !p.should_run("shop", "dev"));
    assert_eq!(
        p.severity_of(Kind::Kernel, Severity::Warning),
        Severity::Info
    );
    assert_eq!(p.gate.block_on, Severity::Warning);
    let fleet: Vec<String> = ["dev", "staging", "production"].map(String::from).into();
    assert_eq!(p.level("staging", "dev", &fleet), Level::Ignore);
    assert_eq!(
        p.unpinned_severity("preprod", &fleet),
        Some(Severity::Warning)
    );
    assert_eq!(p.unpinned_severity("dev", &fleet), None);
    assert_eq!(
        p.waivers[0].expires,
        humantime::parse_rfc3339("2027-01-31T00:00:00Z").unwrap()
    );
}

#[test]
fn the_printed_policy_parses_back_to_itself() {
    for policy in [Policy::default(), parse(FULL).unwrap()] {
        let text = policy.to_toml();
        assert_eq!(parse(&text).unwrap(), policy, "{text}");
    }
}

#[test]
fn a_waiver_expiring_at_a_fraction_of_a_second_prints_back_to_itself() {
    // Found by fuzz/config: the printed expiry dropped the fraction, so the
    // printed policy's waiver expired up to a second earlier.
    let policy = parse(
        "[[waivers]]\nkind = \"env_value\"\nreason = \"r\"\nowner = \"o\"\nexpires = \"2027-01-31T12:00:00.25Z\"\n",
    )
    .unwrap();
    let text = policy.to_toml();
    assert!(text.contains("2027-01-31T12:00:00.250000000Z"), "{text}");
    assert_eq!(parse(&text).unwrap(), policy, "{text}");
    let whole = parse(FULL).unwrap().to_toml();
    assert!(!whole.contains(".000000000Z"), "{whole}");
}

#[test]
fn the_defaults_form_the_conventional_chain() {
    let p = Policy::default();
    let fleet: Vec<String> = ["dev", "staging", "production"].map(String::from).into();
    assert_eq!(
        p.ordered(["qa", "production", "dev", "staging", "canary"]),
        vec!["dev", "staging", "production", "canary", "qa"]
    );
    assert_eq!(p.level("staging", "production", &fleet), Level::Strict);
    assert_eq!(p.level("production", "staging", &fleet), Level::Strict);
    assert_eq!(p.level("dev", "staging", &fleet), Level::Relaxed);
    assert_eq!(p.level("dev", "production", &fleet), Level::Relaxed);
    assert_eq!(p.level("qa", "production", &fleet), Level::Standard);
    // Without staging, dev and production are the last two stages.
    let two: Vec<String> = ["development", "prod"].map(String::from).into();
    assert_eq!(p.level("development", "prod", &two), Level::Strict);
    assert_eq!(p.unpinned_severity("prod", &two), Some(Severity::Warning));
    assert_eq!(
        p.unpinned_severity("development", &two),
        Some(Severity::Info)
    );
    assert_eq!(
        p.previous_stage("production", &fleet).as_deref(),
        Some("staging")
    );
    assert_eq!(
        p.previous_stage("prod", &two).as_deref(),
        Some("development")
    );
    assert_eq!(p.previous_stage("dev", &fleet), None);
    assert_eq!(p.grace, Duration::ZERO);
    assert_eq!(p.gate.min_time_in_previous, Duration::ZERO);
}

fn error(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn a_typo_is_an_error_naming_the_line_and_key() {
    let e = error("grace = \"1m\"\n\n[env]\nexpected_to_diffe = [\"A\"]\n");
    assert!(e.starts_with("policy policy.toml: line 4"), "{e}");
    assert!(e.contains("expected_to_diffe"), "{e}");

    let e = error("[severity]\nkernal = \"info\"\n");
    assert!(e.contains("line 2"), "{e}");
    assert!(e.contains("unknown finding kind \"kernal\""), "{e}");
    assert!(e.contains("image_digest"), "lists the valid kinds: {e}");

    let e = error("[severity]\nkernel = \"severe\"\n");
    assert!(e.contains("unknown severity \"severe\""), "{e}");

    let e = error("grace = \"soon\"\n");
    assert!(
        e.contains("line 1") && e.contains("invalid duration \"soon\""),
        "{e}"
    );

    let e = error("[runtime]\nignored = [\"port\"]\n");
    assert!(e.contains("line 2") && e.contains("port"), "{e}");

    let e = error("[[pairs]]\nenvironments = [\"dev\", \"staging\"]\nlevel = \"lenient\"\n");
    assert!(e.contains("line 3") && e.contains("lenient"), "{e}");

    let e = error("grace = [");
    assert!(e.contains("line 1"), "{e}");
}

#[test]
fn a_waiver_needs_a_reason_an_owner_and_an_expiry() {
    let base = "[[waivers]]\nkind = \"env_value\"\nreason = \"r\"\nowner = \"o\"\n";
    let e = error(base);
    assert!(e.contains("expires"), "{e}");
    let e = error(&format!(
        "chain = [\"dev\"]\n\n{}expires = \"2027-01-01\"\n",
        base.replace("owner = \"o\"", "owner = \" \"")
    ));
    assert!(
        e.contains("line 3: waivers[0] (env_value): `owner` is empty"),
        "{e}"
    );
    let e = error(&format!("{base}expires = \"next week\"\n"));
    assert!(e.contains("invalid time \"next week\""), "{e}");
    assert!(parse(&format!("{base}expires = \"2027-01-01T12:00:00Z\"\n")).is_ok());
}

#[test]
fn bad_environment_names_and_duplicate_stages_are_refused() {
    let e = error("chain = [\"dev\", \"Prod!\"]\n");
    assert!(e.contains("chain[1]") && e.contains("Prod!"), "{e}");
    let e = error("chain = [\"dev\", [\"staging\", \"dev\"]]\n");
    assert!(e.contains("\"dev\" is already stage 0"), "{e}");
    let e = error("[[pairs]]\nenvironments = [\"dev\", \"dev\"]\nlevel = \"strict\"\n");
    assert!(e.contains("same environment twice"), "{e}");
    let e = error("[pinning]\nrequired = [\"@latest\"]\n");
    assert!(e.contains("pinning.required"), "{e}");
}
