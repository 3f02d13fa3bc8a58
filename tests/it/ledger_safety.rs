//! The ledger and its allowlist under real use: concurrent writers, other working directories,
//! missing files, ranges that would fail every plan, and errors said once.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use waftune::ledger::Ledger;

const CONFIG: &str = r#"region = "ap-northeast-1"
scope = "REGIONAL"
allowlist = ["192.0.2.0/24"]

[[ip_set_group]]
name = "blocklist"
ipv4_set_name = "waftune-blocklist-v4"
ipv6_set_name = "waftune-blocklist-v6"

[[web_acl]]
name = "shop-prod"

[[web_acl.rule]]
name = "waftune-blocklist"
group = "blocklist"
priority = 5
action = "block"
"#;

const POLICY_ALLOW: &str = "[[allow]]\ncidr = [\"203.0.113.0/24\"]\ncomment = \"partner\"\n";

/// A repository: `waftune.toml`, `policies/` with an allowlist, and (if `ledger`) an empty ledger.
fn repo(ledger: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("waftune.toml"), CONFIG).unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/allow.toml"), POLICY_ALLOW).unwrap();
    if ledger {
        Ledger::default()
            .save(&dir.path().join("state/blocklist.toml"))
            .unwrap();
    }
    dir
}

fn ledger_path(dir: &Path) -> PathBuf {
    dir.join("state/blocklist.toml")
}

fn ledger(dir: &Path) -> Ledger {
    Ledger::load(&ledger_path(dir), false).unwrap()
}

fn waftune(cwd: &Path) -> Command {
    let mut cmd = Command::cargo_bin("waftune").unwrap();
    cmd.current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("WAFTUNE_CONFIG");
    cmd
}

fn bundled(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(file)
}

#[test]
fn twenty_parallel_blocks_keep_every_entry() {
    let dir = repo(true);
    let bin = assert_cmd::cargo::cargo_bin("waftune");
    let children: Vec<_> = (0..20)
        .map(|i| {
            // Reasons of different lengths: a torn write would leave an unparseable file.
            let reason = format!("abuse report {i} {}", "x".repeat(i * 37));
            std::process::Command::new(&bin)
                .current_dir(dir.path())
                .env_remove("WAFTUNE_CONFIG")
                .args(["block", &format!("198.51.100.{i}"), "--reason", &reason])
                .output_spawn()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let l = ledger(dir.path());
    let mut blocked: Vec<String> = l.entries.iter().map(|e| e.cidr.to_string()).collect();
    blocked.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("198.51.100.{i}/32")).collect();
    expected.sort();
    assert_eq!(blocked, expected);
    // Only the ledger and its lock are left: every writer's temporary file was renamed.
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("state"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, [".blocklist.toml.lock", "blocklist.toml"]);
}

/// `spawn` with captured output, for running children side by side.
trait OutputSpawn {
    fn output_spawn(&mut self) -> std::process::Child;
}

impl OutputSpawn for std::process::Command {
    fn output_spawn(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }
}

/// `waftune block CIDR --reason x EXTRA...` from `cwd`.
fn block(cwd: &Path, cidr: &str, extra: &[&str]) -> assert_cmd::assert::Assert {
    waftune(cwd)
        .args(["block", cidr, "--reason", "x"])
        .args(extra)
        .assert()
}

/// The same, refused with an error containing `message`.
fn block_refused(cwd: &Path, cidr: &str, extra: &[&str], message: &str) {
    block(cwd, cidr, extra)
        .code(1)
        .stderr(predicate::str::contains(message));
}

const PARTNER: &str = "overlaps allowlisted `203.0.113.0/24`";

#[test]
fn the_config_and_its_policies_are_found_from_any_directory() {
    let dir = repo(true);
    let deep = dir.path().join("docs/notes");
    std::fs::create_dir_all(&deep).unwrap();
    // The policies' allowlist applies from a subdirectory, where `policies/` is not.
    block(&deep, "203.0.113.9", &[]).code(1).stderr(
        "error: `203.0.113.9/32` overlaps allowlisted `203.0.113.0/24`; pass `--force` to block it anyway\n",
    );
    block(&deep, "198.51.100.0/24", &[]).success();
    // WAFTUNE_CONFIG from anywhere else; its ledger and policies are next to it.
    let elsewhere = tempfile::tempdir().unwrap();
    let from_elsewhere = |args: &[&str]| {
        waftune(elsewhere.path())
            .env("WAFTUNE_CONFIG", dir.path().join("waftune.toml"))
            .args(args)
            .assert()
    };
    from_elsewhere(&["block", "203.0.113.9", "--reason", "x"])
        .code(1)
        .stderr(predicate::str::contains(PARTNER));
    from_elsewhere(&["unblock", "198.51.100.0/24"]).success();
    assert!(ledger(dir.path()).entries.is_empty());
    block_refused(
        elsewhere.path(),
        "198.51.100.0/24",
        &[],
        "error: no `waftune.toml` in `",
    );
}

#[test]
fn a_missing_policies_directory_is_an_error_for_every_command_using_the_allowlist() {
    let dir = repo(true);
    std::fs::remove_dir_all(dir.path().join("policies")).unwrap();
    let snapshot = bundled("examples/live-snapshot.json");
    let snapshot = snapshot.to_str().unwrap();
    let logs = bundled("examples/sample-logs/AWSLogs");
    let logs = logs.to_str().unwrap();
    for args in [
        vec!["block", "198.51.100.7", "--reason", "x"],
        vec!["propose", "--logs", logs, "--dry-run"],
        vec!["plan", "--live", snapshot],
        vec!["apply", "plan.json"],
    ] {
        waftune(dir.path())
            .args(&args)
            .assert()
            .code(1)
            .stderr(predicate::str::starts_with(
                "error: policies `policies` not found: waftune needs them for their allowlist.",
            ));
    }
    assert!(ledger(dir.path()).entries.is_empty());
    // `--policies` is relative to the current directory, as every argument is ...
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::write(dir.path().join("rules/allow.toml"), POLICY_ALLOW).unwrap();
    let state = dir.path().join("state");
    block_refused(&state, "203.0.113.7", &["--policies", "../rules"], PARTNER);
    block(dir.path(), "198.51.100.7", &["--policies", "rules"]).success();
    // ... and the configuration's `policies` key relative to the file.
    let config = CONFIG.replace("scope =", "policies = \"rules\"\nscope =");
    std::fs::write(dir.path().join("waftune.toml"), config).unwrap();
    block_refused(&state, "203.0.113.7", &[], PARTNER);
    block(&state, "198.51.100.8", &[]).success();
    assert_eq!(ledger(dir.path()).entries.len(), 2);
}

#[test]
fn a_missing_ledger_is_an_error_unless_a_first_run() {
    let dir = repo(false);
    block(dir.path(), "198.51.100.7", &[]).code(1).stderr(
        "error: ledger `state/blocklist.toml` does not exist: restore it from your repository, \
         or pass `--init-ledger` to start a new, empty one (a first run)\n",
    );
    waftune(dir.path())
        .args(["unblock", "198.51.100.7"])
        .assert()
        .code(1);
    assert!(!ledger_path(dir.path()).exists());
    // The plan refuses while waftune's sets exist (they do in the bundled snapshot) ...
    let snapshot = bundled("examples/live-snapshot.json");
    waftune(dir.path())
        .args(["plan", "--live"])
        .arg(&snapshot)
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains(
            "error: ledger `state/blocklist.toml` does not exist, but IP sets waftune writes do \
             (`waftune-blocklist-v4`, `waftune-blocklist-v6`): a plan from no ledger would remove \
             every entry from them.",
        ));
    // ... and plans a first run, before they exist, from no ledger.
    let mut live: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&snapshot).unwrap()).unwrap();
    live["managed_ip_sets"] = serde_json::json!([]);
    live["ip_sets"] = serde_json::json!([]);
    let first = dir.path().join("first-run.json");
    std::fs::write(&first, live.to_string()).unwrap();
    waftune(dir.path())
        .args(["plan", "--live"])
        .arg(&first)
        .assert()
        .success()
        .stdout(predicate::str::contains("waftune-blocklist-v4"));
    // The user says so: the ledger is created.
    block(dir.path(), "198.51.100.7", &["--init-ledger"]).success();
    assert_eq!(ledger(dir.path()).entries.len(), 1);
}

#[test]
fn block_refuses_broad_ranges_and_stores_mapped_addresses_as_ipv4() {
    let dir = repo(true);
    for broad in ["10.0.0.0/8", "0.0.0.0/1", "2001:db8::/31"] {
        let message = format!("`{broad}` is broader than");
        block_refused(dir.path(), broad, &["--force"], &message);
    }
    assert!(ledger(dir.path()).entries.is_empty());
    // The allowlist sees a mapped address as the IPv4 address it is.
    let office = "`192.0.2.10/32` overlaps allowlisted `192.0.2.0/24`";
    block_refused(dir.path(), "::ffff:192.0.2.10", &[], office);
    block(dir.path(), "::ffff:198.51.100.7", &[]).success();
    let cidrs: Vec<String> = ledger(dir.path())
        .entries
        .iter()
        .map(|e| e.cidr.to_string())
        .collect();
    assert_eq!(cidrs, ["198.51.100.7/32"]);
}

#[test]
fn errors_say_each_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    waftune(dir.path())
        .args([
            "block",
            "198.51.100.7",
            "--reason",
            "x",
            "-c",
            "missing.toml",
        ])
        .assert()
        .code(1)
        .stderr(
            "error: cannot read config `missing.toml`: No such file or directory (os error 2)\n",
        );
}
