//! Origin access logs: what the load balancer or CDN behind (or in front of) WAF answered.
//!
//! WAF logs record WAF's decision, never the origin's response; ALB access logs ([`alb`]) and
//! CloudFront standard logs ([`cloudfront`]) do. [`detect`] tells them apart from WAF logs by
//! content, [`scan`] aggregates them per client and minute, and [`report`] joins that with the WAF
//! view for `analyze`. Readers borrow from the line and never fail the run: a line that is not an
//! entry is a reason, reported as `file:line: reason` like a malformed WAF record.

pub mod alb;
pub mod cloudfront;
pub mod detect;
pub mod report;
pub mod scan;

use serde::Serialize;

/// Which origin log a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OriginKind {
    Alb,
    Cloudfront,
}

/// The fields origin analysis reads from one request, whichever log it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct OriginRecord<'a> {
    pub kind: OriginKind,
    /// When the response was sent (ALB `time`; CloudFront `date` + `time`), epoch milliseconds.
    pub time_ms: i64,
    /// The address the log names as the client (ALB `client` without its port; CloudFront `c-ip`).
    pub client: &'a str,
    /// CloudFront `x-forwarded-for`, decoded: the addresses a proxy in front of CloudFront saw.
    /// ALB access logs do not record it.
    pub forwarded_for: Option<String>,
    /// The status sent to the client (ALB `elb_status_code`, CloudFront `sc-status`); `None` when
    /// none was sent (`-`, or CloudFront's `000` for a viewer that went away).
    pub status: Option<u16>,
    /// Time spent at the origin in milliseconds: ALB `target_processing_time` (`None` for `-1`:
    /// no target answered), CloudFront `time-to-first-byte` (or `time-taken` in logs without it).
    pub origin_ms: Option<u32>,
    /// Bytes sent to the client (ALB `sent_bytes`, CloudFront `sc-bytes`).
    pub bytes_sent: u64,
}

impl OriginRecord<'_> {
    /// The address to key this request by: the first `X-Forwarded-For` address when asked and
    /// present (not empty), else the logged client.
    pub fn client_for(&self, forwarded: bool) -> &str {
        match (&self.forwarded_for, forwarded) {
            (Some(xff), true) => xff
                .split(',')
                .next()
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .unwrap_or(self.client),
            _ => self.client,
        }
    }
}

/// Epoch milliseconds of `YYYY-MM-DD` and `HH:MM:SS[.fraction]` (UTC), read by hand: origin
/// logs put a timestamp on every line, and this is the hot path of reading them.
pub(crate) fn civil_ms(date: &[u8], time: &[u8]) -> Option<i64> {
    let num = |s: &[u8]| -> Option<i64> {
        s.iter().try_fold(0i64, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
        })
    };
    if date.len() != 10 || date[4] != b'-' || date[7] != b'-' || time.len() < 8 {
        return None;
    }
    if time[2] != b':' || time[5] != b':' {
        return None;
    }
    let (y, m, d) = (num(&date[..4])?, num(&date[5..7])?, num(&date[8..10])?);
    let (h, mi, s) = (num(&time[..2])?, num(&time[3..5])?, num(&time[6..8])?);
    let days_in_month = match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => return None,
    };
    if !(1970..=9999).contains(&y) || d < 1 || d > days_in_month || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let ms = match &time[8..] {
        [] => 0,
        [b'.', frac @ ..] if !frac.is_empty() => {
            let digits = &frac[..frac.len().min(3)];
            let v = num(frac).and(num(digits))?;
            v * 10i64.pow(3 - digits.len() as u32)
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + h) * 60 + mi) * 60_000 + s * 1000 + ms)
}

/// Seconds with up to three decimals (`0.048`) as whole milliseconds, rounded.
pub(crate) fn secs_to_ms(s: &str) -> Option<u32> {
    let v: f64 = s.parse().ok()?;
    (v.is_finite() && (0.0..4_000_000.0).contains(&v)).then(|| (v * 1000.0).round() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jiff_ms(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn civil_time_matches_jiff() {
        for (d, t, iso) in [
            ("2018-07-02", "22:23:00.186641", "2018-07-02T22:23:00.186Z"),
            ("2019-12-04", "21:02:31", "2019-12-04T21:02:31Z"),
            ("2024-02-29", "00:00:00.5", "2024-02-29T00:00:00.5Z"),
            ("1970-01-01", "00:00:00", "1970-01-01T00:00:00Z"),
        ] {
            assert_eq!(
                civil_ms(d.as_bytes(), t.as_bytes()),
                Some(jiff_ms(iso)),
                "{d} {t}"
            );
        }
        for (d, t) in [
            ("2023-02-29", "00:00:00"),
            ("2023-13-01", "00:00:00"),
            ("2023-01-01", "24:00:00"),
            ("2023-01-01", "00:00:00."),
            ("2023-01-01", "00:00:00Z"),
            ("20230101", "00:00:00"),
            ("2023-01-0x", "00:00:00"),
        ] {
            assert_eq!(civil_ms(d.as_bytes(), t.as_bytes()), None, "{d} {t}");
        }
    }

    #[test]
    fn forwarded_client_is_the_first_address_when_there_is_one() {
        let record = |xff: Option<&str>| OriginRecord {
            kind: OriginKind::Cloudfront,
            time_ms: 0,
            client: "130.176.4.138",
            forwarded_for: xff.map(str::to_owned),
            status: Some(200),
            origin_ms: None,
            bytes_sent: 0,
        };
        for (xff, forwarded, client) in [
            (
                Some("101.93.195.253, 130.176.4.138"),
                true,
                "101.93.195.253",
            ),
            (Some(" 2001:db8::1 "), true, "2001:db8::1"),
            (Some("101.93.195.253"), false, "130.176.4.138"),
            (None, true, "130.176.4.138"),
            (Some(", 10.0.0.1"), true, "130.176.4.138"),
        ] {
            assert_eq!(record(xff).client_for(forwarded), client, "{xff:?}");
        }
    }

    #[test]
    fn seconds_to_milliseconds() {
        assert_eq!(secs_to_ms("0.048"), Some(48));
        assert_eq!(secs_to_ms("2.5"), Some(2500));
        assert_eq!(secs_to_ms("-1"), None);
        assert_eq!(secs_to_ms("x"), None);
        assert_eq!(secs_to_ms("NaN"), None);
    }
}
