//! How fast can `analyze` be on this machine? Floors on the benchmark day (docs/benchmarks.md), each
//! on 2 threads over the same files, against the full `analyze` scan:
//!
//! 1. inflate only (libdeflate, whole files);
//! 2. inflate + sonic-rs lazy access to six fields per record (`get_many_unchecked`: skipped values
//!    are not validated);
//! 3. the same with validation (`get_many`);
//! 4. waftune's scan (every field typed and counted).
//!
//! Run with `cargo bench --bench floor` after `benches/analyze-vs-duckdb.sh` generated the day
//! (`BENCH_DATA` to point elsewhere). Prints the median of 5 runs of each.

// Floor 2 measures sonic-rs without validation, which is an `unsafe` call.
#![allow(unsafe_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use waftune::log::gunzip::gunzip_into;
use waftune::log::input::Source;
use waftune::log::{InputFile, TimeRange, discover};
use waftune::scan::{ScanOptions, scan};

const RUNS: usize = 5;
const MAX_FILE: usize = 1 << 30;

/// The fields a per-client analysis needs at the least.
const FIELDS: [&[&str]; 6] = [
    &["timestamp"],
    &["action"],
    &["terminatingRuleId"],
    &["httpRequest", "clientIp"],
    &["httpRequest", "uri"],
    &["httpRequest", "country"],
];

#[derive(Clone, Copy, PartialEq)]
enum Floor {
    Inflate,
    Unchecked,
    Checked,
}

/// Records (lines) seen, over all files, with 2 workers taking files from a shared list.
fn run(files: &[PathBuf], floor: Floor) -> u64 {
    let work = Mutex::new(files.iter());
    let records = Mutex::new(0u64);
    let mut tree = sonic_rs::PointerTree::new();
    for path in FIELDS {
        tree.add_path(path.iter());
    }
    rayon::scope(|s| {
        for _ in 0..2 {
            s.spawn(|_| {
                let (mut buf, mut n) = (Vec::new(), 0u64);
                while let Some(file) = work.lock().unwrap().next() {
                    let gz = std::fs::read(file).unwrap();
                    gunzip_into(&gz, &mut buf, MAX_FILE).unwrap();
                    if floor == Floor::Inflate {
                        n += memchr::memchr_iter(b'\n', &buf).count() as u64;
                        continue;
                    }
                    let mut start = 0;
                    for end in memchr::memchr_iter(b'\n', &buf) {
                        let line = &buf[start..end];
                        start = end + 1;
                        n += 1;
                        let fields = match floor {
                            Floor::Inflate => unreachable!("counted above"),
                            // SAFETY: the lines are JSON the generator wrote (the floor, not a reader).
                            Floor::Unchecked => unsafe {
                                sonic_rs::get_many_unchecked(line, &tree)
                            },
                            Floor::Checked => sonic_rs::get_many(line, &tree),
                        };
                        assert!(
                            fields.is_ok_and(|f| f[3].is_some()),
                            "clientIp in every record"
                        );
                    }
                }
                *records.lock().unwrap() += n;
            });
        }
    });
    records.into_inner().unwrap()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn time(label: &str, mut f: impl FnMut() -> u64) {
    let mut times = Vec::with_capacity(RUNS);
    let mut records = 0;
    for _ in 0..RUNS {
        let start = Instant::now();
        records = f();
        times.push(start.elapsed());
    }
    println!(
        "{label:<44} {:>6.2} s median wall ({records} records)",
        median(times).as_secs_f64()
    );
}

fn main() {
    let data = std::env::var("BENCH_DATA").unwrap_or_else(|_| "bench-data/day".into());
    let root = PathBuf::from(data).join("AWSLogs");
    if !root.is_dir() {
        println!(
            "no benchmark day at `{}`: run benches/analyze-vs-duckdb.sh first",
            root.display()
        );
        return;
    }
    let found = discover(std::slice::from_ref(&root), &TimeRange::new(None, None)).unwrap();
    let paths: Vec<PathBuf> = found
        .files
        .iter()
        .filter_map(|f| match &f.source {
            Source::File(path) => Some(path.clone()),
            Source::Stdin => None,
        })
        .collect();
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build_global()
        .unwrap();
    println!("{} files under {}, 2 threads", paths.len(), root.display());
    time("1. inflate", || run(&paths, Floor::Inflate));
    time("2. + six fields, sonic-rs get_many_unchecked", || {
        run(&paths, Floor::Unchecked)
    });
    time("3. + six fields, sonic-rs get_many", || {
        run(&paths, Floor::Checked)
    });
    let files: Vec<InputFile> = found.files;
    time("4. waftune scan (full analysis)", || {
        scan(&files, &ScanOptions::default(), Arc::new(|_| {})).records
    });
}
