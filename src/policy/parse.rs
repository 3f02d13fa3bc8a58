//! From TOML text to compiled policies, collecting every diagnostic on the way.
//!
//! The text is parsed into toml's spanned document tree rather than deserialized with serde:
//! serde stops at the first problem, and a policy author fixing one error per run is exactly the
//! experience cedar's validator avoids. Walking the tree by hand lets every check keep going, point
//! at the value it refuses, and suggest the fix.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use jiff::{SignedDuration, Timestamp};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::allow::{AllowEntry, AllowRule};
use super::matcher::{
    Condition, CountryMatch, Expr, HeaderMatch, HeaderTest, LabelMatch, LabelPattern, Matcher,
    Pattern, TextMatch, action_bit,
};
use super::pattern::{self, PatternError};
use super::threshold::{Mode, Threshold, Thresholds};
use super::{
    Aggregate, Allowlist, BlockAction, Escalation, KeyKind, Loaded, Policy, PolicyAction,
    PolicySet, RateLimitHint, ReportAction,
};
use crate::log::Action;
use crate::model::rate::Window;
use crate::model::waf::{MIN_RATE_LIMIT, is_waf_name};
use crate::util::cidr::{self, CidrError};
use crate::util::diag::{Diagnostic, Severity};
use crate::util::text::{closest, line_column};

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
];
const CONDITIONS: &[&str] = &[
    "all",
    "any",
    "not",
    "path",
    "method",
    "host",
    "user_agent",
    "header",
    "country",
    "labels",
    "action",
    "terminating_rule",
    "terminating_rule_type",
    "count_rule",
    "source",
    "ja3",
    "ja4",
    "response_code",
];
const TEXT_KEYS: &[&str] = &["equals", "prefix", "glob", "regex", "ignore_case"];
const HEADER_KEYS: &[&str] = &[
    "name",
    "present",
    "equals",
    "prefix",
    "glob",
    "regex",
    "ignore_case",
];
const COUNTRY_KEYS: &[&str] = &["in", "not_in"];
const LABEL_KEYS: &[&str] = &["any", "all", "none"];
const THRESHOLD_KEYS: &[&str] = &["mode", "peak", "requests", "distinct_uris", "blocked"];
const PEAK_KEYS: &[&str] = &["window", "requests"];
const BLOCKED_KEYS: &[&str] = &["ratio", "min_blocked"];
const ACTION_KEYS: &[&str] = &[
    "type",
    "group",
    "duration",
    "escalation",
    "note",
    "rate_limit",
];
const BLOCK_ONLY: &[&str] = &["group", "duration", "escalation"];
const REPORT_ONLY: &[&str] = &["note", "rate_limit"];
const ESCALATION_KEYS: &[&str] = &["factor", "max"];
const AGGREGATE_KEYS: &[&str] = &["min_offenders"];
const ALLOW_KEYS: &[&str] = &["cidr", "label", "user_agent", "comment", "expires"];
const ALLOW_KINDS: &[&str] = &["cidr", "label", "user_agent"];

const ACTIONS: &[&str] = &["ALLOW", "BLOCK", "CAPTCHA", "CHALLENGE"];
const RULE_TYPES: &[&str] = &["REGULAR", "RATE_BASED", "GROUP", "MANAGED_RULE_GROUP"];
/// `httpSourceName` values AWS documents; others may appear, so an unknown one only warns.
const SOURCES: &[&str] = &[
    "CF",
    "ALB",
    "APIGW",
    "APPSYNC",
    "COGNITOIDP",
    "APPRUNNER",
    "VERIFIED_ACCESS",
    "AMPLIFY",
];
const METHODS: &[&str] = &[
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
    // WebDAV
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "SEARCH",
    "REPORT",
];

/// A block that can fire on fewer requests than this is a warning: one stray request is no evidence.
const LOW_THRESHOLD: u64 = 3;
/// Keeps escalation sane: a factor this large reaches any cap on the second strike anyway.
const MAX_FACTOR: f64 = 100.0;

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
        let key = match t.get("key") {
            Some(k) => self.choice(k, "key", &["ip", "prefix"]).map(|k| {
                if k == "ip" {
                    KeyKind::Ip
                } else {
                    KeyKind::Prefix
                }
            }),
            None => Some(KeyKind::Ip),
        };
        let matcher = match t.get("match") {
            Some(m) => self
                .table(m, "match")
                .and_then(|mt| self.match_table(mt))
                .map(Matcher::new),
            None => Some(Matcher::everything()),
        };
        let thresholds = match t.get("thresholds") {
            Some(th) => self.thresholds(th, &label),
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
        ) = (
            name,
            description,
            key,
            matcher,
            thresholds,
            action,
            aggregate,
        )
        else {
            return parsed;
        };
        self.semantic_warnings(t, &name, &matcher, &thresholds, &action);
        if self.errors() == errors_before {
            parsed.policy = Some(Policy {
                name,
                description,
                file: self.file.to_owned(),
                matcher,
                key,
                thresholds: thresholds.0,
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
        let min = thresholds.0.min_requests();
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

    // ---------------------------------------------------------------------------------------------
    // match

    fn match_table(&mut self, t: &DeTable) -> Option<Expr> {
        self.keys(t, CONDITIONS, "condition", "");
        let mut parts = Vec::with_capacity(t.len());
        let mut ok = true;
        for (key, v) in t.iter() {
            let k: &str = key.get_ref();
            let part = match k {
                "all" | "any" => self.match_list(v, k),
                "not" => self
                    .table(v, "not")
                    .and_then(|nt| self.match_table(nt))
                    .map(|e| Expr::Not(Box::new(e))),
                other => self.condition(other, v).map(Expr::Cond),
            };
            match part {
                Some(p) => parts.push(p),
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        // Cheap tests first: `all` stops at the first false one.
        parts.sort_by_key(Expr::cost);
        Some(if parts.len() == 1 {
            parts.pop().expect("one part")
        } else {
            Expr::All(parts)
        })
    }

    fn match_list(&mut self, v: &Value, what: &str) -> Option<Expr> {
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(v, what, "a list of condition tables");
            return None;
        };
        if items.is_empty() {
            self.error(
                &v.span(),
                format!("`{what}` is an empty list"),
                Some(
                    "write at least one condition table, like `{ path = { prefix = \"/login\" } }`"
                        .into(),
                ),
            );
            return None;
        }
        let mut children = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items.iter() {
            match self.table(item, what).and_then(|t| self.match_table(t)) {
                Some(e) => children.push(e),
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        children.sort_by_key(Expr::cost);
        Some(if what == "all" {
            Expr::All(children)
        } else {
            Expr::Any(children)
        })
    }

    fn condition(&mut self, key: &str, v: &Value) -> Option<Condition> {
        Some(match key {
            "path" => Condition::Path(self.text(v, key, Shorthand::Glob, Some('/'), false)?),
            "host" => Condition::Host(self.text(v, key, Shorthand::Glob, None, true)?),
            "user_agent" => {
                Condition::UserAgent(self.text(v, key, Shorthand::Regex, None, false)?)
            }
            "terminating_rule" => {
                Condition::TerminatingRule(self.text(v, key, Shorthand::Glob, None, false)?)
            }
            "count_rule" => {
                Condition::CountRule(self.text(v, key, Shorthand::Glob, None, false)?)
            }
            "ja3" => Condition::Ja3(self.text(v, key, Shorthand::Glob, None, true)?),
            "ja4" => Condition::Ja4(self.text(v, key, Shorthand::Glob, None, true)?),
            "method" => Condition::Method(self.choices(v, "method", METHODS, Severity::Error)?),
            "terminating_rule_type" => Condition::TerminatingRuleType(self.choices(
                v,
                "terminating_rule_type",
                RULE_TYPES,
                Severity::Error,
            )?),
            "source" => Condition::Source(self.choices(v, "source", SOURCES, Severity::Warning)?),
            "action" => Condition::Action(self.actions(v)?),
            "header" => Condition::Header(self.header(v)?),
            "country" => Condition::Country(self.country(v)?),
            "labels" => Condition::Labels(self.labels(v)?),
            "response_code" => Condition::ResponseCode(self.response_codes(v)?),
            // Unknown conditions were reported by `keys`.
            _ => return None,
        })
    }

    /// A text condition: a string or list (read as `shorthand`), or a table of patterns.
    fn text(
        &mut self,
        v: &Value,
        what: &str,
        shorthand: Shorthand,
        separator: Option<char>,
        default_ignore_case: bool,
    ) -> Option<TextMatch> {
        let mut patterns = Vec::new();
        let mut ignore_case = default_ignore_case;
        let mut ok = true;
        match v.get_ref() {
            DeValue::String(_) | DeValue::Array(_) => {
                for (text, span) in self.strings(v, what)? {
                    let p = match shorthand {
                        Shorthand::Glob => Pattern::Glob(text.to_owned()),
                        Shorthand::Regex => Pattern::Regex(text.to_owned()),
                    };
                    ok &= self.check_pattern(&p, &span, separator);
                    patterns.push(p);
                }
            }
            DeValue::Table(t) => {
                self.keys(t, TEXT_KEYS, "key", &format!(" in `{what}`"));
                ok = self.text_table(t, what, separator, &mut patterns, &mut ignore_case);
                if ok && patterns.is_empty() {
                    self.error(
                        &v.span(),
                        format!("`{what}` has no pattern"),
                        Some("add one of `equals`, `prefix`, `glob` or `regex`".into()),
                    );
                    return None;
                }
            }
            _ => {
                self.wrong_type(
                    v,
                    what,
                    "a string, a list of strings or a table of patterns",
                );
                return None;
            }
        }
        if !ok {
            return None;
        }
        self.compile_text(v, patterns, ignore_case, separator)
    }

    /// Reads `equals`, `prefix`, `glob`, `regex` and `ignore_case` from a table (other keys are
    /// the caller's business). False when something was wrong.
    fn text_table(
        &mut self,
        t: &DeTable,
        what: &str,
        separator: Option<char>,
        patterns: &mut Vec<Pattern>,
        ignore_case: &mut bool,
    ) -> bool {
        let mut ok = true;
        for kind in ["equals", "prefix", "glob", "regex"] {
            let Some(v) = t.get(kind) else { continue };
            let Some(items) = self.strings(v, &format!("{what}.{kind}")) else {
                ok = false;
                continue;
            };
            for (text, span) in items {
                let text = text.to_owned();
                let p = match kind {
                    "equals" => Pattern::Equals(text),
                    "prefix" => Pattern::Prefix(text),
                    "glob" => Pattern::Glob(text),
                    _ => Pattern::Regex(text),
                };
                ok &= self.check_pattern(&p, &span, separator);
                patterns.push(p);
            }
        }
        if let Some(v) = t.get("ignore_case") {
            match self.boolean(v, "ignore_case") {
                Some(b) => *ignore_case = b,
                None => ok = false,
            }
        }
        ok
    }

    fn check_pattern(&mut self, p: &Pattern, span: &Range<usize>, separator: Option<char>) -> bool {
        let (kind, text, result) = match p {
            Pattern::Glob(g) => ("glob", g, pattern::glob_to_regex(g, separator).map(drop)),
            Pattern::Regex(r) => ("regex", r, pattern::check_regex(r)),
            Pattern::Equals(_) | Pattern::Prefix(_) => return true,
        };
        match result {
            Ok(()) => true,
            Err(e) => {
                self.pattern_error(span, kind, text, &e);
                false
            }
        }
    }

    fn pattern_error(&mut self, span: &Range<usize>, kind: &str, text: &str, e: &PatternError) {
        self.error(
            span,
            format!("invalid {kind} `{text}`: {e}"),
            e.help().map(str::to_owned),
        );
    }

    fn compile_text(
        &mut self,
        v: &Value,
        patterns: Vec<Pattern>,
        ignore_case: bool,
        separator: Option<char>,
    ) -> Option<TextMatch> {
        match TextMatch::new(patterns, ignore_case, separator) {
            Ok(t) => Some(t),
            Err(e) => {
                // Every pattern was checked alone; what is left is the combination (its size).
                self.error(
                    &v.span(),
                    format!("these patterns cannot be compiled: {e}"),
                    None,
                );
                None
            }
        }
    }

    fn actions(&mut self, v: &Value) -> Option<Vec<Action>> {
        let items = self.strings(v, "action")?;
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (text, span) in items {
            let action = Action::parse(Some(text));
            if action == Action::Other {
                let help = if text.eq_ignore_ascii_case("COUNT") {
                    "COUNT never terminates a request; match rules in COUNT mode with `count_rule`"
                        .to_owned()
                } else {
                    Self::suggest(&text.to_ascii_uppercase(), ACTIONS)
                };
                self.error(&span, format!("unknown action `{text}`"), Some(help));
                ok = false;
            } else {
                out.push(action);
            }
        }
        ok.then_some(out)
    }

    fn header(&mut self, v: &Value) -> Option<HeaderMatch> {
        let t = self.table(v, "header")?;
        self.keys(t, HEADER_KEYS, "key", " in `header`");
        let name = match t.get("name") {
            Some(n) => {
                let name = self.string(n, "header.name")?;
                // RFC 9110 token characters.
                let valid = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
                if !valid {
                    self.error(&n.span(), format!("`{name}` is not a header name"), None);
                    return None;
                }
                name.to_ascii_lowercase()
            }
            None => {
                self.error(
                    &v.span(),
                    "`header` without `name`".into(),
                    Some("write `header = { name = \"x-api-key\", present = true }`".into()),
                );
                return None;
            }
        };
        let mut patterns = Vec::new();
        let mut ignore_case = false;
        if !self.text_table(t, "header", None, &mut patterns, &mut ignore_case) {
            return None;
        }
        let present = match t.get("present") {
            Some(p) => Some((self.boolean(p, "present")?, p.span())),
            None => None,
        };
        let test = match (present, patterns.is_empty()) {
            (Some((_, span)), false) => {
                self.error(
                    &span,
                    "`present` cannot be combined with patterns".into(),
                    Some(
                        "a header whose value matches a pattern is present; remove `present`"
                            .into(),
                    ),
                );
                return None;
            }
            (Some((present, _)), true) => HeaderTest::Present(present),
            (None, true) => HeaderTest::Present(true),
            (None, false) => {
                HeaderTest::Value(self.compile_text(v, patterns, ignore_case, None)?)
            }
        };
        Some(HeaderMatch { name, test })
    }

    fn country(&mut self, v: &Value) -> Option<CountryMatch> {
        let (list, negate) = match v.get_ref() {
            DeValue::Table(t) => {
                self.keys(t, COUNTRY_KEYS, "key", " in `country`");
                match (t.get("in"), t.get("not_in")) {
                    (Some(list), None) => (list, false),
                    (None, Some(list)) => (list, true),
                    (Some(_), Some(not_in)) => {
                        self.error(
                            &not_in.span(),
                            "`country` has both `in` and `not_in`".into(),
                            Some(
                                "use one; combine two country conditions with `all` if you must"
                                    .into(),
                            ),
                        );
                        return None;
                    }
                    (None, None) => {
                        self.error(
                            &v.span(),
                            "`country` needs `in` or `not_in`".into(),
                            Some("write `country = { not_in = [\"JP\"] }`".into()),
                        );
                        return None;
                    }
                }
            }
            _ => (v, false),
        };
        let items = self.strings(list, "country")?;
        let mut countries = Vec::with_capacity(items.len());
        let mut ok = true;
        for (code, span) in items {
            let valid =
                code == "-" || (code.len() == 2 && code.chars().all(|c| c.is_ascii_uppercase()));
            if valid {
                countries.push(code.to_owned());
                continue;
            }
            ok = false;
            let help = if code.len() == 2 && code.chars().all(|c| c.is_ascii_alphabetic()) {
                format!("did you mean `{}`?", code.to_ascii_uppercase())
            } else {
                "write two capital letters, like `JP`, or `-` for requests without a known country"
                    .to_owned()
            };
            self.error(
                &span,
                format!("country `{code}` is not an ISO 3166 alpha-2 code"),
                Some(help),
            );
        }
        ok.then_some(CountryMatch { countries, negate })
    }

    fn labels(&mut self, v: &Value) -> Option<LabelMatch> {
        let mut m = LabelMatch::default();
        match v.get_ref() {
            DeValue::Table(t) => {
                self.keys(t, LABEL_KEYS, "key", " in `labels`");
                let mut ok = true;
                for (kind, list) in [
                    ("any", &mut m.any),
                    ("all", &mut m.all),
                    ("none", &mut m.none),
                ] {
                    if let Some(lv) = t.get(kind) {
                        match self.label_patterns(lv, &format!("labels.{kind}")) {
                            Some(p) => *list = p,
                            None => ok = false,
                        }
                    }
                }
                if !ok {
                    return None;
                }
                if m.any.is_empty() && m.all.is_empty() && m.none.is_empty() {
                    self.error(
                        &v.span(),
                        "`labels` has no list".into(),
                        Some("add `any`, `all` or `none`".into()),
                    );
                    return None;
                }
            }
            _ => m.any = self.label_patterns(v, "labels")?,
        }
        Some(m)
    }

    fn label_patterns(&mut self, v: &Value, what: &str) -> Option<Vec<LabelPattern>> {
        let items = self.strings(v, what)?;
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (text, span) in items {
            let body = text.strip_suffix('*').unwrap_or(text);
            if text.is_empty() || text.chars().any(char::is_whitespace) {
                self.error(
                    &span,
                    format!("label `{text}` is empty or contains spaces"),
                    None,
                );
                ok = false;
            } else if body.contains('*') {
                self.error(
                    &span,
                    format!("label `{text}` has a `*` before its end"),
                    Some("a label is exact, or a prefix ending in `*`, like `awswaf:managed:aws:bot-control:bot:*`".into()),
                );
                ok = false;
            } else {
                out.push(LabelPattern::parse(text));
            }
        }
        ok.then_some(out)
    }

    fn response_codes(&mut self, v: &Value) -> Option<Vec<u64>> {
        let items: Vec<&Value> = match v.get_ref() {
            DeValue::Array(items) if !items.is_empty() => items.iter().collect(),
            _ => vec![v],
        };
        let mut codes = Vec::with_capacity(items.len());
        for item in items {
            match Self::integer(item) {
                Some(code @ 100..=599) => codes.push(code as u64),
                _ => {
                    let message = format!(
                        "`response_code` must be an HTTP status (100 to 599) or a list of them, not `{}`",
                        self.source(&item.span())
                    );
                    self.error(&item.span(), message, None);
                    return None;
                }
            }
        }
        Some(codes)
    }

    // ---------------------------------------------------------------------------------------------
    // thresholds, action, aggregate

    /// The thresholds, and where `blocked` was written (for a warning about it).
    fn thresholds(
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

    fn peak(&mut self, v: &Value) -> Option<(Window, u64, Range<usize>)> {
        let t = self.table(v, "peak")?;
        self.keys(t, PEAK_KEYS, "key", " in `peak`");
        let window = self.window(t, v, "peak")?;
        let requests = self.required(t, v, "requests", "peak")?;
        let requests = self.count(requests, "peak.requests", 1)?;
        Some((window.0, requests, window.1))
    }

    fn window(&mut self, t: &DeTable, table: &Value, what: &str) -> Option<(Window, Range<usize>)> {
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
    fn required<'v, 'i>(
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

    fn blocked(&mut self, v: &Value) -> Option<Threshold> {
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

    fn action(&mut self, v: &Value, policy: &str) -> Option<PolicyAction> {
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

    fn block_action(&mut self, t: &DeTable, v: &Value, policy: &str) -> Option<BlockAction> {
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

    fn group(&mut self, v: &Value, policy: &str) -> Option<String> {
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

    fn escalation(
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

    fn report_action(&mut self, t: &DeTable) -> Option<ReportAction> {
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

    fn aggregate(&mut self, v: &Value, key: Option<KeyKind>) -> Option<Option<Aggregate>> {
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

    // ---------------------------------------------------------------------------------------------
    // [[allow]]

    /// An allow entry; `header` is `[[allow]]` or `[[policy.allow]]`, for messages.
    fn allow(&mut self, v: &Value, header: &str) -> Option<AllowEntry> {
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

    fn allow_rule(&mut self, kind: &str, v: &Value) -> Option<AllowRule> {
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

    fn cidr_error(&mut self, span: &Range<usize>, e: &CidrError) {
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

    fn expires(&mut self, v: &Value) -> Option<Timestamp> {
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

fn quoted(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn threshold_help() -> String {
    "add at least one of `peak`, `requests`, `distinct_uris` or `blocked`, e.g. `thresholds = { peak = { window = \"5m\", requests = 600 } }`".into()
}

fn comment_help() -> String {
    "say who or what this is and why it is allowed: an entry nobody can explain is never removed"
        .into()
}

#[cfg(test)]
mod tests;
