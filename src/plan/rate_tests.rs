//! Plans of managed rate-based rules against the in-memory WAF.

use std::collections::BTreeMap;

use super::tests::{CONFIG, apply_ok, at, config, try_plan_with};
use super::*;
use crate::config::Config;
use crate::ledger::Ledger;
use crate::model::waf::{BlockResponse, RuleAction, ScopeDown};
use crate::render::plan as render;
use crate::waf::fake::FakeWaf;

const RATE_RULE: &str = r#"
[[web_acl.rate_rule]]
name = "waftune-rate"
priority = 20
limit = LIMIT
window = "2m"
scope = ["overseas", "path:/api/", "not-label:awswaf:managed:aws:bot-control:bot:verified"]
action = "ACTION"
"#;

/// The test configuration with a home country and one rate rule (`limit` is TOML: a number or
/// `"recommended"`).
fn rate_config(limit: &str, action: &str) -> Config {
    rate_config_with(limit, action, "")
}

/// As [`rate_config`], with more TOML after the rule (its response, say).
fn rate_config_with(limit: &str, action: &str, more: &str) -> Config {
    let rule = RATE_RULE.replace("LIMIT", limit).replace("ACTION", action);
    // The rate rule belongs to the web ACL, so it goes before `[guardrails]`.
    let text = format!("home_country = \"JP\"\n{CONFIG}")
        .replace("[guardrails]", &format!("{rule}{more}\n[guardrails]"));
    config(&text)
}

async fn plan(waf: &FakeWaf, config: &Config) -> Result<Plan, PlanError> {
    try_plan_with(waf, config, &Ledger::default(), at(2), &BTreeMap::new()).await
}

fn acl_change(plan: &Plan) -> Option<&WebAclChange> {
    plan.changes.iter().find_map(|c| match c {
        ResourceChange::WebAcl(c) => Some(c),
        ResourceChange::IpSet(_) => None,
    })
}

fn rate_change(plan: &Plan) -> &RuleChange {
    acl_change(plan)
        .and_then(|c| c.rules.iter().find(|r| r.name == "waftune-rate"))
        .expect("the rate rule changes")
}

#[tokio::test]
async fn a_rate_rule_is_added_priced_and_then_in_place() {
    let waf = FakeWaf::new();
    let config = rate_config("300", "count");
    let first = plan(&waf, &config).await.unwrap();
    let change = rate_change(&first);
    assert_eq!(change.before, None);
    assert!(!change.resets_counters);
    let PlannedStatement::RateBased(statement) = &change.after.statement else {
        panic!("a rate-based statement");
    };
    assert_eq!((statement.limit, statement.window_sec), (300, 120));
    assert_eq!(
        statement.scope_down,
        [
            ScopeDown::Country {
                countries: vec!["JP".into()],
                negate: true
            },
            ScopeDown::PathPrefix("/api/".into()),
            ScopeDown::Label {
                key: "awswaf:managed:aws:bot-control:bot:verified".into(),
                namespace: false,
                negate: true
            },
        ]
    );
    // The fake web ACL holds a 2-WCU rule; waftune adds its IP-set rule (2 sets) and the rate rule
    // (2 + geo 1 + path 2 + label 1).
    let capacity = &acl_change(&first).unwrap().capacity;
    assert_eq!((capacity.before, capacity.after), (2, 2 + 2 + 6));
    let text = render::text(&first, false, false);
    assert!(text.contains("capacity: 2 -> 10 WCU of 5000"), "{text}");
    assert!(text.contains("\"Limit\": 300"), "{text}");

    apply_ok(&waf, &config, &Ledger::default(), &first).await;
    let again = plan(&waf, &config).await.unwrap();
    assert!(
        !again.has_changes(),
        "{}",
        render::text(&again, false, false)
    );
    // The unmanaged rule is still there, untouched.
    assert_eq!(waf.acl().rules[0].name, "rate-limit");
}

#[tokio::test]
async fn changing_the_statement_warns_that_counters_reset_but_the_action_does_not() {
    let waf = FakeWaf::new();
    let first = plan(&waf, &rate_config("300", "count")).await.unwrap();
    apply_ok(
        &waf,
        &rate_config("300", "count"),
        &Ledger::default(),
        &first,
    )
    .await;

    let higher = plan(&waf, &rate_config("500", "count")).await.unwrap();
    let change = rate_change(&higher);
    assert!(change.resets_counters);
    let Some(RuleBefore::Rule(before)) = &change.before else {
        panic!("{:?}", change.before)
    };
    assert!(before.to_string().contains("\"Limit\":300"));
    let text = render::text(&higher, false, false);
    assert!(
        text.contains("# warning: changing a rate-based statement resets WAF's counters"),
        "{text}"
    );
    assert!(
        text.contains("-      \"Limit\": 300,") && text.contains("+      \"Limit\": 500,"),
        "{text}"
    );
    let md = render::markdown(&higher);
    assert!(
        md.contains("**Rate rule `waftune-rate`:** changing a rate-based statement resets"),
        "{md}"
    );

    let promoted = plan(&waf, &rate_config("300", "block")).await.unwrap();
    let change = rate_change(&promoted);
    assert!(
        !change.resets_counters,
        "the action is not part of the statement"
    );
    assert_eq!(change.after.action, RuleAction::Block { response: None });
}

#[tokio::test]
async fn recommended_limits_come_from_the_logs_with_their_evidence() {
    let waf = FakeWaf::new();
    let config = rate_config("\"recommended\"", "count");
    let err = plan(&waf, &config).await.unwrap_err();
    assert!(
        matches!(&err, PlanError::NoRecommendation { rule, .. } if rule == "waftune-rate"),
        "{err}"
    );

    let recommended = BTreeMap::from([(
        ("shop".to_owned(), "waftune-rate".to_owned()),
        RecommendedLimit {
            limit: 150,
            evidence: "recommended from the test".into(),
        },
    )]);
    let plan = try_plan_with(&waf, &config, &Ledger::default(), at(2), &recommended)
        .await
        .unwrap();
    let change = rate_change(&plan);
    assert_eq!(
        change.limit_evidence.as_deref(),
        Some("recommended from the test")
    );
    assert!(matches!(&change.after.statement, PlannedStatement::RateBased(s) if s.limit == 150));
}

#[tokio::test]
async fn a_full_web_acl_refuses_the_plan() {
    let waf = FakeWaf::new();
    {
        let mut state = waf.state.lock().unwrap();
        let acl = &mut state.acls[0];
        acl.capacity = Some(4_995);
        acl.rules[0].wcu = None; // a rule group: only AWS's figure includes it
    }
    let err = plan(&waf, &rate_config("300", "count")).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "web ACL `shop` would need 5003 WCU after this plan, more than WAF's 5000; remove rules or simplify scope-downs"
    );
}

#[tokio::test]
async fn a_blocking_rate_rule_brings_its_response_body() {
    let waf = FakeWaf::new();
    let config = rate_config_with(
        "300",
        "block",
        "[web_acl.rate_rule.response]\ncode = 429\nbody_key = \"slow-down\"\n\
         content_type = \"TEXT_PLAIN\"\nbody = \"Too many requests\"\n",
    );
    let plan = plan(&waf, &config).await.unwrap();
    let change = rate_change(&plan);
    assert_eq!(
        change.after.action,
        RuleAction::Block {
            response: Some(BlockResponse {
                code: 429,
                body_key: "slow-down".into()
            })
        }
    );
    let bodies = &acl_change(&plan).unwrap().bodies;
    assert!(
        bodies
            .iter()
            .any(|b| b.key == "slow-down" && b.after.content == "Too many requests")
    );
    apply_ok(&waf, &config, &Ledger::default(), &plan).await;
    assert_eq!(
        waf.acl().custom_response_bodies["slow-down"].content,
        "Too many requests"
    );
}
