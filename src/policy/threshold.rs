//! Thresholds: when the requests a policy matched from one key are enough to act on.
//!
//! The scan counts, per policy and key, what [`KeyCounts`] holds; thresholds only compare those
//! numbers, so they cost nothing per record and read the same whichever engine did the counting.

use std::fmt;

use crate::model::rate::Window;
use crate::util::text::{share, thousands};

/// What the scan counted for one policy and one key (an address or a prefix), over the requests
/// the policy matched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyCounts {
    pub requests: u64,
    /// peaks for windows 1, 2, 5, 10 minutes
    pub peaks: [u64; 4],
    pub distinct_uris: u64,
    /// requests WAF answered with BLOCK
    pub blocked: u64,
}

/// One condition on a key's counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// The busiest `window` held at least `requests` matched requests.
    Peak { window: Window, requests: u64 },
    /// At least this many matched requests in the analysed period.
    Requests(u64),
    /// At least this many distinct URIs among the matched requests.
    DistinctUris(u64),
    /// WAF blocked at least `ratio` (0 < ratio <= 1) of the matched requests, and at least
    /// `min_blocked` of them: a share alone would fire on one blocked request out of one.
    Blocked { ratio: f64, min_blocked: u64 },
}

impl Threshold {
    pub fn check(&self, c: &KeyCounts) -> Option<FiredThreshold> {
        match *self {
            Threshold::Peak { window, requests } => {
                let observed = c.peaks[window.index()];
                (observed >= requests).then_some(FiredThreshold::Peak {
                    window,
                    limit: requests,
                    observed,
                })
            }
            Threshold::Requests(limit) => {
                (c.requests >= limit).then_some(FiredThreshold::Requests {
                    limit,
                    observed: c.requests,
                })
            }
            Threshold::DistinctUris(limit) => {
                (c.distinct_uris >= limit).then_some(FiredThreshold::DistinctUris {
                    limit,
                    observed: c.distinct_uris,
                })
            }
            Threshold::Blocked { ratio, min_blocked } => {
                // Division is correctly rounded, so 7 of 10 compares equal to a written `0.7`.
                let share_reached = c.requests > 0 && c.blocked as f64 / c.requests as f64 >= ratio;
                (share_reached && c.blocked >= min_blocked).then_some(FiredThreshold::Blocked {
                    ratio,
                    min_blocked,
                    blocked: c.blocked,
                    requests: c.requests,
                })
            }
        }
    }

    /// The fewest matched requests a key needs before this threshold can fire.
    pub fn min_requests(&self) -> u64 {
        match *self {
            Threshold::Peak { requests, .. } => requests,
            Threshold::Requests(n) | Threshold::DistinctUris(n) => n,
            Threshold::Blocked { min_blocked, .. } => min_blocked,
        }
    }
}

/// How a policy's thresholds combine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// Every threshold must fire.
    #[default]
    All,
    /// One is enough.
    Any,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::All => "all",
            Mode::Any => "any",
        }
    }
}

/// A policy's thresholds: never empty (validation refuses a policy without one).
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    pub mode: Mode,
    pub list: Vec<Threshold>,
}

impl Thresholds {
    /// The thresholds that fired, or `None` when the policy does not fire for these counts.
    pub fn check(&self, c: &KeyCounts) -> Option<Vec<FiredThreshold>> {
        let fired: Vec<FiredThreshold> = self.list.iter().filter_map(|t| t.check(c)).collect();
        let fires = match self.mode {
            Mode::All => fired.len() == self.list.len(),
            Mode::Any => !fired.is_empty(),
        };
        (fires && !fired.is_empty()).then_some(fired)
    }

    /// The fewest matched requests a key needs before the policy can fire.
    pub fn min_requests(&self) -> u64 {
        let each = self.list.iter().map(Threshold::min_requests);
        match self.mode {
            Mode::All => each.max(),
            Mode::Any => each.min(),
        }
        .unwrap_or(0)
    }
}

/// A threshold that fired: which one, its limit, and what was observed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FiredThreshold {
    Peak {
        window: Window,
        limit: u64,
        observed: u64,
    },
    Requests {
        limit: u64,
        observed: u64,
    },
    DistinctUris {
        limit: u64,
        observed: u64,
    },
    Blocked {
        ratio: f64,
        min_blocked: u64,
        blocked: u64,
        requests: u64,
    },
}

impl fmt::Display for FiredThreshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FiredThreshold::Peak {
                window,
                limit,
                observed,
            } => write!(
                f,
                "peak {window} {} >= {}",
                thousands(observed),
                thousands(limit)
            ),
            FiredThreshold::Requests { limit, observed } => {
                write!(
                    f,
                    "requests {} >= {}",
                    thousands(observed),
                    thousands(limit)
                )
            }
            FiredThreshold::DistinctUris { limit, observed } => write!(
                f,
                "distinct URIs {} >= {}",
                thousands(observed),
                thousands(limit)
            ),
            FiredThreshold::Blocked {
                ratio,
                min_blocked,
                blocked,
                requests,
            } => write!(
                f,
                "blocked {} ({} of {}) >= {}, min {}",
                share(blocked as f64 / requests as f64),
                thousands(blocked),
                thousands(requests),
                share(ratio),
                thousands(min_blocked)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(requests: u64, peaks: [u64; 4], distinct_uris: u64, blocked: u64) -> KeyCounts {
        KeyCounts {
            requests,
            peaks,
            distinct_uris,
            blocked,
        }
    }

    fn peak(window: Window, requests: u64) -> Threshold {
        Threshold::Peak { window, requests }
    }

    #[test]
    fn windows_parse_and_index_the_peaks() {
        assert_eq!(Window::parse("5m"), Some(Window::M5));
        assert_eq!(Window::parse("3m"), None);
        assert_eq!(
            Window::ALL.map(|w| (w.minutes(), w.index())),
            [(1, 0), (2, 1), (5, 2), (10, 3)]
        );
        let c = counts(0, [1, 2, 3, 4], 0, 0);
        for (i, w) in Window::ALL.into_iter().enumerate() {
            assert_eq!(c.peaks[w.index()], [1, 2, 3, 4][i]);
        }
    }

    #[test]
    fn peak_fires_at_the_limit_of_its_window() {
        let t = peak(Window::M5, 600);
        assert_eq!(t.check(&counts(5000, [599, 599, 599, 599], 0, 0)), None);
        let fired = t
            .check(&counts(5000, [200, 400, 1117, 2000], 0, 0))
            .unwrap();
        assert_eq!(fired.to_string(), "peak 5m 1,117 >= 600");
        assert!(t.check(&counts(600, [0, 0, 600, 600], 0, 0)).is_some());
        let t = peak(Window::M10, 10);
        assert!(t.check(&counts(10, [0, 0, 0, 10], 0, 0)).is_some());
        assert!(
            peak(Window::M1, 10)
                .check(&counts(10, [9, 10, 10, 10], 0, 0))
                .is_none()
        );
    }

    #[test]
    fn requests_distinct_uris_and_blocked_share() {
        let c = counts(12_004, [0; 4], 312, 0);
        assert_eq!(
            Threshold::Requests(5_000).check(&c).unwrap().to_string(),
            "requests 12,004 >= 5,000"
        );
        assert_eq!(Threshold::Requests(12_005).check(&c), None);
        assert_eq!(
            Threshold::DistinctUris(100).check(&c).unwrap().to_string(),
            "distinct URIs 312 >= 100"
        );
        assert_eq!(Threshold::DistinctUris(313).check(&c), None);

        let blocked = Threshold::Blocked {
            ratio: 0.8,
            min_blocked: 20,
        };
        let fired = blocked.check(&counts(50, [0; 4], 1, 46)).unwrap();
        assert_eq!(fired.to_string(), "blocked 92% (46 of 50) >= 80%, min 20");
        // Exactly the ratio fires; just below does not.
        assert!(blocked.check(&counts(50, [0; 4], 1, 40)).is_some());
        assert!(blocked.check(&counts(50, [0; 4], 1, 39)).is_none());
        // A high share of few requests is not enough.
        assert!(blocked.check(&counts(19, [0; 4], 1, 19)).is_none());
        assert!(blocked.check(&KeyCounts::default()).is_none());
        let exact = Threshold::Blocked {
            ratio: 0.7,
            min_blocked: 1,
        };
        assert!(exact.check(&counts(10, [0; 4], 1, 7)).is_some());
    }

    #[test]
    fn mode_all_needs_every_threshold_and_any_needs_one() {
        let list = vec![peak(Window::M1, 100), Threshold::DistinctUris(10)];
        let all = Thresholds {
            mode: Mode::All,
            list: list.clone(),
        };
        let any = Thresholds {
            mode: Mode::Any,
            list,
        };
        let only_peak = counts(500, [150, 150, 150, 150], 3, 0);
        let both = counts(500, [150, 150, 150, 150], 30, 0);
        let neither = counts(50, [50, 50, 50, 50], 3, 0);
        assert_eq!(all.check(&only_peak), None);
        assert_eq!(all.check(&both).unwrap().len(), 2);
        let fired = any.check(&only_peak).unwrap();
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].to_string(), "peak 1m 150 >= 100");
        assert_eq!(any.check(&both).unwrap().len(), 2);
        assert_eq!(any.check(&neither), None);
        assert_eq!(all.min_requests(), 100);
        assert_eq!(any.min_requests(), 10);
    }
}
