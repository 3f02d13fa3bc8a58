//! Telling WAF, ALB and CloudFront logs apart by what they hold, not by their names: `--logs`
//! takes them together, and S3 keys or copied files rarely say which is which.

use std::io::{BufRead, BufReader, Read};

use flate2::bufread::MultiGzDecoder;
use serde::Serialize;

use crate::log::input::{InputFile, Source};

use super::{OriginKind, alb, cloudfront};

/// What a log file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum LogKind {
    Waf,
    Origin(OriginKind),
}

/// The kind of a file from its first line. Anything that is neither an ALB entry nor a
/// CloudFront header stays a WAF log, whose reader then reports what is wrong with it.
pub fn sniff(first_line: &str) -> LogKind {
    if cloudfront::looks_like(first_line) {
        LogKind::Origin(OriginKind::Cloudfront)
    } else if alb::looks_like(first_line) {
        LogKind::Origin(OriginKind::Alb)
    } else {
        LogKind::Waf
    }
}

/// The first line of a file (inflated when gzip), at most 64 KiB of it; `None` when it cannot be
/// read, which the reader of the file reports later.
fn first_line(path: &std::path::Path) -> Option<String> {
    let file = std::fs::File::open(path).ok()?;
    let mut buffered = BufReader::new(file);
    let gzip = buffered.fill_buf().ok()?.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read> = if gzip {
        Box::new(MultiGzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    let mut head = Vec::new();
    // A damaged file yields what could be inflated before the damage.
    let _ = BufReader::new(reader.take(64 * 1024)).read_until(b'\n', &mut head);
    let head = String::from_utf8_lossy(&head);
    // A byte-order mark, then blank lines, may come first.
    let head = head.trim_start_matches('\u{feff}').trim_start();
    Some(head.lines().next().unwrap_or("").to_owned())
}

/// The kind of one input; standard input is always read as WAF logs.
pub fn detect(input: &InputFile) -> LogKind {
    match &input.source {
        Source::Stdin => LogKind::Waf,
        Source::File(path) => first_line(path).map_or(LogKind::Waf, |l| sniff(&l)),
    }
}

/// Splits inputs into WAF logs and origin logs (each in discovery order), reading the head of
/// every file once, in parallel.
pub fn split(files: Vec<InputFile>) -> (Vec<InputFile>, Vec<(InputFile, OriginKind)>) {
    use rayon::prelude::*;
    let kinds: Vec<LogKind> = files.par_iter().map(detect).collect();
    let mut waf = Vec::new();
    let mut origin = Vec::new();
    for (file, kind) in files.into_iter().zip(kinds) {
        match kind {
            LogKind::Waf => waf.push(file),
            LogKind::Origin(k) => origin.push((file, k)),
        }
    }
    (waf, origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_first_line() {
        assert_eq!(sniff(r#"{"timestamp":1,"formatVersion":1}"#), LogKind::Waf);
        assert_eq!(sniff(""), LogKind::Waf);
        assert_eq!(sniff("garbage"), LogKind::Waf);
        assert_eq!(
            sniff("#Version: 1.0"),
            LogKind::Origin(OriginKind::Cloudfront)
        );
        assert_eq!(
            sniff("#Fields: date time c-ip sc-status"),
            LogKind::Origin(OriginKind::Cloudfront)
        );
        assert_eq!(
            sniff(
                "https 2018-07-02T22:23:00.186641Z app/x/1 1.2.3.4:5 - 0 0 0 200 200 0 0 \"GET / HTTP/1.1\""
            ),
            LogKind::Origin(OriginKind::Alb)
        );
    }

    #[test]
    fn every_public_waf_sample_stays_waf() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/public-waf-logs");
        let found = crate::log::discover(&[dir], &Default::default()).unwrap();
        assert!(found.files.len() >= 14);
        for f in &found.files {
            if f.name.ends_with(".md") {
                continue;
            }
            assert_eq!(detect(f), LogKind::Waf, "{}", f.name);
        }
    }
}
