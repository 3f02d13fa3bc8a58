//! The ledger's blocks: every actor address inside a ledger entry comes back after the entry's
//! `added` time and is answered `BLOCK` by waftune's rule; then it stops, persists or rotates to a
//! neighbouring address, with the shares below. Draws come from their own stream, after every
//! class was generated, so a run without a ledger is unchanged.

use std::net::IpAddr;

use ipnet::IpNet;
use jiff::Timestamp;

use super::*;
use crate::{BlockTruth, Blocks, EntryTruth, Offender, Outcome};

/// Percent of the answered offenders that stop, persist and rotate ("answer with 403 and most of
/// it stops").
const STOP_PERCENT: u32 = 60;
const PERSIST_PERCENT: u32 = 20;
const ROTATE_PERCENT: u32 = 100 - STOP_PERCENT - PERSIST_PERCENT;
/// With `client_asn`, the other /24s of its ASN a rotating offender also moves to: enough for
/// `propose` to answer the ASN (docs/asn.md).
const ACROSS: usize = 2;

/// One offender's requests as generated before the ledger, the template of its later ones.
struct Plan {
    entry: usize,
    ip: u32,
    client: u32,
    /// (request, verdict) of its own requests.
    template: Vec<(Req, Verdict)>,
    /// Its first and last request: their span over the requests is its pace.
    first_ms: i64,
    last_ms: i64,
    /// Its first request at or after `added`, if it sent one.
    first_after: Option<i64>,
}

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).expect("inside the validated run")
}

impl Builder<'_> {
    pub(super) fn enforce(&mut self, blocks: &Blocks) -> BlockTruth {
        let mut rng = rng_for(self.opts.seed, stream::BLOCKS);
        let entry_of = |addr: &IpAddr| blocks.entries.iter().position(|e| e.cidr.contains(addr));
        self.events.sort_by_key(|e| (e.ts, e.client));

        // Each offender's requests; those from `added` on are replaced by the ones below.
        let mut plans: Vec<Plan> = Vec::new();
        let mut plan_of: BTreeMap<u32, usize> = BTreeMap::new();
        for ev in &self.events {
            let ip = self.clients[ev.client as usize].ip;
            let Some(entry) = entry_of(&self.ips[ip as usize].addr) else {
                continue;
            };
            let i = *plan_of.entry(ip).or_insert_with(|| {
                plans.push(Plan {
                    entry,
                    ip,
                    client: ev.client,
                    template: Vec::new(),
                    first_ms: ev.ts,
                    last_ms: ev.ts,
                    first_after: None,
                });
                plans.len() - 1
            });
            let p = &mut plans[i];
            p.template.push((ev.req, ev.verdict));
            p.last_ms = ev.ts;
            if ev.ts >= blocks.entries[entry].added.as_millisecond() {
                p.first_after.get_or_insert(ev.ts);
            }
        }
        self.events.retain(|e| {
            let ip = self.clients[e.client as usize].ip;
            plan_of
                .get(&ip)
                .is_none_or(|&i| e.ts < blocks.entries[plans[i].entry].added.as_millisecond())
        });
        // Plans are in the order of their first request: sort by address for a stable truth.
        plans.sort_by_key(|p| self.ips[p.ip as usize].addr);

        let mut entries: Vec<EntryTruth> = blocks
            .entries
            .iter()
            .map(|e| EntryTruth {
                cidr: e.cidr,
                added: e.added,
                enforced: !blocks.not_enforced.contains(&e.cidr),
                offenders: Vec::new(),
            })
            .collect();
        for p in plans {
            let e = &entries[p.entry];
            let t0 = p.first_after.unwrap_or_else(|| {
                e.added.as_millisecond().max(self.start_ms) + rng.random_range(1..=30) * MINUTE_MS
            });
            if t0 >= self.end_ms {
                continue;
            }
            let offender = self.react(&mut rng, &p, t0, e.enforced, blocks);
            entries[p.entry].offenders.push(offender);
        }
        BlockTruth {
            rule: blocks.rule.clone(),
            response_code: blocks.response_code,
            stopped_percent: STOP_PERCENT,
            persisting_percent: PERSIST_PERCENT,
            rotated_percent: ROTATE_PERCENT,
            entries,
        }
    }

    /// Sends `n` of the offender's requests from `client` at its pace from `t`, answered by
    /// waftune's rule or as before; returns the time after the last and the times sent.
    fn send<R: Rng>(
        &mut self,
        rng: &mut R,
        p: &Plan,
        client: u32,
        mut t: f64,
        n: u32,
        answered: bool,
    ) -> (f64, Vec<i64>) {
        let pace = ((p.last_ms - p.first_ms) as f64 / (p.template.len().max(2) - 1) as f64)
            .clamp(1_000.0, 60_000.0);
        let mut sent = Vec::new();
        for _ in 0..n {
            let (req, verdict) = *pick(rng, &p.template);
            let verdict = if answered { Verdict::Ledger } else { verdict };
            if self.push(t as i64, client, req, verdict) {
                sent.push(t as i64);
            }
            t += pace * rng.random_range(0.5..1.5);
        }
        (t, sent)
    }

    fn react<R: Rng>(
        &mut self,
        rng: &mut R,
        p: &Plan,
        t0: i64,
        enforced: bool,
        blocks: &Blocks,
    ) -> Offender {
        let burst = rng.random_range(5..=15);
        let (mut t, mut sent) = self.send(rng, p, p.client, t0 as f64, burst, enforced);
        let mut outcome = match (enforced, rng.random_range(0..100)) {
            (false, _) => Outcome::NotEnforced,
            (true, x) if x < STOP_PERCENT => Outcome::Stopped,
            (true, x) if x < STOP_PERCENT + PERSIST_PERCENT => Outcome::Persisting,
            (true, _) => Outcome::Rotated,
        };
        let mut rotated_to = None;
        let mut rotated_across = Vec::new();
        if outcome == Outcome::Rotated {
            match self.neighbour(rng, p.ip, blocks) {
                Some(ip) => {
                    self.move_to(rng, p, ip, t);
                    rotated_to = Some(self.ips[ip as usize].text.clone());
                    if self.opts.client_asn {
                        for ip in self.across(rng, p.ip, blocks) {
                            self.move_to(rng, p, ip, t);
                            rotated_across.push(self.ips[ip as usize].text.clone());
                        }
                    }
                }
                // The whole neighbourhood is blocked: it can only keep trying.
                None => outcome = Outcome::Persisting,
            }
        }
        if outcome == Outcome::Persisting {
            loop {
                t += lognormal(rng, 20.0 * MINUTE_MS as f64, 0.6)
                    .clamp(2.0 * MINUTE_MS as f64, 60.0 * MINUTE_MS as f64);
                if t >= self.end_ms as f64 {
                    break;
                }
                let n = rng.random_range(1..=3);
                let (next, more) = self.send(rng, p, p.client, t, n, true);
                t = next;
                sent.extend(more);
            }
        }
        let first = sent.first().copied().unwrap_or(t0);
        Offender {
            ip: self.ips[p.ip as usize].text.clone(),
            actor: self.actors[self.ips[p.ip as usize].actor as usize]
                .name
                .clone(),
            outcome,
            first_answer: enforced.then(|| ts(first)),
            last_request: ts(sent.last().copied().unwrap_or(first)),
            rotated_to,
            rotated_across,
        }
    }

    /// The offender carries on from `ip` with the same client software, a few minutes after `t`.
    fn move_to<R: Rng>(&mut self, rng: &mut R, p: &Plan, ip: u32, t: f64) {
        let old = &self.clients[p.client as usize];
        let spec = ClientSpec {
            agent: old.agent,
            lang: old.lang,
            bot: old.bot,
            dc_signal: old.dc_signal,
            host: old.host,
            cookies: old.cookies,
            tls: old.tls,
        };
        let client = self.add_client(rng, ip, spec);
        let start = t + (rng.random_range(2..=30) * MINUTE_MS) as f64;
        let n = rng.random_range(20..=120);
        self.send(rng, p, client, start, n, false);
    }

    /// Fresh addresses in [`ACROSS`] other /24s of `ip`'s hosting range (its ASN), inside no ledger
    /// entry, with `ip`'s geography; none outside the hosting ranges.
    fn across<R: Rng>(&mut self, rng: &mut R, ip: u32, blocks: &Blocks) -> Vec<u32> {
        let old = &self.ips[ip as usize];
        let IpAddr::V4(v4) = old.addr else {
            return Vec::new();
        };
        let Some(range) = HOSTING
            .iter()
            .find(|h| h.cidr.parse::<IpNet>().is_ok_and(|n| n.contains(&old.addr)))
        else {
            return Vec::new();
        };
        let mut nets = vec![u32::from(v4) >> 8];
        let mut out = Vec::new();
        for _ in 0..20 * ACROSS {
            if out.len() == ACROSS {
                break;
            }
            let addr = IpAddr::V4(self.alloc.v4_in(rng, range.cidr));
            let IpAddr::V4(a) = addr else { continue };
            if nets.contains(&(u32::from(a) >> 8))
                || blocks.entries.iter().any(|e| e.cidr.contains(&addr))
            {
                continue;
            }
            nets.push(u32::from(a) >> 8);
            out.push(self.copy_ip(ip, addr));
        }
        out
    }

    /// A new address with `ip`'s geography, actor and ASN.
    fn copy_ip(&mut self, ip: u32, addr: IpAddr) -> u32 {
        let old = &self.ips[ip as usize];
        self.ips.push(IpInfo {
            addr,
            text: addr.to_string(),
            country: old.country,
            actor: old.actor,
            rate_scoped: old.rate_scoped,
            geo_country_label: old.geo_country_label.clone(),
            geo_region_label: old.geo_region_label.clone(),
            asn: old.asn,
        });
        (self.ips.len() - 1) as u32
    }

    /// A fresh address in the /24 (/64) of `ip`, inside no ledger entry, with `ip`'s geography.
    fn neighbour<R: Rng>(&mut self, rng: &mut R, ip: u32, blocks: &Blocks) -> Option<u32> {
        let old = &self.ips[ip as usize];
        let len = if old.addr.is_ipv4() { 24 } else { 64 };
        let net = IpNet::new(old.addr, len)
            .expect("valid prefix length")
            .trunc();
        // Few tries: a /24 mostly covered by the ledger has no room to rotate into.
        for _ in 0..20 {
            let addr = match net {
                IpNet::V4(_) => IpAddr::V4(self.alloc.v4_in(rng, &net.to_string())),
                IpNet::V6(_) => IpAddr::V6(self.alloc.v6_in(rng, &net.to_string())),
            };
            if blocks.entries.iter().any(|e| e.cidr.contains(&addr)) {
                continue;
            }
            return Some(self.copy_ip(ip, addr));
        }
        None
    }
}
