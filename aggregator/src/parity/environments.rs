//! Environment names: their promotion order and how strictly a pair must
//! match.
//!
//! Without a policy, names are recognised by convention: `dev`/`development`,
//! then `staging`/`stage`, then `prod`/`production` form the promotion chain,
//! in that order. Other names come after the chain, alphabetically, and every
//! pair that involves one is compared at the standard level.

use std::cmp::Ordering;

/// The position of a conventional environment name in the promotion chain.
pub fn chain_stage(name: &str) -> Option<u8> {
    match name {
        "dev" | "development" => Some(0),
        "staging" | "stage" => Some(1),
        "prod" | "production" => Some(2),
        _ => None,
    }
}

/// Promotion order: chain stages first, then other names alphabetically.
pub fn compare(a: &str, b: &str) -> Ordering {
    match (chain_stage(a), chain_stage(b)) {
        (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.cmp(b)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// Sorts and de-duplicates environment names in promotion order.
pub fn ordered<I, S>(names: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut v: Vec<String> = names.into_iter().map(Into::into).collect();
    v.sort_by(|a, b| compare(a, b));
    v.dedup();
    v
}

/// How strictly two environments must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strictness {
    /// Earlier stages of the chain: the earlier one may run ahead.
    Relaxed,
    /// Any pair involving a name outside the chain.
    Standard,
    /// The last two stages present in the fleet: what is about to run in
    /// production must be what ran in the stage before it.
    Strict,
}

/// The strictness of the pair `(a, b)` given every environment in the fleet.
pub fn strictness(a: &str, b: &str, fleet: &[String]) -> Strictness {
    let (Some(sa), Some(sb)) = (chain_stage(a), chain_stage(b)) else {
        return Strictness::Standard;
    };
    let mut stages: Vec<u8> = fleet.iter().filter_map(|e| chain_stage(e)).collect();
    stages.sort_unstable();
    stages.dedup();
    let last_two = match stages.as_slice() {
        [.., x, y] => (*x, *y),
        _ => return Strictness::Standard,
    };
    let pair = if sa <= sb { (sa, sb) } else { (sb, sa) };
    if pair == last_two {
        Strictness::Strict
    } else {
        Strictness::Relaxed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn chain_names_come_first_in_promotion_order() {
        assert_eq!(
            ordered(["qa", "production", "dev", "staging", "canary", "dev"]),
            vec!["dev", "staging", "production", "canary", "qa"]
        );
    }

    #[test]
    fn last_two_stages_are_strict_and_earlier_ones_relaxed() {
        let f = fleet(&["dev", "staging", "production"]);
        assert_eq!(strictness("staging", "production", &f), Strictness::Strict);
        assert_eq!(strictness("production", "staging", &f), Strictness::Strict);
        assert_eq!(strictness("dev", "staging", &f), Strictness::Relaxed);
        assert_eq!(strictness("dev", "production", &f), Strictness::Relaxed);
    }

    #[test]
    fn without_staging_dev_and_production_are_the_last_two() {
        let f = fleet(&["dev", "production"]);
        assert_eq!(strictness("dev", "production", &f), Strictness::Strict);
    }

    #[test]
    fn unknown_names_are_standard() {
        let f = fleet(&["blue", "green", "production"]);
        assert_eq!(strictness("blue", "green", &f), Strictness::Standard);
        assert_eq!(strictness("blue", "production", &f), Strictness::Standard);
    }
}
