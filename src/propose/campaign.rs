//! Findings grouped into campaigns, so that 900 path scanners read as a handful: the findings of
//! one policy, with the same outcome, whose clients present the same signature (user agent, and
//! the TLS fingerprints where logged). Addresses, networks, countries, ASNs and probed paths
//! describe a campaign rather than split it: a campaign that rotates through addresses, networks
//! or probe lists stays one campaign. The definition and its reasons are in `docs/campaigns.md`.
//! Pure: no I/O, deterministic for the same findings in any order.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ipnet::IpNet;
use jiff::Timestamp;
use serde::Serialize;

use super::{Finding, Verdict};
use crate::analyze::ClientRow;
use crate::scan::Count;

/// How many members a campaign shows in full in the pull-request summary.
pub const TOP_MEMBERS: usize = 3;
/// How many values each of a campaign's tallies keeps (paths, networks, countries, ASNs).
pub const TALLY: usize = 5;

/// What a finding leads to, without the per-finding detail: the outcome a campaign shares.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Block { group: String },
    Report,
    Suppressed,
}

impl Outcome {
    pub fn of(v: &Verdict) -> Outcome {
        match v {
            Verdict::Block { group } => Outcome::Block {
                group: group.clone(),
            },
            Verdict::Report { .. } => Outcome::Report,
            Verdict::Suppressed { .. } => Outcome::Suppressed,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Block { group } => write!(f, "block → {group}"),
            Outcome::Report => f.write_str("report"),
            Outcome::Suppressed => f.write_str("suppressed"),
        }
    }
}

/// The part of a fingerprint that links members: who the client says it is and how it speaks TLS.
/// Two findings of the same policy and outcome with equal signatures are one campaign.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Signature {
    /// The member's most frequent user agent; `""` is a client that sent none, `None` a log
    /// without the header.
    pub user_agent: Option<String>,
    /// The most frequent JA4 fingerprint where the logs carry it (`ja4Fingerprint`), and the
    /// JA3 (`ja3Fingerprint`) when the member's requests carried only one: Chromium's changes per
    /// connection and links nothing (see [`crate::scan::ClientStats::ja3`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja4: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ja3: Option<String>,
}

/// Everything the data holds about one finding's client, for linking and for describing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fingerprint {
    #[serde(flatten)]
    pub signature: Signature,
    /// The /24 or /64 the key lies in (the key itself when it is wider).
    pub network: IpNet,
    /// The most frequent country.
    pub country: Option<String>,
    /// The most frequent `clientAsn`, logged only while the web ACL has an ASN match statement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// The paths probed, as far as the evidence lists them (its top paths), sorted.
    pub paths: Vec<String>,
}

impl Fingerprint {
    pub fn of(f: &Finding) -> Fingerprint {
        let e = &f.evidence;
        let first = |v: &[Count]| v.first().map(|c| c.value.to_string());
        let len = if f.key.addr().is_ipv4() { 24 } else { 64 };
        let network = if f.key.prefix_len() > len {
            IpNet::new(f.key.addr(), len).expect("valid length").trunc()
        } else {
            f.key
        };
        let mut paths: Vec<String> = e.top_uris.iter().map(|c| c.value.to_string()).collect();
        paths.sort();
        Fingerprint {
            signature: Signature {
                user_agent: first(&e.user_agents),
                ja4: e.ja4.clone(),
                ja3: e.ja3.clone(),
            },
            network,
            country: first(&e.countries),
            asn: e.asn,
            paths,
        }
    }
}

/// One campaign: every finding of one policy and outcome sharing a [`Signature`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Campaign {
    /// `c-` and 10 hex digits of SHA-256 over policy, outcome and signature: the same campaign
    /// next week has the same id.
    pub id: String,
    pub policy: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub signature: Signature,
    /// Findings in the campaign.
    pub size: usize,
    /// Addresses behind them (an aggregated /24 counts its offending addresses).
    pub addresses: usize,
    pub requests: u64,
    pub first_seen: String,
    pub last_seen: String,
    /// Members per value, most first (at most [`TALLY`]); `distinct_*` says how many there were.
    pub countries: Vec<Count>,
    pub distinct_countries: usize,
    pub networks: Vec<Count>,
    pub distinct_networks: usize,
    pub paths: Vec<Count>,
    pub distinct_paths: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub asns: Vec<Count>,
    /// Every member's key, most requests first (ties by key): none dropped.
    pub members: Vec<IpNet>,
    /// The members' positions in the findings [`group`] was given, in the order of `members`.
    #[serde(skip)]
    pub findings: Vec<usize>,
}

impl Campaign {
    /// The members shown in full in a summary.
    pub fn top_members(&self) -> &[usize] {
        &self.findings[..self.findings.len().min(TOP_MEMBERS)]
    }
}

/// Members per value, most first, ties by value; at most `keep`, and how many distinct there were.
fn tally<'a>(values: impl Iterator<Item = &'a str>, keep: usize) -> (Vec<Count>, usize) {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    let distinct = counts.len();
    let mut v: Vec<Count> = counts
        .into_iter()
        .map(|(value, count)| Count {
            value: Arc::from(value),
            count,
        })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    v.truncate(keep);
    (v, distinct)
}

/// The earliest (`Less`) or latest (`Greater`) of the members' times. Compared as times, not as
/// text: the evidence drops trailing zeros of the milliseconds (`.66Z` is `.660Z`).
fn seen(members: &[&Finding], field: fn(&ClientRow) -> &String, want: Ordering) -> String {
    let time = |f: &&Finding| field(&f.evidence).parse::<Timestamp>().ok();
    members
        .iter()
        .reduce(|a, b| if time(b).cmp(&time(a)) == want { b } else { a })
        .map(|f| field(&f.evidence).clone())
        .unwrap_or_default()
}

fn campaign_id(policy: &str, outcome: &Outcome, s: &Signature) -> String {
    let outcome = match outcome {
        Outcome::Block { group } => format!("block:{group}"),
        Outcome::Report => "report".into(),
        Outcome::Suppressed => "suppressed".into(),
    };
    // Absent fields add nothing, so a signature gains JA4/JA3 without renaming the campaigns
    // whose logs never carry them.
    let mut text = format!("{policy}\0{outcome}\0");
    let fields = [("ua", &s.user_agent), ("ja4", &s.ja4), ("ja3", &s.ja3)];
    for (name, value) in fields {
        if let Some(v) = value {
            text += &format!("{name}={v}\0");
        }
    }
    format!("c-{}", &crate::config::sha256_hex(text.as_bytes())[..10])
}

/// Groups findings into campaigns. Every finding is in exactly one campaign. Campaigns come
/// blocks first, then reports, then suppressed; larger first; ties by requests, then id.
/// One hash pass and sorts: O(n log n) in the number of findings.
pub fn group(findings: &[Finding]) -> Vec<Campaign> {
    let prints: Vec<Fingerprint> = findings.iter().map(Fingerprint::of).collect();
    let mut by_key: HashMap<(&str, Outcome, &Signature), Vec<usize>> = HashMap::new();
    for (i, (f, p)) in findings.iter().zip(&prints).enumerate() {
        by_key
            .entry((&f.policy, Outcome::of(&f.verdict), &p.signature))
            .or_default()
            .push(i);
    }
    let mut campaigns: Vec<Campaign> = by_key
        .into_iter()
        .map(|((policy, outcome, signature), mut idx)| {
            idx.sort_by(|&a, &b| {
                let (fa, fb) = (&findings[a], &findings[b]);
                fb.evidence
                    .requests
                    .cmp(&fa.evidence.requests)
                    .then_with(|| fa.key.cmp(&fb.key))
            });
            let members: Vec<&Finding> = idx.iter().map(|&i| &findings[i]).collect();
            let fps: Vec<&Fingerprint> = idx.iter().map(|&i| &prints[i]).collect();
            let (countries, distinct_countries) =
                tally(fps.iter().filter_map(|p| p.country.as_deref()), TALLY);
            let nets: Vec<String> = fps.iter().map(|p| p.network.to_string()).collect();
            let (networks, distinct_networks) = tally(nets.iter().map(String::as_str), TALLY);
            let (paths, distinct_paths) = tally(
                fps.iter().flat_map(|p| p.paths.iter().map(String::as_str)),
                TALLY,
            );
            let asn_text: Vec<String> = fps
                .iter()
                .filter_map(|p| p.asn.map(|a| format!("AS{a}")))
                .collect();
            let (asns, _) = tally(asn_text.iter().map(String::as_str), TALLY);
            Campaign {
                id: campaign_id(policy, &outcome, signature),
                policy: policy.to_owned(),
                signature: signature.clone(),
                outcome,
                size: members.len(),
                addresses: members.iter().map(|f| f.members.len().max(1)).sum(),
                requests: members.iter().map(|f| f.evidence.requests).sum(),
                first_seen: seen(&members, |e| &e.first_seen, Ordering::Less),
                last_seen: seen(&members, |e| &e.last_seen, Ordering::Greater),
                countries,
                distinct_countries,
                networks,
                distinct_networks,
                paths,
                distinct_paths,
                asns,
                members: members.iter().map(|f| f.key).collect(),
                findings: idx,
            }
        })
        .collect();
    campaigns.sort_by(|a, b| {
        let rank = |o: &Outcome| match o {
            Outcome::Block { .. } => 0,
            Outcome::Report => 1,
            Outcome::Suppressed => 2,
        };
        rank(&a.outcome)
            .cmp(&rank(&b.outcome))
            .then_with(|| b.size.cmp(&a.size))
            .then_with(|| b.requests.cmp(&a.requests))
            .then_with(|| a.id.cmp(&b.id))
    });
    campaigns
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::scan::ActionCounts;

    fn count(v: &str, n: u64) -> Count {
        Count {
            value: Arc::from(v),
            count: n,
        }
    }

    /// A finding of `policy` for `key`, sending `requests` with user agent `ua` from `country`.
    pub(crate) fn finding(
        policy: &str,
        key: &str,
        ua: &str,
        paths: &[&str],
        country: &str,
        requests: u64,
    ) -> Finding {
        Finding {
            policy: policy.into(),
            key: key.parse().unwrap(),
            members: Vec::new(),
            fired: vec![format!("requests {requests} >= 10")],
            verdict: Verdict::Block {
                group: "blocklist".into(),
            },
            evidence: ClientRow {
                ip: key.into(),
                requests,
                peak_1m: requests,
                peak_2m: requests,
                peak_5m: requests,
                peak_10m: requests,
                peak_5m_at: Some("2026-10-05T00:00:00Z".into()),
                actions: ActionCounts {
                    allow: requests,
                    ..ActionCounts::default()
                },
                first_seen: format!("2026-10-05T00:{:02}:00Z", requests % 60),
                last_seen: format!("2026-10-05T01:{:02}:00Z", requests % 60),
                active_minutes: 1,
                distinct_uris: paths.len() as u64,
                verified_bot: false,
                countries: vec![count(country, requests)],
                top_uris: paths.iter().map(|p| count(p, 1)).collect(),
                user_agents: vec![count(ua, requests)],
                labels: Vec::new(),
                rules: Vec::new(),
                count_rules: Vec::new(),
                response_codes: Vec::new(),
                ja4: None,
                ja3: None,
                asn: None,
            },
        }
    }

    fn sample() -> Vec<Finding> {
        vec![
            finding("scan", "198.51.100.7/32", "zgrab", &["/.env"], "DE", 40),
            finding(
                "scan",
                "198.51.100.9/32",
                "zgrab",
                &["/.git/HEAD"],
                "DE",
                50,
            ),
            finding(
                "scan",
                "203.0.113.1/32",
                "zgrab",
                &["/.env", "/a"],
                "NL",
                30,
            ),
            finding("scan", "192.0.2.1/32", "curl/8", &["/.env"], "US", 90),
            finding("stuff", "192.0.2.2/32", "zgrab", &["/login"], "US", 20),
        ]
    }

    #[test]
    fn same_policy_outcome_and_signature_make_one_campaign() {
        let f = sample();
        let c = group(&f);
        let shape: Vec<(&str, Option<&str>, usize)> = c
            .iter()
            .map(|c| (c.policy.as_str(), c.signature.user_agent.as_deref(), c.size))
            .collect();
        assert_eq!(
            shape,
            [
                ("scan", Some("zgrab"), 3),
                ("scan", Some("curl/8"), 1),
                ("stuff", Some("zgrab"), 1),
            ]
        );
        let z = &c[0];
        assert_eq!(
            z.members
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["198.51.100.9/32", "198.51.100.7/32", "203.0.113.1/32"]
        );
        assert_eq!(z.findings, [1, 0, 2]);
        assert_eq!(z.requests, 120);
        assert_eq!(z.first_seen, "2026-10-05T00:30:00Z");
        // Times compare as times: `.66Z` is later than `.655Z`, though it sorts first as text.
        let mut a = f[0].clone();
        let mut b = f[1].clone();
        a.evidence.first_seen = "2026-10-05T00:00:00.66Z".into();
        b.evidence.first_seen = "2026-10-05T00:00:00.655Z".into();
        assert_eq!(group(&[a, b])[0].first_seen, "2026-10-05T00:00:00.655Z");
        assert_eq!(z.last_seen, "2026-10-05T01:50:00Z");
        assert_eq!(z.networks[0], count("198.51.100.0/24", 2));
        assert_eq!(z.distinct_networks, 2);
        assert_eq!(z.countries, [count("DE", 2), count("NL", 1)]);
        assert_eq!(z.paths[0], count("/.env", 2));
        assert_eq!(z.distinct_paths, 3);
        assert_eq!(z.top_members(), [1, 0, 2]);
    }

    #[test]
    fn every_finding_is_in_exactly_one_campaign_whatever_the_order() {
        let f = sample();
        let mut seen: Vec<usize> = group(&f).iter().flat_map(|c| c.findings.clone()).collect();
        seen.sort();
        assert_eq!(seen, (0..f.len()).collect::<Vec<_>>());
        // Reordered input: the same campaigns, ids and members.
        let mut rev = f.clone();
        rev.reverse();
        let ids = |c: &[Campaign]| -> Vec<(String, Vec<IpNet>)> {
            c.iter()
                .map(|c| (c.id.clone(), c.members.clone()))
                .collect()
        };
        assert_eq!(ids(&group(&f)), ids(&group(&rev)));
    }

    #[test]
    fn ids_are_stable_and_depend_on_the_fingerprint_only() {
        let a = group(&sample());
        // Next week: other addresses, the same policy, outcome and user agent.
        let later = vec![finding(
            "scan",
            "203.0.113.200/32",
            "zgrab",
            &["/x"],
            "FR",
            7,
        )];
        assert_eq!(group(&later)[0].id, a[0].id);
        assert_eq!(a[0].id, "c-7aa56fabee");
        let ids: std::collections::BTreeSet<&str> = a.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids.len(), 3);
        // The outcome is part of the campaign: a suppressed finding is not a blocked one.
        let mut suppressed = later.clone();
        suppressed[0].verdict = Verdict::Suppressed {
            by: "office".into(),
        };
        assert_ne!(group(&suppressed)[0].id, a[0].id);
        assert_eq!(group(&suppressed)[0].outcome, Outcome::Suppressed);
    }

    #[test]
    fn fingerprint_takes_the_network_and_counts_aggregated_addresses() {
        let mut net = finding("scan", "198.51.100.0/24", "zgrab", &["/b", "/a"], "DE", 9);
        net.members = vec!["198.51.100.1/32".parse().unwrap(); 3];
        let v6 = finding("scan", "2001:db8:1:2::9/128", "zgrab", &[], "DE", 8);
        assert_eq!(Fingerprint::of(&net).network, net.key);
        assert_eq!(Fingerprint::of(&net).paths, ["/a", "/b"]);
        assert_eq!(
            Fingerprint::of(&v6).network.to_string(),
            "2001:db8:1:2::/64"
        );
        let c = group(&[net, v6]);
        assert_eq!((c.len(), c[0].size, c[0].addresses), (1, 2, 4));
    }
}
