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
use waftune::athena::rows::{self, PolicyRows, ResultSet, Scope};
use waftune::athena::sql::{self, COLUMNS, Table};
use waftune::log::{TimeRange, discover};
use waftune::model::athena::Layout;
use waftune::policy::Policy;
use waftune::scan::{ClientStats, ScanOptions, Traffic, scan};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> PathBuf {
    match std::env::var_os("WAFTUNE_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => root().join(".venv/bin/python"),
    }
}

/// Runs Trino queries on DuckDB over `files`; one result per query, as text like Athena's.
fn duckdb(files: &[PathBuf], queries: &[String]) -> Vec<ResultSet> {
    let python = python();
    assert!(
        python.exists(),
        "`{}` not found: set WAFTUNE_PYTHON, or run .ci/test (it installs duckdb and sqlglot into .venv)",
        python.display()
    );
    let request = json!({
        "table": "waf_logs",
        "columns": COLUMNS,
        "files": files,
        "queries": queries,
    });
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
    reply["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| ResultSet {
            columns: serde_json::from_value(r["columns"].clone()).unwrap(),
            rows: serde_json::from_value(r["rows"].clone()).unwrap(),
        })
        .collect()
}

fn minute_rows(set: &ResultSet) -> Vec<rows::MinuteRow> {
    set.minute_rows().unwrap()
}

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

/// What a run returned: queries, result rows, the requests each policy matched, and how many value
/// rows had each shape of the pushdown.
struct Run {
    queries: usize,
    rows: usize,
    matched: Vec<u64>,
    /// Rows of a list Athena cut (more distinct values than kept), of a /24 shared by several
    /// clients, and of a `key = "prefix"` policy's /24.
    cut: usize,
    shared_prefix: usize,
    policy_prefix: usize,
}

/// Scans `paths` locally and with the generated SQL on DuckDB, and compares everything the queries
/// provide.
fn check(paths: &[PathBuf], range: TimeRange, layout: Layout) -> Run {
    let policies = policies();
    let options = ScanOptions {
        range,
        home_country: Some("JP".into()),
        ..ScanOptions::default()
    }
    .with_policies(policies.clone());
    let found = discover(paths, &range).unwrap();
    let local: Traffic = scan(&found.files, &options, Arc::new(|_| {}));
    let files: Vec<PathBuf> = found
        .files
        .iter()
        .map(|f| PathBuf::from(&*f.name))
        .collect();
    let table = Table {
        name: "waf_logs".into(),
        layout,
    };
    let queries = waftune::athena::queries(&table, &options);
    let results = duckdb(&files, &queries);
    let label = format!("{paths:?} {layout:?}");

    let policy_rows: Vec<PolicyRows> = policies
        .iter()
        .zip(&results[2..])
        .map(|(p, r)| PolicyRows::new(p, minute_rows(r)))
        .collect();
    let athena = rows::traffic(
        &minute_rows(&results[0]),
        &results[1].value_rows().unwrap(),
        &policy_rows,
        options.home_country.clone(),
    )
    .unwrap();
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
            "{label}: policy `{}`\n{}",
            p.name,
            queries[i + 2]
        );
    }
    // What `propose --source athena` decides: the shipped policies' findings (thresholds, the
    // verified-crawler and allowlist suppressions, aggregation, evidence) from each engine's traffic.
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
    let (athena_findings, local_findings) = (findings(&athena), findings(&local));
    assert_eq!(athena_findings, local_findings, "{label}: propose findings");
    eprintln!("{label}: {} findings agree", local_findings.len());
    let matched = local
        .policy_keys
        .iter()
        .map(|keys| keys.iter().map(|k| k.requests).sum())
        .collect();
    eprintln!(
        "{label}: {} rows of the values query",
        results[1].rows.len()
    );
    let values = results[1].value_rows().unwrap();
    let prefix = |policy: bool| {
        values
            .iter()
            .filter(|v| v.scope == Scope::Prefix && v.policy.is_some() == policy)
            .count()
    };
    Run {
        queries: queries.len(),
        rows: results.iter().map(|r| r.rows.len()).sum(),
        matched,
        cut: values
            .iter()
            .filter(|v| v.distinct > sql::kept(v.kind).map(|n| n as u64))
            .count(),
        shared_prefix: prefix(false),
        policy_prefix: prefix(true),
    }
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
            "{}: {} queries, {} rows",
            path.display(),
            run.queries,
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
            "sample {layout:?}: {} queries, {} rows",
            run.queries, run.rows
        );
    }
    let run = check(&[sample], TimeRange::default(), Layout::Projection);
    eprintln!(
        "sample, whole: {} queries, {} rows ({} of cut lists, {} of shared /24s, {} of policy /24s)",
        run.queries, run.rows, run.cut, run.shared_prefix, run.policy_prefix
    );
    // The comparison covers every shape of the pushdown only if the sample produces each.
    assert!(
        run.cut > 0 && run.shared_prefix > 0 && run.policy_prefix > 0,
        "a pushdown shape is not exercised"
    );
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
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    check(
        std::slice::from_ref(&path),
        TimeRange::default(),
        Layout::None,
    );
    let found = discover(&[path], &TimeRange::default()).unwrap();
    let local = scan(&found.files, &ScanOptions::default(), Arc::new(|_| {}));
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
