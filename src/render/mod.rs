//! Rendering reports for people (terminal tables, markdown for pull requests) and for machines (JSON).
//! Reports arrive as data; this module only lays them out, so every format shows the same facts.

use std::fmt::Write as _;

use tabled::builder::Builder;
use tabled::settings::{Style, Width, object::Columns};

use crate::analyze::{AnalyzeReport, ClientRow};
use crate::propose::asn::AsnChange;
use crate::propose::campaign::Outcome;
use crate::propose::{Change, ChangeKind, Finding, ProposeReport, Verdict};
use crate::scan::{ActionCounts, Count};
use crate::util::text::{percent, thousands};

pub mod origin;
pub mod plan;
pub mod propose_markdown;
pub mod rate;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Tables for a terminal.
    #[default]
    Table,
    /// The documented JSON schema.
    Json,
    /// GitHub-flavoured markdown, for a pull request or a step summary.
    Markdown,
}

/// A table in the chosen text style; long cells are truncated so a terminal row stays readable.
pub fn table(header: &[&str], rows: Vec<Vec<String>>, format: Format) -> String {
    let mut b = Builder::default();
    b.push_record(header.iter().copied());
    for r in rows {
        b.push_record(r);
    }
    let mut t = b.build();
    match format {
        Format::Markdown => {
            t.with(Style::markdown());
        }
        _ => {
            t.with(Style::rounded());
            t.modify(Columns::new(..), Width::truncate(48).suffix("…"));
        }
    }
    t.to_string()
}

fn actions_line(a: &ActionCounts) -> String {
    let total = a.total();
    [
        ("ALLOW", a.allow),
        ("BLOCK", a.block),
        ("CAPTCHA", a.captcha),
        ("CHALLENGE", a.challenge),
        ("OTHER", a.other),
    ]
    .iter()
    .filter(|(_, n)| *n > 0)
    .map(|(name, n)| format!("{name} {} ({})", thousands(*n), percent(*n, total)))
    .collect::<Vec<_>>()
    .join("  ")
}

fn first(v: &[Count]) -> String {
    v.first().map(|c| c.value.to_string()).unwrap_or_default()
}

fn client_rows(rows: &[ClientRow]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|c| {
            vec![
                c.ip.clone(),
                thousands(c.requests),
                thousands(c.peak_1m),
                thousands(c.peak_5m),
                c.peak_5m_at.clone().unwrap_or_default(),
                percent(c.actions.block, c.requests),
                first(&c.countries),
                thousands(c.distinct_uris),
                first(&c.top_uris),
                first(&c.user_agents),
                if c.verified_bot { "verified bot" } else { "" }.into(),
            ]
        })
        .collect()
}

const CLIENT_HEADER: [&str; 11] = [
    "client",
    "requests",
    "peak 1m",
    "peak 5m",
    "peak 5m at",
    "blocked",
    "country",
    "URIs",
    "top URI",
    "user agent",
    "note",
];

fn count_rows(v: &[Count], total: u64) -> Vec<Vec<String>> {
    v.iter()
        .map(|c| {
            vec![
                c.value.to_string(),
                thousands(c.count),
                percent(c.count, total),
            ]
        })
        .collect()
}

/// Renders an `analyze` report.
pub fn analyze(r: &AnalyzeReport, format: Format) -> String {
    if format == Format::Json {
        return serde_json::to_string_pretty(r).expect("report serialises") + "\n";
    }
    let md = format == Format::Markdown;
    let heading = |s: &str| {
        if md {
            format!("\n### {s}\n\n")
        } else {
            format!("\n{s}\n")
        }
    };
    let mut out = String::new();
    if md {
        out.push_str("## waftune analyze\n\n");
    }
    let bullet = if md { "- " } else { "" };
    let _ = writeln!(
        out,
        "{bullet}{} records in {} files ({} malformed, {} outside the time range, {} client IPs not addresses)",
        thousands(r.records),
        thousands(r.files),
        thousands(r.malformed),
        thousands(r.out_of_range),
        thousands(r.unparseable_client_ips),
    );
    if let Some(span) = &r.time_span {
        let _ = writeln!(
            out,
            "{bullet}time span: {} .. {} ({} min), {} distinct clients",
            span.first,
            span.last,
            thousands(span.minutes),
            thousands(r.distinct_clients)
        );
    }
    let _ = writeln!(out, "{bullet}actions: {}", actions_line(&r.actions));
    if let (Some(home), Some(share)) = (&r.geo.home_country, r.geo.domestic_share) {
        let _ = writeln!(
            out,
            "{bullet}home country {home}: {:.1}% domestic, {:.1}% overseas ({} requests with no country)",
            share * 100.0,
            (1.0 - share) * 100.0,
            thousands(r.geo.split.unknown)
        );
    }
    if !r.clients.is_empty() {
        out += &heading("Top clients");
        out += &table(&CLIENT_HEADER, client_rows(&r.clients), format);
        out.push('\n');
    }
    if !r.prefixes.is_empty() {
        out += &heading("Top prefixes (/24, /64)");
        out += &table(&CLIENT_HEADER, client_rows(&r.prefixes), format);
        out.push('\n');
    }
    for (title, list) in [
        ("Countries", &r.countries),
        ("Terminating rules", &r.rules),
        ("Rules matched in COUNT mode", &r.count_rules),
        ("Labels", &r.labels),
    ] {
        if !list.is_empty() {
            out += &heading(title);
            out += &table(
                &["value", "requests", "share"],
                count_rows(list, r.records),
                format,
            );
            out.push('\n');
        }
    }
    if r.malformed > 0 {
        out += &heading(&format!(
            "Malformed input (first {} of {})",
            r.malformed_examples.len(),
            thousands(r.malformed)
        ));
        for m in &r.malformed_examples {
            let _ = writeln!(out, "{bullet}{m}");
        }
    }
    if let Some(o) = &r.origin {
        out += &origin::section(o, format, &heading);
    }
    out
}

fn verdict_text(v: &Verdict) -> String {
    Outcome::of(v).to_string()
}

fn change_text(k: ChangeKind) -> &'static str {
    match k {
        ChangeKind::Add => "+ add",
        ChangeKind::Extend => "~ extend",
        ChangeKind::Expire => "- expire",
        ChangeKind::Merge => "- merged",
        ChangeKind::Covered => "= covered",
    }
}

fn counts_line(v: &[Count]) -> String {
    v.iter()
        .map(|c| format!("`{}` ({})", c.value, thousands(c.count)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The evidence of one finding, as markdown a reviewer reads before approving.
fn finding_details(f: &Finding) -> String {
    let e = &f.evidence;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<details><summary><code>{}</code> — {} — {}</summary>\n",
        f.key,
        f.policy,
        verdict_text(&f.verdict)
    );
    let _ = writeln!(out, "- fired: {}", f.fired.join(", "));
    match &f.verdict {
        Verdict::Report { note, rate_limit } => {
            for line in note.iter().chain(rate_limit) {
                let _ = writeln!(out, "- suggestion: {line}");
            }
        }
        Verdict::Suppressed { by } => {
            let _ = writeln!(out, "- suppressed by allowlist entry: {by}");
        }
        Verdict::Block { .. } => {}
    }
    if !f.members.is_empty() {
        let members: Vec<String> = f.members.iter().map(|m| format!("`{m}`")).collect();
        let _ = writeln!(out, "- offending addresses: {}", members.join(", "));
    }
    let _ = writeln!(
        out,
        "- requests: {} between {} and {}; peak 1m {}, peak 5m {} (from {}), peak 10m {}",
        thousands(e.requests),
        e.first_seen,
        e.last_seen,
        thousands(e.peak_1m),
        thousands(e.peak_5m),
        e.peak_5m_at.as_deref().unwrap_or("-"),
        thousands(e.peak_10m)
    );
    let _ = writeln!(out, "- WAF actions: {}", actions_line(&e.actions));
    for (name, list) in [
        ("top paths", &e.top_uris),
        ("user agents", &e.user_agents),
        ("countries", &e.countries),
        ("labels", &e.labels),
        ("terminating rules", &e.rules),
    ] {
        if !list.is_empty() {
            let _ = writeln!(out, "- {name}: {}", counts_line(list));
        }
    }
    let _ = writeln!(
        out,
        "- distinct paths: {}\n\n</details>\n",
        thousands(e.distinct_uris)
    );
    out
}

/// The two summary lines of a `propose` run: records and findings, then the ledger counts.
fn propose_headline(r: &ProposeReport, md: bool) -> String {
    let count = |pred: fn(&Verdict) -> bool| r.findings.iter().filter(|f| pred(&f.verdict)).count();
    let kinds = |k: ChangeKind| r.changes.iter().filter(|c| c.kind == k).count();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} records{}; {} findings: {} to block, {} reported only, {} suppressed by the allowlist",
        thousands(r.records),
        r.time_span
            .as_ref()
            .map(|(a, b)| format!(" from {a} to {b}"))
            .unwrap_or_default(),
        r.findings.len(),
        count(|v| matches!(v, Verdict::Block { .. })),
        count(|v| matches!(v, Verdict::Report { .. })),
        count(|v| matches!(v, Verdict::Suppressed { .. })),
    );
    let _ = writeln!(
        out,
        "{}ledger: {} added, {} extended, {} expired, {} merged, {} already covered (as of {})",
        if md { "\n" } else { "" },
        kinds(ChangeKind::Add),
        kinds(ChangeKind::Extend),
        kinds(ChangeKind::Expire),
        kinds(ChangeKind::Merge),
        kinds(ChangeKind::Covered),
        r.now
    );
    out
}

const CHANGE_HEADER: [&str; 7] = [
    "change", "range", "group", "policy", "strikes", "expires", "reason",
];

fn change_row(c: &Change) -> Vec<String> {
    vec![
        change_text(c.kind).into(),
        c.cidr.to_string(),
        c.group.clone(),
        c.policy.clone(),
        c.strikes.to_string(),
        c.expires
            .map(|t| t.to_string())
            .unwrap_or_else(|| "never".into()),
        c.reason.clone(),
    ]
}

const ASN_CHANGE_HEADER: [&str; 6] = ["change", "ASN", "list", "policy", "expires", "reason"];

fn asn_change_row(c: &AsnChange) -> Vec<String> {
    vec![
        c.kind.as_str().into(),
        c.asn.to_string(),
        c.list.clone(),
        c.policy.clone(),
        c.expires
            .map(|t| t.to_string())
            .unwrap_or_else(|| "never".into()),
        c.reason.clone(),
    ]
}

/// Renders a `propose` run: what the policies found and what changed in the ledger. Markdown is
/// the pull-request summary ([`propose_markdown::summary`]), within its budget at any volume.
pub fn propose(r: &ProposeReport, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(r).expect("report serialises") + "\n",
        Format::Markdown => propose_markdown::summary(r, None),
        Format::Table => propose_table(r),
    }
}

fn propose_table(r: &ProposeReport) -> String {
    let format = Format::Table;
    let mut out = propose_headline(r, false);
    let heading = |s: &str| format!("\n{s}\n");
    if !r.changes.is_empty() {
        out += &heading("Ledger changes");
        let rows = r.changes.iter().map(change_row).collect();
        out += &table(&CHANGE_HEADER, rows, format);
        out.push('\n');
    }
    if !r.asn_changes.is_empty() {
        out += &heading("ASN changes");
        let rows = r.asn_changes.iter().map(asn_change_row).collect();
        out += &table(&ASN_CHANGE_HEADER, rows, format);
        out.push('\n');
    }
    if !r.findings.is_empty() {
        out += &heading("Findings");
        let rows = r
            .findings
            .iter()
            .map(|f| {
                vec![
                    f.policy.clone(),
                    f.key.to_string(),
                    verdict_text(&f.verdict),
                    f.fired.join(", "),
                    thousands(f.evidence.requests),
                    thousands(f.evidence.peak_5m),
                    first(&f.evidence.top_uris),
                    first(&f.evidence.user_agents),
                ]
            })
            .collect();
        out += &table(
            &[
                "policy",
                "key",
                "verdict",
                "fired",
                "requests",
                "peak 5m",
                "top path",
                "user agent",
            ],
            rows,
            format,
        );
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_table() {
        let t = table(
            &["a", "b"],
            vec![vec!["1".into(), "2".into()]],
            Format::Markdown,
        );
        assert_eq!(t, "| a | b |\n|---|---|\n| 1 | 2 |");
    }
}
mod report_charts;
pub mod report_html;
pub mod report_markdown;
pub mod report_text;
