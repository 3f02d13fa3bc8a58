//! Plans: the difference between what the ledger and configuration want and what WAF has, as data.
//!
//! A [`Plan`] lists resource changes (create, update, delete) with the lock token read for each, the
//! full state before and after, and drift (changes made outside waftune). Renderers only
//! format it (`render::plan`); `apply` only executes it. The plan file records digests of the configuration and the
//! ledger so an apply can refuse a plan made from other inputs.
//!
//! Every IP set waftune writes carries a stamp at the end of its description (time of the plan and a
//! digest of the addresses written). Comparing the live addresses with that digest tells whether the
//! set changed outside waftune since, without keeping any state besides the ledger.

pub mod desired;
mod drift;
mod guardrails;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::{
    Config, CustomResponse, GROUP_TAG, MANAGED_TAG, RateLimit, RuleActionConfig, sha256_hex,
};
use crate::ledger::{Ledger, LedgerError};
use crate::model::acl::Scope;
use crate::model::waf::{
    BlockResponse, IpVersion, MAX_SET_ENTRIES, RateKey, RateStatement, ResponseBody, RuleAction,
    ScopeDown,
};
use crate::util::cidr::{self, CidrError};
use crate::waf::capacity::{WebAclCapacity, cost, web_acl_capacity};
use crate::waf::live::managed_set_names;
use crate::waf::{IpSet, IpSetRule, LiveRule, LiveWaf, ManagedRule, RateRule, RuleShape};

pub use desired::{DesiredSet, desired_sets};
pub use guardrails::{GuardrailError, Violation, check_guardrails};

/// Bumped when the plan file layout changes incompatibly; apply refuses other versions.
/// 2: rules carry a typed statement (IP sets or rate-based) and web ACL changes their capacity.
pub const PLAN_FORMAT_VERSION: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "ledger entry `{cidr}` is in group `{group}`, which the config does not define (groups: {known})"
    )]
    UnknownGroup {
        cidr: IpNet,
        group: String,
        known: String,
    },
    #[error("ledger entry in group `{group}`: {reason}")]
    InvalidLedgerEntry { group: String, reason: CidrError },
    #[error(
        "group `{group}` has {count} {} entries after merging, more than {}{}",
        version.as_str(),
        if *rollover { 2 * MAX_SET_ENTRIES } else { MAX_SET_ENTRIES },
        if *rollover {
            " (two IP sets); remove entries or block broader ranges"
        } else {
            " (one IP set); set `rollover = true` on the group or remove entries"
        }
    )]
    TooManyEntries {
        group: String,
        version: IpVersion,
        count: usize,
        rollover: bool,
    },
    #[error("live IP set `{set}` holds {reason}")]
    InvalidLiveAddress { set: String, reason: CidrError },
    #[error(
        "live IP set `{set}` is {}, but waftune wants it {}; delete or rename it, then plan again",
        live.as_str(),
        wanted.as_str()
    )]
    WrongVersion {
        set: String,
        live: IpVersion,
        wanted: IpVersion,
    },
    #[error("web ACL `{name}` is not in the live state; run `waftune pull` or check the config")]
    MissingWebAcl { name: String },
    #[error(
        "rule `{rule}` wants priority {priority} in web ACL `{web_acl}`, but rule `{other}` (not managed by waftune) has it; choose another priority"
    )]
    PriorityTaken {
        web_acl: String,
        rule: String,
        other: String,
        priority: i32,
    },
    #[error(
        "rate rule `{rule}` in web ACL `{web_acl}` has `limit = \"recommended\"`: give the logs to recommend it from (`plan --logs PATH`), or set a number"
    )]
    NoRecommendation { web_acl: String, rule: String },
    #[error(
        "web ACL `{web_acl}` would need {after} WCU after this plan, more than WAF's {limit}{}; remove rules or simplify scope-downs",
        if unpriced.is_empty() { String::new() } else { format!(" (not counting rule groups {})", unpriced.join(", ")) }
    )]
    OverCapacity {
        web_acl: String,
        after: u64,
        limit: u64,
        unpriced: Vec<String>,
    },
    #[error("cannot read plan `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write plan `{path}`: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: not a waftune plan: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "plan `{path}` has format version `{found}`; this waftune applies version {PLAN_FORMAT_VERSION}: run plan again"
    )]
    Version { path: PathBuf, found: u32 },
}

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
}

/// A managed rule to put in place. `before` is the live rule as JSON (or a description of a rule in
/// a shape waftune does not write), for review only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleChange {
    pub name: String,
    pub before: Option<Value>,
    pub after: PlannedRule,
    /// A live rate-based rule whose statement changes: WAF resets its counters, and the rule does
    /// not limit anyone for up to a minute.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resets_counters: bool,
    /// Where a `limit = "recommended"` came from, for the reviewer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_evidence: Option<String>,
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

/// Everything a plan is computed from.
pub struct PlanInputs<'a> {
    pub config: &'a Config,
    pub ledger: &'a Ledger,
    /// Digest of the ledger file's bytes (see [`load_ledger`]).
    pub ledger_sha256: &'a str,
    pub live: &'a LiveWaf,
    pub now: Timestamp,
    /// Limits of rate rules with `limit = "recommended"`, by (web ACL, rule).
    pub recommended: &'a BTreeMap<(String, String), RecommendedLimit>,
}

/// Reads the ledger and the digest of its bytes (a missing file is an empty ledger).
pub fn load_ledger(path: &Path) -> Result<(Ledger, String), LedgerError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((Ledger::parse(&text, path)?, sha256_hex(text.as_bytes()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok((Ledger::default(), sha256_hex(b"")))
        }
        Err(source) => Err(LedgerError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Computes the plan. Pure: no I/O, `now` passed in.
pub fn build_plan(inputs: &PlanInputs<'_>) -> Result<Plan, PlanError> {
    let PlanInputs {
        config,
        ledger,
        live,
        ..
    } = *inputs;
    // Stamps and the plan keep whole seconds; the desired state is taken at that same instant.
    let now = Timestamp::from_second(inputs.now.as_second()).unwrap_or(inputs.now);
    let desired = desired_sets(config, ledger, now)?;

    let live_sets: HashMap<&str, &IpSet> = live
        .managed_ip_sets
        .iter()
        .map(|s| (s.name.as_str(), s))
        .collect();
    let mut parsed_live: HashMap<&str, Vec<IpNet>> = HashMap::new();
    for set in &live.managed_ip_sets {
        parsed_live.insert(&set.name, parse_live(set)?);
    }

    let mut creates = Vec::new();
    let mut updates = Vec::new();
    let mut deletes = Vec::new();
    let mut drift = Vec::new();
    for want in &desired {
        let group = config
            .group(&want.group)
            .expect("desired sets come from configured groups");
        let after = IpSetState {
            description: stamp_description(&group.description, now, &want.addresses),
            addresses: want.addresses.clone(),
        };
        match live_sets.get(want.name.as_str()) {
            None => {
                let mut tags = group.tags.clone();
                tags.insert(MANAGED_TAG.0.into(), MANAGED_TAG.1.into());
                tags.insert(GROUP_TAG.into(), group.name.clone());
                creates.push(IpSetChange {
                    action: Action::Create,
                    name: want.name.clone(),
                    group: want.group.clone(),
                    version: want.version,
                    id: None,
                    arn: None,
                    lock_token: None,
                    before: None,
                    added: after.addresses.clone(),
                    removed: Vec::new(),
                    after: Some(after),
                    tags,
                });
            }
            Some(set) => {
                if set.version != want.version {
                    return Err(PlanError::WrongVersion {
                        set: set.name.clone(),
                        live: set.version,
                        wanted: want.version,
                    });
                }
                let live_addresses = &parsed_live[set.name.as_str()];
                drift.extend(drift::detect(
                    group,
                    ledger,
                    set,
                    live_addresses,
                    &want.addresses,
                ));
                let description = set.description.clone().unwrap_or_default();
                let unchanged = *live_addresses == want.addresses
                    && same_stamped_content(&description, &after.description);
                if !unchanged {
                    let (added, removed) = cidr::diff_sorted(live_addresses, &want.addresses);
                    updates.push(IpSetChange {
                        action: Action::Update,
                        name: set.name.clone(),
                        group: want.group.clone(),
                        version: want.version,
                        id: Some(set.id.clone()),
                        arn: Some(set.arn.clone()),
                        lock_token: Some(set.lock_token.clone()),
                        before: Some(IpSetState {
                            description,
                            addresses: live_addresses.clone(),
                        }),
                        after: Some(after),
                        added,
                        removed,
                        tags: BTreeMap::new(),
                    });
                }
            }
        }
    }
    // Rollover sets no longer needed: removed from the rule first, then deleted (see `apply`).
    for (name, group) in managed_set_names(config) {
        let Some(set) = live_sets.get(name.as_str()) else {
            continue;
        };
        if desired.iter().any(|d| d.name == name) {
            continue;
        }
        let addresses = parsed_live[name.as_str()].clone();
        deletes.push(IpSetChange {
            action: Action::Delete,
            name: set.name.clone(),
            group: group.to_owned(),
            version: set.version,
            id: Some(set.id.clone()),
            arn: Some(set.arn.clone()),
            lock_token: Some(set.lock_token.clone()),
            before: Some(IpSetState {
                description: set.description.clone().unwrap_or_default(),
                addresses: addresses.clone(),
            }),
            after: None,
            added: Vec::new(),
            removed: addresses,
            tags: BTreeMap::new(),
        });
    }

    let acl_changes = web_acl_changes(config, live, &desired, inputs.recommended)?;

    // Growing sets go first so that an entry moving between a group's two sets is never absent.
    updates.sort_by_key(|c| std::cmp::Reverse(c.added.len() as i64 - c.removed.len() as i64));
    let changes = creates
        .into_iter()
        .chain(updates)
        .map(ResourceChange::IpSet)
        .chain(acl_changes.into_iter().map(ResourceChange::WebAcl))
        .chain(deletes.into_iter().map(ResourceChange::IpSet))
        .collect();
    Ok(Plan {
        format_version: PLAN_FORMAT_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at: now,
        config_sha256: config.sha256.clone(),
        ledger_sha256: inputs.ledger_sha256.to_owned(),
        account: live.account.clone(),
        region: live.region.clone(),
        scope: live.scope,
        drift,
        changes,
    })
}

/// Live addresses, validated and in canonical sorted order (duplicates dropped).
fn parse_live(set: &IpSet) -> Result<Vec<IpNet>, PlanError> {
    let mut nets = set
        .addresses
        .iter()
        .map(|a| cidr::parse(a))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|reason| PlanError::InvalidLiveAddress {
            set: set.name.clone(),
            reason,
        })?;
    nets.sort_unstable();
    nets.dedup();
    Ok(nets)
}

fn web_acl_changes(
    config: &Config,
    live: &LiveWaf,
    desired: &[DesiredSet],
    recommended: &BTreeMap<(String, String), RecommendedLimit>,
) -> Result<Vec<WebAclChange>, PlanError> {
    let arn_of = |name: &str| {
        live.ip_sets
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.arn.clone())
    };
    let mut changes = Vec::new();
    for acl_config in &config.web_acls {
        let acl = live
            .web_acls
            .iter()
            .find(|a| a.name == acl_config.name)
            .ok_or_else(|| PlanError::MissingWebAcl {
                name: acl_config.name.clone(),
            })?;
        let mut wanted: Vec<(PlannedRule, Option<String>)> = Vec::new();
        let mut responses = Vec::new();
        for rule in &acl_config.rules {
            let (action, response) = planned_action(&rule.action);
            responses.extend(response);
            let sets = desired
                .iter()
                .filter(|d| d.group == rule.group)
                .map(|d| SetRef {
                    name: d.name.clone(),
                    arn: arn_of(&d.name),
                })
                .collect();
            wanted.push((
                PlannedRule {
                    name: rule.name.clone(),
                    priority: rule.priority,
                    statement: PlannedStatement::IpSets { sets },
                    action,
                    metric_name: rule.metric_name.clone(),
                },
                None,
            ));
        }
        for rule in &acl_config.rate_rules {
            let (action, response) = planned_action(&rule.action);
            responses.extend(response);
            let (limit, evidence) = match rule.limit {
                RateLimit::Fixed(n) => (n, None),
                RateLimit::Recommended(_) => {
                    let r = recommended
                        .get(&(acl_config.name.clone(), rule.name.clone()))
                        .ok_or_else(|| PlanError::NoRecommendation {
                            web_acl: acl_config.name.clone(),
                            rule: rule.name.clone(),
                        })?;
                    (r.limit, Some(r.evidence.clone()))
                }
            };
            let statement = RateStatement {
                limit,
                window_sec: rule.window.minutes() * 60,
                key: rule.key.clone(),
                scope_down: rule.scope_down.clone(),
            };
            wanted.push((
                PlannedRule {
                    name: rule.name.clone(),
                    priority: rule.priority,
                    statement: PlannedStatement::RateBased(statement),
                    action,
                    metric_name: rule.metric_name.clone(),
                },
                evidence,
            ));
        }

        let managed = |name: &str| wanted.iter().any(|(r, _)| r.name == name);
        let mut rules = Vec::new();
        for (after, limit_evidence) in wanted.iter().cloned() {
            if let Some(other) = acl
                .rules
                .iter()
                .find(|r| r.priority == after.priority && !managed(&r.name))
            {
                return Err(PlanError::PriorityTaken {
                    web_acl: acl.name.clone(),
                    rule: after.name.clone(),
                    other: other.name.clone(),
                    priority: after.priority,
                });
            }
            let live_rule = acl.rules.iter().find(|r| r.name == after.name);
            let up_to_date = live_rule.is_some_and(|r| {
                r.priority == after.priority
                    && after
                        .resolved(&BTreeMap::new())
                        .is_ok_and(|m| m.shape() == r.shape)
            });
            if up_to_date {
                continue;
            }
            let resets_counters = match (live_rule.map(|r| &r.shape), &after.statement) {
                (Some(RuleShape::RateBased(old)), PlannedStatement::RateBased(new)) => {
                    old.statement != *new
                }
                _ => false,
            };
            rules.push(RuleChange {
                name: after.name.clone(),
                before: live_rule.map(live_rule_json),
                after,
                resets_counters,
                limit_evidence,
            });
        }
        let mut bodies: Vec<BodyChange> = Vec::new();
        for r in responses {
            let want = ResponseBody {
                content_type: r.content_type,
                content: r.body.clone(),
            };
            let current = acl.custom_response_bodies.get(&r.body_key);
            if current != Some(&want) && !bodies.iter().any(|b| b.key == r.body_key) {
                bodies.push(BodyChange {
                    key: r.body_key.clone(),
                    before: current.cloned(),
                    after: want,
                });
            }
        }
        if !rules.is_empty() || !bodies.is_empty() {
            let put: Vec<(&str, u64)> = rules
                .iter()
                .map(|r| (r.name.as_str(), r.after.wcu()))
                .collect();
            let capacity = web_acl_capacity(acl, &put);
            if capacity.exceeds_limit() {
                return Err(PlanError::OverCapacity {
                    web_acl: acl.name.clone(),
                    after: capacity.after,
                    limit: capacity.limit,
                    unpriced: capacity.unpriced_rules,
                });
            }
            changes.push(WebAclChange {
                action: Action::Update,
                name: acl.name.clone(),
                id: acl.id.clone(),
                arn: acl.arn.clone(),
                lock_token: acl.lock_token.clone(),
                rules,
                bodies,
                capacity,
            });
        }
    }
    Ok(changes)
}

/// A live rule as WAF's JSON when it has one of waftune's shapes, else its summary.
fn live_rule_json(r: &LiveRule) -> Value {
    let (statement, action, metric_name, visibility) = match &r.shape {
        RuleShape::IpSetMatch(m) => (
            ip_sets_json(&m.set_arns),
            &m.action,
            &m.metric_name,
            (m.sampled_requests, m.cloudwatch_metrics),
        ),
        RuleShape::RateBased(m) => (
            rate_json(&m.statement),
            &m.action,
            &m.metric_name,
            (m.sampled_requests, m.cloudwatch_metrics),
        ),
        RuleShape::Other { summary } => return Value::String(summary.clone()),
    };
    rule_json(
        &r.name,
        r.priority,
        statement,
        action,
        metric_name,
        visibility,
    )
}

/// The rule action and, for a custom response, the body it needs on the web ACL.
fn planned_action(action: &RuleActionConfig) -> (RuleAction, Option<&CustomResponse>) {
    match action {
        RuleActionConfig::Count => (RuleAction::Count, None),
        RuleActionConfig::Block(response) => (
            RuleAction::Block {
                response: response.as_ref().map(|r| BlockResponse {
                    code: r.code,
                    body_key: r.body_key.clone(),
                }),
            },
            response.as_ref(),
        ),
    }
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
        })
    }

    /// The IP sets an IP-set rule references (none for a rate-based rule).
    pub fn set_refs(&self) -> &[SetRef] {
        match &self.statement {
            PlannedStatement::IpSets { sets } => sets,
            PlannedStatement::RateBased(_) => &[],
        }
    }

    /// Capacity in WCU (a set's ARN does not change its price).
    pub fn wcu(&self) -> u64 {
        match &self.statement {
            PlannedStatement::IpSets { sets } => cost::IP_SET_REFERENCE * sets.len() as u64,
            PlannedStatement::RateBased(s) => s.wcu(),
        }
    }

    /// The rule in WAF's JSON shape, with sets created by the plan shown as "known after apply".
    pub fn to_json(&self) -> Value {
        let statement = match &self.statement {
            PlannedStatement::IpSets { sets } => {
                let refs: Vec<String> = sets
                    .iter()
                    .map(|s| {
                        s.arn
                            .clone()
                            .unwrap_or_else(|| format!("(known after apply: IP set {})", s.name))
                    })
                    .collect();
                ip_sets_json(&refs)
            }
            PlannedStatement::RateBased(s) => rate_json(s),
        };
        rule_json(
            &self.name,
            self.priority,
            statement,
            &self.action,
            &self.metric_name,
            (true, true),
        )
    }
}

fn ip_sets_json(set_refs: &[String]) -> Value {
    let references: Vec<Value> = set_refs
        .iter()
        .map(|arn| json!({ "IPSetReferenceStatement": { "ARN": arn } }))
        .collect();
    joined_json(references, "OrStatement")
}

fn joined_json(statements: Vec<Value>, join: &str) -> Value {
    match <[Value; 1]>::try_from(statements) {
        Ok([single]) => single,
        Err(many) => json!({ join: { "Statements": many } }),
    }
}

fn rate_json(s: &RateStatement) -> Value {
    let mut rate = json!({
        "Limit": s.limit,
        "EvaluationWindowSec": s.window_sec,
        "AggregateKeyType": match s.key { RateKey::Ip => "IP", RateKey::ForwardedIp { .. } => "FORWARDED_IP" },
    });
    if let RateKey::ForwardedIp {
        header,
        fallback_match,
    } = &s.key
    {
        rate["ForwardedIPConfig"] = json!({
            "HeaderName": header,
            "FallbackBehavior": if *fallback_match { "MATCH" } else { "NO_MATCH" },
        });
    }
    if !s.scope_down.is_empty() {
        let parts = s.scope_down.iter().map(scope_down_json).collect();
        rate["ScopeDownStatement"] = joined_json(parts, "AndStatement");
    }
    json!({ "RateBasedStatement": rate })
}

fn scope_down_json(s: &ScopeDown) -> Value {
    let not = |inner: Value, negate: bool| {
        if negate {
            json!({ "NotStatement": { "Statement": inner } })
        } else {
            inner
        }
    };
    let byte_match = |field: &str, text: &str, constraint: &str| {
        json!({ "ByteMatchStatement": {
            "SearchString": text,
            "FieldToMatch": { field: {} },
            "TextTransformations": [{ "Priority": 0, "Type": "NONE" }],
            "PositionalConstraint": constraint,
        } })
    };
    match s {
        ScopeDown::Country { countries, negate } => not(
            json!({ "GeoMatchStatement": { "CountryCodes": countries } }),
            *negate,
        ),
        ScopeDown::PathPrefix(p) => byte_match("UriPath", p, "STARTS_WITH"),
        ScopeDown::Method(m) => byte_match("Method", m, "EXACTLY"),
        ScopeDown::Label {
            key,
            namespace,
            negate,
        } => not(
            json!({ "LabelMatchStatement": {
                "Scope": if *namespace { "NAMESPACE" } else { "LABEL" },
                "Key": key,
            } }),
            *negate,
        ),
    }
}

/// A rule in the JSON shape of WAF's API, so a reviewer sees what the console and CLI show.
fn rule_json(
    name: &str,
    priority: i32,
    statement: Value,
    action: &RuleAction,
    metric_name: &str,
    (sampled, cloudwatch): (bool, bool),
) -> Value {
    let action = match action {
        RuleAction::Count => json!({ "Count": {} }),
        RuleAction::Block { response: None } => json!({ "Block": {} }),
        RuleAction::Block { response: Some(r) } => json!({ "Block": { "CustomResponse": {
            "ResponseCode": r.code, "CustomResponseBodyKey": r.body_key } } }),
    };
    json!({
        "Name": name,
        "Priority": priority,
        "Statement": statement,
        "Action": action,
        "VisibilityConfig": {
            "SampledRequestsEnabled": sampled,
            "CloudWatchMetricsEnabled": cloudwatch,
            "MetricName": metric_name,
        },
    })
}

const STAMP_MARK: &str = " - waftune ";

/// The description waftune writes: the configured text, then when and what it wrote.
pub fn stamp_description(base: &str, at: Timestamp, addresses: &[IpNet]) -> String {
    format!(
        "{base}{STAMP_MARK}{} sha256:{}",
        at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        addresses_digest(addresses)
    )
}

/// (configured text, stamp time, digest) of a description waftune wrote.
fn parse_stamp(description: &str) -> Option<(&str, Timestamp, &str)> {
    let (base, stamp) = description.rsplit_once(STAMP_MARK)?;
    let (time, digest) = stamp.split_once(" sha256:")?;
    Some((base, time.parse().ok()?, digest))
}

/// Same configured text and same addresses digest (the stamp time alone does not warrant a write).
fn same_stamped_content(live: &str, wanted: &str) -> bool {
    match (parse_stamp(live), parse_stamp(wanted)) {
        (Some((lb, _, ld)), Some((wb, _, wd))) => lb == wb && ld == wd,
        _ => false,
    }
}

/// Short digest of a sorted address list; 48 bits tell one set's versions apart with ease.
fn addresses_digest(addresses: &[IpNet]) -> String {
    let mut text = String::with_capacity(addresses.len() * 20);
    for a in addresses {
        text.push_str(&a.to_string());
        text.push('\n');
    }
    sha256_hex(text.as_bytes())[..12].to_owned()
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

    /// The plan file's text: pretty JSON, ending with a newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a plan always serialises");
        text.push('\n');
        text
    }

    pub fn save(&self, path: &Path) -> Result<(), PlanError> {
        std::fs::write(path, self.to_json()).map_err(|source| PlanError::Write {
            path: path.to_owned(),
            source,
        })
    }

    pub fn load(path: &Path) -> Result<Plan, PlanError> {
        let text = std::fs::read_to_string(path).map_err(|source| PlanError::Read {
            path: path.to_owned(),
            source,
        })?;
        Plan::from_json(&text, path)
    }

    /// Parses a plan file; `path` is used in messages.
    pub fn from_json(text: &str, path: &Path) -> Result<Plan, PlanError> {
        // Check the version first: a future layout should say "run plan again", not "missing field".
        let version = serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| v.get("format_version")?.as_u64());
        if let Some(found) = version.filter(|v| *v != u64::from(PLAN_FORMAT_VERSION)) {
            return Err(PlanError::Version {
                path: path.to_owned(),
                found: u32::try_from(found).unwrap_or(u32::MAX),
            });
        }
        serde_json::from_str(text).map_err(|e| PlanError::Parse {
            path: path.to_owned(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })
    }
}

#[cfg(test)]
mod rate_tests;
#[cfg(test)]
mod tests;
