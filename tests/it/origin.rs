//! Origin access logs (ALB, CloudFront) over real inputs: the public documented examples, the S3
//! layouts with time pruning, gzip, malformed lines, and telling them from WAF logs by content.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use waftune::log::{TimeRange, discover};
use waftune::origin::OriginKind;
use waftune::origin::detect::split;
use waftune::origin::scan::{OriginOptions, OriginTraffic, scan};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn scan_origin(paths: &[PathBuf], options: OriginOptions) -> (usize, OriginTraffic) {
    let found = discover(paths, &options.range).unwrap();
    let (waf, origin) = split(found.files);
    (waf.len(), scan(&origin, options))
}

fn ms(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

#[test]
fn public_examples_exact_counts() {
    // (file, kind, records, malformed, 5xx)
    let expected = [
        ("alb-vrl-aws-docs.log", OriginKind::Alb, 11, 0, 1),
        (
            "cloudfront-aws-docs-2019.log",
            OriginKind::Cloudfront,
            6,
            0,
            3,
        ),
        (
            "E2EXAMPLE123.2019-12-13-22.a1b2c3d4.gz",
            OriginKind::Cloudfront,
            6,
            0,
            3,
        ),
        (
            "cloudfront-beats-aws-docs-2014.log",
            OriginKind::Cloudfront,
            2,
            0,
            0,
        ),
        // Standard logging v2's JSON: AWS's two example records (no `c-ip`: malformed), then the
        // 2019 entries as JSON.
        (
            "cloudfront-v2-aws-docs.json",
            OriginKind::Cloudfront,
            6,
            2,
            3,
        ),
    ];
    for (name, kind, records, malformed, s5xx) in expected {
        let path = fixture("public-origin-logs").join(name);
        let found = discover(&[path], &TimeRange::default()).unwrap();
        let (waf, origin) = split(found.files);
        assert!(waf.is_empty(), "{name} read as WAF");
        assert_eq!(origin[0].1, kind, "{name}");
        let t = scan(&origin, OriginOptions::default());
        assert_eq!(
            (t.records, t.malformed, t.totals.status.s5xx),
            (records, malformed, s5xx),
            "{name}: {:?}",
            t.malformed_examples
        );
    }
    let (waf, t) = scan_origin(&[fixture("public-origin-logs")], OriginOptions::default());
    assert_eq!(waf, 0);
    assert_eq!((t.files, t.records, t.malformed), (5, 31, 2));
    assert_eq!(
        t.malformed_examples
            .iter()
            .map(|m| (m.line, m.reason.as_str()))
            .collect::<Vec<_>>(),
        [
            (1, "CloudFront JSON entry lacks `c-ip`"),
            (2, "CloudFront JSON entry lacks `c-ip`")
        ]
    );
    assert_eq!((t.kinds.alb, t.kinds.cloudfront), (11, 20));
    // ALB: 6 x 200, 2 x 101, 2 x 400 (no target answered: `-1`), one 502; CloudFront: 10 x 200,
    // one 304, 9 x 502.
    let s = t.totals.status;
    assert_eq!((s.s2xx, s.s3xx, s.s4xx, s.s5xx, s.other), (16, 1, 2, 10, 2));
    assert_eq!(t.totals.errors_5xx.e502, 10);
    // Origin time: ALB target_processing_time (9 timed), CloudFront time-to-first-byte (18) and,
    // in the 2014 format without it, time-taken (2).
    assert_eq!((t.totals.origin_ms, t.totals.timed), (1106, 29));
    assert_eq!(t.unparseable_client_ips, 0);
    // 192.0.2.100 and 192.0.2.200 sent 9 each; ties go by address.
    assert_eq!(t.clients[0].key.to_string(), "192.0.2.100");
}

const ALB_LINE: &str = r#"https 2026-11-20T00:01:02.000001Z app/shop/0123 198.51.100.7:4711 10.0.1.9:8080 0.001 0.250 0.000 503 503 120 500 "GET https://shop.example:443/p HTTP/1.1" "crawler/1.0" TLS_AES_128_GCM_SHA256 TLSv1.3 arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/shop/1 "Root=1-1" "shop.example" "-" 1 2026-11-20T00:01:01.750000Z "forward" "-" "-" "10.0.1.9:8080" "503" "-" "-" TID_1"#;

fn write_gz(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap();
}

#[test]
fn s3_layout_is_pruned_by_path_and_filtered_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir
        .path()
        .join("AWSLogs/123456789012/elasticloadbalancing/ap-northeast-1");
    for day in ["19", "20", "21"] {
        let line = ALB_LINE.replace("2026-11-20T00:01", &format!("2026-11-{day}T00:01"));
        write_gz(
            &base.join(format!("2026/11/{day}/123456789012_elasticloadbalancing_ap-northeast-1_app.shop.0123_202611{day}T0005Z_10.0.1.1_abc.log.gz")),
            &format!("{line}\n{line}\n"),
        );
    }
    let range = TimeRange {
        since: Some(ms("2026-11-20T00:00:00Z")),
        until: Some(ms("2026-11-20T12:00:00Z")),
    };
    let found = discover(&[dir.path().to_owned()], &range).unwrap();
    // The 21st is pruned by its path; the 19th is kept (slack) and its records are out of range.
    assert_eq!((found.files.len(), found.pruned_dirs), (2, 1));
    let (_, origin) = split(found.files);
    let t = scan(
        &origin,
        OriginOptions {
            range,
            ..Default::default()
        },
    );
    assert_eq!((t.records, t.out_of_range, t.malformed), (2, 2, 0));
    let c = &t.clients[0];
    assert_eq!(c.key.to_string(), "198.51.100.7");
    assert_eq!(c.minutes.len(), 1);
    let (minute, m) = c.minutes[0];
    assert_eq!(i64::from(minute) * 60_000, ms("2026-11-20T00:01:00Z"));
    assert_eq!((m.requests, m.status.s5xx, m.errors_5xx.e503), (2, 2, 2));
    assert_eq!(
        (m.origin_ms, m.origin_p50_ms, m.origin_p99_ms, m.bytes_sent),
        (500, Some(250), Some(250), 1000)
    );
}

#[test]
fn malformed_lines_are_counted_and_named_never_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let alb = dir.path().join("alb.log");
    let broken_time = ALB_LINE.replace("2026-11-20T00:01:02.000001Z", "2026-11-20T25:01:02Z");
    let text = format!(
        "{ALB_LINE}\n{}\n\n{broken_time}\n{ALB_LINE}\n",
        &ALB_LINE[..120]
    );
    std::fs::write(&alb, text).unwrap();
    let cf = dir.path().join("cf.log");
    std::fs::write(
        &cf,
        "#Version: 1.0\n#Fields: date time c-ip sc-status sc-bytes time-taken\n2026-11-20\t00:00:01\t192.0.2.1\t200\t10\t0.010\n2026-11-20\t00:00:01\t192.0.2.1\n2026-11-20\t00:00:02\t192.0.2.1\t504\t10\t9.5\n",
    )
    .unwrap();
    // A truncated gzip member: the lines before the damage count, the damage is one problem.
    let gz = dir.path().join("cut.log.gz");
    write_gz(&gz, &format!("{ALB_LINE}\n").repeat(50));
    let bytes = std::fs::read(&gz).unwrap();
    std::fs::write(&gz, &bytes[..bytes.len() - 12]).unwrap();
    let (_, t) = scan_origin(&[alb.clone(), cf.clone(), gz], OriginOptions::default());
    assert_eq!(t.files, 3);
    assert_eq!(t.malformed, 4, "{:#?}", t.malformed_examples);
    let shown: Vec<String> = t
        .malformed_examples
        .iter()
        .map(ToString::to_string)
        .collect();
    let alb_name = alb.display().to_string();
    let cf_name = cf.display().to_string();
    assert_eq!(
        shown[0],
        format!("{alb_name}:2: field 13 (`request`) opens a quote that does not close")
    );
    assert_eq!(
        shown[1],
        format!("{alb_name}:4: `time` is not an ISO 8601 UTC time: `2026-11-20T25:01:02Z`")
    );
    assert_eq!(
        shown[2],
        format!("{cf_name}:4: CloudFront entry has 3 fields; `#Fields` names 6")
    );
    assert!(
        shown[3].contains("cut.log.gz:50: truncated or corrupt gzip data"),
        "{shown:?}"
    );
    assert_eq!(t.kinds.cloudfront, 2);
    // 2 good lines of alb.log and the 49 before the damage of cut.log.gz.
    assert_eq!(t.kinds.alb, 51);
    assert_eq!(t.totals.errors_5xx.e504, 1);
}

#[test]
fn logs_are_told_apart_by_content_not_name() {
    let dir = tempfile::tempdir().unwrap();
    // Names that lie: a WAF record named like an ALB file and the reverse.
    std::fs::write(
        dir.path().join("x_elasticloadbalancing_y.log"),
        "{\"timestamp\":1763596800000,\"action\":\"ALLOW\",\"httpRequest\":{\"clientIp\":\"198.51.100.7\",\"country\":\"JP\",\"uri\":\"/\"}}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("waf.jsonl"), format!("{ALB_LINE}\n")).unwrap();
    write_gz(
        &dir.path().join("EDIST.2026-11-20-00.abc.gz"),
        "#Version: 1.0\n#Fields: date time c-ip sc-status\n2026-11-20\t00:00:00\t198.51.100.7\t200\n",
    );
    let found = discover(&[dir.path().to_owned()], &TimeRange::default()).unwrap();
    let (waf, origin) = split(found.files);
    assert_eq!(waf.len(), 1);
    assert!(waf[0].name.ends_with("x_elasticloadbalancing_y.log"));
    let kinds: Vec<OriginKind> = origin.iter().map(|(_, k)| *k).collect();
    assert_eq!(kinds, [OriginKind::Cloudfront, OriginKind::Alb]);
}

/// The generator's origin logs joined with its WAF logs: the origin sees exactly what WAF allowed,
/// per client, and the clients that met the most 5xx are the scrapers the truth names.
#[test]
fn generated_origin_joins_with_waf_as_the_truth_says() {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use waftune::origin::report::build;
    use waftune::scan::{ScanOptions, scan as scan_waf};
    use waftune_generate::{ActorClass, GenerateOptions, generate};

    let dir = tempfile::tempdir().unwrap();
    let opts = GenerateOptions {
        target_records: 20_000,
        duration_minutes: 120,
        origin_logs: true,
        ..GenerateOptions::default()
    };
    let truth = generate(&opts, dir.path()).unwrap().truth;
    let origin_truth = truth.origin.clone().unwrap();
    let found = discover(&[dir.path().join("AWSLogs")], &TimeRange::default()).unwrap();
    let (waf_files, origin_files) = split(found.files);
    assert!(origin_files.iter().all(|(_, k)| *k == OriginKind::Alb));
    let waf = scan_waf(&waf_files, &ScanOptions::default(), Arc::new(|_| {}));
    let o = scan(&origin_files, OriginOptions::default());
    assert_eq!(o.malformed, 0, "{:?}", o.malformed_examples);
    assert_eq!(
        (o.records, waf.actions.allow),
        (origin_truth.requests, origin_truth.requests)
    );
    assert_eq!(o.totals.status.s5xx, origin_truth.errors_5xx);
    assert!(
        origin_truth.strained_minutes > 0
            && origin_truth.errors_5xx_in_strained_minutes * 2 > origin_truth.errors_5xx
    );

    // Per client: origin requests == WAF ALLOW; a client WAF only blocked never reaches the origin.
    let origin_by_ip: BTreeMap<String, u64> = o
        .clients
        .iter()
        .map(|c| (c.key.to_string(), c.summary.requests))
        .collect();
    for c in &waf.clients {
        let seen = origin_by_ip.get(&c.key.to_string()).copied().unwrap_or(0);
        assert_eq!(seen, c.actions.allow, "{}", c.key);
    }
    // Per actor, as the truth counts them.
    let mut per_actor: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for c in &o.clients {
        let actor = truth
            .actor_of(&c.key.to_string())
            .expect("every address has an actor");
        let e = per_actor.entry(actor.name.as_str()).or_default();
        e.0 += c.summary.requests;
        e.1 += c.summary.status.s5xx;
    }
    for a in &origin_truth.actors {
        assert_eq!(
            per_actor.get(a.name.as_str()).copied().unwrap_or_default(),
            (a.requests, a.errors_5xx),
            "{}",
            a.name
        );
    }

    let report = build(&o, &waf, 3);
    assert_eq!(report.waf_join.clients_not_seen_by_waf, 0);
    assert_eq!(report.top_by_5xx.len(), 3);
    for row in &report.top_by_5xx {
        let actor = truth.actor_of(&row.ip).unwrap();
        assert_eq!(
            actor.class,
            ActorClass::Scraper,
            "{} is {}",
            row.ip,
            actor.name
        );
        assert!(
            row.waf
                .as_ref()
                .is_some_and(|w| w.actions.allow == row.summary.requests)
        );
    }
}

fn stdout(cmd: &mut assert_cmd::Command) -> String {
    String::from_utf8(cmd.assert().success().get_output().stdout.clone()).unwrap()
}

#[test]
fn analyze_shows_the_origin_beside_waf() {
    use crate::cli::waftune;
    let out = stdout(waftune().args([
        "analyze",
        "--logs",
        "examples/sample-logs/AWSLogs",
        "examples/sample-origin-logs/AWSLogs",
        "--format",
        "json",
        "--top",
        "3",
    ]));
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    // The WAF side is what it was without origin logs.
    assert_eq!(
        (r["records"].as_u64(), r["files"].as_u64()),
        (Some(45_000), Some(24))
    );
    let o = &r["origin"];
    assert_eq!(o["records"], 43_772);
    assert_eq!(o["kinds"]["alb"], 43_772);
    assert_eq!(o["status"]["5xx"], 1_940);
    assert_eq!(o["waf_join"]["clients_not_seen_by_waf"], 0);
    assert_eq!(o["per_hour"].as_array().unwrap().len(), 3);
    assert_eq!(o["top_by_5xx"].as_array().unwrap().len(), 3);
    assert_eq!(
        o["top_by_5xx"][0]["waf"]["actions"]["ALLOW"],
        o["top_by_5xx"][0]["requests"]
    );

    let md = stdout(waftune().args([
        "analyze",
        "--logs",
        "examples/sample-logs/AWSLogs",
        "examples/sample-origin-logs/AWSLogs",
        "--format",
        "markdown",
        "--top",
        "2",
    ]));
    for heading in [
        "### Origin (ALB and CloudFront access logs)",
        "### Origin per hour",
        "### Top clients by origin time",
        "### Top clients by origin 5xx",
    ] {
        assert!(md.contains(heading), "{heading} missing:\n{md}");
    }
    assert!(md.contains("- status: 2xx "), "{md}");
}

#[test]
fn other_commands_leave_origin_logs_out_with_a_note() {
    use crate::cli::waftune;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("alb.log"), format!("{ALB_LINE}\n")).unwrap();
    waftune()
        .args(["rate", "recommend", "--logs"])
        .arg(dir.path())
        .arg("examples/sample-logs/AWSLogs")
        .assert()
        .success()
        .stderr(predicates::str::contains(
            "note: 1 ALB/CloudFront log files are read by `analyze` and `report` only",
        ));
    // `--strict` fails on a malformed origin line as on a WAF one.
    std::fs::write(
        dir.path().join("alb.log"),
        format!("{ALB_LINE}\nhttps 2026-11-20T00:00:00Z x\n"),
    )
    .unwrap();
    waftune()
        .args(["analyze", "--strict", "--logs"])
        .arg(dir.path())
        .assert()
        .failure()
        .stderr(predicates::str::contains(":2: ALB entry has 3 fields"))
        .stderr(predicates::str::contains(
            "1 malformed input items and `--strict` was given",
        ));
}

#[test]
fn athena_ddl_and_sql_for_origin_tables() {
    use crate::cli::waftune;
    let out = stdout(waftune().args([
        "athena",
        "ddl",
        "--kind",
        "alb",
        "--bucket",
        "logs-bucket",
        "--account",
        "123456789012",
        "--region",
        "ap-northeast-1",
        "--table",
        "alb_logs",
        "--start",
        "2026/01/01",
    ]));
    let ddl = out;
    assert!(
        ddl.starts_with("CREATE EXTERNAL TABLE IF NOT EXISTS alb_logs ("),
        "{ddl}"
    );
    assert!(ddl.ends_with("/${day}'\n);\n"), "{ddl}");
    waftune()
        .args([
            "athena",
            "ddl",
            "--kind",
            "cloudfront",
            "--bucket",
            "b",
            "--account",
            "123456789012",
            "--region",
            "us-east-1",
            "--start",
            "2026/01/01",
        ])
        .assert()
        .failure()
        .stderr(predicates::str::contains("--distribution"));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("waftune.toml");
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/waftune.toml"),
    )
    .unwrap();
    std::fs::write(
        &config,
        format!("{base}\n[athena]\ndatabase = \"waf\"\ntable = \"shop_logs\"\norigin_table = \"alb_logs\"\noutput_location = \"s3://r/\"\n"),
    )
    .unwrap();
    let mut cmd = waftune();
    cmd.args([
        "analyze",
        "--source",
        "athena",
        "--print-sql",
        "--since",
        "2026-11-20T00:00:00Z",
        "--until",
        "2026-11-20T02:00:00Z",
        "-c",
    ])
    .arg(&config);
    let sql = stdout(&mut cmd);
    assert!(
        sql.contains("GROUP BY GROUPING SETS ((client, minute), (client), (hour), ())"),
        "{sql}"
    );
    assert!(
        sql.contains(
            "FROM alb_logs WHERE substr(time, 1, 23) IS NOT NULL AND \"day\" >= '2026/11/19'"
        ),
        "{sql}"
    );
}

/// A policy on origin signals, on the generator's WAF and ALB logs: it finds exactly the clients
/// whose share of the origin's 5xx reaches its limit, with the origin in the evidence; without
/// origin logs it says that it cannot fire.
#[test]
fn propose_fires_origin_thresholds_with_origin_logs_and_notes_without() {
    use crate::cli::waftune;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    stdout(
        waftune()
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
            .arg(d.join("gen")),
    );
    std::fs::create_dir(d.join("policies")).unwrap();
    std::fs::write(
        d.join("policies/origin.toml"),
        "[[policy]]\nname = \"origin-errors\"\ndescription = \"clients behind a tenth of the origin's 5xx\"\n\
         [policy.match]\nnot = { labels = [\"awswaf:managed:aws:bot-control:bot:verified\"] }\n\
         [policy.thresholds]\norigin_5xx_share = 0.1\norigin_5xx = 20\n[policy.action]\ntype = \"report\"\n",
    )
    .unwrap();
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(root.join("examples/waftune.toml"), d.join("waftune.toml")).unwrap();
    let logs = d.join("gen/AWSLogs");
    let propose = |logs: &Path| {
        let mut cmd = waftune();
        cmd.current_dir(d)
            .args([
                "propose",
                "--init-ledger",
                "--dry-run",
                "-c",
                "waftune.toml",
            ])
            .args(["--policies", "policies", "--format", "json", "--logs"])
            .arg(logs)
            .args(["--now", "2026-11-20T00:00:00Z"]);
        cmd
    };
    let out = stdout(&mut propose(&logs));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut found: Vec<(String, Vec<String>)> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["key"].as_str().unwrap().to_owned(),
                f["fired"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect();
    found.sort();
    // The same from a scan of the origin logs alone.
    let found_files = discover(std::slice::from_ref(&logs), &TimeRange::default()).unwrap();
    let (_, origin_files) = split(found_files.files);
    let o = scan(&origin_files, OriginOptions::default());
    let total = o.totals.status.s5xx;
    let mut expected: Vec<String> = o
        .clients
        .iter()
        .filter(|c| c.summary.status.s5xx * 10 >= total && c.summary.status.s5xx >= 20)
        .map(|c| format!("{}/32", c.key))
        .collect();
    expected.sort();
    assert!(!expected.is_empty());
    assert_eq!(
        found.iter().map(|f| f.0.clone()).collect::<Vec<_>>(),
        expected
    );
    for (key, fired) in &found {
        let c = o
            .clients
            .iter()
            .find(|c| format!("{}/32", c.key) == *key)
            .unwrap();
        assert_eq!(
            fired[0],
            format!("origin 5xx {} >= 20", c.summary.status.s5xx),
            "{key}"
        );
        assert!(
            fired[1].starts_with(&format!(
                "caused {} of the {} origin 5xx (",
                c.summary.status.s5xx, total
            )),
            "{fired:?}"
        );
    }

    // WAF logs alone: a note, and no finding.
    let assert = propose(&logs.join("123456789012/WAFLogs"))
        .assert()
        .success();
    let out = assert.get_output();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["findings"].as_array().unwrap().len(), 0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("note: policies `origin-errors` use origin thresholds (`origin_5xx`, `origin_5xx_share`, `origin_time_share`), but no ALB or CloudFront logs were read: those thresholds cannot fire"),
        "{stderr}"
    );
}
