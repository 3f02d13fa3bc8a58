//! Origin access logs in Athena: the ALB and CloudFront tables as AWS documents them (with partition
//! projection), and the origin aggregates of the local engine (`origin::scan`) in one Trino query:
//! per client and minute, per client, per hour and for the site, with exact nearest-rank percentiles,
//! so the rows convert into the same [`OriginTraffic`]. Proven equal with sqlglot + DuckDB in
//! `tests/it/athena_origin.rs`.

use hashbrown::HashMap;

use crate::origin::OriginKind;
use crate::origin::scan::{OriginClient, OriginOptions, OriginTraffic, Summary};
use crate::scan::ClientKey;

use super::rows::ResultSet;

/// AWS's ALB access log table: the columns and RegexSerDe regex of the Athena user guide ("Create the
/// table for ALB access logs"), `classification`, `classification_reason` and `conn_trace_id` included.
pub const ALB_COLUMNS: &[(&str, &str)] = &[
    ("type", "string"),
    ("time", "string"),
    ("elb", "string"),
    ("client_ip", "string"),
    ("client_port", "int"),
    ("target_ip", "string"),
    ("target_port", "int"),
    ("request_processing_time", "double"),
    ("target_processing_time", "double"),
    ("response_processing_time", "double"),
    ("elb_status_code", "int"),
    ("target_status_code", "string"),
    ("received_bytes", "bigint"),
    ("sent_bytes", "bigint"),
    ("request_verb", "string"),
    ("request_url", "string"),
    ("request_proto", "string"),
    ("user_agent", "string"),
    ("ssl_cipher", "string"),
    ("ssl_protocol", "string"),
    ("target_group_arn", "string"),
    ("trace_id", "string"),
    ("domain_name", "string"),
    ("chosen_cert_arn", "string"),
    ("matched_rule_priority", "string"),
    ("request_creation_time", "string"),
    ("actions_executed", "string"),
    ("redirect_url", "string"),
    ("lambda_error_reason", "string"),
    ("target_port_list", "string"),
    ("target_status_code_list", "string"),
    ("classification", "string"),
    ("classification_reason", "string"),
    ("conn_trace_id", "string"),
];

/// The `input.regex` of AWS's ALB table (one group per column of [`ALB_COLUMNS`]; the tail is optional
/// so older, shorter entries and newer, longer ones match).
pub const ALB_REGEX: &str = r#"([^ ]*) ([^ ]*) ([^ ]*) ([^ ]*):([0-9]*) ([^ ]*)[:-]([0-9]*) ([-.0-9]*) ([-.0-9]*) ([-.0-9]*) (|[-0-9]*) (-|[-0-9]*) ([-0-9]*) ([-0-9]*) \"([^ ]*) (.*) (- |[^ ]*)\" \"([^\"]*)\" ([A-Z0-9-_]+) ([A-Za-z0-9.-]*) ([^ ]*) \"([^\"]*)\" \"([^\"]*)\" \"([^\"]*)\" ([-.0-9]*) ([^ ]*) \"([^\"]*)\" \"([^\"]*)\" \"([^ ]*)\" \"([^\s]+?)\" \"([^\s]+)\" \"([^ ]*)\" \"([^ ]*)\" ?([^ ]*)? ?( .*)?"#;

/// AWS's CloudFront standard log table (the 33 fields of the W3C format, in order; the reader of
/// local files follows `#Fields` instead).
pub const CLOUDFRONT_COLUMNS: &[(&str, &str)] = &[
    ("date", "date"),
    ("time", "string"),
    ("x_edge_location", "string"),
    ("sc_bytes", "bigint"),
    ("c_ip", "string"),
    ("cs_method", "string"),
    ("cs_host", "string"),
    ("cs_uri_stem", "string"),
    ("sc_status", "int"),
    ("cs_referrer", "string"),
    ("cs_user_agent", "string"),
    ("cs_uri_query", "string"),
    ("cs_cookie", "string"),
    ("x_edge_result_type", "string"),
    ("x_edge_request_id", "string"),
    ("x_host_header", "string"),
    ("cs_protocol", "string"),
    ("cs_bytes", "bigint"),
    ("time_taken", "float"),
    ("x_forwarded_for", "string"),
    ("ssl_protocol", "string"),
    ("ssl_cipher", "string"),
    ("x_edge_response_result_type", "string"),
    ("cs_protocol_version", "string"),
    ("fle_status", "string"),
    ("fle_encrypted_fields", "int"),
    ("c_port", "int"),
    ("time_to_first_byte", "float"),
    ("x_edge_detailed_result_type", "string"),
    ("sc_content_type", "string"),
    ("sc_content_len", "bigint"),
    ("sc_range_start", "bigint"),
    ("sc_range_end", "bigint"),
];

/// Where an origin's logs are in S3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginLocation {
    /// `s3://<bucket>/<prefix>AWSLogs/<account>/elasticloadbalancing/<region>/YYYY/MM/DD/`.
    Alb {
        bucket: String,
        prefix: String,
        account: String,
        region: String,
    },
    /// Standard logging v2 with Hive-compatible partitioning:
    /// `s3://<bucket>/<prefix><distribution>/YYYY/MM/DD/HH/`.
    Cloudfront {
        bucket: String,
        prefix: String,
        distribution: String,
    },
}

fn columns(list: &[(&str, &str)]) -> String {
    list.iter()
        .map(|(name, ty)| format!("  `{name}` {ty}"))
        .collect::<Vec<_>>()
        .join(",\n")
}

/// The `CREATE EXTERNAL TABLE` for `table` at `at`, with partition projection from `start`
/// (`yyyy/MM/dd`) to now.
pub fn ddl(table: &str, at: &OriginLocation, start: &str) -> String {
    match at {
        OriginLocation::Alb {
            bucket,
            prefix,
            account,
            region,
        } => {
            let base =
                format!("s3://{bucket}/{prefix}AWSLogs/{account}/elasticloadbalancing/{region}/");
            format!(
                "CREATE EXTERNAL TABLE IF NOT EXISTS {table} (\n{}\n)\nPARTITIONED BY (`day` string)\n\
                 ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.RegexSerDe'\n\
                 WITH SERDEPROPERTIES (\n  'serialization.format' = '1',\n  'input.regex' = '{}'\n)\n\
                 LOCATION '{base}'\n\
                 TBLPROPERTIES (\n  'projection.enabled' = 'true',\n  'projection.day.type' = 'date',\n  \
                 'projection.day.range' = '{start},NOW',\n  'projection.day.format' = 'yyyy/MM/dd',\n  \
                 'projection.day.interval' = '1',\n  'projection.day.interval.unit' = 'DAYS',\n  \
                 'storage.location.template' = '{base}${{day}}'\n)",
                columns(ALB_COLUMNS),
                ALB_REGEX.replace('\'', "\\'"),
            )
        }
        OriginLocation::Cloudfront {
            bucket,
            prefix,
            distribution,
        } => {
            let base = format!("s3://{bucket}/{prefix}{distribution}/");
            format!(
                "CREATE EXTERNAL TABLE IF NOT EXISTS {table} (\n{}\n)\nPARTITIONED BY (`day` string)\n\
                 ROW FORMAT DELIMITED\n  FIELDS TERMINATED BY '\\t'\n\
                 LOCATION '{base}'\n\
                 TBLPROPERTIES (\n  'skip.header.line.count' = '2',\n  'projection.enabled' = 'true',\n  \
                 'projection.day.type' = 'date',\n  'projection.day.range' = '{start},NOW',\n  \
                 'projection.day.format' = 'yyyy/MM/dd',\n  'projection.day.interval' = '1',\n  \
                 'projection.day.interval.unit' = 'DAYS',\n  'storage.location.template' = '{base}${{day}}'\n)",
                columns(CLOUDFRONT_COLUMNS),
            )
        }
    }
}

/// `2026-11-20T00:00:00.000` of epoch milliseconds (the text ALB's `time` starts with).
fn alb_time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S.%3f").to_string())
        .unwrap_or_default()
}

/// `yyyy/MM/dd` of epoch milliseconds (the `day` partition).
fn day(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y/%m/%d").to_string())
        .unwrap_or_default()
}

/// The origin aggregates in one query over `options`' range: `level` 1 rows are per client and
/// minute, 3 per client, 6 per hour, 7 the site (the `grouping()` bits of client, minute, hour).
/// With `options.forwarded_for`, CloudFront requests are keyed as the local reader keys them: by the
/// first `x_forwarded_for` address (URL-decoded twice, as the reader decodes), else `c_ip`; ALB
/// tables have no such column.
pub fn aggregates(kind: OriginKind, table: &str, options: &OriginOptions) -> String {
    // Partitions hold files by delivery day; a day of slack on either side keeps records that
    // straddle midnight, and the exact filter is on the record's own time.
    const DAY_MS: i64 = 86_400_000;
    let range = &options.range;
    let cf_client = if options.forwarded_for {
        // Athena's table keeps `-` as text; an empty first address falls back to `c_ip` as locally.
        "coalesce(nullif(trim(split_part(url_decode(url_decode(nullif(x_forwarded_for, '-'))), ',', 1)), ''), c_ip)"
    } else {
        "c_ip"
    };
    let (inner, time) = match kind {
        OriginKind::Alb => (
            "client_ip AS client, substr(time, 1, 23) AS at, elb_status_code AS status, \
             CASE WHEN target_processing_time >= 0 THEN CAST(round(target_processing_time * 1000) AS bigint) END AS ms, \
             coalesce(sent_bytes, 0) AS bytes"
                .to_owned(),
            "substr(time, 1, 23)",
        ),
        OriginKind::Cloudfront => (
            format!(
                "{cf_client} AS client, concat(CAST(\"date\" AS varchar), 'T', time, '.000') AS at, \
                 nullif(sc_status, 0) AS status, \
                 CAST(round(coalesce(time_to_first_byte, time_taken) * 1000) AS bigint) AS ms, \
                 coalesce(sc_bytes, 0) AS bytes"
            ),
            "concat(CAST(\"date\" AS varchar), 'T', time, '.000')",
        ),
    };
    let mut filters = vec![format!("{time} IS NOT NULL")];
    if let Some(since) = range.since {
        filters.push(format!("\"day\" >= '{}'", day(since - DAY_MS)));
        filters.push(format!("{time} >= '{}'", alb_time(since)));
    }
    if let Some(until) = range.until {
        filters.push(format!("\"day\" <= '{}'", day(until + DAY_MS)));
        filters.push(format!("{time} < '{}'", alb_time(until)));
    }
    let rank = |q: &str| {
        format!(
            "CASE WHEN count(ms) > 0 THEN element_at(array_sort(array_agg(ms) FILTER (WHERE ms IS NOT NULL)), \
             CAST(ceil({q} * count(ms)) AS integer)) END"
        )
    };
    format!(
        "SELECT grouping(client, minute, hour) AS level, client, minute, hour, count(*) AS requests, \
         count_if(status BETWEEN 200 AND 299) AS s2xx, count_if(status BETWEEN 300 AND 399) AS s3xx, \
         count_if(status BETWEEN 400 AND 499) AS s4xx, count_if(status BETWEEN 500 AND 599) AS s5xx, \
         count_if(status = 500) AS e500, count_if(status = 502) AS e502, count_if(status = 503) AS e503, \
         count_if(status = 504) AS e504, coalesce(sum(ms), 0) AS origin_ms, count(ms) AS timed, \
         {} AS p50, {} AS p99, sum(bytes) AS bytes \
         FROM (SELECT client, substr(at, 1, 16) AS minute, substr(at, 1, 13) AS hour, status, ms, bytes \
         FROM (SELECT {inner} FROM {table} WHERE {})) \
         GROUP BY GROUPING SETS ((client, minute), (client), (hour), ()) \
         ORDER BY level, client, minute, hour",
        rank("0.5"),
        rank("0.99"),
        filters.join(" AND "),
    )
}

/// A query result that does not have the shape [`aggregates`] gives.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OriginRowError {
    #[error("column `{0}` is missing")]
    Column(&'static str),
    #[error("row {row}: `{column}` is not {what}: `{value}`")]
    Value {
        row: usize,
        column: &'static str,
        what: &'static str,
        value: String,
    },
}

const NAMES: [&str; 18] = [
    "level",
    "client",
    "minute",
    "hour",
    "requests",
    "s2xx",
    "s3xx",
    "s4xx",
    "s5xx",
    "e500",
    "e502",
    "e503",
    "e504",
    "origin_ms",
    "timed",
    "p50",
    "p99",
    "bytes",
];

/// The [`OriginTraffic`] of an [`aggregates`] result over `kind`'s table. `files` and malformed lines
/// are the local reader's (Athena skips lines its SerDe cannot read), and `first`/`last` are to the
/// minute.
pub fn traffic(kind: OriginKind, set: &ResultSet) -> Result<OriginTraffic, OriginRowError> {
    let at: Vec<usize> = NAMES
        .iter()
        .map(|n| {
            set.columns
                .iter()
                .position(|c| c == n)
                .ok_or(OriginRowError::Column(n))
        })
        .collect::<Result<_, _>>()?;
    let mut t = OriginTraffic::default();
    let mut clients: HashMap<ClientKey, OriginClient> = HashMap::new();
    for (r, row) in set.rows.iter().enumerate() {
        let cell = |i: usize| row.get(at[i]).cloned().flatten();
        let num = |i: usize| -> Result<u64, OriginRowError> {
            let v = cell(i).unwrap_or_else(|| "0".into());
            v.parse().map_err(|_| OriginRowError::Value {
                row: r + 1,
                column: NAMES[i],
                what: "a count",
                value: v,
            })
        };
        let opt = |i: usize| -> Result<Option<u32>, OriginRowError> {
            cell(i)
                .map(|v| {
                    v.parse().map_err(|_| OriginRowError::Value {
                        row: r + 1,
                        column: NAMES[i],
                        what: "milliseconds",
                        value: v,
                    })
                })
                .transpose()
        };
        let s5xx = num(8)?;
        let named = num(9)? + num(10)? + num(11)? + num(12)?;
        let summary = Summary {
            requests: num(4)?,
            status: crate::origin::scan::StatusCounts {
                s2xx: num(5)?,
                s3xx: num(6)?,
                s4xx: num(7)?,
                s5xx,
                other: num(4)? - num(5)? - num(6)? - num(7)? - s5xx,
            },
            errors_5xx: crate::origin::scan::ErrorCodes {
                e500: num(9)?,
                e502: num(10)?,
                e503: num(11)?,
                e504: num(12)?,
                other: s5xx - named,
            },
            origin_ms: num(13)?,
            timed: num(14)?,
            origin_p50_ms: opt(15)?,
            origin_p99_ms: opt(16)?,
            bytes_sent: num(17)?,
        };
        let text_time = |i: usize, what: &'static str| -> Result<u32, OriginRowError> {
            let v = cell(i).unwrap_or_default();
            let (d, h) = v.split_once('T').unwrap_or((&v, ""));
            let padded = match h.len() {
                2 => format!("{h}:00:00"),
                _ => format!("{h}:00"),
            };
            crate::origin::civil_ms(d.as_bytes(), padded.as_bytes())
                .map(crate::scan::minute_of)
                .ok_or(OriginRowError::Value {
                    row: r + 1,
                    column: NAMES[i],
                    what,
                    value: v.clone(),
                })
        };
        let key = || {
            let text = cell(1).unwrap_or_default();
            match text.parse::<std::net::IpAddr>() {
                Ok(ip) => ClientKey::Addr(ip.to_canonical()),
                Err(_) => ClientKey::Unparsed(text.into()),
            }
        };
        let level = num(0)?;
        match level {
            1 => {
                let minute = text_time(2, "a minute (`yyyy-MM-ddTHH:mm`)")?;
                let c = clients.entry(key()).or_insert_with_key(|k| OriginClient {
                    key: k.clone(),
                    summary: Summary::default(),
                    minutes: Vec::new(),
                });
                c.minutes.push((minute, summary));
                let ms = i64::from(minute) * 60_000;
                t.first_ms = Some(t.first_ms.map_or(ms, |f| f.min(ms)));
                t.last_ms = t.last_ms.max(Some(ms));
            }
            3 => {
                let c = clients.entry(key()).or_insert_with_key(|k| OriginClient {
                    key: k.clone(),
                    summary: Summary::default(),
                    minutes: Vec::new(),
                });
                c.summary = summary;
            }
            6 => t
                .per_hour
                .push((text_time(3, "an hour (`yyyy-MM-ddTHH`)")? / 60, summary)),
            7 => t.totals = summary,
            _ => {
                return Err(OriginRowError::Value {
                    row: r + 1,
                    column: "level",
                    what: "1, 3, 6 or 7",
                    value: level.to_string(),
                });
            }
        }
    }
    t.records = t.totals.requests;
    match kind {
        OriginKind::Alb => t.kinds.alb = t.records,
        OriginKind::Cloudfront => t.kinds.cloudfront = t.records,
    }
    t.per_hour.sort_unstable_by_key(|(h, _)| *h);
    let mut clients: Vec<OriginClient> = clients.into_values().collect();
    for c in &mut clients {
        c.minutes.sort_unstable_by_key(|(m, _)| *m);
        if matches!(c.key, ClientKey::Unparsed(_)) {
            t.unparseable_client_ips += c.summary.requests;
        }
    }
    clients.sort_unstable_by(|a, b| {
        b.summary
            .requests
            .cmp(&a.summary.requests)
            .then_with(|| a.key.cmp(&b.key))
    });
    t.clients = clients;
    Ok(t)
}
