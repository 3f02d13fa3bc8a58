//! The stamp at the end of the description of every IP set waftune writes: when, and a digest of
//! the addresses written. Comparing live addresses with the digest tells whether the set changed
//! outside waftune since, without keeping any state besides the ledger.

use ipnet::IpNet;
use jiff::Timestamp;

use crate::config::sha256_hex;

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
pub(super) fn parse_stamp(description: &str) -> Option<(&str, Timestamp, &str)> {
    let (base, stamp) = description.rsplit_once(STAMP_MARK)?;
    let (time, digest) = stamp.split_once(" sha256:")?;
    Some((base, time.parse().ok()?, digest))
}

/// Same configured text and same addresses digest (the stamp time alone does not warrant a write).
pub(super) fn same_stamped_content(live: &str, wanted: &str) -> bool {
    match (parse_stamp(live), parse_stamp(wanted)) {
        (Some((lb, _, ld)), Some((wb, _, wd))) => lb == wb && ld == wd,
        _ => false,
    }
}

/// Short digest of a sorted address list; 48 bits tell one set's versions apart with ease.
pub(super) fn addresses_digest(addresses: &[IpNet]) -> String {
    let mut text = String::with_capacity(addresses.len() * 20);
    for a in addresses {
        text.push_str(&a.to_string());
        text.push('\n');
    }
    sha256_hex(text.as_bytes())[..12].to_owned()
}
