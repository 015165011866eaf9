//! Thresholds on a diff, and the verdict that names its figures.
//!
//! With no threshold set, any difference (a file, a package, a runtime) is
//! beyond: `image-diff` then exits as `diff(1)` does. With thresholds set,
//! only they are judged: `any` (the default) is beyond when one is
//! exceeded, `all` only when every threshold set is.

use serde::Serialize;

use crate::diff::ImageDiff;

/// The largest size change allowed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SizeLimit {
    /// Bytes, either way.
    Bytes(u64),
    /// Percent of the first image's size, either way.
    Percent(f64),
}

impl std::str::FromStr for SizeLimit {
    type Err = String;

    /// `50MiB`, `20MB`, `1.5GiB`, `4096`, `10%`.
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let bad =
            || format!("{s:?} is not a size (e.g. 50MiB, 20MB, 4096) or a percentage (e.g. 10%)");
        if let Some(p) = t.strip_suffix('%') {
            let v: f64 = p.trim().parse().map_err(|_| bad())?;
            return if v.is_finite() && v >= 0.0 {
                Ok(SizeLimit::Percent(v))
            } else {
                Err(bad())
            };
        }
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let v: f64 = num.parse().map_err(|_| bad())?;
        let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1.0,
            "k" | "kb" => 1e3,
            "m" | "mb" => 1e6,
            "g" | "gb" => 1e9,
            "kib" => 1024.0,
            "mib" => 1024.0 * 1024.0,
            "gib" => 1024.0 * 1024.0 * 1024.0,
            _ => return Err(bad()),
        };
        let bytes = v * mult;
        if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
            return Err(bad());
        }
        Ok(SizeLimit::Bytes(bytes.round() as u64))
    }
}

/// How several thresholds combine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdMode {
    /// Beyond when any threshold is exceeded.
    #[default]
    Any,
    /// Beyond only when every threshold set is exceeded.
    All,
}

/// The thresholds of one comparison.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Thresholds {
    /// The largest size change.
    pub max_size_delta: Option<SizeLimit>,
    /// The most files added, removed or changed.
    pub max_files_changed: Option<u64>,
    /// The most packages added, removed or changed.
    pub max_packages_changed: Option<u64>,
    /// How they combine.
    pub mode: ThresholdMode,
}

impl Thresholds {
    /// Whether any threshold is set.
    pub fn any_set(&self) -> bool {
        self.max_size_delta.is_some()
            || self.max_files_changed.is_some()
            || self.max_packages_changed.is_some()
    }
}

/// One threshold, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `files_changed`, `size_delta`, `packages_changed`.
    pub name: &'static str,
    /// The figure, as a person reads it (`+38 MiB`).
    pub value: String,
    /// The threshold, likewise.
    pub limit: String,
    /// Whether the figure is over the threshold.
    pub exceeded: bool,
}

/// The verdict on a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Whether the diff is within the thresholds.
    pub within: bool,
    /// Each threshold set, checked.
    pub checks: Vec<Check>,
    /// One line: the exceeded figures (`1,204 files > 500; +38 MiB > 20
    /// MiB`), or why it is within.
    pub summary: String,
}

/// Judges `diff` against `t`.
pub fn judge(diff: &ImageDiff, t: &Thresholds) -> Verdict {
    let mut checks = Vec::new();
    if let Some(max) = t.max_files_changed {
        let n = diff.files.total();
        checks.push(Check {
            name: "files_changed",
            value: format!("{} files", thousands(n)),
            limit: thousands(max),
            exceeded: n > max,
        });
    }
    if let Some(limit) = t.max_size_delta {
        let delta = diff.size_delta;
        let (exceeded, limit_text, value) = match limit {
            SizeLimit::Bytes(max) => (delta.unsigned_abs() > max, bytes(max), signed_bytes(delta)),
            SizeLimit::Percent(max) => {
                let pct = if diff.a.size == 0 {
                    if delta == 0 { 0.0 } else { f64::INFINITY }
                } else {
                    delta as f64 * 100.0 / diff.a.size as f64
                };
                (
                    pct.abs() > max,
                    format!("{max}%"),
                    format!("{} ({pct:+.1}%)", signed_bytes(delta)),
                )
            }
        };
        checks.push(Check {
            name: "size_delta",
            value,
            limit: limit_text,
            exceeded,
        });
    }
    if let Some(max) = t.max_packages_changed {
        let n = diff.packages_changed();
        checks.push(Check {
            name: "packages_changed",
            value: format!("{} packages", thousands(n)),
            limit: thousands(max),
            exceeded: n > max,
        });
    }
    let exceeded: Vec<String> = checks
        .iter()
        .filter(|c| c.exceeded)
        .map(|c| format!("{} > {}", c.value, c.limit))
        .collect();
    let (within, summary) = if checks.is_empty() {
        if diff.differs() {
            (false, "the images differ (no threshold set)".to_owned())
        } else {
            (true, "same content (no threshold set)".to_owned())
        }
    } else {
        let beyond = match t.mode {
            ThresholdMode::Any => !exceeded.is_empty(),
            ThresholdMode::All => exceeded.len() == checks.len(),
        };
        let summary = if exceeded.is_empty() {
            let figures: Vec<String> = checks
                .iter()
                .map(|c| format!("{} <= {}", c.value, c.limit))
                .collect();
            format!("within thresholds: {}", figures.join("; "))
        } else if beyond {
            exceeded.join("; ")
        } else {
            format!("within thresholds (mode all): only {}", exceeded.join("; "))
        };
        (!beyond, summary)
    };
    Verdict {
        within,
        checks,
        summary,
    }
}

/// `1204` as `1,204`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes as a person reads them: `38 MiB`, `512 B`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else if v >= 10.0 || (v - v.round()).abs() < 0.05 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A size change with its sign: `+38 MiB`, `-512 B`.
pub fn signed_bytes(delta: i64) -> String {
    let sign = if delta < 0 { '-' } else { '+' };
    format!("{sign}{}", bytes(delta.unsigned_abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_percentages_parse() {
        assert_eq!("50MiB".parse(), Ok(SizeLimit::Bytes(50 << 20)));
        assert_eq!("20 MB".parse(), Ok(SizeLimit::Bytes(20_000_000)));
        assert_eq!("4096".parse(), Ok(SizeLimit::Bytes(4096)));
        assert_eq!("10%".parse(), Ok(SizeLimit::Percent(10.0)));
        assert!("ten".parse::<SizeLimit>().is_err());
        assert!("-1%".parse::<SizeLimit>().is_err());
        assert!(
            "5 parsecs"
                .parse::<SizeLimit>()
                .unwrap_err()
                .contains("5 parsecs")
        );
    }

    #[test]
    fn figures_are_written_for_people() {
        assert_eq!(thousands(1204), "1,204");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(bytes(38 << 20), "38 MiB");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(signed_bytes(-(20 << 20)), "-20 MiB");
    }
}
