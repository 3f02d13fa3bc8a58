//! The origin section of `analyze` (table and markdown): the origin's status classes, 5xx and
//! time per hour, and the clients that took the most origin time or met the most 5xx, with
//! what WAF did to them.

use std::fmt::Write as _;

use crate::origin::report::{OriginClientRow, OriginReport};
use crate::origin::scan::Summary;
use crate::report::OriginHealth;
use crate::report::origin::BlockOrigin;
use crate::util::text::{percent, share, thousands};

use super::{Format, table};

/// Seconds with one decimal, from milliseconds.
pub(super) fn secs(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

fn ms(v: Option<u32>) -> String {
    v.map(|v| format!("{v} ms")).unwrap_or_else(|| "-".into())
}

fn status_line(s: &Summary) -> String {
    let st = &s.status;
    let mut parts: Vec<String> = [
        ("2xx", st.s2xx),
        ("3xx", st.s3xx),
        ("4xx", st.s4xx),
        ("5xx", st.s5xx),
        ("other", st.other),
    ]
    .iter()
    .filter(|(_, n)| *n > 0)
    .map(|(name, n)| format!("{name} {} ({})", thousands(*n), percent(*n, s.requests)))
    .collect();
    let e = &s.errors_5xx;
    let codes: Vec<String> = [
        ("500", e.e500),
        ("502", e.e502),
        ("503", e.e503),
        ("504", e.e504),
        ("other", e.other),
    ]
    .iter()
    .filter(|(_, n)| *n > 0)
    .map(|(code, n)| format!("{code}: {}", thousands(*n)))
    .collect();
    if !codes.is_empty() {
        parts.push(format!("[{}]", codes.join(", ")));
    }
    parts.join("  ")
}

pub(super) const CLIENT_HEADER: [&str; 10] = [
    "client",
    "requests",
    "origin time",
    "share",
    "p99",
    "5xx",
    "share of 5xx",
    "WAF requests",
    "WAF blocked",
    "country",
];

pub(super) fn client_rows(rows: &[OriginClientRow]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|c| {
            let waf = c.waf.as_ref();
            vec![
                c.ip.clone(),
                thousands(c.summary.requests),
                secs(c.summary.origin_ms),
                share(c.origin_time_share),
                ms(c.summary.origin_p99_ms),
                thousands(c.summary.status.s5xx),
                share(c.share_of_5xx),
                waf.map_or("not seen".into(), |w| thousands(w.requests)),
                waf.map_or(String::new(), |w| percent(w.actions.block, w.requests)),
                waf.and_then(|w| w.country.clone()).unwrap_or_default(),
            ]
        })
        .collect()
}

/// The report's origin headline: requests, 5xx, origin time, and 5xx domestic and overseas.
pub fn health_line(h: &OriginHealth, home: Option<&str>) -> String {
    let o = &h.origin;
    let g = &h.errors_5xx_geo;
    format!(
        "{} origin requests, {} 5xx ({}), {} of origin time (p99 {}); 5xx from {} {}, overseas {}, unknown {}",
        thousands(o.totals.requests),
        thousands(o.totals.status.s5xx),
        percent(o.totals.status.s5xx, o.totals.requests),
        secs(o.totals.origin_ms),
        ms(o.totals.origin_p99_ms),
        home.map_or("domestic".to_owned(), |c| format!("domestic ({c})")),
        thousands(g.domestic),
        thousands(g.overseas),
        thousands(g.unknown),
    )
}

/// Origin time per hour in whole seconds (for charts and sparklines).
pub fn hourly_secs(h: &OriginHealth) -> Vec<u64> {
    h.hourly
        .origin_ms
        .iter()
        .map(|ms| ms.div_ceil(1000))
        .collect()
}

pub(super) const BLOCK_HEADER: [&str; 8] = [
    "range",
    "added",
    "requests before",
    "requests after",
    "5xx before",
    "5xx after",
    "origin time before",
    "origin time after",
];

/// The block-effect entries' origin traffic before and after each was added.
pub(super) fn block_rows(blocks: &[BlockOrigin]) -> Vec<Vec<String>> {
    blocks
        .iter()
        .map(|b| {
            vec![
                b.cidr.clone(),
                b.added.clone(),
                thousands(b.before.requests),
                thousands(b.after.requests),
                thousands(b.before.s5xx),
                thousands(b.after.s5xx),
                secs(b.before.origin_ms),
                secs(b.after.origin_ms),
            ]
        })
        .collect()
}

/// The section, appended to the `analyze` table or markdown.
pub fn section(o: &OriginReport, format: Format, heading: &dyn Fn(&str) -> String) -> String {
    let md = format == Format::Markdown;
    let bullet = if md { "- " } else { "" };
    let mut out = heading("Origin (ALB and CloudFront access logs)");
    let _ = writeln!(
        out,
        "{bullet}{} requests in {} files ({} ALB, {} CloudFront; {} malformed, {} outside the time range), {} distinct clients",
        thousands(o.records),
        thousands(o.files),
        thousands(o.kinds.alb),
        thousands(o.kinds.cloudfront),
        thousands(o.malformed),
        thousands(o.out_of_range),
        thousands(o.distinct_clients),
    );
    if let (Some(first), Some(last)) = (&o.first, &o.last) {
        let _ = writeln!(out, "{bullet}time span: {first} .. {last}");
    }
    let _ = writeln!(out, "{bullet}status: {}", status_line(&o.totals));
    let _ = writeln!(
        out,
        "{bullet}origin time: {} in total, p50 {}, p99 {}; {} bytes sent",
        secs(o.totals.origin_ms),
        ms(o.totals.origin_p50_ms),
        ms(o.totals.origin_p99_ms),
        thousands(o.totals.bytes_sent)
    );
    let j = &o.waf_join;
    let _ = writeln!(
        out,
        "{bullet}joined with WAF by address: {} clients seen by WAF, {} not seen ({} requests)",
        thousands(j.clients_seen_by_waf),
        thousands(j.clients_not_seen_by_waf),
        thousands(j.requests_not_seen_by_waf)
    );
    if !o.per_hour.is_empty() {
        out += &heading("Origin per hour");
        let rows = o
            .per_hour
            .iter()
            .map(|h| {
                let s = &h.summary;
                vec![
                    h.hour.clone(),
                    thousands(s.requests),
                    thousands(s.status.s2xx),
                    thousands(s.status.s3xx),
                    thousands(s.status.s4xx),
                    thousands(s.status.s5xx),
                    secs(s.origin_ms),
                    ms(s.origin_p50_ms),
                    ms(s.origin_p99_ms),
                ]
            })
            .collect();
        out += &table(
            &[
                "hour",
                "requests",
                "2xx",
                "3xx",
                "4xx",
                "5xx",
                "origin time",
                "p50",
                "p99",
            ],
            rows,
            format,
        );
        out.push('\n');
    }
    for (title, rows) in [
        ("Top clients by origin time", &o.top_by_origin_time),
        ("Top clients by origin 5xx", &o.top_by_5xx),
    ] {
        if !rows.is_empty() {
            out += &heading(title);
            out += &table(&CLIENT_HEADER, client_rows(rows), format);
            out.push('\n');
        }
    }
    if o.malformed > 0 {
        out += &heading(&format!(
            "Malformed origin input (first {} of {})",
            o.malformed_examples.len(),
            thousands(o.malformed)
        ));
        for m in &o.malformed_examples {
            let _ = writeln!(out, "{bullet}{m}");
        }
    }
    out
}
