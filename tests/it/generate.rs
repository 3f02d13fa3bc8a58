//! The sample-traffic generator seen from outside: its files are what the log reader reads, and its
//! ground truth describes what is in them.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use waftune::log::{Action, LogRecord};
use waftune_generate::{ActorClass, GenerateOptions, Truth, generate};

fn log_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.to_string_lossy().ends_with(".log.gz") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

#[test]
fn a_generated_day_reads_back_and_matches_its_truth() {
    let dir = tempfile::tempdir().unwrap();
    let opts = GenerateOptions {
        target_records: 12_000,
        duration_minutes: 1440,
        ..GenerateOptions::default()
    };
    let summary = generate(&opts, dir.path()).unwrap();
    assert_eq!(summary.records, 12_000);
    assert_eq!(summary.files, 288, "one file per 5 minutes of a day");

    let truth: Truth =
        serde_json::from_slice(&fs::read(dir.path().join("truth.json")).unwrap()).unwrap();
    let owner: BTreeMap<&str, &waftune_generate::Actor> = truth
        .actors
        .iter()
        .flat_map(|a| a.ips.iter().map(move |ip| (ip.as_str(), a)))
        .collect();

    let mut per_actor: BTreeMap<&str, u64> = BTreeMap::new();
    let mut monitor_minutes: BTreeMap<&str, BTreeSet<i64>> = BTreeMap::new();
    let mut blocked = 0;
    for path in log_files(dir.path()) {
        let mut text = String::new();
        GzDecoder::new(File::open(&path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        for line in text.lines() {
            let full: LogRecord =
                sonic_rs::from_str(line).expect("the project's reader parses every line");
            let rec = full.view();
            let ip = rec.client_ip().expect("a real address").to_string();
            let actor = owner[ip.as_str()];
            *per_actor.entry(actor.name.as_str()).or_default() += 1;
            if rec.action() == Action::Block {
                blocked += 1;
            }
            let verified = rec
                .label_names()
                .any(|l| l == "awswaf:managed:aws:bot-control:bot:verified");
            let ua = rec.user_agent().unwrap_or("");
            match actor.class {
                ActorClass::FakeCrawler => {
                    assert!(ua.contains("Googlebot") || ua.contains("bingbot"), "{ua}");
                    assert!(!verified);
                }
                ActorClass::VerifiedCrawler => {}
                ActorClass::Monitor => {
                    assert_eq!(rec.http_request.uri.as_deref(), Some("/health"));
                    let fresh = monitor_minutes
                        .entry(actor.name.as_str())
                        .or_default()
                        .insert(rec.timestamp / 60_000);
                    assert!(fresh, "a monitor calls once per minute");
                }
                _ => assert!(!verified, "only verified crawlers carry bot:verified"),
            }
        }
    }
    for a in &truth.actors {
        assert_eq!(
            per_actor.get(a.name.as_str()).copied().unwrap_or(0),
            a.requests,
            "{}",
            a.name
        );
    }
    for minutes in monitor_minutes.values() {
        assert_eq!(minutes.len(), 1440);
    }
    assert!(blocked > 0);
}
