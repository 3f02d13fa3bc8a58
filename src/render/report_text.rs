//! `waftune report` on a terminal: the overview with sparklines, the block-effect headline and the
//! top clients.

use std::fmt::Write as _;

use super::{Format, percent, table, thousands};
use crate::report::{Overview, Report, Verdict, change};

/// How sparklines are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocks {
    /// `▁▂▃▄▅▆▇█`.
    Unicode,
    /// ` .:-=+*#`, for terminals whose locale is not UTF-8.
    Ascii,
}

impl Blocks {
    /// Unicode when the locale names UTF-8: the first set of `LC_ALL`, `LC_CTYPE`, `LANG`, as
    /// POSIX resolves it; ASCII otherwise (including no locale at all, which is POSIX's `C`).
    pub fn from_env() -> Blocks {
        let locale = ["LC_ALL", "LC_CTYPE", "LANG"]
            .iter()
            .filter_map(|v| std::env::var(v).ok())
            .find(|v| !v.is_empty())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if locale.contains("utf-8") || locale.contains("utf8") {
            Blocks::Unicode
        } else {
            Blocks::Ascii
        }
    }

    fn ramp(self) -> &'static [char] {
        match self {
            Blocks::Unicode => &['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'],
            Blocks::Ascii => &[' ', '.', ':', '-', '=', '+', '*', '#'],
        }
    }
}

/// One character per value, scaled to the largest; a zero is the lowest block (Unicode) or a blank.
/// Longer series are summed into at most `width` buckets.
pub fn sparkline(values: &[u64], width: usize, blocks: Blocks) -> String {
    let per = values.len().div_ceil(width.max(1)).max(1);
    let buckets: Vec<u64> = values.chunks(per).map(|c| c.iter().sum()).collect();
    let max = buckets.iter().copied().max().unwrap_or(0);
    let ramp = blocks.ramp();
    buckets
        .iter()
        .map(|&v| {
            if max == 0 || v == 0 {
                ramp[0]
            } else {
                ramp[((v * (ramp.len() as u64 - 1)).div_ceil(max)) as usize]
            }
        })
        .collect()
}

/// `+12.5%`, `-3.0%`, or `new` from zero.
pub fn change_text(current: u64, previous: u64) -> String {
    match change(current, previous) {
        Some(c) => format!("{:+.1}%", c * 100.0),
        None if current == 0 => "-".into(),
        None => "new".into(),
    }
}

/// The headline figures beside the previous period's and the change, with their header.
pub fn figure_rows(o: &Overview) -> (&'static [&'static str], Vec<Vec<String>>) {
    let mut rows: Vec<Vec<String>> = o
        .current
        .compare(o.previous.as_ref())
        .into_iter()
        .map(|(name, now, before)| {
            let mut row = vec![name.to_owned(), thousands(now)];
            if let Some(b) = before {
                row.extend([thousands(b), change_text(now, b)]);
            }
            row
        })
        .collect();
    let mut blocked = vec![
        "blocked share".into(),
        percent(o.current.actions.block, o.current.requests),
    ];
    if let Some(p) = &o.previous {
        blocked.extend([percent(p.actions.block, p.requests), String::new()]);
    }
    rows.push(blocked);
    let header: &[&str] = if o.previous.is_some() {
        &["", "this period", "previous period", "change"]
    } else {
        &["", "this period"]
    };
    (header, rows)
}

pub fn render(r: &Report, blocks: Blocks) -> String {
    let mut out = String::new();
    let o = &r.overview;
    let _ = writeln!(
        out,
        "waftune report: {} .. {} ({} h)",
        r.period.since, r.period.until, r.period.hours
    );
    if let Some(p) = &r.previous_period {
        let _ = writeln!(out, "compared with {} .. {}", p.since, p.until);
    }
    let (header, rows) = figure_rows(o);
    out += &table(header, rows, Format::Table);
    out.push('\n');
    let width = 72;
    let h = &o.hourly;
    let mut lines = vec![("requests/h", h.requests()), ("BLOCK/h", h.block.clone())];
    if let Some(c) = &h.counted {
        lines.push(("COUNT match/h", c.clone()));
    }
    if let (Some(d), Some(x)) = (&h.domestic, &h.overseas) {
        lines.push(("domestic/h", d.clone()));
        lines.push(("overseas/h", x.clone()));
    }
    if let Some(p) = &o.previous_hourly {
        lines.push(("previous req/h", p.requests()));
    }
    for (name, series) in lines {
        let max = series.iter().max().copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "{name:>15} {} max {}",
            sparkline(&series, width, blocks),
            thousands(max)
        );
    }
    let b = &r.block_effect;
    let _ = writeln!(
        out,
        "\nblock effect: {} ({})",
        b.headline(),
        Verdict::ALL
            .iter()
            .map(|&v| format!("{} {}", v.as_str(), b.count(v)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let clients: Vec<Vec<String>> = r
        .who
        .clients
        .iter()
        .take(10)
        .map(|c| {
            vec![
                c.client.clone(),
                thousands(c.requests),
                percent(c.blocked, c.requests),
                c.country.clone(),
                sparkline(&c.hourly, 24, blocks),
                c.user_agent.clone(),
            ]
        })
        .collect();
    if !clients.is_empty() {
        out += "\ntop clients\n";
        out += &table(
            &[
                "client",
                "requests",
                "blocked",
                "country",
                "per hour",
                "user agent",
            ],
            clients,
            Format::Table,
        );
        out.push('\n');
    }
    if let Some(h) = &r.origin {
        let _ = writeln!(
            out,
            "\norigin: {}",
            super::origin::health_line(h, r.home_country.as_deref())
        );
        for (name, series) in [
            ("origin 5xx/h", h.hourly.s5xx.clone()),
            ("origin s/h", super::origin::hourly_secs(h)),
        ] {
            let max = series.iter().max().copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "{name:>15} {} max {}",
                sparkline(&series, width, blocks),
                thousands(max)
            );
        }
        if !h.origin.top_by_5xx.is_empty() {
            out += "\ntop clients by origin 5xx\n";
            let rows = super::origin::client_rows(
                &h.origin.top_by_5xx[..h.origin.top_by_5xx.len().min(10)],
            );
            out += &table(&super::origin::CLIENT_HEADER, rows, Format::Table);
            out.push('\n');
        }
    }
    let c = &r.campaigns;
    if !c.campaigns.is_empty() {
        let _ = writeln!(
            out,
            "\ncampaigns: {} findings in {} campaigns",
            thousands(c.findings),
            thousands(c.campaigns.len() as u64)
        );
        let rows: Vec<Vec<String>> = c
            .campaigns
            .iter()
            .take(10)
            .map(|x| {
                let k = &x.campaign;
                vec![
                    k.id.clone(),
                    k.policy.clone(),
                    k.outcome.to_string(),
                    thousands(k.size as u64),
                    thousands(k.requests),
                    format!("{} .. {}", k.first_seen, k.last_seen),
                    k.signature.user_agent.clone().unwrap_or_default(),
                ]
            })
            .collect();
        out += &table(
            &[
                "campaign",
                "policy",
                "outcome",
                "findings",
                "requests",
                "seen",
                "user agent",
            ],
            rows,
            Format::Table,
        );
        out.push('\n');
    }
    for note in &r.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_scale_and_fall_back() {
        assert_eq!(sparkline(&[0, 1, 2, 4, 8], 10, Blocks::Unicode), "▁▂▃▅█");
        assert_eq!(sparkline(&[0, 1, 2, 4, 8], 10, Blocks::Ascii), " .:=#");
        // Summed into buckets when longer than the width.
        assert_eq!(sparkline(&[1, 1, 0, 0, 2, 2], 3, Blocks::Unicode), "▅▁█");
        assert_eq!(sparkline(&[], 3, Blocks::Ascii), "");
        assert_eq!(change_text(150, 100), "+50.0%");
        assert_eq!(change_text(3, 0), "new");
    }
}
