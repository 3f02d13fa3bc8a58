//! plan and apply against moto, through the AWS SDK implementation of `WafApi`.
//!
//! moto does not validate addresses, set sizes or priorities (see waf-facts section 5): waftune's own
//! validation is unit-tested in `src/`; these tests check the conversation with the WAFv2 API.

use crate::common;

use std::path::Path;
use std::time::Duration;

use aws_sdk_wafv2 as sdk;
use common::moto::Moto;
use jiff::Timestamp;
use waftune::apply::{ApplyInputs, ApplyReport, Outcome, apply};
use waftune::config::Config;
use waftune::ledger::{AsnEntry, Ledger, LedgerEntry, MANUAL};
use waftune::model::acl::Scope;
use waftune::model::asn::Asn;
use waftune::plan::{Action, DriftKind, Plan, PlanInputs, ResourceChange, build_plan};
use waftune::render::plan as render;
use waftune::waf::aws::{AwsWaf, CallPolicy};
use waftune::waf::snapshot::{SnapshotWaf, save_snapshot};
use waftune::waf::{WafApi, fetch_live};

const REGION: &str = "ap-northeast-1";

fn config_text(scope: &str, rollover: bool) -> String {
    format!(
        r#"scope = "{scope}"

[[ip_set_group]]
name = "blocklist"
ipv4_set_name = "waftune-blocklist-v4"
ipv6_set_name = "waftune-blocklist-v6"
rollover = {rollover}

[ip_set_group.tags]
team = "sre"

[[web_acl]]
name = "shop"

[[web_acl.rule]]
name = "waftune-blocklist"
group = "blocklist"
priority = 10
action = "block"

[web_acl.rule.response]
code = 403
body_key = "waftune-blocked"
content_type = "TEXT_PLAIN"
body = "Access denied"

[guardrails]
max_additions = 50000
max_removals = 50000
write_interval_ms = 0
"#
    )
}

fn config(scope: &str, rollover: bool) -> Config {
    Config::parse(&config_text(scope, rollover), Path::new("waftune.toml")).unwrap()
}

fn ledger(cidrs: &[&str]) -> Ledger {
    let t: Timestamp = "2026-11-20T00:00:00Z".parse().unwrap();
    Ledger {
        entries: cidrs
            .iter()
            .map(|c| LedgerEntry {
                cidr: c.parse().unwrap(),
                group: "blocklist".into(),
                policy: MANUAL.into(),
                reason: "test".into(),
                first_seen: t,
                last_seen: t,
                added: t,
                expires: None,
                strikes: 1,
            })
            .collect(),
        ..Ledger::default()
    }
}

fn no_pacing() -> CallPolicy {
    CallPolicy {
        write_interval: Duration::ZERO,
        backoff: Duration::ZERO,
        max_attempts: 1,
    }
}

fn sdk_scope(scope: Scope) -> sdk::types::Scope {
    match scope {
        Scope::Regional => sdk::types::Scope::Regional,
        Scope::Cloudfront => sdk::types::Scope::Cloudfront,
    }
}

fn visibility(name: &str) -> sdk::types::VisibilityConfig {
    sdk::types::VisibilityConfig::builder()
        .sampled_requests_enabled(true)
        .cloud_watch_metrics_enabled(true)
        .metric_name(name)
        .build()
        .unwrap()
}

/// A rule written by someone else (console, another tool).
fn unmanaged_rule(
    name: &str,
    priority: i32,
    statement: sdk::types::Statement,
    action: sdk::types::RuleAction,
) -> sdk::types::Rule {
    sdk::types::Rule::builder()
        .name(name)
        .priority(priority)
        .statement(statement)
        .action(action)
        .visibility_config(visibility(name))
        .build()
        .unwrap()
}

/// Another team's IP set and a web ACL `shop` with two rules waftune does not manage.
async fn setup(client: &sdk::Client, scope: Scope) {
    let other = client
        .create_ip_set()
        .scope(sdk_scope(scope))
        .name("other-team")
        .ip_address_version(sdk::types::IpAddressVersion::Ipv4)
        .addresses("203.0.113.0/24")
        .send()
        .await
        .unwrap();
    let other_arn = other.summary().unwrap().arn().unwrap().to_owned();
    let rate = unmanaged_rule(
        "rate-limit",
        1,
        sdk::types::Statement::builder()
            .rate_based_statement(
                sdk::types::RateBasedStatement::builder()
                    .limit(100)
                    .aggregate_key_type(sdk::types::RateBasedStatementAggregateKeyType::Ip)
                    .evaluation_window_sec(300)
                    .build()
                    .unwrap(),
            )
            .build(),
        sdk::types::RuleAction::builder()
            .count(sdk::types::CountAction::builder().build())
            .build(),
    );
    let partner = unmanaged_rule(
        "partner-allow",
        2,
        sdk::types::Statement::builder()
            .ip_set_reference_statement(
                sdk::types::IpSetReferenceStatement::builder()
                    .arn(other_arn)
                    .build()
                    .unwrap(),
            )
            .build(),
        sdk::types::RuleAction::builder()
            .allow(sdk::types::AllowAction::builder().build())
            .build(),
    );
    client
        .create_web_acl()
        .scope(sdk_scope(scope))
        .name("shop")
        .description("the shop")
        .default_action(
            sdk::types::DefaultAction::builder()
                .allow(sdk::types::AllowAction::builder().build())
                .build(),
        )
        .rules(rate)
        .rules(partner)
        .visibility_config(visibility("shop"))
        .send()
        .await
        .unwrap();
}

async fn sdk_acl(client: &sdk::Client, scope: Scope) -> (sdk::types::WebAcl, String) {
    let list = client
        .list_web_acls()
        .scope(sdk_scope(scope))
        .send()
        .await
        .unwrap();
    let summary = &list.web_acls()[0];
    let out = client
        .get_web_acl()
        .scope(sdk_scope(scope))
        .name(summary.name().unwrap())
        .id(summary.id().unwrap())
        .send()
        .await
        .unwrap();
    (out.web_acl.unwrap(), out.lock_token.unwrap())
}

/// The IP sets of a scope, as moto lists them (one page: the tests make fewer than 100).
async fn sdk_sets(client: &sdk::Client, scope: Scope) -> Vec<sdk::types::IpSetSummary> {
    let list = client
        .list_ip_sets()
        .scope(sdk_scope(scope))
        .limit(100)
        .send()
        .await
        .unwrap();
    list.ip_sets().to_vec()
}

/// The summary of the IP set `name`.
async fn sdk_set_summary(
    client: &sdk::Client,
    scope: Scope,
    name: &str,
) -> Option<sdk::types::IpSetSummary> {
    sdk_sets(client, scope)
        .await
        .into_iter()
        .find(|s| s.name() == Some(name))
}

/// (name, id, lock token, addresses) of an IP set by name.
async fn sdk_set(
    client: &sdk::Client,
    scope: Scope,
    name: &str,
) -> Option<(String, String, Vec<String>)> {
    let summary = sdk_set_summary(client, scope, name).await?;
    let out = client
        .get_ip_set()
        .scope(sdk_scope(scope))
        .name(name)
        .id(summary.id().unwrap())
        .send()
        .await
        .unwrap();
    let set = out.ip_set().unwrap();
    Some((
        set.id().to_owned(),
        out.lock_token().unwrap().to_owned(),
        set.addresses().to_vec(),
    ))
}

/// Someone edits a set outside waftune (console, another tool).
async fn edit_set(client: &sdk::Client, scope: Scope, name: &str, addresses: &[&str]) {
    let (id, token, _) = sdk_set(client, scope, name).await.unwrap();
    let set = client
        .get_ip_set()
        .scope(sdk_scope(scope))
        .name(name)
        .id(&id)
        .send()
        .await
        .unwrap();
    client
        .update_ip_set()
        .scope(sdk_scope(scope))
        .name(name)
        .id(&id)
        .set_description(set.ip_set().unwrap().description().map(ToOwned::to_owned))
        .set_addresses(Some(addresses.iter().map(|a| a.to_string()).collect()))
        .lock_token(token)
        .send()
        .await
        .unwrap();
}

async fn make_plan(waf: &AwsWaf, config: &Config, ledger: &Ledger) -> Plan {
    try_make_plan(waf, config, ledger).await.unwrap()
}

/// Plans again: AWS already matches the ledger and configuration.
async fn assert_in_sync(waf: &AwsWaf, config: &Config, ledger: &Ledger) {
    let again = make_plan(waf, config, ledger).await;
    assert!(
        !again.has_changes(),
        "{}",
        render::text(&again, false, true)
    );
}

async fn try_make_plan(
    waf: &AwsWaf,
    config: &Config,
    ledger: &Ledger,
) -> Result<Plan, waftune::plan::PlanError> {
    let now = Timestamp::now();
    let live = fetch_live(waf, config, now).await.unwrap();
    build_plan(&PlanInputs {
        config,
        ledger,
        ledger_sha256: "ledger",
        live: &live,
        now,
        recommended: &Default::default(),
    })
}

async fn run_apply(waf: &AwsWaf, config: &Config, ledger: &Ledger, plan: &Plan) -> ApplyReport {
    let inputs = ApplyInputs {
        config,
        ledger,
        ledger_sha256: "ledger",
        extra_allowlist: &[],
    };
    apply(plan, &inputs, waf).await.unwrap()
}

fn regional(moto: &Moto) -> (sdk::Client, AwsWaf) {
    let client = moto.client(REGION);
    let waf = AwsWaf::new(&moto.sdk_config(REGION), Scope::Regional, no_pacing()).unwrap();
    (client, waf)
}

#[tokio::test]
async fn first_apply_creates_sets_and_rule_and_leaves_the_rest_alone() {
    let moto = Moto::start().await;
    let (client, waf) = regional(&moto);
    setup(&client, Scope::Regional).await;
    let (acl_before, _) = sdk_acl(&client, Scope::Regional).await;
    let config = config("REGIONAL", false);
    let ledger = ledger(&["198.51.100.0/24", "192.0.2.7/32", "2001:db8::/64"]);

    let plan = make_plan(&waf, &config, &ledger).await;
    assert_eq!(plan.account.as_deref(), Some("123456789012"));
    let s = plan.summary();
    assert_eq!((s.add, s.change, s.destroy), (2, 1, 0));
    let report = run_apply(&waf, &config, &ledger, &plan).await;
    assert!(report.is_complete(), "{report}");
    assert_eq!(report.applied.len(), 3);

    let (_, _, v4) = sdk_set(&client, Scope::Regional, "waftune-blocklist-v4")
        .await
        .unwrap();
    assert_eq!(v4, ["192.0.2.7/32", "198.51.100.0/24"]);
    let (_, _, v6) = sdk_set(&client, Scope::Regional, "waftune-blocklist-v6")
        .await
        .unwrap();
    assert_eq!(v6, ["2001:db8::/64"]);
    let (_, _, other) = sdk_set(&client, Scope::Regional, "other-team")
        .await
        .unwrap();
    assert_eq!(other, ["203.0.113.0/24"]);

    let (acl, _) = sdk_acl(&client, Scope::Regional).await;
    // Unmanaged rules and web ACL settings are exactly as they were.
    assert_eq!(acl.rules()[..2], acl_before.rules()[..]);
    assert_eq!(acl.default_action(), acl_before.default_action());
    assert_eq!(acl.description(), Some("the shop"));
    assert_eq!(acl.visibility_config(), acl_before.visibility_config());
    let ours = &acl.rules()[2];
    assert_eq!((ours.name(), ours.priority()), ("waftune-blocklist", 10));
    let or = ours.statement().unwrap().or_statement().unwrap();
    assert_eq!(or.statements().len(), 2);
    let block = ours
        .action()
        .unwrap()
        .block()
        .unwrap()
        .custom_response()
        .unwrap();
    assert_eq!(block.response_code(), 403);
    let body = &acl.custom_response_bodies().unwrap()["waftune-blocked"];
    assert_eq!(body.content(), "Access denied");

    // Tags mark the sets as waftune's.
    let summary = sdk_set_summary(&client, Scope::Regional, "waftune-blocklist-v4")
        .await
        .unwrap();
    let arn = summary.arn().unwrap();
    let tags = client
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .unwrap();
    let tags: Vec<(String, String)> = tags
        .tag_info_for_resource()
        .unwrap()
        .tag_list()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect();
    assert!(
        tags.contains(&("managed-by".into(), "waftune".into())),
        "{tags:?}"
    );
    assert!(tags.contains(&("team".into(), "sre".into())), "{tags:?}");

    assert_in_sync(&waf, &config, &ledger).await;
}

#[tokio::test]
async fn adds_removals_and_ipv6_canonicalisation() {
    let moto = Moto::start().await;
    let (client, waf) = regional(&moto);
    setup(&client, Scope::Regional).await;
    let config = config("REGIONAL", false);
    let first = ledger(&["10.0.0.1/32", "10.0.0.3/32", "2001:db8:0:1::/64"]);
    assert!(
        run_apply(
            &waf,
            &config,
            &first,
            &make_plan(&waf, &config, &first).await
        )
        .await
        .is_complete()
    );

    // WAF text that is not in compressed form still compares equal.
    edit_set(
        &client,
        Scope::Regional,
        "waftune-blocklist-v6",
        &["2001:0DB8:0000:0001:0000:0000:0000:0000/64"],
    )
    .await;
    let second = ledger(&["10.0.0.3/32", "10.0.0.5/32", "2001:db8:0:1::/64"]);
    let plan = make_plan(&waf, &config, &second).await;
    let changed: Vec<(&str, usize, usize)> = plan
        .changes
        .iter()
        .filter_map(|c| match c {
            ResourceChange::IpSet(c) => Some((c.name.as_str(), c.added.len(), c.removed.len())),
            ResourceChange::WebAcl(_) => None,
        })
        .collect();
    assert_eq!(changed, [("waftune-blocklist-v4", 1, 1)]);
    let text = render::text(&plan, false, false);
    assert!(
        text.contains("+ 10.0.0.5/32") && text.contains("- 10.0.0.1/32"),
        "{text}"
    );
    assert!(run_apply(&waf, &config, &second, &plan).await.is_complete());
    let (_, _, v4) = sdk_set(&client, Scope::Regional, "waftune-blocklist-v4")
        .await
        .unwrap();
    assert_eq!(v4, ["10.0.0.3/32", "10.0.0.5/32"]);
}

#[tokio::test]
async fn drift_is_shown_before_the_changes() {
    let moto = Moto::start().await;
    let (client, waf) = regional(&moto);
    setup(&client, Scope::Regional).await;
    let config = config("REGIONAL", false);
    let ledger = ledger(&["10.0.0.1/32", "10.0.0.3/32"]);
    assert!(
        run_apply(
            &waf,
            &config,
            &ledger,
            &make_plan(&waf, &config, &ledger).await
        )
        .await
        .is_complete()
    );

    edit_set(
        &client,
        Scope::Regional,
        "waftune-blocklist-v4",
        &["10.0.0.1/32", "10.66.0.0/16"],
    )
    .await;
    let plan = make_plan(&waf, &config, &ledger).await;
    assert_eq!(plan.drift.len(), 1);
    let DriftKind::Entries {
        added_outside,
        removed_outside,
    } = &plan.drift[0].kind
    else {
        panic!("{:?}", plan.drift);
    };
    assert_eq!(added_outside[0].to_string(), "10.66.0.0/16");
    assert_eq!(removed_outside[0].to_string(), "10.0.0.3/32");
    let md = render::markdown(&plan);
    assert!(
        md.contains("**Drift:** 1 IP set(s) changed outside waftune"),
        "{md}"
    );
}

#[tokio::test]
async fn concurrent_change_makes_the_plan_stale_and_nothing_is_lost() {
    let moto = Moto::start().await;
    let (client, waf) = regional(&moto);
    setup(&client, Scope::Regional).await;
    let config = config("REGIONAL", false);
    let one = ledger(&["10.0.0.1/32"]);
    let two = ledger(&["10.0.0.1/32", "10.0.0.9/32"]);
    assert!(
        run_apply(&waf, &config, &one, &make_plan(&waf, &config, &one).await)
            .await
            .is_complete()
    );

    let plan = make_plan(&waf, &config, &two).await;
    edit_set(
        &client,
        Scope::Regional,
        "waftune-blocklist-v4",
        &["10.0.0.1/32", "10.7.7.7/32"],
    )
    .await;
    let report = run_apply(&waf, &config, &two, &plan).await;
    assert_eq!(
        report.failed.unwrap().to_string(),
        "plan is stale: ip set `waftune-blocklist-v4` changed since the plan; run plan again"
    );
    let (_, _, v4) = sdk_set(&client, Scope::Regional, "waftune-blocklist-v4")
        .await
        .unwrap();
    assert_eq!(
        v4,
        ["10.0.0.1/32", "10.7.7.7/32"],
        "the other writer's change is kept"
    );
}

#[tokio::test]
async fn partial_failure_then_rerun() {
    let moto = Moto::start().await;
    let (client, waf) = regional(&moto);
    setup(&client, Scope::Regional).await;
    let config = config("REGIONAL", false);
    let ledger = ledger(&["10.0.0.1/32", "2001:db8::/48"]);
    let plan_1 = make_plan(&waf, &config, &ledger).await;

    // Someone adds a rule to the web ACL after the plan: the sets go in, the rule update is refused.
    let (acl, token) = sdk_acl(&client, Scope::Regional).await;
    let mut rules = acl.rules().to_vec();
    let mut extra = rules[0].clone();
    extra.name = "added-by-hand".into();
    extra.priority = 3;
    extra.visibility_config = Some(visibility("added-by-hand"));
    rules.push(extra);
    client
        .update_web_acl()
        .scope(sdk::types::Scope::Regional)
        .name("shop")
        .id(acl.id())
        .lock_token(token)
        .set_default_action(acl.default_action().cloned())
        .set_description(acl.description().map(ToOwned::to_owned))
        .set_visibility_config(acl.visibility_config().cloned())
        .set_rules(Some(rules))
        .send()
        .await
        .unwrap();

    let report = run_apply(&waf, &config, &ledger, &plan_1).await;
    assert_eq!(report.applied.len(), 2, "{report}");
    assert_eq!(
        report.failed.as_ref().unwrap().to_string(),
        "plan is stale: web ACL `shop` changed since the plan; run plan again"
    );

    // Re-running the same plan creates no duplicate sets and still refuses the stale rule update.
    let report = run_apply(&waf, &config, &ledger, &plan_1).await;
    assert!(
        report
            .applied
            .iter()
            .all(|(_, o)| *o == Outcome::AlreadyApplied),
        "{report}"
    );
    assert!(report.failed.is_some());
    assert_eq!(sdk_sets(&client, Scope::Regional).await.len(), 3);

    // A fresh plan finishes the job and keeps the rule added by hand.
    let plan_2 = make_plan(&waf, &config, &ledger).await;
    let s = plan_2.summary();
    assert_eq!((s.add, s.change, s.destroy), (0, 1, 0));
    assert!(
        run_apply(&waf, &config, &ledger, &plan_2)
            .await
            .is_complete()
    );
    let (acl, _) = sdk_acl(&client, Scope::Regional).await;
    let names: Vec<&str> = acl.rules().iter().map(|r| r.name()).collect();
    assert_eq!(
        names,
        [
            "rate-limit",
            "partner-allow",
            "added-by-hand",
            "waftune-blocklist"
        ]
    );
}

fn many_v4(count: u32) -> Vec<String> {
    (0..count)
        .map(|i| std::net::Ipv4Addr::from(0x0a00_0000 + 2 * i).to_string() + "/32")
        .collect()
}

#[tokio::test]
async fn more_than_ten_thousand_entries_roll_over_or_fail() {
    let moto = Moto::start().await;
    let (client, waf) = regional(&moto);
    setup(&client, Scope::Regional).await;
    let big = many_v4(10_500);
    let refs: Vec<&str> = big.iter().map(String::as_str).collect();
    let big_ledger = ledger(&refs);

    let strict = config("REGIONAL", false);
    let live = fetch_live(&waf, &strict, Timestamp::now()).await.unwrap();
    let err = build_plan(&PlanInputs {
        config: &strict,
        ledger: &big_ledger,
        ledger_sha256: "ledger",
        live: &live,
        now: Timestamp::now(),
        recommended: &Default::default(),
    })
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("10500 IPV4 entries after merging, more than 10000"),
        "{err}"
    );

    let rollover = config("REGIONAL", true);
    let plan = make_plan(&waf, &rollover, &big_ledger).await;
    assert!(
        run_apply(&waf, &rollover, &big_ledger, &plan)
            .await
            .is_complete()
    );
    let (_, _, first) = sdk_set(&client, Scope::Regional, "waftune-blocklist-v4")
        .await
        .unwrap();
    let (_, _, second) = sdk_set(&client, Scope::Regional, "waftune-blocklist-v4-2")
        .await
        .unwrap();
    assert_eq!((first.len(), second.len()), (10_000, 500));
    let (acl, _) = sdk_acl(&client, Scope::Regional).await;
    let ours = acl
        .rules()
        .iter()
        .find(|r| r.name() == "waftune-blocklist")
        .unwrap();
    assert_eq!(
        ours.statement()
            .unwrap()
            .or_statement()
            .unwrap()
            .statements()
            .len(),
        3
    );

    // Shrinking below the limit removes the rule's reference, then deletes the second set.
    let small = ledger(&refs[..100]);
    let plan = make_plan(&waf, &rollover, &small).await;
    let actions: Vec<Action> = plan
        .changes
        .iter()
        .map(|c| match c {
            ResourceChange::IpSet(c) => c.action,
            ResourceChange::WebAcl(c) => c.action,
        })
        .collect();
    assert_eq!(actions, [Action::Update, Action::Update, Action::Delete]);
    assert!(
        run_apply(&waf, &rollover, &small, &plan)
            .await
            .is_complete()
    );
    assert!(
        sdk_set(&client, Scope::Regional, "waftune-blocklist-v4-2")
            .await
            .is_none()
    );
}

#[tokio::test]
async fn cloudfront_scope_lives_in_us_east_1() {
    let moto = Moto::start().await;
    let config = config("CLOUDFRONT", false);
    let region = config.effective_region().unwrap();
    assert_eq!(region, "us-east-1");
    let client = moto.client(region);
    setup(&client, Scope::Cloudfront).await;
    let waf = AwsWaf::new(&moto.sdk_config(region), Scope::Cloudfront, no_pacing()).unwrap();
    let one = ledger(&["192.0.2.0/24"]);
    let plan = make_plan(&waf, &config, &one).await;
    assert_eq!(
        (plan.scope, plan.region.as_str()),
        (Scope::Cloudfront, "us-east-1")
    );
    assert!(run_apply(&waf, &config, &one, &plan).await.is_complete());
    let ours = sdk_set_summary(&client, Scope::Cloudfront, "waftune-blocklist-v4")
        .await
        .unwrap();
    assert!(
        ours.arn().unwrap().contains(":global/ipset/"),
        "{:?}",
        ours.arn()
    );
    assert!(sdk_sets(&client, Scope::Regional).await.is_empty());

    // A regional client cannot apply a CloudFront plan.
    let other = AwsWaf::new(&moto.sdk_config(REGION), Scope::Regional, no_pacing()).unwrap();
    let inputs = ApplyInputs {
        config: &config,
        ledger: &one,
        ledger_sha256: "ledger",
        extra_allowlist: &[],
    };
    let err = apply(&plan, &inputs, &other).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("the plan is for CLOUDFRONT in `us-east-1`"),
        "{err}"
    );
}

#[tokio::test]
async fn listing_follows_next_marker_and_snapshots_plan_offline() {
    let moto = Moto::start().await;
    let (client, waf) = regional(&moto);
    setup(&client, Scope::Regional).await;
    for i in 0..120 {
        client
            .create_ip_set()
            .scope(sdk::types::Scope::Regional)
            .name(format!("filler-{i:03}"))
            .ip_address_version(sdk::types::IpAddressVersion::Ipv4)
            .set_addresses(Some(vec![]))
            .send()
            .await
            .unwrap();
    }
    let config = config("REGIONAL", false);
    let ledger = ledger(&["10.0.0.1/32"]);
    assert!(
        run_apply(
            &waf,
            &config,
            &ledger,
            &make_plan(&waf, &config, &ledger).await
        )
        .await
        .is_complete()
    );
    assert_eq!(waf.list_ip_sets().await.unwrap().len(), 123);

    // pull, then plan offline from the snapshot: same live state, same (empty) plan.
    let now = Timestamp::now();
    let live = fetch_live(&waf, &config, now).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snapshot.json");
    save_snapshot(&live, &path).unwrap();
    let snapshot = SnapshotWaf::load(&path).unwrap();
    let offline = fetch_live(&snapshot, &config, now).await.unwrap();
    assert_eq!(offline, live);
    let changed = ledger_with_more();
    let plan = build_plan(&PlanInputs {
        config: &config,
        ledger: &changed,
        ledger_sha256: "ledger",
        live: &offline,
        now,
        recommended: &Default::default(),
    })
    .unwrap();
    assert_eq!(plan.summary().change, 1);
    // The offline plan carries live lock tokens, so it can be applied to the account.
    assert!(
        run_apply(&waf, &config, &changed, &plan)
            .await
            .is_complete()
    );
    // The snapshot itself refuses writes.
    let report = run_apply_snapshot(&snapshot, &config, &changed, &plan).await;
    assert!(report.failed.unwrap().to_string().contains("read-only"));
}

fn ledger_with_more() -> Ledger {
    ledger(&["10.0.0.1/32", "10.0.0.77/32"])
}

async fn run_apply_snapshot(
    snapshot: &SnapshotWaf,
    config: &Config,
    ledger: &Ledger,
    plan: &Plan,
) -> ApplyReport {
    let inputs = ApplyInputs {
        config,
        ledger,
        ledger_sha256: "ledger",
        extra_allowlist: &[],
    };
    apply(plan, &inputs, snapshot).await.unwrap()
}

#[tokio::test]
async fn writes_are_paced() {
    let moto = Moto::start().await;
    let client = moto.client(REGION);
    setup(&client, Scope::Regional).await;
    let paced = CallPolicy {
        write_interval: Duration::from_millis(300),
        ..no_pacing()
    };
    let waf = AwsWaf::new(&moto.sdk_config(REGION), Scope::Regional, paced).unwrap();
    let config = config("REGIONAL", false);
    let one = ledger(&["10.0.0.1/32"]);
    let plan = make_plan(&waf, &config, &one).await;
    let start = std::time::Instant::now();
    assert!(run_apply(&waf, &config, &one, &plan).await.is_complete());
    // Three writes: two sets and the web ACL, at least 300 ms apart.
    assert!(
        start.elapsed() >= Duration::from_millis(600),
        "{:?}",
        start.elapsed()
    );
}

/// A repository directory for CLI runs, with the policies (an allowlist) that waftune requires.
fn cli_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(
        dir.path().join("policies/allow.toml"),
        "[[allow]]\ncidr = [\"203.0.113.0/24\"]\ncomment = \"partner\"\n",
    )
    .unwrap();
    dir
}

/// The whole CLI against the emulator, credentials and endpoint from the standard AWS environment:
/// block -> plan (saved) -> apply exactly that plan -> plan again shows nothing -> pull.
/// `waftune ARGS --config CONFIG` in `dir`, talking to moto through the standard AWS environment.
fn waftune_on_moto(moto: &Moto, dir: &Path, config: &Path, args: &[&str]) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("waftune").unwrap();
    cmd.current_dir(dir)
        .args(args)
        .arg("--config")
        .arg(config)
        .envs(moto.aws_env(REGION))
        .env("NO_COLOR", "1");
    cmd
}

#[tokio::test]
async fn cli_block_plan_apply_pull_through_the_aws_environment() {
    let moto = Moto::start().await;
    let (client, _) = regional(&moto);
    setup(&client, Scope::Regional).await;
    let dir = cli_dir();
    let cfg = dir.path().join("waftune.toml");
    std::fs::write(&cfg, config_text("REGIONAL", false)).unwrap();
    let run = |args: &[&str]| waftune_on_moto(&moto, dir.path(), &cfg, args).assert();
    run(&[
        "block",
        "--init-ledger",
        "198.51.100.0/24",
        "--for",
        "7d",
        "--reason",
        "abuse report",
    ])
    .success();
    let planned = run(&["plan", "--detailed-exitcode", "--out", "plan.json"])
        .code(2)
        .get_output()
        .stdout
        .clone();
    let planned = String::from_utf8(planned).unwrap();
    assert!(planned.contains("+ 198.51.100.0/24"), "{planned}");
    assert!(
        planned.contains("Plan: 2 to add, 1 to change, 0 to destroy."),
        "{planned}"
    );
    run(&["apply", "plan.json"]).success();
    run(&["plan", "--detailed-exitcode"]).code(0);
    let (_, _, addresses) = sdk_set(&client, Scope::Regional, "waftune-blocklist-v4")
        .await
        .unwrap();
    assert_eq!(addresses, ["198.51.100.0/24"]);
    // Applying the same plan again (as after a partial failure) writes nothing twice.
    let again = run(&["apply", "plan.json"])
        .success()
        .get_output()
        .stdout
        .clone();
    let again = String::from_utf8(again).unwrap();
    assert!(again.contains("already applied"), "{again}");
    run(&["pull", "--out", "live.json"]).success();
    let snapshot = std::fs::read_to_string(dir.path().join("live.json")).unwrap();
    assert!(snapshot.contains("198.51.100.0/24"));
    // Without a plan file: plan, show, and (for CI) apply without asking.
    run(&["block", "2001:db8:0:1::/64", "--reason", "ipv6 abuse"]).success();
    let shown = run(&["apply", "--auto-approve"])
        .success()
        .get_output()
        .stdout
        .clone();
    let shown = String::from_utf8(shown).unwrap();
    assert!(shown.contains("+ 2001:db8:0:1::/64"), "{shown}");
    let (_, _, v6) = sdk_set(&client, Scope::Regional, "waftune-blocklist-v6")
        .await
        .unwrap();
    assert_eq!(v6, ["2001:db8:0:1::/64"]);
    // And without `--auto-approve` and no terminal to ask on, it refuses.
    run(&["block", "192.0.2.0/24", "--reason", "x", "--force"]).success();
    run(&["apply"]).failure();
}

/// The test configuration's text with a home country and the given rate rules before `[guardrails]`.
fn rate_config_text(rate_rules: &str) -> String {
    format!("home_country = \"JP\"\n{}", config_text("REGIONAL", false))
        .replace("[guardrails]", &format!("{rate_rules}\n[guardrails]"))
}

fn rate_config(rate_rules: &str) -> Config {
    Config::parse(&rate_config_text(rate_rules), Path::new("waftune.toml")).unwrap()
}

fn rate_rule(name: &str, priority: i32, limit: u64, scope: &str) -> String {
    format!(
        r#"
[[web_acl.rate_rule]]
name = "{name}"
priority = {priority}
limit = {limit}
window = "2m"
key = "forwarded_ip"
scope = [{scope}]
action = "count"
"#
    )
}

const API_SCOPE: &str = r#""overseas", "path:/api/", "method:POST", "not-label:awswaf:managed:aws:bot-control:bot:verified""#;

/// An unmanaged rule of `xss` XSS statements (40 WCU each) in an OR.
fn heavy_rule(xss: usize) -> sdk::types::Rule {
    let statement = || {
        sdk::types::Statement::builder()
            .xss_match_statement(
                sdk::types::XssMatchStatement::builder()
                    .field_to_match(
                        sdk::types::FieldToMatch::builder()
                            .uri_path(sdk::types::UriPath::builder().build())
                            .build(),
                    )
                    .text_transformations(
                        sdk::types::TextTransformation::builder()
                            .priority(0)
                            .r#type(sdk::types::TextTransformationType::None)
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            )
            .build()
    };
    unmanaged_rule(
        "heavy",
        3,
        sdk::types::Statement::builder()
            .or_statement(
                sdk::types::OrStatement::builder()
                    .set_statements(Some((0..xss).map(|_| statement()).collect()))
                    .build()
                    .unwrap(),
            )
            .build(),
        sdk::types::RuleAction::builder()
            .block(sdk::types::BlockAction::builder().build())
            .build(),
    )
}

/// waftune's rate rule as moto holds it, after checking that the two rules waftune does not manage
/// are exactly as they were.
async fn rate_rule_in_moto(client: &sdk::Client, before: &sdk::types::WebAcl) -> sdk::types::Rule {
    let (acl, _) = sdk_acl(client, Scope::Regional).await;
    assert_eq!(acl.rules()[..2], before.rules()[..]);
    acl.rules()
        .iter()
        .find(|r| r.name() == "waftune-rate")
        .cloned()
        .unwrap()
}

#[tokio::test]
async fn rate_rules_plan_apply_round_trip_and_leave_unmanaged_rules_alone() {
    let moto = Moto::start().await;
    let (client, waf) = regional(&moto);
    setup(&client, Scope::Regional).await;
    let (acl_before, _) = sdk_acl(&client, Scope::Regional).await;
    let config = rate_config(&rate_rule("waftune-rate", 20, 300, API_SCOPE));

    let plan = make_plan(&waf, &config, &Ledger::default()).await;
    let report = run_apply(&waf, &config, &Ledger::default(), &plan).await;
    assert!(report.is_complete(), "{report}");
    let rate = rate_rule_in_moto(&client, &acl_before).await;
    let statement = rate.statement().unwrap().rate_based_statement().unwrap();
    assert_eq!(
        (statement.limit(), statement.evaluation_window_sec()),
        (300, 120)
    );
    assert_eq!(
        statement.forwarded_ip_config().unwrap().header_name(),
        "X-Forwarded-For"
    );
    let scope_down = statement
        .scope_down_statement()
        .unwrap()
        .and_statement()
        .unwrap();
    assert_eq!(scope_down.statements().len(), 4);
    assert!(rate.action().unwrap().count().is_some());
    // Read back through moto, the rule is recognised as waftune's and in place: nothing to do.
    assert_in_sync(&waf, &config, &Ledger::default()).await;

    // A new limit: the plan warns that WAF resets the rule's counters, apply writes it.
    let higher = rate_config(&rate_rule("waftune-rate", 20, 500, API_SCOPE));
    let plan = make_plan(&waf, &higher, &Ledger::default()).await;
    let ResourceChange::WebAcl(change) = &plan.changes[0] else {
        panic!("a web ACL change: {plan:?}");
    };
    assert_eq!(change.rules.len(), 1);
    assert!(change.rules[0].resets_counters);
    assert!(render::text(&plan, false, false).contains("resets WAF's counters"));
    assert!(
        run_apply(&waf, &higher, &Ledger::default(), &plan)
            .await
            .is_complete()
    );
    let rate = rate_rule_in_moto(&client, &acl_before).await;
    let statement = rate.statement().unwrap().rate_based_statement().unwrap();
    assert_eq!(statement.limit(), 500);
}

#[tokio::test]
async fn capacity_is_checked_locally_when_the_web_acl_would_overflow() {
    let moto = Moto::start().await;
    let (client, waf) = regional(&moto);
    setup(&client, Scope::Regional).await;
    // Someone adds a heavy rule: 124 x 40 = 4,960 WCU, plus the two setup rules (2 + 1).
    let (acl, token) = sdk_acl(&client, Scope::Regional).await;
    let mut rules = acl.rules().to_vec();
    rules.push(heavy_rule(124));
    client
        .update_web_acl()
        .scope(sdk::types::Scope::Regional)
        .name(acl.name())
        .id(acl.id())
        .lock_token(token)
        .set_default_action(acl.default_action().cloned())
        .set_rules(Some(rules))
        .set_visibility_config(acl.visibility_config().cloned())
        .send()
        .await
        .unwrap();

    // moto reports a constant capacity, so waftune prices every statement itself:
    // 4,963 + IP-set rule 2 + rate rule (2 + geo 1 + path 2 + method 2 + label 1) = 4,973.
    let one = rate_config(&rate_rule("waftune-rate", 20, 300, API_SCOPE));
    let plan = make_plan(&waf, &one, &Ledger::default()).await;
    let ResourceChange::WebAcl(change) = plan.changes.last().unwrap() else {
        panic!("a web ACL change");
    };
    assert_eq!(
        (change.capacity.before, change.capacity.after),
        (4_963, 4_973)
    );
    assert!(
        run_apply(&waf, &one, &Ledger::default(), &plan)
            .await
            .is_complete()
    );

    // The one in place and four more would need 4,963 + 2 + 5 x 8 = 5,005: refused before
    // anything is written.
    let five: String = std::iter::once(rate_rule("waftune-rate", 20, 300, API_SCOPE))
        .chain((1..5).map(|i| rate_rule(&format!("waftune-rate-{i}"), 20 + i, 300, API_SCOPE)))
        .collect();
    let err = try_make_plan(&waf, &rate_config(&five), &Ledger::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "web ACL `shop` would need 5005 WCU after this plan, more than WAF's 5000; remove rules or simplify scope-downs"
    );
}

#[tokio::test]
async fn cli_recommended_rate_rule_plans_from_the_logs_and_applies_the_saved_plan() {
    let moto = Moto::start().await;
    let (client, _) = regional(&moto);
    setup(&client, Scope::Regional).await;
    let (acl_before, _) = sdk_acl(&client, Scope::Regional).await;
    let dir = cli_dir();
    // An empty ledger in the repository: once waftune's sets exist, a missing one is refused.
    Ledger::default()
        .save(&dir.path().join("state/blocklist.toml"))
        .unwrap();
    let cfg = dir.path().join("waftune.toml");
    let rule = "[[web_acl.rate_rule]]\nname = \"waftune-rate\"\npriority = 20\n\
                limit = \"recommended\"\nscope = [\"overseas\"]\naction = \"count\"\n";
    std::fs::write(&cfg, rate_config_text(rule)).unwrap();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sample-logs/AWSLogs");
    let run = |args: &[&str]| waftune_on_moto(&moto, dir.path(), &cfg, args);
    let with_logs = |args: &[&str]| {
        let mut cmd = run(args);
        cmd.arg("--logs")
            .arg(&sample)
            .args(["--now", "2026-11-20T02:00:00Z"]);
        cmd
    };
    // Without logs nothing can be recommended: the plan names the rule and what it needs.
    run(&["plan"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "rate rule `waftune-rate` in web ACL `shop` has `limit = \"recommended\"`",
        ));
    let planned = with_logs(&["plan", "--detailed-exitcode", "--out", "plan.json"])
        .assert()
        .code(2)
        .get_output()
        .stdout
        .clone();
    let planned = String::from_utf8(planned).unwrap();
    assert!(
        planned.contains("# limit recommended from 45000 records"),
        "{planned}"
    );
    // `apply` without a plan file reads no logs, so it cannot take the recommendation.
    run(&["apply", "--auto-approve"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("plan --logs PATH"));
    run(&["apply", "plan.json"]).assert().success();
    let rate = rate_rule_in_moto(&client, &acl_before).await;
    let statement = rate.statement().unwrap().rate_based_statement().unwrap();
    let limit = statement.limit();
    assert!(
        planned.contains(&format!("\"Limit\": {limit},")),
        "{planned}"
    );
    // Same logs, same recommendation: nothing left to do.
    with_logs(&["plan", "--detailed-exitcode"]).assert().code(0);
}

/// An endpoint answering 404 with an HTML page is named with the service, the operation, the
/// endpoint, the status and a hint, not dumped as the SDK's debug structure.
#[tokio::test]
async fn an_endpoint_that_is_not_waf_is_said_plainly() {
    let endpoint = common::not_aws::start();
    let sdk_config = aws_config::SdkConfig::builder()
        .behavior_version(sdk::config::BehaviorVersion::latest())
        .region(sdk::config::Region::new(REGION))
        .credentials_provider(sdk::config::SharedCredentialsProvider::new(
            sdk::config::Credentials::new("testing", "testing", None, None, "test"),
        ))
        .endpoint_url(&endpoint)
        .retry_config(sdk::config::retry::RetryConfig::disabled())
        .build();
    let waf = AwsWaf::new(&sdk_config, Scope::Regional, no_pacing()).unwrap();
    let err = waf.list_ip_sets().await.unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "ListIPSets `REGIONAL`: the WAFv2 endpoint `{endpoint}` answered HTTP 404 (text/html; charset=utf-8), not an AWS API answer: `<!DOCTYPE html>"
        )),
        "{err}"
    );
    assert!(err.contains("is AWS_ENDPOINT_URL right?"), "{err}");
    let err = waf.account().await.unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "GetCallerIdentity `STS`: the STS endpoint `{endpoint}` answered HTTP 404"
        )),
        "{err}"
    );
}

/// The plan file, edited as a person would edit its JSON.
fn edited(plan: &Plan, edit: impl FnOnce(&mut serde_json::Value)) -> Plan {
    let mut json: serde_json::Value = serde_json::from_str(&plan.to_json()).unwrap();
    edit(&mut json);
    Plan::from_json(&json.to_string(), Path::new("plan.json")).unwrap()
}

/// The JSON of the plan's change to IP set `name`.
fn set_change<'a>(json: &'a mut serde_json::Value, name: &str) -> &'a mut serde_json::Value {
    json["changes"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["name"] == name)
        .unwrap()
}

async fn try_apply(
    waf: &AwsWaf,
    config: &Config,
    ledger: &Ledger,
    plan: &Plan,
) -> Result<ApplyReport, waftune::apply::ApplyError> {
    let inputs = ApplyInputs {
        config,
        ledger,
        ledger_sha256: "ledger",
        extra_allowlist: &[],
    };
    apply(plan, &inputs, waf).await
}

#[tokio::test]
async fn a_broad_range_added_to_after_by_hand_is_refused_and_nothing_is_sent() {
    let moto = Moto::start().await;
    let (client, waf) = regional(&moto);
    setup(&client, Scope::Regional).await;
    let config = config("REGIONAL", false);
    let ledger = ledger(&["198.51.100.0/24"]);
    let plan = make_plan(&waf, &config, &ledger).await;
    let tampered = edited(&plan, |json| {
        let after = &mut set_change(json, "waftune-blocklist-v4")["after"]["addresses"];
        after.as_array_mut().unwrap().insert(0, "0.0.0.0/1".into());
    });
    let err = try_apply(&waf, &config, &ledger, &tampered)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "IP set `waftune-blocklist-v4`: `after` holds `0.0.0.0/1`, which the ledger does not"
        ),
        "{err}"
    );
    assert!(err.contains("nothing was applied: run plan again"), "{err}");
    assert!(
        sdk_set_summary(&client, Scope::Regional, "waftune-blocklist-v4")
            .await
            .is_none(),
        "nothing was created"
    );
}

#[tokio::test]
async fn a_set_emptied_by_hand_in_the_plan_is_refused_and_nothing_is_sent() {
    let moto = Moto::start().await;
    let (client, waf) = regional(&moto);
    setup(&client, Scope::Regional).await;
    let config = config("REGIONAL", false);
    let first = ledger(&["198.51.100.0/24", "192.0.2.7/32"]);
    let plan = make_plan(&waf, &config, &first).await;
    assert!(run_apply(&waf, &config, &first, &plan).await.is_complete());

    let more = ledger(&["198.51.100.0/24", "192.0.2.7/32", "203.0.113.9/32"]);
    let plan = make_plan(&waf, &config, &more).await;
    let tampered = edited(&plan, |json| {
        let change = set_change(json, "waftune-blocklist-v4");
        change["before"]["addresses"] = serde_json::json!([]);
        change["after"]["addresses"] = serde_json::json!([]);
        change["added"] = serde_json::json!([]);
        change["removed"] = serde_json::json!([]);
    });
    let err = try_apply(&waf, &config, &more, &tampered)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "IP set `waftune-blocklist-v4`: `after` lacks `192.0.2.7/32`, which the ledger holds (3 such)"
        ),
        "{err}"
    );
    let (_, _, v4) = sdk_set(&client, Scope::Regional, "waftune-blocklist-v4")
        .await
        .unwrap();
    assert_eq!(v4.len(), 2, "the set keeps its entries: {v4:?}");
}

#[tokio::test]
async fn guardrails_count_removals_on_the_live_set_not_the_plans_before() {
    let moto = Moto::start().await;
    let (client, waf) = regional(&moto);
    setup(&client, Scope::Regional).await;
    let config = config("REGIONAL", false);
    let three = ledger(&["10.0.0.1/32", "10.0.0.3/32", "10.0.0.5/32"]);
    let plan = make_plan(&waf, &config, &three).await;
    assert!(run_apply(&waf, &config, &three, &plan).await.is_complete());

    // Two removals where the configuration allows one; the file claims the set held only the rest.
    let strict = Config::parse(
        &config_text("REGIONAL", false).replace("max_removals = 50000", "max_removals = 1"),
        Path::new("waftune.toml"),
    )
    .unwrap();
    let one = ledger(&["10.0.0.1/32"]);
    let plan = make_plan(&waf, &strict, &one).await;
    let tampered = edited(&plan, |json| {
        let change = set_change(json, "waftune-blocklist-v4");
        change["before"]["addresses"] = serde_json::json!(["10.0.0.1/32"]);
        change["removed"] = serde_json::json!([]);
    });
    let err = try_apply(&waf, &strict, &one, &tampered)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("IP set `waftune-blocklist-v4`: `before` lacks `10.0.0.3/32`, unlike the live set at the plan's lock token (2 such)"),
        "{err}"
    );
    // Even with `before` true to the live set, the live state decides: two removals, one allowed.
    let err = try_apply(&waf, &strict, &one, &plan)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("removes 2 entries, more than guardrails.max_removals = 1"),
        "{err}"
    );
    let (_, _, v4) = sdk_set(&client, Scope::Regional, "waftune-blocklist-v4")
        .await
        .unwrap();
    assert_eq!(v4.len(), 3, "nothing was removed: {v4:?}");
}

/// The account is checked through STS even where no IP set's ARN tells it.
#[tokio::test]
async fn the_account_is_checked_even_without_ip_sets() {
    let moto = Moto::start().await;
    let (client, waf) = regional(&moto);
    client
        .create_web_acl()
        .scope(sdk::types::Scope::Regional)
        .name("shop")
        .default_action(
            sdk::types::DefaultAction::builder()
                .allow(sdk::types::AllowAction::builder().build())
                .build(),
        )
        .visibility_config(visibility("shop"))
        .send()
        .await
        .unwrap();
    assert!(sdk_sets(&client, Scope::Regional).await.is_empty());
    let config = config("REGIONAL", false);
    let ledger = ledger(&["192.0.2.0/24"]);
    let plan = make_plan(&waf, &config, &ledger).await;
    assert_eq!(plan.account.as_deref(), Some("123456789012"));
    let other = edited(&plan, |json| json["account"] = "210987654321".into());
    let err = try_apply(&waf, &config, &ledger, &other)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "the plan is for account `210987654321`, but the credentials reach account `123456789012`"
    );
    let none = edited(&plan, |json| json["account"] = serde_json::Value::Null);
    let err = try_apply(&waf, &config, &ledger, &none)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("the plan names no account"), "{err}");
    assert!(sdk_sets(&client, Scope::Regional).await.is_empty());
    assert!(run_apply(&waf, &config, &ledger, &plan).await.is_complete());
}

/// The test configuration's text with an ASN rule (`more`: TOML after its action) before
/// `[guardrails]`.
fn asn_config_text(more: &str) -> String {
    config_text("REGIONAL", false).replace(
        "[guardrails]",
        &format!(
            "[[web_acl.asn_rule]]\nname = \"waftune-asn\"\nlist = \"hosting\"\npriority = 5\naction = \"block\"\n{more}\n\n[guardrails]"
        ),
    )
}

fn asn_config(more: &str) -> Config {
    Config::parse(&asn_config_text(more), Path::new("waftune.toml")).unwrap()
}

/// A ledger of ASNs in list `hosting`, each `(number, expires)`.
fn asn_ledger(asns: &[(u32, Option<&str>)]) -> Ledger {
    Ledger {
        asns: asns
            .iter()
            .map(|(n, expires)| AsnEntry {
                asn: Asn::new(*n).unwrap(),
                list: "hosting".into(),
                policy: MANUAL.into(),
                reason: "scraping from a hosting provider".into(),
                added: "2026-11-20T00:00:00Z".parse().unwrap(),
                expires: expires.map(|e| e.parse().unwrap()),
            })
            .collect(),
        ..Ledger::default()
    }
}

/// waftune's ASN rule as moto holds it (if any), after checking the two rules waftune does not
/// manage are exactly as they were.
async fn asn_rule_in_moto(
    client: &sdk::Client,
    before: &sdk::types::WebAcl,
) -> Option<sdk::types::Rule> {
    let (acl, _) = sdk_acl(client, Scope::Regional).await;
    assert_eq!(acl.rules()[..2], before.rules()[..]);
    acl.rules()
        .iter()
        .find(|r| r.name() == "waftune-asn")
        .cloned()
}

fn asn_list(rule: &sdk::types::Rule) -> Vec<i64> {
    rule.statement()
        .unwrap()
        .asn_match_statement()
        .unwrap()
        .asn_list()
        .to_vec()
}

#[tokio::test]
async fn asn_rule_plan_apply_replan_and_expiry_through_moto() {
    let moto = Moto::start().await;
    let (client, waf) = regional(&moto);
    setup(&client, Scope::Regional).await;
    let (acl_before, _) = sdk_acl(&client, Scope::Regional).await;
    let config = asn_config("");
    let past = Some("2026-01-01T00:00:00Z");

    let both = asn_ledger(&[(64500, None), (64496, None)]);
    let plan = make_plan(&waf, &config, &both).await;
    assert!(run_apply(&waf, &config, &both, &plan).await.is_complete());
    let rule = asn_rule_in_moto(&client, &acl_before).await.unwrap();
    assert_eq!(asn_list(&rule), [64496, 64500]);
    assert!(rule.action().unwrap().block().is_some());
    // Read back through moto, the rule is recognised as waftune's and in place.
    assert_in_sync(&waf, &config, &both).await;

    // AS64496 expired: the plan shows it going, apply writes the shorter list.
    let one = asn_ledger(&[(64500, None), (64496, past)]);
    let plan = make_plan(&waf, &config, &one).await;
    let text = render::text(&plan, false, false);
    assert!(text.contains("        - AS64496\n"), "{text}");
    assert!(run_apply(&waf, &config, &one, &plan).await.is_complete());
    let rule = asn_rule_in_moto(&client, &acl_before).await.unwrap();
    assert_eq!(asn_list(&rule), [64500]);
    assert!(!make_plan(&waf, &config, &one).await.has_changes());

    // The last one expired: WAF takes no empty ASN list, so the rule goes, and stays gone.
    let none = asn_ledger(&[(64500, past), (64496, past)]);
    let plan = make_plan(&waf, &config, &none).await;
    assert!(run_apply(&waf, &config, &none, &plan).await.is_complete());
    assert_eq!(asn_rule_in_moto(&client, &acl_before).await, None);
    assert!(!make_plan(&waf, &config, &none).await.has_changes());
}

#[tokio::test]
async fn rate_limited_asn_rule_round_trips_through_moto() {
    let moto = Moto::start().await;
    let (client, waf) = regional(&moto);
    setup(&client, Scope::Regional).await;
    let (acl_before, _) = sdk_acl(&client, Scope::Regional).await;
    let config = asn_config("limit = 200\nwindow = \"5m\"\nkey = \"asn\"");
    let ledger = asn_ledger(&[(64496, None), (64511, None)]);
    let plan = make_plan(&waf, &config, &ledger).await;
    assert!(run_apply(&waf, &config, &ledger, &plan).await.is_complete());
    let rule = asn_rule_in_moto(&client, &acl_before).await.unwrap();
    let rate = rule.statement().unwrap().rate_based_statement().unwrap();
    assert_eq!(
        rate.aggregate_key_type(),
        &sdk::types::RateBasedStatementAggregateKeyType::CustomKeys
    );
    assert!(rate.custom_keys()[0].asn().is_some());
    let scope = rate.scope_down_statement().unwrap();
    assert_eq!(
        scope.asn_match_statement().unwrap().asn_list(),
        [64496, 64511]
    );
    assert_in_sync(&waf, &config, &ledger).await;
}

#[tokio::test]
async fn an_asn_list_past_the_limit_is_refused_and_nothing_is_sent() {
    let moto = Moto::start().await;
    let (client, waf) = regional(&moto);
    setup(&client, Scope::Regional).await;
    let (acl_before, _) = sdk_acl(&client, Scope::Regional).await;
    let config = asn_config("");
    let entries: Vec<(u32, Option<&str>)> = (1..=101).map(|n| (n, None)).collect();
    let err = try_make_plan(&waf, &config, &asn_ledger(&entries))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("has 101 active ASNs, more than the 100"),
        "{err}"
    );

    // A plan file edited past the limit is refused before anything is sent.
    let ledger = asn_ledger(&[(64496, None)]);
    let plan = make_plan(&waf, &config, &ledger).await;
    let tampered = edited(&plan, |json| {
        let acl = json["changes"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|c| c["kind"] == "web_acl")
            .unwrap();
        let rule = acl["rules"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|r| r["name"] == "waftune-asn")
            .unwrap();
        rule["after"]["statement"]["asns"] = (1..=101).collect::<Vec<u32>>().into();
    });
    let err = try_apply(&waf, &config, &ledger, &tampered)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("rule `waftune-asn` is not the rule the config and the ledger give"),
        "{err}"
    );
    assert_eq!(asn_rule_in_moto(&client, &acl_before).await, None);
}

#[tokio::test]
async fn cli_blocks_an_asn_and_applies_it() {
    let moto = Moto::start().await;
    let (client, _) = regional(&moto);
    setup(&client, Scope::Regional).await;
    let dir = cli_dir();
    let cfg = dir.path().join("waftune.toml");
    std::fs::write(&cfg, asn_config_text("")).unwrap();
    let run = |args: &[&str]| waftune_on_moto(&moto, dir.path(), &cfg, args).assert();
    let bad = run(&["block", "--init-ledger", "AS0", "--reason", "x"])
        .failure()
        .get_output()
        .stderr
        .clone();
    let bad = String::from_utf8(bad).unwrap();
    assert!(
        bad.contains("ASN `AS0` is out of range: ASNs run from 1 to 4294967295"),
        "{bad}"
    );
    let bad = run(&["block", "--init-ledger", "AS4294967296", "--reason", "x"])
        .failure()
        .get_output()
        .stderr
        .clone();
    assert!(
        String::from_utf8(bad)
            .unwrap()
            .contains("`AS4294967296` is out of range")
    );
    run(&[
        "block",
        "--init-ledger",
        "AS64496",
        "--for",
        "30d",
        "--reason",
        "scraping from a hosting provider",
    ])
    .success();
    let ledger = std::fs::read_to_string(dir.path().join("state/blocklist.toml")).unwrap();
    assert!(
        ledger.contains("[[asn]]\nasn = \"AS64496\"\nlist = \"hosting\"\n"),
        "{ledger}"
    );
    let planned = run(&["plan", "--detailed-exitcode", "--out", "plan.json"])
        .code(2)
        .get_output()
        .stdout
        .clone();
    let planned = String::from_utf8(planned).unwrap();
    assert!(
        planned.contains("rule \"waftune-asn\" will be added:\n        + AS64496\n"),
        "{planned}"
    );
    run(&["apply", "plan.json"]).success();
    run(&["plan", "--detailed-exitcode"]).code(0);
    let (acl, _) = sdk_acl(&client, Scope::Regional).await;
    let rule = acl
        .rules()
        .iter()
        .find(|r| r.name() == "waftune-asn")
        .unwrap();
    assert_eq!(asn_list(rule), [64496]);
    run(&["unblock", "AS64496"]).success();
    let planned = run(&["plan", "--detailed-exitcode"])
        .code(2)
        .get_output()
        .stdout
        .clone();
    let planned = String::from_utf8(planned).unwrap();
    assert!(
        planned.contains("rule \"waftune-asn\" will be removed"),
        "{planned}"
    );
}
