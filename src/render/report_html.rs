//! `waftune report --html`: the whole report as one self-contained page. No network: styles and
//! the few lines of table sorting are inline, charts are inline SVG (`report_charts`).
//! Every string from the logs (user agents, paths, addresses of unparsable clients) is escaped.

use std::fmt::Write as _;

use super::origin;
use super::propose_markdown::{CAMPAIGN_HEADER, user_agent};
use super::report_charts::{self as charts, Series};
use super::report_text::change_text;
use super::{percent, thousands};
use crate::report::{CampaignReport, Report, TopClient, Verdict};
use crate::scan::Count;

/// Entries of the block-effect table drawn with a sparkline (all are listed).
const SPARKLINES: usize = 200;

/// Escapes text for HTML content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r##"
:root { color-scheme: light dark; --bg: #ffffff; --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --card: #f6f8fa; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0d1117; --fg: #e6edf3; --muted: #9198a1; --line: #3d444d; --card: #151b23; }
}
body { background: var(--bg); color: var(--fg); font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1100px; padding: 16px 24px; }
h1 { font-size: 24px; margin: 8px 0 4px; } h2 { font-size: 19px; margin-top: 32px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 20px 0 6px; }
.muted { color: var(--muted); }
.cards { display: flex; flex-wrap: wrap; gap: 10px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; min-width: 150px; }
.card .v { font-size: 20px; font-weight: 600; } .card .p { color: var(--muted); font-size: 12px; }
.headline { font-size: 17px; font-weight: 600; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: middle; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
th { cursor: pointer; user-select: none; white-space: nowrap; }
td.t { max-width: 420px; overflow-wrap: break-word; }
figure { margin: 8px 0 16px; } figure svg { max-width: 100%; height: auto; }
.legend span { display: inline-block; margin-right: 14px; font-size: 12px; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 2px; }
svg text { fill: var(--fg); }
svg [stroke="#000000"] { stroke: var(--fg); }
.v-stopped { color: #1a7f37; } .v-persisting, .v-rotated { color: #cf222e; } .v-not-enforced { color: #9a6700; }
@media (prefers-color-scheme: dark) { .v-stopped { color: #3fb950; } .v-persisting, .v-rotated { color: #ff7b72; } .v-not-enforced { color: #d29922; } }
@media print {
  :root { --bg: #fff; --fg: #000; --muted: #444; --line: #bbb; --card: #fff; }
  body { max-width: none; padding: 0; } th { cursor: auto; }
  section, figure, tr { break-inside: avoid; }
}
"##;

/// Sorts a table by a clicked header: numbers by `data-v`, else by text; a second click reverses.
const SCRIPT: &str = r##"
document.querySelectorAll("table.sortable th").forEach((th, col) => th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0];
  const key = tr => { const td = tr.cells[col]; return td.dataset.v !== undefined ? Number(td.dataset.v) : td.textContent; };
  const dir = th.dataset.dir === "desc" ? 1 : -1; th.dataset.dir = dir === 1 ? "asc" : "desc";
  [...body.rows].sort((a, b) => { const x = key(a), y = key(b); return (x > y ? 1 : x < y ? -1 : 0) * dir; }).forEach(r => body.appendChild(r));
}));
"##;

fn num(n: u64) -> String {
    format!(r#"<td class="n" data-v="{n}">{}</td>"#, thousands(n))
}

fn text(s: &str) -> String {
    format!(r#"<td class="t">{}</td>"#, esc(s))
}

fn table(out: &mut String, id: &str, header: &[&str], rows: impl Iterator<Item = String>) {
    let _ = write!(out, r#"<table class="sortable" id="{id}"><thead><tr>"#);
    for h in header {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>\n");
    for r in rows {
        let _ = writeln!(out, "<tr>{r}</tr>");
    }
    out.push_str("</tbody></table>\n");
}

fn legend(items: &[(&str, plotters::style::RGBColor)]) -> String {
    let mut s = String::from(r#"<div class="legend">"#);
    for (name, c) in items {
        let _ = write!(
            s,
            r#"<span><i style="background:rgb({},{},{})"></i>{}</span>"#,
            c.0,
            c.1,
            c.2,
            esc(name)
        );
    }
    s + "</div>"
}

fn card(label: &str, value: &str, previous: Option<String>) -> String {
    format!(
        r#"<div class="card"><div class="muted">{}</div><div class="v">{}</div>{}</div>"#,
        esc(label),
        esc(value),
        previous.map_or(String::new(), |p| format!(
            r#"<div class="p">{}</div>"#,
            esc(&p)
        ))
    )
}

fn overview(out: &mut String, r: &Report) {
    let o = &r.overview;
    out.push_str(r#"<section id="overview"><h2>Overview</h2><div class="cards">"#);
    for (name, now, before) in o.current.compare(o.previous.as_ref()) {
        let prev = before.map(|b| format!("previous {} ({})", thousands(b), change_text(now, b)));
        out.push_str(&card(name, &thousands(now), prev));
    }
    out.push_str(&card(
        "blocked share",
        &percent(o.current.actions.block, o.current.requests),
        o.previous
            .as_ref()
            .map(|p| format!("previous {}", percent(p.actions.block, p.requests))),
    ));
    if let Some(share) = o.current.domestic_share {
        out.push_str(&card(
            &format!(
                "domestic share ({})",
                r.home_country.as_deref().unwrap_or("")
            ),
            &format!("{:.1}%", share * 100.0),
            o.previous
                .as_ref()
                .and_then(|p| p.domestic_share)
                .map(|p| format!("previous {:.1}%", p * 100.0)),
        ));
    }
    out.push_str("</div>\n<h3>WAF actions per hour</h3>");
    let h = &o.hourly;
    let stacked = [
        Series {
            name: "ALLOW",
            values: &h.allow,
            color: charts::ALLOW,
        },
        Series {
            name: "BLOCK",
            values: &h.block,
            color: charts::BLOCK,
        },
        Series {
            name: "CAPTCHA",
            values: &h.captcha,
            color: charts::CAPTCHA,
        },
        Series {
            name: "CHALLENGE",
            values: &h.challenge,
            color: charts::CHALLENGE,
        },
    ];
    let mut lines = Vec::new();
    let mut keys: Vec<(&str, plotters::style::RGBColor)> =
        stacked.iter().map(|s| (s.name, s.color)).collect();
    if let Some(c) = &h.counted {
        lines.push(Series {
            name: "COUNT-mode matches",
            values: c,
            color: charts::COUNTED,
        });
    }
    let previous = o.previous_hourly.as_ref().map(|p| p.requests());
    if let Some(p) = &previous {
        lines.push(Series {
            name: "previous period, all requests",
            values: p,
            color: charts::PREVIOUS,
        });
    }
    keys.extend(lines.iter().map(|l| (l.name, l.color)));
    let _ = write!(
        out,
        r#"<figure class="chart" id="chart-actions">{}{}</figure>"#,
        charts::hours_chart(&o.hours, &stacked, &lines),
        legend(&keys)
    );
    if let (Some(d), Some(x)) = (&h.domestic, &h.overseas) {
        let home = r.home_country.as_deref().unwrap_or("home country");
        let domestic = format!("domestic ({home})");
        let series = [
            Series {
                name: &domestic,
                values: d,
                color: charts::DOMESTIC,
            },
            Series {
                name: "overseas",
                values: x,
                color: charts::OVERSEAS,
            },
        ];
        let _ = write!(
            out,
            r#"<h3>Domestic and overseas requests per hour</h3><figure class="chart" id="chart-geo">{}{}</figure>"#,
            charts::hours_chart(&o.hours, &[], &series),
            legend(&[
                (&domestic, charts::DOMESTIC),
                ("overseas", charts::OVERSEAS)
            ])
        );
    }
    out.push_str("</section>\n");
}

fn clients_table(out: &mut String, id: &str, list: &[TopClient]) {
    table(
        out,
        id,
        &[
            "client",
            "requests",
            "blocked",
            "country",
            "top rule",
            "per hour",
            "user agent",
        ],
        list.iter().map(|c| {
            format!(
                "{}{}{}{}{}<td>{}</td>{}",
                text(&c.client),
                num(c.requests),
                num(c.blocked),
                text(&c.country),
                text(&c.top_rule),
                charts::sparkline(&c.hourly, None),
                text(&c.user_agent)
            )
        }),
    );
}

fn counts_table(out: &mut String, id: &str, title: &str, list: &[Count]) {
    if list.is_empty() {
        return;
    }
    let _ = write!(out, "<h3>{}</h3>", esc(title));
    table(
        out,
        id,
        &["value", "requests"],
        list.iter()
            .map(|c| format!("{}{}", text(&c.value), num(c.count))),
    );
}

fn who(out: &mut String, r: &Report) {
    let w = &r.who;
    out.push_str(r#"<section id="who"><h2>Who</h2>"#);
    for (id, title, list) in [
        ("clients", "Top clients", &w.clients),
        ("prefixes-v4", "Top /24 prefixes", &w.prefixes_v4),
        ("prefixes-v6", "Top /64 prefixes", &w.prefixes_v6),
    ] {
        if !list.is_empty() {
            let _ = write!(out, "<h3>{title}</h3>");
            clients_table(out, id, list);
        }
    }
    counts_table(out, "countries", "Countries", &w.countries);
    let ua_title = if w.user_agents_exact {
        "User agents"
    } else {
        "User agents (at least: some clients used more than the scan keeps per client)"
    };
    counts_table(out, "user-agents", ua_title, &w.user_agents);
    counts_table(
        out,
        "bot-categories",
        "Bot Control categories",
        &w.bot_categories,
    );
    counts_table(out, "bot-names", "Bot Control bot names", &w.bot_names);
    counts_table(out, "rules", "Terminating rules", &w.rules);
    counts_table(
        out,
        "count-rules",
        "Rules matched in COUNT mode",
        &w.count_rules,
    );
    out.push_str("</section>\n");
}

/// Values and how many members had each, as one cell's text.
fn tally(list: &[Count], distinct: usize) -> String {
    let mut s: Vec<String> = list
        .iter()
        .map(|c| format!("{} ({})", c.value, thousands(c.count)))
        .collect();
    if distinct > list.len() {
        s.push(format!("of {} distinct", thousands(distinct as u64)));
    }
    s.join(", ")
}

/// One campaign in full: its fingerprint, its top members' evidence and every member.
fn campaign_details(out: &mut String, c: &CampaignReport) {
    let k = &c.campaign;
    let _ = write!(
        out,
        r#"<details id="{id}"><summary><code>{id}</code> {} · {} · {} findings · {} addresses · {} requests</summary><ul>"#,
        esc(&k.policy),
        esc(&k.outcome.to_string()),
        thousands(k.size as u64),
        thousands(k.addresses as u64),
        thousands(k.requests),
        id = esc(&k.id),
    );
    let mut item = |name: &str, value: String| {
        if !value.is_empty() {
            let _ = write!(out, "<li>{}: {}</li>", esc(name), esc(&value));
        }
    };
    item("user agent", user_agent(&c.campaign));
    item("JA4", k.signature.ja4.clone().unwrap_or_default());
    item("JA3", k.signature.ja3.clone().unwrap_or_default());
    item("seen", format!("{} .. {}", k.first_seen, k.last_seen));
    item("countries", tally(&k.countries, k.distinct_countries));
    item("ASNs", tally(&k.asns, k.asns.len()));
    item("networks", tally(&k.networks, k.distinct_networks));
    item("shared networks", tally(&c.shared_networks, 0));
    item("paths probed", tally(&k.paths, k.distinct_paths));
    out.push_str("</ul>");
    table(
        out,
        &format!("{}-top", k.id),
        &[
            "member",
            "requests",
            "fired",
            "first seen",
            "last seen",
            "peak 5m",
            "blocked",
            "top paths",
            "user agent",
        ],
        c.top_members.iter().map(|f| {
            let e = &f.evidence;
            let paths: Vec<&str> = e.top_uris.iter().map(|u| &*u.value).collect();
            format!(
                "{}{}{}{}{}{}{}{}{}",
                text(&f.key.to_string()),
                num(e.requests),
                text(&f.fired.join(", ")),
                text(&e.first_seen),
                text(&e.last_seen),
                num(e.peak_5m),
                num(e.actions.block),
                text(&paths.join(" ")),
                text(e.user_agents.first().map_or("", |u| &*u.value)),
            )
        }),
    );
    let members: Vec<String> = k.members.iter().map(ToString::to_string).collect();
    let _ = writeln!(
        out,
        "<p>Every member, most requests first: <code>{}</code></p></details>",
        esc(&members.join(" "))
    );
}

fn campaigns(out: &mut String, r: &Report) {
    let c = &r.campaigns;
    let _ = write!(
        out,
        r#"<section id="campaigns"><h2>Campaigns</h2><p>{} findings in {} campaigns: one policy and outcome, one client signature (user agent, JA4, JA3).</p>"#,
        thousands(c.findings),
        thousands(c.campaigns.len() as u64)
    );
    if !c.campaigns.is_empty() {
        table(
            out,
            "campaign-list",
            // The markdown's columns, with what the page has room for before the user agent.
            &[
                &CAMPAIGN_HEADER[..9],
                &["ASNs", "shared networks", "paths probed"],
                &CAMPAIGN_HEADER[9..],
            ]
            .concat(),
            c.campaigns.iter().map(|x| {
                let k = &x.campaign;
                format!(
                    r##"<td><a href="#{id}"><code>{id}</code></a></td>{}{}{}{}{}{}{}{}{}{}{}{}"##,
                    text(&k.policy),
                    text(&k.outcome.to_string()),
                    num(k.size as u64),
                    num(k.addresses as u64),
                    num(k.requests),
                    text(&k.first_seen),
                    text(&k.last_seen),
                    text(&tally(&k.countries, k.distinct_countries)),
                    text(&tally(&k.asns, k.asns.len())),
                    text(&tally(&x.shared_networks, 0)),
                    text(&tally(&k.paths, k.distinct_paths)),
                    text(&user_agent(&x.campaign)),
                    id = esc(&k.id),
                )
            }),
        );
        for x in &c.campaigns {
            campaign_details(out, x);
        }
    }
    out.push_str("</section>\n");
}

fn block_effect(out: &mut String, r: &Report) {
    let b = &r.block_effect;
    let _ = write!(
        out,
        r#"<section id="block-effect"><h2>Block effect</h2><p class="headline" id="headline">{}</p><div class="cards">"#,
        esc(&b.headline())
    );
    for v in Verdict::ALL {
        out.push_str(&card(v.as_str(), &thousands(b.count(v)), None));
    }
    out.push_str("</div>");
    if b.entries.is_empty() {
        out.push_str(r#"<p class="muted">No ledger entry was in force during the period.</p>"#);
    } else {
        let _ = write!(
            out,
            r#"<p class="muted">Every ledger entry in force during the period; the red line in the hourly requests marks when it was added.</p>"#
        );
        let first_hour = r.overview.hours.first().cloned().unwrap_or_default();
        let start: Option<jiff::Timestamp> = first_hour.parse().ok();
        let per_hour = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
        table(
            out,
            "blocks",
            &["range", "policy", "verdict", "added", "req/h before", "req/h after", "answered", "per hour", "why"],
            b.entries.iter().enumerate().map(|(i, e)| {
                let mark = start.zip(e.added.parse::<jiff::Timestamp>().ok()).map(|(s, a)| {
                    (a.as_millisecond() - s.as_millisecond()) as f64 / 3_600_000.0
                });
                let spark = if i < SPARKLINES {
                    charts::sparkline(&e.hourly, mark)
                } else {
                    String::new()
                };
                format!(
                    r#"{}{}<td class="v-{}">{}</td>{}<td class="n">{}</td><td class="n">{}</td>{}<td>{spark}</td>{}"#,
                    text(&e.cidr),
                    text(&e.policy),
                    e.verdict.as_str().replace(' ', "-"),
                    e.verdict.as_str(),
                    text(&e.added),
                    per_hour(e.per_hour_before),
                    per_hour(e.per_hour_after),
                    num(e.answered),
                    text(&e.why),
                )
            }),
        );
    }
    out.push_str("</section>\n");
}

/// Origin health, when origin logs were read: 5xx and origin time per hour, the clients that took
/// the most of either, and each block's origin 5xx and time before and after it.
fn origin(out: &mut String, r: &Report) {
    let Some(h) = &r.origin else {
        return;
    };
    let _ = write!(
        out,
        r#"<section id="origin"><h2>Origin health</h2><p class="headline">{}</p><h3>Origin 5xx per hour</h3>"#,
        esc(&origin::health_line(h, r.home_country.as_deref()))
    );
    let errors = [Series {
        name: "5xx",
        values: &h.hourly.s5xx,
        color: charts::BLOCK,
    }];
    let _ = write!(
        out,
        r#"<figure class="chart" id="chart-origin-5xx">{}{}</figure><h3>Origin time per hour (seconds)</h3>"#,
        charts::hours_chart(&r.overview.hours, &errors, &[]),
        legend(&[("5xx", charts::BLOCK)])
    );
    let secs = origin::hourly_secs(h);
    let time = [Series {
        name: "origin time (s)",
        values: &secs,
        color: charts::ALLOW,
    }];
    let _ = write!(
        out,
        r#"<figure class="chart" id="chart-origin-time">{}{}</figure>"#,
        charts::hours_chart(&r.overview.hours, &time, &[]),
        legend(&[("origin time (s)", charts::ALLOW)])
    );
    let cells = |rows: Vec<Vec<String>>| {
        rows.into_iter()
            .map(|row| row.iter().map(|c| text(c)).collect::<String>())
            .collect::<Vec<_>>()
    };
    for (id, title, rows) in [
        (
            "origin-by-time",
            "Top clients by origin time",
            &h.origin.top_by_origin_time,
        ),
        (
            "origin-by-5xx",
            "Top clients by origin 5xx",
            &h.origin.top_by_5xx,
        ),
    ] {
        if !rows.is_empty() {
            let _ = write!(out, "<h3>{title}</h3>");
            table(
                out,
                id,
                &origin::CLIENT_HEADER,
                cells(origin::client_rows(rows)).into_iter(),
            );
        }
    }
    if !h.blocks.is_empty() {
        out.push_str("<h3>Blocks at the origin</h3><p class=\"muted\">Each block-effect entry's origin requests, 5xx and time before and after it was added.</p>");
        table(
            out,
            "origin-blocks",
            &origin::BLOCK_HEADER,
            cells(origin::block_rows(&h.blocks)).into_iter(),
        );
    }
    out.push_str("</section>\n");
}

fn rate_rules(out: &mut String, r: &Report) {
    if r.rate_rules.is_empty() {
        return;
    }
    out.push_str(r#"<section id="rate-rules"><h2>Rate rules</h2>"#);
    for (i, x) in r.rate_rules.iter().enumerate() {
        let _ = write!(
            out,
            r#"<h3>{} <span class="muted">({}; scope {}; window {}; {})</span></h3><div class="cards">{}{}{}{}{}</div>"#,
            esc(&x.rule),
            esc(&x.web_acl),
            esc(&x.scope),
            esc(&x.window),
            esc(&x.action),
            card(
                "limit",
                &thousands(x.limit),
                Some(
                    if x.recommended {
                        "recommended from these logs"
                    } else {
                        "fixed"
                    }
                    .into()
                )
            ),
            card("clients in scope", &thousands(x.clients), None),
            card(
                "p95 / max peak",
                &format!(
                    "{} / {}",
                    thousands(x.percentiles.p95),
                    thousands(x.percentiles.max)
                ),
                None
            ),
            card(
                "headroom over p95",
                &x.headroom.map_or("-".into(), |h| format!("{h:.1}x")),
                None
            ),
            card(
                if x.action == "block" {
                    "limited"
                } else {
                    "would limit"
                },
                &format!("{} clients", thousands(x.limited_clients)),
                Some(format!("{} requests", thousands(x.limited_requests)))
            ),
        );
        let _ = write!(
            out,
            r#"<figure class="chart" id="chart-rate-{i}">{}{}</figure>"#,
            charts::peaks_histogram(&x.histogram, x.limit),
            legend(&[
                ("clients per peak", charts::ALLOW),
                ("limit", charts::BLOCK)
            ])
        );
        if !x.limited.is_empty() {
            table(
                out,
                &format!("limited-{i}"),
                &[
                    "client",
                    "class",
                    "country",
                    "peak",
                    "limited",
                    "user agent",
                ],
                x.limited.iter().map(|c| {
                    format!(
                        "{}{}{}{}{}{}",
                        text(&c.client),
                        text(c.class.as_str()),
                        text(&c.country),
                        num(c.peak),
                        num(c.limited),
                        text(&c.user_agent)
                    )
                }),
            );
        }
    }
    out.push_str("</section>\n");
}

fn ledger(out: &mut String, r: &Report) {
    let l = &r.ledger;
    let _ = write!(
        out,
        r#"<section id="ledger"><h2>Ledger</h2><div class="cards">{}{}{}{}{}</div>"#,
        card("in force", &thousands(l.in_force), None),
        card("added", &thousands(l.added.len() as u64), None),
        card("extended", &thousands(l.extended.len() as u64), None),
        card("expired", &thousands(l.expired.len() as u64), None),
        card(
            "expiring in 7 days",
            &thousands(l.expiring_soon.len() as u64),
            None
        ),
    );
    if !l.by_policy.is_empty() {
        out.push_str("<h3>Entries in force by policy and group</h3>");
        table(
            out,
            "ledger-policies",
            &["policy", "group", "entries"],
            l.by_policy
                .iter()
                .map(|p| format!("{}{}{}", text(&p.policy), text(&p.group), num(p.entries))),
        );
    }
    if !l.asns.is_empty() {
        out.push_str("<h3>ASN entries</h3>");
        table(
            out,
            "ledger-asns",
            &[
                "ASN", "list", "policy", "added", "expires", "state", "reason",
            ],
            l.asns.iter().map(|a| {
                format!(
                    "{}{}{}{}{}{}{}",
                    text(&a.asn),
                    text(&a.list),
                    text(&a.policy),
                    text(&a.added),
                    text(a.expires.as_deref().unwrap_or("never")),
                    text(if a.expired { "expired" } else { "in force" }),
                    text(&a.reason)
                )
            }),
        );
    }
    for (id, title, list) in [
        ("ledger-added", "Added in the period", &l.added),
        ("ledger-extended", "Extended in the period", &l.extended),
        ("ledger-expired", "Expired in the period", &l.expired),
        (
            "ledger-expiring",
            "Expiring in the next 7 days",
            &l.expiring_soon,
        ),
    ] {
        if list.is_empty() {
            continue;
        }
        let _ = write!(out, "<h3>{title}</h3>");
        table(
            out,
            id,
            &["range", "group", "policy", "strikes", "added", "expires"],
            list.iter().map(|e| {
                format!(
                    "{}{}{}{}{}{}",
                    text(&e.cidr),
                    text(&e.group),
                    text(&e.policy),
                    num(u64::from(e.strikes)),
                    text(e.added.as_deref().unwrap_or("-")),
                    text(e.expires.as_deref().unwrap_or("never"))
                )
            }),
        );
    }
    out.push_str("</section>\n");
}

pub fn render(r: &Report) -> String {
    let mut out = format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark"><title>waftune report {} .. {}</title><style>{STYLE}</style></head>
<body><header><h1>waftune report</h1><p class="muted">{} .. {} ({} hours){}; generated {}</p></header>
"#,
        esc(&r.period.since),
        esc(&r.period.until),
        esc(&r.period.since),
        esc(&r.period.until),
        r.period.hours,
        r.previous_period
            .as_ref()
            .map_or(String::new(), |p| format!(
                ", compared with {} .. {}",
                esc(&p.since),
                esc(&p.until)
            )),
        esc(&r.generated_at),
    );
    overview(&mut out, r);
    who(&mut out, r);
    campaigns(&mut out, r);
    block_effect(&mut out, r);
    origin(&mut out, r);
    rate_rules(&mut out, r);
    ledger(&mut out, r);
    if !r.notes.is_empty() {
        out.push_str(r#"<footer class="muted">"#);
        for n in &r.notes {
            let _ = write!(out, "<p>Note: {}.</p>", esc(n));
        }
        out.push_str("</footer>");
    }
    let _ = writeln!(out, "<script>{SCRIPT}</script></body></html>");
    out
}
