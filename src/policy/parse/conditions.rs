//! Conditions: the `match` table and each condition in it (text, header, country, labels, ...).

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use crate::log::Action;
use crate::policy::matcher::{
    Condition, CountryMatch, Expr, HeaderMatch, HeaderTest, LabelMatch, LabelPattern, Pattern,
    TextMatch,
};
use crate::policy::pattern::{self, PatternError};
use crate::util::diag::Severity;

use super::{Checker, Shorthand, Value};

const TEXT_KEYS: &[&str] = &["equals", "prefix", "glob", "regex", "ignore_case"];

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

const RULE_TYPES: &[&str] = &["REGULAR", "RATE_BASED", "GROUP", "MANAGED_RULE_GROUP"];

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

const LABEL_KEYS: &[&str] = &["any", "all", "none"];

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

const ACTIONS: &[&str] = &["ALLOW", "BLOCK", "CAPTCHA", "CHALLENGE"];

impl Checker<'_> {
    pub(super) fn match_table(&mut self, t: &DeTable) -> Option<Expr> {
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

    pub(super) fn match_list(&mut self, v: &Value, what: &str) -> Option<Expr> {
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

    pub(super) fn condition(&mut self, key: &str, v: &Value) -> Option<Condition> {
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
    pub(super) fn text(
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
    pub(super) fn text_table(
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

    pub(super) fn check_pattern(
        &mut self,
        p: &Pattern,
        span: &Range<usize>,
        separator: Option<char>,
    ) -> bool {
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

    pub(super) fn pattern_error(
        &mut self,
        span: &Range<usize>,
        kind: &str,
        text: &str,
        e: &PatternError,
    ) {
        self.error(
            span,
            format!("invalid {kind} `{text}`: {e}"),
            e.help().map(str::to_owned),
        );
    }

    pub(super) fn compile_text(
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

    pub(super) fn actions(&mut self, v: &Value) -> Option<Vec<Action>> {
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

    pub(super) fn header(&mut self, v: &Value) -> Option<HeaderMatch> {
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

    pub(super) fn country(&mut self, v: &Value) -> Option<CountryMatch> {
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

    pub(super) fn labels(&mut self, v: &Value) -> Option<LabelMatch> {
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

    pub(super) fn label_patterns(&mut self, v: &Value, what: &str) -> Option<Vec<LabelPattern>> {
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

    pub(super) fn response_codes(&mut self, v: &Value) -> Option<Vec<u64>> {
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
}
