//! Address ranges as WAFv2 accepts them.
//!
//! WAFv2 rejects a CIDR whose address is not the network address (`10.2.2.1/24`) and any `/0`, and
//! compares IPv6 text literally, so every range waftune writes goes through [`parse`] (which refuses
//! what AWS would refuse, with the fix in the message) and [`aggregate`] (which merges adjacent and
//! contained ranges so that a set holds as few entries as possible). IPv6 is always written in the
//! compressed form of RFC 5952, which is what [`IpNet`]'s `Display` produces.
//!
//! Everything here is O(n log n) or better: sets reach 10,000 entries and plans compare two of them.

use std::cmp::Ordering;

use ipnet::IpNet;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("`{value}` is not an IP address or CIDR range")]
    Invalid { value: String },
    #[error("`{value}` is not a network address; did you mean `{network}`?")]
    HostBits { value: String, network: IpNet },
    #[error("`{value}` is a /0 range, which would match every client; WAF refuses it")]
    ZeroPrefix { value: String },
}

/// Parses one user-written address or range: `192.0.2.7` (a /32), `2001:db8::/32`, ...
///
/// Surrounding whitespace is ignored; anything AWS would reject is an error naming the value.
pub fn parse(value: &str) -> Result<IpNet, CidrError> {
    let text = value.trim();
    let net = match text.parse::<IpNet>() {
        Ok(net) => net,
        Err(_) => match text.parse::<std::net::IpAddr>() {
            Ok(addr) => IpNet::from(addr),
            Err(_) => {
                return Err(CidrError::Invalid {
                    value: value.to_owned(),
                });
            }
        },
    };
    check(unmap(net)).map_err(|e| match e {
        CidrError::HostBits { network, .. } => CidrError::HostBits {
            value: text.to_owned(),
            network,
        },
        CidrError::ZeroPrefix { .. } => CidrError::ZeroPrefix {
            value: text.to_owned(),
        },
        other => other,
    })
}

/// An IPv4-mapped IPv6 range (`::ffff:192.0.2.10/128`, `::ffff:192.0.2.0/120`) as the IPv4 range
/// it maps (`192.0.2.10/32`, `192.0.2.0/24`): WAF logs, matches and stores IPv4 clients as IPv4, so
/// a mapped entry would never block, never match an allowlist and aggregate into the wrong network.
/// Every other range is returned as it is.
pub fn unmap(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => {
                IpNet::V4(ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).expect("prefix 0..=32"))
            }
            None => net,
        },
        _ => net,
    }
}

/// Checks an already-typed range against WAF's rules (no /0, network address only).
pub fn check(net: IpNet) -> Result<IpNet, CidrError> {
    if net.prefix_len() == 0 {
        return Err(CidrError::ZeroPrefix {
            value: net.to_string(),
        });
    }
    if net.addr() != net.network() {
        return Err(CidrError::HostBits {
            value: net.to_string(),
            network: net.trunc(),
        });
    }
    Ok(net)
}

/// Merges adjacent and contained ranges: the result is sorted (IPv4 first), disjoint and minimal.
pub fn aggregate(nets: &[IpNet]) -> Vec<IpNet> {
    // ipnet sorts integer intervals and merges them in one pass: O(n log n).
    IpNet::aggregate(&nets.to_vec())
}

/// Splits ranges into (IPv4, IPv6), keeping their order.
pub fn split_by_version(nets: &[IpNet]) -> (Vec<IpNet>, Vec<IpNet>) {
    nets.iter().partition(|n| matches!(n, IpNet::V4(_)))
}

/// How many single addresses the ranges cover (not how many entries they are: that is `len()`).
///
/// Saturates at `u128::MAX`, which only a set of IPv6 /1 ranges could reach.
pub fn address_count(nets: &[IpNet]) -> u128 {
    nets.iter().fold(0u128, |sum, net| {
        let host_bits = u32::from(net.max_prefix_len() - net.prefix_len());
        sum.saturating_add(1u128.checked_shl(host_bits).unwrap_or(u128::MAX))
    })
}

/// Entries in `after` but not in `before`, and in `before` but not in `after`.
///
/// Both inputs must be sorted (as [`aggregate`] returns them); one merge walk, O(n). Generic, so
/// sorted ASN lists diff the same way.
pub fn diff_sorted<T: Ord + Copy>(before: &[T], after: &[T]) -> (Vec<T>, Vec<T>) {
    let (mut added, mut removed) = (Vec::new(), Vec::new());
    let (mut b, mut a) = (before.iter().peekable(), after.iter().peekable());
    loop {
        match (b.peek(), a.peek()) {
            (Some(x), Some(y)) => match x.cmp(y) {
                Ordering::Less => removed.push(*b.next().expect("peeked")),
                Ordering::Greater => added.push(*a.next().expect("peeked")),
                Ordering::Equal => {
                    b.next();
                    a.next();
                }
            },
            (Some(_), None) => removed.extend(b.by_ref().copied()),
            (None, Some(_)) => added.extend(a.by_ref().copied()),
            (None, None) => break,
        }
    }
    (added, removed)
}

/// Whether two ranges share at least one address (for CIDRs that means one contains the other).
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(b) || b.contains(a)
}

/// The first pair (range from `nets`, range from `guard`) that overlap.
///
/// `guard` is sorted and aggregated here, so each lookup is a binary search: O((n + m) log m).
pub fn first_overlap(nets: &[IpNet], guard: &[IpNet]) -> Option<(IpNet, IpNet)> {
    let guard = aggregate(guard);
    nets.iter().find_map(|net| {
        // The guard ranges are disjoint and sorted by (address, prefix): only the last one before
        // `net` can contain it, and only the first one from `net` on can lie inside it.
        let i = guard.partition_point(|g| g < net);
        [i.checked_sub(1), Some(i)]
            .into_iter()
            .flatten()
            .filter_map(|j| guard.get(j))
            .find(|g| overlaps(net, g))
            .map(|g| (*net, *g))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn strings(list: &[IpNet]) -> Vec<String> {
        list.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn parses_addresses_and_ranges() {
        assert_eq!(parse("192.0.2.7").unwrap().to_string(), "192.0.2.7/32");
        assert_eq!(
            parse(" 198.51.100.0/24 ").unwrap().to_string(),
            "198.51.100.0/24"
        );
        assert_eq!(parse("2001:db8::1").unwrap().to_string(), "2001:db8::1/128");
    }

    #[test]
    fn canonicalises_ipv6() {
        let net = parse("2001:0DB8:0000:0000:0000:0000:0000:0000/32").unwrap();
        assert_eq!(net.to_string(), "2001:db8::/32");
        assert_eq!(
            parse("2001:db8:0:0:1:0:0:0/80").unwrap().to_string(),
            "2001:db8:0:0:1::/80"
        );
    }

    #[test]
    fn host_bits_suggest_the_network() {
        assert_eq!(
            parse("10.2.2.1/24").unwrap_err().to_string(),
            "`10.2.2.1/24` is not a network address; did you mean `10.2.2.0/24`?"
        );
        assert_eq!(
            parse("2001:db8::1/64").unwrap_err().to_string(),
            "`2001:db8::1/64` is not a network address; did you mean `2001:db8::/64`?"
        );
    }

    #[test]
    fn refuses_zero_prefix_and_garbage() {
        assert_eq!(
            parse("0.0.0.0/0").unwrap_err(),
            CidrError::ZeroPrefix {
                value: "0.0.0.0/0".into()
            }
        );
        assert!(matches!(parse("::/0"), Err(CidrError::ZeroPrefix { .. })));
        for bad in [
            "",
            "-",
            "10.0.0.0/33",
            "1.2.3",
            "fe80::1%eth0",
            "10.0.0.0/8x",
        ] {
            assert_eq!(
                parse(bad).unwrap_err().to_string(),
                format!("`{bad}` is not an IP address or CIDR range")
            );
        }
    }

    #[test]
    fn ipv4_mapped_ipv6_is_ipv4() {
        assert_eq!(
            parse("::ffff:192.0.2.10").unwrap().to_string(),
            "192.0.2.10/32"
        );
        assert_eq!(
            parse("::FFFF:c000:0200/120").unwrap().to_string(),
            "192.0.2.0/24"
        );
        assert_eq!(
            parse("::ffff:192.0.2.10/120").unwrap_err().to_string(),
            "`::ffff:192.0.2.10/120` is not a network address; did you mean `192.0.2.0/24`?"
        );
        assert!(matches!(
            parse("::ffff:0.0.0.0/96"),
            Err(CidrError::ZeroPrefix { .. })
        ));
        // Not mapped: the IPv4-compatible form, a range wider than the mapped block, plain IPv6.
        for other in ["::c000:20a/128", "::/95", "2001:db8::ffff:c000:20a/128"] {
            assert_eq!(parse(other).unwrap().to_string(), other);
        }
    }

    #[test]
    fn aggregates_adjacent_and_contained() {
        let merged = aggregate(&nets(&[
            "10.0.0.128/25",
            "2001:db8::/33",
            "10.0.0.0/25",
            "10.0.0.7/32",
            "192.0.2.1/32",
            "2001:db8:8000::/33",
            "192.0.2.3/32",
        ]));
        assert_eq!(
            strings(&merged),
            [
                "10.0.0.0/24",
                "192.0.2.1/32",
                "192.0.2.3/32",
                "2001:db8::/32"
            ]
        );
    }

    #[test]
    fn splits_and_counts() {
        let all = nets(&["10.0.0.0/24", "2001:db8::/126", "192.0.2.1/32"]);
        let (v4, v6) = split_by_version(&all);
        assert_eq!(strings(&v4), ["10.0.0.0/24", "192.0.2.1/32"]);
        assert_eq!(strings(&v6), ["2001:db8::/126"]);
        assert_eq!(address_count(&all), 256 + 4 + 1);
        // All of IPv6 does not fit in a u128: the count saturates.
        assert_eq!(address_count(&nets(&["::/1", "8000::/1"])), u128::MAX);
    }

    #[test]
    fn diff_walks_sorted_lists() {
        let before = aggregate(&nets(&["10.0.0.1/32", "10.0.0.3/32", "2001:db8::/64"]));
        let after = aggregate(&nets(&["10.0.0.3/32", "10.0.0.5/32", "2001:db8::/64"]));
        let (added, removed) = diff_sorted(&before, &after);
        assert_eq!(strings(&added), ["10.0.0.5/32"]);
        assert_eq!(strings(&removed), ["10.0.0.1/32"]);
    }

    #[test]
    fn finds_overlap_with_guard_ranges() {
        let guard = nets(&["192.0.2.0/24", "2001:db8::/48"]);
        assert_eq!(
            first_overlap(&nets(&["10.0.0.0/8", "198.51.100.0/24"]), &guard),
            None
        );
        let hit = first_overlap(&nets(&["10.0.0.0/8", "192.0.2.128/25"]), &guard).unwrap();
        assert_eq!(hit.0.to_string(), "192.0.2.128/25");
        // A set entry broader than the guarded range also overlaps it.
        let hit = first_overlap(&nets(&["2001:db8::/32"]), &guard).unwrap();
        assert_eq!(hit.1.to_string(), "2001:db8::/48");
        assert_eq!(first_overlap(&nets(&["2001:db9::/32"]), &guard), None);
    }

    #[test]
    fn large_inputs_stay_fast() {
        // 50,000 consecutive /32s in a shuffled order merge into a few blocks; quadratic code would crawl.
        let list: Vec<IpNet> = (0..50_000u64)
            .map(|i| (i * 7_919 % 50_000) as u32 | 0x0a00_0000)
            .map(|n| IpNet::from(std::net::IpAddr::from(std::net::Ipv4Addr::from(n))))
            .collect();
        let merged = aggregate(&list);
        assert!(merged.len() < list.len());
        assert_eq!(address_count(&merged), 50_000);
        let (added, removed) = diff_sorted(&merged, &merged);
        assert!(added.is_empty() && removed.is_empty());
    }
}
