//! The Athena engine: the same aggregates as the local scan, computed by Trino SQL over the S3 logs.
//!
//! [`sql`] writes the queries and the table definition, [`client`] runs them, and [`rows`] turns
//! their results into the local engine's types, so everything downstream is engine-agnostic.

pub mod client;
pub mod origin;
pub mod rollup;
pub mod rows;
pub mod sql;

use std::ops::Range;
use std::time::Duration;

use crate::log::TimeRange;
use crate::scan::{ScanOptions, Traffic};
use client::{AthenaApi, AthenaError};
use rows::{ConvertError, RowError};
use sql::Table;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Athena(#[from] AthenaError),
    #[error("query `{id}`: {source}")]
    Convert { id: String, source: ConvertError },
    #[error("inconsistent query result: {0}")]
    Rows(#[from] RowError),
    #[error(
        "the rollup `{rollup}` lost {hours} hours it held at the start of the run (a fill running at \
         the same time?): run again"
    )]
    RollupChanged { rollup: String, hours: usize },
}

/// Where a run reads: the raw table of the logs, and the rollup table if there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub table: Table,
    pub rollup: Option<String>,
}

impl Source {
    /// The hours of `options`' range and of `previous` a run reads from the rollup: every whole
    /// hour closed at `now_ms` (none without a rollup). The rollup command keeps them filled.
    fn held(
        &self,
        options: &ScanOptions,
        previous: Option<&TimeRange>,
        now_ms: i64,
    ) -> rollup::Held {
        match self.rollup {
            Some(_) => rollup::Held {
                range: rollup::closed_hours(&options.range, now_ms).collect(),
                previous: previous
                    .map_or_else(Vec::new, |p| rollup::closed_hours(p, now_ms).collect()),
            },
            None => rollup::Held::default(),
        }
    }

    /// The one statement of a run: the whole range (and `previous`, for `report --compare`) from
    /// the raw table, or with a rollup their held hours from the rollup and the rest (the open
    /// tail, partial hours at the edges, hours the rollup lacks) from the raw table.
    pub fn statement(
        &self,
        options: &ScanOptions,
        previous: Option<&TimeRange>,
        held: &rollup::Held,
    ) -> String {
        let (range, policies) = (&options.range, &options.policies);
        let home = options.home_country.as_deref();
        match &self.rollup {
            Some(name) => rollup::scan(&self.table, name, range, previous, held, policies, home),
            None => sql::scan(&self.table, range, previous, policies, home),
        }
    }

    /// The statement a run at `now_ms` issues first (the one `--print-sql` shows).
    pub fn first_statement(
        &self,
        options: &ScanOptions,
        previous: Option<&TimeRange>,
        now_ms: i64,
    ) -> String {
        self.statement(options, previous, &self.held(options, previous, now_ms))
    }
}

/// What a run cost: statements issued, bytes they scanned, and the hours the rollup lacked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scanned {
    pub statements: usize,
    pub bytes: u64,
    pub missing_hours: Vec<i64>,
}

/// Runs the one statement (it runs in parallel inside Athena) and builds the [`Traffic`] of
/// [`rows::traffic`]; with `previous` (`report --compare`), the traffic of that period too, from
/// the same statement: all requests, no policies, as [`crate::scan::scan_split`] builds it. With
/// a rollup, the statement reads the closed hours from it; if the markers that come back show it
/// lacks some (not filled yet, or filled for other policies), the statement runs once more,
/// reading those hours from the raw table: a result is never missing an hour. Two statements at
/// most: hours lost between them (a refill at the same time) fail the run.
pub async fn scan(
    api: &AthenaApi,
    source: &Source,
    options: &ScanOptions,
    previous: Option<TimeRange>,
    now_ms: i64,
    timeout: Duration,
) -> Result<(Traffic, Option<Traffic>, Scanned), EngineError> {
    let mut held = source.held(options, previous.as_ref(), now_ms);
    let mut scanned = Scanned::default();
    let mut rows = loop {
        let statement = source.statement(options, previous.as_ref(), &held);
        let out = api.run(&statement, timeout).await?;
        scanned.statements += 1;
        scanned.bytes += out.bytes_scanned;
        let rows = out
            .result
            .scan_rows(options.policies.len())
            .map_err(|source| EngineError::Convert {
                id: out.id.clone(),
                source,
            })?;
        let markers = rows.previous.as_ref().map_or(&[][..], |p| &p.markers[..]);
        let missing = rollup::Held {
            range: rollup::missing(&held.range, &rows.markers, options.policies.len()),
            previous: rollup::missing(&held.previous, markers, 0),
        };
        if missing.is_empty() {
            break rows;
        }
        if let (Some(rollup), false) = (&source.rollup, scanned.missing_hours.is_empty()) {
            return Err(EngineError::RollupChanged {
                rollup: rollup.clone(),
                hours: missing.range.len() + missing.previous.len(),
            });
        }
        held.range.retain(|h| !missing.range.contains(h));
        held.previous.retain(|h| !missing.previous.contains(h));
        scanned.missing_hours.extend(missing.previous);
        scanned.missing_hours.extend(missing.range);
        scanned.missing_hours.sort_unstable();
    };
    let before = match previous {
        Some(range) => {
            let options = ScanOptions {
                range,
                policies: Vec::new(),
                ..options.clone()
            };
            Some(rows.previous.take().unwrap_or_default().traffic(&options)?)
        }
        None => None,
    };
    Ok((rows.traffic(options)?, before, scanned))
}

/// What a fill did: the hours it filled and the bytes its statements scanned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filled {
    pub held: usize,
    pub filled: Vec<Range<i64>>,
    pub statements: usize,
    pub bytes: u64,
}

/// Fills the rollup `name` with `hours` for `policies`: the hours it does not hold yet (all of them
/// with `refill`), [`rollup::FILL_HOURS`] at most per statement.
pub async fn fill(
    api: &AthenaApi,
    table: &Table,
    name: &str,
    hours: Range<i64>,
    policies: &[crate::policy::Policy],
    refill: bool,
    timeout: Duration,
) -> Result<Filled, EngineError> {
    let mut done = Filled::default();
    let mut todo: Vec<i64> = hours.clone().collect();
    if !refill && !hours.is_empty() {
        let out = api
            .run(&rollup::coverage(name, hours, policies), timeout)
            .await?;
        done.statements += 1;
        done.bytes += out.bytes_scanned;
        let fingerprints = rollup::unique(&rollup::fingerprints(policies));
        let held = out
            .result
            .coverage_rows(fingerprints.len())
            .map_err(|source| EngineError::Convert { id: out.id, source })?;
        done.held = held.len();
        todo.retain(|h| !held.contains(h));
    }
    for chunk in rollup::chunks(&todo) {
        for statement in rollup::fill(table, name, chunk.clone(), policies) {
            let out = api.run(&statement, timeout).await?;
            done.statements += 1;
            done.bytes += out.bytes_scanned;
        }
        done.filled.push(chunk);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::TimeRange;
    use crate::model::athena::Layout;

    /// Policies that give every query shape: per client and per /24, with and without a minimum
    /// of matched requests.
    const POLICIES: &str = r#"
[[policy]]
name = "posts"
description = "d"
key = "ip"
[policy.match]
method = ["POST"]
[policy.thresholds]
requests = 1
[policy.action]
type = "report"

[[policy]]
name = "scan"
description = "d"
key = "prefix"
[policy.match]
path = ["/wp-*"]
[policy.thresholds]
requests = 20
[policy.action]
type = "report"
"#;

    /// [`POLICIES`], parsed.
    pub(super) fn policies() -> Vec<crate::policy::Policy> {
        crate::policy::parse_str(POLICIES, std::path::Path::new("t.toml"), None)
            .expect("valid policies")
            .policies
            .policies
    }

    #[test]
    fn the_statement_reads_the_raw_table_once_with_partition_and_timestamp_in_every_layout() {
        let policies = policies();
        // 2026-11-20T00:12:34.5Z .. 2026-11-21T00:00:00Z
        let range = TimeRange {
            since: Some(1_795_133_554_500),
            until: Some(1_795_219_200_000),
        };
        let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        for (layout, partition) in [
            (
                Layout::Projection,
                "log_time >= '2026/11/19/23/57' AND log_time <= '2026/11/21/00/15'",
            ),
            (
                Layout::Date,
                "\"date\" >= '2026/11/19' AND \"date\" <= '2026/11/21'",
            ),
            (Layout::None, ""),
        ] {
            let source = Source {
                table: Table {
                    name: "waf_logs".into(),
                    layout,
                },
                rollup: None,
            };
            let options = ScanOptions {
                range,
                policies: policies.clone(),
                ..ScanOptions::default()
            };
            let q = words(&source.first_statement(&options, None, 0));
            // The minimum of the second policy, per /24, in the HAVING of the key window.
            assert!(
                q.contains("key_requests >= CASE policy WHEN 2 THEN 20"),
                "{q}"
            );
            assert!(q.contains("WHEN policy IN (2) THEN ARRAY['prefix']"), "{q}");
            assert_eq!(q.matches("waf_logs").count(), 1, "one read: {q}");
            let exact = "timestamp >= 1795133554500 AND timestamp < 1795219200000";
            let filter = format!(
                "WHERE {partition}{}{exact}",
                if partition.is_empty() { "" } else { " AND " }
            );
            assert!(q.contains(&filter), "{layout:?}: {q}");
            // With a rollup, the closed hours come from it and the raw table is still read once.
            let source = Source {
                rollup: Some("waf_rollup".into()),
                ..source
            };
            let q = words(&source.first_statement(&options, None, 1_795_219_200_000 + 3_600_000));
            assert_eq!(q.matches("waf_logs").count(), 1, "{q}");
            assert_eq!(q.matches("FROM waf_rollup").count(), 1, "{q}");
            assert!(q.contains("(hour >= 498649 AND hour < 498672)"), "{q}");
        }
    }
}
