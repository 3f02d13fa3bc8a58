//! The shipped policies against the generator's output, whose truth file says who every client is.
//! Every scanner, scraper and fake crawler must be caught; no verified crawler, browser or monitor
//! may end up in an IP set.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use ipnet::IpNet;
use jiff::Timestamp;
use waftune::ledger::Ledger;
use waftune::log::discover;
use waftune::propose::{Capacity, Verdict, evaluate, update_ledger};
use waftune::scan::{ScanOptions, scan};
use waftune_generate::{ActorClass, Truth};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn shipped_policies_catch_the_bad_actors_and_spare_the_good_ones() {
    let policies = waftune::policy::load_dir(&root().join("policies"), None)
        .expect("shipped policies load")
        .policies;
    let logs = root().join("examples/sample-logs/AWSLogs");
    let truth: Truth = serde_json::from_slice(
        &std::fs::read(root().join("examples/sample-logs/truth.json")).unwrap(),
    )
    .unwrap();
    let options = ScanOptions {
        home_country: Some("JP".into()),
        ..ScanOptions::default()
    }
    .with_policies(policies.policies.clone());
    let found = discover(&[logs], &options.range).unwrap();
    let traffic = scan(&found.files, &options, Arc::new(|_| {}));
    let now: Timestamp = "2026-11-20T02:00:00Z".parse().unwrap();
    let findings = evaluate(&policies, &traffic, now);
    let capacity: Capacity = [("blocklist".to_owned(), 10_000)].into();
    let ledger = update_ledger(&Ledger::default(), &findings, &policies, &capacity, now)
        .unwrap()
        .ledger;
    let blocked: Vec<IpNet> = ledger.entries.iter().map(|e| e.cidr).collect();
    let is_blocked = |ip: &str| {
        let ip: std::net::IpAddr = ip.parse().unwrap();
        blocked.iter().any(|n| n.contains(&ip))
    };

    let mut by_class: BTreeMap<ActorClass, (usize, usize)> = BTreeMap::new();
    for actor in &truth.actors {
        for ip in &actor.ips {
            let e = by_class.entry(actor.class).or_default();
            e.0 += 1;
            e.1 += usize::from(is_blocked(ip));
        }
    }
    let bad = [
        ActorClass::FakeCrawler,
        ActorClass::Scraper,
        ActorClass::PathScanner,
        ActorClass::CredentialStuffer,
    ];
    let bad_ips: BTreeSet<&str> = truth
        .actors
        .iter()
        .filter(|a| bad.contains(&a.class))
        .flat_map(|a| a.ips.iter().map(String::as_str))
        .collect();
    let true_positives = ledger
        .entries
        .iter()
        .filter(|e| {
            bad_ips
                .iter()
                .any(|ip| e.cidr.contains(&ip.parse::<std::net::IpAddr>().unwrap()))
        })
        .count();
    println!("class: caught / IPs");
    for (class, (ips, caught)) in &by_class {
        println!("  {class:?}: {caught} / {ips}");
    }
    println!(
        "ledger precision: {true_positives} of {} entries hold a bad actor",
        ledger.entries.len()
    );

    for class in [
        ActorClass::PathScanner,
        ActorClass::Scraper,
        ActorClass::FakeCrawler,
    ] {
        let (ips, caught) = by_class[&class];
        assert_eq!(caught, ips, "every {class:?} IP must be caught");
    }
    for class in [
        ActorClass::VerifiedCrawler,
        ActorClass::Browser,
        ActorClass::Monitor,
    ] {
        assert_eq!(by_class[&class].1, 0, "no {class:?} IP may be blocked");
    }
    assert_eq!(
        true_positives,
        ledger.entries.len(),
        "every entry holds a bad actor"
    );
    // Bursting credential stuffers are caught; the low-and-slow ones are below any per-IP threshold.
    let stuffers = truth
        .actors
        .iter()
        .find(|a| a.name == "stuffing-bursts")
        .unwrap();
    assert!(stuffers.ips.iter().all(|ip| is_blocked(ip)));

    // The verified crawler's extreme episode is reported (with a rate-limit suggestion), never blocked.
    let googlebot = findings
        .iter()
        .find(|f| f.policy == "crawler-excess")
        .expect("the crawler episode is reported");
    assert!(matches!(googlebot.verdict, Verdict::Report { .. }));
}
