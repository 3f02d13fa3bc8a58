//! Rate-based rule tuning: recommend a limit from the site's own traffic, and backtest a limit on it.
//!
//! Everything here is pure: it works on the per-client minute buckets the scan already counted. A
//! [`Scope`] (overseas only, a path prefix, a method, a label) becomes a [`Policy`] whose matcher the
//! scan evaluates, so the scope-down of a rule is counted by the same engine as detection policies.
//! The method and the approximation of WAF's evaluation are described in `docs/rate.md`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::config::{Config, RateLimit, RateRuleConfig, RuleActionConfig};
use crate::model::rate::{Method, RateError, Scope, Window};
use crate::model::waf::{MIN_RATE_LIMIT, VERIFIED_CRAWLER_LABEL};
use crate::plan::RecommendedLimit;
use crate::policy::{
    Allowlist, Condition, CountryMatch, Expr, KeyKind, LabelMatch, LabelPattern, Matcher, Pattern,
    Policy, PolicyAction, ReportAction, TextMatch, Thresholds,
};
use crate::scan::{ClientKey, ClientStats};
pub use crate::util::stats::percentile;
use crate::util::text;

/// `overseas and path:/login`; `all` for no scope.
pub fn scopes_name(scopes: &[Scope]) -> String {
    if scopes.is_empty() {
        return Scope::All.to_string();
    }
    scopes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" and ")
}

/// A rate rule of the configuration whose limit is recommended from the logs.
pub struct RecommendedRule<'c> {
    pub web_acl: &'c str,
    pub rule: &'c RateRuleConfig,
    pub method: Method,
}

/// The rules of `config` with `limit = "recommended"`, in configuration order.
pub fn recommended_rules(config: &Config) -> Vec<RecommendedRule<'_>> {
    config
        .web_acls
        .iter()
        .flat_map(|acl| {
            acl.rate_rules.iter().filter_map(|rule| match rule.limit {
                RateLimit::Recommended(method) => Some(RecommendedRule {
                    web_acl: &acl.name,
                    rule,
                    method,
                }),
                RateLimit::Fixed(_) => None,
            })
        })
        .collect()
}

/// The limit each rule gets from the clients of its scope (`clients[i]` for `rules[i]`, as the scan
/// counted them with [`scopes_policy`]), with a line of evidence for the plan.
pub fn resolve_recommended(
    rules: &[RecommendedRule<'_>],
    clients: &[Vec<ClientStats>],
    span: &str,
    home_country: Option<&str>,
) -> BTreeMap<(String, String), RecommendedLimit> {
    rules
        .iter()
        .zip(clients)
        .map(|(r, clients)| {
            let scope = scopes_name(&r.rule.scope);
            let rec = recommend(&scope, clients, r.rule.window, r.method, home_country);
            let class = |c: ClientClass| rec.backtest.by_class[c as usize].clients;
            let evidence = format!(
                "recommended from {span}: {} clients in scope `{scope}`, p{} of {} peaks {} x headroom {} = {}; \
                 would have limited {} clients ({} verified crawlers, {} home country) and {} requests",
                rec.backtest.clients,
                rec.percentile,
                r.rule.window.as_str(),
                percentile(&sorted_peaks(clients, r.rule.window), rec.percentile),
                rec.headroom,
                rec.recommended,
                rec.backtest.limited_clients,
                class(ClientClass::VerifiedCrawler),
                class(ClientClass::Home),
                rec.backtest.limited_requests,
            );
            (
                (r.web_acl.to_owned(), r.rule.name.clone()),
                RecommendedLimit {
                    limit: rec.recommended,
                    evidence,
                },
            )
        })
        .collect()
}

pub fn sorted_peaks(clients: &[ClientStats], window: Window) -> Vec<u64> {
    let mut peaks: Vec<u64> = clients
        .iter()
        .map(|c| c.peak(window.minutes()).requests)
        .collect();
    peaks.sort_unstable();
    peaks
}

/// The policy the scan counts the requests of all `scopes` with, per client address.
pub fn scopes_policy(scopes: &[Scope], home_country: Option<&str>) -> Result<Policy, RateError> {
    let conds = scopes
        .iter()
        .filter_map(|s| condition(s, home_country).transpose())
        .collect::<Result<Vec<_>, _>>()?;
    let name = scopes_name(scopes);
    Ok(per_address_policy(
        format!("rate-scope:{name}"),
        format!("requests in rate scope `{name}`"),
        if conds.is_empty() {
            Matcher::everything()
        } else {
            Matcher::new(Expr::All(conds.into_iter().map(Expr::Cond).collect()))
        },
    ))
}

/// The policy the scan counts a rule's COUNT-mode matches with, per client address.
pub fn count_matches_policy(rule: &str) -> Policy {
    let equals = TextMatch::new(vec![Pattern::Equals(rule.to_owned())], false, None)
        .expect("an exact name is always a valid pattern");
    per_address_policy(
        format!("count-matches:{rule}"),
        format!("requests rule `{rule}` matched in COUNT mode"),
        Matcher::new(Expr::Cond(Condition::CountRule(equals))),
    )
}

/// A policy that only counts matching requests per address (WAF's IP aggregation), for reports.
pub fn per_address_policy(name: String, description: String, matcher: Matcher) -> Policy {
    Policy {
        name,
        description,
        file: PathBuf::new(),
        matcher,
        key: KeyKind::Ip,
        thresholds: Thresholds {
            mode: Default::default(),
            list: Vec::new(),
        },
        campaign: None,
        action: PolicyAction::Report(ReportAction::default()),
        aggregate: None,
        allowlist: Allowlist::default(),
    }
}

/// The match condition of a scope; `None` for every request.
fn condition(scope: &Scope, home_country: Option<&str>) -> Result<Option<Condition>, RateError> {
    Ok(match scope {
        Scope::All => None,
        // `-` (unknown) is listed so that `not_in` does not count it as overseas.
        Scope::Overseas => Some(Condition::Country(CountryMatch {
            countries: vec![
                home_country
                    .ok_or(RateError::OverseasWithoutHome)?
                    .to_ascii_uppercase(),
                "-".into(),
            ],
            negate: true,
        })),
        Scope::Country { countries, negate } => Some(Condition::Country(CountryMatch {
            countries: countries.clone(),
            negate: *negate,
        })),
        Scope::PathPrefix(p) => Some(Condition::Path(
            TextMatch::new(vec![Pattern::Prefix(p.clone())], false, Some('/')).map_err(|e| {
                RateError::BadPath {
                    prefix: p.clone(),
                    reason: e.to_string(),
                }
            })?,
        )),
        Scope::Method(m) => Some(Condition::Method(vec![m.clone()])),
        Scope::Label(l) => Some(Condition::Labels(LabelMatch {
            any: vec![LabelPattern::parse(l)],
            all: Vec::new(),
            none: Vec::new(),
        })),
        Scope::NotLabel(l) => Some(Condition::Labels(LabelMatch {
            any: Vec::new(),
            all: Vec::new(),
            none: vec![LabelPattern::parse(l)],
        })),
    })
}

/// Who a client is, for judging false positives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientClass {
    /// Carries Bot Control's verified-crawler label: limiting it hurts search indexing.
    VerifiedCrawler,
    /// Mostly from the home country: likely customers.
    Home,
    Overseas,
    /// No country, or no home country given.
    Unknown,
}

impl ClientClass {
    pub const ALL: [ClientClass; 4] = [
        ClientClass::VerifiedCrawler,
        ClientClass::Home,
        ClientClass::Overseas,
        ClientClass::Unknown,
    ];

    /// A client's class by its labels and its most frequent country.
    pub fn of(client: &ClientStats, home_country: Option<&str>) -> ClientClass {
        if client
            .labels
            .iter()
            .any(|l| *l.value == *VERIFIED_CRAWLER_LABEL)
        {
            return ClientClass::VerifiedCrawler;
        }
        match (client.countries.first().map(|c| &*c.value), home_country) {
            (Some(c), Some(home)) if c.eq_ignore_ascii_case(home) => ClientClass::Home,
            (Some(c), Some(_)) if c != "-" && !c.is_empty() => ClientClass::Overseas,
            _ => ClientClass::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ClientClass::VerifiedCrawler => "verified crawler",
            ClientClass::Home => "home country",
            ClientClass::Overseas => "overseas",
            ClientClass::Unknown => "unknown",
        }
    }
}

/// Rounds up to two significant digits (147 -> 150, 1234 -> 1300), so limits read as chosen numbers
/// and small changes in the traffic do not change the rule (which would reset its counters).
pub fn round_up_2sig(n: u64) -> u64 {
    let mut step = 1;
    while n / step >= 100 {
        step *= 10;
    }
    n.div_ceil(step) * step
}

/// Per-client peak percentiles of one scope and window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p95: u64,
    pub p99: u64,
    pub p99_9: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(sorted: &[u64]) -> Percentiles {
        Percentiles {
            p50: percentile(sorted, 50.0),
            p90: percentile(sorted, 90.0),
            p95: percentile(sorted, 95.0),
            p99: percentile(sorted, 99.0),
            p99_9: percentile(sorted, 99.9),
            max: sorted.last().copied().unwrap_or(0),
        }
    }
}

/// The limit `method` derives from ascending per-client peaks:
/// `max(10, round_up_2sig(ceil(percentile peak x headroom)))`.
pub fn limit(method: Method, sorted_peaks: &[u64]) -> u64 {
    let base = percentile(sorted_peaks, method.percentile) as f64 * method.headroom;
    round_up_2sig(base.ceil() as u64).max(MIN_RATE_LIMIT)
}

/// One run of consecutive minutes in which a client was limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Episode {
    /// Epoch minutes, inclusive (RFC 3339 in JSON).
    #[serde(serialize_with = "serialize_minute")]
    pub first_minute: u32,
    #[serde(serialize_with = "serialize_minute")]
    pub last_minute: u32,
    pub limited: u64,
}

/// What a limit would have done to one client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitedClient {
    pub client: String,
    pub class: ClientClass,
    pub country: String,
    pub user_agent: String,
    /// Requests in scope.
    pub requests: u64,
    pub peak: u64,
    pub limited: u64,
    pub limited_minutes: u64,
    pub episodes: Vec<Episode>,
}

/// Replays one client's sorted `(minute, requests)` against `limit` per `window` minutes.
///
/// Requests of a minute are taken as spread evenly, and WAF as evaluating each minute against the
/// requests of the window's earlier minutes plus this one: once that count reaches `limit`, the rest
/// of the minute is limited. Limited requests still count towards the window, as WAF counts every
/// request the rule sees. Returns the limited requests per active minute, in order.
pub fn replay(minutes: &[(u32, u32)], limit: u64, window: u32) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    let mut before = 0u64; // requests of the window's earlier minutes
    let mut lo = 0;
    for (i, &(m, n)) in minutes.iter().enumerate() {
        while lo < i && minutes[lo].0 + window <= m {
            before -= u64::from(minutes[lo].1);
            lo += 1;
        }
        let allowed = limit.saturating_sub(before);
        let limited = u64::from(n).saturating_sub(allowed);
        if limited > 0 {
            out.push((m, limited));
        }
        before += u64::from(n);
    }
    out
}

/// Groups limited minutes into episodes of consecutive minutes.
pub fn episodes(limited: &[(u32, u64)]) -> Vec<Episode> {
    let mut out: Vec<Episode> = Vec::new();
    for &(m, n) in limited {
        match out.last_mut() {
            Some(e) if e.last_minute + 1 == m => {
                e.last_minute = m;
                e.limited += n;
            }
            _ => out.push(Episode {
                first_minute: m,
                last_minute: m,
                limited: n,
            }),
        }
    }
    out
}

/// Clients and limited requests of one class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ClassTotals {
    pub class: ClientClass,
    pub clients: u64,
    pub limited: u64,
}

/// A limit replayed over one scope.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Backtest {
    pub scope: String,
    #[serde(serialize_with = "serialize_window")]
    pub window: Window,
    pub limit: u64,
    /// Clients (addresses) with requests in scope.
    pub clients: u64,
    pub requests: u64,
    pub limited_clients: u64,
    pub limited_requests: u64,
    /// Per [`ClientClass::ALL`], in that order.
    pub by_class: Vec<ClassTotals>,
    /// Every limited client, most limited requests first.
    pub limited: Vec<LimitedClient>,
}

fn serialize_minute<S: serde::Serializer>(m: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&text::minute(*m))
}

fn serialize_window<S: serde::Serializer>(w: &Window, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(w.as_str())
}

fn client_name(key: &ClientKey) -> String {
    match key {
        ClientKey::Prefix(n) if n.prefix_len() == n.max_prefix_len() => n.addr().to_string(),
        k => k.to_string(),
    }
}

/// One client's row: `limited` holds its limited requests per active minute.
fn limited_client(
    c: &ClientStats,
    limited: &[(u32, u64)],
    window_minutes: u32,
    home_country: Option<&str>,
) -> LimitedClient {
    LimitedClient {
        client: client_name(&c.key),
        class: ClientClass::of(c, home_country),
        country: c
            .countries
            .first()
            .map_or("-".into(), |x| x.value.to_string()),
        user_agent: c
            .user_agents
            .first()
            .map_or(String::new(), |x| x.value.to_string()),
        requests: c.requests,
        peak: c.peak(window_minutes).requests,
        limited: limited.iter().map(|m| m.1).sum(),
        limited_minutes: limited.len() as u64,
        episodes: episodes(limited),
    }
}

/// Replays `limit` per `window` over every client of a scope (as counted by the scan).
pub fn backtest(
    scope: &str,
    clients: &[ClientStats],
    limit: u64,
    window: Window,
    home_country: Option<&str>,
) -> Result<Backtest, RateError> {
    if limit < MIN_RATE_LIMIT {
        return Err(RateError::LimitTooLow(limit));
    }
    let w = window.minutes();
    let mut limited: Vec<LimitedClient> = Vec::new();
    let mut by_class = ClientClass::ALL.map(|class| ClassTotals {
        class,
        clients: 0,
        limited: 0,
    });
    for c in clients {
        let minutes = replay(&c.minutes, limit, w);
        if minutes.is_empty() {
            continue;
        }
        let client = limited_client(c, &minutes, w, home_country);
        let t = &mut by_class[client.class as usize];
        t.clients += 1;
        t.limited += client.limited;
        limited.push(client);
    }
    limited.sort_by(|a, b| {
        b.limited
            .cmp(&a.limited)
            .then_with(|| a.client.cmp(&b.client))
    });
    Ok(Backtest {
        scope: scope.to_owned(),
        window,
        limit,
        clients: clients.len() as u64,
        requests: clients.iter().map(|c| c.requests).sum(),
        limited_clients: limited.len() as u64,
        limited_requests: limited.iter().map(|c| c.limited).sum(),
        by_class: by_class.to_vec(),
        limited,
    })
}

/// A recommended limit for one scope and window, with what it would have done.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendation {
    pub percentiles: Percentiles,
    pub percentile: f64,
    pub headroom: f64,
    pub recommended: u64,
    /// The recommended limit replayed over the same traffic.
    pub backtest: Backtest,
}

/// Recommends a limit for one scope from its clients' peaks in `window`.
pub fn recommend(
    scope: &str,
    clients: &[ClientStats],
    window: Window,
    method: Method,
    home_country: Option<&str>,
) -> Recommendation {
    let peaks = sorted_peaks(clients, window);
    let recommended = limit(method, &peaks);
    Recommendation {
        percentiles: Percentiles::of(&peaks),
        percentile: method.percentile,
        headroom: method.headroom,
        recommended,
        backtest: backtest(scope, clients, recommended, window, home_country)
            .expect("recommended limits are at least the minimum"),
    }
}

/// Why `rate promote` does not propose switching a rule to block (yet).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromoteError {
    #[error("rate rule `{0}` is not in the configuration")]
    UnknownRule(String),
    #[error("rate rule `{0}` already blocks; there is nothing to promote")]
    AlreadyBlocks(String),
    #[error(
        "the logs cover {covered}, less than the {required} asked for (`--min-period`): watch rule `{rule}` in count mode longer, or give more logs"
    )]
    TooShort {
        rule: String,
        covered: String,
        required: String,
    },
    #[error(
        "the logs show no COUNT-mode match of `{0}`: is it deployed in count mode under that name? Promote only what the logs have shown working"
    )]
    NoMatches(String),
    #[error(
        "the configuration's `action` of rule `{rule}` is `{found}` in the file, not `\"count\"`; edit it by hand"
    )]
    UnexpectedText { rule: String, found: String },
}

/// The rate rule named `name` and its web ACL.
pub fn find_rate_rule<'c>(
    config: &'c Config,
    name: &str,
) -> Result<(&'c str, &'c RateRuleConfig), PromoteError> {
    config
        .web_acls
        .iter()
        .find_map(|acl| {
            acl.rate_rules
                .iter()
                .find(|r| r.name == name)
                .map(|r| (acl.name.as_str(), r))
        })
        .ok_or_else(|| PromoteError::UnknownRule(name.to_owned()))
}

/// Only a rule that counts can be promoted (checked before reading any logs).
pub fn ensure_counting(rule: &RateRuleConfig) -> Result<(), PromoteError> {
    match rule.action {
        RuleActionConfig::Count => Ok(()),
        RuleActionConfig::Block(_) => Err(PromoteError::AlreadyBlocks(rule.name.clone())),
    }
}

/// What switching a counting rate rule to block would have done over the logs: its COUNT-mode
/// matches are exactly the requests WAF would have blocked. `matched` holds, per client address,
/// the requests in which the rule matched in COUNT mode (the scan's per-policy keys). Refused
/// unless the logs cover `min_period_ms` and show matches.
pub fn promotion(
    rule: &RateRuleConfig,
    matched: &[ClientStats],
    covered_ms: i64,
    min_period_ms: i64,
    home_country: Option<&str>,
) -> Result<Backtest, PromoteError> {
    ensure_counting(rule)?;
    if covered_ms < min_period_ms {
        return Err(PromoteError::TooShort {
            rule: rule.name.clone(),
            covered: text::duration(covered_ms),
            required: text::duration(min_period_ms),
        });
    }
    if matched.is_empty() {
        return Err(PromoteError::NoMatches(rule.name.clone()));
    }
    let w = rule.window.minutes();
    let mut by_class = ClientClass::ALL.map(|class| ClassTotals {
        class,
        clients: 0,
        limited: 0,
    });
    let mut blocked: Vec<LimitedClient> = matched
        .iter()
        .map(|c| {
            // Every matched request would have been blocked.
            let minutes: Vec<(u32, u64)> =
                c.minutes.iter().map(|&(m, n)| (m, u64::from(n))).collect();
            let client = limited_client(c, &minutes, w, home_country);
            by_class[client.class as usize].clients += 1;
            by_class[client.class as usize].limited += client.limited;
            client
        })
        .collect();
    blocked.sort_by(|a, b| {
        b.limited
            .cmp(&a.limited)
            .then_with(|| a.client.cmp(&b.client))
    });
    let requests = blocked.iter().map(|c| c.limited).sum();
    Ok(Backtest {
        scope: format!("COUNT-mode matches of `{}`", rule.name),
        window: rule.window,
        limit: match rule.limit {
            RateLimit::Fixed(n) => n,
            RateLimit::Recommended(_) => 0,
        },
        clients: blocked.len() as u64,
        requests,
        limited_clients: blocked.len() as u64,
        limited_requests: requests,
        by_class: by_class.to_vec(),
        limited: blocked,
    })
}

/// The configuration text with the rule's action switched from `count` to `block`: only the
/// value changes, comments and layout stay.
pub fn promoted_config(text: &str, rule: &RateRuleConfig) -> Result<String, PromoteError> {
    let found = text.get(rule.action_at.clone()).unwrap_or_default();
    let quote = match found {
        "\"count\"" => '"',
        "'count'" => '\'',
        _ => {
            return Err(PromoteError::UnexpectedText {
                rule: rule.name.clone(),
                found: found.to_owned(),
            });
        }
    };
    Ok(format!(
        "{}{quote}block{quote}{}",
        &text[..rule.action_at.start],
        &text[rule.action_at.end..]
    ))
}

#[cfg(test)]
mod tests;
