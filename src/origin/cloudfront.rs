//! CloudFront standard logs (the W3C format of standard logging, legacy and v2): tab-separated
//! fields after `#Version:` and `#Fields:` header lines. The field list is read from `#Fields`,
//! never assumed: distributions log different fields, and a file may declare them again part way.
//! Values are URL-encoded (`%20`; some twice, `%2520`), `-` means empty. Standard logging v2 can
//! also write JSON: one flat object a line, the same field names as keys, values as strings; such
//! lines are read through the same layout, built from the object's keys.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::de::{Deserialize, Deserializer, Visitor};

use super::{OriginKind, OriginRecord, civil_ms, secs_to_ms};

/// Fields an entry must have to be read.
pub const REQUIRED: [&str; 4] = ["date", "time", "c-ip", "sc-status"];

/// Where the fields origin analysis reads sit in a line, from a `#Fields` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Every field name, in order.
    pub names: Vec<String>,
    date: usize,
    time: usize,
    c_ip: usize,
    sc_status: usize,
    sc_bytes: Option<usize>,
    time_taken: Option<usize>,
    time_to_first_byte: Option<usize>,
    x_forwarded_for: Option<usize>,
}

impl Layout {
    /// Reads the names after `#Fields:`; an error names a required field that is missing.
    pub fn from_header(names: &str) -> Result<Layout, String> {
        let names = names.split_ascii_whitespace().map(str::to_owned).collect();
        Layout::from_names(names).map_err(|name| format!("`#Fields` lacks `{name}`"))
    }

    /// The layout of `names`, in order; `Err` names a required field that is missing.
    fn from_names(names: Vec<String>) -> Result<Layout, &'static str> {
        let at = |name: &str| names.iter().position(|n| n == name);
        let need = |name: &'static str| at(name).ok_or(name);
        Ok(Layout {
            date: need(REQUIRED[0])?,
            time: need(REQUIRED[1])?,
            c_ip: need(REQUIRED[2])?,
            sc_status: need(REQUIRED[3])?,
            sc_bytes: at("sc-bytes"),
            time_taken: at("time-taken"),
            time_to_first_byte: at("time-to-first-byte"),
            x_forwarded_for: at("x-forwarded-for"),
            names,
        })
    }
}

/// One entry: its values in `#Fields` order, borrowed and still encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudFrontEntry<'a> {
    pub values: Vec<&'a str>,
    pub time_ms: i64,
}

impl<'a> CloudFrontEntry<'a> {
    /// The decoded value of field `name` (`None`: not logged, or `-`).
    pub fn get(&self, layout: &Layout, name: &str) -> Option<Cow<'a, str>> {
        let i = layout.names.iter().position(|n| n == name)?;
        decoded(self.values.get(i)?)
    }

    pub fn record(&self, layout: &Layout) -> Result<OriginRecord<'a>, String> {
        let v = |i: usize| self.values.get(i).copied().unwrap_or("-");
        let bad = |i: usize, what: &str| format!("`{}` is not {what}: `{}`", layout.names[i], v(i));
        let status = match v(layout.sc_status) {
            "-" | "000" => None,
            s if s.len() == 3 => Some(
                s.parse()
                    .map_err(|_| bad(layout.sc_status, "a status code"))?,
            ),
            _ => return Err(bad(layout.sc_status, "a status code")),
        };
        let secs = |i: Option<usize>| -> Result<Option<u32>, String> {
            match i.map(v) {
                None | Some("-") => Ok(None),
                Some(s) => secs_to_ms(s)
                    .map(Some)
                    .ok_or_else(|| bad(i.unwrap_or_default(), "seconds")),
            }
        };
        let first_byte = secs(layout.time_to_first_byte)?;
        let taken = secs(layout.time_taken)?;
        let bytes_sent = match layout.sc_bytes.map(v) {
            None | Some("-") => 0,
            Some(s) => s
                .parse()
                .map_err(|_| bad(layout.sc_bytes.unwrap_or_default(), "a byte count"))?,
        };
        let client = v(layout.c_ip);
        if client == "-" {
            return Err(bad(layout.c_ip, "an address"));
        }
        Ok(OriginRecord {
            kind: OriginKind::Cloudfront,
            time_ms: self.time_ms,
            client,
            forwarded_for: layout
                .x_forwarded_for
                .and_then(|i| decoded(v(i)))
                .map(Cow::into_owned),
            status,
            origin_ms: first_byte.or(taken),
            bytes_sent,
        })
    }
}

/// A value with its URL encoding undone, as many times as CloudFront applied it; `None` for `-`.
pub fn decoded(value: &str) -> Option<Cow<'_, str>> {
    if value == "-" {
        return None;
    }
    let mut out: Cow<'_, str> = Cow::Borrowed(value);
    // `%2520` is `%20` encoded again; two passes undo what CloudFront does.
    for _ in 0..2 {
        if !out.contains('%') {
            break;
        }
        let next = percent_encoding::percent_decode_str(&out)
            .decode_utf8_lossy()
            .into_owned();
        out = Cow::Owned(next);
    }
    Some(out)
}

/// What one line of a CloudFront log is.
#[derive(Debug, Clone, PartialEq)]
pub enum Line<'a> {
    /// `#Version`, `#Fields` (already applied to the reader) or another comment.
    Header,
    Entry(CloudFrontEntry<'a>),
    /// A line of the JSON output, to read with [`Reader::json_layout`].
    Json(JsonEntry<'a>),
}

/// Reads a CloudFront log line by line, carrying the `#Fields` layout across lines.
#[derive(Debug, Clone, Default)]
pub struct Reader {
    pub layout: Option<Layout>,
    /// Why the last `#Fields` header cannot be used; lines under it are malformed for that reason.
    broken_header: Option<String>,
    /// The fields of the last JSON line (its keys, sorted).
    pub json_layout: Option<Layout>,
}

impl Reader {
    pub fn line<'a>(&mut self, line: &'a str) -> Result<Line<'a>, String> {
        if line.starts_with('{') {
            return self.json(line).map(Line::Json);
        }
        if let Some(comment) = line.strip_prefix('#') {
            if let Some(names) = comment.strip_prefix("Fields:") {
                match Layout::from_header(names) {
                    Ok(layout) => {
                        self.layout = Some(layout);
                        self.broken_header = None;
                    }
                    Err(e) => {
                        self.layout = None;
                        self.broken_header = Some(e.clone());
                        return Err(e);
                    }
                }
            }
            return Ok(Line::Header);
        }
        let Some(layout) = &self.layout else {
            return Err(self
                .broken_header
                .clone()
                .unwrap_or_else(|| "entry before any `#Fields` header".to_owned()));
        };
        let values: Vec<&str> = line.split('\t').collect();
        if values.len() < layout.names.len() {
            return Err(format!(
                "CloudFront entry has {} fields; `#Fields` names {}",
                values.len(),
                layout.names.len()
            ));
        }
        let time_ms = entry_time(values[layout.date], values[layout.time])?;
        Ok(Line::Entry(CloudFrontEntry { values, time_ms }))
    }

    /// A line of standard logging v2's JSON output; its layout is kept while the keys stay the same.
    fn json<'a>(&mut self, line: &'a str) -> Result<JsonEntry<'a>, String> {
        let object = json_object(line)
            .map_err(|e| format!("not a flat JSON object of CloudFront fields: {e}"))?;
        let same = self.json_layout.as_ref().is_some_and(|l| {
            l.names
                .iter()
                .map(String::as_str)
                .eq(object.keys().map(|k| k.0.as_ref()))
        });
        if !same {
            self.json_layout = None;
            let names = object.keys().map(|k| k.0.clone().into_owned()).collect();
            let layout = Layout::from_names(names)
                .map_err(|name| format!("CloudFront JSON entry lacks `{name}`"))?;
            self.json_layout = Some(layout);
        }
        let layout = self.json_layout.as_ref().expect("set above");
        let values: Vec<Cow<'a, str>> = object.into_values().map(|v| v.0).collect();
        let time_ms = entry_time(&values[layout.date], &values[layout.time])?;
        Ok(JsonEntry { values, time_ms })
    }
}

/// Epoch milliseconds of an entry's `date` and `time`.
fn entry_time(date: &str, time: &str) -> Result<i64, String> {
    civil_ms(date.as_bytes(), time.as_bytes())
        .ok_or_else(|| format!("`date` and `time` are not a UTC time: `{date} {time}`"))
}

/// A scalar JSON value as text, borrowed from the line unless it had escapes: standard logging v2
/// writes strings (`"sc-status":"200"`); numbers are taken as written, `null` as `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Scalar;
        impl<'de> Visitor<'de> for Scalar {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_unit<E>(self) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed("-")))
            }
        }
        d.deserialize_any(Scalar)
    }
}

/// A JSON line's fields by name (sorted, so lines with the same fields share a layout).
fn json_object(line: &str) -> Result<BTreeMap<Text<'_>, Text<'_>>, serde_json::Error> {
    serde_json::from_str(line)
}

/// An entry of standard logging v2's JSON output: its values in the order of the reader's
/// `json_layout`.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonEntry<'a> {
    values: Vec<Cow<'a, str>>,
    time_ms: i64,
}

impl JsonEntry<'_> {
    /// The entry as a W3C one (borrowing from this), to read with the reader's `json_layout`.
    pub fn entry(&self) -> CloudFrontEntry<'_> {
        CloudFrontEntry {
            values: self.values.iter().map(AsRef::as_ref).collect(),
            time_ms: self.time_ms,
        }
    }
}

/// Field names only CloudFront logs use: a flat JSON object with one of them is a line of standard
/// logging v2's JSON output (a WAF record is never flat).
const JSON_MARKS: [&str; 6] = [
    "c-ip",
    "sc-status",
    "x-edge-location",
    "x-edge-request-id",
    "x-host-header",
    "cs-uri-stem",
];

/// Whether a file's first line starts a CloudFront standard log (W3C headers, or a JSON entry).
pub fn looks_like(first_line: &str) -> bool {
    first_line.starts_with("#Version:")
        || first_line.starts_with("#Fields:")
        || (first_line.starts_with('{')
            && json_object(first_line).is_ok_and(|o| {
                JSON_MARKS
                    .iter()
                    .any(|m| o.contains_key(&Text(Cow::Borrowed(m))))
            }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS_2019: &str = "#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end";
    const ENTRY_502: &str = "2019-12-13\t22:36:27\tSEA19-C1\t900\t192.0.2.200\tGET\td111111abcdef8.cloudfront.net\t/favicon.ico\t502\thttp://www.example.com/\tMozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)%20AppleWebKit/537.36%20(KHTML,%20like%20Gecko)%20Chrome/78.0.3904.108%20Safari/537.36\t-\t-\tError\t1pkpNfBQ39sYMnjjUQjmH2w1wdJnbHYTbag21o_3OfcQgPzdL2RSSQ==\twww.example.com\thttp\t675\t0.102\t-\t-\t-\tError\tHTTP/1.1\t-\t-\t25260\t0.102\tOriginDnsError\ttext/html\t507\t-\t-";

    #[test]
    fn header_drives_the_fields() {
        let mut r = Reader::default();
        assert_eq!(r.line("#Version: 1.0"), Ok(Line::Header));
        assert_eq!(r.line(FIELDS_2019), Ok(Line::Header));
        let Ok(Line::Entry(e)) = r.line(ENTRY_502) else {
            panic!("not an entry")
        };
        let layout = r.layout.as_ref().unwrap();
        let rec = e.record(layout).unwrap();
        assert_eq!(rec.client, "192.0.2.200");
        assert_eq!(
            (rec.status, rec.origin_ms, rec.bytes_sent),
            (Some(502), Some(102), 900)
        );
        assert_eq!(
            e.get(layout, "cs(User-Agent)").unwrap(),
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/78.0.3904.108 Safari/537.36"
        );
        assert_eq!(
            e.get(layout, "x-edge-detailed-result-type").unwrap(),
            "OriginDnsError"
        );
        assert_eq!(e.get(layout, "x-forwarded-for"), None);

        // A shorter field list declared later: the same reader follows it.
        assert_eq!(
            r.line("#Fields: time date sc-status c-ip x-forwarded-for"),
            Ok(Line::Header)
        );
        let Ok(Line::Entry(e)) =
            r.line("01:00:00\t2019-12-14\t000\t10.0.0.1\t203.0.113.9%2C%2010.0.0.1")
        else {
            panic!("not an entry")
        };
        let rec = e.record(r.layout.as_ref().unwrap()).unwrap();
        assert_eq!((rec.status, rec.origin_ms, rec.bytes_sent), (None, None, 0));
        assert_eq!(rec.client_for(true), "203.0.113.9");
        assert_eq!(rec.client_for(false), "10.0.0.1");
    }

    #[test]
    fn problems_are_reasons() {
        let mut r = Reader::default();
        assert_eq!(
            r.line(ENTRY_502),
            Err("entry before any `#Fields` header".into())
        );
        assert_eq!(
            r.line("#Fields: date time sc-status"),
            Err("`#Fields` lacks `c-ip`".into())
        );
        assert_eq!(r.line(ENTRY_502), Err("`#Fields` lacks `c-ip`".into()));
        r.line(FIELDS_2019).unwrap();
        assert_eq!(
            r.line("2019-12-13\t22:36:27\tSEA19-C1"),
            Err("CloudFront entry has 3 fields; `#Fields` names 33".into())
        );
        let bad = ENTRY_502.replace("22:36:27", "22:36");
        assert_eq!(
            r.line(&bad),
            Err("`date` and `time` are not a UTC time: `2019-12-13 22:36`".into())
        );
        let bad_status = ENTRY_502.replace("\t502\t", "\t5o2\t");
        let Ok(Line::Entry(e)) = r.line(&bad_status) else {
            panic!()
        };
        assert_eq!(
            e.record(r.layout.as_ref().unwrap()).unwrap_err(),
            "`sc-status` is not a status code: `5o2`"
        );
    }

    /// Standard logging v2's JSON output: the same fields as keys, values as strings (numbers and
    /// `null` taken too), escapes undone; a line without a required field names it.
    #[test]
    fn json_lines_are_read_through_a_layout_of_their_keys() {
        let mut r = Reader::default();
        let line = r#"{"date":"2019-12-13","time":"22:36:27","c-ip":"192.0.2.200","sc-status":"502","sc-bytes":"900","time-to-first-byte":"0.102","x-forwarded-for":"203.0.113.9,%20192.0.2.200","cs(User-Agent)":"curl/7.55.1 \"quoted\""}"#;
        let Ok(Line::Json(e)) = r.line(line) else {
            panic!("not a JSON entry")
        };
        let layout = r.json_layout.clone().unwrap();
        let entry = e.entry();
        let rec = entry.record(&layout).unwrap();
        assert_eq!(rec.client, "192.0.2.200");
        assert_eq!(
            (rec.status, rec.origin_ms, rec.bytes_sent),
            (Some(502), Some(102), 900)
        );
        assert_eq!(rec.client_for(true), "203.0.113.9");
        assert_eq!(
            entry.get(&layout, "cs(User-Agent)").unwrap(),
            "curl/7.55.1 \"quoted\""
        );
        // Numbers and null, in another order: a layout of their own.
        let Ok(Line::Json(e)) = r.line(
            r#"{"sc-status":200,"c-ip":"2001:db8::1","time":"00:00:01","date":"2024-11-15","time-taken":0.25,"sc-bytes":null}"#,
        ) else {
            panic!("not a JSON entry")
        };
        let rec = e.entry().record(r.json_layout.as_ref().unwrap()).unwrap();
        assert_eq!(
            (rec.client, rec.status, rec.origin_ms, rec.bytes_sent),
            ("2001:db8::1", Some(200), Some(250), 0)
        );
        for (line, reason) in [
            (
                r#"{"date":"2024-11-15","time":"19:45:51","x-edge-location":"SOF50-P2"}"#,
                "CloudFront JSON entry lacks `c-ip`",
            ),
            (
                r#"{"date":"2024-11-15","time":"19:45","c-ip":"192.0.2.1","sc-status":"200"}"#,
                "`date` and `time` are not a UTC time: `2024-11-15 19:45`",
            ),
        ] {
            assert_eq!(r.line(line), Err(reason.to_owned()), "{line}");
        }
        let nested = r.line(r#"{"c-ip":{"a":1}}"#).unwrap_err();
        assert!(
            nested.starts_with("not a flat JSON object of CloudFront fields: invalid type: map"),
            "{nested}"
        );
    }

    #[test]
    fn json_first_lines_are_cloudfront_only_with_its_fields() {
        assert!(looks_like(
            r#"{"date":"2024-11-15","time":"19:45:51","x-edge-location":"SOF50-P2","asn":"16509"}"#
        ));
        assert!(looks_like(r#"{"c-ip":"192.0.2.1"}"#));
        for waf in [
            r#"{"timestamp":1,"formatVersion":1}"#,
            r#"{"timestamp":1,"httpRequest":{"clientIp":"192.0.2.1"},"c-ip":"x"}"#,
            "{}",
            "{",
        ] {
            assert!(!looks_like(waf), "{waf}");
        }
    }

    #[test]
    fn double_encoding_is_undone() {
        assert_eq!(
            decoded("Mozilla/5.0%2520(Macintosh)").unwrap(),
            "Mozilla/5.0 (Macintosh)"
        );
        assert_eq!(decoded("plain").unwrap(), "plain");
        assert_eq!(decoded("-"), None);
    }
}
