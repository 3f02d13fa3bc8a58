//! A client's requests per minute during a scan, in about two bytes per active minute: a regular
//! visitor over a week has hundreds of active minutes, and a scan holds every client's at once.

use super::stats::{combine, merge_minutes};

/// Bytes before the entries: the minute of the last entry and where the sorted entries end (both
/// `u32`, little-endian). Kept on the heap so that a client without requests costs an empty `Vec`.
const HEADER: usize = 8;

/// Requests per epoch minute, as [`Minutes::buckets`] returns them.
///
/// After the `HEADER`, LEB128 entries (minute minus the previous entry's minute, zigzag-signed;
/// requests), the first from minute 0. The entries up to the header's end offset have increasing
/// minutes; after it come those added out of order (records from another source or worker),
/// folded in once they outgrow a quarter of the sorted ones. Records mostly arrive in time order,
/// so adding one bumps the last entry's count or appends two bytes.
#[derive(Debug, Clone, Default)]
pub struct Minutes {
    bytes: Vec<u8>,
}

impl Minutes {
    /// Minutes from sorted `(minute, requests)` buckets with distinct minutes.
    pub fn from_buckets(buckets: &[(u32, u32)]) -> Minutes {
        let Some(&(last, _)) = buckets.last() else {
            return Minutes::default();
        };
        let previous = std::iter::once(0).chain(buckets.iter().map(|b| b.0));
        let entries = previous
            .zip(buckets)
            .map(|(prev, &(minute, n))| (zigzag(prev, minute), u64::from(n)));
        // Exactly sized: merged and folded accumulators stay in memory until the scan ends.
        let size: usize = entries
            .clone()
            .map(|(d, n)| varint_len(d) + varint_len(n))
            .sum();
        let mut bytes = Vec::with_capacity(HEADER + size);
        bytes.extend_from_slice(&[0; HEADER]);
        for (delta, n) in entries {
            push_varint(&mut bytes, delta);
            push_varint(&mut bytes, n);
        }
        let mut m = Minutes { bytes };
        m.set_header(last, m.bytes.len());
        m
    }

    /// Adds `n` requests at `minute`.
    #[inline]
    pub fn add(&mut self, minute: u32, n: u32) {
        if self.bytes.is_empty() {
            // The header, the first minute and a few more (most clients have a few).
            self.bytes.reserve_exact(HEADER + 16);
            self.bytes.extend_from_slice(&[0; HEADER]);
            self.append(0, minute, n, true);
            return;
        }
        let (last, sorted_end) = self.header();
        let len = self.bytes.len();
        if minute == last {
            self.bump_last(n, sorted_end == len);
            return;
        }
        let sorted = minute > last && sorted_end == len;
        self.append(last, minute, n, sorted);
        // Folding costs about the whole buffer, so unsorted entries may grow with it: amortised
        // constant work per entry, at most a quarter more memory.
        if !sorted && self.bytes.len() - sorted_end > 16 + (sorted_end - HEADER) / 4 {
            *self = Minutes::from_buckets(&self.buckets());
        }
    }

    /// Adds `other`'s requests.
    pub fn merge(&mut self, other: &Minutes) {
        for (minute, n) in other.entries() {
            self.add(minute, n);
        }
    }

    /// The sorted `(minute, requests)` buckets.
    pub fn buckets(&self) -> Vec<(u32, u32)> {
        if self.bytes.is_empty() {
            return Vec::new();
        }
        let (_, sorted_end) = self.header();
        let mut sorted: Vec<(u32, u32)> =
            Entries::new(&self.bytes[HEADER..sorted_end], 0).collect();
        if sorted_end < self.bytes.len() {
            let last = sorted.last().map_or(0, |b| b.0);
            let mut unsorted: Vec<(u32, u32)> =
                Entries::new(&self.bytes[sorted_end..], last).collect();
            combine(&mut unsorted);
            merge_minutes(&mut sorted, &unsorted);
        }
        sorted
    }

    /// How many minutes have requests.
    pub fn active(&self) -> u64 {
        if self.bytes.is_empty() {
            return 0;
        }
        let (_, sorted_end) = self.header();
        if sorted_end < self.bytes.len() {
            return self.buckets().len() as u64;
        }
        // Each entry is two varints, and each varint ends in its only byte below 0x80.
        let ends = self.bytes[HEADER..].iter().filter(|&&b| b < 0x80).count();
        ends as u64 / 2
    }

    /// Every entry in buffer order (sorted ones first, then those added out of order).
    fn entries(&self) -> Entries<'_> {
        Entries::new(self.bytes.get(HEADER..).unwrap_or_default(), 0)
    }

    /// The last entry's minute and the end of the sorted entries.
    fn header(&self) -> (u32, usize) {
        let word =
            |at: usize| u32::from_le_bytes(self.bytes[at..at + 4].try_into().expect("four bytes"));
        (word(0), word(4) as usize)
    }

    fn set_header(&mut self, last: u32, sorted_end: usize) {
        self.bytes[..4].copy_from_slice(&last.to_le_bytes());
        // A buffer of 4 GiB would be thousands of years of minutes.
        self.bytes[4..HEADER].copy_from_slice(&(sorted_end as u32).to_le_bytes());
    }

    /// Appends an entry for `minute` after one for `last`; `sorted` when it stays in order.
    fn append(&mut self, last: u32, minute: u32, n: u32, sorted: bool) {
        self.make_room();
        push_varint(&mut self.bytes, zigzag(last, minute));
        push_varint(&mut self.bytes, u64::from(n));
        let sorted_end = match sorted {
            true => self.bytes.len(),
            false => self.header().1,
        };
        self.set_header(minute, sorted_end);
    }

    /// Room for an entry of the longest varints (minute 5 bytes, count 5 bytes), growing by a
    /// quarter rather than doubling: a scan holds every client's buffer, most of a few bytes.
    fn make_room(&mut self) {
        if self.bytes.capacity() - self.bytes.len() < 10 {
            self.bytes.reserve_exact((self.bytes.len() / 4).max(16));
        }
    }

    /// Adds `n` to the last entry's count, its last varint; `sorted` when that entry is sorted.
    fn bump_last(&mut self, n: u32, sorted: bool) {
        let len = self.bytes.len();
        // The common case: a count that stays one byte (the byte before ends the minute's varint).
        let small = u64::from(self.bytes[len - 1]) + u64::from(n);
        if small < 0x80 && self.bytes[len - 2] < 0x80 {
            self.bytes[len - 1] = small as u8;
            return;
        }
        let mut start = len - 1;
        while self.bytes[start - 1] >= 0x80 {
            start -= 1;
        }
        let mut at = start;
        let count = read_varint(&self.bytes, &mut at);
        self.bytes.truncate(start);
        self.make_room();
        push_varint(
            &mut self.bytes,
            count.saturating_add(u64::from(n)).min(u32::MAX.into()),
        );
        if sorted {
            let (last, _) = self.header();
            self.set_header(last, self.bytes.len());
        }
    }
}

/// Decodes entries, from the minute before the first.
struct Entries<'b> {
    bytes: &'b [u8],
    at: usize,
    minute: u32,
}

impl<'b> Entries<'b> {
    fn new(bytes: &'b [u8], minute: u32) -> Entries<'b> {
        Entries {
            bytes,
            at: 0,
            minute,
        }
    }
}

impl Iterator for Entries<'_> {
    type Item = (u32, u32);

    fn next(&mut self) -> Option<(u32, u32)> {
        if self.at == self.bytes.len() {
            return None;
        }
        let delta = read_varint(self.bytes, &mut self.at);
        let signed = (delta >> 1) as i64 ^ -((delta & 1) as i64);
        // Both ends are minutes, so the sum is one.
        self.minute = (i64::from(self.minute) + signed) as u32;
        let n = read_varint(self.bytes, &mut self.at) as u32;
        Some((self.minute, n))
    }
}

/// `to - from`, zigzag-encoded (small magnitudes of either sign are small).
fn zigzag(from: u32, to: u32) -> u64 {
    let d = i64::from(to) - i64::from(from);
    ((d << 1) ^ (d >> 63)) as u64
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn push_varint(bytes: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        bytes.push(v as u8 | 0x80);
        v >>= 7;
    }
    bytes.push(v as u8);
}

fn read_varint(bytes: &[u8], at: &mut usize) -> u64 {
    let mut v = 0;
    let mut shift = 0;
    loop {
        let b = bytes[*at];
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return v;
        }
        shift += 7;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    /// The plain representation: requests by minute.
    fn model(adds: &[(u32, u32)]) -> Vec<(u32, u32)> {
        let mut m: BTreeMap<u32, u32> = BTreeMap::new();
        for &(minute, n) in adds {
            *m.entry(minute).or_default() += n;
        }
        m.into_iter().collect()
    }

    fn of(adds: &[(u32, u32)]) -> Minutes {
        let mut m = Minutes::default();
        for &(minute, n) in adds {
            m.add(minute, n);
        }
        m
    }

    /// Adds near one of a few bases (0, a 2026 minute, the last minutes a `u32` holds) or
    /// anywhere, mostly single requests; `sorted` for records in time order.
    fn adds(sorted: bool) -> impl Strategy<Value = Vec<(u32, u32)>> {
        let minute = prop_oneof![
            4 => (prop::sample::select(vec![0, 29_600_000, u32::MAX - 200]), 0..=200u32)
                .prop_map(|(base, off)| base.saturating_add(off)),
            1 => any::<u32>(),
        ];
        let n = prop_oneof![8 => Just(1u32), 1 => 1..300u32, 1 => 1..1u32 << 20];
        prop::collection::vec((minute, n), 0..300).prop_map(move |mut v| {
            if sorted {
                v.sort_by_key(|a| a.0);
            }
            v
        })
    }

    proptest! {
        #[test]
        fn adds_match_a_sorted_vec(v in prop_oneof![adds(true), adds(false)]) {
            let m = of(&v);
            prop_assert_eq!(m.buckets(), model(&v));
            prop_assert_eq!(m.active(), model(&v).len() as u64);
            prop_assert_eq!(Minutes::from_buckets(&model(&v)).buckets(), model(&v));
        }

        #[test]
        fn merges_and_sums_match_a_sorted_vec(
            parts in prop::collection::vec(prop_oneof![adds(true), adds(false)], 0..5),
        ) {
            let mut sum = Minutes::default();
            for part in &parts {
                sum.merge(&of(part));
            }
            let all: Vec<(u32, u32)> = parts.concat();
            prop_assert_eq!(sum.buckets(), model(&all));
            prop_assert_eq!(sum.active(), model(&all).len() as u64);
        }
    }

    #[test]
    fn empty_has_no_minutes_and_merges_as_nothing() {
        let empty = Minutes::default();
        assert_eq!((empty.buckets(), empty.active()), (vec![], 0));
        let mut m = of(&[(5, 1)]);
        m.merge(&empty);
        assert_eq!(m.buckets(), [(5, 1)]);
        let mut e = Minutes::default();
        e.merge(&m);
        assert_eq!(e.buckets(), [(5, 1)]);
        assert!(Minutes::from_buckets(&[]).bytes.is_empty());
    }

    #[test]
    fn extreme_minutes_and_counts_round_trip() {
        let v = [
            (u32::MAX, 1),
            (0, u32::MAX - 1),
            (u32::MAX - 1, 300),
            (0, 1),
            (u32::MAX, 127),
            (1, 128),
        ];
        assert_eq!(
            of(&v).buckets(),
            [
                (0, u32::MAX),
                (1, 128),
                (u32::MAX - 1, 300),
                (u32::MAX, 128)
            ]
        );
    }

    #[test]
    fn a_count_growing_a_byte_keeps_later_minutes_sorted() {
        // 127 requests in one byte, the 128th in two: the next minute still appends in order.
        let mut m = of(&[(10, 127), (10, 1), (11, 1)]);
        assert_eq!(m.header().1, m.bytes.len());
        m.add(11, 16_383);
        m.add(12, 1);
        assert_eq!(m.header().1, m.bytes.len());
        assert_eq!(m.buckets(), [(10, 128), (11, 16_384), (12, 1)]);
    }

    #[test]
    fn a_regular_visitor_costs_two_bytes_a_minute() {
        // Minutes a few apart, a few requests each, in time order.
        let adds: Vec<(u32, u32)> = (0..2_000u32)
            .map(|i| (29_600_000 + i * 5 + i % 7, 1 + i % 9))
            .collect();
        let m = of(&adds);
        // The header, the first minute in four bytes, then a byte of gap and one of count each.
        assert_eq!(m.bytes.len(), HEADER + 4 + 1 + 2 * 1_999);
        assert_eq!(m.active(), 2_000);
    }

    #[test]
    fn out_of_order_minutes_fold_into_the_sorted_ones() {
        // A second source's records for the same hour, after the first's: folded as they come,
        // so the unsorted entries never outgrow a quarter of the sorted ones (plus a little).
        let first: Vec<(u32, u32)> = (0..60).map(|i| (1_000 + i, 3)).collect();
        let mut m = of(&first);
        for i in 0..60 {
            m.add(1_000 + i, 2);
            let (_, sorted_end) = m.header();
            assert!(m.bytes.len() - sorted_end <= 16 + (sorted_end - HEADER) / 4 + 2);
        }
        assert_eq!(
            m.buckets(),
            (0..60).map(|i| (1_000 + i, 5)).collect::<Vec<_>>()
        );
    }
}
