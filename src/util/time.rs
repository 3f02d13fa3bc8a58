//! Time arguments: `--since`, `--until`, `--now`, `--for` and the like.

use jiff::{SignedDuration, Timestamp, civil};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid time `{0}`: use RFC 3339 (`2026-11-20T09:00:00Z`), a date (`2026-11-20`, UTC), or an age (`24h`, `7d`, `30m`)"
)]
pub struct TimeError(pub String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid duration `{0}`: use a number and a unit, e.g. `30m`, `12h`, `7d`, `2w`")]
pub struct DurationError(pub String);

/// Parses `30m`, `12h`, `7d`, `2w` (also `90s`).
pub fn parse_duration(s: &str) -> Result<SignedDuration, DurationError> {
    let err = || DurationError(s.to_owned());
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
    let (num, unit) = s.split_at(split);
    let n: i64 = num.parse().map_err(|_| err())?;
    let secs = match unit {
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(err()),
    };
    n.checked_mul(secs)
        .filter(|&v| v > 0)
        .map(SignedDuration::from_secs)
        .ok_or_else(err)
}

/// An instant: absolute (RFC 3339, or a civil date/time taken as UTC) or an age before `now`.
pub fn parse_instant(s: &str, now: Timestamp) -> Result<Timestamp, TimeError> {
    let t = s.trim();
    if let Ok(ts) = t.parse::<Timestamp>() {
        return Ok(ts);
    }
    if let Ok(dt) = t.parse::<civil::DateTime>() {
        return dt
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp())
            .map_err(|_| TimeError(s.to_owned()));
    }
    if let Ok(d) = t.parse::<civil::Date>() {
        return d
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp())
            .map_err(|_| TimeError(s.to_owned()));
    }
    parse_duration(t)
        .ok()
        .and_then(|d| now.checked_sub(d).ok())
        .ok_or_else(|| TimeError(s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants() {
        let now: Timestamp = "2026-11-27T12:00:00Z".parse().unwrap();
        let p = |s| parse_instant(s, now).map(|t| t.to_string());
        assert_eq!(p("2026-11-20T09:00:00Z").unwrap(), "2026-11-20T09:00:00Z");
        assert_eq!(
            p("2026-11-20T09:00:00+09:00").unwrap(),
            "2026-11-20T00:00:00Z"
        );
        assert_eq!(p("2026-11-20").unwrap(), "2026-11-20T00:00:00Z");
        assert_eq!(p("2026-11-20T06:30").unwrap(), "2026-11-20T06:30:00Z");
        assert_eq!(p("7d").unwrap(), "2026-11-20T12:00:00Z");
        assert_eq!(p("90m").unwrap(), "2026-11-27T10:30:00Z");
        assert_eq!(
            p("yesterday").unwrap_err().to_string(),
            "invalid time `yesterday`: use RFC 3339 (`2026-11-20T09:00:00Z`), a date (`2026-11-20`, UTC), or an age (`24h`, `7d`, `30m`)"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30d").unwrap().as_secs(), 30 * 86_400);
        assert_eq!(parse_duration("2w").unwrap().as_secs(), 14 * 86_400);
        assert!(parse_duration("0d").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("5y").is_err());
    }
}
