//! `waftune athena ddl`; `--source athena` printing its queries; and `analyze` and `propose`
//! end to end against moto through the AWS environment, on result sets queued into moto.

use crate::common;

use assert_cmd::Command;
use common::athena::{
    REGION, minute_rows, printed_offline, queue_result, scan_result, text, value_rows, with_detail,
};
use common::moto::Moto;
use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;

fn ddl(start: &str, extra: &[&str]) -> assert_cmd::assert::Assert {
    Command::cargo_bin("waftune")
        .unwrap()
        .args([
            "athena",
            "ddl",
            "--bucket",
            "aws-waf-logs-shop",
            "--account",
            "123456789012",
            "--web-acl",
            "shop-prod",
            "--region",
            "ap-northeast-1",
            "--start",
            start,
        ])
        .args(extra)
        .assert()
}

#[test]
fn ddl_prints_a_projected_table() {
    ddl("2026/01/01", &[])
        .success()
        .stdout(contains("CREATE EXTERNAL TABLE IF NOT EXISTS waf_logs ("))
        .stdout(contains("PARTITIONED BY (`log_time` string)"))
        .stdout(contains(
            "'storage.location.template' = 's3://aws-waf-logs-shop/AWSLogs/123456789012/WAFLogs/ap-northeast-1/shop-prod/${log_time}'",
        ));
    ddl("2026/01/01", &["--layout", "date", "--table", "waf.shop"])
        .success()
        .stdout(contains("CREATE EXTERNAL TABLE IF NOT EXISTS waf.shop ("))
        .stdout(contains("'projection.region.values' = 'ap-northeast-1'"));
}

#[test]
fn ddl_rejects_bad_values_naming_them() {
    ddl("2026-01-01", &[]).failure().stderr(contains(
        "`--start 2026-01-01` is not a day as `yyyy/MM/dd`",
    ));
    // Table names go into SQL unquoted: plain, and not reserved words.
    for (table, error) in [
        ("", "error: `--table `: the name is empty\n"),
        (
            "select",
            "error: `--table select`: the name `select` is a reserved word in Athena SQL: choose \
             another name, such as `select_logs`\n",
        ),
        (
            "waf.Logs",
            "error: `--table waf.Logs`: the name `Logs` is not a plain Athena name: a lower-case \
             letter, then up to 254 lower-case letters, digits and `_`\n",
        ),
    ] {
        ddl("2026/01/01", &["--table", table])
            .code(1)
            .stdout("")
            .stderr(error);
    }
}

fn with_config(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("waftune.toml");
    // The repository's policies, which `propose` needs for their allowlist.
    let policies = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    std::fs::write(&path, format!("policies = {:?}\n{text}", policies)).unwrap();
    (dir, path)
}

const CONFIG: &str = r#"scope = "REGIONAL"
region = "us-east-1"

[[ip_set_group]]
name = "blocklist"
ipv4_set_name = "waftune-blocklist-v4"
ipv6_set_name = "waftune-blocklist-v6"

[athena]
database = "waf"
table = "shop_logs"
output_location = "s3://athena-results/waftune/"
layout = "date"
"#;

/// `command --source athena` with the CONFIG, over the 2026-11-20 UTC day.
fn athena_run(command: &str, config: &std::path::Path) -> Command {
    let mut cmd = Command::cargo_bin("waftune").unwrap();
    cmd.args([command, "--source", "athena", "--since"])
        .args(["2026-11-20T00:00:00Z", "--until", "2026-11-21T00:00:00Z"])
        .arg("--config")
        .arg(config)
        .env("NO_COLOR", "1");
    cmd
}

#[test]
fn print_sql_and_dry_run_show_every_query_of_the_run_and_run_none() {
    let (_dir, config) = with_config(CONFIG);
    // No AWS environment at all: a query run would fail.
    let out = |command: &str, flag: &str| printed(&config, &[command, "--source", "athena", flag]);
    let analyze = out("analyze", "--print-sql");
    assert_eq!(out("analyze", "--dry-run"), analyze);
    // One statement, reading the table once: the date partitions of the day with 15 minutes of
    // slack, and the exact range; analyze evaluates no policies.
    once_each(
        &analyze,
        &[
            ";",
            "shop_logs",
            "\"date\" >= '2026/11/19'",
            "\"date\" <= '2026/11/21'",
            "timestamp >= 1795132800000",
            "timestamp < 1795219200000",
        ],
    );
    assert!(analyze.contains("filter(ARRAY[\n          0\n        ], p -> p IS NOT NULL)"));
    let propose = out("propose", "--print-sql");
    let shipped = 11;
    assert_eq!(propose.matches(';').count(), 1, "{propose}");
    assert_eq!(propose.matches("shop_logs").count(), 1, "{propose}");
    assert_eq!(propose.matches("timestamp < 1795219200000").count(), 1);
    // Each shipped policy is one conditional element of the request's policy array.
    assert!(
        propose.contains(&format!("THEN {shipped} END")),
        "{propose}"
    );
    assert!(propose.contains("row_number() OVER (PARTITION BY policy, scope, key, kind"));
    // `report --compare previous`: the day before in the same statement, one read of both days.
    let report = printed(
        &config,
        &[
            "report",
            "--source",
            "athena",
            "--print-sql",
            "--compare",
            "previous",
        ],
    );
    once_each(
        &report,
        &[
            ";",
            "shop_logs",
            "\"date\" >= '2026/11/18'",
            "\"date\" <= '2026/11/21'",
            "AND timestamp >= 1795046400000\n",
            "timestamp < 1795219200000",
            "CASE WHEN timestamp >= 1795046400000 AND timestamp < 1795132800000 THEN ARRAY[-1]",
        ],
    );
}

/// Asserts that each of `parts` occurs exactly once in `sql`.
fn once_each(sql: &str, parts: &[&str]) {
    for part in parts {
        assert_eq!(sql.matches(part).count(), 1, "{part}: {sql}");
    }
}

/// What `waftune ARGS` prints for the 2026-11-20 UTC day with `config` (ARGS with `--print-sql` or
/// `--dry-run`); no AWS endpoint is reachable, so no query could run.
fn printed(config: &std::path::Path, args: &[&str]) -> String {
    printed_offline(
        Command::cargo_bin("waftune")
            .unwrap()
            .args(args)
            .arg("--config")
            .arg(config)
            .args(["--since", "2026-11-20T00:00:00Z"])
            .args(["--until", "2026-11-21T00:00:00Z"]),
    )
}

/// A policy the queued results trip: 3 or more POSTs from one address.
const POLICY: &str = r#"
[[policy]]
name = "posts"
description = "many POSTs"
key = "ip"
[policy.match]
method = ["POST"]
[policy.thresholds]
requests = 3
[policy.action]
type = "block"
group = "blocklist"
duration = "1d"
"#;

#[tokio::test]
async fn analyze_and_propose_run_on_athena_through_the_aws_environment() {
    let moto = Moto::start().await;
    let (dir, config) = with_config(CONFIG);
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(policies.join("posts.toml"), POLICY).unwrap();
    // 2026-11-20T00:10Z is epoch minute 29918890.
    let minute = 29_918_890;
    let minutes = minute_rows(
        0,
        &[
            ("192.0.2.7", minute, 0, 4),
            ("192.0.2.7", minute + 1, 1, 0),
            ("198.51.100.1", minute, 2, 0),
        ],
    );
    let values = value_rows(&[
        (0, "192.0.2.7", "R", "Default_Action", 5),
        (0, "192.0.2.7", "C", "US", 5),
        (0, "192.0.2.7", "U", "/login", 5),
        (0, "192.0.2.7", "A", "python-requests/2.31", 5),
        (0, "198.51.100.1", "R", "Default_Action", 2),
        (0, "198.51.100.1", "C", "JP", 2),
        (0, "198.51.100.1", "U", "/", 2),
        (0, "198.51.100.1", "A", "Mozilla/5.0", 2),
    ]);
    // The policy's: only `propose` evaluates it.
    let matched_values = value_rows(&[
        (1, "192.0.2.7", "R", "Default_Action", 4),
        (1, "192.0.2.7", "U", "/login", 4),
        (1, "192.0.2.7", "A", "python-requests/2.31", 4),
    ]);

    queue_result(&moto, &scan_result(&[minutes.clone(), values.clone()]));
    let analyze = athena_run("analyze", &config)
        .args(["--format", "json", "--home-country", "JP"])
        .envs(moto.aws_env(REGION))
        .assert()
        .success()
        .stderr(contains("athena: 1 statement scanned"));
    let report: serde_json::Value = serde_json::from_slice(&analyze.get_output().stdout).unwrap();
    assert_eq!(report["records"], 7, "{report}");
    let top = &report["clients"][0];
    assert_eq!(
        (
            &top["ip"],
            &top["requests"],
            &top["peak_1m"],
            &top["peak_2m"]
        ),
        (&"192.0.2.7".into(), &5.into(), &4.into(), &5.into()),
        "{report}"
    );
    assert_eq!(top["top_uris"][0]["value"], "/login");
    assert_eq!(report["prefixes"][1]["ip"], "198.51.100.0/24");
    assert_eq!(
        (&report["geo"]["domestic"], &report["geo"]["overseas"]),
        (&2.into(), &5.into())
    );

    let matched = minute_rows(1, &[("192.0.2.7", minute, 0, 4)]);
    queue_result(
        &moto,
        &scan_result(&[minutes, values, matched_values, matched]),
    );
    athena_run("propose", &config)
        .args([
            "--now",
            "2026-11-21T00:05:00Z",
            "--init-ledger",
            "--policies",
        ])
        .arg(&policies)
        .envs(moto.aws_env(REGION))
        .assert()
        .success()
        .stderr(contains("athena: 1 statement scanned"))
        .stderr(contains("updated `"));
    let ledger = std::fs::read_to_string(dir.path().join("state/blocklist.toml")).unwrap();
    assert_eq!(
        ledger.lines().filter(|l| *l == "[[entry]]").count(),
        1,
        "{ledger}"
    );
    for line in [
        "cidr = \"192.0.2.7/32\"",
        "group = \"blocklist\"",
        "policy = \"posts\"",
        "expires = \"2026-11-22T00:05:00Z\"",
    ] {
        assert!(ledger.contains(line), "{line}: {ledger}");
    }
}

/// `report --compare previous` on Athena: both weeks' figures from one statement, with the
/// COUNT-mode matches and the geo split per hour its minute rows carry.
#[tokio::test]
async fn report_compare_runs_one_statement_on_athena() {
    let moto = Moto::start().await;
    let (_dir, config) = with_config(CONFIG);
    // 2026-11-20T00:10Z is epoch minute 29918890; the day before, 1440 minutes earlier.
    let (minute, before) = (29_918_890, 29_918_890 - 1440);
    queue_result(
        &moto,
        &scan_result(&[
            with_detail(minute_rows(0, &[("192.0.2.7", minute, 3, 4)]), &[(2, 0, 1)]),
            value_rows(&[(0, "192.0.2.7", "C", "US", 7)]),
            with_detail(
                minute_rows(
                    -1,
                    &[("192.0.2.7", before, 2, 0), ("198.51.100.1", before, 3, 0)],
                ),
                &[(0, 0, 0), (1, 0, 0)],
            ),
            value_rows(&[(-1, "198.51.100.1", "C", "JP", 3)]),
        ]),
    );
    let out = athena_run("report", &config)
        .args(["--compare", "previous", "--format", "json"])
        .args(["--now", "2026-11-21T00:05:00Z"])
        .envs(moto.aws_env(REGION))
        .assert()
        .success()
        .stderr(contains("athena: 1 statement scanned"));
    let report: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let overview = &report["overview"];
    assert_eq!(
        (
            &overview["current"]["requests"],
            &overview["current"]["actions"]["BLOCK"],
            &overview["previous"]["requests"],
            &overview["previous"]["distinct_clients"]
        ),
        (&7.into(), &4.into(), &5.into(), &2.into()),
        "{overview}"
    );
    assert_eq!(report["previous_period"]["since"], "2026-11-19T00:00:00Z");
    // No home country: every known country is overseas.
    let sum = |hourly: &serde_json::Value, series: &str| -> u64 {
        let values = hourly[series]
            .as_array()
            .unwrap_or_else(|| panic!("{series}"));
        values.iter().map(|v| v.as_u64().unwrap()).sum()
    };
    let (now, before) = (&overview["hourly"], &overview["previous_hourly"]);
    assert_eq!(
        ["counted", "domestic", "overseas", "unknown"].map(|s| sum(now, s)),
        [2, 0, 6, 1],
        "{overview}"
    );
    assert_eq!(sum(before, "counted"), 1, "{overview}");
    assert_eq!(report["notes"], serde_json::json!([]), "{report}");
}

#[test]
fn source_mistakes_are_named() {
    let (_dir, config) = with_config("scope = \"REGIONAL\"\n");
    Command::cargo_bin("waftune")
        .unwrap()
        .args(["analyze", "--source", "athena", "--print-sql", "--config"])
        .arg(&config)
        .assert()
        .failure()
        .stderr(contains("`--source athena` needs an `[athena]` section in"));
    Command::cargo_bin("waftune")
        .unwrap()
        .args(["analyze", "--logs", "x", "--print-sql"])
        .assert()
        .failure()
        .stderr(contains("`--print-sql` needs `--source athena`"));
    Command::cargo_bin("waftune")
        .unwrap()
        .args(["analyze", "--logs", "x", "--dry-run"])
        .assert()
        .failure()
        .stderr(contains("`--dry-run` needs `--source athena`"));
    Command::cargo_bin("waftune")
        .unwrap()
        .args(["analyze"])
        .assert()
        .failure()
        .stderr(contains("`--logs` is required"));
    // `athena rollup` needs a range, and a rollup table in the configuration.
    let (_dir, config) = with_config(CONFIG);
    let rollup = |args: &[&str]| {
        Command::cargo_bin("waftune")
            .unwrap()
            .args(["athena", "rollup", "--config"])
            .arg(&config)
            .args(args)
            .assert()
            .code(1)
    };
    rollup(&[]).stderr(contains(
        "`athena rollup` needs `--since`, and reads the Athena table: no `--logs` or `--strict`",
    ));
    rollup(&["--since", "7d"]).stderr(contains(
        "`athena rollup` needs `rollup = \"<table name>\"` in the `[athena]` section of",
    ));
}

#[tokio::test]
async fn rollup_command_creates_fills_and_then_skips_what_the_rollup_holds() {
    let moto = Moto::start().await;
    let (_dir, config) = with_config(&format!("{CONFIG}rollup = \"waf_rollup\"\n"));
    let rollup = |extra: &[&str]| {
        let mut cmd = Command::cargo_bin("waftune").unwrap();
        cmd.args(["athena", "rollup", "--config"])
            .arg(&config)
            .args([
                "--since",
                "2026-11-20T00:00:00Z",
                "--until",
                "2026-11-21T00:00:00Z",
            ])
            .args(["--now", "2026-11-21T01:00:00Z"])
            .args(extra)
            .env("NO_COLOR", "1")
            .envs(moto.aws_env(REGION));
        cmd
    };
    // The shipped policies (the configuration has no rules for the report's own), each matcher once.
    let shipped = waftune::policy::load_dir(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"),
        None,
    )
    .unwrap()
    .policies
    .policies;
    let fingerprints =
        waftune::athena::rollup::unique(&waftune::athena::rollup::fingerprints(&shipped));

    // Nothing held yet: create (its empty result first), then fill the day in one chunk.
    queue_result(&moto, &vec![text(&["created"])]);
    queue_result(&moto, &vec![text(&["hour", "policies"])]);
    rollup(&["--location", "s3://rollup-bucket/waf/"])
        .assert()
        .success()
        .stdout(contains(format!(
            "rollup `waf_rollup`: 24 closed hours from 2026-11-20T00:00:00Z to \
             2026-11-21T00:00:00Z, 0 held, 24 filled for {} policies; 5 statements scanned",
            fingerprints.len() - 1
        )));
    // Everything held: only the coverage query runs.
    let mut held = vec![text(&["hour", "policies"])];
    let h0 = 1_795_132_800_000 / waftune::athena::rollup::HOUR_MS;
    held.extend((h0..h0 + 24).map(|h| text(&[h.to_string(), fingerprints.len().to_string()])));
    queue_result(&moto, &held);
    rollup(&[])
        .assert()
        .success()
        .stdout(contains("24 held, 0 filled").and(contains("; 1 statements scanned")));
    // `--print-sql` runs nothing: the fill statements of every closed hour.
    let printed = printed_offline(&mut rollup(&["--print-sql"]));
    assert_eq!(printed.matches("DELETE FROM waf_rollup").count(), 1);
    assert_eq!(printed.matches("FROM shop_logs").count(), 1);

    // A run over the closed day reads only the rollup: no byte of the raw table.
    let analyze = athena_run("analyze", &config)
        .args(["--print-sql", "--now", "2026-11-21T01:00:00Z"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let analyze = String::from_utf8(analyze).unwrap();
    assert_eq!(analyze.matches("FROM waf_rollup").count(), 1, "{analyze}");
    assert!(!analyze.contains("shop_logs"), "{analyze}");
}

/// `athena rollup` fills what `rate promote` counts (a counting rate rule's COUNT-mode matches),
/// so a promote over closed hours reads only the rollup, in one statement.
#[test]
fn rollup_fills_what_rate_promote_counts() {
    let (_dir, config) = with_config(&format!(
        "{CONFIG}rollup = \"waf_rollup\"\n\n[[web_acl]]\nname = \"shop-prod\"\n\n\
         [[web_acl.rate_rule]]\nname = \"waftune-rate-all\"\npriority = 20\n\
         limit = \"recommended\"\nwindow = \"5m\"\nscope = [\"all\"]\naction = \"count\"\n"
    ));
    let now = "--now=2026-11-21T01:00:00Z";
    let matches = waftune::rate::count_matches_policy("waftune-rate-all");
    let fill = printed(&config, &["athena", "rollup", "--print-sql", now]);
    assert!(
        fill.contains(&waftune::athena::rollup::fingerprint(Some(&matches))),
        "{fill}"
    );
    let promote = printed(
        &config,
        &[
            "rate",
            "promote",
            "waftune-rate-all",
            "--source",
            "athena",
            "--print-sql",
            now,
        ],
    );
    once_each(&promote, &[";", "FROM waf_rollup"]);
    assert!(!promote.contains("shop_logs"), "{promote}");
}
