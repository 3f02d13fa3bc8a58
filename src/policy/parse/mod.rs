//! From TOML text to compiled policies, collecting every diagnostic on the way.
//!
//! The text is parsed into toml's spanned document tree rather than deserialized with serde:
//! serde stops at the first problem, and a policy author fixing one error per run is exactly the
//! experience cedar's validator avoids. Walking the tree by hand lets every check keep going, point
//! at the value it refuses, and suggest the fix.
//!
//! This file is the reader: files and documents, a policy's top-level keys and the typed value
//! readers every part shares. The parts of a policy are read in [`conditions`] (`match`),
//! [`thresholds`], [`actions`] (`action`, `aggregate`) and [`allowlist`] (`[[allow]]`).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use jiff::{SignedDuration, Timestamp};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::allow::AllowEntry;
use super::matcher::{Matcher, action_bit};
use super::threshold::{Limit, Measure, Mode, Threshold, Thresholds};
use super::{Allowlist, KeyKind, Loaded, Policy, PolicyAction, PolicySet};
use crate::log::Action;
use crate::util::diag::{Diagnostic, Severity};
use crate::util::text::{closest, line_column};

mod actions;
mod allowlist;
mod conditions;
mod thresholds;

use thresholds::Scope;

type Value<'i> = Spanned<DeValue<'i>>;

const TOP_KEYS: &[&str] = &["policy", "allow"];
const POLICY_KEYS: &[&str] = &[
    "name",
    "description",
    "enabled",
    "match",
    "key",
    "thresholds",
    "action",
    "aggregate",
    "allow",
    "members",
];
const PEAK_KEYS: &[&str] = &["window", "requests"];

/// A block that can fire on fewer requests than this is a warning: one stray request is no evidence.
const LOW_THRESHOLD: u64 = 3;

/// Where a policy name was defined, for the duplicate-name error.
struct NameSite {
    file: PathBuf,
    line: usize,
    column: usize,
}

/// Everything loaded so far, across files.
pub(super) struct Unit<'g> {
    known_groups: Option<&'g [String]>,
    now: Timestamp,
    diags: Vec<Diagnostic>,
    policies: Vec<Policy>,
    allow: Vec<AllowEntry>,
    names: BTreeMap<String, NameSite>,
}

impl<'g> Unit<'g> {
    pub(super) fn new(known_groups: Option<&'g [String]>) -> Unit<'g> {
        Unit {
            known_groups,
            // Only used to warn about expired allow entries: expiry itself is judged at use time.
            now: Timestamp::now(),
            diags: Vec::new(),
            policies: Vec::new(),
            allow: Vec::new(),
            names: BTreeMap::new(),
        }
    }

    pub(super) fn file_error(&mut self, file: &Path, message: String) {
        self.diags.push(Diagnostic {
            severity: Severity::Error,
            file: file.to_owned(),
            line: 0,
            column: 0,
            message,
            help: None,
        });
    }

    pub(super) fn add_file(&mut self, text: &str, file: &Path) {
        let mut c = Checker {
            file,
            text,
            known_groups: self.known_groups,
            now: self.now,
            diags: Vec::new(),
        };
        let parsed = c.document();
        for p in parsed.policies {
            if let Some((name, span)) = &p.name {
                let (line, column) = line_column(text, span.start);
                match self.names.get(name) {
                    Some(first) => c.error(
                        span,
                        format!(
                            "duplicate policy name `{name}`: already defined at {}:{}:{}",
                            first.file.display(),
                            first.line,
                            first.column
                        ),
                        Some("policy names are recorded in the ledger, so they must be unique across all policy files".into()),
                    ),
                    None => {
                        self.names.insert(
                            name.clone(),
                            NameSite {
                                file: file.to_owned(),
                                line,
                                column,
                            },
                        );
                    }
                }
            }
            if let Some(policy) = p.policy.filter(|_| p.enabled) {
                self.policies.push(policy);
            }
        }
        self.allow.extend(parsed.allow);
        self.diags.append(&mut c.diags);
    }

    pub(super) fn finish(mut self) -> Result<Loaded, Vec<Diagnostic>> {
        self.diags
            .sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        if self.diags.iter().any(Diagnostic::is_error) {
            return Err(self.diags);
        }
        self.policies.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Loaded {
            policies: PolicySet {
                policies: self.policies,
                allowlist: Allowlist {
                    entries: self.allow,
                },
            },
            warnings: self.diags,
        })
    }
}

/// What one file yielded. A policy with errors has `policy: None` but still reports its name, so
/// that duplicates are found even among broken policies.
struct Document {
    policies: Vec<Parsed>,
    allow: Vec<AllowEntry>,
}

struct Parsed {
    name: Option<(String, Range<usize>)>,
    enabled: bool,
    policy: Option<Policy>,
}

/// Validates one file, recording diagnostics instead of stopping.
struct Checker<'a> {
    file: &'a Path,
    text: &'a str,
    known_groups: Option<&'a [String]>,
    now: Timestamp,
    diags: Vec<Diagnostic>,
}

/// How a bare string (or list of strings) is read where a text table is also accepted.
#[derive(Clone, Copy)]
enum Shorthand {
    Glob,
    Regex,
}

impl<'a> Checker<'a> {
    // ---------------------------------------------------------------------------------------------
    // diagnostics

    fn push(
        &mut self,
        severity: Severity,
        span: &Range<usize>,
        message: String,
        help: Option<String>,
    ) {
        let (line, column) = line_column(self.text, span.start);
        self.diags.push(Diagnostic {
            severity,
            file: self.file.to_owned(),
            line,
            column,
            message,
            help,
        });
    }

    fn error(&mut self, span: &Range<usize>, message: String, help: Option<String>) {
        self.push(Severity::Error, span, message, help);
    }

    fn warn(&mut self, span: &Range<usize>, message: String, help: Option<String>) {
        self.push(Severity::Warning, span, message, help);
    }

    fn errors(&self) -> usize {
        self.diags.iter().filter(|d| d.is_error()).count()
    }

    /// The source text of a value, shortened to its first line and 60 characters.
    fn source(&self, span: &Range<usize>) -> String {
        let text = self.text.get(span.clone()).unwrap_or("").trim();
        let first = text.lines().next().unwrap_or("");
        if first.chars().count() > 60 || first.len() < text.len() {
            format!("{}...", first.chars().take(57).collect::<String>())
        } else {
            first.to_owned()
        }
    }

    fn wrong_type(&mut self, v: &Value, what: &str, expected: &str) {
        let message = format!(
            "`{what}` must be {expected}, not `{}`",
            self.source(&v.span())
        );
        self.error(&v.span(), message, None);
    }

    /// "did you mean `x`?" when `given` is close to one candidate, else the list of candidates.
    fn suggest(given: &str, candidates: &[&str]) -> String {
        match closest(given, candidates) {
            Some(best) => format!("did you mean `{best}`?"),
            None => format!("expected one of {}", quoted(candidates)),
        }
    }

    /// Reports every key of `table` not in `allowed`.
    fn keys(&mut self, table: &DeTable, allowed: &[&str], noun: &str, context: &str) {
        for key in table.keys() {
            let k: &str = key.get_ref();
            if !allowed.contains(&k) {
                let help = Self::suggest(k, allowed);
                self.error(
                    &key.span(),
                    format!("unknown {noun} `{k}`{context}"),
                    Some(help),
                );
            }
        }
    }

    // ---------------------------------------------------------------------------------------------
    // typed values

    fn table<'v, 'i>(&mut self, v: &'v Value<'i>, what: &str) -> Option<&'v DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.wrong_type(v, what, "a table");
                None
            }
        }
    }

    fn string<'v>(&mut self, v: &'v Value<'_>, what: &str) -> Option<&'v str> {
        match v.get_ref() {
            DeValue::String(s) => Some(s),
            _ => {
                self.wrong_type(v, what, "a string");
                None
            }
        }
    }

    /// A non-empty string, or a non-empty list of strings.
    fn strings<'v>(
        &mut self,
        v: &'v Value<'_>,
        what: &str,
    ) -> Option<Vec<(&'v str, Range<usize>)>> {
        match v.get_ref() {
            DeValue::String(s) => Some(vec![(s.as_ref(), v.span())]),
            DeValue::Array(items) if items.is_empty() => {
                self.error(&v.span(), format!("`{what}` is an empty list"), None);
                None
            }
            DeValue::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                let mut ok = true;
                for item in items.iter() {
                    match item.get_ref() {
                        DeValue::String(s) => out.push((s.as_ref(), item.span())),
                        _ => {
                            self.wrong_type(item, what, "a list of strings");
                            ok = false;
                        }
                    }
                }
                ok.then_some(out)
            }
            _ => {
                self.wrong_type(v, what, "a string or a list of strings");
                None
            }
        }
    }

    fn boolean(&mut self, v: &Value, what: &str) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(v, what, "`true` or `false`");
                None
            }
        }
    }

    fn integer(v: &Value) -> Option<i128> {
        match v.get_ref() {
            DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix()).ok(),
            _ => None,
        }
    }

    /// A whole number of at least `min`.
    fn count(&mut self, v: &Value, what: &str, min: u64) -> Option<u64> {
        match Self::integer(v).and_then(|n| u64::try_from(n).ok()) {
            Some(n) if n >= min => Some(n),
            _ => {
                self.wrong_type(v, what, &format!("a whole number >= {min}"));
                None
            }
        }
    }

    fn number(&mut self, v: &Value, what: &str) -> Option<f64> {
        let n = match v.get_ref() {
            DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
            DeValue::Integer(_) => Self::integer(v).map(|n| n as f64),
            _ => None,
        };
        match n.filter(|n| n.is_finite()) {
            Some(n) => Some(n),
            None => {
                self.wrong_type(v, what, "a number");
                None
            }
        }
    }

    fn duration(&mut self, v: &Value, what: &str) -> Option<SignedDuration> {
        let text = self.string(v, what)?;
        match crate::util::time::parse_duration(text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(&v.span(), format!("`{what}`: {e}"), None);
                None
            }
        }
    }

    /// `value` from `allowed` (case-insensitive), returned in the canonical spelling.
    fn choice(&mut self, v: &Value, what: &str, allowed: &[&'static str]) -> Option<&'static str> {
        let text = self.string(v, what)?;
        if let Some(found) = allowed.iter().find(|a| a.eq_ignore_ascii_case(text)) {
            return Some(found);
        }
        let help = Self::suggest(text, allowed);
        self.error(&v.span(), format!("unknown {what} `{text}`"), Some(help));
        None
    }

    /// A list of strings, each one of `allowed` (case-insensitive), returned upper case.
    fn choices(
        &mut self,
        v: &Value,
        what: &str,
        allowed: &[&str],
        severity: Severity,
    ) -> Option<Vec<String>> {
        let items = self.strings(v, what)?;
        let mut out = Vec::with_capacity(items.len());
        for (text, span) in items {
            let upper = text.to_ascii_uppercase();
            if !allowed.contains(&upper.as_str()) {
                let help = Self::suggest(&upper, allowed);
                self.push(
                    severity,
                    &span,
                    format!("unknown {what} `{text}`"),
                    Some(help),
                );
                if severity == Severity::Error {
                    continue;
                }
            }
            out.push(upper);
        }
        Some(out)
    }

    // ---------------------------------------------------------------------------------------------
    // the document

    fn document(&mut self) -> Document {
        let mut doc = Document {
            policies: Vec::new(),
            allow: Vec::new(),
        };
        let (root, errors) = DeTable::parse_recoverable(self.text);
        if !errors.is_empty() {
            // The parser recovers and goes on, but one mistake often causes several messages on
            // the same line; the first of each line is the useful one.
            let mut last_line = 0;
            for e in errors {
                let span = e.span().unwrap_or(0..0);
                let line = line_column(self.text, span.start).0;
                if line != last_line {
                    let message = e.message().lines().next().unwrap_or("").to_owned();
                    self.error(&span, message, None);
                    last_line = line;
                }
            }
            return doc;
        }
        let root_span = root.span();
        let root = root.into_inner();
        self.keys(&root, TOP_KEYS, "key", " at the top level");
        if let Some(v) = root.get("policy") {
            for item in self.array_of_tables(v, "policy") {
                let parsed = self.policy(item);
                doc.policies.push(parsed);
            }
        }
        if let Some(v) = root.get("allow") {
            for item in self.array_of_tables(v, "allow") {
                if let Some(entry) = self.allow(item, "[[allow]]") {
                    doc.allow.push(entry);
                }
            }
        }
        if root.is_empty() {
            self.warn(
                &root_span,
                "no `[[policy]]` or `[[allow]]` in this file".into(),
                None,
            );
        }
        doc
    }

    fn array_of_tables<'v, 'i>(&mut self, v: &'v Value<'i>, what: &str) -> Vec<&'v Value<'i>> {
        match v.get_ref() {
            DeValue::Array(items) => items.iter().collect(),
            _ => {
                self.error(
                    &v.span(),
                    format!("`{what}` must be an array of tables"),
                    Some(format!("write `[[{what}]]`, not `[{what}]`")),
                );
                Vec::new()
            }
        }
    }

    // ---------------------------------------------------------------------------------------------
    // [[policy]]

    fn policy(&mut self, v: &Value) -> Parsed {
        let mut parsed = Parsed {
            name: None,
            enabled: true,
            policy: None,
        };
        let Some(t) = self.table(v, "policy") else {
            return parsed;
        };
        let errors_before = self.errors();
        self.keys(t, POLICY_KEYS, "key", " in `[[policy]]`");
        let span = v.span();

        let name = match t.get("name") {
            Some(n) => self.policy_name(n),
            None => {
                self.error(&span, "policy without `name`".into(), None);
                None
            }
        };
        if let (Some(name), Some(n)) = (&name, t.get("name")) {
            parsed.name = Some((name.clone(), n.span()));
        }
        let label = name.clone().unwrap_or_else(|| "?".into());

        let description = match t.get("description") {
            Some(d) => match self.string(d, "description") {
                Some(text) if text.trim().is_empty() => {
                    self.error(
                        &d.span(),
                        "`description` is empty".into(),
                        Some("say what it catches: reviewers read it with every finding".into()),
                    );
                    None
                }
                text => text.map(|t| t.trim().to_owned()),
            },
            None => {
                self.error(
                    &span,
                    format!("policy `{label}` has no `description`"),
                    Some("say what it catches: reviewers read it with every finding".into()),
                );
                None
            }
        };
        if let Some(e) = t.get("enabled") {
            parsed.enabled = self.boolean(e, "enabled").unwrap_or(true);
        }
        let key_name = match t.get("key") {
            Some(k) => self.choice(k, "key", &["ip", "prefix", "campaign"]),
            None => Some("ip"),
        };
        let campaign = key_name == Some("campaign");
        // A campaign is counted per address; its members are grouped after the scan.
        let key = key_name.map(|k| match k {
            "prefix" => KeyKind::Prefix,
            _ => KeyKind::Ip,
        });
        let matcher = match t.get("match") {
            Some(m) => self
                .table(m, "match")
                .and_then(|mt| self.match_table(mt))
                .map(Matcher::new),
            None => Some(Matcher::everything()),
        };
        let scope = if campaign {
            Scope::Campaign
        } else {
            Scope::Key
        };
        let thresholds = t
            .get("thresholds")
            .map(|th| self.thresholds(th, &label, "thresholds", scope));
        // `Some(None)`: not a campaign; `None`: an error in `members`.
        let members = match (campaign, t.get("members")) {
            (true, Some(m)) => self
                .thresholds(m, &label, "members", Scope::Key)
                .map(|(m, _)| Some(m)),
            // Every address that sent a matched request is a member.
            (true, None) => Some(Some(Thresholds {
                mode: Mode::All,
                list: vec![Threshold::AtLeast {
                    measure: Measure::Requests,
                    limit: Limit::Fixed(1),
                }],
            })),
            (false, Some(m)) => {
                self.error(
                    &m.span(),
                    "`members` needs `key = \"campaign\"`".into(),
                    Some("members are the addresses of a campaign; other policies judge each key by `[policy.thresholds]`".into()),
                );
                None
            }
            (false, None) => Some(None),
        };
        let thresholds = match thresholds {
            Some(th) => th,
            None => {
                self.error(
                    &span,
                    format!("policy `{label}` has no `thresholds`"),
                    Some(threshold_help()),
                );
                None
            }
        };
        let action = match t.get("action") {
            Some(a) => self.action(a, &label),
            None => {
                self.error(
                    &span,
                    format!("policy `{label}` has no `action`"),
                    Some("add `action = { type = \"report\" }` to watch it before blocking".into()),
                );
                None
            }
        };
        let aggregate = match t.get("aggregate") {
            Some(a) => self.aggregate(a, key),
            None => Some(None),
        };
        let mut allowlist = Allowlist::default();
        if let Some(a) = t.get("allow") {
            for item in self.array_of_tables(a, "policy.allow") {
                allowlist
                    .entries
                    .extend(self.allow(item, "[[policy.allow]]"));
            }
        }

        let (
            Some(name),
            Some(description),
            Some(key),
            Some(matcher),
            Some(thresholds),
            Some(action),
            Some(aggregate),
            Some(members),
        ) = (
            name,
            description,
            key,
            matcher,
            thresholds,
            action,
            aggregate,
            members,
        )
        else {
            return parsed;
        };
        self.semantic_warnings(t, &name, &matcher, &thresholds, &action);
        if self.errors() == errors_before {
            // A campaign's scan counts each member; the group's thresholds apply after it.
            let (thresholds, campaign) = match members {
                Some(members) => (members, Some(thresholds.0)),
                None => (thresholds.0, None),
            };
            parsed.policy = Some(Policy {
                name,
                description,
                file: self.file.to_owned(),
                matcher,
                key,
                thresholds,
                campaign,
                action,
                aggregate,
                allowlist,
            });
        }
        parsed
    }

    fn policy_name(&mut self, v: &Value) -> Option<String> {
        let name = self.string(v, "name")?;
        let valid = (1..=64).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !valid {
            self.error(
                &v.span(),
                format!("policy name `{name}` must be 1 to 64 lowercase letters, digits, `-` or `_`, starting with a letter or digit"),
                None,
            );
            return None;
        }
        Some(name.to_owned())
    }

    /// Warnings about policies that are valid but probably not what the author meant.
    fn semantic_warnings(
        &mut self,
        t: &DeTable,
        name: &str,
        matcher: &Matcher,
        thresholds: &(Thresholds, Option<Range<usize>>),
        action: &PolicyAction,
    ) {
        let possible = matcher.expr().possible_actions();
        if possible == 0 {
            let match_span = t.get("match").map_or(0..0, |m| m.span());
            self.warn(
                &match_span,
                format!(
                    "policy `{name}` can never match a request: its conditions exclude each other"
                ),
                None,
            );
        } else if let (Some(blocked_span), true) =
            (&thresholds.1, possible & action_bit(Action::Block) == 0)
        {
            let (th, _) = thresholds;
            let message = if th.mode == Mode::All || th.list.len() == 1 {
                format!(
                    "policy `{name}` can never fire: it only matches requests WAF did not block, so its `blocked` share stays at 0"
                )
            } else {
                format!(
                    "the `blocked` threshold of policy `{name}` can never fire: the policy only matches requests WAF did not block"
                )
            };
            self.warn(
                blocked_span,
                message,
                Some("allow `BLOCK` in the `action` condition, or remove `blocked`".into()),
            );
        }
        let min = thresholds.0.fewest_to_fire();
        if matches!(action, PolicyAction::Block(_)) && min < LOW_THRESHOLD {
            let span = t.get("thresholds").map(|v| v.span()).unwrap_or(0..0);
            let requests = if min == 1 { "request" } else { "requests" };
            self.warn(
                &span,
                format!("policy `{name}` can block a client after {min} {requests}"),
                Some("one stray request is not evidence: raise the thresholds, or use `type = \"report\"`".into()),
            );
        }
    }
}

fn quoted(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn threshold_help() -> String {
    "add at least one of `peak`, `requests`, `distinct_uris`, `active_minutes`, `active_hours`, `requests_per_day`, `active_share`, `blocked`, `origin_5xx`, `origin_5xx_share` or `origin_time_share`, e.g. `thresholds = { peak = { window = \"5m\", requests = 600 } }`".into()
}

#[cfg(test)]
mod tests;
