//! The origin aggregates in Trino SQL (`athena::origin`) compute exactly what the local origin scan
//! computes: the query is transpiled with sqlglot and run by DuckDB over a table built the way Athena's
//! SerDe builds it from the same files (`tests/support/origin_on_duckdb.py`, with the DDL's columns and
//! regex), and its rows, converted, must equal the local engine's per client and minute, per client,
//! per hour and for the site.

use serde_json::json;
use std::path::{Path, PathBuf};
use waftune::athena::origin::{ALB_COLUMNS, ALB_REGEX, CLOUDFRONT_COLUMNS, aggregates, traffic};
use waftune::athena::rows::ResultSet;
use waftune::log::{TimeRange, discover};
use waftune::origin::OriginKind;
use waftune::origin::detect::split;
use waftune::origin::scan::{OriginOptions, OriginTraffic, scan};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn duckdb(kind: OriginKind, files: &[PathBuf], queries: &[String]) -> Vec<ResultSet> {
    let (name, columns) = match kind {
        OriginKind::Alb => ("alb", ALB_COLUMNS),
        OriginKind::Cloudfront => ("cloudfront", CLOUDFRONT_COLUMNS),
    };
    let request = json!({
        "kind": name,
        "table": "origin_logs",
        "columns": columns,
        "regex": ALB_REGEX,
        "files": files,
        "queries": queries,
    });
    crate::common::python::results("origin_on_duckdb.py", &request)
}

fn ms(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

/// Everything both engines compute (Athena has no file count, malformed lines or exact first/last).
fn comparable(t: &OriginTraffic) -> String {
    let mut out = format!(
        "records={} kinds={:?} totals={:?}\n",
        t.records, t.kinds, t.totals
    );
    for (h, s) in &t.per_hour {
        out += &format!("hour {h} {s:?}\n");
    }
    for c in &t.clients {
        out += &format!("client {} {:?}\n", c.key, c.summary);
        for (m, s) in &c.minutes {
            out += &format!("  {m} {s:?}\n");
        }
    }
    out
}

/// Checks each range (and keying); one DuckDB run builds the table once for all of them.
fn assert_same(kind: OriginKind, paths: &[PathBuf], runs: &[OriginOptions]) -> Vec<OriginTraffic> {
    let found = discover(paths, &TimeRange::default()).unwrap();
    let (_, origin) = split(found.files);
    let files: Vec<PathBuf> = origin
        .iter()
        .map(|(f, _)| PathBuf::from(f.name.to_string()))
        .collect();
    let queries: Vec<String> = runs
        .iter()
        .map(|r| aggregates(kind, "origin_logs", r))
        .collect();
    let sets = duckdb(kind, &files, &queries);
    runs.iter()
        .zip(&sets)
        .map(|(&options, set)| {
            let local = scan(&origin, options);
            assert_eq!(local.malformed, 0, "{:?}", local.malformed_examples);
            let athena = traffic(kind, set).unwrap();
            let (a, b) = (comparable(&local), comparable(&athena));
            if a != b {
                let diff = similar::TextDiff::from_lines(&a, &b);
                panic!(
                    "local (-) and Athena (+) differ:\n{}",
                    diff.unified_diff().context_radius(2)
                );
            }
            local
        })
        .collect()
}

#[test]
fn alb_aggregates_equal_the_local_scan() {
    let sample = root().join("examples/sample-origin-logs/AWSLogs");
    // The whole sample, and a range that cuts hours and minutes: both engines filter on the
    // record's own time.
    let part = OriginOptions {
        range: TimeRange {
            since: Some(ms("2026-11-20T00:30:30Z")),
            until: Some(ms("2026-11-20T01:15:00Z")),
        },
        ..Default::default()
    };
    let t = assert_same(
        OriginKind::Alb,
        &[sample],
        &[OriginOptions::default(), part],
    );
    assert_eq!(t[0].records, 43_772);
    assert!(t[0].totals.status.s5xx > 0 && t[0].totals.origin_p99_ms.is_some());
    assert!(t[1].records > 0 && t[1].records < t[0].records);
}

#[test]
fn cloudfront_aggregates_equal_the_local_scan() {
    // The 2019 example has AWS's 33 fields in the DDL's order (the 2014 one has 26: Athena's
    // positional table cannot read it, the local reader follows its `#Fields`).
    let file = root().join("tests/fixtures/public-origin-logs/cloudfront-aws-docs-2019.log");
    let t = assert_same(OriginKind::Cloudfront, &[file], &[OriginOptions::default()]);
    assert_eq!((t[0].records, t[0].totals.status.s5xx), (6, 3));
}

/// `forwarded_for`: the first `x-forwarded-for` address, URL-decoded once or twice, IPv4 or IPv6;
/// `c-ip` where there is none (`-`) or the first is empty.
#[test]
fn cloudfront_forwarded_for_keys_equal_the_local_scan() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("E2EXAMPLE.2026-11-20-00.abcd1234");
    let fields = std::fs::read_to_string(
        root().join("tests/fixtures/public-origin-logs/cloudfront-aws-docs-2019.log"),
    )
    .unwrap();
    let header: String = fields.lines().take(2).map(|l| format!("{l}\n")).collect();
    let mut text = header;
    for (i, (c_ip, xff, status)) in [
        ("130.176.4.138", "203.0.113.9,%20130.176.4.138", "503"),
        ("130.176.4.138", "203.0.113.9", "200"),
        ("130.176.4.151", "2001:db8::7,%2520130.176.4.151", "502"),
        ("130.176.4.151", "-", "200"),
        ("130.176.4.151", ",%20198.51.100.1", "404"),
    ]
    .into_iter()
    .enumerate()
    {
        text += &format!(
            "2026-11-20\t00:0{i}:00\tNRT57-P1\t100\t{c_ip}\tGET\td1.cloudfront.net\t/\t{status}\t-\t-\t-\t-\t\
             Miss\tid{i}\tshop.example.com\thttps\t200\t0.0{i}1\t{xff}\tTLSv1.3\tTLS_AES_128_GCM_SHA256\tMiss\t\
             HTTP/2.0\t-\t-\t443\t0.0{i}0\tMiss\ttext/html\t100\t-\t-\n"
        );
    }
    std::fs::write(&file, text).unwrap();
    let forwarded = OriginOptions {
        forwarded_for: true,
        ..Default::default()
    };
    let t = assert_same(
        OriginKind::Cloudfront,
        &[file],
        &[OriginOptions::default(), forwarded],
    );
    let keys = |t: &OriginTraffic| {
        let mut k: Vec<String> = t.clients.iter().map(|c| c.key.to_string()).collect();
        k.sort();
        k
    };
    assert_eq!(keys(&t[0]), ["130.176.4.138", "130.176.4.151"]);
    assert_eq!(keys(&t[1]), ["130.176.4.151", "2001:db8::7", "203.0.113.9"]);
}

#[test]
fn ddls_follow_aws() {
    use waftune::athena::origin::{OriginLocation, ddl};
    let alb = ddl(
        "alb_logs",
        &OriginLocation::Alb {
            bucket: "logs-bucket".into(),
            prefix: String::new(),
            account: "123456789012".into(),
            region: "ap-northeast-1".into(),
        },
        "2026/01/01",
    );
    assert!(alb.starts_with("CREATE EXTERNAL TABLE IF NOT EXISTS alb_logs (\n  `type` string,"));
    assert!(alb.contains("'org.apache.hadoop.hive.serde2.RegexSerDe'"));
    assert!(alb.contains("'projection.day.range' = '2026/01/01,NOW'"));
    assert!(alb.contains("'storage.location.template' = 's3://logs-bucket/AWSLogs/123456789012/elasticloadbalancing/ap-northeast-1/${day}'"));
    assert_eq!(alb.matches("` ").count(), ALB_COLUMNS.len() + 1);
    let cf = ddl(
        "cf_logs",
        &OriginLocation::Cloudfront {
            bucket: "cf-bucket".into(),
            prefix: "cf/".into(),
            distribution: "E2EXAMPLE".into(),
        },
        "2026/01/01",
    );
    assert!(cf.contains("FIELDS TERMINATED BY '\\t'"));
    assert!(cf.contains("'skip.header.line.count' = '2'"));
    assert!(cf.contains("'storage.location.template' = 's3://cf-bucket/cf/E2EXAMPLE/${day}'"));
}
