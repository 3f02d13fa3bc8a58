//! Building a plan: the desired sets from the ledger and configuration, diffed against the live
//! state, with drift and the web ACL rules. Pure: no I/O, `now` passed in.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use ipnet::IpNet;
use jiff::Timestamp;

use super::stamp::same_stamped_content;
use super::waf_json::live_rule_json;
use super::{
    Action, BodyChange, DesiredSet, IpSetChange, IpSetState, PLAN_FORMAT_VERSION, Plan,
    PlannedRule, PlannedStatement, RecommendedLimit, ResourceChange, RuleChange, RuleRemoval,
    SetRef, WebAclChange, desired_asns, desired_sets, drift, stamp_description,
};
use crate::config::{
    Config, CustomResponse, GROUP_TAG, MANAGED_TAG, RateLimit, RuleActionConfig, WebAclConfig,
    sha256_hex,
};
use crate::ledger::{Ledger, LedgerError};
use crate::model::asn::MAX_ASNS_PER_STATEMENT;
use crate::model::waf::{
    BlockResponse, IpVersion, MAX_SET_ENTRIES, RateStatement, ResponseBody, RuleAction, ScopeDown,
};
use crate::util::cidr::{self, CidrError};
use crate::waf::capacity::web_acl_capacity;
use crate::waf::live::managed_set_names;
use crate::waf::{IpSet, LiveWaf, RuleShape};

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
    #[error(
        "ledger ASN `{asn}` is in list `{list}`, which no asn_rule in the config uses (lists: {known})"
    )]
    UnknownAsnList {
        asn: String,
        list: String,
        known: String,
    },
    #[error(
        "ASN list `{list}` has {count} active ASNs, more than the {MAX_ASNS_PER_STATEMENT} one WAF ASN statement takes; remove or expire some"
    )]
    TooManyAsns { list: String, count: usize },
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
    let asns = desired_asns(config, ledger, now)?;

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

    let acl_changes = web_acl_changes(config, live, &desired, &asns, inputs.recommended)?;

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
pub fn parse_live(set: &IpSet) -> Result<Vec<IpNet>, PlanError> {
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

/// What the configuration wants in one web ACL: rules with the evidence of a recommended limit,
/// the response bodies they need, and the names of ASN rules to leave out (their list is empty).
pub(super) struct WantedRules<'c> {
    pub rules: Vec<(PlannedRule, Option<String>)>,
    pub responses: Vec<&'c CustomResponse>,
    pub absent: Vec<&'c str>,
}

fn web_acl_changes(
    config: &Config,
    live: &LiveWaf,
    desired: &[DesiredSet],
    asns: &BTreeMap<String, Vec<u32>>,
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
        let WantedRules {
            rules: wanted,
            responses,
            absent,
        } = wanted_rules(acl_config, desired, asns, arn_of, recommended)?;

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
            let live_asns = live_rule.map_or(&[][..], |r| r.shape.asns());
            let (asns_added, asns_removed) = cidr::diff_sorted(live_asns, after.asns());
            rules.push(RuleChange {
                name: after.name.clone(),
                before: live_rule.map(live_rule_json),
                after,
                resets_counters,
                limit_evidence,
                asns_added,
                asns_removed,
            });
        }
        let removed_rules: Vec<RuleRemoval> = absent
            .iter()
            .filter_map(|name| acl.rules.iter().find(|r| r.name == *name))
            .map(|r| RuleRemoval {
                name: r.name.clone(),
                before: live_rule_json(r),
                asns_removed: r.shape.asns().to_vec(),
            })
            .collect();
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
        if !rules.is_empty() || !bodies.is_empty() || !removed_rules.is_empty() {
            // A removed rule is priced as a rule of no cost put in its place.
            let put: Vec<(&str, u64)> = rules
                .iter()
                .map(|r| (r.name.as_str(), r.after.wcu()))
                .chain(removed_rules.iter().map(|r| (r.name.as_str(), 0)))
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
                removed_rules,
            });
        }
    }
    Ok(changes)
}

/// The rules (with the evidence of a recommended limit) and response bodies the configuration
/// wants in one web ACL, given the desired sets and ASN lists; `arn_of` gives the ARN of an
/// existing set by name.
pub(super) fn wanted_rules<'c>(
    acl_config: &'c WebAclConfig,
    desired: &[DesiredSet],
    asns: &BTreeMap<String, Vec<u32>>,
    arn_of: impl Fn(&str) -> Option<String>,
    recommended: &BTreeMap<(String, String), RecommendedLimit>,
) -> Result<WantedRules<'c>, PlanError> {
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
    let mut absent = Vec::new();
    for rule in &acl_config.asn_rules {
        let list = asns.get(&rule.list).map_or(&[][..], Vec::as_slice);
        if list.is_empty() {
            absent.push(rule.name.as_str());
            continue;
        }
        let (action, response) = planned_action(&rule.action);
        responses.extend(response);
        let statement = match rule.rate {
            None => PlannedStatement::AsnMatch {
                asns: list.to_vec(),
            },
            Some(rate) => PlannedStatement::RateBased(RateStatement {
                limit: rate.limit,
                window_sec: rate.window.minutes() * 60,
                key: rate.key.rate_key(),
                scope_down: vec![ScopeDown::Asn(list.to_vec())],
            }),
        };
        wanted.push((
            PlannedRule {
                name: rule.name.clone(),
                priority: rule.priority,
                statement,
                action,
                metric_name: rule.metric_name.clone(),
            },
            None,
        ));
    }
    Ok(WantedRules {
        rules: wanted,
        responses,
        absent,
    })
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
