//! Section 4, block effect: for every ledger entry in force during the period, what its range sent
//! before and after it was added, how often waftune's rule answered it, and whether that made it
//! stop (the verdicts are defined in `docs/report.md`).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use super::{Period, hourly};
use crate::analyze::iso_ms;
use crate::ledger::{Ledger, LedgerEntry};
use crate::propose::escalate::{Effect, Observed as Escalation};
use crate::scan::stats::merge_minutes;
use crate::scan::{ClientKey, ClientStats, MINUTE_MS};

/// How long a blocked client must stay silent after its first answer to count as stopped.
pub const QUIET_MS: i64 = 24 * 3_600_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Answered by waftune's rule, last request less than 24 h after the first answer, then none
    /// for 24 h.
    Stopped,
    /// Still sending 24 h or more after the first answer, and being answered.
    Persisting,
    /// Went quiet after being answered, but a new address with the same fingerprint (user agent,
    /// JA4 and JA3 where logged) appeared in the same /24 (/64) or ASN after the first answer.
    Rotated,
    /// Sent requests after it was added, none of them answered by waftune's rule: the block is not
    /// applied yet, or the rule counts.
    NotEnforced,
    /// No request from the range after it was added, or less than 24 h of logs after its last
    /// request to tell.
    NoData,
}

impl Verdict {
    pub const ALL: [Verdict; 5] = [
        Verdict::Stopped,
        Verdict::Persisting,
        Verdict::Rotated,
        Verdict::NotEnforced,
        Verdict::NoData,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Stopped => "stopped",
            Verdict::Persisting => "persisting",
            Verdict::Rotated => "rotated",
            Verdict::NotEnforced => "not enforced",
            Verdict::NoData => "no data",
        }
    }
}

/// Section 4.
#[derive(Debug, Clone, Serialize)]
pub struct BlockEffect {
    /// Entries judged stopped, persisting or rotated: those waftune's rule answered with enough
    /// logs after to tell.
    pub blocked: u64,
    pub stopped: u64,
    pub persisting: u64,
    pub rotated: u64,
    pub not_enforced: u64,
    pub no_data: u64,
    /// Every entry in force during the period: persisting, rotated, not enforced, stopped, no data;
    /// then by requests after `added`, then address.
    pub entries: Vec<BlockRow>,
}

impl BlockEffect {
    /// "N of M blocked clients stopped within 24 h".
    pub fn headline(&self) -> String {
        format!(
            "{} of {} blocked clients stopped within 24 h",
            self.stopped, self.blocked
        )
    }

    /// The persisting and rotated entries, for `propose` to escalate.
    pub fn escalations(&self) -> Vec<Escalation> {
        self.entries
            .iter()
            .filter_map(|e| e.escalation.clone())
            .collect()
    }

    pub fn count(&self, v: Verdict) -> u64 {
        match v {
            Verdict::Stopped => self.stopped,
            Verdict::Persisting => self.persisting,
            Verdict::Rotated => self.rotated,
            Verdict::NotEnforced => self.not_enforced,
            Verdict::NoData => self.no_data,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlockRow {
    pub cidr: String,
    pub group: String,
    pub policy: String,
    pub added: String,
    pub expires: Option<String>,
    pub verdict: Verdict,
    /// Why, in one line.
    pub why: String,
    /// Requests from the range in the period before `added`, and at or after it.
    pub requests_before: u64,
    pub requests_after: u64,
    /// Requests per hour before and after `added` (over the hours of the period on each side).
    pub per_hour_before: Option<f64>,
    pub per_hour_after: Option<f64>,
    /// Requests waftune's rules of the entry's group answered.
    pub answered: u64,
    pub first_answer: Option<String>,
    pub last_seen: Option<String>,
    /// The range's most used user agent (of its busiest address): with its JA4 and JA3, the
    /// fingerprint rotation looks for.
    pub user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja4: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja3: Option<String>,
    /// Its `clientAsn`, where logged: rotation is looked for in it as well as in the /24 (/64).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// New addresses with that fingerprint, in its /24 (/64) or ASN, that appeared after the first
    /// answer.
    pub rotated_to: Vec<String>,
    /// Requests per hour of the period.
    pub hourly: Vec<u64>,
    /// What `propose` escalates on (persisting and rotated entries).
    #[serde(skip)]
    pub escalation: Option<Escalation>,
}

/// What the logs show about one range: the input of [`judge`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeTraffic {
    pub requests_after: u64,
    pub answered: u64,
    pub first_answer_ms: Option<i64>,
    pub last_seen_ms: Option<i64>,
    /// Addresses outside the range, in its /24 (/64) or ASN, with its fingerprint, first seen after
    /// the first answer.
    pub rotated_to: Vec<String>,
}

/// The verdict on one range, and why, given the end of the logs (`end_ms`).
pub fn judge(r: &RangeTraffic, end_ms: i64) -> (Verdict, String) {
    let (Some(first), Some(last)) = (r.first_answer_ms, r.last_seen_ms) else {
        return if r.requests_after == 0 {
            (Verdict::NoData, "no requests after it was added".to_owned())
        } else {
            (
                Verdict::NotEnforced,
                format!(
                    "{} requests after it was added, none answered by waftune's rule",
                    r.requests_after
                ),
            )
        };
    };
    let hours = |ms: i64| format!("{:.1} h", ms as f64 / 3_600_000.0);
    if last >= first + QUIET_MS {
        (
            Verdict::Persisting,
            format!(
                "still sending {} after the first answer ({} answered)",
                hours(last - first),
                r.answered
            ),
        )
    } else if !r.rotated_to.is_empty() {
        (
            Verdict::Rotated,
            format!(
                "quiet after the first answer, then {} new address(es) with the same fingerprint in its /24 (/64) or ASN",
                r.rotated_to.len()
            ),
        )
    } else if end_ms >= last + QUIET_MS {
        // 24 h of silence after its last request, not after the first answer: a client still
        // sending 23 h after its first answer, in logs that end an hour later, has not stopped.
        (
            Verdict::Stopped,
            format!(
                "last request {} after the first answer ({} answered), none in the 24 h after it",
                hours(last - first),
                r.answered
            ),
        )
    } else {
        (
            Verdict::NoData,
            format!(
                "answered {} times; only {} of logs after its last request",
                r.answered,
                hours(end_ms - last)
            ),
        )
    }
}

/// The logs the verdicts are drawn from.
pub struct Observed<'a> {
    pub traffic: &'a crate::scan::Traffic,
    /// Per managed rule: its group, and per address the requests it answered.
    pub answered: &'a [(&'a str, &'a [ClientStats])],
    pub period: Period,
}

/// Clients by address, for range lookups.
type ByAddr<'a> = BTreeMap<IpAddr, Vec<&'a ClientStats>>;

/// Clients by `clientAsn`, where logged.
type ByAsn<'a> = HashMap<u32, Vec<&'a ClientStats>>;

/// What links a client to a blocked one: its most used user agent, its JA4 and its JA3 (the
/// signature campaigns are grouped by).
fn fingerprint(c: &ClientStats) -> (Option<&str>, Option<&str>, Option<&str>) {
    (
        c.user_agents.first().map(|u| &*u.value),
        c.ja4.as_deref(),
        c.ja3.as_deref(),
    )
}

fn index<'a>(clients: impl Iterator<Item = &'a ClientStats>) -> ByAddr<'a> {
    let mut by: ByAddr<'a> = BTreeMap::new();
    for c in clients {
        let addr = match &c.key {
            ClientKey::Addr(a) => *a,
            // Per-address policy keys are /32 and /128 networks.
            ClientKey::Prefix(n) => n.addr(),
            ClientKey::Unparsed(_) => continue,
        };
        by.entry(addr).or_default().push(c);
    }
    by
}

fn within<'m, 'a>(by: &'m ByAddr<'a>, net: IpNet) -> impl Iterator<Item = &'a ClientStats> + 'm {
    by.range(net.network()..=net.broadcast())
        .flat_map(|(_, v)| v.iter().copied())
}

/// The /24 (IPv4) or /64 (IPv6) around a range, or the range itself when it is wider.
fn neighbourhood(net: IpNet) -> IpNet {
    let len = if net.addr().is_ipv4() { 24 } else { 64 };
    IpNet::new(net.addr(), len.min(net.prefix_len()))
        .map(|n| n.trunc())
        .unwrap_or(net)
}

pub fn block_effect(ledger: &Ledger, o: &Observed<'_>) -> BlockEffect {
    let period = o.period;
    let (first_hour, n) = period.hours();
    let clients = index(o.traffic.clients.iter());
    let mut by_asn: ByAsn<'_> = HashMap::new();
    for c in &o.traffic.clients {
        if let Some(asn) = c.asn {
            by_asn.entry(asn).or_default().push(c);
        }
    }
    let mut answered: BTreeMap<&str, ByAddr<'_>> = BTreeMap::new();
    for &(group, keys) in o.answered {
        let by = answered.entry(group).or_default();
        for (addr, v) in index(keys.iter()) {
            by.entry(addr).or_default().extend(v);
        }
    }
    let in_force = |e: &&LedgerEntry| {
        e.added.as_millisecond() <= period.end_ms
            && e.expires
                .is_none_or(|x| x.as_millisecond() > period.start_ms)
    };
    let mut rows: Vec<BlockRow> = ledger
        .entries
        .iter()
        .filter(in_force)
        .map(|e| {
            row(
                e,
                &clients,
                &by_asn,
                answered.get(e.group.as_str()),
                period,
                first_hour,
                n,
            )
        })
        .collect();
    rows.sort_by(|a, b| {
        let rank = |v: Verdict| match v {
            Verdict::Persisting => 0,
            Verdict::Rotated => 1,
            Verdict::NotEnforced => 2,
            Verdict::Stopped => 3,
            Verdict::NoData => 4,
        };
        rank(a.verdict)
            .cmp(&rank(b.verdict))
            .then(b.requests_after.cmp(&a.requests_after))
            .then_with(|| a.cidr.cmp(&b.cidr))
    });
    let count = |v: Verdict| rows.iter().filter(|r| r.verdict == v).count() as u64;
    let (stopped, persisting, rotated) = (
        count(Verdict::Stopped),
        count(Verdict::Persisting),
        count(Verdict::Rotated),
    );
    BlockEffect {
        blocked: stopped + persisting + rotated,
        stopped,
        persisting,
        rotated,
        not_enforced: count(Verdict::NotEnforced),
        no_data: count(Verdict::NoData),
        entries: rows,
    }
}

fn row(
    e: &LedgerEntry,
    clients: &ByAddr<'_>,
    by_asn: &ByAsn<'_>,
    answered: Option<&ByAddr<'_>>,
    period: Period,
    first_hour: i64,
    n: usize,
) -> BlockRow {
    let added = e.added.as_millisecond();
    let members: Vec<&ClientStats> = within(clients, e.cidr).collect();
    let mut minutes = Vec::new();
    for m in &members {
        merge_minutes(&mut minutes, &m.minutes);
    }
    let (mut before, mut after) = (0u64, 0u64);
    for &(m, c) in &minutes {
        if i64::from(m) * MINUTE_MS < added {
            before += u64::from(c);
        } else {
            after += u64::from(c);
        }
    }
    let mut answered_minutes = Vec::new();
    for a in answered.into_iter().flat_map(|by| within(by, e.cidr)) {
        merge_minutes(&mut answered_minutes, &a.minutes);
    }
    let first_answer_ms = answered_minutes
        .first()
        .map(|&(m, _)| i64::from(m) * MINUTE_MS);
    let busiest = members
        .iter()
        .max_by(|a, b| a.requests.cmp(&b.requests).then_with(|| b.key.cmp(&a.key)));
    let print = busiest.map(|c| fingerprint(c));
    let asn = busiest.and_then(|c| c.asn);
    let rotated_to = match (first_answer_ms, print) {
        (Some(first), Some(print)) if print.0.is_some() => {
            let near = within(clients, neighbourhood(e.cidr));
            let same_asn = asn
                .and_then(|a| by_asn.get(&a))
                .into_iter()
                .flatten()
                .copied();
            let mut to: Vec<&ClientStats> = near
                .chain(same_asn)
                .filter(|c| {
                    !matches!(&c.key, ClientKey::Addr(a) if e.cidr.contains(a))
                        && c.first_ms >= first
                        && fingerprint(c) == print
                })
                .collect();
            to.sort_by(|a, b| a.key.cmp(&b.key));
            to.dedup_by(|a, b| a.key == b.key);
            to
        }
        _ => Vec::new(),
    };
    let rotated_nets: Vec<IpNet> = rotated_to
        .iter()
        .filter_map(|c| match c.key {
            ClientKey::Addr(a) => Some(IpNet::from(a)),
            _ => None,
        })
        .collect();
    let rotated_to: Vec<String> = rotated_to.iter().map(|c| c.key.to_string()).collect();
    let traffic = RangeTraffic {
        requests_after: after,
        answered: answered_minutes.iter().map(|&(_, c)| u64::from(c)).sum(),
        first_answer_ms,
        last_seen_ms: members.iter().map(|c| c.last_ms).max(),
        rotated_to,
    };
    let (verdict, why) = judge(&traffic, period.end_ms);
    let effect = match verdict {
        Verdict::Persisting => traffic
            .last_seen_ms
            .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
            .map(|last_seen| Effect::Persisting { last_seen }),
        Verdict::Rotated => Some(Effect::Rotated {
            to: rotated_nets,
            asn,
        }),
        _ => None,
    };
    let escalation = effect.map(|effect| Escalation {
        cidr: e.cidr,
        group: e.group.clone(),
        effect,
        why: why.clone(),
    });
    let split = added.clamp(period.start_ms, period.end_ms);
    let per_hour =
        |requests: u64, ms: i64| (ms > 0).then(|| requests as f64 * 3_600_000.0 / ms as f64);
    BlockRow {
        cidr: e.cidr.to_string(),
        group: e.group.clone(),
        policy: e.policy.clone(),
        added: e.added.to_string(),
        expires: e.expires.map(|t| t.to_string()),
        verdict,
        why,
        requests_before: before,
        requests_after: after,
        per_hour_before: per_hour(before, split - period.start_ms),
        per_hour_after: per_hour(after, period.end_ms - split),
        answered: traffic.answered,
        first_answer: first_answer_ms.map(iso_ms),
        last_seen: traffic.last_seen_ms.map(iso_ms),
        user_agent: print.and_then(|p| p.0).map(str::to_owned),
        ja4: print.and_then(|p| p.1).map(str::to_owned),
        ja3: print.and_then(|p| p.2).map(str::to_owned),
        asn,
        rotated_to: traffic.rotated_to,
        hourly: hourly(&minutes, first_hour, n),
        escalation,
    }
}
