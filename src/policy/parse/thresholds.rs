//! Thresholds: `peak`, `requests`, `distinct_uris` and `blocked`.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use crate::model::rate::Window;
use crate::policy::threshold::{Mode, Threshold, Thresholds};

use super::{Checker, PEAK_KEYS, Value, threshold_help};

const THRESHOLD_KEYS: &[&str] = &["mode", "peak", "requests", "distinct_uris", "blocked"];

const BLOCKED_KEYS: &[&str] = &["ratio", "min_blocked"];

impl Checker<'_> {
    /// The thresholds, and where `blocked` was written (for a warning about it).
    pub(super) fn thresholds(
        &mut self,
        v: &Value,
        policy: &str,
    ) -> Option<(Thresholds, Option<Range<usize>>)> {
        let t = self.table(v, "thresholds")?;
        self.keys(t, THRESHOLD_KEYS, "key", " in `thresholds`");
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
                if let Some((window, requests, span)) = self.peak(peak) {
                    if seen.contains(&window) {
                        self.error(
                            &span,
                            format!("window `{window}` appears twice in `peak`"),
                            Some("keep one limit per window".into()),
                        );
                    }
                    seen.push(window);
                    list.push(Threshold::Peak { window, requests });
                }
            }
        }
        if let Some(r) = t.get("requests") {
            list.extend(self.count(r, "requests", 1).map(Threshold::Requests));
        }
        if let Some(d) = t.get("distinct_uris") {
            list.extend(
                self.count(d, "distinct_uris", 1)
                    .map(Threshold::DistinctUris),
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
        list.sort_by_key(|t| match t {
            Threshold::Peak { window, .. } => window.index(),
            Threshold::Requests(_) => 4,
            Threshold::DistinctUris(_) => 5,
            Threshold::Blocked { .. } => 6,
        });
        Some((Thresholds { mode, list }, blocked_span))
    }

    pub(super) fn peak(&mut self, v: &Value) -> Option<(Window, u64, Range<usize>)> {
        let t = self.table(v, "peak")?;
        self.keys(t, PEAK_KEYS, "key", " in `peak`");
        let window = self.window(t, v, "peak")?;
        let requests = self.required(t, v, "requests", "peak")?;
        let requests = self.count(requests, "peak.requests", 1)?;
        Some((window.0, requests, window.1))
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
