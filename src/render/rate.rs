//! Layout of rate recommendations and backtests: terminal tables, markdown and JSON.

use crate::rate::{Backtest, ClientClass, Episode, Recommendation};
use crate::render::{Format, table};
use crate::util::text::{minute, percent, thousands};

/// `2026-11-20T01:08Z +20m` for a run of minutes.
fn episode(e: &Episode) -> String {
    format!(
        "{} +{}m",
        minute(e.first_minute),
        e.last_minute - e.first_minute + 1
    )
}

fn heading(s: &str, format: Format) -> String {
    match format {
        Format::Markdown => format!("\n### {s}\n\n"),
        _ => format!("\n{s}\n"),
    }
}

/// Renders recommendations, one per scope.
pub fn recommendations(recs: &[Recommendation], top: usize, format: Format) -> String {
    if format == Format::Json {
        return serde_json::to_string_pretty(recs).expect("report serialises") + "\n";
    }
    let rows = recs
        .iter()
        .map(|r| {
            let p = &r.percentiles;
            let b = &r.backtest;
            vec![
                b.scope.clone(),
                b.window.as_str().into(),
                thousands(b.clients),
                thousands(p.p50),
                thousands(p.p90),
                thousands(p.p99),
                thousands(p.p99_9),
                thousands(p.max),
                thousands(r.recommended),
                thousands(b.limited_clients),
                format!(
                    "{} ({})",
                    thousands(b.limited_requests),
                    percent(b.limited_requests, b.requests)
                ),
            ]
        })
        .collect();
    let mut out = heading(
        "Recommended rate limits (per-client peak requests in a sliding window)",
        format,
    );
    out += &table(
        &[
            "scope",
            "window",
            "clients",
            "p50",
            "p90",
            "p99",
            "p99.9",
            "max",
            "limit",
            "limited",
            "requests limited",
        ],
        rows,
        format,
    );
    out.push('\n');
    if let Some(r) = recs.first() {
        out += &format!(
            "\nlimit = max(10, p{} x {} rounded up to 2 significant digits); see docs/rate.md\n",
            r.percentile, r.headroom
        );
    }
    for r in recs {
        out += &limited_section(&r.backtest, top, format);
    }
    out
}

/// Renders one backtest.
pub fn backtest(b: &Backtest, top: usize, format: Format) -> String {
    if format == Format::Json {
        return serde_json::to_string_pretty(b).expect("report serialises") + "\n";
    }
    let mut out = heading(
        &format!(
            "Backtest: {} requests per {} in scope `{}`",
            thousands(b.limit),
            b.window,
            b.scope
        ),
        format,
    );
    out += &format!(
        "{} of {} clients limited, {} of {} requests ({})\n",
        thousands(b.limited_clients),
        thousands(b.clients),
        thousands(b.limited_requests),
        thousands(b.requests),
        percent(b.limited_requests, b.requests)
    );
    out += &limited_section(b, top, format);
    out
}

/// The split by class and the most limited clients.
fn limited_section(b: &Backtest, top: usize, format: Format) -> String {
    limited_table(
        b,
        &format!(
            "Limited at {} per {} in scope `{}`",
            thousands(b.limit),
            b.window,
            b.scope
        ),
        top,
        format,
    )
}

fn limited_table(b: &Backtest, title: &str, top: usize, format: Format) -> String {
    let mut out = heading(title, format);
    if b.limited.is_empty() {
        out += "no client reaches this limit\n";
        return out;
    }
    let classes = b
        .by_class
        .iter()
        .map(|t| {
            vec![
                t.class.as_str().into(),
                thousands(t.clients),
                thousands(t.limited),
            ]
        })
        .collect();
    out += &table(&["class", "clients", "requests limited"], classes, format);
    out.push('\n');
    let shown = if top == 0 { b.limited.len() } else { top };
    let rows = b
        .limited
        .iter()
        .take(shown)
        .map(|c| {
            vec![
                c.client.clone(),
                c.class.as_str().into(),
                c.country.clone(),
                thousands(c.requests),
                thousands(c.peak),
                format!(
                    "{} ({})",
                    thousands(c.limited),
                    percent(c.limited, c.requests)
                ),
                thousands(c.limited_minutes),
                c.episodes.first().map(episode).unwrap_or_default(),
                thousands(c.episodes.len() as u64),
                c.user_agent.clone(),
            ]
        })
        .collect();
    out.push('\n');
    out += &table(
        &[
            "client",
            "class",
            "country",
            "requests",
            "peak",
            "limited",
            "minutes",
            "first episode",
            "episodes",
            "user agent",
        ],
        rows,
        format,
    );
    out.push('\n');
    if b.limited.len() > shown {
        out += &format!(
            "... and {} more clients (`--top 0` shows all)\n",
            b.limited.len() - shown
        );
    }
    out
}

/// Renders what promoting a rule from count to block would have done.
pub fn promotion(
    b: &Backtest,
    rule: &str,
    web_acl: &str,
    logs: &str,
    top: usize,
    format: Format,
) -> String {
    if format == Format::Json {
        return serde_json::to_string_pretty(b).expect("report serialises") + "\n";
    }
    let mut out = heading(
        &format!("Promote rate rule `{rule}` (web ACL `{web_acl}`) from count to block"),
        format,
    );
    out += &format!(
        "Over {logs}, the rule matched {} requests from {} clients in COUNT mode: as a block rule it \
         would have answered them with 403.\n",
        thousands(b.limited_requests),
        thousands(b.limited_clients)
    );
    for (class, what) in [
        (
            ClientClass::VerifiedCrawler,
            "verified crawlers (search indexing)",
        ),
        (
            ClientClass::Home,
            "clients mostly from the home country (likely customers)",
        ),
    ] {
        let t = &b.by_class[class as usize];
        if t.clients > 0 {
            out += &format!(
                "warning: {} {what} would have been blocked ({} requests); consider a scope-down before promoting\n",
                thousands(t.clients),
                thousands(t.limited)
            );
        }
    }
    out += &limited_table(b, "Who would have been blocked", top, format);
    out
}
