//! Rows of the per-(client, minute) queries in [`super::sql`], turned into the local engine's types.
//!
//! Athena groups by the `clientIp` text; the local engine keys clients by parsed address, so two
//! spellings of one IPv6 address are one client. Rows are therefore merged here, after parsing, with
//! the same accumulator and finishing code the scan uses: peaks, prefixes and sort order come out
//! identical by construction.

use std::collections::BTreeMap;

use hashbrown::HashMap;
use ipnet::IpNet;

use super::sql::value_kind;
use crate::policy::KeyKind;
use crate::scan::stats::{
    ClientAcc, ClientKey, ClientStats, Counts, Interner, Kind, finish_clients,
};
use crate::scan::{ActionCounts, GeoSplit, Traffic, minute_of};

/// A query result as Athena returns it: column names and text values (NULL as `None`), header row
/// already removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultSet {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

/// A value that does not convert to the type the query's column has.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConvertError {
    #[error("the result has no column `{column}` (columns: {columns})")]
    NoColumn { column: String, columns: String },
    #[error("row {row}, column `{column}`: `{value}` is not {expected}")]
    Value {
        row: usize,
        column: String,
        value: String,
        expected: &'static str,
    },
}

impl ResultSet {
    fn index(&self, column: &str) -> Result<usize, ConvertError> {
        self.columns
            .iter()
            .position(|c| c == column)
            .ok_or_else(|| ConvertError::NoColumn {
                column: column.to_owned(),
                columns: self.columns.join(", "),
            })
    }

    fn int(&self, row: usize, column: usize) -> Result<i64, ConvertError> {
        let value = self.rows[row].get(column).cloned().flatten();
        value
            .as_deref()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ConvertError::Value {
                // 1-based, as a person counts the rows of a result.
                row: row + 1,
                column: self.columns[column].clone(),
                value: value.unwrap_or_else(|| "NULL".into()),
                expected: "an integer",
            })
    }

    /// The rows of a per-(client, minute) query, by column name.
    pub fn minute_rows(&self) -> Result<Vec<MinuteRow>, ConvertError> {
        let [
            client,
            minute,
            requests,
            allow,
            block,
            captcha,
            challenge,
            first,
            last,
        ] = [
            "client",
            "minute",
            "requests",
            "allow",
            "block",
            "captcha",
            "challenge",
            "first_ms",
            "last_ms",
        ]
        .map(|c| self.index(c));
        let (client, minute, requests) = (client?, minute?, requests?);
        let (allow, block, captcha, challenge) = (allow?, block?, captcha?, challenge?);
        let (first, last) = (first?, last?);
        let count = |row, column| self.int(row, column).map(|n| n.max(0) as u64);
        (0..self.rows.len())
            .map(|i| {
                Ok(MinuteRow {
                    // A NULL `clientIp` is a text like any other placeholder to the local engine.
                    client: self.rows[i]
                        .get(client)
                        .cloned()
                        .flatten()
                        .unwrap_or_default(),
                    minute: self.int(i, minute)?,
                    requests: count(i, requests)?,
                    actions: ActionCounts {
                        allow: count(i, allow)?,
                        block: count(i, block)?,
                        captcha: count(i, captcha)?,
                        challenge: count(i, challenge)?,
                        other: 0,
                    },
                    first_ms: self.int(i, first)?,
                    last_ms: self.int(i, last)?,
                })
            })
            .collect()
    }
}

impl ResultSet {
    /// The rows of [`super::sql::client_values`], by column name.
    pub fn value_rows(&self) -> Result<Vec<ValueRow>, ConvertError> {
        let [policy, client, kind, value, requests] =
            ["policy", "client", "kind", "value", "requests"].map(|c| self.index(c));
        let (policy, client, kind, value, requests) = (policy?, client?, kind?, value?, requests?);
        let text = |row: usize, column: usize| self.rows[row].get(column).cloned().flatten();
        (0..self.rows.len())
            .map(|i| {
                let tag = text(i, kind).unwrap_or_else(|| "NULL".into());
                let p = self.int(i, policy)?;
                Ok(ValueRow {
                    // 0 counts all requests; n the requests of the n-th policy.
                    policy: usize::try_from(p - 1).ok(),
                    client: text(i, client).unwrap_or_default(),
                    kind: value_kind(&tag).ok_or_else(|| ConvertError::Value {
                        row: i + 1,
                        column: self.columns[kind].clone(),
                        value: tag,
                        expected: "a value kind (one of R S U A C L K)",
                    })?,
                    // The query drops NULL values; an empty text is a value (an empty user agent).
                    value: text(i, value).unwrap_or_default(),
                    requests: self.int(i, requests)?.max(0) as u64,
                })
            })
            .collect()
    }
}

/// One row of [`super::sql::client_values`]: how many of a client's requests had that value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueRow {
    /// `None`: all requests; else the index of the policy whose matched requests these are.
    pub policy: Option<usize>,
    /// `httpRequest.clientIp` as logged.
    pub client: String,
    pub kind: Kind,
    pub value: String,
    pub requests: u64,
}

/// Whether the traffic-wide lists keep a kind, as [`crate::scan::stats::RecordIds::add_summary`].
fn in_summary(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Rule | Kind::Country | Kind::Label | Kind::CountRule
    )
}

/// One row of [`super::sql::client_minutes`] or [`super::sql::matched_minutes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinuteRow {
    /// `httpRequest.clientIp` as logged.
    pub client: String,
    /// Epoch minute.
    pub minute: i64,
    pub requests: u64,
    /// Requests by action; `other` is what the query's named actions leave of `requests`.
    pub actions: ActionCounts,
    pub first_ms: i64,
    pub last_ms: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RowError {
    #[error("row for client `{client}`: minute `{minute}` is outside the supported range")]
    Minute { client: String, minute: i64 },
    #[error(
        "row for client `{client}`: the counts by action add up to more than `requests` ({requests})"
    )]
    Actions { client: String, requests: u64 },
    #[error("value row for client `{client}`, which has no requests in the minute rows")]
    ValueClient { client: String },
    #[error(
        "row for client `{client}`: minute `{minute}` does not hold its first timestamp `{first_ms}`"
    )]
    FirstMs {
        client: String,
        minute: i64,
        first_ms: i64,
    },
}

impl MinuteRow {
    fn acc(&self) -> Result<ClientAcc, RowError> {
        let minute = u32::try_from(self.minute).map_err(|_| RowError::Minute {
            client: self.client.clone(),
            minute: self.minute,
        })?;
        // The query floors `timestamp` itself; a disagreement would mean rows of another shape.
        if minute_of(self.first_ms) != minute {
            return Err(RowError::FirstMs {
                client: self.client.clone(),
                minute: self.minute,
                first_ms: self.first_ms,
            });
        }
        let named = self.actions.total() - self.actions.other;
        let mut actions = self.actions;
        actions.other = self
            .requests
            .checked_sub(named)
            .ok_or_else(|| RowError::Actions {
                client: self.client.clone(),
                requests: self.requests,
            })?;
        Ok(ClientAcc {
            requests: self.requests,
            actions,
            first_ms: self.first_ms,
            last_ms: self.last_ms,
            minutes: vec![(minute, u32::try_from(self.requests).unwrap_or(u32::MAX))],
            ..ClientAcc::default()
        })
    }
}

/// The local engine's key for a logged `clientIp`: the parsed address, else the text itself.
fn client_key(client: &str) -> ClientKey {
    match client.trim().parse() {
        Ok(ip) => ClientKey::Addr(ip),
        Err(_) => ClientKey::Unparsed(client.into()),
    }
}

/// Per-client and per-prefix statistics from [`super::sql::client_minutes`] and
/// [`super::sql::client_values`] rows, sorted like the local engine's, with the number of requests
/// whose client is not an address. `names` receives the values, for [`Counts`] to refer to.
pub fn clients(
    rows: &[MinuteRow],
    values: &[ValueRow],
    names: &mut Interner,
) -> Result<(Vec<ClientStats>, Vec<ClientStats>, u64), RowError> {
    let mut by_key: HashMap<ClientKey, ClientAcc> = HashMap::new();
    let mut unparseable = 0;
    for row in rows {
        let acc = row.acc()?;
        let key = client_key(&row.client);
        if matches!(key, ClientKey::Unparsed(_)) {
            unparseable += acc.requests;
        }
        by_key.entry(key).or_default().merge(&acc, None);
    }
    for v in values.iter().filter(|v| v.policy.is_none()) {
        let acc = by_key
            .get_mut(&client_key(&v.client))
            .ok_or_else(|| RowError::ValueClient {
                client: v.client.clone(),
            })?;
        acc.counts.add(v.kind, names.intern(&v.value), v.requests);
    }
    let (mut clients, mut prefixes) = finish_clients(by_key, names);
    sort(&mut clients);
    sort(&mut prefixes);
    Ok((clients, prefixes, unparseable))
}

/// Per-key statistics of one policy's matched requests from [`super::sql::matched_minutes`] rows
/// and that policy's [`super::sql::client_values`] rows. Clients that are not addresses are skipped,
/// as the local engine skips them for policies.
pub fn policy_keys(
    rows: &[MinuteRow],
    values: &[&ValueRow],
    key: KeyKind,
    names: &mut Interner,
) -> Result<Vec<ClientStats>, RowError> {
    let mut by_key: HashMap<IpNet, ClientAcc> = HashMap::new();
    for row in rows {
        let acc = row.acc()?;
        if let Ok(ip) = row.client.trim().parse() {
            by_key.entry(key.key(ip)).or_default().merge(&acc, None);
        }
    }
    for v in values {
        if let Ok(ip) = v.client.trim().parse() {
            let acc = by_key
                .get_mut(&key.key(ip))
                .ok_or_else(|| RowError::ValueClient {
                    client: v.client.clone(),
                })?;
            acc.counts.add(v.kind, names.intern(&v.value), v.requests);
        }
    }
    let mut v: Vec<ClientStats> = by_key
        .into_iter()
        .map(|(k, acc)| acc.finish(ClientKey::Prefix(k), names))
        .collect();
    sort(&mut v);
    Ok(v)
}

/// The [`Traffic`] the local engine would report for the same range, from the rows of
/// [`super::sql::client_minutes`], [`super::sql::client_values`] and
/// [`super::sql::matched_minutes`] per policy (in [`crate::scan::ScanOptions::policies`] order).
///
/// Not filled, because Athena reads the files itself: file and malformed counts (unreadable lines
/// become NULL rows the queries drop) and `out_of_range` (no query reads outside the range).
pub fn traffic(
    client_rows: &[MinuteRow],
    value_rows: &[ValueRow],
    policy_rows: &[(KeyKind, Vec<MinuteRow>)],
    home_country: Option<String>,
) -> Result<Traffic, RowError> {
    let mut names = Interner::default();
    let (clients, prefixes, unparseable_client_ips) = clients(client_rows, value_rows, &mut names)?;
    let mut per_minute: BTreeMap<u32, ActionCounts> = BTreeMap::new();
    let mut actions = ActionCounts::default();
    for c in &clients {
        actions.merge(&c.actions);
    }
    for row in client_rows {
        let acc = row.acc()?;
        per_minute
            .entry(acc.minutes[0].0)
            .or_default()
            .merge(&acc.actions);
    }
    let mut totals = Counts::default();
    let mut geo = GeoSplit::default();
    for v in value_rows
        .iter()
        .filter(|v| v.policy.is_none() && in_summary(v.kind))
    {
        totals.add(v.kind, names.intern(&v.value), v.requests);
        if v.kind == Kind::Country {
            // The local engine's split, request by request, summed per country instead.
            match &home_country {
                _ if v.value == "-" || v.value.is_empty() => geo.unknown += v.requests,
                Some(home) if home.eq_ignore_ascii_case(&v.value) => geo.domestic += v.requests,
                _ => geo.overseas += v.requests,
            }
        }
    }
    let policy_keys = policy_rows
        .iter()
        .enumerate()
        .map(|(i, (key, rows))| {
            let values: Vec<&ValueRow> =
                value_rows.iter().filter(|v| v.policy == Some(i)).collect();
            policy_keys(rows, &values, *key, &mut names)
        })
        .collect::<Result<_, _>>()?;
    Ok(Traffic {
        records: actions.total(),
        first_ms: clients.iter().map(|c| c.first_ms).min(),
        last_ms: clients.iter().map(|c| c.last_ms).max(),
        actions,
        per_minute,
        home_country,
        geo,
        countries: totals.sorted(Kind::Country, &names),
        rules: totals.sorted(Kind::Rule, &names),
        labels: totals.sorted(Kind::Label, &names),
        count_rules: totals.sorted(Kind::CountRule, &names),
        unparseable_client_ips,
        clients,
        prefixes,
        policy_keys,
        ..Traffic::default()
    })
}

/// The local engine's order: requests descending, then key.
fn sort(v: &mut [ClientStats]) {
    v.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.key.cmp(&b.key)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(client: &str, minute: i64, requests: u64, allow: u64) -> MinuteRow {
        MinuteRow {
            client: client.into(),
            minute,
            requests,
            actions: ActionCounts {
                allow,
                ..ActionCounts::default()
            },
            first_ms: minute * 60_000,
            last_ms: minute * 60_000 + 59_000,
        }
    }

    #[test]
    fn merges_spellings_and_derives_peaks_and_prefixes() {
        let rows = [
            row("2001:db8::1", 10, 3, 3),
            row("2001:0db8:0000:0000:0000:0000:0000:0001", 11, 4, 1),
            row("192.0.2.1", 10, 5, 5),
            row("X.X.X.X", 10, 2, 2),
        ];
        let (clients, prefixes, unparseable) =
            clients(&rows, &[], &mut Interner::default()).unwrap();
        assert_eq!(unparseable, 2);
        assert_eq!(clients[0].key.to_string(), "2001:db8::1");
        assert_eq!(clients[0].requests, 7);
        assert_eq!(clients[0].actions.other, 3);
        assert_eq!(clients[0].peak(2).requests, 7);
        assert_eq!(clients[0].first_ms, 600_000);
        assert_eq!(clients[0].last_ms, 719_000);
        assert_eq!(prefixes.len(), 2);
        let keys = policy_keys(&rows, &[], KeyKind::Prefix, &mut Interner::default()).unwrap();
        assert_eq!(keys[0].key.to_string(), "2001:db8::/64");
    }

    #[test]
    fn result_sets_convert_by_column_name_and_errors_name_row_and_column() {
        let columns = "client minute requests allow block captcha challenge first_ms last_ms";
        let mut set = ResultSet {
            columns: columns.split(' ').map(String::from).collect(),
            rows: vec![
                [
                    "192.0.2.1",
                    "10",
                    "2",
                    "1",
                    "1",
                    "0",
                    "0",
                    "600000",
                    "600500",
                ]
                .map(|v| Some(v.to_owned()))
                .to_vec(),
            ],
        };
        assert_eq!(set.minute_rows().unwrap()[0].actions.block, 1);
        set.rows[0][2] = Some("two".into());
        assert_eq!(
            set.minute_rows().unwrap_err().to_string(),
            "row 1, column `requests`: `two` is not an integer"
        );
        set.columns[1] = "m".into();
        assert!(matches!(
            set.minute_rows(),
            Err(ConvertError::NoColumn { column, .. }) if column == "minute"
        ));
    }

    #[test]
    fn value_rows_feed_clients_and_keys_and_unknown_kinds_are_named() {
        let columns = "policy client kind value requests";
        let text = |r: [&str; 5]| r.map(|v| Some(v.to_owned())).to_vec();
        let mut set = ResultSet {
            columns: columns.split(' ').map(String::from).collect(),
            rows: vec![
                text(["0", "2001:db8::1", "U", "/a", "3"]),
                text(["0", "2001:0db8::1", "U", "/b", "4"]),
                text(["1", "2001:db8::1", "L", "bot", "2"]),
            ],
        };
        let values = set.value_rows().unwrap();
        let t = traffic(
            &[row("2001:db8::1", 10, 3, 3), row("2001:0db8::1", 11, 4, 4)],
            &values,
            &[(KeyKind::Prefix, vec![row("2001:db8::1", 10, 2, 2)])],
            None,
        )
        .unwrap();
        // The two spellings are one client: both paths, the more requested first.
        assert_eq!(t.clients[0].distinct_uris, 2);
        assert_eq!(t.clients[0].uris[0].value, "/b");
        assert_eq!(t.policy_keys[0][0].labels[0].value, "bot");
        assert_eq!(t.geo, GeoSplit::default());
        set.rows[0][2] = Some("X".into());
        assert_eq!(
            set.value_rows().unwrap_err().to_string(),
            "row 1, column `kind`: `X` is not a value kind (one of R S U A C L K)"
        );
        set.rows[0][2] = Some("U".into());
        set.rows[0][1] = Some("192.0.2.9".into());
        let values = set.value_rows().unwrap();
        assert_eq!(
            traffic(&[row("2001:db8::1", 10, 3, 3)], &values, &[], None)
                .unwrap_err()
                .to_string(),
            "value row for client `192.0.2.9`, which has no requests in the minute rows"
        );
    }

    #[test]
    fn inconsistent_rows_name_the_client() {
        let mut bad = row("192.0.2.1", 10, 1, 2);
        assert_eq!(
            clients(std::slice::from_ref(&bad), &[], &mut Interner::default())
                .unwrap_err()
                .to_string(),
            "row for client `192.0.2.1`: the counts by action add up to more than `requests` (1)"
        );
        bad = row("192.0.2.1", 10, 1, 1);
        bad.first_ms = 0;
        assert!(matches!(
            clients(&[bad], &[], &mut Interner::default()),
            Err(RowError::FirstMs { .. })
        ));
    }
}
