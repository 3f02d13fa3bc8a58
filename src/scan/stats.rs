//! Per-client accumulators and the finished, engine-independent statistics they produce.

use std::collections::BTreeMap;
use std::net::IpAddr;

use hashbrown::HashMap;
use ipnet::IpNet;
use serde::Serialize;

use crate::log::{Action, LogRecord};

/// The sliding windows AWS rate-based rules evaluate (60, 120, 300, 600 s), in minutes.
pub const WINDOWS: [u32; 4] = [1, 2, 5, 10];

pub const MINUTE_MS: i64 = 60_000;

/// Epoch minute of an epoch-millisecond timestamp (records before 1970 are clamped to minute 0).
pub fn minute_of(ms: i64) -> u32 {
    u32::try_from(ms.div_euclid(MINUTE_MS)).unwrap_or(if ms < 0 { 0 } else { u32::MAX })
}

/// Requests by terminating action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ActionCounts {
    #[serde(rename = "ALLOW")]
    pub allow: u64,
    #[serde(rename = "BLOCK")]
    pub block: u64,
    #[serde(rename = "CAPTCHA")]
    pub captcha: u64,
    #[serde(rename = "CHALLENGE")]
    pub challenge: u64,
    #[serde(rename = "OTHER")]
    pub other: u64,
}

impl ActionCounts {
    pub fn add(&mut self, action: Action, n: u64) {
        *self.get_mut(action) += n;
    }

    fn get_mut(&mut self, action: Action) -> &mut u64 {
        match action {
            Action::Allow => &mut self.allow,
            Action::Block => &mut self.block,
            Action::Captcha => &mut self.captcha,
            Action::Challenge => &mut self.challenge,
            Action::Other => &mut self.other,
        }
    }

    pub fn get(&self, action: Action) -> u64 {
        let mut copy = *self;
        *copy.get_mut(action)
    }

    pub fn merge(&mut self, other: &ActionCounts) {
        for a in Action::ALL {
            self.add(a, other.get(a));
        }
    }

    pub fn total(&self) -> u64 {
        Action::ALL.iter().map(|&a| self.get(a)).sum()
    }
}

/// Who sent requests: an address, an address prefix (/24, /64), or a `clientIp` that is not an address
/// (`X.X.X.X` in redacted logs), which is kept and counted rather than dropped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientKey {
    Addr(IpAddr),
    Prefix(IpNet),
    Unparsed(Box<str>),
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientKey::Addr(a) => a.fmt(f),
            ClientKey::Prefix(n) => n.fmt(f),
            ClientKey::Unparsed(s) => s.fmt(f),
        }
    }
}

impl Serialize for ClientKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl ClientKey {
    /// The /24 (IPv4) or /64 (IPv6) a client address belongs to.
    pub fn prefix(&self) -> Option<ClientKey> {
        let ClientKey::Addr(addr) = self else {
            return None;
        };
        let len = if addr.is_ipv4() { 24 } else { 64 };
        IpNet::new(*addr, len)
            .ok()
            .map(|n| ClientKey::Prefix(n.trunc()))
    }
}

/// Peak requests in one sliding window, and the first active minute of the busiest window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Peak {
    pub requests: u64,
    /// Epoch minute of the first request in the busiest window.
    #[serde(skip)]
    pub start_minute: u32,
}

/// Peaks for every window in [`WINDOWS`] over sorted `(minute, requests)` buckets.
pub fn window_peaks(minutes: &[(u32, u32)]) -> [Peak; 4] {
    WINDOWS.map(|w| window_peak(minutes, w))
}

/// The largest sum of requests over any `width` consecutive minutes. The best window can always be
/// taken to end at an active minute, so a two-pointer pass over active minutes is exact.
pub fn window_peak(minutes: &[(u32, u32)], width: u32) -> Peak {
    let mut best = Peak::default();
    let mut sum = 0u64;
    let mut lo = 0;
    for &(m, n) in minutes {
        sum += u64::from(n);
        while minutes[lo].0 + width <= m {
            sum -= u64::from(minutes[lo].1);
            lo += 1;
        }
        if sum > best.requests {
            best = Peak {
                requests: sum,
                start_minute: minutes[lo].0,
            };
        }
    }
    best
}

/// Adds one request at `minute` to sorted buckets. Records mostly arrive in time order, so the common
/// case appends or bumps the last bucket.
pub fn bump_minute(minutes: &mut Vec<(u32, u32)>, minute: u32, n: u32) {
    match minutes.last_mut() {
        Some(last) if last.0 == minute => last.1 += n,
        Some(last) if last.0 < minute => minutes.push((minute, n)),
        None => minutes.push((minute, n)),
        Some(_) => match minutes.binary_search_by_key(&minute, |b| b.0) {
            Ok(i) => minutes[i].1 += n,
            Err(i) => minutes.insert(i, (minute, n)),
        },
    }
}

/// Merges sorted bucket lists.
pub fn merge_minutes(into: &mut Vec<(u32, u32)>, other: &[(u32, u32)]) {
    if other.is_empty() {
        return;
    }
    let mut merged = Vec::with_capacity(into.len() + other.len());
    let (mut i, mut j) = (0, 0);
    while i < into.len() || j < other.len() {
        match (into.get(i), other.get(j)) {
            (Some(a), Some(b)) if a.0 == b.0 => {
                merged.push((a.0, a.1 + b.1));
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a.0 < b.0 => {
                merged.push(*a);
                i += 1;
            }
            (Some(a), None) => {
                merged.push(*a);
                i += 1;
            }
            (_, Some(b)) => {
                merged.push(*b);
                j += 1;
            }
            (None, None) => unreachable!(),
        }
    }
    *into = merged;
}

/// Counting distinct values, keyed by owned strings but looked up by `&str` so repeats allocate nothing.
#[derive(Debug, Clone, Default)]
pub struct Tally(HashMap<Box<str>, u64>);

impl Tally {
    pub fn add(&mut self, key: &str, n: u64) {
        match self.0.get_mut(key) {
            Some(c) => *c += n,
            None => {
                self.0.insert(key.into(), n);
            }
        }
    }

    pub fn merge(&mut self, other: Tally) {
        for (k, n) in other.0 {
            *self.0.entry(k).or_default() += n;
        }
    }

    /// Most frequent first, ties by value, so output is the same on every run.
    pub fn into_sorted(self) -> Vec<Count> {
        let mut v: Vec<Count> = self
            .0
            .into_iter()
            .map(|(value, count)| Count {
                value: value.into(),
                count,
            })
            .collect();
        v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
        v
    }
}

/// A value and how often it was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Count {
    pub value: String,
    pub count: u64,
}

/// Accumulates one client's requests during a scan.
#[derive(Debug, Clone, Default)]
pub struct ClientAcc {
    pub requests: u64,
    pub actions: ActionCounts,
    pub first_ms: i64,
    pub last_ms: i64,
    pub minutes: Vec<(u32, u32)>,
    pub rules: Tally,
    pub response_codes: Tally,
    pub uris: Tally,
    pub user_agents: Tally,
    pub countries: Tally,
    pub labels: Tally,
    pub count_rules: Tally,
}

impl ClientAcc {
    pub fn add(&mut self, r: &LogRecord<'_>, action: Action) {
        if self.requests == 0 {
            self.first_ms = r.timestamp;
            self.last_ms = r.timestamp;
        } else {
            self.first_ms = self.first_ms.min(r.timestamp);
            self.last_ms = self.last_ms.max(r.timestamp);
        }
        self.requests += 1;
        self.actions.add(action, 1);
        bump_minute(&mut self.minutes, minute_of(r.timestamp), 1);
        self.rules
            .add(r.terminating_rule_id.as_deref().unwrap_or("-"), 1);
        if let Some(code) = r.response_code_sent {
            let mut buf = itoa::Buffer::new();
            self.response_codes.add(buf.format(code), 1);
        }
        self.uris.add(r.http_request.uri.as_deref().unwrap_or(""), 1);
        self.user_agents.add(r.user_agent().unwrap_or(""), 1);
        self.countries
            .add(r.http_request.country.as_deref().unwrap_or("-"), 1);
        for label in r.label_names() {
            self.labels.add(label, 1);
        }
        for rule in r.count_rule_ids() {
            self.count_rules.add(rule, 1);
        }
    }

    pub fn merge(&mut self, other: ClientAcc) {
        if other.requests == 0 {
            return;
        }
        if self.requests == 0 {
            *self = other;
            return;
        }
        self.requests += other.requests;
        self.actions.merge(&other.actions);
        self.first_ms = self.first_ms.min(other.first_ms);
        self.last_ms = self.last_ms.max(other.last_ms);
        merge_minutes(&mut self.minutes, &other.minutes);
        self.rules.merge(other.rules);
        self.response_codes.merge(other.response_codes);
        self.uris.merge(other.uris);
        self.user_agents.merge(other.user_agents);
        self.countries.merge(other.countries);
        self.labels.merge(other.labels);
        self.count_rules.merge(other.count_rules);
    }

    pub fn finish(self, key: ClientKey) -> ClientStats {
        let peaks = window_peaks(&self.minutes);
        ClientStats {
            key,
            requests: self.requests,
            actions: self.actions,
            first_ms: self.first_ms,
            last_ms: self.last_ms,
            peaks,
            active_minutes: self.minutes.len() as u64,
            minutes: self.minutes,
            rules: self.rules.into_sorted(),
            response_codes: self.response_codes.into_sorted(),
            uris: self.uris.into_sorted(),
            user_agents: self.user_agents.into_sorted(),
            countries: self.countries.into_sorted(),
            labels: self.labels.into_sorted(),
            count_rules: self.count_rules.into_sorted(),
        }
    }
}

/// Everything known about one client (or prefix) after a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientStats {
    pub key: ClientKey,
    pub requests: u64,
    pub actions: ActionCounts,
    pub first_ms: i64,
    pub last_ms: i64,
    /// Peak requests per window of [`WINDOWS`] (1, 2, 5, 10 minutes).
    pub peaks: [Peak; 4],
    pub active_minutes: u64,
    /// Sorted `(epoch minute, requests)`.
    pub minutes: Vec<(u32, u32)>,
    /// Terminating rule ids (`Default_Action` when none matched).
    pub rules: Vec<Count>,
    pub response_codes: Vec<Count>,
    pub uris: Vec<Count>,
    pub user_agents: Vec<Count>,
    pub countries: Vec<Count>,
    pub labels: Vec<Count>,
    /// Rules matched in COUNT mode.
    pub count_rules: Vec<Count>,
}

impl ClientStats {
    pub fn peak(&self, window_minutes: u32) -> Peak {
        WINDOWS
            .iter()
            .position(|&w| w == window_minutes)
            .map(|i| self.peaks[i])
            .unwrap_or_else(|| window_peak(&self.minutes, window_minutes))
    }

    pub fn has_label_prefix(&self, prefix: &str) -> bool {
        self.labels.iter().any(|l| l.value.starts_with(prefix))
    }
}

/// Sums accumulators per /24 or /64. Exact, and free during the scan: prefixes are derived at the end.
pub fn prefixes<'a>(
    clients: impl Iterator<Item = (&'a ClientKey, &'a ClientAcc)>,
) -> BTreeMap<ClientKey, ClientAcc> {
    let mut out: BTreeMap<ClientKey, ClientAcc> = BTreeMap::new();
    for (key, acc) in clients {
        if let Some(prefix) = key.prefix() {
            out.entry(prefix).or_default().merge(acc.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_slide_by_minute() {
        // 10 at minute 100, 5 at 101, 20 at 104, 1 at 110
        let m = [(100, 10), (101, 5), (104, 20), (110, 1)];
        let p = window_peaks(&m);
        assert_eq!(p[0].requests, 20); // 1m: minute 104
        assert_eq!(p[0].start_minute, 104);
        assert_eq!(p[1].requests, 20); // 2m
        assert_eq!(p[2].requests, 35); // 5m: 100..=104
        assert_eq!(p[2].start_minute, 100);
        assert_eq!(p[3].requests, 35); // 10m: 100..=109
        assert_eq!(p[3].start_minute, 100);
        assert_eq!(window_peaks(&[])[0], Peak::default());
    }

    #[test]
    fn bump_and_merge_keep_order() {
        let mut v = Vec::new();
        for m in [5, 5, 7, 3, 6, 3] {
            bump_minute(&mut v, m, 1);
        }
        assert_eq!(v, [(3, 2), (5, 2), (6, 1), (7, 1)]);
        merge_minutes(&mut v, &[(1, 1), (5, 3), (9, 1)]);
        assert_eq!(v, [(1, 1), (3, 2), (5, 5), (6, 1), (7, 1), (9, 1)]);
    }

    #[test]
    fn prefix_of_addresses() {
        let k = ClientKey::Addr("192.0.2.77".parse().unwrap());
        assert_eq!(k.prefix().unwrap().to_string(), "192.0.2.0/24");
        let k = ClientKey::Addr("2001:db8:1:2:3::4".parse().unwrap());
        assert_eq!(k.prefix().unwrap().to_string(), "2001:db8:1:2::/64");
        assert_eq!(ClientKey::Unparsed("X.X.X.X".into()).prefix(), None);
    }

    #[test]
    fn tally_sorts_by_count_then_value() {
        let mut t = Tally::default();
        for v in ["b", "a", "b", "c", "a", "b"] {
            t.add(v, 1);
        }
        let s: Vec<_> = t
            .into_sorted()
            .into_iter()
            .map(|c| (c.value, c.count))
            .collect();
        assert_eq!(s, [("b".into(), 3), ("a".into(), 2), ("c".into(), 1)]);
    }

    #[test]
    fn action_counts() {
        let mut a = ActionCounts::default();
        a.add(Action::Block, 2);
        a.add(Action::Allow, 1);
        let mut b = ActionCounts::default();
        b.merge(&a);
        b.merge(&a);
        assert_eq!((b.block, b.allow, b.total()), (4, 2, 6));
    }
}
