use std::collections::BTreeMap;
use std::path::Path;

use ipnet::IpNet;
use jiff::Timestamp;

use super::stamp::{addresses_digest, parse_stamp};
use super::*;
use crate::apply::{ApplyInputs, Outcome, apply};
use crate::config::Config;
use crate::ledger::{Ledger, LedgerEntry, MANUAL};
use crate::render::plan as render;
use crate::waf::fake::FakeWaf;
use crate::waf::{IpSetRule, LiveRule, LiveWaf, RuleShape, fetch_live};

pub(crate) const CONFIG: &str = r#"
region = "ap-northeast-1"
scope = "REGIONAL"
allowlist = ["192.0.2.0/24"]

[[ip_set_group]]
name = "blocklist"
ipv4_set_name = "bl-v4"
ipv6_set_name = "bl-v6"
description = "Blocked by waftune"
rollover = true

[[web_acl]]
name = "shop"

[[web_acl.rule]]
name = "waftune-blocklist"
group = "blocklist"
priority = 5
action = "block"

[web_acl.rule.response]
code = 403
body_key = "blocked"
content_type = "TEXT_PLAIN"
body = "Access denied"

[guardrails]
max_additions = 50000
max_removals = 50000
write_interval_ms = 0
"#;

pub(crate) fn config(text: &str) -> Config {
    Config::parse(text, Path::new("waftune.toml")).unwrap()
}

pub(crate) fn at(day: u32) -> Timestamp {
    format!("2026-11-{day:02}T00:00:00Z").parse().unwrap()
}

pub(crate) fn entry(cidr: &str, added: Timestamp) -> LedgerEntry {
    LedgerEntry {
        cidr: cidr.parse().unwrap(),
        group: "blocklist".into(),
        policy: MANUAL.into(),
        reason: "test".into(),
        first_seen: added,
        last_seen: added,
        added,
        expires: None,
        strikes: 1,
    }
}

pub(crate) fn ledger(cidrs: &[&str], added: Timestamp) -> Ledger {
    Ledger {
        entries: cidrs.iter().map(|c| entry(c, added)).collect(),
        ..Ledger::default()
    }
}

async fn plan_with(waf: &FakeWaf, config: &Config, ledger: &Ledger, now: Timestamp) -> Plan {
    try_plan(waf, config, ledger, now).await.unwrap()
}

async fn try_plan(
    waf: &FakeWaf,
    config: &Config,
    ledger: &Ledger,
    now: Timestamp,
) -> Result<Plan, PlanError> {
    try_plan_with(waf, config, ledger, now, &BTreeMap::new()).await
}

pub(crate) async fn try_plan_with(
    waf: &FakeWaf,
    config: &Config,
    ledger: &Ledger,
    now: Timestamp,
    recommended: &BTreeMap<(String, String), RecommendedLimit>,
) -> Result<Plan, PlanError> {
    let live = fetch_live(waf, config, now).await.unwrap();
    build_plan(&PlanInputs {
        config,
        ledger,
        ledger_sha256: "ledger-digest",
        live: &live,
        now,
        recommended,
    })
}

pub(crate) async fn apply_ok(waf: &FakeWaf, config: &Config, ledger: &Ledger, plan: &Plan) {
    let report = apply(
        plan,
        &ApplyInputs {
            config,
            ledger,
            ledger_sha256: "ledger-digest",
            extra_allowlist: &[],
        },
        waf,
    )
    .await
    .unwrap();
    assert!(report.is_complete(), "{report}");
}

fn set_strings(waf: &FakeWaf, name: &str) -> Vec<String> {
    waf.set(name).unwrap().addresses
}

fn ip_set_changes(plan: &Plan) -> Vec<(Action, &str, usize, usize)> {
    plan.changes
        .iter()
        .filter_map(|c| match c {
            ResourceChange::IpSet(c) => {
                Some((c.action, c.name.as_str(), c.added.len(), c.removed.len()))
            }
            ResourceChange::WebAcl(_) => None,
        })
        .collect()
}

#[tokio::test]
async fn first_plan_creates_sets_and_rule_then_nothing() {
    let waf = FakeWaf::new();
    let config = config(CONFIG);
    let ledger = ledger(
        &[
            "198.51.100.0/25",
            "198.51.100.128/25",
            "2001:db8::/64",
            "203.0.113.9/32",
        ],
        at(1),
    );
    let plan = plan_with(&waf, &config, &ledger, at(2)).await;
    assert_eq!(
        ip_set_changes(&plan),
        [
            (Action::Create, "bl-v4", 2, 0),
            (Action::Create, "bl-v6", 1, 0)
        ]
    );
    let ResourceChange::WebAcl(acl) = &plan.changes[2] else {
        panic!("web ACL change last but deletes");
    };
    assert_eq!(acl.lock_token, "token-acl");
    assert_eq!(acl.rules[0].before, None);
    assert_eq!(
        acl.rules[0]
            .after
            .set_refs()
            .iter()
            .map(|s| s.arn.clone())
            .collect::<Vec<_>>(),
        [None, None]
    );
    assert_eq!(acl.bodies[0].key, "blocked");
    let s = plan.summary();
    assert_eq!((s.add, s.change, s.destroy, s.entries_added), (2, 1, 0, 3));
    assert!(plan.drift.is_empty());

    apply_ok(&waf, &config, &ledger, &plan).await;
    // The merged /24, the other team's set untouched, the unmanaged rule kept as it was.
    assert_eq!(
        set_strings(&waf, "bl-v4"),
        ["198.51.100.0/24", "203.0.113.9/32"]
    );
    assert_eq!(set_strings(&waf, "other-team"), ["203.0.113.0/24"]);
    let live_acl = waf.acl();
    assert_eq!(live_acl.rules[0].name, "rate-limit");
    assert!(matches!(live_acl.rules[0].shape, RuleShape::Other { .. }));
    assert!(matches!(&live_acl.rules[1].shape,
        RuleShape::IpSetMatch(IpSetRule { set_arns, .. }) if set_arns.len() == 2));

    let again = plan_with(&waf, &config, &ledger, at(3)).await;
    assert!(!again.has_changes(), "{:#?}", again.changes);
    assert!(again.drift.is_empty());
    assert!(render::text(&again, false, false).contains("No changes."));
}

#[tokio::test]
async fn adds_and_removals_with_ipv6_canonicalised() {
    let waf = FakeWaf::new();
    let config = config(CONFIG);
    let first = ledger(&["10.0.0.1/32", "10.0.0.3/32", "2001:db8::/64"], at(1));
    apply_ok(
        &waf,
        &config,
        &first,
        &plan_with(&waf, &config, &first, at(1)).await,
    )
    .await;

    // An uncompressed IPv6 text in WAF is the same range: no change for it.
    let v6 = waf.set("bl-v6").unwrap();
    waf.state
        .lock()
        .unwrap()
        .sets
        .iter_mut()
        .find(|s| s.name == "bl-v6")
        .unwrap()
        .addresses = vec!["2001:0DB8:0000:0000:0000:0000:0000:0000/64".into()];
    assert_eq!(v6.addresses, ["2001:db8::/64"]);

    let mut second = ledger(&["10.0.0.3/32", "10.0.0.5/32", "2001:db8::/64"], at(1));
    second.entries[1].added = at(2);
    let plan = plan_with(&waf, &config, &second, at(3)).await;
    assert_eq!(ip_set_changes(&plan), [(Action::Update, "bl-v4", 1, 1)]);
    let ResourceChange::IpSet(c) = &plan.changes[0] else {
        unreachable!()
    };
    assert_eq!(c.added[0].to_string(), "10.0.0.5/32");
    assert_eq!(c.removed[0].to_string(), "10.0.0.1/32");
    assert!(plan.drift.is_empty(), "{:?}", plan.drift);
    apply_ok(&waf, &config, &second, &plan).await;
    assert_eq!(set_strings(&waf, "bl-v4"), ["10.0.0.3/32", "10.0.0.5/32"]);
}

#[tokio::test]
async fn drift_is_reported_exactly_and_reverted() {
    let waf = FakeWaf::new();
    let config = config(CONFIG);
    let ledger = ledger(&["10.0.0.1/32", "10.0.0.3/32"], at(1));
    apply_ok(
        &waf,
        &config,
        &ledger,
        &plan_with(&waf, &config, &ledger, at(1)).await,
    )
    .await;

    waf.edit_set("bl-v4", &["10.0.0.1/32", "10.9.9.9/32"]);
    let plan = plan_with(&waf, &config, &ledger, at(2)).await;
    assert_eq!(plan.drift.len(), 1);
    assert_eq!(plan.drift[0].since, Some(at(1)));
    let DriftKind::Entries {
        added_outside,
        removed_outside,
    } = &plan.drift[0].kind
    else {
        panic!("{:?}", plan.drift);
    };
    assert_eq!(added_outside[0].to_string(), "10.9.9.9/32");
    assert_eq!(removed_outside[0].to_string(), "10.0.0.3/32");
    assert_eq!(ip_set_changes(&plan), [(Action::Update, "bl-v4", 1, 1)]);
    let text = render::text(&plan, false, false);
    let drift_at = text
        .find("Objects have changed outside of waftune")
        .unwrap();
    assert!(drift_at < text.find("will perform").unwrap(), "{text}");
    assert!(text.contains("+ 10.9.9.9/32"), "{text}");

    // With the ledger edited too, the drift can no longer be itemised.
    let mut edited = ledger.clone();
    edited.entries.remove(0);
    let plan = plan_with(&waf, &config, &edited, at(2)).await;
    assert_eq!(plan.drift[0].kind, DriftKind::Changed);
}

#[tokio::test]
async fn set_not_written_by_waftune_is_drift() {
    let waf = FakeWaf::new();
    let config = config(CONFIG);
    let empty = Ledger::default();
    apply_ok(
        &waf,
        &config,
        &empty,
        &plan_with(&waf, &config, &empty, at(1)).await,
    )
    .await;
    waf.state
        .lock()
        .unwrap()
        .sets
        .iter_mut()
        .find(|s| s.name == "bl-v4")
        .unwrap()
        .description = Some("hand made".into());
    waf.edit_set("bl-v4", &["10.1.1.1/32"]);
    let plan = plan_with(&waf, &config, &empty, at(2)).await;
    assert_eq!(plan.drift[0].kind, DriftKind::NotWrittenByWaftune);
    assert_eq!(ip_set_changes(&plan), [(Action::Update, "bl-v4", 0, 1)]);
}

fn many_v4(count: u32) -> Vec<String> {
    // Every other /32 so nothing merges.
    (0..count)
        .map(|i| std::net::Ipv4Addr::from(0x0a00_0000 + 2 * i).to_string() + "/32")
        .collect()
}

#[tokio::test]
async fn rollover_spills_into_a_second_set_and_shrinks_back() {
    let waf = FakeWaf::new();
    let config = config(CONFIG);
    let big: Vec<String> = many_v4(12_000);
    let refs: Vec<&str> = big.iter().map(String::as_str).collect();
    let big = ledger(&refs, at(1));
    let plan = plan_with(&waf, &config, &big, at(1)).await;
    assert_eq!(
        ip_set_changes(&plan),
        [
            (Action::Create, "bl-v4", 10_000, 0),
            (Action::Create, "bl-v4-2", 2_000, 0),
            (Action::Create, "bl-v6", 0, 0)
        ]
    );
    apply_ok(&waf, &config, &big, &plan).await;
    let ResourceChange::WebAcl(acl) = &plan.changes[3] else {
        unreachable!()
    };
    let names: Vec<&str> = acl.rules[0]
        .after
        .set_refs()
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["bl-v4", "bl-v4-2", "bl-v6"]);

    // Back under 10,000: the rule drops the second set before it is deleted.
    let fewer = ledger(&refs[..9_000], at(1));
    let plan = plan_with(&waf, &config, &fewer, at(2)).await;
    let kinds: Vec<String> = plan
        .changes
        .iter()
        .map(|c| match c {
            ResourceChange::IpSet(c) => format!("{:?} {}", c.action, c.name),
            ResourceChange::WebAcl(c) => format!("{:?} {}", c.action, c.name),
        })
        .collect();
    assert_eq!(kinds, ["Update bl-v4", "Update shop", "Delete bl-v4-2"]);
    apply_ok(&waf, &config, &fewer, &plan).await;
    assert!(waf.set("bl-v4-2").is_none());
    assert_eq!(waf.set("bl-v4").unwrap().addresses.len(), 9_000);
}

#[tokio::test]
async fn too_many_entries_is_an_error_not_a_truncation() {
    let waf = FakeWaf::new();
    let no_rollover = config(&CONFIG.replace("rollover = true", "rollover = false"));
    let big = many_v4(10_001);
    let refs: Vec<&str> = big.iter().map(String::as_str).collect();
    let err = try_plan(&waf, &no_rollover, &ledger(&refs, at(1)), at(1))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "group `blocklist` has 10001 IPV4 entries after merging, more than 10000 (one IP set); \
         set `rollover = true` on the group or remove entries"
    );
    // Merging first: 10,002 /32s that pair into 5,001 /31s fit.
    let pairs: Vec<String> = (0..10_002u32)
        .map(|i| std::net::Ipv4Addr::from(0x0a00_0000 + 4 * (i / 2) + i % 2).to_string() + "/32")
        .collect();
    let refs: Vec<&str> = pairs.iter().map(String::as_str).collect();
    let plan = plan_with(&waf, &no_rollover, &ledger(&refs, at(1)), at(1)).await;
    assert_eq!(
        ip_set_changes(&plan)[0],
        (Action::Create, "bl-v4", 5_001, 0)
    );

    let huge = many_v4(20_001);
    let refs: Vec<&str> = huge.iter().map(String::as_str).collect();
    let err = try_plan(&waf, &config(CONFIG), &ledger(&refs, at(1)), at(1))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("more than 20000 (two IP sets)"),
        "{err}"
    );
}

#[tokio::test]
async fn stale_plan_is_refused_and_the_other_change_kept() {
    let waf = FakeWaf::new();
    let config = config(CONFIG);
    let ledger = ledger(&["10.0.0.1/32"], at(1));
    apply_ok(
        &waf,
        &config,
        &ledger,
        &plan_with(&waf, &config, &ledger, at(1)).await,
    )
    .await;

    let wanted = super::tests::ledger(&["10.0.0.1/32", "10.0.0.7/32"], at(1));
    let plan = plan_with(&waf, &config, &wanted, at(2)).await;
    waf.edit_set("bl-v4", &["10.0.0.1/32", "10.4.4.4/32"]);
    let report = apply(
        &plan,
        &ApplyInputs {
            config: &config,
            ledger: &wanted,
            ledger_sha256: "ledger-digest",
            extra_allowlist: &[],
        },
        &waf,
    )
    .await
    .unwrap();
    assert_eq!(
        report.failed.as_ref().unwrap().to_string(),
        "plan is stale: ip set `bl-v4` changed since the plan; run plan again"
    );
    assert_eq!(set_strings(&waf, "bl-v4"), ["10.0.0.1/32", "10.4.4.4/32"]);
}

#[tokio::test]
async fn partial_failure_then_rerun_of_the_same_plan() {
    let waf = FakeWaf::new();
    let config = config(CONFIG);
    let ledger = ledger(&["10.0.0.1/32", "2001:db8::/48"], at(1));
    let plan = plan_with(&waf, &config, &ledger, at(1)).await;
    waf.state.lock().unwrap().fail = Some(("CreateIPSet", "bl-v6".into()));
    let inputs = ApplyInputs {
        config: &config,
        ledger: &ledger,
        ledger_sha256: "ledger-digest",
        extra_allowlist: &[],
    };
    let report = apply(&plan, &inputs, &waf).await.unwrap();
    assert_eq!(
        report.applied,
        [("ip set `bl-v4`".to_string(), Outcome::Applied)]
    );
    assert!(
        report
            .failed
            .as_ref()
            .unwrap()
            .to_string()
            .contains("injected failure")
    );
    assert_eq!(report.not_applied, ["web ACL `shop`"]);
    assert!(
        report
            .to_string()
            .ends_with("Apply stopped: 1 change(s) applied, 2 not applied.")
    );
    // The rule was not written, so it references nothing missing.
    assert_eq!(waf.acl().rules.len(), 1);

    let report = apply(&plan, &inputs, &waf).await.unwrap();
    assert!(report.is_complete(), "{report}");
    assert_eq!(report.applied[0].1, Outcome::AlreadyApplied);
    assert_eq!(report.applied[1].1, Outcome::Applied);
    // A third run finds everything in place.
    let report = apply(&plan, &inputs, &waf).await.unwrap();
    assert!(
        report
            .applied
            .iter()
            .all(|(_, o)| *o == Outcome::AlreadyApplied),
        "{report}"
    );
}

#[tokio::test]
async fn apply_refuses_changed_inputs() {
    let waf = FakeWaf::new();
    let config = config(CONFIG);
    let ledger = ledger(&["10.0.0.1/32"], at(1));
    let plan = plan_with(&waf, &config, &ledger, at(1)).await;
    let inputs = ApplyInputs {
        config: &config,
        ledger: &ledger,
        ledger_sha256: "other",
        extra_allowlist: &[],
    };
    let err = apply(&plan, &inputs, &waf).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("the ledger changed since the plan"),
        "{err}"
    );
    let changed = super::tests::config(&format!("{CONFIG}\n# edited\n"));
    let inputs = ApplyInputs {
        config: &changed,
        ledger: &ledger,
        ledger_sha256: "ledger-digest",
        extra_allowlist: &[],
    };
    let err = apply(&plan, &inputs, &waf).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("the config changed since the plan"),
        "{err}"
    );
    // A policy allowlist added after planning still stops the apply.
    let allow = ["10.0.0.0/8".parse().unwrap()];
    let inputs = ApplyInputs {
        config: &config,
        ledger: &ledger,
        ledger_sha256: "ledger-digest",
        extra_allowlist: &allow,
    };
    let err = apply(&plan, &inputs, &waf).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("overlaps allowlisted `10.0.0.0/8`"),
        "{err}"
    );
    assert!(waf.state.lock().unwrap().writes.is_empty());
}

#[tokio::test]
async fn guardrails_report_every_violation() {
    let waf = FakeWaf::new();
    let strict = config(&CONFIG.replace("max_additions = 50000", "max_additions = 2"));
    let plan = plan_with(
        &waf,
        &strict,
        &ledger(&["10.0.0.0/8", "192.0.2.64/26", "2001::/16"], at(1)),
        at(1),
    )
    .await;
    let err = check_guardrails(&plan, &strict, &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the plan breaks 4 guardrail(s):\n  \
         - `10.0.0.0/8` in IP set `bl-v4` is broader than /16; list it in guardrails.allow_broad if intended\n  \
         - `192.0.2.64/26` in IP set `bl-v4` overlaps allowlisted `192.0.2.0/24`\n  \
         - `2001::/16` in IP set `bl-v6` is broader than /32; list it in guardrails.allow_broad if intended\n  \
         - adds 3 entries, more than guardrails.max_additions = 2"
    );
    let allowed = config(&CONFIG.replace(
        "write_interval_ms = 0",
        "write_interval_ms = 0\nallow_broad = [\"10.0.0.0/8\"]",
    ));
    let plan = plan_with(&waf, &allowed, &ledger(&["10.0.0.0/8"], at(1)), at(1)).await;
    check_guardrails(&plan, &allowed, &[]).unwrap();
}

#[tokio::test]
async fn plan_errors_name_the_problem() {
    let waf = FakeWaf::new();
    let config = config(CONFIG);
    let mut other = ledger(&["10.0.0.1/32"], at(1));
    other.entries[0].group = "scanners".into();
    let err = try_plan(&waf, &config, &other, at(1)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "ledger entry `10.0.0.1/32` is in group `scanners`, which the config does not define (groups: `blocklist`)"
    );

    let taken = super::tests::config(&CONFIG.replace("priority = 5", "priority = 1"));
    let err = try_plan(&waf, &taken, &Ledger::default(), at(1))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "rule `waftune-blocklist` wants priority 1 in web ACL `shop`, but rule `rate-limit` (not managed by waftune) has it; choose another priority"
    );

    apply_ok(
        &waf,
        &config,
        &Ledger::default(),
        &plan_with(&waf, &config, &Ledger::default(), at(1)).await,
    )
    .await;
    waf.edit_set("bl-v4", &["10.0.0.1/24"]);
    let err = try_plan(&waf, &config, &Ledger::default(), at(1))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "live IP set `bl-v4` holds `10.0.0.1/24` is not a network address; did you mean `10.0.0.0/24`?"
    );
}

#[tokio::test]
async fn expired_entries_are_removed() {
    let waf = FakeWaf::new();
    let config = config(CONFIG);
    let mut l = ledger(&["10.0.0.1/32", "10.0.0.3/32"], at(1));
    l.entries[0].expires = Some(at(5));
    apply_ok(
        &waf,
        &config,
        &l,
        &plan_with(&waf, &config, &l, at(2)).await,
    )
    .await;
    let plan = plan_with(&waf, &config, &l, at(6)).await;
    assert_eq!(ip_set_changes(&plan), [(Action::Update, "bl-v4", 0, 1)]);
    assert!(plan.drift.is_empty());
    let md = render::markdown(&plan);
    assert!(md.contains("[!CAUTION]"), "{md}");
}

#[tokio::test]
async fn unrecognised_managed_rule_is_replaced_and_shown() {
    let waf = FakeWaf::new();
    let config = config(CONFIG);
    waf.state.lock().unwrap().acls[0].rules.push(LiveRule {
        name: "waftune-blocklist".into(),
        priority: 5,
        shape: RuleShape::Other {
            summary: "Rule { hand edited }".into(),
        },
        wcu: Some(1),
    });
    let plan = plan_with(&waf, &config, &Ledger::default(), at(1)).await;
    let ResourceChange::WebAcl(acl) = plan.changes.last().unwrap() else {
        unreachable!()
    };
    assert_eq!(
        acl.rules[0].before,
        Some(RuleBefore::Opaque("Rule { hand edited }".into()))
    );
    let text = render::text(&plan, false, false);
    assert!(
        text.contains("has a shape waftune does not write and will be replaced"),
        "{text}"
    );
    assert!(text.contains("-Rule { hand edited }"), "{text}");
}

#[tokio::test]
async fn text_rendering_abbreviates_and_colours() {
    let waf = FakeWaf::new();
    let config = config(CONFIG);
    let big = many_v4(30);
    let refs: Vec<&str> = big.iter().map(String::as_str).collect();
    let big = ledger(&refs, at(1));
    let plan = plan_with(&waf, &config, &big, at(1)).await;
    let text = render::text(&plan, false, false);
    assert!(
        text.contains("waftune will perform the following actions:  + create  ~ update  - destroy")
    );
    assert!(
        text.contains(
            "  + ip set \"bl-v4\" (IPV4, group blocklist) will be created with 30 entries"
        )
    );
    assert!(
        text.contains("      ... and 10 more added (list them all with --full)"),
        "{text}"
    );
    assert!(text.contains("+  \"Priority\": 5,"), "{text}");
    assert!(text.contains("(known after apply: IP set bl-v4)"), "{text}");
    assert!(
        text.ends_with("Plan: 2 to add, 1 to change, 0 to destroy.\n"),
        "{text}"
    );
    assert!(!text.contains('\x1b'));
    assert_eq!(
        render::text(&plan, false, true)
            .matches("      + 10.")
            .count(),
        30
    );
    assert!(render::text(&plan, true, false).contains("\x1b[32m+\x1b[0m create"));
}

#[tokio::test]
async fn markdown_stays_under_the_comment_limit() {
    let waf = FakeWaf::new();
    let config = config(CONFIG);
    let big = many_v4(15_000);
    let refs: Vec<&str> = big.iter().map(String::as_str).collect();
    let big = ledger(&refs, at(1));
    let plan = plan_with(&waf, &config, &big, at(1)).await;
    let md = render::markdown(&plan);
    assert!(md.len() <= render::MARKDOWN_LIMIT, "{}", md.len());
    assert!(
        md.starts_with("### waftune plan\n\n**Plan: 3 to add, 1 to change, 0 to destroy.**"),
        "{md}"
    );
    assert!(
        md.contains("[!WARNING]\n> **Large change:** 15000 entries"),
        "{md}"
    );
    assert!(md.contains("<details><summary>Full plan</summary>"));
    // Signs moved to the first column for GitHub's diff highlighting.
    assert!(
        md.contains("\n+   ip set \"bl-v4\" (IPV4, group blocklist) will be created"),
        "{md}"
    );
    assert!(md.contains("\n!   web acl \"shop\""), "{md}");
    assert!(md.contains("\n+       10.0.0.0/32\n"), "{md}");
    assert!(
        md.contains("entry lists abbreviated to fit a comment"),
        "{md}"
    );
    assert!(!md.contains("[!CAUTION]"));
}

#[tokio::test]
async fn plan_file_round_trips_and_checks_its_version() {
    let waf = FakeWaf::new();
    let config = config(CONFIG);
    let plan = plan_with(&waf, &config, &ledger(&["2001:db8::/64"], at(1)), at(1)).await;
    let text = render::json(&plan);
    assert!(text.contains("\"format_version\": 2"));
    assert!(text.contains("\"kind\": \"ip_set\""));
    assert_eq!(Plan::from_json(&text, Path::new("p.json")).unwrap(), plan);
    let future = text.replace("\"format_version\": 2", "\"format_version\": 9");
    assert_eq!(
        Plan::from_json(&future, Path::new("p.json"))
            .unwrap_err()
            .to_string(),
        "plan `p.json` has format version `9`; this waftune applies version 2: run plan again"
    );
    let err = Plan::from_json("{\"format_version\": 2}", Path::new("p.json")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("p.json:1:21: not a waftune plan: missing field"),
        "{err}"
    );
}

#[test]
fn stamps_parse_back() {
    let nets: Vec<IpNet> = vec!["10.0.0.0/24".parse().unwrap()];
    let d = stamp_description("Blocked by waftune", at(3), &nets);
    assert_eq!(d.len(), "Blocked by waftune".len() + 51);
    let (base, t, digest) = parse_stamp(&d).unwrap();
    assert_eq!((base, t), ("Blocked by waftune", at(3)));
    assert_eq!(digest, addresses_digest(&nets));
    assert!(d.len() - base.len() <= crate::config::DESCRIPTION_STAMP_MAX);
}

#[tokio::test]
async fn bundled_example_snapshot_plans_offline() {
    use crate::waf::snapshot::SnapshotWaf;
    let config = Config::parse(
        include_str!("../../examples/waftune.toml"),
        Path::new("examples/waftune.toml"),
    )
    .unwrap();
    let live: LiveWaf =
        serde_json::from_str(include_str!("../../examples/live-snapshot.json")).unwrap();
    let snapshot = SnapshotWaf::new(live);
    let now = at(20);
    let live = fetch_live(&snapshot, &config, now).await.unwrap();
    let mut l = ledger(
        &["198.51.100.0/24", "203.0.113.45/32", "2001:db8:ffff::/48"],
        "2026-11-18T03:00:00Z".parse().unwrap(),
    );
    // The example's rate rule takes its limit from logs; here a fixed recommendation.
    let recommended = BTreeMap::from([(
        ("shop-prod".to_owned(), "waftune-rate-overseas".to_owned()),
        RecommendedLimit {
            limit: 740,
            evidence: "test".into(),
        },
    )]);
    let plan_for = |l: &Ledger| {
        build_plan(&PlanInputs {
            config: &config,
            ledger: l,
            ledger_sha256: "x",
            live: &live,
            now,
            recommended: &recommended,
        })
        .unwrap()
    };
    let same = plan_for(&l);
    // Only the rate rule (not in the snapshot yet) is added: the sets hold what the ledger says.
    assert!(
        ip_set_changes(&same).is_empty() && same.drift.is_empty(),
        "{}",
        render::text(&same, false, true)
    );
    let [ResourceChange::WebAcl(acl)] = &same.changes[..] else {
        panic!("one web ACL change: {same:?}");
    };
    assert_eq!(acl.rules.len(), 1);
    assert_eq!(acl.rules[0].name, "waftune-rate-overseas");
    assert_eq!((acl.capacity.before, acl.capacity.after), (704, 708));
    l.entries.push(entry("192.0.2.200/32", now));
    let plan = plan_for(&l);
    assert_eq!(
        ip_set_changes(&plan),
        [(Action::Update, "waftune-blocklist-v4", 1, 0)]
    );
    // The example allowlist covers that address: the guardrail catches it.
    let err = check_guardrails(&plan, &config, &[]).unwrap_err();
    assert!(
        err.to_string()
            .contains("overlaps allowlisted `192.0.2.0/24`"),
        "{err}"
    );
}

#[tokio::test]
async fn an_edited_web_acl_change_is_refused_naming_rule_set_and_body() {
    let waf = FakeWaf::new();
    let config = config(CONFIG);
    let ledger = ledger(&["10.0.0.1/32"], at(1));
    let plan = plan_with(&waf, &config, &ledger, at(1)).await;
    assert!(verify::verify_plan(&plan, &config, &ledger).is_ok());
    let mut json: serde_json::Value = serde_json::from_str(&plan.to_json()).unwrap();
    let acl = json["changes"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["kind"] == "web_acl")
        .unwrap();
    let other = format!(
        "arn:aws:wafv2:ap-northeast-1:{}:regional/ipset/other-team/id-other",
        plan.account.as_deref().unwrap()
    );
    acl["rules"][0]["after"]["statement"]["sets"][0]["arn"] = other.clone().into();
    acl["rules"][0]["after"]["priority"] = 1.into();
    acl["bodies"][0]["after"]["content"] = "Welcome".into();
    let edited = Plan::from_json(&json.to_string(), Path::new("plan.json")).unwrap();
    let err = verify::verify_plan(&edited, &config, &ledger)
        .unwrap_err()
        .to_string();
    for line in [
        "web ACL `shop`: rule `waftune-blocklist` is not the rule the config and the ledger give",
        &format!(
            "web ACL `shop`: rule `waftune-blocklist` refers to IP set `bl-v4` by the ARN `{other}` of another set"
        ),
        "web ACL `shop`: response body `blocked` is not the configured one",
    ] {
        assert!(err.contains(line), "{line}\n{err}");
    }
}

#[tokio::test]
async fn a_delete_of_a_set_the_ledger_still_needs_or_another_teams_set_is_refused() {
    let waf = FakeWaf::new();
    let config = config(CONFIG);
    let ledger = ledger(&["10.0.0.1/32"], at(1));
    let plan = plan_with(&waf, &config, &ledger, at(1)).await;
    let mut edited = plan.clone();
    let ResourceChange::IpSet(create) = &plan.changes[0] else {
        unreachable!()
    };
    for name in [create.name.as_str(), "other-team"] {
        edited.changes.push(ResourceChange::IpSet(IpSetChange {
            action: Action::Delete,
            name: name.into(),
            id: Some("id".into()),
            arn: Some("arn".into()),
            lock_token: Some("t".into()),
            after: None,
            added: Vec::new(),
            removed: Vec::new(),
            before: Some(IpSetState {
                description: String::new(),
                addresses: Vec::new(),
            }),
            ..create.clone()
        }));
    }
    let err = verify::verify_plan(&edited, &config, &ledger)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "IP set `{}`: the ledger still wants it, so it is not to be deleted",
            create.name
        )),
        "{err}"
    );
    assert!(
        err.contains(
            "IP set `other-team`: the config does not manage it, so waftune never deletes it"
        ),
        "{err}"
    );
}
