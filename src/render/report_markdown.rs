//! `waftune report --markdown`: the pull-request body. Headline numbers, the changes against the
//! previous period, the block effect, who, rate rules and the ledger, within [`BUDGET`] characters
//! at any volume: lists are cut to their top rows with a count of the rest, cells to a width, and
//! if the whole still does not fit, the least important sections give way to one-line summaries;
//! a table is never cut. The full lists are in the HTML report and the JSON.

use std::fmt::Write as _;

use super::origin;
use super::propose_markdown::{
    CAMPAIGN_HEADER, MEMBERS_NAMED, campaign_head, campaign_row, header,
};
use super::report_text::{Blocks, change_text, figure_rows, sparkline};
use super::{finding_details, percent, thousands};
use crate::report::{BlockRow, Report, Verdict};
use crate::scan::Count;

/// Characters (GitHub takes 65,536 in a pull-request body; the rest is room for what a workflow
/// appends).
pub const BUDGET: usize = 60_000;

/// Rows per list and characters per log-derived cell.
const ROWS: usize = 10;
const CELL: usize = 60;

/// A cell of log-derived text: cut to `CELL` characters, with markdown and HTML made inert.
fn cell(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == CELL {
            out.push('…');
            break;
        }
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '~' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn md_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!(
        "| {} |\n|{}\n",
        header.join(" | "),
        "---|".repeat(header.len())
    );
    for r in rows {
        let _ = writeln!(out, "| {} |", r.join(" | "));
    }
    out
}

/// The first `ROWS` rows and a line for the rest.
fn top_rows<T>(
    items: &[T],
    total: u64,
    row: impl Fn(&T) -> Vec<String>,
) -> (Vec<Vec<String>>, String) {
    let rows: Vec<Vec<String>> = items.iter().take(ROWS).map(row).collect();
    let more = total.saturating_sub(rows.len() as u64);
    let rest = if more > 0 {
        format!("\n… and {} more in the full report.\n", thousands(more))
    } else {
        String::new()
    };
    (rows, rest)
}

fn counts_line(v: &[Count]) -> String {
    let mut parts: Vec<String> = v
        .iter()
        .take(ROWS)
        .map(|c| format!("{} {}", cell(&c.value), thousands(c.count)))
        .collect();
    if v.len() > ROWS {
        parts.push(format!("and {} more", v.len() - ROWS));
    }
    parts.join(", ")
}

/// A section in full, and its one-line summary for when the budget is short.
struct Section {
    full: String,
    short: String,
}

fn overview(r: &Report) -> Section {
    let o = &r.overview;
    let mut s = String::from("### Overview\n\n");
    let (header, rows) = figure_rows(o);
    s += &md_table(header, &rows);
    let _ = writeln!(
        s,
        "\nRequests per hour: `{}` (max {})",
        sparkline(&o.hourly.requests(), 84, Blocks::Unicode),
        thousands(o.hourly.requests().into_iter().max().unwrap_or(0))
    );
    if let Some(p) = &o.previous_hourly {
        let _ = writeln!(
            s,
            "\nThe previous period: `{}`",
            sparkline(&p.requests(), 84, Blocks::Unicode)
        );
    }
    Section {
        short: format!(
            "### Overview\n\n{} requests from {} clients, {} blocked.\n",
            thousands(o.current.requests),
            thousands(o.current.distinct_clients),
            percent(o.current.actions.block, o.current.requests)
        ),
        full: s,
    }
}

fn block_effect(r: &Report) -> Section {
    let b = &r.block_effect;
    let counts = md_table(
        &["verdict", "entries"],
        &Verdict::ALL
            .iter()
            .map(|&v| vec![v.as_str().to_owned(), thousands(b.count(v))])
            .collect::<Vec<_>>(),
    );
    let mut s = format!("### Block effect\n\n**{}**.\n\n{counts}", b.headline());
    // The entries that need a reviewer: persisting, rotated, not enforced (listed first).
    let attention: Vec<&BlockRow> = b
        .entries
        .iter()
        .filter(|e| {
            matches!(
                e.verdict,
                Verdict::Persisting | Verdict::Rotated | Verdict::NotEnforced
            )
        })
        .collect();
    if !attention.is_empty() {
        let per_hour = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
        let (rows, rest) = top_rows(&attention, attention.len() as u64, |e| {
            vec![
                format!("`{}`", e.cidr),
                cell(&e.policy),
                e.verdict.as_str().to_owned(),
                per_hour(e.per_hour_before),
                per_hour(e.per_hour_after),
                thousands(e.answered),
                cell(&e.why),
            ]
        });
        s += "\nNeeding attention:\n\n";
        s += &md_table(
            &[
                "range",
                "policy",
                "verdict",
                "req/h before",
                "req/h after",
                "answered",
                "why",
            ],
            &rows,
        );
        s += &rest;
    }
    Section {
        short: format!("### Block effect\n\n**{}**.\n", b.headline()),
        full: s,
    }
}

/// Campaigns shown with their fingerprint and top members' evidence (the table lists [`ROWS`]).
const CAMPAIGNS_DETAILED: usize = 3;

/// The campaigns as `propose --report` shows them: the largest in a table, the first few with
/// their fingerprint and top members' evidence; the HTML report and the JSON list every member.
fn campaigns(r: &Report) -> Section {
    let c = &r.campaigns;
    let intro = format!(
        "### Campaigns\n\n{} findings in {} campaigns (one policy and outcome, one client \
         signature: see docs/campaigns.md).\n",
        thousands(c.findings),
        thousands(c.campaigns.len() as u64)
    );
    if c.campaigns.is_empty() {
        return Section {
            short: intro.clone(),
            full: intro,
        };
    }
    let mut s = intro.clone() + "\n" + &header(&CAMPAIGN_HEADER);
    for x in c.campaigns.iter().take(ROWS) {
        s += &campaign_row(&x.campaign);
    }
    if c.campaigns.len() > ROWS {
        let _ = writeln!(
            s,
            "\n… and {} more in the full report.",
            thousands((c.campaigns.len() - ROWS) as u64)
        );
    }
    s.push('\n');
    for x in c.campaigns.iter().take(CAMPAIGNS_DETAILED) {
        s += &campaign_head(&x.campaign, MEMBERS_NAMED);
        for f in &x.top_members {
            s += &finding_details(f);
        }
    }
    let largest = &c.campaigns[0].campaign;
    Section {
        short: format!(
            "{intro}\nThe largest: `{}` ({}, {} findings); all of them are in the full report.\n",
            largest.id,
            cell(&largest.policy),
            thousands(largest.size as u64)
        ),
        full: s,
    }
}

fn who(r: &Report) -> Section {
    let w = &r.who;
    let mut s = String::from("### Who\n\n");
    for (title, list) in [
        ("Top clients", &w.clients),
        ("Top /24 prefixes", &w.prefixes_v4),
        ("Top /64 prefixes", &w.prefixes_v6),
    ] {
        if list.is_empty() {
            continue;
        }
        let (rows, _) = top_rows(list, list.len() as u64, |c| {
            vec![
                format!("`{}`", c.client),
                thousands(c.requests),
                percent(c.blocked, c.requests),
                cell(&c.country),
                format!("`{}`", sparkline(&c.hourly, 24, Blocks::Unicode)),
                cell(&c.user_agent),
            ]
        });
        let _ = writeln!(s, "{title}:\n");
        s += &md_table(
            &[
                "client",
                "requests",
                "blocked",
                "country",
                "per hour",
                "user agent",
            ],
            &rows,
        );
        s.push('\n');
    }
    for (title, list) in [
        ("Countries", &w.countries),
        ("Terminating rules", &w.rules),
        ("COUNT-mode rules", &w.count_rules),
        ("Bot Control categories", &w.bot_categories),
        ("Bot Control names", &w.bot_names),
    ] {
        if !list.is_empty() {
            let _ = writeln!(s, "- {title}: {}", counts_line(list));
        }
    }
    Section {
        short: format!(
            "### Who\n\nTop client: {}.\n",
            w.clients.first().map_or("none".into(), |c| format!(
                "`{}` ({} requests)",
                c.client,
                thousands(c.requests)
            ))
        ),
        full: s,
    }
}

fn rate_rules(r: &Report) -> Section {
    let rows: Vec<Vec<String>> = r
        .rate_rules
        .iter()
        .map(|x| {
            vec![
                format!("`{}`", cell(&x.rule)),
                cell(&x.scope),
                x.window.clone(),
                x.action.clone(),
                format!(
                    "{}{}",
                    thousands(x.limit),
                    if x.recommended { " (recommended)" } else { "" }
                ),
                thousands(x.clients),
                thousands(x.percentiles.p95),
                thousands(x.percentiles.max),
                x.headroom.map_or("-".into(), |h| format!("{h:.1}x")),
                format!(
                    "{} clients, {} requests",
                    thousands(x.limited_clients),
                    thousands(x.limited_requests)
                ),
            ]
        })
        .collect();
    let full = if rows.is_empty() {
        String::new()
    } else {
        "### Rate rules\n\n".to_owned()
            + &md_table(
                &[
                    "rule",
                    "scope",
                    "window",
                    "action",
                    "limit",
                    "clients",
                    "p95 peak",
                    "max peak",
                    "headroom",
                    "limited (would limit)",
                ],
                &rows,
            )
    };
    Section {
        short: if rows.is_empty() {
            String::new()
        } else {
            format!(
                "### Rate rules\n\n{} rules; see the full report.\n",
                rows.len()
            )
        },
        full,
    }
}

/// Origin health, when origin logs were read.
fn origin_health(r: &Report) -> Option<Section> {
    let h = r.origin.as_ref()?;
    // Numbers and the configured home country only: nothing from the logs to make inert.
    let line = origin::health_line(h, r.home_country.as_deref());
    let mut s = format!("### Origin health\n\n{}.\n", line);
    for (name, series) in [
        ("5xx per hour", h.hourly.s5xx.clone()),
        ("Origin seconds per hour", origin::hourly_secs(h)),
    ] {
        let _ = writeln!(
            s,
            "\n{name}: `{}` (max {})",
            sparkline(&series, 84, Blocks::Unicode),
            thousands(series.iter().max().copied().unwrap_or(0))
        );
    }
    let cells = |row: Vec<String>| row.iter().map(|c| cell(c)).collect::<Vec<_>>();
    for (title, rows) in [
        ("Top clients by origin time", &h.origin.top_by_origin_time),
        ("Top clients by origin 5xx", &h.origin.top_by_5xx),
    ] {
        if !rows.is_empty() {
            let (rows, rest) = top_rows(&origin::client_rows(rows), rows.len() as u64, |r| {
                cells(r.clone())
            });
            let _ = write!(s, "\n#### {title}\n\n");
            s += &md_table(&origin::CLIENT_HEADER, &rows);
            s += &rest;
        }
    }
    if !h.blocks.is_empty() {
        let (rows, rest) = top_rows(&origin::block_rows(&h.blocks), h.blocks.len() as u64, |r| {
            cells(r.clone())
        });
        s += "\n#### Blocks at the origin\n\n";
        s += &md_table(&origin::BLOCK_HEADER, &rows);
        s += &rest;
    }
    Some(Section {
        short: format!("### Origin health\n\n{}.\n", line),
        full: s,
    })
}

fn ledger(r: &Report) -> Section {
    let l = &r.ledger;
    let mut s = format!(
        "### Ledger\n\n{} entries in force; this period {} added, {} extended, {} expired; {} expire in the next 7 days.\n\n",
        thousands(l.in_force),
        thousands(l.added.len() as u64),
        thousands(l.extended.len() as u64),
        thousands(l.expired.len() as u64),
        thousands(l.expiring_soon.len() as u64),
    );
    if !l.by_policy.is_empty() {
        let (rows, rest) = top_rows(&l.by_policy, l.by_policy.len() as u64, |p| {
            vec![cell(&p.policy), cell(&p.group), thousands(p.entries)]
        });
        s += &md_table(&["policy", "group", "entries"], &rows);
        s += &rest;
    }
    if !l.asns.is_empty() {
        s += "\nASN entries (docs/asn.md):\n\n";
        let (rows, rest) = top_rows(&l.asns, l.asns.len() as u64, |a| {
            vec![
                cell(&a.asn),
                cell(&a.list),
                cell(&a.policy),
                cell(&a.added),
                cell(a.expires.as_deref().unwrap_or("never")),
                cell(if a.expired { "expired" } else { "in force" }),
                cell(&a.reason),
            ]
        });
        s += &md_table(
            &[
                "ASN", "list", "policy", "added", "expires", "state", "reason",
            ],
            &rows,
        );
        s += &rest;
    }
    Section {
        short: format!(
            "### Ledger\n\n{} entries in force.\n",
            thousands(l.in_force)
        ),
        full: s,
    }
}

/// The summary; `html` names the full report written beside it.
pub fn render(r: &Report, html: Option<&str>) -> String {
    let mut head = format!(
        "## waftune report: {} .. {}\n\n**{}**",
        r.period.since,
        r.period.until,
        r.block_effect.headline()
    );
    let c = &r.overview.current;
    let _ = write!(
        head,
        " · {} requests · {} distinct clients · {} blocked",
        thousands(c.requests),
        thousands(c.distinct_clients),
        percent(c.actions.block, c.requests)
    );
    if let Some(p) = &r.overview.previous {
        let _ = write!(
            head,
            " ({} requests than the previous period)",
            change_text(c.requests, p.requests)
        );
    }
    head += "\n\n";
    let mut tail = String::from("\n---\n");
    match html {
        Some(name) => {
            let _ = writeln!(
                tail,
                "Full lists, charts and every entry's evidence: the HTML report `{}`.",
                cell(name)
            );
        }
        None => {
            tail += "Full lists and charts: `waftune report --html FILE`; every number: `--format json`.\n"
        }
    }
    for note in &r.notes {
        let _ = writeln!(tail, "\nNote: {note}.");
    }
    // In order of importance; the last ones shorten first.
    let mut sections = vec![overview(r), block_effect(r), campaigns(r), who(r)];
    sections.extend(origin_health(r));
    sections.extend([rate_rules(r), ledger(r)]);
    let size = |sections: &[Section], short_from: usize| -> usize {
        head.chars().count()
            + tail.chars().count()
            + sections
                .iter()
                .enumerate()
                .map(|(i, s)| if i >= short_from { &s.short } else { &s.full })
                .map(|s| s.chars().count() + 1)
                .sum::<usize>()
    };
    let mut short_from = sections.len();
    while short_from > 0 && size(&sections, short_from) > BUDGET {
        short_from -= 1;
    }
    let mut out = head;
    for (i, s) in sections.iter_mut().enumerate() {
        out += if i >= short_from { &s.short } else { &s.full };
        out.push('\n');
    }
    out + &tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_inert_and_short() {
        assert_eq!(cell("a|b<script>"), "a\\|b&lt;script&gt;");
        assert_eq!(cell(&"x".repeat(100)).chars().count(), CELL + 1);
        assert_eq!(cell("[x](javascript:1)"), "\\[x\\](javascript:1)");
    }
}
