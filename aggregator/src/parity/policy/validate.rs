//! What a parsed policy must also satisfy: valid and distinct environment
//! names, configuration key patterns `FILE_GLOB:KEY_PATTERN`, and waivers
//! with a reason and an owner.

use std::collections::BTreeMap;

use envparity_proto::names::validate_environment;

use super::Policy;
use super::pinning::LAST_STAGE;

impl Policy {
    pub(super) fn validate(&self, text: &str) -> Result<(), String> {
        let mut seen = BTreeMap::new();
        for (i, stage) in self.chain.iter().enumerate() {
            if stage.0.is_empty() {
                return Err(format!("chain[{i}]: a stage needs at least one name"));
            }
            for name in &stage.0 {
                validate_environment(name).map_err(|e| format!("chain[{i}]: {e}"))?;
                if let Some(other) = seen.insert(name.clone(), i) {
                    return Err(format!(
                        "chain[{i}]: environment {name:?} is already stage {other}"
                    ));
                }
            }
        }
        let env_name = |what: String, name: &str| -> Result<(), String> {
            if name == LAST_STAGE {
                return Ok(());
            }
            validate_environment(name).map_err(|e| format!("{what}: {e}"))
        };
        for name in &self.pinning.required {
            env_name("pinning.required".into(), name)?;
        }
        for (i, pair) in self.pairs.iter().enumerate() {
            for name in &pair.environments {
                env_name(format!("pairs[{i}].environments"), name)?;
            }
            if pair.environments[0] == pair.environments[1] {
                return Err(format!(
                    "pairs[{i}].environments: names the same environment twice ({:?})",
                    pair.environments[0]
                ));
            }
        }
        let config_patterns = |what: String, set: &std::collections::BTreeSet<String>| match set
            .iter()
            .find(|p| !p.starts_with('/') || !p.contains(':'))
        {
            Some(p) => Err(format!(
                "{what}: {p:?} is not FILE_GLOB:KEY_PATTERN, e.g. /etc/app/*.yaml:database.url"
            )),
            None => Ok(()),
        };
        config_patterns(
            "config.expected_to_differ".into(),
            &self.config.expected_to_differ,
        )?;
        config_patterns("config.ignored".into(), &self.config.ignored)?;
        for (service, rules) in &self.services {
            for name in rules.environments.iter().flatten() {
                env_name(format!("services.{service}.environments"), name)?;
            }
            config_patterns(
                format!("services.{service}.config_expected_to_differ"),
                &rules.config_expected_to_differ,
            )?;
            config_patterns(
                format!("services.{service}.ignored_config"),
                &rules.ignored_config,
            )?;
        }
        for (i, w) in self.waivers.iter().enumerate() {
            let at = table_line(text, "waivers", i)
                .map(|l| format!("line {l}: "))
                .unwrap_or_default();
            for (field, value) in [("reason", &w.reason), ("owner", &w.owner)] {
                if value.trim().is_empty() {
                    return Err(format!(
                        "{at}waivers[{i}] ({}): `{field}` is empty; every waiver needs a reason and an owner",
                        w.kind
                    ));
                }
            }
            if w.environments.len() > 2 {
                return Err(format!(
                    "{at}waivers[{i}] ({}): `environments` names {} environments; a finding concerns one or two",
                    w.kind,
                    w.environments.len()
                ));
            }
            for name in &w.environments {
                env_name(format!("{at}waivers[{i}].environments"), name)?;
            }
        }
        Ok(())
    }
}

/// The line of the `nth` (0-based) `[[table]]` header, for errors found
/// after parsing.
fn table_line(text: &str, table: &str, nth: usize) -> Option<usize> {
    let header = format!("[[{table}]]");
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with(&header))
        .nth(nth)
        .map(|(i, _)| i + 1)
}
