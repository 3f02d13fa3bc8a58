//! Application Load Balancer access logs: one request a line, fields separated by single spaces,
//! some in double quotes (`"GET https://... HTTP/1.1"`), in the order the ELB user guide
//! documents ("Access log entries"). Newer load balancers append fields; older ones wrote fewer,
//! so a line may end after any field from [`MIN_FIELDS`] on, and fields past the known ones are
//! ignored (as AWS asks of parsers). `-` means "none", and `-1` a time that was not measured.

use super::{OriginKind, OriginRecord, civil_ms, secs_to_ms};

/// Every documented field, in log order.
pub const FIELDS: [&str; 33] = [
    "type",
    "time",
    "elb",
    "client:port",
    "target:port",
    "request_processing_time",
    "target_processing_time",
    "response_processing_time",
    "elb_status_code",
    "target_status_code",
    "received_bytes",
    "sent_bytes",
    "request",
    "user_agent",
    "ssl_cipher",
    "ssl_protocol",
    "target_group_arn",
    "trace_id",
    "domain_name",
    "chosen_cert_arn",
    "matched_rule_priority",
    "request_creation_time",
    "actions_executed",
    "redirect_url",
    "error_reason",
    "target:port_list",
    "target_status_code_list",
    "classification",
    "classification_reason",
    "conn_trace_id",
    "transformed_host",
    "transformed_uri",
    "request_transform_status",
];

/// The fields of the first ALB log format (2016: up to `trace_id`); shorter lines are not entries.
pub const MIN_FIELDS: usize = 18;

/// The request types ALB logs (`type`, the first field).
pub const TYPES: [&str; 6] = ["http", "https", "h2", "grpcs", "ws", "wss"];

/// One access log entry, every field borrowed from the line (`None`: `-`, or absent from an
/// older, shorter line). Quoted fields keep their escapes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlbEntry<'a> {
    pub kind: &'a str,
    pub time_ms: i64,
    pub elb: &'a str,
    pub client: &'a str,
    pub client_port: Option<u16>,
    pub target: Option<&'a str>,
    pub request_processing_ms: Option<u32>,
    pub target_processing_ms: Option<u32>,
    pub response_processing_ms: Option<u32>,
    pub elb_status_code: Option<u16>,
    pub target_status_code: Option<u16>,
    pub received_bytes: u64,
    pub sent_bytes: u64,
    pub request: &'a str,
    pub user_agent: Option<&'a str>,
    pub ssl_cipher: Option<&'a str>,
    pub ssl_protocol: Option<&'a str>,
    pub target_group_arn: Option<&'a str>,
    pub trace_id: Option<&'a str>,
    pub domain_name: Option<&'a str>,
    pub chosen_cert_arn: Option<&'a str>,
    pub matched_rule_priority: Option<u32>,
    pub request_creation_time: Option<&'a str>,
    pub actions_executed: Option<&'a str>,
    pub redirect_url: Option<&'a str>,
    pub error_reason: Option<&'a str>,
    pub target_port_list: Option<&'a str>,
    pub target_status_code_list: Option<&'a str>,
    pub classification: Option<&'a str>,
    pub classification_reason: Option<&'a str>,
    pub conn_trace_id: Option<&'a str>,
    pub transformed_host: Option<&'a str>,
    pub transformed_uri: Option<&'a str>,
    pub request_transform_status: Option<&'a str>,
    /// How many fields the line had (trailing fields beyond the known ones included).
    pub field_count: usize,
}

impl<'a> AlbEntry<'a> {
    /// The fields origin analysis reads.
    pub fn record(&self) -> OriginRecord<'a> {
        OriginRecord {
            kind: OriginKind::Alb,
            time_ms: self.time_ms,
            client: self.client,
            forwarded_for: None,
            status: self.elb_status_code,
            origin_ms: self.target_processing_ms,
            bytes_sent: self.sent_bytes,
        }
    }
}

/// Splits a line into fields: single spaces between them, a field that starts with `"` runs to
/// the next `"` that is not escaped by a backslash. Stops after `max` fields.
fn fields(line: &str, max: usize) -> Result<Vec<&str>, String> {
    let bytes = line.as_bytes();
    let mut out = Vec::with_capacity(max.min(40));
    let mut at = 0;
    while at < bytes.len() && out.len() < max {
        if bytes[at] == b'"' {
            let mut end = at + 1;
            loop {
                match memchr::memchr2(b'"', b'\\', &bytes[end..]) {
                    Some(i) if bytes[end + i] == b'\\' => end += i + 2,
                    Some(i) => {
                        end += i;
                        break;
                    }
                    None => {
                        return Err(format!(
                            "field {} (`{}`) opens a quote that does not close",
                            out.len() + 1,
                            FIELDS.get(out.len()).unwrap_or(&"unknown")
                        ));
                    }
                }
            }
            out.push(&line[at + 1..end.min(line.len())]);
            at = end + 1;
        } else {
            let end = memchr::memchr(b' ', &bytes[at..]).map_or(bytes.len(), |i| at + i);
            out.push(&line[at..end]);
            at = end;
        }
        match bytes.get(at) {
            None => break,
            Some(b' ') => at += 1,
            Some(_) => {
                return Err(format!(
                    "field {} (`{}`) is not followed by a space",
                    out.len(),
                    FIELDS.get(out.len() - 1).unwrap_or(&"unknown")
                ));
            }
        }
    }
    Ok(out)
}

fn opt(s: &str) -> Option<&str> {
    (s != "-").then_some(s)
}

/// Parses one line (without its newline). The error names the field and its value.
pub fn parse(line: &str) -> Result<AlbEntry<'_>, String> {
    let f = fields(line, FIELDS.len())?;
    if f.len() < MIN_FIELDS {
        return Err(format!(
            "ALB entry has {} fields; at least {MIN_FIELDS} expected (`type` to `trace_id`)",
            f.len()
        ));
    }
    let bad = |i: usize, what: &str| format!("`{}` is not {what}: `{}`", FIELDS[i], f[i]);
    if !TYPES.contains(&f[0]) {
        return Err(bad(0, "a request type (http, https, h2, grpcs, ws, wss)"));
    }
    let time_ms = f[1]
        .strip_suffix('Z')
        .and_then(|t| t.split_once('T'))
        .and_then(|(d, t)| civil_ms(d.as_bytes(), t.as_bytes()))
        .ok_or_else(|| bad(1, "an ISO 8601 UTC time"))?;
    // `client:port`; IPv6 addresses are written without brackets, so the port is after the last colon.
    let (client, client_port) = match f[3] {
        "-" => return Err(bad(3, "an address and port")),
        cp => match cp.rsplit_once(':') {
            Some((addr, port)) if !addr.is_empty() => (
                addr,
                Some(port.parse().map_err(|_| bad(3, "an address and port"))?),
            ),
            _ => return Err(bad(3, "an address and port")),
        },
    };
    // A processing time is seconds, or -1 when it was not measured (no target answered).
    let time = |i: usize| -> Result<Option<u32>, String> {
        match f[i] {
            "-1" | "-" => Ok(None),
            v => secs_to_ms(v)
                .map(Some)
                .ok_or_else(|| bad(i, "seconds or -1")),
        }
    };
    let status = |i: usize| -> Result<Option<u16>, String> {
        match f[i] {
            "-" => Ok(None),
            v if v.len() == 3 => v.parse().map(Some).map_err(|_| bad(i, "a status code")),
            _ => Err(bad(i, "a status code")),
        }
    };
    let count = |i: usize| -> Result<u64, String> {
        match f[i] {
            "-" => Ok(0),
            v => v.parse().map_err(|_| bad(i, "a byte count")),
        }
    };
    let get = |i: usize| f.get(i).copied().and_then(opt);
    let matched_rule_priority = match get(20) {
        None => None,
        Some(v) => Some(v.parse().map_err(|_| bad(20, "a rule priority"))?),
    };
    if let Some(t) = get(21)
        && t.strip_suffix('Z')
            .and_then(|t| t.split_once('T'))
            .and_then(|(d, t)| civil_ms(d.as_bytes(), t.as_bytes()))
            .is_none()
    {
        return Err(bad(21, "an ISO 8601 UTC time"));
    }
    Ok(AlbEntry {
        kind: f[0],
        time_ms,
        elb: f[2],
        client,
        client_port,
        target: opt(f[4]),
        request_processing_ms: time(5)?,
        target_processing_ms: time(6)?,
        response_processing_ms: time(7)?,
        elb_status_code: status(8)?,
        target_status_code: status(9)?,
        received_bytes: count(10)?,
        sent_bytes: count(11)?,
        request: f[12],
        user_agent: get(13),
        ssl_cipher: get(14),
        ssl_protocol: get(15),
        target_group_arn: get(16),
        trace_id: get(17),
        domain_name: get(18),
        chosen_cert_arn: get(19),
        matched_rule_priority,
        request_creation_time: get(21),
        actions_executed: get(22),
        redirect_url: get(23),
        error_reason: get(24),
        target_port_list: get(25),
        target_status_code_list: get(26),
        classification: get(27),
        classification_reason: get(28),
        conn_trace_id: get(29),
        transformed_host: get(30),
        transformed_uri: get(31),
        request_transform_status: get(32),
        field_count: f.len(),
    })
}

/// Whether `line` starts like an ALB entry: a request type, then an ISO time.
pub fn looks_like(line: &str) -> bool {
    let mut it = line.splitn(3, ' ');
    let (Some(kind), Some(time)) = (it.next(), it.next()) else {
        return false;
    };
    TYPES.contains(&kind) && time.len() > 19 && time.as_bytes()[10] == b'T' && time.ends_with('Z')
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCS_HTTP: &str = r#"http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-" "10.0.0.1:80" "200" "-" "-" TID_1234abcd5678ef90"#;

    #[test]
    fn reads_every_field_of_a_documented_entry() {
        let e = parse(DOCS_HTTP).unwrap();
        assert_eq!(e.kind, "http");
        assert_eq!(e.client, "192.168.131.39");
        assert_eq!(e.client_port, Some(2817));
        assert_eq!(e.target, Some("10.0.0.1:80"));
        assert_eq!(
            (
                e.request_processing_ms,
                e.target_processing_ms,
                e.response_processing_ms
            ),
            (Some(0), Some(1), Some(0))
        );
        assert_eq!(
            (e.elb_status_code, e.target_status_code),
            (Some(200), Some(200))
        );
        assert_eq!((e.received_bytes, e.sent_bytes), (34, 366));
        assert_eq!(e.request, "GET http://www.example.com:80/ HTTP/1.1");
        assert_eq!(e.user_agent, Some("curl/7.46.0"));
        assert_eq!((e.ssl_cipher, e.domain_name), (None, None));
        assert_eq!(e.matched_rule_priority, Some(0));
        assert_eq!(e.actions_executed, Some("forward"));
        assert_eq!(e.target_status_code_list, Some("200"));
        assert_eq!((e.classification, e.classification_reason), (None, None));
        assert_eq!(e.conn_trace_id, Some("TID_1234abcd5678ef90"));
        assert_eq!(e.transformed_host, None);
        assert_eq!(e.field_count, 30);
        let r = e.record();
        assert_eq!(r.time_ms, 1_530_570_180_186);
        assert_eq!(
            (r.status, r.origin_ms, r.bytes_sent),
            (Some(200), Some(1), 366)
        );
    }

    #[test]
    fn newest_fields_tls_and_classification() {
        let line = r#"h2 2026-11-20T01:02:03.004005Z app/shop/0123456789abcdef 2001:db8::7:51234 10.0.1.9:8080 0.001 1.250 0.000 502 502 120 0 "GET https://shop.example:443/a%20b?q=\"x\" HTTP/2.0" "Mozilla/5.0 \"quoted\"" TLS_AES_128_GCM_SHA256 TLSv1.3 arn:aws:elasticloadbalancing:ap-northeast-1:123456789012:targetgroup/shop/1 "Root=1-6740a1b3-0123456789abcdef01234567" "shop.example" "arn:aws:acm:ap-northeast-1:123456789012:certificate/x" 10 2026-11-20T01:02:01.750000Z "waf,forward" "-" "-" "10.0.1.9:8080" "502" "Ambiguous" "UndefinedContentLengthSemantics" TID_0a1b2c3d "shop.internal" "/v2/a" "TransformSuccess" extra-future-field"#;
        let e = parse(line).unwrap();
        assert_eq!(e.client, "2001:db8::7");
        assert_eq!(e.client_port, Some(51234));
        assert_eq!(e.ssl_protocol, Some("TLSv1.3"));
        assert_eq!(e.user_agent, Some(r#"Mozilla/5.0 \"quoted\""#));
        assert_eq!(e.classification, Some("Ambiguous"));
        assert_eq!(
            e.classification_reason,
            Some("UndefinedContentLengthSemantics")
        );
        assert_eq!(e.request_transform_status, Some("TransformSuccess"));
        assert_eq!(e.target_processing_ms, Some(1250));
        assert_eq!(e.field_count, 33, "fields after the known ones are ignored");
    }

    #[test]
    fn older_shorter_lines_and_unmeasured_times() {
        // The 2016 format ends at trace_id; -1: no target answered.
        let line = r#"http 2016-08-10T23:39:43.065466Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 - -1 -1 -1 460 - 34 0 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - - "Root=1-58337262-36d228ad5d99923122bbe354""#;
        let e = parse(line).unwrap();
        assert_eq!(e.field_count, 18);
        assert_eq!(e.target, None);
        assert_eq!(e.target_processing_ms, None);
        assert_eq!((e.elb_status_code, e.target_status_code), (Some(460), None));
        assert_eq!(e.classification, None);
    }

    #[test]
    fn malformed_lines_name_the_field() {
        let cut: String = DOCS_HTTP.split(' ').take(12).collect::<Vec<_>>().join(" ");
        assert_eq!(
            parse(&cut).unwrap_err(),
            "ALB entry has 12 fields; at least 18 expected (`type` to `trace_id`)"
        );
        let bad_time = DOCS_HTTP.replace("2018-07-02T22:23:00.186641Z", "2018-07-02 22:23");
        assert!(parse(&bad_time).is_err());
        let bad_status = DOCS_HTTP.replacen(" 200 200 ", " 2x0 200 ", 1);
        assert_eq!(
            parse(&bad_status).unwrap_err(),
            "`elb_status_code` is not a status code: `2x0`"
        );
        let bad_client = DOCS_HTTP.replace("192.168.131.39:2817", "192.168.131.39");
        assert_eq!(
            parse(&bad_client).unwrap_err(),
            "`client:port` is not an address and port: `192.168.131.39`"
        );
        let cut = &DOCS_HTTP[..DOCS_HTTP.find(" \"Root=").unwrap()];
        assert_eq!(
            parse(&format!("{cut} \"Root=1-5833")).unwrap_err(),
            "field 18 (`trace_id`) opens a quote that does not close"
        );
        let glued = DOCS_HTTP.replace("\"curl/7.46.0\" -", "\"curl/7.46.0\"-");
        assert_eq!(
            parse(&glued).unwrap_err(),
            "field 14 (`user_agent`) is not followed by a space"
        );
        assert!(parse("").is_err());
        assert!(parse("wss").is_err());
    }

    #[test]
    fn recognises_entries() {
        assert!(looks_like(DOCS_HTTP));
        assert!(!looks_like(r#"{"timestamp":1}"#));
        assert!(!looks_like("http nonsense"));
        assert!(!looks_like("#Version: 1.0"));
    }
}
