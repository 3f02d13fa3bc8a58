//! Plans of managed ASN rules against the in-memory WAF.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::tests::{CONFIG, apply_ok, at, config, ledger, try_plan_with};
use super::verify::verify_plan;
use super::*;
use crate::config::Config;
use crate::ledger::{AsnEntry, Ledger, MANUAL};
use crate::model::waf::{RateKey, RuleAction, ScopeDown};
use crate::render::plan as render;
use crate::waf::RuleShape;
use crate::waf::fake::FakeWaf;

/// The test configuration with one ASN rule (`more` is TOML after its `action`).
fn asn_config(more: &str) -> Config {
    let rule = format!(
        "[[web_acl.asn_rule]]\nname = \"waftune-asn\"\nlist = \"hosting\"\npriority = 3\naction = \"block\"\n{more}\n"
    );
    config(&CONFIG.replace("[guardrails]", &format!("{rule}[guardrails]")))
}

fn asn(n: u32, expires: Option<Timestamp>) -> AsnEntry {
    AsnEntry {
        asn: crate::model::asn::Asn::new(n).unwrap(),
        list: "hosting".into(),
        policy: MANUAL.into(),
        reason: "test".into(),
        added: at(1),
        expires,
    }
}

fn with_asns(asns: Vec<AsnEntry>) -> Ledger {
    Ledger {
        asns,
        ..ledger(&["198.51.100.7/32"], at(1))
    }
}

async fn plan(waf: &FakeWaf, config: &Config, ledger: &Ledger, now: Timestamp) -> Plan {
    try_plan_with(waf, config, ledger, now, &BTreeMap::new())
        .await
        .unwrap()
}

fn acl_change(plan: &Plan) -> &WebAclChange {
    plan.changes
        .iter()
        .find_map(|c| match c {
            ResourceChange::WebAcl(c) => Some(c),
            ResourceChange::IpSet(_) => None,
        })
        .expect("the web ACL changes")
}

fn live_asn_rule(waf: &FakeWaf) -> Option<RuleShape> {
    let acl = waf.acl();
    let rule = acl.rules.iter().find(|r| r.name == "waftune-asn")?;
    Some(rule.shape.clone())
}

#[tokio::test]
async fn an_asn_rule_is_added_shown_then_in_place_and_removed_on_expiry() {
    let waf = FakeWaf::new();
    let config = asn_config("");
    let ledger = with_asns(vec![asn(64500, None), asn(64496, Some(at(10)))]);
    let first = plan(&waf, &config, &ledger, at(2)).await;
    let change = acl_change(&first);
    let rule = change
        .rules
        .iter()
        .find(|r| r.name == "waftune-asn")
        .unwrap();
    assert_eq!(
        rule.after.statement,
        PlannedStatement::AsnMatch {
            asns: vec![64496, 64500]
        }
    );
    assert_eq!(rule.asns_added, [64496, 64500]);
    // The other team's rule (2 WCU), waftune's IP set rule (1 per set, 2 sets), the ASN match (1).
    assert_eq!(change.capacity.after, 2 + 2 + 1);
    let text = render::text(&first, false, false);
    assert!(
        text.contains(
            "      rule \"waftune-asn\" will be added:\n        + AS64496\n        + AS64500\n"
        ),
        "{text}"
    );
    assert!(text.contains("\"AsnMatchStatement\": {"), "{text}");
    verify_plan(&first, &config, &ledger).unwrap();
    apply_ok(&waf, &config, &ledger, &first).await;
    let Some(RuleShape::AsnMatch(live)) = live_asn_rule(&waf) else {
        panic!("no ASN rule: {:?}", waf.acl().rules);
    };
    assert_eq!(live.asns, [64496, 64500]);
    assert_eq!(live.action, RuleAction::Block { response: None });
    assert!(!plan(&waf, &config, &ledger, at(3)).await.has_changes());

    // AS64496 expires: the rule keeps AS64500 only, and the plan says which went.
    let expired = plan(&waf, &config, &ledger, at(10)).await;
    let rule = &acl_change(&expired).rules[0];
    assert_eq!(
        (rule.asns_added.len(), &rule.asns_removed[..]),
        (0, &[64496][..])
    );
    apply_ok(&waf, &config, &ledger, &expired).await;
    assert!(matches!(live_asn_rule(&waf), Some(RuleShape::AsnMatch(r)) if r.asns == [64500]));
    assert!(!plan(&waf, &config, &ledger, at(11)).await.has_changes());

    // The last ASN goes: WAF takes no empty list, so the rule is removed, and stays away.
    let empty = with_asns(vec![asn(64500, Some(at(12)))]);
    let gone = plan(&waf, &config, &empty, at(12)).await;
    let change = acl_change(&gone);
    assert!(change.rules.is_empty());
    assert_eq!(change.removed_rules[0].name, "waftune-asn");
    assert_eq!(change.removed_rules[0].asns_removed, [64500]);
    assert_eq!((change.capacity.before, change.capacity.after), (5, 4));
    let text = render::text(&gone, false, false);
    assert!(
        text.contains("rule \"waftune-asn\" will be removed (its ASN list in the ledger is empty):\n        - AS64500\n        -{"),
        "{text}"
    );
    let markdown = render::markdown(&gone);
    assert!(markdown.contains("`waftune-asn` removed"), "{markdown}");
    apply_ok(&waf, &config, &empty, &gone).await;
    assert_eq!(live_asn_rule(&waf), None);
    assert!(!plan(&waf, &config, &empty, at(13)).await.has_changes());
    // The IP set rule was never touched.
    assert!(
        waf.acl()
            .rules
            .iter()
            .any(|r| r.name == "waftune-blocklist")
    );
}

#[tokio::test]
async fn a_rate_limited_asn_rule_counts_per_asn_with_the_list_as_scope() {
    let waf = FakeWaf::new();
    let config = asn_config("limit = 500\nwindow = \"10m\"\nkey = \"asn\"");
    let ledger = with_asns(vec![asn(64496, None)]);
    let first = plan(&waf, &config, &ledger, at(2)).await;
    let rule = &acl_change(&first).rules[1];
    let PlannedStatement::RateBased(s) = &rule.after.statement else {
        panic!("{:?}", rule.after.statement);
    };
    assert_eq!((s.limit, s.window_sec, &s.key), (500, 600, &RateKey::Asn));
    assert_eq!(s.scope_down, [ScopeDown::Asn(vec![64496])]);
    // 2 (rate-based) + 30 (the ASN custom key) + 1 (the ASN match scope-down), plus the IP set
    // rule (2) and the other team's rule (2).
    assert_eq!(acl_change(&first).capacity.after, 2 + 30 + 1 + 2 + 2);
    let json = serde_json::to_string(&rule.after.to_json()).unwrap();
    assert!(
        json.contains(r#""AggregateKeyType":"CUSTOM_KEYS","CustomKeys":[{"ASN":{}}]"#),
        "{json}"
    );
    apply_ok(&waf, &config, &ledger, &first).await;
    assert!(!plan(&waf, &config, &ledger, at(3)).await.has_changes());
    // A second ASN changes the statement: WAF resets the rule's counters, and the plan says so.
    let more = with_asns(vec![asn(64496, None), asn(64497, None)]);
    let next = plan(&waf, &config, &more, at(3)).await;
    let rule = &acl_change(&next).rules[0];
    assert!(rule.resets_counters);
    assert_eq!(rule.asns_added, [64497]);
}

#[tokio::test]
async fn asn_lists_are_checked_when_planning_and_applying() {
    let waf = FakeWaf::new();
    let config = asn_config("");
    let too_many = with_asns((1..=101).map(|n| asn(n, None)).collect());
    let err = try_plan_with(&waf, &config, &too_many, at(2), &BTreeMap::new())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "ASN list `hosting` has 101 active ASNs, more than the 100 one WAF ASN statement takes; remove or expire some"
    );
    let mut unknown = asn(64496, None);
    unknown.list = "cloud".into();
    let err = try_plan_with(
        &waf,
        &config,
        &with_asns(vec![unknown]),
        at(2),
        &BTreeMap::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "ledger ASN `AS64496` is in list `cloud`, which no asn_rule in the config uses (lists: `hosting`)"
    );

    // A plan file edited past the limit: the guardrails refuse it, and verify names the rule.
    let ledger = with_asns(vec![asn(64496, None)]);
    let mut edited = plan(&waf, &config, &ledger, at(2)).await;
    let ResourceChange::WebAcl(acl) = edited.changes.last_mut().unwrap() else {
        panic!("the web ACL change comes last");
    };
    let rule = acl
        .rules
        .iter_mut()
        .find(|r| r.name == "waftune-asn")
        .unwrap();
    rule.after.statement = PlannedStatement::AsnMatch {
        asns: (1..=101).collect(),
    };
    let guard = check_guardrails(&edited, &config, &[]).unwrap_err();
    assert_eq!(
        guard.violations,
        [Violation::OverAsnLimit {
            rule: "waftune-asn".into(),
            count: 101
        }]
    );
    assert!(
        guard
            .to_string()
            .ends_with("rule `waftune-asn` would match 101 ASNs; one WAF ASN statement takes 100"),
        "{guard}"
    );
    let tampered = verify_plan(&edited, &config, &ledger).unwrap_err();
    assert!(
        tampered
            .to_string()
            .contains("rule `waftune-asn` is not the rule the config and the ledger give"),
        "{tampered}"
    );
    // Removing a rule waftune does not empty is refused too.
    let ResourceChange::WebAcl(acl) = edited.changes.last_mut().unwrap() else {
        unreachable!()
    };
    acl.removed_rules.push(RuleRemoval {
        name: "waftune-blocklist".into(),
        before: RuleBefore::Opaque(String::new()),
        asns_removed: Vec::new(),
    });
    let tampered = verify_plan(&edited, &config, &ledger).unwrap_err();
    assert!(
        tampered.to_string().contains(
            "rule `waftune-blocklist` is to be removed, but it is not an ASN rule whose list the ledger empties"
        ),
        "{tampered}"
    );
}

#[tokio::test]
async fn without_asn_rules_the_plan_file_has_no_asn_fields() {
    let waf = FakeWaf::new();
    let config = config(CONFIG);
    let first = plan(&waf, &config, &ledger(&["198.51.100.7/32"], at(1)), at(2)).await;
    let json = first.to_json();
    assert!(!json.contains("asn"), "{json}");
    assert!(!json.contains("removed_rules"), "{json}");
}
