use std::path::Path;

use super::block::{RangeTraffic, judge};
use super::*;
use crate::scan::{ScanOptions, scan_bytes};

const H: i64 = 3_600_000;
const T0: i64 = 1_790_000_000_000 / H * H;

fn rec(ts: i64, ip: &str, action: &str, rule: &str, ua: &str) -> String {
    format!(
        r#"{{"timestamp":{ts},"action":"{action}","terminatingRuleId":"{rule}","httpRequest":{{"clientIp":"{ip}","country":"US","uri":"/x","headers":[{{"name":"User-Agent","value":"{ua}"}}]}}}}"#
    )
}

fn config() -> Config {
    let text = std::fs::read_to_string("examples/waftune.toml").unwrap();
    Config::parse(&text, Path::new("examples/waftune.toml")).unwrap()
}

fn ledger(entries: &[(&str, i64)]) -> Ledger {
    let ts = |ms: i64| Timestamp::from_millisecond(ms).unwrap();
    let text: String = entries
        .iter()
        .map(|(cidr, added)| {
            format!(
                "[[entry]]\ncidr = \"{cidr}\"\ngroup = \"blocklist\"\npolicy = \"p\"\nreason = \"r\"\nfirst_seen = \"{a}\"\nlast_seen = \"{a}\"\nadded = \"{a}\"\nexpires = \"{x}\"\nstrikes = 1\n",
                a = ts(*added),
                x = ts(*added + 30 * 24 * H)
            )
        })
        .collect();
    Ledger::parse(&text, Path::new("l.toml")).unwrap()
}

/// A policy reporting every client with two requests or more.
fn busy() -> PolicySet {
    crate::policy::parse_str(
        "[[policy]]\nname = \"busy\"\ndescription = \"d\"\nkey = \"ip\"\n\
         [policy.thresholds]\nrequests = 2\n[policy.action]\ntype = \"report\"\n",
        Path::new("p.toml"),
        None,
    )
    .unwrap()
    .policies
}

#[test]
fn verdicts_follow_the_definitions() {
    let base = RangeTraffic {
        requests_after: 10,
        answered: 10,
        first_answer_ms: Some(T0),
        last_seen_ms: Some(T0 + H),
        rotated_to: Vec::new(),
    };
    let end = T0 + 48 * H;
    assert_eq!(judge(&base, end).0, Verdict::Stopped);
    // Less than 24 h of logs after the first answer: too early to tell.
    assert_eq!(judge(&base, T0 + 23 * H).0, Verdict::NoData);
    // Still sending 23 h after the first answer, logs ending 25 h after it: too early, not stopped.
    let late = RangeTraffic {
        last_seen_ms: Some(T0 + 23 * H),
        ..base.clone()
    };
    assert_eq!(judge(&late, T0 + 25 * H).0, Verdict::NoData);
    assert_eq!(judge(&late, T0 + 47 * H).0, Verdict::Stopped);
    let persisting = RangeTraffic {
        last_seen_ms: Some(T0 + 30 * H),
        ..base.clone()
    };
    assert_eq!(judge(&persisting, end).0, Verdict::Persisting);
    let rotated = RangeTraffic {
        rotated_to: vec!["203.0.113.9".into()],
        ..base.clone()
    };
    assert_eq!(judge(&rotated, end).0, Verdict::Rotated);
    let unanswered = RangeTraffic {
        answered: 0,
        first_answer_ms: None,
        ..base.clone()
    };
    assert_eq!(judge(&unanswered, end).0, Verdict::NotEnforced);
    let silent = RangeTraffic {
        requests_after: 0,
        ..unanswered
    };
    assert_eq!(judge(&silent, end).0, Verdict::NoData);
}

/// Four blocked clients over two days, answered by the configured rule `waftune-blocklist`: one
/// stops, one persists, one rotates to a neighbour, one is never answered; one entry sees nothing.
#[test]
fn block_effect_on_logs() {
    let added = T0 + 2 * H;
    let mut lines = Vec::new();
    let rule = "waftune-blocklist";
    for i in 0..4 {
        for (ip, ua) in [
            ("198.51.100.1", "stopper"),
            ("198.51.100.2", "stayer"),
            ("203.0.113.5", "rotator"),
            ("192.0.2.200", "unanswered"),
        ] {
            lines.push(rec(T0 + i * H / 4, ip, "ALLOW", "Default_Action", ua));
        }
    }
    lines.push(rec(
        added + 60_000,
        "198.51.100.1",
        "BLOCK",
        rule,
        "stopper",
    ));
    for h in 0..40 {
        lines.push(rec(added + h * H, "198.51.100.2", "BLOCK", rule, "stayer"));
    }
    lines.push(rec(added + 60_000, "203.0.113.5", "BLOCK", rule, "rotator"));
    lines.push(rec(
        added + 3 * H,
        "203.0.113.77",
        "ALLOW",
        "Default_Action",
        "rotator",
    ));
    lines.push(rec(
        added + H,
        "192.0.2.200",
        "ALLOW",
        "Default_Action",
        "unanswered",
    ));
    // A neighbour with another user agent is no rotation.
    lines.push(rec(
        added + 3 * H,
        "198.51.100.9",
        "ALLOW",
        "Default_Action",
        "other",
    ));
    let config = config();
    let policies = busy();
    let options = ScanOptions {
        range: crate::log::TimeRange {
            since: Some(T0),
            until: Some(T0 + 48 * H),
        },
        home_country: Some("JP".into()),
        ..ScanOptions::default()
    }
    .with_policies(scan_policies(&config, Some("JP"), &policies).unwrap());
    let t = scan_bytes("t", lines.join("\n").as_bytes(), &options);
    let ledger = ledger(&[
        ("198.51.100.1/32", added),
        ("198.51.100.2/32", added),
        ("203.0.113.5/32", added),
        ("192.0.2.200/32", added),
        ("10.0.0.0/24", added),
        // Added after the period: not in force during it.
        ("10.9.0.0/24", T0 + 60 * H),
    ]);
    let period = Period {
        start_ms: T0,
        end_ms: T0 + 48 * H,
    };
    let now = Timestamp::from_millisecond(period.end_ms).unwrap();
    let r = build(&Inputs {
        traffic: &t,
        previous: None,
        period,
        ledger: &ledger,
        config: &config,
        policies: &policies,
        now,
        origin: None,
    });
    // Findings of the policy, as campaigns: one per user agent, every member listed.
    let c = &r.campaigns;
    let shape: Vec<(Option<&str>, usize, usize)> = c
        .campaigns
        .iter()
        .map(|c| {
            let c = (&c.campaign, c.top_members.len());
            (c.0.signature.user_agent.as_deref(), c.0.size, c.1)
        })
        .collect();
    assert_eq!(c.findings, shape.iter().map(|s| s.1 as u64).sum::<u64>());
    assert!(shape.contains(&(Some("stayer"), 1, 1)), "{shape:?}");
    let stayer = c
        .campaigns
        .iter()
        .find(|c| c.campaign.signature.user_agent.as_deref() == Some("stayer"))
        .unwrap();
    assert_eq!(stayer.top_members[0].key.to_string(), "198.51.100.2/32");
    let b = &r.block_effect;
    let verdicts: Vec<(&str, Verdict)> = b
        .entries
        .iter()
        .map(|e| (e.cidr.as_str(), e.verdict))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("198.51.100.2/32", Verdict::Persisting),
            ("203.0.113.5/32", Verdict::Rotated),
            ("192.0.2.200/32", Verdict::NotEnforced),
            ("198.51.100.1/32", Verdict::Stopped),
            ("10.0.0.0/24", Verdict::NoData),
        ]
    );
    assert_eq!(b.headline(), "1 of 3 blocked clients stopped within 24 h");
    let stayer = &b.entries[0];
    assert_eq!((stayer.requests_before, stayer.requests_after), (4, 40));
    assert_eq!(stayer.answered, 40);
    assert_eq!(stayer.per_hour_before, Some(2.0));
    assert_eq!(stayer.hourly.len(), 48);
    assert_eq!(stayer.hourly[2], 1);
    assert_eq!(b.entries[1].rotated_to, ["203.0.113.77"]);
    assert_eq!(r.ledger.added.len(), 5);
    assert_eq!(r.ledger.in_force, 5);
}

#[test]
fn hourly_series_and_histogram() {
    assert_eq!(
        hourly(&[(0, 2), (59, 1), (60, 4), (600, 9)], 0, 3),
        [3, 4, 0]
    );
    let bins = rates::histogram(&[1, 1, 3, 4, 7, 100]);
    let got: Vec<(u64, u64, u64)> = bins.iter().map(|b| (b.from, b.to, b.clients)).collect();
    assert_eq!(got, [(1, 2, 2), (2, 4, 1), (4, 8, 2), (64, 128, 1)]);
    let p = Period {
        start_ms: T0 + 1,
        end_ms: T0 + 2 * H,
    };
    assert_eq!(p.hours(), (T0, 2));
    assert_eq!(p.previous().end_ms, T0 + 1);
    assert_eq!(change(150, 100), Some(0.5));
    assert_eq!(change(1, 0), None);
}

/// The markdown budget at a volume beyond a generated week (which gives 1,900 findings in 45
/// campaigns): 20,000 clients, each a finding with its own user agent (so 20,000 campaigns), and
/// 5,000 ledger entries persisting. Built in memory: a debug-build test of the week's 3.85M
/// records would take minutes (its numbers are measured in docs/report.md).
#[test]
fn markdown_stays_within_the_budget_at_any_volume() {
    let n = 20_000;
    let mut lines = Vec::new();
    for i in 0..n {
        let ip = format!("10.{}.{}.{}", i / 65_536, (i / 256) % 256, i % 256);
        let ua = format!("scanner-{i}/1.0 (+https://example.test/a-long-user-agent-|-{i})");
        lines.push(rec(T0 + i, &ip, "ALLOW", "Default_Action", &ua));
        for at in [2 * H, 30 * H] {
            lines.push(rec(T0 + at + i, &ip, "BLOCK", "waftune-blocklist", &ua));
        }
    }
    let config = config();
    let policies = busy();
    let options = ScanOptions::default()
        .with_policies(scan_policies(&config, Some("JP"), &policies).unwrap());
    let t = scan_bytes("t", lines.join("\n").as_bytes(), &options);
    let entries: Vec<(String, i64)> = (0..5_000)
        .map(|i| (format!("10.0.{}.{}/32", i / 256, i % 256), T0 + H))
        .collect();
    let entries: Vec<(&str, i64)> = entries.iter().map(|(c, a)| (c.as_str(), *a)).collect();
    let ledger = ledger(&entries);
    let period = Period {
        start_ms: T0,
        end_ms: T0 + 48 * H,
    };
    let r = build(&Inputs {
        traffic: &t,
        previous: None,
        period,
        ledger: &ledger,
        config: &config,
        policies: &policies,
        now: Timestamp::from_millisecond(period.end_ms).unwrap(),
        origin: None,
    });
    assert_eq!(r.campaigns.campaigns.len(), n as usize);
    assert_eq!(r.block_effect.persisting, 5_000);
    let md = crate::render::report_markdown::render(&r, Some("report.html"));
    let chars = md.chars().count();
    assert!(chars <= crate::render::report_markdown::BUDGET, "{chars}");
    eprintln!("markdown of 20,000 campaigns and 5,000 entries: {chars} characters");
    assert!(md.contains("20,000 findings in 20,000 campaigns"), "{md}");
    assert!(md.contains("0 of 5000 blocked clients stopped"), "{md}");
    // Whole rows only: every table line ends its row.
    for line in md.lines().filter(|l| l.starts_with('|')) {
        assert!(line.ends_with('|'), "cut row: {line}");
    }
}
