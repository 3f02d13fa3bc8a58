//! Pure conversion between waftune's WAF types and the AWS SDK's: the rules waftune writes, the
//! shapes it recognises when reading them back, and the capacity of statements. No I/O.

use aws_sdk_wafv2 as sdk;

use crate::model::acl::ContentType;
use crate::model::waf::{BlockResponse, RateKey, RateStatement, RuleAction, ScopeDown};
use crate::waf::capacity::cost;
use crate::waf::{AsnRule, IpSetRule, ManagedRule, PutRule, RateRule, RuleShape};

pub(super) fn content_type_to_sdk(c: ContentType) -> sdk::types::ResponseContentType {
    match c {
        ContentType::TextPlain => sdk::types::ResponseContentType::TextPlain,
        ContentType::TextHtml => sdk::types::ResponseContentType::TextHtml,
        ContentType::ApplicationJson => sdk::types::ResponseContentType::ApplicationJson,
    }
}

pub(super) fn content_type_from_sdk(c: &sdk::types::ResponseContentType) -> Option<ContentType> {
    match c {
        sdk::types::ResponseContentType::TextPlain => Some(ContentType::TextPlain),
        sdk::types::ResponseContentType::TextHtml => Some(ContentType::TextHtml),
        sdk::types::ResponseContentType::ApplicationJson => Some(ContentType::ApplicationJson),
        _ => None,
    }
}

/// The SDK rule waftune writes for `put`.
pub(super) fn sdk_rule(put: &PutRule) -> Result<sdk::types::Rule, sdk::error::BuildError> {
    let (statement, action, metric_name, sampled, cloudwatch) = match &put.rule {
        ManagedRule::IpSet(r) => (
            ip_sets_statement(&r.set_arns)?,
            &r.action,
            &r.metric_name,
            r.sampled_requests,
            r.cloudwatch_metrics,
        ),
        ManagedRule::Rate(r) => (
            rate_statement(&r.statement)?,
            &r.action,
            &r.metric_name,
            r.sampled_requests,
            r.cloudwatch_metrics,
        ),
        ManagedRule::Asn(r) => (
            asn_statement(&r.asns)?,
            &r.action,
            &r.metric_name,
            r.sampled_requests,
            r.cloudwatch_metrics,
        ),
    };
    let action = match action {
        RuleAction::Count => sdk::types::RuleAction::builder()
            .count(sdk::types::CountAction::builder().build())
            .build(),
        RuleAction::Block { response } => {
            let mut block = sdk::types::BlockAction::builder();
            if let Some(r) = response {
                block = block.custom_response(
                    sdk::types::CustomResponse::builder()
                        .response_code(i32::from(r.code))
                        .custom_response_body_key(&r.body_key)
                        .build()?,
                );
            }
            sdk::types::RuleAction::builder()
                .block(block.build())
                .build()
        }
    };
    sdk::types::Rule::builder()
        .name(&put.name)
        .priority(put.priority)
        .statement(statement)
        .action(action)
        .visibility_config(
            sdk::types::VisibilityConfig::builder()
                .sampled_requests_enabled(sampled)
                .cloud_watch_metrics_enabled(cloudwatch)
                .metric_name(metric_name)
                .build()?,
        )
        .build()
}

/// Joins statements: one stands alone, more need an And/Or statement (which wants at least two).
fn joined(
    mut statements: Vec<sdk::types::Statement>,
    or: bool,
) -> Result<sdk::types::Statement, sdk::error::BuildError> {
    if statements.len() == 1 {
        return Ok(statements.remove(0));
    }
    let builder = sdk::types::Statement::builder();
    Ok(if or {
        builder.or_statement(
            sdk::types::OrStatement::builder()
                .set_statements(Some(statements))
                .build()?,
        )
    } else {
        builder.and_statement(
            sdk::types::AndStatement::builder()
                .set_statements(Some(statements))
                .build()?,
        )
    }
    .build())
}

fn ip_sets_statement(arns: &[String]) -> Result<sdk::types::Statement, sdk::error::BuildError> {
    let references = arns
        .iter()
        .map(|arn| {
            let reference = sdk::types::IpSetReferenceStatement::builder()
                .arn(arn)
                .build()?;
            Ok(sdk::types::Statement::builder()
                .ip_set_reference_statement(reference)
                .build())
        })
        .collect::<Result<Vec<_>, sdk::error::BuildError>>()?;
    joined(references, true)
}

fn asn_statement(asns: &[u32]) -> Result<sdk::types::Statement, sdk::error::BuildError> {
    let list = asns.iter().map(|&a| i64::from(a)).collect();
    Ok(sdk::types::Statement::builder()
        .asn_match_statement(
            sdk::types::AsnMatchStatement::builder()
                .set_asn_list(Some(list))
                .build()?,
        )
        .build())
}

fn rate_statement(r: &RateStatement) -> Result<sdk::types::Statement, sdk::error::BuildError> {
    let mut rate = sdk::types::RateBasedStatement::builder()
        .limit(i64::try_from(r.limit).unwrap_or(i64::MAX))
        .evaluation_window_sec(i64::from(r.window_sec));
    rate = match &r.key {
        RateKey::Ip => rate.aggregate_key_type(sdk::types::RateBasedStatementAggregateKeyType::Ip),
        RateKey::ForwardedIp {
            header,
            fallback_match,
        } => rate
            .aggregate_key_type(sdk::types::RateBasedStatementAggregateKeyType::ForwardedIp)
            .forwarded_ip_config(
                sdk::types::ForwardedIpConfig::builder()
                    .header_name(header)
                    .fallback_behavior(if *fallback_match {
                        sdk::types::FallbackBehavior::Match
                    } else {
                        sdk::types::FallbackBehavior::NoMatch
                    })
                    .build()?,
            ),
        RateKey::Asn => rate
            .aggregate_key_type(sdk::types::RateBasedStatementAggregateKeyType::CustomKeys)
            .custom_keys(
                sdk::types::RateBasedStatementCustomKey::builder()
                    .asn(sdk::types::RateLimitAsn::builder().build())
                    .build(),
            ),
    };
    if !r.scope_down.is_empty() {
        let parts = r
            .scope_down
            .iter()
            .map(scope_down_statement)
            .collect::<Result<Vec<_>, _>>()?;
        rate = rate.scope_down_statement(joined(parts, false)?);
    }
    Ok(sdk::types::Statement::builder()
        .rate_based_statement(rate.build()?)
        .build())
}

fn scope_down_statement(s: &ScopeDown) -> Result<sdk::types::Statement, sdk::error::BuildError> {
    let byte_match = |field: sdk::types::FieldToMatch,
                      text: &str,
                      constraint: sdk::types::PositionalConstraint| {
        sdk::types::ByteMatchStatement::builder()
            .search_string(sdk::primitives::Blob::new(text.as_bytes()))
            .field_to_match(field)
            .text_transformations(
                sdk::types::TextTransformation::builder()
                    .priority(0)
                    .r#type(sdk::types::TextTransformationType::None)
                    .build()?,
            )
            .positional_constraint(constraint)
            .build()
    };
    let not = |inner: sdk::types::Statement, negate: bool| {
        if !negate {
            return Ok::<_, sdk::error::BuildError>(inner);
        }
        Ok(sdk::types::Statement::builder()
            .not_statement(sdk::types::NotStatement::builder().statement(inner).build())
            .build())
    };
    let statement = sdk::types::Statement::builder();
    match s {
        ScopeDown::Asn(asns) => asn_statement(asns),
        ScopeDown::Country { countries, negate } => not(
            statement
                .geo_match_statement(
                    sdk::types::GeoMatchStatement::builder()
                        .set_country_codes(Some(
                            countries
                                .iter()
                                .map(|c| sdk::types::CountryCode::from(c.as_str()))
                                .collect(),
                        ))
                        .build(),
                )
                .build(),
            *negate,
        ),
        ScopeDown::PathPrefix(prefix) => Ok(statement
            .byte_match_statement(byte_match(
                sdk::types::FieldToMatch::builder()
                    .uri_path(sdk::types::UriPath::builder().build())
                    .build(),
                prefix,
                sdk::types::PositionalConstraint::StartsWith,
            )?)
            .build()),
        ScopeDown::Method(method) => Ok(statement
            .byte_match_statement(byte_match(
                sdk::types::FieldToMatch::builder()
                    .method(sdk::types::Method::builder().build())
                    .build(),
                method,
                sdk::types::PositionalConstraint::Exactly,
            )?)
            .build()),
        ScopeDown::Label {
            key,
            namespace,
            negate,
        } => not(
            statement
                .label_match_statement(
                    sdk::types::LabelMatchStatement::builder()
                        .scope(if *namespace {
                            sdk::types::LabelMatchScope::Namespace
                        } else {
                            sdk::types::LabelMatchScope::Label
                        })
                        .key(key)
                        .build()?,
                )
                .build(),
            *negate,
        ),
    }
}

/// Recognises the rules waftune writes: a rule is [`RuleShape::IpSetMatch`] or
/// [`RuleShape::RateBased`] only if rebuilding it from the parsed shape gives back exactly the same
/// rule, so no field waftune does not model can be lost.
pub(super) fn shape_of(rule: &sdk::types::Rule) -> RuleShape {
    let other = || RuleShape::Other {
        summary: format!("{rule:?}"),
    };
    let Some(parsed) = parse_managed_rule(rule) else {
        return other();
    };
    let put = PutRule {
        name: rule.name().to_owned(),
        priority: rule.priority(),
        rule: parsed,
    };
    match sdk_rule(&put) {
        Ok(rebuilt) if &rebuilt == rule => put.rule.shape(),
        _ => other(),
    }
}

/// A loose reading of a rule in one of waftune's shapes; [`shape_of`] checks it exactly.
fn parse_managed_rule(rule: &sdk::types::Rule) -> Option<ManagedRule> {
    let statement = rule.statement()?;
    let action = rule.action()?;
    let action = match (action.block(), action.count()) {
        (Some(block), None) => RuleAction::Block {
            response: match block.custom_response() {
                Some(r) => Some(BlockResponse {
                    code: u16::try_from(r.response_code()).ok()?,
                    body_key: r.custom_response_body_key()?.to_owned(),
                }),
                None => None,
            },
        },
        (None, Some(_)) => RuleAction::Count,
        _ => return None,
    };
    let visibility = rule.visibility_config()?;
    let metric_name = visibility.metric_name().to_owned();
    let sampled_requests = visibility.sampled_requests_enabled();
    let cloudwatch_metrics = visibility.cloud_watch_metrics_enabled();
    if let Some(rate) = statement.rate_based_statement() {
        let key = match rate.aggregate_key_type() {
            sdk::types::RateBasedStatementAggregateKeyType::Ip => RateKey::Ip,
            sdk::types::RateBasedStatementAggregateKeyType::ForwardedIp => {
                let config = rate.forwarded_ip_config()?;
                RateKey::ForwardedIp {
                    header: config.header_name().to_owned(),
                    fallback_match: config.fallback_behavior()
                        == &sdk::types::FallbackBehavior::Match,
                }
            }
            sdk::types::RateBasedStatementAggregateKeyType::CustomKeys => {
                match rate.custom_keys() {
                    [only] if only.asn().is_some() => RateKey::Asn,
                    _ => return None,
                }
            }
            _ => return None,
        };
        let scope_down = match rate.scope_down_statement() {
            None => Vec::new(),
            Some(s) => match s.and_statement() {
                Some(and) => and
                    .statements()
                    .iter()
                    .map(parse_scope_down)
                    .collect::<Option<_>>()?,
                None => vec![parse_scope_down(s)?],
            },
        };
        return Some(ManagedRule::Rate(RateRule {
            statement: RateStatement {
                limit: u64::try_from(rate.limit()).ok()?,
                window_sec: u32::try_from(rate.evaluation_window_sec()).ok()?,
                key,
                scope_down,
            },
            action,
            metric_name,
            sampled_requests,
            cloudwatch_metrics,
        }));
    }
    if let Some(asn) = statement.asn_match_statement() {
        return Some(ManagedRule::Asn(AsnRule {
            asns: asn
                .asn_list()
                .iter()
                .map(|&a| u32::try_from(a).ok())
                .collect::<Option<_>>()?,
            action,
            metric_name,
            sampled_requests,
            cloudwatch_metrics,
        }));
    }
    let set_arns: Vec<String> = match (
        statement.ip_set_reference_statement(),
        statement.or_statement(),
    ) {
        (Some(reference), None) => vec![reference.arn().to_owned()],
        (None, Some(or)) => or
            .statements()
            .iter()
            .map(|s| s.ip_set_reference_statement().map(|r| r.arn().to_owned()))
            .collect::<Option<_>>()?,
        _ => return None,
    };
    Some(ManagedRule::IpSet(IpSetRule {
        set_arns,
        action,
        metric_name,
        sampled_requests,
        cloudwatch_metrics,
    }))
}

fn parse_scope_down(s: &sdk::types::Statement) -> Option<ScopeDown> {
    let (inner, negate) = match s.not_statement() {
        Some(not) => (not.statement()?, true),
        None => (s, false),
    };
    if let Some(geo) = inner.geo_match_statement() {
        return Some(ScopeDown::Country {
            countries: geo
                .country_codes()
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
            negate,
        });
    }
    if let Some(asn) = inner.asn_match_statement().filter(|_| !negate) {
        return Some(ScopeDown::Asn(
            asn.asn_list()
                .iter()
                .map(|&a| u32::try_from(a).ok())
                .collect::<Option<_>>()?,
        ));
    }
    if let Some(label) = inner.label_match_statement() {
        return Some(ScopeDown::Label {
            key: label.key().to_owned(),
            namespace: label.scope() == &sdk::types::LabelMatchScope::Namespace,
            negate,
        });
    }
    let byte = inner.byte_match_statement().filter(|_| !negate)?;
    let text = String::from_utf8(byte.search_string().as_ref().to_vec()).ok()?;
    let field = byte.field_to_match()?;
    if field.uri_path().is_some() {
        Some(ScopeDown::PathPrefix(text))
    } else if field.method().is_some() {
        Some(ScopeDown::Method(text))
    } else {
        None
    }
}

/// A statement's capacity from WAF's published costs; `None` for rule groups, whose cost only AWS
/// knows. Field-to-match surcharges (all query arguments, JSON bodies) are not modelled: AWS's own
/// `Capacity` is preferred whenever `GetWebACL` reports a plausible one.
pub(super) fn statement_wcu(s: &sdk::types::Statement) -> Option<u64> {
    let transforms = |t: &[sdk::types::TextTransformation]| {
        let priced = t
            .iter()
            .filter(|t| t.r#type() != &sdk::types::TextTransformationType::None)
            .count();
        cost::TEXT_TRANSFORMATION * priced as u64
    };
    let all = |list: &[sdk::types::Statement]| list.iter().map(statement_wcu).sum::<Option<u64>>();
    if let Some(b) = s.byte_match_statement() {
        let base = match b.positional_constraint() {
            sdk::types::PositionalConstraint::Contains
            | sdk::types::PositionalConstraint::ContainsWord => cost::BYTE_MATCH_CONTAINS,
            _ => cost::BYTE_MATCH_ANCHORED,
        };
        return Some(base + transforms(b.text_transformations()));
    }
    if let Some(q) = s.sqli_match_statement() {
        let base = match q.sensitivity_level() {
            Some(sdk::types::SensitivityLevel::High) => cost::SQLI_HIGH,
            _ => cost::SQLI_LOW,
        };
        return Some(base + transforms(q.text_transformations()));
    }
    if let Some(x) = s.xss_match_statement() {
        return Some(cost::XSS + transforms(x.text_transformations()));
    }
    if let Some(c) = s.size_constraint_statement() {
        return Some(cost::SIZE_CONSTRAINT + transforms(c.text_transformations()));
    }
    if let Some(r) = s.regex_pattern_set_reference_statement() {
        return Some(cost::REGEX_PATTERN_SET + transforms(r.text_transformations()));
    }
    if let Some(r) = s.regex_match_statement() {
        return Some(cost::REGEX_MATCH + transforms(r.text_transformations()));
    }
    if let Some(rate) = s.rate_based_statement() {
        let scope_down = rate.scope_down_statement().map_or(Some(0), statement_wcu)?;
        return Some(
            cost::RATE_BASED + cost::RATE_CUSTOM_KEY * rate.custom_keys().len() as u64 + scope_down,
        );
    }
    if let Some(and) = s.and_statement() {
        return all(and.statements());
    }
    if let Some(or) = s.or_statement() {
        return all(or.statements());
    }
    if let Some(not) = s.not_statement() {
        return not.statement().and_then(statement_wcu);
    }
    if s.geo_match_statement().is_some() {
        return Some(cost::GEO_MATCH);
    }
    if s.ip_set_reference_statement().is_some() {
        return Some(cost::IP_SET_REFERENCE);
    }
    if s.label_match_statement().is_some() {
        return Some(cost::LABEL_MATCH);
    }
    if s.asn_match_statement().is_some() {
        return Some(cost::ASN_MATCH);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(arns: &[&str], action: RuleAction) -> PutRule {
        PutRule {
            name: "waftune-blocklist".into(),
            priority: 3,
            rule: ManagedRule::IpSet(IpSetRule {
                set_arns: arns.iter().map(|s| s.to_string()).collect(),
                action,
                metric_name: "waftune-blocklist".into(),
                sampled_requests: true,
                cloudwatch_metrics: true,
            }),
        }
    }

    fn rate(key: RateKey, scope_down: Vec<ScopeDown>, action: RuleAction) -> PutRule {
        PutRule {
            name: "waftune-rate".into(),
            priority: 7,
            rule: ManagedRule::Rate(RateRule {
                statement: RateStatement {
                    limit: 300,
                    window_sec: 120,
                    key,
                    scope_down,
                },
                action,
                metric_name: "waftune-rate".into(),
                sampled_requests: true,
                cloudwatch_metrics: true,
            }),
        }
    }

    #[test]
    fn written_rate_rules_are_recognised_and_priced() {
        let overseas = ScopeDown::Country {
            countries: vec!["JP".into()],
            negate: true,
        };
        let not_verified = ScopeDown::Label {
            key: "awswaf:managed:aws:bot-control:bot:verified".into(),
            namespace: false,
            negate: true,
        };
        let block = RuleAction::Block {
            response: Some(BlockResponse {
                code: 403,
                body_key: "slow-down".into(),
            }),
        };
        let forwarded = RateKey::ForwardedIp {
            header: "X-Forwarded-For".into(),
            fallback_match: false,
        };
        for (p, wcu) in [
            (rate(RateKey::Ip, vec![], RuleAction::Count), 2),
            (rate(RateKey::Ip, vec![overseas.clone()], block.clone()), 3),
            (
                rate(
                    forwarded,
                    vec![
                        overseas,
                        ScopeDown::PathPrefix("/api/".into()),
                        ScopeDown::Method("POST".into()),
                        not_verified,
                        ScopeDown::Label {
                            key: "awswaf:managed:aws:bot-control:bot:".into(),
                            namespace: true,
                            negate: false,
                        },
                    ],
                    block,
                ),
                2 + 1 + 2 + 2 + 1 + 1,
            ),
        ] {
            let rule = sdk_rule(&p).unwrap();
            assert_eq!(shape_of(&rule), p.rule.shape());
            assert_eq!(statement_wcu(rule.statement().unwrap()), Some(wcu));
            assert_eq!(p.rule.wcu(), wcu);
        }
    }

    #[test]
    fn written_asn_rules_are_recognised_and_priced() {
        let block = RuleAction::Block { response: None };
        let asn_match = PutRule {
            name: "waftune-asn".into(),
            priority: 2,
            rule: ManagedRule::Asn(AsnRule {
                asns: vec![64496, 4_294_967_295],
                action: block.clone(),
                metric_name: "waftune-asn".into(),
                sampled_requests: true,
                cloudwatch_metrics: true,
            }),
        };
        let rule = sdk_rule(&asn_match).unwrap();
        let list = rule.statement().unwrap().asn_match_statement().unwrap();
        assert_eq!(list.asn_list(), [64496, 4_294_967_295]);
        assert_eq!(shape_of(&rule), asn_match.rule.shape());
        assert_eq!(statement_wcu(rule.statement().unwrap()), Some(1));
        let per_asn = rate(
            RateKey::Asn,
            vec![ScopeDown::Asn(vec![64496, 64511])],
            block,
        );
        let rule = sdk_rule(&per_asn).unwrap();
        let statement = rule.statement().unwrap().rate_based_statement().unwrap();
        assert_eq!(
            statement.aggregate_key_type(),
            &sdk::types::RateBasedStatementAggregateKeyType::CustomKeys
        );
        assert!(statement.custom_keys()[0].asn().is_some());
        assert_eq!(shape_of(&rule), per_asn.rule.shape());
        assert_eq!(statement_wcu(rule.statement().unwrap()), Some(2 + 30 + 1));
        assert_eq!(per_asn.rule.wcu(), 2 + 30 + 1);
    }

    #[test]
    fn rule_groups_have_no_local_price() {
        let group = sdk::types::Statement::builder()
            .managed_rule_group_statement(
                sdk::types::ManagedRuleGroupStatement::builder()
                    .vendor_name("AWS")
                    .name("AWSManagedRulesCommonRuleSet")
                    .build()
                    .unwrap(),
            )
            .build();
        assert_eq!(statement_wcu(&group), None);
        let sqli = sdk::types::Statement::builder()
            .sqli_match_statement(
                sdk::types::SqliMatchStatement::builder()
                    .field_to_match(
                        sdk::types::FieldToMatch::builder()
                            .body(sdk::types::Body::builder().build())
                            .build(),
                    )
                    .text_transformations(
                        sdk::types::TextTransformation::builder()
                            .priority(0)
                            .r#type(sdk::types::TextTransformationType::UrlDecode)
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            )
            .build();
        assert_eq!(statement_wcu(&sqli), Some(20 + 10));
    }

    #[test]
    fn written_rules_are_recognised() {
        let block = RuleAction::Block {
            response: Some(BlockResponse {
                code: 403,
                body_key: "blocked".into(),
            }),
        };
        for p in [
            put(&["arn:a", "arn:b"], block.clone()),
            put(&["arn:a"], block),
            put(&["arn:a", "arn:b", "arn:c"], RuleAction::Count),
            put(&["arn:a", "arn:b"], RuleAction::Block { response: None }),
        ] {
            let rule = sdk_rule(&p).unwrap();
            assert_eq!(shape_of(&rule), p.rule.shape());
        }
    }

    #[test]
    fn anything_more_is_opaque() {
        let mut rule = sdk_rule(&put(&["arn:a", "arn:b"], RuleAction::Count)).unwrap();
        rule.rule_labels = Some(vec![
            sdk::types::Label::builder().name("x").build().unwrap(),
        ]);
        assert!(
            matches!(shape_of(&rule), RuleShape::Other { summary } if summary.contains("rule_labels"))
        );

        let mut forwarded = sdk_rule(&put(&["arn:a"], RuleAction::Count)).unwrap();
        let statement = forwarded.statement.as_mut().unwrap();
        statement
            .ip_set_reference_statement
            .as_mut()
            .unwrap()
            .ip_set_forwarded_ip_config = Some(
            sdk::types::IpSetForwardedIpConfig::builder()
                .header_name("X-Forwarded-For")
                .fallback_behavior(sdk::types::FallbackBehavior::Match)
                .position(sdk::types::ForwardedIpPosition::First)
                .build()
                .unwrap(),
        );
        assert!(matches!(shape_of(&forwarded), RuleShape::Other { .. }));
    }
}
