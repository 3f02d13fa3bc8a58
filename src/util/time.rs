//! Time arguments: `--since`, `--until`, `--now`, `--for` and the like.

use jiff::{SignedDuration, Timestamp, civil};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid time `{0}`: use RFC 3339 (`2026-11-20T09:00:00Z`), a date (`2026-11-20`, UTC), or an age (`24h`, `7d`, `30m`)"
)]
pub struct TimeError(pub String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DurationError {
    #[error("invalid duration `{0}`: use a number and a unit, e.g. `30m`, `12h`, `7d`, `2w`")]
    Invalid(String),
    #[error("duration `{0}` is too long: at most 100 years (`36500d`)")]
    TooLong(String),
}

/// The longest duration accepted: added to any time of this millennium it stays a time (jiff's
/// arithmetic panics past year 9999), and no block or window needs more.
pub const MAX_DURATION_SECS: i64 = 36_500 * 86_400;

/// Parses `30m`, `12h`, `7d`, `2w` (also `90s`), up to [`MAX_DURATION_SECS`].
pub fn parse_duration(s: &str) -> Result<SignedDuration, DurationError> {
    let err = || DurationError::Invalid(s.to_owned());
    let too_long = || DurationError::TooLong(s.to_owned());
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
    let (num, unit) = t.split_at(split);
    let secs = match unit {
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(err()),
    };
    // Digits only, so a number that does not parse is too large.
    let n: i64 = match num.parse() {
        Ok(n) => n,
        Err(_) if !num.is_empty() => return Err(too_long()),
        Err(_) => return Err(err()),
    };
    match n.checked_mul(secs) {
        Some(v) if v > MAX_DURATION_SECS => Err(too_long()),
        Some(v) if v > 0 => Ok(SignedDuration::from_secs(v)),
        Some(_) => Err(err()),
        None => Err(too_long()),
    }
}

/// Epoch milliseconds as RFC 3339 (`2026-11-20T00:00:00.632Z`), or the number when out of range.
pub fn iso_ms(ms: i64) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// `t + d`, at the latest the last representable time (a duration from [`parse_duration`] never
/// gets there from a real clock; a hand-set one could).
pub fn add_saturating(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.checked_add(d).unwrap_or(if d.is_negative() {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
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

    #[test]
    fn durations_that_would_overflow_are_refused() {
        assert_eq!(
            parse_duration("36500d").unwrap().as_secs(),
            MAX_DURATION_SECS
        );
        for long in [
            "500000w",
            "36501d",
            "99999999999999999999s",
            "9223372036854775807w",
        ] {
            let e = parse_duration(long).unwrap_err();
            assert_eq!(e, DurationError::TooLong(long.to_owned()));
            assert_eq!(
                e.to_string(),
                format!("duration `{long}` is too long: at most 100 years (`36500d`)")
            );
        }
        let last = Timestamp::MAX;
        assert_eq!(add_saturating(last, SignedDuration::from_secs(1)), last);
        let now: Timestamp = "2026-11-27T12:00:00Z".parse().unwrap();
        let d = parse_duration("5200w").unwrap();
        assert_eq!(add_saturating(now, d), now + d);
    }
}
