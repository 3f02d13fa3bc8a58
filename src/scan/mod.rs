//! The local scan engine: one parallel pass over all inputs that aggregates everything later stages need.
//!
//! Chunks of whole lines (from any file) are handed to worker threads; each worker folds the records of
//! the clients it owns into its own [`TrafficBuilder`] and hands the other records to their owners
//! (`route`), and the builders are merged at the end, so the hot loop takes no locks. Memory grows with
//! distinct clients and their active minutes, never with the number of records read.

pub mod minutes;
mod route;
pub mod stats;

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

use hashbrown::HashMap;
use hashbrown::hash_map::Entry;
use ipnet::IpNet;
use rayon::prelude::*;
use serde::Serialize;

use crate::log::{
    Action, ChunkReader, InputFile, Malformed, RecordSink, ScanRecord, TimeRange, parse_chunk,
    reader::{Chunk, WholeFile},
};
use crate::policy::{KeyCounts, KeyKind, MatchSet, Policy, TextCache, TextIds};
use crate::util::alloc::release_free_memory;
pub use stats::{
    ActionCounts, ClientAcc, ClientKey, ClientStats, Count, MINUTE_MS, Peak, WINDOWS, minute_of,
};
use stats::{Counts, Interner, Keep, Kind, RecordIds};

/// How many malformed items are kept as examples (all are counted).
pub const MALFORMED_EXAMPLES: usize = 10;

/// What to scan for.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    pub range: TimeRange,
    /// ISO 3166 alpha-2 code of the site's home country (`JP`); `None` disables the domestic split.
    pub home_country: Option<String>,
    /// Parse every record with the full log model (slower): for `--strict`, and set by
    /// [`ScanOptions::with_policies`] when a policy matches on headers the lean view does not keep.
    pub validate: bool,
    /// Policies whose matching requests are counted per key (client or prefix) during the pass.
    pub policies: Vec<Policy>,
    /// Which clients and prefixes get their value lists and minutes.
    pub detail: Detail,
}

/// Which clients and prefixes of [`Traffic`] get their value lists (paths, user agents, countries,
/// labels, rules, response codes) and minutes; the others keep their totals, peaks and distinct
/// counts (the lists of a week's 100,000 clients and prefixes would be most of its memory). Keys
/// a policy counted enough requests for to fire always get them (see [`Traffic::policy_keys`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Detail {
    /// Every client and prefix.
    #[default]
    All,
    /// The `n` busiest clients and the `n` busiest prefixes, as `analyze --top n` lists them.
    Busiest(usize),
    /// Only those policy keys (what `propose` looks at).
    PolicyKeys,
}

impl ScanOptions {
    /// Adds policies to count, switching to the full model when one of them needs all headers.
    pub fn with_policies(mut self, policies: Vec<Policy>) -> ScanOptions {
        self.validate |= policies.iter().any(|p| p.matcher.reads_other_headers());
        self.policies = policies;
        self
    }
}

/// Everything one scan learned, independent of which engine produced it.
#[derive(Debug, Clone, Default)]
pub struct Traffic {
    pub files: u64,
    /// Records inside the time range (the ones analysed).
    pub records: u64,
    /// Records read but outside `--since/--until`.
    pub out_of_range: u64,
    pub malformed: u64,
    /// The first [`MALFORMED_EXAMPLES`] problems in input order.
    pub malformed_examples: Vec<Malformed>,
    /// Records whose `clientIp` is not an address; they are still counted under that text.
    pub unparseable_client_ips: u64,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
    pub actions: ActionCounts,
    /// Requests per epoch minute by action.
    pub per_minute: BTreeMap<u32, ActionCounts>,
    /// Per epoch minute: COUNT-mode matches and the domestic/overseas split. Filled by the local
    /// scan and by Athena's statement; `None` from an Athena run that read hours from the rollup,
    /// which does not store it.
    pub per_minute_detail: Option<BTreeMap<u32, MinuteDetail>>,
    pub home_country: Option<String>,
    pub geo: GeoSplit,
    pub countries: Vec<Count>,
    pub rules: Vec<Count>,
    pub labels: Vec<Count>,
    pub count_rules: Vec<Count>,
    /// Sorted by requests (descending), then key.
    pub clients: Vec<ClientStats>,
    /// Per /24 (IPv4) and /64 (IPv6), sorted like `clients`.
    pub prefixes: Vec<ClientStats>,
    /// Per policy of [`ScanOptions::policies`] (same order): its matching requests by key, sorted
    /// like `clients`. Keys are networks: /32 or /128 for `key = "ip"`, /24 or /64 for `"prefix"`.
    /// Only the keys that may fire: at least the policy's `min_requests` matched requests, and
    /// counts that may meet its thresholds (see [`crate::policy::Thresholds::may_fire`]); every
    /// key for a policy without thresholds, and every key with a request for a relative one.
    pub policy_keys: Vec<Vec<ClientStats>>,
}

/// Requests from the home country, from elsewhere, and with no known country (`-`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GeoSplit {
    pub domestic: u64,
    pub overseas: u64,
    pub unknown: u64,
}

/// What a minute held beyond its actions (see [`Traffic::per_minute_detail`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MinuteDetail {
    /// Requests in which at least one rule matched in COUNT mode.
    pub counted: u64,
    #[serde(flatten)]
    pub geo: GeoSplit,
}

impl MinuteDetail {
    fn merge(&mut self, other: &MinuteDetail) {
        self.counted += other.counted;
        self.geo.merge(&other.geo);
    }
}

impl GeoSplit {
    /// Counts one request from `country` (`-` or empty: unknown).
    pub fn count(&mut self, country: &str, home: Option<&str>) {
        self.add(country, home, 1);
    }

    /// Counts `requests` from `country`: the one rule both engines split by.
    pub fn add(&mut self, country: &str, home: Option<&str>, requests: u64) {
        let side = match home {
            _ if country == "-" || country.is_empty() => &mut self.unknown,
            Some(home) if home.eq_ignore_ascii_case(country) => &mut self.domestic,
            _ => &mut self.overseas,
        };
        *side += requests;
    }

    pub fn merge(&mut self, other: &GeoSplit) {
        self.domestic += other.domestic;
        self.overseas += other.overseas;
        self.unknown += other.unknown;
    }
}

/// One minute's counts in a builder: its actions and its detail, found with one lookup.
#[derive(Debug, Clone, Copy, Default)]
struct MinuteCounts {
    actions: ActionCounts,
    detail: MinuteDetail,
}

/// Minutes per block of [`PerMinute`].
const MINUTE_BLOCK: u32 = 16;

/// A builder's counts per minute, in blocks of [`MINUTE_BLOCK`] consecutive minutes. A week's
/// 10,080 minutes fill 630 blocks (0.7 MB), where a table of single minutes kept up to 40% of its
/// slots free, 1.3 MB in each worker, and both its old and new slots while it doubled.
#[derive(Debug, Default)]
struct PerMinute {
    blocks: HashMap<u32, Box<[MinuteCounts; MINUTE_BLOCK as usize]>>,
}

impl PerMinute {
    fn get_mut(&mut self, minute: u32) -> &mut MinuteCounts {
        let block = self
            .blocks
            .entry(minute / MINUTE_BLOCK)
            .or_insert_with(|| Box::new([MinuteCounts::default(); MINUTE_BLOCK as usize]));
        &mut block[(minute % MINUTE_BLOCK) as usize]
    }

    /// The minutes that had requests (every counted request has an action), in no order.
    fn iter(&self) -> impl Iterator<Item = (u32, &MinuteCounts)> {
        self.blocks.iter().flat_map(|(&b, block)| {
            let first = b * MINUTE_BLOCK;
            (first..=first + (MINUTE_BLOCK - 1))
                .zip(block.iter())
                .filter(|(_, c)| c.actions.total() > 0)
        })
    }
}

/// A client's accumulator in one worker.
#[derive(Debug, Clone, Default)]
struct Client {
    acc: ClientAcc,
    /// Bit `i`: address-keyed policy `i` (see [`TrafficBuilder::shared_bits`]) matched every request
    /// of this client so far, so its statistics for that policy are `acc`, kept once rather than
    /// copied into the policy's map (policies that match nearly everything, such as floods, would
    /// otherwise hold a second copy of every client). The first request it does not match copies
    /// `acc` into the map and clears the bit.
    shared: u64,
}

/// A worker's clients by key. IPv4 addresses, nearly every client, are keyed by their 4 bytes in a
/// table of positions in `v4`, which holds the clients in fixed blocks: a hash table keeps up to
/// half its slots free, and a free slot of 8 bytes wastes less than one of a whole [`Client`],
/// while blocks grow without copying.
#[derive(Debug, Default)]
struct ClientMap {
    v4_at: HashMap<Ipv4Addr, u32>,
    v4: Blocks<(Ipv4Addr, Client)>,
    other: HashMap<ClientKey, Client>,
}

impl ClientMap {
    fn get_or_default(&mut self, key: ClientKey) -> &mut Client {
        match key {
            ClientKey::Addr(IpAddr::V4(ip)) => {
                let v4 = &mut self.v4;
                let at = *self
                    .v4_at
                    .entry(ip)
                    .or_insert_with(|| v4.push((ip, Client::default())));
                &mut v4.get_mut(at).1
            }
            key => self.other.entry(key).or_default(),
        }
    }

    fn len(&self) -> usize {
        self.v4.len() + self.other.len()
    }

    fn values(&self) -> impl Iterator<Item = &Client> {
        self.v4.iter().map(|(_, c)| c).chain(self.other.values())
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut Client> {
        let v4 = self.v4.iter_mut().map(|(_, c)| c);
        v4.chain(self.other.values_mut())
    }

    fn iter(&self) -> impl Iterator<Item = (ClientKey, &Client)> {
        let v4 = self
            .v4
            .iter()
            .map(|(ip, c)| (ClientKey::Addr((*ip).into()), c));
        v4.chain(self.other.iter().map(|(k, c)| (k.clone(), c)))
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = (ClientKey, &mut Client)> {
        let v4 = self.v4.iter_mut();
        let v4 = v4.map(|(ip, c)| (ClientKey::Addr((*ip).into()), c));
        v4.chain(self.other.iter_mut().map(|(k, c)| (k.clone(), c)))
    }

    fn into_iter(self) -> impl Iterator<Item = (ClientKey, Client)> {
        drop(self.v4_at);
        let v4 = self.v4.into_iter();
        let v4 = v4.map(|(ip, c)| (ClientKey::Addr(ip.into()), c));
        v4.chain(self.other)
    }
}

/// Items in blocks of [`BLOCK`]: a list that grows without moving what it holds, so it never holds
/// two copies while growing, and wastes at most one block.
#[derive(Debug)]
struct Blocks<T> {
    blocks: Vec<Vec<T>>,
}

/// Items per block of [`Blocks`]; a block of clients (about 120 KB) stays below glibc's mmap
/// threshold (see `main.rs`).
const BLOCK: usize = 1024;

impl<T> Default for Blocks<T> {
    fn default() -> Self {
        Blocks { blocks: Vec::new() }
    }
}

impl<T> Blocks<T> {
    /// Adds `item` and returns its position.
    fn push(&mut self, item: T) -> u32 {
        if self.blocks.last().is_none_or(|b| b.len() == BLOCK) {
            self.blocks.push(Vec::with_capacity(BLOCK));
        }
        let at = (self.blocks.len() - 1) * BLOCK + self.blocks.last().map_or(0, Vec::len);
        self.blocks
            .last_mut()
            .expect("a block with room")
            .push(item);
        u32::try_from(at).expect("fewer than 2^32 clients per worker")
    }

    fn get_mut(&mut self, at: u32) -> &mut T {
        let at = at as usize;
        &mut self.blocks[at / BLOCK][at % BLOCK]
    }

    fn len(&self) -> usize {
        self.blocks.iter().map(Vec::len).sum()
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.blocks.iter().flatten()
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.blocks.iter_mut().flatten()
    }

    fn into_iter(self) -> impl Iterator<Item = T> {
        self.blocks.into_iter().flatten()
    }
}

/// A worker's partial aggregate.
#[derive(Debug, Default)]
pub struct TrafficBuilder {
    range: TimeRange,
    detail: Detail,
    policies: Vec<Policy>,
    /// The policies' matchers, sharing conditions; the cache is this worker's, by `names`' ids.
    matchers: MatchSet,
    match_cache: TextCache,
    /// Per policy: the bit it shares client accumulators under (see [`Client::shared`]), 0 for
    /// prefix-keyed policies (a key sums several clients) and past the 64th policy.
    shared_bits: Vec<u64>,
    policy_keys: Vec<HashMap<IpNet, ClientAcc>>,
    home_country: Option<String>,
    records: u64,
    out_of_range: u64,
    malformed: u64,
    malformed_examples: Vec<Malformed>,
    unparseable: u64,
    first_ms: Option<i64>,
    last_ms: Option<i64>,
    actions: ActionCounts,
    per_minute: PerMinute,
    geo: GeoSplit,
    names: Interner,
    clients: ClientMap,
    /// Other workers' clients, already in this builder's numbering: merged key by key when
    /// finishing, in parallel, instead of here one by one.
    more_clients: Vec<ClientMap>,
    /// Scratch space for one record's label and COUNT-rule ids.
    label_ids: Vec<u32>,
    count_rule_ids: Vec<u32>,
}

impl TrafficBuilder {
    pub fn new(options: &ScanOptions) -> TrafficBuilder {
        let matchers = MatchSet::new(options.policies.iter().map(|p| &p.matcher));
        let match_cache = matchers.cache();
        TrafficBuilder {
            range: options.range,
            detail: options.detail,
            home_country: options.home_country.clone(),
            policies: options.policies.clone(),
            matchers,
            match_cache,
            shared_bits: (0..options.policies.len())
                .map(|i| match options.policies[i].key {
                    KeyKind::Ip if i < 64 => 1 << i,
                    _ => 0,
                })
                .collect(),
            policy_keys: vec![HashMap::new(); options.policies.len()],
            ..TrafficBuilder::default()
        }
    }

    pub fn merge(mut self, other: TrafficBuilder) -> TrafficBuilder {
        self.records += other.records;
        self.out_of_range += other.out_of_range;
        self.malformed += other.malformed;
        self.malformed_examples.extend(other.malformed_examples);
        self.keep_first_examples();
        self.unparseable += other.unparseable;
        self.first_ms = min_opt(self.first_ms, other.first_ms);
        self.last_ms = self.last_ms.max(other.last_ms);
        self.actions.merge(&other.actions);
        for (m, a) in other.per_minute.iter() {
            let mine = self.per_minute.get_mut(m);
            mine.actions.merge(&a.actions);
            mine.detail.merge(&a.detail);
        }
        self.geo.merge(&other.geo);
        let remap = self.names.absorb(&other.names);
        for mut theirs in std::iter::once(other.clients).chain(other.more_clients) {
            for client in theirs.values_mut() {
                client.acc.counts.remap(&remap);
            }
            self.more_clients.push(theirs);
        }
        for (mine, theirs) in self.policy_keys.iter_mut().zip(other.policy_keys) {
            merge_keyed(mine, theirs, &remap);
        }
        self
    }

    fn keep_first_examples(&mut self) {
        self.malformed_examples.sort();
        self.malformed_examples.truncate(MALFORMED_EXAMPLES);
    }

    pub fn finish(self, files: u64) -> Traffic {
        // The scan's buffers and the hash tables it outgrew are free now.
        release_free_memory();
        let names = &self.names;
        let mut all: Vec<ClientMap> = std::iter::once(self.clients)
            .chain(self.more_clients)
            .collect();
        let mut policy_keys = self.policy_keys;
        let shared = unshare_split_clients(&mut all, &mut policy_keys);
        let busiest = match self.detail {
            Detail::All => None,
            Detail::Busiest(0) => None,
            Detail::Busiest(n) => Some(n),
            Detail::PolicyKeys => Some(0),
        };
        let keep = match busiest {
            None => Keep::All,
            Some(busiest) => Keep::Some {
                busiest,
                keys: can_fire(&self.policies, &policy_keys, &shared, &self.shared_bits),
            },
        };
        let shared = SharedBits::new(shared);
        // Every counted record is in exactly one client's accumulator (of one worker, summed here
        // one worker per task).
        let totals = all
            .par_iter()
            .map(|clients| {
                let mut totals = Counts::default();
                for client in clients.values() {
                    totals.add_summary_of(&client.acc.counts);
                }
                totals
            })
            .reduce(Counts::default, |mut a, b| {
                a.merge(&b);
                a
            });
        // Into one list of its final size, each worker's map freed once it is moved.
        let mut parts = Vec::with_capacity(all.iter().map(ClientMap::len).sum());
        for clients in all {
            parts.extend(clients.into_iter().map(|(key, client)| (key, client.acc)));
        }
        let (mut clients, mut prefixes) = stats::finish_clients_keeping(parts, names, &keep);
        // What the accumulators held is free now; the lists built next need other sizes.
        release_free_memory();
        let policy_keys = self
            .policies
            .iter()
            .zip(policy_keys)
            .zip(&self.shared_bits)
            .map(|((policy, keys), &bit)| {
                // Keys that cannot fire: their statistics are not built (as Athena's queries
                // leave out those with too few requests).
                let mut v: Vec<ClientStats> = keys
                    .into_iter()
                    .filter(|(_, acc)| may_fire(policy, acc.requests(), || acc_counts(acc)))
                    .map(|(k, acc)| acc.finish(ClientKey::Prefix(k), names))
                    .collect();
                if bit != 0 {
                    v.extend(
                        clients
                            .iter()
                            .filter(|c| shared.of(&c.key) & bit != 0 && may_fire_for(policy, c))
                            .filter_map(|c| match c.key {
                                ClientKey::Addr(ip) => Some(ClientStats {
                                    key: ClientKey::Prefix(policy.key.key(ip)),
                                    ..c.clone()
                                }),
                                _ => None,
                            }),
                    );
                }
                sort_clients(&mut v);
                v
            })
            .collect();
        rayon::join(
            || sort_clients(&mut clients),
            || sort_clients(&mut prefixes),
        );
        Traffic {
            files,
            records: self.records,
            out_of_range: self.out_of_range,
            malformed: self.malformed,
            malformed_examples: self.malformed_examples,
            unparseable_client_ips: self.unparseable,
            first_ms: self.first_ms,
            last_ms: self.last_ms,
            actions: self.actions,
            per_minute: self
                .per_minute
                .iter()
                .map(|(m, c)| (m, c.actions))
                .collect(),
            per_minute_detail: Some(self.per_minute.iter().map(|(m, c)| (m, c.detail)).collect()),
            home_country: self.home_country,
            geo: self.geo,
            countries: totals.sorted(Kind::Country, names),
            rules: totals.sorted(Kind::Rule, names),
            labels: totals.sorted(Kind::Label, names),
            count_rules: totals.sorted(Kind::CountRule, names),
            clients,
            prefixes,
            policy_keys,
        }
    }
}

/// Settles [`Client::shared`] across workers: a client's statistics for a policy are its own only
/// when every worker that saw it shares them; in the others' the policy's map receives a copy of
/// the worker's accumulator. Returns, for the clients that still share, what all workers share.
fn unshare_split_clients(
    all: &mut [ClientMap],
    policy_keys: &mut [HashMap<IpNet, ClientAcc>],
) -> HashMap<ClientKey, Shared> {
    let mut common: HashMap<ClientKey, Shared> = HashMap::new();
    if all
        .iter()
        .flat_map(ClientMap::values)
        .all(|c| c.shared == 0)
    {
        return common;
    }
    for clients in all.iter() {
        for (key, client) in clients.iter() {
            let s = common.entry(key).or_insert(Shared {
                bits: client.shared,
                requests: 0,
                blocked: 0,
                minutes: 0,
            });
            s.bits &= client.shared;
            s.requests += client.acc.requests();
            s.blocked += client.acc.tally.get(Action::Block);
            s.minutes += client.acc.minutes.active();
        }
    }
    for clients in all.iter_mut() {
        for (key, client) in clients.iter_mut() {
            let (ClientKey::Addr(ip), Some(keep)) = (&key, common.get(&key).map(|s| s.bits)) else {
                continue;
            };
            let mut split = client.shared & !keep;
            while split != 0 {
                let i = split.trailing_zeros() as usize;
                split &= split - 1;
                policy_keys[i]
                    .entry(IpNet::from(*ip))
                    .or_default()
                    .merge(&client.acc);
            }
            client.shared = keep;
        }
    }
    common.retain(|_, s| s.bits != 0);
    common
}

/// What the workers that saw a client share of it (see [`unshare_split_clients`]).
#[derive(Debug, Clone, Copy)]
struct Shared {
    /// [`Client::shared`] bits common to all of them.
    bits: u64,
    /// The client's requests and blocked requests, over all of them.
    requests: u64,
    blocked: u64,
    /// The sum of their active minutes (a minute two of them saw counts twice).
    minutes: u64,
}

/// The [`Shared`] bits of the addresses that still share, sorted: all that the policy keys read of
/// them once [`can_fire`] has chosen the keys to detail: 32 bytes an address, where the table took
/// slots of 57 bytes and kept up to half of them free, while every client's statistics are built
/// (7.5 MB of the week's `propose` in `benches/memory.sh`).
struct SharedBits(Vec<(IpAddr, u64)>);

impl SharedBits {
    fn new(shared: HashMap<ClientKey, Shared>) -> SharedBits {
        let mut bits: Vec<(IpAddr, u64)> = shared
            .into_iter()
            .filter_map(|(key, s)| match key {
                ClientKey::Addr(ip) => Some((ip, s.bits)),
                _ => None,
            })
            .collect();
        bits.sort_unstable_by_key(|&(ip, _)| ip);
        SharedBits(bits)
    }

    /// The bits `key` shares (none unless it is an address).
    fn of(&self, key: &ClientKey) -> u64 {
        let ClientKey::Addr(ip) = key else {
            return 0;
        };
        let found = self.0.binary_search_by_key(ip, |&(ip, _)| ip);
        found.map_or(0, |at| self.0[at].1)
    }
}

/// Whether `policy` may fire for a key with `requests` matched requests and the counts `counts`
/// returns (see [`crate::policy::Thresholds::may_fire`]). Without thresholds, and with a relative
/// limit (whose percentile is taken over every key the policy matched), `min_requests` decides.
fn may_fire(policy: &Policy, requests: u64, counts: impl FnOnce() -> KeyCounts) -> bool {
    let t = &policy.thresholds;
    requests >= t.min_requests() && (t.list.is_empty() || t.is_relative() || t.may_fire(&counts()))
}

/// A key's counts from its merged accumulator, for [`may_fire`].
fn acc_counts(acc: &ClientAcc) -> KeyCounts {
    let minutes = acc.minutes.buckets();
    KeyCounts {
        requests: acc.requests(),
        peaks: stats::window_peaks(&minutes).map(|p| p.requests),
        distinct_uris: acc.counts.distinct(Kind::Uri),
        blocked: acc.tally.get(Action::Block),
        active_minutes: minutes.len() as u64,
        ..KeyCounts::default()
    }
}

/// Whether `policy` may fire for a key with these finished statistics (see
/// [`crate::policy::Thresholds::may_fire`]): the keys [`Traffic::policy_keys`] lists, whichever
/// engine counted them.
pub fn may_fire_for(policy: &Policy, c: &ClientStats) -> bool {
    may_fire(policy, c.requests, || key_counts(c))
}

/// The counts a policy's thresholds compare that a key's finished statistics hold alone; what
/// depends on the period or the origin is the caller's to add.
pub fn key_counts(c: &ClientStats) -> KeyCounts {
    KeyCounts {
        requests: c.requests,
        peaks: c.peaks.map(|p| p.requests),
        distinct_uris: c.distinct_uris,
        blocked: c.actions.block,
        active_minutes: c.active_minutes,
        ..KeyCounts::default()
    }
}

/// The clients and prefixes some policy may fire for (see [`may_fire`]), whose statistics
/// [`Traffic::policy_keys`] and a finding's evidence show. A client several workers saw is judged
/// by bounds: its peaks and distinct paths by its requests, its active minutes by their sum.
fn can_fire(
    policies: &[Policy],
    policy_keys: &[HashMap<IpNet, ClientAcc>],
    shared: &HashMap<ClientKey, Shared>,
    shared_bits: &[u64],
) -> HashSet<ClientKey> {
    let mut keys = HashSet::new();
    for ((own, policy), &bit) in policy_keys.iter().zip(policies).zip(shared_bits) {
        keys.extend(
            own.iter()
                .filter(|(_, acc)| may_fire(policy, acc.requests(), || acc_counts(acc)))
                .map(|(&net, _)| match net.prefix_len() == net.max_prefix_len() {
                    true => ClientKey::Addr(net.addr()),
                    false => ClientKey::Prefix(net),
                }),
        );
        keys.extend(
            shared
                .iter()
                .filter(|(_, s)| {
                    s.bits & bit != 0
                        && may_fire(policy, s.requests, || KeyCounts {
                            requests: s.requests,
                            peaks: [s.requests; 4],
                            distinct_uris: s.requests,
                            blocked: s.blocked,
                            active_minutes: s.minutes,
                            ..KeyCounts::default()
                        })
                })
                .map(|(key, _)| key.clone()),
        );
    }
    keys
}

/// Adds `other`'s accumulators (ids in `other`'s numbering, translated by `remap`) into `into`.
fn merge_keyed<K: std::hash::Hash + Eq>(
    into: &mut HashMap<K, ClientAcc>,
    other: HashMap<K, ClientAcc>,
    remap: &[u32],
) {
    for (k, mut acc) in other {
        acc.counts.remap(remap);
        match into.entry(k) {
            Entry::Occupied(mut mine) => mine.get_mut().merge(&acc),
            Entry::Vacant(slot) => {
                slot.insert(acc);
            }
        }
    }
}

/// The earlier of two optional times (`None` where neither is known).
pub fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn sort_clients(v: &mut [ClientStats]) {
    // Keys are distinct, so the order is total and an unstable sort is deterministic.
    v.sort_unstable_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.key.cmp(&b.key)));
}

impl RecordSink for TrafficBuilder {
    fn record(&mut self, r: &ScanRecord<'_>) {
        if !self.range.contains(r.timestamp) {
            self.out_of_range += 1;
            return;
        }
        self.records += 1;
        self.first_ms = min_opt(self.first_ms, Some(r.timestamp));
        self.last_ms = self.last_ms.max(Some(r.timestamp));
        let action = r.action();
        self.actions.add(action, 1);
        let minute = self.per_minute.get_mut(minute_of(r.timestamp));
        minute.actions.add(action, 1);
        let country = r.http_request.country.as_deref().unwrap_or("-");
        let home = self.home_country.as_deref();
        self.geo.count(country, home);
        minute.detail.geo.count(country, home);
        let names = &mut self.names;
        self.label_ids.clear();
        self.label_ids
            .extend(r.label_names().map(|l| names.intern(l)));
        self.count_rule_ids.clear();
        self.count_rule_ids
            .extend(r.count_rule_ids().map(|c| names.intern(c)));
        minute.detail.counted += u64::from(!self.count_rule_ids.is_empty());
        let ids = RecordIds {
            rule: names.intern(r.terminating_rule_id.as_deref().unwrap_or("-")),
            response_code: r.response_code_sent.map(|c| names.intern_number(c)),
            uri: names.intern(r.http_request.uri.as_deref().unwrap_or("")),
            user_agent: names.intern(r.user_agent().unwrap_or("")),
            country: names.intern(country),
            labels: &self.label_ids,
            count_rules: &self.count_rule_ids,
            ja4: r.ja4_fingerprint.as_deref().map(|j| names.intern(j)),
            // ASNs are 32-bit numbers; anything else is not one.
            asn: r
                .client_asn
                .filter(|&a| u32::try_from(a).is_ok())
                .map(|a| names.intern_number(a)),
            ja3: r.ja3_fingerprint.as_deref(),
        };
        // An IPv4-mapped IPv6 address (`::ffff:192.0.2.10`) is the IPv4 client it maps: keyed,
        // aggregated (/24, not /64) and allowlisted as that address.
        let ip = r.client_ip().map(|ip| ip.to_canonical());
        let key = match ip {
            Some(ip) => ClientKey::Addr(ip),
            None => {
                self.unparseable += 1;
                ClientKey::Unparsed(r.http_request.client_ip.as_ref().into())
            }
        };
        let client = self.clients.get_or_default(key);
        if let Some(ip) = ip {
            let first = client.acc.is_empty();
            let text_ids = TextIds {
                uri: ids.uri,
                user_agent: ids.user_agent,
                rule: ids.rule,
            };
            let mut answers = self.matchers.record(r, text_ids, &mut self.match_cache);
            for (i, ((policy, keys), &bit)) in self
                .policies
                .iter()
                .zip(&mut self.policy_keys)
                .zip(&self.shared_bits)
                .enumerate()
            {
                let matches = answers.matches(i);
                if bit != 0 && first {
                    // Shared from the start when the first request matches.
                    client.shared |= if matches { bit } else { 0 };
                    continue;
                }
                if client.shared & bit != 0 {
                    if !matches {
                        keys.insert(policy.key.key(ip), client.acc.clone());
                        client.shared &= !bit;
                    }
                    continue;
                }
                if matches {
                    keys.entry(policy.key.key(ip)).or_default().add(
                        r.timestamp,
                        action,
                        &ids,
                        names,
                    );
                }
            }
        }
        client.acc.add(r.timestamp, action, &ids, names);
    }

    fn malformed(&mut self, problem: Malformed) {
        self.malformed += 1;
        if self.malformed_examples.len() < MALFORMED_EXAMPLES * 2 {
            self.malformed_examples.push(problem);
        } else {
            self.malformed_examples.push(problem);
            self.keep_first_examples();
        }
    }
}

/// Every this many jobs (files or chunks of about 1 MiB to 16 MiB of text), a worker returns the
/// memory freed meanwhile to the system: the tables the scan outgrew as clients and values came,
/// which glibc would otherwise keep (tens of megabytes over a week's logs).
const RELEASE_EVERY: u64 = 64;

/// What a worker does next.
enum Job<'a> {
    /// A chunk of a large file or of stdin, streamed by whichever worker held the lock.
    Chunk(Chunk),
    /// A whole file small enough to read and inflate at once (most S3 deliveries).
    File(usize, &'a InputFile),
}

/// The inputs still to read, shared by the workers. Small files are handed out whole; large ones are
/// streamed chunk by chunk, so several workers share one large file.
struct Work<'a> {
    /// Jobs handed out so far (see [`RELEASE_EVERY`]).
    jobs: u64,
    files: std::iter::Enumerate<std::slice::Iter<'a, InputFile>>,
    stream: Option<ChunkReader>,
    progress: Arc<dyn Fn(u64) + Send + Sync>,
}

impl<'a> Work<'a> {
    fn next(&mut self) -> Option<Job<'a>> {
        loop {
            if let Some(chunk) = self.stream.as_mut().and_then(Iterator::next) {
                return Some(Job::Chunk(chunk));
            }
            self.stream = None;
            let (i, file) = self.files.next()?;
            if file.fits_in_memory() {
                return Some(Job::File(i, file));
            }
            self.stream = Some(ChunkReader::new(i, file, self.progress.clone()));
        }
    }
}

/// A worker's accumulator: folds records, then merges with the other workers'.
trait Accumulator: RecordSink + Send + Sized {
    fn merge(self, other: Self) -> Self;
    fn keep_first_examples(&mut self);
}

impl Accumulator for TrafficBuilder {
    fn merge(self, other: Self) -> Self {
        TrafficBuilder::merge(self, other)
    }
    fn keep_first_examples(&mut self) {
        TrafficBuilder::keep_first_examples(self);
    }
}

/// Two periods in one pass: records of `previous`'s range go there, all others to `current`
/// (which counts those outside its own range as out of range). Malformed input is the current
/// period's: it has no time.
struct SplitBuilder {
    current: TrafficBuilder,
    previous: TrafficBuilder,
}

impl RecordSink for SplitBuilder {
    fn record(&mut self, r: &ScanRecord<'_>) {
        if self.previous.range.contains(r.timestamp) {
            self.previous.record(r);
        } else {
            self.current.record(r);
        }
    }

    fn malformed(&mut self, problem: Malformed) {
        self.current.malformed(problem);
    }
}

impl Accumulator for SplitBuilder {
    fn merge(self, other: Self) -> Self {
        SplitBuilder {
            current: self.current.merge(other.current),
            previous: self.previous.merge(other.previous),
        }
    }
    fn keep_first_examples(&mut self) {
        self.current.keep_first_examples();
    }
}

/// Scans all inputs in parallel. `progress` is called with each batch of bytes taken from the inputs.
///
/// One worker thread per thread of the current rayon pool, each with one accumulator: memory is the
/// accumulators plus one file or chunk and a few batches of lines in flight per worker, whatever the
/// input size.
pub fn scan(
    files: &[InputFile],
    options: &ScanOptions,
    progress: Arc<dyn Fn(u64) + Send + Sync>,
) -> Traffic {
    let builder = scan_with(files, options.validate, progress, || {
        TrafficBuilder::new(options)
    });
    builder.finish(files.len() as u64)
}

/// Scans all inputs once for two periods: `options.range` and `previous` (which must not overlap
/// it), so a report compares with the previous week without reading the logs twice. The previous
/// period counts no policies.
pub fn scan_split(
    files: &[InputFile],
    options: &ScanOptions,
    previous: TimeRange,
    progress: Arc<dyn Fn(u64) + Send + Sync>,
) -> (Traffic, Traffic) {
    let before = ScanOptions {
        range: previous,
        policies: Vec::new(),
        ..options.clone()
    };
    let builder = scan_with(files, options.validate, progress, || SplitBuilder {
        current: TrafficBuilder::new(options),
        previous: TrafficBuilder::new(&before),
    });
    let n = files.len() as u64;
    rayon::join(|| builder.current.finish(n), || builder.previous.finish(n))
}

fn scan_with<A: Accumulator>(
    files: &[InputFile],
    validate: bool,
    progress: Arc<dyn Fn(u64) + Send + Sync>,
    new: impl Fn() -> A,
) -> A {
    let work = Mutex::new(Work {
        jobs: 0,
        files: files.iter().enumerate(),
        stream: None,
        progress: progress.clone(),
    });
    let workers = rayon::current_num_threads();
    let mut builders: Vec<A> = (0..workers).map(|_| new()).collect();
    // Threads of their own, not the pool's: a worker waits for the others' lines until they are
    // done, so all must run at once.
    std::thread::scope(|s| {
        for (builder, mut post) in builders
            .iter_mut()
            .zip(route::posts(workers, files, validate))
        {
            let (work, progress) = (&work, &progress);
            s.spawn(move || {
                let mut whole = WholeFile::default();
                loop {
                    post.read_mail(builder);
                    let (job, release) = {
                        let mut work = work.lock().expect("no worker panics holding it");
                        work.jobs += 1;
                        (work.next(), work.jobs % RELEASE_EVERY == 0)
                    };
                    if release {
                        release_free_memory();
                    }
                    let mut chunk = |chunk: &Chunk| {
                        post.parse(&chunk.data, chunk.file_index, chunk.first_line, builder);
                        if let Some(p) = &chunk.error {
                            builder.malformed(p.clone());
                        }
                    };
                    match job {
                        None => break,
                        Some(Job::Chunk(c)) => chunk(&c),
                        Some(Job::File(i, file)) => match whole.load_input(file) {
                            Some(data) => {
                                progress(file.size);
                                post.parse(data, i, 1, builder);
                            }
                            // Damaged: streaming reads what it can and says where it broke.
                            None => {
                                ChunkReader::new(i, file, progress.clone()).for_each(|c| chunk(&c))
                            }
                        },
                    }
                }
                drop(whole);
                post.finish(builder);
            });
        }
    });
    let mut builder = builders
        .into_iter()
        .reduce(A::merge)
        .expect("at least one worker");
    builder.keep_first_examples();
    builder
}

/// Scans in-memory text as one input (used by tests and by callers that already hold the bytes).
pub fn scan_bytes(name: &str, data: &[u8], options: &ScanOptions) -> Traffic {
    let chunk = Chunk {
        file_index: 0,
        file: Arc::from(name),
        first_line: 1,
        data: bytes::Bytes::copy_from_slice(data),
        error: None,
    };
    let mut builder = TrafficBuilder::new(options);
    parse_chunk(&chunk, options.validate, &mut builder);
    builder.keep_first_examples();
    builder.finish(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ts: i64, ip: &str, action: &str, country: &str) -> String {
        format!(
            r#"{{"timestamp":{ts},"action":"{action}","terminatingRuleId":"Default_Action","httpRequest":{{"clientIp":"{ip}","country":"{country}","uri":"/x","headers":[{{"name":"User-Agent","value":"ua"}}]}}}}"#
        )
    }

    #[test]
    fn minute_blocks_list_the_minutes_with_requests_only() {
        let mut m = PerMinute::default();
        // Both ends of a block, the next block, and the last minute a `u32` holds.
        for (minute, action) in [
            (16, Action::Allow),
            (31, Action::Block),
            (32, Action::Allow),
            (31, Action::Block),
            (u32::MAX, Action::Allow),
        ] {
            m.get_mut(minute).actions.add(action, 1);
        }
        // A minute looked up without a request counted in it.
        m.get_mut(40);
        let mut seen: Vec<(u32, u64, u64)> = m
            .iter()
            .map(|(minute, c)| (minute, c.actions.allow, c.actions.block))
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, [(16, 1, 0), (31, 0, 2), (32, 1, 0), (u32::MAX, 1, 0)]);
        // Minutes 16 to 31, 32 to 47 (where 40 was touched without a request), and the last block.
        assert_eq!(m.blocks.len(), 3);
    }

    #[test]
    fn shared_bits_are_found_for_addresses_only() {
        let addr = |s: &str| ClientKey::Addr(s.parse().unwrap());
        let shares = |bits| Shared {
            bits,
            requests: 1,
            blocked: 0,
            minutes: 1,
        };
        let table: HashMap<ClientKey, Shared> = [
            (addr("192.0.2.9"), shares(0b01)),
            (addr("192.0.2.10"), shares(0b10)),
            (addr("2001:db8::1"), shares(0b11)),
            (
                ClientKey::Prefix("192.0.2.0/24".parse().unwrap()),
                shares(0b1),
            ),
        ]
        .into_iter()
        .collect();
        let bits = SharedBits::new(table);
        assert_eq!(bits.of(&addr("192.0.2.9")), 0b01);
        assert_eq!(bits.of(&addr("192.0.2.10")), 0b10);
        assert_eq!(bits.of(&addr("2001:db8::1")), 0b11);
        assert_eq!(bits.of(&addr("192.0.2.11")), 0);
        assert_eq!(
            bits.of(&ClientKey::Prefix("192.0.2.0/24".parse().unwrap())),
            0
        );
        assert_eq!(bits.of(&ClientKey::Unparsed("X.X.X.X".into())), 0);
    }

    #[test]
    fn aggregates_clients_prefixes_geo_and_windows() {
        let mut text = String::new();
        for i in 0..30 {
            // 30 requests in minute 0 and 1 from 192.0.2.1
            text += &rec(i * 4_000, "192.0.2.1", "ALLOW", "JP");
            text.push('\n');
        }
        text += &rec(600_000, "192.0.2.9", "BLOCK", "US");
        text.push('\n');
        text += &rec(600_000, "X.X.X.X", "ALLOW", "-");
        text.push('\n');
        text += "{broken\n";
        let t = scan_bytes(
            "t.jsonl",
            text.as_bytes(),
            &ScanOptions {
                home_country: Some("JP".into()),
                ..ScanOptions::default()
            },
        );
        assert_eq!(
            (t.records, t.malformed, t.unparseable_client_ips),
            (32, 1, 1)
        );
        assert_eq!(
            t.geo,
            GeoSplit {
                domestic: 30,
                overseas: 1,
                unknown: 1
            }
        );
        assert_eq!(t.clients[0].key.to_string(), "192.0.2.1");
        assert_eq!({ t.clients[0].peak(1).requests }, 15);
        assert_eq!({ t.clients[0].peak(2).requests }, 30);
        assert_eq!(t.prefixes[0].key.to_string(), "192.0.2.0/24");
        assert_eq!(t.prefixes[0].requests, 31);
        assert_eq!(t.actions.block, 1);
        assert_eq!(
            t.malformed_examples[0].to_string().split(": ").next(),
            Some("t.jsonl:33")
        );
        assert_eq!(t.per_minute.len(), 3);
    }

    #[test]
    fn time_range_filters_exactly() {
        let text = [0, 59_999, 60_000, 120_000]
            .map(|ts| rec(ts, "192.0.2.1", "ALLOW", "JP"))
            .join("\n");
        let t = scan_bytes(
            "t",
            text.as_bytes(),
            &ScanOptions {
                range: TimeRange {
                    since: Some(59_999),
                    until: Some(120_000),
                },
                ..ScanOptions::default()
            },
        );
        assert_eq!((t.records, t.out_of_range), (2, 2));
    }

    #[test]
    fn one_pass_splits_two_periods_and_keeps_minute_detail() {
        let dir = tempfile::tempdir().unwrap();
        let text = [0, 60_000, 120_000, 180_000, 240_000]
            .map(|ts| rec(ts, "192.0.2.1", "ALLOW", "JP"))
            .join("\n");
        std::fs::write(dir.path().join("a.jsonl"), &text).unwrap();
        let found = crate::log::discover(&[dir.path().to_owned()], &TimeRange::default()).unwrap();
        let options = ScanOptions {
            range: TimeRange {
                since: Some(120_000),
                until: Some(240_000),
            },
            home_country: Some("JP".into()),
            ..ScanOptions::default()
        };
        let previous = TimeRange {
            since: Some(0),
            until: Some(120_000),
        };
        let (now, before) = scan_split(&found.files, &options, previous, Arc::new(|_| {}));
        assert_eq!((now.records, now.out_of_range), (2, 1));
        assert_eq!((before.records, before.out_of_range), (2, 0));
        let detail = now.per_minute_detail.unwrap();
        assert_eq!(detail[&2].geo.domestic, 1);
        assert_eq!(detail[&2].counted, 0);
        assert_eq!(scan(&found.files, &options, Arc::new(|_| {})).records, 2);
    }

    fn hit(ts: i64, ip: &str, uri: &str) -> String {
        rec(ts, ip, "ALLOW", "JP").replace("\"uri\":\"/x\"", &format!("\"uri\":\"{uri}\""))
    }

    fn chunk(lines: &[String]) -> Chunk {
        Chunk {
            file_index: 0,
            file: Arc::from("t"),
            first_line: 1,
            data: bytes::Bytes::from(lines.join("\n")),
            error: None,
        }
    }

    /// A policy counting `/.env` probes of 2 or more requests per address.
    fn probe_policy() -> Vec<Policy> {
        crate::policy::parse_str(
            r#"
[[policy]]
name = "probe"
description = "env probes"
key = "ip"
[policy.match]
path = { prefix = ["/.env"] }
[policy.thresholds]
requests = 2
[policy.action]
type = "report"
note = "watching"
"#,
            std::path::Path::new("p.toml"),
            None,
        )
        .unwrap()
        .policies
        .policies
    }

    /// Two workers' records; a policy counting `/.env` probes of 2 or more requests per address.
    fn two_workers(detail: Detail) -> (Traffic, Vec<String>, Vec<String>) {
        let options = ScanOptions {
            detail,
            ..ScanOptions::default()
        }
        .with_policies(probe_policy());
        // .1 matches every request in both workers (shared throughout); .2 and .5 diverge in one
        // worker and share in the other; .3 starts unmatched; .4 has one match, too few to fire.
        let a = vec![
            hit(0, "192.0.2.1", "/.env"),
            hit(1, "192.0.2.2", "/.env"),
            hit(2, "192.0.2.2", "/x"),
            hit(3, "192.0.2.3", "/x"),
            hit(4, "192.0.2.3", "/.env"),
            hit(5, "192.0.2.3", "/.env.bak"),
            hit(6, "192.0.2.4", "/.env"),
            hit(7, "192.0.2.5", "/.env"),
        ];
        let b = vec![
            hit(60_000, "192.0.2.1", "/.env.local"),
            hit(60_001, "192.0.2.2", "/.env"),
            hit(60_002, "192.0.2.5", "/.env"),
            hit(60_003, "192.0.2.5", "/y"),
        ];
        let mut builders = [a.clone(), b.clone()].map(|lines| {
            let mut builder = TrafficBuilder::new(&options);
            parse_chunk(&chunk(&lines), false, &mut builder);
            builder
        });
        let [first, second] = std::mem::take(&mut builders);
        (first.merge(second).finish(1), a, b)
    }

    /// Workers hand lines over to the worker that owns their client (`route`): however many
    /// there are, the scan is the same, a malformed line handed over keeps its file and line, and
    /// a busy client (which stays with whoever reads it) is counted once.
    #[test]
    fn any_number_of_workers_scans_the_same() {
        let dir = tempfile::tempdir().unwrap();
        for f in 0..6u32 {
            let mut text = String::new();
            for i in 0..400u32 {
                if i % 97 == 5 {
                    text += "{\"httpRequest\":{\"clientIp\":\"192.0.2.1\"},broken\n";
                    continue;
                }
                // Every other line from one busy client; the rest from 40 others.
                let ip = match i % 2 {
                    0 => "198.51.100.7".to_string(),
                    _ => format!("192.0.2.{}", (i * 7 + f) % 40),
                };
                let path = if i % 5 == 0 { "/.env" } else { "/p" };
                text += &hit(
                    i64::from(f * 400 + i) * 1_000,
                    &ip,
                    &format!("{path}{}", i % 13),
                );
                text.push('\n');
            }
            std::fs::write(dir.path().join(format!("f{f}.log")), text).unwrap();
        }
        let found = crate::log::discover(&[dir.path().to_path_buf()], &TimeRange::default());
        let files = found.unwrap().files;
        let options = ScanOptions {
            detail: Detail::All,
            ..ScanOptions::default()
        }
        .with_policies(probe_policy());
        let scan_with_workers = |workers| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(workers).build();
            pool.unwrap()
                .install(|| scan(&files, &options, Arc::new(|_| {})))
        };
        let one = scan_with_workers(1);
        assert_eq!(one.records, 6 * 395);
        assert_eq!(one.clients[0].key.to_string(), "198.51.100.7");
        assert_eq!(one.clients[0].requests, 6 * 198);
        assert_eq!(one.malformed, 6 * 5);
        let first = &one.malformed_examples[0];
        assert_eq!((first.file_index, first.line), (0, 6));
        assert!(!one.policy_keys[0].is_empty());
        for workers in [2, 3, 4] {
            let many = scan_with_workers(workers);
            assert_eq!(format!("{many:?}"), format!("{one:?}"), "{workers} workers");
        }
    }

    #[test]
    fn policy_keys_equal_a_scan_of_the_matched_requests() {
        let (t, a, b) = two_workers(Detail::All);
        // The reference: each key's statistics are those of its matched requests alone.
        let matched: Vec<String> = a
            .into_iter()
            .chain(b)
            .filter(|l| l.contains("/.env"))
            .collect();
        let only = scan_bytes("t", matched.join("\n").as_bytes(), &ScanOptions::default());
        let expected: Vec<ClientStats> = only
            .clients
            .into_iter()
            .filter(|c| c.requests >= 2)
            .map(|c| ClientStats {
                key: match c.key {
                    ClientKey::Addr(ip) => ClientKey::Prefix(IpNet::from(ip)),
                    ref other => other.clone(),
                },
                ..c
            })
            .collect();
        assert_eq!(expected.len(), 4);
        assert_eq!(t.policy_keys, [expected]);
        assert_eq!(t.clients.len(), 5);
    }

    #[test]
    fn detail_keeps_lists_for_the_keys_asked_for_only() {
        let (all, _, _) = two_workers(Detail::All);
        let lists = |t: &Traffic| -> Vec<(String, u64, usize, usize)> {
            let mut v: Vec<_> = t
                .clients
                .iter()
                .chain(&t.prefixes)
                .map(|c| (c.key.to_string(), c.requests, c.uris.len(), c.minutes.len()))
                .collect();
            v.sort();
            v
        };
        // Propose: the keys that can fire (not .4) keep their lists; totals stay for all.
        let (keys, _, _) = two_workers(Detail::PolicyKeys);
        assert_eq!(keys.policy_keys, all.policy_keys);
        let brief: Vec<String> = lists(&keys)
            .into_iter()
            .filter(|c| c.2 == 0 && c.3 == 0)
            .map(|c| c.0)
            .collect();
        assert_eq!(brief, ["192.0.2.0/24", "192.0.2.4"]);
        let totals = |t: &Traffic| -> Vec<(String, u64, u64)> {
            let mut v: Vec<_> = t
                .clients
                .iter()
                .map(|c| (c.key.to_string(), c.requests, c.peak(5).requests))
                .collect();
            v.sort();
            v
        };
        assert_eq!(totals(&keys), totals(&all));
        assert_eq!(keys.clients[0].distinct_uris, all.clients[0].distinct_uris);
        // With policies, their keys come on top of the busiest.
        let (top, a, b) = two_workers(Detail::Busiest(1));
        let detailed = |t: &Traffic| -> Vec<String> {
            lists(t)
                .into_iter()
                .filter(|c| c.2 > 0)
                .map(|c| c.0)
                .collect()
        };
        assert_eq!(
            detailed(&top),
            [
                "192.0.2.0/24",
                "192.0.2.1",
                "192.0.2.2",
                "192.0.2.3",
                "192.0.2.5"
            ]
        );
        assert_eq!(top.clients[0], all.clients[0]);
        // Analyze --top 1: the busiest client and prefix only (three tie at 3 requests: by key).
        let text = a.into_iter().chain(b).collect::<Vec<_>>().join("\n");
        let top = |detail| {
            scan_bytes(
                "t",
                text.as_bytes(),
                &ScanOptions {
                    detail,
                    ..ScanOptions::default()
                },
            )
        };
        let (one, every) = (top(Detail::Busiest(1)), top(Detail::All));
        assert_eq!(detailed(&one), ["192.0.2.0/24", "192.0.2.2"]);
        assert_eq!(one.clients[0], every.clients[0]);
        assert_eq!(one.prefixes, every.prefixes);
        assert_eq!(detailed(&top(Detail::Busiest(0))).len(), 6);
    }

    #[test]
    fn keys_that_cannot_fire_are_left_out_whoever_counted_them() {
        let policy = |name: &str, key: &str| {
            format!(
                r#"
[[policy]]
name = "{name}"
description = "mostly blocked"
key = "{key}"
[policy.match]
path = {{ prefix = ["/x"] }}
[policy.thresholds]
blocked = {{ ratio = 0.5, min_blocked = 2 }}
[policy.action]
type = "report"
note = "watching"
"#
            )
        };
        let text = policy("by-ip", "ip") + &policy("by-prefix", "prefix");
        let policies = crate::policy::parse_str(&text, std::path::Path::new("p.toml"), None)
            .unwrap()
            .policies
            .policies;
        let options = ScanOptions {
            detail: Detail::PolicyKeys,
            ..ScanOptions::default()
        }
        .with_policies(policies);
        // .1: 3 of 4 blocked, over both workers; .3: 2 of 2. 198.51.100.2: enough requests, but
        // 1 of 4 blocked, so neither it nor its /24 can fire.
        let lines = |requests: &[(&str, &str)]| -> Vec<String> {
            requests
                .iter()
                .enumerate()
                .map(|(i, (ip, action))| rec(i as i64 * 1_000, ip, action, "JP"))
                .collect()
        };
        let a = lines(&[
            ("192.0.2.1", "BLOCK"),
            ("192.0.2.1", "ALLOW"),
            ("198.51.100.2", "BLOCK"),
            ("198.51.100.2", "ALLOW"),
            ("192.0.2.3", "BLOCK"),
        ]);
        let b = lines(&[
            ("192.0.2.1", "BLOCK"),
            ("192.0.2.1", "BLOCK"),
            ("198.51.100.2", "ALLOW"),
            ("198.51.100.2", "ALLOW"),
            ("192.0.2.3", "BLOCK"),
        ]);
        let builders = [&a, &b].map(|lines| {
            let mut builder = TrafficBuilder::new(&options);
            parse_chunk(&chunk(lines), false, &mut builder);
            builder
        });
        let [first, second] = builders;
        let t = first.merge(second).finish(1);
        let keys = |i: usize| -> Vec<String> {
            t.policy_keys[i].iter().map(|k| k.key.to_string()).collect()
        };
        assert_eq!(keys(0), ["192.0.2.1/32", "192.0.2.3/32"]);
        assert_eq!(keys(1), ["192.0.2.0/24"]);
        assert_eq!(t.policy_keys[1][0].actions.block, 5);
        // Only the keys that may fire keep their lists.
        let uris = |key: &str| {
            let c = t.clients.iter().chain(&t.prefixes);
            c.filter(|c| c.key.to_string() == key)
                .map(|c| c.uris.len())
                .sum::<usize>()
        };
        assert_eq!(
            ["192.0.2.1", "192.0.2.3", "192.0.2.0/24", "198.51.100.2"].map(uris),
            [1, 1, 1, 0]
        );
        // The same keys from the finished statistics of a scan of all requests.
        let all = scan_bytes(
            "t",
            [a, b].concat().join("\n").as_bytes(),
            &ScanOptions::default(),
        );
        let firing: Vec<String> = all
            .clients
            .iter()
            .filter(|c| may_fire_for(&options.policies[0], c))
            .map(|c| c.key.to_string())
            .collect();
        assert_eq!(firing, ["192.0.2.1", "192.0.2.3"]);
    }

    #[test]
    fn concatenated_objects_on_one_line() {
        let line = format!(
            "{}{}  {}\n",
            rec(1, "192.0.2.1", "ALLOW", "JP"),
            rec(2, "192.0.2.2", "ALLOW", "JP"),
            rec(3, "192.0.2.3", "ALLOW", "JP")
        );
        let t = scan_bytes("t", line.as_bytes(), &ScanOptions::default());
        assert_eq!((t.records, t.malformed), (3, 0));
        let bad = format!("{}{{\"timestamp\":", rec(1, "192.0.2.1", "ALLOW", "JP"));
        let t = scan_bytes("t", bad.as_bytes(), &ScanOptions::default());
        assert_eq!((t.records, t.malformed), (1, 1));
    }
}
