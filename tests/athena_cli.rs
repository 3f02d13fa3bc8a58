//! `waftune athena ddl`, and `--source athena` as far as it runs without AWS.

use assert_cmd::Command;
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
}

fn with_config(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("waftune.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn print_sql_shows_every_query_of_the_run_and_runs_none() {
    let (_dir, config) =
        with_config("scope = \"REGIONAL\"\n[athena]\ndatabase = \"waf\"\ntable = \"shop_logs\"\n");
    let run = |command: &str| {
        Command::cargo_bin("waftune")
            .unwrap()
            .args([command, "--source", "athena", "--print-sql", "--since"])
            .args(["2026-11-20T00:00:00Z", "--until", "2026-11-21T00:00:00Z"])
            .arg("--config")
            .arg(&config)
            .assert()
            .success()
    };
    let out = run("analyze").get_output().stdout.clone();
    let out = String::from_utf8(out).unwrap();
    // Per client and minute, then the values; analyze evaluates no policies.
    assert_eq!(out.matches("FROM shop_logs").count(), 2, "{out}");
    assert!(out.contains("log_time >= '2026/11/19/23/45'"), "{out}");
    run("propose")
        .stdout(contains("CROSS JOIN UNNEST(vs) AS t(v)"))
        .stdout(contains("CASE WHEN "));
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
        .args(["analyze"])
        .assert()
        .failure()
        .stderr(contains("`--logs` is required"));
}
