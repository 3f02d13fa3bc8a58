//! Parsed records packed for another scan worker: their strings back to back in one `String`, their
//! numbers, lengths and list sizes in a `Vec<u64>`, read back as [`ScanRecord`]s borrowing the text.
//!
//! A worker hands the records of another worker's clients over packed rather than as their lines:
//! the line had to be searched for its end and its `clientIp` before parsing, copied whole (2 KB,
//! of which analysis reads a tenth) and parsed by the other worker.

use std::borrow::Cow;

use super::headers::Headers;
use super::json::Str;
use super::record::{Header, Label};
use super::view::{RequestView, RuleRef, ScanRecord};

/// A missing string or list.
const NONE: u64 = u64::MAX;

/// Records packed one after the other.
#[derive(Debug, Default)]
pub struct Packed {
    text: String,
    words: Vec<u64>,
    records: usize,
}

impl Packed {
    /// Bytes held: text and numbers.
    pub fn bytes(&self) -> usize {
        self.text.len() + 8 * self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Empties it, keeping its room.
    pub fn clear(&mut self) {
        self.text.clear();
        self.words.clear();
        self.records = 0;
    }

    /// Reserves room for about `bytes` (see [`Packed::bytes`]): records hold about as many bytes
    /// of text as of numbers.
    pub fn reserve(&mut self, bytes: usize) {
        self.text.reserve(bytes / 2);
        self.words.reserve(bytes / 16);
    }

    pub fn push(&mut self, r: &ScanRecord<'_>) {
        self.records += 1;
        // In the order of the fields, which is the order `Cursor::record` reads them in.
        self.words.push(r.timestamp as u64);
        for s in [
            &r.action,
            &r.terminating_rule_id,
            &r.terminating_rule_type,
            &r.http_source_name,
        ] {
            self.opt_str(s.as_deref());
        }
        self.opt_u64(r.response_code_sent);
        self.opt_str(r.ja3_fingerprint.as_deref());
        self.opt_str(r.ja4_fingerprint.as_deref());
        self.opt_u64(r.client_asn);
        self.len(r.labels.as_ref().map(|l| l.len()));
        for label in r.labels.iter().flatten() {
            self.str(&label.name);
        }
        self.rules(r.non_terminating_matching_rules.as_deref());
        self.rules(Some(&r.group_count_rules));
        let q = &r.http_request;
        self.str(&q.client_ip);
        for s in [&q.country, &q.uri, &q.http_method, &q.host] {
            self.opt_str(s.as_deref());
        }
        match &q.headers {
            None => self.words.push(NONE),
            Some(h) => {
                self.words.push(0);
                self.opt_str(h.user_agent.as_deref());
                self.opt_str(h.host.as_deref());
                self.len(h.all.as_ref().map(Vec::len));
                for header in h.all.iter().flatten() {
                    self.str(&header.name);
                    self.opt_str(header.value.as_deref());
                }
            }
        }
    }

    /// The records in the order they were pushed.
    pub fn records(&self) -> impl Iterator<Item = ScanRecord<'_>> {
        let mut at = Cursor {
            text: &self.text,
            words: &self.words,
            word: 0,
            byte: 0,
        };
        (0..self.records).map(move |_| at.record())
    }

    fn str(&mut self, s: &str) {
        self.words.push(s.len() as u64);
        self.text.push_str(s);
    }

    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.str(s),
            None => self.words.push(NONE),
        }
    }

    fn opt_u64(&mut self, n: Option<u64>) {
        match n {
            Some(n) => self.words.extend([0, n]),
            None => self.words.push(NONE),
        }
    }

    fn len(&mut self, n: Option<usize>) {
        self.words.push(n.map_or(NONE, |n| n as u64));
    }

    fn rules(&mut self, rules: Option<&[RuleRef<'_>]>) {
        self.len(rules.map(<[_]>::len));
        for rule in rules.into_iter().flatten() {
            self.opt_str(rule.rule_id.as_deref());
        }
    }
}

/// Where reading a [`Packed`] is.
struct Cursor<'a> {
    text: &'a str,
    words: &'a [u64],
    word: usize,
    byte: usize,
}

impl<'a> Cursor<'a> {
    fn word(&mut self) -> u64 {
        self.word += 1;
        self.words[self.word - 1]
    }

    fn len(&mut self) -> Option<usize> {
        match self.word() {
            NONE => None,
            n => Some(n as usize),
        }
    }

    fn str(&mut self) -> Str<'a> {
        self.opt_str()
            .expect("a string packed where one is required")
    }

    fn opt_str(&mut self) -> Option<Str<'a>> {
        let len = self.len()?;
        self.byte += len;
        Some(Cow::Borrowed(&self.text[self.byte - len..self.byte]))
    }

    fn opt_u64(&mut self) -> Option<u64> {
        self.len().map(|_| self.word())
    }

    fn rules(&mut self) -> Option<Vec<RuleRef<'a>>> {
        let n = self.len()?;
        Some(
            (0..n)
                .map(|_| RuleRef {
                    rule_id: self.opt_str(),
                })
                .collect(),
        )
    }

    /// Fields are read in the order they are written here (a struct expression evaluates its
    /// fields in order), which is the order [`Packed::push`] wrote them in.
    fn record(&mut self) -> ScanRecord<'a> {
        ScanRecord {
            timestamp: self.word() as i64,
            action: self.opt_str(),
            terminating_rule_id: self.opt_str(),
            terminating_rule_type: self.opt_str(),
            http_source_name: self.opt_str(),
            response_code_sent: self.opt_u64(),
            ja3_fingerprint: self.opt_str(),
            ja4_fingerprint: self.opt_str(),
            client_asn: self.opt_u64(),
            labels: self
                .len()
                .map(|n| (0..n).map(|_| Label { name: self.str() }).collect()),
            non_terminating_matching_rules: self.rules(),
            group_count_rules: self.rules().unwrap_or_default(),
            http_request: RequestView {
                client_ip: self.str(),
                country: self.opt_str(),
                uri: self.opt_str(),
                http_method: self.opt_str(),
                host: self.opt_str(),
                headers: self.len().map(|_| self.headers()),
            },
        }
    }

    fn headers(&mut self) -> Headers<'a> {
        let user_agent = self.opt_str();
        let host = self.opt_str();
        let all = self.len().map(|n| {
            (0..n)
                .map(|_| Header {
                    name: self.str(),
                    value: self.opt_str(),
                })
                .collect()
        });
        Headers {
            user_agent,
            host,
            all,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::reader::{WholeFile, parse_lines};
    use crate::log::{Malformed, RecordSink};

    /// Packs each record as the scan hands it over, and keeps its debug text: it shows every field,
    /// the full header list included (which `Headers`' equality skips when one side lacks it).
    #[derive(Default)]
    struct Packs {
        packed: Packed,
        want: Vec<String>,
    }

    impl RecordSink for Packs {
        fn record(&mut self, r: &ScanRecord<'_>) {
            self.packed.push(r);
            self.want.push(format!("{r:?}"));
        }
        fn malformed(&mut self, _: Malformed) {}
    }

    /// Every public sample, read as the scan reads it with both models (picked headers and every
    /// header), packed in one batch and read back equal, field by field.
    #[test]
    fn records_read_back_as_they_were_packed() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/public-waf-logs");
        let found = crate::log::discover(&[dir], &Default::default()).unwrap();
        let (mut sink, mut whole, mut index) =
            (Packs::default(), WholeFile::default(), Default::default());
        for (i, file) in found.files.iter().enumerate() {
            if file.name.ends_with(".md") {
                continue;
            }
            let text = whole.load_input(file).expect("a readable sample");
            for validate in [false, true] {
                parse_lines(&mut index, text, i, &file.name, 1, validate, &mut sink);
            }
        }
        assert!(sink.want.len() > 20, "samples read: {}", sink.want.len());
        let got: Vec<String> = sink.packed.records().map(|r| format!("{r:?}")).collect();
        assert_eq!(got, sink.want);
        sink.packed.clear();
        assert!(sink.packed.is_empty() && sink.packed.bytes() == 0);
    }
}
