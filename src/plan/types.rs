//! The plan as data (Terraform's `plans`): resource changes with the lock tokens read for each, the
//! full state before and after, and drift. Building is in [`super::build`], the file in
//! [`super::planfile`].

use std::collections::BTreeMap;

use ipnet::IpNet;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::acl::Scope;
use crate::model::waf::{IpVersion, RateStatement, ResponseBody, RuleAction};
use crate::waf::capacity::{WebAclCapacity, cost};
use crate::waf::{AsnRule, IpSetRule, ManagedRule, RateRule};

/// A saved plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub tool_version: String,
    pub created_at: Timestamp,
    pub config_sha256: String,
    pub ledger_sha256: String,
    pub account: Option<String>,
    pub region: String,
    pub scope: Scope,
    /// Changes made outside waftune, shown before the changes (which revert them).
    pub drift: Vec<Drift>,
    /// In the order apply runs them.
    pub changes: Vec<ResourceChange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ResourceChange {
    IpSet(IpSetChange),
    WebAcl(WebAclChange),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpSetChange {
    pub action: Action,
    pub name: String,
    pub group: String,
    pub version: IpVersion,
    /// `None` for a set to create.
    pub id: Option<String>,
    pub arn: Option<String>,
    /// Read at plan time; apply sends exactly this one.
    pub lock_token: Option<String>,
    pub before: Option<IpSetState>,
    pub after: Option<IpSetState>,
    pub added: Vec<IpNet>,
    pub removed: Vec<IpNet>,
    /// Tags for a set to create.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpSetState {
    pub description: String,
    pub addresses: Vec<IpNet>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebAclChange {
    pub action: Action,
    pub name: String,
    pub id: String,
    pub arn: String,
    pub lock_token: String,
    pub rules: Vec<RuleChange>,
    pub bodies: Vec<BodyChange>,
    /// WCU before and after, checked against WAF's limit when the plan is made.
    pub capacity: WebAclCapacity,
    /// Managed rules to take out: ASN rules whose list is now empty (WAF takes no empty list).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_rules: Vec<RuleRemoval>,
}

/// A managed rule to remove from the web ACL. `before` is the live rule, for review only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRemoval {
    pub name: String,
    pub before: RuleBefore,
    /// The ASNs the live rule held, for the reviewer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub asns_removed: Vec<u32>,
}

/// A managed rule to put in place. `before` is the live rule, for review only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleChange {
    pub name: String,
    pub before: Option<RuleBefore>,
    pub after: PlannedRule,
    /// A live rate-based rule whose statement changes: WAF resets its counters, and the rule does
    /// not limit anyone for up to a minute.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resets_counters: bool,
    /// Where a `limit = "recommended"` came from, for the reviewer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_evidence: Option<String>,
    /// For an ASN rule: the ASNs it gains and loses against the live rule, for the reviewer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub asns_added: Vec<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub asns_removed: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedRule {
    pub name: String,
    pub priority: i32,
    pub statement: PlannedStatement,
    pub action: RuleAction,
    pub metric_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PlannedStatement {
    /// Matches the union of these sets.
    IpSets {
        sets: Vec<SetRef>,
    },
    RateBased(RateStatement),
    /// Matches requests from these ASNs (sorted, 1 to 100).
    AsnMatch {
        asns: Vec<u32>,
    },
}

/// A `limit = "recommended"` resolved from the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecommendedLimit {
    pub limit: u64,
    /// One line for the plan: the percentile, headroom, window and what the limit would have done.
    pub evidence: String,
}

/// An IP set a rule references; `arn` is `None` for a set the same plan creates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetRef {
    pub name: String,
    pub arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodyChange {
    pub key: String,
    pub before: Option<ResponseBody>,
    pub after: ResponseBody,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    pub set: String,
    /// When waftune last wrote the set (from its stamp), if it ever did.
    pub since: Option<Timestamp>,
    pub kind: DriftKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// Exactly these entries changed outside waftune since it wrote the set.
    Entries {
        added_outside: Vec<IpNet>,
        removed_outside: Vec<IpNet>,
    },
    /// The set changed outside waftune, and the ledger changed too, so the two cannot be told apart.
    Changed,
    /// The set has no waftune stamp: it was created or last written by something else.
    NotWrittenByWaftune,
}

/// Counts for the closing line and the PR summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
    pub entries_added: usize,
    pub entries_removed: usize,
}

/// The live rule a [`RuleChange`] replaces. In the plan file: WAF's JSON of the rule, or a string
/// describing a rule in a shape waftune does not write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RuleBefore {
    /// A rule in a shape waftune does not write; it will be replaced.
    Opaque(String),
    /// A rule in one of waftune's shapes, as WAF's JSON.
    Rule(Value),
}

impl PlannedRule {
    /// The rule as waftune writes it, once every set it references has an ARN (`created`: sets
    /// the same apply created, by name). While a set's ARN is unknown: `Err` with that set's name.
    pub fn resolved(&self, created: &BTreeMap<String, String>) -> Result<ManagedRule, &str> {
        Ok(match &self.statement {
            PlannedStatement::IpSets { sets } => ManagedRule::IpSet(IpSetRule {
                set_arns: sets
                    .iter()
                    .map(|s| {
                        s.arn
                            .clone()
                            .or_else(|| created.get(&s.name).cloned())
                            .ok_or(s.name.as_str())
                    })
                    .collect::<Result<_, _>>()?,
                action: self.action.clone(),
                metric_name: self.metric_name.clone(),
                sampled_requests: true,
                cloudwatch_metrics: true,
            }),
            PlannedStatement::RateBased(statement) => ManagedRule::Rate(RateRule {
                statement: statement.clone(),
                action: self.action.clone(),
                metric_name: self.metric_name.clone(),
                sampled_requests: true,
                cloudwatch_metrics: true,
            }),
            PlannedStatement::AsnMatch { asns } => ManagedRule::Asn(AsnRule {
                asns: asns.clone(),
                action: self.action.clone(),
                metric_name: self.metric_name.clone(),
                sampled_requests: true,
                cloudwatch_metrics: true,
            }),
        })
    }

    /// The IP sets an IP-set rule references (none for a rate-based rule).
    pub fn set_refs(&self) -> &[SetRef] {
        match &self.statement {
            PlannedStatement::IpSets { sets } => sets,
            PlannedStatement::RateBased(_) | PlannedStatement::AsnMatch { .. } => &[],
        }
    }

    /// The ASNs an ASN rule matches: its list, or a rate-based rule's ASN scope-down (none for
    /// other rules).
    pub fn asns(&self) -> &[u32] {
        match &self.statement {
            PlannedStatement::AsnMatch { asns } => asns,
            PlannedStatement::RateBased(s) => s.asn_scope(),
            PlannedStatement::IpSets { .. } => &[],
        }
    }

    /// Capacity in WCU (a set's ARN does not change its price).
    pub fn wcu(&self) -> u64 {
        match &self.statement {
            PlannedStatement::IpSets { sets } => cost::IP_SET_REFERENCE * sets.len() as u64,
            PlannedStatement::RateBased(s) => s.wcu(),
            PlannedStatement::AsnMatch { .. } => cost::ASN_MATCH,
        }
    }
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for change in &self.changes {
            let action = match change {
                ResourceChange::IpSet(c) => {
                    s.entries_added += c.added.len();
                    s.entries_removed += c.removed.len();
                    c.action
                }
                ResourceChange::WebAcl(c) => c.action,
            };
            match action {
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Delete => s.destroy += 1,
            }
        }
        s
    }

    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }
}
