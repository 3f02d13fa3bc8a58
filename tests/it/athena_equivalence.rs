//! The Athena engine's queries compute exactly what the local engine computes.
//!
//! Each generated Trino query is transpiled to DuckDB SQL with sqlglot and run by DuckDB over the same
//! log files (`tests/support/trino_on_duckdb.py`, in the Python venv `.ci/test` sets up; override the
//! interpreter with `WAFTUNE_PYTHON`). The rows go through the same conversion the Athena engine uses,
//! and must equal the local scan's per-client, per-prefix and per-policy statistics.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use serde_json::{Value, json};
use waftune::athena::rows::{self, ResultSet, Scope};
use waftune::athena::sql::{self, COLUMNS, Table};
use waftune::athena::{Source, rollup};
use waftune::log::{TimeRange, discover};
use waftune::model::athena::Layout;
use waftune::policy::Policy;
use waftune::scan::{ClientStats, ScanOptions, Traffic, scan, scan_split};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> PathBuf {
    match std::env::var_os("WAFTUNE_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => root().join(".venv/bin/python"),
    }
}

/// A rollup for [`duckdb`] to fill before the queries: its fill statements, and where to write it
/// as Parquet.
struct RollupFill<'a> {
    statements: &'a [String],
    parquet: Option<&'a Path>,
}

/// Runs Trino queries on DuckDB over `files` (after filling `rollup`); one result per query, as
/// text like Athena's, and the bytes of the rollup's Parquet files if written.
fn duckdb(
    files: &[PathBuf],
    queries: &[String],
    rollup: Option<RollupFill>,
) -> (Vec<ResultSet>, Option<u64>) {
    let python = python();
    assert!(
        python.exists(),
        "`{}` not found: set WAFTUNE_PYTHON, or run .ci/test (it installs duckdb and sqlglot into .venv)",
        python.display()
    );
    let mut request = json!({
        "table": "waf_logs",
        "columns": COLUMNS,
        "files": files,
        "queries": queries,
    });
    if let Some(r) = rollup {
        request["rollup"] = json!({
            "table": ROLLUP,
            "columns": rollup::COLUMNS,
            "statements": r.statements,
            "parquet": r.parquet,
        });
    }
    let mut child = Command::new(&python)
        .arg(root().join("tests/support/trino_on_duckdb.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python starts");
    serde_json::to_writer(child.stdin.take().unwrap(), &request).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "DuckDB run failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = reply["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| ResultSet {
            columns: serde_json::from_value(r["columns"].clone()).unwrap(),
            rows: serde_json::from_value(r["rows"].clone()).unwrap(),
        })
        .collect();
    (results, reply["parquet_bytes"].as_u64())
}

const ROLLUP: &str = "waf_rollup";

/// What the minute queries provide: everything but the top lists and distinct counts.
fn minutes_of(v: &[ClientStats]) -> Vec<String> {
    v.iter()
        .map(|c| {
            format!(
                "{} requests={} actions={:?} first={} last={} peaks={:?} minutes={:?}",
                c.key, c.requests, c.actions, c.first_ms, c.last_ms, c.peaks, c.minutes
            )
        })
        .collect()
}

/// Everything of a client: the minute queries' part and the values query's top lists (in their
/// order) and distinct counts.
fn comparable(v: &[ClientStats]) -> Vec<String> {
    v.iter()
        .zip(minutes_of(v))
        .map(|(c, minutes)| {
            format!(
                "{minutes} rules={:?} codes={:?} uris={} {:?} uas={} {:?} countries={:?} \
                 labels={:?} count_rules={:?} ja4={:?} ja3={:?} asn={:?}",
                c.rules,
                c.response_codes,
                c.distinct_uris,
                c.uris,
                c.distinct_user_agents,
                c.user_agents,
                c.countries,
                c.labels,
                c.count_rules,
                c.ja4,
                c.ja3,
                c.asn
            )
        })
        .collect()
}

/// Policies covering every condition type, nesting, and every pattern kind.
const POLICIES: &str = r#"
[[policy]]
name = "paths"
description = "every text pattern kind on the path, with and without case"
key = "ip"
[policy.match]
any = [
  { path = { glob = ["/**/*.php", "/wp-*"] } },
  { path = { prefix = ["/.ENV", "/admin"], ignore_case = true } },
  { path = { equals = ["/", "/login"] } },
  { path = { regex = ['^/[a-z]+/\d+$'] } },
]
[policy.thresholds]
requests = 1
[policy.action]
type = "report"

[[policy]]
name = "request"
description = "method, host, user agent and headers"
key = "prefix"
[policy.match]
any = [
  { method = ["POST", "PUT"] },
  { host = { regex = ['(?i)example'] } },
  { user_agent = { regex = ['(?i)(curl|python|bot|mozilla)'] } },
  { header = { name = "accept-language", present = false } },
  { header = { name = "X-Forwarded-For", present = true } },
  { header = { name = "accept", prefix = ["text/html"] } },
]
[policy.thresholds]
requests = 1
[policy.action]
type = "report"

[[policy]]
name = "waf"
description = "what WAF decided: action, rules, labels"
key = "ip"
[policy.match]
any = [
  { action = ["BLOCK", "CAPTCHA", "CHALLENGE"] },
  { terminating_rule = { regex = ['(?i)rate|ip'] } },
  { terminating_rule_type = ["RATE_BASED", "MANAGED_RULE_GROUP"] },
  { count_rule = { regex = ['.'] } },
  { labels = { any = ["awswaf:managed:aws:bot-control:*"], none = ["awswaf:managed:aws:bot-control:bot:verified"] } },
  { labels = { all = ["awswaf:clientip:geo:country:US"] } },
]
[policy.thresholds]
requests = 1
[policy.action]
type = "report"

[[policy]]
name = "origin"
description = "country, source, fingerprints, response code, under not"
key = "ip"
[policy.match]
not = { country = ["JP"] }
[[policy.match.any]]
source = ["ALB", "CF"]
[[policy.match.any]]
ja3 = { regex = ['^[0-9a-f]{32}$'] }
[[policy.match.any]]
ja4 = { prefix = ["t13"] }
[[policy.match.any]]
response_code = [403, 429]
[[policy.match.any]]
country = { not_in = ["US", "-"] }
[policy.thresholds]
requests = 1
[policy.action]
type = "report"

[[policy]]
name = "negations"
description = "missing fields under not: true locally, must not become NULL in SQL"
key = "ip"
[policy.match]
not = { any = [ { ja3 = { prefix = ["0"] } }, { header = { name = "referer", prefix = ["http"] } }, { host = { equals = ["x"] } } ] }
[policy.thresholds]
requests = 1
[policy.action]
type = "report"
"#;

fn policies() -> Vec<Policy> {
    let mut all = waftune::policy::parse_str(POLICIES, Path::new("equivalence.toml"), None)
        .unwrap_or_else(|d| panic!("{d:?}"))
        .policies
        .policies;
    let shipped = waftune::policy::load_dir(&root().join("policies"), None)
        .unwrap_or_else(|d| panic!("{d:?}"));
    all.extend(shipped.policies.policies);
    all
}

/// What a run returned: statements, result rows, the requests each policy matched, and how many
/// value rows had each shape of the pushdown.
struct Run {
    statements: usize,
    rows: usize,
    matched: Vec<u64>,
    /// Rows of a list Athena cut (more distinct values than kept), of a /24 shared by several
    /// clients, and of a `key = "prefix"` policy's /24.
    cut: usize,
    shared_prefix: usize,
    policy_prefix: usize,
    /// Hours of data the rollup path read from the rollup.
    rollup_hours: usize,
}

/// The traffic of one statement's result, as the Athena engine builds it (with `previous`, that
/// of the previous period too), and its rows.
fn traffic_of(
    set: &ResultSet,
    options: &ScanOptions,
    previous: Option<TimeRange>,
) -> (Traffic, Option<Traffic>, rows::ScanRows) {
    let rows = set.scan_rows(options.policies.len()).unwrap();
    let before = previous.map(|range| {
        let options = ScanOptions {
            range,
            policies: Vec::new(),
            ..options.clone()
        };
        let rows = rows.previous.clone().unwrap_or_default();
        rows.traffic(&options).unwrap()
    });
    (rows.clone().traffic(options).unwrap(), before, rows)
}

/// The hours to fill and to read from the rollup for a scan of `range` over `local`'s data: every
/// whole hour of the range with data is held, all but the last of them filled (so the statement
/// also reads one hour of data from the raw table), and one hour without data held but not filled
/// (the markers must show it missing). `None` when the range has no whole hour of data.
fn rollup_hours(local: &Traffic, range: &TimeRange) -> Option<(Vec<i64>, Vec<i64>)> {
    let whole = |h: &i64| {
        range.since.is_none_or(|s| s <= h * rollup::HOUR_MS)
            && range.until.is_none_or(|u| (h + 1) * rollup::HOUR_MS <= u)
    };
    let mut data: Vec<i64> = local
        .per_minute
        .keys()
        .map(|m| i64::from(*m) / 60)
        .filter(whole)
        .collect();
    data.dedup();
    let mut filled = data.clone();
    if filled.len() > 1 {
        filled.pop();
    }
    let mut held = data;
    held.extend(held.first().map(|h| h - 1).filter(whole));
    held.sort();
    (!filled.is_empty()).then_some((filled, held))
}

/// Scans `paths` locally and with the generated statement on DuckDB, and compares everything the
/// statement provides; then the same through a rollup built by the fill statements (run twice: a
/// refill must not double-count), read for whole hours with the rest from the raw table.
fn check(paths: &[PathBuf], range: TimeRange, layout: Layout) -> Run {
    check_periods(paths, range, None, layout)
}

/// [`check`], and with `previous` (`report --compare`) the previous period too: one statement (and
/// one through the rollup, whose hours of both periods are filled) gives both periods' traffic,
/// equal to what the local engine's `scan_split` gives from one pass.
fn check_periods(
    paths: &[PathBuf],
    range: TimeRange,
    previous: Option<TimeRange>,
    layout: Layout,
) -> Run {
    let policies = policies();
    let home = Some("JP");
    let options = ScanOptions {
        range,
        home_country: home.map(String::from),
        ..ScanOptions::default()
    }
    .with_policies(policies.clone());
    // The files of both periods, as `report` discovers them.
    let wanted = previous.map_or(range, |p| TimeRange {
        since: range.since.zip(p.since).map(|(a, b)| a.min(b)),
        until: range.until.zip(p.until).map(|(a, b)| a.max(b)),
    });
    let found = discover(paths, &wanted).unwrap();
    let (local, local_before) = match previous {
        None => (scan(&found.files, &options, Arc::new(|_| {})), None),
        Some(p) => {
            let (now, before) = scan_split(&found.files, &options, p, Arc::new(|_| {}));
            (now, Some(before))
        }
    };
    let files: Vec<PathBuf> = found
        .files
        .iter()
        .map(|f| PathBuf::from(&*f.name))
        .collect();
    let table = Table {
        name: "waf_logs".into(),
        layout,
    };
    let source = Source {
        table: table.clone(),
        rollup: None,
    };
    let mut queries = vec![source.first_statement(&options, previous.as_ref(), 0)];
    assert_eq!(queries[0].matches("waf_logs").count(), 1, "one read");
    let mut fill = Vec::new();
    // The hours of each period to fill and to read from the rollup.
    let before_hours = previous
        .zip(local_before.as_ref())
        .and_then(|(p, before)| rollup_hours(before, &p));
    let plan = match (rollup_hours(&local, &range), before_hours) {
        (None, None) => None,
        (now, before) => {
            let (now_filled, range) = now.unwrap_or_default();
            let (before_filled, previous) = before.unwrap_or_default();
            let mut filled = [now_filled, before_filled].concat();
            filled.sort_unstable();
            Some((filled, rollup::Held { range, previous }))
        }
    };
    if let Some((filled, held)) = &plan {
        for chunk in rollup::chunks(filled) {
            fill.extend(rollup::fill(&table, ROLLUP, chunk, &policies));
        }
        fill.extend(fill.clone());
        let read = rollup::Held {
            range: held
                .range
                .iter()
                .filter(|h| filled.contains(h))
                .copied()
                .collect(),
            previous: held
                .previous
                .iter()
                .filter(|h| filled.contains(h))
                .copied()
                .collect(),
        };
        for held in [held, &read] {
            let statement = rollup::scan(
                &table,
                ROLLUP,
                &range,
                previous.as_ref(),
                held,
                &policies,
                home,
            );
            assert_eq!(statement.matches("waf_logs").count(), 1, "one read");
            queries.push(statement);
        }
    }
    let (results, _) = duckdb(
        &files,
        &queries,
        plan.is_some().then_some(RollupFill {
            statements: &fill,
            parquet: None,
        }),
    );
    let label = format!("{paths:?} {layout:?} previous {previous:?}");
    // Each period equal to the local engine's (the previous one counts no policies); the detail
    // per minute too where the statement read no hour from the rollup, else it is missing.
    let compare_both = |label: &str, (now, before): (Traffic, Option<Traffic>), raw: bool| {
        compare(label, &now, &local, &policies);
        compare_detail(label, &now, &local, raw);
        assert_eq!(before.is_some(), local_before.is_some(), "{label}");
        if let Some((athena, local)) = before.zip(local_before.as_ref()) {
            assert!(athena.policy_keys.is_empty());
            let label = format!("{label} (previous)");
            compare(&label, &athena, local, &[]);
            compare_detail(&label, &athena, local, raw);
        }
    };
    let (athena, before, rows) = traffic_of(&results[0], &options, previous);
    compare_both(&label, (athena, before), true);
    let mut rollup_hours = 0;
    if let Some((filled, held)) = &plan {
        // The first statement assumed every held hour filled; its markers name the ones that are
        // not, in each period.
        let (_, _, first) = traffic_of(&results[1], &options, previous);
        let unfilled = |hours: &[i64]| -> Vec<i64> {
            hours
                .iter()
                .filter(|h| !filled.contains(h))
                .copied()
                .collect()
        };
        let missing = rollup::missing(&held.range, &first.markers, policies.len());
        assert_eq!(
            missing,
            unfilled(&held.range),
            "{label}: hours the rollup lacks"
        );
        let markers = first.previous.map(|p| p.markers).unwrap_or_default();
        assert_eq!(
            rollup::missing(&held.previous, &markers, 0),
            unfilled(&held.previous),
            "{label}: hours of the previous period the rollup lacks"
        );
        let (now, before, _) = traffic_of(&results[2], &options, previous);
        compare_both(&format!("{label} rollup"), (now, before), false);
        rollup_hours = filled.len();
    }
    let matched = local
        .policy_keys
        .iter()
        .map(|keys| keys.iter().map(|k| k.requests).sum())
        .collect();
    eprintln!("{label}: {} rows of the statement", results[0].rows.len());
    let values = rows.values;
    let prefix = |policy: bool| {
        values
            .iter()
            .filter(|v| v.scope == Scope::Prefix && v.policy.is_some() == policy)
            .count()
    };
    Run {
        statements: 1,
        rows: results[0].rows.len(),
        matched,
        cut: values
            .iter()
            .filter(|v| v.distinct > sql::kept(v.kind).map(|n| n as u64))
            .count(),
        shared_prefix: prefix(false),
        policy_prefix: prefix(true),
        rollup_hours,
    }
}

/// Asserts the Athena engine's COUNT-mode matches and geo split per minute equal the local
/// engine's (`raw`: the statement read no hour from the rollup), or are missing.
fn compare_detail(label: &str, athena: &Traffic, local: &Traffic, raw: bool) {
    let local = local
        .per_minute_detail
        .as_ref()
        .expect("the local scan fills it");
    match &athena.per_minute_detail {
        Some(detail) => assert_eq!(detail, local, "{label}: detail per minute"),
        // Hours from the rollup, which does not store it (a range without any has it).
        None => assert!(!raw, "{label}: detail per minute missing"),
    }
}

/// Asserts the Athena engine's `athena` equals the local engine's `local`, in everything the
/// statement provides, and that `propose` decides the same from either.
fn compare(label: &str, athena: &Traffic, local: &Traffic, policies: &[Policy]) {
    assert_eq!(
        (
            athena.records,
            athena.actions,
            athena.first_ms,
            athena.last_ms
        ),
        (local.records, local.actions, local.first_ms, local.last_ms),
        "{label}: totals"
    );
    assert_eq!(athena.per_minute, local.per_minute, "{label}: per minute");
    assert_eq!(
        (
            &athena.countries,
            &athena.rules,
            &athena.labels,
            &athena.count_rules,
            athena.geo
        ),
        (
            &local.countries,
            &local.rules,
            &local.labels,
            &local.count_rules,
            local.geo
        ),
        "{label}: traffic-wide lists and geo split"
    );
    assert_eq!(
        athena.unparseable_client_ips, local.unparseable_client_ips,
        "{label}: unparseable client IPs"
    );
    assert_eq!(
        comparable(&athena.clients),
        comparable(&local.clients),
        "{label}: clients"
    );
    assert_eq!(
        comparable(&athena.prefixes),
        comparable(&local.prefixes),
        "{label}: prefixes"
    );
    for (i, p) in policies.iter().enumerate() {
        // The Athena engine keeps the keys that can fire: those with enough matched requests.
        let min = p.thresholds.min_requests();
        let reachable: Vec<ClientStats> = local.policy_keys[i]
            .iter()
            .filter(|k| k.requests >= min)
            .cloned()
            .collect();
        assert_eq!(
            comparable(&athena.policy_keys[i]),
            comparable(&reachable),
            "{label}: policy `{}`",
            p.name
        );
    }
    // What `propose --source athena` decides: the shipped policies' findings (thresholds, the
    // verified-crawler and allowlist suppressions, aggregation, evidence) from each engine's traffic.
    if policies.is_empty() {
        return;
    }
    let shipped = waftune::policy::load_dir(&root().join("policies"), None)
        .unwrap_or_else(|d| panic!("{d:?}"))
        .policies;
    let own = policies.len() - shipped.policies.len();
    let findings = |t: &Traffic| {
        let mut t = t.clone();
        t.policy_keys.drain(..own);
        waftune::propose::evaluate(
            &shipped,
            &t,
            jiff::Timestamp::from_second(1_800_000_000).unwrap(),
        )
    };
    let (athena_findings, local_findings) = (findings(athena), findings(local));
    assert_eq!(athena_findings, local_findings, "{label}: propose findings");
    eprintln!("{label}: {} findings agree", local_findings.len());
}

/// Samples Athena cannot read as the local engine does, and why. Real WAF logs never look like this.
const ATHENA_CANNOT_READ: &[(&str, &str)] = &[(
    "panther-analysis.jsonl",
    "hand-written records with ISO-8601 `timestamp` strings: the table's `timestamp bigint` reads \
     them as NULL (the local engine parses them)",
)];

#[test]
fn every_public_sample_gives_the_local_engines_aggregates() {
    let dir = root().join("tests/fixtures/public-waf-logs");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            (name.ends_with(".jsonl") || name.ends_with(".gz"))
                && !ATHENA_CANNOT_READ.iter().any(|(skip, _)| name == *skip)
        })
        .collect();
    names.sort();
    let mut matched = Vec::new();
    for path in names {
        let run = check(
            std::slice::from_ref(&path),
            TimeRange::default(),
            Layout::None,
        );
        eprintln!(
            "{}: {} statement, {} rows",
            path.display(),
            run.statements,
            run.rows
        );
        matched.resize(run.matched.len(), 0);
        matched
            .iter_mut()
            .zip(run.matched)
            .for_each(|(a, b)| *a += b);
    }
    // The comparison means something only if each test policy matched requests somewhere.
    let names: Vec<String> = policies().into_iter().map(|p| p.name).collect();
    for (name, n) in names.iter().zip(&matched) {
        let ours = ["paths", "request", "waf", "origin", "negations"].contains(&name.as_str());
        assert!(
            !ours || *n > 0,
            "policy `{name}` matched nothing in the samples"
        );
    }
    eprintln!(
        "matched requests per policy: {:?}",
        names.iter().zip(&matched).collect::<Vec<_>>()
    );
}

#[test]
fn s3_layout_sample_with_a_range_prunes_partitions_and_cuts_exactly() {
    let sample = root().join("examples/sample-logs");
    // 2026-11-20T00:12:34.5Z .. 00:41:00Z: edges inside partitions and inside minutes.
    let range = TimeRange {
        since: Some(1_795_133_554_500),
        until: Some(1_795_135_260_000),
    };
    for layout in [Layout::Projection, Layout::Date, Layout::None] {
        let run = check(std::slice::from_ref(&sample), range, layout);
        eprintln!(
            "sample {layout:?}: {} statement, {} rows",
            run.statements, run.rows
        );
    }
    // Hours of another sample from the rollup, the sample's hour from the raw table.
    let other = root().join("tests/fixtures/public-waf-logs/aws-waf-security-automations.jsonl");
    let run = check(
        &[sample.clone(), other],
        TimeRange::default(),
        Layout::Projection,
    );
    eprintln!("two samples: {} hours from the rollup", run.rollup_hours);
    assert!(run.rollup_hours > 0);
    let run = check(&[sample], TimeRange::default(), Layout::Projection);
    eprintln!(
        "sample, whole: {} statement, {} rows ({} of cut lists, {} of shared /24s, {} of policy /24s)",
        run.statements, run.rows, run.cut, run.shared_prefix, run.policy_prefix
    );
    // The comparison covers every shape of the pushdown only if the sample produces each.
    assert!(
        run.cut > 0 && run.shared_prefix > 0 && run.policy_prefix > 0,
        "a pushdown shape is not exercised"
    );
}

/// Writes `lines` to `path` and checks the file as [`check`] does; returns the local engine's
/// traffic of it with `options`.
fn check_lines(path: &Path, lines: &[String], options: &ScanOptions) -> Traffic {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
    let paths = [path.to_owned()];
    check(&paths, TimeRange::default(), Layout::None);
    let found = discover(&paths, &TimeRange::default()).unwrap();
    scan(&found.files, options, Arc::new(|_| {}))
}

/// JA4, JA3 and `clientAsn` per client agree, where the samples have none of `clientAsn` and few
/// clients whose JA3 varies: ASNs as numbers, text and junk, a JA3 that changes per request (kept
/// by neither engine) beside one that does not, over IPv4 (cut in SQL) and IPv6 (merged in Rust).
#[test]
fn fingerprints_and_asns_agree() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fingerprints.jsonl");
    let mut lines = Vec::new();
    let mut line = |t: u64, ip: &str, ja3: &str, ja4: &str, asn: &str| {
        lines.push(format!(
            r#"{{"timestamp":{},"action":"ALLOW","terminatingRuleId":"Default_Action","httpRequest":{{"clientIp":"{ip}","country":"JP","uri":"/","headers":[]}},"ja3Fingerprint":{ja3},"ja4Fingerprint":{ja4},"clientAsn":{asn}}}"#,
            1_795_133_000_000 + t * 1000
        ));
    };
    for i in 0..6u64 {
        line(i, "192.0.2.1", r#""aaaa""#, r#""t13d_a""#, "64496");
        line(
            i,
            "192.0.2.2",
            &format!(r#""{i:04x}""#),
            r#""t13d_b""#,
            r#""64497""#,
        );
        line(
            i,
            "2001:db8::1",
            &format!(r#""{i:04x}""#),
            "null",
            r#"" 007 ""#,
        );
        line(i, "2001:db8::0:1", "null", r#""t13d_c""#, r#""AS1""#);
        line(i, "2001:db8::2", r#""bbbb""#, r#""t13d_c""#, "99999999999");
    }
    line(9, "192.0.2.1", "null", r#""t13d_z""#, "64511");
    let local = check_lines(&path, &lines, &ScanOptions::default());
    let of = |ip: &str| {
        let c = local
            .clients
            .iter()
            .find(|c| c.key.to_string() == ip)
            .unwrap();
        (c.ja4.as_deref(), c.ja3.as_deref(), c.asn)
    };
    assert_eq!(of("192.0.2.1"), (Some("t13d_a"), Some("aaaa"), Some(64496)));
    assert_eq!(of("192.0.2.2"), (Some("t13d_b"), None, Some(64497)));
    assert_eq!(of("2001:db8::1"), (Some("t13d_c"), None, Some(7)));
    assert_eq!(of("2001:db8::2"), (Some("t13d_c"), Some("bbbb"), None));
    let net = local
        .prefixes
        .iter()
        .find(|p| p.key.to_string() == "192.0.2.0/24")
        .unwrap();
    assert_eq!((net.ja3.as_deref(), net.asn), (None, Some(64496)));
}

/// `report --compare` on Athena: one statement gives both periods, each equal to what the local
/// engine's one pass (`scan_split`) gives, with and without the rollup.
#[test]
fn report_compare_gives_both_periods_from_one_statement() {
    const HOUR: i64 = 3_600_000;
    let sample = root().join("examples/sample-logs");
    // 2026-11-20T00:00:00Z, where the sample starts.
    let start = 1_795_132_800_000;
    // `--compare previous`: periods that touch, with edges inside partitions and minutes.
    let range = TimeRange {
        since: Some(start + 41 * 60_000),
        until: Some(start + 70 * 60_000),
    };
    let previous = TimeRange {
        since: Some(1_795_133_554_500),
        until: range.since,
    };
    check_periods(
        std::slice::from_ref(&sample),
        range,
        Some(previous),
        Layout::Projection,
    );
    // Whole hours: hours of both periods from the rollup, one of each from the raw table.
    let run = check_periods(
        std::slice::from_ref(&sample),
        TimeRange {
            since: Some(start + HOUR),
            until: Some(start + 3 * HOUR),
        },
        Some(TimeRange {
            since: Some(start - HOUR),
            until: Some(start + HOUR),
        }),
        Layout::Projection,
    );
    assert!(run.rollup_hours > 0);
    // `--compare SINCE..UNTIL` years before (another sample's day): each range with its own
    // partitions, and its data hour from the rollup.
    let other = root().join("tests/fixtures/public-waf-logs/aws-waf-security-automations.jsonl");
    let day = 86_400_000;
    let run = check_periods(
        &[sample, other],
        TimeRange {
            since: Some(start),
            until: Some(start + day),
        },
        Some(TimeRange {
            since: Some(1_682_294_400_000),
            until: Some(1_682_294_400_000 + day),
        }),
        Layout::Date,
    );
    assert!(run.rollup_hours > 0);
}

/// `report`'s detail per minute (requests with a COUNT-mode match, domestic, overseas and unknown
/// country) agrees, on records the samples have few of: COUNT-mode matches at the top level and
/// inside rule groups, matches without a rule id (no match locally), empty and missing lists, a
/// missing, empty and `-` country, and the home country in another case.
#[test]
fn count_mode_matches_and_home_country_per_minute_agree() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("detail.jsonl");
    let top = r#""nonTerminatingMatchingRules":[{"ruleId":"count-top","action":"COUNT"}]"#;
    let group = r#""ruleGroupList":[{"ruleGroupId":"AWS#Common","terminatingRule":null,"nonTerminatingMatchingRules":[]},{"ruleGroupId":"AWS#Bot","nonTerminatingMatchingRules":[{"ruleId":"CategoryHttpLibrary","action":"COUNT"}]}]"#;
    let no_id = r#""nonTerminatingMatchingRules":[{"action":"COUNT"}],"ruleGroupList":[{"ruleGroupId":"g","nonTerminatingMatchingRules":[{"action":"COUNT"}]}]"#;
    let none = r#""nonTerminatingMatchingRules":[],"ruleGroupList":[{"ruleGroupId":"g","nonTerminatingMatchingRules":null}]"#;
    let missing = r#""x":1"#;
    let countries = [
        r#","country":"JP""#,
        r#","country":"jp""#,
        r#","country":"US""#,
        "",
        r#","country":"""#,
        r#","country":"-""#,
        r#","country":null"#,
    ];
    let mut lines = Vec::new();
    let mut n = 0u64;
    for (c, ip) in ["192.0.2.1", "192.0.2.2", "2001:db8::1", "2001:0db8::1"]
        .iter()
        .enumerate()
    {
        for (r, rules) in [top, group, no_id, none, missing].iter().enumerate() {
            for (k, country) in countries.iter().enumerate() {
                // Spread over minutes, so minutes differ in what they hold.
                if (c + r + k) % 3 == 0 {
                    continue;
                }
                n += 1;
                let ms = 1_795_133_000_000 + (n % 7) * 60_000 + n * 37;
                lines.push(format!(
                    r#"{{"timestamp":{ms},"action":"{}","terminatingRuleId":"Default_Action",{rules},"httpRequest":{{"clientIp":"{ip}"{country},"uri":"/","headers":[]}}}}"#,
                    ["ALLOW", "BLOCK", "COUNT"][(r + k) % 3]
                ));
            }
        }
    }
    let options = ScanOptions {
        home_country: Some("JP".into()),
        ..ScanOptions::default()
    };
    let local = check_lines(&path, &lines, &options);
    // The comparison means something only if each side of the split is present.
    let detail = local.per_minute_detail.unwrap();
    let sum = |f: fn(&waftune::scan::MinuteDetail) -> u64| detail.values().map(f).sum::<u64>();
    let counted = sum(|d| d.counted);
    assert!(counted > 0 && counted < local.records, "{counted}");
    assert!(
        sum(|d| d.geo.domestic) > 0 && sum(|d| d.geo.overseas) > 0 && sum(|d| d.geo.unknown) > 0
    );
}
