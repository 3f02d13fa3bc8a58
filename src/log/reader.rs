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
use super::record::LogRecord;
use super::view::ScanRecord;

/// Target size of one chunk of decompressed text.
pub const CHUNK_BYTES: usize = 1 << 20;

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
            // A single line longer than a chunk: keep reading it.
            None => {
                self.carry = buf;
                return self.next();
            }
        }
        Some(self.chunk(buf, None))
    }
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
pub fn parse_lines(
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

    let mut index = super::fast::Index::default();
    let mut start = 0;
    let mut line_no = first_line;
    while start < data.len() {
        let rest = &data[start..];
        // The fast path finds the line's end as it indexes it; validation reads every line with
        // the full model, so it only needs the end.
        let (len, read) = if validate {
            (memchr::memchr(b'\n', rest).unwrap_or(rest.len()), false)
        } else {
            super::fast::next_record(rest, &mut index, |record| sink.record(record))
        };
        let line = rest[..len].trim_ascii();
        let n = line_no;
        (start, line_no) = (start + len + 1, line_no + 1);
        if read || line.is_empty() {
            continue;
        }
        if validate {
            parse_line(line, |res: Result<LogRecord, String>| match res {
                Ok(record) => sink.record(&record.view()),
                Err(reason) => sink.malformed(problem(n, reason)),
            });
        } else {
            parse_line(line, |res: Result<ScanRecord, String>| match res {
                Ok(record) => sink.record(&record),
                Err(reason) => sink.malformed(problem(n, reason)),
            });
        }
    }
}

/// Calls `f` for each object on a line; stops at the first error, which describes the rest of the line.
fn parse_line<'a, T: serde::Deserialize<'a>>(line: &'a [u8], mut f: impl FnMut(Result<T, String>)) {
    match sonic_rs::from_slice::<T>(line) {
        Ok(record) => f(Ok(record)),
        // Several objects glued together (`}{`): split at each top-level object's end. Rare, so the
        // common one-object line pays nothing for it.
        Err(e) if e.to_string().contains("trailing characters") => {
            let mut rest = line;
            while !rest.is_empty() {
                let end = object_end(rest);
                match sonic_rs::from_slice::<T>(&rest[..end]) {
                    Ok(record) => f(Ok(record)),
                    Err(e) => return f(Err(describe(&e))),
                }
                rest = rest[end..].trim_ascii_start();
            }
        }
        Err(e) => f(Err(describe(&e))),
    }
}

/// Where the first top-level JSON value of `s` ends (after its closing brace), found by tracking
/// string and nesting state; the whole input when it never closes.
fn object_end(s: &[u8]) -> usize {
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
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    s.len()
}

fn describe(e: &sonic_rs::Error) -> String {
    // sonic-rs appends a multi-line excerpt of the input; the first line is the useful part.
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("invalid JSON").trim();
    first.to_owned()
}
