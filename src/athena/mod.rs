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
