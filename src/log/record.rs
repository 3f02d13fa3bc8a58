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

use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::json::{Str, epoch_millis, lenient_u64, opt_str};

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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> LogRecord<'_> {
        sonic_rs::from_str(json).unwrap()
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
    fn missing_client_ip_is_an_error() {
        let e = sonic_rs::from_str::<LogRecord>(r#"{"timestamp":1,"httpRequest":{}}"#).unwrap_err();
        assert!(e.to_string().contains("clientIp"), "{e}");
    }
}
