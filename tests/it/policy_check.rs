//! The shipped policies, seen from outside: they load cleanly, and on the bundled sample traffic
//! (whose truth file says who is who) they catch the misbehaving clients without touching people
//! or verified crawlers.
//!
//! The sample is evaluated by a deliberately naive reference counter written here, independent of
//! the scan engine, so that this test judges the policies and nothing else.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use ipnet::IpNet;
use waftune::log::{Action, ScanRecord};
use waftune::model::rate::Window;
use waftune::policy::{self, KeyCounts, KeyKind, PolicyAction};
use waftune::util::diag::Severity;
use waftune_generate::{ActorClass, Truth};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The groups `examples/waftune.toml` configures.
fn example_groups() -> Vec<String> {
    let config = waftune::config::Config::load(&root().join("examples/waftune.toml")).unwrap();
    config.ip_set_groups.into_iter().map(|g| g.name).collect()
}

#[test]
fn shipped_policies_load_without_errors_or_warnings() {
    let groups = example_groups();
    let loaded = match policy::load_dir(&root().join("policies"), Some(&groups)) {
        Ok(l) => l,
        Err(diags) => panic!(
            "{}",
            diags
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ),
    };
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let names: Vec<&str> = loaded
        .policies
        .policies
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "crawler-excess",
            "credential-stuffing",
            "credential-stuffing-campaign",
            "fake-crawler",
            "flood",
            "flood-overseas",
            "managed-rule-repeat",
            "path-scanner",
            "path-scanner-campaign",
            "scraper",
            "scraper-sustained",
        ]
    );
    // Verified crawlers are reported, never blocked.
    let crawler = &loaded.policies.policies[0];
    assert!(matches!(&crawler.action, PolicyAction::Report(r) if r.rate_limit.is_some()));
    assert!(!loaded.policies.allowlist.entries.is_empty());
}

#[test]
fn a_single_file_loads_too_and_unknown_groups_warn() {
    let loaded = policy::load_dir(
        &root().join("policies/floods.toml"),
        Some(&["other".to_string()]),
    )
    .unwrap();
    assert_eq!(loaded.policies.policies.len(), 2);
    assert_eq!(loaded.warnings.len(), 2);
    assert!(
        loaded
            .warnings
            .iter()
            .all(|w| w.severity == Severity::Warning)
    );
    assert!(
        loaded.warnings[0]
            .to_string()
            .contains("blocks into group `blocklist`, which waftune.toml does not configure"),
        "{}",
        loaded.warnings[0]
    );
}

#[test]
fn a_directory_without_policy_files_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = policy::load_dir(dir.path(), None).unwrap_err();
    assert_eq!(err.len(), 1);
    assert_eq!(
        err[0].to_string(),
        format!(
            "{}: error: no policy files (`*.toml`) in `{}`",
            dir.path().display(),
            dir.path().display()
        )
    );
}

/// Per policy and key: what the scan would count.
#[derive(Default)]
struct Acc {
    requests: u64,
    per_minute: BTreeMap<i64, u64>,
    uris: BTreeSet<String>,
    blocked: u64,
}

/// Per key: every label and user agent it sent, which is what allowlists look at.
#[derive(Default)]
struct Sent {
    labels: BTreeSet<String>,
    user_agents: BTreeSet<String>,
}

impl Acc {
    fn counts(&self) -> KeyCounts {
        let peak = |w: Window| {
            let width = i64::from(w.minutes());
            self.per_minute
                .keys()
                .map(|end| {
                    self.per_minute
                        .range(end - width + 1..=*end)
                        .map(|(_, n)| n)
                        .sum()
                })
                .max()
                .unwrap_or(0)
        };
        KeyCounts {
            requests: self.requests,
            peaks: Window::ALL.map(peak),
            distinct_uris: self.uris.len() as u64,
            blocked: self.blocked,
            ..KeyCounts::default()
        }
    }
}

fn sample_lines() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.to_string_lossy().ends_with(".log.gz") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root().join("examples/sample-logs/AWSLogs"), &mut files);
    files.sort();
    let mut lines = Vec::new();
    for f in files {
        let mut text = String::new();
        GzDecoder::new(std::fs::File::open(f).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        lines.extend(text.lines().map(str::to_owned));
    }
    lines
}

#[test]
fn shipped_policies_on_the_sample_catch_offenders_and_spare_people() {
    let loaded = policy::load_dir(&root().join("policies"), Some(&example_groups())).unwrap();
    let policies = &loaded.policies.policies;
    let truth: Truth = serde_json::from_str(
        &std::fs::read_to_string(root().join("examples/sample-logs/truth.json")).unwrap(),
    )
    .unwrap();
    let mut acc: HashMap<(usize, IpNet), Acc> = HashMap::new();
    let mut sent: HashMap<IpNet, Sent> = HashMap::new();
    let mut offenders_of: HashMap<(usize, IpNet), BTreeSet<IpAddr>> = HashMap::new();
    for line in sample_lines() {
        let r: ScanRecord = sonic_rs::from_str(&line).unwrap();
        let Some(ip) = r.client_ip() else { continue };
        for kind in [KeyKind::Ip, KeyKind::Prefix] {
            let s = sent.entry(kind.key(ip)).or_default();
            s.labels.extend(r.label_names().map(str::to_owned));
            s.user_agents.extend(r.user_agent().map(str::to_owned));
        }
        for (i, p) in policies.iter().enumerate() {
            if !p.matcher.matches(&r) {
                continue;
            }
            let a = acc.entry((i, p.key.key(ip))).or_default();
            a.requests += 1;
            *a.per_minute
                .entry(r.timestamp.div_euclid(60_000))
                .or_default() += 1;
            a.uris
                .insert(r.http_request.uri.as_deref().unwrap_or("").to_owned());
            a.blocked += u64::from(r.action() == Action::Block);
        }
    }

    let now = truth.end;
    // Which policies fired for which class (a key may fire several policies).
    let class_of: HashMap<IpAddr, ActorClass> = truth
        .actors
        .iter()
        .flat_map(|a| a.ips.iter().map(|ip| (ip.parse().unwrap(), a.class)))
        .collect();
    let mut fired_by: BTreeMap<(&str, ActorClass), usize> = BTreeMap::new();
    for ((i, net), a) in &acc {
        if policies[*i].thresholds.check(&a.counts()).is_some()
            && let Some(class) = class_of.get(&net.addr())
        {
            *fired_by.entry((&policies[*i].name, *class)).or_default() += 1;
        }
    }
    println!("keys whose counts fired each policy (before allowlists), by class: {fired_by:?}");

    // Keys proposed for a block (with the policy), and keys only reported.
    let mut blocked: BTreeMap<IpNet, &str> = BTreeMap::new();
    let mut reported: BTreeMap<IpNet, &str> = BTreeMap::new();
    let mut keys: Vec<&(usize, IpNet)> = acc.keys().collect();
    keys.sort();
    for key @ (i, net) in keys {
        let a = &acc[key];
        let p = &policies[*i];
        if p.thresholds.check(&a.counts()).is_none() {
            continue;
        }
        let labels: Vec<&str> = sent[net].labels.iter().map(String::as_str).collect();
        let uas: Vec<&str> = sent[net].user_agents.iter().map(String::as_str).collect();
        if loaded
            .policies
            .suppresses(p, net, &labels, &uas, now)
            .is_some()
        {
            continue;
        }
        match &p.action {
            PolicyAction::Block(_) => {
                blocked.entry(*net).or_insert(&p.name);
                if p.aggregate.is_some() && p.key == KeyKind::Ip {
                    offenders_of
                        .entry((*i, KeyKind::Prefix.key(net.addr())))
                        .or_default()
                        .insert(net.addr());
                }
            }
            PolicyAction::Report(_) => {
                reported.entry(*net).or_insert(&p.name);
            }
        }
    }
    for ((i, prefix), ips) in &offenders_of {
        let min = policies[*i].aggregate.unwrap().min_offenders as usize;
        if ips.len() >= min {
            blocked.entry(*prefix).or_insert(&policies[*i].name);
        }
    }

    let covered = |ip: &str, keys: &BTreeMap<IpNet, &str>| {
        let ip: IpAddr = ip.parse().unwrap();
        keys.keys().any(|k| k.contains(&ip))
    };
    let mut by_class: BTreeMap<ActorClass, (usize, usize)> = BTreeMap::new();
    let mut innocent_blocked = Vec::new();
    for actor in &truth.actors {
        for ip in &actor.ips {
            let caught = covered(ip, &blocked);
            let e = by_class.entry(actor.class).or_default();
            e.0 += usize::from(caught);
            e.1 += 1;
            let innocent = matches!(
                actor.class,
                ActorClass::Browser | ActorClass::VerifiedCrawler | ActorClass::Monitor
            );
            if caught && innocent {
                innocent_blocked.push(format!("{} ({})", ip, actor.name));
            }
        }
    }
    let blocked_ips = truth
        .actors
        .iter()
        .flat_map(|a| a.ips.iter())
        .filter(|ip| covered(ip, &blocked))
        .count();
    for (class, (caught, total)) in &by_class {
        println!("{class:?}: {caught} of {total} addresses blocked");
    }
    println!(
        "precision: {} of {blocked_ips} blocked addresses are offenders",
        blocked_ips - innocent_blocked.len()
    );
    let mut per_policy: BTreeMap<&str, usize> = BTreeMap::new();
    for name in blocked.values() {
        *per_policy.entry(name).or_default() += 1;
    }
    println!("blocked keys per policy (first policy to fire): {per_policy:?}");
    println!("reported (not blocked): {reported:?}");

    assert!(innocent_blocked.is_empty(), "{innocent_blocked:?}");
    for class in [
        ActorClass::PathScanner,
        ActorClass::Scraper,
        ActorClass::FakeCrawler,
    ] {
        let (caught, total) = by_class[&class];
        assert_eq!(caught, total, "{class:?}: {caught} of {total}");
    }
    // The verified crawler's extreme episode is reported, with its rate-limit hint, not blocked.
    let googlebot = truth
        .actors
        .iter()
        .find(|a| a.class == ActorClass::VerifiedCrawler && a.name == "googlebot")
        .unwrap();
    assert!(
        googlebot.ips.iter().any(|ip| covered(ip, &reported)),
        "{reported:?}"
    );
}
