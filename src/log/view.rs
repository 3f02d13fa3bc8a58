//! The scan's view of a record: only the fields that analysis and policies read.
//!
//! Parsing a line straight into [`ScanRecord`] lets the JSON parser skip everything else (match
//! details, rule-group internals, request ids, ...) at SIMD speed, which is most of a scan's cost.
//! [`LogRecord::view`] produces the same value from the full model; a test
//! pins the two together on every public sample, so they cannot drift apart.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::headers::Headers;
use super::json::{Str, epoch_millis, lenient_u64, opt_str};
use super::record::{Header, Label, LogRecord, RuleMatch};

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
    /// `clientAsn`: logged only while the web ACL has an ASN match statement.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub client_asn: Option<u64>,
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

/// `a.b.c.d`, each a decimal of one to three digits without a leading zero and at most 255: a
/// subset of what `IpAddr`'s parser accepts, read to the same address. `None` for anything else,
/// which is left to that parser.
fn plain_ipv4(text: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut at = 0;
    for (k, octet) in octets.iter_mut().enumerate() {
        if k > 0 {
            if text.get(at) != Some(&b'.') {
                return None;
            }
            at += 1;
        }
        let start = at;
        let mut value: u32 = 0;
        while let Some(&digit @ b'0'..=b'9') = text.get(at) {
            if at - start == 3 {
                return None;
            }
            value = value * 10 + u32::from(digit - b'0');
            at += 1;
        }
        let digits = at - start;
        if digits == 0 || (digits > 1 && text[start] == b'0') {
            return None;
        }
        *octet = u8::try_from(value).ok()?;
    }
    (at == text.len()).then(|| Ipv4Addr::from(octets))
}

/// A `clientIp` as an address: the standard parser's answer for the trimmed text. Nearly every
/// address is IPv4 written plainly, read in one pass (the standard parser, which tries the forms
/// one after another, was 1% of a scan's cycles).
fn client_ip(text: &str) -> Option<IpAddr> {
    match plain_ipv4(text.as_bytes()) {
        Some(v4) => Some(IpAddr::V4(v4)),
        None => text.trim().parse().ok(),
    }
}

impl ScanRecord<'_> {
    pub fn action(&self) -> Action {
        Action::parse(self.action.as_deref())
    }

    /// The client address, or `None` for placeholders such as `X.X.X.X`. Uncompressed IPv6 parses too.
    pub fn client_ip(&self) -> Option<IpAddr> {
        client_ip(&self.http_request.client_ip)
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

impl<'a> LogRecord<'a> {
    /// The fields analysis and policies read, borrowed from this record; equal to what
    /// [`ScanRecord`] parses straight from the same line.
    pub fn view(&self) -> ScanRecord<'_> {
        fn b<'b>(s: &'b Option<Str<'_>>) -> Option<Str<'b>> {
            s.as_deref().map(Cow::Borrowed)
        }
        fn rule<'b>(r: &'b RuleMatch<'_>) -> RuleRef<'b> {
            RuleRef {
                rule_id: b(&r.rule_id),
            }
        }
        let req = &self.http_request;
        ScanRecord {
            timestamp: self.timestamp,
            action: b(&self.action),
            terminating_rule_id: b(&self.terminating_rule_id),
            terminating_rule_type: b(&self.terminating_rule_type),
            http_source_name: b(&self.http_source_name),
            response_code_sent: self.response_code_sent,
            ja3_fingerprint: b(&self.ja3_fingerprint),
            ja4_fingerprint: b(&self.ja4_fingerprint),
            client_asn: self.client_asn,
            labels: self.labels.as_ref().map(|ls| {
                ls.iter()
                    .map(|l| Label {
                        name: Cow::Borrowed(&l.name),
                    })
                    .collect()
            }),
            non_terminating_matching_rules: self
                .non_terminating_matching_rules
                .as_ref()
                .map(|rs| rs.iter().map(rule).collect()),
            group_count_rules: self
                .rule_group_list
                .iter()
                .flatten()
                .flat_map(|g| g.non_terminating_matching_rules.iter().flatten())
                .map(rule)
                .collect(),
            http_request: RequestView {
                client_ip: Cow::Borrowed(&req.client_ip),
                country: b(&req.country),
                uri: b(&req.uri),
                http_method: b(&req.http_method),
                host: b(&req.host),
                headers: req.headers.as_ref().map(|hs| {
                    Headers::from_list(
                        hs.iter()
                            .map(|h| Header {
                                name: Cow::Borrowed(&h.name),
                                value: b(&h.value),
                            })
                            .collect(),
                    )
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `client_ip` answered before it read plain IPv4 itself.
    fn standard(text: &str) -> Option<IpAddr> {
        text.trim().parse().ok()
    }

    #[test]
    fn client_ip_answers_as_the_standard_parser() {
        for s in [
            "0.0.0.0",
            "1.170.227.65",
            "255.255.255.255",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3.04",
            "1.2.3",
            "1.2.3.4.5",
            "1..3.4",
            " 1.2.3.4",
            "1.2.3.4 ",
            "1.2.3.4/24",
            "1234.1.1.1",
            "X.X.X.X",
            "::ffff:192.0.2.1",
            "2001:db8::1",
            "",
        ] {
            assert_eq!(client_ip(s), standard(s), "`{s}`");
        }
        assert_eq!(
            plain_ipv4(b"1.170.227.65"),
            Some(Ipv4Addr::new(1, 170, 227, 65))
        );
        // Left to the standard parser: IPv6, and anything with spaces around it.
        assert_eq!(plain_ipv4(b"::ffff:192.0.2.1"), None);
        assert_eq!(plain_ipv4(b" 1.2.3.4"), None);
    }

    proptest::proptest! {
        #[test]
        fn client_ip_reads_dotted_numbers_as_the_standard_parser(
            parts in proptest::collection::vec((0u32..1000, 0usize..3), 3..6),
        ) {
            // Octets in range or not, some with leading zeros, three to five of them.
            let s = parts
                .iter()
                .map(|&(n, zeros)| format!("{}{n}", "0".repeat(zeros)))
                .collect::<Vec<_>>()
                .join(".");
            proptest::prop_assert_eq!(client_ip(&s), standard(&s), "`{}`", s);
        }

        #[test]
        fn client_ip_answers_as_the_standard_parser_on_any_text(s in "[0-9a-f.: ]{0,20}") {
            proptest::prop_assert_eq!(client_ip(&s), standard(&s));
            if !s.contains(' ') && plain_ipv4(s.as_bytes()).is_none() {
                // Without spaces, no IPv4 form is left to the standard parser.
                proptest::prop_assert!(!matches!(standard(&s), Some(IpAddr::V4(_))));
            }
        }
    }

    fn parse(json: &str) -> LogRecord<'_> {
        sonic_rs::from_str(json).unwrap()
    }

    #[test]
    fn minimal_record_with_iso_timestamp() {
        let r = parse(
            r#"{"timestamp":"2024-03-20T10:30:00.000Z","httpRequest":{"clientIp":"203.0.113.45"}}"#,
        );
        assert_eq!(r.timestamp, 1_710_930_600_000);
        assert_eq!(r.view().action(), Action::Other);
        assert_eq!(r.view().client_ip(), Some("203.0.113.45".parse().unwrap()));
    }

    #[test]
    fn uncompressed_ipv6_parses() {
        let r = parse(
            r#"{"timestamp":1,"httpRequest":{"clientIp":"2001:0db8:85a3:0000:0000:8a2e:0370:7334"}}"#,
        );
        assert_eq!(
            r.view().client_ip().unwrap().to_string(),
            "2001:db8:85a3::8a2e:370:7334"
        );
    }

    #[test]
    fn headers_labels_and_count_rules() {
        let r = parse(
            r#"{"timestamp":1,"action":"BLOCK","httpRequest":{"clientIp":"1.2.3.4","uri":"\/a\/b",
            "headers":[{"name":"user-agent","value":"curl/8"},{"name":"X","myValue":"v"}]},
            "labels":[{"name":"awswaf:managed:aws:bot-control:bot:verified"}],
            "nonTerminatingMatchingRules":[{"ruleId":"watch","action":"COUNT"}],
            "ruleGroupList":[{"ruleGroupId":"g","terminatingRule":null,"nonTerminatingMatchingRules":[{"ruleId":"inner","action":"COUNT"}],"excludedRules":null,"customerConfig":{"a":1}}]}"#,
        );
        assert_eq!(r.view().action(), Action::Block);
        assert_eq!(r.view().user_agent(), Some("curl/8"));
        assert_eq!(r.view().header("x"), Some(""));
        assert_eq!(r.http_request.uri.as_deref(), Some("/a/b"));
        assert_eq!(
            r.view().count_rule_ids().collect::<Vec<_>>(),
            ["watch", "inner"]
        );
        assert_eq!(r.view().label_names().count(), 1);
    }

    #[test]
    fn preview_era_key_is_an_alias() {
        let r = parse(
            r#"{"timestamp":1,"httpRequest":{"clientIp":"1.2.3.4"},"matchingNonTerminatingRules":[{"ruleId":"old","action":"COUNT"}]}"#,
        );
        assert_eq!(r.view().count_rule_ids().collect::<Vec<_>>(), ["old"]);
    }
}
