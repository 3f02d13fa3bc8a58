//! JSON primitives shared by the record model, the scan's view and the header reader: strings
//! borrowed from the input, and the lenient readers of timestamps and numbers real logs need.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

pub(super) type Str<'a> = Cow<'a, str>;

/// Lines nesting deeper than this are malformed: the JSON parser recurses once per level and
/// 10,000 `[` in a skipped value overflowed the stack. The parser's own limit for typed values is
/// 255 levels; WAF records nest 5 deep. (A level takes up to 30 KiB of stack in a debug build, so
/// tests that parse deep lines run on a large stack.)
pub(super) const MAX_NESTING: usize = 128;

/// An optional string that borrows from the input where it has no escapes. serde's own
/// `Option<Cow<str>>` always copies into a `String` (`#[serde(borrow)]` only reaches a bare `Cow`
/// field): that was an allocation for every string field of every record.
pub(super) fn opt_str<'de: 'a, 'a, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Str<'a>>, D::Error> {
    Option::<Borrowed<'a>>::deserialize(d).map(|s| s.map(|s| s.0))
}

/// A string borrowed from the input when it can be (see [`opt_str`]).
pub(super) struct Borrowed<'a>(pub Str<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for Borrowed<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(Cow::Owned(v.to_owned()))
            }
        }
        d.deserialize_str(V).map(Borrowed)
    }
}

/// The last instant a record may carry: 9999-12-30T22:00:00Z, the last millisecond jiff reads (the
/// end of year 9999 in every time zone), so every record's time can be written in RFC 3339. Records before 1970 are refused too: WAF logs start decades later, and the scan counts
/// epoch minutes from 1970. Either way the record is malformed rather than a panic further on.
pub(super) const MAX_TIMESTAMP_MS: i64 = 253_402_207_200_000;

/// Whether `ms` is a timestamp a record may carry (see [`MAX_TIMESTAMP_MS`]).
pub(super) fn timestamp_in_range(ms: i64) -> bool {
    (0..=MAX_TIMESTAMP_MS).contains(&ms)
}

fn checked_timestamp<E: de::Error>(ms: i64, shown: &dyn std::fmt::Display) -> Result<i64, E> {
    if timestamp_in_range(ms) {
        Ok(ms)
    } else {
        Err(E::custom(format!(
            "timestamp `{shown}` out of range: a record's time lies between 1970 and 9999"
        )))
    }
}

/// Accepts epoch milliseconds (number or numeric string) or an ISO-8601 / RFC 3339 timestamp, from
/// 1970 to 9999 (see [`MAX_TIMESTAMP_MS`]).
pub(super) fn epoch_millis<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = i64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("epoch milliseconds or an ISO-8601 timestamp")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            checked_timestamp(i64::try_from(v).unwrap_or(i64::MAX), &v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            checked_timestamp(v, &v)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
            // `as` saturates (and maps NaN to 0, which the range check below cannot tell apart).
            let ms = if v.is_finite() { v as i64 } else { -1 };
            // `1e300` rather than its 301 digits.
            let shown = if v.abs() < 1e15 {
                v.to_string()
            } else {
                format!("{v:e}")
            };
            checked_timestamp(ms, &shown)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
            if let Ok(n) = v.parse::<i64>() {
                return checked_timestamp(n, &v);
            }
            v.parse::<jiff::Timestamp>()
                .map_err(|_| E::custom(format!("invalid timestamp `{v}`")))
                .and_then(|t| checked_timestamp(t.as_millisecond(), &v))
        }
    }
    d.deserialize_any(V)
}

/// A number, a numeric string, or (for values redacted or garbled in the wild) nothing.
pub(super) fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a number")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(u64::try_from(v).ok())
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok((v >= 0.0).then_some(v as u64))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(v.trim().parse().ok())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct T {
        #[serde(deserialize_with = "epoch_millis")]
        t: i64,
    }

    fn t(json: &str) -> Result<i64, String> {
        sonic_rs::from_str::<T>(&format!(r#"{{"t":{json}}}"#))
            .map(|r| r.t)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn timestamps_outside_1970_to_9999_are_errors() {
        assert_eq!(t("1710930600000"), Ok(1_710_930_600_000));
        assert_eq!(t(r#""2024-03-20T10:30:00Z""#), Ok(1_710_930_600_000));
        assert_eq!(t("0"), Ok(0));
        assert_eq!(t(&MAX_TIMESTAMP_MS.to_string()), Ok(MAX_TIMESTAMP_MS));
        for bad in [
            "99999999999999999",
            "9223372036854775807",
            "18446744073709551615",
            "1e300",
            "-1e300",
            "-5",
            "-0.5e3",
            r#""-5""#,
            r#""1969-12-31T23:59:59Z""#,
            &(MAX_TIMESTAMP_MS + 1).to_string(),
        ] {
            let e = t(bad).unwrap_err();
            assert!(e.contains("out of range"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_last_timestamp_is_the_last_one_jiff_writes() {
        let last = jiff::Timestamp::from_millisecond(MAX_TIMESTAMP_MS).unwrap();
        assert!(jiff::Timestamp::from_millisecond(MAX_TIMESTAMP_MS + 1).is_err());
        assert_eq!(last.to_string(), "9999-12-30T22:00:00Z");
    }
}
