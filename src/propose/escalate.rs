//! Escalation from the block-effect verdicts (`waftune report`'s section 4, computed by the caller:
//! this module does not import the report, which imports `propose`). A block that did not work
//! gets a stronger one, and the ledger entry and the evidence say why:
//!
//! - **persisting** (still sending 24 h after the first 403, being blocked): another strike, so the
//!   block runs `block_duration(strikes)` from now (the policy's `escalation`: its duration times
//!   `factor` per strike, at most `max`; a policy without escalation renews its duration from now).
//!   Once per new request seen: `last_seen` records the latest, as for a repeat offence.
//! - **rotated** (quiet, but new addresses with its fingerprint appeared in its /24 (/64) or ASN):
//!   the /24 (/64) it rotated within is proposed, with one more strike than the entry. Addresses it
//!   rotated to outside it (found through the ASN) are never proposed one by one: there the link is
//!   the fingerprint alone, which shoppers using the same browser share. The broad-range
//!   guardrail and the allowlist are checked first: a network they refuse is left out, and the
//!   change says so. Entries added by hand (`waftune block`) are never escalated.
//! - **rotated across its ASN** (the addresses it rotated to outside its own /24 (/64) span at
//!   least [`ASN_MIN_NETWORKS`] /24s (/64s) of its ASN) while the configuration has an ASN rule:
//!   the ASN is proposed into that rule's list, if [`asn::check`] passes; those addresses are then
//!   covered by it and not proposed. A refused ASN is a change that carries the refusal and who
//!   else lives there, and nothing more is proposed for those addresses.
//!
//! Pure: `now` is passed in.

use std::collections::{BTreeMap, BTreeSet};

use ipnet::IpNet;
use jiff::Timestamp;

use super::asn::{self, AsnChange, AsnChangeKind, AsnGuard};
use super::{Capacity, Change, ChangeKind, Proposal, ProposeError, add_entry, finish};
use crate::config::Guardrails;
use crate::ledger::{AsnEntry, LedgerEntry, MANUAL};
use crate::model::asn::{Asn, MAX_ASNS_PER_STATEMENT as MAX_ASNS};
use crate::policy::{BlockAction, PolicyAction, PolicySet};
use crate::util::cidr;
use crate::util::time::add_saturating;

/// What the logs showed about a ledger entry in force (a block-effect verdict that escalates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Still sending after the block; `last_seen` is its latest request.
    Persisting { last_seen: Timestamp },
    /// New addresses with its fingerprint appeared in its /24 (/64) or ASN after the block; `asn`
    /// is the blocked client's `clientAsn`, where logged.
    Rotated { to: Vec<IpNet>, asn: Option<u32> },
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

/// What may not be blocked: the allowlists, and ranges broader than the guardrails allow; and
/// whether (and where) an ASN may be proposed.
pub struct Limits<'a> {
    pub allow: &'a [IpNet],
    pub guardrails: &'a Guardrails,
    /// `None` without an ASN rule in the configuration: no ASN is ever proposed.
    pub asn: Option<AsnAnswer<'a>>,
}

/// Where a rotated campaign's ASN goes, and what [`asn::check`] judges it by.
pub struct AsnAnswer<'a> {
    /// The ASN list of the configuration's first ASN rule.
    pub list: &'a str,
    /// Every scanned client with a `clientAsn`, paired with it.
    pub clients: &'a [(u32, &'a crate::scan::ClientStats)],
    pub guard: AsnGuard<'a>,
}

/// Distinct /24s (/64s) of one ASN, other than its own, a blocked client must have rotated to
/// before its ASN is proposed: one other network is a neighbour, two are a campaign moving through
/// the provider.
pub const ASN_MIN_NETWORKS: usize = 2;

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
            Effect::Rotated { to, asn } => {
                // The entry's own network, if it rotated within it; elsewhere (the same ASN),
                // the ASN if it may be proposed.
                let home = network(entry.cidr);
                let away: BTreeSet<IpNet> = to
                    .iter()
                    .filter(|a| !home.contains(*a))
                    .map(|&a| network(a))
                    .collect();
                if let (Some(asn), Some(answer)) = (asn.and_then(|n| Asn::new(n).ok()), &limits.asn)
                    && away.len() >= ASN_MIN_NETWORKS
                {
                    propose_asn(&mut p, &entry, &block, asn, to, away.len(), answer, now);
                }
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
                    // Outside its own network the link is the fingerprint alone, which a common
                    // browser's shoppers share: only the guarded ASN answer covers those.
                    if !home.contains(&target) {
                        continue;
                    }
                    propose(&mut p, &entry, &block, target, &linked, limits, now);
                }
            }
        }
    }
    finish(p.ledger, p.changes, p.asn_changes, capacity)
}

/// Proposes `asn` for a campaign that rotated across `networks` /24s (/64s) of it, if
/// [`asn::check`] passes and it is not listed yet. A refusal is recorded once per ASN, with its
/// evidence.
#[allow(clippy::too_many_arguments)]
fn propose_asn(
    p: &mut Proposal,
    entry: &LedgerEntry,
    block: &BlockAction,
    asn: Asn,
    to: &[IpNet],
    networks: usize,
    answer: &AsnAnswer<'_>,
    now: Timestamp,
) {
    let listed: Vec<&AsnEntry> = p
        .ledger
        .active_asns(now)
        .filter(|e| e.list == answer.list)
        .collect();
    if listed.iter().any(|e| e.asn == asn)
        || p.asn_changes
            .iter()
            .any(|c| c.asn == asn && c.list == answer.list)
    {
        return;
    }
    let linked: Vec<String> = to.iter().map(|a| format!("`{}`", a.addr())).collect();
    let why = format!(
        "campaign of `{}` (policy `{}`) rotated across {networks} networks of {asn} after the \
         block (verdict `rotated`): new address(es) {} with its fingerprint",
        entry.cidr,
        entry.policy,
        linked.join(", "),
    );
    let strikes = entry.strikes + 1;
    let mut e = AsnEntry {
        asn,
        list: answer.list.to_owned(),
        policy: entry.policy.clone(),
        reason: why,
        added: now,
        expires: Some(add_saturating(now, block.block_duration(strikes))),
    };
    let refused = if listed.len() >= MAX_ASNS {
        Some(format!(
            "ASN list `{}` holds {MAX_ASNS} ASNs already, all one WAF statement takes",
            answer.list
        ))
    } else {
        asn::check(asn, answer.clients, &answer.guard)
            .map(|residents| e.reason = format!("{}; {residents}", e.reason))
            .err()
            .map(|refusal| refusal.to_string())
    };
    match refused {
        None => {
            p.asn_changes.push(AsnChange::of(AsnChangeKind::Add, &e));
            p.ledger.asns.push(e);
        }
        Some(refused) => {
            e.reason = format!(
                "{}; {refused}; its addresses outside the blocked /24 (/64) are not proposed",
                e.reason
            );
            e.expires = None;
            p.asn_changes
                .push(AsnChange::of(AsnChangeKind::Refused, &e));
        }
    }
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
        run_with(entries, Vec::new(), observed, guardrails, None)
    }

    fn run_with(
        entries: Vec<LedgerEntry>,
        asns: Vec<AsnEntry>,
        observed: &[Observed],
        guardrails: &Guardrails,
        asn: Option<AsnAnswer<'_>>,
    ) -> Proposal {
        let policies = crate::policy::parse_str(POLICY, Path::new("p.toml"), None)
            .unwrap()
            .policies;
        let proposal = Proposal {
            ledger: Ledger {
                entries,
                history: Vec::new(),
                asns,
            },
            changes: Vec::new(),
            asn_changes: Vec::new(),
        };
        let allow: Vec<IpNet> = vec!["203.0.113.128/25".parse().unwrap()];
        let limits = Limits {
            allow: &allow,
            guardrails,
            asn,
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
        rotated_in(cidr, to, None)
    }

    fn rotated_in(cidr: &str, to: &[&str], asn: Option<u32>) -> Observed {
        let to = to.iter().map(|a| a.parse().unwrap()).collect();
        observed(cidr, Effect::Rotated { to, asn })
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
        // The /24 it rotated in (folding the address entries inside it); never the address
        // linked by its fingerprint alone elsewhere.
        assert_eq!(cidrs, ["198.51.100.0/24"]);
        let net = &p.ledger.entries[0];
        assert_eq!(net.strikes, 3);
        assert!(net.reason.contains("`198.51.100.8`"), "{}", net.reason);
        let kinds: Vec<ChangeKind> = p.changes.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            [ChangeKind::Add, ChangeKind::Merge, ChangeKind::Merge]
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

    const HOSTING: u32 = 64496;
    const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";

    /// Scanned clients: `(address, user agent, country)`, three requests each.
    fn clients(who: &[(&str, &str, &str)]) -> Vec<crate::scan::ClientStats> {
        let text: String = who
            .iter()
            .flat_map(|(ip, ua, country)| {
                (0..3).map(move |i| {
                    format!(
                        r#"{{"timestamp":{},"action":"ALLOW","httpRequest":{{"clientIp":"{ip}","country":"{country}","uri":"/","headers":[{{"name":"User-Agent","value":"{ua}"}}]}}}}"#,
                        1_795_132_800_000i64 + i * 1000
                    ) + "\n"
                })
            })
            .collect();
        crate::scan::scan_bytes("t", text.as_bytes(), &Default::default()).clients
    }

    /// The campaign: blocked at 198.51.100.7, back from its /24 and from two other /24s of its
    /// ASN.
    const TO: [&str; 3] = ["198.51.100.8/32", "192.0.2.1/32", "198.18.0.1/32"];

    fn answer<'a>(pairs: &'a [(u32, &'a crate::scan::ClientStats)]) -> Option<AsnAnswer<'a>> {
        Some(AsnAnswer {
            list: "hosting",
            clients: pairs,
            guard: AsnGuard {
                home_country: Some("JP"),
                ..AsnGuard::default()
            },
        })
    }

    /// The entry at 198.51.100.7 rotated to [`TO`] in its ASN, with an ASN rule.
    fn across(pairs: &[(u32, &crate::scan::ClientStats)], asns: Vec<AsnEntry>) -> Proposal {
        let o = [rotated_in("198.51.100.7/32", &TO, Some(HOSTING))];
        let g = Guardrails::default();
        run_with(
            vec![entry("198.51.100.7/32", "scan")],
            asns,
            &o,
            &g,
            answer(pairs),
        )
    }

    #[test]
    fn rotating_across_its_asn_proposes_the_asn_when_the_check_passes() {
        let site = clients(&[
            ("192.0.2.1", "python-requests/2.32", "US"),
            ("198.18.0.1", "python-requests/2.32", "US"),
            ("203.0.113.9", CHROME, "JP"),
        ]);
        let pairs: Vec<(u32, &crate::scan::ClientStats)> = site
            .iter()
            .map(|c| {
                (
                    if c.key.to_string().starts_with("203.") {
                        64500
                    } else {
                        HOSTING
                    },
                    c,
                )
            })
            .collect();
        let g = Guardrails::default();
        let p = across(&pairs, Vec::new());
        assert_eq!(p.ledger.asns.len(), 1);
        let a = &p.ledger.asns[0];
        assert_eq!(
            (a.asn.number(), a.list.as_str(), a.policy.as_str()),
            (HOSTING, "hosting", "scan")
        );
        // Strike 3 of the entry's policy, as for its /24: 3 d from now.
        assert_eq!(a.expires, Some(t("2026-10-08T00:00:00Z")));
        assert!(
            a.reason.starts_with(
                "campaign of `198.51.100.7/32` (policy `scan`) rotated across 2 networks of AS64496 \
                 after the block (verdict `rotated`): new address(es) `198.51.100.8`, `192.0.2.1`, \
                 `198.18.0.1` with its fingerprint; AS64496: 2 clients, 6 requests; 0 verified"
            ),
            "{}",
            a.reason
        );
        assert_eq!(p.asn_changes.len(), 1);
        assert_eq!(p.asn_changes[0].kind, AsnChangeKind::Add);
        // Its own /24 is still proposed; the addresses the ASN covers are not.
        let cidrs: Vec<String> = p
            .ledger
            .entries
            .iter()
            .map(|e| e.cidr.to_string())
            .collect();
        assert_eq!(cidrs, ["198.51.100.0/24"]);
        // Listed already: nothing new, and the addresses stay covered by it.
        let again = across(&pairs, p.ledger.asns.clone());
        assert!(again.asn_changes.is_empty());
        assert_eq!(again.ledger.asns, p.ledger.asns);
        assert_eq!(again.ledger.entries.len(), 1);
        // One other network is not a campaign across the ASN; no ASN rule, no ASN.
        for (to, asn) in [(&TO[..2], answer(&pairs)), (&TO[..], None)] {
            let o = [rotated_in("198.51.100.7/32", to, Some(HOSTING))];
            let p = run_with(
                vec![entry("198.51.100.7/32", "scan")],
                Vec::new(),
                &o,
                &g,
                asn,
            );
            assert!(p.ledger.asns.is_empty() && p.asn_changes.is_empty());
            assert!(
                !p.ledger
                    .entries
                    .iter()
                    .any(|e| e.cidr.to_string() == "192.0.2.1/32")
            );
        }
    }

    #[test]
    fn a_refused_asn_is_reported_with_its_residents_and_nothing_else_proposed() {
        // A home-country browser lives in the ASN too.
        let site = clients(&[
            ("192.0.2.1", "python-requests/2.32", "US"),
            ("198.18.0.1", "python-requests/2.32", "US"),
            ("198.18.0.2", CHROME, "JP"),
        ]);
        let pairs: Vec<(u32, &crate::scan::ClientStats)> =
            site.iter().map(|c| (HOSTING, c)).collect();
        let p = across(&pairs, Vec::new());
        assert!(p.ledger.asns.is_empty());
        let [refused] = &p.asn_changes[..] else {
            panic!("{:?}", p.asn_changes);
        };
        assert_eq!(
            (refused.kind, refused.expires),
            (AsnChangeKind::Refused, None)
        );
        assert!(
            refused.reason.contains(
                "never proposed: it carries a meaningful share of home-country browsers. AS64496: \
                 3 clients, 9 requests; 0 verified crawler(s); 1 home-country browser(s)"
            ) && refused
                .reason
                .ends_with("its addresses outside the blocked /24 (/64) are not proposed"),
            "{}",
            refused.reason
        );
        let cidrs: Vec<String> = p
            .ledger
            .entries
            .iter()
            .map(|e| e.cidr.to_string())
            .collect();
        assert_eq!(cidrs, ["198.51.100.0/24"]);
    }
}
