//! Rows of the per-(client, minute) queries in [`super::sql`], turned into the local engine's types.
//!
//! Athena groups by the `clientIp` text; the local engine keys clients by parsed address, so two
//! spellings of one IPv6 address are one client. Rows are therefore merged here, after parsing, with
//! the same accumulator and finishing code the scan uses: peaks, prefixes and sort order come out
//! identical by construction.

use std::collections::BTreeMap;

use hashbrown::HashMap;
use ipnet::IpNet;

use crate::policy::KeyKind;
use crate::scan::stats::{ClientAcc, ClientKey, ClientStats, Interner, finish_clients};
use crate::scan::{ActionCounts, Traffic, minute_of};

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

/// Per-client and per-prefix statistics from [`super::sql::client_minutes`] rows, sorted like the
/// local engine's. Only the fields those rows carry are filled: top lists (rules, paths, user agents,
/// countries, labels, response codes) and distinct counts stay empty.
pub fn clients(rows: &[MinuteRow]) -> Result<(Vec<ClientStats>, Vec<ClientStats>, u64), RowError> {
    let mut by_key: HashMap<ClientKey, ClientAcc> = HashMap::new();
    let mut unparseable = 0;
    for row in rows {
        let acc = row.acc()?;
        let key = match row.client.trim().parse() {
            Ok(ip) => ClientKey::Addr(ip),
            Err(_) => {
                unparseable += acc.requests;
                ClientKey::Unparsed(row.client.as_str().into())
            }
        };
        by_key.entry(key).or_default().merge(&acc, None);
    }
    let (mut clients, mut prefixes) = finish_clients(by_key, &Interner::default());
    sort(&mut clients);
    sort(&mut prefixes);
    Ok((clients, prefixes, unparseable))
}

/// Per-key statistics of one policy's matched requests from [`super::sql::matched_minutes`] rows.
/// Clients that are not addresses are skipped, as the local engine skips them for policies.
pub fn policy_keys(rows: &[MinuteRow], key: KeyKind) -> Result<Vec<ClientStats>, RowError> {
    let mut by_key: HashMap<IpNet, ClientAcc> = HashMap::new();
    for row in rows {
        let acc = row.acc()?;
        if let Ok(ip) = row.client.trim().parse() {
            by_key.entry(key.key(ip)).or_default().merge(&acc, None);
        }
    }
    let names = Interner::default();
    let mut v: Vec<ClientStats> = by_key
        .into_iter()
        .map(|(k, acc)| acc.finish(ClientKey::Prefix(k), &names))
        .collect();
    sort(&mut v);
    Ok(v)
}

/// The [`Traffic`] the local engine would report for the same range, from the rows of
/// [`super::sql::client_minutes`] and of [`super::sql::matched_minutes`] per policy (in
/// [`crate::scan::ScanOptions::policies`] order).
///
/// Filled: records, actions, first/last timestamp, requests per minute by action, clients and
/// prefixes (requests, actions, first/last, per-minute counts and window peaks), policy keys. Not
/// filled, because no query computes them yet: file and malformed counts (Athena reads the files;
/// unreadable lines become NULL rows), `out_of_range`, the geo split and the global and per-client
/// top lists (countries, rules, labels, COUNT rules, paths, user agents) with their distinct counts.
pub fn traffic(
    client_rows: &[MinuteRow],
    policy_rows: &[(KeyKind, Vec<MinuteRow>)],
) -> Result<Traffic, RowError> {
    let (clients, prefixes, unparseable_client_ips) = clients(client_rows)?;
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
    let policy_keys = policy_rows
        .iter()
        .map(|(key, rows)| policy_keys(rows, *key))
        .collect::<Result<_, _>>()?;
    Ok(Traffic {
        records: actions.total(),
        first_ms: clients.iter().map(|c| c.first_ms).min(),
        last_ms: clients.iter().map(|c| c.last_ms).max(),
        actions,
        per_minute,
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
        let (clients, prefixes, unparseable) = clients(&rows).unwrap();
        assert_eq!(unparseable, 2);
        assert_eq!(clients[0].key.to_string(), "2001:db8::1");
        assert_eq!(clients[0].requests, 7);
        assert_eq!(clients[0].actions.other, 3);
        assert_eq!(clients[0].peak(2).requests, 7);
        assert_eq!(clients[0].first_ms, 600_000);
        assert_eq!(clients[0].last_ms, 719_000);
        assert_eq!(prefixes.len(), 2);
        let keys = policy_keys(&rows, KeyKind::Prefix).unwrap();
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
    fn inconsistent_rows_name_the_client() {
        let mut bad = row("192.0.2.1", 10, 1, 2);
        assert_eq!(
            clients(std::slice::from_ref(&bad)).unwrap_err().to_string(),
            "row for client `192.0.2.1`: the counts by action add up to more than `requests` (1)"
        );
        bad = row("192.0.2.1", 10, 1, 1);
        bad.first_ms = 0;
        assert!(matches!(clients(&[bad]), Err(RowError::FirstMs { .. })));
    }
}
