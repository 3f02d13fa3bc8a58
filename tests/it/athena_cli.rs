//! `waftune athena ddl`; `--source athena` printing its queries; and `analyze` and `propose`
//! end to end against moto through the AWS environment, on result sets queued into moto.

use crate::common;

use assert_cmd::Command;
use common::athena::{REGION, minute_result, queue_result, value_result};
use common::moto::Moto;
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
    let out = |command: &str, flag: &str| {
        let out = athena_run(command, &config)
            .arg(flag)
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        String::from_utf8(out).unwrap()
    };
    let analyze = out("analyze", "--print-sql");
    assert_eq!(out("analyze", "--dry-run"), analyze);
    // Per client and minute, then the values; analyze evaluates no policies. Each reads the date
    // partitions of the day with 15 minutes of slack, and the exact range.
    assert_eq!(analyze.matches("FROM shop_logs").count(), 2, "{analyze}");
    for filter in [
        "\"date\" >= '2026/11/19'",
        "\"date\" <= '2026/11/21'",
        "timestamp >= 1795132800000",
        "timestamp < 1795219200000",
    ] {
        assert_eq!(analyze.matches(filter).count(), 2, "{filter}: {analyze}");
    }
    let propose = out("propose", "--print-sql");
    let shipped = 11;
    assert_eq!(
        propose.matches("FROM shop_logs").count(),
        2 + shipped,
        "{propose}"
    );
    assert_eq!(
        propose.matches("timestamp < 1795219200000").count(),
        2 + shipped
    );
    assert!(propose.contains("row_number() OVER (PARTITION BY policy, scope, key, kind"));
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
    let minutes = minute_result(&[
        ("192.0.2.7", minute, 0, 4),
        ("192.0.2.7", minute + 1, 1, 0),
        ("198.51.100.1", minute, 2, 0),
    ]);
    let values = value_result(&[
        (0, "192.0.2.7", "R", "Default_Action", 5),
        (0, "192.0.2.7", "C", "US", 5),
        (0, "192.0.2.7", "U", "/login", 5),
        (0, "192.0.2.7", "A", "python-requests/2.31", 5),
        (0, "198.51.100.1", "R", "Default_Action", 2),
        (0, "198.51.100.1", "C", "JP", 2),
        (0, "198.51.100.1", "U", "/", 2),
        (0, "198.51.100.1", "A", "Mozilla/5.0", 2),
        (1, "192.0.2.7", "R", "Default_Action", 4),
        (1, "192.0.2.7", "U", "/login", 4),
        (1, "192.0.2.7", "A", "python-requests/2.31", 4),
    ]);

    queue_result(&moto, &minutes);
    queue_result(&moto, &values);
    let analyze = athena_run("analyze", &config)
        .args(["--format", "json", "--home-country", "JP"])
        .envs(moto.aws_env(REGION))
        .assert()
        .success()
        .stderr(contains("athena: 2 queries scanned"));
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

    queue_result(&moto, &minutes);
    queue_result(&moto, &values);
    queue_result(&moto, &minute_result(&[("192.0.2.7", minute, 0, 4)]));
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
        .stderr(contains("athena: 3 queries scanned"))
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
}
