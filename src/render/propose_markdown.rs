//! `propose` as markdown: the pull-request summary, which stays within [`BUDGET`] at any volume,
//! and the full evidence beside it (`--evidence FILE`), which lists every finding and every
//! campaign member. Findings are shown as campaigns ([`crate::propose::campaign`]). The summary leaves out
//! whole rows and whole blocks, never part of one, and says what it left out and where it is.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{
    ASN_CHANGE_HEADER, CHANGE_HEADER, asn_change_row, change_row, finding_details,
    propose_headline, thousands,
};
use crate::propose::ProposeReport;
use crate::propose::campaign::{Campaign, TOP_MEMBERS};
use crate::scan::Count;

/// The most the summary may hold, in bytes (so at most as many characters): GitHub takes 65,536
/// characters in a pull-request body; the rest is room for the workflow's own footer.
pub const BUDGET: usize = 60_000;
/// Kept free until the end, for the note on what was left out.
const RESERVE: usize = 1_500;
/// Member addresses named per campaign in the summary.
pub(super) const MEMBERS_NAMED: usize = 20;
/// Longest user agent in a table cell (the campaign's own block shows it whole).
const UA_CELL: usize = 60;

/// One markdown table row; `|` escaped and line breaks flattened, so a cell cannot break the table.
fn row(cells: &[String]) -> String {
    let cells: Vec<String> = cells
        .iter()
        .map(|c| c.replace('|', "\\|").replace(['\n', '\r'], " "))
        .collect();
    format!("| {} |\n", cells.join(" | "))
}

pub(super) fn header(cells: &[&str]) -> String {
    let owned: Vec<String> = cells.iter().map(|c| (*c).to_owned()).collect();
    row(&owned) + &format!("|{}\n", "---|".repeat(cells.len()))
}

/// At most `max` characters, keeping both ends: user agents differ in their product tokens at the
/// end (`Chrome/142…` vs `Edg/142…`) as often as in the platform at the start.
fn shorten(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_owned();
    }
    let head = (max - 1) / 2;
    let tail = max - 1 - head;
    s.chars().take(head).collect::<String>() + "…" + &s.chars().skip(n - tail).collect::<String>()
}

/// A campaign's user agent as text, saying when none was sent or logged.
pub(super) fn user_agent(c: &Campaign) -> String {
    match &c.signature.user_agent {
        Some(ua) if ua.is_empty() => "(none sent)".into(),
        Some(ua) => ua.clone(),
        None => "(not logged)".into(),
    }
}

fn tally_line(v: &[Count], distinct: usize, unit: &str) -> String {
    let listed: Vec<String> = v
        .iter()
        .map(|c| format!("`{}` ({})", c.value, thousands(c.count)))
        .collect();
    let mut line = listed.join(", ");
    if distinct > v.len() {
        let _ = write!(line, " of {} distinct {unit}", thousands(distinct as u64));
    }
    line
}

pub(super) const CAMPAIGN_HEADER: [&str; 10] = [
    "campaign",
    "policy",
    "outcome",
    "findings",
    "addresses",
    "requests",
    "first seen",
    "last seen",
    "countries",
    "user agent",
];

pub(super) fn campaign_row(c: &Campaign) -> String {
    let countries: Vec<&str> = c.countries.iter().take(3).map(|n| &*n.value).collect();
    let mut countries = countries.join(" ");
    if c.distinct_countries > 3 {
        let _ = write!(countries, " +{}", c.distinct_countries - 3);
    }
    row(&[
        format!("`{}`", c.id),
        c.policy.clone(),
        c.outcome.to_string(),
        thousands(c.size as u64),
        thousands(c.addresses as u64),
        thousands(c.requests),
        c.first_seen.clone(),
        c.last_seen.clone(),
        countries,
        format!("`{}`", shorten(&user_agent(c), UA_CELL)),
    ])
}

/// A campaign's heading and fingerprint, naming at most `named` members (all with `usize::MAX`).
pub(super) fn campaign_head(c: &Campaign, named: usize) -> String {
    let mut out = format!(
        "#### Campaign `{}`: {}, {}: {} findings, {} addresses, {} requests\n\n",
        c.id,
        c.policy,
        c.outcome,
        thousands(c.size as u64),
        thousands(c.addresses as u64),
        thousands(c.requests)
    );
    let _ = writeln!(out, "- user agent: `{}`", user_agent(c));
    for (name, value) in [("JA4", &c.signature.ja4), ("JA3", &c.signature.ja3)] {
        if let Some(v) = value {
            let _ = writeln!(out, "- {name}: `{v}`");
        }
    }
    let _ = writeln!(out, "- seen: {} .. {}", c.first_seen, c.last_seen);
    for (name, list, distinct, unit) in [
        ("countries", &c.countries, c.distinct_countries, "countries"),
        ("networks", &c.networks, c.distinct_networks, "/24 or /64"),
        ("paths", &c.paths, c.distinct_paths, "paths"),
        ("ASNs", &c.asns, c.asns.len(), "ASNs"),
    ] {
        if !list.is_empty() {
            let _ = writeln!(
                out,
                "- {name} (members): {}",
                tally_line(list, distinct, unit)
            );
        }
    }
    let shown: Vec<String> = c
        .members
        .iter()
        .take(named)
        .map(|m| format!("`{m}`"))
        .collect();
    let more = c.members.len() - shown.len();
    let _ = writeln!(
        out,
        "- members, most requests first: {}{}\n",
        shown.join(", "),
        if more > 0 {
            format!(" and {} more", thousands(more as u64))
        } else {
            String::new()
        }
    );
    out
}

/// Ledger changes counted by kind, group and policy: a handful of rows whatever the volume.
fn change_counts(r: &ProposeReport) -> Vec<String> {
    let mut counts: BTreeMap<(_, &str, &str), usize> = BTreeMap::new();
    for c in &r.changes {
        *counts.entry((c.kind, &*c.group, &*c.policy)).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|((kind, group, policy), n)| {
            row(&[
                super::change_text(kind).into(),
                group.into(),
                policy.into(),
                thousands(n as u64),
            ])
        })
        .collect()
}

/// Appends whole units while they fit in `limit` bytes of `out`; returns how many went in.
fn fill(out: &mut String, units: impl IntoIterator<Item = String>, limit: usize) -> usize {
    let mut n = 0;
    for u in units {
        if out.len() + u.len() > limit {
            break;
        }
        out.push_str(&u);
        n += 1;
    }
    n
}

/// The pull-request summary: headline numbers, the ledger changes summarised, findings as
/// campaigns with their top members' evidence. At most [`BUDGET`] bytes at any volume.
/// `evidence` names the full evidence file, if one is written.
pub fn summary(r: &ProposeReport, evidence: Option<&str>) -> String {
    summary_within(r, evidence, BUDGET)
}

fn summary_within(r: &ProposeReport, evidence: Option<&str>, budget: usize) -> String {
    let limit = budget.saturating_sub(RESERVE);
    let mut out = String::from("## waftune propose\n\n");
    out += &propose_headline(r, true);
    let campaigns = &r.campaigns;
    if !campaigns.is_empty() {
        let _ = writeln!(
            out,
            "\n{} findings in {} campaigns (one policy and outcome, one client signature: \
             see docs/campaigns.md).",
            thousands(r.findings.len() as u64),
            thousands(campaigns.len() as u64)
        );
    }
    if let Some(name) = evidence {
        let _ = writeln!(
            out,
            "\nThe full evidence, every finding of every campaign, is in `{name}`."
        );
    }
    let mut left_out: Vec<String> = Vec::new();

    if !r.changes.is_empty() {
        out += "\n### Ledger changes\n\n";
        out += &header(&["change", "group", "policy", "entries"]);
        let counts = change_counts(r);
        let total = counts.len();
        let shown = fill(&mut out, counts, limit);
        if shown < total {
            left_out.push(format!(
                "{} rows of the ledger change counts",
                total - shown
            ));
        }
        // The entries themselves: at most a quarter of the summary, the ledger diff has them all.
        let quarter = (out.len() + limit / 4).min(limit);
        out += "\n";
        let head = header(&CHANGE_HEADER);
        if out.len() + head.len() < quarter {
            out += &head;
            let shown = fill(
                &mut out,
                r.changes.iter().map(|c| row(&change_row(c))),
                quarter,
            );
            if shown < r.changes.len() {
                left_out.push(format!(
                    "{} of {} ledger changes (all of them are in the ledger diff)",
                    thousands((r.changes.len() - shown) as u64),
                    thousands(r.changes.len() as u64)
                ));
            }
        } else {
            left_out.push(format!(
                "the list of {} ledger changes (all of them are in the ledger diff)",
                thousands(r.changes.len() as u64)
            ));
        }
    }
    if !r.asn_changes.is_empty() {
        out += &asn_changes(r);
    }

    if !campaigns.is_empty() {
        out += "\n### Campaigns\n\n";
        out += &header(&CAMPAIGN_HEADER);
        // The table takes at most half of what is left: the rest shows the evidence.
        let half = (out.len() + limit.saturating_sub(out.len()) / 2).min(limit);
        let shown = fill(&mut out, campaigns.iter().map(campaign_row), half);
        if shown < campaigns.len() {
            left_out.push(format!(
                "{} of {} campaigns in the table",
                thousands((campaigns.len() - shown) as u64),
                thousands(campaigns.len() as u64)
            ));
        }

        out += "\n### Campaign evidence (top members)\n\n";
        let mut detailed = 0;
        let mut members_shown = 0;
        for c in campaigns {
            let mut block = campaign_head(c, MEMBERS_NAMED);
            for &i in c.top_members() {
                block += &finding_details(&r.findings[i]);
            }
            if out.len() + block.len() > limit {
                break;
            }
            out += &block;
            detailed += 1;
            members_shown += c.top_members().len();
        }
        if detailed < campaigns.len() {
            left_out.push(format!(
                "the fingerprint and evidence of {} of {} campaigns",
                thousands((campaigns.len() - detailed) as u64),
                thousands(campaigns.len() as u64)
            ));
        }
        let unshown = r.findings.len() - members_shown;
        if unshown > 0 {
            left_out.push(format!(
                "the evidence of {} of {} findings (each campaign shows its top {TOP_MEMBERS})",
                thousands(unshown as u64),
                thousands(r.findings.len() as u64)
            ));
        }
    }

    if !left_out.is_empty() {
        let where_ = match evidence {
            Some(name) => format!("all of it is in `{name}`"),
            None => "`waftune propose --evidence FILE` writes all of it".into(),
        };
        let _ = writeln!(
            out,
            "\n**Left out of this summary** (GitHub takes 65,536 characters): {}; {where_}.",
            left_out.join("; ")
        );
    }
    out
}

/// Every ASN change, with who else lives in the ASN: a few rows, always shown whole, since an ASN
/// answers a whole network.
fn asn_changes(r: &ProposeReport) -> String {
    let mut out = String::from("\n### ASN changes\n\n");
    out += &header(&ASN_CHANGE_HEADER);
    for c in &r.asn_changes {
        out += &row(&asn_change_row(c));
    }
    out
}

/// The full evidence: every ledger change, every campaign, and every finding's evidence under
/// its campaign. No limit: this is the file beside the summary.
pub fn evidence(r: &ProposeReport) -> String {
    let mut out = String::from("## waftune propose: full evidence\n\n");
    out += &propose_headline(r, true);
    if !r.changes.is_empty() {
        out += "\n### Ledger changes\n\n";
        out += &header(&CHANGE_HEADER);
        for c in &r.changes {
            out += &row(&change_row(c));
        }
    }
    if !r.asn_changes.is_empty() {
        out += &asn_changes(r);
    }
    if !r.campaigns.is_empty() {
        let _ = writeln!(
            out,
            "\n### Campaigns\n\n{} findings in {} campaigns (one policy and outcome, one client \
             signature: see docs/campaigns.md).\n",
            thousands(r.findings.len() as u64),
            thousands(r.campaigns.len() as u64)
        );
        out += &header(&CAMPAIGN_HEADER);
        for c in &r.campaigns {
            out += &campaign_row(c);
        }
        out += "\n### Evidence, by campaign\n\n";
        for c in &r.campaigns {
            out += &campaign_head(c, usize::MAX);
            for &i in &c.findings {
                out += &finding_details(&r.findings[i]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::propose::campaign::group;
    use crate::propose::campaign::tests::finding;
    use crate::propose::{Change, ChangeKind, Finding};

    /// `n` findings of two policies: scanners with `uas` distinct user agents, and stuffers.
    fn findings(n: usize, uas: usize) -> Vec<Finding> {
        (0..n)
            .map(|i| {
                let key = format!("10.{}.{}.{}/32", i / 65536, (i / 256) % 256, i % 256);
                let ua = format!(
                    "scanner-{}/1.0 (+https://example.test/a-long-user-agent)",
                    i % uas
                );
                if i % 3 == 0 {
                    finding(
                        "credential-stuffing",
                        &key,
                        &ua,
                        &["/login", "/api/login"],
                        "BR",
                        40 + i as u64 % 7,
                    )
                } else {
                    finding(
                        "path-scanner",
                        &key,
                        &ua,
                        &["/.env", "/.git/config", "/wp-login.php"],
                        "US",
                        10 + i as u64 % 50,
                    )
                }
            })
            .collect()
    }

    fn report(findings: Vec<Finding>) -> ProposeReport {
        let changes = findings
            .iter()
            .map(|f| Change {
                kind: ChangeKind::Add,
                cidr: f.key,
                group: "blocklist".into(),
                policy: f.policy.clone(),
                strikes: 1,
                expires: Some("2026-10-12T00:00:00Z".parse().unwrap()),
                reason: f.reason(),
            })
            .collect();
        ProposeReport {
            now: "2026-10-12T00:00:00Z".parse::<Timestamp>().unwrap(),
            records: 1_000_000,
            time_span: Some(("2026-10-05T00:00:00Z".into(), "2026-10-11T23:59:59Z".into())),
            campaigns: group(&findings),
            findings,
            changes,
            asn_changes: Vec::new(),
        }
    }

    #[test]
    fn long_user_agents_keep_both_ends() {
        let edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                    Chrome/142.0.0.0 Safari/537.36 Edg/142.0.0.0";
        let short = shorten(edge, 60);
        assert_eq!(short.chars().count(), 60);
        assert_eq!(
            short,
            "Mozilla/5.0 (Windows NT 10.0;….0 Safari/537.36 Edg/142.0.0.0"
        );
        assert_eq!(shorten("curl/8.5.0", 60), "curl/8.5.0");
    }

    #[test]
    fn a_small_run_fits_whole_and_leaves_nothing_out() {
        let r = report(findings(6, 2));
        let s = summary(&r, Some("evidence.md"));
        assert!(!s.contains("Left out"), "{s}");
        assert!(s.contains("6 findings in 4 campaigns"));
        assert!(
            s.contains("The full evidence, every finding of every campaign, is in `evidence.md`.")
        );
        for f in &r.findings {
            assert!(
                s.contains(&format!("<code>{}</code>", f.key)),
                "{} missing",
                f.key
            );
        }
    }

    #[test]
    fn any_volume_stays_within_the_budget_and_says_what_it_left_out() {
        for (n, uas) in [(60_000, 40), (20_000, 20_000), (3_000, 3)] {
            let r = report(findings(n, uas));
            for evidence in [Some("evidence.md"), None] {
                let s = summary(&r, evidence);
                assert!(s.len() <= BUDGET, "{n} findings: {} bytes", s.len());
                assert!(s.contains("**Left out of this summary**"), "{n}");
                let where_ = evidence.map_or(
                    "`waftune propose --evidence FILE` writes all of it".to_owned(),
                    |e| format!("all of it is in `{e}`"),
                );
                assert!(s.contains(&where_));
                // Tables are never cut mid-row: every table line is a whole row.
                for line in s.lines().filter(|l| l.starts_with('|')) {
                    assert!(line.ends_with('|'), "cut row: {line}");
                }
            }
        }
        // Unique user agents: the campaign table cannot list them all, and says so.
        let s = summary(&report(findings(20_000, 20_000)), None);
        assert!(s.contains("campaigns in the table"), "{s}");
    }

    #[test]
    fn the_evidence_has_every_finding_once_under_its_campaign() {
        let r = report(findings(500, 7));
        let e = evidence(&r);
        for f in &r.findings {
            let needle = format!("<details><summary><code>{}</code> — ", f.key);
            assert_eq!(e.matches(&needle).count(), 1, "{}", f.key);
        }
        for c in &r.campaigns {
            assert!(e.contains(&format!("#### Campaign `{}`", c.id)));
        }
        assert_eq!(e.matches("| + add |").count(), 500);
    }
}
