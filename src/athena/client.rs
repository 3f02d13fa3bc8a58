//! Running one query on Athena: start, poll until done, read every result page.
//!
//! Athena bills by bytes scanned, so the progress line and the final line show them with the cost,
//! and a query that runs too long (or that the user interrupts) is stopped on Athena's side, not
//! merely abandoned: an abandoned query keeps scanning and billing.

use std::time::{Duration, Instant};

use aws_sdk_athena::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_athena::types::{QueryExecutionContext, QueryExecutionState, ResultConfiguration};
use sha2::{Digest, Sha256};

use super::rows::ResultSet;
use crate::sdk_error::{self, EndpointRecorder};

type HttpResponse = aws_sdk_athena::config::http::HttpResponse;

/// Athena's price: USD 5 per TB scanned, with at least 10 MB billed per query.
pub const USD_PER_TB: f64 = 5.0;
pub const MIN_BILLED_BYTES: u64 = 10 * 1_000_000;

/// The estimated cost of scanning `bytes` (TB as 10^12 bytes, which errs on the high side).
pub fn cost_usd(bytes: u64) -> f64 {
    bytes.max(MIN_BILLED_BYTES) as f64 / 1e12 * USD_PER_TB
}

/// Where queries run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryContext {
    pub database: String,
    /// `None`: the account's `primary` workgroup.
    pub workgroup: Option<String>,
    /// `s3://...`; `None` when the workgroup enforces its own.
    pub output_location: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AthenaError {
    #[error("Athena {call} failed: {message}")]
    Api { call: &'static str, message: String },
    #[error("query `{id}` {state}: {reason}")]
    Failed {
        id: String,
        state: String,
        reason: String,
    },
    #[error("query `{id}` still running after {after:?}: stopped it (scanned {scanned})")]
    Timeout {
        id: String,
        after: Duration,
        scanned: String,
    },
    #[error("query `{id}` interrupted: stopped it")]
    Interrupted { id: String },
}

/// A finished query: its rows and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryOutput {
    pub id: String,
    pub result: ResultSet,
    pub bytes_scanned: u64,
}

/// How long to wait between polls: from `first`, doubling up to `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            first: Duration::from_millis(200),
            max: Duration::from_secs(5),
        }
    }
}

/// An Athena client bound to one database and workgroup.
#[derive(Debug, Clone)]
pub struct AthenaApi {
    client: aws_sdk_athena::Client,
    context: QueryContext,
    endpoint: EndpointRecorder,
    pub backoff: Backoff,
    /// Print a progress line on stderr while polling, and a final line.
    pub progress: bool,
}

impl AthenaApi {
    pub fn new(client: aws_sdk_athena::Client, context: QueryContext) -> AthenaApi {
        let endpoint = EndpointRecorder::default();
        let client = aws_sdk_athena::Client::from_conf(
            client
                .config()
                .to_builder()
                .interceptor(endpoint.clone())
                .build(),
        );
        AthenaApi {
            client,
            context,
            endpoint,
            backoff: Backoff::default(),
            progress: true,
        }
    }

    /// An SDK failure of `call` as an [`AthenaError`] a person can act on.
    fn api<E>(&self, call: &'static str) -> impl Fn(SdkError<E, HttpResponse>) -> AthenaError + '_
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        move |e| AthenaError::Api {
            call,
            message: sdk_error::describe(&e, "Athena", &self.endpoint.endpoint()),
        }
    }

    /// Runs `sql` and returns all its rows. Stops the query on Athena if it runs past `timeout` or
    /// on Ctrl-C.
    pub async fn run(&self, sql: &str, timeout: Duration) -> Result<QueryOutput, AthenaError> {
        let id = self.start(sql).await?;
        crate::util::term::verbose!("athena: started query {id}");
        let started = Instant::now();
        let outcome = tokio::select! {
            done = self.wait(&id, started) => done,
            () = tokio::time::sleep(timeout) => {
                let scanned = self.stop(&id).await;
                Err(AthenaError::Timeout { id: id.clone(), after: timeout, scanned: human_bytes(scanned) })
            }
            _ = tokio::signal::ctrl_c() => {
                self.stop(&id).await;
                Err(AthenaError::Interrupted { id: id.clone() })
            }
        };
        let bytes_scanned = outcome?;
        if self.progress {
            eprintln!(
                "\rathena: query {id} SUCCEEDED in {:.1}s, scanned {}, ~USD {:.4}",
                started.elapsed().as_secs_f64(),
                human_bytes(bytes_scanned),
                cost_usd(bytes_scanned)
            );
        }
        let result = self.results(&id).await?;
        Ok(QueryOutput {
            id,
            result,
            bytes_scanned,
        })
    }

    async fn start(&self, sql: &str) -> Result<String, AthenaError> {
        let c = &self.context;
        let mut request = self
            .client
            .start_query_execution()
            .query_string(sql)
            .client_request_token(request_token(sql, c))
            .query_execution_context(
                QueryExecutionContext::builder()
                    .database(&c.database)
                    .build(),
            )
            .set_work_group(c.workgroup.clone());
        if let Some(location) = &c.output_location {
            request = request.result_configuration(
                ResultConfiguration::builder()
                    .output_location(location)
                    .build(),
            );
        }
        let out = request
            .send()
            .await
            .map_err(self.api("StartQueryExecution"))?;
        out.query_execution_id.ok_or_else(|| AthenaError::Api {
            call: "StartQueryExecution",
            message: "no query execution id in the response".into(),
        })
    }

    /// Polls until the query ends; the bytes it scanned on success.
    async fn wait(&self, id: &str, started: Instant) -> Result<u64, AthenaError> {
        let mut delay = self.backoff.first;
        loop {
            let out = self
                .client
                .get_query_execution()
                .query_execution_id(id)
                .send()
                .await
                .map_err(self.api("GetQueryExecution"))?;
            let execution = out.query_execution();
            let status = execution.and_then(|e| e.status());
            let state = status.and_then(|s| s.state()).cloned();
            let scanned = scanned_bytes(execution);
            if self.progress {
                eprint!(
                    "\rathena: {} {:.1}s, scanned {}, ~USD {:.4}   ",
                    state.as_ref().map_or("UNKNOWN", |s| s.as_str()),
                    started.elapsed().as_secs_f64(),
                    human_bytes(scanned),
                    cost_usd(scanned)
                );
            }
            match state {
                Some(QueryExecutionState::Succeeded) => return Ok(scanned),
                Some(s @ (QueryExecutionState::Failed | QueryExecutionState::Cancelled)) => {
                    if self.progress {
                        eprintln!();
                    }
                    return Err(AthenaError::Failed {
                        id: id.to_owned(),
                        state: s.as_str().to_owned(),
                        reason: status
                            .and_then(|s| s.state_change_reason())
                            .unwrap_or("Athena gave no reason")
                            .to_owned(),
                    });
                }
                _ => {}
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.backoff.max);
        }
    }

    /// Stops the query (best effort: the caller is already failing) and reports what it scanned.
    async fn stop(&self, id: &str) -> u64 {
        let _ = self
            .client
            .stop_query_execution()
            .query_execution_id(id)
            .send()
            .await;
        if self.progress {
            eprintln!();
        }
        match self
            .client
            .get_query_execution()
            .query_execution_id(id)
            .send()
            .await
        {
            Ok(out) => scanned_bytes(out.query_execution()),
            Err(_) => 0,
        }
    }

    /// Every row of every page; the first row of the first page is the header, as Athena sends it.
    async fn results(&self, id: &str) -> Result<ResultSet, AthenaError> {
        let mut set = ResultSet::default();
        let mut token: Option<String> = None;
        let mut first_page = true;
        loop {
            let out = self
                .client
                .get_query_results()
                .query_execution_id(id)
                .max_results(1000)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(self.api("GetQueryResults"))?;
            if let Some(rs) = out.result_set() {
                if first_page {
                    set.columns = rs
                        .result_set_metadata()
                        .map(|m| {
                            m.column_info()
                                .iter()
                                .map(|c| c.name().to_owned())
                                .collect()
                        })
                        .unwrap_or_default();
                }
                let skip = usize::from(first_page && !rs.rows().is_empty());
                set.rows.extend(rs.rows().iter().skip(skip).map(|r| {
                    r.data()
                        .iter()
                        .map(|d| d.var_char_value().map(str::to_owned))
                        .collect()
                }));
            }
            first_page = false;
            match out.next_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(set),
            }
        }
    }
}

fn scanned_bytes(execution: Option<&aws_sdk_athena::types::QueryExecution>) -> u64 {
    execution
        .and_then(|e| e.statistics())
        .and_then(|s| s.data_scanned_in_bytes())
        .map_or(0, |b| b.max(0) as u64)
}

/// One token per run of a query: the SDK's retries of the same call reuse it, so a retried start
/// never runs (and bills) the query twice, while a later run with the same SQL is a new query.
fn request_token(sql: &str, context: &QueryContext) -> String {
    let mut h = Sha256::new();
    h.update(sql.as_bytes());
    h.update(context.database.as_bytes());
    h.update(context.workgroup.as_deref().unwrap_or("").as_bytes());
    h.update(rand::random::<u128>().to_le_bytes());
    format!("{:x}", h.finalize())
}

/// `1.5 GB`: decimal units, as Athena's console shows them.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_bills_at_least_ten_megabytes() {
        assert_eq!(cost_usd(0), cost_usd(MIN_BILLED_BYTES));
        assert!((cost_usd(1_000_000_000_000) - 5.0).abs() < 1e-9);
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_500_000_000), "1.5 GB");
    }

    #[test]
    fn request_tokens_are_valid_and_unique_per_run() {
        let c = QueryContext::default();
        let (a, b) = (request_token("SELECT 1", &c), request_token("SELECT 1", &c));
        // Athena wants 32 to 128 characters.
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
