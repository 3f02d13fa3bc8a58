//! What the ledger and configuration want in WAF at a given instant.
//!
//! Per group: the active ledger ranges, merged (adjacent and contained ranges collapse), split by IP
//! version, then laid into sets of at most [`MAX_SET_ENTRIES`]: the group's set, and with
//! `rollover = true` a second one. Anything more is an error; entries are never dropped.

use std::collections::BTreeMap;

use ipnet::IpNet;
use jiff::Timestamp;

use super::PlanError;
use crate::config::{Config, IpSetGroup, ROLLOVER_SUFFIX};
use crate::ledger::{Ledger, LedgerEntry};
use crate::model::asn::MAX_ASNS_PER_STATEMENT;
use crate::model::waf::{IpVersion, MAX_SET_ENTRIES};
use crate::util::cidr;

/// One IP set as it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredSet {
    pub group: String,
    pub name: String,
    pub version: IpVersion,
    /// Sorted, merged, canonical.
    pub addresses: Vec<IpNet>,
}

/// Every set of every configured group, in configuration order (IPv4 sets first within a group).
pub fn desired_sets(
    config: &Config,
    ledger: &Ledger,
    now: Timestamp,
) -> Result<Vec<DesiredSet>, PlanError> {
    let mut by_group: BTreeMap<&str, Vec<IpNet>> = BTreeMap::new();
    for entry in ledger.active(now) {
        if config.group(&entry.group).is_none() {
            return Err(PlanError::UnknownGroup {
                cidr: entry.cidr,
                group: entry.group.clone(),
                known: config
                    .ip_set_groups
                    .iter()
                    .map(|g| format!("`{}`", g.name))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        by_group
            .entry(&entry.group)
            .or_default()
            .push(checked(entry)?);
    }
    let mut sets = Vec::new();
    for group in &config.ip_set_groups {
        let nets = by_group.remove(group.name.as_str()).unwrap_or_default();
        sets.extend(group_sets(group, &nets)?);
    }
    Ok(sets)
}

/// The active ASNs of every ASN list the configuration uses, sorted (a list may be empty). An
/// entry in a list no ASN rule uses, or a list longer than WAF's statement takes, is an error:
/// entries are never dropped.
pub fn desired_asns(
    config: &Config,
    ledger: &Ledger,
    now: Timestamp,
) -> Result<BTreeMap<String, Vec<u32>>, PlanError> {
    let lists = config.asn_lists();
    let mut by_list: BTreeMap<String, Vec<u32>> = lists
        .iter()
        .map(|l| ((*l).to_owned(), Vec::new()))
        .collect();
    for entry in ledger.active_asns(now) {
        let Some(asns) = by_list.get_mut(&entry.list) else {
            return Err(PlanError::UnknownAsnList {
                asn: entry.asn.to_string(),
                list: entry.list.clone(),
                known: lists
                    .iter()
                    .map(|l| format!("`{l}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        asns.push(entry.asn.number());
    }
    for (list, asns) in &mut by_list {
        asns.sort_unstable();
        asns.dedup();
        if asns.len() > MAX_ASNS_PER_STATEMENT {
            return Err(PlanError::TooManyAsns {
                list: list.clone(),
                count: asns.len(),
            });
        }
    }
    Ok(by_list)
}

/// The sets of one group as they were meant to be at `at`: entries already added then and not yet
/// expired. Used to tell what waftune last wrote from what changed outside it.
pub fn group_sets_at(
    group: &IpSetGroup,
    ledger: &Ledger,
    at: Timestamp,
) -> Result<Vec<DesiredSet>, PlanError> {
    // Stamps keep whole seconds, so an entry added within the stamped second counts as added by then.
    let added_before = at
        .checked_add(jiff::SignedDuration::from_secs(1))
        .unwrap_or(at);
    let nets = ledger
        .active(at)
        .filter(|e| e.group == group.name && e.added < added_before)
        .map(checked)
        .collect::<Result<Vec<_>, _>>()?;
    group_sets(group, &nets)
}

fn checked(entry: &LedgerEntry) -> Result<IpNet, PlanError> {
    // The ledger validates on load, but entries can also be built in code: WAF must never see these.
    cidr::check(entry.cidr).map_err(|reason| PlanError::InvalidLedgerEntry {
        group: entry.group.clone(),
        reason,
    })
}

fn group_sets(group: &IpSetGroup, nets: &[IpNet]) -> Result<Vec<DesiredSet>, PlanError> {
    let merged = cidr::aggregate(nets);
    let (v4, v6) = cidr::split_by_version(&merged);
    let mut sets = Vec::new();
    for (version, base, addresses) in [
        (IpVersion::V4, &group.ipv4_set_name, v4),
        (IpVersion::V6, &group.ipv6_set_name, v6),
    ] {
        let capacity = if group.rollover {
            2 * MAX_SET_ENTRIES
        } else {
            MAX_SET_ENTRIES
        };
        if addresses.len() > capacity {
            return Err(PlanError::TooManyEntries {
                group: group.name.clone(),
                version,
                count: addresses.len(),
                rollover: group.rollover,
            });
        }
        let mut chunks = addresses.chunks(MAX_SET_ENTRIES);
        // The group's own set always exists, even empty, so the rule referencing it keeps its shape.
        sets.push(DesiredSet {
            group: group.name.clone(),
            name: base.clone(),
            version,
            addresses: chunks.next().map(<[IpNet]>::to_vec).unwrap_or_default(),
        });
        if let Some(rest) = chunks.next() {
            sets.push(DesiredSet {
                group: group.name.clone(),
                name: format!("{base}{ROLLOVER_SUFFIX}"),
                version,
                addresses: rest.to_vec(),
            });
        }
    }
    Ok(sets)
}
