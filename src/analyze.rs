//! The `analyze` report: what the traffic looks like, as data with a stable JSON schema
//! (documented in `docs/json-schema.md`). Rendering lives in [`crate::render`].

use serde::Serialize;

use crate::log::Malformed;
use crate::model::waf::VERIFIED_CRAWLER_LABEL;
use crate::origin::report::OriginReport;
use crate::scan::{ActionCounts, ClientStats, Count, GeoSplit, MINUTE_MS, Traffic};

/// Bumped whenever a field is removed or changes meaning; adding fields keeps the version.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct AnalyzeReport {
    pub schema_version: u32,
    pub files: u64,
    pub records: u64,
    pub malformed: u64,
    pub malformed_examples: Vec<Malformed>,
    pub out_of_range: u64,
    pub unparseable_client_ips: u64,
    pub distinct_clients: u64,
    pub time_span: Option<TimeSpan>,
    pub actions: ActionCounts,
    pub geo: Geo,
    pub per_hour: Vec<HourRow>,
    pub countries: Vec<Count>,
    pub rules: Vec<Count>,
    pub labels: Vec<Count>,
    pub count_rules: Vec<Count>,
    pub clients: Vec<ClientRow>,
    pub prefixes: Vec<ClientRow>,
    /// The origin's side (ALB or CloudFront access logs), when any were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<OriginReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimeSpan {
    pub first: String,
    pub last: String,
    pub minutes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Geo {
    pub home_country: Option<String>,
    #[serde(flatten)]
    pub split: GeoSplit,
    /// Share of requests with a known country that came from the home country (0..=1).
    pub domestic_share: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HourRow {
    pub hour: String,
    pub requests: u64,
    pub actions: ActionCounts,
}

/// One client (an address, or a /24 or /64 prefix) in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClientRow {
    pub ip: String,
    pub requests: u64,
    pub peak_1m: u64,
    pub peak_2m: u64,
    pub peak_5m: u64,
    pub peak_10m: u64,
    /// When the busiest 5-minute window began.
    pub peak_5m_at: Option<String>,
    pub actions: ActionCounts,
    pub first_seen: String,
    pub last_seen: String,
    pub active_minutes: u64,
    pub distinct_uris: u64,
    pub verified_bot: bool,
    pub countries: Vec<Count>,
    pub top_uris: Vec<Count>,
    pub user_agents: Vec<Count>,
    pub labels: Vec<Count>,
    pub rules: Vec<Count>,
    pub count_rules: Vec<Count>,
    pub response_codes: Vec<Count>,
    /// The client's TLS fingerprints and ASN where logged (see [`ClientStats`]): they link and
    /// describe campaigns; not in the JSON, whose schema predates them.
    #[serde(skip)]
    pub ja4: Option<String>,
    #[serde(skip)]
    pub ja3: Option<String>,
    #[serde(skip)]
    pub asn: Option<u32>,
}

/// How much of each list to keep.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Clients, prefixes, countries, rules and labels listed; 0 lists all.
    pub top: usize,
    /// Values listed per client (URIs, user agents, ...).
    pub per_client: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            top: 20,
            per_client: 5,
        }
    }
}

pub use crate::util::time::iso_ms;

/// The first `n` of `v`, or all of it when `n` is 0.
fn top<T>(v: &[T], n: usize) -> &[T] {
    if n == 0 { v } else { &v[..n.min(v.len())] }
}

fn take<T: Clone>(v: &[T], n: usize) -> Vec<T> {
    top(v, n).to_vec()
}

pub fn client_row(c: &ClientStats, per_client: usize) -> ClientRow {
    let peak5 = c.peak(5);
    ClientRow {
        ip: c.key.to_string(),
        requests: c.requests,
        peak_1m: c.peak(1).requests,
        peak_2m: c.peak(2).requests,
        peak_5m: peak5.requests,
        peak_10m: c.peak(10).requests,
        peak_5m_at: (peak5.requests > 0).then(|| iso_ms(i64::from(peak5.start_minute) * MINUTE_MS)),
        actions: c.actions,
        first_seen: iso_ms(c.first_ms),
        last_seen: iso_ms(c.last_ms),
        active_minutes: c.active_minutes,
        distinct_uris: c.distinct_uris,
        verified_bot: c.labels.iter().any(|l| *l.value == *VERIFIED_CRAWLER_LABEL),
        countries: take(&c.countries, per_client),
        top_uris: take(&c.uris, per_client),
        user_agents: take(&c.user_agents, per_client),
        labels: take(&c.labels, per_client.max(10)),
        rules: take(&c.rules, per_client),
        count_rules: take(&c.count_rules, per_client),
        response_codes: take(&c.response_codes, per_client),
        ja4: c.ja4.as_deref().map(str::to_owned),
        ja3: c.ja3.as_deref().map(str::to_owned),
        asn: c.asn,
    }
}

pub fn report(t: &Traffic, limits: Limits) -> AnalyzeReport {
    let known = t.geo.domestic + t.geo.overseas;
    let mut per_hour: Vec<HourRow> = Vec::new();
    for (&minute, counts) in &t.per_minute {
        let hour_ms = (i64::from(minute) * MINUTE_MS).div_euclid(3_600_000) * 3_600_000;
        let hour = iso_ms(hour_ms);
        match per_hour.last_mut() {
            Some(row) if row.hour == hour => {
                row.actions.merge(counts);
                row.requests += counts.total();
            }
            _ => per_hour.push(HourRow {
                hour,
                requests: counts.total(),
                actions: *counts,
            }),
        }
    }
    AnalyzeReport {
        schema_version: SCHEMA_VERSION,
        files: t.files,
        records: t.records,
        malformed: t.malformed,
        malformed_examples: t.malformed_examples.clone(),
        out_of_range: t.out_of_range,
        unparseable_client_ips: t.unparseable_client_ips,
        distinct_clients: t.clients.len() as u64,
        time_span: t.first_ms.zip(t.last_ms).map(|(f, l)| TimeSpan {
            first: iso_ms(f),
            last: iso_ms(l),
            minutes: ((l - f) / MINUTE_MS) as u64,
        }),
        actions: t.actions,
        geo: Geo {
            home_country: t.home_country.clone(),
            split: t.geo,
            domestic_share: (t.home_country.is_some() && known > 0)
                .then(|| t.geo.domestic as f64 / known as f64),
        },
        per_hour,
        countries: take(&t.countries, limits.top),
        rules: take(&t.rules, limits.top),
        labels: take(&t.labels, limits.top),
        count_rules: take(&t.count_rules, limits.top),
        // Rows straight from the statistics: cloning them first copied every listed client's lists.
        clients: top(&t.clients, limits.top)
            .iter()
            .map(|c| client_row(c, limits.per_client))
            .collect(),
        prefixes: top(&t.prefixes, limits.top)
            .iter()
            .map(|c| client_row(c, limits.per_client))
            .collect(),
        origin: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::{ScanOptions, scan_bytes};

    #[test]
    fn report_rows_and_hours() {
        let lines: Vec<String> = (0..5)
            .map(|i| {
                format!(
                    r#"{{"timestamp":{},"action":"ALLOW","httpRequest":{{"clientIp":"198.51.100.7","country":"JP","uri":"/p{}"}},"labels":[{{"name":"{VERIFIED_CRAWLER_LABEL}"}}]}}"#,
                    1_763_596_800_000i64 + i * 1_200_000,
                    i % 2
                )
            })
            .collect();
        let t = scan_bytes(
            "x",
            lines.join("\n").as_bytes(),
            &ScanOptions {
                home_country: Some("JP".into()),
                ..Default::default()
            },
        );
        let r = report(&t, Limits::default());
        assert_eq!(r.records, 5);
        assert_eq!(r.per_hour.len(), 2);
        assert_eq!(r.per_hour[0].requests, 3);
        let c = &r.clients[0];
        assert_eq!(
            (c.requests, c.peak_1m, c.peak_10m, c.distinct_uris),
            (5, 1, 1, 2)
        );
        assert!(c.verified_bot);
        assert_eq!(r.geo.domestic_share, Some(1.0));
        assert_eq!(r.time_span.as_ref().unwrap().first, "2025-11-20T00:00:00Z");
    }
}
