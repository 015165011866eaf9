//! How values are spelled in the policy file: kinds and severities by name,
//! durations as humantime strings, instants as RFC 3339 or dates.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::parity::finding::{Kind, Severity};

macro_rules! string_serde {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

string_serde!(Kind);
string_serde!(Severity);

/// Durations as humantime strings ("0s", "5m", "1h 30m").
pub(crate) mod duration {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration {s:?}: {e} (examples: \"0s\", \"90s\", \"5m\", \"2h\")"
            ))
        })
    }
}

/// Instants as RFC 3339 strings, TOML datetimes, or dates (midnight UTC).
pub(super) mod instant {
    use super::*;

    /// Whole seconds, or nanoseconds when the instant has a fraction of a
    /// second, so that what `policy show` prints parses back to the same
    /// instant.
    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_rfc3339(*t).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Toml(toml::value::Datetime),
        }
        let text = match Repr::deserialize(d) {
            Ok(Repr::Text(s)) => s,
            Ok(Repr::Toml(dt)) => dt.to_string(),
            Err(_) => {
                return Err(serde::de::Error::custom(
                    "expected a date or time such as 2027-01-31 or 2027-01-31T12:00:00Z",
                ));
            }
        };
        parse_instant(&text).map_err(serde::de::Error::custom)
    }

    pub(super) fn parse_instant(text: &str) -> Result<SystemTime, String> {
        let full = if text.len() == 10 {
            format!("{text}T00:00:00Z")
        } else {
            text.to_owned()
        };
        humantime::parse_rfc3339(&full).map_err(|e| {
            format!("invalid time {text:?}: {e} (examples: 2027-01-31, 2027-01-31T12:00:00Z)")
        })
    }
}
