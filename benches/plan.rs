//! Planning benchmark: two 10,000-entry sets (IPv4 and IPv6) against live sets of the same size of
//! which about 10% differ. The target is under 50 ms of CPU for the whole plan (desired state from
//! the ledger, merge, diff, drift check); Terraform's provider diffs these lists in O(n^2).
//!
//! Run with `cargo bench --bench plan`. Single-threaded, so wall time is CPU time.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use jiff::Timestamp;
use waftune::config::Config;
use waftune::ledger::{Ledger, LedgerEntry, MANUAL};
use waftune::model::acl::Scope;
use waftune::model::waf::IpVersion;
use waftune::plan::{PlanInputs, build_plan, stamp_description};
use waftune::waf::{IpSet, IpSetSummary, LiveWaf};

const SIZE: u32 = 10_000;
const RUNS: usize = 30;

const CONFIG: &str = r#"
scope = "REGIONAL"
region = "ap-northeast-1"
[[ip_set_group]]
name = "blocklist"
ipv4_set_name = "bl-v4"
ipv6_set_name = "bl-v6"
"#;

/// The i-th address of a family, spaced so that no two merge.
fn v4(i: u32) -> IpNet {
    IpNet::from(std::net::IpAddr::from(Ipv4Addr::from(0x0a00_0000 + 2 * i)))
}

fn v6(i: u32) -> IpNet {
    let addr = Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(i) << 65);
    IpNet::new(std::net::IpAddr::from(addr), 64).unwrap()
}

fn live_set(name: &str, version: IpVersion, nets: &[IpNet], at: Timestamp) -> IpSet {
    let mut sorted = nets.to_vec();
    sorted.sort_unstable();
    IpSet {
        name: name.into(),
        id: format!("id-{name}"),
        arn: format!("arn:aws:wafv2:ap-northeast-1:123456789012:regional/ipset/{name}/id-{name}"),
        description: Some(stamp_description(
            "Managed by waftune, group blocklist",
            at,
            &sorted,
        )),
        version,
        addresses: sorted.iter().map(ToString::to_string).collect(),
        lock_token: "token".into(),
    }
}

fn main() {
    let config = Config::parse(CONFIG, Path::new("waftune.toml")).unwrap();
    let then: Timestamp = "2026-11-01T00:00:00Z".parse().unwrap();
    let now: Timestamp = "2026-11-20T00:00:00Z".parse().unwrap();

    // Ledger: entries 0..SIZE of each family. Live: entries SIZE/10..SIZE + SIZE/10, so 10% of each
    // set is to add and 10% to remove.
    let shift = SIZE / 10;
    let entry = |cidr: IpNet| LedgerEntry {
        cidr,
        group: "blocklist".into(),
        policy: MANUAL.into(),
        reason: "bench".into(),
        first_seen: then,
        last_seen: then,
        added: then,
        expires: None,
        strikes: 1,
    };
    let mut ledger = Ledger {
        entries: (0..SIZE)
            .flat_map(|i| [entry(v4(i)), entry(v6(i))])
            .collect(),
        ..Ledger::default()
    };
    ledger.sort();
    let live_v4: Vec<IpNet> = (shift..SIZE + shift).map(v4).collect();
    let live_v6: Vec<IpNet> = (shift..SIZE + shift).map(v6).collect();
    let sets = vec![
        live_set("bl-v4", IpVersion::V4, &live_v4, then),
        live_set("bl-v6", IpVersion::V6, &live_v6, then),
    ];
    let live = LiveWaf {
        format_version: 1,
        fetched_at: now,
        scope: Scope::Regional,
        region: "ap-northeast-1".into(),
        account: Some("123456789012".into()),
        ip_sets: sets
            .iter()
            .map(|s| IpSetSummary {
                name: s.name.clone(),
                id: s.id.clone(),
                arn: s.arn.clone(),
                lock_token: s.lock_token.clone(),
            })
            .collect(),
        managed_ip_sets: sets,
        web_acls: Vec::new(),
    };
    let inputs = PlanInputs {
        config: &config,
        ledger: &ledger,
        ledger_sha256: "bench",
        live: &live,
        now,
        recommended: &BTreeMap::new(),
    };

    let mut times: Vec<Duration> = Vec::with_capacity(RUNS);
    let mut counts = BTreeMap::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let plan = build_plan(&inputs).unwrap();
        times.push(start.elapsed());
        let s = plan.summary();
        counts.insert((s.change, s.entries_added, s.entries_removed), ());
    }
    times.sort();
    let (change, added, removed) = *counts.keys().next().unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!(
        (change, added, removed),
        (2, 2 * shift as usize, 2 * shift as usize)
    );
    println!(
        "plan: 2 sets x {SIZE} entries vs live (10% differ: +{added} -{removed}): \
         min {:.1} ms, median {:.1} ms, max {:.1} ms over {RUNS} runs (target < 50 ms)",
        times[0].as_secs_f64() * 1e3,
        times[RUNS / 2].as_secs_f64() * 1e3,
        times[RUNS - 1].as_secs_f64() * 1e3,
    );
}
