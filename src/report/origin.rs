//! Origin health in the report: the origin's 5xx and time per hour of the period, the clients
//! that took the most of either, its 5xx split domestic/overseas by the country WAF logged for each
//! client, and each block-effect entry's origin 5xx and time before and after it was added. Built
//! on [`crate::origin::report`] (the same object `analyze` shows) from the ALB and CloudFront logs
//! read beside the WAF logs.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use super::{BlockRow, HOUR_MS, Period};
use crate::origin::report::{OriginReport, build as origin_report, waf_index};
use crate::origin::scan::{OriginClient, OriginTraffic};
use crate::scan::{ClientKey, GeoSplit, MINUTE_MS, Traffic};

/// The report's origin section (present only when origin logs were read).
#[derive(Debug, Clone, Serialize)]
pub struct OriginHealth {
    /// What `analyze` shows as `origin`: totals, per hour, the join and the top clients.
    #[serde(flatten)]
    pub origin: OriginReport,
    /// Per hour of the period, aligned with `overview.hours`.
    pub hourly: OriginHourly,
    /// The origin's 5xx by the country WAF logged for the client (`unknown`: no country, or a
    /// client WAF did not log).
    pub errors_5xx_geo: GeoSplit,
    /// Per block-effect entry, in its order: the range's origin traffic before and after `added`.
    pub blocks: Vec<BlockOrigin>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OriginHourly {
    pub requests: Vec<u64>,
    #[serde(rename = "5xx")]
    pub s5xx: Vec<u64>,
    /// Origin time in milliseconds.
    pub origin_ms: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlockOrigin {
    pub cidr: String,
    pub group: String,
    pub added: String,
    pub before: OriginSide,
    pub after: OriginSide,
}

/// A range's origin requests, 5xx and origin time on one side of its `added` time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OriginSide {
    pub requests: u64,
    #[serde(rename = "5xx")]
    pub s5xx: u64,
    pub origin_ms: u64,
}

/// The origin section of `o` joined with `waf`, for the period and the block-effect `entries`.
pub fn health(
    o: &OriginTraffic,
    waf: &Traffic,
    period: Period,
    entries: &[BlockRow],
    top: usize,
) -> OriginHealth {
    let (first_hour, n) = period.hours();
    let mut hourly = OriginHourly {
        requests: vec![0; n],
        s5xx: vec![0; n],
        origin_ms: vec![0; n],
    };
    for (h, s) in &o.per_hour {
        let i = (i64::from(*h) * HOUR_MS - first_hour).div_euclid(HOUR_MS);
        if let Some(i) = usize::try_from(i).ok().filter(|&i| i < n) {
            hourly.requests[i] += s.requests;
            hourly.s5xx[i] += s.status.s5xx;
            hourly.origin_ms[i] += s.origin_ms;
        }
    }
    let home = waf.home_country.as_deref();
    let by_key = waf_index(waf);
    let mut geo = GeoSplit::default();
    for c in o.clients.iter().filter(|c| c.summary.status.s5xx > 0) {
        let country = by_key
            .get(&c.key)
            .and_then(|w| w.countries.first())
            .map_or("", |c| &*c.value);
        geo.add(country, home, c.summary.status.s5xx);
    }
    let by_addr: BTreeMap<IpAddr, &OriginClient> = o
        .clients
        .iter()
        .filter_map(|c| match &c.key {
            ClientKey::Addr(a) => Some((*a, c)),
            _ => None,
        })
        .collect();
    let blocks = entries.iter().map(|e| block_origin(e, &by_addr)).collect();
    OriginHealth {
        origin: origin_report(o, waf, top),
        hourly,
        errors_5xx_geo: geo,
        blocks,
    }
}

fn block_origin(e: &BlockRow, by_addr: &BTreeMap<IpAddr, &OriginClient>) -> BlockOrigin {
    let (mut before, mut after) = (OriginSide::default(), OriginSide::default());
    // The row's range and time are the ledger entry's, written by their `Display`: they parse.
    let net: Option<IpNet> = e.cidr.parse().ok();
    let added = e.added.parse::<jiff::Timestamp>().ok();
    if let (Some(net), Some(added)) = (net, added) {
        let added = added.as_millisecond();
        for c in by_addr
            .range(net.network()..=net.broadcast())
            .map(|(_, c)| c)
        {
            for (m, s) in &c.minutes {
                let side = if i64::from(*m) * MINUTE_MS < added {
                    &mut before
                } else {
                    &mut after
                };
                side.requests += s.requests;
                side.s5xx += s.status.s5xx;
                side.origin_ms += s.origin_ms;
            }
        }
    }
    BlockOrigin {
        cidr: e.cidr.clone(),
        group: e.group.clone(),
        added: e.added.clone(),
        before,
        after,
    }
}
