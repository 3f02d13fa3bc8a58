//! Athena test helpers: an SDK client and a quiet [`AthenaApi`] for an endpoint (moto, or the
//! [`FakeAthena`] for what moto cannot do), result sets queued into moto, and result rows.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_athena::config::retry::RetryConfig;
use aws_sdk_athena::config::{BehaviorVersion, Credentials, Region};
use serde_json::{Value, json};
use waftune::athena::client::{AthenaApi, Backoff, QueryContext};
use waftune::athena::rows::SCAN_COLUMNS;

use super::moto::Moto;

pub const REGION: &str = "us-east-1";

/// What `cmd` prints (`--print-sql`, `--dry-run`) with AWS unreachable: printing must run no query.
pub fn printed_offline(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("NO_COLOR", "1")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out).unwrap()
}

/// An SDK client for `endpoint`, retries off (a failure shows at once).
pub fn sdk(endpoint: &str) -> aws_sdk_athena::Client {
    let config = aws_sdk_athena::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(endpoint)
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_athena::Client::from_conf(config)
}

/// The production client on `endpoint`, polling fast and printing nothing.
pub fn api(endpoint: &str) -> AthenaApi {
    let mut api = AthenaApi::new(
        sdk(endpoint),
        QueryContext {
            database: "waf".into(),
            workgroup: None,
            output_location: Some("s3://athena-results/waftune/".into()),
        },
    );
    api.backoff = Backoff {
        first: Duration::from_millis(10),
        max: Duration::from_millis(40),
    };
    api.progress = false;
    api
}

/// A result as text values, NULL as `None`; the first row is the header.
pub type Rows = Vec<Vec<Option<String>>>;

/// One GetQueryResults row (a NULL has no `VarCharValue`, as Athena sends it).
pub fn row(values: &[Option<String>]) -> Value {
    let data: Vec<Value> = values
        .iter()
        .map(|v| match v {
            Some(v) => json!({ "VarCharValue": v }),
            None => json!({}),
        })
        .collect();
    json!({ "Data": data })
}

/// GetQueryResults column metadata for a header row.
pub fn column_info(header: &[Option<String>]) -> Vec<Value> {
    header
        .iter()
        .map(|c| json!({ "Name": c, "Type": "varchar", "Nullable": "UNKNOWN" }))
        .collect()
}

/// Text values, none NULL.
pub fn text<S: AsRef<str>>(values: &[S]) -> Vec<Option<String>> {
    values.iter().map(|v| Some(v.as_ref().to_owned())).collect()
}

/// Queues one result set (header row first, as Athena sends it) for moto's next new query.
pub fn queue_result(moto: &Moto, rows: &Rows) {
    moto.control(
        "/moto-api/static/athena/query-results",
        &json!({
            "region": REGION,
            "results": [{ "rows": rows.iter().map(|r| row(r)).collect::<Vec<_>>(), "column_info": column_info(&rows[0]) }],
        }),
    );
}

/// Holds moto's new queries in QUEUED/RUNNING for `times` polls, until the guard is dropped
/// (moto's reset keeps such settings).
#[must_use]
pub fn hold_queries(moto: &Moto, times: u32) -> impl Drop + '_ {
    moto.control(
        "/moto-api/state-manager/set-transition",
        &json!({ "model_name": "athena::execution", "transition": { "progression": "manual", "times": times } }),
    );
    Held(moto)
}

struct Held<'m>(&'m Moto);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.control(
            "/moto-api/state-manager/unset-transition",
            &json!({ "model_name": "athena::execution" }),
        );
    }
}

/// Minute rows of one statement's result for `policy` (0: all requests): per row `(client,
/// minute, allow, block)` with requests = allow + block, inside the minute.
pub fn minute_rows(policy: i64, rows: &[(&str, i64, u64, u64)]) -> Rows {
    rows.iter()
        .map(|&(client, minute, allow, block)| {
            let first = minute * 60_000;
            let mut row = text(&[
                policy.to_string(),
                "client".into(),
                client.to_owned(),
                "M".into(),
                String::new(),
                minute.to_string(),
                (allow + block).to_string(),
                allow.to_string(),
                block.to_string(),
                "0".into(),
                "0".into(),
                first.to_string(),
                (first + 59_000).to_string(),
            ]);
            row.push(None);
            row
        })
        .collect()
}

/// Minute rows of all requests (see [`minute_rows`]) with their detail columns: per row
/// `(counted, domestic, no_country)`.
pub fn with_detail(rows: Rows, detail: &[(u64, u64, u64)]) -> Rows {
    rows.into_iter()
        .zip(detail)
        .map(|(mut row, &(counted, domestic, no_country))| {
            row.extend(text(
                &[counted, domestic, no_country].map(|n| n.to_string()),
            ));
            row
        })
        .collect()
}

/// Value rows of one statement's result: per row `(policy, client, kind, value, requests)`, all of
/// scope `client` and uncut.
pub fn value_rows(rows: &[(i64, &str, &str, &str, u64)]) -> Rows {
    rows.iter()
        .map(|&(policy, client, kind, value, requests)| {
            let mut row = text(&[&policy.to_string(), "client", client, kind, value]);
            row.push(None);
            row.push(Some(requests.to_string()));
            row.extend([None, None, None, None, None, None, None]);
            row
        })
        .collect()
}

/// One statement's result: the header, then `parts`' rows in order.
pub fn scan_result(parts: &[Rows]) -> Rows {
    let mut out = vec![text(&SCAN_COLUMNS)];
    out.extend(parts.iter().flatten().cloned());
    out
}

/// A result of minute rows of all requests (see [`minute_rows`]).
pub fn minute_result(rows: &[(&str, i64, u64, u64)]) -> Rows {
    scan_result(&[minute_rows(0, rows)])
}

/// A stand-in Athena endpoint for what moto cannot produce (a FAILED query with a reason, results
/// in several pages): answers each call (by its `X-Amz-Target` operation, e.g. `GetQueryExecution`,
/// and JSON body) with what `answer` returns, and records the calls.
pub struct FakeAthena {
    pub endpoint: String,
    pub calls: Arc<Mutex<Vec<(String, Value)>>>,
}

impl FakeAthena {
    pub fn start(answer: impl Fn(&str, &Value) -> Value + Send + Sync + 'static) -> FakeAthena {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let calls = Arc::new(Mutex::new(Vec::new()));
        let recorded = calls.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let (mut length, mut target) = (0, String::new());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    let (name, value) = line.split_once(':').unwrap_or((&line, ""));
                    match name.to_ascii_lowercase().as_str() {
                        "content-length" => length = value.trim().parse().unwrap_or(0),
                        "x-amz-target" => {
                            target = value.trim().rsplit('.').next().unwrap_or("").to_owned()
                        }
                        _ => {}
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let reply = answer(&target, &body).to_string();
                recorded.lock().unwrap().push((target, body));
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                );
            }
        });
        FakeAthena { endpoint, calls }
    }

    /// The operations called, in order.
    pub fn operations(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|(op, _)| op.clone())
            .collect()
    }
}
