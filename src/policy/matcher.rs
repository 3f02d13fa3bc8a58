//! Which requests a policy counts: a compiled tree of conditions over a [`ScanRecord`].
//!
//! [`Matcher::matches`] runs for every record and every policy in the scan's hot loop, so it never
//! allocates: text conditions are one precompiled regex each, lists are compared in place, and the
//! children of `all` / `any` are ordered cheapest first so that they short-circuit early. The tree
//! is public and keeps every pattern's source, so that another backend (Athena) can translate the
//! same policy into SQL.

use crate::log::{Action, ScanRecord};

use super::pattern;

/// A compiled `match` table.
#[derive(Debug, Clone)]
pub struct Matcher {
    expr: Expr,
}

impl Matcher {
    pub(crate) fn new(expr: Expr) -> Matcher {
        Matcher { expr }
    }

    /// A matcher that counts every request (an empty `match`).
    pub fn everything() -> Matcher {
        Matcher::new(Expr::All(Vec::new()))
    }

    pub fn matches(&self, r: &ScanRecord) -> bool {
        self.expr.matches(r)
    }

    /// The condition tree, for backends that translate policies (e.g. into SQL).
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// Whether a `header` condition reads headers other than `User-Agent` and `Host`, which the
    /// scan then has to keep for every record.
    pub fn reads_other_headers(&self) -> bool {
        fn walk(e: &Expr) -> bool {
            match e {
                Expr::All(v) | Expr::Any(v) => v.iter().any(walk),
                Expr::Not(e) => walk(e),
                Expr::Cond(Condition::Header(_)) => true,
                Expr::Cond(_) => false,
            }
        }
        walk(&self.expr)
    }
}

/// A node of the condition tree.
#[derive(Debug, Clone)]
pub enum Expr {
    /// Every child matches (true when empty).
    All(Vec<Expr>),
    /// At least one child matches (false when empty).
    Any(Vec<Expr>),
    Not(Box<Expr>),
    Cond(Condition),
}

/// One test on one field of a record. A field missing from the record matches no pattern (so
/// `not` of a condition on it is true), except where a condition says otherwise.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `httpRequest.uri` (the path, without the query string).
    Path(TextMatch),
    /// `httpRequest.httpMethod`, upper case; compared without regard to case.
    Method(Vec<String>),
    /// `httpRequest.host`, else the `Host` header.
    Host(TextMatch),
    /// The `User-Agent` header.
    UserAgent(TextMatch),
    Header(HeaderMatch),
    Country(CountryMatch),
    Labels(LabelMatch),
    /// The terminating `action`.
    Action(Vec<Action>),
    /// `terminatingRuleId`.
    TerminatingRule(TextMatch),
    /// `terminatingRuleType`, upper case (`REGULAR`, `RATE_BASED`, `GROUP`, `MANAGED_RULE_GROUP`).
    TerminatingRuleType(Vec<String>),
    /// Any rule matched in COUNT mode, in the web ACL or inside a rule group.
    CountRule(TextMatch),
    /// `httpSourceName`, upper case (`CF`, `ALB`, `APIGW`, ...).
    Source(Vec<String>),
    Ja3(TextMatch),
    Ja4(TextMatch),
    /// `responseCodeSent` (only set when a rule sent a custom response).
    ResponseCode(Vec<u64>),
}

/// A pattern as written in the policy, kept for messages and other backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    Equals(String),
    Prefix(String),
    Glob(String),
    Regex(String),
}

impl std::fmt::Display for Pattern {
    /// The pattern as written.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pattern::Equals(s) | Pattern::Prefix(s) | Pattern::Glob(s) | Pattern::Regex(s) => {
                f.write_str(s)
            }
        }
    }
}

/// Text patterns, any of which may match, compiled into one regex.
#[derive(Debug, Clone)]
pub struct TextMatch {
    pub patterns: Vec<Pattern>,
    pub ignore_case: bool,
    regex: regex::Regex,
}

impl TextMatch {
    /// Compiles checked patterns. Globs are translated with `separator` (`/` for paths).
    pub(crate) fn new(
        patterns: Vec<Pattern>,
        ignore_case: bool,
        separator: Option<char>,
    ) -> Result<TextMatch, pattern::PatternError> {
        let alternatives = patterns
            .iter()
            .map(|p| match p {
                Pattern::Equals(s) => Ok(pattern::equals_to_regex(s)),
                Pattern::Prefix(s) => Ok(pattern::prefix_to_regex(s)),
                Pattern::Glob(s) => pattern::glob_to_regex(s, separator),
                Pattern::Regex(s) => Ok(s.clone()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let regex = pattern::compile(&alternatives, ignore_case)?;
        Ok(TextMatch {
            patterns,
            ignore_case,
            regex,
        })
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }

    /// The single regex all patterns compiled into (portable to Athena's `regexp_like`).
    pub fn regex(&self) -> &str {
        self.regex.as_str()
    }

    fn matches(&self, text: Option<&str>) -> bool {
        text.is_some_and(|t| self.is_match(t))
    }
}

/// Two text matches are equal when they compile to the same regex: they match the same texts.
impl PartialEq for TextMatch {
    fn eq(&self, other: &TextMatch) -> bool {
        self.regex() == other.regex()
    }
}

/// A request header by name.
#[derive(Debug, Clone, PartialEq)]
pub struct HeaderMatch {
    /// Lower case; header names compare without regard to case.
    pub name: String,
    pub test: HeaderTest,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HeaderTest {
    /// Whether the header is sent at all.
    Present(bool),
    /// The value of the first header of that name matches.
    Value(TextMatch),
}

/// `httpRequest.country`; a missing or unknown country is `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountryMatch {
    pub countries: Vec<String>,
    /// `not_in`: matches every country not listed (including `-`).
    pub negate: bool,
}

/// A label as written: exact, or a prefix when it ends in `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelPattern {
    Exact(String),
    Prefix(String),
}

impl LabelPattern {
    /// `awswaf:managed:aws:bot-control:bot:*` is a prefix; anything else is exact.
    pub fn parse(text: &str) -> LabelPattern {
        match text.strip_suffix('*') {
            Some(prefix) => LabelPattern::Prefix(prefix.to_owned()),
            None => LabelPattern::Exact(text.to_owned()),
        }
    }

    pub fn matches(&self, label: &str) -> bool {
        match self {
            LabelPattern::Exact(l) => label == l,
            LabelPattern::Prefix(p) => label.starts_with(p.as_str()),
        }
    }
}

impl std::fmt::Display for LabelPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LabelPattern::Exact(l) => f.write_str(l),
            LabelPattern::Prefix(p) => write!(f, "{p}*"),
        }
    }
}

/// Label tests; all given lists must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelMatch {
    /// Some label matches one of these.
    pub any: Vec<LabelPattern>,
    /// Each of these matches some label.
    pub all: Vec<LabelPattern>,
    /// No label matches any of these.
    pub none: Vec<LabelPattern>,
}

impl LabelMatch {
    fn matches(&self, r: &ScanRecord) -> bool {
        let carries = |p: &LabelPattern| r.label_names().any(|l| p.matches(l));
        (self.any.is_empty() || self.any.iter().any(carries))
            && self.all.iter().all(carries)
            && !self.none.iter().any(carries)
    }
}

/// Bit set over [`Action::ALL`], for the static checks in [`Expr::possible_actions`].
pub(crate) type ActionSet = u8;
pub(crate) const EVERY_ACTION: ActionSet = (1 << Action::ALL.len()) - 1;

pub(crate) fn action_bit(a: Action) -> ActionSet {
    1 << Action::ALL
        .iter()
        .position(|x| *x == a)
        .expect("Action::ALL lists every action")
}

impl Expr {
    pub fn matches(&self, r: &ScanRecord) -> bool {
        match self {
            Expr::All(children) => children.iter().all(|c| c.matches(r)),
            Expr::Any(children) => children.iter().any(|c| c.matches(r)),
            Expr::Not(child) => !child.matches(r),
            Expr::Cond(c) => c.matches(r),
        }
    }

    /// A rough relative cost of evaluating this node, used to order `all` / `any` children.
    pub(crate) fn cost(&self) -> u32 {
        match self {
            Expr::All(children) | Expr::Any(children) => children.iter().map(Expr::cost).sum(),
            Expr::Not(child) => child.cost(),
            Expr::Cond(c) => c.cost(),
        }
    }

    /// The terminating actions a matched request can have: an over-approximation, exact where the
    /// tree only tests actions. Used to warn about policies that can never match or never fire.
    pub(crate) fn possible_actions(&self) -> ActionSet {
        self.exact_actions().unwrap_or_else(|| match self {
            Expr::All(children) => children
                .iter()
                .fold(EVERY_ACTION, |set, c| set & c.possible_actions()),
            Expr::Any(children) => children.iter().fold(0, |set, c| set | c.possible_actions()),
            Expr::Not(_) | Expr::Cond(_) => EVERY_ACTION,
        })
    }

    /// The set of actions for which this node is true, if its truth depends on the action alone.
    fn exact_actions(&self) -> Option<ActionSet> {
        match self {
            Expr::Cond(Condition::Action(list)) => {
                Some(list.iter().fold(0, |set, a| set | action_bit(*a)))
            }
            Expr::Cond(_) => None,
            Expr::All(children) => children
                .iter()
                .try_fold(EVERY_ACTION, |set, c| Some(set & c.exact_actions()?)),
            Expr::Any(children) => children
                .iter()
                .try_fold(0, |set, c| Some(set | c.exact_actions()?)),
            Expr::Not(child) => child.exact_actions().map(|set| !set & EVERY_ACTION),
        }
    }
}

impl Condition {
    pub(super) fn matches(&self, r: &ScanRecord) -> bool {
        let req = &r.http_request;
        match self {
            Condition::Path(t) => t.matches(req.uri.as_deref()),
            Condition::Method(list) => req
                .http_method
                .as_deref()
                .is_some_and(|m| list.iter().any(|x| x.eq_ignore_ascii_case(m))),
            Condition::Host(t) => t.matches(r.host()),
            Condition::UserAgent(t) => t.matches(r.user_agent()),
            Condition::Header(h) => match &h.test {
                HeaderTest::Present(present) => r.header(&h.name).is_some() == *present,
                HeaderTest::Value(t) => t.matches(r.header(&h.name)),
            },
            Condition::Country(c) => {
                let country = req.country.as_deref().unwrap_or("-");
                c.countries.iter().any(|x| x == country) != c.negate
            }
            Condition::Labels(l) => l.matches(r),
            Condition::Action(list) => list.contains(&r.action()),
            Condition::TerminatingRule(t) => t.matches(r.terminating_rule_id.as_deref()),
            Condition::TerminatingRuleType(list) => {
                in_list(list, r.terminating_rule_type.as_deref())
            }
            Condition::CountRule(t) => r.count_rule_ids().any(|id| t.is_match(id)),
            Condition::Source(list) => in_list(list, r.http_source_name.as_deref()),
            Condition::Ja3(t) => t.matches(r.ja3_fingerprint.as_deref()),
            Condition::Ja4(t) => t.matches(r.ja4_fingerprint.as_deref()),
            Condition::ResponseCode(codes) => {
                r.response_code_sent.is_some_and(|c| codes.contains(&c))
            }
        }
    }

    fn cost(&self) -> u32 {
        match self {
            Condition::Action(_)
            | Condition::Method(_)
            | Condition::Country(_)
            | Condition::TerminatingRuleType(_)
            | Condition::Source(_)
            | Condition::ResponseCode(_) => 1,
            Condition::Labels(_) => 2,
            Condition::Path(_)
            | Condition::TerminatingRule(_)
            | Condition::Ja3(_)
            | Condition::Ja4(_) => 3,
            // Header lookups walk the header list first.
            Condition::Host(_) | Condition::UserAgent(_) | Condition::Header(_) => 4,
            Condition::CountRule(_) => 5,
        }
    }
}

fn in_list(list: &[String], value: Option<&str>) -> bool {
    value.is_some_and(|v| list.iter().any(|x| x.eq_ignore_ascii_case(v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record with the given extra top-level fields and `httpRequest` fields.
    fn record(top: &str, request: &str) -> String {
        let sep = |s: &str| if s.is_empty() { "" } else { "," };
        format!(
            r#"{{"timestamp":1700000000000{}{top},"httpRequest":{{"clientIp":"192.0.2.7"{}{request}}}}}"#,
            sep(top),
            sep(request)
        )
    }

    /// Parsed with the full model, which keeps every header (the lean view keeps two).
    fn check(expr: &Expr, json: &str) -> bool {
        let r: crate::log::LogRecord = sonic_rs::from_str(json).unwrap();
        Matcher::new(expr.clone()).matches(&r.view())
    }

    fn text(patterns: Vec<Pattern>, sep: Option<char>) -> TextMatch {
        TextMatch::new(patterns, false, sep).unwrap()
    }

    fn cond(c: Condition) -> Expr {
        Expr::Cond(c)
    }

    const FULL: &str = r#""action":"BLOCK","terminatingRuleId":"AWS-AWSManagedRulesCommonRuleSet",
        "terminatingRuleType":"MANAGED_RULE_GROUP","httpSourceName":"ALB","responseCodeSent":403,
        "ja3Fingerprint":"e7d705a3286e19ea42f587b344ee6865","ja4Fingerprint":"t13d1516h2_8daaf6152771_02713d6af862",
        "labels":[{"name":"awswaf:managed:aws:bot-control:bot:category:search_engine"},
                  {"name":"awswaf:managed:aws:bot-control:bot:verified"}],
        "nonTerminatingMatchingRules":[{"ruleId":"waftune-count"}],
        "ruleGroupList":[{"nonTerminatingMatchingRules":[{"ruleId":"SignalNonBrowserUserAgent"}]}]"#;
    const REQUEST: &str = r#""country":"DE","uri":"/api/v1/login","httpMethod":"POST",
        "host":"shop.example.com","headers":[{"name":"User-Agent","value":"python-requests/2.31"},
        {"name":"X-Api-Key","value":"k-123"}]"#;

    fn full() -> String {
        record(FULL, REQUEST)
    }

    fn bare() -> String {
        record("", "")
    }

    #[test]
    fn path_prefix_glob_regex_and_equals() {
        let c = |p| cond(Condition::Path(text(vec![p], Some('/'))));
        assert!(check(&c(Pattern::Prefix("/api/".into())), &full()));
        assert!(!check(&c(Pattern::Prefix("/admin".into())), &full()));
        assert!(check(&c(Pattern::Glob("/api/*/login".into())), &full()));
        assert!(!check(&c(Pattern::Glob("/*/login".into())), &full()));
        assert!(check(&c(Pattern::Regex("/v[0-9]+/".into())), &full()));
        assert!(check(&c(Pattern::Equals("/api/v1/login".into())), &full()));
        assert!(!check(&c(Pattern::Equals("/api/v1".into())), &full()));
        // No uri: nothing matches.
        assert!(!check(&c(Pattern::Glob("**".into())), &bare()));
    }

    #[test]
    fn method_host_user_agent_and_headers() {
        let method =
            |m: &[&str]| cond(Condition::Method(m.iter().map(|s| s.to_string()).collect()));
        assert!(check(&method(&["GET", "POST"]), &full()));
        assert!(!check(&method(&["GET"]), &full()));
        assert!(!check(&method(&["POST"]), &bare()));

        let host = |p| {
            cond(Condition::Host(
                TextMatch::new(vec![p], true, None).unwrap(),
            ))
        };
        assert!(check(&host(Pattern::Glob("*.EXAMPLE.com".into())), &full()));
        assert!(!check(
            &host(Pattern::Equals("example.com".into())),
            &full()
        ));

        let ua = |re: &str| {
            cond(Condition::UserAgent(text(
                vec![Pattern::Regex(re.into())],
                None,
            )))
        };
        assert!(check(&ua("^python-requests/"), &full()));
        assert!(!check(&ua("(?i)curl"), &full()));
        assert!(
            !check(&ua(".*"), &bare()),
            "a missing user agent matches no regex"
        );

        let header = |name: &str, test| {
            cond(Condition::Header(HeaderMatch {
                name: name.into(),
                test,
            }))
        };
        assert!(check(
            &header("x-api-key", HeaderTest::Present(true)),
            &full()
        ));
        assert!(check(
            &header("referer", HeaderTest::Present(false)),
            &full()
        ));
        assert!(!check(
            &header("x-api-key", HeaderTest::Present(false)),
            &full()
        ));
        let value = |p| HeaderTest::Value(text(vec![p], None));
        assert!(check(
            &header("X-API-KEY", value(Pattern::Prefix("k-".into()))),
            &full()
        ));
        assert!(!check(
            &header("x-api-key", value(Pattern::Equals("k".into()))),
            &full()
        ));
        assert!(!check(
            &header("x-missing", value(Pattern::Regex("".into()))),
            &full()
        ));
    }

    #[test]
    fn country_in_and_not_in() {
        let country = |list: &[&str], negate| {
            cond(Condition::Country(CountryMatch {
                countries: list.iter().map(|s| s.to_string()).collect(),
                negate,
            }))
        };
        assert!(check(&country(&["DE", "FR"], false), &full()));
        assert!(!check(&country(&["JP"], false), &full()));
        assert!(check(&country(&["JP"], true), &full()));
        assert!(!check(&country(&["DE"], true), &full()));
        // A record without a country counts as `-`: overseas for `not_in`, and listable.
        assert!(check(&country(&["JP"], true), &bare()));
        assert!(check(&country(&["-"], false), &bare()));
    }

    #[test]
    fn labels_any_all_none_with_prefixes() {
        let labels = |any: &[&str], all: &[&str], none: &[&str]| {
            let p = |l: &[&str]| l.iter().map(|s| LabelPattern::parse(s)).collect();
            cond(Condition::Labels(LabelMatch {
                any: p(any),
                all: p(all),
                none: p(none),
            }))
        };
        const VERIFIED: &str = "awswaf:managed:aws:bot-control:bot:verified";
        const BOT: &str = "awswaf:managed:aws:bot-control:bot:*";
        assert!(check(&labels(&[VERIFIED], &[], &[]), &full()));
        assert!(check(&labels(&["x:y", BOT], &[], &[]), &full()));
        assert!(!check(
            &labels(&["awswaf:managed:aws:bot-control:bot"], &[], &[]),
            &full()
        ));
        assert!(check(&labels(&[], &[VERIFIED, BOT], &[]), &full()));
        assert!(!check(&labels(&[], &[VERIFIED, "x:y"], &[]), &full()));
        assert!(!check(&labels(&[], &[], &[BOT]), &full()));
        assert!(check(&labels(&[], &[], &[BOT]), &bare()));
        assert!(!check(&labels(&[BOT], &[], &[]), &bare()));
        assert_eq!(LabelPattern::parse(BOT).to_string(), BOT);
    }

    #[test]
    fn waf_fields() {
        let action = |a: Vec<Action>| cond(Condition::Action(a));
        assert!(check(
            &action(vec![Action::Block, Action::Captcha]),
            &full()
        ));
        assert!(!check(&action(vec![Action::Allow]), &full()));
        assert!(!check(&action(vec![Action::Allow]), &bare()));

        let glob = |g: &str| text(vec![Pattern::Glob(g.into())], None);
        assert!(check(
            &cond(Condition::TerminatingRule(glob("AWS-*"))),
            &full()
        ));
        assert!(!check(
            &cond(Condition::TerminatingRule(glob("AWS"))),
            &full()
        ));
        let rule_type = |t: &str| cond(Condition::TerminatingRuleType(vec![t.into()]));
        assert!(check(&rule_type("MANAGED_RULE_GROUP"), &full()));
        assert!(!check(&rule_type("REGULAR"), &full()));

        // COUNT matches of the web ACL and inside rule groups both count.
        assert!(check(&cond(Condition::CountRule(glob("Signal*"))), &full()));
        assert!(check(
            &cond(Condition::CountRule(glob("waftune-count"))),
            &full()
        ));
        assert!(!check(
            &cond(Condition::CountRule(glob("Category*"))),
            &full()
        ));
        assert!(!check(&cond(Condition::CountRule(glob("*"))), &bare()));

        assert!(check(&cond(Condition::Source(vec!["alb".into()])), &full()));
        assert!(!check(&cond(Condition::Source(vec!["CF".into()])), &full()));

        let ja3 = TextMatch::new(
            vec![Pattern::Glob("E7D705A3286E19EA42F587B344EE6865".into())],
            true,
            None,
        )
        .unwrap();
        assert!(check(&cond(Condition::Ja3(ja3)), &full()));
        assert!(check(
            &cond(Condition::Ja4(glob("t13d*_8daaf6152771_*"))),
            &full()
        ));
        assert!(!check(&cond(Condition::Ja4(glob("t12d*"))), &full()));
        assert!(!check(&cond(Condition::Ja4(glob("*"))), &bare()));

        assert!(check(
            &cond(Condition::ResponseCode(vec![403, 429])),
            &full()
        ));
        assert!(!check(&cond(Condition::ResponseCode(vec![429])), &full()));
        assert!(!check(&cond(Condition::ResponseCode(vec![403])), &bare()));
    }

    #[test]
    fn combinators_nest() {
        let post = cond(Condition::Method(vec!["POST".into()]));
        let get = cond(Condition::Method(vec!["GET".into()]));
        let de = cond(Condition::Country(CountryMatch {
            countries: vec!["DE".into()],
            negate: false,
        }));
        assert!(
            check(&Expr::All(vec![]), &full()),
            "an empty match counts everything"
        );
        assert!(!check(&Expr::Any(vec![]), &full()));
        assert!(check(&Expr::All(vec![post.clone(), de.clone()]), &full()));
        assert!(!check(&Expr::All(vec![get.clone(), de.clone()]), &full()));
        assert!(check(&Expr::Any(vec![get.clone(), de.clone()]), &full()));
        assert!(!check(&Expr::Not(Box::new(post.clone())), &full()));
        let nested = Expr::All(vec![
            Expr::Any(vec![get.clone(), Expr::Not(Box::new(get.clone()))]),
            Expr::Not(Box::new(Expr::Any(vec![get, Expr::Not(Box::new(de))]))),
        ]);
        assert!(check(&nested, &full()));
        assert!(Matcher::everything().matches(&sonic_rs::from_str(&bare()).unwrap()));
    }

    #[test]
    fn possible_actions_follow_the_tree() {
        let action = |a: Vec<Action>| cond(Condition::Action(a));
        let allow = action(vec![Action::Allow]);
        let block = action(vec![Action::Block]);
        let post = cond(Condition::Method(vec!["POST".into()]));
        assert_eq!(allow.possible_actions(), action_bit(Action::Allow));
        assert_eq!(post.possible_actions(), EVERY_ACTION);
        assert_eq!(
            Expr::All(vec![allow.clone(), post.clone()]).possible_actions(),
            action_bit(Action::Allow)
        );
        assert_eq!(
            Expr::All(vec![allow.clone(), block.clone()]).possible_actions(),
            0
        );
        assert_eq!(
            Expr::Not(Box::new(allow.clone())).possible_actions(),
            EVERY_ACTION & !action_bit(Action::Allow)
        );
        // `not` of a condition on something else says nothing about actions.
        assert_eq!(
            Expr::Not(Box::new(post.clone())).possible_actions(),
            EVERY_ACTION
        );
        assert_eq!(Expr::Not(Box::new(Expr::All(vec![]))).possible_actions(), 0);
        assert_eq!(
            Expr::Any(vec![Expr::All(vec![allow, post]), block]).possible_actions(),
            action_bit(Action::Allow) | action_bit(Action::Block)
        );
    }
}
