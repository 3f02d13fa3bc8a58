//! Renderers over a [`Plan`]: terminal text in Terraform's style, Markdown for a pull-request
//! comment, and JSON. They only format: every number and list comes from the plan itself.

use std::fmt::Write as _;

use ipnet::IpNet;
use similar::TextDiff;

use crate::plan::{
    Action, BodyChange, Drift, DriftKind, IpSetChange, Plan, ResourceChange, RuleBefore,
    RuleChange, RuleRemoval, WebAclChange,
};

/// Entries listed per added or removed list before "... and N more" (unless `full`).
pub const ABBREVIATE_AFTER: usize = 20;
/// GitHub refuses comments over 65,536 characters; keep a margin for the CI tool's own wrapper.
pub const MARKDOWN_LIMIT: usize = 64_000;
/// A change a reviewer cannot check entry by entry any more: the comment says so loudly.
pub const LARGE_CHANGE_ENTRIES: usize = 1_000;

struct Palette {
    add: &'static str,
    change: &'static str,
    remove: &'static str,
    bold: &'static str,
    reset: &'static str,
}

const COLOR: Palette = Palette {
    add: "\x1b[32m",
    change: "\x1b[33m",
    remove: "\x1b[31m",
    bold: "\x1b[1m",
    reset: "\x1b[0m",
};
const PLAIN: Palette = Palette {
    add: "",
    change: "",
    remove: "",
    bold: "",
    reset: "",
};

/// The plan as a terminal would show it. `full` lists every entry instead of the first
/// [`ABBREVIATE_AFTER`]; `color` adds ANSI colours (the caller decides, e.g. from `NO_COLOR`).
pub fn text(plan: &Plan, color: bool, full: bool) -> String {
    let p = if color { &COLOR } else { &PLAIN };
    let mut out = String::new();
    let account = plan.account.as_deref().unwrap_or("unknown");
    let _ = writeln!(
        out,
        "waftune plan for {} in {} (account {account}), {}",
        plan.scope, plan.region, plan.created_at
    );
    out.push('\n');

    if !plan.drift.is_empty() {
        let _ = writeln!(
            out,
            "{}Objects have changed outside of waftune:{}",
            p.bold, p.reset
        );
        out.push('\n');
        for d in &plan.drift {
            drift_text(&mut out, d, p, full);
        }
        out.push_str("The plan below puts these sets back to what the ledger says.\n\n");
    }

    if !plan.has_changes() {
        out.push_str("No changes. WAF matches the ledger and the configuration.\n");
        return out;
    }
    let _ = writeln!(
        out,
        "waftune will perform the following actions:  {}+{} create  {}~{} update  {}-{} destroy",
        p.add, p.reset, p.change, p.reset, p.remove, p.reset
    );
    out.push('\n');
    for change in &plan.changes {
        match change {
            ResourceChange::IpSet(c) => ip_set_text(&mut out, c, p, full),
            ResourceChange::WebAcl(c) => web_acl_text(&mut out, c, p),
        }
        out.push('\n');
    }
    let s = plan.summary();
    let _ = writeln!(
        out,
        "{}Plan:{} {} to add, {} to change, {} to destroy.",
        p.bold, p.reset, s.add, s.change, s.destroy
    );
    out
}

fn drift_text(out: &mut String, d: &Drift, p: &Palette, full: bool) {
    let since = d
        .since
        .map(|t| format!(" since waftune wrote it at {t}"))
        .unwrap_or_default();
    match &d.kind {
        DriftKind::Entries {
            added_outside,
            removed_outside,
        } => {
            let _ = writeln!(
                out,
                "  {}~{} ip set \"{}\" changed{since}:",
                p.change, p.reset, d.set
            );
            entries(
                out,
                added_outside,
                "+",
                p.add,
                p,
                full,
                "added outside waftune",
            );
            entries(
                out,
                removed_outside,
                "-",
                p.remove,
                p,
                full,
                "removed outside waftune",
            );
        }
        DriftKind::Changed => {
            let _ = writeln!(
                out,
                "  {}~{} ip set \"{}\" changed outside waftune{since}; the ledger changed too, so the \
                 changes below mix both",
                p.change, p.reset, d.set
            );
        }
        DriftKind::NotWrittenByWaftune => {
            let _ = writeln!(
                out,
                "  {}~{} ip set \"{}\" was not written by waftune (no waftune stamp in its description)",
                p.change, p.reset, d.set
            );
        }
    }
    out.push('\n');
}

fn ip_set_text(out: &mut String, c: &IpSetChange, p: &Palette, full: bool) {
    let before = c.before.as_ref().map_or(0, |s| s.addresses.len());
    let after = c.after.as_ref().map_or(0, |s| s.addresses.len());
    let what = format!(
        "ip set \"{}\" ({}, group {})",
        c.name,
        c.version.as_str(),
        c.group
    );
    match c.action {
        Action::Create => {
            let _ = writeln!(
                out,
                "  {}+{} {what} will be created with {after} entries",
                p.add, p.reset
            );
        }
        Action::Update => {
            let _ = writeln!(
                out,
                "  {}~{} {what} will be updated: {}+{}{} {}-{}{} entries ({before} -> {after})",
                p.change,
                p.reset,
                p.add,
                c.added.len(),
                p.reset,
                p.remove,
                c.removed.len(),
                p.reset
            );
            let description_changed = match (&c.before, &c.after) {
                (Some(b), Some(a)) => {
                    c.added.is_empty() && c.removed.is_empty() && b.description != a.description
                }
                _ => false,
            };
            if description_changed {
                let _ = writeln!(
                    out,
                    "      description: {:?} -> {:?}",
                    c.before
                        .as_ref()
                        .map(|s| s.description.as_str())
                        .unwrap_or_default(),
                    c.after
                        .as_ref()
                        .map(|s| s.description.as_str())
                        .unwrap_or_default()
                );
            }
        }
        Action::Delete => {
            let _ = writeln!(
                out,
                "  {}-{} {what} will be destroyed ({before} entries, no longer needed)",
                p.remove, p.reset
            );
        }
    }
    entries(out, &c.added, "+", p.add, p, full, "added");
    if c.action != Action::Delete {
        entries(out, &c.removed, "-", p.remove, p, full, "removed");
    }
}

fn entries(
    out: &mut String,
    list: &[IpNet],
    sign: &str,
    colour: &str,
    p: &Palette,
    full: bool,
    verb: &str,
) {
    let shown = if full {
        list.len()
    } else {
        list.len().min(ABBREVIATE_AFTER)
    };
    for net in &list[..shown] {
        let _ = writeln!(out, "      {colour}{sign} {net}{}", p.reset);
    }
    if shown < list.len() {
        let _ = writeln!(
            out,
            "      ... and {} more {verb} (list them all with --full)",
            list.len() - shown
        );
    }
}

fn web_acl_text(out: &mut String, c: &WebAclChange, p: &Palette) {
    let _ = writeln!(
        out,
        "  {}~{} web acl \"{}\" will be updated in place (other rules untouched)",
        p.change, p.reset, c.name
    );
    let _ = writeln!(out, "      capacity: {}", capacity_text(c));
    for rule in &c.rules {
        rule_text(out, rule, p);
    }
    for rule in &c.removed_rules {
        removal_text(out, rule, p);
    }
    for body in &c.bodies {
        body_text(out, body, p);
    }
}

/// The ASNs an ASN rule gains and loses, before its JSON: the list a reviewer checks.
fn asn_lines(out: &mut String, added: &[u32], removed: &[u32], p: &Palette) {
    for (list, sign, colour) in [(added, '+', p.add), (removed, '-', p.remove)] {
        for asn in list {
            let _ = writeln!(out, "        {colour}{sign} AS{asn}{}", p.reset);
        }
    }
}

fn removal_text(out: &mut String, rule: &RuleRemoval, p: &Palette) {
    let _ = writeln!(
        out,
        "      rule \"{}\" will be removed (its ASN list in the ledger is empty):",
        rule.name
    );
    asn_lines(out, &[], &rule.asns_removed, p);
    let before = match &rule.before {
        RuleBefore::Opaque(summary) => format!("{summary}\n"),
        RuleBefore::Rule(value) => pretty(value),
    };
    for line in before.lines() {
        let _ = writeln!(out, "        {}-{line}{}", p.remove, p.reset);
    }
}

fn capacity_text(c: &WebAclChange) -> String {
    let cap = &c.capacity;
    let mut text = format!("{} -> {} WCU of {}", cap.before, cap.after, cap.limit);
    if !cap.unpriced_rules.is_empty() {
        let _ = write!(
            text,
            " (computed locally; plus rule groups {})",
            cap.unpriced_rules.join(", ")
        );
    }
    text
}

/// The warning a reviewer must see before a rate rule's statement changes.
pub const COUNTER_RESET_WARNING: &str = "changing a rate-based statement resets WAF's counters: \
     the rule limits no one for up to a minute after apply";

fn rule_text(out: &mut String, rule: &RuleChange, p: &Palette) {
    let (label, before) = match &rule.before {
        None => ("will be added", String::new()),
        Some(RuleBefore::Opaque(summary)) => (
            "has a shape waftune does not write and will be replaced",
            format!("{summary}\n"),
        ),
        Some(RuleBefore::Rule(value)) => ("will be updated", pretty(value)),
    };
    let _ = writeln!(out, "      rule \"{}\" {label}:", rule.name);
    if let Some(evidence) = &rule.limit_evidence {
        let _ = writeln!(out, "        # limit {evidence}");
    }
    if rule.resets_counters {
        let _ = writeln!(
            out,
            "        {}# warning: {COUNTER_RESET_WARNING}{}",
            p.change, p.reset
        );
    }
    asn_lines(out, &rule.asns_added, &rule.asns_removed, p);
    let after = pretty(&rule.after.to_json());
    let diff = TextDiff::from_lines(&before, &after);
    let unified = diff.unified_diff().context_radius(3).to_string();
    for line in unified.lines().filter(|l| !l.starts_with("@@")) {
        let colour = match line.chars().next() {
            Some('+') => p.add,
            Some('-') => p.remove,
            _ => "",
        };
        let _ = writeln!(out, "        {colour}{line}{}", p.reset);
    }
}

fn body_text(out: &mut String, body: &BodyChange, p: &Palette) {
    let verb = if body.before.is_some() {
        "will be updated"
    } else {
        "will be added"
    };
    let _ = writeln!(
        out,
        "      response body \"{}\" ({}) {verb}:",
        body.key,
        body.after.content_type.as_str()
    );
    if let Some(before) = &body.before {
        let _ = writeln!(out, "        {}- {:?}{}", p.remove, before.content, p.reset);
    }
    let _ = writeln!(
        out,
        "        {}+ {:?}{}",
        p.add, body.after.content, p.reset
    );
}

fn pretty(value: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(value).expect("JSON values always serialise");
    s.push('\n');
    s
}

/// The plan as a pull-request comment: summary and warnings first, details folded, and always
/// under [`MARKDOWN_LIMIT`] bytes (the folded text is cut with a note when needed).
pub fn markdown(plan: &Plan) -> String {
    let s = plan.summary();
    let mut head = String::new();
    let account = plan.account.as_deref().unwrap_or("unknown");
    head.push_str("### waftune plan\n\n");
    if !plan.has_changes() {
        head.push_str("**No changes.** WAF matches the ledger and the configuration.\n\n");
    } else {
        let _ = writeln!(
            head,
            "**Plan: {} to add, {} to change, {} to destroy.** {} entries added, {} removed.\n",
            s.add, s.change, s.destroy, s.entries_added, s.entries_removed
        );
    }
    let _ = writeln!(
        head,
        "`{}` in `{}`, account `{account}`, planned at {}.\n",
        plan.scope, plan.region, plan.created_at
    );
    if s.entries_removed > 0 || s.destroy > 0 {
        let _ = writeln!(
            head,
            "> [!CAUTION]\n> **This plan removes {} entries from IP sets{}.** Blocked clients will be let \
             through again: check each removal is intended.\n",
            s.entries_removed,
            if s.destroy > 0 {
                format!(" and destroys {} IP set(s)", s.destroy)
            } else {
                String::new()
            }
        );
    }
    if s.entries_added + s.entries_removed >= LARGE_CHANGE_ENTRIES {
        let _ = writeln!(
            head,
            "> [!WARNING]\n> **Large change:** {} entries change in one apply.\n",
            s.entries_added + s.entries_removed
        );
    }
    for c in &plan.changes {
        let ResourceChange::WebAcl(c) = c else {
            continue;
        };
        for r in c.rules.iter().filter(|r| r.resets_counters) {
            let _ = writeln!(
                head,
                "> [!WARNING]\n> **Rate rule `{}`:** {COUNTER_RESET_WARNING}.\n",
                r.name
            );
        }
    }
    if !plan.drift.is_empty() {
        let _ = writeln!(
            head,
            "> [!NOTE]\n> **Drift:** {} IP set(s) changed outside waftune; this plan puts them back to \
             what the ledger says.\n",
            plan.drift.len()
        );
    }
    if plan.has_changes() {
        head.push_str("| Resource | Action | Added | Removed |\n|---|---|--:|--:|\n");
        for change in &plan.changes {
            let (resource, action, added, removed) = match change {
                ResourceChange::IpSet(c) => (
                    format!("IP set `{}`", c.name),
                    c.action,
                    c.added.len().to_string(),
                    c.removed.len().to_string(),
                ),
                ResourceChange::WebAcl(c) => (
                    format!(
                        "web ACL `{}`, {} (rule {})",
                        c.name,
                        capacity_text(c),
                        c.rules
                            .iter()
                            .map(|r| format!("`{}`", r.name))
                            .chain(
                                c.removed_rules
                                    .iter()
                                    .map(|r| format!("`{}` removed", r.name))
                            )
                            .chain(c.bodies.iter().map(|b| format!("body `{}`", b.key)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    c.action,
                    String::new(),
                    String::new(),
                ),
            };
            let action = match action {
                Action::Create => "create",
                Action::Update => "update",
                Action::Delete => "**destroy**",
            };
            let _ = writeln!(head, "| {resource} | {action} | {added} | {removed} |");
        }
        head.push('\n');
    }

    const OPEN: &str = "<details><summary>Full plan</summary>\n\n```diff\n";
    const CLOSE: &str = "```\n\n</details>\n";
    let budget = MARKDOWN_LIMIT.saturating_sub(head.len() + OPEN.len() + CLOSE.len() + 200);
    let full = diff_markers(&text(plan, false, true));
    let body = if full.len() <= budget {
        full
    } else {
        let short = diff_markers(&text(plan, false, false));
        let lines = short.lines().count();
        let mut kept = String::new();
        for line in short.lines() {
            if kept.len() + line.len() + 1 > budget {
                break;
            }
            kept.push_str(line);
            kept.push('\n');
        }
        let cut = lines - kept.lines().count();
        if cut > 0 {
            let _ = writeln!(
                kept,
                "... output truncated: {cut} more lines; the saved plan file has everything."
            );
        } else {
            kept.push_str(
                "... entry lists abbreviated to fit a comment; the plan file has everything.\n",
            );
        }
        kept
    };
    format!("{head}{OPEN}{body}{CLOSE}")
}

/// Moves each line's `+`, `-` or `~` to the first column (`~` as `!`), where GitHub's `diff`
/// highlighting looks for it, keeping the rest of the line aligned.
fn diff_markers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let marker = match line[indent..].chars().next() {
            Some('+') => Some('+'),
            Some('-') => Some('-'),
            Some('~') => Some('!'),
            _ => None,
        };
        match marker {
            Some(m) if indent > 0 => {
                out.push(m);
                out.push_str(&line[1..indent]);
                out.push(' ');
                out.push_str(&line[indent + 1..]);
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// The plan as JSON (the plan file's own format).
pub fn json(plan: &Plan) -> String {
    plan.to_json()
}
