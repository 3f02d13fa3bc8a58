//! The typed model of one AWS WAFv2 log record (formatVersion 1).
//!
//! Strings borrow from the input buffer where the JSON has no escapes (`Cow`), so a scan allocates little.
//! The model is lenient where real logs are inconsistent: unknown keys are ignored, optional fields may be
//! missing or `null`, numbers may arrive as strings (`evaluationWindowSec: "120"` in AWS's own docs), and
//! `timestamp` may be an ISO-8601 string (hand-written samples) instead of epoch milliseconds.
//! Only `timestamp` and `httpRequest.clientIp` are required: without them a record cannot be attributed.
//!
//! Sub-structures that analysis rarely reads (match details, rate-based rule lists, captcha responses, ...)
//! are kept as raw JSON ([`Lazy`]) and typed on demand: skipping them is most of what makes a scan fast.

use std::borrow::Cow;

use std::marker::PhantomData;

use serde::Deserialize;

use super::headers::Headers;
#[cfg(test)]
use super::view::Action;
use super::view::{RequestView, RuleRef, ScanRecord};
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

pub(super) type Str<'a> = Cow<'a, str>;

/// A field kept as raw JSON while scanning and parsed into `T` only when asked for.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct Lazy<'a, T> {
    #[serde(borrow)]
    raw: Option<sonic_rs::LazyValue<'a>>,
    #[serde(skip)]
    _type: PhantomData<T>,
}

impl<T> Default for Lazy<'_, T> {
    fn default() -> Self {
        Lazy {
            raw: None,
            _type: PhantomData,
        }
    }
}

impl<T: DeserializeOwned> Lazy<'_, T> {
    /// `None` when the field was missing or `null`.
    pub fn get(&self) -> Result<Option<T>, sonic_rs::Error> {
        match &self.raw {
            Some(raw) if raw.as_raw_str().trim() != "null" => {
                sonic_rs::from_str(raw.as_raw_str()).map(Some)
            }
            _ => Ok(None),
        }
    }

    pub fn is_present(&self) -> bool {
        self.raw
            .as_ref()
            .is_some_and(|r| r.as_raw_str().trim() != "null")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogRecord<'a> {
    /// Epoch milliseconds.
    #[serde(deserialize_with = "epoch_millis")]
    pub timestamp: i64,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub format_version: Option<u64>,
    #[serde(default, borrow, rename = "webaclId", deserialize_with = "opt_str")]
    pub webacl_id: Option<Str<'a>>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub terminating_rule_id: Option<Str<'a>>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub terminating_rule_type: Option<Str<'a>>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub action: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub terminating_rule_match_details: Lazy<'a, Vec<MatchDetail>>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub http_source_name: Option<Str<'a>>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub http_source_id: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub rule_group_list: Option<Vec<RuleGroup<'a>>>,
    #[serde(default, borrow)]
    pub rate_based_rule_list: Lazy<'a, Vec<RateBasedRule>>,
    /// `matchingNonTerminatingRules` is the 2018 preview-era name of the same list.
    #[serde(default, borrow, alias = "matchingNonTerminatingRules")]
    pub non_terminating_matching_rules: Option<Vec<RuleMatch<'a>>>,
    #[serde(default, borrow)]
    pub request_headers_inserted: Lazy<'a, Vec<NameValue>>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub response_code_sent: Option<u64>,
    #[serde(borrow)]
    pub http_request: HttpRequest<'a>,
    #[serde(default, borrow)]
    pub labels: Option<Vec<Label<'a>>>,
    #[serde(default, borrow)]
    pub captcha_response: Lazy<'a, ChallengeResponse>,
    #[serde(default, borrow)]
    pub challenge_response: Lazy<'a, ChallengeResponse>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub ja3_fingerprint: Option<Str<'a>>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub ja4_fingerprint: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub oversize_fields: Lazy<'a, Vec<String>>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub request_body_size: Option<u64>,
    #[serde(
        default,
        deserialize_with = "lenient_u64",
        rename = "requestBodySizeInspectedByWAF"
    )]
    pub request_body_size_inspected_by_waf: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub client_asn: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRequest<'a> {
    #[serde(borrow)]
    pub client_ip: Str<'a>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub country: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub headers: Option<Vec<Header<'a>>>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub uri: Option<Str<'a>>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub args: Option<Str<'a>>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub http_version: Option<Str<'a>>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub http_method: Option<Str<'a>>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub request_id: Option<Str<'a>>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub fragment: Option<Str<'a>>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub scheme: Option<Str<'a>>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub host: Option<Str<'a>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Header<'a> {
    #[serde(borrow)]
    pub name: Str<'a>,
    /// Missing in one AWS documentation sample (which used `myValue`); treated as empty.
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub value: Option<Str<'a>>,
}

/// A header WAF inserted into the request before forwarding it.
#[derive(Debug, Clone, Deserialize)]
pub struct NameValue {
    pub name: String,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Label<'a> {
    #[serde(borrow)]
    pub name: Str<'a>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchDetail {
    #[serde(default)]
    pub condition_type: Option<String>,
    #[serde(default)]
    pub sensitivity_level: Option<String>,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub matched_data: Option<Vec<String>>,
    #[serde(default)]
    pub matched_field_name: Option<String>,
}

/// A rule that matched: a terminating rule inside a rule group, or a non-terminating (COUNT) match.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleMatch<'a> {
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub rule_id: Option<Str<'a>>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub action: Option<Str<'a>>,
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub overridden_action: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub rule_match_details: Lazy<'a, Vec<MatchDetail>>,
    #[serde(default, borrow)]
    pub captcha_response: Lazy<'a, ChallengeResponse>,
    #[serde(default, borrow)]
    pub challenge_response: Lazy<'a, ChallengeResponse>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExcludedRule {
    #[serde(default)]
    pub exclusion_type: Option<String>,
    #[serde(default)]
    pub rule_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleGroup<'a> {
    #[serde(default, borrow, deserialize_with = "opt_str")]
    pub rule_group_id: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub terminating_rule: Option<RuleMatch<'a>>,
    #[serde(default, borrow)]
    pub non_terminating_matching_rules: Option<Vec<RuleMatch<'a>>>,
    #[serde(default, borrow)]
    pub excluded_rules: Lazy<'a, Vec<ExcludedRule>>,
    /// Undocumented shape (null, or an object describing managed rule group settings).
    #[serde(default, borrow)]
    pub customer_config: Lazy<'a, sonic_rs::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateBasedRule {
    #[serde(default)]
    pub rate_based_rule_id: Option<String>,
    #[serde(default)]
    pub rate_based_rule_name: Option<String>,
    #[serde(default)]
    pub limit_key: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub max_rate_allowed: Option<u64>,
    #[serde(default)]
    pub limit_value: Option<String>,
    /// A number in real logs, a string in the AWS documentation example.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub evaluation_window_sec: Option<u64>,
    #[serde(default)]
    pub custom_values: Option<Vec<CustomValue>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CustomValue {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeResponse {
    #[serde(default, deserialize_with = "lenient_u64")]
    pub response_code: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub solve_timestamp: Option<u64>,
    #[serde(default)]
    pub failure_reason: Option<String>,
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

/// An optional string that borrows from the input where it has no escapes. serde's own
/// `Option<Cow<str>>` always copies into a `String` (`#[serde(borrow)]` only reaches a bare `Cow`
/// field): that was an allocation for every string field of every record.
pub(super) fn opt_str<'de: 'a, 'a, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Str<'a>>, D::Error> {
    Option::<Borrowed<'a>>::deserialize(d).map(|s| s.map(|s| s.0))
}

/// A string borrowed from the input when it can be (see [`opt_str`]).
pub(super) struct Borrowed<'a>(pub Str<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for Borrowed<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(Cow::Owned(v.to_owned()))
            }
        }
        d.deserialize_str(V).map(Borrowed)
    }
}

/// Accepts epoch milliseconds (number or numeric string) or an ISO-8601 / RFC 3339 timestamp.
pub(super) fn epoch_millis<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = i64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("epoch milliseconds or an ISO-8601 timestamp")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::custom(format!("timestamp `{v}` out of range")))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
            Ok(v as i64)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
            if let Ok(n) = v.parse::<i64>() {
                return Ok(n);
            }
            v.parse::<jiff::Timestamp>()
                .map(|t| t.as_millisecond())
                .map_err(|_| E::custom(format!("invalid timestamp `{v}`")))
        }
    }
    d.deserialize_any(V)
}

/// A number, a numeric string, or (for values redacted or garbled in the wild) nothing.
pub(super) fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a number")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(u64::try_from(v).ok())
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok((v >= 0.0).then_some(v as u64))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(v.trim().parse().ok())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn window_as_string_or_number_and_unknown_keys() {
        let r = parse(
            r#"{"timestamp":1,"extra":{"x":[1]},"httpRequest":{"clientIp":"X.X.X.X","user-agent":"x"},
            "rateBasedRuleList":[{"evaluationWindowSec":"120","maxRateAllowed":100},{"evaluationWindowSec":300}]}"#,
        );
        let w: Vec<_> = r
            .rate_based_rule_list
            .get()
            .unwrap()
            .unwrap()
            .iter()
            .map(|r| r.evaluation_window_sec)
            .collect();
        assert_eq!(w, [Some(120), Some(300)]);
        assert_eq!(r.http_request.client_ip, "X.X.X.X");
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

    #[test]
    fn missing_client_ip_is_an_error() {
        let e = sonic_rs::from_str::<LogRecord>(r#"{"timestamp":1,"httpRequest":{}}"#).unwrap_err();
        assert!(e.to_string().contains("clientIp"), "{e}");
    }
}
