//! The rollup: the one statement's base ([`sql::BASE_COLUMNS`]) of closed hours, kept in a
//! partitioned Parquet table, so a weekly run reads a few percent of the raw bytes.
//!
//! The rollup holds the base rows of each hour: per client, kind, value and (minute rows) minute,
//! the requests of that hour, for the list of policies (`policies`) whose rows have exactly these
//! counts: most requests count alike for all requests and for the policies that match everything,
//! so one row serves them all instead of one each (a third of the rows). Sums, minimums and
//! maximums merge across hours, so the base of a range is the merge of its hours' rows, read from
//! the rollup for the hours it holds and from the raw table for the others; the statement's
//! reshaping (top lists, /24s, HAVING) then runs on the merged base as on a raw one, and the result
//! is the same. The rollup stores those base rows nested, one table row per client, hour and list
//! of policies (see [`COLUMNS`]), which is what keeps it a few percent of the raw bytes.
//!
//! Policies are not numbered in the rollup but named by a fingerprint of what decides their rows
//! (the matcher's SQL and the value definitions, see [`fingerprint`]); all requests are the
//! fingerprint of a matcher that matches everything. A run maps the fingerprints it needs to its
//! own policy numbers, so a rollup filled for `propose`'s policies also serves `analyze`, `report`
//! and `rate`, and a changed policy is never read from rows of its old matcher.
//!
//! The table is Iceberg (Parquet files): Athena runs `DELETE` only on Iceberg tables, and each
//! statement commits atomically. A fill is delete-then-insert per range of hours (an hour holds the
//! policies of its last fill), then one marker row per hour listing the fingerprints it holds
//! ([`MARKER_TAG`]); only hours with markers count as held. Re-running a fill replaces what was
//! there, and a fill that failed halfway left no markers, so the next run deletes its partial rows
//! and fills again: no hour is ever counted twice.

use std::fmt::Write as _;
use std::ops::Range;

use sha2::{Digest, Sha256};

use super::sql::{self, BASE_COLUMNS, MINUTE_TAG, PARTITION_SLACK_MS, Table};
use crate::log::TimeRange;
use crate::policy::Policy;

pub const HOUR_MS: i64 = 3_600_000;

/// The one item of the rows that say an hour of a fingerprint is held (no value kind's letter).
pub const MARKER_TAG: char = '#';

/// The zstd level the rollup's files are written with: fills are a few megabytes a day, so the
/// time a high level costs is nothing, and every run reads the bytes it saves (a quarter of
/// Athena's default level 3, docs/benchmarks.md).
pub const ZSTD_LEVEL: u8 = 19;

/// Hours one fill statement writes: Athena writes at most 100 partitions per `INSERT`.
pub const FILL_HOURS: i64 = 24;

/// The columns of the rollup table. A row holds the base rows ([`sql::BASE_COLUMNS`]) of one hour,
/// client and set of fingerprints (`policies`, in place of the policy) as arrays: the value rows as
/// `items` (kind letter and value, sorted) with their `item_counts`, the minute rows as `minutes`
/// (of the hour, sorted) with their `counts` and counts by action. A client's values sit together
/// and sorted whatever order the engine writes rows in, which is what Parquet compresses well
/// (paths are most of the bytes), and the client is written once per hour and set instead of once
/// per value. `first_ms` and `last_ms` are the row's first and last timestamp, which its first and
/// last minute hold: per minute they were a sixth of the rollup, and a run only needs each client's
/// first and last. `hour` (epoch hour) is the partition.
pub const COLUMNS: [(&str, &str); 13] = [
    ("policies", "array<string>"),
    ("client", "string"),
    ("items", "array<string>"),
    ("item_counts", "array<bigint>"),
    ("minutes", "array<int>"),
    ("counts", "array<bigint>"),
    ("allows", "array<bigint>"),
    ("blocks", "array<bigint>"),
    ("captchas", "array<bigint>"),
    ("challenges", "array<bigint>"),
    ("first_ms", "bigint"),
    ("last_ms", "bigint"),
    ("hour", "bigint"),
];

/// The fingerprint of a policy's rows (`None`: all requests): 16 hex digits of the SHA-256 of its
/// matcher's SQL and of the statement's value definitions, which are the rows' only inputs.
pub fn fingerprint(policy: Option<&Policy>) -> String {
    let predicate = policy.map_or_else(|| "true".to_owned(), |p| sql::predicate(p.matcher.expr()));
    // The definitions of the values and of the minute rows, as the statement writes them.
    let definitions = sql::expanded(
        &Table {
            name: String::new(),
            layout: crate::model::athena::Layout::None,
        },
        "",
        &[],
        None,
        true,
        sql::Detail::Without,
    );
    let digest = Sha256::digest(format!("{definitions}\n{predicate}"));
    digest[..8].iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The fingerprints of a run: all requests first, then each policy's, in order (see [`unique`]).
pub fn fingerprints(policies: &[Policy]) -> Vec<String> {
    std::iter::once(fingerprint(None))
        .chain(policies.iter().map(Some).map(fingerprint))
        .collect()
}

/// Each fingerprint of `fingerprints` once, sorted.
pub fn unique(fingerprints: &[String]) -> Vec<String> {
    let mut unique = fingerprints.to_vec();
    unique.sort();
    unique.dedup();
    unique
}

/// `CREATE TABLE` for the rollup, in `location` (`s3://bucket/prefix/`).
pub fn ddl(name: &str, location: &str) -> String {
    let mut out = format!("CREATE TABLE IF NOT EXISTS {name} (\n");
    for (i, (column, ty)) in COLUMNS.iter().enumerate() {
        let sep = if i + 1 < COLUMNS.len() { "," } else { "" };
        let _ = writeln!(out, "  {column} {ty}{sep}");
    }
    let _ = write!(
        out,
        ")\nPARTITIONED BY (hour)\nLOCATION {}\nTBLPROPERTIES (\n  'table_type' = 'ICEBERG',\n  \
         'format' = 'parquet',\n  'write_compression' = 'zstd',\n  'compression_level' = '{ZSTD_LEVEL}'\n)",
        sql::quote(location)
    );
    out
}

/// The quoted list of a set of fingerprints.
fn fingerprint_list(fingerprints: &[String]) -> String {
    unique(fingerprints)
        .iter()
        .map(|f| sql::quote(f))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The hours `hours` as conditions on `hour`, merged into runs (`hour >= a AND hour < b`).
fn hour_condition(hours: &[i64]) -> String {
    runs(hours)
        .iter()
        .map(|r| format!("(hour >= {} AND hour < {})", r.start, r.end))
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// Sorted hours as runs of consecutive hours.
pub fn runs(hours: &[i64]) -> Vec<Range<i64>> {
    let mut out: Vec<Range<i64>> = Vec::new();
    for &h in hours {
        match out.last_mut() {
            Some(r) if r.end == h => r.end += 1,
            _ => out.push(h..h + 1),
        }
    }
    out
}

/// Sorted hours as the ranges one fill statement each writes: runs of consecutive hours, cut at
/// [`FILL_HOURS`].
pub fn chunks(hours: &[i64]) -> Vec<Range<i64>> {
    runs(hours)
        .into_iter()
        .flat_map(|r| {
            r.clone()
                .step_by(FILL_HOURS as usize)
                .map(move |start| start..(start + FILL_HOURS).min(r.end))
        })
        .collect()
}

/// The whole hours inside `range` that are closed at `now_ms`: their files are delivered (their
/// end is a partition slack in the past), so the rollup may hold them. Empty for an open start.
pub fn closed_hours(range: &TimeRange, now_ms: i64) -> Range<i64> {
    let Some(since) = range.since else {
        return 0..0;
    };
    let start = since.div_euclid(HOUR_MS) + i64::from(since.rem_euclid(HOUR_MS) != 0);
    let until = range
        .until
        .unwrap_or(i64::MAX)
        .min(now_ms - PARTITION_SLACK_MS);
    start..until.div_euclid(HOUR_MS).max(start)
}

/// The statements that fill `hours` for `policies`: delete what the rollup holds of those hours,
/// insert their base from the raw table (one row per set of fingerprints with the same counts), then
/// the markers.
pub fn fill(table: &Table, name: &str, hours: Range<i64>, policies: &[Policy]) -> Vec<String> {
    // Each matcher once: policies that match alike have the same rows.
    let mut seen = Vec::new();
    let policies: Vec<Policy> = policies
        .iter()
        .filter(|p| {
            let f = fingerprint(Some(p));
            let new = !seen.contains(&f);
            seen.push(f);
            new
        })
        .cloned()
        .collect();
    let fingerprints = fingerprints(&policies);
    let delete = format!(
        "DELETE FROM {name}\nWHERE hour >= {} AND hour < {}",
        hours.start, hours.end
    );
    let range = TimeRange {
        since: Some(hours.start * HOUR_MS),
        until: Some(hours.end * HOUR_MS),
    };
    let named: String = fingerprints
        .iter()
        .enumerate()
        .map(|(i, f)| format!(" WHEN {i} THEN {}", sql::quote(f)))
        .collect();
    let counts: Vec<&str> = BASE_COLUMNS[5..].iter().map(|(c, _)| *c).collect();
    let merged = BASE_COLUMNS[5..10]
        .iter()
        .map(|(c, _)| format!("sum({c}) AS {c}"))
        .collect::<Vec<_>>()
        .join(", ");
    // The arrays of one kind of row in one order, so element i of each is one base row.
    let values = |column: &str| {
        format!("array_agg({column} ORDER BY kind, value) FILTER (WHERE kind <> '{MINUTE_TAG}')")
    };
    let minutes = |column: &str| {
        format!("array_agg({column} ORDER BY minute) FILTER (WHERE kind = '{MINUTE_TAG}')")
    };
    let mut arrays = vec![
        values("kind || value"),
        values("requests"),
        minutes("CAST(minute - hour * 60 AS integer)"),
        minutes("requests"),
    ];
    arrays.extend(BASE_COLUMNS[6..10].iter().map(|(c, _)| minutes(c)));
    let insert = format!(
        "INSERT INTO {name}\n\
         SELECT policies, client,\n  {arrays},\n  \
         min(first_ms), max(last_ms), hour\n\
         FROM (\n  \
         SELECT array_agg(fingerprint ORDER BY fingerprint) AS policies, client, kind, value, minute,\n    \
         {counts}, hour\n  \
         FROM (\n    \
         SELECT hour, CASE policy{named} END AS fingerprint, client, kind, value, minute, {merged},\n      \
         min(first_ms) AS first_ms, max(last_ms) AS last_ms\n    \
         FROM (\n      {}\n    )\n    \
         GROUP BY hour, policy, client, kind, value, minute\n  )\n  \
         GROUP BY hour, client, kind, value, minute, {counts}\n)\n\
         GROUP BY hour, client, policies",
        sql::expanded(
            table,
            &sql::range_filter(table.layout, &range),
            &policies,
            None,
            true,
            sql::Detail::Without,
        )
        .replace('\n', "\n      "),
        arrays = arrays.join(",\n  "),
        counts = counts.join(", "),
    );
    let list = fingerprint_list(&fingerprints);
    let markers = hours
        .map(|h| {
            format!(
                "(ARRAY[{list}], NULL, ARRAY['{MARKER_TAG}'], ARRAY[0], NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, {h})"
            )
        })
        .collect::<Vec<_>>()
        .join(",\n  ");
    vec![
        delete,
        insert,
        format!("INSERT INTO {name} VALUES\n  {markers}"),
    ]
}

/// The hours of `hours` the rollup holds for `policies`, from the marker rows: the query the
/// `athena rollup` command runs first (it reads only the rollup's smallest columns).
pub fn coverage(name: &str, hours: Range<i64>, policies: &[Policy]) -> String {
    format!(
        "SELECT hour, count(DISTINCT fingerprint) AS policies\n\
         FROM {name}\nCROSS JOIN UNNEST(policies) AS f(fingerprint)\n\
         WHERE element_at(items, 1) = '{MARKER_TAG}' AND hour >= {} AND hour < {}\n  \
         AND fingerprint IN ({})\n\
         GROUP BY hour",
        hours.start,
        hours.end,
        fingerprint_list(&fingerprints(policies))
    )
}

/// The hours a statement reads from the rollup (each sorted): of the run's range, and of the
/// previous period of `report --compare`, of which only all requests are read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    pub range: Vec<i64>,
    pub previous: Vec<i64>,
}

impl Held {
    pub fn is_empty(&self) -> bool {
        self.range.is_empty() && self.previous.is_empty()
    }
}

/// The one statement of a run over `range` (and `previous`, see [`sql::scan`]) that reads the
/// hours `held` from the rollup `name` and the rest of the ranges from the raw table: the base of
/// both merged, then reshaped as [`sql::scan`] reshapes the raw one. The rollup's markers of those
/// hours pass through as rows of kind [`MARKER_TAG`] (`minute` the hour), so the run can check the
/// rollup really held them. The rollup does not store the [`sql::DETAIL_COLUMNS`]: its minute rows
/// have them NULL, so a run's per-minute detail is complete only without held hours. Without `held`
/// hours it is [`sql::scan`].
pub fn scan(
    table: &Table,
    name: &str,
    range: &TimeRange,
    previous: Option<&TimeRange>,
    held: &Held,
    policies: &[Policy],
    home: Option<&str>,
) -> String {
    if held.is_empty() {
        return sql::scan(table, range, previous, policies, home);
    }
    let fingerprints = fingerprints(policies);
    // A fingerprint maps to every policy number that has it (two policies may match alike).
    let mut numbers: Vec<(&String, Vec<usize>)> = Vec::new();
    for (i, f) in fingerprints.iter().enumerate() {
        match numbers.iter_mut().find(|(g, _)| *g == f) {
            Some((_, v)) => v.push(i),
            None => numbers.push((f, vec![i])),
        }
    }
    let mapping: String = numbers
        .iter()
        .map(|(f, v)| {
            let v = v.iter().map(usize::to_string).collect::<Vec<_>>();
            format!(" WHEN {} THEN ARRAY[{}]", sql::quote(f), v.join(", "))
        })
        .collect();
    let mut mapping = format!("CASE fingerprint{mapping} END");
    if !held.previous.is_empty() {
        // The previous period's hours give all requests only.
        mapping = format!(
            "CASE WHEN {} THEN CASE fingerprint WHEN {} THEN ARRAY[{}] END\n    ELSE {mapping} END",
            hour_condition(&held.previous),
            sql::quote(&fingerprints[0]),
            sql::PREVIOUS
        );
    }
    let mut hours = [held.range.as_slice(), &held.previous].concat();
    hours.sort_unstable();
    // Element i of a row is its i-th item, or (j = i minus the items, positive) its j-th minute:
    // one UNNEST of the counts of both, numbered (`sequence` would stop at 10,000 elements). Index
    // j is only used where positive (Trino's `element_at` fails at 0), behind a CASE, which Trino
    // evaluates lazily where AND need not. The row's first and last timestamp go to the minutes
    // that hold them; the others' are NULL, which the merge's min and max skip.
    let minute = "hour * 60 + element_at(minutes, j)";
    let edge = |column: &str| {
        format!(
            "CASE WHEN j > 0 THEN CASE WHEN {minute} = \
             CAST(floor(CAST({column} AS double) / 60000) AS bigint) THEN {column} END END AS {column}"
        )
    };
    let actions = BASE_COLUMNS[6..10]
        .iter()
        .zip(&COLUMNS[6..10])
        .map(|((c, _), (array, _))| {
            format!("CASE WHEN j > 0 THEN element_at({array}, j) ELSE 0 END AS {c}")
        })
        .collect::<Vec<_>>()
        .join(",\n  ");
    let mut rows = format!(
        "SELECT run_policy AS policy, client,\n  \
         CASE WHEN j > 0 THEN '{MINUTE_TAG}' ELSE substr(element_at(items, i), 1, 1) END AS kind,\n  \
         CASE WHEN j > 0 THEN '' ELSE substr(element_at(items, i), 2) END AS value,\n  \
         CASE WHEN j > 0 THEN {minute} WHEN element_at(items, i) = '{MARKER_TAG}' THEN hour END AS minute,\n  \
         requests, {actions},\n  {}, {},\n  {detail}\n\
         FROM (\n  \
         SELECT *, i - coalesce(cardinality(item_counts), 0) AS j\n  \
         FROM {name}\n  \
         CROSS JOIN UNNEST(policies) AS f(fingerprint)\n  \
         CROSS JOIN UNNEST({mapping}) AS r(run_policy)\n  \
         CROSS JOIN UNNEST(concat(coalesce(item_counts, ARRAY[]), coalesce(counts, ARRAY[])))\n    \
         WITH ORDINALITY AS e(requests, i)\n  \
         WHERE fingerprint IN ({})\n    AND ({})\n)",
        edge("first_ms"),
        edge("last_ms"),
        fingerprint_list(&fingerprints),
        hour_condition(&hours),
        detail = sql::DETAIL_COLUMNS
            .map(|c| format!("CAST(NULL AS bigint) AS {c}"))
            .join(", "),
    );
    // The raw table for the rest: the ranges minus the held hours.
    let mut raw = gaps(range, &held.range);
    if let Some(p) = previous {
        raw.extend(gaps(p, &held.previous));
    }
    if !raw.is_empty() {
        let filter = sql::ranges_filter(table.layout, &raw);
        let _ = write!(
            rows,
            "\nUNION ALL\n{}",
            sql::expanded(
                table,
                &filter,
                policies,
                previous,
                false,
                sql::Detail::With { home }
            )
        );
    }
    sql::reshape(&sql::aggregate(&rows), policies, previous.is_some())
}

/// The parts of `range` outside the hours `held` (sorted).
fn gaps(range: &TimeRange, held: &[i64]) -> Vec<TimeRange> {
    let mut raw = Vec::new();
    let mut from = range.since;
    for r in runs(held) {
        let gap = TimeRange {
            since: from,
            until: Some(r.start * HOUR_MS),
        };
        if gap.since.is_none_or(|s| s < r.start * HOUR_MS) {
            raw.push(gap);
        }
        from = Some(r.end * HOUR_MS);
    }
    if from.is_none_or(|f| range.until.is_none_or(|u| f < u)) {
        raw.push(TimeRange {
            since: from,
            until: range.until,
        });
    }
    raw
}

/// Whether every hour of `held` has a marker of every policy number (0 to `policies`), from the
/// marker rows a [`scan`] returned: the hours that lack one, which were read as empty.
pub fn missing(held: &[i64], markers: &[(usize, i64)], policies: usize) -> Vec<i64> {
    held.iter()
        .copied()
        .filter(|h| (0..=policies).any(|p| !markers.contains(&(p, *h))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::athena::Layout;

    /// Two policies with the same matcher (`posts` and another keyed per /24): the same rows.
    fn policies() -> Vec<Policy> {
        let mut p = super::super::tests::policies();
        p[1].matcher = p[0].matcher.clone();
        p
    }

    fn table() -> Table {
        Table {
            name: "waf_logs".into(),
            layout: Layout::Projection,
        }
    }

    #[test]
    fn fingerprints_name_the_matcher_not_the_policy() {
        let p = policies();
        let f = fingerprints(&p);
        assert_eq!(f.len(), 3);
        assert_eq!(f[1], f[2]);
        assert_ne!(f[0], f[1]);
        assert!(f.iter().all(|f| f.len() == 16));
    }

    #[test]
    fn closed_hours_are_whole_and_delivered() {
        // 2026-11-20T00:12:34.5Z .. 2026-11-21T00:00:00Z, now 2026-11-20T05:14:00Z.
        let range = TimeRange {
            since: Some(1_795_133_554_500),
            until: Some(1_795_219_200_000),
        };
        let first = 1_795_132_800_000 / HOUR_MS;
        // 01:00 .. 05:00 end at least 15 minutes before now; 04:00-05:00 ends 14 minutes before.
        assert_eq!(
            closed_hours(&range, 1_795_133_554_500 + 5 * HOUR_MS),
            first + 1..first + 4
        );
        assert_eq!(closed_hours(&TimeRange::default(), 0), 0..0);
        assert_eq!(closed_hours(&range, 0), first + 1..first + 1);
    }

    #[test]
    fn fill_deletes_then_inserts_then_marks_each_hour() {
        let p = policies();
        let statements = fill(&table(), "waf_rollup", 10..12, &p);
        assert_eq!(statements.len(), 3);
        assert_eq!(
            statements[0],
            "DELETE FROM waf_rollup\nWHERE hour >= 10 AND hour < 12"
        );
        assert_eq!(statements[1].matches("FROM waf_logs").count(), 1);
        // A client's values and minutes as sorted arrays, one table row per set of fingerprints.
        assert!(
            statements[1].contains(
                "array_agg(kind || value ORDER BY kind, value) FILTER (WHERE kind <> 'M')"
            )
        );
        assert!(
            statements[1].contains("array_agg(requests ORDER BY minute) FILTER (WHERE kind = 'M')")
        );
        assert!(statements[1].ends_with("GROUP BY hour, client, policies"));
        assert!(statements[1].contains("timestamp >= 36000000\n"));
        // The two matchers alike are filled once; one marker per hour lists both fingerprints.
        assert_eq!(statements[1].matches("THEN 2 END").count(), 0);
        assert_eq!(statements[2].matches("'#'").count(), 2);
        let f = fingerprints(&p);
        assert!(statements[2].contains(&format!("(ARRAY[{}]", fingerprint_list(&f))));
        let hours: Vec<i64> = (0..30).chain(40..41).collect();
        assert_eq!(chunks(&hours), [0..24, 24..30, 40..41]);
    }

    #[test]
    fn scan_reads_held_hours_from_the_rollup_and_the_rest_raw_once() {
        let p = policies();
        let range = TimeRange {
            since: Some(10 * HOUR_MS + 5),
            until: Some(20 * HOUR_MS),
        };
        let held = Held {
            range: vec![11, 12, 14],
            previous: Vec::new(),
        };
        let sql = scan(&table(), "waf_rollup", &range, None, &held, &p, None);
        assert_eq!(sql.matches("FROM waf_logs").count(), 1, "{sql}");
        assert_eq!(sql.matches("FROM waf_rollup").count(), 1);
        assert!(sql.contains("(hour >= 11 AND hour < 13) OR (hour >= 14 AND hour < 15)"));
        let words = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        for gap in [
            "timestamp >= 36000005 AND timestamp < 39600000) OR (",
            "timestamp >= 46800000 AND timestamp < 50400000) OR (",
            "timestamp >= 54000000 AND timestamp < 72000000) ) CROSS JOIN",
        ] {
            assert!(words.contains(gap), "{gap}: {sql}");
        }
        // Each element of a table row is one base row.
        assert!(words.contains(
            "CROSS JOIN UNNEST(concat(coalesce(item_counts, ARRAY[]), coalesce(counts, ARRAY[]))) \
             WITH ORDINALITY AS e(requests, i)"
        ));
        assert!(!sql.contains("sequence("));
        // Both policies get the rows of their shared fingerprint.
        assert!(sql.contains("THEN ARRAY[1, 2]"));
        // Every hour held: no raw read at all.
        let whole = TimeRange {
            since: Some(11 * HOUR_MS),
            until: Some(13 * HOUR_MS),
        };
        let held = Held {
            range: vec![11, 12],
            previous: Vec::new(),
        };
        let sql = scan(&table(), "waf_rollup", &whole, None, &held, &p, None);
        assert!(!sql.contains("waf_logs"), "{sql}");
        assert_eq!(
            missing(&[11, 12], &[(0, 11), (1, 11), (2, 11), (0, 12)], 2),
            [12]
        );
    }

    #[test]
    fn a_previous_period_reads_all_requests_of_its_held_hours_and_its_gaps_in_the_same_read() {
        let p = policies();
        // The period 10:00:00.005 .. 20:00, the previous one 0:00:00.005 .. 10:00:00.005.
        let range = TimeRange {
            since: Some(10 * HOUR_MS + 5),
            until: Some(20 * HOUR_MS),
        };
        let previous = TimeRange {
            since: Some(5),
            until: range.since,
        };
        let held = Held {
            range: vec![11, 12],
            previous: vec![1, 2, 3],
        };
        let sql = scan(
            &table(),
            "waf_rollup",
            &range,
            Some(&previous),
            &held,
            &p,
            None,
        );
        assert_eq!(sql.matches("waf_logs").count(), 1, "{sql}");
        assert_eq!(sql.matches("FROM waf_rollup").count(), 1);
        let words = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        // The held hours of both periods in one read of the rollup; those of the previous period
        // give all requests only, as its rows.
        assert!(words.contains("(hour >= 1 AND hour < 4) OR (hour >= 11 AND hour < 13)"));
        let all = sql::quote(&fingerprint(None));
        assert!(
            words.contains(&format!(
                "UNNEST(CASE WHEN (hour >= 1 AND hour < 4) THEN CASE fingerprint WHEN {all} \
                 THEN ARRAY[-1] END ELSE CASE fingerprint WHEN {all} THEN ARRAY[0]"
            )),
            "{sql}"
        );
        // The gaps of both: the previous period's edges, then (touching it) the period's first
        // hour, and its tail.
        for gap in [
            "timestamp >= 5 AND timestamp < 3600000) OR (",
            "timestamp >= 14400000 AND timestamp < 39600000) OR (",
            "timestamp >= 46800000 AND timestamp < 72000000) ) CROSS JOIN",
            "CASE WHEN timestamp >= 5 AND timestamp < 36000005 THEN ARRAY[-1]",
            "WHEN policy <= 0 THEN ARRAY['client', 'prefix']",
        ] {
            assert!(words.contains(gap), "{gap}: {sql}");
        }
        // Without a held hour of either, the raw read covers both periods as one range.
        let sql = scan(
            &table(),
            "waf_rollup",
            &range,
            Some(&previous),
            &Held::default(),
            &p,
            None,
        );
        let words = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            words.contains("AND timestamp >= 5 AND timestamp < 72000000 )"),
            "{sql}"
        );
    }
}
