//! Per-client accumulators and the finished, engine-independent statistics they produce.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use thin_vec::ThinVec;

use rayon::prelude::*;

use hashbrown::HashTable;
use ipnet::IpNet;
use serde::Serialize;

use std::hash::BuildHasher as _;

use super::minutes::Minutes;
use crate::log::Action;
use crate::util::alloc::release_free_memory;

/// The sliding windows AWS rate-based rules evaluate (60, 120, 300, 600 s), in minutes.
pub const WINDOWS: [u32; 4] = [1, 2, 5, 10];

pub const MINUTE_MS: i64 = 60_000;

/// Epoch minute of an epoch-millisecond timestamp (records before 1970 are clamped to minute 0).
pub fn minute_of(ms: i64) -> u32 {
    u32::try_from(ms.div_euclid(MINUTE_MS)).unwrap_or(if ms < 0 { 0 } else { u32::MAX })
}

/// Requests by terminating action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ActionCounts {
    #[serde(rename = "ALLOW")]
    pub allow: u64,
    #[serde(rename = "BLOCK")]
    pub block: u64,
    #[serde(rename = "CAPTCHA")]
    pub captcha: u64,
    #[serde(rename = "CHALLENGE")]
    pub challenge: u64,
    #[serde(rename = "OTHER")]
    pub other: u64,
}

impl ActionCounts {
    pub fn add(&mut self, action: Action, n: u64) {
        *self.get_mut(action) += n;
    }

    fn get_mut(&mut self, action: Action) -> &mut u64 {
        match action {
            Action::Allow => &mut self.allow,
            Action::Block => &mut self.block,
            Action::Captcha => &mut self.captcha,
            Action::Challenge => &mut self.challenge,
            Action::Other => &mut self.other,
        }
    }

    pub fn get(&self, action: Action) -> u64 {
        let mut copy = *self;
        *copy.get_mut(action)
    }

    pub fn merge(&mut self, other: &ActionCounts) {
        for a in Action::ALL {
            self.add(a, other.get(a));
        }
    }

    pub fn total(&self) -> u64 {
        Action::ALL.iter().map(|&a| self.get(a)).sum()
    }
}

/// A client accumulator's requests by action: 20 bytes in `u32`s where [`ActionCounts`] takes 40 in
/// `u64`s (a week's 100,000 accumulators sit in hash tables whose every slot pays for the width),
/// widened to `u64`s the first time one would overflow, so counts stay exact at any volume.
#[derive(Debug, Clone)]
pub enum Tally {
    Narrow([u32; 5]),
    Wide(Box<ActionCounts>),
}

impl Default for Tally {
    fn default() -> Tally {
        Tally::Narrow([0; 5])
    }
}

impl Tally {
    pub fn add(&mut self, action: Action, n: u64) {
        if let Tally::Narrow(counts) = self {
            let slot = &mut counts[action as usize];
            if let Some(sum) = u32::try_from(n).ok().and_then(|n| slot.checked_add(n)) {
                *slot = sum;
                return;
            }
            *self = Tally::Wide(Box::new(self.actions()));
        }
        if let Tally::Wide(wide) = self {
            wide.add(action, n);
        }
    }

    pub fn merge(&mut self, other: &Tally) {
        for a in Action::ALL {
            let n = other.get(a);
            if n > 0 {
                self.add(a, n);
            }
        }
    }

    pub fn get(&self, action: Action) -> u64 {
        match self {
            Tally::Narrow(counts) => u64::from(counts[action as usize]),
            Tally::Wide(wide) => wide.get(action),
        }
    }

    pub fn total(&self) -> u64 {
        Action::ALL.iter().map(|&a| self.get(a)).sum()
    }

    pub fn actions(&self) -> ActionCounts {
        let mut actions = ActionCounts::default();
        for a in Action::ALL {
            actions.add(a, self.get(a));
        }
        actions
    }
}

impl From<ActionCounts> for Tally {
    fn from(actions: ActionCounts) -> Tally {
        let mut tally = Tally::default();
        for a in Action::ALL {
            tally.add(a, actions.get(a));
        }
        tally
    }
}

/// Who sent requests: an address, an address prefix (/24, /64), or a `clientIp` that is not an address
/// (`X.X.X.X` in redacted logs), which is kept and counted rather than dropped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientKey {
    Addr(IpAddr),
    Prefix(IpNet),
    Unparsed(Box<str>),
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientKey::Addr(a) => a.fmt(f),
            ClientKey::Prefix(n) => n.fmt(f),
            ClientKey::Unparsed(s) => s.fmt(f),
        }
    }
}

impl Serialize for ClientKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl ClientKey {
    /// The /24 (IPv4) or /64 (IPv6) a client address belongs to.
    pub fn prefix(&self) -> Option<ClientKey> {
        let ClientKey::Addr(addr) = self else {
            return None;
        };
        let len = if addr.is_ipv4() { 24 } else { 64 };
        IpNet::new(*addr, len)
            .ok()
            .map(|n| ClientKey::Prefix(n.trunc()))
    }
}

/// Peak requests in one sliding window, and the first active minute of the busiest window.
///
/// Packed to 12 bytes (from 16): every client's and prefix's statistics hold four (a week's
/// `propose` holds 140,000 statistics at its peak). Fields are read by value; where a reference is
/// needed (`assert_eq!`), copy first: `{ peak.requests }`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[repr(C, packed(4))]
pub struct Peak {
    pub requests: u64,
    /// Epoch minute of the first request in the busiest window.
    #[serde(skip)]
    pub start_minute: u32,
}

/// Peaks for every window in [`WINDOWS`] over sorted `(minute, requests)` buckets.
pub fn window_peaks(minutes: &[(u32, u32)]) -> [Peak; 4] {
    WINDOWS.map(|w| window_peak(minutes, w))
}

/// The largest sum of requests over any `width` consecutive minutes. The best window can always be
/// taken to end at an active minute, so a two-pointer pass over active minutes is exact.
pub fn window_peak(minutes: &[(u32, u32)], width: u32) -> Peak {
    let mut best = Peak::default();
    let mut sum = 0u64;
    let mut lo = 0;
    for &(m, n) in minutes {
        sum += u64::from(n);
        // In u64: the last minutes a u32 holds (far-future times, clamped by `minute_of`) plus a
        // window would overflow.
        while u64::from(minutes[lo].0) + u64::from(width) <= u64::from(m) {
            sum -= u64::from(minutes[lo].1);
            lo += 1;
        }
        if sum > best.requests {
            best = Peak {
                requests: sum,
                start_minute: minutes[lo].0,
            };
        }
    }
    best
}

/// Merges sorted bucket lists.
pub fn merge_minutes(into: &mut Vec<(u32, u32)>, other: &[(u32, u32)]) {
    if other.is_empty() {
        return;
    }
    let mut merged = Vec::with_capacity(into.len() + other.len());
    let (mut i, mut j) = (0, 0);
    while i < into.len() || j < other.len() {
        match (into.get(i), other.get(j)) {
            (Some(a), Some(b)) if a.0 == b.0 => {
                merged.push((a.0, a.1 + b.1));
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a.0 < b.0 => {
                merged.push(*a);
                i += 1;
            }
            (Some(a), None) => {
                merged.push(*a);
                i += 1;
            }
            (_, Some(b)) => {
                merged.push(*b);
                j += 1;
            }
            (None, None) => unreachable!(),
        }
    }
    *into = merged;
}

/// Numbers the distinct strings one worker has seen, so per-client counting works on small integers
/// and each string is stored once, however many clients send it.
#[derive(Debug, Default)]
pub struct Interner {
    table: hashbrown::HashTable<u32>,
    strings: Arena,
    /// Each id's string as [`Count`]s hold it, made when finishing first asks for it: once per id,
    /// however many clients count it. Locks, because clients finish in parallel; created by the
    /// first [`Interner::shared`], so the scan does not pay for it.
    shared: OnceLock<Vec<OnceLock<Arc<str>>>>,
    hasher: foldhash::fast::FixedState,
    /// The ids of numbers' decimal texts (response codes, ASNs) by number: a few recur in every
    /// record, and formatting and hashing their text each time cost more than this lookup.
    numbers: hashbrown::HashMap<u64, u32>,
}

impl Interner {
    /// The id of `n`'s decimal text.
    pub fn intern_number(&mut self, n: u64) -> u32 {
        if let Some(&id) = self.numbers.get(&n) {
            return id;
        }
        let id = self.intern(itoa::Buffer::new().format(n));
        self.numbers.insert(n, id);
        id
    }

    pub fn intern(&mut self, s: &str) -> u32 {
        let Interner {
            table,
            strings,
            shared,
            hasher,
            ..
        } = self;
        let hash = hasher.hash_one(s);
        // The table holds where each string is in the arena, which also holds its id.
        if let Some(&at) = table.find(hash, |&at| strings.is_at(at, s)) {
            return strings.id_at(at);
        }
        let (id, at) = strings.push(s);
        table.insert_unique(hash, at, |&at| hasher.hash_one(strings.text_at(at)));
        if let Some(shared) = shared.get_mut() {
            shared.push(OnceLock::new());
        }
        id
    }

    pub fn name(&self, id: u32) -> &str {
        self.strings.get(id)
    }

    /// `id`'s string as a [`Count`] value: the same `Arc` on every call.
    pub fn shared(&self, id: u32) -> Arc<str> {
        let shared = self.shared.get_or_init(|| {
            std::iter::repeat_with(OnceLock::new)
                .take(self.strings.len())
                .collect()
        });
        shared[id as usize]
            .get_or_init(|| self.name(id).into())
            .clone()
    }

    /// For each of `other`'s ids, the id of the same string here (copying it when new).
    pub fn absorb(&mut self, other: &Interner) -> Vec<u32> {
        // Room for all of them at once: growing step by step rehashes the table each time.
        let Interner {
            table,
            strings,
            hasher,
            ..
        } = self;
        table.reserve(other.strings.len(), |&at| {
            hasher.hash_one(strings.text_at(at))
        });
        other.strings.iter().map(|s| self.intern(s)).collect()
    }
}

/// Strings back to back in one allocation, numbered in the order they were added: a string costs
/// its bytes, a header of 8 and an offset, where an allocation each cost a header, rounding and a
/// pointer too (a week's strings took 18 MB instead of 7). The header, 8 bytes before the string,
/// holds its length and id: finding a string reads them with its first bytes, one cache line,
/// where reading its end from a list of ends cost another (the lookups of a scan's interning
/// wait on memory, not on instructions).
#[derive(Debug, Default)]
struct Arena {
    bytes: String,
    /// Where each id's header is in `bytes`. `u32` rather than `u64`: half the size, and the ids
    /// run out near there anyway (2^28 strings of 8 bytes and their headers).
    at: Vec<u32>,
}

/// Bytes of a string's header: its length, then its id, each below 2^28 and written 7 bits a byte,
/// so the header is ASCII and `bytes` stays UTF-8.
const HEADER: usize = 8;

/// A number below 2^28 as 4 bytes of 7 bits, the lowest first.
fn seven_bit(n: u32) -> [u8; 4] {
    [0, 7, 14, 21].map(|shift| (n >> shift & 0x7f) as u8)
}

/// The number [`seven_bit`] wrote in the low 4 bytes of `x` (read little-endian).
fn from_seven_bit(x: u64) -> u32 {
    (x & 0x7f | x >> 1 & 0x3f80 | x >> 2 & 0x1f_c000 | x >> 3 & 0xfe0_0000) as u32
}

impl Arena {
    fn len(&self) -> usize {
        self.at.len()
    }

    fn get(&self, id: u32) -> &str {
        self.text_at(self.at[id as usize])
    }

    /// The length and id in the header at `at`.
    #[inline]
    fn header(&self, at: u32) -> (usize, u32) {
        let at = at as usize;
        let header = self.bytes.as_bytes()[at..at + HEADER]
            .first_chunk()
            .expect("a whole header");
        let x = u64::from_le_bytes(*header);
        (from_seven_bit(x) as usize, from_seven_bit(x >> 32))
    }

    fn id_at(&self, at: u32) -> u32 {
        self.header(at).1
    }

    /// Where the text of the string whose header is at `at` is in `bytes`.
    #[inline]
    fn text_range(&self, at: u32) -> std::ops::Range<usize> {
        let start = at as usize + HEADER;
        start..start + self.header(at).0
    }

    fn text_at(&self, at: u32) -> &str {
        &self.bytes[self.text_range(at)]
    }

    /// Whether the string at `at` is `s`. Compared as bytes: slicing them skips the check that
    /// the range starts and ends on character boundaries (it does: strings are added whole).
    #[inline]
    fn is_at(&self, at: u32, s: &str) -> bool {
        let text = self.text_range(at);
        text.len() == s.len() && &self.bytes.as_bytes()[text] == s.as_bytes()
    }

    /// Adds `s`: its id and where its header is.
    fn push(&mut self, s: &str) -> (u32, u32) {
        // Ids share a `Counts` key with the kind.
        let id = u32::try_from(self.at.len())
            .ok()
            .filter(|&id| id <= ID_MASK)
            .expect("a scan worker's distinct values number fewer than 2^28");
        let len = u32::try_from(s.len())
            .ok()
            .filter(|&len| len <= ID_MASK)
            .expect("a value shorter than 256 MiB");
        if self.bytes.capacity() - self.bytes.len() < HEADER + s.len() {
            // An eighth more rather than twice as much: at most an eighth of it unused, for copying
            // each byte about eight times as it grows (milliseconds for a week's few MB).
            let more = (self.bytes.len() / 8).max(HEADER + s.len()).max(4096);
            self.bytes.reserve_exact(more);
        }
        let at = u32::try_from(self.bytes.len())
            .ok()
            .filter(|at| at.checked_add((HEADER + s.len()) as u32).is_some())
            .expect("a scan worker's distinct values take less than 4 GiB");
        let mut header = [0; HEADER];
        header[..4].copy_from_slice(&seven_bit(len));
        header[4..].copy_from_slice(&seven_bit(id));
        self.bytes
            .push_str(std::str::from_utf8(&header).expect("7-bit bytes are ASCII"));
        self.bytes.push_str(s);
        self.at.push(at);
        (id, at)
    }

    fn iter(&self) -> impl Iterator<Item = &str> {
        self.at.iter().map(|&at| self.text_at(at))
    }
}

/// What a counted value is; stored in the top bits of a [`Counts`] key so one list holds them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub enum Kind {
    Rule = 0,
    ResponseCode,
    Uri,
    UserAgent,
    Country,
    Label,
    CountRule,
    /// `ja4Fingerprint`.
    Ja4,
    /// `clientAsn`, as decimal text.
    Asn,
    /// `ja3Fingerprint`: kept apart from the other kinds (see [`OnlyValue`]).
    Ja3,
}

impl Kind {
    /// In the order of their numbers.
    pub const ALL: [Kind; 10] = [
        Kind::Rule,
        Kind::ResponseCode,
        Kind::Uri,
        Kind::UserAgent,
        Kind::Country,
        Kind::Label,
        Kind::CountRule,
        Kind::Ja4,
        Kind::Asn,
        Kind::Ja3,
    ];

    /// The kinds the traffic-wide lists keep (see [`RecordIds::add_summary`]).
    pub const SUMMARY: [Kind; 4] = [Kind::Rule, Kind::Country, Kind::Label, Kind::CountRule];
}

const KIND_SHIFT: u32 = 28;
const ID_MASK: u32 = (1 << KIND_SHIFT) - 1;

/// Counts keyed by `(kind, interned id)`. Most clients have a handful of distinct values, so a short
/// list scanned linearly beats an index; clients with many (scanners walking thousands of paths, a
/// week of a regular visitor's pages) keep them in a `Table` instead. These are most of a long
/// scan's memory.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    values: Values,
    /// The [`Kind::Ja3`] values, which are not counted like the others.
    ja3: OnlyValue,
}

/// One enum rather than a list and an optional table side by side: a header less in every client.
#[derive(Debug, Clone)]
enum Values {
    /// `(kind and id, count)` while there are at most [`INDEX_AT`] of them (or after a sum or bulk
    /// merge, which leave a list); 8 bytes an entry, grown [`LIST_STEP`] entries at a time.
    List(Vec<(u32, u32)>),
    /// Once a list outgrows [`INDEX_AT`].
    Indexed(Box<Table>),
}

impl Default for Values {
    fn default() -> Values {
        Values::List(Vec::new())
    }
}

impl Values {
    /// The pairs as a list, consuming the table if there is one.
    fn into_list(self) -> Vec<(u32, u32)> {
        match self {
            Values::List(list) => list,
            Values::Indexed(table) => {
                let mut list = Vec::with_capacity(table.len());
                list.extend(table.pairs());
                list
            }
        }
    }
}

const INDEX_AT: usize = 24;
/// Lists grow by this many entries, not by doubling: most clients' lists stay short, and a list of
/// 17 would otherwise hold room for 32.
const LIST_STEP: usize = 4;

/// The values of a client with many. Most are counted once (each page a visitor or crawler fetched):
/// those are sorted keys, 4 bytes each; the others are counted in [`More`].
#[derive(Debug, Clone, Default)]
struct Table {
    more: More,
    /// Keys counted exactly once (none of them in `more`).
    ones: Ones,
}

impl Table {
    /// From distinct `(key, count)` pairs.
    fn new(pairs: &[(u32, u32)]) -> Table {
        let ones = pairs.iter().filter(|e| e.1 == 1).map(|e| e.0);
        Table {
            more: More::new(pairs.iter().copied().filter(|e| e.1 != 1)),
            ones: Ones::new(ones),
        }
    }

    fn add(&mut self, key: u32, n: u32) {
        if self.more.add(key, n) {
            return;
        }
        let n = if self.ones.take_or_insert(key, n == 1) {
            n.saturating_add(1)
        } else if n == 1 {
            return;
        } else {
            n
        };
        self.more.insert(key, n);
    }

    fn len(&self) -> usize {
        self.more.len() + self.ones.len()
    }

    fn pairs(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        let ones = self.ones.iter().map(|k| (k, 1));
        self.more.iter().chain(ones)
    }

    fn remap(&mut self, remap: &[u32]) {
        let more = std::mem::take(&mut self.more);
        self.more = More::new(more.iter().map(|(key, n)| (remap_key(key, remap), n)));
        self.ones = Ones::new(self.ones.iter().map(|k| remap_key(k, remap)));
    }
}

/// Keys counted more than once, with their counts: a list scanned linearly while short (most
/// clients repeat a dozen values, and those they send on every request come first), then a hash
/// table. A hash table of a few entries would take twice the room.
#[derive(Debug, Clone)]
enum More {
    List(Vec<(u32, u32)>),
    Hashed(HashTable<(u32, u32)>),
}

impl Default for More {
    fn default() -> More {
        More::List(Vec::new())
    }
}

/// How many keys counted more than once a [`More`] lists before it hashes them.
const HASH_MORE_AT: usize = 32;

impl More {
    /// From distinct `(key, count)` pairs.
    fn new(pairs: impl Iterator<Item = (u32, u32)> + Clone) -> More {
        let len = pairs.clone().count();
        if len <= HASH_MORE_AT {
            let mut list = Vec::with_capacity(len);
            list.extend(pairs);
            return More::List(list);
        }
        let mut table = HashTable::with_capacity(len);
        for e in pairs {
            table.insert_unique(hash_key(e.0), e, |e| hash_key(e.0));
        }
        More::Hashed(table)
    }

    /// Adds `n` to `key`'s count if it is here; whether it was.
    fn add(&mut self, key: u32, n: u32) -> bool {
        let count = match self {
            More::List(list) => list.iter_mut().find(|e| e.0 == key),
            More::Hashed(table) => table.find_mut(hash_key(key), |e| e.0 == key),
        };
        count.map(|e| e.1 = e.1.saturating_add(n)).is_some()
    }

    /// Inserts `key`, which is not here.
    fn insert(&mut self, key: u32, n: u32) {
        match self {
            More::List(list) if list.len() < HASH_MORE_AT => push_short(list, (key, n)),
            More::List(list) => {
                *self = More::new(list.iter().copied().chain([(key, n)]));
            }
            More::Hashed(table) => {
                table.insert_unique(hash_key(key), (key, n), |e| hash_key(e.0));
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            More::List(list) => list.len(),
            More::Hashed(table) => table.len(),
        }
    }

    fn iter(&self) -> impl Iterator<Item = (u32, u32)> + Clone + '_ {
        let (list, table) = match self {
            More::List(list) => (&list[..], None),
            More::Hashed(table) => (&[][..], Some(table)),
        };
        list.iter()
            .copied()
            .chain(table.into_iter().flat_map(|t| t.iter().copied()))
    }
}

/// Appends `e` to a short list, growing it [`LIST_STEP`] entries at a time.
fn push_short(list: &mut Vec<(u32, u32)>, e: (u32, u32)) {
    if list.len() == list.capacity() {
        list.reserve_exact(LIST_STEP);
    }
    list.push(e);
}

/// Distinct keys: sorted ones, then a sorted tail of the latest, merged into them when the buffer is
/// full (the buffer has room for a tail of about the square root of their number, so neither
/// inserting into the tail nor merging it costs more than that per key). A key taken from the
/// sorted part is only marked, and dropped at the next merge.
#[derive(Debug, Clone, Default)]
struct Ones {
    keys: Vec<u32>,
    /// How many of `keys` are the sorted part.
    sorted: u32,
    /// How many of the sorted part are taken.
    taken: u32,
    /// Which of the sorted part are taken (empty while none is).
    taken_bits: Box<[u64]>,
}

impl Ones {
    /// From distinct `keys` in any order.
    fn new(keys: impl Iterator<Item = u32> + Clone) -> Ones {
        let len = keys.clone().count();
        let mut sorted = Vec::with_capacity(len + tail_room(len));
        sorted.extend(keys);
        sorted.sort_unstable();
        Ones::sorted(sorted)
    }

    fn sorted(keys: Vec<u32>) -> Ones {
        Ones {
            sorted: u32::try_from(keys.len()).expect("fewer than 2^32 values"),
            keys,
            taken: 0,
            taken_bits: Box::default(),
        }
    }

    fn len(&self) -> usize {
        self.keys.len() - self.taken as usize
    }

    fn iter(&self) -> impl Iterator<Item = u32> + Clone + '_ {
        let sorted = self.sorted as usize;
        let kept = (0..sorted).filter(|&i| !is_taken(&self.taken_bits, i));
        kept.map(|i| self.keys[i])
            .chain(self.keys[sorted..].iter().copied())
    }

    /// Takes `key` out if it is here, else inserts it if `insert`; whether it was here. Keys once
    /// taken are never looked for again (they are counted in [`Table::more`]).
    fn take_or_insert(&mut self, key: u32, insert: bool) -> bool {
        let sorted = self.sorted as usize;
        if let Ok(i) = self.keys[..sorted].binary_search(&key) {
            debug_assert!(
                !is_taken(&self.taken_bits, i),
                "a taken key is counted in `more`"
            );
            if self.taken_bits.is_empty() {
                self.taken_bits = vec![0; sorted.div_ceil(64)].into();
            }
            self.taken_bits[i / 64] |= 1 << (i % 64);
            self.taken += 1;
            // Half taken (a visitor's second round of the same pages): the marks would cost more
            // than a merge.
            if self.taken * 2 > self.sorted {
                self.merge_tail();
            }
            return true;
        }
        match self.keys[sorted..].binary_search(&key) {
            Ok(i) => {
                self.keys.remove(sorted + i);
                true
            }
            Err(_) if !insert => false,
            Err(i) => {
                if self.keys.len() == self.keys.capacity() {
                    self.merge_tail();
                    self.keys.push(key);
                } else {
                    self.keys.insert(sorted + i, key);
                }
                false
            }
        }
    }

    /// Merges the tail into the sorted keys without the taken ones, into a buffer with room for
    /// the next tail: the runs of sorted keys between two of the tail's are copied whole.
    fn merge_tail(&mut self) {
        let Ones {
            keys,
            sorted,
            taken,
            taken_bits,
        } = self;
        if *taken > 0 {
            let mut i = 0;
            keys.retain(|_| {
                let kept = i >= *sorted as usize || !is_taken(taken_bits, i);
                i += 1;
                kept
            });
            *sorted -= *taken;
        }
        let (mut rest, tail) = keys.split_at(*sorted as usize);
        let mut merged = Vec::with_capacity(keys.len() + tail_room(keys.len()));
        for &key in tail {
            let (before, after) = rest.split_at(rest.partition_point(|&k| k < key));
            merged.extend_from_slice(before);
            merged.push(key);
            rest = after;
        }
        merged.extend_from_slice(rest);
        *self = Ones::sorted(merged);
    }
}

/// Whether bit `i` of `bits` is set (see [`Ones::taken_bits`]).
fn is_taken(bits: &[u64], i: usize) -> bool {
    bits.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 == 1)
}

/// Room for the tail of `len` sorted keys (see [`Ones`]).
fn tail_room(len: usize) -> usize {
    len.isqrt().max(LIST_STEP)
}

/// `key` with its id translated through `remap` (see [`Interner::absorb`]).
fn remap_key(key: u32, remap: &[u32]) -> u32 {
    (key & !ID_MASK) | remap[(key & ID_MASK) as usize]
}

/// A value kept only while it is the only one seen: a client's JA3 identifies its TLS stack only
/// when it does not change, and Chromium permutes its TLS extensions per connection, so its JA3
/// is new on nearly every request. Counting those would grow with requests rather than clients;
/// this keeps one id and its count, or the fact that there were several. Order-independent: the
/// result is the same however records are split between workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnlyValue {
    #[default]
    None,
    One {
        id: u32,
        count: u32,
    },
    Several,
}

impl OnlyValue {
    fn add(&mut self, id: u32, n: u32) {
        *self = match *self {
            OnlyValue::None => OnlyValue::One { id, count: n },
            OnlyValue::One { id: mine, count } if mine == id => OnlyValue::One {
                id,
                count: count.saturating_add(n),
            },
            _ => OnlyValue::Several,
        };
    }

    fn merge(&mut self, other: OnlyValue) {
        match other {
            OnlyValue::None => {}
            OnlyValue::One { id, count } => self.add(id, count),
            OnlyValue::Several => *self = OnlyValue::Several,
        }
    }

    /// Adds `value`, interning it only when it is the first: a second, different value only proves
    /// there were several, so a client's per-connection values cost a comparison each, not a
    /// string (on a week, interning them took 4 MB).
    fn add_text(&mut self, value: &str, names: &mut Interner) {
        match *self {
            OnlyValue::Several => {}
            OnlyValue::One { id, .. } if names.name(id) == value => self.add(id, 1),
            OnlyValue::One { .. } => *self = OnlyValue::Several,
            OnlyValue::None => self.add(names.intern(value), 1),
        }
    }
}

/// Hashes a [`Counts`] key (fixed seed: the tables never outlive the process).
fn hash_key(key: u32) -> u64 {
    foldhash::fast::FixedState::with_seed(0).hash_one(key)
}

impl Counts {
    pub fn add(&mut self, kind: Kind, id: u32, n: u64) {
        debug_assert!(id <= ID_MASK);
        if kind == Kind::Ja3 {
            self.ja3.add(id, u32::try_from(n).unwrap_or(u32::MAX));
            return;
        }
        self.add_key(((kind as u32) << KIND_SHIFT) | id, n);
    }

    fn add_key(&mut self, key: u32, n: u64) {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        match &mut self.values {
            Values::List(list) => {
                if let Some(e) = list.iter_mut().find(|e| e.0 == key) {
                    e.1 = e.1.saturating_add(n);
                } else if list.len() < INDEX_AT {
                    push_short(list, (key, n));
                } else {
                    let mut table = Table::new(list);
                    table.add(key, n);
                    self.values = Values::Indexed(Box::new(table));
                }
            }
            Values::Indexed(table) => table.add(key, n),
        }
    }

    /// Whether the counts are in a [`Table`] (adding many to it costs less than sorting).
    fn is_indexed(&self) -> bool {
        matches!(self.values, Values::Indexed(_))
    }

    fn len(&self) -> usize {
        match &self.values {
            Values::List(list) => list.len(),
            Values::Indexed(table) => table.len(),
        }
    }

    fn pairs(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        let (list, table) = match &self.values {
            Values::List(list) => (&list[..], None),
            Values::Indexed(table) => (&[][..], Some(table)),
        };
        list.iter()
            .copied()
            .chain(table.into_iter().flat_map(|t| t.pairs()))
    }

    /// Translates ids through `remap` (see [`Interner::absorb`]). A table stays one, re-sorted and
    /// rehashed: as a list, each value counted once would take twice the room.
    pub fn remap(&mut self, remap: &[u32]) {
        if let OnlyValue::One { id, .. } = &mut self.ja3 {
            *id = remap[*id as usize];
        }
        match &mut self.values {
            Values::List(list) => {
                for e in list {
                    e.0 = remap_key(e.0, remap);
                }
            }
            Values::Indexed(table) => table.remap(remap),
        }
    }

    /// Adds `other` (ids in the same numbering): key by key when it is short (as when Athena rows
    /// arrive one by one) or when this one is indexed (a lookup per entry costs less than a
    /// sort), else by one sort of both lists.
    pub fn merge(&mut self, other: &Counts) {
        self.ja3.merge(other.ja3);
        if other.len() <= INDEX_AT || self.is_indexed() {
            for (key, n) in other.pairs() {
                self.add_key(key, u64::from(n));
            }
        } else {
            let mut list = std::mem::take(&mut self.values).into_list();
            list.extend(other.pairs());
            combine(&mut list);
            self.values = Values::List(list);
        }
    }

    /// The sum of `parts` (ids in the same numbering). One sort of all their entries: summing a
    /// /24's clients, or two workers' halves of a crawler's 50,000 paths, costs no hash lookups or
    /// per-entry allocations. The result is a list; the next new key indexes it.
    pub fn sum(parts: &[&Counts]) -> Counts {
        let mut ja3 = OnlyValue::None;
        for p in parts {
            ja3.merge(p.ja3);
        }
        let mut list = Vec::with_capacity(parts.iter().map(|c| c.len()).sum());
        for part in parts {
            list.extend(part.pairs());
        }
        combine(&mut list);
        Counts {
            values: Values::List(list),
            ja3,
        }
    }

    /// How many distinct values of `kind` were counted (not for [`Kind::Ja3`]).
    pub fn distinct(&self, kind: Kind) -> u64 {
        self.pairs()
            .filter(|(key, _)| key >> KIND_SHIFT == kind as u32)
            .count() as u64
    }

    /// The JA3 counted, if there was only one (see [`OnlyValue`]).
    pub fn ja3(&self, names: &Interner) -> Option<Arc<str>> {
        match self.ja3 {
            OnlyValue::One { id, .. } => Some(names.shared(id)),
            _ => None,
        }
    }

    /// Counts a request's JA3 (see [`OnlyValue`]).
    fn add_ja3(&mut self, ja3: &str, names: &mut Interner) {
        self.ja3.add_text(ja3, names);
    }

    /// The values of one kind, most frequent first, ties by value (the same output on every run).
    pub fn sorted(&self, kind: Kind, names: &Interner) -> Vec<Count> {
        self.top(kind, names, usize::MAX)
    }

    /// The `k` most frequent values of one kind, ordered like [`Counts::sorted`]. They share the
    /// interned strings: a scanner's thousands of paths are counted, not copied.
    pub fn top(&self, kind: Kind, names: &Interner, k: usize) -> Vec<Count> {
        let mut v: Vec<(u32, u32)> = self
            .pairs()
            .filter(|(key, _)| key >> KIND_SHIFT == kind as u32)
            .collect();
        ranked(&mut v, names, k)
    }

    /// Every kind's list, consumed to sort in place: one pass instead of one filtered copy per
    /// kind (finishing 18,000 clients and prefixes was mostly allocation).
    pub fn into_lists(self, names: &Interner, keep: impl Fn(Kind) -> usize) -> Lists {
        let mut lists = Lists::default();
        let only_ja3 = self.ja3;
        let mut entries = self.values.into_list();
        entries.sort_unstable_by_key(|e| e.0 >> KIND_SHIFT);
        for group in entries.chunk_by_mut(|a, b| a.0 >> KIND_SHIFT == b.0 >> KIND_SHIFT) {
            let kind = Kind::ALL[(group[0].0 >> KIND_SHIFT) as usize];
            lists.distinct[kind as usize] = group.len() as u64;
            lists.counts[kind as usize] = ranked(group, names, keep(kind));
        }
        let ja3 = Kind::Ja3 as usize;
        (lists.counts[ja3], lists.distinct[ja3]) = match only_ja3 {
            OnlyValue::None => (ThinVec::new(), 0),
            OnlyValue::One { id, count } => (
                thin_vec::thin_vec![Count {
                    value: names.shared(id),
                    count: count.into(),
                }],
                1,
            ),
            // At least two; how many more is not kept.
            OnlyValue::Several => (ThinVec::new(), 2),
        };
        lists
    }

    /// Adds `other`'s counts of the [`Kind::SUMMARY`] kinds (the traffic-wide totals are the sum of
    /// the clients' counts of these kinds).
    pub fn add_summary_of(&mut self, other: &Counts) {
        for (key, n) in other.pairs() {
            if Kind::SUMMARY.iter().any(|&k| key >> KIND_SHIFT == k as u32) {
                self.add_key(key, u64::from(n));
            }
        }
    }
}

/// Sorts `(key, n)` pairs by key and adds up the `n` of repeated keys: the sum of several lists in
/// one sort, with no hashing.
pub(super) fn combine(pairs: &mut Vec<(u32, u32)>) {
    pairs.sort_unstable_by_key(|e| e.0);
    // `dedup_by` hands over (later, kept): a repeated key adds its count to the kept one.
    pairs.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.1 = kept.1.saturating_add(later.1);
        }
        same
    });
}

/// Orders one kind's `(key, count)` entries most frequent first, ties by value, and keeps the first
/// `k`, as [`Count`]s sharing the interned strings.
fn ranked<C: FromIterator<Count>>(entries: &mut [(u32, u32)], names: &Interner, k: usize) -> C {
    let order = |a: &(u32, u32), b: &(u32, u32)| {
        b.1.cmp(&a.1)
            .then_with(|| names.name(a.0 & ID_MASK).cmp(names.name(b.0 & ID_MASK)))
    };
    if k == 0 {
        return std::iter::empty().collect();
    }
    let kept = if entries.len() > k {
        entries.select_nth_unstable_by(k, order);
        &mut entries[..k]
    } else {
        entries
    };
    // Interned values are distinct, so the order is total and an unstable sort is deterministic.
    kept.sort_unstable_by(order);
    kept.iter()
        .map(|&(key, count)| Count {
            value: names.shared(key & ID_MASK),
            count: count.into(),
        })
        .collect()
}

/// A client's finished lists by [`Kind`] (see [`Counts::into_lists`]).
#[derive(Debug, Default)]
pub struct Lists {
    counts: [ThinVec<Count>; Kind::ALL.len()],
    distinct: [u64; Kind::ALL.len()],
}

impl Lists {
    pub fn take(&mut self, kind: Kind) -> ThinVec<Count> {
        std::mem::take(&mut self.counts[kind as usize])
    }

    /// How many distinct values of one kind were counted (the list may keep fewer).
    pub fn distinct(&self, kind: Kind) -> u64 {
        self.distinct[kind as usize]
    }
}

/// A value and how often it was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Count {
    pub value: Arc<str>,
    pub count: u64,
}

/// The interned ids of the values one record contributes, computed once per record.
pub struct RecordIds<'r> {
    pub rule: u32,
    pub response_code: Option<u32>,
    pub uri: u32,
    pub user_agent: u32,
    pub country: u32,
    pub labels: &'r [u32],
    pub count_rules: &'r [u32],
    pub ja4: Option<u32>,
    pub asn: Option<u32>,
    /// Not interned up front: see [`OnlyValue`].
    pub ja3: Option<&'r str>,
}

impl RecordIds<'_> {
    /// Counts the [`Kind::SUMMARY`] kinds: terminating rule, country, labels, COUNT rules.
    pub fn add_summary(&self, c: &mut Counts) {
        c.add(Kind::Rule, self.rule, 1);
        c.add(Kind::Country, self.country, 1);
        for &l in self.labels {
            c.add(Kind::Label, l, 1);
        }
        for &r in self.count_rules {
            c.add(Kind::CountRule, r, 1);
        }
    }
}

/// Accumulates one client's requests during a scan.
#[derive(Debug, Clone, Default)]
pub struct ClientAcc {
    /// Requests by action (their sum is the requests).
    pub tally: Tally,
    pub first_ms: i64,
    pub last_ms: i64,
    pub minutes: Minutes,
    pub counts: Counts,
}

impl ClientAcc {
    pub fn add(
        &mut self,
        timestamp: i64,
        action: Action,
        ids: &RecordIds<'_>,
        names: &mut Interner,
    ) {
        if self.is_empty() {
            self.first_ms = timestamp;
            self.last_ms = timestamp;
        } else {
            self.first_ms = self.first_ms.min(timestamp);
            self.last_ms = self.last_ms.max(timestamp);
        }
        self.tally.add(action, 1);
        self.minutes.add(minute_of(timestamp), 1);
        let c = &mut self.counts;
        ids.add_summary(c);
        if let Some(code) = ids.response_code {
            c.add(Kind::ResponseCode, code, 1);
        }
        c.add(Kind::Uri, ids.uri, 1);
        c.add(Kind::UserAgent, ids.user_agent, 1);
        for (kind, id) in [(Kind::Ja4, ids.ja4), (Kind::Asn, ids.asn)] {
            if let Some(id) = id {
                c.add(kind, id, 1);
            }
        }
        if let Some(ja3) = ids.ja3 {
            c.add_ja3(ja3, names);
        }
    }

    pub fn requests(&self) -> u64 {
        self.tally.total()
    }

    /// No request counted yet (cheaper than `requests() == 0`).
    pub fn is_empty(&self) -> bool {
        match &self.tally {
            Tally::Narrow(counts) => counts.iter().all(|&n| n == 0),
            Tally::Wide(_) => false,
        }
    }

    /// Adds `other` (ids in the same numbering).
    pub fn merge(&mut self, other: &ClientAcc) {
        if other.is_empty() {
            return;
        }
        self.add_totals(other);
        self.minutes.merge(&other.minutes);
        self.counts.merge(&other.counts);
    }

    /// The sum of `parts` (ids in the same numbering), built at once rather than by repeated
    /// merges, which would re-copy the growing lists for every part.
    pub fn sum(parts: &[&ClientAcc]) -> ClientAcc {
        let mut sum = ClientAcc::default();
        for part in parts {
            sum.add_totals(part);
            sum.minutes.merge(&part.minutes);
        }
        let counts: Vec<&Counts> = parts.iter().map(|p| &p.counts).collect();
        sum.counts = Counts::sum(&counts);
        sum
    }

    /// Adds `other`, into whichever of the two has indexed counts (the first worker's: adding to an
    /// index costs less than sorting); `other` is left with the rest.
    pub fn absorb(&mut self, other: &mut ClientAcc) {
        if other.counts.is_indexed() && !self.counts.is_indexed() {
            std::mem::swap(self, other);
        }
        self.merge(other);
    }

    /// Requests, actions and first/last seen of `other`.
    fn add_totals(&mut self, other: &ClientAcc) {
        if other.is_empty() {
            return;
        }
        if self.is_empty() {
            self.first_ms = other.first_ms;
            self.last_ms = other.last_ms;
        }
        self.tally.merge(&other.tally);
        self.first_ms = self.first_ms.min(other.first_ms);
        self.last_ms = self.last_ms.max(other.last_ms);
    }

    pub fn finish(self, key: ClientKey, names: &Interner) -> ClientStats {
        self.finish_as(key, names, false)
    }

    /// [`ClientAcc::finish`], or with `brief` what `ClientStats::brief` leaves of it, built without
    /// the lists: finishing a week's clients made lists only to drop them, and gave each value they
    /// named its shared string for good.
    pub fn finish_as(self, key: ClientKey, names: &Interner, brief: bool) -> ClientStats {
        let minutes = self.minutes.buckets();
        let peaks = window_peaks(&minutes);
        let actions = self.tally.actions();
        let mut lists = self.counts.into_lists(names, |kind| match kind {
            // A brief keeps the first of these.
            Kind::Ja4 | Kind::Asn if brief => 1,
            _ if brief => 0,
            Kind::Uri => TOP_URIS,
            Kind::UserAgent => TOP_USER_AGENTS,
            _ => usize::MAX,
        });
        ClientStats {
            key,
            requests: actions.total(),
            actions,
            first_ms: self.first_ms,
            last_ms: self.last_ms,
            peaks,
            active_minutes: minutes.len() as u64,
            rules: lists.take(Kind::Rule),
            response_codes: lists.take(Kind::ResponseCode),
            distinct_uris: lists.distinct(Kind::Uri),
            uris: lists.take(Kind::Uri),
            distinct_user_agents: lists.distinct(Kind::UserAgent),
            user_agents: lists.take(Kind::UserAgent),
            countries: lists.take(Kind::Country),
            labels: lists.take(Kind::Label),
            count_rules: lists.take(Kind::CountRule),
            ja4: lists.take(Kind::Ja4).first().map(|c| c.value.clone()),
            ja3: lists.take(Kind::Ja3).first().map(|c| c.value.clone()),
            asn: lists
                .take(Kind::Asn)
                .first()
                .and_then(|c| c.value.parse().ok()),
            minutes: if brief {
                ThinVec::new()
            } else {
                ThinVec::from(minutes)
            },
        }
    }
}

/// Paths kept per client after a scan (all are counted in `distinct_uris`); bounded so that a
/// scanner's or crawler's thousands of paths cost nothing after the scan.
pub const TOP_URIS: usize = 20;
/// User agents kept per client; clients rotating more than this many are rare and obvious anyway.
pub const TOP_USER_AGENTS: usize = 50;

/// Everything known about one client (or prefix) after a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientStats {
    pub key: ClientKey,
    pub requests: u64,
    pub actions: ActionCounts,
    pub first_ms: i64,
    pub last_ms: i64,
    /// Peak requests per window of [`WINDOWS`] (1, 2, 5, 10 minutes).
    pub peaks: [Peak; 4],
    pub active_minutes: u64,
    /// Sorted `(epoch minute, requests)`.
    pub minutes: ThinVec<(u32, u32)>,
    /// Terminating rule ids (`Default_Action` when none matched).
    pub rules: ThinVec<Count>,
    pub response_codes: ThinVec<Count>,
    pub distinct_uris: u64,
    /// The [`TOP_URIS`] most requested paths.
    pub uris: ThinVec<Count>,
    pub distinct_user_agents: u64,
    /// The [`TOP_USER_AGENTS`] most used user agents.
    pub user_agents: ThinVec<Count>,
    pub countries: ThinVec<Count>,
    pub labels: ThinVec<Count>,
    /// Rules matched in COUNT mode.
    pub count_rules: ThinVec<Count>,
    /// The most frequent `ja4Fingerprint`, where logged.
    pub ja4: Option<Arc<str>>,
    /// The `ja3Fingerprint`, when every request that carried one carried the same (see
    /// [`OnlyValue`]).
    pub ja3: Option<Arc<str>>,
    /// The most frequent `clientAsn`, where logged.
    pub asn: Option<u32>,
}

impl ClientStats {
    /// Drops the value lists and minutes, keeping totals, peaks and distinct counts (see [`Keep`]).
    fn brief(&mut self) {
        for list in [
            &mut self.rules,
            &mut self.response_codes,
            &mut self.uris,
            &mut self.user_agents,
            &mut self.countries,
            &mut self.labels,
            &mut self.count_rules,
        ] {
            *list = ThinVec::new();
        }
        self.minutes = ThinVec::new();
    }

    pub fn peak(&self, window_minutes: u32) -> Peak {
        WINDOWS
            .iter()
            .position(|&w| w == window_minutes)
            .map(|i| self.peaks[i])
            .unwrap_or_else(|| window_peak(&self.minutes, window_minutes))
    }

    pub fn has_label_prefix(&self, prefix: &str) -> bool {
        self.labels.iter().any(|l| l.value.starts_with(prefix))
    }
}

/// Finishes every client and, from the same accumulators, every /24 or /64 prefix (whose statistics
/// are exact sums of its clients'). One prefix is summed at a time, so the peak memory of this step is
/// one extra accumulator, not a second copy of all of them. A key may come more than once (once per
/// scan worker that saw it): its accumulators are merged here, in parallel, rather than before.
pub fn finish_clients(
    clients: impl IntoIterator<Item = (ClientKey, ClientAcc)>,
    names: &Interner,
) -> (Vec<ClientStats>, Vec<ClientStats>) {
    finish_clients_keeping(clients, names, &Keep::All)
}

/// Which finished clients and prefixes keep their value lists and minutes; the others keep their
/// totals, peaks and distinct counts only (lists and `minutes` empty). A week holds 60,000 clients
/// and 40,000 prefixes, whose lists are most of the finished statistics' memory, while a report
/// shows twenty and a policy looks at the few keys that can fire.
#[derive(Debug, Default)]
pub enum Keep {
    #[default]
    All,
    Some {
        /// The `busiest` clients and the `busiest` prefixes (requests descending, then key).
        busiest: usize,
        /// And these clients and prefixes.
        keys: HashSet<ClientKey>,
    },
}

/// [`finish_clients`], keeping lists as `keep` says.
///
/// The accumulators are sorted by key, which puts a prefix's clients next to each other (addresses
/// order by value) and the clients that are not addresses last; every result is written once, into
/// a list of its final size (a week holds 60,000 clients and 40,000 prefixes of ~400 bytes).
pub fn finish_clients_keeping(
    clients: impl IntoIterator<Item = (ClientKey, ClientAcc)>,
    names: &Interner,
    keep: &Keep,
) -> (Vec<ClientStats>, Vec<ClientStats>) {
    let mut parts: Vec<(ClientKey, ClientAcc)> = clients.into_iter().collect();
    parts.par_sort_unstable_by(|a, b| a.0.cmp(&b.0));
    // A key comes once per scan worker that saw it: merged into its first part, in parallel.
    parts
        .par_chunk_by_mut(|a, b| a.0.prefix() == b.0.prefix())
        .for_each(merge_parts);
    parts.dedup_by(|later, kept| later.0 == kept.0);
    // Each prefix and where its clients are; the clients that are not addresses belong to none.
    let mut groups: Vec<(ClientKey, std::ops::Range<usize>)> = Vec::new();
    let mut at = 0;
    for members in parts.chunk_by(|a, b| a.0.prefix() == b.0.prefix()) {
        if let Some(prefix) = members[0].0.prefix() {
            groups.push((prefix, at..at + members.len()));
        }
        at += members.len();
    }
    let detailed: Option<HashSet<ClientKey>> = match keep {
        Keep::All => None,
        Keep::Some { busiest, keys } => {
            let clients = parts.iter().map(|(key, acc)| (acc.requests(), key));
            let prefixes = groups.iter().map(|(prefix, members)| {
                let requests = parts[members.clone()].iter().map(|(_, acc)| acc.requests());
                (requests.sum(), prefix)
            });
            let mut detailed = keys.clone();
            detailed.extend(busiest_keys(clients, *busiest));
            detailed.extend(busiest_keys(prefixes, *busiest));
            Some(detailed)
        }
    };
    let is_detailed = |key: &ClientKey| detailed.as_ref().is_none_or(|d| d.contains(key));
    let brief = |stats: &mut ClientStats| {
        if !is_detailed(&stats.key) {
            stats.brief();
        }
    };
    // A prefix of one client (9 in 10 on a day's logs) takes its statistics, so a client whose
    // prefix alone keeps its lists is briefed only after they were taken.
    let later: HashSet<usize> = groups
        .iter()
        .filter(|(prefix, members)| {
            members.len() == 1 && is_detailed(prefix) && !is_detailed(&parts[members.start].0)
        })
        .map(|(_, members)| members.start)
        .collect();
    // The prefixes of several clients are their sum.
    // Only those: most prefixes hold one client, and a slot for each would be as big as a sum.
    let sums: Vec<(usize, ClientStats)> = groups
        .par_iter()
        .enumerate()
        .filter(|(_, (_, members))| members.len() > 1)
        .map(|(i, (prefix, members))| {
            let parts: Vec<&ClientAcc> =
                parts[members.clone()].iter().map(|(_, acc)| acc).collect();
            let sum = ClientAcc::sum(&parts);
            (
                i,
                sum.finish_as(prefix.clone(), names, !is_detailed(prefix)),
            )
        })
        .collect();
    // Clients finish independently (their top lists are most of the work): in parallel, a batch
    // at a time from the end, so that the accumulators' list shrinks as the statistics' grows, and
    // what a batch held is returned to the system before the next (glibc would keep it resident:
    // on a week, 17 MB more at the peak). The statistics come out last first.
    let mut finished: Vec<ClientStats> = Vec::with_capacity(parts.len());
    let batch = parts.len().div_ceil(FINISH_BATCHES).max(1);
    while !parts.is_empty() {
        let from = parts.len().saturating_sub(batch);
        let stats = parts[from..].par_iter_mut().enumerate().rev();
        finished.par_extend(stats.map(|(j, (key, acc))| {
            let brief = !is_detailed(key) && !later.contains(&(from + j));
            std::mem::take(acc).finish_as(key.clone(), names, brief)
        }));
        parts.truncate(from);
        parts.shrink_to_fit();
        release_free_memory();
    }
    finished.reverse();
    let mut sums = sums.into_iter().peekable();
    let prefixes = groups
        .iter()
        .enumerate()
        .map(|(i, (prefix, members))| {
            sums.next_if(|(at, _)| *at == i)
                .map(|(_, sum)| sum)
                .unwrap_or_else(|| {
                    let mut stats = ClientStats {
                        key: prefix.clone(),
                        ..finished[members.start].clone()
                    };
                    brief(&mut stats);
                    stats
                })
        })
        .collect();
    for i in later {
        finished[i].brief();
    }
    (finished, prefixes)
}

/// How many batches clients are finished in (see [`finish_clients_keeping`]).
const FINISH_BATCHES: usize = 8;

/// The keys of the `n` busiest of `(requests, key)`, in the order clients are listed.
fn busiest_keys<'k>(
    all: impl Iterator<Item = (u64, &'k ClientKey)>,
    n: usize,
) -> impl Iterator<Item = ClientKey> {
    let mut all: Vec<(u64, &ClientKey)> = all.collect();
    let order = |a: &(u64, &ClientKey), b: &(u64, &ClientKey)| b.0.cmp(&a.0).then(a.1.cmp(b.1));
    if n < all.len() {
        all.select_nth_unstable_by(n, order);
        all.truncate(n);
    }
    all.into_iter().map(|(_, key)| key.clone())
}

/// Merges the parts of the same key (sorted by key) into the first of them, leaving the others
/// empty.
fn merge_parts(parts: &mut [(ClientKey, ClientAcc)]) {
    for same in parts.chunk_by_mut(|a, b| a.0 == b.0) {
        if let [(_, first), rest @ ..] = same {
            for (_, later) in rest {
                first.absorb(later);
                *later = ClientAcc::default();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_tally_widens_instead_of_overflowing() {
        let mut t = Tally::default();
        t.add(Action::Block, u64::from(u32::MAX));
        t.add(Action::Allow, 2);
        assert!(matches!(t, Tally::Narrow(_)));
        t.add(Action::Block, 1);
        assert!(matches!(t, Tally::Wide(_)));
        assert_eq!(t.get(Action::Block), 1 << 32);
        assert_eq!(t.total(), (1 << 32) + 2);
        // Merging into a narrow tally widens it; amounts past 32 bits arrive whole.
        let mut n = Tally::from(ActionCounts {
            other: 5,
            ..ActionCounts::default()
        });
        n.merge(&t);
        n.add(Action::Captcha, 1 << 40);
        let want = ActionCounts {
            allow: 2,
            block: 1 << 32,
            captcha: 1 << 40,
            other: 5,
            ..ActionCounts::default()
        };
        assert_eq!(n.actions(), want);
        assert_eq!(Tally::from(want).actions(), want);
    }

    #[test]
    fn a_second_ja3_makes_several_without_interning_it() {
        let mut names = Interner::default();
        let mut one = OnlyValue::None;
        for v in ["a", "a"] {
            one.add_text(v, &mut names);
        }
        assert_eq!(one, OnlyValue::One { id: 0, count: 2 });
        one.add_text("b", &mut names);
        assert_eq!(one, OnlyValue::Several);
        one.add_text("a", &mut names);
        assert_eq!(one, OnlyValue::Several);
        // Only the first value was interned.
        assert_eq!(names.intern("c"), 1);
    }

    #[test]
    fn peaks_slide_by_minute() {
        // 10 at minute 100, 5 at 101, 20 at 104, 1 at 110
        let m = [(100, 10), (101, 5), (104, 20), (110, 1)];
        let p = window_peaks(&m);
        assert_eq!({ p[0].requests }, 20); // 1m: minute 104
        assert_eq!(p[0].start_minute, 104);
        assert_eq!({ p[1].requests }, 20); // 2m
        assert_eq!({ p[2].requests }, 35); // 5m: 100..=104
        assert_eq!(p[2].start_minute, 100);
        assert_eq!({ p[3].requests }, 35); // 10m: 100..=109
        assert_eq!(p[3].start_minute, 100);
        assert_eq!(window_peaks(&[])[0], Peak::default());
    }

    #[test]
    fn peaks_at_the_last_minutes_do_not_overflow() {
        let far = minute_of(i64::MAX);
        assert_eq!(far, u32::MAX);
        let m = [(far - 3, 2), (far, 1)];
        let p = window_peaks(&m);
        assert_eq!({ p[0].requests }, 2);
        assert_eq!({ p[2].requests }, 3);
        assert_eq!(p[2].start_minute, far - 3);
        assert_eq!(minute_of(i64::MIN), 0);
    }

    #[test]
    fn merge_keeps_order() {
        let mut v = vec![(3, 2), (5, 2), (6, 1), (7, 1)];
        merge_minutes(&mut v, &[(1, 1), (5, 3), (9, 1)]);
        assert_eq!(v, [(1, 1), (3, 2), (5, 5), (6, 1), (7, 1), (9, 1)]);
    }

    #[test]
    fn prefix_of_addresses() {
        let k = ClientKey::Addr("192.0.2.77".parse().unwrap());
        assert_eq!(k.prefix().unwrap().to_string(), "192.0.2.0/24");
        let k = ClientKey::Addr("2001:db8:1:2:3::4".parse().unwrap());
        assert_eq!(k.prefix().unwrap().to_string(), "2001:db8:1:2::/64");
        assert_eq!(ClientKey::Unparsed("X.X.X.X".into()).prefix(), None);
    }

    #[test]
    fn counts_sort_by_count_then_value_and_survive_indexing() {
        let mut names = Interner::default();
        let mut c = Counts::default();
        for v in ["b", "a", "b", "c", "a", "b"] {
            c.add(Kind::Uri, names.intern(v), 1);
        }
        c.add(Kind::Country, names.intern("a"), 7);
        let s: Vec<_> = c
            .sorted(Kind::Uri, &names)
            .into_iter()
            .map(|c| (c.value.to_string(), c.count))
            .collect();
        assert_eq!(s, [("b".into(), 3), ("a".into(), 2), ("c".into(), 1)]);
        assert_eq!(c.sorted(Kind::Country, &names)[0].count, 7);
        // Past the linear-scan size the index takes over; counts stay exact.
        for i in 0..100 {
            c.add(Kind::Uri, names.intern(&format!("/p{}", i % 50)), 1);
        }
        let uris = c.sorted(Kind::Uri, &names);
        assert_eq!(uris.len(), 53);
        let top = c.top(Kind::Uri, &names, 2);
        assert_eq!(top, uris[..2]);
        assert_eq!(uris.iter().map(|u| u.count).sum::<u64>(), 106);
        // Finishing sorts every kind at once, in place, and counts what it drops.
        let mut lists = c.into_lists(&names, |k| if k == Kind::Uri { 2 } else { usize::MAX });
        assert_eq!(
            (lists.take(Kind::Uri), lists.distinct(Kind::Uri)),
            (ThinVec::from(top), 53)
        );
        assert_eq!(lists.take(Kind::Country)[0].count, 7);
        assert_eq!(lists.distinct(Kind::Label), 0);
    }

    #[test]
    fn indexed_counts_move_values_seen_again_out_of_the_ones() {
        let mut names = Interner::default();
        let mut c = Counts::default();
        let ids: Vec<u32> = (0..40).map(|i| names.intern(&format!("/p{i}"))).collect();
        for &id in &ids {
            c.add(Kind::Uri, id, 1);
        }
        assert!(c.is_indexed());
        c.add(Kind::Uri, ids[0], 1);
        c.add(Kind::Uri, ids[1], 4);
        c.add(Kind::Uri, ids[1], 1);
        c.add(Kind::Uri, names.intern("/bulk"), 3);
        c.add(Kind::Uri, names.intern("/new"), 1);
        let top: Vec<(String, u64)> = c
            .top(Kind::Uri, &names, 4)
            .into_iter()
            .map(|c| (c.value.to_string(), c.count))
            .collect();
        assert_eq!(
            top,
            [
                ("/p1".into(), 6),
                ("/bulk".into(), 3),
                ("/p0".into(), 2),
                ("/new".into(), 1)
            ]
        );
        assert_eq!(c.len(), 42);
        assert_eq!(
            c.pairs().map(|p| u64::from(p.1)).sum::<u64>(),
            40 + 1 + 5 + 3 + 1
        );
    }

    #[test]
    fn sums_agree_with_merges_and_keep_indexing() {
        let mut names = Interner::default();
        let parts: Vec<Counts> = (0..3)
            .map(|p| {
                let mut c = Counts::default();
                for i in 0..40 * (p + 1) {
                    c.add(Kind::Uri, names.intern(&format!("/p{}", i % 60)), 1);
                    c.add(Kind::Label, names.intern(&format!("l{}", i % 3)), 2);
                }
                c
            })
            .collect();
        let mut merged = Counts::default();
        for p in &parts {
            merged.merge(p);
        }
        let sum = Counts::sum(&parts.iter().collect::<Vec<_>>());
        for kind in [Kind::Uri, Kind::Label] {
            assert_eq!(sum.sorted(kind, &names), merged.sorted(kind, &names));
        }
        assert_eq!(sum.sorted(Kind::Uri, &names).len(), 60);
        let labels = sum.sorted(Kind::Label, &names);
        assert_eq!(
            labels.iter().map(|l| l.count).sum::<u64>(),
            2 * (40 + 80 + 120)
        );
        // After a sum the index is gone; adding goes on exactly and rebuilds it.
        let mut sum = sum;
        sum.add(Kind::Uri, names.intern("/p0"), 5);
        sum.add(Kind::Uri, names.intern("/new"), 1);
        assert!(sum.is_indexed());
        let uris = sum.sorted(Kind::Uri, &names);
        assert_eq!(
            (uris[0].value.as_ref(), uris[0].count),
            ("/p0", 1 + 2 + 2 + 5)
        );
        assert_eq!(uris.len(), 61);
    }

    /// Random counts of `distinct` possible values of a few kinds, with a plain map of the same.
    fn random_counts(
        rng: &mut impl rand::Rng,
        distinct: u32,
        adds: usize,
    ) -> (Counts, BTreeMap<(Kind, u32), u64>) {
        let kinds = [Kind::Rule, Kind::Uri, Kind::Label, Kind::Asn];
        let (mut c, mut model) = (Counts::default(), BTreeMap::new());
        for _ in 0..adds {
            let kind = kinds[rng.random_range(0..kinds.len())];
            let id = rng.random_range(0..distinct);
            // Mostly ones, as records add them; sometimes more, as Athena's rows do.
            let n = if rng.random_bool(0.9) {
                1
            } else {
                rng.random_range(2..1000)
            };
            c.add(kind, id, n);
            *model.entry((kind, id)).or_default() += n;
        }
        (c, model)
    }

    /// Asserts that `c` counts exactly what `model` does: every kind's values, counts and order.
    fn assert_counts(c: &Counts, model: &BTreeMap<(Kind, u32), u64>, names: &Interner) {
        let total: u64 = model.values().sum();
        assert_eq!(c.pairs().map(|p| u64::from(p.1)).sum::<u64>(), total);
        for kind in [Kind::Rule, Kind::Uri, Kind::Label, Kind::Asn, Kind::Country] {
            let mut want: Vec<(&str, u64)> = model
                .iter()
                .filter(|((k, _), _)| *k == kind)
                .map(|(&(_, id), &n)| (names.name(id), n))
                .collect();
            want.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let got = c.sorted(kind, names);
            let got: Vec<(&str, u64)> = got.iter().map(|c| (&*c.value, c.count)).collect();
            assert_eq!(got, want, "{kind:?}");
            assert_eq!(c.distinct(kind), want.len() as u64);
            assert_eq!(
                c.top(kind, names, 3),
                c.sorted(kind, names)[..want.len().min(3)]
            );
        }
    }

    fn add_model(into: &mut BTreeMap<(Kind, u32), u64>, other: &BTreeMap<(Kind, u32), u64>) {
        for (&k, &n) in other {
            *into.entry(k).or_default() += n;
        }
    }

    #[test]
    fn counts_agree_with_a_map_at_every_size() {
        use rand::{SeedableRng, seq::SliceRandom};
        const IDS: u32 = 40_000;
        let mut names = Interner::default();
        for i in 0..IDS {
            names.intern(&format!("v{i}"));
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(17);
        // (distinct values, adds): short lists, the list's limit either side, tables whose keys
        // are mostly counted once, and tables whose keys are mostly seen again.
        let sizes = [
            (3, 10),
            (6, 6),
            (24, 24),
            (25, 40),
            (60, 60),
            (300, 2_000),
            (2_000, 8_000),
            (5_000, 5_000),
            (IDS, 30_000),
        ];
        for &(distinct, adds) in &sizes {
            let (mut a, mut ma) = random_counts(&mut rng, distinct, adds);
            assert_counts(&a, &ma, &names);
            let (b, mb) = random_counts(&mut rng, distinct, adds / 2 + 1);
            // Merging either way round, and summing with a third part.
            let mut ab = a.clone();
            ab.merge(&b);
            let mut ba = b.clone();
            ba.merge(&a);
            let mut mab = ma.clone();
            add_model(&mut mab, &mb);
            assert_counts(&ab, &mab, &names);
            assert_counts(&ba, &mab, &names);
            let (c, mc) = random_counts(&mut rng, IDS, 30);
            let mut sum = Counts::sum(&[&a, &b, &c]);
            add_model(&mut mab, &mc);
            assert_counts(&sum, &mab, &names);
            // A sum goes on counting exactly, past its next index.
            let (d, md) = random_counts(&mut rng, distinct, adds);
            for (key, n) in d.pairs() {
                sum.add_key(key, n.into());
            }
            add_model(&mut mab, &md);
            assert_counts(&sum, &mab, &names);
            // Another numbering: the same counts under translated ids, and counting goes on.
            let mut remap: Vec<u32> = (0..IDS).collect();
            remap.shuffle(&mut rng);
            a.remap(&remap);
            ma = ma
                .into_iter()
                .map(|((k, id), n)| ((k, remap[id as usize]), n))
                .collect();
            assert_counts(&a, &ma, &names);
            let (e, me) = random_counts(&mut rng, distinct, adds);
            a.merge(&e);
            add_model(&mut ma, &me);
            assert_counts(&a, &ma, &names);
            // The summary kinds alone.
            let mut summary = Counts::default();
            summary.add_summary_of(&a);
            ma.retain(|(k, _), _| Kind::SUMMARY.contains(k));
            assert_counts(&summary, &ma, &names);
        }
    }

    /// Finishing briefly gives what finishing and then dropping the lists gives: totals, peaks,
    /// distinct counts and the first JA4, JA3 and ASN, ties broken by value as in the lists.
    #[test]
    fn brief_finishing_equals_finishing_then_briefing() {
        let mut names = Interner::default();
        let text: Vec<u32> = ["-", "/a", "/b", "ua", "JP", "t1", "t2", "64500", "64501"]
            .map(|t| names.intern(t))
            .into();
        let mut acc = ClientAcc::default();
        for i in 0..40u32 {
            let ids = RecordIds {
                rule: text[0],
                response_code: None,
                uri: text[1 + (i % 2) as usize],
                user_agent: text[3],
                country: text[4],
                labels: &[],
                count_rules: &[],
                // Two JA4s and two ASNs, equally often: the first by value wins.
                ja4: Some(text[6 - (i % 2) as usize]),
                asn: Some(text[8 - (i % 2) as usize]),
                ja3: Some("j"),
            };
            acc.add(i64::from(i) * 50_000, Action::Allow, &ids, &mut names);
        }
        let key = ClientKey::Unparsed("x".into());
        let mut full = acc.clone().finish(key.clone(), &names);
        assert_eq!(full.uris.len(), 2);
        full.brief();
        let brief = acc.finish_as(key, &names, true);
        assert_eq!(brief, full);
        assert_eq!(brief.ja4.as_deref(), Some("t1"));
        assert_eq!(brief.asn, Some(64500));
        assert_eq!((brief.distinct_uris, brief.requests), (2, 40));
    }

    #[test]
    fn client_sums_add_minutes_and_totals() {
        let mut names = Interner::default();
        names.intern("-");
        let ids = RecordIds {
            rule: 0,
            response_code: None,
            uri: 0,
            user_agent: 0,
            country: 0,
            labels: &[],
            count_rules: &[],
            ja4: None,
            asn: None,
            ja3: None,
        };
        let mut a = ClientAcc::default();
        let mut b = ClientAcc::default();
        for t in [120_000, 60_000] {
            a.add(t, Action::Allow, &ids, &mut names);
        }
        for t in [120_500, 600_000] {
            b.add(t, Action::Allow, &ids, &mut names);
        }
        let sum = ClientAcc::sum(&[&a, &ClientAcc::default(), &b]);
        let mut merged = a.clone();
        merged.merge(&b);
        assert_eq!(sum.minutes.buckets(), [(1, 1), (2, 2), (10, 1)]);
        assert_eq!(sum.minutes.buckets(), merged.minutes.buckets());
        assert_eq!(
            (sum.requests(), sum.first_ms, sum.last_ms),
            (4, 60_000, 600_000)
        );
        let key = ClientKey::Unparsed("x".into());
        assert_eq!(sum.finish(key.clone(), &names), merged.finish(key, &names));
        // One client from two workers, another alone in its /24: merged, and prefixes summed.
        let ip = |s: &str| ClientKey::Addr(s.parse().unwrap());
        let (clients, prefixes) = finish_clients(
            [
                (ip("192.0.2.1"), a.clone()),
                (ip("198.51.100.7"), a.clone()),
                (ip("192.0.2.1"), b.clone()),
                (ip("192.0.2.2"), b.clone()),
            ],
            &names,
        );
        let requests = |v: &[ClientStats]| -> Vec<(String, u64)> {
            let mut v: Vec<_> = v.iter().map(|c| (c.key.to_string(), c.requests)).collect();
            v.sort();
            v
        };
        assert_eq!(
            requests(&clients),
            [
                ("192.0.2.1".into(), 4),
                ("192.0.2.2".into(), 2),
                ("198.51.100.7".into(), 2)
            ]
        );
        assert_eq!(
            requests(&prefixes),
            [("192.0.2.0/24".into(), 6), ("198.51.100.0/24".into(), 2)]
        );
        let single = prefixes.iter().find(|p| p.requests == 2).unwrap();
        let alone = clients
            .iter()
            .find(|c| c.key == ip("198.51.100.7"))
            .unwrap();
        assert_eq!(single.minutes, alone.minutes);
        assert_eq!(single.uris, alone.uris);
    }

    #[test]
    fn kept_lists_follow_the_key_whatever_the_prefix_holds() {
        let mut names = Interner::default();
        let acc = |uris: &[&str], names: &mut Interner| {
            let mut acc = ClientAcc::default();
            for (i, uri) in uris.iter().enumerate() {
                let ids = RecordIds {
                    rule: names.intern("-"),
                    response_code: None,
                    uri: names.intern(uri),
                    user_agent: names.intern("ua"),
                    country: names.intern("JP"),
                    labels: &[],
                    count_rules: &[],
                    ja4: None,
                    asn: None,
                    ja3: None,
                };
                acc.add(i as i64 * 60_000, Action::Allow, &ids, names);
            }
            acc
        };
        let ip = |s: &str| ClientKey::Addr(s.parse().unwrap());
        let net = |s: &str| ClientKey::Prefix(s.parse().unwrap());
        // 192.0.2.1 alone in its /24, seen by two workers; two clients in 198.51.100.0/24.
        let parts = vec![
            (ip("198.51.100.2"), acc(&["/b"], &mut names)),
            (ip("192.0.2.1"), acc(&["/a", "/a"], &mut names)),
            (ip("198.51.100.1"), acc(&["/c", "/d"], &mut names)),
            (ip("192.0.2.1"), acc(&["/e"], &mut names)),
            (ClientKey::Unparsed("X".into()), acc(&["/x"], &mut names)),
        ];
        let sorted = |(mut c, mut p): (Vec<ClientStats>, Vec<ClientStats>)| {
            c.sort_by(|a, b| a.key.cmp(&b.key));
            p.sort_by(|a, b| a.key.cmp(&b.key));
            (c, p)
        };
        let (all_clients, all_prefixes) = sorted(finish_clients(parts.clone(), &names));
        assert_eq!(
            all_clients.iter().map(|c| c.requests).collect::<Vec<_>>(),
            [3, 2, 1, 1]
        );
        assert_eq!(all_prefixes[0].uris, all_clients[0].uris);
        assert_eq!(all_prefixes[1].requests, 3);
        // Only the lone client's prefix keeps its lists: the client is brief, its prefix is not.
        let keep = Keep::Some {
            busiest: 0,
            keys: HashSet::from([net("192.0.2.0/24")]),
        };
        let (clients, prefixes) = sorted(finish_clients_keeping(parts.clone(), &names, &keep));
        assert_eq!(prefixes[0], all_prefixes[0]);
        assert!(clients[0].uris.is_empty() && clients[0].minutes.is_empty());
        assert_eq!(clients[0].requests, 3);
        assert_eq!(clients[0].peaks, all_clients[0].peaks);
        assert!(prefixes[1].uris.is_empty());
        // And the other way round: the client keeps them, its prefix does not.
        let keep = Keep::Some {
            busiest: 0,
            keys: HashSet::from([ip("192.0.2.1")]),
        };
        let (clients, prefixes) = sorted(finish_clients_keeping(parts, &names, &keep));
        assert_eq!(clients[0], all_clients[0]);
        assert!(prefixes[0].uris.is_empty());
        assert_eq!(prefixes[0].distinct_uris, 2);
    }

    #[test]
    fn interning_numbers_distinct_strings() {
        let mut names = Interner::default();
        let texts = ["/x", "", "Zürich", "東京", "/x/", "/"];
        let ids: Vec<u32> = texts.iter().map(|t| names.intern(t)).collect();
        assert_eq!(ids, [0, 1, 2, 3, 4, 5]);
        // The same text, however often and in whatever order, keeps its id.
        for (t, id) in texts.iter().zip(&ids).rev() {
            assert_eq!(names.intern(t), *id);
            assert_eq!(names.name(*id), *t);
        }
        assert_eq!(names.intern(&["Zür", "ich"].concat()), 2);
    }

    #[test]
    fn interning_thousands_keeps_every_name() {
        let mut names = Interner::default();
        let text = |i: u32| "é".repeat(i as usize % 7) + &i.to_string();
        for i in 0..5000 {
            assert_eq!(names.intern(&text(i)), i);
        }
        assert!((0..5000).all(|i| names.name(i) == text(i) && names.intern(&text(i)) == i));
    }

    /// Each string's header holds its length: strings that are prefixes of each other, and lengths
    /// that take more than one byte of 7 bits, stay apart.
    #[test]
    fn interning_long_strings_and_prefixes_of_each_other() {
        let mut names = Interner::default();
        let long = "ab".repeat(10_000);
        let lens = [20_000, 19_999, 16_384, 16_383, 200, 128, 127, 1, 0];
        let ids: Vec<u32> = lens.iter().map(|&n| names.intern(&long[..n])).collect();
        assert_eq!(ids, (0..lens.len() as u32).collect::<Vec<_>>());
        for (&n, &id) in lens.iter().zip(&ids) {
            assert_eq!(names.intern(&long[..n]), id);
            assert_eq!(names.name(id), &long[..n]);
        }
    }

    #[test]
    fn seven_bit_numbers_read_back() {
        for n in [
            0, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, ID_MASK,
        ] {
            let bytes = seven_bit(n);
            assert!(bytes.is_ascii(), "{n}: {bytes:?}");
            let word = u64::from_le_bytes([bytes, [0x7f; 4]].concat().try_into().unwrap());
            assert_eq!(from_seven_bit(word), n);
            assert_eq!(from_seven_bit(word >> 32), ID_MASK);
        }
    }

    #[test]
    fn absorb_maps_shared_and_new_strings() {
        let (mut a, mut b) = (Interner::default(), Interner::default());
        for t in ["/a", "", "ü"] {
            a.intern(t);
        }
        for t in ["ü", "/new", "/a", "/b"] {
            b.intern(t);
        }
        let remap = a.absorb(&b);
        assert_eq!(remap, [2, 3, 0, 4]);
        for (their, &mine) in remap.iter().enumerate() {
            assert_eq!(a.name(mine), b.name(their as u32));
        }
        assert_eq!(a.name(1), "");
        assert_eq!(a.intern("/b"), 4);
        assert_eq!(a.intern("/c"), 5);
    }

    #[test]
    fn shared_makes_one_arc_per_string() {
        let mut names = Interner::default();
        let x = names.intern("/x");
        let first = names.shared(x);
        assert_eq!(&*first, "/x");
        assert!(Arc::ptr_eq(&first, &names.shared(x)));
        // Strings interned after sharing started are shared too.
        let y = names.intern("ÿ");
        assert_eq!(&*names.shared(y), "ÿ");
        assert!(Arc::ptr_eq(&first, &names.shared(x)));
    }

    #[test]
    fn merge_translates_ids() {
        let (mut a, mut b) = (Interner::default(), Interner::default());
        let (mut ca, mut cb) = (Counts::default(), Counts::default());
        ca.add(Kind::Uri, a.intern("/x"), 1);
        cb.add(Kind::Uri, b.intern("/y"), 2);
        cb.add(Kind::Uri, b.intern("/x"), 3);
        let remap = a.absorb(&b);
        cb.remap(&remap);
        ca.merge(&cb);
        let s: Vec<_> = ca
            .sorted(Kind::Uri, &a)
            .into_iter()
            .map(|c| (c.value.to_string(), c.count))
            .collect();
        assert_eq!(s, [("/x".into(), 4), ("/y".into(), 2)]);
    }

    #[test]
    fn action_counts() {
        let mut a = ActionCounts::default();
        a.add(Action::Block, 2);
        a.add(Action::Allow, 1);
        let mut b = ActionCounts::default();
        b.merge(&a);
        b.merge(&a);
        assert_eq!((b.block, b.allow, b.total()), (4, 2, 6));
    }
}
