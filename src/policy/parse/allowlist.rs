//! Allow entries: `[[allow]]` and `[[policy.allow]]` (CIDR, label, user agent, expiry).

use std::ops::Range;

use jiff::Timestamp;
use toml::de::DeValue;

use crate::policy::allow::{AllowEntry, AllowRule};
use crate::util::cidr::{self, CidrError};
use crate::util::text::line_column;

use super::{Checker, Shorthand, Value};

const ALLOW_KINDS: &[&str] = &["cidr", "label", "user_agent"];

const ALLOW_KEYS: &[&str] = &["cidr", "label", "user_agent", "comment", "expires"];

impl Checker<'_> {
    /// An allow entry; `header` is `[[allow]]` or `[[policy.allow]]`, for messages.
    pub(super) fn allow(&mut self, v: &Value, header: &str) -> Option<AllowEntry> {
        let t = self.table(v, "allow")?;
        self.keys(t, ALLOW_KEYS, "key", &format!(" in `{header}`"));
        let span = v.span();
        let kinds: Vec<(&str, &Value)> = ALLOW_KINDS
            .iter()
            .filter_map(|k| t.get(*k).map(|v| (*k, v)))
            .collect();
        let comment = match t.get("comment") {
            Some(c) => match self.string(c, "comment") {
                Some(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
                Some(_) => {
                    self.error(&c.span(), "`comment` is empty".into(), Some(comment_help()));
                    None
                }
                None => None,
            },
            None => {
                self.error(
                    &span,
                    "allow entry without `comment`".into(),
                    Some(comment_help()),
                );
                None
            }
        };
        let expires = match t.get("expires") {
            Some(e) => Some(self.expires(e)?),
            None => None,
        };
        let rule = match kinds.as_slice() {
            [] => {
                self.error(
                    &span,
                    "allow entry without `cidr`, `label` or `user_agent`".into(),
                    None,
                );
                return None;
            }
            [(kind, v)] => self.allow_rule(kind, v)?,
            [(first, _), (second, v2), ..] => {
                self.error(
                    &t.get_key_value(*second)
                        .map_or(v2.span(), |(k, _)| k.span()),
                    format!("allow entry has both `{first}` and `{second}`"),
                    Some("write one `[[allow]]` per kind".into()),
                );
                return None;
            }
        };
        let comment = comment?;
        if let Some(e) = expires.filter(|e| *e <= self.now) {
            let at = t.get("expires").map_or(span.clone(), |v| v.span());
            self.warn(
                &at,
                format!("allow entry `{comment}` expired at {e}: it no longer suppresses anything"),
                Some("remove it, or move `expires` forward".into()),
            );
        }
        Some(AllowEntry {
            rule,
            comment,
            expires,
            file: self.file.to_owned(),
            line: line_column(self.text, span.start).0,
        })
    }

    pub(super) fn allow_rule(&mut self, kind: &str, v: &Value) -> Option<AllowRule> {
        match kind {
            "cidr" => {
                let items = self.strings(v, "cidr")?;
                let mut nets = Vec::with_capacity(items.len());
                let mut ok = true;
                for (text, span) in items {
                    match cidr::parse(text) {
                        Ok(net) => nets.push(net),
                        Err(e) => {
                            self.cidr_error(&span, &e);
                            ok = false;
                        }
                    }
                }
                ok.then_some(AllowRule::Cidr(nets))
            }
            "label" => Some(AllowRule::Label(self.label_patterns(v, "label")?)),
            _ => Some(AllowRule::UserAgent(self.text(
                v,
                "user_agent",
                Shorthand::Regex,
                None,
                false,
            )?)),
        }
    }

    pub(super) fn cidr_error(&mut self, span: &Range<usize>, e: &CidrError) {
        let (message, help) = match e {
            CidrError::HostBits { value, network } => (
                format!("`{value}` is not a network address"),
                Some(format!("did you mean `{network}`?")),
            ),
            CidrError::ZeroPrefix { value } => (
                format!("`{value}` is a /0 range, which would allow every client"),
                None,
            ),
            CidrError::Invalid { .. } => (
                e.to_string(),
                Some("write an address (`192.0.2.7`) or a range (`192.0.2.0/24`)".into()),
            ),
        };
        self.error(span, message, help);
    }

    pub(super) fn expires(&mut self, v: &Value) -> Option<Timestamp> {
        let text = match v.get_ref() {
            DeValue::Datetime(d) => d.to_string(),
            DeValue::String(s) => s.to_string(),
            _ => {
                self.wrong_type(v, "expires", "a date and time, like `2026-12-31T00:00:00Z`");
                return None;
            }
        };
        match text.parse::<Timestamp>() {
            Ok(t) => Some(t),
            Err(_) => {
                self.error(
                    &v.span(),
                    format!("`expires` `{text}` is not an RFC 3339 timestamp with an offset"),
                    Some("write a date, a time and an offset, like `2026-12-31T00:00:00Z`".into()),
                );
                None
            }
        }
    }
}

fn comment_help() -> String {
    "say who or what this is and why it is allowed: an entry nobody can explain is never removed"
        .into()
}
