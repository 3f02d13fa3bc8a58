//! The blocklist ledger: who is blocked now, why, and until when.
//!
//! The ledger is the desired state kept in the user's git repository (by default `state/blocklist.toml`).
//! It is written with a stable order (group, then address) and one `[[entry]]` block per CIDR, so that a
//! change reviews as a small diff in a pull request.

use std::path::{Path, PathBuf};

use ipnet::IpNet;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::util::diag::{Diagnostic, Diagnostics};

/// The policy name recorded for entries added by `waftune block`.
pub const MANUAL: &str = "manual";

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot read ledger `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write ledger `{path}`: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Every mistake in the file, each with its line and column.
    #[error(transparent)]
    Invalid(#[from] Diagnostics),
}

/// One blocked address range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerEntry {
    /// The blocked range, always a network address (`203.0.113.0/24`, never `203.0.113.7/24`).
    pub cidr: IpNet,
    /// The IP-set group (configured in `waftune.toml`) the range belongs to.
    pub group: String,
    /// The policy that proposed it, or [`MANUAL`].
    pub policy: String,
    /// One line a reviewer can read.
    pub reason: String,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub added: Timestamp,
    /// `None` blocks until removed by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Timestamp>,
    /// How many times this range has been blocked (1 for a first offence); drives escalation.
    pub strikes: u32,
}

impl LedgerEntry {
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires.is_some_and(|e| e <= now)
    }
}

/// A block that ran out, remembered for a while so that a returning offender escalates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryEntry {
    pub cidr: IpNet,
    pub group: String,
    pub policy: String,
    /// Strikes when the block expired.
    pub strikes: u32,
    pub expired: Timestamp,
}

/// The whole ledger, kept sorted by (group, cidr).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ledger {
    #[serde(default, rename = "entry")]
    pub entries: Vec<LedgerEntry>,
    /// Expired blocks (not in any IP set), kept for escalation.
    #[serde(default, rename = "history")]
    pub history: Vec<HistoryEntry>,
}

impl Ledger {
    /// Reads a ledger; a missing file is an empty ledger (the first run creates it).
    pub fn load(path: &Path) -> Result<Ledger, LedgerError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ledger::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ledger::default()),
            Err(source) => Err(LedgerError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Parses and validates ledger text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Ledger, LedgerError> {
        let invalid = |list| {
            LedgerError::Invalid(Diagnostics {
                what: "ledger",
                path: path.to_owned(),
                list,
            })
        };
        let mut ledger: Ledger = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            invalid(vec![Diagnostic::error(
                path,
                text,
                span,
                e.message().to_owned(),
            )])
        })?;
        let list: Vec<Diagnostic> = ledger
            .entries
            .iter()
            .zip(entry_spans(text))
            .filter_map(|(entry, span)| {
                let (message, help) = if entry.cidr.prefix_len() == 0 {
                    ("a /0 range would block everyone".to_owned(), None)
                } else if entry.cidr.network() != entry.cidr.addr() {
                    let help = format!("did you mean `{}`?", entry.cidr.trunc());
                    ("not a network address".to_owned(), Some(help))
                } else if entry.group.is_empty() {
                    ("group is empty".to_owned(), None)
                } else {
                    return None;
                };
                let message = format!(
                    "entry for `{}` in group `{}`: {message}",
                    entry.cidr, entry.group
                );
                Some(Diagnostic::error(path, text, span, message).with_help(help))
            })
            .collect();
        if !list.is_empty() {
            return Err(invalid(list));
        }
        ledger.sort();
        Ok(ledger)
    }

    /// Renders the ledger in its canonical, diff-friendly form.
    pub fn to_toml(&self) -> String {
        let mut sorted = self.clone();
        sorted.sort();
        let mut out = String::from(
            "# waftune blocklist ledger: one [[entry]] per blocked range, sorted by group and address.\n\
             # Edit by hand or with `waftune block` / `waftune unblock`; `waftune propose` maintains it.\n",
        );
        for entry in &sorted.entries {
            out.push('\n');
            out.push_str("[[entry]]\n");
            // Serialising one entry at a time keeps each block self-contained and in field order.
            out.push_str(&toml::to_string(entry).expect("a ledger entry always serialises"));
        }
        if !sorted.history.is_empty() {
            out.push_str(
                "\n# Expired blocks, remembered so that a returning offender gets a longer block.\n",
            );
        }
        for past in &sorted.history {
            out.push('\n');
            out.push_str("[[history]]\n");
            out.push_str(&toml::to_string(past).expect("a history entry always serialises"));
        }
        out
    }

    /// Writes atomically (temporary file + rename), so an interrupted run never leaves half a ledger.
    pub fn save(&self, path: &Path) -> Result<(), LedgerError> {
        let write_err = |source| LedgerError::Write {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(write_err)?;
        }
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, self.to_toml()).map_err(write_err)?;
        std::fs::rename(&tmp, path).map_err(write_err)
    }

    pub fn sort(&mut self) {
        self.entries
            .sort_by(|a, b| (&a.group, a.cidr).cmp(&(&b.group, b.cidr)));
        self.history
            .sort_by(|a, b| (&a.group, a.cidr).cmp(&(&b.group, b.cidr)));
    }

    /// Entries in force at `now` (not expired).
    pub fn active(&self, now: Timestamp) -> impl Iterator<Item = &LedgerEntry> {
        self.entries.iter().filter(move |e| !e.is_expired(now))
    }
}

/// Where each `[[entry]]` starts, in file order (the ledger parsed, so the text is valid TOML).
fn entry_spans(text: &str) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    #[derive(Deserialize)]
    struct Spans {
        #[serde(default)]
        entry: Vec<toml::Spanned<toml::Value>>,
    }
    toml::from_str::<Spans>(text)
        .map(|s| s.entry)
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.span())
        .chain(std::iter::repeat(0..0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(cidr: &str, group: &str) -> LedgerEntry {
        let t: Timestamp = "2026-11-20T00:00:00Z".parse().unwrap();
        LedgerEntry {
            cidr: cidr.parse().unwrap(),
            group: group.into(),
            policy: MANUAL.into(),
            reason: "test".into(),
            first_seen: t,
            last_seen: t,
            added: t,
            expires: Some("2026-12-20T00:00:00Z".parse().unwrap()),
            strikes: 1,
        }
    }

    #[test]
    fn round_trips_sorted() {
        let ledger = Ledger {
            history: Vec::new(),
            entries: vec![
                entry("198.51.100.0/24", "scanners"),
                entry("2001:db8::/64", "blocklist"),
                entry("192.0.2.1/32", "scanners"),
            ],
        };
        let text = ledger.to_toml();
        let back = Ledger::parse(&text, Path::new("l.toml")).unwrap();
        let cidrs: Vec<String> = back.entries.iter().map(|e| e.cidr.to_string()).collect();
        assert_eq!(cidrs, ["2001:db8::/64", "192.0.2.1/32", "198.51.100.0/24"]);
        assert_eq!(back.to_toml(), text);
    }

    /// Every diagnostic of a ledger that does not load, as the command line prints them.
    fn diagnostics(text: &str, path: &str) -> Vec<String> {
        match Ledger::parse(text, Path::new(path)).unwrap_err() {
            LedgerError::Invalid(d) => d.list.iter().map(ToString::to_string).collect(),
            e => panic!("not a diagnostic: {e}"),
        }
    }

    #[test]
    fn rejects_host_bits_with_suggestion() {
        let l = Ledger {
            entries: vec![entry("192.0.2.0/24", "g"), entry("198.51.100.0/24", "")],
            history: Vec::new(),
        };
        let text = l.to_toml().replace("192.0.2.0/24", "192.0.2.7/24");
        assert_eq!(
            diagnostics(&text, "state/blocklist.toml"),
            [
                "state/blocklist.toml:4:1: error: entry for `198.51.100.0/24` in group ``: group is empty",
                "state/blocklist.toml:15:1: error: entry for `192.0.2.7/24` in group `g`: not a network address\n  help: did you mean `192.0.2.0/24`?",
            ]
        );
    }

    #[test]
    fn parse_error_names_line_and_column() {
        let text = "[[entry]]\ncidr = \"not-a-cidr\"\n";
        let msg = diagnostics(text, "b.toml").join("\n");
        assert!(msg.starts_with("b.toml:2:8: error: "), "{msg}");
        assert!(msg.contains("invalid IP address syntax"), "{msg}");
    }

    #[test]
    fn expiry() {
        let e = entry("192.0.2.0/24", "g");
        assert!(!e.is_expired("2026-12-19T00:00:00Z".parse().unwrap()));
        assert!(e.is_expired("2026-12-20T00:00:00Z".parse().unwrap()));
    }
}
