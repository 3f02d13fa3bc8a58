//! The `origin` object of `analyze`: the origin's health from its access logs, joined with the
//! WAF view of the same clients. Data only; `render::origin` lays it out.

use hashbrown::HashMap;
use serde::Serialize;

use crate::log::Malformed;
use crate::scan::{ActionCounts, ClientKey, ClientStats, MINUTE_MS, Traffic};
use crate::util::time::iso_ms;

use super::scan::{KindCounts, OriginClient, OriginTraffic, Summary};

#[derive(Debug, Clone, Serialize)]
pub struct OriginReport {
    pub files: u64,
    pub records: u64,
    pub malformed: u64,
    pub malformed_examples: Vec<Malformed>,
    pub out_of_range: u64,
    pub unparseable_client_ips: u64,
    pub kinds: KindCounts,
    pub distinct_clients: u64,
    pub first: Option<String>,
    pub last: Option<String>,
    /// The site's totals: `requests`, `status` (`"2xx"`..`"5xx"`, `other`), `errors_5xx`, origin
    /// time sum and percentiles, bytes sent.
    #[serde(flatten)]
    pub totals: Summary,
    pub per_hour: Vec<OriginHour>,
    pub waf_join: WafJoin,
    /// Clients by their share of the site's origin time, largest first.
    pub top_by_origin_time: Vec<OriginClientRow>,
    /// Clients by the 5xx responses they received, most first (clients with none are left out).
    pub top_by_5xx: Vec<OriginClientRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OriginHour {
    pub hour: String,
    #[serde(flatten)]
    pub summary: Summary,
}

/// How the origin's clients match the WAF's (by address).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct WafJoin {
    /// Origin clients that WAF logged too.
    pub clients_seen_by_waf: u64,
    /// Origin clients WAF never logged (in these WAF logs): a path around WAF, another front, or
    /// WAF logs that cover less time.
    pub clients_not_seen_by_waf: u64,
    pub requests_not_seen_by_waf: u64,
}

/// The WAF's view of one origin client.
#[derive(Debug, Clone, Serialize)]
pub struct WafSide {
    pub requests: u64,
    pub actions: ActionCounts,
    pub country: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OriginClientRow {
    pub ip: String,
    #[serde(flatten)]
    pub summary: Summary,
    /// This client's share of the site's origin time and of its 5xx (0..=1).
    pub origin_time_share: f64,
    pub share_of_5xx: f64,
    /// The minute in which this client took the most origin time.
    pub peak_minute: Option<PeakMinute>,
    /// `None` when WAF logged no request from this address.
    pub waf: Option<WafSide>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PeakMinute {
    pub minute: String,
    pub requests: u64,
    #[serde(rename = "5xx")]
    pub s5xx: u64,
    pub origin_ms: u64,
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn row(
    c: &OriginClient,
    o: &OriginTraffic,
    waf: &HashMap<&ClientKey, &ClientStats>,
) -> OriginClientRow {
    let peak = c
        .minutes
        .iter()
        .filter(|(_, s)| s.origin_ms > 0)
        .max_by(|a, b| a.1.origin_ms.cmp(&b.1.origin_ms).then(b.0.cmp(&a.0)));
    OriginClientRow {
        ip: c.key.to_string(),
        summary: c.summary,
        origin_time_share: share(c.summary.origin_ms, o.totals.origin_ms),
        share_of_5xx: share(c.summary.status.s5xx, o.totals.status.s5xx),
        peak_minute: peak.map(|(m, s)| PeakMinute {
            minute: iso_ms(i64::from(*m) * MINUTE_MS),
            requests: s.requests,
            s5xx: s.status.s5xx,
            origin_ms: s.origin_ms,
        }),
        waf: waf.get(&c.key).map(|w| WafSide {
            requests: w.requests,
            actions: w.actions,
            country: w.countries.first().map(|c| c.value.to_string()),
        }),
    }
}

/// WAF's clients by address: what an origin client is joined with.
pub fn waf_index(waf: &Traffic) -> HashMap<&ClientKey, &ClientStats> {
    waf.clients.iter().map(|c| (&c.key, c)).collect()
}

/// The origin report of `o`, joined with `waf` by client address; `top` rows per list (0: all).
pub fn build(o: &OriginTraffic, waf: &Traffic, top: usize) -> OriginReport {
    let by_key = waf_index(waf);
    let mut join = WafJoin::default();
    for c in &o.clients {
        if by_key.contains_key(&c.key) {
            join.clients_seen_by_waf += 1;
        } else {
            join.clients_not_seen_by_waf += 1;
            join.requests_not_seen_by_waf += c.summary.requests;
        }
    }
    let take = |mut list: Vec<&OriginClient>| {
        if top > 0 {
            list.truncate(top);
        }
        list.into_iter().map(|c| row(c, o, &by_key)).collect()
    };
    let mut by_time: Vec<&OriginClient> = o
        .clients
        .iter()
        .filter(|c| c.summary.origin_ms > 0)
        .collect();
    by_time.sort_by(|a, b| {
        (b.summary.origin_ms, b.summary.requests)
            .cmp(&(a.summary.origin_ms, a.summary.requests))
            .then_with(|| a.key.cmp(&b.key))
    });
    let mut by_5xx: Vec<&OriginClient> = o
        .clients
        .iter()
        .filter(|c| c.summary.status.s5xx > 0)
        .collect();
    by_5xx.sort_by(|a, b| {
        (b.summary.status.s5xx, b.summary.requests)
            .cmp(&(a.summary.status.s5xx, a.summary.requests))
            .then_with(|| a.key.cmp(&b.key))
    });
    OriginReport {
        files: o.files,
        records: o.records,
        malformed: o.malformed,
        malformed_examples: o.malformed_examples.clone(),
        out_of_range: o.out_of_range,
        unparseable_client_ips: o.unparseable_client_ips,
        kinds: o.kinds,
        distinct_clients: o.clients.len() as u64,
        first: o.first_ms.map(iso_ms),
        last: o.last_ms.map(iso_ms),
        totals: o.totals,
        per_hour: o
            .per_hour
            .iter()
            .map(|(h, s)| OriginHour {
                hour: iso_ms(i64::from(*h) * 60 * MINUTE_MS),
                summary: *s,
            })
            .collect(),
        waf_join: join,
        top_by_origin_time: take(by_time),
        top_by_5xx: take(by_5xx),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::origin::scan::StatusCounts;

    fn client(ip: &str, requests: u64, s5xx: u64, origin_ms: u64) -> OriginClient {
        let summary = Summary {
            requests,
            status: StatusCounts {
                s2xx: requests - s5xx,
                s5xx,
                ..StatusCounts::default()
            },
            origin_ms,
            timed: requests,
            ..Summary::default()
        };
        OriginClient {
            key: ClientKey::Addr(ip.parse().unwrap()),
            summary,
            minutes: vec![(29_918_880, summary)],
        }
    }

    #[test]
    fn tops_shares_and_the_join() {
        let o = OriginTraffic {
            clients: vec![
                client("192.0.2.1", 100, 0, 9_000),
                client("192.0.2.2", 10, 8, 500),
                client("192.0.2.3", 5, 2, 500),
            ],
            totals: Summary {
                requests: 115,
                origin_ms: 10_000,
                status: StatusCounts {
                    s5xx: 10,
                    ..StatusCounts::default()
                },
                ..Summary::default()
            },
            ..OriginTraffic::default()
        };
        let r = build(&o, &Traffic::default(), 1);
        assert_eq!(r.top_by_origin_time.len(), 1);
        assert_eq!(r.top_by_origin_time[0].ip, "192.0.2.1");
        assert_eq!(r.top_by_origin_time[0].origin_time_share, 0.9);
        assert_eq!(r.top_by_5xx[0].ip, "192.0.2.2");
        assert_eq!(r.top_by_5xx[0].share_of_5xx, 0.8);
        let peak = r.top_by_5xx[0].peak_minute.as_ref().unwrap();
        assert_eq!(peak.minute, "2026-11-20T00:00:00Z");
        assert!(r.top_by_5xx[0].waf.is_none());
        assert_eq!(
            (
                r.waf_join.clients_not_seen_by_waf,
                r.waf_join.requests_not_seen_by_waf
            ),
            (3, 115)
        );
        // Without a limit every client with 5xx is listed.
        assert_eq!(build(&o, &Traffic::default(), 0).top_by_5xx.len(), 2);
    }
}
