//! The scan's view of a record: only the fields that analysis and policies read.
//!
//! Parsing a line straight into [`ScanRecord`] lets the JSON parser skip everything else (match
//! details, rule-group internals, request ids, ...) at SIMD speed, which is most of a scan's cost.
//! [`LogRecord::view`](super::LogRecord::view) produces the same value from the full model; a test
//! pins the two together on every public sample, so they cannot drift apart.

use std::net::IpAddr;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::headers::Headers;
use super::record::{Label, Str, epoch_millis, lenient_u64, opt_str};

pub type Labels<'a> = smallvec::SmallVec<[Label<'a>; 4]>;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanRecord<'a> {
    /// Epoch milliseconds.
    #[serde(deserialize_with = "epoch_millis")]
    pub timestamp: i64,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub action: Option<Str<'a>>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub terminating_rule_id: Option<Str<'a>>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub terminating_rule_type: Option<Str<'a>>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub http_source_name: Option<Str<'a>>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub response_code_sent: Option<u64>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub ja3_fingerprint: Option<Str<'a>>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub ja4_fingerprint: Option<Str<'a>>,
    /// Inline up to four: nearly every record has a few labels, and a vector was an allocation
    /// per record.
    #[serde(default, borrow)]
    pub labels: Option<Labels<'a>>,
    #[serde(default, borrow, alias = "matchingNonTerminatingRules")]
    pub non_terminating_matching_rules: Option<Vec<RuleRef<'a>>>,
    /// COUNT-mode matches inside `ruleGroupList`, flattened in log order.
    #[serde(
        default,
        borrow,
        rename = "ruleGroupList",
        deserialize_with = "group_count_rules"
    )]
    pub group_count_rules: Vec<RuleRef<'a>>,
    #[serde(borrow)]
    pub http_request: RequestView<'a>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestView<'a> {
    #[serde(borrow)]
    pub client_ip: Str<'a>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub country: Option<Str<'a>>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub uri: Option<Str<'a>>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub http_method: Option<Str<'a>>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub host: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub headers: Option<Headers<'a>>,
}

/// A rule match reduced to its id.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleRef<'a> {
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub rule_id: Option<Str<'a>>,
}

/// Reads `ruleGroupList` straight into the COUNT-mode matches it holds. Every record carries the
/// list (one entry per rule group in the web ACL, nearly always without matches): building a vector
/// of groups for each was a fifth of the parsing cost.
fn group_count_rules<'de: 'a, 'a, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<RuleRef<'a>>, D::Error> {
    struct Groups;
    impl<'de> Visitor<'de> for Groups {
        type Value = Vec<RuleRef<'de>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of rule groups")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_seq(self)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut rules = Vec::new();
            while seq.next_element_seed(Group(&mut rules))?.is_some() {}
            Ok(rules)
        }
    }
    d.deserialize_option(Groups)
}

/// One rule group, whose COUNT-mode matches are appended to the vector; other keys are skipped.
struct Group<'v, 'de>(&'v mut Vec<RuleRef<'de>>);

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum GroupField {
    NonTerminatingMatchingRules,
    #[serde(other)]
    Other,
}

impl<'de> DeserializeSeed<'de> for Group<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Group<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a rule group")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = false;
        while let Some(field) = map.next_key::<GroupField>()? {
            match field {
                GroupField::NonTerminatingMatchingRules if seen => {
                    return Err(de::Error::duplicate_field("nonTerminatingMatchingRules"));
                }
                GroupField::NonTerminatingMatchingRules => {
                    seen = true;
                    if let Some(rules) = map.next_value::<Option<Vec<RuleRef<'de>>>>()? {
                        self.0.extend(rules);
                    }
                }
                GroupField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// The terminating action of a request. COUNT never terminates, so it is not here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Allow,
    Block,
    Captcha,
    Challenge,
    /// Missing or unrecognised.
    Other,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Allow,
        Action::Block,
        Action::Captcha,
        Action::Challenge,
        Action::Other,
    ];

    pub fn parse(s: Option<&str>) -> Action {
        match s {
            Some(s) if s.eq_ignore_ascii_case("ALLOW") => Action::Allow,
            Some(s) if s.eq_ignore_ascii_case("BLOCK") => Action::Block,
            Some(s) if s.eq_ignore_ascii_case("CAPTCHA") => Action::Captcha,
            Some(s) if s.eq_ignore_ascii_case("CHALLENGE") => Action::Challenge,
            _ => Action::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "ALLOW",
            Action::Block => "BLOCK",
            Action::Captcha => "CAPTCHA",
            Action::Challenge => "CHALLENGE",
            Action::Other => "OTHER",
        }
    }
}

impl ScanRecord<'_> {
    pub fn action(&self) -> Action {
        Action::parse(self.action.as_deref())
    }

    /// The client address, or `None` for placeholders such as `X.X.X.X`. Uncompressed IPv6 parses too.
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.http_request.client_ip.trim().parse().ok()
    }

    /// The first header of that name (case-insensitive, as HTTP header names are). Headers other
    /// than `User-Agent` and `Host` need a record parsed with the full model (see [`Headers`]).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.http_request.headers.as_ref()?.get(name)
    }

    pub fn user_agent(&self) -> Option<&str> {
        self.http_request.headers.as_ref()?.user_agent()
    }

    /// `httpRequest.host` where logged (CloudFront, 2024+), else the `Host` header.
    pub fn host(&self) -> Option<&str> {
        self.http_request
            .host
            .as_deref()
            .or_else(|| self.http_request.headers.as_ref()?.host())
    }

    pub fn label_names(&self) -> impl Iterator<Item = &str> {
        self.labels.iter().flatten().map(|l| l.name.as_ref())
    }

    /// Rule ids matched in COUNT mode: the web ACL's non-terminating matches and those inside rule groups.
    pub fn count_rule_ids(&self) -> impl Iterator<Item = &str> {
        let top = self.non_terminating_matching_rules.iter().flatten();
        top.chain(&self.group_count_rules)
            .filter_map(|r| r.rule_id.as_deref())
    }
}
