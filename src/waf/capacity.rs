//! Web ACL capacity (WCU), computed locally.
//!
//! `CheckCapacity` needs the whole rule list and a round trip (and the AWS emulator the tests use does
//! not implement it), so waftune prices the rules it writes itself with WAF's published costs, and
//! takes the rest of the web ACL from `GetWebACL`'s `Capacity` or, where that is missing or clearly
//! not AWS's figure, from the statements it can price (see [`WebAclCapacity`]).

use serde::{Deserialize, Serialize};

use super::{IpSetRule, ManagedRule, WebAcl};
use crate::model::waf::{RateKey, RateStatement, ScopeDown};

/// WAF's limit on the capacity of one web ACL.
pub const MAX_WEB_ACL_WCU: u64 = 5_000;

/// Published WCU costs of the statements waftune reads or writes.
pub mod cost {
    pub const IP_SET_REFERENCE: u64 = 1;
    pub const GEO_MATCH: u64 = 1;
    pub const LABEL_MATCH: u64 = 1;
    pub const ASN_MATCH: u64 = 1;
    pub const SIZE_CONSTRAINT: u64 = 1;
    /// `EXACTLY`, `STARTS_WITH`, `ENDS_WITH`.
    pub const BYTE_MATCH_ANCHORED: u64 = 2;
    /// `CONTAINS`, `CONTAINS_WORD`.
    pub const BYTE_MATCH_CONTAINS: u64 = 10;
    pub const REGEX_MATCH: u64 = 3;
    pub const REGEX_PATTERN_SET: u64 = 25;
    pub const SQLI_LOW: u64 = 20;
    pub const SQLI_HIGH: u64 = 30;
    pub const XSS: u64 = 40;
    /// Each text transformation of a match statement.
    pub const TEXT_TRANSFORMATION: u64 = 10;
    /// A rate-based statement, before its scope-down and custom keys.
    pub const RATE_BASED: u64 = 2;
    /// Each custom aggregation key of a rate-based statement.
    pub const RATE_CUSTOM_KEY: u64 = 30;
}

impl ManagedRule {
    /// The rule's capacity in WCU.
    pub fn wcu(&self) -> u64 {
        match self {
            ManagedRule::IpSet(r) => r.wcu(),
            ManagedRule::Rate(r) => r.statement.wcu(),
            // One statement, whatever the length of its list.
            ManagedRule::Asn(_) => cost::ASN_MATCH,
        }
    }
}

impl IpSetRule {
    /// One reference per set (an `OrStatement` adds nothing of its own).
    pub fn wcu(&self) -> u64 {
        cost::IP_SET_REFERENCE * self.set_arns.len() as u64
    }
}

impl RateStatement {
    pub fn wcu(&self) -> u64 {
        // IP and FORWARDED_IP aggregation are not custom keys: they cost nothing extra; ASN is one.
        let keys = match self.key {
            RateKey::Ip | RateKey::ForwardedIp { .. } => 0,
            RateKey::Asn => cost::RATE_CUSTOM_KEY,
        };
        cost::RATE_BASED + keys + self.scope_down.iter().map(ScopeDown::wcu).sum::<u64>()
    }
}

impl ScopeDown {
    pub fn wcu(&self) -> u64 {
        match self {
            ScopeDown::Country { .. } => cost::GEO_MATCH,
            ScopeDown::PathPrefix(_) | ScopeDown::Method(_) => cost::BYTE_MATCH_ANCHORED,
            ScopeDown::Label { .. } => cost::LABEL_MATCH,
            ScopeDown::Asn(_) => cost::ASN_MATCH,
        }
    }
}

/// A web ACL's capacity before and after a change of waftune's rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebAclCapacity {
    pub before: u64,
    pub after: u64,
    pub limit: u64,
    /// Rules whose cost only AWS knows (rule groups) and that `before` could not include because
    /// `GetWebACL` gave no usable `Capacity`: the real figures are higher by their cost.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unpriced_rules: Vec<String>,
}

impl WebAclCapacity {
    pub fn exceeds_limit(&self) -> bool {
        self.after > self.limit
    }
}

/// The capacity of `acl` once rules of the given names and WCU are put in place (replacing live
/// rules of the same name).
///
/// `before` is AWS's `Capacity` when it is at least what the priceable rules add up to; otherwise
/// (missing, or an emulator's constant) it is that local sum, and unpriceable rules are listed.
pub fn web_acl_capacity(acl: &WebAcl, put: &[(&str, u64)]) -> WebAclCapacity {
    let priced: u64 = acl.rules.iter().filter_map(|r| r.wcu).sum();
    let unpriced: Vec<String> = acl
        .rules
        .iter()
        .filter(|r| r.wcu.is_none())
        .map(|r| r.name.clone())
        .collect();
    let (before, unpriced_rules) = match acl.capacity {
        Some(c) if c >= priced && (c > 0 || acl.rules.is_empty()) => (c, Vec::new()),
        _ => (priced, unpriced),
    };
    let mut after = before;
    for (name, wcu) in put {
        // A replaced rule of unknown cost stays counted: the result errs on the high side.
        if let Some(old) = acl
            .rules
            .iter()
            .find(|r| r.name == *name)
            .and_then(|r| r.wcu)
        {
            after = after.saturating_sub(old);
        }
        after += wcu;
    }
    WebAclCapacity {
        before,
        after,
        limit: MAX_WEB_ACL_WCU,
        unpriced_rules,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::waf::{RateKey, RuleAction};
    use crate::waf::{LiveRule, RateRule, RuleShape};

    fn rate(scope_down: Vec<ScopeDown>) -> ManagedRule {
        ManagedRule::Rate(RateRule {
            statement: RateStatement {
                limit: 100,
                window_sec: 300,
                key: RateKey::Ip,
                scope_down,
            },
            action: RuleAction::Count,
            metric_name: "m".into(),
            sampled_requests: true,
            cloudwatch_metrics: true,
        })
    }

    fn acl(capacity: Option<u64>, rules: &[(&str, Option<u64>)]) -> WebAcl {
        WebAcl {
            name: "acl".into(),
            id: "id".into(),
            arn: "arn".into(),
            lock_token: "t".into(),
            rules: rules
                .iter()
                .enumerate()
                .map(|(i, (name, wcu))| LiveRule {
                    name: (*name).into(),
                    priority: i as i32,
                    shape: RuleShape::Other {
                        summary: String::new(),
                    },
                    wcu: *wcu,
                })
                .collect(),
            custom_response_bodies: Default::default(),
            capacity,
        }
    }

    #[test]
    fn rules_are_priced_with_published_costs() {
        assert_eq!(rate(vec![]).wcu(), 2);
        let scoped = rate(vec![
            ScopeDown::Country {
                countries: vec!["JP".into()],
                negate: true,
            },
            ScopeDown::PathPrefix("/api/".into()),
            ScopeDown::Label {
                key: "awswaf:managed:aws:bot-control:bot:verified".into(),
                namespace: false,
                negate: true,
            },
        ]);
        assert_eq!(scoped.wcu(), 2 + 1 + 2 + 1);
        let sets = ManagedRule::IpSet(IpSetRule {
            set_arns: vec!["a".into(), "b".into()],
            action: RuleAction::Count,
            metric_name: "m".into(),
            sampled_requests: true,
            cloudwatch_metrics: true,
        });
        assert_eq!(sets.wcu(), 2);
        // An ASN match costs 1 WCU for any list; an ASN custom key 30 (AWS's published prices).
        let asn = ManagedRule::Asn(crate::waf::AsnRule {
            asns: (1..=100).collect(),
            action: RuleAction::Count,
            metric_name: "m".into(),
            sampled_requests: true,
            cloudwatch_metrics: true,
        });
        assert_eq!(asn.wcu(), 1);
        let per_asn = ManagedRule::Rate(RateRule {
            statement: RateStatement {
                limit: 100,
                window_sec: 300,
                key: RateKey::Asn,
                scope_down: vec![ScopeDown::Asn(vec![64496, 64497])],
            },
            action: RuleAction::Count,
            metric_name: "m".into(),
            sampled_requests: true,
            cloudwatch_metrics: true,
        });
        assert_eq!(per_asn.wcu(), 2 + 30 + 1);
    }

    #[test]
    fn aws_capacity_is_the_base_when_plausible() {
        // AWS says 1,500 (a managed rule group of unknown cost is in it); waftune replaces `r`.
        let live = acl(Some(1_500), &[("group", None), ("r", Some(2))]);
        let new = rate(vec![ScopeDown::Method("POST".into())]);
        let c = web_acl_capacity(&live, &[("r", new.wcu())]);
        assert_eq!((c.before, c.after), (1_500, 1_502));
        assert!(c.unpriced_rules.is_empty());
        assert!(!c.exceeds_limit());
    }

    #[test]
    fn implausible_capacity_falls_back_to_local_prices() {
        // An emulator's constant 3 is below what the priced rules cost.
        let live = acl(Some(3), &[("a", Some(700)), ("g", None)]);
        let c = web_acl_capacity(&live, &[("new", rate(vec![]).wcu())]);
        assert_eq!((c.before, c.after), (700, 702));
        assert_eq!(c.unpriced_rules, vec!["g".to_owned()]);
    }

    #[test]
    fn over_the_limit_is_reported() {
        let live = acl(None, &[("big", Some(4_999))]);
        let c = web_acl_capacity(&live, &[("new", rate(vec![]).wcu())]);
        assert_eq!(c.after, 5_001);
        assert!(c.exceeds_limit());
    }
}
