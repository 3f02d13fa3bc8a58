//! Rows of the per-(client, minute) queries in [`super::sql`], turned into the local engine's types.
//!
//! Athena groups by the `clientIp` text; the local engine keys clients by parsed address, so two
//! spellings of one IPv6 address are one client. Rows are therefore merged here, after parsing, with
//! the same accumulator and finishing code the scan uses: peaks, prefixes and sort order come out
//! identical by construction. The top lists Athena already cut (dotted-quad clients, which have one
//! spelling) replace the finished ones, with the distinct counts Athena saw before the cut.

use std::collections::BTreeMap;
use std::net::IpAddr;

use hashbrown::HashMap;
use ipnet::IpNet;

use super::sql::{kept, value_kind};
use crate::policy::{KeyKind, Policy};
use crate::scan::minutes::Minutes;
use crate::scan::stats::{
    ClientAcc, ClientKey, ClientStats, Counts, Interner, Kind, finish_clients,
};
use crate::scan::{ActionCounts, GeoSplit, MinuteDetail, ScanOptions, Traffic, minute_of};

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

/// The columns of the one statement's result ([`super::sql::reshape`]).
pub const SCAN_COLUMNS: [&str; 17] = [
    "policy",
    "scope",
    "client",
    "kind",
    "value",
    "minute",
    "requests",
    "allow",
    "block",
    "captcha",
    "challenge",
    "first_ms",
    "last_ms",
    "distinct_values",
    "counted",
    "domestic",
    "no_country",
];

/// The rows of one statement, by shape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanRows {
    /// Every request per client and minute.
    pub clients: Vec<MinuteRow>,
    /// Per policy (in [`crate::scan::ScanOptions::policies`] order), its matched requests per client
    /// and minute.
    pub policies: Vec<Vec<MinuteRow>>,
    pub values: Vec<ValueRow>,
    /// The rollup's markers that came through: (policy number, epoch hour) held.
    pub markers: Vec<(usize, i64)>,
    /// The rows of the previous period of `report --compare` ([`super::sql::PREVIOUS`]), as those
    /// of policy 0 (all requests) of a run without policies.
    pub previous: Option<Box<ScanRows>>,
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

    fn text(&self, row: usize, column: usize) -> Option<String> {
        self.rows[row].get(column).cloned().flatten()
    }

    fn bad(
        &self,
        row: usize,
        column: usize,
        value: String,
        expected: &'static str,
    ) -> ConvertError {
        ConvertError::Value {
            // 1-based, as a person counts the rows of a result.
            row: row + 1,
            column: self.columns[column].clone(),
            value,
            expected,
        }
    }

    fn int(&self, row: usize, column: usize) -> Result<i64, ConvertError> {
        let value = self.text(row, column);
        value
            .as_deref()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                self.bad(
                    row,
                    column,
                    value.unwrap_or_else(|| "NULL".into()),
                    "an integer",
                )
            })
    }

    fn opt_int(&self, row: usize, column: usize) -> Result<Option<i64>, ConvertError> {
        match self.text(row, column) {
            None => Ok(None),
            Some(_) => self.int(row, column).map(Some),
        }
    }

    fn count(&self, row: usize, column: usize) -> Result<u64, ConvertError> {
        self.int(row, column).map(|n| n.max(0) as u64)
    }

    /// The rows of the one statement of a run with `policies` policies, by column name: minute
    /// rows (kind [`super::sql::MINUTE_TAG`]) of all requests and of each policy, value rows, and
    /// the rollup's markers (kind [`super::rollup::MARKER_TAG`], `minute` the hour); those of the
    /// previous period in [`ScanRows::previous`].
    pub fn scan_rows(&self, policies: usize) -> Result<ScanRows, ConvertError> {
        let mut out = ScanRows {
            policies: vec![Vec::new(); policies],
            ..ScanRows::default()
        };
        // No rows, no columns to check (moto sends no header for an empty result).
        if self.rows.is_empty() {
            return Ok(out);
        }
        let columns = SCAN_COLUMNS
            .iter()
            .map(|c| self.index(c))
            .collect::<Result<Vec<_>, _>>()?;
        let [
            policy,
            scope,
            client,
            kind,
            value,
            minute,
            requests,
            allow,
            block,
            captcha,
            challenge,
            first,
            last,
            distinct,
            counted,
            domestic,
            no_country,
        ] = columns[..]
        else {
            unreachable!("one index per column")
        };
        for i in 0..self.rows.len() {
            let p = self.int(i, policy)?;
            let (out, p) = match p {
                super::sql::PREVIOUS => (&mut **out.previous.get_or_insert_default(), 0),
                _ => (&mut out, p),
            };
            let p = usize::try_from(p)
                .ok()
                .filter(|p| *p <= out.policies.len())
                .ok_or_else(|| self.bad(i, policy, p.to_string(), "a policy number of this run"))?;
            let tag = self.text(i, kind).unwrap_or_else(|| "NULL".into());
            if tag.len() == 1 && tag.starts_with(super::rollup::MARKER_TAG) {
                out.markers.push((p, self.int(i, minute)?));
                continue;
            }
            if tag.len() == 1 && tag.starts_with(super::sql::MINUTE_TAG) {
                let row = MinuteRow {
                    // A NULL `clientIp` is a text like any other placeholder to the local engine.
                    client: self.text(i, client).unwrap_or_default(),
                    minute: self.int(i, minute)?,
                    requests: self.count(i, requests)?,
                    actions: ActionCounts {
                        allow: self.count(i, allow)?,
                        block: self.count(i, block)?,
                        captcha: self.count(i, captcha)?,
                        challenge: self.count(i, challenge)?,
                        other: 0,
                    },
                    first_ms: self.opt_int(i, first)?,
                    last_ms: self.opt_int(i, last)?,
                    detail: match (
                        self.opt_int(i, counted)?,
                        self.opt_int(i, domestic)?,
                        self.opt_int(i, no_country)?,
                    ) {
                        (Some(counted), Some(domestic), Some(no_country)) => Some(RowDetail {
                            counted: counted.max(0) as u64,
                            domestic: domestic.max(0) as u64,
                            no_country: no_country.max(0) as u64,
                        }),
                        _ => None,
                    },
                };
                match p.checked_sub(1) {
                    None => out.clients.push(row),
                    Some(p) => out.policies[p].push(row),
                }
                continue;
            }
            out.values.push(ValueRow {
                // 0 counts all requests; n the requests of the n-th policy.
                policy: p.checked_sub(1),
                scope: match self.text(i, scope).as_deref() {
                    Some("client") => Scope::Client,
                    Some("prefix") => Scope::Prefix,
                    other => {
                        let value = other.unwrap_or("NULL").to_owned();
                        return Err(self.bad(i, scope, value, "`client` or `prefix`"));
                    }
                },
                client: self.text(i, client).unwrap_or_default(),
                kind: value_kind(&tag).ok_or_else(|| {
                    self.bad(i, kind, tag, "a value kind (one of M R S U A C L K)")
                })?,
                // The query drops NULL values; an empty text is a value (an empty user agent).
                value: self.text(i, value).unwrap_or_default(),
                requests: self.count(i, requests)?,
                distinct: match self.text(i, distinct) {
                    None => None,
                    Some(_) => Some(self.count(i, distinct)?),
                },
            });
        }
        Ok(out)
    }
}

impl ScanRows {
    /// The [`Traffic`] of these rows, for a run of `options` (see [`traffic`]).
    pub fn traffic(self, options: &ScanOptions) -> Result<Traffic, RowError> {
        let policy_rows: Vec<_> = options
            .policies
            .iter()
            .zip(self.policies)
            .map(|(p, rows)| PolicyRows::new(p, rows))
            .collect();
        let mut t = traffic(
            &self.clients,
            &self.values,
            &policy_rows,
            options.home_country.clone(),
        )?;
        // The keys with enough requests that still cannot fire, left out as the local engine does.
        for (keys, policy) in t.policy_keys.iter_mut().zip(&options.policies) {
            keys.retain(|k| crate::scan::may_fire_for(policy, k));
        }
        Ok(t)
    }
}

impl ResultSet {
    /// The hours [`super::rollup::coverage`] found with a marker of each of `fingerprints`.
    pub fn coverage_rows(&self, fingerprints: usize) -> Result<Vec<i64>, ConvertError> {
        if self.rows.is_empty() {
            return Ok(Vec::new());
        }
        let (hour, policies) = (self.index("hour")?, self.index("policies")?);
        let mut held = Vec::new();
        for i in 0..self.rows.len() {
            if self.count(i, policies)? == fingerprints as u64 {
                held.push(self.int(i, hour)?);
            }
        }
        Ok(held)
    }
}

/// What a [`ValueRow`] counts for: a client, or (dotted-quad clients only) their /24.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Client,
    Prefix,
}

/// A value row of [`super::sql::reshape`]: how many of a client's requests had that value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueRow {
    /// `None`: all requests; else the index of the policy whose matched requests these are.
    pub policy: Option<usize>,
    pub scope: Scope,
    /// `httpRequest.clientIp` as logged, or for [`Scope::Prefix`] its /24 (`192.0.2.0/24`).
    pub client: String,
    pub kind: Kind,
    pub value: String,
    pub requests: u64,
    /// Set when Athena cut this kind's values of this client or prefix to a top list
    /// ([`super::sql::kept`]): how many distinct values there were before the cut.
    pub distinct: Option<u64>,
}

/// The top lists Athena cut for one client, prefix or key, and their distinct counts.
#[derive(Debug, Default)]
struct Cut {
    counts: Counts,
    distinct: Vec<(Kind, u64)>,
}

impl Cut {
    fn add(&mut self, v: &ValueRow, distinct: u64, names: &mut Interner) {
        self.counts.add(v.kind, names.intern(&v.value), v.requests);
        if !self.distinct.iter().any(|(k, _)| *k == v.kind) {
            self.distinct.push((v.kind, distinct));
        }
    }

    /// Replaces the lists `stats` got from complete counts by the cut ones.
    fn apply(&self, stats: &mut ClientStats, names: &Interner) {
        for &(kind, distinct) in &self.distinct {
            let n = kept(kind).unwrap_or(usize::MAX);
            let top = self.counts.top(kind, names, n);
            match kind {
                Kind::Uri => (stats.uris, stats.distinct_uris) = (top.into(), distinct),
                Kind::UserAgent => {
                    (stats.user_agents, stats.distinct_user_agents) = (top.into(), distinct)
                }
                Kind::Ja3 => stats.ja3 = self.counts.ja3(names).filter(|_| distinct == 1),
                _ => {}
            }
        }
    }
}

/// The cut lists of a set of clients or keys (`cut` finds them by key), applied to their
/// finished statistics.
fn apply_cuts<'c>(
    stats: &mut [ClientStats],
    names: &Interner,
    cut: impl Fn(&ClientKey) -> Option<&'c Cut>,
) {
    for s in stats {
        if let Some(cut) = cut(&s.key) {
            cut.apply(s, names);
        }
    }
}

/// A minute row of [`super::sql::reshape`] (kind [`super::sql::MINUTE_TAG`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinuteRow {
    /// `httpRequest.clientIp` as logged.
    pub client: String,
    /// Epoch minute.
    pub minute: i64,
    pub requests: u64,
    /// Requests by action; `other` is what the query's named actions leave of `requests`.
    pub actions: ActionCounts,
    /// The first and last timestamp of the minute, `None` where another minute of the client holds
    /// an earlier (later) one: the rollup keeps only those of each client and hour.
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
    /// The [`super::sql::DETAIL_COLUMNS`] of a row of all requests; `None` where the statement
    /// has none (rows of policies, and of hours read from the rollup).
    pub detail: Option<RowDetail>,
}

/// The per-minute detail of one client's minute row (see [`super::sql::DETAIL_COLUMNS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowDetail {
    pub counted: u64,
    pub domestic: u64,
    pub no_country: u64,
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
        "row for client `{client}`: the COUNT-mode or domestic and unknown-country counts exceed \
         `requests` ({requests})"
    )]
    Detail { client: String, requests: u64 },
    #[error("value row for client `{client}`, which has no requests in the minute rows")]
    ValueClient { client: String },
    #[error(
        "client `{client}` is an IPv4 address not written as a plain dotted quad: Athena cuts the \
         top lists of dotted-quad clients and cannot merge other spellings exactly (use the local \
         engine for these logs)"
    )]
    Spelling { client: String },
    #[error(
        "row for client `{client}`: minute `{minute}` does not hold its first or last timestamp `{ms}`"
    )]
    Timestamp {
        client: String,
        minute: i64,
        ms: i64,
    },
}

impl MinuteRow {
    /// The row's [`MinuteDetail`], if it has one; overseas are the requests with a country that is
    /// not the home country.
    fn minute_detail(&self) -> Result<Option<MinuteDetail>, RowError> {
        let Some(d) = self.detail else {
            return Ok(None);
        };
        let overseas = self
            .requests
            .checked_sub(d.domestic + d.no_country)
            .filter(|_| d.counted <= self.requests)
            .ok_or_else(|| RowError::Detail {
                client: self.client.clone(),
                requests: self.requests,
            })?;
        Ok(Some(MinuteDetail {
            counted: d.counted,
            geo: GeoSplit {
                domestic: d.domestic,
                overseas,
                unknown: d.no_country,
            },
        }))
    }

    fn acc(&self) -> Result<ClientAcc, RowError> {
        let minute = u32::try_from(self.minute).map_err(|_| RowError::Minute {
            client: self.client.clone(),
            minute: self.minute,
        })?;
        // The query floors `timestamp` itself; a disagreement would mean rows of another shape.
        if let Some(ms) = self
            .first_ms
            .into_iter()
            .chain(self.last_ms)
            .find(|ms| minute_of(*ms) != minute)
        {
            return Err(RowError::Timestamp {
                client: self.client.clone(),
                minute: self.minute,
                ms,
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
            tally: actions.into(),
            // A minute without them never lowers (raises) its client's first (last) timestamp.
            first_ms: self.first_ms.unwrap_or(i64::MAX),
            last_ms: self.last_ms.unwrap_or(i64::MIN),
            minutes: Minutes::from_buckets(&[(
                minute,
                u32::try_from(self.requests).unwrap_or(u32::MAX),
            )]),
            ..ClientAcc::default()
        })
    }
}

/// The local engine's key for a logged `clientIp`: the parsed address, else the text itself.
/// An IPv4 address must be written as the local engine prints it: [`super::sql::reshape`]
/// cuts such clients' lists, and a second spelling of the address would merge into a cut list.
fn client_key(client: &str) -> Result<ClientKey, RowError> {
    match client.trim().parse() {
        // An IPv4-mapped IPv6 address (`::ffff:192.0.2.10`) is another spelling of an IPv4 one.
        Ok(ip @ IpAddr::V4(_)) if ip.to_string() != client => Err(RowError::Spelling {
            client: client.to_owned(),
        }),
        Ok(ip @ IpAddr::V6(_)) if ip.to_canonical().is_ipv4() => Err(RowError::Spelling {
            client: client.to_owned(),
        }),
        Ok(ip) => Ok(ClientKey::Addr(ip)),
        Err(_) => Ok(ClientKey::Unparsed(client.into())),
    }
}

/// The network of a [`Scope::Prefix`] row, or the `key` of a client row's address (`None` for a
/// client that is not an address, which no policy counts).
fn key_of(v: &ValueRow, key: impl Fn(IpAddr) -> IpNet) -> Result<Option<IpNet>, RowError> {
    let bad = || RowError::ValueClient {
        client: v.client.clone(),
    };
    match v.scope {
        Scope::Prefix => v.client.parse().map(Some).map_err(|_| bad()),
        Scope::Client => Ok(match client_key(&v.client)? {
            ClientKey::Addr(ip) => Some(key(ip)),
            _ => None,
        }),
    }
}

/// Counts a value row: a cut one into `cuts` under `cut_key`, a complete one into the accumulator
/// of `key`, which the minute rows must have created.
fn add_value<K: std::hash::Hash + Eq>(
    v: &ValueRow,
    key: K,
    cut_key: ClientKey,
    by_key: &mut HashMap<K, ClientAcc>,
    cuts: &mut HashMap<ClientKey, Cut>,
    names: &mut Interner,
) -> Result<(), RowError> {
    match v.distinct {
        Some(distinct) => cuts.entry(cut_key).or_default().add(v, distinct, names),
        None => by_key
            .get_mut(&key)
            .ok_or_else(|| RowError::ValueClient {
                client: v.client.clone(),
            })?
            .counts
            .add(v.kind, names.intern(&v.value), v.requests),
    }
    Ok(())
}

/// Per-client and per-prefix statistics from the minute rows of all requests and the value
/// rows, sorted like the local engine's, with the number of requests
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
        let key = client_key(&row.client)?;
        if matches!(key, ClientKey::Unparsed(_)) {
            unparseable += acc.requests();
        }
        by_key.entry(key).or_default().merge(&acc);
    }
    let mut cuts: HashMap<ClientKey, Cut> = HashMap::new();
    for v in values.iter().filter(|v| v.policy.is_none()) {
        let key = match v.scope {
            Scope::Client => client_key(&v.client)?,
            Scope::Prefix => ClientKey::Prefix(key_of(v, IpNet::from)?.expect("a prefix")),
        };
        add_value(v, key.clone(), key, &mut by_key, &mut cuts, names)?;
    }
    // A /24 with a single client has that client's lists; Athena sends them once.
    let mut members: HashMap<ClientKey, Option<ClientKey>> = HashMap::new();
    for key in by_key.keys() {
        if let Some(prefix) = key.prefix() {
            members
                .entry(prefix)
                .and_modify(|only| *only = None)
                .or_insert_with(|| Some(key.clone()));
        }
    }
    let (mut clients, mut prefixes) = finish_clients(by_key, names);
    apply_cuts(&mut clients, names, |k| cuts.get(k));
    apply_cuts(&mut prefixes, names, |k| {
        cuts.get(k).or_else(|| cuts.get(members.get(k)?.as_ref()?))
    });
    sort(&mut clients);
    sort(&mut prefixes);
    Ok((clients, prefixes, unparseable))
}

/// One policy's minute rows, with what [`policy_keys`] needs of it.
#[derive(Debug, Clone)]
pub struct PolicyRows {
    pub key: KeyKind,
    /// Keys with fewer matched requests cannot fire; Athena leaves most of them out.
    pub min_requests: u64,
    pub rows: Vec<MinuteRow>,
}

impl PolicyRows {
    pub fn new(policy: &Policy, rows: Vec<MinuteRow>) -> PolicyRows {
        PolicyRows {
            key: policy.key,
            min_requests: policy.thresholds.min_requests(),
            rows,
        }
    }
}

/// Per-key statistics of one policy's matched requests from its minute rows
/// and its value rows: the keys with at least `min_requests`
/// matched requests (the ones the policy can fire for). Clients that are not addresses are
/// skipped, as the local engine skips them for policies.
pub fn policy_keys(
    policy: &PolicyRows,
    values: &[&ValueRow],
    names: &mut Interner,
) -> Result<Vec<ClientStats>, RowError> {
    let mut by_key: HashMap<IpNet, ClientAcc> = HashMap::new();
    for row in &policy.rows {
        let acc = row.acc()?;
        if let ClientKey::Addr(ip) = client_key(&row.client)? {
            by_key.entry(policy.key.key(ip)).or_default().merge(&acc);
        }
    }
    let mut cuts: HashMap<ClientKey, Cut> = HashMap::new();
    for v in values {
        let Some(key) = key_of(v, |ip| policy.key.key(ip))? else {
            continue;
        };
        add_value(
            v,
            key,
            ClientKey::Prefix(key),
            &mut by_key,
            &mut cuts,
            names,
        )?;
    }
    let mut v: Vec<ClientStats> = by_key
        .into_iter()
        .filter(|(_, acc)| acc.requests() >= policy.min_requests)
        .map(|(k, acc)| acc.finish(ClientKey::Prefix(k), names))
        .collect();
    apply_cuts(&mut v, names, |k| cuts.get(k));
    sort(&mut v);
    Ok(v)
}

/// The [`Traffic`] the local engine would report for the same range, from the rows of
/// [`ScanRows`]: the minute rows of all requests, the value rows and the minute rows
/// per policy (in [`crate::scan::ScanOptions::policies`] order).
/// A policy's keys are those that can fire (see [`policy_keys`]), as the local engine lists them.
///
/// Not filled, because Athena reads the files itself: file and malformed counts (unreadable lines
/// become NULL rows the queries drop) and `out_of_range` (no query reads outside the range).
pub fn traffic(
    client_rows: &[MinuteRow],
    value_rows: &[ValueRow],
    policy_rows: &[PolicyRows],
    home_country: Option<String>,
) -> Result<Traffic, RowError> {
    let mut names = Interner::default();
    let (clients, prefixes, unparseable_client_ips) = clients(client_rows, value_rows, &mut names)?;
    let mut per_minute: BTreeMap<u32, ActionCounts> = BTreeMap::new();
    // Complete only if every row has its detail (none from the rollup).
    let mut per_minute_detail: Option<BTreeMap<u32, MinuteDetail>> = Some(BTreeMap::new());
    let mut actions = ActionCounts::default();
    for c in &clients {
        actions.merge(&c.actions);
    }
    for row in client_rows {
        let acc = row.acc()?;
        let minute = acc.minutes.buckets()[0].0;
        per_minute
            .entry(minute)
            .or_default()
            .merge(&acc.tally.actions());
        match (row.minute_detail()?, &mut per_minute_detail) {
            (Some(d), Some(detail)) => {
                let e = detail.entry(minute).or_default();
                e.counted += d.counted;
                e.geo.merge(&d.geo);
            }
            _ => per_minute_detail = None,
        }
    }
    let mut totals = Counts::default();
    let mut geo = GeoSplit::default();
    for v in value_rows.iter().filter(|v| {
        v.policy.is_none() && v.scope == Scope::Client && Kind::SUMMARY.contains(&v.kind)
    }) {
        totals.add(v.kind, names.intern(&v.value), v.requests);
        if v.kind == Kind::Country {
            // The local engine's split, request by request, summed per country instead.
            geo.add(&v.value, home_country.as_deref(), v.requests);
        }
    }
    let policy_keys = policy_rows
        .iter()
        .enumerate()
        .map(|(i, policy)| {
            let values: Vec<&ValueRow> =
                value_rows.iter().filter(|v| v.policy == Some(i)).collect();
            policy_keys(policy, &values, &mut names)
        })
        .collect::<Result<_, _>>()?;
    Ok(Traffic {
        records: actions.total(),
        first_ms: clients.iter().map(|c| c.first_ms).min(),
        last_ms: clients.iter().map(|c| c.last_ms).max(),
        actions,
        per_minute,
        per_minute_detail,
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
            first_ms: Some(minute * 60_000),
            last_ms: Some(minute * 60_000 + 59_000),
            detail: None,
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
        assert_eq!({ clients[0].peak(2).requests }, 7);
        assert_eq!(clients[0].first_ms, 600_000);
        assert_eq!(clients[0].last_ms, 719_000);
        assert_eq!(prefixes.len(), 2);
        let prefix_rows = PolicyRows {
            key: KeyKind::Prefix,
            min_requests: 0,
            rows: rows.to_vec(),
        };
        let keys = policy_keys(&prefix_rows, &[], &mut Interner::default()).unwrap();
        assert_eq!(keys[0].key.to_string(), "2001:db8::/64");
    }

    #[test]
    fn minutes_without_timestamps_leave_first_and_last_to_the_others() {
        // As the rollup returns a client's hour: only its first and last minute carry them.
        let mut rows = [
            row("192.0.2.1", 10, 1, 1),
            row("192.0.2.1", 11, 1, 1),
            row("192.0.2.1", 12, 1, 1),
        ];
        rows[0].last_ms = None;
        rows[1].first_ms = None;
        rows[1].last_ms = None;
        rows[2].first_ms = None;
        let (clients, _, _) = clients(&rows, &[], &mut Interner::default()).unwrap();
        assert_eq!(clients[0].requests, 3);
        assert_eq!(
            (clients[0].first_ms, clients[0].last_ms),
            (600_000, 779_000)
        );
        // A last timestamp outside its minute is still caught.
        rows[2].last_ms = Some(0);
        assert!(matches!(
            super::clients(&rows, &[], &mut Interner::default()),
            Err(RowError::Timestamp { ms: 0, .. })
        ));
    }

    #[test]
    fn result_sets_convert_by_column_name_and_errors_name_row_and_column() {
        let minute = [
            "1",
            "client",
            "192.0.2.1",
            "M",
            "",
            "10",
            "2",
            "1",
            "1",
            "0",
            "0",
            "600000",
            "600500",
            "",
        ];
        let mut set = values(&[]);
        set.rows.push(
            minute
                .map(|v| (!v.is_empty()).then(|| v.to_owned()))
                .to_vec(),
        );
        let rows = set.scan_rows(1).unwrap();
        assert!(rows.clients.is_empty() && rows.values.is_empty());
        assert_eq!(rows.policies[0][0].actions.block, 1);
        assert_eq!(
            set.scan_rows(0).unwrap_err().to_string(),
            "row 1, column `policy`: `1` is not a policy number of this run"
        );
        set.rows[0][6] = Some("two".into());
        assert_eq!(
            set.scan_rows(1).unwrap_err().to_string(),
            "row 1, column `requests`: `two` is not an integer"
        );
        set.columns[5] = "m".into();
        assert!(matches!(
            set.scan_rows(1),
            Err(ConvertError::NoColumn { column, .. }) if column == "minute"
        ));
    }

    #[test]
    fn value_rows_feed_clients_and_keys_and_unknown_kinds_are_named() {
        let mut set = values(&[
            ["0", "client", "2001:db8::1", "U", "/a", "3", ""],
            ["0", "client", "2001:0db8::1", "U", "/b", "4", ""],
            ["1", "client", "2001:db8::1", "L", "bot", "2", ""],
        ]);
        let values = value_rows(&set).unwrap();
        let t = traffic(
            &[row("2001:db8::1", 10, 3, 3), row("2001:0db8::1", 11, 4, 4)],
            &values,
            &[PolicyRows {
                key: KeyKind::Prefix,
                min_requests: 1,
                rows: vec![row("2001:db8::1", 10, 2, 2)],
            }],
            None,
        )
        .unwrap();
        // The two spellings are one client: both paths, the more requested first.
        assert_eq!(t.clients[0].distinct_uris, 2);
        assert_eq!(&*t.clients[0].uris[0].value, "/b");
        assert_eq!(&*t.policy_keys[0][0].labels[0].value, "bot");
        assert_eq!(t.geo, GeoSplit::default());
        set.rows[0][3] = Some("X".into());
        assert_eq!(
            value_rows(&set).unwrap_err().to_string(),
            "row 1, column `kind`: `X` is not a value kind (one of M R S U A C L K)"
        );
        set.rows[0][3] = Some("U".into());
        set.rows[0][2] = Some("192.0.2.9".into());
        let values = value_rows(&set).unwrap();
        assert_eq!(
            traffic(&[row("2001:db8::1", 10, 3, 3)], &values, &[], None)
                .unwrap_err()
                .to_string(),
            "value row for client `192.0.2.9`, which has no requests in the minute rows"
        );
    }

    /// A result of value rows `[policy, scope, client, kind, value, requests, distinct_values]`;
    /// an empty text is NULL.
    fn values(rows: &[[&str; 7]]) -> ResultSet {
        let null = |v: &str| (!v.is_empty()).then(|| v.to_owned());
        ResultSet {
            columns: SCAN_COLUMNS.map(String::from).to_vec(),
            rows: rows
                .iter()
                .map(|r| {
                    let mut row: Vec<Option<String>> = r[..5].iter().map(|v| null(v)).collect();
                    row.push(None);
                    row.push(null(r[5]));
                    row.extend(["0"; 4].map(null));
                    row.extend([None, None, null(r[6])]);
                    row
                })
                .collect(),
        }
    }

    /// The value rows of a result.
    fn value_rows(set: &ResultSet) -> Result<Vec<ValueRow>, ConvertError> {
        set.scan_rows(1).map(|rows| rows.values)
    }

    #[test]
    fn rows_of_the_previous_period_are_kept_apart_as_all_requests() {
        let set = values(&[
            ["0", "client", "192.0.2.1", "C", "JP", "3", ""],
            ["-1", "client", "192.0.2.2", "C", "US", "2", ""],
        ]);
        let rows = set.scan_rows(1).unwrap();
        assert_eq!(rows.values.len(), 1);
        let previous = rows.previous.unwrap();
        assert_eq!(
            (&*previous.values[0].client, previous.values[0].policy),
            ("192.0.2.2", None)
        );
        assert!(previous.policies.is_empty() && previous.previous.is_none());
        let set = values(&[["-2", "client", "192.0.2.2", "C", "US", "2", ""]]);
        assert_eq!(
            set.scan_rows(1).unwrap_err().to_string(),
            "row 1, column `policy`: `-2` is not a policy number of this run"
        );
    }

    #[test]
    fn cut_lists_keep_the_distinct_count_athena_saw() {
        let set = values(&[
            ["0", "client", "192.0.2.1", "U", "/a", "5", "300"],
            ["0", "client", "192.0.2.1", "U", "/b", "5", "300"],
            ["0", "client", "192.0.2.1", "C", "JP", "10", ""],
            ["0", "prefix", "192.0.2.0/24", "U", "/a", "9", "301"],
            ["0", "client", "192.0.2.2", "A", "curl", "2", "1"],
            ["0", "client", "198.51.100.9", "U", "/c", "1", "40"],
            ["1", "client", "192.0.2.1", "U", "/b", "4", "1"],
        ]);
        let policy = PolicyRows {
            key: KeyKind::Ip,
            min_requests: 1,
            rows: vec![row("192.0.2.1", 10, 4, 4)],
        };
        let t = traffic(
            &[
                row("192.0.2.1", 10, 10, 10),
                row("192.0.2.2", 10, 2, 2),
                row("198.51.100.9", 10, 1, 1),
            ],
            &value_rows(&set).unwrap(),
            std::slice::from_ref(&policy),
            None,
        )
        .unwrap();
        let c = &t.clients[0];
        assert_eq!((c.distinct_uris, c.uris.len()), (300, 2));
        assert_eq!(&*c.uris[0].value, "/a");
        assert_eq!(c.countries[0].count, 10);
        assert_eq!(
            (t.prefixes[0].distinct_uris, t.prefixes[0].uris[0].count),
            (301, 9)
        );
        assert_eq!(t.prefixes[0].distinct_user_agents, 0);
        assert_eq!(t.clients[1].distinct_user_agents, 1);
        // A /24 of one client gets no rows of its own: it has that client's lists.
        let alone = t
            .prefixes
            .iter()
            .find(|p| p.key.to_string() == "198.51.100.0/24");
        assert_eq!(
            alone.map(|p| (p.distinct_uris, &*p.uris[0].value)),
            Some((40, "/c"))
        );
        assert_eq!(&*t.policy_keys[0][0].uris[0].value, "/b");
        // Keys below the policy's minimum are left out, as Athena leaves out most of them.
        let t = traffic(
            &[row("192.0.2.1", 10, 10, 10)],
            &[],
            &[PolicyRows {
                min_requests: 5,
                ..policy
            }],
            None,
        )
        .unwrap();
        assert!(t.policy_keys[0].is_empty());
    }

    #[test]
    fn minute_rows_of_all_requests_give_the_detail_per_minute_unless_one_lacks_it() {
        let detail = |counted, domestic, no_country| {
            Some(RowDetail {
                counted,
                domestic,
                no_country,
            })
        };
        let mut rows = [
            row("192.0.2.1", 10, 5, 5),
            row("2001:db8::1", 10, 3, 3),
            row("192.0.2.1", 11, 2, 2),
        ];
        rows[0].detail = detail(1, 2, 1);
        rows[1].detail = detail(3, 0, 3);
        rows[2].detail = detail(0, 2, 0);
        let t = traffic(&rows, &[], &[], Some("JP".into())).unwrap();
        let minute = |counted, domestic, overseas, unknown| MinuteDetail {
            counted,
            geo: GeoSplit {
                domestic,
                overseas,
                unknown,
            },
        };
        assert_eq!(
            t.per_minute_detail,
            Some(BTreeMap::from([
                (10, minute(4, 2, 2, 4)),
                (11, minute(0, 2, 0, 0))
            ]))
        );
        // Read by column name from a result; NULL (the rollup's) is none.
        let mut set = values(&[]);
        for d in [["1", "2", "1"], ["", "", ""]] {
            let mut r = [
                "0",
                "client",
                "192.0.2.1",
                "M",
                "",
                "10",
                "5",
                "5",
                "0",
                "0",
                "0",
                "600000",
                "600500",
                "",
            ]
            .to_vec();
            r.extend(d);
            set.rows.push(
                r.iter()
                    .map(|v| (!v.is_empty()).then(|| v.to_string()))
                    .collect(),
            );
        }
        let read = set.scan_rows(0).unwrap().clients;
        assert_eq!((read[0].detail, read[1].detail), (rows[0].detail, None));
        // A minute row from the rollup has none: the run has no detail.
        rows[2].detail = None;
        let t = traffic(&rows, &[], &[], None).unwrap();
        assert_eq!(t.per_minute_detail, None);
        rows[0].detail = detail(1, 5, 1);
        assert_eq!(
            traffic(&rows, &[], &[], None).unwrap_err().to_string(),
            "row for client `192.0.2.1`: the COUNT-mode or domestic and unknown-country counts \
             exceed `requests` (5)"
        );
    }

    #[test]
    fn a_second_spelling_of_an_ipv4_address_is_refused() {
        // Mapped IPv6 included: the local engine counts it as the IPv4 client, Athena cannot.
        for client in [" 192.0.2.1", "::ffff:192.0.2.1"] {
            assert_eq!(
                clients(&[row(client, 10, 1, 1)], &[], &mut Interner::default())
                    .unwrap_err()
                    .to_string(),
                format!(
                    "client `{client}` is an IPv4 address not written as a plain dotted quad: \
                     Athena cuts the top lists of dotted-quad clients and cannot merge other \
                     spellings exactly (use the local engine for these logs)"
                )
            );
        }
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
        bad.first_ms = Some(0);
        assert!(matches!(
            clients(&[bad], &[], &mut Interner::default()),
            Err(RowError::Timestamp { .. })
        ));
    }
}
