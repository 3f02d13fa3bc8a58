//! Guardrails: limits a plan must respect, checked when planning and again just before applying.
//!
//! They bound the damage of a bad analysis or a bad ledger edit: how much one apply may add or
//! remove, how broad a blocked range may be, that no allowlisted range is ever blocked, and WAF's own
//! limits of entries per set and ASNs per rule (re-checked because a plan file can be edited by hand).

use std::fmt;

use ipnet::IpNet;

use super::{Plan, ResourceChange};
use crate::config::Config;
use crate::model::asn::MAX_ASNS_PER_STATEMENT;
use crate::model::waf::MAX_SET_ENTRIES;
use crate::util::cidr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    TooManyAdditions {
        count: usize,
        max: usize,
    },
    TooManyRemovals {
        count: usize,
        max: usize,
    },
    TooBroad {
        cidr: IpNet,
        set: String,
        min_prefix: u8,
    },
    Allowlisted {
        cidr: IpNet,
        set: String,
        allowed: IpNet,
    },
    OverSetLimit {
        set: String,
        count: usize,
    },
    OverAsnLimit {
        rule: String,
        count: usize,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::TooManyAdditions { count, max } => write!(
                f,
                "adds {count} entries, more than guardrails.max_additions = {max}"
            ),
            Violation::TooManyRemovals { count, max } => write!(
                f,
                "removes {count} entries, more than guardrails.max_removals = {max}"
            ),
            Violation::TooBroad {
                cidr,
                set,
                min_prefix,
            } => write!(
                f,
                "`{cidr}` in IP set `{set}` is broader than /{min_prefix}; list it in guardrails.allow_broad if intended"
            ),
            Violation::Allowlisted { cidr, set, allowed } => write!(
                f,
                "`{cidr}` in IP set `{set}` overlaps allowlisted `{allowed}`"
            ),
            Violation::OverSetLimit { set, count } => write!(
                f,
                "IP set `{set}` would hold {count} entries; WAF allows {MAX_SET_ENTRIES}"
            ),
            Violation::OverAsnLimit { rule, count } => write!(
                f,
                "rule `{rule}` would match {count} ASNs; one WAF ASN statement takes {MAX_ASNS_PER_STATEMENT}"
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct GuardrailError {
    pub violations: Vec<Violation>,
}

impl fmt::Display for GuardrailError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the plan breaks {} guardrail(s):", self.violations.len())?;
        for v in &self.violations {
            write!(f, "\n  - {v}")?;
        }
        Ok(())
    }
}

/// Checks `plan` against the configuration's guardrails and allowlist plus `extra_allowlist` (e.g.
/// the policies' allowlists). Reports every violation, not only the first.
pub fn check_guardrails(
    plan: &Plan,
    config: &Config,
    extra_allowlist: &[IpNet],
) -> Result<(), GuardrailError> {
    let rails = &config.guardrails;
    let allowlist: Vec<IpNet> = config
        .allowlist
        .iter()
        .chain(extra_allowlist)
        .copied()
        .collect();
    let mut violations = Vec::new();
    let (mut before_all, mut after_all) = (Vec::new(), Vec::new());
    for change in &plan.changes {
        let set = match change {
            ResourceChange::IpSet(set) => set,
            ResourceChange::WebAcl(acl) => {
                violations.extend(
                    acl.rules
                        .iter()
                        .filter(|r| r.after.asns().len() > MAX_ASNS_PER_STATEMENT)
                        .map(|r| Violation::OverAsnLimit {
                            rule: r.name.clone(),
                            count: r.after.asns().len(),
                        }),
                );
                continue;
            }
        };
        // Net counts per group and version: an entry moving between a group's two sets is neither.
        let tag = |n: &IpNet| (set.group.clone(), *n);
        before_all.extend(set.before.iter().flat_map(|s| s.addresses.iter().map(tag)));
        after_all.extend(set.after.iter().flat_map(|s| s.addresses.iter().map(tag)));
        for cidr in &set.added {
            if let Some(min_prefix) = rails.too_broad(cidr) {
                violations.push(Violation::TooBroad {
                    cidr: *cidr,
                    set: set.name.clone(),
                    min_prefix,
                });
            }
        }
        if let Some(after) = &set.after {
            if after.addresses.len() > MAX_SET_ENTRIES {
                violations.push(Violation::OverSetLimit {
                    set: set.name.clone(),
                    count: after.addresses.len(),
                });
            }
            if let Some((cidr, allowed)) = cidr::first_overlap(&after.addresses, &allowlist) {
                violations.push(Violation::Allowlisted {
                    cidr,
                    set: set.name.clone(),
                    allowed,
                });
            }
        }
    }
    before_all.sort_unstable();
    before_all.dedup();
    after_all.sort_unstable();
    after_all.dedup();
    let added = count_missing(&after_all, &before_all);
    let removed = count_missing(&before_all, &after_all);
    if added > rails.max_additions {
        violations.push(Violation::TooManyAdditions {
            count: added,
            max: rails.max_additions,
        });
    }
    if removed > rails.max_removals {
        violations.push(Violation::TooManyRemovals {
            count: removed,
            max: rails.max_removals,
        });
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(GuardrailError { violations })
    }
}

/// How many items of sorted `a` are not in sorted `b` (one merge walk).
fn count_missing<T: Ord>(a: &[T], b: &[T]) -> usize {
    let mut j = 0;
    a.iter()
        .filter(|x| {
            while j < b.len() && b[j] < **x {
                j += 1;
            }
            !(j < b.len() && b[j] == **x)
        })
        .count()
}
