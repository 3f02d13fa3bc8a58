//! Turning inputs into records: decompression, chunking at line boundaries, and parsing.
//!
//! Each input is read as a stream (gzip detected by its magic bytes, not its name; concatenated gzip
//! members are read as one stream) and cut into chunks of whole lines. Chunks are independent units of
//! work, so a scan parallelises across files *and* within one large file while memory stays bounded by
//! the chunks in flight. Parsing never stops at bad input: a malformed line, a truncated gzip stream or
//! an unreadable file becomes a [`Malformed`] item naming `file:line`, and the scan goes on.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::Arc;

use bytes::Bytes;
use flate2::bufread::MultiGzDecoder;

use super::input::{InputFile, Source, WHOLE_FILE_MAX};
use super::json::MAX_NESTING;
use super::record::LogRecord;
use super::view::ScanRecord;

/// Target size of one chunk of decompressed text.
pub const CHUNK_BYTES: usize = 1 << 20;

/// A streamed line longer than a chunk is cut between its `}{`-joined records (as Firehose writes
/// them); one record longer than this, or such a line that holds no record, is malformed and skipped
/// to its end, so memory stays bounded whatever arrives. WAF records are a few KiB.
pub const MAX_RECORD_BYTES: usize = CHUNK_BYTES;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A run of whole lines from one input.
#[derive(Debug)]
pub struct Chunk {
    /// Index of the input in discovery order; orders problems deterministically.
    pub file_index: usize,
    pub file: Arc<str>,
    /// 1-based number of the first line in `data`.
    pub first_line: u64,
    /// Shared with the other chunks of a file inflated whole, so cutting chunks copies nothing.
    pub data: Bytes,
    /// A read problem met right after `data` (the rest of that input is lost).
    pub error: Option<Malformed>,
}

/// One piece of input that could not be read as a record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Malformed {
    #[serde(skip)]
    pub file_index: usize,
    pub file: Arc<str>,
    /// 1-based line; 0 when the problem is the file as a whole (cannot be opened).
    pub line: u64,
    pub reason: String,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.reason)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.reason)
        }
    }
}

/// Counts bytes taken from the underlying input (compressed bytes for gzip), for progress reporting.
struct Counting<R> {
    inner: R,
    progress: Arc<dyn Fn(u64) + Send + Sync>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.progress)(n as u64);
        Ok(n)
    }
}

/// Iterates over the chunks of one input.
pub struct ChunkReader {
    file_index: usize,
    name: Arc<str>,
    reader: Option<Box<dyn Read + Send>>,
    /// A partial line carried over to the next chunk.
    carry: Vec<u8>,
    next_line: u64,
    gzip: bool,
    /// An open failure, reported as the only item.
    open_error: Option<Malformed>,
}

impl ChunkReader {
    fn empty(file_index: usize, input: &InputFile) -> ChunkReader {
        ChunkReader {
            file_index,
            name: input.name.clone(),
            reader: None,
            carry: Vec::new(),
            next_line: 1,
            gzip: false,
            open_error: None,
        }
    }

    /// Streams the input in chunks: any size, bounded memory.
    pub fn new(
        file_index: usize,
        input: &InputFile,
        progress: Arc<dyn Fn(u64) + Send + Sync>,
    ) -> ChunkReader {
        let mut reader = ChunkReader::empty(file_index, input);
        let raw: io::Result<Box<dyn Read + Send>> = match &input.source {
            Source::Stdin => Ok(Box::new(io::stdin())),
            Source::File(path) => File::open(path).map(|f| Box::new(f) as Box<dyn Read + Send>),
        };
        match raw.and_then(|raw| {
            let mut buffered = BufReader::with_capacity(
                256 * 1024,
                Counting {
                    inner: raw,
                    progress,
                },
            );
            let gzip = buffered.fill_buf()?.starts_with(&GZIP_MAGIC);
            Ok((buffered, gzip))
        }) {
            Ok((buffered, true)) => {
                reader.gzip = true;
                reader.reader = Some(Box::new(MultiGzDecoder::new(buffered)));
            }
            Ok((buffered, false)) => reader.reader = Some(Box::new(buffered)),
            Err(e) => {
                reader.open_error = Some(reader.problem(0, format!("cannot read: {e}")));
            }
        }
        reader
    }

    fn problem(&self, line: u64, reason: String) -> Malformed {
        Malformed {
            file_index: self.file_index,
            file: self.name.clone(),
            line,
            reason,
        }
    }

    fn chunk(&mut self, data: impl Into<Bytes>, error: Option<Malformed>) -> Chunk {
        let data = data.into();
        let first_line = self.next_line;
        self.next_line += memchr::memchr_iter(b'\n', &data).count() as u64;
        Chunk {
            file_index: self.file_index,
            file: self.name.clone(),
            first_line,
            data,
            error,
        }
    }
}

impl Iterator for ChunkReader {
    type Item = Chunk;

    fn next(&mut self) -> Option<Chunk> {
        if let Some(err) = self.open_error.take() {
            return Some(self.chunk(Bytes::new(), Some(err)));
        }
        let reader = self.reader.as_mut()?;
        let mut buf = std::mem::take(&mut self.carry);
        buf.reserve(CHUNK_BYTES);
        let mut read_error = None;
        loop {
            let len = buf.len();
            // Read straight into the spare capacity; `take` caps one chunk's size.
            match reader
                .by_ref()
                .take((CHUNK_BYTES + 64 * 1024).saturating_sub(len) as u64)
                .read_to_end(&mut buf)
            {
                Ok(0) => break,
                Ok(_) if buf.len() >= CHUNK_BYTES => break,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    read_error = Some(e);
                    break;
                }
            }
        }
        let at_end = buf.len() < CHUNK_BYTES || read_error.is_some();
        if let Some(e) = read_error {
            self.reader = None;
            // Whole lines read before the failure are still good; the partial one is part of the problem.
            let keep = memchr::memrchr(b'\n', &buf).map_or(0, |p| p + 1);
            buf.truncate(keep);
            let line = self.next_line + memchr::memchr_iter(b'\n', &buf).count() as u64;
            let what = if self.gzip {
                "truncated or corrupt gzip data"
            } else {
                "read error"
            };
            let problem = self.problem(line, format!("{what}: {e}"));
            return Some(self.chunk(buf, Some(problem)));
        }
        if at_end {
            self.reader = None;
            return (!buf.is_empty()).then(|| self.chunk(buf, None));
        }
        match memchr::memrchr(b'\n', &buf) {
            Some(p) => self.carry = buf.split_off(p + 1),
            // A line longer than a chunk: cut it after its last complete record (the chunk then
            // ends mid-line, and the next one goes on with the same line number).
            None => match records_end(&buf) {
                Some(p) => self.carry = buf.split_off(p),
                None => return Some(self.skip_line(buf)),
            },
        }
        Some(self.chunk(buf, None))
    }
}

impl ChunkReader {
    /// Reports the line under way, longer than a chunk with no complete record in it, and reads on
    /// to its end without keeping it.
    fn skip_line(&mut self, mut buf: Vec<u8>) -> Chunk {
        let mut reason = format!(
            "line longer than {} MiB holds no complete record of at most that size; skipped to its end",
            MAX_RECORD_BYTES >> 20
        );
        let reader = self.reader.as_mut().expect("called while reading");
        let line = self.next_line;
        loop {
            buf.clear();
            match reader
                .by_ref()
                .take(CHUNK_BYTES as u64)
                .read_to_end(&mut buf)
            {
                Ok(0) => {
                    self.reader = None;
                    break;
                }
                Ok(_) => {
                    if let Some(p) = memchr::memchr(b'\n', &buf) {
                        self.carry = buf.split_off(p + 1);
                        self.next_line += 1;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.reader = None;
                    reason = format!("{reason}, then a read error: {e}");
                    break;
                }
            }
        }
        let problem = self.problem(line, reason);
        Chunk {
            file_index: self.file_index,
            file: self.name.clone(),
            first_line: line,
            data: Bytes::new(),
            error: Some(problem),
        }
    }
}

/// Where the last complete top-level value of `buf` ends, if one does.
fn records_end(buf: &[u8]) -> Option<usize> {
    let mut end = None;
    let mut at = 0;
    while let Some(len) = object_end(&buf[at..]) {
        at += len;
        end = Some(at);
    }
    end
}

/// A worker's buffers for reading small files whole; reused from file to file, so a scan of
/// thousands of files allocates them once.
#[derive(Debug, Default)]
pub struct WholeFile {
    raw: Vec<u8>,
    text: Vec<u8>,
}

impl WholeFile {
    /// Reads a file input (inflating gzip). `None` means "stream it instead": not a file, unreadable
    /// or damaged, and streaming then reports exactly where.
    pub fn load_input(&mut self, input: &InputFile) -> Option<&[u8]> {
        let Source::File(path) = &input.source else {
            return None;
        };
        self.raw.clear();
        super::gunzip::forget_larger(&mut self.raw, input.size as usize);
        File::open(path)
            .and_then(|mut f| f.read_to_end(&mut self.raw))
            .ok()?;
        if !self.raw.starts_with(&GZIP_MAGIC) {
            return Some(&self.raw);
        }
        super::gunzip::gunzip_into(&self.raw, &mut self.text, WHOLE_FILE_MAX).ok()?;
        Some(&self.text)
    }
}

/// What parsing hands each record or problem to.
pub trait RecordSink {
    fn record(&mut self, record: &ScanRecord<'_>);
    fn malformed(&mut self, problem: Malformed);
}

/// Parses every line of a chunk. Lines may hold several objects with no separator (`}{`, as Firehose
/// writes them); each is a record. Blank lines are skipped. With `validate`, each record is parsed
/// against the full [`LogRecord`] model, so a wrongly typed field anywhere is reported; otherwise only
/// the fields of [`ScanRecord`] are typed and the rest is skipped (checked for JSON structure only).
pub fn parse_chunk(chunk: &Chunk, validate: bool, sink: &mut impl RecordSink) {
    parse_lines(
        &mut super::fast::Index::default(),
        &chunk.data,
        chunk.file_index,
        &chunk.file,
        chunk.first_line,
        validate,
        sink,
    );
    if let Some(p) = &chunk.error {
        sink.malformed(p.clone());
    }
}

/// Parses `data`, whose first line is line `first_line` of input `file` (see [`parse_chunk`]).
/// `index` is scratch space, kept by callers that parse a few lines at a time.
pub fn parse_lines(
    index: &mut super::fast::Index,
    data: &[u8],
    file_index: usize,
    file: &Arc<str>,
    first_line: u64,
    validate: bool,
    sink: &mut impl RecordSink,
) {
    let problem = |line: u64, reason: String| Malformed {
        file_index,
        file: file.clone(),
        line,
        reason,
    };

    let mut start = 0;
    let mut line_no = first_line;
    while start < data.len() {
        let rest = &data[start..];
        // The fast path finds the line's end as it indexes it; validation reads every line with
        // the full model, so it only needs the end.
        let (len, read) = if validate {
            (memchr::memchr(b'\n', rest).unwrap_or(rest.len()), false)
        } else {
            super::fast::next_record(rest, index, |record| sink.record(record))
        };
        let line = rest[..len].trim_ascii();
        let n = line_no;
        (start, line_no) = (start + len + 1, line_no + 1);
        if read || line.is_empty() {
            continue;
        }
        if validate {
            parse_line(line, true, |res: Result<LogRecord, String>| match res {
                Ok(record) => sink.record(&record.view()),
                Err(reason) => sink.malformed(problem(n, reason)),
            });
        } else {
            parse_line(line, false, |res: Result<ScanRecord, String>| match res {
                Ok(record) => sink.record(&record),
                Err(reason) => sink.malformed(problem(n, reason)),
            });
        }
    }
}

/// Calls `f` for each object on a line; stops at the first error, which describes the rest of the line.
/// With `check_utf8`, text that is not UTF-8 is refused before parsing: sonic-rs panics on it inside
/// a value it keeps raw (the full model's `Lazy` fields), and its checked skip words the error.
fn parse_line<'a, T: serde::Deserialize<'a>>(
    line: &'a [u8],
    check_utf8: bool,
    mut f: impl FnMut(Result<T, String>),
) {
    if nests_deeper_than(line, MAX_NESTING) {
        return f(Err(format!("JSON nested deeper than {MAX_NESTING} levels")));
    }
    let parse = |s: &'a [u8]| {
        if check_utf8 && simdutf8::basic::from_utf8(s).is_err() {
            let e = sonic_rs::from_slice::<serde::de::IgnoredAny>(s).err();
            return Err(e.unwrap_or_else(|| serde::de::Error::custom("invalid UTF-8")));
        }
        sonic_rs::from_slice::<T>(s)
    };
    match parse(line) {
        Ok(record) => f(Ok(record)),
        // Several objects glued together (`}{`): split at each top-level object's end. Rare, so the
        // common one-object line pays nothing for it.
        Err(e) if e.to_string().contains("trailing characters") => {
            let mut rest = line;
            while !rest.is_empty() {
                let end = object_end(rest).unwrap_or(rest.len());
                match parse(&rest[..end]) {
                    Ok(record) => f(Ok(record)),
                    Err(e) => return f(Err(describe(&e))),
                }
                rest = rest[end..].trim_ascii_start();
            }
        }
        Err(e) => f(Err(describe(&e))),
    }
}

/// Where the first top-level JSON value of `s` ends (after its closing bracket); `None` when it
/// does not end in `s`.
fn object_end(s: &[u8]) -> Option<usize> {
    brackets(s, |depth, close| close && depth == 0).map(|i| i + 1)
}

/// Whether `s` nests brackets deeper than `limit` (outside strings).
fn nests_deeper_than(s: &[u8], limit: usize) -> bool {
    // So deep a line needs more opening brackets than real records hold, so the exact walk is rare.
    // `[` and `{` differ only in bit 5; sums of bytes per 255 vectorise.
    let opening: usize = s
        .chunks(255)
        .map(|c| usize::from(c.iter().map(|&b| u8::from(b | 0x20 == b'{')).sum::<u8>()))
        .sum();
    opening > limit && brackets(s, |depth, close| !close && depth > limit).is_some()
}

/// Walks the brackets of `s` outside strings, tracking string and nesting state; at each, calls
/// `stop(depth after it, whether it closes)` and returns its position when `stop` says so.
fn brackets(s: &[u8], mut stop: impl FnMut(usize, bool) -> bool) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, &b) in s.iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        let close = match b {
            b'"' => {
                in_string = true;
                continue;
            }
            b'{' | b'[' => {
                depth += 1;
                false
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                true
            }
            _ => continue,
        };
        if stop(depth, close) {
            return Some(i);
        }
    }
    None
}

fn describe(e: &sonic_rs::Error) -> String {
    // sonic-rs appends a multi-line excerpt of the input; the first line is the useful part.
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("invalid JSON").trim();
    first.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Sink {
        records: Vec<i64>,
        malformed: Vec<Malformed>,
    }

    impl RecordSink for Sink {
        fn record(&mut self, record: &ScanRecord<'_>) {
            self.records.push(record.timestamp);
        }
        fn malformed(&mut self, problem: Malformed) {
            self.malformed.push(problem);
        }
    }

    /// Streams `data` from a file as a large input is read; also returns the largest chunk.
    fn stream(data: &[u8]) -> (Sink, usize) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.log");
        std::fs::write(&path, data).unwrap();
        let input = InputFile {
            source: Source::File(path),
            name: Arc::from("f.log"),
            size: data.len() as u64,
        };
        let mut sink = Sink::default();
        let mut largest = 0;
        for chunk in ChunkReader::new(0, &input, Arc::new(|_| {})) {
            largest = largest.max(chunk.data.len());
            parse_chunk(&chunk, false, &mut sink);
        }
        (sink, largest)
    }

    /// A record whose strings hold brackets and an escaped quote, which cutting must not split at.
    fn record(ts: i64) -> String {
        format!(
            r#"{{"timestamp":{ts},"httpRequest":{{"clientIp":"192.0.2.{}","uri":"/}}{{ \"]["}}}}"#,
            ts % 250
        )
    }

    #[test]
    fn a_firehose_line_of_any_length_is_read_record_by_record() {
        let mut data = String::new();
        let mut n = 0;
        while data.len() < 3 * CHUNK_BYTES + 17 {
            data.push_str(&record(n));
            n += 1;
        }
        data.push('\n');
        data.push_str(&record(n));
        data.push('\n');
        let (sink, largest) = stream(data.as_bytes());
        assert!(sink.malformed.is_empty(), "{:?}", &sink.malformed[..1]);
        assert_eq!(sink.records, (0..=n).collect::<Vec<_>>());
        assert!(largest <= CHUNK_BYTES + 64 * 1024, "{largest}");
    }

    #[test]
    fn an_overlong_line_without_records_is_malformed_and_skipped() {
        // Exactly one chunk of it at the end of the input (`python3 -c "print('x'*1048576)"`).
        let (sink, _) = stream(&[b'x'; CHUNK_BYTES]);
        assert!(sink.records.is_empty());
        assert_eq!(sink.malformed.len(), 1);
        assert_eq!(
            sink.malformed[0].to_string(),
            "f.log:1: line longer than 1 MiB holds no complete record of at most that size; skipped to its end"
        );
        // Longer, and followed by good lines, which keep their numbers.
        let mut data = vec![b'x'; 2 * CHUNK_BYTES + 5];
        data.extend_from_slice(format!("\n{}\n{}", record(7), record(8)).as_bytes());
        let (sink, _) = stream(&data);
        assert_eq!(sink.records, [7, 8]);
        assert_eq!(sink.malformed.len(), 1);
        assert_eq!(sink.malformed[0].line, 1);
    }

    #[test]
    fn an_overlong_record_in_a_firehose_line_skips_the_rest_of_the_line() {
        let huge = format!(
            r#"{{"timestamp":2,"httpRequest":{{"clientIp":"192.0.2.2"}},"x":"{}"}}"#,
            "y".repeat(2 * MAX_RECORD_BYTES)
        );
        let data = format!(
            "{}\n{}{huge}{}\n{}\n",
            record(0),
            record(1),
            record(3),
            record(4)
        );
        let (sink, _) = stream(data.as_bytes());
        assert_eq!(sink.records, [0, 1, 4]);
        assert_eq!(sink.malformed.len(), 1);
        assert_eq!(sink.malformed[0].line, 2);
    }

    #[test]
    fn deep_nesting_is_malformed_on_both_paths() {
        // Parsing 128 levels takes more stack than a test thread has in a debug build.
        std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn(deep_nesting)
            .unwrap()
            .join()
            .unwrap();
    }

    fn deep_nesting() {
        let nested = |levels: usize| {
            format!(
                r#"{{"timestamp":1,"x":{}{},"httpRequest":{{"clientIp":"192.0.2.1"}}}}"#,
                "[".repeat(levels),
                "]".repeat(levels)
            )
        };
        for validate in [false, true] {
            let mut sink = Sink::default();
            // The record's own object is one level.
            let ok = nested(MAX_NESTING - 1);
            let deep = nested(10_000);
            let data = format!("{ok}\n{deep}\n");
            parse_lines(
                &mut Default::default(),
                data.as_bytes(),
                0,
                &Arc::from("f"),
                1,
                validate,
                &mut sink,
            );
            assert_eq!(sink.records, [1], "validate: {validate}");
            assert_eq!(sink.malformed.len(), 1);
            assert_eq!(
                sink.malformed[0].to_string(),
                "f:2: JSON nested deeper than 128 levels"
            );
        }
        // The fast path leaves the first refused depth to the serde path.
        let mut index = super::super::fast::Index::default();
        assert!(
            super::super::fast::scan_record(nested(MAX_NESTING - 1).as_bytes(), &mut index).is_ok()
        );
        assert!(
            super::super::fast::scan_record(nested(MAX_NESTING).as_bytes(), &mut index).is_err()
        );
        assert!(!nests_deeper_than(br#"{"a":"[[[[[[","b":[[]]}"#, 3));
    }

    #[test]
    fn object_ends_skip_strings_and_escapes() {
        let one = br#"{"a":"}\"]\\","b":[{}]}"#;
        let mut two = one.to_vec();
        two.extend_from_slice(b" {\"c\":1}");
        assert_eq!(object_end(&two), Some(one.len()));
        assert_eq!(records_end(&two), Some(two.len()));
        for open in [&b"{\"a\":\"\\"[..], b"{\"a", b"{\"a\":[1]", b"x"] {
            assert_eq!(object_end(open), None, "{}", String::from_utf8_lossy(open));
        }
    }

    #[test]
    fn invalid_utf8_in_a_value_kept_raw_is_malformed_on_both_paths() {
        // Found by the fuzzer: the full model keeps `rateBasedRuleList` raw, and sonic-rs panicked.
        let line = b"{\"timestamp\":1,\"rateBasedRuleList\":[{\"\xffid\":\"5\"}],\"httpRequest\":{\"clientIp\":\"192.0.2.1\"}}\n";
        let mut reasons = Vec::new();
        for validate in [false, true] {
            let mut sink = Sink::default();
            parse_lines(
                &mut Default::default(),
                line,
                0,
                &Arc::from("f"),
                1,
                validate,
                &mut sink,
            );
            assert!(sink.records.is_empty());
            assert_eq!(sink.malformed.len(), 1);
            reasons.push(sink.malformed[0].to_string());
        }
        assert_eq!(reasons[0], reasons[1]);
        assert!(reasons[0].contains("Invalid UTF-8"), "{}", reasons[0]);
        assert!(nests_deeper_than(br#"{"a":"]]]","b":[[[]]]}"#, 3));
    }
}
