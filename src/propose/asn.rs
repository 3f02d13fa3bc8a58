//! ASN answers: manual ASN entries in the ledger, and the check every proposed ASN must pass.
//!
//! An ASN rule blocks (or rate-limits) everyone in a network, so an ASN is only ever proposed when
//! nobody else the site cares about lives there: [`check`] refuses an ASN that carries a verified
//! crawler or a meaningful share of home-country browsers, and returns the evidence of who else lives
//! in it either way. It takes the scan's clients paired with their `clientAsn` (a small interface, so
//! that any scan that keeps the ASN can feed it).

use std::fmt;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::ledger::{AsnEntry, Ledger, MANUAL};
use crate::model::asn::{Asn, AsnError};
use crate::model::waf::VERIFIED_CRAWLER_LABEL;
use crate::scan::ClientStats;

/// Bot Control labels every bot it recognises under this namespace (verified or not).
const BOT_LABELS: &str = "awswaf:managed:aws:bot-control:bot:";
/// Words in a user agent that no browser a person uses sends.
const NON_BROWSER_WORDS: [&str; 9] = [
    "bot", "crawl", "spider", "headless", "python", "curl", "go-http", "java/", "scrapy",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AsnBlockError {
    #[error(transparent)]
    Asn(#[from] AsnError),
    #[error("ASN list `{list}` is not used by any asn_rule in waftune.toml (lists: {known})")]
    UnknownList { list: String, known: String },
    #[error("`{asn}` is not in the ledger{hint}")]
    NotInLedger { asn: Asn, hint: String },
}

/// A manual ASN entry, as `waftune block AS13335` asks for it.
pub struct ManualAsnBlock<'a> {
    pub asn: &'a str,
    pub list: &'a str,
    /// `None` holds until `waftune unblock`.
    pub duration: Option<SignedDuration>,
    pub reason: &'a str,
}

/// Records a manual ASN entry (replacing one for the same ASN and list). `lists` are the lists the
/// configuration's ASN rules use.
pub fn block_asn(
    ledger: &mut Ledger,
    req: &ManualAsnBlock<'_>,
    lists: &[&str],
    now: Timestamp,
) -> Result<AsnEntry, AsnBlockError> {
    let asn: Asn = req.asn.parse()?;
    if !lists.contains(&req.list) {
        return Err(AsnBlockError::UnknownList {
            list: req.list.to_owned(),
            known: quoted(lists),
        });
    }
    ledger
        .asns
        .retain(|e| !(e.list == req.list && e.asn == asn));
    let entry = AsnEntry {
        asn,
        list: req.list.to_owned(),
        policy: MANUAL.to_owned(),
        reason: req.reason.to_owned(),
        added: now,
        expires: req.duration.and_then(|d| now.checked_add(d).ok()),
    };
    ledger.asns.push(entry.clone());
    ledger.sort();
    Ok(entry)
}

/// Removes an ASN from one list, or from every list; the entries removed.
pub fn unblock_asn(
    ledger: &mut Ledger,
    asn_text: &str,
    list: Option<&str>,
) -> Result<Vec<AsnEntry>, AsnBlockError> {
    let asn: Asn = asn_text.parse()?;
    let (gone, kept): (Vec<AsnEntry>, Vec<AsnEntry>) = ledger
        .asns
        .drain(..)
        .partition(|e| e.asn == asn && list.is_none_or(|l| e.list == l));
    ledger.asns = kept;
    if gone.is_empty() {
        let hint = ledger
            .asns
            .iter()
            .find(|e| e.asn == asn)
            .map(|e| {
                format!(
                    " list `{}`; it is in list `{}`",
                    list.unwrap_or_default(),
                    e.list
                )
            })
            .unwrap_or_default();
        return Err(AsnBlockError::NotInLedger { asn, hint });
    }
    Ok(gone)
}

fn quoted(names: &[&str]) -> String {
    if names.is_empty() {
        return "none: add a [[web_acl.asn_rule]]".to_owned();
    }
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a `propose` run did to an ASN list, or declined to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AsnChangeKind {
    /// Proposed for a campaign that rotated across the ASN's networks.
    Add,
    /// The entry's block ran out and it was removed.
    Expire,
    /// A rotated campaign's ASN that [`check`] refused (its addresses outside the blocked /24 (/64)
    /// are not proposed).
    Refused,
}

impl AsnChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AsnChangeKind::Add => "add",
            AsnChangeKind::Expire => "expire",
            AsnChangeKind::Refused => "refused",
        }
    }
}

/// One ASN change of a `propose` run, for the summary and the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AsnChange {
    pub kind: AsnChangeKind,
    pub asn: Asn,
    pub list: String,
    pub policy: String,
    pub expires: Option<Timestamp>,
    pub reason: String,
}

impl AsnChange {
    pub fn of(kind: AsnChangeKind, e: &AsnEntry) -> AsnChange {
        AsnChange {
            kind,
            asn: e.asn,
            list: e.list.clone(),
            policy: e.policy.clone(),
            expires: e.expires,
            reason: e.reason.clone(),
        }
    }
}

/// When an ASN may not be proposed.
#[derive(Debug, Clone, PartialEq)]
pub struct AsnGuard<'a> {
    /// The site's home country (`home_country` in waftune.toml); without it no browser counts as
    /// home-country and only the verified-crawler rule applies.
    pub home_country: Option<&'a str>,
    /// Refuse when home-country browsers are at least this share (0 to 1) of the ASN's clients,
    /// or of all the site's home-country browsers.
    pub max_home_browser_share: f64,
}

impl Default for AsnGuard<'_> {
    fn default() -> Self {
        AsnGuard {
            home_country: None,
            max_home_browser_share: 0.01,
        }
    }
}

/// Who lives in one ASN, from the scan: the evidence shown with every ASN proposal.
#[derive(Debug, Clone, PartialEq)]
pub struct AsnResidents {
    pub asn: Asn,
    pub clients: u64,
    pub requests: u64,
    /// Clients Bot Control verified, by their most used user agent.
    pub verified_crawlers: Vec<String>,
    /// Clients that look like a person's browser, from the home country.
    pub home_browsers: u64,
    /// Home-country browser clients in the whole scan (the denominator of the site-wide share).
    pub home_browsers_site: u64,
    /// The most common countries of its clients, most first (at most 3).
    pub countries: Vec<(String, u64)>,
}

impl AsnResidents {
    /// Home-country browsers as a share of the ASN's clients.
    pub fn home_share_of_asn(&self) -> f64 {
        ratio(self.home_browsers, self.clients)
    }

    /// The ASN's home-country browsers as a share of all the site's.
    pub fn home_share_of_site(&self) -> f64 {
        ratio(self.home_browsers, self.home_browsers_site)
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl fmt::Display for AsnResidents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} clients, {} requests; {} verified crawler(s){}; {} home-country browser(s) \
             ({:.1}% of its clients, {:.1}% of the site's)",
            self.asn,
            self.clients,
            self.requests,
            self.verified_crawlers.len(),
            if self.verified_crawlers.is_empty() {
                String::new()
            } else {
                format!(" ({})", self.verified_crawlers.join(", "))
            },
            self.home_browsers,
            100.0 * self.home_share_of_asn(),
            100.0 * self.home_share_of_site(),
        )?;
        if !self.countries.is_empty() {
            let top: Vec<String> = self
                .countries
                .iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect();
            write!(f, "; countries {}", top.join(", "))?;
        }
        Ok(())
    }
}

/// Why an ASN may not be proposed, with the evidence.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AsnRefusal {
    #[error("never proposed: it carries verified crawlers. {0}")]
    VerifiedCrawlers(AsnResidents),
    #[error("never proposed: it carries a meaningful share of home-country browsers. {0}")]
    HomeBrowsers(AsnResidents),
}

/// Who lives in `asn` among `clients` (every scanned client with its `clientAsn`; clients without
/// one are left out by the caller).
pub fn residents(asn: Asn, clients: &[(u32, &ClientStats)], guard: &AsnGuard<'_>) -> AsnResidents {
    let mut r = AsnResidents {
        asn,
        clients: 0,
        requests: 0,
        verified_crawlers: Vec::new(),
        home_browsers: 0,
        home_browsers_site: 0,
        countries: Vec::new(),
    };
    let mut countries: std::collections::BTreeMap<&str, u64> = Default::default();
    for (client_asn, stats) in clients {
        let home_browser = is_home_browser(stats, guard.home_country);
        r.home_browsers_site += u64::from(home_browser);
        if *client_asn != asn.number() {
            continue;
        }
        r.clients += 1;
        r.requests += stats.requests;
        r.home_browsers += u64::from(home_browser);
        if stats
            .labels
            .iter()
            .any(|l| *l.value == *VERIFIED_CRAWLER_LABEL)
        {
            let agent = stats.user_agents.first().map_or("-", |u| &*u.value);
            r.verified_crawlers.push(agent.to_owned());
        }
        if let Some(top) = stats.countries.first() {
            *countries.entry(&*top.value).or_default() += 1;
        }
    }
    r.verified_crawlers.sort();
    r.verified_crawlers.dedup();
    let mut countries: Vec<(String, u64)> = countries
        .into_iter()
        .map(|(c, n)| (c.to_owned(), n))
        .collect();
    countries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    countries.truncate(3);
    r.countries = countries;
    r
}

/// Whether `asn` may be proposed: `Ok` with who lives there, or the refusal with the same evidence.
pub fn check(
    asn: Asn,
    clients: &[(u32, &ClientStats)],
    guard: &AsnGuard<'_>,
) -> Result<AsnResidents, AsnRefusal> {
    let r = residents(asn, clients, guard);
    if !r.verified_crawlers.is_empty() {
        return Err(AsnRefusal::VerifiedCrawlers(r));
    }
    let share = guard.max_home_browser_share;
    if r.home_browsers > 0 && (r.home_share_of_asn() >= share || r.home_share_of_site() >= share) {
        return Err(AsnRefusal::HomeBrowsers(r));
    }
    Ok(r)
}

/// A person's browser from the home country: its most used user agent is a browser's, Bot Control
/// named no bot for it, and its most common country is home.
fn is_home_browser(stats: &ClientStats, home: Option<&str>) -> bool {
    let Some(home) = home else {
        return false;
    };
    let from_home = stats.countries.first().is_some_and(|c| &*c.value == home);
    let browser = stats.user_agents.first().is_some_and(|u| {
        let ua = u.value.to_ascii_lowercase();
        ua.starts_with("mozilla/") && !NON_BROWSER_WORDS.iter().any(|w| ua.contains(w))
    });
    from_home && browser && !stats.has_label_prefix(BOT_LABELS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::{ScanOptions, scan_bytes};

    const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";

    /// `n` requests from `ip` with a user agent, country and labels.
    fn lines(ip: &str, ua: &str, country: &str, labels: &[&str], n: usize) -> String {
        let labels: Vec<String> = labels
            .iter()
            .map(|l| format!(r#"{{"name":"{l}"}}"#))
            .collect();
        (0..n)
            .map(|i| {
                format!(
                    r#"{{"timestamp":{},"action":"ALLOW","httpRequest":{{"clientIp":"{ip}","country":"{country}","uri":"/","headers":[{{"name":"User-Agent","value":"{ua}"}}]}},"labels":[{}]}}"#,
                    1_795_132_800_000 + i as i64 * 1000,
                    labels.join(",")
                ) + "\n"
            })
            .collect()
    }

    /// The scanned clients, each paired with the ASN `asn_of` gives its address.
    fn clients(text: &str) -> Vec<ClientStats> {
        scan_bytes("t", text.as_bytes(), &ScanOptions::default()).clients
    }

    fn with_asns(
        clients: &[ClientStats],
        asn_of: impl Fn(&str) -> u32,
    ) -> Vec<(u32, &ClientStats)> {
        clients
            .iter()
            .map(|c| (asn_of(&c.key.to_string()), c))
            .collect()
    }

    fn asn(n: u32) -> Asn {
        Asn::new(n).unwrap()
    }

    const HOSTING: u32 = 64496;
    const ISP: u32 = 64500;

    fn site() -> Vec<ClientStats> {
        let mut text = lines("198.51.100.7", "python-requests/2.32", "US", &[], 50)
            + &lines("198.51.100.8", "Go-http-client/1.1", "DE", &[], 30);
        for i in 1..=40 {
            text += &lines(&format!("203.0.113.{i}"), CHROME, "JP", &[], 3);
        }
        clients(&text)
    }

    fn asn_of(ip: &str) -> u32 {
        if ip.starts_with("198.51.100.") {
            HOSTING
        } else {
            ISP
        }
    }

    #[test]
    fn a_hosting_asn_of_tools_only_passes_with_its_evidence() {
        let site = site();
        let pairs = with_asns(&site, asn_of);
        let guard = AsnGuard {
            home_country: Some("JP"),
            ..AsnGuard::default()
        };
        let r = check(asn(HOSTING), &pairs, &guard).unwrap();
        assert_eq!((r.clients, r.requests, r.home_browsers), (2, 80, 0));
        assert_eq!(r.home_browsers_site, 40);
        assert_eq!(
            r.to_string(),
            "AS64496: 2 clients, 80 requests; 0 verified crawler(s); 0 home-country browser(s) \
             (0.0% of its clients, 0.0% of the site's); countries DE 1, US 1"
        );
    }

    #[test]
    fn an_asn_of_home_browsers_is_refused() {
        let site = site();
        let pairs = with_asns(&site, asn_of);
        let guard = AsnGuard {
            home_country: Some("JP"),
            ..AsnGuard::default()
        };
        let refusal = check(asn(ISP), &pairs, &guard).unwrap_err();
        let AsnRefusal::HomeBrowsers(r) = &refusal else {
            panic!("{refusal}");
        };
        assert_eq!((r.clients, r.home_browsers), (40, 40));
        assert!(
            refusal.to_string().starts_with(
                "never proposed: it carries a meaningful share of home-country browsers. AS64500: 40 clients"
            ),
            "{refusal}"
        );
        // One home browser among a hundred tools is still 2.5% of the site's 40: refused.
        let mut text = lines("203.0.113.1", CHROME, "JP", &[], 3);
        for i in 1..=100 {
            text += &lines(&format!("198.51.100.{i}"), "curl/8.5", "US", &[], 2);
        }
        for i in 1..=39 {
            text += &lines(&format!("192.0.2.{i}"), CHROME, "JP", &[], 2);
        }
        let many = clients(&text);
        let pairs = with_asns(&many, |ip| {
            if ip.starts_with("192.0.2.") {
                ISP
            } else {
                HOSTING
            }
        });
        let r = check(asn(HOSTING), &pairs, &guard).unwrap_err();
        assert!(
            matches!(r, AsnRefusal::HomeBrowsers(ref r) if r.home_browsers == 1),
            "{r}"
        );
        // Without a home country only the crawler rule applies.
        assert!(check(asn(ISP), &with_asns(&site, asn_of), &AsnGuard::default()).is_ok());
    }

    #[test]
    fn an_asn_with_a_verified_crawler_is_refused() {
        let text = lines("198.51.100.7", "python-requests/2.32", "US", &[], 50)
            + &lines(
                "198.51.100.9",
                "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                "US",
                &[
                    VERIFIED_CRAWLER_LABEL,
                    "awswaf:managed:aws:bot-control:bot:name:googlebot",
                ],
                5,
            );
        let site = clients(&text);
        let pairs = with_asns(&site, |_| HOSTING);
        let refusal = check(asn(HOSTING), &pairs, &AsnGuard::default()).unwrap_err();
        assert!(
            refusal
                .to_string()
                .contains("1 verified crawler(s) (Mozilla/5.0 (compatible; Googlebot/2.1;"),
            "{refusal}"
        );
        // Another ASN's crawler does not count against this one.
        let pairs = with_asns(&site, |ip| if ip.ends_with(".9") { ISP } else { HOSTING });
        assert!(check(asn(HOSTING), &pairs, &AsnGuard::default()).is_ok());
    }

    #[test]
    fn manual_entries_are_validated_replaced_and_removed() {
        let now: Timestamp = "2026-11-20T00:00:00Z".parse().unwrap();
        let mut ledger = Ledger::default();
        let req = |asn, list, days: Option<i64>| ManualAsnBlock {
            asn,
            list,
            duration: days.map(|d| SignedDuration::from_hours(24 * d)),
            reason: "scraping from a hosting provider",
        };
        let e = block_asn(
            &mut ledger,
            &req("AS64496", "hosting", Some(7)),
            &["hosting"],
            now,
        )
        .unwrap();
        assert_eq!(e.expires, Some("2026-11-27T00:00:00Z".parse().unwrap()));
        block_asn(
            &mut ledger,
            &req("64496", "hosting", None),
            &["hosting"],
            now,
        )
        .unwrap();
        assert_eq!(ledger.asns.len(), 1, "the same ASN and list is replaced");
        assert_eq!(ledger.asns[0].expires, None);
        let bad = block_asn(&mut ledger, &req("AS0", "hosting", None), &["hosting"], now);
        assert_eq!(
            bad.unwrap_err().to_string(),
            "ASN `AS0` is out of range: ASNs run from 1 to 4294967295 (0 means \"unknown\" to WAF)"
        );
        let bad = block_asn(&mut ledger, &req("AS1", "cloud", None), &["hosting"], now);
        assert_eq!(
            bad.unwrap_err().to_string(),
            "ASN list `cloud` is not used by any asn_rule in waftune.toml (lists: `hosting`)"
        );
        let err = unblock_asn(&mut ledger, "AS64496", Some("cloud")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`AS64496` is not in the ledger list `cloud`; it is in list `hosting`"
        );
        let gone = unblock_asn(&mut ledger, "as64496", None).unwrap();
        assert_eq!(gone.len(), 1);
        assert!(ledger.asns.is_empty());
    }
}
