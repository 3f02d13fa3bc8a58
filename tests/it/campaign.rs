//! `propose --report` and `--evidence` on a generated volume whose findings overflowed the old
//! one-file report (102 KB for these four hours): the summary stays within GitHub's limit, says what
//! it left out, and the evidence file holds every finding exactly once.

use std::path::Path;

use assert_cmd::Command;
use waftune_generate::{GenerateOptions, generate};

const BUDGET: usize = 60_000;

fn propose(logs: &Path, out: &Path) -> serde_json::Value {
    let output = Command::cargo_bin("waftune")
        .unwrap()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .args(["propose", "-c", "examples/waftune.toml", "--logs"])
        .arg(logs)
        .args([
            "--now",
            "2026-11-21T00:00:00Z",
            "--dry-run",
            "--format",
            "json",
        ])
        .arg("--report")
        .arg(out.join("body.md"))
        .arg("--evidence")
        .arg(out.join("evidence.md"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&output).unwrap()
}

#[test]
fn summary_within_budget_and_every_finding_in_the_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let opts = GenerateOptions {
        target_records: 60_000,
        duration_minutes: 240,
        seed: 4242,
        ..GenerateOptions::default()
    };
    generate(&opts, &dir.path().join("gen")).unwrap();
    let logs = dir.path().join("gen/AWSLogs");
    let report = propose(&logs, dir.path());
    let body = std::fs::read_to_string(dir.path().join("body.md")).unwrap();
    let evidence = std::fs::read_to_string(dir.path().join("evidence.md")).unwrap();

    assert!(body.len() <= BUDGET, "summary is {} bytes", body.len());
    assert!(
        evidence.len() > 65_536,
        "the volume must be one the whole evidence does not fit in a PR body"
    );
    assert!(
        body.contains("The full evidence, every finding of every campaign, is in `evidence.md`.")
    );
    assert!(body.contains("**Left out of this summary**"));
    assert!(body.contains("all of it is in `evidence.md`."));

    let findings = report["findings"].as_array().unwrap();
    assert!(findings.len() > 50, "{} findings", findings.len());
    for f in findings {
        let needle = format!(
            "<details><summary><code>{}</code> — {} — ",
            f["key"].as_str().unwrap(),
            f["policy"].as_str().unwrap()
        );
        assert_eq!(evidence.matches(&needle).count(), 1, "{needle}");
    }

    // The same logs again: the same campaigns, byte for byte.
    let again = dir.path().join("again");
    std::fs::create_dir(&again).unwrap();
    propose(&logs, &again);
    assert_eq!(
        std::fs::read_to_string(again.join("body.md")).unwrap(),
        body
    );
    assert_eq!(
        std::fs::read_to_string(again.join("evidence.md")).unwrap(),
        evidence
    );
}
