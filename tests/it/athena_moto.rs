//! The Athena client's mechanics against moto (waf-facts section 5): result sets queued through
//! moto's API, QUEUED/RUNNING through its state manager, stopping on timeout, a query cancelled
//! by someone else. moto never fails a query and ignores paging, so a FAILED query with Athena's
//! reason and results in several pages are checked against [`FakeAthena`], a stand-in endpoint
//! in the test code.

use crate::common;

use std::time::Duration;

use aws_sdk_athena::types::QueryExecutionState;
use common::athena::{
    FakeAthena, api, column_info, hold_queries, minute_result, minute_rows, queue_result, row,
    scan_result, sdk, text, value_rows,
};
use common::moto::Moto;
use serde_json::{Value, json};
use waftune::athena::client::AthenaError;
use waftune::athena::rows::SCAN_COLUMNS;

async fn state(moto: &Moto, id: &str) -> Option<QueryExecutionState> {
    sdk(&moto.endpoint)
        .get_query_execution()
        .query_execution_id(id)
        .send()
        .await
        .unwrap()
        .query_execution
        .and_then(|e| e.status)
        .and_then(|s| s.state)
}

#[tokio::test]
async fn queued_result_skips_the_header_and_converts() {
    let moto = Moto::start().await;
    queue_result(
        &moto,
        &minute_result(&[("192.0.2.1", 10, 1, 2), ("192.0.2.1", 11, 1, 0)]),
    );
    let out = api(&moto.endpoint)
        .run("SELECT 1", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(out.result.columns, SCAN_COLUMNS);
    let rows = out.result.scan_rows(0).unwrap().clients;
    assert_eq!(rows.len(), 2);
    let (clients, _, _) =
        waftune::athena::rows::clients(&rows, &[], &mut waftune::scan::stats::Interner::default())
            .unwrap();
    assert_eq!(clients[0].requests, 4);
    assert_eq!({ clients[0].peak(2).requests }, 4);
    assert_eq!(clients[0].actions.block, 2);
}

#[tokio::test]
async fn bad_values_name_row_and_column() {
    let moto = Moto::start().await;
    let mut result = minute_result(&[("192.0.2.1", 10, 1, 2)]);
    result[1][6] = Some("many".into());
    queue_result(&moto, &result);
    let out = api(&moto.endpoint)
        .run("SELECT 1", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        out.result.scan_rows(0).unwrap_err().to_string(),
        "row 1, column `requests`: `many` is not an integer"
    );
}

#[tokio::test]
async fn polls_through_queued_and_running() {
    let moto = Moto::start().await;
    let _held = hold_queries(&moto, 3);
    // The emulator really holds a new query back now: its first state is not SUCCEEDED.
    let probe = sdk(&moto.endpoint)
        .start_query_execution()
        .query_string("SELECT 0")
        .send()
        .await
        .unwrap()
        .query_execution_id
        .unwrap();
    let first = state(&moto, &probe).await;
    assert!(
        matches!(
            first,
            Some(QueryExecutionState::Queued | QueryExecutionState::Running)
        ),
        "{first:?}"
    );
    queue_result(&moto, &vec![text(&["n"]), text(&["7"])]);
    let out = api(&moto.endpoint)
        .run("SELECT 7 AS n", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(out.result.rows, vec![vec![Some("7".to_owned())]]);
}

#[tokio::test]
async fn timeout_stops_the_query_on_athena() {
    let moto = Moto::start().await;
    let _held = hold_queries(&moto, 1000);
    let err = api(&moto.endpoint)
        .run("SELECT 1", Duration::from_millis(300))
        .await
        .unwrap_err();
    let AthenaError::Timeout { id, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(state(&moto, id).await, Some(QueryExecutionState::Cancelled));
    assert!(
        err.to_string()
            .contains("still running after 300ms: stopped it")
    );
}

/// Someone stops the query (in the console, or another run) while waftune waits for it.
#[tokio::test]
async fn a_query_cancelled_elsewhere_is_reported_as_cancelled() {
    let moto = Moto::start().await;
    let _held = hold_queries(&moto, 1000);
    let other = sdk(&moto.endpoint);
    let canceller = tokio::spawn(async move {
        loop {
            let ids = other
                .list_query_executions()
                .send()
                .await
                .unwrap()
                .query_execution_ids
                .unwrap_or_default();
            if let Some(id) = ids.first() {
                other
                    .stop_query_execution()
                    .query_execution_id(id)
                    .send()
                    .await
                    .unwrap();
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let err = api(&moto.endpoint)
        .run("SELECT 1", Duration::from_secs(30))
        .await
        .unwrap_err();
    canceller.await.unwrap();
    let AthenaError::Failed { state, reason, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(state, "CANCELLED");
    // moto gives no StateChangeReason; the message says so rather than printing nothing.
    assert_eq!(reason, "Athena gave no reason");
    assert!(err.to_string().contains(" CANCELLED: "), "{err}");
}

/// GetQueryExecution as Athena answers it for a query in `state`.
fn execution(id: &str, state: &str, reason: Option<&str>) -> Value {
    let mut status = json!({ "State": state });
    if let Some(reason) = reason {
        status["StateChangeReason"] = json!(reason);
    }
    json!({ "QueryExecution": {
        "QueryExecutionId": id,
        "Status": status,
        "Statistics": { "DataScannedInBytes": 123_456 },
    } })
}

#[tokio::test]
async fn a_failed_query_reports_athenas_reason() {
    let reason = "SYNTAX_ERROR: line 1:8: Column 'clientip' cannot be resolved";
    let fake = FakeAthena::start(move |op, _| match op {
        "StartQueryExecution" => json!({ "QueryExecutionId": "q-1" }),
        "GetQueryExecution" => execution("q-1", "FAILED", Some(reason)),
        other => panic!("unexpected {other}"),
    });
    let err = api(&fake.endpoint)
        .run("SELECT clientip", Duration::from_secs(10))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), format!("query `q-1` FAILED: {reason}"));
    // Failed: nothing to read, nothing to stop.
    assert_eq!(
        fake.operations(),
        ["StartQueryExecution", "GetQueryExecution"]
    );
}

#[tokio::test]
async fn results_are_read_page_by_page_with_the_header_only_on_the_first() {
    let header = text(&SCAN_COLUMNS);
    let rows = minute_result(&[
        ("192.0.2.1", 10, 1, 0),
        ("192.0.2.2", 10, 2, 0),
        ("192.0.2.3", 11, 0, 3),
    ]);
    let page = |rows: &[Vec<Option<String>>], token: Option<&str>| {
        let mut page = json!({ "ResultSet": {
            "Rows": rows.iter().map(|r| row(r)).collect::<Vec<_>>(),
            "ResultSetMetadata": { "ColumnInfo": column_info(&header) },
        } });
        if let Some(token) = token {
            page["NextToken"] = json!(token);
        }
        page
    };
    // Page 1: the header and one row; page 2: one row; page 3: the last row.
    let pages = [
        page(&rows[..2], Some("p2")),
        page(&rows[2..3], Some("p3")),
        page(&rows[3..], None),
    ];
    let fake = FakeAthena::start(move |op, body| match op {
        "StartQueryExecution" => json!({ "QueryExecutionId": "q-2" }),
        "GetQueryExecution" => execution("q-2", "SUCCEEDED", None),
        "GetQueryResults" => match body["NextToken"].as_str() {
            None => pages[0].clone(),
            Some("p2") => pages[1].clone(),
            Some("p3") => pages[2].clone(),
            Some(other) => panic!("unknown token {other}"),
        },
        other => panic!("unexpected {other}"),
    });
    let out = api(&fake.endpoint)
        .run("SELECT 1", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(out.bytes_scanned, 123_456);
    let got = out.result.scan_rows(0).unwrap().clients;
    assert_eq!(
        got.iter().map(|r| r.client.as_str()).collect::<Vec<_>>(),
        ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
    );
    let calls = fake.calls.lock().unwrap();
    let tokens: Vec<Option<&str>> = calls
        .iter()
        .filter(|(op, _)| op == "GetQueryResults")
        .map(|(_, body)| body["NextToken"].as_str())
        .collect();
    assert_eq!(tokens, [None, Some("p2"), Some("p3")]);
}

#[tokio::test]
async fn engine_runs_one_statement_and_builds_traffic() {
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
    // One statement: every request per minute, the values, the policy's requests per minute.
    queue_result(
        &moto,
        &scan_result(&[
            minute_rows(0, &[("192.0.2.1", 10, 3, 0), ("192.0.2.2", 10, 0, 1)]),
            value_rows(&[
                (
                    0,
                    "192.0.2.1",
                    "L",
                    "awswaf:managed:aws:bot-control:bot:verified",
                    3,
                ),
                (0, "192.0.2.1", "A", "Googlebot", 3),
                (0, "192.0.2.2", "C", "JP", 1),
                (1, "192.0.2.1", "U", "/login", 2),
            ]),
            minute_rows(1, &[("192.0.2.1", 10, 2, 0)]),
        ]),
    );
    let table = waftune::athena::sql::Table {
        name: "waf_logs".into(),
        layout: waftune::model::athena::Layout::Projection,
    };
    let options = waftune::scan::ScanOptions {
        policies,
        ..Default::default()
    };
    let source = waftune::athena::Source {
        table,
        rollup: None,
    };
    let (traffic, _, scanned) = waftune::athena::scan(
        &api(&moto.endpoint),
        &source,
        &options,
        None,
        0,
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(scanned.statements, 1);
    assert_eq!(traffic.records, 4);
    assert_eq!(traffic.actions.block, 1);
    assert_eq!(traffic.per_minute[&10].total(), 4);
    assert_eq!(traffic.prefixes[0].requests, 4);
    assert_eq!(traffic.policy_keys[0][0].key.to_string(), "192.0.2.0/24");
    assert_eq!(traffic.policy_keys[0][0].requests, 2);
    assert_eq!(&*traffic.clients[0].user_agents[0].value, "Googlebot");
    assert_eq!(traffic.labels[0].count, 3);
    assert_eq!(&*traffic.countries[0].value, "JP");
    assert_eq!(traffic.policy_keys[0][0].distinct_uris, 1);
}

/// An endpoint answering 404 with an HTML page (a wrong `AWS_ENDPOINT_URL`, or a moto whose
/// botocore no longer knows the call) is named with the call, the status and a hint, not dumped.
#[tokio::test]
async fn an_endpoint_that_is_not_athena_is_said_plainly() {
    let endpoint = common::not_aws::start();
    let err = api(&endpoint)
        .run("SELECT 1", Duration::from_secs(10))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "Athena StartQueryExecution failed: the Athena endpoint `{endpoint}` answered HTTP 404 (text/html; charset=utf-8), not an AWS API answer: `<!DOCTYPE html> <html><head><title>404 Not Found"
        )),
        "{text}"
    );
    assert!(text.contains("is AWS_ENDPOINT_URL right?"), "{text}");
    assert!(
        !text.contains("ServiceError") && !text.contains("{"),
        "{text}"
    );
}

/// The statements moto ran, oldest first.
async fn executed(moto: &Moto) -> Vec<String> {
    let client = sdk(&moto.endpoint);
    let ids = client
        .list_query_executions()
        .send()
        .await
        .unwrap()
        .query_execution_ids
        .unwrap_or_default();
    let mut out = Vec::new();
    for id in ids {
        let e = client
            .get_query_execution()
            .query_execution_id(id)
            .send()
            .await
            .unwrap();
        out.push(e.query_execution.and_then(|e| e.query).unwrap_or_default());
    }
    out
}

/// A policy of one matcher: POSTs, per address.
fn posts() -> Vec<waftune::policy::Policy> {
    waftune::policy::parse_str(
        "[[policy]]\nname = \"posts\"\ndescription = \"d\"\nkey = \"ip\"\n[policy.match]\n\
         method = \"POST\"\n[policy.thresholds]\nrequests = 1\n[policy.action]\ntype = \"report\"\n",
        std::path::Path::new("p.toml"),
        None,
    )
    .unwrap()
    .policies
    .policies
}

/// Marker rows of a result: every hour of `hours` held for the policy numbers `policies`.
fn marker_rows(
    hours: std::ops::Range<i64>,
    policies: std::ops::RangeInclusive<i64>,
) -> common::athena::Rows {
    hours
        .flat_map(|h| {
            policies.clone().map(move |p| {
                let mut row = text(&[&p.to_string(), "client", "", "#", "", &h.to_string()]);
                row[2] = None;
                row.extend(text(&["0"; 5]));
                row.extend([None, None, None]);
                row
            })
        })
        .collect()
}

#[tokio::test]
async fn rollup_is_created_filled_read_and_refilled_on_moto() {
    use waftune::athena::rollup::{self, HOUR_MS};
    use waftune::athena::{Source, sql::Table};
    let moto = Moto::start().await;
    let api = api(&moto.endpoint);
    let timeout = Duration::from_secs(10);
    let policies = posts();
    let table = Table {
        name: "waf_logs".into(),
        layout: waftune::model::athena::Layout::Projection,
    };
    // 2026-11-20T00:00Z.
    let h0 = 1_795_132_800_000 / HOUR_MS;

    // Create, then fill 30 hours of which the rollup holds the first 10 for both fingerprints
    // (all requests, `posts`) and the 11th for one only.
    api.run(&rollup::ddl("waf_rollup", "s3://rollup/waf/"), timeout)
        .await
        .unwrap();
    let mut coverage = vec![text(&["hour", "policies"])];
    coverage.extend((h0..h0 + 10).map(|h| text(&[h.to_string(), "2".into()])));
    coverage.push(text(&[(h0 + 10).to_string(), "1".into()]));
    queue_result(&moto, &coverage);
    let done = waftune::athena::fill(
        &api,
        &table,
        "waf_rollup",
        h0..h0 + 30,
        &policies,
        false,
        timeout,
    )
    .await
    .unwrap();
    assert_eq!((done.held, done.statements), (10, 4));
    assert_eq!(done.filled, vec![h0 + 10..h0 + 30]);
    let ran = executed(&moto).await;
    assert_eq!(ran.len(), 5, "{ran:#?}");
    assert!(ran[0].starts_with("CREATE TABLE IF NOT EXISTS waf_rollup ("));
    assert!(ran[0].contains("'table_type' = 'ICEBERG'"));
    assert!(ran[1].contains(&format!("hour >= {h0} AND hour < {}", h0 + 30)));
    // Delete, insert, mark: a refill replaces rather than adds.
    assert!(ran[2].starts_with(&format!(
        "DELETE FROM waf_rollup\nWHERE hour >= {} AND hour < {}",
        h0 + 10,
        h0 + 30
    )));
    assert!(ran[3].starts_with("INSERT INTO waf_rollup\nSELECT"));
    assert_eq!(ran[3].matches("FROM waf_logs").count(), 1);
    assert!(ran[3].contains(&format!("timestamp >= {}", (h0 + 10) * HOUR_MS)));
    // One marker per hour, listing both fingerprints.
    assert_eq!(ran[4].matches("'#'").count(), 20);

    // `--refill` of two hours: no coverage query, the same three statements.
    let done = waftune::athena::fill(
        &api,
        &table,
        "waf_rollup",
        h0..h0 + 2,
        &policies,
        true,
        timeout,
    )
    .await
    .unwrap();
    assert_eq!((done.held, done.statements), (0, 3));

    // A run over the 30 hours and half an hour more, 45 minutes after: one statement, the closed
    // hours from the rollup, the open tail from the logs.
    let source = Source {
        table: table.clone(),
        rollup: Some("waf_rollup".into()),
    };
    let options = waftune::scan::ScanOptions {
        range: waftune::log::TimeRange {
            since: Some(h0 * HOUR_MS),
            until: Some((h0 + 30) * HOUR_MS + 1_800_000),
        },
        policies: policies.clone(),
        ..Default::default()
    };
    let now = (h0 + 31) * HOUR_MS - 900_000;
    let minute = h0 * 60 + 5;
    let data = || {
        vec![
            minute_rows(0, &[("192.0.2.1", minute, 3, 0)]),
            value_rows(&[
                (0, "192.0.2.1", "C", "JP", 3),
                (1, "192.0.2.1", "U", "/login", 2),
            ]),
            minute_rows(1, &[("192.0.2.1", minute, 2, 0)]),
        ]
    };
    let mut all = data();
    all.push(marker_rows(h0..h0 + 30, 0..=1));
    queue_result(&moto, &scan_result(&all));
    let (traffic, _, scanned) = waftune::athena::scan(&api, &source, &options, None, now, timeout)
        .await
        .unwrap();
    assert_eq!((scanned.statements, traffic.records), (1, 3));
    assert_eq!(traffic.policy_keys[0][0].requests, 2);
    let ran = executed(&moto).await;
    let statement = ran.last().unwrap();
    assert_eq!(statement.matches("FROM waf_rollup").count(), 1);
    assert_eq!(statement.matches("FROM waf_logs").count(), 1);
    assert!(statement.contains(&format!("(hour >= {h0} AND hour < {})", h0 + 30)));
    assert!(statement.contains(&format!("timestamp >= {}", (h0 + 30) * HOUR_MS)));

    // The rollup lacks hour 5 (its markers do not come back): the statement runs again with that
    // hour from the logs, and the run's result comes from the second statement.
    let mut lacking = data();
    lacking.push(marker_rows(h0..h0 + 5, 0..=1));
    lacking.push(marker_rows(h0 + 6..h0 + 30, 0..=1));
    queue_result(&moto, &scan_result(&lacking));
    queue_result(&moto, &scan_result(&lacking));
    let (traffic, _, scanned) = waftune::athena::scan(&api, &source, &options, None, now, timeout)
        .await
        .unwrap();
    assert_eq!((scanned.statements, traffic.records), (2, 3));
    assert_eq!(scanned.missing_hours, [h0 + 5]);
    let ran = executed(&moto).await;
    let statement = ran.last().unwrap();
    assert!(statement.contains(&format!(
        "(hour >= {h0} AND hour < {}) OR (hour >= {} AND hour < {})",
        h0 + 5,
        h0 + 6,
        h0 + 30
    )));
    assert!(statement.contains(&format!("timestamp >= {}", (h0 + 5) * HOUR_MS)));
    // Hours lost between the two statements fail the run rather than read as empty.
    let mut lost = data();
    lost.push(marker_rows(h0..h0 + 5, 0..=1));
    queue_result(&moto, &scan_result(&lacking));
    queue_result(&moto, &scan_result(&lost));
    let err = waftune::athena::scan(&api, &source, &options, None, now, timeout)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the rollup `waf_rollup` lost 24 hours it held at the start of the run (a fill running at \
         the same time?): run again"
    );
}

/// `report --compare` through the engine: one statement reads both periods (the closed hours of
/// each from the rollup, the previous period's for all requests only) and gives both traffics; a
/// previous hour the rollup lacks is read from the logs by the second statement, as any other.
#[tokio::test]
async fn both_periods_of_a_comparison_come_from_one_statement_on_moto() {
    use waftune::athena::rollup::HOUR_MS;
    use waftune::athena::{Source, sql::Table};
    let moto = Moto::start().await;
    let api = api(&moto.endpoint);
    let timeout = Duration::from_secs(10);
    let policies = posts();
    // 2026-11-20T00:00Z; the period is its hours 2 and 3, the previous one hours 0 and 1.
    let h0 = 1_795_132_800_000 / HOUR_MS;
    let hours = |a: i64, b: i64| waftune::log::TimeRange {
        since: Some((h0 + a) * HOUR_MS),
        until: Some((h0 + b) * HOUR_MS),
    };
    let options = waftune::scan::ScanOptions {
        range: hours(2, 4),
        policies,
        ..Default::default()
    };
    let source = Source {
        table: Table {
            name: "waf_logs".into(),
            layout: waftune::model::athena::Layout::Projection,
        },
        rollup: Some("waf_rollup".into()),
    };
    let (now, before) = ((h0 + 2) * 60 + 5, h0 * 60 + 7);
    let data = || {
        vec![
            minute_rows(0, &[("192.0.2.1", now, 3, 0)]),
            value_rows(&[
                (0, "192.0.2.1", "C", "JP", 3),
                (1, "192.0.2.1", "U", "/a", 2),
            ]),
            minute_rows(1, &[("192.0.2.1", now, 2, 0)]),
            // The previous period: two clients, no policy.
            minute_rows(
                -1,
                &[("192.0.2.1", before, 1, 1), ("198.51.100.9", before, 4, 0)],
            ),
            value_rows(&[(-1, "198.51.100.9", "C", "US", 4)]),
            marker_rows(h0 + 2..h0 + 4, 0..=1),
        ]
    };
    let mut lacking = data();
    lacking.push(marker_rows(h0..h0 + 1, -1..=-1));
    queue_result(&moto, &scan_result(&lacking));
    queue_result(&moto, &scan_result(&lacking));
    let at = (h0 + 5) * HOUR_MS;
    let (traffic, previous, scanned) =
        waftune::athena::scan(&api, &source, &options, Some(hours(0, 2)), at, timeout)
            .await
            .unwrap();
    assert_eq!(
        (traffic.records, traffic.policy_keys[0][0].requests),
        (3, 2)
    );
    let previous = previous.unwrap();
    assert_eq!((previous.records, previous.clients.len()), (6, 2));
    assert_eq!(previous.actions.block, 1);
    assert_eq!(&*previous.countries[0].value, "US");
    assert!(previous.policy_keys.is_empty());
    assert_eq!(
        (scanned.statements, &scanned.missing_hours[..]),
        (2, &[h0 + 1][..])
    );
    let ran = executed(&moto).await;
    for statement in &ran {
        assert_eq!(statement.matches("FROM waf_rollup").count(), 1);
        assert!(statement.contains("THEN ARRAY[-1]"));
    }
    // Every hour of both periods is closed: the first statement reads the rollup alone.
    assert!(!ran[0].contains("waf_logs"));
    assert!(ran[0].contains(&format!("CASE WHEN (hour >= {h0} AND hour < {})", h0 + 2)));
    // The second reads the lacking hour from the logs, once.
    assert_eq!(ran[1].matches("waf_logs").count(), 1, "{}", ran[1]);
    assert!(ran[1].contains(&format!("CASE WHEN (hour >= {h0} AND hour < {})", h0 + 1)));
    assert!(ran[1].contains(&format!("timestamp >= {}", (h0 + 1) * HOUR_MS)));
}
