//! `report`: the weekly review, from one pass over the logs (or Athena's aggregates), the ledger
//! and the configuration.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;

use super::{
    ConfigArg, LogArgs, OriginArg, PoliciesArg, Source, SourceArgs, athena, exit, now_from,
    parse_timeout, print, scan_inputs, time_range, traffic_split,
};
use crate::ledger::Ledger;
use crate::log::TimeRange;
use crate::render::{self, Format};
use crate::report::{self, Inputs, Period};
use crate::scan::Detail;
use crate::util::term::info;
use crate::util::time::parse_instant;

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub policies: PoliciesArg,
    #[command(flatten)]
    pub logs: LogArgs,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Compare with the period of the same length just before (`previous`, needs `--since`), or
    /// with `SINCE..UNTIL`.
    #[arg(long, value_name = "previous|SINCE..UNTIL")]
    pub compare: Option<String>,
    /// Write the full report as one self-contained HTML file (no network needed to open it).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write the summary as markdown for a pull request body (at most 60,000 characters).
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// What to print on stdout; by default the overview (`table`) unless `--html` or `--markdown`
    /// is given.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    #[command(flatten)]
    pub origin: OriginArg,
}

/// The period the report covers: `--since/--until`; without `--until`, up to `now` (or the last
/// record, if later); without `--since`, from the first record.
pub(super) fn period(
    range: TimeRange,
    now_ms: i64,
    first: Option<i64>,
    last: Option<i64>,
) -> Period {
    let end_ms = range
        .until
        .unwrap_or_else(|| last.map_or(now_ms, |l| now_ms.max(l + 1)));
    let start_ms = range.since.or(first).unwrap_or(end_ms).min(end_ms);
    Period { start_ms, end_ms }
}

/// The previous period of `--compare`.
fn compare_period(text: &str, range: TimeRange, now_ms: i64) -> Result<Period> {
    if text == "previous" {
        if range.since.is_none() {
            bail!("`--compare previous` needs `--since`: the period before it has the same length");
        }
        return Ok(period(range, now_ms, None, None).previous());
    }
    let Some((a, b)) = text.split_once("..") else {
        bail!("`--compare {text}`: expected `previous` or `SINCE..UNTIL`");
    };
    let now = jiff::Timestamp::from_millisecond(now_ms)?;
    let p = Period {
        start_ms: parse_instant(a, now)?.as_millisecond(),
        end_ms: parse_instant(b, now)?.as_millisecond(),
    };
    if p.start_ms >= p.end_ms {
        bail!("`--compare {text}`: the start is not before the end");
    }
    let overlaps =
        range.since.is_none_or(|s| p.end_ms > s) && range.until.is_none_or(|u| p.start_ms < u);
    if overlaps {
        bail!("`--compare {text}` overlaps the reported period; compare with another one");
    }
    Ok(p)
}

impl Period {
    fn range(self) -> TimeRange {
        TimeRange {
            since: Some(self.start_ms),
            until: Some(self.end_ms),
        }
    }
}

fn write(path: &Path, text: &str, what: &str) -> Result<()> {
    crate::util::atomic_file::write(path, text.as_bytes())
        .with_context(|| format!("cannot write {what} `{}`", path.display()))?;
    info!("wrote {what} `{}`", path.display());
    Ok(())
}

pub fn report_cmd(mut args: ReportArgs) -> Result<ExitCode> {
    let config = args.config.load()?;
    if args.logs.home_country.is_none() {
        args.logs.home_country = config.home_country.clone();
    }
    let home = args
        .logs
        .home_country
        .as_deref()
        .map(str::to_ascii_uppercase);
    let now = now_from(args.logs.now.as_deref())?;
    let range = time_range(&args.logs)?;
    let previous = args
        .compare
        .as_deref()
        .map(|c| compare_period(c, range, now.as_millisecond()))
        .transpose()?;
    // Read-only, like the ledger: without policies (none named, none where the configuration
    // points) the report has no findings to group, and says so.
    let default_policies = config.policies_path();
    let missing_policies = args.policies.policies.is_none() && !default_policies.exists();
    let policy_set = if missing_policies {
        crate::policy::PolicySet::default()
    } else {
        args.policies.load(&config)?
    };
    let policies = report::scan_policies(&config, home.as_deref(), &policy_set)?;
    let origin_options = args.origin.options(Some(&config), range);
    let timeout = parse_timeout(&args.source.timeout)?;
    let (traffic, before, origin) = match args.source.source {
        Source::Local => {
            if args.source.print_sql {
                bail!("`--print-sql` needs `--source athena`");
            }
            // ALB and CloudFront logs among `--logs` add the origin-health section.
            scan_inputs(
                &args.logs,
                policies,
                previous.map(Period::range),
                Some(origin_options),
                Detail::All,
            )?
        }
        Source::Athena => {
            // Both periods from one statement: one read of the logs.
            let Some((now_traffic, before)) = traffic_split(
                &args.logs,
                &args.source,
                Some(&config),
                policies,
                previous.map(Period::range),
                Detail::All,
            )?
            else {
                // `--print-sql`: the origin query too, with an `origin_table`.
                athena::origin_traffic(&config, &origin_options, true, timeout)?;
                return Ok(ExitCode::from(exit::OK));
            };
            // With an `origin_table` in `[athena]`, the origin's aggregates of the period.
            let origin = athena::origin_traffic(&config, &origin_options, false, timeout)?;
            (now_traffic, before, origin)
        }
    };
    // Read-only: with no ledger yet (a first run) the report simply has no blocks to judge.
    let ledger = Ledger::load(&config.ledger_path(), true)?;
    let mut report = report::build(&Inputs {
        traffic: &traffic,
        previous: before.as_ref().zip(previous),
        period: period(
            range,
            now.as_millisecond(),
            traffic.first_ms,
            traffic.last_ms,
        ),
        ledger: &ledger,
        config: &config,
        policies: &policy_set,
        now,
        origin: origin.as_ref(),
    });
    if missing_policies {
        report.notes.push(format!(
            "campaigns: no policies at `{}`, so no findings to group",
            default_policies.display()
        ));
    }
    if let Some(path) = &args.html {
        write(path, &render::report_html::render(&report), "HTML report")?;
    }
    if let Some(path) = &args.markdown {
        let html = args
            .html
            .as_ref()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy());
        write(
            path,
            &render::report_markdown::render(&report, html.as_deref()),
            "markdown summary",
        )?;
    }
    let format = args
        .format
        .or_else(|| (args.html.is_none() && args.markdown.is_none()).then_some(Format::Table));
    match format {
        None => {}
        Some(Format::Json) => print(&(serde_json::to_string_pretty(&report)? + "\n"))?,
        Some(Format::Markdown) => print(&render::report_markdown::render(&report, None))?,
        Some(Format::Table) => print(&render::report_text::render(
            &report,
            render::report_text::Blocks::from_env(),
        ))?,
    }
    // The process exits next (as in `analyze`): freeing every client's lists one by one costs
    // time for memory the exit returns at once.
    std::mem::forget((report, traffic, before, origin));
    Ok(ExitCode::from(exit::OK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        let r = TimeRange {
            since: Some(1000),
            until: None,
        };
        assert_eq!(
            period(r, 5000, Some(10), Some(20)),
            Period {
                start_ms: 1000,
                end_ms: 5000
            }
        );
        let open = TimeRange::default();
        assert_eq!(
            period(open, 5000, Some(10), Some(20)),
            Period {
                start_ms: 10,
                end_ms: 5000
            }
        );
        assert_eq!(
            period(open, 5, Some(10), Some(20)),
            Period {
                start_ms: 10,
                end_ms: 21
            }
        );
        assert_eq!(
            compare_period("previous", r, 5000).unwrap(),
            Period {
                start_ms: -3000,
                end_ms: 1000
            }
        );
        assert!(compare_period("previous", open, 5000).is_err());
        assert!(compare_period("1970-01-01T00:00:00Z..1970-01-01T00:00:02Z", r, 5000).is_err());
        assert_eq!(
            compare_period("1970-01-01T00:00:00Z..1970-01-01T00:00:01Z", r, 5000).unwrap(),
            Period {
                start_ms: 0,
                end_ms: 1000
            }
        );
    }
}
