//! Plans: the difference between what the ledger and configuration want and what WAF has, as data.
//!
//! A [`Plan`] lists resource changes (create, update, delete) with the lock token read for each, the
//! full state before and after, and drift (changes made outside waftune). Renderers ([`render`]) only
//! format it; `apply` only executes it. The plan file records digests of the configuration and the
//! ledger so an apply can refuse a plan made from other inputs.
//!
//! Every IP set waftune writes carries a stamp at the end of its description (time of the plan and a
//! digest of the addresses written). Comparing the live addresses with that digest tells whether the
//! set changed outside waftune since, without keeping any state besides the ledger.

pub mod desired;
mod drift;
mod guardrails;
pub mod render;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::cidr::{self, CidrError};
use crate::config::{Config, GROUP_TAG, MANAGED_TAG, RuleActionConfig, Scope, sha256_hex};
use crate::ledger::{Ledger, LedgerError};
use crate::waf::live::managed_set_names;
use crate::waf::{BlockResponse, IpSet, IpVersion, LiveWaf, ResponseBody, RuleAction, RuleShape};

pub use desired::{DesiredSet, MAX_SET_ENTRIES, desired_sets};
pub use guardrails::{GuardrailError, Violation, check_guardrails};

/// Bumped when the plan file layout changes incompatibly; apply refuses other versions.
pub const PLAN_FORMAT_VERSION: u32 = 1;

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
}

/// A managed rule to put in place. `before` is the live rule as JSON (or a description of a rule in
/// a shape waftune does not write), for review only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleChange {
    pub name: String,
    pub before: Option<Value>,
    pub after: PlannedRule,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedRule {
    pub name: String,
    pub priority: i32,
    pub sets: Vec<SetRef>,
    pub action: RuleAction,
    pub metric_name: String,
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

    let acl_changes = web_acl_changes(config, live, &desired)?;

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
        let mut rules = Vec::new();
        let mut bodies = Vec::new();
        for rule in &acl_config.rules {
            let managed = |name: &str| acl_config.rules.iter().any(|r| r.name == name);
            if let Some(other) = acl
                .rules
                .iter()
                .find(|r| r.priority == rule.priority && !managed(&r.name))
            {
                return Err(PlanError::PriorityTaken {
                    web_acl: acl.name.clone(),
                    rule: rule.name.clone(),
                    other: other.name.clone(),
                    priority: rule.priority,
                });
            }
            let (action, response) = match &rule.action {
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
            };
            let after = PlannedRule {
                name: rule.name.clone(),
                priority: rule.priority,
                sets: desired
                    .iter()
                    .filter(|d| d.group == rule.group)
                    .map(|d| SetRef {
                        name: d.name.clone(),
                        arn: arn_of(&d.name),
                    })
                    .collect(),
                action,
                metric_name: rule.metric_name.clone(),
            };
            let live_rule = acl.rules.iter().find(|r| r.name == rule.name);
            let up_to_date = live_rule.is_some_and(|r| {
                r.priority == after.priority
                    && match &r.shape {
                        RuleShape::IpSetMatch(m) => {
                            m.action == after.action
                                && m.metric_name == after.metric_name
                                && m.sampled_requests
                                && m.cloudwatch_metrics
                                && after
                                    .sets
                                    .iter()
                                    .map(|s| s.arn.as_deref())
                                    .eq(m.set_arns.iter().map(|a| Some(a.as_str())))
                        }
                        RuleShape::Other { .. } => false,
                    }
            });
            if !up_to_date {
                rules.push(RuleChange {
                    name: rule.name.clone(),
                    before: live_rule.map(|r| match &r.shape {
                        RuleShape::IpSetMatch(m) => rule_json(
                            &r.name,
                            r.priority,
                            &m.set_arns,
                            &m.action,
                            &m.metric_name,
                            (m.sampled_requests, m.cloudwatch_metrics),
                        ),
                        RuleShape::Other { summary } => Value::String(summary.clone()),
                    }),
                    after,
                });
            }
            if let Some(r) = response {
                let want = ResponseBody {
                    content_type: r.content_type,
                    content: r.body.clone(),
                };
                let current = acl.custom_response_bodies.get(&r.body_key);
                if current != Some(&want)
                    && !bodies.iter().any(|b: &BodyChange| b.key == r.body_key)
                {
                    bodies.push(BodyChange {
                        key: r.body_key.clone(),
                        before: current.cloned(),
                        after: want,
                    });
                }
            }
        }
        if !rules.is_empty() || !bodies.is_empty() {
            changes.push(WebAclChange {
                action: Action::Update,
                name: acl.name.clone(),
                id: acl.id.clone(),
                arn: acl.arn.clone(),
                lock_token: acl.lock_token.clone(),
                rules,
                bodies,
            });
        }
    }
    Ok(changes)
}

impl PlannedRule {
    /// The rule in WAF's JSON shape, with sets created by the plan shown as "known after apply".
    pub fn to_json(&self) -> Value {
        let refs: Vec<String> = self
            .sets
            .iter()
            .map(|s| {
                s.arn
                    .clone()
                    .unwrap_or_else(|| format!("(known after apply: IP set {})", s.name))
            })
            .collect();
        rule_json(
            &self.name,
            self.priority,
            &refs,
            &self.action,
            &self.metric_name,
            (true, true),
        )
    }
}

/// A rule in the JSON shape of WAF's API, so a reviewer sees what the console and CLI show.
fn rule_json(
    name: &str,
    priority: i32,
    set_refs: &[String],
    action: &RuleAction,
    metric_name: &str,
    (sampled, cloudwatch): (bool, bool),
) -> Value {
    let references: Vec<Value> = set_refs
        .iter()
        .map(|arn| json!({ "IPSetReferenceStatement": { "ARN": arn } }))
        .collect();
    let statement = match <[Value; 1]>::try_from(references) {
        Ok([single]) => single,
        Err(many) => json!({ "OrStatement": { "Statements": many } }),
    };
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
mod tests;
