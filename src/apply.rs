//! Apply: execute a saved plan, exactly, or stop.
//!
//! Apply never recomputes the plan, and never trusts it either: it refuses a plan whose configuration
//! or ledger digest no longer matches the files, whose planned states are not what those files give
//! ([`crate::plan::verify`]), or that is for another account (asked of STS), and evaluates the
//! guardrails on the live sets it reads, not on the file's `before`. Then it sends each change with
//! the lock token the plan read. A resource changed since the plan fails with `WAFOptimisticLockException` and apply stops
//! with "plan is stale"; it never fetches a fresh token to retry, because that would overwrite a
//! change nobody reviewed.
//!
//! Order: sets are created and grown before a rule references them; rules are updated before sets
//! they no longer reference are deleted. Re-running the same plan after a partial failure is safe:
//! a change whose resource already holds exactly the planned state counts as already applied.

use std::collections::BTreeMap;
use std::fmt;

use ipnet::IpNet;

use crate::config::Config;
use crate::ledger::Ledger;
use crate::model::acl::Scope;
use crate::plan::verify::{Mismatch, Tampered, VerifyError, verify_plan, with_live_before};
use crate::plan::{
    Action, GuardrailError, IpSetChange, Plan, ResourceChange, WebAclChange, check_guardrails,
    parse_live,
};
use crate::util::cidr;
use crate::waf::{
    IpSetSummary, NewIpSet, PutRule, WafApi, WafError, WafErrorKind, WebAclEdit, WebAclSummary,
};

/// Problems found before any write: nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(
        "the config changed since the plan (plan has sha256 `{planned}`, `{path}` has `{current}`); run plan again"
    )]
    ConfigChanged {
        path: String,
        planned: String,
        current: String,
    },
    #[error(
        "the ledger changed since the plan (plan has sha256 `{planned}`, now `{current}`); run plan again"
    )]
    LedgerChanged { planned: String, current: String },
    #[error(
        "the plan is for {plan_scope} in `{plan_region}`, but waftune is connected to {scope} in `{region}`"
    )]
    WrongPlace {
        plan_scope: Scope,
        plan_region: String,
        scope: Scope,
        region: String,
    },
    #[error("the plan is for account `{planned}`, but the credentials reach account `{live}`")]
    WrongAccount { planned: String, live: String },
    #[error(
        "the plan names no account, so it cannot be checked against the one the credentials reach; run plan again against the account"
    )]
    NoAccount,
    #[error(
        "the plan is for account `{planned}`, but the account the credentials reach is unknown"
    )]
    UnknownAccount { planned: String },
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error(transparent)]
    Guardrails(#[from] GuardrailError),
    #[error(transparent)]
    Waf(#[from] WafError),
}

/// Why one change failed; the changes after it were not attempted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    #[error("plan is stale: {resource} changed since the plan; run plan again")]
    Stale { resource: String },
    #[error("{resource}: {source}")]
    Waf { resource: String, source: WafError },
    #[error(
        "{resource}: the plan has no ARN for IP set `{set}`, which should have been created first"
    )]
    MissingArn { resource: String, set: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// The resource already held the planned state (e.g. a rerun after a partial failure).
    AlreadyApplied,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyReport {
    /// (resource, outcome) in the order applied.
    pub applied: Vec<(String, Outcome)>,
    pub failed: Option<StepError>,
    /// Resources not attempted because an earlier change failed.
    pub not_applied: Vec<String>,
}

impl ApplyReport {
    pub fn is_complete(&self) -> bool {
        self.failed.is_none()
    }
}

impl fmt::Display for ApplyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (resource, outcome) in &self.applied {
            match outcome {
                Outcome::Applied => writeln!(f, "applied: {resource}")?,
                Outcome::AlreadyApplied => writeln!(f, "already applied: {resource}")?,
            }
        }
        if let Some(err) = &self.failed {
            writeln!(f, "failed: {err}")?;
        }
        for resource in &self.not_applied {
            writeln!(f, "not applied: {resource}")?;
        }
        let done = self.applied.len();
        match &self.failed {
            None => write!(f, "Apply complete: {done} change(s) applied."),
            Some(_) => write!(
                f,
                "Apply stopped: {done} change(s) applied, {} not applied.",
                self.not_applied.len() + 1
            ),
        }
    }
}

/// The files the plan must still match, and extra ranges that must never be blocked.
pub struct ApplyInputs<'a> {
    pub config: &'a Config,
    /// The ledger as it is now; the plan's changes must be what it gives.
    pub ledger: &'a Ledger,
    /// Digest of the ledger file as it is now (see [`crate::plan::load_ledger`]).
    pub ledger_sha256: &'a str,
    pub extra_allowlist: &'a [IpNet],
}

/// A human name for a resource in reports and errors.
pub fn resource_name(change: &ResourceChange) -> String {
    match change {
        ResourceChange::IpSet(c) => format!("ip set `{}`", c.name),
        ResourceChange::WebAcl(c) => format!("web ACL `{}`", c.name),
    }
}

/// Applies `plan` through `api`. `Err` means nothing was written; a failure part-way is reported in
/// the [`ApplyReport`] with what was and was not applied.
pub async fn apply<W: WafApi>(
    plan: &Plan,
    inputs: &ApplyInputs<'_>,
    api: &W,
) -> Result<ApplyReport, ApplyError> {
    if plan.config_sha256 != inputs.config.sha256 {
        return Err(ApplyError::ConfigChanged {
            path: inputs.config.path.display().to_string(),
            planned: plan.config_sha256.clone(),
            current: inputs.config.sha256.clone(),
        });
    }
    if plan.ledger_sha256 != inputs.ledger_sha256 {
        return Err(ApplyError::LedgerChanged {
            planned: plan.ledger_sha256.clone(),
            current: inputs.ledger_sha256.to_owned(),
        });
    }
    if plan.scope != api.scope() || plan.region != api.region() {
        return Err(ApplyError::WrongPlace {
            plan_scope: plan.scope,
            plan_region: plan.region.clone(),
            scope: api.scope(),
            region: api.region().to_owned(),
        });
    }
    verify_plan(plan, inputs.config, inputs.ledger)?;
    let mut report = ApplyReport {
        applied: Vec::new(),
        failed: None,
        not_applied: Vec::new(),
    };
    if !plan.has_changes() {
        return Ok(report);
    }

    match (plan.account.as_deref(), api.account().await?) {
        (None, _) => return Err(ApplyError::NoAccount),
        (Some(planned), None) => {
            return Err(ApplyError::UnknownAccount {
                planned: planned.to_owned(),
            });
        }
        (Some(planned), Some(live)) if planned != live => {
            return Err(ApplyError::WrongAccount {
                planned: planned.to_owned(),
                live,
            });
        }
        _ => {}
    }
    let existing = api.list_ip_sets().await?;
    let live = live_addresses(api, plan, &existing).await?;
    check_guardrails(
        &with_live_before(plan, &live),
        inputs.config,
        inputs.extra_allowlist,
    )?;

    // ARNs of sets created by this apply, for the rules that reference them.
    let mut created: BTreeMap<String, String> = BTreeMap::new();
    let mut changes = plan.changes.iter();
    for change in changes.by_ref() {
        let resource = resource_name(change);
        let result = match change {
            ResourceChange::IpSet(c) => match c.action {
                Action::Create => create_set(api, c, &existing, &resource, &mut created).await,
                Action::Update => update_set(api, c, &resource).await,
                Action::Delete => delete_set(api, c, &resource).await,
            },
            ResourceChange::WebAcl(c) => update_web_acl(api, c, &resource, &created).await,
        };
        match result {
            Ok(outcome) => report.applied.push((resource, outcome)),
            Err(err) => {
                report.failed = Some(err);
                break;
            }
        }
    }
    report.not_applied = changes.map(resource_name).collect();
    Ok(report)
}

/// The live addresses of every set the plan changes that exists, by name. A set still at the plan's
/// lock token must hold exactly the plan's `before`: the reviewer saw that as the current state.
async fn live_addresses<W: WafApi>(
    api: &W,
    plan: &Plan,
    existing: &[IpSetSummary],
) -> Result<BTreeMap<String, Vec<IpNet>>, ApplyError> {
    let mut live = BTreeMap::new();
    let mut problems = Vec::new();
    for change in &plan.changes {
        let ResourceChange::IpSet(c) = change else {
            continue;
        };
        let Some(summary) = existing.iter().find(|s| s.name == c.name) else {
            continue;
        };
        let set = api.get_ip_set(&summary.name, &summary.id).await?;
        let addresses = parse_live(&set).map_err(VerifyError::from)?;
        if c.lock_token.as_deref() == Some(set.lock_token.as_str()) {
            let planned = c.before.as_ref().map_or(&[][..], |b| &b.addresses[..]);
            let (extra, missing) = cidr::diff_sorted(&addresses, planned);
            if let Some(value) = extra.first().or(missing.first()) {
                let (verb, count) = if extra.is_empty() {
                    ("lacks", missing.len())
                } else {
                    ("holds", extra.len())
                };
                problems.push(Mismatch {
                    resource: format!("IP set `{}`", c.name),
                    problem: format!(
                        "`before` {verb} `{value}`, unlike the live set at the plan's lock token ({count} such)"
                    ),
                });
            }
        }
        live.insert(c.name.clone(), addresses);
    }
    if problems.is_empty() {
        Ok(live)
    } else {
        Err(VerifyError::from(Tampered { problems }).into())
    }
}

fn stale(resource: &str) -> StepError {
    StepError::Stale {
        resource: resource.to_owned(),
    }
}

fn waf_error(resource: &str, source: WafError) -> StepError {
    match source.kind {
        WafErrorKind::Stale => stale(resource),
        _ => StepError::Waf {
            resource: resource.to_owned(),
            source,
        },
    }
}

fn strings(nets: &[IpNet]) -> Vec<String> {
    nets.iter().map(ToString::to_string).collect()
}

/// The plan's fields for an existing set, as the API takes them.
fn summary_of(c: &IpSetChange, resource: &str) -> Result<IpSetSummary, StepError> {
    match (&c.id, &c.arn, &c.lock_token) {
        (Some(id), Some(arn), Some(lock_token)) => Ok(IpSetSummary {
            name: c.name.clone(),
            id: id.clone(),
            arn: arn.clone(),
            lock_token: lock_token.clone(),
        }),
        // Only a hand-edited plan lacks these; treat it like any plan that no longer fits.
        _ => Err(stale(resource)),
    }
}

/// Whether the set now holds exactly the planned state (then a failed write was already done).
async fn holds_planned<W: WafApi>(api: &W, c: &IpSetChange, name: &str, id: &str) -> bool {
    let (Ok(live), Some(after)) = (api.get_ip_set(name, id).await, &c.after) else {
        return false;
    };
    parse_live(&live).is_ok_and(|parsed| parsed == after.addresses)
        && live.description.as_deref() == Some(after.description.as_str())
}

async fn create_set<W: WafApi>(
    api: &W,
    c: &IpSetChange,
    existing: &[IpSetSummary],
    resource: &str,
    created: &mut BTreeMap<String, String>,
) -> Result<Outcome, StepError> {
    let after = c.after.as_ref().ok_or_else(|| stale(resource))?;
    if let Some(found) = existing.iter().find(|s| s.name == c.name) {
        // Created since the plan: by an earlier run of this plan (fine) or by someone else (stale).
        return if holds_planned(api, c, &found.name, &found.id).await {
            created.insert(c.name.clone(), found.arn.clone());
            Ok(Outcome::AlreadyApplied)
        } else {
            Err(stale(resource))
        };
    }
    let summary = api
        .create_ip_set(&NewIpSet {
            name: c.name.clone(),
            description: after.description.clone(),
            version: c.version,
            addresses: strings(&after.addresses),
            tags: c.tags.clone(),
        })
        .await
        .map_err(|e| match e.kind {
            WafErrorKind::Duplicate => stale(resource),
            _ => waf_error(resource, e),
        })?;
    created.insert(c.name.clone(), summary.arn);
    Ok(Outcome::Applied)
}

async fn update_set<W: WafApi>(
    api: &W,
    c: &IpSetChange,
    resource: &str,
) -> Result<Outcome, StepError> {
    let summary = summary_of(c, resource)?;
    let after = c.after.as_ref().ok_or_else(|| stale(resource))?;
    match api
        .update_ip_set(&summary, &after.description, &strings(&after.addresses))
        .await
    {
        Ok(_) => Ok(Outcome::Applied),
        Err(e) if matches!(e.kind, WafErrorKind::Stale | WafErrorKind::NotFound) => {
            if holds_planned(api, c, &summary.name, &summary.id).await {
                Ok(Outcome::AlreadyApplied)
            } else {
                Err(stale(resource))
            }
        }
        Err(e) => Err(waf_error(resource, e)),
    }
}

async fn delete_set<W: WafApi>(
    api: &W,
    c: &IpSetChange,
    resource: &str,
) -> Result<Outcome, StepError> {
    let summary = summary_of(c, resource)?;
    match api.delete_ip_set(&summary).await {
        Ok(()) => Ok(Outcome::Applied),
        Err(e) if e.kind == WafErrorKind::NotFound => Ok(Outcome::AlreadyApplied),
        Err(e) => Err(waf_error(resource, e)),
    }
}

async fn update_web_acl<W: WafApi>(
    api: &W,
    c: &WebAclChange,
    resource: &str,
    created: &BTreeMap<String, String>,
) -> Result<Outcome, StepError> {
    let mut rules = Vec::with_capacity(c.rules.len());
    for change in &c.rules {
        let rule = &change.after;
        let resolved = rule
            .resolved(created)
            .map_err(|set| StepError::MissingArn {
                resource: resource.to_owned(),
                set: set.to_owned(),
            })?;
        rules.push(PutRule {
            name: rule.name.clone(),
            priority: rule.priority,
            rule: resolved,
        });
    }
    let edit = WebAclEdit {
        rules,
        bodies: c
            .bodies
            .iter()
            .map(|b| (b.key.clone(), b.after.clone()))
            .collect(),
        remove: c.removed_rules.iter().map(|r| r.name.clone()).collect(),
    };
    let summary = WebAclSummary {
        name: c.name.clone(),
        id: c.id.clone(),
        arn: c.arn.clone(),
        lock_token: c.lock_token.clone(),
    };
    match api.update_web_acl(&summary, &edit).await {
        Ok(_) => Ok(Outcome::Applied),
        Err(e) if e.kind == WafErrorKind::Stale => {
            // Already applied if every planned rule and body is in place, whatever else changed.
            let Ok(live) = api.get_web_acl(&c.name, &c.id).await else {
                return Err(stale(resource));
            };
            let rules_in_place = edit.rules.iter().all(|put| {
                live.rules.iter().any(|r| {
                    r.name == put.name && r.priority == put.priority && r.shape == put.rule.shape()
                })
            });
            let bodies_in_place = edit
                .bodies
                .iter()
                .all(|(k, b)| live.custom_response_bodies.get(k) == Some(b));
            let removed = edit
                .remove
                .iter()
                .all(|name| live.rules.iter().all(|r| r.name != *name));
            if rules_in_place && bodies_in_place && removed {
                Ok(Outcome::AlreadyApplied)
            } else {
                Err(stale(resource))
            }
        }
        Err(e) => Err(waf_error(resource, e)),
    }
}
