//! Drift: changes made to a managed IP set outside waftune.
//!
//! The stamp waftune writes into a set's description holds the time of the plan and a digest of the
//! addresses it wrote. Live addresses matching the digest: no drift. Otherwise, the ledger as it was
//! at the stamp time usually rebuilds exactly what waftune wrote (the digest confirms it), and the
//! drift is the precise list of entries added and removed since. When it does not (the ledger was
//! rewritten since), the set is reported as changed without a list.

use ipnet::IpNet;

use super::desired::group_sets_at;
use super::stamp::{addresses_digest, parse_stamp};
use super::{Drift, DriftKind};
use crate::config::IpSetGroup;
use crate::ledger::Ledger;
use crate::util::cidr;
use crate::waf::IpSet;

pub(super) fn detect(
    group: &IpSetGroup,
    ledger: &Ledger,
    set: &IpSet,
    live: &[IpNet],
    desired: &[IpNet],
) -> Option<Drift> {
    let description = set.description.as_deref().unwrap_or_default();
    let Some((_, since, digest)) = parse_stamp(description) else {
        return (live != desired).then(|| Drift {
            set: set.name.clone(),
            since: None,
            kind: DriftKind::NotWrittenByWaftune,
        });
    };
    if addresses_digest(live) == digest {
        return None;
    }
    let written = group_sets_at(group, ledger, since)
        .ok()
        .and_then(|sets| sets.into_iter().find(|s| s.name == set.name))
        .map(|s| s.addresses)
        .filter(|w| addresses_digest(w) == digest);
    let kind = match written {
        Some(written) => {
            let (added_outside, removed_outside) = cidr::diff_sorted(&written, live);
            DriftKind::Entries {
                added_outside,
                removed_outside,
            }
        }
        None => DriftKind::Changed,
    };
    Some(Drift {
        set: set.name.clone(),
        since: Some(since),
        kind,
    })
}
