//! Trino SQL for Athena: the table definition and the aggregation queries, as pure text.
//!
//! A run is one statement ([`scan`]) that reads the raw table once and aggregates per client and
//! epoch minute inside Athena, so the result has one row per active (client, minute) instead of one
//! per request; the conversion in [`super::rows`] turns those rows into the same
//! [`crate::scan::ClientStats`] the local engine builds, peaks included. Top lists, distinct counts
//! and policy minimums are computed in SQL too where that is exact (see [`reshape`]), so results
//! hold what the local engine keeps, not every value. Every read of the raw table constrains the
//! partition column as well as `timestamp`: without the former Athena reads the whole bucket,
//! without the latter the edges would be off by up to a partition.

use std::fmt::Write as _;

use crate::log::{Action, TimeRange};
use crate::model::athena::Layout;
use crate::policy::{
    Condition, CountryMatch, Expr, HeaderTest, KeyKind, LabelMatch, LabelPattern, Policy, TextMatch,
};
use crate::scan::stats::{Kind, TOP_URIS, TOP_USER_AGENTS};

/// The table queries read, and how it is partitioned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// `table` or `database.table`; emitted as written (the config checks it is a plain name).
    pub name: String,
    pub layout: Layout,
}

/// Records reach S3 in files named after their delivery time, a few minutes after the records in them
/// (and late deliveries happen): partitions this far outside the range are read too, so pruning never
/// drops a record. The exact range is applied on `timestamp`. Same slack as the local engine's path
/// pruning.
pub const PARTITION_SLACK_MS: i64 = 15 * 60 * 1000;

/// The WAF log columns (waf-facts section 1) with their Hive types, in log order. Names keep the log's
/// camelCase: Athena lower-cases them, and the JSON SerDe matches keys without regard to case.
/// Types are what every sample holds; fields whose JSON type varies between sources are `string`
/// (the SerDe stores a number's text there).
pub const COLUMNS: &[(&str, &str)] = &[
    ("timestamp", "bigint"),
    ("formatVersion", "int"),
    ("webaclId", "string"),
    ("terminatingRuleId", "string"),
    ("terminatingRuleType", "string"),
    ("action", "string"),
    (
        "terminatingRuleMatchDetails",
        concat!("array<", match_detail!(), ">"),
    ),
    ("httpSourceName", "string"),
    ("httpSourceId", "string"),
    (
        "ruleGroupList",
        concat!(
            "array<struct<ruleGroupId:string,",
            "terminatingRule:struct<ruleId:string,action:string,ruleMatchDetails:array<",
            match_detail!(),
            ">>,nonTerminatingMatchingRules:array<",
            non_terminating!(),
            ">,excludedRules:string,customerConfig:string>>"
        ),
    ),
    (
        "rateBasedRuleList",
        concat!(
            "array<struct<rateBasedRuleId:string,rateBasedRuleName:string,limitKey:string,",
            "maxRateAllowed:bigint,limitValue:string,evaluationWindowSec:string,",
            "customValues:array<struct<key:string,name:string,value:string>>>>"
        ),
    ),
    (
        "nonTerminatingMatchingRules",
        concat!("array<", non_terminating!(), ">"),
    ),
    (
        "requestHeadersInserted",
        "array<struct<name:string,value:string>>",
    ),
    ("responseCodeSent", "int"),
    (
        "httpRequest",
        concat!(
            "struct<clientIp:string,country:string,headers:array<struct<name:string,value:string>>,",
            "uri:string,args:string,httpVersion:string,httpMethod:string,requestId:string,",
            "fragment:string,scheme:string,host:string>"
        ),
    ),
    ("labels", "array<struct<name:string>>"),
    ("captchaResponse", challenge!()),
    ("challengeResponse", challenge!()),
    ("ja3Fingerprint", "string"),
    ("ja4Fingerprint", "string"),
    ("oversizeFields", "string"),
    ("requestBodySize", "bigint"),
    ("requestBodySizeInspectedByWAF", "bigint"),
    ("clientAsn", "string"),
];

macro_rules! match_detail {
    () => {
        "struct<conditionType:string,sensitivityLevel:string,location:string,matchedData:array<string>,matchedFieldName:string>"
    };
}
macro_rules! challenge {
    () => {
        "struct<responseCode:string,solveTimestamp:string,failureReason:string>"
    };
}
macro_rules! non_terminating {
    () => {
        concat!(
            "struct<ruleId:string,action:string,overriddenAction:string,ruleMatchDetails:array<",
            match_detail!(),
            ">,captchaResponse:",
            challenge!(),
            ",challengeResponse:",
            challenge!(),
            ">"
        )
    };
}
use {challenge, match_detail, non_terminating};

/// Where a web ACL's logs are, for [`ddl`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLocation {
    pub bucket: String,
    pub account: String,
    /// An AWS region, or `cloudfront`.
    pub region: String,
    pub web_acl: String,
}

/// `CREATE EXTERNAL TABLE` for one web ACL's logs. `projection_start` is the first partition
/// (`yyyy/MM/dd`) the projection enumerates; queries never read before it.
pub fn ddl(table: &Table, at: &LogLocation, projection_start: &str) -> String {
    let mut out = format!("CREATE EXTERNAL TABLE IF NOT EXISTS {} (\n", table.name);
    for (i, (name, ty)) in COLUMNS.iter().enumerate() {
        let sep = if i + 1 < COLUMNS.len() { "," } else { "" };
        // Backticks: `timestamp` is a reserved word in Hive DDL.
        let _ = writeln!(out, "  `{name}` {ty}{sep}");
    }
    out.push_str(")\n");
    let base = format!(
        "s3://{}/AWSLogs/{}/WAFLogs",
        at.bucket.trim_start_matches("s3://").trim_end_matches('/'),
        at.account
    );
    let properties: Vec<(String, String)> = match table.layout {
        Layout::Projection => {
            out.push_str("PARTITIONED BY (`log_time` string)\n");
            vec![
                ("projection.enabled".into(), "true".into()),
                ("projection.log_time.type".into(), "date".into()),
                (
                    "projection.log_time.format".into(),
                    "yyyy/MM/dd/HH/mm".into(),
                ),
                ("projection.log_time.interval".into(), "1".into()),
                ("projection.log_time.interval.unit".into(), "minutes".into()),
                (
                    "projection.log_time.range".into(),
                    format!("{projection_start}/00/00,NOW"),
                ),
                (
                    "storage.location.template".into(),
                    format!("{base}/{}/{}/${{log_time}}", at.region, at.web_acl),
                ),
            ]
        }
        Layout::Date => {
            out.push_str("PARTITIONED BY (`region` string, `date` string)\n");
            vec![
                ("projection.enabled".into(), "true".into()),
                ("projection.region.type".into(), "enum".into()),
                ("projection.region.values".into(), at.region.clone()),
                ("projection.date.type".into(), "date".into()),
                ("projection.date.format".into(), "yyyy/MM/dd".into()),
                ("projection.date.interval".into(), "1".into()),
                ("projection.date.interval.unit".into(), "days".into()),
                (
                    "projection.date.range".into(),
                    format!("{projection_start},NOW"),
                ),
                (
                    "storage.location.template".into(),
                    format!("{base}/${{region}}/{}/${{date}}", at.web_acl),
                ),
            ]
        }
        Layout::None => Vec::new(),
    };
    out.push_str("ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'\n");
    // A malformed line becomes a row of nulls (dropped by the `timestamp` filter) instead of failing
    // the whole query; the local engine counts such lines and moves on too.
    out.push_str("WITH SERDEPROPERTIES ('ignore.malformed.json' = 'true')\n");
    out.push_str("STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'\n");
    out.push_str("OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'\n");
    let _ = write!(out, "LOCATION '{base}/{}/{}/'", at.region, at.web_acl);
    if !properties.is_empty() {
        out.push_str("\nTBLPROPERTIES (\n");
        for (i, (k, v)) in properties.iter().enumerate() {
            let sep = if i + 1 < properties.len() { "," } else { "" };
            let _ = writeln!(out, "  {} = {}{sep}", quote(k), quote(v));
        }
        out.push(')');
    }
    out
}

/// The terminating action as the local engine reads it: case-insensitive, anything else `OTHER`.
const ACTION: &str = "CASE upper(action) WHEN 'ALLOW' THEN 'ALLOW' WHEN 'BLOCK' THEN 'BLOCK' \
                      WHEN 'CAPTCHA' THEN 'CAPTCHA' WHEN 'CHALLENGE' THEN 'CHALLENGE' ELSE 'OTHER' END";

/// Whether `client` is an IPv4 address written as the local engine prints it (a dotted quad
/// without leading zeros): one spelling per address, so its top lists and its /24 can be computed
/// in SQL exactly. Never NULL.
const DOTTED: &str = "coalesce(regexp_like(client, \
    '^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$'), false)";

/// The /24 of a [`DOTTED`] `client`, as the local engine prints it (`192.0.2.0/24`).
const PREFIX_24: &str = "regexp_replace(client, '[0-9]+$', '0/24')";

/// The values the statement counts per client (see [`reshape`]), each with the letter its `kind` column
/// holds.
pub const VALUE_KINDS: [(Kind, char); 10] = [
    (Kind::Rule, 'R'),
    (Kind::ResponseCode, 'S'),
    (Kind::Uri, 'U'),
    (Kind::UserAgent, 'A'),
    (Kind::Country, 'C'),
    (Kind::Label, 'L'),
    (Kind::CountRule, 'K'),
    (Kind::Ja4, 'J'),
    (Kind::Asn, 'N'),
    (Kind::Ja3, '3'),
];

/// The kind a value row's `kind` column names.
pub fn value_kind(tag: &str) -> Option<Kind> {
    let mut chars = tag.chars();
    let (Some(c), None) = (chars.next(), chars.next()) else {
        return None;
    };
    VALUE_KINDS.iter().find(|(_, t)| *t == c).map(|(k, _)| *k)
}

/// A value as the local engine reads it from one request (NULL where it counts nothing), or, for
/// labels and COUNT rules, an array of them.
fn value_expr(kind: Kind) -> String {
    match kind {
        Kind::Rule => "coalesce(terminatingruleid, '-')".into(),
        Kind::ResponseCode => "CAST(responsecodesent AS varchar)".into(),
        Kind::Uri => "coalesce(httprequest.uri, '')".into(),
        Kind::UserAgent => format!("coalesce({}, '')", header_value("user-agent")),
        Kind::Country => "coalesce(httprequest.country, '-')".into(),
        Kind::Label => "transform(coalesce(labels, ARRAY[]), l -> l.name)".into(),
        Kind::CountRule => "concat(\
             transform(coalesce(nonterminatingmatchingrules, ARRAY[]), r -> r.ruleid), \
             flatten(transform(coalesce(rulegrouplist, ARRAY[]), g -> \
             transform(coalesce(g.nonterminatingmatchingrules, ARRAY[]), r -> r.ruleid))))"
            .into(),
        Kind::Ja4 => "ja4fingerprint".into(),
        // A 32-bit number or its text, as the local reader takes them (`007` is 7).
        Kind::Asn => "CASE WHEN regexp_like(trim(clientasn), '^[0-9]{1,10}$') \
             AND CAST(trim(clientasn) AS bigint) <= 4294967295 \
             THEN CAST(CAST(trim(clientasn) AS bigint) AS varchar) END"
            .into(),
        Kind::Ja3 => "ja3fingerprint".into(),
    }
}

/// The values of one kind a client or key keeps after a scan, `None` for all of them (see
/// [`crate::scan::ClientStats`]): only paths and user agents are cut to a top list, and JA3s to
/// one, since a client's JA3 is kept only when it had one (`distinct_values` tells) and Chromium's
/// is new on nearly every request.
pub fn kept(kind: Kind) -> Option<usize> {
    match kind {
        Kind::Uri => Some(TOP_URIS),
        Kind::UserAgent => Some(TOP_USER_AGENTS),
        Kind::Ja3 => Some(1),
        _ => None,
    }
}

/// The tag of the rows that count requests per client and minute (no [`VALUE_KINDS`] letter).
pub const MINUTE_TAG: char = 'M';

/// The columns of the per-(policy, client, kind, value) aggregate every statement reduces the
/// requests to, and their types: the rollup table holds exactly these (plus `hour`). A row of kind
/// [`MINUTE_TAG`] counts a client's requests in one `minute` (by action, with the first and last
/// timestamp); a row of another kind counts the requests that carried `value`, `minute` NULL.
pub const BASE_COLUMNS: [(&str, &str); 12] = [
    ("policy", "string"),
    ("client", "string"),
    ("kind", "string"),
    ("value", "string"),
    ("minute", "bigint"),
    ("requests", "bigint"),
    ("allow", "bigint"),
    ("block", "bigint"),
    ("captcha", "bigint"),
    ("challenge", "bigint"),
    ("first_ms", "bigint"),
    ("last_ms", "bigint"),
];

/// The columns a run's statement adds to [`BASE_COLUMNS`]: on the minute rows of all requests
/// (policy 0 and [`PREVIOUS`]), the requests with a COUNT-mode match, from the home country, and
/// without a country (the local engine's [`crate::scan::MinuteDetail`]; overseas are the rest);
/// NULL on other rows, and on the minute rows the rollup returns, which does not store them.
pub const DETAIL_COLUMNS: [&str; 3] = ["counted", "domestic", "no_country"];

/// Whether [`expanded`] rows carry the [`DETAIL_COLUMNS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail<'a> {
    /// Without them: the rollup's fill and fingerprints (the rollup does not store them).
    Without,
    /// With them, `home` (the configured home country) counting as domestic.
    With { home: Option<&'a str> },
}

/// The sums and extremes that merge rows of [`BASE_COLUMNS`] and [`DETAIL_COLUMNS`] of one group.
/// A detail sum stays NULL where all its rows are (a minute's rows all come from the raw table or
/// all from the rollup).
fn merged_counts() -> String {
    BASE_COLUMNS[5..10]
        .iter()
        .map(|(c, _)| *c)
        .chain(DETAIL_COLUMNS)
        .map(|c| format!("sum({c}) AS {c}"))
        .chain([
            "min(first_ms) AS first_ms".to_owned(),
            "max(last_ms) AS last_ms".to_owned(),
        ])
        .collect::<Vec<_>>()
        .join(", ")
}

/// The [`DETAIL_COLUMNS`] of an [`expanded`] row, from the request's `has_count` and `country`.
fn detail_columns(home: Option<&str>) -> Vec<String> {
    // The local engine's split ([`crate::scan::GeoSplit::add`]): `-` or empty is no country, the
    // home country compares without regard to ASCII case (`translate` folds ASCII letters only).
    let domestic = match home {
        Some(home) => format!(
            "translate(country, 'abcdefghijklmnopqrstuvwxyz', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ') = {}",
            quote(&home.to_ascii_uppercase())
        ),
        None => "false".into(),
    };
    let no_country = "country IN ('-', '')";
    [
        ("counted", "has_count".to_owned()),
        ("domestic", format!("NOT {no_country} AND {domestic}")),
        ("no_country", no_country.to_owned()),
    ]
    .into_iter()
    .map(|(column, test)| {
        format!(
            "CASE WHEN v = '{MINUTE_TAG}' AND p < 1 THEN CASE WHEN {test} THEN 1 ELSE 0 END END AS {column}"
        )
    })
    .collect()
}

/// The `policy` number of the rows of the previous period of `report --compare`: all its requests,
/// counted like policy 0's of the period (the previous period counts no policies, as locally).
pub const PREVIOUS: i64 = -1;

/// Every request `filter` selects from the raw table, once per policy it counts for (0 for all
/// requests, `n` for the n-th of `policies`) and per value it carries (tagged with its
/// [`VALUE_KINDS`] letter) plus one [`MINUTE_TAG`] element: rows of [`BASE_COLUMNS`] (`policy` an
/// integer) worth one request each, and with `hour` the epoch hour first. A request in `previous`
/// counts for [`PREVIOUS`] alone. With [`Detail::With`] the rows carry the [`DETAIL_COLUMNS`] too.
/// The one reference to the raw table of any statement: everything else is grouped and reshaped
/// from these rows.
pub fn expanded(
    table: &Table,
    filter: &str,
    policies: &[Policy],
    previous: Option<&TimeRange>,
    hour: bool,
    detail: Detail,
) -> String {
    let mut tagged = vec![format!("ARRAY['{MINUTE_TAG}']")];
    tagged.extend(VALUE_KINDS.iter().map(|&(kind, tag)| match kind {
        Kind::Label | Kind::CountRule => {
            format!("transform({}, v -> '{tag}' || v)", value_expr(kind))
        }
        _ => format!("ARRAY['{tag}' || {}]", value_expr(kind)),
    }));
    let mut counted = vec!["0".to_owned()];
    counted.extend(policies.iter().enumerate().map(|(i, p)| {
        format!(
            "CASE WHEN {} THEN {} END",
            predicate(p.matcher.expr()),
            i + 1
        )
    }));
    let counted = format!(
        "filter(ARRAY[\n      {}\n    ], p -> p IS NOT NULL)",
        counted.join(",\n      ")
    );
    let counted = match previous {
        None => counted,
        Some(p) => format!(
            "CASE WHEN {} THEN ARRAY[{PREVIOUS}]\n    ELSE {counted} END",
            timestamp_filter(p).join(" AND ")
        ),
    };
    let minute_only = |then: &str| format!("CASE WHEN v = '{MINUTE_TAG}' THEN {then} END");
    let mut columns = Vec::new();
    if hour {
        columns.push("CAST(floor(CAST(timestamp AS double) / 3600000) AS bigint) AS hour".into());
    }
    columns.extend([
        "p AS policy".to_owned(),
        "client".into(),
        "substr(v, 1, 1) AS kind".into(),
        "substr(v, 2) AS value".into(),
        format!("{} AS minute", minute_only("minute")),
        "1 AS requests".into(),
    ]);
    for a in Action::ALL {
        if a != Action::Other {
            columns.push(format!(
                "CASE WHEN v = '{MINUTE_TAG}' AND action = '{}' THEN 1 ELSE 0 END AS {}",
                a.as_str(),
                a.as_str().to_lowercase()
            ));
        }
    }
    columns.push(format!("{} AS first_ms", minute_only("timestamp")));
    columns.push(format!("{} AS last_ms", minute_only("timestamp")));
    let mut request = String::new();
    if let Detail::With { home } = detail {
        columns.extend(detail_columns(home));
        // A COUNT-mode match: a rule id among the request's COUNT rules, as the `K` values.
        let _ = write!(
            request,
            "cardinality(filter({}, r -> r IS NOT NULL)) > 0 AS has_count,\n    \
             coalesce(httprequest.country, '-') AS country,\n    ",
            value_expr(Kind::CountRule)
        );
    }
    format!(
        "SELECT {columns}\n\
         FROM (\n  SELECT httprequest.clientip AS client,\n    \
         CAST(floor(CAST(timestamp AS double) / 60000) AS bigint) AS minute,\n    \
         timestamp, upper(action) AS action,\n    {request}\
         filter(concat(\n      {tagged}\n    ), v -> v IS NOT NULL) AS vs,\n    \
         {counted} AS ps\n  \
         FROM {table}\n  WHERE {filter}\n)\n\
         CROSS JOIN UNNEST(ps) AS q(p)\nCROSS JOIN UNNEST(vs) AS t(v)",
        columns = columns.join(",\n  "),
        tagged = tagged.join(",\n      "),
        table = table.name,
        filter = filter.replace('\n', "\n  "),
    )
}

/// [`expanded`] rows (or rollup rows, or both) merged per policy, client, kind, value and minute:
/// the base [`reshape`] reads.
pub fn aggregate(rows: &str) -> String {
    format!(
        "SELECT policy, client, kind, value, minute, {}\nFROM (\n  {}\n)\nGROUP BY 1, 2, 3, 4, 5",
        merged_counts(),
        rows.replace('\n', "\n  ")
    )
}

/// The statement of a run over `range` without a rollup: everything `analyze`, `propose`, `report`
/// and `rate` need, from one read of the raw table (see [`reshape`]). With `previous` (`report
/// --compare`) the same read covers that period too, whose rows come back as [`PREVIOUS`]'s.
pub fn scan(
    table: &Table,
    range: &TimeRange,
    previous: Option<&TimeRange>,
    policies: &[Policy],
    home: Option<&str>,
) -> String {
    let ranges: Vec<TimeRange> = std::iter::once(*range).chain(previous.copied()).collect();
    let filter = ranges_filter(table.layout, &ranges);
    let detail = Detail::With { home };
    reshape(
        &aggregate(&expanded(table, &filter, policies, previous, false, detail)),
        policies,
        previous.is_some(),
    )
}

/// The one statement's result, from `base` (rows of [`BASE_COLUMNS`] with integer `policy`, one per
/// policy, client, kind, value and minute): per (client, minute) the requests of all and of each
/// policy ([`MINUTE_TAG`] rows), and per client the values of each kind (first of all requests,
/// `policy` 0, then of the requests each of `policies` matches, `policy` 1, 2, ...): the per-client
/// and per-key top lists and distinct counts, and (summed over clients) the traffic-wide lists
/// and geo split. `propose` needs the policies' own: `distinct_uris` is a threshold, and the
/// evidence lists the matched requests' values.
///
/// The whole statement is one pipeline from `base`: a common table expression is inlined by Trino at
/// each reference, so no step reads another twice (the /24 rows come from an UNNEST of scopes,
/// not a UNION), and Athena bills the raw bytes once.
///
/// The result is cut inside Athena to what the local engine keeps, where that is exact: for
/// dotted-quad IPv4 clients (one spelling per address) the paths and user agents are ranked per client
/// and per /24 (`scope` `client` or `prefix`, each only where all requests or a policy's key needs
/// it) by `row_number()` in the local engine's order (requests descending, then value), only the
/// first [`kept`] return, and `distinct_values` carries the count before the cut. A /24 of all
/// requests with one client has that client's lists, so only /24s shared by several clients return
/// their own (the conversion copies the others' from their one client). Rows of a policy's
/// dotted-quad key with fewer matched requests than the policy's thresholds need cannot fire and are
/// dropped (a per-key window sum of the minute rows). Other clients (IPv6, which has several
/// spellings of one address, and placeholders) return every value with `distinct_values` NULL: they
/// are merged per parsed address in [`super::rows`], and a merged top list is only exact from
/// complete counts.
///
/// With `previous`, the rows of [`PREVIOUS`] (the previous period's requests) are reshaped as
/// policy 0's: both are all requests of a period.
pub fn reshape(base: &str, policies: &[Policy], previous: bool) -> String {
    let cut_kinds = VALUE_KINDS
        .iter()
        .filter(|(k, _)| kept(*k).is_some())
        .map(|(_, t)| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let limit = VALUE_KINDS
        .iter()
        .filter_map(|&(k, t)| kept(k).map(|n| format!(" WHEN '{t}' THEN {n}")))
        .collect::<String>();
    // The policies counted per /24, and the ones with a minimum of matched requests per key.
    let by_prefix: Vec<String> = policies
        .iter()
        .enumerate()
        .filter(|(_, p)| p.key == KeyKind::Prefix)
        .map(|(i, _)| (i + 1).to_string())
        .collect();
    let (prefix_only, policy_key) = if by_prefix.is_empty() {
        (String::new(), "key".to_owned())
    } else {
        let list = by_prefix.join(", ");
        (
            format!(" WHEN policy IN ({list}) THEN ARRAY['prefix']"),
            format!(
                "CASE WHEN scope = 'client' AND dotted AND policy IN ({list}) \
                 THEN {} ELSE key END",
                PREFIX_24.replace("client", "key")
            ),
        )
    };
    let minimums: String = policies
        .iter()
        .enumerate()
        .map(|(i, p)| (i + 1, p.thresholds.min_requests()))
        .filter(|(_, min)| *min > 1)
        .map(|(i, min)| format!(" WHEN {i} THEN {min}"))
        .collect();
    let reachable = if minimums.is_empty() {
        String::new()
    } else {
        format!("\n  AND (NOT dotted OR key_requests >= CASE policy{minimums} ELSE 0 END)")
    };
    let all = if previous {
        "policy <= 0"
    } else {
        "policy = 0"
    };
    format!(
        "WITH base AS (\n  {base}\n),\n\
         flagged AS (\n  SELECT *, dotted AND kind IN ({cut_kinds}) AS cut\n  \
         FROM (SELECT *, {DOTTED} AS dotted FROM base)\n),\n\
         scoped AS (\n  \
         SELECT policy, scope, CASE scope WHEN 'prefix' THEN {PREFIX_24} ELSE client END AS key,\n    \
         kind, value, minute, dotted, cut, {counts},\n    \
         min(client) AS first_client, max(client) AS last_client\n  \
         FROM flagged\n  \
         CROSS JOIN UNNEST(CASE WHEN NOT cut THEN ARRAY['client']{prefix_only}\n    \
         WHEN {all} THEN ARRAY['client', 'prefix'] ELSE ARRAY['client'] END) AS s(scope)\n  \
         GROUP BY 1, 2, 3, 4, 5, 6, 7, 8\n),\n\
         ranked AS (\n  SELECT *,\n    \
         row_number() OVER (PARTITION BY policy, scope, key, kind ORDER BY requests DESC, value) AS place,\n    \
         count(*) OVER (PARTITION BY policy, scope, key, kind) AS distinct_values,\n    \
         min(first_client) OVER (PARTITION BY policy, scope, key)\n      \
         < max(last_client) OVER (PARTITION BY policy, scope, key) AS shared,\n    \
         sum(CASE WHEN kind = '{MINUTE_TAG}' THEN requests ELSE 0 END)\n      \
         OVER (PARTITION BY policy, {policy_key}) AS key_requests\n  \
         FROM scoped\n)\n\
         SELECT policy, scope, key AS client, kind, value, minute, requests,\n  \
         allow, block, captcha, challenge, first_ms, last_ms,\n  \
         CASE WHEN cut THEN distinct_values END AS distinct_values, {detail}\n\
         FROM ranked\n\
         WHERE (NOT cut OR place <= CASE kind{limit} END)\n  \
         AND (scope = 'client' OR policy > 0 OR shared){reachable}",
        base = base.replace('\n', "\n  "),
        counts = merged_counts(),
        detail = DETAIL_COLUMNS.join(", "),
    )
}

/// The partition and timestamp conditions for `range`. `timestamp IS NOT NULL` always holds: it drops
/// rows the SerDe could not read, which the local engine counts as malformed.
pub fn range_filter(layout: Layout, range: &TimeRange) -> String {
    let mut parts = Vec::new();
    let column = match layout {
        Layout::Projection => Some(("log_time", "%Y/%m/%d/%H/%M")),
        Layout::Date => Some(("\"date\"", "%Y/%m/%d")),
        Layout::None => None,
    };
    if let Some((column, format)) = column {
        if let Some(since) = range.since {
            parts.push(format!(
                "{column} >= '{}'",
                partition_value(since - PARTITION_SLACK_MS, format)
            ));
        }
        if let Some(until) = range.until {
            parts.push(format!(
                "{column} <= '{}'",
                partition_value(until + PARTITION_SLACK_MS, format)
            ));
        }
    }
    parts.extend(timestamp_filter(range));
    parts.join("\n  AND ")
}

/// The conditions on `timestamp` for `range`.
fn timestamp_filter(range: &TimeRange) -> Vec<String> {
    let mut parts = vec![match range.since {
        Some(since) => format!("timestamp >= {since}"),
        None => "timestamp IS NOT NULL".into(),
    }];
    if let Some(until) = range.until {
        parts.push(format!("timestamp < {until}"));
    }
    parts
}

/// The [`range_filter`] of several ranges: ranges that touch or overlap are merged into one (the
/// previous period of `report --compare previous` ends where the period starts), the others joined
/// with `OR`, each with its own partition condition: Athena prunes partitions on each, so a period
/// compared with one a year before reads the two, not the year between.
pub fn ranges_filter(layout: Layout, ranges: &[TimeRange]) -> String {
    let mut sorted = ranges.to_vec();
    sorted.sort_by_key(|r| r.since.unwrap_or(i64::MIN));
    let mut merged: Vec<TimeRange> = Vec::new();
    for r in sorted {
        match merged.last_mut() {
            Some(last) if last.until.is_none_or(|u| r.since.is_none_or(|s| s <= u)) => {
                last.until = last.until.zip(r.until).map(|(a, b)| a.max(b));
            }
            _ => merged.push(r),
        }
    }
    match &merged[..] {
        [one] => range_filter(layout, one),
        _ => merged
            .iter()
            .map(|r| format!("({})", range_filter(layout, r)))
            .collect::<Vec<_>>()
            .join("\n  OR "),
    }
}

/// The partition value holding `ms` (UTC), in the layout's format. Zero-padded fixed-width text, so
/// string comparison is time order.
fn partition_value(ms: i64, format: &str) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .unwrap_or(if ms < 0 {
            jiff::Timestamp::MIN
        } else {
            jiff::Timestamp::MAX
        })
        .strftime(format)
        .to_string()
}

/// A matcher's condition tree as a SQL boolean that is never NULL, so `NOT` behaves as in the local
/// engine (a missing field matches no pattern, and `not` of that is true).
pub fn predicate(expr: &Expr) -> String {
    match expr {
        Expr::All(children) if children.is_empty() => "true".into(),
        Expr::Any(children) if children.is_empty() => "false".into(),
        Expr::All(children) => join(children, " AND "),
        Expr::Any(children) => join(children, " OR "),
        Expr::Not(child) => format!("NOT ({})", predicate(child)),
        Expr::Cond(c) => format!("coalesce({}, false)", condition(c)),
    }
}

fn join(children: &[Expr], op: &str) -> String {
    children
        .iter()
        .map(|c| format!("({})", predicate(c)))
        .collect::<Vec<_>>()
        .join(op)
}

/// One condition; may be NULL where a field is missing (the caller coalesces).
fn condition(c: &Condition) -> String {
    match c {
        Condition::Path(t) => text("httprequest.uri", t),
        Condition::Method(list) => in_list("upper(httprequest.httpmethod)", list),
        Condition::Host(t) => text(
            &format!("coalesce(httprequest.host, {})", header_value("host")),
            t,
        ),
        Condition::UserAgent(t) => text(&header_value("user-agent"), t),
        Condition::Header(h) => match &h.test {
            HeaderTest::Present(true) => format!("cardinality({}) > 0", headers(&h.name)),
            HeaderTest::Present(false) => {
                format!("coalesce(cardinality({}), 0) = 0", headers(&h.name))
            }
            HeaderTest::Value(t) => text(&header_value(&h.name), t),
        },
        Condition::Country(CountryMatch { countries, negate }) => {
            let list = countries
                .iter()
                .map(|c| quote(c))
                .collect::<Vec<_>>()
                .join(", ");
            let not = if *negate { "NOT " } else { "" };
            format!("coalesce(httprequest.country, '-') {not}IN ({list})")
        }
        Condition::Labels(l) => labels(l),
        Condition::Action(list) => {
            let list = list
                .iter()
                .map(|a| quote(a.as_str()))
                .collect::<Vec<_>>()
                .join(", ");
            format!("({ACTION}) IN ({list})")
        }
        Condition::TerminatingRule(t) => text("terminatingruleid", t),
        Condition::TerminatingRuleType(list) => in_list("upper(terminatingruletype)", list),
        Condition::CountRule(t) => {
            let re = quote(t.regex());
            format!(
                "cardinality(filter(nonterminatingmatchingrules, r -> regexp_like(r.ruleid, {re}))) > 0 \
                 OR cardinality(filter(rulegrouplist, g -> \
                 cardinality(filter(g.nonterminatingmatchingrules, r -> regexp_like(r.ruleid, {re}))) > 0)) > 0"
            )
        }
        Condition::Source(list) => in_list("upper(httpsourcename)", list),
        Condition::Ja3(t) => text("ja3fingerprint", t),
        Condition::Ja4(t) => text("ja4fingerprint", t),
        Condition::ResponseCode(codes) => {
            let list = codes
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            format!("responsecodesent IN ({list})")
        }
    }
}

/// The compiled regex of the matcher (anchors and `(?i)` included), which the pattern module keeps
/// to the subset Rust, Trino (Java) and RE2 read alike.
fn text(column: &str, t: &TextMatch) -> String {
    format!("regexp_like({column}, {})", quote(t.regex()))
}

/// Case-insensitive list membership, as the local engine compares these fields.
fn in_list(column: &str, list: &[String]) -> String {
    let list = list
        .iter()
        .map(|v| quote(&v.to_uppercase()))
        .collect::<Vec<_>>()
        .join(", ");
    format!("{column} IN ({list})")
}

/// The request headers with that name (names compare without regard to case).
fn headers(name: &str) -> String {
    format!(
        "filter(httprequest.headers, h -> lower(h.name) = {})",
        quote(&name.to_lowercase())
    )
}

/// The value of the first header with that name (a header without a value reads as empty), NULL when
/// none is sent.
fn header_value(name: &str) -> String {
    format!(
        "element_at(transform({}, h -> coalesce(h.value, '')), 1)",
        headers(name)
    )
}

fn labels(m: &LabelMatch) -> String {
    let carries = |p: &LabelPattern| {
        let test = match p {
            LabelPattern::Exact(l) => format!("l.name = {}", quote(l)),
            LabelPattern::Prefix(p) => format!("starts_with(l.name, {})", quote(p)),
        };
        format!("coalesce(cardinality(filter(labels, l -> {test})) > 0, false)")
    };
    let mut parts = Vec::new();
    if !m.any.is_empty() {
        parts.push(format!(
            "({})",
            m.any.iter().map(carries).collect::<Vec<_>>().join(" OR ")
        ));
    }
    parts.extend(m.all.iter().map(carries));
    parts.extend(m.none.iter().map(|p| format!("NOT {}", carries(p))));
    if parts.is_empty() {
        "true".into()
    } else {
        parts.join(" AND ")
    }
}

/// A SQL string literal.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {

    use super::*;
    use std::path::Path;

    fn table(layout: Layout) -> Table {
        Table {
            name: "waf_logs".into(),
            layout,
        }
    }

    fn range() -> TimeRange {
        // 2026-11-20T00:00:00Z .. 2026-11-21T00:00:00Z
        TimeRange {
            since: Some(1_795_132_800_000),
            until: Some(1_795_219_200_000),
        }
    }

    fn policy(text: &str) -> crate::policy::Policy {
        crate::policy::parse_str(text, Path::new("t.toml"), None)
            .expect("valid policy")
            .policies
            .policies
            .remove(0)
    }

    #[test]
    fn range_constrains_partition_with_slack_and_timestamp_exactly() {
        assert_eq!(
            range_filter(Layout::Projection, &range()),
            "log_time >= '2026/11/19/23/45'\n  AND log_time <= '2026/11/21/00/15'\n  \
             AND timestamp >= 1795132800000\n  AND timestamp < 1795219200000"
        );
        assert_eq!(
            range_filter(Layout::Date, &range()),
            "\"date\" >= '2026/11/19'\n  AND \"date\" <= '2026/11/21'\n  \
             AND timestamp >= 1795132800000\n  AND timestamp < 1795219200000"
        );
        assert_eq!(
            range_filter(Layout::None, &TimeRange::default()),
            "timestamp IS NOT NULL"
        );
    }

    #[test]
    fn one_statement_reads_the_raw_table_once() {
        let sql = scan(&table(Layout::Projection), &range(), None, &[], None);
        assert_eq!(sql.matches("waf_logs").count(), 1, "{sql}");
        let words = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(words.contains(
            "FROM waf_logs WHERE log_time >= '2026/11/19/23/45' AND log_time <= '2026/11/21/00/15' \
             AND timestamp >= 1795132800000 AND timestamp < 1795219200000 ) \
             CROSS JOIN UNNEST(ps) AS q(p) CROSS JOIN UNNEST(vs) AS t(v)"
        ));
        // Every step after the read is referenced once: no step is evaluated twice.
        for step in ["base", "flagged", "scoped", "ranked"] {
            assert_eq!(sql.matches(&format!("FROM {step}")).count(), 1, "{step}");
        }
        assert!(!sql.contains("UNION") && !sql.contains("JOIN waf_logs"));
        // The minute rows' tag is no value kind's.
        assert!(VALUE_KINDS.iter().all(|(_, t)| *t != MINUTE_TAG));
        assert_eq!(value_kind(&MINUTE_TAG.to_string()), None);
    }

    #[test]
    fn a_previous_period_is_read_in_the_same_statement() {
        let day = 86_400_000;
        let previous = TimeRange {
            since: range().since.map(|s| s - day),
            until: range().since,
        };
        // Keyed per client, with no minimum of matched requests.
        let policies = &super::super::tests::policies()[..1];
        let sql = scan(
            &table(Layout::Projection),
            &range(),
            Some(&previous),
            policies,
            None,
        );
        assert_eq!(sql.matches("waf_logs").count(), 1, "{sql}");
        let words = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        // The day before ends where the period starts: one range covers both.
        assert!(words.contains(
            "FROM waf_logs WHERE log_time >= '2026/11/18/23/45' AND log_time <= '2026/11/21/00/15' \
             AND timestamp >= 1795046400000 AND timestamp < 1795219200000 )"
        ));
        // Its requests count for the previous period alone, and are reshaped as all requests.
        assert!(words.contains(
            "CASE WHEN timestamp >= 1795046400000 AND timestamp < 1795132800000 THEN ARRAY[-1] \
             ELSE filter(ARRAY[ 0, CASE WHEN"
        ));
        assert!(words.contains("WHEN policy <= 0 THEN ARRAY['client', 'prefix']"));
        // Without one, the statement is as before.
        assert!(!scan(&table(Layout::Projection), &range(), None, policies, None).contains("<= 0"));
        // A period apart: each range with its own partitions, never the days between.
        let apart = TimeRange {
            since: range().since.map(|s| s - 7 * day),
            until: range().since.map(|s| s - 6 * day),
        };
        assert_eq!(
            ranges_filter(Layout::Date, &[range(), apart]),
            "(\"date\" >= '2026/11/12'\n  AND \"date\" <= '2026/11/14'\n  \
             AND timestamp >= 1794528000000\n  AND timestamp < 1794614400000)\n  \
             OR (\"date\" >= '2026/11/19'\n  AND \"date\" <= '2026/11/21'\n  \
             AND timestamp >= 1795132800000\n  AND timestamp < 1795219200000)"
        );
        // An open end covers what follows it.
        let open = TimeRange {
            since: range().since,
            until: None,
        };
        assert_eq!(
            ranges_filter(Layout::None, &[open, apart, range()]),
            "(timestamp >= 1794528000000\n  AND timestamp < 1794614400000)\n  \
             OR (timestamp >= 1795132800000)"
        );
    }

    #[test]
    fn policy_predicates_are_pinned() {
        let p = policy(
            r#"
[[policy]]
name = "login"
description = "d"
key = "ip"
[policy.match]
path = ["/login*"]
method = ["POST"]
labels = { none = ["awswaf:managed:aws:bot-control:bot:verified"] }
[policy.thresholds]
peak = { window = "5m", requests = 50 }
[policy.action]
type = "report"
"#,
        );
        assert_eq!(
            predicate(p.matcher.expr()),
            "(coalesce(upper(httprequest.httpmethod) IN ('POST'), false)) \
             AND (coalesce(NOT coalesce(cardinality(filter(labels, l -> l.name = \
             'awswaf:managed:aws:bot-control:bot:verified')) > 0, false), false)) \
             AND (coalesce(regexp_like(httprequest.uri, '(?:^/login[^/]*$)'), false))"
        );
        let p = policy(
            r#"
[[policy]]
name = "ua"
description = "d"
key = "prefix"
[policy.match]
user_agent = { regex = ['python-requests'], ignore_case = true }
country = { not_in = ["JP"] }
[policy.thresholds]
peak = { window = "5m", requests = 50 }
[policy.action]
type = "report"
"#,
        );
        assert_eq!(
            predicate(p.matcher.expr()),
            "(coalesce(coalesce(httprequest.country, '-') NOT IN ('JP'), false)) \
             AND (coalesce(regexp_like(element_at(transform(filter(httprequest.headers, \
             h -> lower(h.name) = 'user-agent'), h -> coalesce(h.value, '')), 1), \
             '(?i)(?:python-requests)'), false))"
        );
    }

    #[test]
    fn minute_rows_of_all_requests_carry_the_detail_and_the_rollup_definitions_do_not() {
        let sql = scan(&table(Layout::None), &range(), None, &[], Some("jp"));
        let words = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(words.contains(
            "CASE WHEN v = 'M' AND p < 1 THEN CASE WHEN NOT country IN ('-', '') AND \
             translate(country, 'abcdefghijklmnopqrstuvwxyz', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ') = 'JP' \
             THEN 1 ELSE 0 END END AS domestic"
        ));
        assert!(words.contains("coalesce(httprequest.country, '-') AS country"));
        assert!(words.contains("sum(counted) AS counted, sum(domestic) AS domestic"));
        assert!(words.contains("distinct_values, counted, domestic, no_country FROM ranked"));
        // Without a home country every known country is overseas.
        let sql = scan(&table(Layout::None), &range(), None, &[], None);
        assert!(sql.contains("WHEN NOT country IN ('-', '') AND false THEN 1"));
        // The rollup's fill and fingerprints read the definitions without them.
        let without = expanded(&table(Layout::None), "", &[], None, true, Detail::Without);
        assert!(!without.contains("has_count") && !without.contains("domestic"));
    }

    #[test]
    fn quotes_are_escaped() {
        assert_eq!(quote("it's"), "'it''s'");
    }

    #[test]
    fn ddl_covers_every_column_and_the_projection() {
        let at = LogLocation {
            bucket: "aws-waf-logs-shop".into(),
            account: "123456789012".into(),
            region: "ap-northeast-1".into(),
            web_acl: "shop-prod".into(),
        };
        let sql = ddl(&table(Layout::Projection), &at, "2026/01/01");
        for (name, _) in COLUMNS {
            assert!(sql.contains(&format!("`{name}` ")), "{name}");
        }
        assert!(sql.contains("'projection.log_time.range' = '2026/01/01/00/00,NOW'"));
        assert!(sql.contains(
            "'storage.location.template' = 's3://aws-waf-logs-shop/AWSLogs/123456789012/WAFLogs/ap-northeast-1/shop-prod/${log_time}'"
        ));
        let sql = ddl(&table(Layout::Date), &at, "2026/01/01");
        assert!(sql.contains("PARTITIONED BY (`region` string, `date` string)"));
        assert!(sql.contains("WAFLogs/${region}/shop-prod/${date}'"));
        let sql = ddl(&table(Layout::None), &at, "2026/01/01");
        assert!(!sql.contains("TBLPROPERTIES"));
    }
}
