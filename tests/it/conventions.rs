//! The CLI conventions: shell completions and the manual page from the clap definitions, and the
//! global `--quiet`, `-v` and `--color` flags on real commands. (`-v` for WAF API calls is checked
//! against moto in `workflows`.)

use assert_cmd::Command;

use crate::cli::waftune;

const SAMPLE: &str = "examples/sample-logs/AWSLogs";
const NOW: &str = "2026-11-20T02:00:00Z";
const SUBCOMMANDS: [&str; 6] = [
    "analyze",
    "propose",
    "plan",
    "apply",
    "report",
    "completions",
];

/// stdout and stderr of a successful run.
fn output(cmd: &mut Command) -> (String, String) {
    let out = cmd.assert().success().get_output().clone();
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn run(args: &[&str]) -> (String, String) {
    output(waftune().args(args))
}

#[test]
fn completions_for_every_shell_know_the_subcommands() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let (script, _) = run(&["completions", shell]);
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell} completion lacks `{sub}`");
        }
        // Options of subcommands too, not only their names.
        assert!(script.contains("detailed-exitcode"), "{shell}");
    }
    waftune()
        .args(["completions", "tcsh"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("invalid value 'tcsh'"));
}

#[test]
fn the_manual_page_is_roff_with_every_command() {
    let (page, _) = run(&["man"]);
    assert!(page.contains("\n.TH waftune 1 "), "{page}");
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH SUBCOMMANDS"] {
        assert!(page.contains(section), "{section} missing:\n{page}");
    }
    for sub in SUBCOMMANDS {
        assert!(page.contains(&format!("waftune\\-{sub}(1)")), "{sub}");
    }
    assert!(page.contains("NO_COLOR"), "the --color help is in the page");

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    let (_, err) = run(&["man", "--out", out.to_str().unwrap()]);
    assert!(err.starts_with("wrote the manual pages into"), "{err}");
    for page in ["waftune.1", "waftune-plan.1", "waftune-rate-recommend.1"] {
        let text = std::fs::read_to_string(out.join(page)).unwrap();
        assert!(text.contains(".TH "), "{page}");
    }
}

fn propose(extra: &[&str]) -> (String, String) {
    let mut args = vec![
        "propose",
        "-c",
        "examples/waftune.toml",
        "--logs",
        SAMPLE,
        "--now",
        NOW,
        "--dry-run",
    ];
    args.extend(extra);
    run(&args)
}

#[test]
fn quiet_keeps_the_data_and_drops_the_informational_lines() {
    let (out, err) = propose(&[]);
    assert!(err.contains("dry run: `"), "{err}");
    let (quiet_out, quiet_err) = propose(&["--quiet"]);
    assert_eq!(quiet_out, out);
    assert_eq!(quiet_err, "");
    // A global flag: accepted before the subcommand too.
    let (_, err) = run(&["-q", "policy", "check", "examples/policies"]);
    assert_eq!(err, "");
    // Errors are still said.
    waftune()
        .args(["-q", "analyze", "--logs", "no/such/dir"])
        .assert()
        .code(1)
        .stderr(predicates::str::starts_with("error: "));
}

#[test]
fn verbose_says_which_files_were_read() {
    let (out, err) = propose(&["-v"]);
    assert_eq!(out, propose(&[]).0);
    for line in [
        "read the configuration `examples/waftune.toml`\n",
        "read 11 policies and 2 allow entries from `examples/policies`\n",
        "reading 24 log files, 4,537,041 bytes\n",
        "read 45,000 records from 24 log files\n",
        "dry run: `",
    ] {
        assert!(err.contains(line), "{line:?} not in:\n{err}");
    }
    waftune()
        .args(["-q", "-v", "analyze"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("cannot be used with"));
}

fn plan_text(extra: &[&str], no_color: bool) -> String {
    let mut cmd = waftune();
    if !no_color {
        cmd.env_remove("NO_COLOR");
    }
    cmd.args([
        "plan",
        "-c",
        "examples/waftune.toml",
        "--live",
        "examples/live-snapshot.json",
        "--logs",
        SAMPLE,
        "--now",
        NOW,
    ])
    .args(extra);
    output(&mut cmd).0
}

#[test]
fn color_always_wins_over_no_color_and_never_wins_over_a_terminal() {
    let plain = plan_text(&[], true);
    assert!(
        !plain.contains('\x1b'),
        "not a terminal and NO_COLOR: no colour"
    );
    // `--color always` colours a pipe, even with NO_COLOR set: the user asked explicitly.
    let coloured = plan_text(&["--color", "always"], true);
    assert!(coloured.contains("\x1b["), "{coloured}");
    let stripped = regex::Regex::new("\x1b\\[[0-9;]*m")
        .unwrap()
        .replace_all(&coloured, "");
    assert_eq!(stripped, plain);
    assert_eq!(plan_text(&["--color", "never"], false), plain);
    assert_eq!(
        plan_text(&["--color", "auto"], false),
        plain,
        "not a terminal"
    );
}
