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
            // The origin's logs too: their section must fit the budget as well.
            "--origin-logs",
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
    assert!(md.contains("### Origin health"), "{md}");
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

/// The generator's origin logs beside its WAF logs: the report's origin section counts what the
/// truth says, per hour and domestic/overseas, and splits each block's origin traffic at its
/// `added` time exactly as a scan of the origin logs up to that time does.
#[test]
fn origin_health_from_generated_origin_logs() {
    use waftune::log::{TimeRange, discover};
    use waftune::origin::detect::split;
    use waftune::origin::scan::{OriginOptions, scan};

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(waftune()
        .args([
            "generate",
            "--records",
            "20000",
            "--minutes",
            "240",
            "--seed",
            "4242",
            "--start",
            "2026-11-19T20:00:00Z",
            "--origin-logs",
            "--out",
        ])
        .arg(d.join("gen")));
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("gen/truth.json")).unwrap()).unwrap();
    let truth = &truth["origin"];
    std::fs::copy(root().join("examples/waftune.toml"), d.join("waftune.toml")).unwrap();
    let logs = d.join("gen/AWSLogs");
    let added = "2026-11-19T22:00:00Z";
    // Blocks added half-way through, from the first two hours.
    run(waftune()
        .current_dir(d)
        .args([
            "propose",
            "--init-ledger",
            "-c",
            "waftune.toml",
            "--policies",
        ])
        .arg(root().join("policies"))
        .arg("--logs")
        .arg(&logs)
        .args(["--until", added, "--now", added]));
    let report = |logs: &Path, extra: &[&str]| {
        run(waftune()
            .current_dir(d)
            .args(["report", "-c", "waftune.toml", "--policies"])
            .arg(root().join("policies"))
            .arg("--logs")
            .arg(logs)
            .args([
                "--since",
                "2026-11-19T20:00:00Z",
                "--until",
                "2026-11-20T00:00:00Z",
            ])
            .args(["--now", "2026-11-20T00:00:00Z"])
            .args(extra))
    };
    let json: serde_json::Value =
        serde_json::from_str(&report(&logs, &["--format", "json"])).unwrap();
    let o = &json["origin"];
    assert_eq!(o["requests"], truth["requests"]);
    assert_eq!(o["status"]["5xx"], truth["errors_5xx"]);
    let sum = |v: &serde_json::Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(o["hourly"]["5xx"].as_array().unwrap().len(), 4);
    assert_eq!(Some(sum(&o["hourly"]["5xx"])), truth["errors_5xx"].as_u64());
    assert_eq!(
        Some(sum(&o["hourly"]["requests"])),
        truth["requests"].as_u64()
    );
    assert_eq!(
        sum(&o["hourly"]["origin_ms"]),
        o["origin_ms"].as_u64().unwrap()
    );
    let geo = &o["errors_5xx_geo"];
    assert_eq!(
        Some(sum(&serde_json::json!([
            geo["domestic"],
            geo["overseas"],
            geo["unknown"]
        ]))),
        truth["errors_5xx"].as_u64()
    );
    assert!(geo["domestic"].as_u64() > Some(0) && geo["overseas"].as_u64() > Some(0));
    // The clients that met the most 5xx lead their list, with the WAF's view joined.
    let top = &o["top_by_5xx"][0];
    assert!(top["status"]["5xx"].as_u64() > Some(0) && top["waf"]["requests"].as_u64() > Some(0));

    // One row per block-effect entry, split at `added` as a scan up to it counts.
    let entries = json["block_effect"]["entries"].as_array().unwrap();
    let blocks = o["blocks"].as_array().unwrap();
    assert!(!blocks.is_empty());
    assert_eq!(blocks.len(), entries.len());
    let found = discover(std::slice::from_ref(&logs), &TimeRange::default()).unwrap();
    let (_, origin_files) = split(found.files);
    let ms = |s: &str| s.parse::<jiff::Timestamp>().unwrap().as_millisecond();
    let scanned = |since: &str, until: &str| {
        scan(
            &origin_files,
            OriginOptions {
                range: TimeRange {
                    since: Some(ms(since)),
                    until: Some(ms(until)),
                },
                ..OriginOptions::default()
            },
        )
    };
    let (before, after) = (
        scanned("2026-11-19T20:00:00Z", added),
        scanned(added, "2026-11-20T00:00:00Z"),
    );
    let of = |t: &waftune::origin::scan::OriginTraffic, ip: &str| {
        t.clients
            .iter()
            .find(|c| format!("{}/32", c.key) == ip)
            .map_or((0, 0, 0), |c| {
                (
                    c.summary.requests,
                    c.summary.status.s5xx,
                    c.summary.origin_ms,
                )
            })
    };
    let mut with_5xx_before = 0;
    for (b, e) in blocks.iter().zip(entries) {
        assert_eq!(b["cidr"], e["cidr"]);
        assert_eq!(b["added"].as_str(), Some(added));
        let cidr = b["cidr"].as_str().unwrap();
        let side = |s: &serde_json::Value| {
            (
                s["requests"].as_u64().unwrap(),
                s["5xx"].as_u64().unwrap(),
                s["origin_ms"].as_u64().unwrap(),
            )
        };
        assert_eq!(side(&b["before"]), of(&before, cidr), "{cidr}");
        assert_eq!(side(&b["after"]), of(&after, cidr), "{cidr}");
        with_5xx_before += u64::from(b["before"]["5xx"].as_u64().unwrap() > 0);
    }
    assert!(
        with_5xx_before > 0,
        "some blocked client caused 5xx before its block"
    );

    // HTML, markdown and text show the section; without origin logs none of them does.
    let html = d.join("r.html");
    let md = d.join("r.md");
    let text = report(
        &logs,
        &[
            "--format",
            "table",
            "--html",
            html.to_str().unwrap(),
            "--markdown",
            md.to_str().unwrap(),
        ],
    );
    assert!(
        text.contains("\norigin: 19,604 origin requests, "),
        "{text}"
    );
    assert!(text.contains("origin 5xx/h") && text.contains("top clients by origin 5xx"));
    let page = std::fs::read_to_string(&html).unwrap();
    for id in [
        "id=\"origin\"",
        "chart-origin-5xx",
        "chart-origin-time",
        "id=\"origin-blocks\"",
    ] {
        assert!(page.contains(id), "{id}");
    }
    let summary = std::fs::read_to_string(&md).unwrap();
    assert!(summary.contains("### Origin health") && summary.contains("#### Blocks at the origin"));
    assert!(summary.chars().count() <= 60_000);
    assert_tables_whole(&summary);

    let waf_only = logs.join("123456789012/WAFLogs");
    let json: serde_json::Value =
        serde_json::from_str(&report(&waf_only, &["--format", "json"])).unwrap();
    assert!(json.get("origin").is_none());
    assert!(!report(&waf_only, &[]).contains("\norigin: "));
}
