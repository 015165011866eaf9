//! The promotion chain: its stages, and the promotion order of environment
//! names it implies.

use std::cmp::Ordering;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Policy;

/// One stage of the chain: its names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage(pub Vec<String>);

impl Policy {
    /// The chain stage of an environment name.
    pub fn stage_of(&self, name: &str) -> Option<usize> {
        self.chain
            .iter()
            .position(|s| s.0.iter().any(|n| n == name))
    }

    /// Promotion order: chain stages first, then other names alphabetically.
    pub fn compare(&self, a: &str, b: &str) -> Ordering {
        match (self.stage_of(a), self.stage_of(b)) {
            (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.cmp(b)),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => a.cmp(b),
        }
    }

    /// Sorts and de-duplicates environment names in promotion order.
    pub fn ordered<I, S>(&self, names: I) -> Vec<String>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut v: Vec<String> = names.into_iter().map(Into::into).collect();
        v.sort_by(|a, b| self.compare(a, b));
        v.dedup();
        v
    }

    /// The chain stages present in `fleet`, earliest first.
    pub(super) fn stages_present(&self, fleet: &[String]) -> Vec<usize> {
        let mut stages: Vec<usize> = fleet.iter().filter_map(|e| self.stage_of(e)).collect();
        stages.sort_unstable();
        stages.dedup();
        stages
    }

    /// The environment of the fleet in the stage before `env`'s, if any.
    pub fn previous_stage(&self, env: &str, fleet: &[String]) -> Option<String> {
        let stage = self.stage_of(env)?;
        fleet
            .iter()
            .filter(|e| self.stage_of(e).is_some_and(|s| s < stage))
            .max_by(|x, y| self.compare(x, y))
            .cloned()
    }
}

impl Serialize for Stage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => s.serialize_str(one),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Stage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            One(String),
            Many(Vec<String>),
        }
        match Repr::deserialize(d) {
            Ok(Repr::One(name)) => Ok(Stage(vec![name])),
            Ok(Repr::Many(names)) => Ok(Stage(names)),
            Err(_) => Err(serde::de::Error::custom(
                "a chain stage is an environment name or a list of names",
            )),
        }
    }
}
