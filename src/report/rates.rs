//! Section 5, rate rules: for each rate-based rule of waftune.toml, the distribution of per-client
//! peaks in its window and scope, its limit against them, who it limited or would limit, and its
//! headroom. The numbers come from `rate`'s code, as `waftune rate backtest --rule` shows them.

use serde::Serialize;

use super::TOP;
use crate::config::{Config, RateLimit, RateRuleConfig, RuleActionConfig};
use crate::rate::{self, ClassTotals, LimitedClient, Percentiles};
use crate::scan::{ClientStats, Count, Traffic};

/// The rate rules of the configuration with their web ACL, in configuration order.
pub fn rate_rules(config: &Config) -> impl Iterator<Item = (&str, &RateRuleConfig)> {
    config
        .web_acls
        .iter()
        .flat_map(|acl| acl.rate_rules.iter().map(move |r| (acl.name.as_str(), r)))
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateRuleReport {
    pub web_acl: String,
    pub rule: String,
    pub scope: String,
    pub window: String,
    /// `count` or `block`, as configured.
    pub action: String,
    pub limit: u64,
    /// True when `limit = "recommended"`: the limit is recommended from this period's logs.
    pub recommended: bool,
    /// Clients (addresses) with requests in scope, and those requests.
    pub clients: u64,
    pub requests: u64,
    pub percentiles: Percentiles,
    /// Clients by peak, in bins doubling in width (`[from, to)`): a log-scale histogram.
    pub histogram: Vec<Bin>,
    /// The limit over the 95th percentile of peaks: how many times an ordinary busy client's peak
    /// fits under it. `None` when nobody is in scope.
    pub headroom: Option<f64>,
    /// Clients and requests the limit limited (in block mode) or would limit (in count mode),
    /// replayed over the period.
    pub limited_clients: u64,
    pub limited_requests: u64,
    pub by_class: Vec<ClassTotals>,
    /// The most limited clients.
    pub limited: Vec<LimitedClient>,
    /// Requests the logs show the rule terminated (blocked), and matched in COUNT mode.
    pub terminated: u64,
    pub counted: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bin {
    pub from: u64,
    pub to: u64,
    pub clients: u64,
}

/// Clients per peak in bins `[1, 2)`, `[2, 4)`, `[4, 8)`, ... up to the largest peak.
pub fn histogram(sorted_peaks: &[u64]) -> Vec<Bin> {
    let mut bins: Vec<Bin> = Vec::new();
    for &p in sorted_peaks.iter().filter(|&&p| p > 0) {
        let from = 1u64 << p.ilog2();
        match bins.last_mut() {
            Some(b) if b.from == from => b.clients += 1,
            _ => bins.push(Bin {
                from,
                to: from.saturating_mul(2),
                clients: 1,
            }),
        }
    }
    bins
}

fn count_of(list: &[Count], name: &str) -> u64 {
    list.iter()
        .find(|c| &*c.value == name)
        .map_or(0, |c| c.count)
}

/// One report per rate rule; `scopes[i]` holds the clients of rule `i`'s scope as the scan counted
/// them.
pub fn rate_reports(
    config: &Config,
    scopes: &[Vec<ClientStats>],
    t: &Traffic,
) -> Vec<RateRuleReport> {
    let home = t.home_country.as_deref();
    rate_rules(config)
        .zip(scopes)
        .map(|((acl, rule), clients)| {
            let peaks = rate::sorted_peaks(clients, rule.window);
            let limit = match rule.limit {
                RateLimit::Fixed(n) => n,
                RateLimit::Recommended(method) => rate::limit(method, &peaks),
            };
            let scope = rate::scopes_name(&rule.scope);
            let mut b = rate::backtest(&scope, clients, limit, rule.window, home)
                .expect("configured and recommended limits are at least the minimum");
            let percentiles = Percentiles::of(&peaks);
            b.limited.truncate(TOP);
            RateRuleReport {
                web_acl: acl.to_owned(),
                rule: rule.name.clone(),
                scope,
                window: rule.window.as_str().to_owned(),
                action: match rule.action {
                    RuleActionConfig::Count => "count",
                    RuleActionConfig::Block(_) => "block",
                }
                .to_owned(),
                limit,
                recommended: matches!(rule.limit, RateLimit::Recommended(_)),
                clients: b.clients,
                requests: b.requests,
                percentiles,
                histogram: histogram(&peaks),
                headroom: (percentiles.p95 > 0).then(|| limit as f64 / percentiles.p95 as f64),
                limited_clients: b.limited_clients,
                limited_requests: b.limited_requests,
                by_class: b.by_class,
                limited: b.limited,
                terminated: count_of(&t.rules, &rule.name),
                counted: count_of(&t.count_rules, &rule.name),
            }
        })
        .collect()
}
