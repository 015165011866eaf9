//! Conversions between `google.protobuf.Timestamp` and `std::time::SystemTime`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost_types::Timestamp;

/// A `SystemTime` as a protobuf timestamp (times before 1970 clamp to 0).
pub fn to_timestamp(time: SystemTime) -> Timestamp {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    Timestamp {
        seconds: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(since.subsec_nanos()).unwrap_or(0),
    }
}

/// A protobuf timestamp as a `SystemTime`; `None` for negative or malformed
/// values.
pub fn from_timestamp(ts: &Timestamp) -> Option<SystemTime> {
    let secs = u64::try_from(ts.seconds).ok()?;
    let nanos = u32::try_from(ts.nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)?;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// Milliseconds since the Unix epoch (0 before it).
pub fn unix_millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The inverse of [`unix_millis`].
pub fn from_unix_millis(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(from_timestamp(&to_timestamp(t)), Some(t));
        let ms = unix_millis(t);
        assert_eq!(ms, 1_700_000_000_123);
        assert_eq!(unix_millis(from_unix_millis(ms)), ms);
    }

    #[test]
    fn rejects_malformed_timestamps() {
        assert_eq!(
            from_timestamp(&Timestamp {
                seconds: -1,
                nanos: 0
            }),
            None
        );
        assert_eq!(
            from_timestamp(&Timestamp {
                seconds: 1,
                nanos: -5
            }),
            None
        );
        assert_eq!(
            from_timestamp(&Timestamp {
                seconds: 1,
                nanos: 2_000_000_000
            }),
            None
        );
    }
}
