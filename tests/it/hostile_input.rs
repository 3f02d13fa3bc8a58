//! Hostile and huge input never kills a run: the CLI on each case of issue 12, and a mutation fuzzer
//! of real records through the fast path, the serde path and the whole scan.
//!
//! The fuzzer runs `WAFTUNE_FUZZ_CASES` cases per property (default 64, a few seconds in a debug
//! build); `benches/fuzz.sh` runs it long in a release build.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use assert_cmd::Command;
use proptest::prelude::*;
use proptest::sample::Index as At;
use proptest::test_runner::{Config, TestRunner};
use waftune::analyze::{Limits, report};
use waftune::log::{LogRecord, ScanRecord, fast};
use waftune::scan::{ScanOptions, scan_bytes};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn waftune(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("waftune").unwrap();
    cmd.current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("WAFTUNE_CONFIG");
    cmd
}

/// Runs `analyze` on `data` from a file; returns (exit code, stderr, malformed count).
fn analyze(data: &[u8], strict: bool) -> (i32, String, u64) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.log"), data).unwrap();
    let mut cmd = waftune(dir.path());
    cmd.args(["analyze", "--logs", "in.log", "--format", "json"]);
    if strict {
        cmd.arg("--strict");
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let malformed = serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .ok()
        .and_then(|v| v["malformed"].as_u64())
        .unwrap_or(u64::MAX);
    (out.status.code().unwrap_or(-1), stderr, malformed)
}

fn record(ts: &str) -> String {
    format!(r#"{{"timestamp":{ts},"httpRequest":{{"clientIp":"192.0.2.1"}}}}"#)
}

#[test]
fn a_streamed_line_of_a_mebibyte_is_malformed_not_a_crash() {
    let out = waftune(root())
        .args(["analyze", "--logs", "-", "--format", "json"])
        .write_stdin(vec![b'x'; 1 << 20])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("<stdin>:1: line longer than 1 MiB holds no complete record"),
        "{stderr}"
    );
}

#[test]
fn a_firehose_file_over_16_mib_without_newlines_is_read_record_by_record() {
    let one = record("1795217700169");
    let n = (17 << 20) / one.len() + 1;
    let (code, stderr, malformed) = analyze(one.repeat(n).as_bytes(), true);
    assert_eq!((code, malformed), (0, 0), "{stderr}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.log"), one.repeat(n)).unwrap();
    let out = waftune(dir.path())
        .args(["analyze", "--logs", "in.log", "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["records"].as_u64(), Some(n as u64));
}

#[test]
fn far_future_and_negative_timestamps_are_malformed() {
    for ts in [
        "99999999999999999",
        "9223372036854775807",
        "1e300",
        "-5",
        "-9223372036854775808",
    ] {
        let data = format!("{}\n{}\n", record("1795217700169"), record(ts));
        let (code, stderr, malformed) = analyze(data.as_bytes(), false);
        assert_eq!((code, malformed), (0, 1), "{ts}: {stderr}");
        assert!(stderr.contains("in.log:2: timestamp `"), "{ts}: {stderr}");
        assert!(stderr.contains("out of range"), "{ts}: {stderr}");
        let (code, stderr, _) = analyze(data.as_bytes(), true);
        assert_eq!(code, 1, "{ts} under --strict: {stderr}");
    }
}

#[test]
fn deep_nesting_in_an_unknown_key_is_malformed() {
    let deep = format!(
        r#"{{"timestamp":1795217700169,"x":{}{},"httpRequest":{{"clientIp":"192.0.2.1"}}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let data = format!("{deep}\n{}\n", record("1795217700169"));
    let (code, stderr, malformed) = analyze(data.as_bytes(), false);
    assert_eq!((code, malformed), (0, 1), "{stderr}");
    assert!(
        stderr.contains("in.log:1: JSON nested deeper than 128 levels"),
        "{stderr}"
    );
}

/// A copy of the example configuration, ledger and policies to run `block` and `policy check` in.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let examples = root().join("examples");
    std::fs::copy(
        examples.join("waftune.toml"),
        dir.path().join("waftune.toml"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("state")).unwrap();
    for entry in std::fs::read_dir(examples.join("state")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            dir.path().join("state").join(entry.file_name()),
        )
        .unwrap();
    }
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    for entry in std::fs::read_dir(root().join("policies")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            dir.path().join("policies").join(entry.file_name()),
        )
        .unwrap();
    }
    dir
}

#[test]
fn a_block_for_longer_than_time_allows_is_refused() {
    let dir = workspace();
    let ledger = std::fs::read(dir.path().join("state/blocklist.toml")).unwrap();
    let out = waftune(dir.path())
        .args(["block", "198.51.100.7", "--for", "500000w", "--reason", "x"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("duration `500000w` is too long: at most 100 years (`36500d`)"),
        "{stderr}"
    );
    // Nothing was written.
    assert_eq!(
        std::fs::read(dir.path().join("state/blocklist.toml")).unwrap(),
        ledger
    );
}

#[test]
fn policy_check_reports_an_overlong_duration_with_its_line() {
    let dir = workspace();
    let floods = dir.path().join("policies/floods.toml");
    let text = std::fs::read_to_string(&floods).unwrap();
    let line = 1 + text
        .lines()
        .position(|l| l == r#"duration = "1h""#)
        .expect("floods.toml blocks for 1h");
    std::fs::write(
        &floods,
        text.replacen(r#"duration = "1h""#, r#"duration = "500000w""#, 1),
    )
    .unwrap();
    let out = waftune(dir.path())
        .args(["policy", "check"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("floods.toml:{line}:")),
        "line {line}: {stderr}"
    );
    assert!(
        stderr.contains("duration `500000w` is too long"),
        "{stderr}"
    );
}

// --- fuzzing ---------------------------------------------------------------------------------

/// Cases per property: `WAFTUNE_FUZZ_CASES`, else a few seconds' worth.
fn cases() -> u32 {
    std::env::var("WAFTUNE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

fn gunzip_or_plain(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap();
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return raw;
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(&raw[..])
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Real records: every line of every public sample and the first lines of the bundled sample.
fn corpus() -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("tests/fixtures/public-waf-logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl" || e == "gz"))
        .collect();
    let mut stack = vec![root().join("examples/sample-logs")];
    let mut bundled = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "gz") {
                bundled.push(path);
            }
        }
    }
    bundled.sort();
    files.extend(bundled.into_iter().take(2));
    files.sort();
    let mut lines = Vec::new();
    for file in files {
        let text = gunzip_or_plain(&file);
        lines.extend(
            text.split(|&b| b == b'\n')
                .filter(|l| !l.trim_ascii().is_empty())
                .take(300)
                .map(<[u8]>::to_vec),
        );
    }
    assert!(lines.len() > 500, "{}", lines.len());
    lines
}

/// Byte strings that matter to a JSON and WAF-record reader.
const TOKENS: &[&[u8]] = &[
    b"}{",
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"\\\"",
    b",",
    b":",
    b" ",
    b"\n",
    b"\r\n",
    b"\t",
    b"\xff",
    b"\xe6\x97\xa5",
    b"null",
    b"true",
    b"0",
    b"-5",
    b"1e300",
    b"1.5",
    b"99999999999999999",
    b"9223372036854775807",
    b"18446744073709551616",
    b"\"timestamp\":",
    b"\"timestamp\":-1,",
    b"\"httpRequest\":{\"clientIp\":\"::ffff:1.2.3.4\"},",
    b"\"headers\":[{\"name\":\"Host\",\"value\":\"x\"}],",
    b"\"labels\":[{\"name\":\"a\"}],",
    b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
];

#[derive(Debug, Clone)]
enum Mutation {
    Set(At, u8),
    Insert(At, Vec<u8>),
    Token(At, usize),
    Delete(At, u8),
    Duplicate(At, u16),
    Truncate(At),
    /// The timestamp's value replaced.
    Timestamp(String),
    /// Part of another record spliced in.
    Splice(At, At, At),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let timestamp = prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        any::<u64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:e}")),
        any::<i64>().prop_map(|v| format!("\"{v}\"")),
        Just("\"2024-03-20T10:30:00Z\"".to_string()),
        Just("\"-002024-03-20T10:30:00Z\"".to_string()),
    ];
    prop_oneof![
        (any::<At>(), any::<u8>()).prop_map(|(a, b)| Mutation::Set(a, b)),
        (any::<At>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(a, v)| Mutation::Insert(a, v)),
        (any::<At>(), 0..TOKENS.len()).prop_map(|(a, t)| Mutation::Token(a, t)),
        (any::<At>(), 1..64u8).prop_map(|(a, n)| Mutation::Delete(a, n)),
        (any::<At>(), 1..512u16).prop_map(|(a, n)| Mutation::Duplicate(a, n)),
        any::<At>().prop_map(Mutation::Truncate),
        timestamp.prop_map(Mutation::Timestamp),
        (any::<At>(), any::<At>(), any::<At>()).prop_map(|(r, a, b)| Mutation::Splice(r, a, b)),
    ]
}

fn apply(line: &mut Vec<u8>, m: &Mutation, corpus: &[Vec<u8>]) {
    let at = |a: &At, len: usize| a.index(len + 1);
    match m {
        Mutation::Set(a, b) if !line.is_empty() => {
            let i = a.index(line.len());
            line[i] = *b;
        }
        Mutation::Set(..) => {}
        Mutation::Insert(a, v) => {
            let i = at(a, line.len());
            line.splice(i..i, v.iter().copied());
        }
        Mutation::Token(a, t) => {
            let i = at(a, line.len());
            line.splice(i..i, TOKENS[*t].iter().copied());
        }
        Mutation::Delete(a, n) => {
            let i = at(a, line.len());
            let end = (i + usize::from(*n)).min(line.len());
            line.drain(i..end);
        }
        Mutation::Duplicate(a, n) => {
            let i = at(a, line.len());
            let end = (i + usize::from(*n)).min(line.len());
            let copy = line[i..end].to_vec();
            line.splice(end..end, copy);
        }
        Mutation::Truncate(a) => line.truncate(at(a, line.len())),
        Mutation::Timestamp(v) => {
            let key = b"\"timestamp\":";
            if let Some(p) = line.windows(key.len()).position(|w| w == key) {
                let start = p + key.len();
                let end = line[start..]
                    .iter()
                    .position(|&b| b == b',' || b == b'}')
                    .map_or(line.len(), |e| start + e);
                line.splice(start..end, v.bytes());
            }
        }
        Mutation::Splice(r, a, b) => {
            let other = &corpus[r.index(corpus.len())];
            let (x, y) = (at(a, other.len()), at(b, other.len()));
            let part = other[x.min(y)..x.max(y)].to_vec();
            let i = at(a, line.len());
            line.splice(i..i, part);
        }
    }
}

/// Brackets a JSON parser could nest: with more than the scan allows, parsing the line directly in
/// this test (as the scan never does) could overflow the test thread's stack.
fn could_nest_deep(line: &[u8]) -> bool {
    line.iter().filter(|&&b| b == b'[' || b == b'{').count() > 128
}

/// What must hold for any input: the fast path agrees with serde or gives up, a record the full
/// model reads views as the scan reads it, and the whole scan and report never panic.
fn check(data: &[u8], index: &mut fast::Index) {
    if let Ok(fast) = fast::scan_record(data, index) {
        let serde = sonic_rs::from_slice::<ScanRecord>(data);
        assert_eq!(serde.as_ref().ok(), Some(&fast), "fast path disagrees");
    }
    // As the scan does: sonic-rs panics on invalid UTF-8 inside the full model's raw-kept values.
    if !could_nest_deep(data)
        && let Ok(text) = std::str::from_utf8(data)
        && let Ok(full) = sonic_rs::from_str::<LogRecord>(text)
    {
        let scan = sonic_rs::from_slice::<ScanRecord>(data);
        assert_eq!(scan.as_ref().ok(), Some(&full.view()), "views differ");
    }
    let mut counts = Vec::new();
    for validate in [false, true] {
        let options = ScanOptions {
            validate,
            ..ScanOptions::default()
        };
        let t = scan_bytes("fuzz", data, &options);
        let rendered = serde_json::to_string(&report(&t, Limits::default())).unwrap();
        assert!(!rendered.is_empty());
        if !data.trim_ascii().is_empty() {
            assert!(t.records + t.malformed >= 1, "input lost without a word");
        }
        counts.push(t.records);
    }
    // The full model is stricter, never more lenient.
    assert!(counts[0] >= counts[1], "validation read more records");
}

/// Runs a property on a thread with a large stack: in a debug build, parsing the 128 levels the scan
/// allows takes more than a test thread has.
fn run<S: Strategy + Send + 'static>(
    name: &'static str,
    strategy: S,
    test: impl Fn(S::Value) -> Vec<u8> + Send + 'static,
) {
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || run_here(name, strategy, test))
        .unwrap()
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e));
}

fn run_here<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Vec<u8>) {
    let tried = AtomicU64::new(0);
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let mut index = fast::Index::default();
    let index = std::cell::RefCell::new(&mut index);
    let result = runner.run(&strategy, |value| {
        tried.fetch_add(1, Ordering::Relaxed);
        let data = test(value);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            check(&data, &mut index.borrow_mut())
        }));
        match outcome {
            Ok(()) => Ok(()),
            Err(e) => {
                let why = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Err(TestCaseError::fail(format!(
                    "{why}\ninput: {:?}",
                    String::from_utf8_lossy(&data)
                )))
            }
        }
    });
    eprintln!(
        "fuzz {name}: {} inputs tried (shrinking included), {}",
        tried.load(Ordering::Relaxed),
        if result.is_ok() {
            "no failure"
        } else {
            "FAILED"
        }
    );
    if let Err(e) = result {
        panic!("fuzz {name}: {e}");
    }
}

#[test]
fn fuzz_mutated_records() {
    let corpus = corpus();
    let n = corpus.len();
    run(
        "records",
        (0..n, prop::collection::vec(mutation(), 1..6)),
        move |(i, mutations)| {
            let mut line = corpus[i].clone();
            for m in &mutations {
                apply(&mut line, m, &corpus);
            }
            line
        },
    );
}

#[test]
fn fuzz_mutated_files() {
    let corpus = corpus();
    let n = corpus.len();
    let separator = prop_oneof![
        Just(&b"\n"[..]),
        Just(&b""[..]),
        Just(&b"\r\n"[..]),
        Just(&b" \n\n"[..])
    ];
    let part = (0..n, prop::collection::vec(mutation(), 0..3), separator);
    run("files", prop::collection::vec(part, 1..12), move |parts| {
        let mut file = Vec::new();
        for (i, mutations, sep) in parts {
            let mut line = corpus[i].clone();
            for m in &mutations {
                apply(&mut line, m, &corpus);
            }
            file.extend_from_slice(&line);
            file.extend_from_slice(sep);
        }
        file
    });
}
