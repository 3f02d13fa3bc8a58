//! Finding the log files to read: single files, directories walked recursively, the S3 delivery layout
//! (`AWSLogs/<acct>/WAFLogs/<region>/<acl>/YYYY/MM/dd/HH/mm/`) and Firehose's `year=/month=/...` prefixes,
//! and `-` for standard input.
//!
//! With a time range, directories whose path says they hold only other times are pruned before any file
//! in them is opened: at 120 GB a day this is what makes "last week" cheap.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::civil::DateTime;
use jiff::{Span, Timestamp, ToSpan, tz::TimeZone};

/// A half-open time range `[since, until)` in epoch milliseconds; `None` is unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub since: Option<i64>,
    pub until: Option<i64>,
}

impl TimeRange {
    pub fn new(since: Option<Timestamp>, until: Option<Timestamp>) -> TimeRange {
        TimeRange {
            since: since.map(|t| t.as_millisecond()),
            until: until.map(|t| t.as_millisecond()),
        }
    }

    pub fn contains(&self, ms: i64) -> bool {
        self.since.is_none_or(|s| ms >= s) && self.until.is_none_or(|u| ms < u)
    }

    /// Whether `[start, end)` can hold a record of this range.
    pub fn overlaps(&self, start: i64, end: i64) -> bool {
        self.since.is_none_or(|s| end > s) && self.until.is_none_or(|u| start < u)
    }

    pub fn is_unbounded(&self) -> bool {
        self.since.is_none() && self.until.is_none()
    }
}

/// Files up to this size (compressed and decompressed) are inflated whole with libdeflate;
/// larger ones stream, so memory stays bounded whatever the input.
pub const WHOLE_FILE_MAX: usize = 16 << 20;

/// Where bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Stdin,
    File(PathBuf),
}

/// One input to read, in the stable order in which it was found.
#[derive(Debug, Clone)]
pub struct InputFile {
    pub source: Source,
    /// The name used in messages (`file:line: reason`).
    pub name: Arc<str>,
    /// Size on disk (compressed size for gzip), for progress; 0 for stdin.
    pub size: u64,
}

impl InputFile {
    /// Small enough to read and inflate whole: S3 delivers ~5-minute files of a few MB. For gzip the
    /// uncompressed size in the trailer decides, so a large log (WAF cuts files at 75 MB) is streamed
    /// and shared between workers instead.
    pub fn fits_in_memory(&self) -> bool {
        let max = WHOLE_FILE_MAX as u64;
        let Source::File(path) = &self.source else {
            return false;
        };
        self.size <= max && gzip_size(path).is_none_or(|n| n <= max)
    }
}

/// The uncompressed size a gzip file's trailer records (of its last member), or `None` when the file
/// is not gzip or cannot be read (reading it later reports why).
fn gzip_size(path: &Path) -> Option<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let mut magic = [0u8; 2];
    f.read_exact(&mut magic).ok()?;
    if magic != [0x1f, 0x8b] {
        return None;
    }
    let mut isize = [0u8; 4];
    f.seek(SeekFrom::End(-4)).ok()?;
    f.read_exact(&mut isize).ok()?;
    Some(u64::from(u32::from_le_bytes(isize)))
}

#[derive(Debug, Default)]
pub struct Discovered {
    pub files: Vec<InputFile>,
    /// Directories skipped because their path lies outside the time range.
    pub pruned_dirs: u64,
    /// Files in walked directories that do not look like logs (`README.md`, `.DS_Store`, ...).
    pub skipped_files: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("log path `{path}` does not exist")]
    NotFound { path: PathBuf },
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Extensions read when walking a directory. Firehose writes files without an extension, so those count too.
const LOG_EXTENSIONS: &[&str] = &["gz", "json", "jsonl", "ndjson", "log", "txt"];

/// Records may be written into a folder up to a delivery interval after (or before) its path time;
/// this slack keeps pruning from ever dropping such a record. Exact filtering happens on `timestamp`.
const PATH_TIME_SLACK_MS: i64 = 15 * 60 * 1000;

/// Expands the user's paths into files, pruning dated directories outside `range`.
pub fn discover(paths: &[PathBuf], range: &TimeRange) -> Result<Discovered, InputError> {
    let mut out = Discovered::default();
    for path in paths {
        if path.as_os_str() == "-" {
            out.files.push(InputFile {
                source: Source::Stdin,
                name: Arc::from("<stdin>"),
                size: 0,
            });
            continue;
        }
        let meta = std::fs::metadata(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => InputError::NotFound { path: path.clone() },
            _ => InputError::Io {
                path: path.clone(),
                source,
            },
        })?;
        if meta.is_dir() {
            walk(path, range, &mut out)?;
        } else {
            out.files.push(input_file(path, meta.len()));
        }
    }
    Ok(out)
}

fn input_file(path: &Path, size: u64) -> InputFile {
    InputFile {
        source: Source::File(path.to_owned()),
        name: Arc::from(path.display().to_string()),
        size,
    }
}

fn walk(dir: &Path, range: &TimeRange, out: &mut Discovered) -> Result<(), InputError> {
    if !range.is_unbounded()
        && let Some((start, end)) = path_time_span(dir)
        && !range.overlaps(start - PATH_TIME_SLACK_MS, end + PATH_TIME_SLACK_MS)
    {
        out.pruned_dirs += 1;
        return Ok(());
    }
    let io = |source| InputError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<_, _>>()
        .map_err(io)?;
    // Sorted, so file order (and with it the order of reported problems) is the same on every run.
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let meta = std::fs::metadata(&path).map_err(|source| InputError::Io {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            walk(&path, range, out)?;
        } else if looks_like_log(&path) {
            out.files.push(input_file(&path, meta.len()));
        } else {
            out.skipped_files += 1;
        }
    }
    Ok(())
}

fn looks_like_log(path: &Path) -> bool {
    match path.extension() {
        None => true,
        Some(ext) => {
            let ext = ext.to_string_lossy().to_ascii_lowercase();
            LOG_EXTENSIONS.contains(&ext.as_str())
        }
    }
}

/// The time span a dated directory covers, from its trailing path components:
/// `.../2026/11/20/13/05` (S3 delivery) or `.../year=2026/month=11/day=20/hour=13` (Firehose).
/// `None` when the path carries no date.
pub fn path_time_span(dir: &Path) -> Option<(i64, i64)> {
    let parts: Vec<String> = dir
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    // Find the year component, then read as many finer components as follow it.
    let year_at = parts.iter().rposition(|p| {
        let v = strip_key(p);
        v.len() == 4 && v.parse::<i16>().is_ok_and(|y| (1970..=2200).contains(&y))
    })?;
    let year: i16 = strip_key(&parts[year_at]).parse().ok()?;
    let mut fields = [1i8, 1, 0, 0]; // month, day, hour, minute
    let limits = [(1, 12), (1, 31), (0, 23), (0, 59)];
    let mut depth = 0;
    for (i, part) in parts[year_at + 1..].iter().take(4).enumerate() {
        let v = strip_key(part);
        match v.parse::<i8>() {
            Ok(n) if v.len() == 2 && (limits[i].0..=limits[i].1).contains(&n) => {
                fields[i] = n;
                depth += 1;
            }
            _ => return None,
        }
    }
    let start = DateTime::new(year, fields[0], fields[1], fields[2], fields[3], 0, 0).ok()?;
    let unit: Span = match depth {
        0 => 1.year(),
        1 => 1.month(),
        2 => 1.day(),
        3 => 1.hour(),
        _ => 1.minute(),
    };
    let end = start.checked_add(unit).ok()?;
    let ms = |dt: DateTime| {
        dt.to_zoned(TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp().as_millisecond())
    };
    Some((ms(start)?, ms(end)?))
}

/// `year=2026` -> `2026`; `2026` stays.
fn strip_key(part: &str) -> &str {
    part.split_once('=').map_or(part, |(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn s3_layout_spans() {
        let p = Path::new("logs/AWSLogs/123456789012/WAFLogs/ap-northeast-1/shop/2026/11/20/13/05");
        assert_eq!(
            path_time_span(p),
            Some((ms("2026-11-20T13:05:00Z"), ms("2026-11-20T13:06:00Z")))
        );
        let p = Path::new("AWSLogs/1/WAFLogs/cloudfront/acl/2026/11");
        assert_eq!(
            path_time_span(p),
            Some((ms("2026-11-01T00:00:00Z"), ms("2026-12-01T00:00:00Z")))
        );
    }

    #[test]
    fn firehose_layout_spans() {
        let p = Path::new("fh/year=2026/month=02/day=28/hour=23");
        assert_eq!(
            path_time_span(p),
            Some((ms("2026-02-28T23:00:00Z"), ms("2026-03-01T00:00:00Z")))
        );
    }

    #[test]
    fn undated_paths_have_no_span() {
        assert_eq!(path_time_span(Path::new("tests/fixtures")), None);
        assert_eq!(path_time_span(Path::new("x/2026/13")), None);
        assert_eq!(path_time_span(Path::new("x/2026/1")), None);
    }

    #[test]
    fn range_overlap_and_contains() {
        let r = TimeRange {
            since: Some(100),
            until: Some(200),
        };
        assert!(r.contains(100) && r.contains(199) && !r.contains(200) && !r.contains(99));
        assert!(r.overlaps(150, 250) && !r.overlaps(200, 300) && !r.overlaps(0, 100));
        assert!(TimeRange::default().overlaps(0, 1));
    }

    #[test]
    fn prunes_dated_directories_outside_range() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["2026/11/19/23/55", "2026/11/20/00/00", "2026/11/21/10/00"] {
            let p = dir.path().join("AWSLogs/1/WAFLogs/r/acl").join(d);
            std::fs::create_dir_all(&p).unwrap();
            std::fs::write(p.join("a.log.gz"), b"").unwrap();
            std::fs::write(p.join("notes.md"), b"").unwrap();
        }
        let range = TimeRange {
            since: Some(ms("2026-11-20T00:00:00Z")),
            until: Some(ms("2026-11-21T00:00:00Z")),
        };
        let found = discover(&[dir.path().to_owned()], &range).unwrap();
        let names: Vec<_> = found.files.iter().map(|f| f.name.to_string()).collect();
        // 23:55 on the 19th is kept: its records may run into the range (slack); the 21st is pruned.
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names[0].contains("2026/11/19/23/55") && names[1].contains("2026/11/20/00/00"));
        assert_eq!(found.pruned_dirs, 1);
        assert_eq!(found.skipped_files, 2);
    }

    #[test]
    fn missing_path_is_named() {
        let err = discover(&[PathBuf::from("/nonexistent/x")], &TimeRange::default()).unwrap_err();
        assert_eq!(err.to_string(), "log path `/nonexistent/x` does not exist");
    }
}
