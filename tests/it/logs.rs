//! The log reader and scan engine over real inputs: every public sample, hand-made malformed
//! inputs, and the S3 layout of the bundled sample.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use waftune::log::{LogRecord, ScanRecord, TimeRange, discover, fast};
use waftune::scan::{ScanOptions, Traffic, scan};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn scan_paths(paths: &[PathBuf], options: &ScanOptions) -> Traffic {
    let found = discover(paths, &options.range).unwrap();
    scan(&found.files, options, Arc::new(|_| {}))
}

fn scan_path(path: PathBuf) -> Traffic {
    scan_paths(&[path], &ScanOptions::default())
}

/// Exact counts per public sample: (file, records, malformed, client IPs that are not addresses).
const PUBLIC: &[(&str, u64, u64, u64)] = &[
    ("aws-waf-classic-workshop.log.gz", 9_286, 0, 0),
    ("aws-waf-security-automations.jsonl", 228, 0, 6),
    ("aws-waf-security-automations.log.gz", 228, 0, 6),
    ("awsdocs-repo.jsonl", 20, 0, 0),
    ("centralized-logging-with-opensearch.jsonl", 2, 0, 0),
    ("dynatrace-aws-s3-log-forwarder.jsonl", 1, 0, 0),
    ("lookey.jsonl", 6, 0, 0),
    ("opensearch-catalog.jsonl", 38, 0, 0),
    ("otel-collector-contrib-missing-webaclid.jsonl", 1, 0, 0),
    ("otel-collector-contrib.jsonl", 2, 0, 0),
    ("panther-analysis.jsonl", 38, 0, 0),
    ("panther-schema-tests.jsonl", 6, 0, 0),
    ("s3logsbeat.jsonl", 2, 0, 0),
    ("sumologic-documentation.jsonl", 1, 0, 0),
    ("tomisp.jsonl", 34, 0, 0),
];

#[test]
fn every_public_sample_is_read_with_exact_counts() {
    for &(file, records, malformed, unparseable) in PUBLIC {
        for validate in [false, true] {
            let t = scan_paths(
                &[fixture(&format!("public-waf-logs/{file}"))],
                &ScanOptions {
                    validate,
                    ..ScanOptions::default()
                },
            );
            assert_eq!(
                (t.records, t.malformed, t.unparseable_client_ips),
                (records, malformed, unparseable),
                "{file} (validate: {validate})"
            );
        }
    }
    // The whole folder at once: every sample, and the README and SOURCES.md skipped.
    let all = scan_path(fixture("public-waf-logs"));
    assert_eq!(all.files, PUBLIC.len() as u64);
    assert_eq!(all.records, PUBLIC.iter().map(|p| p.1).sum::<u64>());
}

/// The scan's lean view and the full model must agree on every field the view has.
#[test]
fn scan_view_equals_full_model_on_every_public_record() {
    let (mut checked, mut fast_read) = (0, 0);
    let mut index = fast::Index::default();
    for &(file, ..) in PUBLIC {
        let path = fixture(&format!("public-waf-logs/{file}"));
        let raw = std::fs::read(&path).unwrap();
        let text = if file.ends_with(".gz") {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&raw[..]), &mut s)
                .unwrap();
            s
        } else {
            String::from_utf8(raw).unwrap()
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let full: LogRecord = sonic_rs::from_str(line).unwrap();
            let view: ScanRecord = sonic_rs::from_str(line).unwrap();
            assert_eq!(full.view(), view, "{file}: {line}");
            if let Ok(fast) = fast::scan_record(line.as_bytes(), &mut index) {
                assert_eq!(fast, view, "{file}: {line}");
                fast_read += 1;
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 9_893);
    // String timestamps (all 38 in panther-analysis) are left to serde; the rest is read by the fast path.
    assert_eq!(fast_read, 9_855);
}

/// The fast path accepts a line only when serde does, with the same record; on the bundled
/// generated day it reads every record itself.
#[test]
fn fast_path_agrees_with_serde_or_gives_up() {
    let mut index = fast::Index::default();
    let mut lines = Vec::new();
    let sample = discover(
        &[Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sample-logs")],
        &TimeRange::default(),
    )
    .unwrap();
    // The delivered logs only, not the generator's truth file beside them.
    for file in sample.files.iter().filter(|f| f.name.ends_with(".gz")) {
        let waftune::log::input::Source::File(path) = &file.source else {
            unreachable!("discovered from a directory")
        };
        let raw = std::fs::read(path).unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::MultiGzDecoder::new(&raw[..]), &mut text)
            .unwrap();
        lines.extend(text.lines().map(str::to_owned));
    }
    let generated = lines.len();
    let mixed = std::fs::read(fixture("malformed/mixed.jsonl")).unwrap();
    lines.extend(
        mixed
            .split(|&b| b == b'\n')
            .map(|l| String::from_utf8_lossy(l).into_owned()),
    );
    let (mut fast_read, mut rejected) = (0, 0);
    for (n, line) in lines.iter().enumerate() {
        let serde = sonic_rs::from_str::<ScanRecord>(line.trim());
        rejected += usize::from(serde.is_err());
        if let Ok(fast) = fast::scan_record(line.trim().as_bytes(), &mut index) {
            assert_eq!(Some(&fast), serde.as_ref().ok(), "line {n}: {line}");
            fast_read += 1;
        }
        if n + 1 == generated {
            assert_eq!(
                fast_read, 45_000,
                "the generated sample is read by the fast path"
            );
        }
    }
    assert!(rejected > 5, "the malformed fixture has malformed lines");
}

#[test]
fn public_samples_show_the_shapes_they_are_known_for() {
    // Uncompressed IPv6 is canonicalised; the WAF Classic workshop is one HTTP flood.
    let t = scan_path(fixture("public-waf-logs/aws-waf-classic-workshop.log.gz"));
    let keys: Vec<String> = t.clients.iter().map(|c| c.key.to_string()).collect();
    assert_eq!(keys, ["54.92.151.53", "2001:db8:85a3::8a2e:370:7334"]);
    assert_eq!(t.prefixes[1].key.to_string(), "2001:db8:85a3::/64");
    // Redacted placeholders are kept under their text, not dropped.
    let t = scan_path(fixture(
        "public-waf-logs/aws-waf-security-automations.jsonl",
    ));
    let x = t
        .clients
        .iter()
        .find(|c| c.key.to_string() == "X.X.X.X")
        .unwrap();
    assert_eq!(x.requests, 6);
    // CAPTCHA and the preview-era COUNT key.
    let t = scan_path(fixture("public-waf-logs/awsdocs-repo.jsonl"));
    assert_eq!(t.actions.captcha, 1);
    let t = scan_path(fixture("public-waf-logs/sumologic-documentation.jsonl"));
    assert_eq!(t.actions.block, 1);
}

#[test]
fn malformed_lines_are_counted_named_and_skipped() {
    let t = scan_path(fixture("malformed/mixed.jsonl"));
    assert_eq!((t.records, t.malformed), (6, 3));
    let lines: Vec<u64> = t.malformed_examples.iter().map(|m| m.line).collect();
    assert_eq!(lines, [4, 5, 8]);
    let shown = t.malformed_examples[1].to_string();
    assert!(
        shown.ends_with("mixed.jsonl:5: missing field `clientIp` at line 1 column 806"),
        "{shown}"
    );
}

#[test]
fn truncated_gzip_keeps_what_came_before_and_reports_the_rest() {
    let t = scan_path(fixture("malformed/truncated.log.gz"));
    // 53 whole lines precede the cut (as `zlib` itself decodes them); the cut is one problem.
    assert_eq!((t.records, t.malformed), (53, 1));
    let m = &t.malformed_examples[0];
    assert_eq!(m.line, 54);
    assert!(
        m.reason.starts_with("truncated or corrupt gzip data"),
        "{m}"
    );
}

#[test]
fn gzip_is_detected_by_content_not_name() {
    let t = scan_path(fixture("malformed/gzip-without-extension"));
    assert_eq!((t.records, t.malformed), (1, 0));
}

#[test]
fn s3_layout_with_time_range_prunes_directories_and_filters_exactly() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sample-logs/AWSLogs");
    let all = scan_path(sample.clone());
    assert_eq!(all.records, 45_000);
    assert_eq!(all.files, 24);

    let since: jiff::Timestamp = "2026-11-20T00:30:00Z".parse().unwrap();
    let until: jiff::Timestamp = "2026-11-20T01:00:00Z".parse().unwrap();
    let range = TimeRange::new(Some(since), Some(until));
    let found = discover(std::slice::from_ref(&sample), &range).unwrap();
    // Files of 00:15 .. 01:10 survive (15 minutes of slack either side); the rest are never opened.
    assert_eq!(found.files.len(), 12);
    assert!(found.pruned_dirs > 0);
    let part = scan_paths(
        &[sample],
        &ScanOptions {
            range,
            ..ScanOptions::default()
        },
    );
    let expected: u64 = all
        .per_minute
        .range(since.as_second() as u32 / 60..until.as_second() as u32 / 60)
        .map(|(_, a)| a.total())
        .sum();
    assert_eq!(part.records, expected);
    assert!(part.first_ms.unwrap() >= since.as_millisecond());
    assert!(part.last_ms.unwrap() < until.as_millisecond());
}

#[test]
fn parallel_scan_is_deterministic_and_equals_one_thread() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sample-logs/AWSLogs");
    let a = scan_path(sample.clone());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let b = pool.install(|| scan_path(sample));
    assert_eq!(a.clients, b.clients);
    assert_eq!(a.prefixes, b.prefixes);
    assert_eq!(a.labels, b.labels);
    assert_eq!(a.per_minute, b.per_minute);
}
