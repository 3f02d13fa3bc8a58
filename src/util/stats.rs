//! Order statistics over the site's clients, shared by rate-rule recommendations and relative
//! policy thresholds, so both read "p99" the same way.

/// Nearest-rank percentile (`p` in 0..=100) of ascending `sorted`; 0 when empty.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    // The epsilon keeps binary rounding (99.9 / 100 * 1000 = 999.0000000000001) from moving the
    // rank up by one.
    let rank = (p / 100.0 * sorted.len() as f64 - 1e-9).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
