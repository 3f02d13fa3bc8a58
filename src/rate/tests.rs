use super::*;
use crate::model::rate::scope_down;
use crate::model::waf::ScopeDown;
use crate::policy::Policy;
use crate::scan::{ScanOptions, scan_bytes};

#[test]
fn replay_one_minute_window_limits_beyond_the_limit() {
    // 25 in minute 0, 5 in minute 1, 12 in minute 3.
    let m = [(0, 25), (1, 5), (3, 12)];
    assert_eq!(replay(&m, 10, 1), vec![(0, 15), (3, 2)]);
}

#[test]
fn replay_counts_earlier_minutes_of_the_window() {
    // Window of 2 minutes, limit 20: minute 0 uses 15, minute 1 may send 5 more, minute 2 sees
    // only minute 1's 10 requests.
    let m = [(0, 15), (1, 10), (2, 12)];
    assert_eq!(replay(&m, 20, 2), vec![(1, 5), (2, 2)]);
    // Limited requests still count: a steady flood stays limited.
    let flood = [(0, 30), (1, 30), (2, 30)];
    assert_eq!(replay(&flood, 20, 2), vec![(0, 10), (1, 30), (2, 30)]);
}

#[test]
fn replay_window_slides_past_gaps() {
    let m = [(0, 50), (10, 50)];
    assert_eq!(replay(&m, 60, 10), Vec::<(u32, u64)>::new());
    assert_eq!(replay(&m, 60, 11), vec![(10, 40)]);
}

#[test]
fn episodes_join_consecutive_minutes() {
    let e = episodes(&[(5, 1), (6, 2), (8, 3)]);
    assert_eq!(
        e,
        vec![
            Episode {
                first_minute: 5,
                last_minute: 6,
                limited: 3
            },
            Episode {
                first_minute: 8,
                last_minute: 8,
                limited: 3
            }
        ]
    );
}

#[test]
fn percentiles_are_nearest_rank() {
    let v: Vec<u64> = (1..=1000).collect();
    let p = Percentiles::of(&v);
    assert_eq!(
        (p.p50, p.p90, p.p95, p.p99, p.p99_9, p.max),
        (500, 900, 950, 990, 999, 1000)
    );
    assert_eq!(percentile(&[], 50.0), 0);
    assert_eq!(percentile(&[7], 99.9), 7);
}

#[test]
fn limits_are_rounded_up_and_at_least_ten() {
    assert_eq!(round_up_2sig(147), 150);
    assert_eq!(round_up_2sig(60), 60);
    assert_eq!(round_up_2sig(1234), 1300);
    assert_eq!(round_up_2sig(100), 100);
    let m = Method::default();
    assert_eq!(limit(m, &[1, 1, 2]), MIN_RATE_LIMIT);
    let peaks: Vec<u64> = (1..=100).collect();
    // p95 = 95, x3 = 285 -> 290.
    assert_eq!(limit(m, &peaks), 290);
    assert_eq!(Method::new(99.9, 0.5), Err(RateError::BadHeadroom(0.5)));
    assert_eq!(Method::new(10.0, 2.0), Err(RateError::BadPercentile(10.0)));
}

#[test]
fn scopes_parse_and_print() {
    for s in [
        "all",
        "overseas",
        "path:/login",
        "method:POST",
        "label:a:b:*",
        "not-label:a:b",
    ] {
        assert_eq!(Scope::parse(s).unwrap().to_string(), s);
    }
    assert_eq!(
        Scope::parse("method:post"),
        Ok(Scope::Method("POST".into()))
    );
    assert_eq!(
        Scope::parse("path:"),
        Err(RateError::EmptyScope("path:".into()))
    );
    assert_eq!(
        Scope::parse("host:x"),
        Err(RateError::UnknownScope("host:x".into()))
    );
    assert_eq!(
        scopes_policy(&[Scope::Overseas], None).err(),
        Some(RateError::OverseasWithoutHome)
    );
}

fn rec(second: i64, ip: &str, country: &str, uri: &str, label: Option<&str>) -> String {
    let labels = label.map_or(String::new(), |l| {
        format!(r#","labels":[{{"name":"{l}"}}]"#)
    });
    format!(
        r#"{{"timestamp":{},"action":"ALLOW","terminatingRuleId":"Default_Action","httpRequest":{{"clientIp":"{ip}","country":"{country}","uri":"{uri}","httpMethod":"GET","headers":[]}}{labels}}}"#,
        second * 1000
    )
}

/// A crawler (verified, US), a home user and an overseas scraper hitting `/login`.
fn sample() -> String {
    let mut lines = Vec::new();
    for s in 0..120 {
        // 60 per minute for two minutes.
        lines.push(rec(s, "192.0.2.1", "US", "/", Some(VERIFIED_CRAWLER_LABEL)));
    }
    for s in 0..20 {
        lines.push(rec(s * 3, "198.51.100.7", "JP", "/", None));
    }
    for s in 0..90 {
        lines.push(rec(60 + s / 3, "203.0.113.9", "CN", "/login", None));
    }
    lines.join("\n")
}

fn scope_clients(scope: &Scope) -> Vec<ClientStats> {
    policy_clients(
        scopes_policy(std::slice::from_ref(scope), Some("JP")).unwrap(),
        &sample(),
    )
}

fn policy_clients(policy: Policy, logs: &str) -> Vec<ClientStats> {
    let t = scan_bytes(
        "t",
        logs.as_bytes(),
        &ScanOptions {
            home_country: Some("JP".into()),
            policies: vec![policy],
            ..ScanOptions::default()
        },
    );
    t.policy_keys.into_iter().next().unwrap()
}

#[test]
fn backtest_splits_by_class_and_reports_episodes() {
    let clients = scope_clients(&Scope::All);
    let b = backtest("all", &clients, 30, Window::M1, Some("JP")).unwrap();
    assert_eq!((b.clients, b.requests), (3, 230));
    // Crawler: 30 of 60 in each of two minutes; scraper: 60 of 90 in one minute.
    assert_eq!((b.limited_clients, b.limited_requests), (2, 120));
    assert_eq!(b.limited[0].client, "192.0.2.1");
    assert_eq!(b.limited[0].class, ClientClass::VerifiedCrawler);
    assert_eq!(b.limited[0].episodes.len(), 1);
    assert_eq!(b.limited[0].limited_minutes, 2);
    assert_eq!(b.limited[1].class, ClientClass::Overseas);
    assert_eq!(b.limited[1].peak, 90);
    let class = |k| *b.by_class.iter().find(|t| t.class == k).unwrap();
    assert_eq!(
        (
            class(ClientClass::Home).clients,
            class(ClientClass::Home).limited
        ),
        (0, 0)
    );
    assert_eq!(
        class(ClientClass::VerifiedCrawler),
        ClassTotals {
            class: ClientClass::VerifiedCrawler,
            clients: 1,
            limited: 60
        }
    );
    assert_eq!(
        backtest("all", &clients, 9, Window::M1, None),
        Err(RateError::LimitTooLow(9))
    );
}

#[test]
fn scopes_count_only_their_requests() {
    let overseas = scope_clients(&Scope::Overseas);
    assert_eq!(overseas.len(), 2);
    let login = scope_clients(&Scope::PathPrefix("/login".into()));
    assert_eq!(login.len(), 1);
    assert_eq!(login[0].requests, 90);
    let crawlers = scope_clients(&Scope::Label(VERIFIED_CRAWLER_LABEL.into()));
    assert_eq!(crawlers.len(), 1);
    let others = scope_clients(&Scope::NotLabel(VERIFIED_CRAWLER_LABEL.into()));
    assert_eq!(others.len(), 2);
    assert!(others.iter().all(|c| c.labels.is_empty()));
    assert!(scope_clients(&Scope::Method("POST".into())).is_empty());
}

#[test]
fn recommendation_backtests_its_own_limit() {
    let clients = scope_clients(&Scope::All);
    let r = recommend(
        "all",
        &clients,
        Window::M1,
        Method::new(50.0, 1.0).unwrap(),
        Some("JP"),
    );
    // Peaks 20, 60, 90: p50 = 60.
    assert_eq!(r.percentiles.p50, 60);
    assert_eq!(r.percentiles.max, 90);
    assert_eq!(r.recommended, 60);
    assert_eq!(r.backtest.limit, 60);
    assert_eq!(r.backtest.limited_clients, 1);
    assert_eq!(r.backtest.limited_requests, 30);
}

#[test]
fn replay_limits_exactly_the_clients_whose_peak_exceeds_the_limit() {
    // Deterministic pseudo-random series (xorshift), checked against the scan's own window_peak.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..500 {
        let mut minutes = Vec::new();
        let mut m = 0u32;
        for _ in 0..(next() % 30) {
            m += 1 + (next() % 4) as u32;
            minutes.push((m, 1 + (next() % 40) as u32));
        }
        let total: u64 = minutes.iter().map(|b| u64::from(b.1)).sum();
        for window in [1, 2, 5, 10] {
            let limit = 10 + next() % 100;
            let limited = replay(&minutes, limit, window);
            let peak = crate::scan::stats::window_peak(&minutes, window).requests;
            assert_eq!(
                !limited.is_empty(),
                peak > limit,
                "{minutes:?} {limit} {window}"
            );
            let n: u64 = limited.iter().map(|l| l.1).sum();
            // At least the excess of the busiest window is limited, and never more than was sent.
            assert!(n >= peak.saturating_sub(limit) && n <= total);
        }
    }
}

#[test]
fn several_scopes_count_requests_matching_all_of_them() {
    let scopes = [Scope::Overseas, Scope::PathPrefix("/login".into())];
    let clients = policy_clients(scopes_policy(&scopes, Some("JP")).unwrap(), &sample());
    // Only the scraper is overseas and on /login; the US crawler is overseas but on `/`.
    assert_eq!(clients.len(), 1);
    assert_eq!(
        (clients[0].key.to_string(), clients[0].requests),
        ("203.0.113.9/32".into(), 90)
    );
    assert_eq!(scopes_name(&scopes), "overseas and path:/login");
    assert_eq!(scopes_name(&[]), "all");
}

#[test]
fn scopes_become_waf_scope_down_statements() {
    let scopes = [
        Scope::All,
        Scope::Overseas,
        Scope::Method("POST".into()),
        Scope::NotLabel("awswaf:managed:aws:bot-control:bot:*".into()),
    ];
    assert_eq!(
        scope_down(&scopes, Some("jp")).unwrap(),
        [
            ScopeDown::Country {
                countries: vec!["JP".into()],
                negate: true
            },
            ScopeDown::Method("POST".into()),
            ScopeDown::Label {
                key: "awswaf:managed:aws:bot-control:bot:".into(),
                namespace: true,
                negate: true
            },
        ]
    );
    assert_eq!(scope_down(&[Scope::All], None).unwrap(), []);
    let countries = Scope::parse("country:cn, RU").unwrap();
    assert_eq!(countries.to_string(), "country:CN,RU");
    assert_eq!(
        scope_down(&[countries, Scope::parse("not-country:JP").unwrap()], None).unwrap(),
        [
            ScopeDown::Country {
                countries: vec!["CN".into(), "RU".into()],
                negate: false
            },
            ScopeDown::Country {
                countries: vec!["JP".into()],
                negate: true
            },
        ]
    );
    assert_eq!(
        Scope::parse("country:Japan"),
        Err(RateError::BadCountry("JAPAN".into()))
    );
    assert_eq!(
        scope_down(&[Scope::Label("bot*".into())], None),
        Err(RateError::LabelPattern("bot*".into()))
    );
    assert_eq!(
        scope_down(&[Scope::Overseas], None),
        Err(RateError::OverseasWithoutHome)
    );
}

const PROMOTE_CONFIG: &str = r#"scope = "REGIONAL"
home_country = "JP"

[[web_acl]]
name = "shop"

[[web_acl.rate_rule]]
name = "login-rate"
priority = 3
limit = 100
scope = ["path:/login"]
action = 'count'   # watch first
"#;

fn promote_rule(text: &str) -> crate::config::RateRuleConfig {
    let config = Config::parse(text, std::path::Path::new("waftune.toml")).unwrap();
    find_rate_rule(&config, "login-rate").unwrap().1.clone()
}

/// The sample plus COUNT-mode matches of `login-rate` on every scraper request.
fn sample_with_count_matches() -> String {
    sample()
        .lines()
        .map(|l| {
            if l.contains("203.0.113.9") {
                l.replace(
                    r#""action":"ALLOW","#,
                    r#""action":"ALLOW","nonTerminatingMatchingRules":[{"ruleId":"login-rate","action":"COUNT"}],"#,
                )
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn promotion_shows_who_count_mode_matched_once_the_logs_cover_the_period() {
    let rule = promote_rule(PROMOTE_CONFIG);
    let matched = policy_clients(
        count_matches_policy("login-rate"),
        &sample_with_count_matches(),
    );
    assert_eq!(matched.len(), 1);
    let hour = 3_600_000;
    let b = promotion(&rule, &matched, 2 * hour, hour, Some("JP")).unwrap();
    assert_eq!((b.limited_clients, b.limited_requests), (1, 90));
    assert_eq!(b.limited[0].client, "203.0.113.9");
    assert_eq!(b.limited[0].class, ClientClass::Overseas);
    assert_eq!(b.by_class[ClientClass::Overseas as usize].limited, 90);

    assert_eq!(
        promotion(&rule, &matched, hour, 7 * 24 * hour, Some("JP"))
            .unwrap_err()
            .to_string(),
        "the logs cover 1h 0m, less than the 7d 0h asked for (`--min-period`): watch rule `login-rate` in count mode longer, or give more logs"
    );
    let none = policy_clients(count_matches_policy("login-rate"), &sample());
    assert_eq!(
        promotion(&rule, &none, 2 * hour, hour, None),
        Err(PromoteError::NoMatches("login-rate".into()))
    );
    let blocking = promote_rule(&PROMOTE_CONFIG.replace("'count'", "'block'"));
    assert_eq!(
        promotion(&blocking, &matched, 2 * hour, hour, None),
        Err(PromoteError::AlreadyBlocks("login-rate".into()))
    );
}

#[test]
fn promoted_config_changes_only_the_action_value() {
    let rule = promote_rule(PROMOTE_CONFIG);
    let promoted = promoted_config(PROMOTE_CONFIG, &rule).unwrap();
    assert_eq!(promoted, PROMOTE_CONFIG.replace("'count'", "'block'"));
    let moved = format!("# a comment\n{PROMOTE_CONFIG}");
    assert!(matches!(
        promoted_config(&moved, &rule),
        Err(PromoteError::UnexpectedText { .. })
    ));
}

#[test]
fn country_scopes_count_like_waf() {
    let cn = scope_clients(&Scope::parse("country:CN").unwrap());
    assert_eq!(cn.len(), 1);
    assert_eq!(cn[0].requests, 90);
    // Everything not from Japan: the US crawler and the Chinese scraper.
    let not_jp = scope_clients(&Scope::parse("not-country:JP").unwrap());
    assert_eq!(not_jp.iter().map(|c| c.requests).sum::<u64>(), 120 + 90);
}
