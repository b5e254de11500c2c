//! One wire format for instants: RFC 3339 UTC with a single `Z`, at most microsecond precision.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Timelike, Utc};

/// Formats an instant for the API and events; whole seconds print without a fraction.
pub fn format_utc(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Drops sub-microsecond precision so that what is stored equals what is returned.
pub fn truncate_micros(instant: DateTime<Utc>) -> DateTime<Utc> {
    let nanos = instant.nanosecond();
    instant
        .with_nanosecond(nanos - nanos % 1_000)
        .unwrap_or(instant)
}

/// The current instant, at the precision the store keeps.
pub fn now() -> DateTime<Utc> {
    truncate_micros(Utc::now())
}

/// A new id for a task or an event: a UUIDv7, so ids sort by creation time and new rows land at
/// the end of the store's indexes instead of on a random page (far fewer pages written per
/// commit than with random v4 ids; clients only see an ordinary UUID).
pub fn new_id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

/// Parses a client-supplied datetime: RFC 3339 with any offset (normalised to UTC), a naive
/// date-time (taken as UTC, as the reference did), or a bare date (midnight UTC).
pub fn parse_datetime(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(parsed) = DateTime::parse_from_rfc3339(text) {
        return Some(truncate_micros(parsed.with_timezone(&Utc)));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return Some(truncate_micros(Utc.from_utc_datetime(&naive)));
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|naive| Utc.from_utc_datetime(&naive))
}

/// Years the API accepts and produces: RFC 3339 has four-digit years, and a reminder a year
/// before the earliest due date must still be one.
pub const SUPPORTED_YEARS: std::ops::RangeInclusive<i32> = 1000..=9999;

/// Whether an instant can be written as an RFC 3339 timestamp the API stands behind.
pub fn in_supported_range(instant: &DateTime<Utc>) -> bool {
    use chrono::Datelike;
    SUPPORTED_YEARS.contains(&instant.year())
}

/// Converts a stored microsecond timestamp back to an instant.
pub fn from_micros(micros: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_normalised_to_utc() {
        let parsed = parse_datetime("2026-01-20T20:00:00+02:00").expect("valid");
        assert_eq!(format_utc(parsed), "2026-01-20T18:00:00Z");
    }

    #[test]
    fn fractions_keep_microseconds_only() {
        let parsed = parse_datetime("2026-01-20T18:00:00.123456789Z").expect("valid");
        assert_eq!(format_utc(parsed), "2026-01-20T18:00:00.123456Z");
        let millis = parse_datetime("2026-01-20T18:00:00.000Z").expect("valid");
        assert_eq!(format_utc(millis), "2026-01-20T18:00:00Z");
    }

    #[test]
    fn naive_and_date_only_inputs_are_utc() {
        assert_eq!(
            format_utc(parse_datetime("2026-01-20T18:00:00").expect("valid")),
            "2026-01-20T18:00:00Z"
        );
        assert_eq!(
            format_utc(parse_datetime("2026-01-20").expect("valid")),
            "2026-01-20T00:00:00Z"
        );
    }

    #[test]
    fn garbage_is_rejected() {
        for bad in [
            "",
            "tomorrow",
            "2026-13-01",
            "2026-02-30T10:00:00Z",
            "12:00",
        ] {
            assert!(parse_datetime(bad).is_none(), "{bad} should not parse");
        }
    }
}
