//! Rules in the JSON shape of WAF's API, for review: the live rule a change replaces and the rule
//! waftune will write.

use serde_json::{Value, json};

use super::{PlannedRule, PlannedStatement, RuleBefore};
use crate::model::waf::{RateKey, RateStatement, RuleAction, ScopeDown};
use crate::waf::{LiveRule, RuleShape};

/// A live rule as WAF's JSON when it has one of waftune's shapes, else its summary.
pub(super) fn live_rule_json(r: &LiveRule) -> RuleBefore {
    let (statement, action, metric_name, visibility) = match &r.shape {
        RuleShape::IpSetMatch(m) => (
            ip_sets_json(&m.set_arns),
            &m.action,
            &m.metric_name,
            (m.sampled_requests, m.cloudwatch_metrics),
        ),
        RuleShape::RateBased(m) => (
            rate_json(&m.statement),
            &m.action,
            &m.metric_name,
            (m.sampled_requests, m.cloudwatch_metrics),
        ),
        RuleShape::AsnMatch(m) => (
            asn_json(&m.asns),
            &m.action,
            &m.metric_name,
            (m.sampled_requests, m.cloudwatch_metrics),
        ),
        RuleShape::Other { summary } => return RuleBefore::Opaque(summary.clone()),
    };
    RuleBefore::Rule(rule_json(
        &r.name,
        r.priority,
        statement,
        action,
        metric_name,
        visibility,
    ))
}

impl PlannedRule {
    /// The rule in WAF's JSON shape, with sets created by the plan shown as "known after apply".
    pub fn to_json(&self) -> Value {
        let statement = match &self.statement {
            PlannedStatement::IpSets { sets } => {
                let refs: Vec<String> = sets
                    .iter()
                    .map(|s| {
                        s.arn
                            .clone()
                            .unwrap_or_else(|| format!("(known after apply: IP set {})", s.name))
                    })
                    .collect();
                ip_sets_json(&refs)
            }
            PlannedStatement::RateBased(s) => rate_json(s),
            PlannedStatement::AsnMatch { asns } => asn_json(asns),
        };
        rule_json(
            &self.name,
            self.priority,
            statement,
            &self.action,
            &self.metric_name,
            (true, true),
        )
    }
}

fn ip_sets_json(set_refs: &[String]) -> Value {
    let references: Vec<Value> = set_refs
        .iter()
        .map(|arn| json!({ "IPSetReferenceStatement": { "ARN": arn } }))
        .collect();
    joined_json(references, "OrStatement")
}

fn joined_json(statements: Vec<Value>, join: &str) -> Value {
    match <[Value; 1]>::try_from(statements) {
        Ok([single]) => single,
        Err(many) => json!({ join: { "Statements": many } }),
    }
}

fn asn_json(asns: &[u32]) -> Value {
    json!({ "AsnMatchStatement": { "AsnList": asns } })
}

fn rate_json(s: &RateStatement) -> Value {
    let mut rate = json!({
        "Limit": s.limit,
        "EvaluationWindowSec": s.window_sec,
        "AggregateKeyType": match s.key {
            RateKey::Ip => "IP",
            RateKey::ForwardedIp { .. } => "FORWARDED_IP",
            RateKey::Asn => "CUSTOM_KEYS",
        },
    });
    if s.key == RateKey::Asn {
        rate["CustomKeys"] = json!([{ "ASN": {} }]);
    }
    if let RateKey::ForwardedIp {
        header,
        fallback_match,
    } = &s.key
    {
        rate["ForwardedIPConfig"] = json!({
            "HeaderName": header,
            "FallbackBehavior": if *fallback_match { "MATCH" } else { "NO_MATCH" },
        });
    }
    if !s.scope_down.is_empty() {
        let parts = s.scope_down.iter().map(scope_down_json).collect();
        rate["ScopeDownStatement"] = joined_json(parts, "AndStatement");
    }
    json!({ "RateBasedStatement": rate })
}

fn scope_down_json(s: &ScopeDown) -> Value {
    let not = |inner: Value, negate: bool| {
        if negate {
            json!({ "NotStatement": { "Statement": inner } })
        } else {
            inner
        }
    };
    let byte_match = |field: &str, text: &str, constraint: &str| {
        json!({ "ByteMatchStatement": {
            "SearchString": text,
            "FieldToMatch": { field: {} },
            "TextTransformations": [{ "Priority": 0, "Type": "NONE" }],
            "PositionalConstraint": constraint,
        } })
    };
    match s {
        ScopeDown::Asn(asns) => asn_json(asns),
        ScopeDown::Country { countries, negate } => not(
            json!({ "GeoMatchStatement": { "CountryCodes": countries } }),
            *negate,
        ),
        ScopeDown::PathPrefix(p) => byte_match("UriPath", p, "STARTS_WITH"),
        ScopeDown::Method(m) => byte_match("Method", m, "EXACTLY"),
        ScopeDown::Label {
            key,
            namespace,
            negate,
        } => not(
            json!({ "LabelMatchStatement": {
                "Scope": if *namespace { "NAMESPACE" } else { "LABEL" },
                "Key": key,
            } }),
            *negate,
        ),
    }
}

/// A rule in the JSON shape of WAF's API, so a reviewer sees what the console and CLI show.
fn rule_json(
    name: &str,
    priority: i32,
    statement: Value,
    action: &RuleAction,
    metric_name: &str,
    (sampled, cloudwatch): (bool, bool),
) -> Value {
    let action = match action {
        RuleAction::Count => json!({ "Count": {} }),
        RuleAction::Block { response: None } => json!({ "Block": {} }),
        RuleAction::Block { response: Some(r) } => json!({ "Block": { "CustomResponse": {
            "ResponseCode": r.code, "CustomResponseBodyKey": r.body_key } } }),
    };
    json!({
        "Name": name,
        "Priority": priority,
        "Statement": statement,
        "Action": action,
        "VisibilityConfig": {
            "SampledRequestsEnabled": sampled,
            "CloudWatchMetricsEnabled": cloudwatch,
            "MetricName": metric_name,
        },
    })
}
