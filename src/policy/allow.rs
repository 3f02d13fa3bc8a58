//! The allowlist: keys that are never proposed, whatever a policy finds.
//!
//! Entries are CIDRs, labels (exact or prefix) or user-agent regexes, each with a required comment
//! (an allowlist entry nobody can explain is one nobody dares to remove) and an optional expiry.

use std::fmt;
use std::path::PathBuf;

use ipnet::IpNet;
use jiff::Timestamp;

use super::matcher::{LabelPattern, TextMatch};
use crate::util::cidr;

/// Every `[[allow]]` entry of a policy set, in file and line order.
#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    pub entries: Vec<AllowEntry>,
}

#[derive(Debug, Clone)]
pub struct AllowEntry {
    pub rule: AllowRule,
    pub comment: String,
    /// After this instant the entry no longer suppresses anything.
    pub expires: Option<Timestamp>,
    pub file: PathBuf,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub enum AllowRule {
    /// Keys overlapping any of these ranges.
    Cidr(Vec<IpNet>),
    /// Keys that sent at least one request carrying a matching label.
    Label(Vec<LabelPattern>),
    /// Keys that sent at least one request with a matching user agent.
    UserAgent(TextMatch),
}

impl AllowEntry {
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.expires.is_none_or(|e| now < e)
    }

    fn suppresses(&self, key: &IpNet, labels: &[&str], user_agents: &[&str]) -> bool {
        match &self.rule {
            // Overlap, not containment: proposing a /24 that holds an allowlisted address would
            // block that address too.
            AllowRule::Cidr(nets) => nets.iter().any(|n| cidr::overlaps(n, key)),
            AllowRule::Label(patterns) => {
                patterns.iter().any(|p| labels.iter().any(|l| p.matches(l)))
            }
            AllowRule::UserAgent(t) => user_agents.iter().any(|ua| t.is_match(ua)),
        }
    }
}

impl fmt::Display for AllowEntry {
    /// `cidr 192.0.2.0/24 (policies/allow.toml:3: office egress)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |items: Vec<String>| items.join(", ");
        match &self.rule {
            AllowRule::Cidr(nets) => write!(
                f,
                "cidr {}",
                join(nets.iter().map(ToString::to_string).collect())
            )?,
            AllowRule::Label(patterns) => write!(
                f,
                "label {}",
                join(patterns.iter().map(ToString::to_string).collect())
            )?,
            AllowRule::UserAgent(t) => write!(
                f,
                "user_agent {}",
                join(t.patterns.iter().map(ToString::to_string).collect())
            )?,
        }
        write!(
            f,
            " ({}:{}: {})",
            self.file.display(),
            self.line,
            self.comment
        )
    }
}

impl Allowlist {
    /// The first active entry that covers `key`, given every distinct label and user agent the key
    /// sent. An allowlisted key is never proposed; the entry is what a report shows instead.
    pub fn suppresses(
        &self,
        key: &IpNet,
        labels: &[&str],
        user_agents: &[&str],
        now: Timestamp,
    ) -> Option<&AllowEntry> {
        self.entries
            .iter()
            .find(|e| e.is_active(now) && e.suppresses(key, labels, user_agents))
    }

    /// The active CIDR entries, merged and sorted: what apply must never block.
    pub fn cidrs(&self, now: Timestamp) -> Vec<IpNet> {
        let nets: Vec<IpNet> = self
            .entries
            .iter()
            .filter(|e| e.is_active(now))
            .filter_map(|e| match &e.rule {
                AllowRule::Cidr(nets) => Some(nets.iter().copied()),
                _ => None,
            })
            .flatten()
            .collect();
        cidr::aggregate(&nets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::matcher::Pattern;

    fn entry(rule: AllowRule, expires: Option<&str>, line: usize) -> AllowEntry {
        AllowEntry {
            rule,
            comment: format!("entry {line}"),
            expires: expires.map(|e| e.parse().unwrap()),
            file: PathBuf::from("policies/allow.toml"),
            line,
        }
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn list() -> Allowlist {
        let ua = TextMatch::new(vec![Pattern::Regex("^UptimeRobot/".into())], false, None).unwrap();
        Allowlist {
            entries: vec![
                entry(
                    AllowRule::Cidr(nets(&["192.0.2.0/24", "2001:db8::/48"])),
                    None,
                    1,
                ),
                entry(
                    AllowRule::Cidr(nets(&["198.51.100.0/24"])),
                    Some("2026-01-01T00:00:00Z"),
                    5,
                ),
                entry(
                    AllowRule::Label(vec![LabelPattern::parse(
                        "awswaf:managed:aws:bot-control:bot:name:*",
                    )]),
                    None,
                    9,
                ),
                entry(AllowRule::UserAgent(ua), None, 13),
            ],
        }
    }

    fn now() -> Timestamp {
        "2025-06-01T00:00:00Z".parse().unwrap()
    }

    fn key(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_suppress_overlapping_keys() {
        let l = list();
        let hit = |k: &str| l.suppresses(&key(k), &[], &[], now()).map(|e| e.line);
        assert_eq!(hit("192.0.2.7/32"), Some(1));
        assert_eq!(hit("2001:db8:0:1::/64"), Some(1));
        // A prefix proposal that would cover an allowlisted range is suppressed too.
        assert_eq!(hit("192.0.0.0/16"), Some(1));
        assert_eq!(hit("203.0.113.9/32"), None);
        assert_eq!(hit("198.51.100.1/32"), Some(5));
    }

    #[test]
    fn labels_match_exactly_or_by_prefix_on_any_request() {
        let l = list();
        let k = key("203.0.113.9/32");
        let by = |labels: &[&str]| l.suppresses(&k, labels, &[], now()).map(|e| e.line);
        assert_eq!(
            by(&[
                "awswaf:clientip:geo:country:JP",
                "awswaf:managed:aws:bot-control:bot:name:pingdom"
            ]),
            Some(9)
        );
        assert_eq!(by(&["awswaf:managed:aws:bot-control:bot:verified"]), None);
        assert_eq!(by(&[]), None);
    }

    #[test]
    fn user_agents_match_the_regex() {
        let l = list();
        let k = key("203.0.113.9/32");
        let by = |uas: &[&str]| l.suppresses(&k, &[], uas, now()).map(|e| e.line);
        assert_eq!(by(&["Mozilla/5.0", "UptimeRobot/2.0"]), Some(13));
        assert_eq!(by(&["Mozilla/5.0 (compatible; UptimeRobot/2.0)"]), None);
    }

    #[test]
    fn expired_entries_stop_suppressing() {
        let l = list();
        let k = key("198.51.100.1/32");
        let later: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        assert!(l.suppresses(&k, &[], &[], now()).is_some());
        assert!(
            l.suppresses(&k, &[], &[], later).is_none(),
            "expiry is exclusive"
        );
        assert_eq!(
            l.cidrs(now())
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["192.0.2.0/24", "198.51.100.0/24", "2001:db8::/48"]
        );
        assert_eq!(l.cidrs(later).len(), 2);
    }

    #[test]
    fn entries_describe_themselves() {
        let l = list();
        assert_eq!(
            l.entries[0].to_string(),
            "cidr 192.0.2.0/24, 2001:db8::/48 (policies/allow.toml:1: entry 1)"
        );
        assert_eq!(
            l.entries[3].to_string(),
            "user_agent ^UptimeRobot/ (policies/allow.toml:13: entry 13)"
        );
    }
}
