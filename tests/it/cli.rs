//! Whole CLI runs: exact user-facing output, exit codes, stdout/stderr discipline.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;

const SAMPLE: &str = "examples/sample-logs/AWSLogs";

pub(crate) fn waftune() -> Command {
    let mut cmd = Command::cargo_bin("waftune").unwrap();
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env_remove("WAFTUNE_CONFIG");
    cmd
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.assert().success().get_output().stdout.clone();
    String::from_utf8(out).unwrap()
}

#[test]
fn analyze_sample_table() {
    let out = stdout_of(waftune().args([
        "analyze",
        "--logs",
        SAMPLE,
        "--home-country",
        "JP",
        "--top",
        "8",
    ]));
    insta::assert_snapshot!(out);
}

#[test]
fn analyze_sample_markdown() {
    let out = stdout_of(waftune().args([
        "analyze",
        "--logs",
        SAMPLE,
        "--home-country",
        "JP",
        "--top",
        "3",
        "--format",
        "markdown",
    ]));
    insta::assert_snapshot!(out);
}

#[test]
fn analyze_json_has_the_documented_schema() {
    let out = stdout_of(waftune().args([
        "analyze",
        "--logs",
        SAMPLE,
        "--home-country",
        "jp",
        "--format",
        "json",
        "--top",
        "2",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["records"], 45_000);
    assert_eq!(v["malformed"], 0);
    assert_eq!(v["geo"]["home_country"], "JP");
    let c = &v["clients"][0];
    for key in [
        "ip",
        "requests",
        "peak_1m",
        "peak_2m",
        "peak_5m",
        "peak_10m",
        "peak_5m_at",
        "actions",
        "first_seen",
        "last_seen",
        "distinct_uris",
        "verified_bot",
        "top_uris",
        "user_agents",
    ] {
        assert!(c.get(key).is_some(), "client row lacks `{key}`");
    }
    assert!(c["peak_5m"].as_u64().unwrap() >= c["peak_1m"].as_u64().unwrap());
    assert_eq!(v["clients"].as_array().unwrap().len(), 2);
}

#[test]
fn reads_stdin() {
    let line = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/public-waf-logs/otel-collector-contrib.jsonl"),
    )
    .unwrap();
    let out = stdout_of(
        waftune()
            .args(["analyze", "--logs", "-", "--format", "json"])
            .write_stdin(line),
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["records"], 2);
}

#[test]
fn malformed_input_warns_on_stderr_and_strict_fails() {
    let file = "tests/fixtures/malformed/mixed.jsonl";
    waftune()
        .args(["analyze", "--logs", file, "--format", "json"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "warning: 3 malformed input items (first 3 shown)",
        ))
        .stderr(predicate::str::contains("mixed.jsonl:4: "));
    waftune()
        .args(["analyze", "--logs", file, "--strict"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains(
            "error: 3 malformed input items and `--strict` was given",
        ));
}

/// A configuration and a ledger with several mistakes: every one is printed the way policy
/// mistakes are (file, line, column, message, help), then one error line with the count.
#[test]
fn every_mistake_in_config_and_ledger_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("waftune.toml");
    std::fs::write(
        &config,
        "scope = \"REGIONAL\"\nhome_country = \"jp\"\nallowlist = [\"192.0.2.1/24\"]\n",
    )
    .unwrap();
    let c = config.to_str().unwrap();
    waftune()
        .args(["block", "-c", c, "192.0.2.0/24", "--reason", "x"])
        .assert()
        .code(1)
        .stderr(format!(
            "{c}:2:16: error: home_country `jp` is not an ISO 3166 alpha-2 code (two capital letters, like `JP`)\n\
             {c}:3:14: error: allowlist: `192.0.2.1/24` is not a network address; did you mean `192.0.2.0/24`?\n\
             error: 2 errors in configuration `{c}`\n"
        ));
    std::fs::write(
        &config,
        "scope = \"REGIONAL\"\nledger = \"ledger.toml\"\n[[ip_set_group]]\nname = \"g\"\n\
         ipv4_set_name = \"g-v4\"\nipv6_set_name = \"g-v6\"\n",
    )
    .unwrap();
    let entry = |cidr: &str, group: &str| {
        format!(
            "[[entry]]\ncidr = \"{cidr}\"\ngroup = \"{group}\"\npolicy = \"manual\"\nreason = \"x\"\n\
             first_seen = \"2026-11-20T00:00:00Z\"\nlast_seen = \"2026-11-20T00:00:00Z\"\n\
             added = \"2026-11-20T00:00:00Z\"\nstrikes = 1\n\n"
        )
    };
    let ledger = dir.path().join("ledger.toml");
    std::fs::write(
        &ledger,
        entry("192.0.2.1/24", "g") + &entry("0.0.0.0/0", "g"),
    )
    .unwrap();
    let l = ledger.to_str().unwrap();
    // The policies must exist (their allowlist guards every block): an allowlist alone is enough here.
    let policies = dir.path().join("allow.toml");
    std::fs::write(
        &policies,
        "[[allow]]\ncidr = \"192.0.2.0/24\"\ncomment = \"office\"\n",
    )
    .unwrap();
    waftune()
        .args(["block", "-c", c, "198.51.100.0/24", "--reason", "x"])
        .arg("--policies")
        .arg(&policies)
        .assert()
        .code(1)
        .stderr(format!(
            "{l}:1:1: error: entry for `192.0.2.1/24` in group `g`: not a network address\n  \
             help: did you mean `192.0.2.0/24`?\n\
             {l}:11:1: error: entry for `0.0.0.0/0` in group `g`: a /0 range would block everyone\n\
             error: 2 errors in ledger `{l}`\n"
        ));
}

#[test]
fn bad_arguments_name_the_value() {
    waftune()
        .args(["analyze", "--logs", "no/such/dir"])
        .assert()
        .code(1)
        .stderr("error: log path `no/such/dir` does not exist\n");
    waftune()
        .args(["analyze", "--logs", SAMPLE, "--since", "last tuesday"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("invalid time `last tuesday`"));
    waftune()
        .args([
            "analyze",
            "--logs",
            SAMPLE,
            "--since",
            "2026-11-21",
            "--until",
            "2026-11-20",
        ])
        .assert()
        .code(1)
        .stderr(
            "error: `--since 2026-11-21T00:00:00Z` is not before `--until 2026-11-20T00:00:00Z`\n",
        );
}

#[test]
fn plan_against_the_bundled_snapshot_is_stable() {
    let plan = [
        "plan",
        "--config",
        "examples/waftune.toml",
        "--live",
        "examples/live-snapshot.json",
        "--now",
        "2026-11-20T02:00:00Z",
        "--detailed-exitcode",
    ];
    // The example's rate rule takes its limit from the logs: without them, the plan names the rule.
    waftune()
        .args(plan)
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains(
            "rate rule `waftune-rate-overseas` in web ACL `shop-prod` has `limit = \"recommended\"`",
        ))
        .stderr(predicate::str::contains("plan --logs PATH"));
    let out = waftune()
        .args(plan)
        .args(["--logs", "examples/sample-logs/AWSLogs"])
        .assert()
        .code(2)
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("Plan: 0 to add, 3 to change, 0 to destroy."),
        "{out}"
    );
    assert!(!out.contains("\x1b["), "NO_COLOR honoured");
    // The unmanaged AWS rule group is priced by AWS (704 in the snapshot), waftune's rule locally.
    assert!(out.contains("capacity: 704 -> 708 WCU of 5000"), "{out}");
    assert!(
        out.contains("rule \"waftune-rate-overseas\" will be added:"),
        "{out}"
    );
    assert!(
        out.contains("# limit recommended from 45000 records") && out.contains("= 740;"),
        "{out}"
    );
    assert!(out.contains("\"Limit\": 740,"), "{out}");
}
