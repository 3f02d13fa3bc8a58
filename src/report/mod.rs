//! The weekly review (`waftune report`) as data: what the traffic was, who sent it, whether the
//! ledger's blocks worked, how the rate rules sit against the traffic, and what the ledger did.
//!
//! Everything here is pure: the scan's [`Traffic`] of the period (and of the previous period, to
//! compare), the ledger, the configuration, the policies and `now` go in; a [`Report`] comes out, which
//! [`crate::render::report_html`], [`crate::render::report_markdown`] and
//! [`crate::render::report_text`] lay out. The sections and verdicts are described in
//! `docs/report.md`; the JSON in `docs/json-schema.md`.

pub mod block;
pub mod origin;
pub mod rates;

use jiff::Timestamp;
use serde::Serialize;

use crate::analyze::iso_ms;
use crate::config::Config;
use crate::ledger::Ledger;
use crate::model::rate::RateError;
use crate::policy::{Condition, Expr, Matcher, Pattern, Policy, PolicySet, TextMatch};
use crate::propose::Finding;
use crate::propose::campaign::{self, Campaign};
use crate::scan::{ActionCounts, ClientKey, ClientStats, Count, GeoSplit, MINUTE_MS, Traffic};

pub use block::{BlockEffect, BlockRow, Verdict};
pub use origin::OriginHealth;
pub use rates::RateRuleReport;

/// Bumped whenever a field is removed or changes meaning; adding fields keeps the version.
pub const SCHEMA_VERSION: u32 = 1;

const HOUR_MS: i64 = 3_600_000;

/// How many clients, prefixes, user agents and ledger entries the lists keep (all are counted).
pub const TOP: usize = 20;

/// The label namespaces of AWS Bot Control's bot categories and bot names.
pub const BOT_CATEGORY: &str = "awswaf:managed:aws:bot-control:bot:category:";
pub const BOT_NAME: &str = "awswaf:managed:aws:bot-control:bot:name:";

/// A half-open span of time, `[start, end)`, in epoch milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Period {
    /// The period of the same length just before this one.
    pub fn previous(&self) -> Period {
        Period {
            start_ms: self.start_ms - (self.end_ms - self.start_ms),
            end_ms: self.start_ms,
        }
    }

    /// The first hour (epoch ms) of the hourly series and how many hours they hold.
    pub fn hours(&self) -> (i64, usize) {
        let first = self.start_ms.div_euclid(HOUR_MS) * HOUR_MS;
        let n = (self.end_ms - first + HOUR_MS - 1).div_euclid(HOUR_MS);
        (first, usize::try_from(n.max(1)).unwrap_or(1))
    }

    fn json(&self) -> PeriodJson {
        PeriodJson {
            since: iso_ms(self.start_ms),
            until: iso_ms(self.end_ms),
            hours: self.hours().1 as u64,
        }
    }
}

/// What the report is built from.
pub struct Inputs<'a> {
    pub traffic: &'a Traffic,
    /// The previous period's traffic, when comparing (scanned without policies).
    pub previous: Option<(&'a Traffic, Period)>,
    pub period: Period,
    pub ledger: &'a Ledger,
    pub config: &'a Config,
    /// The policies whose findings the campaigns section groups (as `propose` would find them).
    pub policies: &'a PolicySet,
    pub now: Timestamp,
    /// The origin's ALB or CloudFront logs of the period, when read beside the WAF logs.
    pub origin: Option<&'a crate::origin::scan::OriginTraffic>,
}

/// The policies the scan must count for a report, in the order [`build`] reads
/// `Traffic::policy_keys`: first `policies` (for the findings), then each managed rule's answers,
/// then each rate rule's scope.
pub fn scan_policies(
    config: &Config,
    home_country: Option<&str>,
    policies: &PolicySet,
) -> Result<Vec<Policy>, RateError> {
    let mut policies = policies.policies.clone();
    policies.extend(answered_policies(config));
    for (_, rule) in rates::rate_rules(config) {
        policies.push(crate::rate::scopes_policy(&rule.scope, home_country)?);
    }
    Ok(policies)
}

/// The (group, name) of every IP-set rule waftune owns, in configuration order.
fn managed_rules(config: &Config) -> impl Iterator<Item = (&str, &str)> {
    config
        .web_acls
        .iter()
        .flat_map(|acl| acl.rules.iter())
        .map(|r| (r.group.as_str(), r.name.as_str()))
}

/// Per managed rule (in configuration order), a policy counting per address the requests it
/// answered. `propose` counts them too, to escalate from the block-effect verdicts.
pub fn answered_policies(config: &Config) -> impl Iterator<Item = Policy> + '_ {
    managed_rules(config).map(|(_, name)| answered_policy(name))
}

/// Counts, per address, the requests a rule of waftune answered: the log's `terminatingRuleId` is
/// the rule's name from waftune.toml.
fn answered_policy(rule: &str) -> Policy {
    let name = TextMatch::new(vec![Pattern::Equals(rule.to_owned())], false, None)
        .expect("an exact name is always a valid pattern");
    crate::rate::per_address_policy(
        format!("answered-by:{rule}"),
        format!("requests rule `{rule}` terminated"),
        Matcher::new(Expr::Cond(Condition::TerminatingRule(name))),
    )
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub generated_at: String,
    pub period: PeriodJson,
    pub previous_period: Option<PeriodJson>,
    pub home_country: Option<String>,
    pub overview: Overview,
    pub who: Who,
    pub campaigns: Campaigns,
    pub block_effect: BlockEffect,
    pub rate_rules: Vec<RateRuleReport>,
    /// Origin health, from ALB or CloudFront access logs read beside the WAF logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<OriginHealth>,
    pub ledger: LedgerSummary,
    /// What this report could not show, and why (for example a series the Athena rollup does not hold).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PeriodJson {
    pub since: String,
    pub until: String,
    pub hours: u64,
}

/// Section 1.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub current: Figures,
    pub previous: Option<Figures>,
    /// RFC 3339 start of each hour of the period.
    pub hours: Vec<String>,
    pub hourly: Hourly,
    /// The previous period's hours, aligned with `hours` (the same offset from the start).
    pub previous_hourly: Option<Hourly>,
}

/// The headline numbers of one period.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Figures {
    pub requests: u64,
    pub distinct_clients: u64,
    pub actions: ActionCounts,
    /// BLOCK / requests (0..=1); `None` without requests.
    pub blocked_share: Option<f64>,
    pub geo: GeoSplit,
    /// Domestic / (domestic + overseas); `None` without a home country or known countries.
    pub domestic_share: Option<f64>,
}

impl Figures {
    fn of(t: &Traffic) -> Figures {
        let known = t.geo.domestic + t.geo.overseas;
        Figures {
            requests: t.records,
            distinct_clients: t.clients.len() as u64,
            actions: t.actions,
            blocked_share: share(t.actions.block, t.records),
            geo: t.geo,
            domestic_share: (t.home_country.is_some() && known > 0)
                .then(|| t.geo.domestic as f64 / known as f64),
        }
    }

    /// `(name, this period, previous period)` for every headline figure, in display order.
    pub fn compare(&self, previous: Option<&Figures>) -> Vec<(&'static str, u64, Option<u64>)> {
        let rows = |f: &Figures| {
            [
                ("requests", f.requests),
                ("distinct clients", f.distinct_clients),
                ("ALLOW", f.actions.allow),
                ("BLOCK", f.actions.block),
                ("CAPTCHA", f.actions.captcha),
                ("CHALLENGE", f.actions.challenge),
                ("domestic", f.geo.domestic),
                ("overseas", f.geo.overseas),
            ]
        };
        let prev = previous.map(rows);
        rows(self)
            .iter()
            .enumerate()
            .map(|(i, &(name, n))| (name, n, prev.map(|p| p[i].1)))
            .collect()
    }
}

/// Relative change from `previous` to `current` (0.25 = +25%); `None` from zero.
pub fn change(current: u64, previous: u64) -> Option<f64> {
    (previous > 0).then(|| (current as f64 - previous as f64) / previous as f64)
}

fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Per-hour series of one period, each as long as [`Overview::hours`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Hourly {
    pub allow: Vec<u64>,
    pub block: Vec<u64>,
    pub captcha: Vec<u64>,
    pub challenge: Vec<u64>,
    pub other: Vec<u64>,
    /// Requests with a COUNT-mode match; `None` when the source does not return it (Athena).
    pub counted: Option<Vec<u64>>,
    pub domestic: Option<Vec<u64>>,
    pub overseas: Option<Vec<u64>>,
    pub unknown: Option<Vec<u64>>,
}

impl Hourly {
    fn of(t: &Traffic, first_hour_ms: i64, n: usize) -> Hourly {
        let slot = |minute: u32| {
            let i = (i64::from(minute) * MINUTE_MS - first_hour_ms).div_euclid(HOUR_MS);
            usize::try_from(i).ok().filter(|&i| i < n)
        };
        let mut h = Hourly {
            allow: vec![0; n],
            block: vec![0; n],
            captcha: vec![0; n],
            challenge: vec![0; n],
            other: vec![0; n],
            ..Hourly::default()
        };
        for (&m, a) in &t.per_minute {
            if let Some(i) = slot(m) {
                h.allow[i] += a.allow;
                h.block[i] += a.block;
                h.captcha[i] += a.captcha;
                h.challenge[i] += a.challenge;
                h.other[i] += a.other;
            }
        }
        if let Some(detail) = &t.per_minute_detail {
            let (mut c, mut d, mut o, mut u) = (vec![0; n], vec![0; n], vec![0; n], vec![0; n]);
            for (&m, x) in detail {
                if let Some(i) = slot(m) {
                    c[i] += x.counted;
                    d[i] += x.geo.domestic;
                    o[i] += x.geo.overseas;
                    u[i] += x.geo.unknown;
                }
            }
            h.counted = Some(c);
            h.domestic = Some(d);
            h.overseas = Some(o);
            h.unknown = Some(u);
        }
        h
    }

    /// All requests per hour.
    pub fn requests(&self) -> Vec<u64> {
        (0..self.allow.len())
            .map(|i| {
                self.allow[i] + self.block[i] + self.captcha[i] + self.challenge[i] + self.other[i]
            })
            .collect()
    }
}

/// Requests per hour of sorted `(epoch minute, requests)` buckets, `n` hours from `first_hour_ms`.
pub fn hourly(minutes: &[(u32, u32)], first_hour_ms: i64, n: usize) -> Vec<u64> {
    let mut out = vec![0; n];
    for &(m, c) in minutes {
        let i = (i64::from(m) * MINUTE_MS - first_hour_ms).div_euclid(HOUR_MS);
        if let Some(slot) = usize::try_from(i).ok().and_then(|i| out.get_mut(i)) {
            *slot += u64::from(c);
        }
    }
    out
}

/// Section 2.
#[derive(Debug, Clone, Serialize)]
pub struct Who {
    pub clients: Vec<TopClient>,
    /// IPv4 /24 prefixes.
    pub prefixes_v4: Vec<TopClient>,
    /// IPv6 /64 prefixes.
    pub prefixes_v6: Vec<TopClient>,
    pub countries: Vec<Count>,
    /// Summed from each client's most used user agents (see `user_agents_exact`).
    pub user_agents: Vec<Count>,
    /// False when some client used more user agents than the scan keeps per client: the counts are
    /// then lower bounds.
    pub user_agents_exact: bool,
    pub bot_categories: Vec<Count>,
    pub bot_names: Vec<Count>,
    /// Terminating rules (`Default_Action` when none matched).
    pub rules: Vec<Count>,
    /// Rules matched in COUNT mode.
    pub count_rules: Vec<Count>,
}

/// A client or prefix in the "who" lists.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopClient {
    pub client: String,
    pub requests: u64,
    pub blocked: u64,
    pub country: String,
    pub user_agent: String,
    pub top_rule: String,
    /// Requests per hour of the period (for a sparkline).
    pub hourly: Vec<u64>,
}

fn first(v: &[Count]) -> String {
    v.first().map_or_else(String::new, |c| c.value.to_string())
}

fn top_client(c: &ClientStats, first_hour_ms: i64, n: usize) -> TopClient {
    TopClient {
        client: c.key.to_string(),
        requests: c.requests,
        blocked: c.actions.block,
        country: first(&c.countries),
        user_agent: first(&c.user_agents),
        top_rule: first(&c.rules),
        hourly: hourly(&c.minutes, first_hour_ms, n),
    }
}

fn labels_under(labels: &[Count], namespace: &str) -> Vec<Count> {
    labels
        .iter()
        .filter_map(|l| {
            l.value.strip_prefix(namespace).map(|rest| Count {
                value: rest.into(),
                count: l.count,
            })
        })
        .collect()
}

/// Every client's user agents summed, most used first, ties by value; and whether that is exact.
fn user_agents(clients: &[ClientStats]) -> (Vec<Count>, bool) {
    let mut sum: hashbrown::HashMap<&str, u64> = hashbrown::HashMap::new();
    let mut exact = true;
    for c in clients {
        exact &= c.distinct_user_agents == c.user_agents.len() as u64;
        for ua in &c.user_agents {
            *sum.entry(&*ua.value).or_default() += ua.count;
        }
    }
    let mut v: Vec<Count> = sum
        .into_iter()
        .map(|(value, count)| Count {
            value: value.into(),
            count,
        })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    v.truncate(TOP);
    (v, exact)
}

fn who(t: &Traffic, first_hour_ms: i64, n: usize) -> Who {
    let top = |v: &mut dyn Iterator<Item = &ClientStats>| -> Vec<TopClient> {
        v.take(TOP)
            .map(|c| top_client(c, first_hour_ms, n))
            .collect()
    };
    let is_v4 = |c: &&ClientStats| matches!(&c.key, ClientKey::Prefix(p) if p.addr().is_ipv4());
    let (user_agents, user_agents_exact) = user_agents(&t.clients);
    Who {
        clients: top(&mut t.clients.iter()),
        prefixes_v4: top(&mut t.prefixes.iter().filter(is_v4)),
        prefixes_v6: top(&mut t.prefixes.iter().filter(|c| !is_v4(c))),
        countries: t.countries.clone(),
        user_agents,
        user_agents_exact,
        bot_categories: labels_under(&t.labels, BOT_CATEGORY),
        bot_names: labels_under(&t.labels, BOT_NAME),
        rules: t.rules.clone(),
        count_rules: t.count_rules.clone(),
    }
}

/// Section 3: the period's findings grouped into campaigns (see `docs/campaigns.md`).
#[derive(Debug, Clone, Serialize)]
pub struct Campaigns {
    /// Findings of the policies over the period, each in exactly one campaign.
    pub findings: u64,
    pub campaigns: Vec<CampaignReport>,
}

/// One campaign: its size, time span, tallies and every member (in `members`), with the full
/// evidence of its top members.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignReport {
    #[serde(flatten)]
    pub campaign: Campaign,
    /// Networks (/24 or /64) holding more than one member: where a campaign concentrates.
    pub shared_networks: Vec<Count>,
    /// The findings of its first [`campaign::TOP_MEMBERS`] members, most requests first.
    pub top_members: Vec<Finding>,
}

fn campaigns(findings: &[Finding]) -> Campaigns {
    Campaigns {
        findings: findings.len() as u64,
        campaigns: campaign::group(findings)
            .into_iter()
            .map(|c| CampaignReport {
                shared_networks: c.networks.iter().filter(|n| n.count > 1).cloned().collect(),
                top_members: c
                    .top_members()
                    .iter()
                    .map(|&i| findings[i].clone())
                    .collect(),
                campaign: c,
            })
            .collect(),
    }
}

/// Section 6.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerSummary {
    /// Entries in force at the end of the period.
    pub in_force: u64,
    /// Entries in force at the end of the period, per policy and group.
    pub by_policy: Vec<PolicyCount>,
    /// Entries whose `added` falls in the period.
    pub added: Vec<EntryRef>,
    /// Entries added before the period whose offender was seen again during it (`propose` extends
    /// a block only then, and records it as `last_seen`).
    pub extended: Vec<EntryRef>,
    /// Entries and history whose block ran out during the period.
    pub expired: Vec<EntryRef>,
    /// Entries whose block runs out in the 7 days after `now`.
    pub expiring_soon: Vec<EntryRef>,
    /// ASN entries in force at the end of the period or expired during it, by list and ASN (left
    /// out of the JSON when there are none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub asns: Vec<AsnRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AsnRef {
    pub asn: String,
    pub list: String,
    pub policy: String,
    pub added: String,
    pub expires: Option<String>,
    /// Whether its block ran out during the period.
    pub expired: bool,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyCount {
    pub policy: String,
    pub group: String,
    pub entries: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryRef {
    pub cidr: String,
    pub group: String,
    pub policy: String,
    pub strikes: u32,
    pub added: Option<String>,
    pub expires: Option<String>,
}

fn ledger_summary(ledger: &Ledger, period: Period, now: Timestamp) -> LedgerSummary {
    let ms = |t: Timestamp| t.as_millisecond();
    let inside = |t: i64| t >= period.start_ms && t < period.end_ms;
    // `propose` adds entries at its `now`, the end of the period it read: they belong to it.
    let added_inside = |t: i64| t >= period.start_ms && t <= period.end_ms;
    let entry_ref = |e: &crate::ledger::LedgerEntry| EntryRef {
        cidr: e.cidr.to_string(),
        group: e.group.clone(),
        policy: e.policy.clone(),
        strikes: e.strikes,
        added: Some(e.added.to_string()),
        expires: e.expires.map(|t| t.to_string()),
    };
    let end = Timestamp::from_millisecond(period.end_ms).unwrap_or(now);
    let mut by_policy: std::collections::BTreeMap<(&str, &str), u64> = Default::default();
    for e in ledger
        .entries
        .iter()
        .filter(|e| ms(e.added) <= period.end_ms && !e.is_expired(end))
    {
        *by_policy.entry((&e.policy, &e.group)).or_default() += 1;
    }
    let mut by_policy: Vec<PolicyCount> = by_policy
        .into_iter()
        .map(|((policy, group), entries)| PolicyCount {
            policy: policy.to_owned(),
            group: group.to_owned(),
            entries,
        })
        .collect();
    by_policy.sort_by_key(|p| std::cmp::Reverse(p.entries));
    let soon = now + jiff::SignedDuration::from_hours(24 * 7);
    let mut expired: Vec<EntryRef> = ledger
        .entries
        .iter()
        .filter(|e| e.expires.is_some_and(|x| inside(ms(x))))
        .map(entry_ref)
        .collect();
    expired.extend(
        ledger
            .history
            .iter()
            .filter(|h| inside(ms(h.expired)))
            .map(|h| EntryRef {
                cidr: h.cidr.to_string(),
                group: h.group.clone(),
                policy: h.policy.clone(),
                strikes: h.strikes,
                added: None,
                expires: Some(h.expired.to_string()),
            }),
    );
    let asns = ledger
        .asns
        .iter()
        .filter(|e| {
            ms(e.added) <= period.end_ms && e.expires.is_none_or(|x| ms(x) >= period.start_ms)
        })
        .map(|e| AsnRef {
            asn: e.asn.to_string(),
            list: e.list.clone(),
            policy: e.policy.clone(),
            added: e.added.to_string(),
            expires: e.expires.map(|t| t.to_string()),
            expired: e.is_expired(end),
            reason: e.reason.clone(),
        })
        .collect();
    LedgerSummary {
        asns,
        in_force: by_policy.iter().map(|p| p.entries).sum(),
        by_policy,
        added: ledger
            .entries
            .iter()
            .filter(|e| added_inside(ms(e.added)))
            .map(entry_ref)
            .collect(),
        extended: ledger
            .entries
            .iter()
            .filter(|e| ms(e.added) < period.start_ms && inside(ms(e.last_seen)))
            .map(entry_ref)
            .collect(),
        expired,
        expiring_soon: ledger
            .entries
            .iter()
            .filter(|e| e.expires.is_some_and(|x| x >= now && x < soon))
            .map(entry_ref)
            .collect(),
    }
}

/// The block-effect verdicts on `ledger`'s entries over `t`, given the keys the scan counted for
/// [`answered_policies`] (in their order): for the report, and for `propose` to escalate.
pub fn block_effect(
    ledger: &Ledger,
    config: &Config,
    t: &Traffic,
    answered: &[Vec<ClientStats>],
    period: Period,
) -> BlockEffect {
    let answered: Vec<(&str, &[ClientStats])> = managed_rules(config)
        .zip(answered)
        .map(|((group, _), keys)| (group, keys.as_slice()))
        .collect();
    block::block_effect(
        ledger,
        &block::Observed {
            traffic: t,
            answered: &answered,
            period,
        },
    )
}

/// Builds the report. `inputs.traffic.policy_keys` must hold the counts of [`scan_policies`].
pub fn build(inputs: &Inputs<'_>) -> Report {
    let t = inputs.traffic;
    let (first_hour, n) = inputs.period.hours();
    let managed: Vec<(&str, &str)> = managed_rules(inputs.config).collect();
    // Findings read the first keys (one list per policy); the rest are the managed rules' answers
    // and the rate rules' scopes.
    let findings = crate::propose::evaluate_with(inputs.policies, t, inputs.origin, inputs.now);
    let own = t
        .policy_keys
        .get(inputs.policies.policies.len()..)
        .unwrap_or_default();
    let (answered, scopes) = own.split_at(managed.len().min(own.len()));
    let mut notes = Vec::new();
    if t.per_minute_detail.is_none() {
        notes.push(
            "COUNT-mode matches and domestic/overseas per hour: the Athena rollup does not hold them (hours were read from it); the totals are shown"
                .to_owned(),
        );
    }
    let block_effect = block_effect(inputs.ledger, inputs.config, t, answered, inputs.period);
    let origin = inputs
        .origin
        .map(|o| origin::health(o, t, inputs.period, &block_effect.entries, TOP));
    if inputs.origin.is_none()
        && let Some(note) = crate::propose::origin_missing_note(inputs.policies)
    {
        notes.push(format!("campaigns: {note}"));
    }
    let previous = inputs.previous.map(|(p, period)| {
        (
            Figures::of(p),
            Hourly::of(p, period.hours().0, n),
            period.json(),
        )
    });
    Report {
        schema_version: SCHEMA_VERSION,
        generated_at: inputs.now.to_string(),
        period: inputs.period.json(),
        previous_period: previous.as_ref().map(|p| p.2.clone()),
        home_country: t.home_country.clone(),
        overview: Overview {
            current: Figures::of(t),
            previous: previous.as_ref().map(|p| p.0),
            hours: (0..n as i64)
                .map(|i| iso_ms(first_hour + i * HOUR_MS))
                .collect(),
            hourly: Hourly::of(t, first_hour, n),
            previous_hourly: previous.map(|p| p.1),
        },
        who: who(t, first_hour, n),
        campaigns: campaigns(&findings),
        block_effect,
        rate_rules: rates::rate_reports(inputs.config, scopes, t),
        origin,
        ledger: ledger_summary(inputs.ledger, inputs.period, inputs.now),
        notes,
    }
}

#[cfg(test)]
mod tests;
