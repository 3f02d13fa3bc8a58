//! `waftune athena ddl`.

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
