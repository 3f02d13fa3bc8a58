//! Several policies' matchers evaluated together on each record of a scan, sharing the work.
//!
//! The scan asks every policy about every record, and the answers repeat: most policies exclude
//! verified crawlers with the same label test, both scraper policies run the same user-agent
//! regex, and a day's half million records carry a few thousand distinct paths, a few hundred
//! user agents and a handful of terminating rules. Regexes over those texts are the costliest
//! tests (a quarter of `report`'s time before this module). So a [`MatchSet`] evaluates each
//! distinct condition at most once per record, and a condition on the path, the user agent or the
//! terminating rule at most once per distinct text while that text stays in a small per-worker
//! [`TextCache`], found by the text's interned id.
//!
//! Only conditions that are a function of that one text are cached across records: labels,
//! headers, country, action and the rest differ between records with the same path or user
//! agent, so they are only shared between the policies of one record.

use crate::log::ScanRecord;

use super::matcher::{Condition, Expr, Matcher};

/// Distinct conditions beyond this many are evaluated for each policy that tests them (the
/// answers are the same, only not shared within a record).
const RECORD_SLOTS: usize = 64;
/// Per field (path, user agent, terminating rule), distinct conditions beyond this many are not
/// cached across records (the bits of an [`Entry`]).
const TEXT_SLOTS: u32 = u16::BITS;

/// The matchers of a scan's policies, compiled to share conditions (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct MatchSet {
    /// Per matcher, its tree with each condition replaced by its index in `leaves`.
    trees: Vec<Node>,
    /// Each distinct condition once.
    leaves: Vec<Leaf>,
}

#[derive(Debug, Clone)]
enum Node {
    All(Vec<Node>),
    Any(Vec<Node>),
    Not(Box<Node>),
    Leaf(usize),
}

#[derive(Debug, Clone)]
struct Leaf {
    condition: Condition,
    /// For a condition on one cached field alone: the field and its bit in a [`TextCache`] entry.
    text: Option<(TextField, u16)>,
}

/// The fields whose conditions are cached across records, in [`TextCache::fields`]' order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextField {
    Path,
    UserAgent,
    Rule,
}

impl TextField {
    const ALL: [TextField; 3] = [TextField::Path, TextField::UserAgent, TextField::Rule];

    /// How many texts' answers a [`TextCache`] holds for the field: a fixed size (512 KB for paths,
    /// 32 KB for the others), however many distinct texts the logs carry. A day of the generated
    /// shop has 64,000 distinct paths, 15,000 of them seen once; 65,536 entries keep all of them
    /// (4,096 entries had missed 45% of the records, since the hot paths' slots were taken by rare
    /// ones). User agents and terminating rules are far fewer.
    fn entries(self) -> usize {
        match self {
            TextField::Path => 1 << 16,
            TextField::UserAgent | TextField::Rule => 1 << 12,
        }
    }

    fn of(c: &Condition) -> Option<TextField> {
        match c {
            Condition::Path(_) => Some(TextField::Path),
            Condition::UserAgent(_) => Some(TextField::UserAgent),
            Condition::TerminatingRule(_) => Some(TextField::Rule),
            _ => None,
        }
    }
}

/// The record's path, user agent and terminating rule as interned ids: equal ids for equal texts,
/// different ids for different texts, in one numbering for as long as a [`TextCache`] is used
/// with it (a scan worker's interner). A missing field may share the id of some text (the scan
/// interns a missing rule as `-`): it is never looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextIds {
    pub uri: u32,
    pub user_agent: u32,
    pub rule: u32,
}

/// Remembered answers of path, user-agent and terminating-rule conditions, by interned id: one per
/// scan worker, for one [`MatchSet`] and one id numbering. Direct-mapped and of fixed size: a text
/// whose slot another text takes is evaluated again when it comes back.
#[derive(Debug, Default)]
pub struct TextCache {
    /// Per [`TextField`]: no entries when the set has no condition on that field.
    fields: [Vec<Entry>; TextField::ALL.len()],
}

/// One text's answers: bit `b` of `value` is the answer of the field's condition `b`, valid when
/// bit `b` of `known` is set.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    id: u32,
    known: u16,
    value: u16,
}

impl MatchSet {
    pub fn new<'a>(matchers: impl IntoIterator<Item = &'a Matcher>) -> MatchSet {
        let mut set = MatchSet::default();
        let mut text_slots = [0u32; TextField::ALL.len()];
        for m in matchers {
            let tree = set.node(m.expr(), &mut text_slots);
            set.trees.push(tree);
        }
        set
    }

    fn node(&mut self, e: &Expr, text_slots: &mut [u32; TextField::ALL.len()]) -> Node {
        match e {
            // One child decides alone.
            Expr::All(v) | Expr::Any(v) if v.len() == 1 => self.node(&v[0], text_slots),
            Expr::All(v) => Node::All(v.iter().map(|c| self.node(c, text_slots)).collect()),
            Expr::Any(v) => Node::Any(v.iter().map(|c| self.node(c, text_slots)).collect()),
            Expr::Not(c) => Node::Not(Box::new(self.node(c, text_slots))),
            Expr::Cond(c) => Node::Leaf(self.leaf(c, text_slots)),
        }
    }

    /// The index of `c` among the distinct conditions, adding it when new.
    fn leaf(&mut self, c: &Condition, text_slots: &mut [u32; TextField::ALL.len()]) -> usize {
        if let Some(i) = self.leaves.iter().position(|l| l.condition == *c) {
            return i;
        }
        let text = TextField::of(c).and_then(|f| {
            let next = &mut text_slots[f as usize];
            (*next < TEXT_SLOTS).then(|| {
                *next += 1;
                (f, 1u16 << (*next - 1))
            })
        });
        self.leaves.push(Leaf {
            condition: c.clone(),
            text,
        });
        self.leaves.len() - 1
    }

    /// An empty cache sized for this set's conditions (nothing for a field it does not test).
    pub fn cache(&self) -> TextCache {
        self.cache_of(TextField::entries)
    }

    fn cache_of(&self, entries: impl Fn(TextField) -> usize) -> TextCache {
        let sized = |field| {
            let entries = entries(field);
            debug_assert!(entries.is_power_of_two());
            let used = self
                .leaves
                .iter()
                .any(|l| matches!(l.text, Some((f, _)) if f == field));
            vec![Entry::default(); if used { entries } else { 0 }]
        };
        TextCache {
            fields: TextField::ALL.map(sized),
        }
    }

    /// Asks the matchers about one record: [`RecordMatch::matches`]`(i)` is
    /// `matchers[i].matches(r)`. `cache` must come from this set's [`MatchSet::cache`] and have
    /// been used only with `ids` of the same numbering.
    pub fn record<'s, 'r>(
        &'s self,
        r: &'s ScanRecord<'r>,
        ids: TextIds,
        cache: &'s mut TextCache,
    ) -> RecordMatch<'s, 'r> {
        let [paths, user_agents, rules] = &mut cache.fields;
        RecordMatch {
            set: self,
            record: r,
            known: 0,
            value: 0,
            entries: [
                r.http_request
                    .uri
                    .as_ref()
                    .and_then(|_| entry(paths, ids.uri)),
                r.user_agent()
                    .and_then(|_| entry(user_agents, ids.user_agent)),
                r.terminating_rule_id
                    .as_ref()
                    .and_then(|_| entry(rules, ids.rule)),
            ],
        }
    }
}

/// The entry for `id`, emptied when it held another text's answers; `None` without a cache.
fn entry(entries: &mut [Entry], id: u32) -> Option<&mut Entry> {
    let n = entries.len();
    let e = entries.get_mut(id as usize & n.wrapping_sub(1))?;
    if e.id != id {
        *e = Entry {
            id,
            known: 0,
            value: 0,
        };
    }
    Some(e)
}

/// One record's answers so far (see [`MatchSet::record`]).
pub struct RecordMatch<'s, 'r> {
    set: &'s MatchSet,
    record: &'s ScanRecord<'r>,
    /// Bit `i`: leaf `i` (below [`RECORD_SLOTS`]) was evaluated for this record, and its answer.
    known: u64,
    value: u64,
    /// Per [`TextField`], the cache entry of the record's text, when it has one.
    entries: [Option<&'s mut Entry>; TextField::ALL.len()],
}

impl RecordMatch<'_, '_> {
    /// Whether matcher `i` of the set matches the record.
    pub fn matches(&mut self, i: usize) -> bool {
        let set = self.set;
        self.eval(&set.trees[i])
    }

    fn eval(&mut self, n: &Node) -> bool {
        match n {
            Node::All(children) => children.iter().all(|c| self.eval(c)),
            Node::Any(children) => children.iter().any(|c| self.eval(c)),
            Node::Not(child) => !self.eval(child),
            Node::Leaf(i) => self.leaf(*i),
        }
    }

    fn leaf(&mut self, i: usize) -> bool {
        let bit = 1u64 << (i % RECORD_SLOTS);
        let shared = i < RECORD_SLOTS;
        if shared && self.known & bit != 0 {
            return self.value & bit != 0;
        }
        let leaf = &self.set.leaves[i];
        let record = self.record;
        let entry = leaf
            .text
            .and_then(|(f, b)| Some((self.entries[f as usize].as_deref_mut()?, b)));
        let answer = match entry {
            Some((e, b)) => {
                if e.known & b == 0 {
                    e.known |= b;
                    if leaf.condition.matches(record) {
                        e.value |= b;
                    }
                }
                e.value & b != 0
            }
            None => leaf.condition.matches(record),
        };
        if shared {
            self.known |= bit;
            if answer {
                self.value |= bit;
            }
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::log::{Action, LogRecord};
    use crate::policy::matcher::{
        CountryMatch, HeaderMatch, HeaderTest, LabelMatch, LabelPattern, Pattern, TextMatch,
    };

    fn text(re: &str) -> TextMatch {
        TextMatch::new(vec![Pattern::Regex(re.into())], false, None).unwrap()
    }
    fn cond(c: Condition) -> Expr {
        Expr::Cond(c)
    }
    fn not(e: Expr) -> Expr {
        Expr::Not(Box::new(e))
    }
    fn verified() -> Expr {
        cond(Condition::Labels(LabelMatch {
            any: vec![LabelPattern::parse("bot:verified")],
            ..LabelMatch::default()
        }))
    }
    fn ua(re: &str) -> Expr {
        cond(Condition::UserAgent(text(re)))
    }
    fn path(re: &str) -> Expr {
        cond(Condition::Path(text(re)))
    }
    fn rule(re: &str) -> Expr {
        cond(Condition::TerminatingRule(text(re)))
    }

    /// Policies mixing conditions on the path, user agent and rule (cacheable) with conditions on
    /// everything else that varies between records with the same path, user agent and rule.
    fn matchers() -> Vec<Matcher> {
        let scraper = ua("(?i)^(curl|python-requests)");
        let login = path("/login$");
        [
            Expr::All(vec![not(verified()), scraper.clone()]),
            Expr::All(vec![not(verified()), Expr::Any(vec![scraper, verified()])]),
            Expr::All(vec![
                cond(Condition::Method(vec!["POST".into()])),
                not(verified()),
                login.clone(),
            ]),
            Expr::All(vec![
                cond(Condition::Country(CountryMatch {
                    countries: vec!["JP".into()],
                    negate: true,
                })),
                not(login),
            ]),
            Expr::All(vec![
                cond(Condition::Action(vec![Action::Block])),
                ua("bot"),
            ]),
            cond(Condition::Header(HeaderMatch {
                name: "x-api-key".into(),
                test: HeaderTest::Present(true),
            })),
            Expr::Any(vec![path("^$"), ua("^$")]),
            not(path(".")),
            Expr::All(vec![not(verified()), rule("^waftune-")]),
            // A missing rule is interned as `-`: never the answer for a rule named `-`.
            Expr::Any(vec![rule("^-$"), path("/shop")]),
            Expr::All(vec![]),
            Expr::Any(vec![]),
            Expr::Any(vec![Expr::All(vec![not(verified())])]),
        ]
        .into_iter()
        .map(Matcher::new)
        .collect()
    }

    /// Every combination of a few paths, user agents, rules, labels, methods, countries, actions
    /// and headers, including missing and empty paths and user agents and a missing rule.
    fn records() -> Vec<String> {
        let mut out = Vec::new();
        let uris = [None, Some(""), Some("/login"), Some("/shop")];
        let rules = [None, Some("-"), Some("waftune-blocklist")];
        for (uri, rule) in uris.into_iter().flat_map(|u| rules.map(|r| (u, r))) {
            for agent in [
                None,
                Some(""),
                Some("curl/8"),
                Some("Googlebot"),
                Some("Mozilla"),
            ] {
                for (labels, method, country, action, key) in [
                    ("", "GET", "JP", "ALLOW", false),
                    (
                        r#""labels":[{"name":"bot:verified"}],"#,
                        "POST",
                        "DE",
                        "BLOCK",
                        true,
                    ),
                    ("", "POST", "US", "BLOCK", false),
                    (
                        r#""labels":[{"name":"other"}],"#,
                        "POST",
                        "JP",
                        "ALLOW",
                        true,
                    ),
                ] {
                    let mut headers = Vec::new();
                    if let Some(a) = agent {
                        headers.push(format!(r#"{{"name":"User-Agent","value":"{a}"}}"#));
                    }
                    if key {
                        headers.push(r#"{"name":"X-Api-Key","value":"k"}"#.to_owned());
                    }
                    let uri = uri.map(|u| format!(r#""uri":"{u}","#)).unwrap_or_default();
                    let rule = rule
                        .map(|r| format!(r#""terminatingRuleId":"{r}","#))
                        .unwrap_or_default();
                    out.push(format!(
                        r#"{{"timestamp":1700000000000,"action":"{action}",{rule}{labels}"httpRequest":{{"clientIp":"192.0.2.7",{uri}"httpMethod":"{method}","country":"{country}","headers":[{}]}}}}"#,
                        headers.join(",")
                    ));
                }
            }
        }
        out
    }

    /// Interned ids as the scan gives them: a missing field has the id of the empty text.
    fn ids(r: &ScanRecord, names: &mut HashMap<String, u32>) -> TextIds {
        let mut intern = |s: &str| {
            let n = names.len() as u32;
            *names.entry(s.to_owned()).or_insert(n)
        };
        TextIds {
            uri: intern(r.http_request.uri.as_deref().unwrap_or("")),
            user_agent: intern(r.user_agent().unwrap_or("")),
            rule: intern(r.terminating_rule_id.as_deref().unwrap_or("-")),
        }
    }

    /// Runs all records through `set` twice (the second time from the cache) and compares every
    /// answer with direct evaluation.
    fn check_against_direct(set: &MatchSet, matchers: &[Matcher], cache: &mut TextCache) {
        let mut names = HashMap::new();
        let records = records();
        let parsed: Vec<LogRecord> = records
            .iter()
            .map(|j| sonic_rs::from_str(j).unwrap())
            .collect();
        let mut compared = 0;
        for _ in 0..2 {
            for (json, full) in records.iter().zip(&parsed) {
                let r = full.view();
                let ids = ids(&r, &mut names);
                let mut answers = set.record(&r, ids, cache);
                // Twice each, in both orders: answers shared within a record stay right.
                for i in (0..matchers.len()).chain((0..matchers.len()).rev()) {
                    assert_eq!(
                        answers.matches(i),
                        matchers[i].matches(&r),
                        "matcher {i} on {json}"
                    );
                    compared += 1;
                }
            }
        }
        assert_eq!(compared, records.len() * matchers.len() * 4);
    }

    #[test]
    fn cached_answers_equal_direct_evaluation() {
        let matchers = matchers();
        let set = MatchSet::new(&matchers);
        // The repeated user-agent regex and label test are one condition each.
        let distinct = set.leaves.len();
        assert_eq!(distinct, 14);
        check_against_direct(&set, &matchers, &mut set.cache());
    }

    #[test]
    fn a_cache_too_small_for_the_texts_replaces_entries_and_stays_right() {
        let matchers = matchers();
        let set = MatchSet::new(&matchers);
        // One entry per field: every other text evicts the previous one.
        check_against_direct(&set, &matchers, &mut set.cache_of(|_| 1));
        check_against_direct(&set, &matchers, &mut set.cache_of(|_| 2));
    }

    #[test]
    fn only_conditions_on_one_cached_field_are_cached_across_records() {
        let matchers = matchers();
        let set = MatchSet::new(&matchers);
        let cached: Vec<_> = set
            .leaves
            .iter()
            .filter_map(|l| l.text.map(|(f, _)| (f, &l.condition)))
            .collect();
        assert_eq!(cached.len(), 9, "{cached:?}");
        assert!(cached.iter().all(|(f, c)| match f {
            TextField::Path => matches!(c, Condition::Path(_)),
            TextField::UserAgent => matches!(c, Condition::UserAgent(_)),
            TextField::Rule => matches!(c, Condition::TerminatingRule(_)),
        }));
        // A set without such conditions allocates no cache.
        let labels_only = MatchSet::new(&[Matcher::new(not(verified()))]);
        assert!(labels_only.cache().fields.iter().all(Vec::is_empty));
    }

    #[test]
    fn more_conditions_than_slots_are_evaluated_directly() {
        // 70 distinct user-agent regexes: past the record's and the cache's slots.
        let matchers: Vec<Matcher> = (0..70)
            .map(|i| Matcher::new(ua(&format!("^{}", (b'A' + (i % 26) as u8) as char))))
            .chain((0..70).map(|i| Matcher::new(ua(&format!("{i}$")))))
            .chain(matchers())
            .collect();
        let set = MatchSet::new(&matchers);
        assert!(set.leaves.len() > RECORD_SLOTS);
        check_against_direct(&set, &matchers, &mut set.cache());
    }
}
