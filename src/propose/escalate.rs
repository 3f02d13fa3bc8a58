//! Escalation from the block-effect verdicts (`waftune report`'s section 4, computed by the caller:
//! this module does not import the report, which imports `propose`). A block that did not work
//! gets a stronger one, and the ledger entry and the evidence say why:
//!
//! - **persisting** (still sending 24 h after the first 403, being blocked): another strike, so the
//!   block runs `block_duration(strikes)` from now (the policy's `escalation`: its duration times
//!   `factor` per strike, at most `max`; a policy without escalation renews its duration from now).
//!   Once per new request seen: `last_seen` records the latest, as for a repeat offence.
//! - **rotated** (quiet, but new addresses with its fingerprint appeared in its /24 (/64) or ASN):
//!   the /24 (/64) it rotated within is proposed, with one more strike than the entry; addresses it
//!   rotated to outside it (found through the ASN) are proposed as addresses. The broad-range
//!   guardrail and the allowlist are checked first: a network they refuse is left out, and the
//!   change says so. Entries added by hand (`waftune block`) are never escalated.
//!
//! Pure: `now` is passed in.

use std::collections::BTreeMap;

use ipnet::IpNet;
use jiff::Timestamp;

use super::{Capacity, Change, ChangeKind, Proposal, ProposeError, add_entry, finish};
use crate::config::Guardrails;
use crate::ledger::{LedgerEntry, MANUAL};
use crate::policy::{BlockAction, PolicyAction, PolicySet};
use crate::util::cidr;
use crate::util::time::add_saturating;

/// What the logs showed about a ledger entry in force (a block-effect verdict that escalates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Still sending after the block; `last_seen` is its latest request.
    Persisting { last_seen: Timestamp },
    /// New addresses with its fingerprint appeared in its /24 (/64) or ASN after the block.
    Rotated { to: Vec<IpNet> },
}

/// One entry's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub cidr: IpNet,
    pub group: String,
    pub effect: Effect,
    /// The verdict's reason, in one line (for a persisting entry's `reason`).
    pub why: String,
}

/// What may not be blocked: the allowlists, and ranges broader than the guardrails allow.
pub struct Limits<'a> {
    pub allow: &'a [IpNet],
    pub guardrails: &'a Guardrails,
}

/// The /24 (IPv4) or /64 (IPv6) of an address or narrower range; a wider range is its own.
fn network(net: IpNet) -> IpNet {
    let len = if net.addr().is_ipv4() { 24 } else { 64 };
    IpNet::new(net.addr(), len.min(net.prefix_len()))
        .map(|n| n.trunc())
        .unwrap_or(net)
}

/// Applies the verdicts to a proposal (after [`super::update_ledger`]). A persisting entry that a
/// new offence already extended in this run gets no second strike, but at least the block its own
/// policy gives that strike.
pub fn escalate(
    proposal: Proposal,
    observed: &[Observed],
    policies: &PolicySet,
    limits: &Limits<'_>,
    capacity: &Capacity,
    now: Timestamp,
) -> Result<Proposal, ProposeError> {
    let mut p = proposal;
    let action = |policy: &str| -> Option<BlockAction> {
        policies
            .policies
            .iter()
            .find(|p| p.name == policy)
            .and_then(|p| match &p.action {
                PolicyAction::Block(b) => Some(b.clone()),
                PolicyAction::Report(_) => None,
            })
    };
    for o in observed {
        let touched = p.changes.iter().position(|c| {
            matches!(c.kind, ChangeKind::Extend | ChangeKind::Add)
                && c.group == o.group
                && c.cidr == o.cidr
        });
        let Some(i) = p
            .ledger
            .entries
            .iter()
            .position(|e| e.group == o.group && e.cidr == o.cidr)
        else {
            continue;
        };
        let entry = p.ledger.entries[i].clone();
        let Some(block) = action(&entry.policy).filter(|_| entry.policy != MANUAL) else {
            continue;
        };
        match &o.effect {
            Effect::Persisting { last_seen } => {
                let e = &mut p.ledger.entries[i];
                if let Some(c) = touched {
                    // A new offence (of any policy) already counted this run's strike: the block
                    // still runs at least as long as the entry's own policy gives that strike.
                    let until = add_saturating(now, block.block_duration(e.strikes));
                    if e.expires.is_some_and(|old| old < until) {
                        e.expires = Some(until);
                        e.reason = format!(
                            "{}; persisting after the block (verdict `persisting`: {})",
                            e.reason, o.why
                        );
                        p.changes[c] = Change::of(p.changes[c].kind, e);
                    }
                    continue;
                }
                if *last_seen <= e.last_seen {
                    continue;
                }
                e.strikes += 1;
                let until = add_saturating(now, block.block_duration(e.strikes));
                // Never shorter: an entry without an end keeps none.
                e.expires = e.expires.map(|old| old.max(until));
                e.last_seen = *last_seen;
                e.reason = format!(
                    "persisting after the block (verdict `persisting`: {}): strike {}",
                    o.why, e.strikes
                );
                p.changes.push(Change::of(ChangeKind::Extend, e));
            }
            Effect::Rotated { to } => {
                // The entry's own network, if it rotated within it; elsewhere (the same ASN),
                // the addresses it rotated to.
                let home = network(entry.cidr);
                let mut targets: BTreeMap<IpNet, Vec<IpNet>> = BTreeMap::new();
                for &a in to {
                    let target = if home.contains(&a) && home != entry.cidr {
                        home
                    } else {
                        a
                    };
                    targets.entry(target).or_default().push(a);
                }
                for (target, linked) in targets {
                    propose(&mut p, &entry, &block, target, &linked, limits, now);
                }
            }
        }
    }
    finish(p.ledger, p.changes, capacity)
}

/// Proposes `target` for a rotated entry, unless it is blocked already or the limits refuse it.
fn propose(
    p: &mut Proposal,
    entry: &LedgerEntry,
    block: &BlockAction,
    target: IpNet,
    linked: &[IpNet],
    limits: &Limits<'_>,
    now: Timestamp,
) {
    if p.ledger
        .entries
        .iter()
        .any(|e| e.group == entry.group && e.cidr.contains(&target))
    {
        return;
    }
    let linked: Vec<String> = linked.iter().map(|a| format!("`{}`", a.addr())).collect();
    let why = format!(
        "rotated after the block of `{}` (verdict `rotated`): new address(es) {} with its \
         fingerprint",
        entry.cidr,
        linked.join(", "),
    );
    let refused = match limits.guardrails.too_broad(&target) {
        Some(min) => Some(format!("broader than the guardrail's /{min}")),
        None => limits
            .allow
            .iter()
            .find(|a| cidr::overlaps(a, &target))
            .map(|a| format!("overlaps allowlisted `{a}`")),
    };
    if let Some(refused) = refused {
        p.changes.push(Change {
            kind: ChangeKind::Covered,
            cidr: target,
            group: entry.group.clone(),
            policy: entry.policy.clone(),
            strikes: entry.strikes,
            expires: entry.expires,
            reason: format!("{why}; not proposed: {refused}"),
        });
        return;
    }
    let strikes = entry.strikes + 1;
    add_entry(
        &mut p.ledger,
        &mut p.changes,
        LedgerEntry {
            cidr: target,
            group: entry.group.clone(),
            policy: entry.policy.clone(),
            reason: why,
            first_seen: entry.first_seen,
            last_seen: now,
            added: now,
            expires: Some(add_saturating(now, block.block_duration(strikes))),
            strikes,
        },
    );
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::ledger::Ledger;

    const POLICY: &str = r#"
[[policy]]
name = "scan"
description = "d"
key = "ip"
[policy.thresholds]
requests = 3
[policy.action]
type = "block"
group = "blocklist"
duration = "1d"
escalation = { factor = 2, max = "3d" }
"#;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn entry(cidr: &str, policy: &str) -> LedgerEntry {
        LedgerEntry {
            cidr: cidr.parse().unwrap(),
            group: "blocklist".into(),
            policy: policy.into(),
            reason: "r".into(),
            first_seen: t("2026-10-01T00:00:00Z"),
            last_seen: t("2026-10-01T00:00:00Z"),
            added: t("2026-10-01T00:00:00Z"),
            expires: Some(t("2026-10-06T00:00:00Z")),
            strikes: 2,
        }
    }

    fn run(entries: Vec<LedgerEntry>, observed: &[Observed], guardrails: &Guardrails) -> Proposal {
        let policies = crate::policy::parse_str(POLICY, Path::new("p.toml"), None)
            .unwrap()
            .policies;
        let proposal = Proposal {
            ledger: Ledger {
                entries,
                history: Vec::new(),
                asns: Vec::new(),
            },
            changes: Vec::new(),
        };
        let allow: Vec<IpNet> = vec!["203.0.113.128/25".parse().unwrap()];
        let limits = Limits {
            allow: &allow,
            guardrails,
        };
        let capacity: Capacity = [("blocklist".to_owned(), 100)].into();
        escalate(
            proposal,
            observed,
            &policies,
            &limits,
            &capacity,
            t("2026-10-05T00:00:00Z"),
        )
        .unwrap()
    }

    fn observed(cidr: &str, effect: Effect) -> Observed {
        Observed {
            cidr: cidr.parse().unwrap(),
            group: "blocklist".into(),
            effect,
            why: "w".into(),
        }
    }

    fn rotated(cidr: &str, to: &[&str]) -> Observed {
        let to = to.iter().map(|a| a.parse().unwrap()).collect();
        observed(cidr, Effect::Rotated { to })
    }

    #[test]
    fn persisting_gets_a_strike_once_and_manual_entries_none() {
        let persisting = observed(
            "198.51.100.7/32",
            Effect::Persisting {
                last_seen: t("2026-10-04T12:00:00Z"),
            },
        );
        let g = Guardrails::default();
        let p = run(
            vec![entry("198.51.100.7/32", "scan")],
            std::slice::from_ref(&persisting),
            &g,
        );
        let e = &p.ledger.entries[0];
        // Strike 3: 1 d doubled twice is 4 d, capped at 3 d from now.
        assert_eq!(
            (e.strikes, e.expires, e.last_seen),
            (
                3,
                Some(t("2026-10-08T00:00:00Z")),
                t("2026-10-04T12:00:00Z")
            )
        );
        assert!(e.reason.starts_with("persisting after the block"));
        assert_eq!(p.changes[0].kind, ChangeKind::Extend);
        // The same logs again: nothing new.
        let again = run(
            p.ledger.entries.clone(),
            std::slice::from_ref(&persisting),
            &g,
        );
        assert!(again.changes.is_empty());
        let manual = run(vec![entry("198.51.100.7/32", MANUAL)], &[persisting], &g);
        assert!(manual.changes.is_empty());
    }

    #[test]
    fn rotated_gets_its_network_within_the_guardrails_and_the_allowlist() {
        let g = Guardrails::default();
        let p = run(
            vec![
                entry("198.51.100.7/32", "scan"),
                entry("198.51.100.9/32", "scan"),
            ],
            &[rotated(
                "198.51.100.7/32",
                &["198.51.100.8/32", "192.0.2.1/32"],
            )],
            &g,
        );
        let cidrs: Vec<String> = p
            .ledger
            .entries
            .iter()
            .map(|e| e.cidr.to_string())
            .collect();
        // The /24 it rotated in (folding the address entries inside it); the address found
        // through the ASN elsewhere.
        assert_eq!(cidrs, ["192.0.2.1/32", "198.51.100.0/24"]);
        let net = &p.ledger.entries[1];
        assert_eq!(net.strikes, 3);
        assert!(net.reason.contains("`198.51.100.8`"), "{}", net.reason);
        let kinds: Vec<ChangeKind> = p.changes.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            [
                ChangeKind::Add,
                ChangeKind::Add,
                ChangeKind::Merge,
                ChangeKind::Merge
            ]
        );
        // An allowlisted range inside the /24, or a guardrail refusing /24s: left as it is, and
        // the change says why.
        let p = run(
            vec![entry("203.0.113.7/32", "scan")],
            &[rotated("203.0.113.7/32", &["203.0.113.8/32"])],
            &g,
        );
        assert_eq!(p.ledger.entries.len(), 1);
        assert!(
            p.changes[0]
                .reason
                .ends_with("overlaps allowlisted `203.0.113.128/25`")
        );
        let strict = Guardrails {
            min_prefix_v4: 28,
            ..Guardrails::default()
        };
        let p = run(
            vec![entry("198.51.100.7/32", "scan")],
            &[rotated("198.51.100.7/32", &["198.51.100.8/32"])],
            &strict,
        );
        assert_eq!(p.changes[0].kind, ChangeKind::Covered);
        assert!(
            p.changes[0]
                .reason
                .ends_with("broader than the guardrail's /28")
        );
    }
}
