use super::*;
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
    assert_eq!(m.limit(&[1, 1, 2]), MIN_LIMIT);
    let peaks: Vec<u64> = (1..=100).collect();
    // p95 = 95, x3 = 285 -> 290.
    assert_eq!(m.limit(&peaks), 290);
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
        Scope::Overseas.policy(None).err(),
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
    let policy = scope.policy(Some("JP")).unwrap();
    let t = scan_bytes(
        "t",
        sample().as_bytes(),
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
