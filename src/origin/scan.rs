//! The origin scan: one pass over ALB and CloudFront logs, aggregated per client and minute and
//! per hour for the site. Files are read in parallel (one accumulator per worker); lines of one
//! file are read in order, since a CloudFront `#Fields` header applies to the lines after it.

use std::net::IpAddr;
use std::sync::Arc;

use hashbrown::HashMap;
use rayon::prelude::*;
use serde::Serialize;

use crate::log::{ChunkReader, InputFile, Malformed, TimeRange};
use crate::scan::{ClientKey, MALFORMED_EXAMPLES, min_opt, minute_of};

use super::cloudfront::{self, Line};
use super::{OriginKind, OriginRecord, alb};

/// What to read from origin logs.
#[derive(Debug, Clone, Copy, Default)]
pub struct OriginOptions {
    pub range: TimeRange,
    /// Key CloudFront requests by the first `x-forwarded-for` address where there is one (a proxy
    /// in front of CloudFront), instead of `c-ip`.
    pub forwarded_for: bool,
}

/// Responses by status class. `other`: 1xx, and requests answered with no status (`-`, `000`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StatusCounts {
    #[serde(rename = "2xx")]
    pub s2xx: u64,
    #[serde(rename = "3xx")]
    pub s3xx: u64,
    #[serde(rename = "4xx")]
    pub s4xx: u64,
    #[serde(rename = "5xx")]
    pub s5xx: u64,
    pub other: u64,
}

/// The 5xx responses by code; `other` holds the rest of 5xx (501, 505, 561, ...).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ErrorCodes {
    #[serde(rename = "500")]
    pub e500: u64,
    #[serde(rename = "502")]
    pub e502: u64,
    #[serde(rename = "503")]
    pub e503: u64,
    #[serde(rename = "504")]
    pub e504: u64,
    pub other: u64,
}

impl StatusCounts {
    fn add(&mut self, o: &StatusCounts) {
        self.s2xx += o.s2xx;
        self.s3xx += o.s3xx;
        self.s4xx += o.s4xx;
        self.s5xx += o.s5xx;
        self.other += o.other;
    }
}

impl ErrorCodes {
    fn add(&mut self, o: &ErrorCodes) {
        self.e500 += o.e500;
        self.e502 += o.e502;
        self.e503 += o.e503;
        self.e504 += o.e504;
        self.other += o.other;
    }
}

/// The aggregate of a set of requests (a client's minute, an hour, a client, the site).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub requests: u64,
    pub status: StatusCounts,
    pub errors_5xx: ErrorCodes,
    /// Origin time in milliseconds: the sum, and the median and 99th percentile (nearest rank)
    /// over the requests that have one.
    pub origin_ms: u64,
    pub origin_p50_ms: Option<u32>,
    pub origin_p99_ms: Option<u32>,
    /// Requests that have an origin time.
    pub timed: u64,
    pub bytes_sent: u64,
}

/// A [`Summary`] being built: the origin times are kept until the percentiles are taken.
#[derive(Debug, Clone, Default)]
struct Acc {
    summary: Summary,
    times: Vec<u32>,
}

impl Acc {
    fn add(&mut self, r: &OriginRecord<'_>) {
        let s = &mut self.summary;
        s.requests += 1;
        match r.status {
            Some(200..=299) => s.status.s2xx += 1,
            Some(300..=399) => s.status.s3xx += 1,
            Some(400..=499) => s.status.s4xx += 1,
            Some(code @ 500..=599) => {
                s.status.s5xx += 1;
                match code {
                    500 => s.errors_5xx.e500 += 1,
                    502 => s.errors_5xx.e502 += 1,
                    503 => s.errors_5xx.e503 += 1,
                    504 => s.errors_5xx.e504 += 1,
                    _ => s.errors_5xx.other += 1,
                }
            }
            _ => s.status.other += 1,
        }
        if let Some(ms) = r.origin_ms {
            s.origin_ms += u64::from(ms);
            s.timed += 1;
            self.times.push(ms);
        }
        s.bytes_sent += r.bytes_sent;
    }

    fn merge(&mut self, o: &Acc) {
        let s = &mut self.summary;
        s.requests += o.summary.requests;
        s.status.add(&o.summary.status);
        s.errors_5xx.add(&o.summary.errors_5xx);
        s.origin_ms += o.summary.origin_ms;
        s.timed += o.summary.timed;
        s.bytes_sent += o.summary.bytes_sent;
        self.times.extend_from_slice(&o.times);
    }

    fn finish(mut self) -> Summary {
        (self.summary.origin_p50_ms, self.summary.origin_p99_ms) = percentiles(&mut self.times);
        self.summary
    }
}

/// Median and 99th percentile by nearest rank (the value at rank `ceil(q * n)`).
pub fn percentiles(times: &mut [u32]) -> (Option<u32>, Option<u32>) {
    if times.is_empty() {
        return (None, None);
    }
    times.sort_unstable();
    let rank = |q: f64| times[((q * times.len() as f64).ceil() as usize).clamp(1, times.len()) - 1];
    (Some(rank(0.5)), Some(rank(0.99)))
}

/// Records per origin log kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct KindCounts {
    pub alb: u64,
    pub cloudfront: u64,
}

/// One client's origin traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct OriginClient {
    pub key: ClientKey,
    pub summary: Summary,
    /// Per epoch minute, ascending.
    pub minutes: Vec<(u32, Summary)>,
}

/// Everything one origin scan learned.
#[derive(Debug, Clone, Default)]
pub struct OriginTraffic {
    pub files: u64,
    pub records: u64,
    pub out_of_range: u64,
    pub malformed: u64,
    pub malformed_examples: Vec<Malformed>,
    pub unparseable_client_ips: u64,
    pub kinds: KindCounts,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
    pub totals: Summary,
    /// Per epoch hour (epoch minute / 60), ascending.
    pub per_hour: Vec<(u32, Summary)>,
    /// Sorted by requests (descending), then key.
    pub clients: Vec<OriginClient>,
}

#[derive(Debug, Default)]
struct Builder {
    options: OriginOptions,
    records: u64,
    out_of_range: u64,
    malformed: u64,
    examples: Vec<Malformed>,
    unparseable: u64,
    kinds: KindCounts,
    first_ms: Option<i64>,
    last_ms: Option<i64>,
    hours: HashMap<u32, Acc>,
    clients: HashMap<ClientKey, HashMap<u32, Acc>>,
}

impl Builder {
    fn new(options: OriginOptions) -> Builder {
        Builder {
            options,
            ..Builder::default()
        }
    }

    fn problem(&mut self, problem: Malformed) {
        self.malformed += 1;
        if self.examples.len() < MALFORMED_EXAMPLES {
            self.examples.push(problem);
        }
    }

    fn record(&mut self, r: &OriginRecord<'_>) {
        if !self.options.range.contains(r.time_ms) {
            self.out_of_range += 1;
            return;
        }
        self.records += 1;
        match r.kind {
            OriginKind::Alb => self.kinds.alb += 1,
            OriginKind::Cloudfront => self.kinds.cloudfront += 1,
        }
        self.first_ms = min_opt(self.first_ms, Some(r.time_ms));
        self.last_ms = self.last_ms.max(Some(r.time_ms));
        let minute = minute_of(r.time_ms);
        self.hours.entry(minute / 60).or_default().add(r);
        let text = r.client_for(self.options.forwarded_for);
        let key = match text.parse::<IpAddr>() {
            Ok(ip) => ClientKey::Addr(ip.to_canonical()),
            Err(_) => {
                self.unparseable += 1;
                ClientKey::Unparsed(text.into())
            }
        };
        self.clients
            .entry(key)
            .or_default()
            .entry(minute)
            .or_default()
            .add(r);
    }

    /// Reads one file, line by line.
    fn file(&mut self, index: usize, file: &InputFile, kind: OriginKind) {
        let mut cf = cloudfront::Reader::default();
        let progress: Arc<dyn Fn(u64) + Send + Sync> = Arc::new(|_| {});
        for chunk in ChunkReader::new(index, file, progress) {
            for (n, raw) in (chunk.first_line..).zip(chunk.data.split(|&b| b == b'\n')) {
                let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
                if raw.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let problem = |reason: String| Malformed {
                    file_index: index,
                    file: file.name.clone(),
                    line: n,
                    reason,
                };
                let Ok(line) = std::str::from_utf8(raw) else {
                    self.problem(problem("not UTF-8 text".into()));
                    continue;
                };
                // A JSON entry's record borrows from it.
                let json;
                let parsed = match kind {
                    OriginKind::Alb => alb::parse(line).map(|e| Some(e.record())),
                    OriginKind::Cloudfront => match cf.line(line) {
                        Ok(Line::Header) => Ok(None),
                        Ok(Line::Entry(e)) => e
                            .record(cf.layout.as_ref().expect("an entry has a layout"))
                            .map(Some),
                        Ok(Line::Json(e)) => {
                            json = e;
                            json.entry()
                                .record(cf.json_layout.as_ref().expect("a JSON entry has a layout"))
                                .map(Some)
                        }
                        Err(e) => Err(e),
                    },
                };
                match parsed {
                    Ok(Some(record)) => self.record(&record),
                    Ok(None) => {}
                    Err(reason) => self.problem(problem(reason)),
                }
            }
            if let Some(e) = chunk.error {
                self.problem(e);
            }
        }
    }

    fn merge(mut self, other: Builder) -> Builder {
        self.records += other.records;
        self.out_of_range += other.out_of_range;
        self.malformed += other.malformed;
        self.examples.extend(other.examples);
        self.examples.sort();
        self.examples.truncate(MALFORMED_EXAMPLES);
        self.unparseable += other.unparseable;
        self.kinds.alb += other.kinds.alb;
        self.kinds.cloudfront += other.kinds.cloudfront;
        self.first_ms = min_opt(self.first_ms, other.first_ms);
        self.last_ms = self.last_ms.max(other.last_ms);
        for (h, acc) in other.hours {
            self.hours.entry(h).or_default().merge(&acc);
        }
        for (key, minutes) in other.clients {
            let mine = self.clients.entry(key).or_default();
            for (m, acc) in minutes {
                mine.entry(m).or_default().merge(&acc);
            }
        }
        self
    }

    fn finish(self, files: u64) -> OriginTraffic {
        let mut totals = Acc::default();
        let mut per_hour: Vec<(u32, Summary)> = self
            .hours
            .into_iter()
            .map(|(h, acc)| {
                totals.merge(&acc);
                (h, acc.finish())
            })
            .collect();
        per_hour.sort_unstable_by_key(|(h, _)| *h);
        let mut clients: Vec<OriginClient> = self
            .clients
            .into_iter()
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|(key, minutes)| {
                let mut all = Acc::default();
                let mut minutes: Vec<(u32, Summary)> = minutes
                    .into_iter()
                    .map(|(m, acc)| {
                        all.merge(&acc);
                        (m, acc.finish())
                    })
                    .collect();
                minutes.sort_unstable_by_key(|(m, _)| *m);
                OriginClient {
                    key,
                    summary: all.finish(),
                    minutes,
                }
            })
            .collect();
        clients.sort_unstable_by(|a, b| {
            b.summary
                .requests
                .cmp(&a.summary.requests)
                .then_with(|| a.key.cmp(&b.key))
        });
        OriginTraffic {
            files,
            records: self.records,
            out_of_range: self.out_of_range,
            malformed: self.malformed,
            malformed_examples: self.examples,
            unparseable_client_ips: self.unparseable,
            kinds: self.kinds,
            first_ms: self.first_ms,
            last_ms: self.last_ms,
            totals: totals.finish(),
            per_hour,
            clients,
        }
    }
}

/// Scans origin log files (with the kind [`super::detect`] found for each) in parallel.
pub fn scan(files: &[(InputFile, OriginKind)], options: OriginOptions) -> OriginTraffic {
    let builder = files
        .par_iter()
        .enumerate()
        .fold(
            || Builder::new(options),
            |mut b, (i, (file, kind))| {
                b.file(i, file, *kind);
                b
            },
        )
        .reduce(|| Builder::new(options), Builder::merge);
    builder.finish(files.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record<'a>(
        client: &'a str,
        xff: Option<&str>,
        status: Option<u16>,
        ms: Option<u32>,
    ) -> OriginRecord<'a> {
        OriginRecord {
            kind: OriginKind::Cloudfront,
            time_ms: 1_795_132_800_000,
            client,
            forwarded_for: xff.map(str::to_owned),
            status,
            origin_ms: ms,
            bytes_sent: 10,
        }
    }

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentiles(&mut []), (None, None));
        assert_eq!(percentiles(&mut [7]), (Some(7), Some(7)));
        let mut v: Vec<u32> = (1..=100).rev().collect();
        assert_eq!(percentiles(&mut v), (Some(50), Some(99)));
        let mut v = vec![5, 1, 3, 2];
        assert_eq!(percentiles(&mut v), (Some(2), Some(5)));
    }

    #[test]
    fn classes_codes_and_forwarded_clients() {
        let mut b = Builder::new(OriginOptions {
            forwarded_for: true,
            ..OriginOptions::default()
        });
        b.record(&record(
            "10.0.0.1",
            Some("203.0.113.9, 10.0.0.1"),
            Some(503),
            Some(900),
        ));
        b.record(&record("10.0.0.1", None, Some(200), Some(100)));
        b.record(&record("10.0.0.1", None, None, None));
        b.record(&record("not-an-ip", None, Some(599), None));
        let mut other = Builder::new(b.options);
        other.record(&record(
            "10.0.0.1",
            Some("203.0.113.9"),
            Some(504),
            Some(300),
        ));
        let t = b.merge(other).finish(2);
        let s = t.totals;
        assert_eq!(
            (s.requests, s.status.s2xx, s.status.s5xx, s.status.other),
            (5, 1, 3, 1)
        );
        assert_eq!(
            (s.errors_5xx.e503, s.errors_5xx.e504, s.errors_5xx.other),
            (1, 1, 1)
        );
        assert_eq!(
            (s.origin_ms, s.timed, s.origin_p50_ms, s.origin_p99_ms),
            (1300, 3, Some(300), Some(900))
        );
        assert_eq!(t.unparseable_client_ips, 1);
        let viewer = t
            .clients
            .iter()
            .find(|c| c.key.to_string() == "203.0.113.9")
            .unwrap();
        assert_eq!(
            (viewer.summary.requests, viewer.summary.status.s5xx),
            (2, 2)
        );
        assert_eq!(viewer.minutes.len(), 1);
        assert_eq!(t.per_hour.len(), 1);
    }
}
