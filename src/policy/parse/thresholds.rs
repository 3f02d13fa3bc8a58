//! Thresholds: `peak`, `requests`, `distinct_uris`, the sustained-activity measures
//! (`active_minutes`, `active_hours`, `requests_per_day`, `active_share`), `addresses` (campaigns)
//! `blocked`, and the origin's signals (`origin_5xx`, `origin_5xx_share`, `origin_time_share`,
//! from ALB or CloudFront logs); a count may be relative to the site (`{ percentile, factor, min }`).

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use crate::model::rate::Window;
use crate::policy::threshold::{
    Limit, Measure, Mode, OriginShare, Relative, Threshold, Thresholds,
};

use super::{Checker, PEAK_KEYS, Value, threshold_help};

const THRESHOLD_KEYS: &[&str] = &[
    "mode",
    "peak",
    "requests",
    "distinct_uris",
    "active_minutes",
    "active_hours",
    "requests_per_day",
    "active_share",
    "addresses",
    "blocked",
    "origin_5xx",
    "origin_5xx_share",
    "origin_time_share",
];

/// The counts written as `key = n`, with their measure.
const COUNT_KEYS: &[(&str, Measure)] = &[
    ("requests", Measure::Requests),
    ("distinct_uris", Measure::DistinctUris),
    ("active_minutes", Measure::ActiveMinutes),
    ("active_hours", Measure::ActiveHours),
    ("requests_per_day", Measure::DayRequests),
    ("addresses", Measure::Addresses),
    ("origin_5xx", Measure::Origin5xx),
];

/// The origin's shares, written `key = 0.1`.
const ORIGIN_SHARES: &[(&str, OriginShare, &str)] = &[
    (
        "origin_5xx_share",
        OriginShare::Errors5xx,
        "a share of the origin's 5xx over the period: `0.1` means a tenth of them",
    ),
    (
        "origin_time_share",
        OriginShare::Time,
        "a share of the origin's time over the period: `0.1` means a tenth of it",
    ),
];

const BLOCKED_KEYS: &[&str] = &["ratio", "min_blocked"];

const RELATIVE_KEYS: &[&str] = &["percentile", "factor", "min"];

/// Which thresholds a table may hold: it depends on what the policy counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// An address or a prefix (`[policy.thresholds]`), or a campaign's member (`[policy.members]`).
    Key,
    /// A campaign's members together (`[policy.thresholds]` with `key = "campaign"`).
    Campaign,
}

impl Checker<'_> {
    /// The thresholds of table `what`, and where `blocked` was written (for a warning about it).
    pub(super) fn thresholds(
        &mut self,
        v: &Value,
        policy: &str,
        what: &str,
        scope: Scope,
    ) -> Option<(Thresholds, Option<Range<usize>>)> {
        let t = self.table(v, what)?;
        self.keys(t, THRESHOLD_KEYS, "key", &format!(" in `{what}`"));
        let before = self.errors();
        let mode = match t.get("mode") {
            Some(m) => match self.choice(m, "mode", &["all", "any"]) {
                Some("any") => Mode::Any,
                _ => Mode::All,
            },
            None => Mode::All,
        };
        let mut list = Vec::new();
        if let Some(p) = t.get("peak") {
            let peaks: Vec<&Value> = match p.get_ref() {
                DeValue::Array(items) => items.iter().collect(),
                _ => vec![p],
            };
            let mut seen: Vec<Window> = Vec::new();
            for peak in peaks {
                if let Some((window, limit, span)) = self.peak(peak, scope) {
                    if seen.contains(&window) {
                        self.error(
                            &span,
                            format!("window `{window}` appears twice in `peak`"),
                            Some("keep one limit per window".into()),
                        );
                    }
                    seen.push(window);
                    list.push(Threshold::AtLeast {
                        measure: Measure::Peak(window),
                        limit,
                    });
                }
            }
        }
        if scope == Scope::Campaign {
            for key in ["origin_5xx", "origin_5xx_share", "origin_time_share"] {
                if let Some(value) = t.get(key) {
                    self.error(
                        &value.span(),
                        format!("`{key}` is per address or network, not per campaign"),
                        Some("put it in `[policy.members]`".into()),
                    );
                }
            }
        }
        for &(key, measure) in COUNT_KEYS {
            let Some(value) = t.get(key) else { continue };
            if measure == Measure::Origin5xx && scope == Scope::Campaign {
                continue;
            }
            if measure == Measure::Addresses && scope != Scope::Campaign {
                self.error(
                    &value.span(),
                    "`addresses` counts a campaign's members: it needs `key = \"campaign\"`".into(),
                    Some("a campaign's `[policy.thresholds]` apply to its members together".into()),
                );
                continue;
            }
            list.extend(
                self.limit(value, key, scope)
                    .map(|limit| Threshold::AtLeast { measure, limit }),
            );
        }
        if let Some(share) = t.get("active_share") {
            list.extend(
                self.share(
                    share,
                    "active_share",
                    "it is a share of the hours the logs span: `0.5` means half of them",
                )
                .map(Threshold::ActiveShare),
            );
        }
        for &(key, share, help) in ORIGIN_SHARES {
            let Some(value) = t.get(key) else { continue };
            if scope == Scope::Campaign {
                continue;
            }
            list.extend(
                self.share(value, key, help)
                    .map(|ratio| Threshold::Origin { share, ratio }),
            );
        }
        let blocked_span = t.get("blocked").map(|b| b.span());
        if let Some(b) = t.get("blocked") {
            list.extend(self.blocked(b));
        }
        if list.is_empty() && self.errors() == before {
            self.error(
                &v.span(),
                format!("policy `{policy}` has no thresholds"),
                Some(threshold_help()),
            );
        }
        if self.errors() != before {
            return None;
        }
        // A canonical order, so findings list fired thresholds the same way every time.
        list.sort_by_key(Threshold::order);
        Some((Thresholds { mode, list }, blocked_span))
    }

    /// A count: a whole number, or `{ percentile, factor, min }` relative to the site.
    fn limit(&mut self, v: &Value, what: &str, scope: Scope) -> Option<Limit> {
        let DeValue::Table(t) = v.get_ref() else {
            return self.count(v, what, 1).map(Limit::Fixed);
        };
        if scope == Scope::Campaign {
            self.error(
                &v.span(),
                format!("`{what}` of a campaign cannot be relative to the site"),
                Some("relative limits compare a key with the site's addresses or networks; put them in `[policy.members]`".into()),
            );
            return None;
        }
        self.keys(t, RELATIVE_KEYS, "key", &format!(" in `{what}`"));
        let p = self.required(t, v, "percentile", what);
        let f = self.required(t, v, "factor", what);
        let percentile = self.number(p?, &format!("{what}.percentile"))?;
        if !(percentile > 0.0 && percentile <= 100.0) {
            let span = p?.span();
            self.error(
                &span,
                format!(
                    "`{what}.percentile` must be greater than 0 and at most 100, not `{}`",
                    self.source(&span)
                ),
                Some("`99` compares with the site's 99th percentile".into()),
            );
            return None;
        }
        let factor = self.number(f?, &format!("{what}.factor"))?;
        if factor <= 0.0 {
            let span = f?.span();
            self.error(
                &span,
                format!(
                    "`{what}.factor` must be greater than 0, not `{}`",
                    self.source(&span)
                ),
                None,
            );
            return None;
        }
        let min = match t.get("min") {
            Some(m) => self.count(m, &format!("{what}.min"), 1)?,
            None => 1,
        };
        Some(Limit::Relative(Relative {
            factor,
            percentile,
            min,
        }))
    }

    /// A share `key` (0 < share <= 1); `help` says what it is a share of.
    fn share(&mut self, v: &Value, key: &str, help: &str) -> Option<f64> {
        let share = self.number(v, key)?;
        if share > 0.0 && share <= 1.0 {
            return Some(share);
        }
        let span = v.span();
        self.error(
            &span,
            format!(
                "`{key}` must be greater than 0 and at most 1, not `{}`",
                self.source(&span)
            ),
            Some(help.into()),
        );
        None
    }

    pub(super) fn peak(
        &mut self,
        v: &Value,
        scope: Scope,
    ) -> Option<(Window, Limit, Range<usize>)> {
        let t = self.table(v, "peak")?;
        self.keys(t, PEAK_KEYS, "key", " in `peak`");
        let window = self.window(t, v, "peak")?;
        let requests = self.required(t, v, "requests", "peak")?;
        let limit = self.limit(requests, "peak.requests", scope)?;
        Some((window.0, limit, window.1))
    }

    pub(super) fn window(
        &mut self,
        t: &DeTable,
        table: &Value,
        what: &str,
    ) -> Option<(Window, Range<usize>)> {
        let w = self.required(t, table, "window", what)?;
        let text = self.string(w, "window")?;
        match Window::parse(text) {
            Some(window) => Some((window, w.span())),
            None => {
                self.error(
                    &w.span(),
                    format!("unknown window `{text}`"),
                    Some(
                        "windows are those of AWS rate-based rules: `1m`, `2m`, `5m` or `10m`"
                            .into(),
                    ),
                );
                None
            }
        }
    }

    /// `t[key]`, or an error at the table when it is missing.
    pub(super) fn required<'v, 'i>(
        &mut self,
        t: &'v DeTable<'i>,
        table: &Value,
        key: &str,
        what: &str,
    ) -> Option<&'v Value<'i>> {
        let found = t.get(key);
        if found.is_none() {
            self.error(&table.span(), format!("`{what}` without `{key}`"), None);
        }
        found
    }

    pub(super) fn blocked(&mut self, v: &Value) -> Option<Threshold> {
        let t = self.table(v, "blocked")?;
        self.keys(t, BLOCKED_KEYS, "key", " in `blocked`");
        let ratio_value = self.required(t, v, "ratio", "blocked");
        let min_value = self.required(t, v, "min_blocked", "blocked");
        let ratio = self.number(ratio_value?, "blocked.ratio")?;
        if !(ratio > 0.0 && ratio <= 1.0) {
            let span = ratio_value?.span();
            self.error(
                &span,
                format!(
                    "`blocked.ratio` must be greater than 0 and at most 1, not `{}`",
                    self.source(&span)
                ),
                Some("it is a share: `0.8` means 80% of the matched requests".into()),
            );
            return None;
        }
        let min_blocked = self.count(min_value?, "blocked.min_blocked", 1)?;
        Some(Threshold::Blocked { ratio, min_blocked })
    }
}
