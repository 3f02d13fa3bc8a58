//! `waftune report`: the bundled sample's report in every format, escaping of log-derived text,
//! the markdown budget on a generated volume, and the HTML opened in a real browser.

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;

const NOW: &str = "2026-11-20T02:00:00Z";

pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn waftune() -> Command {
    Command::cargo_bin("waftune").unwrap()
}

pub(crate) fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn sample(cmd: &mut Command) -> &mut Command {
    cmd.arg("report")
        .arg("-c")
        .arg(root().join("examples/waftune.toml"))
        .arg("--logs")
        .arg(root().join("examples/sample-logs/AWSLogs"))
        .args(["--now", NOW])
}

#[test]
fn sample_report_json_and_terminal() {
    let json: serde_json::Value =
        serde_json::from_str(&run(sample(&mut waftune()).args(["--format", "json"]))).unwrap();
    let o = &json["overview"]["current"];
    assert_eq!(o["requests"], 45_000);
    assert_eq!(o["distinct_clients"], 777);
    assert_eq!(o["actions"]["BLOCK"], 1_070);
    let hourly = &json["overview"]["hourly"];
    let sum = |k: &str| -> u64 {
        hourly[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .sum()
    };
    assert_eq!(
        sum("allow") + sum("block") + sum("captcha") + sum("challenge") + sum("other"),
        45_000
    );
    assert_eq!(sum("domestic") + sum("overseas") + sum("unknown"), 45_000);
    // The ledger's entries were added by `propose` at the end of these logs: nothing to judge yet.
    let b = &json["block_effect"];
    assert_eq!(b["no_data"], 37);
    assert_eq!(json["ledger"]["added"].as_array().unwrap().len(), 37);
    // The policies' findings as campaigns, each finding in one, every member listed.
    let c = &json["campaigns"];
    let campaigns = c["campaigns"].as_array().unwrap();
    assert_eq!((c["findings"].as_u64(), campaigns.len()), (Some(67), 28));
    let members: usize = campaigns
        .iter()
        .map(|x| x["members"].as_array().unwrap().len())
        .sum();
    assert_eq!(members, 67);
    let first = &campaigns[0];
    assert_eq!(first["size"], 6);
    assert_eq!(
        first["signature"]["ja4"],
        "t13d1311h1_e8f1e7e78f70_b26ce05bbdd6"
    );
    assert_eq!(first["shared_networks"][0]["value"], "203.0.113.0/24");
    assert_eq!(first["top_members"].as_array().unwrap().len(), 3);
    let rate = &json["rate_rules"][0];
    assert_eq!(rate["rule"], "waftune-rate-overseas");
    assert!(rate["limit"].as_u64().unwrap() >= 10);
    let text = run(sample(&mut waftune()).env("LC_ALL", "C.UTF-8"));
    assert!(text.contains("requests/h"), "{text}");
    assert!(text.contains('█'), "{text}");
    assert!(
        text.contains("campaigns: 67 findings in 28 campaigns"),
        "{text}"
    );
    let ascii = run(sample(&mut waftune()).env("LC_ALL", "C"));
    assert!(!ascii.contains('█') && ascii.contains("0 of 0 blocked clients stopped within 24 h"));
}

#[test]
fn compare_previous_needs_since_and_splits_one_pass() {
    let out = sample(&mut waftune())
        .args(["--compare", "previous"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`--compare previous` needs `--since`"));
    let json: serde_json::Value = serde_json::from_str(&run(sample(&mut waftune()).args([
        "--since",
        "2026-11-20T01:00:00Z",
        "--compare",
        "previous",
        "--format",
        "json",
    ])))
    .unwrap();
    let now = json["overview"]["current"]["requests"].as_u64().unwrap();
    let before = json["overview"]["previous"]["requests"].as_u64().unwrap();
    assert_eq!(now + before, 45_000);
    assert_eq!(json["previous_period"]["since"], "2026-11-20T00:00:00Z");
}

/// A user agent is attacker-controlled: it must come out as text in HTML and markdown.
#[test]
fn log_strings_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let ua = r#"<script>alert(1)</script>"#;
    let lines: String = (0..30)
        .map(|i| {
            format!(
                "{{\"timestamp\":{},\"action\":\"ALLOW\",\"terminatingRuleId\":\"Default_Action\",\"httpRequest\":{{\"clientIp\":\"198.51.100.7\",\"country\":\"US\",\"uri\":\"/x\",\"headers\":[{{\"name\":\"User-Agent\",\"value\":\"{}\"}}]}}}}\n",
                1_794_000_000_000i64 + i * 1000,
                ua.replace('"', "\\\"")
            )
        })
        .collect();
    std::fs::write(dir.path().join("l.jsonl"), lines).unwrap();
    let (html, md) = (dir.path().join("r.html"), dir.path().join("s.md"));
    run(waftune()
        .current_dir(dir.path())
        .arg("report")
        .arg("-c")
        .arg(root().join("examples/waftune.toml"))
        .arg("--logs")
        .arg(dir.path().join("l.jsonl"))
        .arg("--html")
        .arg(&html)
        .arg("--markdown")
        .arg(&md));
    let html = std::fs::read_to_string(html).unwrap();
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_eq!(
        html.matches("<script>").count(),
        1,
        "only the page's own script"
    );
    let md = std::fs::read_to_string(md).unwrap();
    assert!(md.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !md.contains(ua));
}

/// A generated day whose `propose` evidence already overflows a pull-request body: the report's
/// summary stays within the budget, with whole tables.
#[test]
fn markdown_fits_the_budget_where_the_evidence_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(waftune()
        .args([
            "generate",
            "--records",
            "60000",
            "--minutes",
            "240",
            "--seed",
            "4242",
            "--start",
            "2026-11-19T20:00:00Z",
            "--out",
        ])
        .arg(d.join("gen")));
    std::fs::copy(root().join("examples/waftune.toml"), d.join("waftune.toml")).unwrap();
    let logs = d.join("gen/AWSLogs");
    let common = |cmd: &mut Command| -> () {
        cmd.current_dir(d)
            .arg("-c")
            .arg(d.join("waftune.toml"))
            .arg("--logs")
            .arg(&logs)
            .args(["--now", "2026-11-20T00:00:00Z"]);
    };
    let mut propose = waftune();
    propose
        .arg("propose")
        .arg("--init-ledger")
        .arg("--policies")
        .arg(root().join("policies"))
        .arg("--evidence")
        .arg(d.join("evidence.md"));
    common(&mut propose);
    run(&mut propose);
    let evidence = std::fs::read_to_string(d.join("evidence.md")).unwrap();
    assert!(
        evidence.chars().count() > 60_000,
        "the full evidence overflows a pull-request body: {}",
        evidence.len()
    );
    let mut report = waftune();
    report
        .arg("report")
        .arg("--policies")
        .arg(root().join("policies"))
        .arg("--markdown")
        .arg(d.join("summary.md"));
    common(&mut report);
    run(&mut report);
    let md = std::fs::read_to_string(d.join("summary.md")).unwrap();
    assert!(md.chars().count() <= 60_000, "{}", md.chars().count());
    assert!(md.contains("blocked clients stopped within 24 h"));
    assert!(
        md.contains("### Campaigns") && md.contains("#### Campaign `c-"),
        "{md}"
    );
    assert_tables_whole(&md);
}

/// Every markdown table row has its header's number of cells.
fn assert_tables_whole(md: &str) {
    let mut cols = None;
    for line in md.lines() {
        if line.starts_with('|') {
            let n = line.replace("\\|", "").matches('|').count();
            assert_eq!(*cols.get_or_insert(n), n, "{line}");
        } else {
            cols = None;
        }
    }
}

fn chromium() -> &'static str {
    let name = "chromium-headless-shell";
    assert!(
        Command::new(name).arg("--version").output().is_ok(),
        "`{name}` (Debian package `chromium-headless-shell`) is needed to test the HTML report; `.ci/test` installs it"
    );
    name
}

/// Opens the page in headless Chromium: its console (errors included) on stderr, the DOM after
/// scripts ran on stdout; and a screenshot.
fn browse(page: &Path, extra: &[&str], screenshot: &Path) -> (String, String) {
    let url = format!("file://{}", page.display());
    let common = [
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
    ];
    let out = Command::new(chromium())
        .args(common)
        .args(extra)
        .args(["--dump-dom", &url])
        .output()
        .unwrap();
    assert!(out.status.success());
    let shot = Command::new(chromium())
        .args(common)
        .args(extra)
        .args([
            "--window-size=1200,2400",
            &format!("--screenshot={}", screenshot.display()),
            &url,
        ])
        .output()
        .unwrap();
    assert!(shot.status.success());
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn html_report_opens_cleanly_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    run(sample(&mut waftune()).arg("--html").arg(&page));
    for (scheme, flags) in [
        ("light", &[][..]),
        (
            "dark",
            &[
                "--force-dark-mode",
                "--blink-settings=preferredColorScheme=0",
            ][..],
        ),
    ] {
        let png = dir.path().join(format!("{scheme}.png"));
        let (dom, console) = browse(&page, flags, &png);
        assert!(
            !console.contains("CONSOLE"),
            "console output in {scheme} mode:\n{console}"
        );
        assert!(
            std::fs::metadata(&png).unwrap().len() > 50_000,
            "a blank {scheme} screenshot"
        );
        for chart in ["chart-actions", "chart-geo", "chart-rate-0"] {
            let at = dom
                .find(&format!("id=\"{chart}\""))
                .unwrap_or_else(|| panic!("{chart} missing"));
            let figure = &dom[at..at + dom[at..].find("</figure>").unwrap()];
            assert!(figure.contains("<svg"), "{chart} has no SVG");
            // Bars or lines in a series colour (axes and text are black).
            let drawn = ["#3B82F6", "#2563EB", "#DC2626"]
                .iter()
                .any(|c| figure.contains(c))
                && (figure.contains("<rect") || figure.contains("<polyline"));
            assert!(drawn, "{chart} is empty");
        }
        for text in [
            "45,000",
            "777",
            "1,070",
            "0 of 0 blocked clients stopped within 24 h",
            "waftune-rate-overseas",
            "67 findings in 28 campaigns",
        ] {
            assert!(dom.contains(text), "{text} not on the page");
        }
        // Network: nothing the page could fetch.
        assert!(
            !dom.contains("http-equiv") && !dom.contains(" src=\"http") && !dom.contains("<link")
        );
    }
}
