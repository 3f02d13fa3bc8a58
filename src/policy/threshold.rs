//! Thresholds: when the requests a policy matched from one key are enough to act on.
//!
//! The scan counts, per policy and key, what [`KeyCounts`] holds; thresholds only compare those
//! numbers, so they cost nothing per record and read the same whichever engine did the counting.
//! A limit may be relative to the site: a multiple of a percentile of the same measure over the
//! keys of the same kind that sent a request the policy matched ([`Site`]), as `rate recommend`
//! takes a rule's limit from the clients in its scope; it is resolved before any key is checked.

use std::fmt;

use crate::model::rate::Window;
use crate::util::stats::percentile;
use crate::util::text::{share, thousands};

/// What the scan counted for one policy and one key (an address, a prefix, or a campaign's
/// members together), over the requests the policy matched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyCounts {
    pub requests: u64,
    /// peaks for windows 1, 2, 5, 10 minutes
    pub peaks: [u64; 4],
    pub distinct_uris: u64,
    /// requests WAF answered with BLOCK
    pub blocked: u64,
    /// Minutes with at least one matched request.
    pub active_minutes: u64,
    /// Clock hours (UTC) with at least one matched request.
    pub active_hours: u64,
    /// The most matched requests in any 24 hours (sliding by the minute).
    pub day_requests: u64,
    /// Clock hours the analysed traffic spans (every key's), for `active_share`.
    pub period_hours: u64,
    /// Addresses behind the counts: 1 for an address, the members for a campaign.
    pub addresses: u64,
    /// The key's origin traffic, when ALB or CloudFront logs were read beside the WAF logs.
    pub origin: Option<OriginCounts>,
}

/// A key's traffic at the origin over the period (all its requests: the origin does not know
/// which ones a policy matched), and the site's totals its shares are taken of.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OriginCounts {
    pub requests: u64,
    pub s5xx: u64,
    /// Origin time in milliseconds.
    pub origin_ms: u64,
    pub site_5xx: u64,
    pub site_origin_ms: u64,
}

/// A key's share of the site's origin signal that a threshold compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OriginShare {
    /// `origin_5xx_share`: of the site's origin 5xx.
    Errors5xx,
    /// `origin_time_share`: of the site's origin time.
    Time,
}

impl OriginShare {
    /// The key's part and the site's whole.
    fn of(self, o: &OriginCounts) -> (u64, u64) {
        match self {
            OriginShare::Errors5xx => (o.s5xx, o.site_5xx),
            OriginShare::Time => (o.origin_ms, o.site_origin_ms),
        }
    }
}

/// A number a threshold compares: one of [`KeyCounts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Measure {
    /// The busiest window.
    Peak(Window),
    Requests,
    DistinctUris,
    ActiveMinutes,
    ActiveHours,
    /// The busiest 24 hours.
    DayRequests,
    /// A campaign's member addresses.
    Addresses,
    /// 5xx the origin answered the key with (ALB or CloudFront logs).
    Origin5xx,
}

impl Measure {
    pub fn of(self, c: &KeyCounts) -> u64 {
        match self {
            Measure::Peak(w) => c.peaks[w.index()],
            Measure::Requests => c.requests,
            Measure::DistinctUris => c.distinct_uris,
            Measure::ActiveMinutes => c.active_minutes,
            Measure::ActiveHours => c.active_hours,
            Measure::DayRequests => c.day_requests,
            Measure::Addresses => c.addresses,
            Measure::Origin5xx => c.origin.map_or(0, |o| o.s5xx),
        }
    }

    /// Position in a policy's canonical threshold order.
    pub fn order(self) -> usize {
        match self {
            Measure::Peak(w) => w.index(),
            Measure::Requests => 4,
            Measure::DistinctUris => 5,
            Measure::ActiveMinutes => 6,
            Measure::ActiveHours => 7,
            Measure::DayRequests => 8,
            Measure::Addresses => 9,
            Measure::Origin5xx => 12,
        }
    }
}

impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Measure::Peak(w) => write!(f, "peak {w}"),
            Measure::Requests => f.write_str("requests"),
            Measure::DistinctUris => f.write_str("distinct URIs"),
            Measure::ActiveMinutes => f.write_str("active minutes"),
            Measure::ActiveHours => f.write_str("active hours"),
            Measure::DayRequests => f.write_str("requests in 24h"),
            Measure::Addresses => f.write_str("addresses"),
            Measure::Origin5xx => f.write_str("origin 5xx"),
        }
    }
}

/// A limit written relative to the site: `max(min, ceil(factor x the percentile of the measure
/// over the keys the policy matched))`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Relative {
    pub factor: f64,
    /// 0 < percentile <= 100
    pub percentile: f64,
    /// A floor, so a quiet site does not bring the limit down to a person's pace.
    pub min: u64,
}

/// How a relative limit was resolved, for the evidence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Basis {
    pub relative: Relative,
    /// The percentile's value over the keys.
    pub value: u64,
    /// How many keys there were.
    pub population: u64,
    /// What the keys are (`addresses`, `networks`).
    pub scope: &'static str,
}

impl fmt::Display for Basis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.relative;
        write!(
            f,
            "{} x p{} {} of {} {}, min {}",
            r.factor,
            r.percentile,
            thousands(self.value),
            thousands(self.population),
            self.scope,
            thousands(r.min)
        )
    }
}

/// A threshold's limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    Fixed(u64),
    /// Not resolved yet: checks against its floor.
    Relative(Relative),
    Resolved {
        value: u64,
        basis: Basis,
    },
}

impl Limit {
    pub fn value(&self) -> u64 {
        match *self {
            Limit::Fixed(n) | Limit::Resolved { value: n, .. } => n,
            Limit::Relative(r) => r.min,
        }
    }

    fn basis(&self) -> Option<Basis> {
        match *self {
            Limit::Resolved { basis, .. } => Some(basis),
            _ => None,
        }
    }
}

/// The keys a policy matched requests from (addresses, or /24 and /64 networks): what its
/// relative limits are resolved against.
#[derive(Debug, Clone, Copy)]
pub struct Site<'a> {
    pub keys: &'a [KeyCounts],
    /// What the keys are, for the evidence (`addresses`, `networks`).
    pub scope: &'static str,
}

impl Site<'_> {
    /// The value of `p` of `measure` over the site's keys.
    pub fn percentile(&self, measure: Measure, p: f64) -> u64 {
        let mut values: Vec<u64> = self.keys.iter().map(|k| measure.of(k)).collect();
        values.sort_unstable();
        percentile(&values, p)
    }
}

/// One condition on a key's counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// The measure reached the limit.
    AtLeast { measure: Measure, limit: Limit },
    /// The key was active in at least this share (0 < share <= 1) of the clock hours the
    /// traffic spans.
    ActiveShare(f64),
    /// WAF blocked at least `ratio` (0 < ratio <= 1) of the matched requests, and at least
    /// `min_blocked` of them: a share alone would fire on one blocked request out of one.
    Blocked { ratio: f64, min_blocked: u64 },
    /// The key's share (0 < share <= 1) of the site's origin 5xx or origin time reached `ratio`.
    Origin { share: OriginShare, ratio: f64 },
}

impl Threshold {
    /// A fixed limit on a measure.
    pub fn at_least(measure: Measure, n: u64) -> Threshold {
        Threshold::AtLeast {
            measure,
            limit: Limit::Fixed(n),
        }
    }

    pub fn check(&self, c: &KeyCounts) -> Option<FiredThreshold> {
        match *self {
            Threshold::AtLeast { measure, limit } => {
                let observed = measure.of(c);
                (observed >= limit.value()).then_some(FiredThreshold::AtLeast {
                    measure,
                    limit: limit.value(),
                    observed,
                    basis: limit.basis(),
                })
            }
            Threshold::ActiveShare(ratio) => {
                let reached =
                    c.period_hours > 0 && c.active_hours as f64 / c.period_hours as f64 >= ratio;
                reached.then_some(FiredThreshold::ActiveShare {
                    ratio,
                    active_hours: c.active_hours,
                    period_hours: c.period_hours,
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
            Threshold::Origin { share, ratio } => {
                let o = c.origin?;
                let (part, whole) = share.of(&o);
                (whole > 0 && part as f64 / whole as f64 >= ratio).then_some(
                    FiredThreshold::Origin {
                        share,
                        ratio,
                        origin: o,
                    },
                )
            }
        }
    }

    /// See [`Thresholds::may_fire`].
    fn may_fire(&self, c: &KeyCounts) -> bool {
        match *self {
            Threshold::AtLeast { measure, limit } => {
                let bound = match measure {
                    Measure::ActiveHours => c.active_minutes,
                    Measure::DayRequests => c.requests,
                    Measure::Addresses | Measure::Origin5xx => return true,
                    _ => measure.of(c),
                };
                bound >= limit.value()
            }
            // Requests and blocked requests are exact.
            Threshold::Blocked { .. } => self.check(c).is_some(),
            Threshold::ActiveShare(_) | Threshold::Origin { .. } => true,
        }
    }

    /// Whether it reads the origin's logs (ALB or CloudFront), which only `propose` and `report`
    /// read beside the WAF logs.
    pub fn uses_origin(&self) -> bool {
        matches!(
            self,
            Threshold::Origin { .. }
                | Threshold::AtLeast {
                    measure: Measure::Origin5xx,
                    ..
                }
        )
    }

    /// The fewest matched requests a key needs before this threshold can fire (a relative limit
    /// is never below its floor).
    pub fn min_requests(&self) -> u64 {
        match *self {
            // The origin counts every request of the key, matched by the policy or not.
            Threshold::AtLeast {
                measure: Measure::Origin5xx,
                ..
            }
            | Threshold::Origin { .. } => 1,
            // Every active minute or hour, and every campaign member, holds a request.
            Threshold::AtLeast { limit, .. } => limit.value(),
            // The period is only known after the scan.
            Threshold::ActiveShare(_) => 1,
            Threshold::Blocked { min_blocked, .. } => min_blocked,
        }
    }

    /// Position in a policy's canonical order.
    pub fn order(&self) -> usize {
        match self {
            Threshold::AtLeast { measure, .. } => measure.order(),
            Threshold::ActiveShare(_) => 10,
            Threshold::Blocked { .. } => 11,
            Threshold::Origin {
                share: OriginShare::Errors5xx,
                ..
            } => 13,
            Threshold::Origin {
                share: OriginShare::Time,
                ..
            } => 14,
        }
    }

    fn resolve(&self, site: &Site) -> Threshold {
        match *self {
            Threshold::AtLeast {
                measure,
                limit: Limit::Relative(relative),
            } => {
                let value = site.percentile(measure, relative.percentile);
                let scaled = (value as f64 * relative.factor).ceil() as u64;
                Threshold::AtLeast {
                    measure,
                    limit: Limit::Resolved {
                        value: scaled.max(relative.min),
                        basis: Basis {
                            relative,
                            value,
                            population: site.keys.len() as u64,
                            scope: site.scope,
                        },
                    },
                }
            }
            other => other,
        }
    }

    fn is_relative(&self) -> bool {
        matches!(
            self,
            Threshold::AtLeast {
                limit: Limit::Relative(_),
                ..
            }
        )
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

    /// Whether the policy may fire for a key whose counts are at most `c`: the scan judges keys
    /// before their statistics are finished, from their exact requests and blocked requests and
    /// upper bounds of their peaks, distinct paths and active minutes. Active hours are bounded by
    /// the active minutes and the busiest day by the requests; what depends on the whole period or
    /// the origin (active share, origin shares, a campaign's addresses) may always be reached, and
    /// a relative limit is judged by its floor. `false` only when the policy cannot fire.
    pub fn may_fire(&self, c: &KeyCounts) -> bool {
        let mut each = self.list.iter().map(|t| t.may_fire(c));
        match self.mode {
            Mode::All => each.all(|m| m),
            Mode::Any => each.any(|m| m),
        }
    }

    /// The fewest matched requests a key needs before the policy can fire; 1 with a relative
    /// limit, whose percentile is taken over every key the policy matched.
    pub fn min_requests(&self) -> u64 {
        if self.is_relative() {
            return 1;
        }
        self.fewest_to_fire()
    }

    /// The fewest matched requests with which the policy can fire, judged by the limits as
    /// written (a relative limit by its floor): what a reviewer asks of a `block` policy.
    pub fn fewest_to_fire(&self) -> u64 {
        let each = self.list.iter().map(Threshold::min_requests);
        match self.mode {
            Mode::All => each.max(),
            Mode::Any => each.min(),
        }
        .unwrap_or(0)
    }

    /// Whether any threshold reads the origin's logs.
    pub fn uses_origin(&self) -> bool {
        self.list.iter().any(Threshold::uses_origin)
    }

    /// Whether any limit is relative to the site.
    pub fn is_relative(&self) -> bool {
        self.list.iter().any(Threshold::is_relative)
    }

    /// The same thresholds with every relative limit resolved over `site`.
    pub fn resolve(&self, site: &Site) -> Thresholds {
        Thresholds {
            mode: self.mode,
            list: self.list.iter().map(|t| t.resolve(site)).collect(),
        }
    }
}

/// A threshold that fired: which one, its limit, and what was observed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FiredThreshold {
    AtLeast {
        measure: Measure,
        limit: u64,
        observed: u64,
        /// Where a relative limit came from.
        basis: Option<Basis>,
    },
    ActiveShare {
        ratio: f64,
        active_hours: u64,
        period_hours: u64,
    },
    Blocked {
        ratio: f64,
        min_blocked: u64,
        blocked: u64,
        requests: u64,
    },
    Origin {
        share: OriginShare,
        ratio: f64,
        origin: OriginCounts,
    },
}

impl fmt::Display for FiredThreshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FiredThreshold::AtLeast {
                measure,
                limit,
                observed,
                basis,
            } => {
                write!(
                    f,
                    "{measure} {} >= {}",
                    thousands(observed),
                    thousands(limit)
                )?;
                match basis {
                    Some(b) => write!(f, " ({b})"),
                    None => Ok(()),
                }
            }
            FiredThreshold::ActiveShare {
                ratio,
                active_hours,
                period_hours,
            } => write!(
                f,
                "active {} of {} hours ({}) >= {}",
                thousands(active_hours),
                thousands(period_hours),
                share(active_hours as f64 / period_hours as f64),
                share(ratio)
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
            FiredThreshold::Origin {
                share: OriginShare::Errors5xx,
                ratio,
                origin: o,
            } => write!(
                f,
                "caused {} of the {} origin 5xx ({}) >= {}",
                thousands(o.s5xx),
                thousands(o.site_5xx),
                share(o.s5xx as f64 / o.site_5xx as f64),
                share(ratio)
            ),
            FiredThreshold::Origin {
                share: OriginShare::Time,
                ratio,
                origin: o,
            } => write!(
                f,
                "took {} of origin time ({:.1} s of {:.1} s; {} origin 5xx) >= {}",
                share(o.origin_ms as f64 / o.site_origin_ms as f64),
                o.origin_ms as f64 / 1000.0,
                o.site_origin_ms as f64 / 1000.0,
                thousands(o.s5xx),
                share(ratio)
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
            ..KeyCounts::default()
        }
    }

    fn peak(window: Window, requests: u64) -> Threshold {
        Threshold::at_least(Measure::Peak(window), requests)
    }

    #[test]
    fn origin_thresholds_read_the_origin_counts_and_say_so() {
        let origin = OriginCounts {
            requests: 1262,
            s5xx: 340,
            origin_ms: 180_000,
            site_5xx: 800,
            site_origin_ms: 1_000_000,
        };
        let c = KeyCounts {
            requests: 10,
            origin: Some(origin),
            ..KeyCounts::default()
        };
        let time = Threshold::Origin {
            share: OriginShare::Time,
            ratio: 0.1,
        };
        assert_eq!(
            time.check(&c).unwrap().to_string(),
            "took 18% of origin time (180.0 s of 1000.0 s; 340 origin 5xx) >= 10%"
        );
        let errors = Threshold::Origin {
            share: OriginShare::Errors5xx,
            ratio: 0.5,
        };
        assert_eq!(errors.check(&c), None);
        assert_eq!(
            Threshold::at_least(Measure::Origin5xx, 300)
                .check(&c)
                .unwrap()
                .to_string(),
            "origin 5xx 340 >= 300"
        );
        // Without origin logs they never fire; the callers say so.
        let waf_only = KeyCounts { origin: None, ..c };
        assert_eq!(time.check(&waf_only), None);
        assert_eq!(
            Threshold::at_least(Measure::Origin5xx, 1).check(&waf_only),
            None
        );
        // A key's WAF requests say nothing about its origin 5xx: any key may fire.
        assert_eq!(
            Threshold::at_least(Measure::Origin5xx, 300).min_requests(),
            1
        );
        assert!(time.uses_origin() && !Threshold::at_least(Measure::Requests, 1).uses_origin());
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
            Threshold::at_least(Measure::Requests, 5_000)
                .check(&c)
                .unwrap()
                .to_string(),
            "requests 12,004 >= 5,000"
        );
        assert_eq!(
            Threshold::at_least(Measure::Requests, 12_005).check(&c),
            None
        );
        assert_eq!(
            Threshold::at_least(Measure::DistinctUris, 100)
                .check(&c)
                .unwrap()
                .to_string(),
            "distinct URIs 312 >= 100"
        );
        assert_eq!(
            Threshold::at_least(Measure::DistinctUris, 313).check(&c),
            None
        );

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
    fn may_fire_is_false_only_when_no_key_with_such_counts_fires() {
        let managed = Thresholds {
            mode: Mode::All,
            list: vec![Threshold::Blocked {
                ratio: 0.5,
                min_blocked: 20,
            }],
        };
        // Requests and blocked requests are exact: judged as `check` judges them.
        assert!(managed.may_fire(&counts(30, [30; 4], 30, 20)));
        assert!(!managed.may_fire(&counts(5_000, [900; 4], 300, 19)));
        assert!(!managed.may_fire(&counts(50, [50; 4], 50, 24)));
        // Peaks and distinct paths are bounds: reaching them is enough to keep the key.
        let any = Thresholds {
            mode: Mode::Any,
            list: vec![
                peak(Window::M1, 1_000),
                Threshold::at_least(Measure::DistinctUris, 5),
            ],
        };
        assert!(any.may_fire(&counts(1_000, [1_000; 4], 1, 0)));
        assert!(any.may_fire(&counts(6, [1; 4], 5, 0)));
        assert!(!any.may_fire(&counts(999, [999; 4], 4, 0)));
        // Active hours are bounded by active minutes, the busiest day by the requests.
        let sustained = Thresholds {
            mode: Mode::All,
            list: vec![
                Threshold::at_least(Measure::ActiveHours, 10),
                Threshold::at_least(Measure::DayRequests, 100),
            ],
        };
        let active = |requests, active_minutes| KeyCounts {
            requests,
            active_minutes,
            ..KeyCounts::default()
        };
        assert!(sustained.may_fire(&active(100, 10)));
        assert!(!sustained.may_fire(&active(100, 9)));
        assert!(!sustained.may_fire(&active(99, 600)));
        // What the scan cannot know yet may always be reached.
        let unknown = Thresholds {
            mode: Mode::All,
            list: vec![
                Threshold::ActiveShare(0.5),
                Threshold::Origin {
                    share: OriginShare::Errors5xx,
                    ratio: 0.5,
                },
                Threshold::at_least(Measure::Origin5xx, 10),
                Threshold::at_least(Measure::Addresses, 3),
            ],
        };
        assert!(unknown.may_fire(&KeyCounts::default()));
    }

    #[test]
    fn mode_all_needs_every_threshold_and_any_needs_one() {
        let list = vec![
            peak(Window::M1, 100),
            Threshold::at_least(Measure::DistinctUris, 10),
        ];
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

    #[test]
    fn sustained_activity_and_share_of_the_period() {
        let c = KeyCounts {
            requests: 30_000,
            active_minutes: 1_300,
            active_hours: 23,
            day_requests: 29_000,
            period_hours: 24,
            ..KeyCounts::default()
        };
        let fired = |t: Threshold| t.check(&c).map(|f| f.to_string());
        assert_eq!(
            fired(Threshold::at_least(Measure::ActiveMinutes, 600)).unwrap(),
            "active minutes 1,300 >= 600"
        );
        assert_eq!(
            fired(Threshold::at_least(Measure::ActiveHours, 23)).unwrap(),
            "active hours 23 >= 23"
        );
        assert_eq!(fired(Threshold::at_least(Measure::ActiveHours, 24)), None);
        assert_eq!(
            fired(Threshold::at_least(Measure::DayRequests, 20_000)).unwrap(),
            "requests in 24h 29,000 >= 20,000"
        );
        assert_eq!(
            fired(Threshold::ActiveShare(0.5)).unwrap(),
            "active 23 of 24 hours (95.8%) >= 50%"
        );
        assert_eq!(fired(Threshold::ActiveShare(0.96)), None);
        // No period (nothing scanned): never active.
        assert_eq!(
            Threshold::ActiveShare(0.1).check(&KeyCounts::default()),
            None
        );
        assert_eq!(Threshold::ActiveShare(0.5).min_requests(), 1);
    }

    #[test]
    fn relative_limits_resolve_over_the_site_with_a_floor() {
        let site: Vec<KeyCounts> = (1..=100)
            .map(|n| KeyCounts {
                active_minutes: n,
                ..KeyCounts::default()
            })
            .collect();
        let site = Site {
            keys: &site,
            scope: "addresses",
        };
        let relative = |factor, min| Thresholds {
            mode: Mode::All,
            list: vec![Threshold::AtLeast {
                measure: Measure::ActiveMinutes,
                limit: Limit::Relative(Relative {
                    factor,
                    percentile: 99.0,
                    min,
                }),
            }],
        };
        let t = relative(2.5, 60);
        assert!(t.is_relative());
        // The percentile needs every key the policy matched; the floor is what it takes to fire.
        assert_eq!(t.min_requests(), 1);
        assert_eq!(t.fewest_to_fire(), 60);
        assert_eq!(t.list[0].min_requests(), 60);
        let key = KeyCounts {
            active_minutes: 250,
            ..KeyCounts::default()
        };
        let resolved = t.resolve(&site);
        assert!(!resolved.is_relative());
        let fired = resolved.check(&key).unwrap();
        assert_eq!(
            fired[0].to_string(),
            "active minutes 250 >= 248 (2.5 x p99 99 of 100 addresses, min 60)"
        );
        let below = KeyCounts {
            active_minutes: 247,
            ..KeyCounts::default()
        };
        assert_eq!(resolved.check(&below), None);
        // The floor wins on a quiet site.
        let floor = relative(0.5, 60).resolve(&site);
        assert_eq!(floor.list[0].min_requests(), 60);
        let empty = relative(3.0, 5).resolve(&Site {
            keys: &[],
            scope: "networks",
        });
        assert_eq!(empty.list[0].min_requests(), 5);
    }
}
