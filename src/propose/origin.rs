//! The origin's counts per policy key, for thresholds on origin signals (`origin_5xx`,
//! `origin_5xx_share`, `origin_time_share`): each key's requests, 5xx and origin time in the
//! ALB or CloudFront logs read beside the WAF logs, summed over the addresses in its network.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::origin::scan::OriginTraffic;
use crate::policy::OriginCounts;
use crate::scan::ClientKey;

/// Origin clients by address, and the site's totals.
pub struct OriginIndex {
    by_addr: BTreeMap<IpAddr, (u64, u64, u64)>,
    site_5xx: u64,
    site_origin_ms: u64,
}

impl OriginIndex {
    pub fn new(o: &OriginTraffic) -> OriginIndex {
        OriginIndex {
            by_addr: o
                .clients
                .iter()
                .filter_map(|c| match c.key {
                    ClientKey::Addr(a) => Some((
                        a,
                        (
                            c.summary.requests,
                            c.summary.status.s5xx,
                            c.summary.origin_ms,
                        ),
                    )),
                    _ => None,
                })
                .collect(),
            site_5xx: o.totals.status.s5xx,
            site_origin_ms: o.totals.origin_ms,
        }
    }

    /// The origin traffic of every address in `key` (an address is a /32 or /128).
    pub fn counts(&self, key: IpNet) -> OriginCounts {
        let mut c = OriginCounts {
            site_5xx: self.site_5xx,
            site_origin_ms: self.site_origin_ms,
            ..OriginCounts::default()
        };
        for (requests, s5xx, ms) in self
            .by_addr
            .range(key.network()..=key.broadcast())
            .map(|(_, v)| v)
        {
            c.requests += requests;
            c.s5xx += s5xx;
            c.origin_ms += ms;
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::origin::scan::{OriginClient, StatusCounts, Summary};

    fn client(ip: &str, requests: u64, s5xx: u64, origin_ms: u64) -> OriginClient {
        OriginClient {
            key: ClientKey::Addr(ip.parse().unwrap()),
            summary: Summary {
                requests,
                status: StatusCounts {
                    s5xx,
                    ..StatusCounts::default()
                },
                origin_ms,
                ..Summary::default()
            },
            minutes: Vec::new(),
        }
    }

    #[test]
    fn a_key_sums_the_addresses_in_its_network() {
        let o = OriginTraffic {
            clients: vec![
                client("192.0.2.1", 10, 3, 1000),
                client("192.0.2.200", 5, 1, 500),
                client("198.51.100.1", 100, 0, 8500),
            ],
            totals: Summary {
                requests: 115,
                status: StatusCounts {
                    s5xx: 4,
                    ..StatusCounts::default()
                },
                origin_ms: 10_000,
                ..Summary::default()
            },
            ..OriginTraffic::default()
        };
        let ix = OriginIndex::new(&o);
        let net = ix.counts("192.0.2.0/24".parse().unwrap());
        assert_eq!(
            (
                net.requests,
                net.s5xx,
                net.origin_ms,
                net.site_5xx,
                net.site_origin_ms
            ),
            (15, 4, 1500, 4, 10_000)
        );
        let one = ix.counts("192.0.2.1/32".parse().unwrap());
        assert_eq!((one.requests, one.s5xx), (10, 3));
        assert_eq!(ix.counts("203.0.113.0/24".parse().unwrap()).requests, 0);
    }
}
