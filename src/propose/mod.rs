//! From traffic to reviewed blocks: policies are evaluated into [`Finding`]s (with evidence), and the
//! findings update the ledger: new offenders added, repeat offenders extended with escalation, expired
//! entries removed (and remembered, so a later offence escalates). Pure: `now` is passed in, no I/O.

pub mod asn;
pub mod campaign;
pub mod escalate;
pub mod origin;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ipnet::IpNet;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::analyze::{ClientRow, client_row, iso_ms};
use crate::config::Guardrails;
use crate::ledger::{HistoryEntry, Ledger, LedgerEntry, MANUAL};
use crate::model::rate::Window;
use crate::model::waf::{MAX_SET_ENTRIES, VERIFIED_CRAWLER_LABEL};
use crate::policy::{KeyCounts, KeyKind, Policy, PolicyAction, PolicySet, Site, Thresholds};
use crate::scan::stats::{merge_minutes, window_peak};
use crate::scan::{ClientKey, ClientStats, Traffic};
use crate::util::cidr;
use crate::util::text::thousands;
use asn::{AsnChange, AsnChangeKind};
use campaign::{Campaign, Fingerprint, Signature};

/// Why a verified crawler is never proposed for a block.
pub const VERIFIED_NEVER_BLOCKED: &str = "verified crawler (Bot Control `bot:verified` on its requests): never IP-blocked; rate-limit it instead";

/// How long an expired block is remembered for escalation.
pub const FORGET_AFTER: SignedDuration = SignedDuration::from_hours(180 * 24);

/// What a finding leads to.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Proposed for an IP-set group.
    Block { group: String },
    /// The policy only reports (simulation), possibly with a rate-limit suggestion.
    Report {
        note: Option<String>,
        rate_limit: Option<String>,
    },
    /// An allowlist entry covers the key: never proposed.
    Suppressed { by: String },
}

/// One key (address or network) that met a policy's thresholds, with the evidence for a reviewer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub policy: String,
    pub key: IpNet,
    /// For a finding aggregated to a /24 or /64: the offending addresses inside it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<IpNet>,
    /// Which thresholds fired, e.g. `peak 5m 1,117 >= 600`.
    pub fired: Vec<String>,
    #[serde(flatten)]
    pub verdict: Verdict,
    /// The key's requests matched by the policy.
    pub evidence: ClientRow,
}

impl Finding {
    /// One line for the ledger's `reason`.
    pub fn reason(&self) -> String {
        let mut reason = format!("{}: {}", self.policy, self.fired.join(", "));
        if !self.members.is_empty() {
            reason += &format!("; {} offending addresses", self.members.len());
        }
        if let Some(uri) = self.evidence.top_uris.first() {
            reason += &format!("; top path `{}`", uri.value);
        }
        reason
    }
}

/// The policies with thresholds on origin signals (they need ALB or CloudFront logs).
pub fn uses_origin(policies: &PolicySet) -> Vec<&str> {
    policies
        .policies
        .iter()
        .filter(|p| p.thresholds.uses_origin())
        .map(|p| p.name.as_str())
        .collect()
}

/// What to tell a user whose policies have origin thresholds when no origin logs were read:
/// they cannot fire, and saying nothing would read as "nothing found".
pub fn origin_missing_note(policies: &PolicySet) -> Option<String> {
    let names = uses_origin(policies);
    (!names.is_empty()).then(|| {
        format!(
            "policies {} use origin thresholds (`origin_5xx`, `origin_5xx_share`, `origin_time_share`), but no ALB or CloudFront logs were read: those thresholds cannot fire",
            names
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// What a key's thresholds compare, from its per-minute counts: the same for both engines.
fn key_counts(s: &ClientStats, period_hours: u64) -> KeyCounts {
    let mut c = KeyCounts {
        period_hours,
        addresses: 1,
        ..crate::scan::key_counts(s)
    };
    add_activity(&mut c, &s.minutes);
    c
}

/// Sustained activity from sorted `(minute, requests)`: active minutes and clock hours, and the
/// busiest 24 hours.
fn add_activity(c: &mut KeyCounts, minutes: &[(u32, u32)]) {
    let mut last_hour = None;
    c.active_hours = 0;
    for &(minute, _) in minutes {
        let hour = minute / 60;
        if last_hour != Some(hour) {
            c.active_hours += 1;
            last_hour = Some(hour);
        }
    }
    c.active_minutes = minutes.len() as u64;
    c.day_requests = window_peak(minutes, DAY_MINUTES).requests;
}

const DAY_MINUTES: u32 = 24 * 60;

/// The clock hours (UTC) the traffic spans, first and last included.
fn period_hours(traffic: &Traffic) -> u64 {
    const HOUR_MS: i64 = 3_600_000;
    match (traffic.first_ms, traffic.last_ms) {
        (Some(first), Some(last)) => {
            (last.div_euclid(HOUR_MS) - first.div_euclid(HOUR_MS) + 1).max(0) as u64
        }
        _ => 0,
    }
}

fn values(v: &[crate::scan::Count]) -> Vec<&str> {
    v.iter().map(|c| &*c.value).collect()
}

/// What evaluation needs besides a policy's own keys.
struct Context<'a> {
    policies: &'a PolicySet,
    /// Every address and network over all its requests, for allowlists and verification.
    overall: HashMap<IpNet, &'a ClientStats>,
    now: Timestamp,
}

impl Context<'_> {
    /// The finding for `key`, with its verdict.
    fn finding(
        &self,
        policy: &Policy,
        key: IpNet,
        stats: &ClientStats,
        fired: Vec<String>,
    ) -> Finding {
        let all = self.overall.get(&key).copied().unwrap_or(stats);
        let suppressed = self.policies.suppresses(
            policy,
            &key,
            &values(&all.labels),
            &values(&all.user_agents),
            self.now,
        );
        let verified = all
            .labels
            .iter()
            .any(|l| *l.value == *VERIFIED_CRAWLER_LABEL);
        let verdict = match (suppressed, &policy.action) {
            (Some(entry), _) => Verdict::Suppressed {
                by: entry.to_string(),
            },
            // Bot Control verified this client on some request (it skips static assets, so
            // not every request carries the label): it is the crawler it claims to be.
            (None, PolicyAction::Block(_)) if verified => Verdict::Suppressed {
                by: VERIFIED_NEVER_BLOCKED.to_owned(),
            },
            (None, PolicyAction::Block(b)) => Verdict::Block {
                group: b.group.clone(),
            },
            (None, PolicyAction::Report(r)) => Verdict::Report {
                note: r.note.clone(),
                rate_limit: r.rate_limit.map(|h| h.to_string()),
            },
        };
        Finding {
            policy: policy.name.clone(),
            key,
            members: Vec::new(),
            fired,
            verdict,
            evidence: client_row(stats, 5),
        }
    }
}

/// Evaluates every policy over the traffic it counted (`traffic.policy_keys`, in policy order).
///
/// Allowlist entries for labels and user agents look at *all* of a key's requests, not only the ones
/// the policy matched. A key that Bot Control verified as a crawler on any request is never blocked.
/// Relative limits are resolved over the policy's keys: every address (or network) that sent a
/// request it matched.
pub fn evaluate(policies: &PolicySet, traffic: &Traffic, now: Timestamp) -> Vec<Finding> {
    evaluate_with(policies, traffic, None, now)
}

/// [`evaluate`], with the origin's logs for thresholds on origin signals: without them those
/// thresholds never fire (callers say so; see [`uses_origin`]).
pub fn evaluate_with(
    policies: &PolicySet,
    traffic: &Traffic,
    origin: Option<&crate::origin::scan::OriginTraffic>,
    now: Timestamp,
) -> Vec<Finding> {
    let origin = origin
        .filter(|_| !uses_origin(policies).is_empty())
        .map(origin::OriginIndex::new);
    let allow_cidrs = policies.allowlist.cidrs(now);
    let period_hours = period_hours(traffic);
    let ctx = Context {
        policies,
        overall: traffic
            .clients
            .iter()
            .chain(&traffic.prefixes)
            .filter_map(|c| match c.key {
                ClientKey::Addr(a) => Some((IpNet::from(a), c)),
                ClientKey::Prefix(n) => Some((n, c)),
                ClientKey::Unparsed(_) => None,
            })
            .collect(),
        now,
    };
    let mut findings = Vec::new();
    for (policy, keys) in policies.policies.iter().zip(&traffic.policy_keys) {
        let counts: Vec<KeyCounts> = keys
            .iter()
            .map(|s| {
                let mut c = key_counts(s, period_hours);
                if let (Some(ix), ClientKey::Prefix(key)) = (&origin, &s.key) {
                    c.origin = Some(ix.counts(*key));
                }
                c
            })
            .collect();
        // Relative limits compare with the other keys the policy matched, as `rate recommend`
        // compares with the clients in a rule's scope.
        let thresholds = if policy.thresholds.is_relative() {
            policy.thresholds.resolve(&Site {
                keys: &counts,
                scope: match policy.key {
                    KeyKind::Ip => "addresses",
                    KeyKind::Prefix => "networks",
                },
            })
        } else {
            policy.thresholds.clone()
        };
        let mut own = Vec::new();
        for (stats, counts) in keys.iter().zip(&counts) {
            let ClientKey::Prefix(key) = stats.key else {
                continue;
            };
            let Some(fired) = thresholds.check(counts) else {
                continue;
            };
            let fired = fired.iter().map(ToString::to_string).collect();
            own.push(ctx.finding(policy, key, stats, fired));
        }
        if let Some(group) = &policy.campaign {
            own = campaigns(own, keys, group, period_hours);
        }
        if let Some(agg) = policy.aggregate {
            own = aggregate(own, agg.min_offenders as usize, &allow_cidrs);
        }
        findings.extend(own);
    }
    findings
}

/// A campaign policy's findings: its members (the addresses that met `[policy.members]`) grouped by
/// [`campaign::Signature`], and of each group whose counts together meet `group`, every member,
/// with the link and the group's fired thresholds in front of the member's own. `keys` are the
/// policy's per-address counts the members came from.
fn campaigns(
    members: Vec<Finding>,
    keys: &[ClientStats],
    group: &Thresholds,
    period_hours: u64,
) -> Vec<Finding> {
    let stats: HashMap<IpNet, &ClientStats> = keys
        .iter()
        .filter_map(|s| match s.key {
            ClientKey::Prefix(k) => Some((k, s)),
            _ => None,
        })
        .collect();
    let mut groups: BTreeMap<Signature, Vec<Finding>> = BTreeMap::new();
    for f in members {
        groups
            .entry(Fingerprint::of(&f).signature)
            .or_default()
            .push(f);
    }
    let mut out = Vec::new();
    for (signature, members) in groups {
        let mut together = KeyCounts {
            addresses: members.len() as u64,
            period_hours,
            ..KeyCounts::default()
        };
        let mut minutes: Vec<(u32, u32)> = Vec::new();
        for m in &members {
            let s = stats[&m.key];
            together.requests += s.requests;
            together.blocked += s.actions.block;
            // Distinct paths do not add up across members; the largest is a lower bound.
            together.distinct_uris = together.distinct_uris.max(s.distinct_uris);
            merge_minutes(&mut minutes, &s.minutes);
        }
        together.peaks = Window::ALL.map(|w| window_peak(&minutes, w.minutes()).requests);
        add_activity(&mut together, &minutes);
        let Some(fired) = group.check(&together) else {
            continue;
        };
        let link = format!(
            "campaign of {} addresses with {}, {} requests together",
            thousands(together.addresses),
            describe(&signature),
            thousands(together.requests)
        );
        for mut m in members {
            let own = std::mem::take(&mut m.fired);
            m.fired = std::iter::once(link.clone())
                .chain(fired.iter().map(ToString::to_string))
                .chain(own.into_iter().map(|f| format!("member: {f}")))
                .collect();
            out.push(m);
        }
    }
    out
}

/// A signature as evidence: `user agent `python-requests/2.31`, JA4 `t13d...``.
fn describe(s: &Signature) -> String {
    let mut parts = vec![match &s.user_agent {
        Some(ua) if ua.is_empty() => "no user agent".to_owned(),
        Some(ua) => format!("user agent `{ua}`"),
        None => "no user agent logged".to_owned(),
    }];
    parts.extend(s.ja4.as_ref().map(|j| format!("JA4 `{j}`")));
    parts.extend(s.ja3.as_ref().map(|j| format!("JA3 `{j}`")));
    parts.join(", ")
}

/// Folds blocked addresses into their /24 or /64 when at least `min` of them share it, unless an
/// allowlisted range lies inside that network.
fn aggregate(findings: Vec<Finding>, min: usize, allow: &[IpNet]) -> Vec<Finding> {
    let mut by_net: BTreeMap<IpNet, Vec<Finding>> = BTreeMap::new();
    let mut out = Vec::new();
    for f in findings {
        let host = f.key.prefix_len() == f.key.max_prefix_len();
        match (&f.verdict, host) {
            (Verdict::Block { .. }, true) => {
                let len = if f.key.addr().is_ipv4() { 24 } else { 64 };
                let net = IpNet::new(f.key.addr(), len).expect("valid length").trunc();
                by_net.entry(net).or_default().push(f);
            }
            _ => out.push(f),
        }
    }
    for (net, mut members) in by_net {
        if members.len() < min || allow.iter().any(|a| cidr::overlaps(a, &net)) {
            out.extend(members);
            continue;
        }
        members.sort_by_key(|m| std::cmp::Reverse(m.evidence.requests));
        let mut lead = members[0].clone();
        lead.key = net;
        lead.members = members.iter().map(|m| m.key).collect();
        lead.members.sort();
        out.push(lead);
    }
    out
}

/// What one run changed in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A new offender (or a returning one: `strikes` > 1).
    Add,
    /// Still offending while blocked: another strike and a longer block.
    Extend,
    /// The block ran out and was removed.
    Expire,
    /// An address entry replaced by the network entry that covers it.
    Merge,
    /// Offending, but already blocked by a manual or broader entry: left as it is.
    Covered,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub kind: ChangeKind,
    pub cidr: IpNet,
    pub group: String,
    pub policy: String,
    pub strikes: u32,
    pub expires: Option<Timestamp>,
    pub reason: String,
}

impl Change {
    fn of(kind: ChangeKind, e: &LedgerEntry) -> Change {
        Change {
            kind,
            cidr: e.cidr,
            group: e.group.clone(),
            policy: e.policy.clone(),
            strikes: e.strikes,
            expires: e.expires,
            reason: e.reason.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    pub ledger: Ledger,
    pub changes: Vec<Change>,
    /// What happened to the ledger's ASN lists, apart from `changes` (whose key is an address).
    pub asn_changes: Vec<AsnChange>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProposeError {
    #[error(
        "group `{group}` would hold {count} {version} entries, more than its sets take ({capacity}); \
         nothing was written. Raise thresholds, use `aggregate` in the policy, or set `rollover = true` \
         for the group in waftune.toml"
    )]
    Capacity {
        group: String,
        version: &'static str,
        count: usize,
        capacity: usize,
    },
    #[error("policy `{policy}` blocks into group `{group}`, which waftune.toml does not define")]
    UnknownGroup { policy: String, group: String },
    #[error("{0}")]
    Cidr(#[from] cidr::CidrError),
    #[error("`{cidr}` overlaps allowlisted `{allowed}`; pass `--force` to block it anyway")]
    Allowlisted { cidr: IpNet, allowed: IpNet },
    #[error(
        "`{cidr}` is broader than /{min_prefix}, which every plan refuses; list it in \
         guardrails.allow_broad in waftune.toml if intended"
    )]
    TooBroad { cidr: IpNet, min_prefix: u8 },
    #[error("`{cidr}` is not in the ledger{hint}")]
    NotInLedger { cidr: IpNet, hint: String },
}

/// How many entries each group takes per IP version: 10,000 per set, twice that with rollover.
pub type Capacity = BTreeMap<String, usize>;

fn parse_ts(s: &str) -> Timestamp {
    s.parse().unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Applies findings to the ledger as of `now`. Deterministic; running it twice on the same findings
/// changes nothing the second time (an offence counts as new only if it was seen after the entry's
/// `last_seen`).
pub fn update_ledger(
    ledger: &Ledger,
    findings: &[Finding],
    policies: &PolicySet,
    capacity: &Capacity,
    now: Timestamp,
) -> Result<Proposal, ProposeError> {
    let mut changes = Vec::new();
    let mut next = Ledger {
        entries: Vec::new(),
        history: ledger
            .history
            .iter()
            .filter(|h| h.expired + FORGET_AFTER > now)
            .cloned()
            .collect(),
        // Kept while in force, dropped once expired (`escalate` proposes new ones).
        asns: ledger.active_asns(now).cloned().collect(),
    };
    let asn_changes = ledger
        .asns
        .iter()
        .filter(|e| e.is_expired(now))
        .map(|e| AsnChange::of(AsnChangeKind::Expire, e))
        .collect();
    for e in &ledger.entries {
        if e.is_expired(now) {
            changes.push(Change::of(ChangeKind::Expire, e));
            remember(&mut next.history, e, now);
        } else {
            next.entries.push(e.clone());
        }
    }
    let mut block_findings: Vec<&Finding> = findings
        .iter()
        .filter(|f| matches!(f.verdict, Verdict::Block { .. }))
        .collect();
    // Networks first, so an address inside a newly added network is recognised as covered.
    block_findings.sort_by_key(|f| (f.key.prefix_len(), f.key, f.policy.clone()));
    for f in block_findings {
        let Verdict::Block { group } = &f.verdict else {
            continue;
        };
        let policy = policies
            .policies
            .iter()
            .find(|p| p.name == f.policy)
            .expect("findings come from these policies");
        let PolicyAction::Block(action) = &policy.action else {
            continue;
        };
        if !capacity.contains_key(group) {
            return Err(ProposeError::UnknownGroup {
                policy: f.policy.clone(),
                group: group.clone(),
            });
        }
        let first_seen = parse_ts(&f.evidence.first_seen);
        let last_seen = parse_ts(&f.evidence.last_seen);
        if let Some(e) = next
            .entries
            .iter_mut()
            .find(|e| &e.group == group && e.cidr.contains(&f.key))
        {
            if e.cidr == f.key && e.policy != MANUAL {
                if last_seen > e.last_seen {
                    e.strikes += 1;
                    let until =
                        crate::util::time::add_saturating(now, action.block_duration(e.strikes));
                    e.expires = Some(e.expires.map_or(until, |old| old.max(until)));
                    e.last_seen = last_seen;
                    e.reason = f.reason();
                    changes.push(Change::of(ChangeKind::Extend, e));
                }
            } else {
                changes.push(Change {
                    kind: ChangeKind::Covered,
                    cidr: f.key,
                    group: group.clone(),
                    policy: f.policy.clone(),
                    strikes: e.strikes,
                    expires: e.expires,
                    reason: format!("already blocked by `{}` ({})", e.cidr, e.policy),
                });
            }
            continue;
        }
        let past = next
            .history
            .iter()
            .position(|h| &h.group == group && h.cidr == f.key);
        let strikes = past.map_or(1, |i| next.history.remove(i).strikes + 1);
        let entry = LedgerEntry {
            cidr: f.key,
            group: group.clone(),
            policy: f.policy.clone(),
            reason: f.reason(),
            first_seen,
            last_seen,
            added: now,
            expires: Some(crate::util::time::add_saturating(
                now,
                action.block_duration(strikes),
            )),
            strikes,
        };
        add_entry(&mut next, &mut changes, entry);
    }
    finish(next, changes, asn_changes, capacity)
}

/// Adds a new entry, folding the address entries of its group inside it (when it is a network).
fn add_entry(next: &mut Ledger, changes: &mut Vec<Change>, entry: LedgerEntry) {
    next.entries.retain(|old| {
        let folded =
            old.group == entry.group && old.cidr != entry.cidr && entry.cidr.contains(&old.cidr);
        if folded {
            changes.push(Change::of(ChangeKind::Merge, old));
        }
        !folded
    });
    changes.push(Change::of(ChangeKind::Add, &entry));
    next.entries.push(entry);
}

/// Checks the capacity and puts the ledger and the changes in their stable order.
fn finish(
    mut next: Ledger,
    mut changes: Vec<Change>,
    mut asn_changes: Vec<AsnChange>,
    capacity: &Capacity,
) -> Result<Proposal, ProposeError> {
    check_capacity(&next, capacity)?;
    next.sort();
    changes.sort_by(|a, b| {
        (&a.kind, &a.group, a.cidr, &a.policy).cmp(&(&b.kind, &b.group, b.cidr, &b.policy))
    });
    asn_changes.sort_by(|a, b| (a.kind, &a.list, a.asn).cmp(&(b.kind, &b.list, b.asn)));
    Ok(Proposal {
        ledger: next,
        changes,
        asn_changes,
    })
}

fn remember(history: &mut Vec<HistoryEntry>, e: &LedgerEntry, now: Timestamp) {
    history.retain(|h| !(h.group == e.group && h.cidr == e.cidr));
    history.push(HistoryEntry {
        cidr: e.cidr,
        group: e.group.clone(),
        policy: e.policy.clone(),
        strikes: e.strikes,
        expired: e.expires.unwrap_or(now),
    });
}

fn check_capacity(ledger: &Ledger, capacity: &Capacity) -> Result<(), ProposeError> {
    let mut counts: BTreeMap<(&str, &'static str), BTreeSet<IpNet>> = BTreeMap::new();
    for e in &ledger.entries {
        let version = if e.cidr.addr().is_ipv4() {
            "IPv4"
        } else {
            "IPv6"
        };
        counts
            .entry((e.group.as_str(), version))
            .or_default()
            .insert(e.cidr);
    }
    for ((group, version), nets) in counts {
        let nets: Vec<IpNet> = nets.into_iter().collect();
        // WAF stores ranges, and adjacent or contained ones are merged before upload.
        let count = cidr::aggregate(&nets).len();
        let cap = capacity.get(group).copied().unwrap_or(MAX_SET_ENTRIES);
        if count > cap {
            return Err(ProposeError::Capacity {
                group: group.to_owned(),
                version,
                count,
                capacity: cap,
            });
        }
    }
    Ok(())
}

/// A `waftune block` request.
pub struct ManualBlock<'a> {
    pub cidr: &'a str,
    pub group: &'a str,
    /// `None` blocks until `waftune unblock`.
    pub duration: Option<SignedDuration>,
    pub reason: &'a str,
    pub force: bool,
}

/// Records a manual block (replacing an entry for the same range and group).
pub fn block(
    ledger: &mut Ledger,
    req: &ManualBlock<'_>,
    allowlist: &[IpNet],
    guardrails: &Guardrails,
    now: Timestamp,
) -> Result<Change, ProposeError> {
    let net = cidr::parse(req.cidr)?;
    // Refused now rather than at plan time, where it would fail every plan until removed.
    if let Some(min_prefix) = guardrails.too_broad(&net) {
        return Err(ProposeError::TooBroad {
            cidr: net,
            min_prefix,
        });
    }
    if !req.force
        && let Some(allowed) = allowlist.iter().find(|a| cidr::overlaps(a, &net))
    {
        return Err(ProposeError::Allowlisted {
            cidr: net,
            allowed: *allowed,
        });
    }
    let strikes = ledger
        .entries
        .iter()
        .find(|e| e.group == req.group && e.cidr == net)
        .map_or(1, |e| e.strikes);
    ledger
        .entries
        .retain(|e| !(e.group == req.group && e.cidr == net));
    let entry = LedgerEntry {
        cidr: net,
        group: req.group.to_owned(),
        policy: MANUAL.to_owned(),
        reason: req.reason.to_owned(),
        first_seen: now,
        last_seen: now,
        added: now,
        expires: req
            .duration
            .map(|d| crate::util::time::add_saturating(now, d)),
        strikes,
    };
    let change = Change::of(ChangeKind::Add, &entry);
    ledger.entries.push(entry);
    ledger.sort();
    Ok(change)
}

/// Removes a range from the ledger (from every group, or one).
pub fn unblock(
    ledger: &mut Ledger,
    cidr_text: &str,
    group: Option<&str>,
) -> Result<Vec<Change>, ProposeError> {
    let net = cidr::parse(cidr_text)?;
    let (gone, kept): (Vec<LedgerEntry>, Vec<LedgerEntry>) = ledger
        .entries
        .drain(..)
        .partition(|e| e.cidr == net && group.is_none_or(|g| e.group == g));
    ledger.entries = kept;
    if gone.is_empty() {
        let hint = ledger
            .entries
            .iter()
            .find(|e| e.cidr.contains(&net))
            .map(|e| format!("; it is covered by `{}` in group `{}`", e.cidr, e.group))
            .unwrap_or_default();
        return Err(ProposeError::NotInLedger { cidr: net, hint });
    }
    Ok(gone
        .iter()
        .map(|e| Change::of(ChangeKind::Expire, e))
        .collect())
}

/// The findings of a run and what they did to the ledger, for the summary and the PR report.
#[derive(Debug, Clone, Serialize)]
pub struct ProposeReport {
    pub now: Timestamp,
    pub records: u64,
    pub time_span: Option<(String, String)>,
    pub findings: Vec<Finding>,
    pub changes: Vec<Change>,
    /// Left out of the JSON when empty, so that runs without ASN rules read as before.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub asn_changes: Vec<AsnChange>,
    /// The findings grouped for a reviewer (not in the JSON, whose schema lists the findings).
    #[serde(skip)]
    pub campaigns: Vec<Campaign>,
}

impl ProposeReport {
    pub fn new(
        traffic: &Traffic,
        findings: Vec<Finding>,
        changes: Vec<Change>,
        asn_changes: Vec<AsnChange>,
        now: Timestamp,
    ) -> Self {
        ProposeReport {
            now,
            records: traffic.records,
            time_span: traffic
                .first_ms
                .zip(traffic.last_ms)
                .map(|(a, b)| (iso_ms(a), iso_ms(b))),
            campaigns: campaign::group(&findings),
            findings,
            changes,
            asn_changes,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::scan::{ScanOptions, scan_bytes};

    const POLICIES: &str = r#"
[[policy]]
name = "probe"
description = "env probes"
key = "ip"
aggregate = { min_offenders = 3 }
[policy.match]
path = { prefix = ["/.env"] }
[policy.thresholds]
requests = 3
[policy.action]
type = "block"
group = "blocklist"
duration = "1d"
escalation = { factor = 2, max = "5d" }

[[policy]]
name = "busy"
description = "report busy clients"
key = "ip"
[policy.thresholds]
requests = 50
[policy.action]
type = "report"
note = "just watching"

[[allow]]
cidr = "192.0.2.128/25"
comment = "office"
"#;

    fn policies() -> PolicySet {
        policy_set(POLICIES)
    }

    fn policy_set(text: &str) -> PolicySet {
        crate::policy::parse_str(text, Path::new("p.toml"), None)
            .unwrap()
            .policies
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// `n` requests to `uri` from `ip`, one a second from `start`.
    fn lines(ip: &str, uri: &str, n: usize, start: &str) -> String {
        let t0 = ts(start).as_millisecond();
        (0..n)
            .map(|i| {
                format!(
                    r#"{{"timestamp":{},"action":"ALLOW","httpRequest":{{"clientIp":"{ip}","country":"US","uri":"{uri}"}}}}"#,
                    t0 + i as i64 * 1000
                ) + "\n"
            })
            .collect()
    }

    fn traffic(text: &str, set: &PolicySet) -> Traffic {
        scan_bytes(
            "t",
            text.as_bytes(),
            &ScanOptions::default().with_policies(set.policies.clone()),
        )
    }

    fn capacity() -> Capacity {
        [("blocklist".to_owned(), 10_000)].into()
    }

    #[test]
    fn findings_block_report_and_suppress() {
        let set = policies();
        let text = lines("198.51.100.7", "/.env", 3, "2026-11-20T00:00:00Z")
            + &lines("198.51.100.8", "/.env", 2, "2026-11-20T00:00:00Z")
            + &lines("192.0.2.200", "/.env", 5, "2026-11-20T00:00:00Z")
            + &lines("203.0.113.9", "/", 60, "2026-11-20T00:00:00Z");
        let now = ts("2026-11-20T01:00:00Z");
        let f = evaluate(&set, &traffic(&text, &set), now);
        let summary: Vec<(String, String, String)> = f
            .iter()
            .map(|f| {
                (
                    f.policy.clone(),
                    f.key.to_string(),
                    format!("{:?}", f.verdict)
                        .split(' ')
                        .next()
                        .unwrap()
                        .to_owned(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("busy".into(), "203.0.113.9/32".into(), "Report".into()),
                ("probe".into(), "192.0.2.200/32".into(), "Suppressed".into()),
                ("probe".into(), "198.51.100.7/32".into(), "Block".into()),
            ]
        );
        assert_eq!(f[2].fired, ["requests 3 >= 3"]);
        assert_eq!(&*f[2].evidence.top_uris[0].value, "/.env");
        assert!(matches!(&f[1].verdict, Verdict::Suppressed { by } if by.contains("office")));
    }

    #[test]
    fn aggregates_a_network_with_enough_offenders() {
        let set = policies();
        let text = ["203.0.113.1", "203.0.113.2", "203.0.113.3", "198.51.100.1"]
            .iter()
            .map(|ip| lines(ip, "/.env.bak", 4, "2026-11-20T00:00:00Z"))
            .collect::<String>();
        let f = evaluate(&set, &traffic(&text, &set), ts("2026-11-20T01:00:00Z"));
        let keys: Vec<String> = f.iter().map(|f| f.key.to_string()).collect();
        assert_eq!(keys, ["198.51.100.1/32", "203.0.113.0/24"]);
        assert_eq!(f[1].members.len(), 3);
        assert!(f[1].reason().contains("3 offending addresses"));
    }

    /// `n` login POSTs from `ip` with user agent `ua`, one every `gap` seconds from `start`.
    fn logins(ip: &str, ua: &str, n: usize, gap: i64, start: &str) -> String {
        let t0 = ts(start).as_millisecond();
        (0..n)
            .map(|i| {
                format!(
                    r#"{{"timestamp":{},"action":"ALLOW","httpRequest":{{"clientIp":"{ip}","uri":"/login","httpMethod":"POST","headers":[{{"name":"User-Agent","value":"{ua}"}}]}}}}"#,
                    t0 + i as i64 * gap * 1000
                ) + "\n"
            })
            .collect()
    }

    #[test]
    fn a_campaign_proposes_every_member_of_a_group_that_meets_the_thresholds() {
        let set = policy_set(
            r#"
[[policy]]
name = "stuffing-campaign"
description = "d"
key = "campaign"
match = { method = "POST" }
members = { requests = 3 }
thresholds = { addresses = 3, requests = 12 }
action = { type = "block", group = "blocklist", duration = "1d" }
"#,
        );
        let start = "2026-11-20T00:00:00Z";
        // Three thin addresses of one pool (4 attempts each), one person who mistyped twice
        // with the same browser, and two addresses of another pool: too few for a campaign.
        let text = logins("203.0.113.1", "Pool/1.0", 4, 60, start)
            + &logins("198.51.100.2", "Pool/1.0", 4, 60, start)
            + &logins("192.0.2.3", "Pool/1.0", 4, 60, start)
            + &logins("198.51.100.9", "Pool/1.0", 2, 60, start)
            + &logins("203.0.113.50", "Other/2.0", 9, 60, start)
            + &logins("203.0.113.51", "Other/2.0", 9, 60, start);
        let f = evaluate(&set, &traffic(&text, &set), ts("2026-11-20T01:00:00Z"));
        let keys: Vec<String> = f.iter().map(|f| f.key.to_string()).collect();
        assert_eq!(keys, ["192.0.2.3/32", "198.51.100.2/32", "203.0.113.1/32"]);
        assert_eq!(
            f[0].fired,
            [
                "campaign of 3 addresses with user agent `Pool/1.0`, 12 requests together",
                "requests 12 >= 12",
                "addresses 3 >= 3",
                "member: requests 4 >= 3",
            ]
        );
        assert!(f.iter().all(|f| matches!(f.verdict, Verdict::Block { .. })));
        assert!(
            f[0].reason()
                .starts_with("stuffing-campaign: campaign of 3 addresses")
        );
    }

    #[test]
    fn relative_limits_and_sustained_activity_read_the_policy_keys() {
        let set = policy_set(
            r#"
[[policy]]
name = "many-logins"
description = "d"
match = { method = "POST" }
thresholds = { requests = { percentile = 50, factor = 3, min = 2 } }
action = { type = "report" }

[[policy]]
name = "all-day"
description = "d"
match = { method = "POST" }
thresholds = { active_hours = 3, active_minutes = 4 }
action = { type = "report" }
"#,
        );
        let start = "2026-11-20T00:00:00Z";
        // Four people with one or two attempts, one address with 7 spread over three hours.
        let text = logins("192.0.2.1", "B", 1, 60, start)
            + &logins("192.0.2.2", "B", 2, 60, start)
            + &logins("192.0.2.3", "B", 2, 60, start)
            + &logins("192.0.2.4", "B", 1, 60, start)
            + &logins("203.0.113.7", "B", 7, 1500, start);
        let f = evaluate(&set, &traffic(&text, &set), ts("2026-11-20T04:00:00Z"));
        let fired: Vec<(&str, String)> = f
            .iter()
            .map(|f| (f.policy.as_str(), f.fired.join("; ")))
            .collect();
        assert_eq!(
            fired,
            [
                (
                    "all-day",
                    "active minutes 7 >= 4; active hours 3 >= 3".to_owned()
                ),
                (
                    "many-logins",
                    "requests 7 >= 6 (3 x p50 2 of 5 addresses, min 2)".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn ipv4_mapped_clients_are_their_ipv4_addresses() {
        let set = policies();
        // Mapped offenders aggregate into their IPv4 /24 (not `::/64`), merged with the plain
        // spelling of the same address, and a mapped allowlisted address stays suppressed.
        let text = ["::ffff:203.0.113.1", "203.0.113.1"]
            .iter()
            .map(|ip| lines(ip, "/.env.bak", 2, "2026-11-20T00:00:00Z"))
            .chain([
                lines("::ffff:203.0.113.2", "/.env", 3, "2026-11-20T00:00:00Z"),
                lines("::ffff:203.0.113.3", "/.env", 4, "2026-11-20T00:00:00Z"),
                lines("::ffff:192.0.2.200", "/.env", 5, "2026-11-20T00:00:00Z"),
            ])
            .collect::<String>();
        let f = evaluate(&set, &traffic(&text, &set), ts("2026-11-20T01:00:00Z"));
        let keys: Vec<(String, bool)> = f
            .iter()
            .map(|f| {
                (
                    f.key.to_string(),
                    matches!(f.verdict, Verdict::Block { .. }),
                )
            })
            .collect();
        assert_eq!(
            keys,
            [
                ("192.0.2.200/32".to_owned(), false),
                ("203.0.113.0/24".to_owned(), true)
            ]
        );
        let members: Vec<String> = f[1].members.iter().map(ToString::to_string).collect();
        assert_eq!(
            members,
            ["203.0.113.1/32", "203.0.113.2/32", "203.0.113.3/32"]
        );
    }

    #[test]
    fn ledger_adds_then_is_idempotent_then_extends_with_escalation() {
        let set = policies();
        let day1 = lines("198.51.100.7", "/.env", 5, "2026-11-20T00:00:00Z");
        let now1 = ts("2026-11-20T01:00:00Z");
        let f1 = evaluate(&set, &traffic(&day1, &set), now1);
        let p1 = update_ledger(&Ledger::default(), &f1, &set, &capacity(), now1).unwrap();
        assert_eq!(p1.changes.len(), 1);
        assert_eq!(p1.changes[0].kind, ChangeKind::Add);
        let e = &p1.ledger.entries[0];
        assert_eq!(
            (e.strikes, e.expires),
            (1, Some(ts("2026-11-21T01:00:00Z")))
        );
        assert_eq!(e.first_seen, ts("2026-11-20T00:00:00Z"));
        assert_eq!(e.last_seen, ts("2026-11-20T00:00:04Z"));

        // The same logs again: nothing new happened.
        let again = update_ledger(&p1.ledger, &f1, &set, &capacity(), now1).unwrap();
        assert!(again.changes.is_empty());
        assert_eq!(again.ledger, p1.ledger);

        // Still probing the next day while blocked: strike 2, two days from now.
        let day2 = lines("198.51.100.7", "/.env", 5, "2026-11-20T12:00:00Z");
        let now2 = ts("2026-11-20T13:00:00Z");
        let f2 = evaluate(&set, &traffic(&day2, &set), now2);
        let p2 = update_ledger(&p1.ledger, &f2, &set, &capacity(), now2).unwrap();
        assert_eq!(p2.changes[0].kind, ChangeKind::Extend);
        let e = &p2.ledger.entries[0];
        assert_eq!(
            (e.strikes, e.expires),
            (2, Some(ts("2026-11-22T13:00:00Z")))
        );
    }

    #[test]
    fn expired_asn_entries_are_removed_with_a_change() {
        let asn = |n: u32, expires: Option<&str>| crate::ledger::AsnEntry {
            asn: crate::model::asn::Asn::new(n).unwrap(),
            list: "hosting".into(),
            policy: "manual".into(),
            reason: "r".into(),
            added: ts("2026-11-01T00:00:00Z"),
            expires: expires.map(ts),
        };
        let ledger = Ledger {
            asns: vec![
                asn(64496, Some("2026-11-10T00:00:00Z")),
                asn(64497, Some("2026-12-10T00:00:00Z")),
                asn(64498, None),
            ],
            ..Ledger::default()
        };
        let now = ts("2026-11-20T00:00:00Z");
        let p = update_ledger(&ledger, &[], &policies(), &capacity(), now).unwrap();
        let kept: Vec<u32> = p.ledger.asns.iter().map(|e| e.asn.number()).collect();
        assert_eq!(kept, [64497, 64498]);
        assert_eq!(
            p.asn_changes,
            [AsnChange::of(AsnChangeKind::Expire, &ledger.asns[0])]
        );
        assert!(p.changes.is_empty());
    }

    #[test]
    fn expired_blocks_are_removed_and_remembered_for_escalation() {
        let set = policies();
        let day1 = lines("198.51.100.7", "/.env", 5, "2026-11-20T00:00:00Z");
        let now1 = ts("2026-11-20T01:00:00Z");
        let p1 = update_ledger(
            &Ledger::default(),
            &evaluate(&set, &traffic(&day1, &set), now1),
            &set,
            &capacity(),
            now1,
        )
        .unwrap();
        let later = ts("2026-11-25T00:00:00Z");
        let p2 = update_ledger(&p1.ledger, &[], &set, &capacity(), later).unwrap();
        assert!(p2.ledger.entries.is_empty());
        assert_eq!(p2.changes[0].kind, ChangeKind::Expire);
        assert_eq!(p2.ledger.history.len(), 1);
        // It comes back: strike 2 (two days), and the memory is used up.
        let back = lines("198.51.100.7", "/.env", 5, "2026-11-26T00:00:00Z");
        let now3 = ts("2026-11-26T01:00:00Z");
        let p3 = update_ledger(
            &p2.ledger,
            &evaluate(&set, &traffic(&back, &set), now3),
            &set,
            &capacity(),
            now3,
        )
        .unwrap();
        let e = &p3.ledger.entries[0];
        assert_eq!(
            (e.strikes, e.expires),
            (2, Some(ts("2026-11-28T01:00:00Z")))
        );
        assert!(p3.ledger.history.is_empty());
        // Memory fades after FORGET_AFTER.
        let forgotten =
            update_ledger(&p2.ledger, &[], &set, &capacity(), later + FORGET_AFTER).unwrap();
        assert!(forgotten.ledger.history.is_empty());
    }

    #[test]
    fn capacity_is_refused_not_truncated() {
        let set = policies();
        let text = (1..=4)
            .map(|i| lines(&format!("198.51.{i}.7"), "/.env", 3, "2026-11-20T00:00:00Z"))
            .collect::<String>();
        let now = ts("2026-11-20T01:00:00Z");
        let f = evaluate(&set, &traffic(&text, &set), now);
        let small: Capacity = [("blocklist".to_owned(), 3)].into();
        let err = update_ledger(&Ledger::default(), &f, &set, &small, now).unwrap_err();
        assert_eq!(
            err.to_string(),
            "group `blocklist` would hold 4 IPv4 entries, more than its sets take (3); nothing was \
             written. Raise thresholds, use `aggregate` in the policy, or set `rollover = true` for \
             the group in waftune.toml"
        );
        let unknown: Capacity = [("other".to_owned(), 3)].into();
        let err = update_ledger(&Ledger::default(), &f, &set, &unknown, now).unwrap_err();
        assert_eq!(
            err.to_string(),
            "policy `probe` blocks into group `blocklist`, which waftune.toml does not define"
        );
    }

    #[test]
    fn manual_block_and_unblock() {
        let now = ts("2026-11-20T00:00:00Z");
        let mut ledger = Ledger::default();
        let allow: Vec<IpNet> = vec!["192.0.2.0/24".parse().unwrap()];
        let req = |cidr, force| ManualBlock {
            cidr,
            group: "blocklist",
            duration: Some(SignedDuration::from_hours(24 * 30)),
            reason: "abuse report #12",
            force,
        };
        let rails = Guardrails::default();
        let err = block(&mut ledger, &req("192.0.2.9", false), &allow, &rails, now).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`192.0.2.9/32` overlaps allowlisted `192.0.2.0/24`; pass `--force` to block it anyway"
        );
        let err = block(
            &mut ledger,
            &req("198.51.100.7/24", false),
            &allow,
            &rails,
            now,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`198.51.100.7/24` is not a network address; did you mean `198.51.100.0/24`?"
        );
        let c = block(
            &mut ledger,
            &req("198.51.100.0/24", false),
            &allow,
            &rails,
            now,
        )
        .unwrap();
        assert_eq!(c.expires, Some(ts("2026-12-20T00:00:00Z")));
        block(&mut ledger, &req("192.0.2.9", true), &allow, &rails, now).unwrap();
        assert_eq!(ledger.entries.len(), 2);
        assert_eq!(ledger.entries[1].policy, MANUAL);

        // Broad ranges: the plan's rule and `allow_broad`, even with `--force`.
        for (broad, min) in [("10.0.0.0/8", 16), ("0.0.0.0/1", 16), ("2001:db8::/31", 32)] {
            let err = block(&mut ledger, &req(broad, true), &allow, &rails, now).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "`{broad}` is broader than /{min}, which every plan refuses; list it in \
                     guardrails.allow_broad in waftune.toml if intended"
                )
            );
        }
        let allowed = Guardrails {
            allow_broad: vec!["10.0.0.0/8".parse().unwrap()],
            ..Guardrails::default()
        };
        block(
            &mut ledger,
            &req("10.0.0.0/8", false),
            &allow,
            &allowed,
            now,
        )
        .unwrap();
        unblock(&mut ledger, "10.0.0.0/8", None).unwrap();
        assert_eq!(ledger.entries.len(), 2);

        let err = unblock(&mut ledger, "198.51.100.7", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`198.51.100.7/32` is not in the ledger; it is covered by `198.51.100.0/24` in group `blocklist`"
        );
        let gone = unblock(&mut ledger, "198.51.100.0/24", Some("blocklist")).unwrap();
        assert_eq!(gone.len(), 1);
        assert_eq!(ledger.entries.len(), 1);
    }

    #[test]
    fn a_policy_on_another_header_switches_the_scan_to_full_records() {
        let set = policy_set(
            r#"
[[policy]]
name = "no-key"
description = "API calls without a key"
key = "ip"
[policy.match]
path = { prefix = ["/api/"] }
header = { name = "x-api-key", present = false }
[policy.thresholds]
requests = 2
[policy.action]
type = "report"
"#,
        );
        let options = ScanOptions::default().with_policies(set.policies.clone());
        assert!(options.validate);
        let line = |ip: &str, key: &str| {
            format!(
                r#"{{"timestamp":1,"httpRequest":{{"clientIp":"{ip}","uri":"/api/x","headers":[{{"name":"User-Agent","value":"u"}}{key}]}}}}"#
            ) + "\n"
        };
        let with_key = r#",{"name":"X-Api-Key","value":"k"}"#;
        let text = line("198.51.100.1", "").repeat(2) + &line("198.51.100.2", with_key).repeat(2);
        let t = scan_bytes("t", text.as_bytes(), &options);
        let f = evaluate(&set, &t, ts("2026-11-20T00:00:00Z"));
        let keys: Vec<String> = f.iter().map(|f| f.key.to_string()).collect();
        assert_eq!(keys, ["198.51.100.1/32"]);
    }

    #[test]
    fn manual_entries_are_left_alone_by_policies() {
        let set = policies();
        let now = ts("2026-11-20T01:00:00Z");
        let mut ledger = Ledger::default();
        block(
            &mut ledger,
            &ManualBlock {
                cidr: "198.51.100.0/24",
                group: "blocklist",
                duration: None,
                reason: "known bad hoster",
                force: false,
            },
            &[],
            &Guardrails::default(),
            now,
        )
        .unwrap();
        let text = lines("198.51.100.7", "/.env", 5, "2026-11-20T00:00:00Z");
        let f = evaluate(&set, &traffic(&text, &set), now);
        let p = update_ledger(&ledger, &f, &set, &capacity(), now).unwrap();
        assert_eq!(p.changes[0].kind, ChangeKind::Covered);
        assert_eq!(p.ledger, ledger);
    }
}
