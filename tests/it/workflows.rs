//! The example GitHub workflows run their own `run:` scripts here, so that they cannot drift from
//! the CLI: each step that calls waftune runs under bash as GitHub runs it (`-eo pipefail`), with
//! its `env:` (GitHub expressions replaced by test values), in a repository made of the examples,
//! against the bundled sample logs and moto. `waftune` on the PATH is a shim that records every
//! argument list, checked with the real parser (`Cli::try_parse_from`), and runs the built binary
//! with the sample's `--now`. What cannot run here (`--source athena`) is only recorded and parsed.
//!
//! The order is the routine's: propose (logs synced from S3) and report, the pull request's plan,
//! then after merge the apply workflow's plan, its apply, and its plan again (no changes).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aws_sdk_wafv2 as sdk;
use clap::Parser;
use serde_yaml_ng::Value;
use waftune::cli::Cli;
use waftune::ledger::Ledger;

use crate::common::moto::Moto;

const REGION: &str = "ap-northeast-1";
const NOW: &str = "2026-11-20T02:00:00Z";
const WORKFLOWS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/github/workflows");

/// One `run:` step of a workflow, with the environment GitHub would give it.
struct Step {
    name: String,
    env: BTreeMap<String, String>,
    script: String,
}

fn env_of(node: &Value) -> BTreeMap<String, String> {
    node.get("env")
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                other => serde_yaml_ng::to_string(other).unwrap().trim().to_owned(),
            };
            (k.as_str().unwrap().to_owned(), value)
        })
        .collect()
}

/// The step `name` of job `job` in `file`: workflow, job and step `env:` merged (inner wins).
fn step(file: &str, job: &str, name: &str) -> Step {
    let text = std::fs::read_to_string(Path::new(WORKFLOWS).join(file)).unwrap();
    let workflow: Value = serde_yaml_ng::from_str(&text).unwrap();
    let job_node = &workflow["jobs"][job];
    let node = job_node["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("{file}: no step `{name}` in job `{job}`"));
    let mut env = env_of(&workflow);
    env.extend(env_of(job_node));
    env.extend(env_of(node));
    Step {
        name: format!("{file} {job} / {name}"),
        env,
        script: node["run"].as_str().unwrap().to_owned(),
    }
}

/// Every step of every workflow whose script calls waftune, as `(file, job, step name)`.
fn waftune_steps() -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(WORKFLOWS)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(Path::new(WORKFLOWS).join(&file)).unwrap();
        let workflow: Value = serde_yaml_ng::from_str(&text).unwrap();
        for (job, node) in workflow["jobs"].as_mapping().unwrap() {
            for s in node["steps"].as_sequence().unwrap() {
                if s["run"].as_str().is_some_and(|r| command_lines(r) > 0) {
                    let name = s["name"].as_str().unwrap().to_owned();
                    found.push((file.clone(), job.as_str().unwrap().to_owned(), name));
                }
            }
        }
    }
    found
}

/// How many command lines of `script` call waftune (a backslash continues a line).
fn command_lines(script: &str) -> usize {
    script
        .replace("\\\n", " ")
        .lines()
        .filter(|l| l.trim_start().starts_with("waftune "))
        .count()
}

/// The test values of the GitHub expressions the steps' `env:` uses; an expression not listed
/// fails the test, so that a new one is given a value here deliberately.
fn expression(expr: &str, runner_temp: &Path, source: &str) -> String {
    match expr {
        "runner.temp" => runner_temp.display().to_string(),
        "vars.WAFTUNE_PLAN_LOG_DAYS" => "7".into(),
        "inputs.source || vars.WAFTUNE_SOURCE || 'athena'" => source.into(),
        "inputs.days || vars.WAFTUNE_DAYS || '7'" => "7".into(),
        "github.server_url" => "https://github.com".into(),
        "github.repository" => "example/shop".into(),
        "github.run_id" => "1".into(),
        other => panic!("no test value for the expression `${{{{ {other} }}}}`"),
    }
}

/// The waftune of the workflows: records its arguments (NUL after each, an empty one after the
/// last), then runs the built binary with the sample's `--now` where the command takes one, or,
/// for what cannot run here, nothing.
const SHIM: &str = r#"#!/bin/sh
for a in "$@"; do printf '%s\0' "$a"; done >> "$WAFTUNE_TEST_ARGV"
printf '\0' >> "$WAFTUNE_TEST_ARGV"
[ -n "$WAFTUNE_TEST_RECORD_ONLY" ] && exit 0
case "$1" in
  propose | report | plan) exec "$WAFTUNE_TEST_BIN" "$@" --now "$WAFTUNE_TEST_NOW" ;;
  *) exec "$WAFTUNE_TEST_BIN" "$@" ;;
esac
"#;

/// A repository laid out as docs/github-actions.md says, with the runner's directories.
struct Repo {
    _dir: tempfile::TempDir,
    root: PathBuf,
    runner_temp: PathBuf,
    shim: PathBuf,
    argv: PathBuf,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn repo() -> Repo {
    let dir = tempfile::tempdir().unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let root = dir.path().join("repo");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::copy(examples.join("waftune.toml"), root.join("waftune.toml")).unwrap();
    copy_dir(&examples.join("policies"), &root.join("policies"));
    // A team's first ledger, empty: propose fills it.
    Ledger::default()
        .save(&root.join("state/blocklist.toml"))
        .unwrap();
    // What the sync-waf-logs action leaves: the S3 layout under $RUNNER_TEMP/waf-logs.
    let runner_temp = dir.path().join("runner");
    copy_dir(&examples.join("sample-logs"), &runner_temp.join("waf-logs"));
    let shim = dir.path().join("bin");
    std::fs::create_dir_all(&shim).unwrap();
    std::fs::write(shim.join("waftune"), SHIM).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(shim.join("waftune"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let argv = dir.path().join("argv");
    Repo {
        _dir: dir,
        root,
        runner_temp,
        shim,
        argv,
    }
}

/// What a step left: its exit status, stderr, and the `$GITHUB_OUTPUT` lines it wrote.
struct Ran {
    ok: bool,
    stderr: String,
    outputs: String,
}

impl Repo {
    /// Runs `step` as GitHub would (`bash --noprofile --norc -eo pipefail`); with `record_only`
    /// waftune only records its arguments and the script's status is not GitHub's.
    fn run(&self, step: &Step, moto: &Moto, source: &str, record_only: bool) -> Ran {
        let expr = regex::Regex::new(r"\$\{\{\s*(.*?)\s*\}\}").unwrap();
        let outputs = self.runner_temp.join("github_output");
        std::fs::write(&outputs, "").unwrap();
        std::fs::write(&self.argv, "").unwrap();
        let path = format!("{}:{}", self.shim.display(), std::env::var("PATH").unwrap());
        let mut cmd = std::process::Command::new("bash");
        cmd.args([
            "--noprofile",
            "--norc",
            "-eo",
            "pipefail",
            "-c",
            &step.script,
        ])
        .current_dir(&self.root)
        .env_clear()
        .env("PATH", path)
        .env("HOME", self.runner_temp.join("home"))
        .env("RUNNER_TEMP", &self.runner_temp)
        .env("GITHUB_OUTPUT", &outputs)
        .env(
            "GITHUB_STEP_SUMMARY",
            self.runner_temp.join("step_summary.md"),
        )
        .env("WAFTUNE_TEST_BIN", assert_cmd::cargo::cargo_bin("waftune"))
        .env("WAFTUNE_TEST_NOW", NOW)
        .env("WAFTUNE_TEST_ARGV", &self.argv)
        .env("NO_COLOR", "1")
        .envs(moto.aws_env(REGION));
        if record_only {
            cmd.env("WAFTUNE_TEST_RECORD_ONLY", "1");
        }
        for (key, value) in &step.env {
            let value = expr.replace_all(value, |c: &regex::Captures| {
                expression(&c[1], &self.runner_temp, source)
            });
            cmd.env(key, value.as_ref());
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        let ran = Ran {
            ok: out.status.success(),
            stderr,
            outputs: std::fs::read_to_string(&outputs).unwrap(),
        };
        self.check_argv(step);
        if !record_only {
            assert!(ran.ok, "{}: {}\n{}", step.name, out.status, ran.stderr);
        }
        ran
    }

    /// Every waftune command line of the step ran once, and the real parser accepts it.
    fn check_argv(&self, step: &Step) {
        let recorded = std::fs::read(&self.argv).unwrap();
        let text = String::from_utf8(recorded).unwrap();
        let calls: Vec<Vec<&str>> = text
            .split("\0\0")
            .filter(|c| !c.is_empty())
            .map(|c| c.split('\0').collect())
            .collect();
        assert_eq!(
            calls.len(),
            command_lines(&step.script),
            "{}: every waftune line runs once: {calls:?}",
            step.name
        );
        for args in calls {
            let argv = std::iter::once("waftune").chain(args.iter().copied());
            if let Err(e) = Cli::try_parse_from(argv) {
                panic!("{}: `waftune {}`: {e}", step.name, args.join(" "));
            }
        }
    }

    fn out(&self, name: &str) -> String {
        std::fs::read_to_string(self.runner_temp.join("waftune").join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }
}

/// The web ACL `shop-prod` of examples/waftune.toml, empty, as a team's existing one.
async fn web_acl(client: &sdk::Client) {
    let visibility = sdk::types::VisibilityConfig::builder()
        .sampled_requests_enabled(false)
        .cloud_watch_metrics_enabled(false)
        .metric_name("shop-prod")
        .build()
        .unwrap();
    client
        .create_web_acl()
        .scope(sdk::types::Scope::Regional)
        .name("shop-prod")
        .default_action(
            sdk::types::DefaultAction::builder()
                .allow(sdk::types::AllowAction::builder().build())
                .build(),
        )
        .visibility_config(visibility)
        .send()
        .await
        .unwrap();
}

#[test]
fn every_step_that_calls_waftune_is_run_by_this_test() {
    let run_here = [
        ("waftune-apply.yml", "plan", "waftune plan"),
        ("waftune-apply.yml", "apply", "waftune apply"),
        ("waftune-plan.yml", "plan", "waftune plan"),
        (
            "waftune-propose.yml",
            "propose",
            "waftune propose and waftune report",
        ),
    ];
    let found = waftune_steps();
    let found: Vec<(&str, &str, &str)> = found
        .iter()
        .map(|(f, j, s)| (f.as_str(), j.as_str(), s.as_str()))
        .collect();
    assert_eq!(found, run_here);
    assert_eq!(
        command_lines("waftune plan --a \\\n  --b > x\nwaftune report\n  waftune x\necho waftune"),
        3
    );
}

#[tokio::test]
async fn the_workflows_command_lines_run_against_the_sample_and_moto() {
    let moto = Moto::start().await;
    web_acl(&moto.client(REGION)).await;
    let repo = repo();

    // propose with `source: athena` cannot run here: its command lines must still parse.
    let propose = step(
        "waftune-propose.yml",
        "propose",
        "waftune propose and waftune report",
    );
    repo.run(&propose, &moto, "athena", true);
    let athena = std::fs::read_to_string(&repo.argv).unwrap();
    assert!(athena.contains("--source\0athena\0"), "{athena:?}");

    // propose over the logs synced from S3, and the report: the pull request's body.
    repo.run(&propose, &moto, "s3", false);
    let ledger = Ledger::load(&repo.root.join("state/blocklist.toml"), false).unwrap();
    assert!(ledger.entries.len() > 10, "propose filled the ledger");
    let summary = repo.out("summary.md");
    assert!(summary.chars().count() < 60_000, "{}", summary.len());
    assert!(repo.out("body.md").starts_with(&summary));
    assert!(repo.out("report.html").starts_with("<!DOCTYPE html>"));
    assert!(!repo.out("evidence.md").is_empty());
    assert!(!repo.out("propose.md").is_empty());

    // The pull request's plan: changes (exit 2), the markdown and the plan file kept.
    let ran = repo.run(
        &step("waftune-plan.yml", "plan", "waftune plan"),
        &moto,
        "s3",
        false,
    );
    assert_eq!(ran.outputs, "exitcode=2\n", "{}", ran.stderr);
    assert!(repo.out("plan.md").contains("waftune-blocklist-v4"));

    // After merge: plan the merged commit, apply exactly that plan, and plan again.
    let plan = step("waftune-apply.yml", "plan", "waftune plan");
    assert_eq!(
        repo.run(&plan, &moto, "s3", false).outputs,
        "changes=true\n"
    );
    let ran = repo.run(
        &step("waftune-apply.yml", "apply", "waftune apply"),
        &moto,
        "s3",
        false,
    );
    assert_eq!(
        ran.outputs,
        "outcome=applied\n",
        "{}",
        repo.out("apply.log")
    );
    assert_eq!(
        repo.run(&plan, &moto, "s3", false).outputs,
        "changes=false\n"
    );

    // `-v` names every WAFv2 call the plan made.
    let out = assert_cmd::Command::cargo_bin("waftune")
        .unwrap()
        .current_dir(&repo.root)
        .envs(moto.aws_env(REGION))
        .args(["-v", "plan", "--now", NOW, "--logs"])
        .arg(repo.runner_temp.join("waf-logs"))
        .assert()
        .success()
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8(out).unwrap();
    for call in [
        "wafv2: ListWebACLs `REGIONAL`",
        "wafv2: GetWebACL `shop-prod`",
        "wafv2: ListIPSets `REGIONAL`",
        "wafv2: GetIPSet `waftune-blocklist-v4`",
    ] {
        assert!(err.contains(call), "{call} not in:\n{err}");
    }
}
