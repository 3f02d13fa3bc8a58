//! Drawing unique, valid client addresses from CIDR ranges.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use rand::Rng;

/// Hands out addresses that were never handed out before in this run, so that actors never share one.
#[derive(Default)]
pub(super) struct IpAllocator {
    used: BTreeSet<IpAddr>,
}

const ATTEMPTS: usize = 10_000;

impl IpAllocator {
    /// Reserves `addr`; false when it was already taken.
    pub(super) fn take(&mut self, addr: IpAddr) -> bool {
        self.used.insert(addr)
    }

    /// A fresh host address inside `net` (never the network, `.0` or `.255` address).
    ///
    /// # Panics
    /// When `net` is not a valid IPv4 CIDR (the tables are static) or is exhausted.
    pub(super) fn v4_in<R: Rng>(&mut self, rng: &mut R, net: &str) -> Ipv4Addr {
        let net: Ipv4Net = net.parse().expect("static IPv4 CIDR");
        let base = u32::from(net.network());
        let span = 1u64 << (32 - u32::from(net.prefix_len()));
        for _ in 0..ATTEMPTS {
            let addr = Ipv4Addr::from(base + rng.random_range(0..span) as u32);
            let last = addr.octets()[3];
            if last == 0 || last == 255 {
                continue;
            }
            if self.take(IpAddr::V4(addr)) {
                return addr;
            }
        }
        panic!("address range {net} exhausted");
    }

    /// A fresh address under the IPv6 prefix `net`: a random /64 below it and a random interface id
    /// (a privacy address, or a DHCPv6-style small one that prints with `::`).
    ///
    /// # Panics
    /// When `net` is not a valid IPv6 CIDR of at most /64.
    pub(super) fn v6_in<R: Rng>(&mut self, rng: &mut R, net: &str) -> Ipv6Addr {
        let net: Ipv6Net = net.parse().expect("static IPv6 CIDR");
        let len = u32::from(net.prefix_len());
        assert!(len <= 64, "IPv6 prefix {net} longer than /64");
        let base = u128::from(net.network());
        for _ in 0..ATTEMPTS {
            let subnet_bits = 64 - len;
            let subnet: u128 = if subnet_bits == 0 {
                0
            } else {
                u128::from(rng.random::<u64>() >> (64 - subnet_bits))
            };
            let iid: u64 = if rng.random_bool(0.15) {
                rng.random_range(1..0xffff)
            } else {
                rng.random::<u64>() | 1
            };
            let addr = Ipv6Addr::from(base | (subnet << 64) | u128::from(iid));
            if self.take(IpAddr::V6(addr)) {
                return addr;
            }
        }
        panic!("address range {net} exhausted");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn addresses_stay_inside_their_ranges_and_are_unique() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut alloc = IpAllocator::default();
        let net: Ipv4Net = "157.55.39.0/24".parse().unwrap();
        let mut seen = BTreeSet::new();
        for _ in 0..200 {
            let a = alloc.v4_in(&mut rng, "157.55.39.0/24");
            assert!(net.contains(&a));
            assert!(seen.insert(a));
        }
        let net6: Ipv6Net = "240b:10::/32".parse().unwrap();
        for _ in 0..200 {
            let a = alloc.v6_in(&mut rng, "240b:10::/32");
            assert!(net6.contains(&a));
            // Display is the RFC 5952 compressed form and parses back.
            assert_eq!(a.to_string().parse::<Ipv6Addr>().unwrap(), a);
        }
    }
}
