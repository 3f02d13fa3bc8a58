//! The Athena engine: the same aggregates as the local scan, computed by Trino SQL over the S3 logs.
//!
//! [`sql`] writes the queries and the table definition, [`client`] runs them, and [`rows`] turns
//! their results into the local engine's types, so everything downstream is engine-agnostic.

pub mod client;
pub mod rows;
pub mod sql;

use std::time::Duration;

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
}

/// The queries one scan runs: every request per client and minute, then one per policy.
pub fn queries(table: &Table, options: &ScanOptions) -> Vec<String> {
    let mut queries = vec![sql::client_minutes(table, &options.range)];
    queries.extend(
        options
            .policies
            .iter()
            .map(|p| sql::matched_minutes(table, &options.range, p.matcher.expr())),
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
    let mut results = Vec::new();
    let mut scanned = 0;
    for sql in queries(table, options) {
        let out = api.run(&sql, timeout).await?;
        scanned += out.bytes_scanned;
        let rows = out
            .result
            .minute_rows()
            .map_err(|source| EngineError::Convert {
                id: out.id.clone(),
                source,
            })?;
        results.push((out.id, rows));
    }
    let (_, client_rows) = results.remove(0);
    let policy_rows: Vec<_> = options
        .policies
        .iter()
        .map(|p| p.key)
        .zip(results.into_iter().map(|(_, rows)| rows))
        .collect();
    let mut traffic = rows::traffic(&client_rows, &policy_rows)?;
    traffic.home_country = options.home_country.clone();
    Ok((traffic, scanned))
}
