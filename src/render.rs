//! Rendering reports for people (terminal tables, markdown for pull requests) and for machines (JSON).
//! Reports arrive as data; this module only lays them out, so every format shows the same facts.

use std::fmt::Write as _;

use clap::ValueEnum;
use tabled::builder::Builder;
use tabled::settings::{Style, Width, object::Columns};

use crate::analyze::{AnalyzeReport, ClientRow};
use crate::scan::{ActionCounts, Count};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// Tables for a terminal.
    #[default]
    Table,
    /// The documented JSON schema.
    Json,
    /// GitHub-flavoured markdown, for a pull request or a step summary.
    Markdown,
}

/// 1234567 -> "1,234,567".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
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
    v.first().map(|c| c.value.clone()).unwrap_or_default()
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
        .map(|c| vec![c.value.clone(), thousands(c.count), percent(c.count, total)])
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
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(percent(1, 3), "33.3%");
        assert_eq!(percent(1, 0), "-");
    }

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
