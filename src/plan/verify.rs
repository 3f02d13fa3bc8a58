//! A plan file is data to check, not to trust: before apply sends anything, every change's `after`
//! is derived again from the ledger (the one whose digest the plan records) and the configuration at
//! the plan's time, and must be exactly what the file says. A hand-edited plan (an address added to
//! `after`, a set emptied, a rule pointed elsewhere) is refused, naming the resource and the value.
//!
//! The file's `before`, `added` and `removed` describe the live state; apply checks them against
//! the live sets (see [`with_live_before`]) and evaluates the guardrails on what it reads there.

use std::collections::BTreeMap;
use std::fmt;

use ipnet::IpNet;

use super::build::{PlanError, WantedRules, wanted_rules};
use super::{
    Action, DesiredSet, IpSetChange, Plan, PlannedRule, PlannedStatement, RecommendedLimit,
    ResourceChange, WebAclChange, desired_asns, desired_sets, stamp_description,
};
use crate::config::{Config, GROUP_TAG, MANAGED_TAG};
use crate::ledger::Ledger;
use crate::util::cidr;
use crate::waf::account_of;
use crate::waf::live::managed_set_names;

/// What a plan file says that its inputs do not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Tampered {
    pub problems: Vec<Mismatch>,
}

/// One resource whose planned state is not what the ledger and configuration (or the live state)
/// give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// `IP set `NAME``, `web ACL `NAME``.
    pub resource: String,
    pub problem: String,
}

impl fmt::Display for Tampered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the plan file does not say what the ledger and the config give (was it edited?); nothing was applied: run plan again"
        )?;
        for m in &self.problems {
            write!(f, "\n  - {}: {}", m.resource, m.problem)?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Tampered(#[from] Tampered),
    /// The ledger and config no longer give a plan at all (e.g. a group removed).
    #[error(transparent)]
    Plan(#[from] PlanError),
}

/// Checks every change's planned state against `config` and `ledger` at the plan's time.
pub fn verify_plan(plan: &Plan, config: &Config, ledger: &Ledger) -> Result<(), VerifyError> {
    let desired = desired_sets(config, ledger, plan.created_at)?;
    let asns = desired_asns(config, ledger, plan.created_at)?;
    let mut problems = Vec::new();
    for change in &plan.changes {
        match change {
            ResourceChange::IpSet(c) => {
                let resource = format!("IP set `{}`", c.name);
                let mut say = |problem: String| {
                    problems.push(Mismatch {
                        resource: resource.clone(),
                        problem,
                    })
                };
                check_set(c, config, &desired, plan, &mut say);
            }
            ResourceChange::WebAcl(c) => {
                let resource = format!("web ACL `{}`", c.name);
                let mut say = |problem: String| {
                    problems.push(Mismatch {
                        resource: resource.clone(),
                        problem,
                    })
                };
                check_web_acl(c, config, (&desired, &asns), plan, &mut say)?;
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Tampered { problems }.into())
    }
}

fn check_set(
    c: &IpSetChange,
    config: &Config,
    desired: &[DesiredSet],
    plan: &Plan,
    say: &mut impl FnMut(String),
) {
    let want = desired.iter().find(|d| d.name == c.name);
    if let Some(before) = &c.before {
        let after = c.after.as_ref().map_or(&[][..], |a| &a.addresses[..]);
        let (added, removed) = cidr::diff_sorted(&before.addresses, after);
        if added != c.added || removed != c.removed {
            say(
                "its `added` and `removed` lists are not the difference of `before` and `after`"
                    .into(),
            );
        }
    } else if c.after.as_ref().map(|a| &a.addresses) != Some(&c.added) {
        say("its `added` list is not its `after` addresses".into());
    }
    if c.action == Action::Delete {
        let managed = managed_set_names(config).iter().any(|(n, _)| *n == c.name);
        if !managed {
            say("the config does not manage it, so waftune never deletes it".into());
        } else if want.is_some() {
            say("the ledger still wants it, so it is not to be deleted".into());
        } else if c.after.is_some() {
            say("a deleted set has no `after`".into());
        }
        return;
    }
    let Some(want) = want else {
        return say("the config and the ledger want no such set".into());
    };
    let Some(after) = &c.after else {
        return say("the plan has no `after` for it".into());
    };
    if c.group != want.group || c.version != want.version {
        say(format!(
            "the config puts it in group `{}` as {}, the plan in `{}` as {}",
            want.group,
            want.version.as_str(),
            c.group,
            c.version.as_str()
        ));
    }
    let (extra, missing) = cidr::diff_sorted(&want.addresses, &after.addresses);
    if let Some(value) = extra.first() {
        say(format!(
            "`after` holds `{value}`, which the ledger does not ({} such)",
            extra.len()
        ));
    }
    if let Some(value) = missing.first() {
        say(format!(
            "`after` lacks `{value}`, which the ledger holds ({} such)",
            missing.len()
        ));
    }
    let group = config.group(&want.group);
    let description =
        group.map(|g| stamp_description(&g.description, plan.created_at, &want.addresses));
    if description.as_deref() != Some(after.description.as_str()) {
        say(format!(
            "its description `{}` is not the one waftune writes",
            after.description
        ));
    }
    if c.action == Action::Create {
        let mut tags = group.map(|g| g.tags.clone()).unwrap_or_default();
        tags.insert(MANAGED_TAG.0.into(), MANAGED_TAG.1.into());
        tags.insert(GROUP_TAG.into(), want.group.clone());
        if c.tags != tags {
            say("its tags are not the configured ones".into());
        }
    }
}

fn check_web_acl(
    c: &WebAclChange,
    config: &Config,
    (desired, asns): (&[DesiredSet], &BTreeMap<String, Vec<u32>>),
    plan: &Plan,
    say: &mut impl FnMut(String),
) -> Result<(), PlanError> {
    let Some(acl_config) = config.web_acls.iter().find(|a| a.name == c.name) else {
        say("the config does not name it".into());
        return Ok(());
    };
    // Recommended limits come from logs apply does not read: the plan's limit stands for them.
    let recommended: BTreeMap<(String, String), RecommendedLimit> = c
        .rules
        .iter()
        .filter_map(|r| match &r.after.statement {
            PlannedStatement::RateBased(s) => Some((
                (c.name.clone(), r.name.clone()),
                RecommendedLimit {
                    limit: s.limit,
                    evidence: r.limit_evidence.clone().unwrap_or_default(),
                },
            )),
            PlannedStatement::IpSets { .. } | PlannedStatement::AsnMatch { .. } => None,
        })
        .collect();
    let WantedRules {
        rules: wanted,
        responses,
        absent,
    } = wanted_rules(acl_config, desired, asns, |_| None, &recommended)?;
    for removal in &c.removed_rules {
        if !absent.contains(&removal.name.as_str()) {
            say(format!(
                "rule `{}` is to be removed, but it is not an ASN rule whose list the ledger empties",
                removal.name
            ));
        }
    }
    for change in &c.rules {
        let Some((want, _)) = wanted.iter().find(|(w, _)| w.name == change.name) else {
            say(format!(
                "rule `{}` is not one the config defines",
                change.name
            ));
            continue;
        };
        if without_arns(&change.after) != *want {
            say(format!(
                "rule `{}` is not the rule the config and the ledger give",
                change.name
            ));
        }
        for set in change.after.set_refs() {
            let fits = set.arn.as_deref().is_none_or(|arn| {
                arn.contains(&format!("/ipset/{}/", set.name))
                    && account_of(arn) == plan.account.as_deref()
            });
            if !fits {
                say(format!(
                    "rule `{}` refers to IP set `{}` by the ARN `{}` of another set",
                    change.name,
                    set.name,
                    set.arn.as_deref().unwrap_or_default()
                ));
            }
        }
    }
    for body in &c.bodies {
        let fits = responses.iter().any(|r| {
            r.body_key == body.key
                && r.content_type == body.after.content_type
                && r.body == body.after.content
        });
        if !fits {
            say(format!(
                "response body `{}` is not the configured one",
                body.key
            ));
        }
    }
    Ok(())
}

fn without_arns(rule: &PlannedRule) -> PlannedRule {
    let mut rule = rule.clone();
    if let PlannedStatement::IpSets { sets } = &mut rule.statement {
        for set in sets {
            set.arn = None;
        }
    }
    rule
}

/// `plan` with each set's `before`, `added` and `removed` taken from the live addresses (by set
/// name; a set missing from `live` is empty), for the guardrails: they judge what a write would
/// really change, not what the file claims.
pub fn with_live_before(plan: &Plan, live: &BTreeMap<String, Vec<IpNet>>) -> Plan {
    let mut checked = plan.clone();
    for change in &mut checked.changes {
        let ResourceChange::IpSet(c) = change else {
            continue;
        };
        let before = live.get(&c.name).cloned().unwrap_or_default();
        let after = c.after.as_ref().map_or(&[][..], |a| &a.addresses[..]);
        (c.added, c.removed) = cidr::diff_sorted(&before, after);
        c.before = Some(super::IpSetState {
            description: String::new(),
            addresses: before,
        });
    }
    checked
}
