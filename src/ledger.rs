//! The blocklist ledger: who is blocked now, why, and until when.
//!
//! The ledger is the desired state kept in the user's git repository (by default `state/blocklist.toml`).
//! It is written with a stable order (group, then address) and one `[[entry]]` block per CIDR, so that a
//! change reviews as a small diff in a pull request.

use std::path::{Path, PathBuf};

use crate::model::asn::Asn;
use crate::util::{atomic_file, cidr};
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
    #[error("cannot lock ledger `{path}` through `{lock}`: {source}")]
    Lock {
        path: PathBuf,
        lock: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "ledger `{path}` does not exist: restore it from your repository, or pass `--init-ledger` \
         to start a new, empty one (a first run)"
    )]
    Missing { path: PathBuf },
    #[error(
        "ledger `{path}` does not exist, but IP sets waftune writes do ({sets}): a plan from no \
         ledger would remove every entry from them. Restore the ledger from your repository; to \
         empty the sets deliberately, commit an empty ledger file"
    )]
    MissingWithSets { path: PathBuf, sets: String },
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

/// One blocked (or counted, or rate-limited: the configured ASN rule decides) Autonomous System.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsnEntry {
    /// `AS13335` (or `13335`), 1 to 4294967295.
    pub asn: Asn,
    /// The ASN list (an `asn_rule`'s `list` in `waftune.toml`) it belongs to.
    pub list: String,
    /// The policy that proposed it, or [`MANUAL`].
    pub policy: String,
    /// One line a reviewer can read: what was seen from it, and who else lives there.
    pub reason: String,
    pub added: Timestamp,
    /// `None` holds until removed by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Timestamp>,
}

impl AsnEntry {
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
    /// ASNs for the ASN rules, kept sorted by (list, ASN).
    #[serde(default, rename = "asn")]
    pub asns: Vec<AsnEntry>,
}

impl Ledger {
    /// Reads a ledger. A missing file is an error unless `init` (a first run, which creates it):
    /// read as empty, it would make the next plan remove every entry from the live sets.
    pub fn load(path: &Path, init: bool) -> Result<Ledger, LedgerError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ledger::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && init => Ok(Ledger::default()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(LedgerError::Missing {
                path: path.to_owned(),
            }),
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
        // Written by hand, a mapped address would be planned into the IPv6 set and never match.
        for entry in &mut ledger.entries {
            entry.cidr = cidr::unmap(entry.cidr);
        }
        for past in &mut ledger.history {
            past.cidr = cidr::unmap(past.cidr);
        }
        let spans = TableSpans::of(text);
        let mut list: Vec<Diagnostic> = ledger
            .entries
            .iter()
            .zip(starts(spans.entry))
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
        let mut seen = std::collections::BTreeSet::new();
        for (entry, span) in ledger.asns.iter().zip(starts(spans.asn)) {
            let message = if entry.list.is_empty() {
                "list is empty"
            } else if !seen.insert((&entry.list, entry.asn)) {
                "listed twice; keep one entry"
            } else {
                continue;
            };
            let message = format!(
                "asn entry for `{}` in list `{}`: {message}",
                entry.asn, entry.list
            );
            list.push(Diagnostic::error(path, text, span, message));
        }
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
        push_tables(&mut out, "entry", None, &sorted.entries);
        push_tables(
            &mut out,
            "history",
            Some("Expired blocks, remembered so that a returning offender gets a longer block."),
            &sorted.history,
        );
        push_tables(
            &mut out,
            "asn",
            Some("ASNs for the ASN rules of waftune.toml, sorted by list and number."),
            &sorted.asns,
        );
        out
    }

    /// Writes atomically (see [`atomic_file::write`]), so an interrupted run never leaves half a
    /// ledger. Callers that read, change and save hold [`lock`] throughout.
    pub fn save(&self, path: &Path) -> Result<(), LedgerError> {
        atomic_file::write(path, self.to_toml().as_bytes()).map_err(|source| LedgerError::Write {
            path: path.to_owned(),
            source,
        })
    }

    pub fn sort(&mut self) {
        self.entries
            .sort_by(|a, b| (&a.group, a.cidr).cmp(&(&b.group, b.cidr)));
        self.history
            .sort_by(|a, b| (&a.group, a.cidr).cmp(&(&b.group, b.cidr)));
        self.asns
            .sort_by(|a, b| (&a.list, a.asn).cmp(&(&b.list, b.asn)));
    }

    /// Entries in force at `now` (not expired).
    pub fn active(&self, now: Timestamp) -> impl Iterator<Item = &LedgerEntry> {
        self.entries.iter().filter(move |e| !e.is_expired(now))
    }

    /// ASN entries in force at `now` (not expired).
    pub fn active_asns(&self, now: Timestamp) -> impl Iterator<Item = &AsnEntry> {
        self.asns.iter().filter(move |e| !e.is_expired(now))
    }
}

/// Appends one `[[name]]` block per item, after `heading` (a comment) when there is any.
/// Serialising one item at a time keeps each block self-contained and in field order.
fn push_tables<T: Serialize>(out: &mut String, name: &str, heading: Option<&str>, items: &[T]) {
    if let (Some(heading), false) = (heading, items.is_empty()) {
        out.push_str("\n# ");
        out.push_str(heading);
        out.push('\n');
    }
    for item in items {
        out.push('\n');
        out.push_str("[[");
        out.push_str(name);
        out.push_str("]]\n");
        out.push_str(&toml::to_string(item).expect("a ledger table always serialises"));
    }
}

/// The lock file guarding the ledger at `path`: `.NAME.lock` beside it.
pub fn lock_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy();
    path.with_file_name(format!(".{name}.lock"))
}

/// Waits for the exclusive lock of the ledger at `path`, so that concurrent `block`, `unblock` and
/// `propose` runs change it one after the other and none loses another's change. Hold it from
/// before [`Ledger::load`] until after [`Ledger::save`].
pub fn lock(path: &Path) -> Result<atomic_file::Lock, LedgerError> {
    let lock = lock_path(path);
    atomic_file::lock(&lock).map_err(|source| LedgerError::Lock {
        path: path.to_owned(),
        lock,
        source,
    })
}

/// Refuses to plan from a missing ledger while sets waftune writes exist (`existing_sets`): only
/// a first run, before waftune created any of them, plans from an empty ledger.
pub fn check_present<'a>(
    path: &Path,
    existing_sets: impl IntoIterator<Item = &'a str>,
) -> Result<(), LedgerError> {
    if path.exists() {
        return Ok(());
    }
    let sets: Vec<String> = existing_sets
        .into_iter()
        .map(|s| format!("`{s}`"))
        .collect();
    if sets.is_empty() {
        return Ok(());
    }
    Err(LedgerError::MissingWithSets {
        path: path.to_owned(),
        sets: sets.join(", "),
    })
}

/// Where each `[[entry]]` and each `[[asn]]` starts, in file order (the ledger parsed, so the text
/// is valid TOML).
#[derive(Deserialize, Default)]
struct TableSpans {
    #[serde(default)]
    entry: Vec<toml::Spanned<toml::Value>>,
    #[serde(default)]
    asn: Vec<toml::Spanned<toml::Value>>,
}

impl TableSpans {
    fn of(text: &str) -> TableSpans {
        toml::from_str(text).unwrap_or_default()
    }
}

/// The start of each table, then `0..0` for ever (a table built in code has no place in the text).
fn starts(tables: Vec<toml::Spanned<toml::Value>>) -> impl Iterator<Item = std::ops::Range<usize>> {
    tables
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
            asns: Vec::new(),
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
            asns: Vec::new(),
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
    fn a_missing_ledger_is_an_error_unless_initialising() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/blocklist.toml");
        let err = Ledger::load(&path, false).unwrap_err();
        assert!(matches!(err, LedgerError::Missing { .. }), "{err}");
        assert!(err.to_string().contains("pass `--init-ledger`"), "{err}");
        assert_eq!(Ledger::load(&path, true).unwrap(), Ledger::default());
        // Planning: fine before waftune created any set, refused once one exists.
        check_present(&path, []).unwrap();
        let err = check_present(&path, ["waftune-blocklist-v4", "waftune-blocklist-v6"]);
        let msg = err.unwrap_err().to_string();
        assert!(
            msg.contains("(`waftune-blocklist-v4`, `waftune-blocklist-v6`): a plan from no ledger"),
            "{msg}"
        );
        Ledger::default().save(&path).unwrap();
        check_present(&path, ["waftune-blocklist-v4"]).unwrap();
        assert_eq!(Ledger::load(&path, false).unwrap(), Ledger::default());
    }

    #[test]
    fn ipv4_mapped_entries_load_as_ipv4() {
        let mut l = Ledger {
            entries: vec![entry("192.0.2.0/24", "g")],
            history: Vec::new(),
            asns: Vec::new(),
        };
        l.history.push(HistoryEntry {
            cidr: "198.51.100.7/32".parse().unwrap(),
            group: "g".into(),
            policy: MANUAL.into(),
            strikes: 1,
            expired: "2026-11-20T00:00:00Z".parse().unwrap(),
        });
        let text = l
            .to_toml()
            .replace("192.0.2.0/24", "::ffff:192.0.2.0/120")
            .replace("198.51.100.7/32", "::ffff:198.51.100.7/128");
        let back = Ledger::parse(&text, Path::new("l.toml")).unwrap();
        assert_eq!(back, l);
    }

    fn asn(n: u32, list: &str) -> AsnEntry {
        AsnEntry {
            asn: Asn::new(n).unwrap(),
            list: list.into(),
            policy: MANUAL.into(),
            reason: "hosting provider scraping".into(),
            added: "2026-11-20T00:00:00Z".parse().unwrap(),
            expires: Some("2026-12-20T00:00:00Z".parse().unwrap()),
        }
    }

    #[test]
    fn asn_entries_round_trip_sorted_after_the_addresses() {
        let ledger = Ledger {
            entries: vec![entry("192.0.2.1/32", "g")],
            history: Vec::new(),
            asns: vec![
                asn(64500, "hosting"),
                asn(64496, "hosting"),
                asn(1, "cloud"),
            ],
        };
        let text = ledger.to_toml();
        assert!(
            text.ends_with(
                "\n# ASNs for the ASN rules of waftune.toml, sorted by list and number.\n\n\
                 [[asn]]\nasn = \"AS1\"\nlist = \"cloud\"\npolicy = \"manual\"\n\
                 reason = \"hosting provider scraping\"\nadded = \"2026-11-20T00:00:00Z\"\n\
                 expires = \"2026-12-20T00:00:00Z\"\n\n[[asn]]\nasn = \"AS64496\"\nlist = \"hosting\"\n\
                 policy = \"manual\"\nreason = \"hosting provider scraping\"\nadded = \"2026-11-20T00:00:00Z\"\n\
                 expires = \"2026-12-20T00:00:00Z\"\n\n[[asn]]\nasn = \"AS64500\"\nlist = \"hosting\"\n\
                 policy = \"manual\"\nreason = \"hosting provider scraping\"\nadded = \"2026-11-20T00:00:00Z\"\n\
                 expires = \"2026-12-20T00:00:00Z\"\n"
            ),
            "{text}"
        );
        let back = Ledger::parse(&text, Path::new("l.toml")).unwrap();
        assert_eq!(back.to_toml(), text);
        let now: Timestamp = "2026-12-20T00:00:00Z".parse().unwrap();
        assert_eq!(back.active_asns(now).count(), 0);
        // Without ASN entries the ledger is written exactly as before.
        let plain = Ledger {
            asns: Vec::new(),
            ..back
        };
        assert!(!plain.to_toml().contains("ASN"));
    }

    #[test]
    fn bad_asn_entries_name_line_and_value() {
        let l = Ledger {
            asns: vec![asn(64496, "hosting")],
            ..Ledger::default()
        };
        let text = l.to_toml();
        let msg = diagnostics(&text.replace("AS64496", "AS0"), "b.toml").join("\n");
        assert!(msg.starts_with("b.toml:7:7: error: "), "{msg}");
        assert!(msg.contains("ASN `AS0` is out of range"), "{msg}");
        let msg = diagnostics(&text.replace("AS64496", "4294967296"), "b.toml").join("\n");
        assert!(msg.contains("ASN `4294967296` is out of range"), "{msg}");
        let twice = format!("{text}{}", &text[text.find("\n[[asn]]").unwrap()..]);
        assert_eq!(
            diagnostics(&twice, "b.toml"),
            [
                "b.toml:14:1: error: asn entry for `AS64496` in list `hosting`: listed twice; keep one entry"
            ]
        );
        let empty = text.replace("list = \"hosting\"", "list = \"\"");
        assert_eq!(
            diagnostics(&empty, "b.toml"),
            ["b.toml:6:1: error: asn entry for `AS64496` in list ``: list is empty"]
        );
    }

    #[test]
    fn lock_file_sits_beside_the_ledger() {
        assert_eq!(
            lock_path(Path::new("state/blocklist.toml")),
            Path::new("state/.blocklist.toml.lock")
        );
        assert_eq!(lock_path(Path::new("b.toml")), Path::new(".b.toml.lock"));
    }

    #[test]
    fn expiry() {
        let e = entry("192.0.2.0/24", "g");
        assert!(!e.is_expired("2026-12-19T00:00:00Z".parse().unwrap()));
        assert!(e.is_expired("2026-12-20T00:00:00Z".parse().unwrap()));
    }
}
