//! `waftune rate` on the bundled sample, whose actors are known (`examples/sample-logs/truth.json`).

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

const SAMPLE: &str = "examples/sample-logs/AWSLogs";
const CURL_SCRAPER: &str = "95.216.250.252";
const PYTHON_SCRAPER: &str = "104.248.37.112";
const HEADLESS_SCRAPER: &str = "8.219.162.147";
/// The busiest Googlebot address of the extreme episode (01:08Z-01:27Z).
const GOOGLEBOT: &str = "66.249.64.47";

fn waftune() -> Command {
    let mut cmd = Command::cargo_bin("waftune").unwrap();
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env_remove("WAFTUNE_CONFIG");
    cmd
}

fn json_of(args: &[&str]) -> Value {
    let out = waftune()
        .args(["rate"])
        .args(args)
        .args(["--logs", SAMPLE, "--home-country", "JP", "--format", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap()
}

fn limited<'a>(backtest: &'a Value, ip: &str) -> Option<&'a Value> {
    backtest["limited"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client"] == ip)
}

fn class<'a>(backtest: &'a Value, name: &str) -> &'a Value {
    backtest["by_class"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["class"] == name)
        .unwrap()
}

#[test]
fn recommend_sample_singles_out_scrapers_and_shows_googlebot() {
    let recs = json_of(&["recommend", "--window", "5m", "--scope", "all"]);
    let r = &recs[0];
    // p95 of per-client 5-minute peaks is 49; x3 = 147, rounded up to 150.
    assert_eq!(r["percentiles"]["p95"], 49);
    assert_eq!(r["recommended"], 150);
    let b = &r["backtest"];
    assert_eq!(b["clients"], 777);
    // The scrapers are the most limited clients.
    let top: Vec<&str> = b["limited"].as_array().unwrap()[..2]
        .iter()
        .map(|c| c["client"].as_str().unwrap())
        .collect();
    assert_eq!(top, [CURL_SCRAPER, PYTHON_SCRAPER]);
    assert!(limited(b, HEADLESS_SCRAPER).is_some());
    // Googlebot's episode would be limited: shown as a verified crawler, the false positive to see.
    let g = limited(b, GOOGLEBOT).unwrap();
    assert_eq!(g["class"], "verified_crawler");
    assert!(g["episodes"][0]["first_minute"].as_str().unwrap() >= "2026-11-20T01:08Z");
    assert!(g["episodes"][0]["first_minute"].as_str().unwrap() <= "2026-11-20T01:27Z");
    // No home-country user reaches it.
    assert_eq!(class(b, "home")["clients"], 0);
}

#[test]
fn recommend_per_scope() {
    let recs = json_of(&[
        "recommend",
        "--window",
        "1m",
        "--scope",
        "all",
        "--scope",
        "overseas",
        "--scope",
        "path:/login",
    ]);
    let scopes: Vec<&str> = recs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["backtest"]["scope"].as_str().unwrap())
        .collect();
    assert_eq!(scopes, ["all", "overseas", "path:/login"]);
    assert_eq!(recs[0]["recommended"], 60);
    // Logins are rare per client: the minimum limit of 10 applies.
    assert_eq!(recs[2]["recommended"], 10);
    assert!(recs[1]["backtest"]["clients"].as_u64().unwrap() < 777);
}

#[test]
fn recommend_without_verified_crawlers_limits_none_of_them() {
    let recs = json_of(&[
        "recommend",
        "--scope",
        "not-label:awswaf:managed:aws:bot-control:bot:verified",
    ]);
    let b = &recs[0]["backtest"];
    assert_eq!(recs[0]["recommended"], 140);
    assert_eq!(class(b, "verified_crawler")["clients"], 0);
    assert_eq!(b["limited"][0]["client"], CURL_SCRAPER);
}

#[test]
fn backtest_sample_limit_100_per_minute() {
    let b = json_of(&["backtest", "--limit", "100", "--window", "60"]);
    assert_eq!(b["window"], "1m");
    assert_eq!(b["limited_clients"], 6);
    assert_eq!(b["limited_requests"], 3353);
    assert_eq!(b["limited"][0]["client"], CURL_SCRAPER);
    // 494 in its busiest minute: 394 beyond the limit there.
    assert_eq!(b["limited"][0]["peak"], 494);
    assert_eq!(class(&b, "verified_crawler")["clients"], 0);
    assert_eq!(class(&b, "home")["clients"], 0);
}

#[test]
fn backtest_table_and_markdown() {
    waftune()
        .args(["rate", "backtest", "--logs", SAMPLE, "--home-country", "JP"])
        .args(["--limit", "100", "--window", "1m", "--top", "2"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "6 of 777 clients limited, 3,353 of 45,000 requests (7.5%)",
        ))
        .stdout(predicate::str::contains(CURL_SCRAPER))
        .stdout(predicate::str::contains("... and 4 more clients"));
    waftune()
        .args([
            "rate",
            "recommend",
            "--logs",
            SAMPLE,
            "--format",
            "markdown",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("| scope"));
}

#[test]
fn rate_errors_name_the_value() {
    waftune()
        .args(["rate", "backtest", "--logs", SAMPLE, "--limit", "5"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "limit `5` is below WAF's minimum of 10",
        ));
    waftune()
        .args(["rate", "recommend", "--logs", SAMPLE, "--scope", "overseas"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("needs a home country"));
    waftune()
        .args(["rate", "recommend", "--logs", SAMPLE, "--window", "3m"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("`3m` is not a WAF window"));
    waftune()
        .args(["rate", "recommend", "--logs", SAMPLE, "--scope", "host:x"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("unknown scope `host:x`"));
}

/// A configuration whose rate rule has the name of the sample's COUNT-mode login rule.
const WATCH_LOGIN: &str = r#"scope = "REGIONAL"
home_country = "JP"

[[web_acl]]
name = "shop"

# Watch login bursts first; promote when the logs agree.
[[web_acl.rate_rule]]
name = "waftune-watch-login"
priority = 3
limit = 100
scope = ["path:/login", "method:POST"]
action = "count"   # promoted by `waftune rate promote`
"#;

#[test]
fn promote_needs_the_period_then_shows_who_and_writes_only_the_action() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("waftune.toml");
    std::fs::write(&config, WATCH_LOGIN).unwrap();
    let promote = |extra: &[&str]| {
        let mut cmd = waftune();
        cmd.args([
            "rate",
            "promote",
            "waftune-watch-login",
            "--logs",
            SAMPLE,
            "-c",
        ])
        .arg(&config)
        .args(extra);
        cmd
    };
    // Two hours of logs are not the default week.
    promote(&[])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains(
            "the logs cover 1h 59m, less than the 7d 0h asked for (`--min-period`)",
        ));
    promote(&["--min-period", "1h", "--top", "3"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "the rule matched 2,709 requests from 226 clients in COUNT mode",
        ))
        // The sample's rule counts every login POST: customers would be blocked too, and it says so.
        .stdout(predicate::str::contains(
            "warning: 189 clients mostly from the home country (likely customers) would have been blocked",
        ))
        .stdout(predicate::str::contains(
            "-action = \"count\"   # promoted by `waftune rate promote`\n+action = \"block\"   # promoted by `waftune rate promote`",
        ))
        .stderr(predicate::str::contains("rerun with `--write`"));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), WATCH_LOGIN);

    let json: Value = serde_json::from_slice(
        &promote(&["--min-period", "1h", "--format", "json"])
            .assert()
            .success()
            .get_output()
            .stdout,
    )
    .unwrap();
    assert_eq!(json["limited_requests"], 2709);
    assert_eq!(class(&json, "overseas")["clients"], 37);

    promote(&["--min-period", "1h", "--write"])
        .assert()
        .success();
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        WATCH_LOGIN.replace("action = \"count\"", "action = \"block\"")
    );
    promote(&["--min-period", "1h"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "rate rule `waftune-watch-login` already blocks",
        ));
    waftune()
        .args(["rate", "promote", "nope", "--logs", SAMPLE, "-c"])
        .arg(&config)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "rate rule `nope` is not in the configuration",
        ));
}

#[test]
fn rate_commands_query_athena_with_the_scope_as_sql() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("waftune.toml");
    std::fs::write(
        &config,
        format!("{WATCH_LOGIN}[athena]\ndatabase = \"waf\"\ntable = \"shop_logs\"\n"),
    )
    .unwrap();
    let sql = |args: &[&str]| {
        crate::common::athena::printed_offline(
            waftune()
                .arg("rate")
                .args(args)
                .args(["--source", "athena", "--print-sql", "--home-country", "JP"])
                .args([
                    "--since",
                    "2026-11-20T00:00:00Z",
                    "--until",
                    "2026-11-21T00:00:00Z",
                    "-c",
                ])
                .arg(&config),
        )
    };
    let recommend = sql(&["recommend", "--scope", "overseas", "--scope", "path:/login"]);
    assert!(recommend.contains("NOT IN ('JP', '-')"), "{recommend}");
    assert!(
        recommend.contains("AND timestamp < 1795219200000"),
        "{recommend}"
    );
    let backtest = sql(&["backtest", "--limit", "100", "--scope", "method:POST"]);
    assert!(backtest.contains("'POST'"), "{backtest}");
    // Promote counts the rule's COUNT-mode matches, in the web ACL or inside rule groups.
    let promote = sql(&["promote", "waftune-watch-login"]);
    assert!(
        promote.contains("watch") && promote.contains("login"),
        "{promote}"
    );
    assert!(promote.contains("nonterminatingmatchingrules"), "{promote}");
    // Each one statement, reading the table once.
    for sql in [&recommend, &backtest, &promote] {
        assert_eq!(sql.matches(';').count(), 1, "{sql}");
        assert_eq!(sql.matches("shop_logs").count(), 1, "{sql}");
    }
}

#[test]
fn backtest_a_configured_rule_with_its_recommended_limit() {
    waftune()
        .args(["rate", "backtest", "--rule", "waftune-rate-overseas"])
        .args(["-c", "examples/waftune.toml", "--logs", SAMPLE, "--top", "3"])
        .assert()
        .success()
        // The example's rule: overseas without verified crawlers, 5m, limit recommended (as plan does).
        .stdout(predicate::str::contains(
            "Backtest: 740 requests per 5m in scope `overseas and not-label:awswaf:managed:aws:bot-control:bot:verified`",
        ))
        .stdout(predicate::str::contains("3 of 145 clients limited, 2,220 of 15,437 requests"))
        .stdout(predicate::str::contains(CURL_SCRAPER))
        .stdout(predicate::str::contains(PYTHON_SCRAPER))
        .stdout(predicate::str::contains(HEADLESS_SCRAPER));
    waftune()
        .args([
            "rate",
            "backtest",
            "--rule",
            "waftune-rate-overseas",
            "--limit",
            "50",
        ])
        .args(["--logs", SAMPLE])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "'--rule <NAME>' cannot be used with '--limit <LIMIT>'",
        ));
}
