//! The Athena engine: the same aggregates as the local scan, computed by Trino SQL over the S3 logs.
//!
//! [`sql`] writes the queries and the table definition, [`client`] runs them, and [`rows`] turns
//! their results into the local engine's types, so everything downstream is engine-agnostic.

pub mod client;
pub mod origin;
pub mod rows;
pub mod sql;

use std::time::Duration;

use crate::scan::{ScanOptions, Traffic};
use client::{AthenaApi, AthenaError};
use rows::{ConvertError, PolicyRows, RowError};
use sql::Table;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Athena(#[from] AthenaError),
    #[error("query `{id}`: {source}")]
    Convert { id: String, source: ConvertError },
    #[error("inconsistent query result: {0}")]
    Rows(#[from] RowError),
}

/// The queries one scan runs: every request per client and minute, the values per client of all
/// requests and of each policy's, then one per policy for its requests per key and minute.
pub fn queries(table: &Table, options: &ScanOptions) -> Vec<String> {
    let mut queries = vec![
        sql::client_minutes(table, &options.range),
        sql::client_values(table, &options.range, &options.policies),
    ];
    queries.extend(
        options
            .policies
            .iter()
            .map(|p| sql::matched_minutes(table, &options.range, p)),
    );
    queries
}

/// Runs [`queries`] one after another (each already runs in parallel inside Athena) and builds the
/// [`Traffic`] of [`rows::traffic`]. Returns it with the bytes all queries scanned.
pub async fn scan(
    api: &AthenaApi,
    table: &Table,
    options: &ScanOptions,
    timeout: Duration,
) -> Result<(Traffic, u64), EngineError> {
    let mut minutes = Vec::new();
    let mut values = Vec::new();
    let mut scanned = 0;
    for (i, sql) in queries(table, options).into_iter().enumerate() {
        let out = api.run(&sql, timeout).await?;
        scanned += out.bytes_scanned;
        let convert = |source| EngineError::Convert {
            id: out.id.clone(),
            source,
        };
        // The second query is the only one of the values shape; see [`queries`].
        if i == 1 {
            values = out.result.value_rows().map_err(convert)?;
        } else {
            minutes.push(out.result.minute_rows().map_err(convert)?);
        }
    }
    let client_rows = minutes.remove(0);
    let policy_rows: Vec<_> = options
        .policies
        .iter()
        .zip(minutes)
        .map(|(p, rows)| PolicyRows::new(p, rows))
        .collect();
    let traffic = rows::traffic(
        &client_rows,
        &values,
        &policy_rows,
        options.home_country.clone(),
    )?;
    Ok((traffic, scanned))
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

    #[test]
    fn every_query_constrains_the_partition_and_the_timestamp_in_every_layout() {
        let policies = crate::policy::parse_str(POLICIES, std::path::Path::new("t.toml"), None)
            .expect("valid policies")
            .policies
            .policies;
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
            let table = Table {
                name: "waf_logs".into(),
                layout,
            };
            let options = ScanOptions {
                range,
                policies: policies.clone(),
                ..ScanOptions::default()
            };
            let queries = queries(&table, &options);
            assert_eq!(queries.len(), 4);
            // The values query of a policy with a minimum, the wrapped minutes query of one.
            assert!(queries[1].contains("key_requests >= CASE policy WHEN 2 THEN 20"));
            assert!(queries[3].contains("WHERE NOT coalesce(regexp_like(client"));
            let exact = "timestamp >= 1795133554500 AND timestamp < 1795219200000";
            for q in &queries {
                let q = words(q);
                assert_eq!(q.matches("FROM waf_logs").count(), 1, "one scan: {q}");
                let filter = format!(
                    "WHERE {partition}{}{exact}",
                    if partition.is_empty() { "" } else { " AND " }
                );
                assert!(q.contains(&filter), "{layout:?}: {q}");
            }
        }
    }
}
