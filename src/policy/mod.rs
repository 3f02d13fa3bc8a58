//! Detection policies: which clients misbehave, and what to propose about them.
//!
//! A policy file (`policies/*.toml`) holds `[[policy]]` tables and `[[allow]]` entries; the
//! language is described in `docs/policies.md`. Loading is parse -> validate -> compile, as pure
//! functions over the text, in the manner of cedar: every problem becomes a [`Diagnostic`] with
//! the file, line and column of the offending value, all of them are reported at once, and
//! warnings are kept apart from errors. What comes out is ready for the scan's hot loop: each
//! policy's [`Matcher`] is precompiled, and its [`Thresholds`] only compare numbers the scan
//! counted ([`KeyCounts`]).

mod allow;
mod match_set;
mod matcher;
mod parse;
mod pattern;
mod threshold;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use jiff::{SignedDuration, Timestamp};

pub use allow::{AllowEntry, AllowRule, Allowlist};
pub use match_set::{MatchSet, RecordMatch, TextCache, TextIds};
pub use matcher::{
    Condition, CountryMatch, Expr, HeaderMatch, HeaderTest, LabelMatch, LabelPattern, Matcher,
    Pattern, TextMatch,
};
pub use threshold::{
    Basis, FiredThreshold, KeyCounts, Limit, Measure, Mode, OriginCounts, OriginShare, Relative,
    Site, Threshold, Thresholds,
};

use crate::model::rate::Window;
use crate::util::diag::{Diagnostic, Severity};
use crate::util::text::thousands;

/// One validated, compiled policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Unique across all loaded files; recorded in ledger entries.
    pub name: String,
    pub description: String,
    /// The file that defines it.
    pub file: PathBuf,
    pub matcher: Matcher,
    pub key: KeyKind,
    /// What each key the scan counts must reach: for a campaign, each member address
    /// (`[policy.members]`).
    pub thresholds: Thresholds,
    /// With `key = "campaign"`: the members' addresses grouped by [`crate::propose::campaign`]'s
    /// signature, and what the group's counts together must reach (`[policy.thresholds]`).
    pub campaign: Option<Thresholds>,
    pub action: PolicyAction,
    pub aggregate: Option<Aggregate>,
    /// The policy's own `[[policy.allow]]` entries: keys this policy never proposes, judged like
    /// the global allowlist (on every label and user agent the key sent), but for this policy
    /// only. They are not an apply guardrail.
    pub allowlist: Allowlist,
}

/// What a policy counts requests by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// The client address.
    Ip,
    /// The client's /24 (IPv4) or /64 (IPv6): for clients that rotate addresses inside one network.
    Prefix,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Ip => "ip",
            KeyKind::Prefix => "prefix",
        }
    }

    /// The key an address is counted under: itself as a /32 or /128, or its /24 or /64 network.
    pub fn key(self, ip: IpAddr) -> IpNet {
        let prefix = match (self, ip) {
            (KeyKind::Ip, IpAddr::V4(_)) => 32,
            (KeyKind::Ip, IpAddr::V6(_)) => 128,
            (KeyKind::Prefix, IpAddr::V4(_)) => 24,
            (KeyKind::Prefix, IpAddr::V6(_)) => 64,
        };
        IpNet::new(ip, prefix)
            .expect("the prefix fits the address family")
            .trunc()
    }
}

/// Propose the whole /24 or /64 when enough distinct offending addresses of this policy fall in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aggregate {
    pub min_offenders: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PolicyAction {
    /// Propose the key for an IP-set group.
    Block(BlockAction),
    /// Simulation: findings are shown, nothing is proposed.
    Report(ReportAction),
}

#[derive(Debug, Clone, PartialEq)]
pub struct BlockAction {
    /// The IP-set group (an `[[ip_set_group]]` of `waftune.toml`).
    pub group: String,
    /// How long a first block lasts.
    pub duration: SignedDuration,
    pub escalation: Option<Escalation>,
}

/// Longer blocks for repeat offenders, like fail2ban's `bantime.increment`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Escalation {
    /// Each strike multiplies the previous duration by this (>= 1).
    pub factor: f64,
    /// No block lasts longer than this.
    pub max: SignedDuration,
}

impl BlockAction {
    /// How long to block a key for its `strikes`-th offence (1 for the first; 0 is read as 1):
    /// `min(duration * factor^(strikes - 1), max)`, rounded to whole seconds.
    pub fn block_duration(&self, strikes: u32) -> SignedDuration {
        let Some(e) = &self.escalation else {
            return self.duration;
        };
        let exponent = i32::try_from(strikes.saturating_sub(1)).unwrap_or(i32::MAX);
        // In floating point an enormous exponent becomes infinity, which the cap absorbs.
        let secs = (self.duration.as_secs_f64() * e.factor.powi(exponent))
            .min(e.max.as_secs_f64())
            .round();
        SignedDuration::from_secs(secs as i64)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportAction {
    /// Shown with every finding of the policy (e.g. why it only reports).
    pub note: Option<String>,
    /// A suggested WAF rate-based rule instead of a block.
    pub rate_limit: Option<RateLimitHint>,
}

/// A rate-based rule the report suggests: at most `requests` per `window` and client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitHint {
    pub window: Window,
    pub requests: u64,
}

impl fmt::Display for RateLimitHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rate-limit to {} requests per {}",
            thousands(self.requests),
            self.window
        )
    }
}

/// Every enabled policy (sorted by name) and the allowlist, from one or more files.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    pub policies: Vec<Policy>,
    pub allowlist: Allowlist,
}

impl PolicySet {
    /// The entry that keeps `policy` from proposing `key`: the global allowlist first, then the
    /// policy's own `[[policy.allow]]` entries. `labels` and `user_agents` are all distinct values
    /// the key sent, as for [`Allowlist::suppresses`].
    pub fn suppresses<'s>(
        &'s self,
        policy: &'s Policy,
        key: &IpNet,
        labels: &[&str],
        user_agents: &[&str],
        now: Timestamp,
    ) -> Option<&'s AllowEntry> {
        self.allowlist
            .suppresses(key, labels, user_agents, now)
            .or_else(|| policy.allowlist.suppresses(key, labels, user_agents, now))
    }
}

/// A successful load: the policies, and warnings worth showing.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub policies: PolicySet,
    pub warnings: Vec<Diagnostic>,
}

/// Loads every `*.toml` file of a directory (not recursing), or a single file.
///
/// `known_groups` are the IP-set groups configured in `waftune.toml`; a `block` into any other
/// group is a warning (`None` skips the check). On failure the list holds every error and every
/// warning, sorted by file and position; [`Diagnostic::severity`] tells them apart. Disabled
/// policies are validated like the others (so they do not rot) but not returned.
pub fn load_dir(dir: &Path, known_groups: Option<&[String]>) -> Result<Loaded, Vec<Diagnostic>> {
    let files = policy_files(dir).map_err(|d| vec![d])?;
    let mut unit = parse::Unit::new(known_groups);
    for file in &files {
        match std::fs::read_to_string(file) {
            Ok(text) => unit.add_file(&text, file),
            Err(e) => unit.file_error(file, format!("cannot read `{}`: {e}", file.display())),
        }
    }
    unit.finish()
}

/// Loads policies from text; `file` is used in messages and recorded in each [`Policy`].
pub fn parse_str(
    text: &str,
    file: &Path,
    known_groups: Option<&[String]>,
) -> Result<Loaded, Vec<Diagnostic>> {
    let mut unit = parse::Unit::new(known_groups);
    unit.add_file(text, file);
    unit.finish()
}

fn policy_files(path: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    let whole_file = |message: String| Diagnostic {
        severity: Severity::Error,
        file: path.to_owned(),
        line: 0,
        column: 0,
        message,
        help: None,
    };
    if path.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    let entries = std::fs::read_dir(path)
        .map_err(|e| whole_file(format!("cannot read `{}`: {e}", path.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(whole_file(format!(
            "no policy files (`*.toml`) in `{}`",
            path.display()
        )));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(duration: &str, escalation: Option<(f64, &str)>) -> BlockAction {
        let d = |s: &str| crate::util::time::parse_duration(s).unwrap();
        BlockAction {
            group: "blocklist".into(),
            duration: d(duration),
            escalation: escalation.map(|(factor, max)| Escalation {
                factor,
                max: d(max),
            }),
        }
    }

    fn hours(strikes: u32, b: &BlockAction) -> f64 {
        b.block_duration(strikes).as_secs_f64() / 3600.0
    }

    #[test]
    fn escalation_multiplies_per_strike_up_to_the_cap() {
        let b = block("1h", Some((2.0, "1d")));
        let seq: Vec<f64> = (1..=7).map(|s| hours(s, &b)).collect();
        assert_eq!(seq, [1.0, 2.0, 4.0, 8.0, 16.0, 24.0, 24.0]);
        assert_eq!(hours(0, &b), 1.0, "strike 0 is read as a first offence");
        assert_eq!(hours(u32::MAX, &b), 24.0);
        let b = block("1h", Some((1.5, "30d")));
        assert_eq!(b.block_duration(3).as_secs(), 8_100);
    }

    #[test]
    fn without_escalation_every_strike_gets_the_base_duration() {
        let b = block("12h", None);
        assert_eq!(hours(1, &b), 12.0);
        assert_eq!(hours(9, &b), 12.0);
    }

    #[test]
    fn keys_are_addresses_or_their_networks() {
        let v4: IpAddr = "203.0.113.77".parse().unwrap();
        let v6: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        assert_eq!(KeyKind::Ip.key(v4).to_string(), "203.0.113.77/32");
        assert_eq!(KeyKind::Prefix.key(v4).to_string(), "203.0.113.0/24");
        assert_eq!(KeyKind::Ip.key(v6).to_string(), "2001:db8:1:2:3:4:5:6/128");
        assert_eq!(KeyKind::Prefix.key(v6).to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn suppression_checks_the_global_then_the_policy_allowlist() {
        let text = r#"
[[policy]]
name = "fake-crawler"
description = "d"
match = { user_agent = "(?i)googlebot" }
thresholds = { requests = 20 }
action = { type = "report" }

[[policy.allow]]
label = "awswaf:managed:aws:bot-control:bot:verified"
comment = "verified at least once"

[[allow]]
cidr = "192.0.2.0/24"
comment = "office"
"#;
        let set = parse_str(text, Path::new("p.toml"), None).unwrap().policies;
        let policy = &set.policies[0];
        let now = Timestamp::UNIX_EPOCH;
        let key = |s: &str| s.parse::<IpNet>().unwrap();
        let verified = ["awswaf:managed:aws:bot-control:bot:verified"];
        let by = |k: &str, labels: &[&str]| {
            set.suppresses(policy, &key(k), labels, &[], now)
                .map(|e| e.comment.as_str())
        };
        assert_eq!(by("192.0.2.9/32", &verified), Some("office"));
        assert_eq!(
            by("66.249.66.1/32", &verified),
            Some("verified at least once")
        );
        assert_eq!(by("203.0.113.5/32", &[]), None);
        // The policy's own entries are not a guardrail for apply.
        assert_eq!(set.allowlist.cidrs(now), [key("192.0.2.0/24")]);
    }

    #[test]
    fn rate_limit_hint_reads_as_advice() {
        let hint = RateLimitHint {
            window: Window::M5,
            requests: 3000,
        };
        assert_eq!(hint.to_string(), "rate-limit to 3,000 requests per 5m");
    }
}
