//! Actions: `block` (group, duration, escalation), `report`, and `aggregate`.

use jiff::SignedDuration;
use toml::de::DeTable;

use crate::model::waf::{MIN_RATE_LIMIT, is_waf_name};
use crate::policy::{
    Aggregate, BlockAction, Escalation, KeyKind, PolicyAction, RateLimitHint, ReportAction,
};
use crate::util::text::closest;

use super::{Checker, PEAK_KEYS, Value, quoted};

const REPORT_ONLY: &[&str] = &["note", "rate_limit"];

/// Keeps escalation sane: a factor this large reaches any cap on the second strike anyway.
const MAX_FACTOR: f64 = 100.0;

const ESCALATION_KEYS: &[&str] = &["factor", "max"];

const BLOCK_ONLY: &[&str] = &["group", "duration", "escalation"];

const AGGREGATE_KEYS: &[&str] = &["min_offenders"];

const ACTION_KEYS: &[&str] = &[
    "type",
    "group",
    "duration",
    "escalation",
    "note",
    "rate_limit",
];

impl Checker<'_> {
    pub(super) fn action(&mut self, v: &Value, policy: &str) -> Option<PolicyAction> {
        let t = self.table(v, "action")?;
        self.keys(t, ACTION_KEYS, "key", " in `action`");
        let kind = self.required(t, v, "type", "action")?;
        let kind = self.choice(kind, "action type", &["block", "report"])?;
        let (own, other) = if kind == "block" {
            (BLOCK_ONLY, REPORT_ONLY)
        } else {
            (REPORT_ONLY, BLOCK_ONLY)
        };
        let mut ok = true;
        for key in t.keys() {
            let k: &str = key.get_ref();
            if other.contains(&k) {
                let other_kind = if kind == "block" { "report" } else { "block" };
                self.error(
                    &key.span(),
                    format!("`{k}` is only used with `type = \"{other_kind}\"`"),
                    Some(format!("a `{kind}` action takes {}", quoted(own))),
                );
                ok = false;
            }
        }
        let action = if kind == "block" {
            PolicyAction::Block(self.block_action(t, v, policy)?)
        } else {
            PolicyAction::Report(self.report_action(t)?)
        };
        ok.then_some(action)
    }

    pub(super) fn block_action(
        &mut self,
        t: &DeTable,
        v: &Value,
        policy: &str,
    ) -> Option<BlockAction> {
        let group = self.required(t, v, "group", "action");
        let duration = self.required(t, v, "duration", "action");
        let group_name = self.group(group?, policy);
        let duration_text = self.source(&duration?.span());
        let duration = self.duration(duration?, "duration");
        let escalation = match t.get("escalation") {
            Some(e) => Some(self.escalation(e, duration?, &duration_text)?),
            None => None,
        };
        Some(BlockAction {
            group: group_name?,
            duration: duration?,
            escalation,
        })
    }

    pub(super) fn group(&mut self, v: &Value, policy: &str) -> Option<String> {
        let group = self.string(v, "group")?;
        if !is_waf_name(group) {
            self.error(
                &v.span(),
                format!(
                    "group `{group}` is not a valid name: use 1 to 128 letters, digits, `_` or `-`"
                ),
                None,
            );
            return None;
        }
        if let Some(known) = self.known_groups
            && !known.iter().any(|k| k == group)
        {
            let names: Vec<&str> = known.iter().map(String::as_str).collect();
            let help = match closest(group, &names) {
                Some(best) => format!("did you mean `{best}`?"),
                None if names.is_empty() => "waftune.toml configures no `[[ip_set_group]]`".into(),
                None => format!("configured groups: {}", quoted(&names)),
            };
            self.warn(
                &v.span(),
                format!("policy `{policy}` blocks into group `{group}`, which waftune.toml does not configure"),
                Some(help),
            );
        }
        Some(group.to_owned())
    }

    pub(super) fn escalation(
        &mut self,
        v: &Value,
        base: SignedDuration,
        base_text: &str,
    ) -> Option<Escalation> {
        let t = self.table(v, "escalation")?;
        self.keys(t, ESCALATION_KEYS, "key", " in `escalation`");
        let factor_value = self.required(t, v, "factor", "escalation");
        let max_value = self.required(t, v, "max", "escalation");
        let factor = self.number(factor_value?, "escalation.factor");
        let max = self.duration(max_value?, "escalation.max");
        let (factor, max) = (factor?, max?);
        let factor_span = factor_value?.span();
        if !(1.0..=MAX_FACTOR).contains(&factor) {
            self.error(
                &factor_span,
                format!(
                    "`escalation.factor` must be between 1 and {MAX_FACTOR}, not `{}`",
                    self.source(&factor_span)
                ),
                Some(
                    "each repeat offence multiplies the previous duration by it; 2 doubles it"
                        .into(),
                ),
            );
            return None;
        }
        if factor == 1.0 {
            self.warn(
                &factor_span,
                "`escalation.factor` 1 never lengthens a block".into(),
                Some(
                    "use 2 to double the duration at each repeat offence, or remove `escalation`"
                        .into(),
                ),
            );
        }
        if max < base {
            let span = max_value?.span();
            let message = format!(
                "`escalation.max` `{}` is shorter than `duration` `{}`",
                self.source(&span).trim_matches('"'),
                base_text.trim_matches('"')
            );
            self.error(
                &span,
                message,
                Some(
                    "`max` caps the escalated duration, so it must be at least the first one"
                        .into(),
                ),
            );
            return None;
        }
        Some(Escalation { factor, max })
    }

    pub(super) fn report_action(&mut self, t: &DeTable) -> Option<ReportAction> {
        let mut report = ReportAction::default();
        if let Some(n) = t.get("note") {
            report.note = Some(self.string(n, "note")?.to_owned());
        }
        if let Some(r) = t.get("rate_limit") {
            let rt = self.table(r, "rate_limit")?;
            self.keys(rt, PEAK_KEYS, "key", " in `rate_limit`");
            let window = self.window(rt, r, "rate_limit");
            let requests = self.required(rt, r, "requests", "rate_limit");
            let requests = self.count(requests?, "rate_limit.requests", MIN_RATE_LIMIT);
            report.rate_limit = Some(RateLimitHint {
                window: window?.0,
                requests: requests?,
            });
        }
        Some(report)
    }

    pub(super) fn aggregate(
        &mut self,
        v: &Value,
        key: Option<KeyKind>,
    ) -> Option<Option<Aggregate>> {
        let t = self.table(v, "aggregate")?;
        self.keys(t, AGGREGATE_KEYS, "key", " in `aggregate`");
        let n = self.required(t, v, "min_offenders", "aggregate")?;
        let min = self.count(n, "aggregate.min_offenders", 2)?;
        let Ok(min_offenders) = u32::try_from(min) else {
            self.wrong_type(
                n,
                "aggregate.min_offenders",
                "a whole number up to 4294967295",
            );
            return None;
        };
        if key == Some(KeyKind::Prefix) {
            self.error(
                &v.span(),
                "`aggregate` needs `key = \"ip\"`".into(),
                Some("with `key = \"prefix\"` the policy already proposes whole /24 and /64 networks".into()),
            );
            return None;
        }
        Some(Some(Aggregate { min_offenders }))
    }
}
