//! The typed model of one AWS WAFv2 log record (formatVersion 1).
//!
//! Strings borrow from the input buffer where the JSON has no escapes (`Cow`), so a scan allocates little.
//! The model is lenient where real logs are inconsistent: unknown keys are ignored, optional fields may be
//! missing or `null`, numbers may arrive as strings (`evaluationWindowSec: "120"` in AWS's own docs), and
//! `timestamp` may be an ISO-8601 string (hand-written samples) instead of epoch milliseconds.
//! Only `timestamp` and `httpRequest.clientIp` are required: without them a record cannot be attributed.

use std::borrow::Cow;
use std::net::IpAddr;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

type Str<'a> = Cow<'a, str>;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogRecord<'a> {
    /// Epoch milliseconds.
    #[serde(deserialize_with = "epoch_millis")]
    pub timestamp: i64,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub format_version: Option<u64>,
    #[serde(default, borrow, rename = "webaclId")]
    pub webacl_id: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub terminating_rule_id: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub terminating_rule_type: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub action: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub terminating_rule_match_details: Option<Vec<MatchDetail<'a>>>,
    #[serde(default, borrow)]
    pub http_source_name: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub http_source_id: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub rule_group_list: Option<Vec<RuleGroup<'a>>>,
    #[serde(default, borrow)]
    pub rate_based_rule_list: Option<Vec<RateBasedRule<'a>>>,
    /// `matchingNonTerminatingRules` is the 2018 preview-era name of the same list.
    #[serde(default, borrow, alias = "matchingNonTerminatingRules")]
    pub non_terminating_matching_rules: Option<Vec<RuleMatch<'a>>>,
    #[serde(default, borrow)]
    pub request_headers_inserted: Option<Vec<Header<'a>>>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub response_code_sent: Option<u64>,
    #[serde(borrow)]
    pub http_request: HttpRequest<'a>,
    #[serde(default, borrow)]
    pub labels: Option<Vec<Label<'a>>>,
    #[serde(default, borrow)]
    pub captcha_response: Option<ChallengeResponse<'a>>,
    #[serde(default, borrow)]
    pub challenge_response: Option<ChallengeResponse<'a>>,
    #[serde(default, borrow)]
    pub ja3_fingerprint: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub ja4_fingerprint: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub oversize_fields: Option<Vec<Str<'a>>>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub request_body_size: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64", rename = "requestBodySizeInspectedByWAF")]
    pub request_body_size_inspected_by_waf: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub client_asn: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRequest<'a> {
    #[serde(borrow)]
    pub client_ip: Str<'a>,
    #[serde(default, borrow)]
    pub country: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub headers: Option<Vec<Header<'a>>>,
    #[serde(default, borrow)]
    pub uri: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub args: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub http_version: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub http_method: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub request_id: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub fragment: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub scheme: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub host: Option<Str<'a>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Header<'a> {
    #[serde(borrow)]
    pub name: Str<'a>,
    /// Missing in one AWS documentation sample (which used `myValue`); treated as empty.
    #[serde(default, borrow)]
    pub value: Option<Str<'a>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Label<'a> {
    #[serde(borrow)]
    pub name: Str<'a>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchDetail<'a> {
    #[serde(default, borrow)]
    pub condition_type: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub sensitivity_level: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub location: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub matched_data: Option<Vec<Str<'a>>>,
    #[serde(default, borrow)]
    pub matched_field_name: Option<Str<'a>>,
}

/// A rule that matched: a terminating rule inside a rule group, or a non-terminating (COUNT) match.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleMatch<'a> {
    #[serde(default, borrow)]
    pub rule_id: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub action: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub overridden_action: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub rule_match_details: Option<Vec<MatchDetail<'a>>>,
    #[serde(default, borrow)]
    pub captcha_response: Option<ChallengeResponse<'a>>,
    #[serde(default, borrow)]
    pub challenge_response: Option<ChallengeResponse<'a>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExcludedRule<'a> {
    #[serde(default, borrow)]
    pub exclusion_type: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub rule_id: Option<Str<'a>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleGroup<'a> {
    #[serde(default, borrow)]
    pub rule_group_id: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub terminating_rule: Option<RuleMatch<'a>>,
    #[serde(default, borrow)]
    pub non_terminating_matching_rules: Option<Vec<RuleMatch<'a>>>,
    #[serde(default, borrow)]
    pub excluded_rules: Option<Vec<ExcludedRule<'a>>>,
    /// Undocumented shape (null, or an object describing managed rule group settings): kept as raw JSON.
    #[serde(default, borrow)]
    pub customer_config: Option<sonic_rs::LazyValue<'a>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateBasedRule<'a> {
    #[serde(default, borrow)]
    pub rate_based_rule_id: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub rate_based_rule_name: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub limit_key: Option<Str<'a>>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub max_rate_allowed: Option<u64>,
    #[serde(default, borrow)]
    pub limit_value: Option<Str<'a>>,
    /// A number in real logs, a string in the AWS documentation example.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub evaluation_window_sec: Option<u64>,
    #[serde(default, borrow)]
    pub custom_values: Option<Vec<CustomValue<'a>>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CustomValue<'a> {
    #[serde(default, borrow)]
    pub key: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub name: Option<Str<'a>>,
    #[serde(default, borrow)]
    pub value: Option<Str<'a>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeResponse<'a> {
    #[serde(default, deserialize_with = "lenient_u64")]
    pub response_code: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub solve_timestamp: Option<u64>,
    #[serde(default, borrow)]
    pub failure_reason: Option<Str<'a>>,
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

impl<'a> LogRecord<'a> {
    pub fn action(&self) -> Action {
        Action::parse(self.action.as_deref())
    }

    /// The client address, or `None` for placeholders such as `X.X.X.X`. Uncompressed IPv6 parses too.
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.http_request.client_ip.trim().parse().ok()
    }

    /// The first header of that name (case-insensitive, as HTTP header names are).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.http_request
            .headers
            .as_deref()?
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_deref().unwrap_or(""))
    }

    pub fn user_agent(&self) -> Option<&str> {
        self.header("user-agent")
    }

    pub fn label_names(&self) -> impl Iterator<Item = &str> {
        self.labels.iter().flatten().map(|l| l.name.as_ref())
    }

    /// Rule ids matched in COUNT mode: the web ACL's non-terminating matches and those inside rule groups.
    pub fn count_rule_ids(&self) -> impl Iterator<Item = &str> {
        let top = self.non_terminating_matching_rules.iter().flatten();
        let grouped = self
            .rule_group_list
            .iter()
            .flatten()
            .flat_map(|g| g.non_terminating_matching_rules.iter().flatten());
        top.chain(grouped).filter_map(|r| r.rule_id.as_deref())
    }
}

/// Accepts epoch milliseconds (number or numeric string) or an ISO-8601 / RFC 3339 timestamp.
fn epoch_millis<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
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
fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
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
        let r = parse(r#"{"timestamp":"2024-03-20T10:30:00.000Z","httpRequest":{"clientIp":"203.0.113.45"}}"#);
        assert_eq!(r.timestamp, 1_710_930_600_000);
        assert_eq!(r.action(), Action::Other);
        assert_eq!(r.client_ip(), Some("203.0.113.45".parse().unwrap()));
    }

    #[test]
    fn window_as_string_or_number_and_unknown_keys() {
        let r = parse(
            r#"{"timestamp":1,"extra":{"x":[1]},"httpRequest":{"clientIp":"X.X.X.X","user-agent":"x"},
            "rateBasedRuleList":[{"evaluationWindowSec":"120","maxRateAllowed":100},{"evaluationWindowSec":300}]}"#,
        );
        let w: Vec<_> = r
            .rate_based_rule_list
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
        assert_eq!(r.client_ip().unwrap().to_string(), "2001:db8:85a3::8a2e:370:7334");
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
        assert_eq!(r.action(), Action::Block);
        assert_eq!(r.user_agent(), Some("curl/8"));
        assert_eq!(r.header("x"), Some(""));
        assert_eq!(r.http_request.uri.as_deref(), Some("/a/b"));
        assert_eq!(r.count_rule_ids().collect::<Vec<_>>(), ["watch", "inner"]);
        assert_eq!(r.label_names().count(), 1);
    }

    #[test]
    fn preview_era_key_is_an_alias() {
        let r = parse(
            r#"{"timestamp":1,"httpRequest":{"clientIp":"1.2.3.4"},"matchingNonTerminatingRules":[{"ruleId":"old","action":"COUNT"}]}"#,
        );
        assert_eq!(r.count_rule_ids().collect::<Vec<_>>(), ["old"]);
    }

    #[test]
    fn missing_client_ip_is_an_error() {
        let e = sonic_rs::from_str::<LogRecord>(r#"{"timestamp":1,"httpRequest":{}}"#).unwrap_err();
        assert!(e.to_string().contains("clientIp"), "{e}");
    }
}
