//! The Athena client's mechanics against moto (waf-facts section 5): result sets queued through
//! moto's API, QUEUED/RUNNING through its state manager, stopping on timeout.

// This binary uses the moto server, not the WAFv2 client helper.
#[allow(dead_code)]
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use aws_sdk_athena::config::retry::RetryConfig;
use aws_sdk_athena::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_athena::types::QueryExecutionState;
use common::moto::Moto;
use serde_json::{Value, json};
use waftune::athena::client::{AthenaApi, AthenaError, Backoff, QueryContext};

const REGION: &str = "us-east-1";

fn sdk(moto: &Moto) -> aws_sdk_athena::Client {
    let config = aws_sdk_athena::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .endpoint_url(&moto.endpoint)
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_athena::Client::from_conf(config)
}

fn api(moto: &Moto) -> AthenaApi {
    let mut api = AthenaApi::new(
        sdk(moto),
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

/// A POST with a JSON body to moto's control API (no HTTP client crate needed for two calls).
fn post_json(moto: &Moto, path: &str, body: &Value) {
    let addr = moto.endpoint.trim_start_matches("http://");
    let body = body.to_string();
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 20"), "{path}: {response}");
}

fn row(values: &[&str]) -> Value {
    json!({ "Data": values.iter().map(|v| json!({ "VarCharValue": v })).collect::<Vec<_>>() })
}

/// Queues one result set (header row first, as Athena sends it) for the next new query.
fn queue_result(moto: &Moto, rows: &[&[&str]]) {
    let columns: Vec<Value> = rows[0]
        .iter()
        .map(|c| json!({ "Name": c, "Type": "varchar", "Nullable": "UNKNOWN" }))
        .collect();
    post_json(
        moto,
        "/moto-api/static/athena/query-results",
        &json!({
            "region": REGION,
            "results": [{ "rows": rows.iter().map(|r| row(r)).collect::<Vec<_>>(), "column_info": columns }],
        }),
    );
}

const HEADER: &[&str] = &[
    "client",
    "minute",
    "requests",
    "allow",
    "block",
    "captcha",
    "challenge",
    "first_ms",
    "last_ms",
];

#[tokio::test]
async fn queued_result_skips_the_header_and_converts() {
    let moto = Moto::start().await;
    queue_result(
        &moto,
        &[
            HEADER,
            &[
                "192.0.2.1",
                "10",
                "3",
                "1",
                "2",
                "0",
                "0",
                "600000",
                "659000",
            ],
            &[
                "192.0.2.1",
                "11",
                "1",
                "1",
                "0",
                "0",
                "0",
                "660000",
                "660000",
            ],
        ],
    );
    let out = api(&moto)
        .run("SELECT 1", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(out.result.columns, HEADER);
    let rows = out.result.minute_rows().unwrap();
    assert_eq!(rows.len(), 2);
    let (clients, _, _) =
        waftune::athena::rows::clients(&rows, &[], &mut waftune::scan::stats::Interner::default())
            .unwrap();
    assert_eq!(clients[0].requests, 4);
    assert_eq!(clients[0].peak(2).requests, 4);
    assert_eq!(clients[0].actions.block, 2);
}

#[tokio::test]
async fn bad_values_name_row_and_column() {
    let moto = Moto::start().await;
    queue_result(
        &moto,
        &[
            HEADER,
            &[
                "192.0.2.1",
                "10",
                "many",
                "1",
                "2",
                "0",
                "0",
                "600000",
                "659000",
            ],
        ],
    );
    let out = api(&moto)
        .run("SELECT 1", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        out.result.minute_rows().unwrap_err().to_string(),
        "row 1, column `requests`: `many` is not an integer"
    );
}

#[tokio::test]
async fn polls_through_queued_and_running() {
    let moto = Moto::start().await;
    post_json(
        &moto,
        "/moto-api/state-manager/set-transition",
        &json!({ "model_name": "athena::execution", "transition": { "progression": "manual", "times": 3 } }),
    );
    // The emulator really holds a new query back now: its first state is not SUCCEEDED.
    let sdk = sdk(&moto);
    let probe = sdk
        .start_query_execution()
        .query_string("SELECT 0")
        .send()
        .await
        .unwrap()
        .query_execution_id
        .unwrap();
    let first = sdk
        .get_query_execution()
        .query_execution_id(&probe)
        .send()
        .await
        .unwrap()
        .query_execution
        .and_then(|e| e.status)
        .and_then(|s| s.state);
    assert!(
        matches!(
            first,
            Some(QueryExecutionState::Queued | QueryExecutionState::Running)
        ),
        "{first:?}"
    );
    queue_result(&moto, &[&["n"], &["7"]]);
    let out = api(&moto)
        .run("SELECT 7 AS n", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(out.result.rows, vec![vec![Some("7".to_owned())]]);
}

#[tokio::test]
async fn timeout_stops_the_query_on_athena() {
    let moto = Moto::start().await;
    post_json(
        &moto,
        "/moto-api/state-manager/set-transition",
        &json!({ "model_name": "athena::execution", "transition": { "progression": "manual", "times": 1000 } }),
    );
    let err = api(&moto)
        .run("SELECT 1", Duration::from_millis(300))
        .await
        .unwrap_err();
    let AthenaError::Timeout { id, .. } = &err else {
        panic!("{err}");
    };
    let state = sdk(&moto)
        .get_query_execution()
        .query_execution_id(id)
        .send()
        .await
        .unwrap()
        .query_execution
        .and_then(|e| e.status)
        .and_then(|s| s.state);
    assert_eq!(state, Some(QueryExecutionState::Cancelled));
    assert!(
        err.to_string()
            .contains("still running after 300ms: stopped it")
    );
}

#[tokio::test]
async fn engine_runs_one_query_per_policy_and_builds_traffic() {
    let moto = Moto::start().await;
    let policies = waftune::policy::parse_str(
        r#"
[[policy]]
name = "posts"
description = "POST requests"
key = "prefix"
[policy.match]
method = "POST"
[policy.thresholds]
requests = 1
[policy.action]
type = "report"
"#,
        std::path::Path::new("p.toml"),
        None,
    )
    .unwrap()
    .policies
    .policies;
    // Results are handed out in query order: every request per minute, their values, then the
    // policy's.
    queue_result(
        &moto,
        &[
            HEADER,
            &[
                "192.0.2.1",
                "10",
                "3",
                "3",
                "0",
                "0",
                "0",
                "600000",
                "659000",
            ],
            &[
                "192.0.2.2",
                "10",
                "1",
                "0",
                "1",
                "0",
                "0",
                "600001",
                "600001",
            ],
        ],
    );
    queue_result(
        &moto,
        &[
            &["policy", "client", "kind", "value", "requests"],
            &[
                "0",
                "192.0.2.1",
                "L",
                "awswaf:managed:aws:bot-control:bot:verified",
                "3",
            ],
            &["0", "192.0.2.1", "A", "Googlebot", "3"],
            &["0", "192.0.2.2", "C", "JP", "1"],
            &["1", "192.0.2.1", "U", "/login", "2"],
        ],
    );
    queue_result(
        &moto,
        &[
            HEADER,
            &[
                "192.0.2.1",
                "10",
                "2",
                "2",
                "0",
                "0",
                "0",
                "600000",
                "601000",
            ],
        ],
    );
    let table = waftune::athena::sql::Table {
        name: "waf_logs".into(),
        layout: waftune::athena::sql::Layout::Projection,
    };
    let options = waftune::scan::ScanOptions {
        policies,
        ..Default::default()
    };
    let (traffic, _) =
        waftune::athena::scan(&api(&moto), &table, &options, Duration::from_secs(10))
            .await
            .unwrap();
    assert_eq!(traffic.records, 4);
    assert_eq!(traffic.actions.block, 1);
    assert_eq!(traffic.per_minute[&10].total(), 4);
    assert_eq!(traffic.prefixes[0].requests, 4);
    assert_eq!(traffic.policy_keys[0][0].key.to_string(), "192.0.2.0/24");
    assert_eq!(traffic.policy_keys[0][0].requests, 2);
    assert_eq!(traffic.clients[0].user_agents[0].value, "Googlebot");
    assert_eq!(traffic.labels[0].count, 3);
    assert_eq!(traffic.countries[0].value, "JP");
    assert_eq!(traffic.policy_keys[0][0].distinct_uris, 1);
}
