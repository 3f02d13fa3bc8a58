//! `propose`, `block`, `unblock` and `policy check`: the commands that read policies and write the ledger.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use jiff::Timestamp;

use super::{
    ConfigArg, LogArgs, OriginArg, PoliciesArg, Source, SourceArgs, athena, exit, load_policies,
    now_from, parse_timeout, policy_allowlist, print, scan_inputs, time_range, traffic_with,
};
use crate::config::Config;
use crate::ledger::Ledger;
use crate::model::asn::Asn;
use crate::model::waf::MAX_SET_ENTRIES;
use crate::propose::asn::{AsnGuard, ManualAsnBlock, block_asn, unblock_asn};
use crate::propose::escalate::{AsnAnswer, Limits, escalate};
use crate::propose::{
    Capacity, ManualBlock, ProposeReport, block, evaluate_with, origin_missing_note, unblock,
    update_ledger, uses_origin,
};
use crate::render::{self, Format, propose_markdown};
use crate::scan::{ClientStats, Detail};
use crate::util::atomic_file;
use crate::util::term::info;
use crate::util::time::parse_duration;

#[derive(Debug, Args)]
pub struct ProposeArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub policies: PoliciesArg,
    #[command(flatten)]
    pub logs: LogArgs,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Also write the summary as markdown, for the body of a pull request: findings as campaigns,
    /// at most 60,000 characters at any volume.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Also write the full evidence as markdown: every finding of every campaign, nothing left out.
    #[arg(long, value_name = "FILE")]
    pub evidence: Option<PathBuf>,
    /// Show what would change without writing the ledger.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub init: InitLedgerArg,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub origin: OriginArg,
}

#[derive(Debug, Args)]
pub struct BlockArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub policies: PoliciesArg,
    /// The address, network or ASN to block (`203.0.113.7`, `198.51.100.0/24`, `2001:db8::/64`,
    /// `AS64496`); an ASN goes into an ASN list, for the asn_rule that uses it.
    pub cidr: String,
    /// How long (`12h`, `30d`, `2w`); without it, until `waftune unblock`.
    #[arg(long = "for", value_name = "DURATION")]
    pub duration: Option<String>,
    /// One line a reviewer can read.
    #[arg(long)]
    pub reason: String,
    /// The IP-set group (default: the first one in waftune.toml).
    #[arg(long)]
    pub group: Option<String>,
    /// For an ASN: the ASN list (default: the first asn_rule's in waftune.toml).
    #[arg(long)]
    pub list: Option<String>,
    /// Block even a range that overlaps an allowlist entry.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub init: InitLedgerArg,
}

/// The one way to start a ledger: without it, a missing ledger file is an error.
#[derive(Debug, Args)]
pub struct InitLedgerArg {
    /// Start a new, empty ledger if the file does not exist (a first run). Without it a missing
    /// ledger is an error, since the next plan would remove every entry from the live sets.
    #[arg(long)]
    pub init_ledger: bool,
}

#[derive(Debug, Args)]
pub struct UnblockArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The range to remove, exactly as in the ledger, or an ASN (`AS64496`).
    pub cidr: String,
    /// Only from this group (default: every group).
    #[arg(long)]
    pub group: Option<String>,
    /// For an ASN: only from this ASN list (default: every list).
    #[arg(long)]
    pub list: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate policies: every error with file, line and column, all at once.
    Check(PolicyCheckArgs),
}

#[derive(Debug, Args)]
pub struct PolicyCheckArgs {
    /// A directory of policy files, or one file [default: the configuration's `policies`, else
    /// `policies`]
    pub path: Option<PathBuf>,
    /// Check `block` groups against this configuration (default: the one found as for every
    /// command, if any).
    #[command(flatten)]
    pub config: ConfigArg,
}

fn capacity(config: &Config) -> Capacity {
    config
        .ip_set_groups
        .iter()
        .map(|g| {
            let sets = if g.rollover { 2 } else { 1 };
            (g.name.clone(), MAX_SET_ENTRIES * sets)
        })
        .collect()
}

pub fn propose_cmd(mut args: ProposeArgs) -> Result<ExitCode> {
    let config = args.config.load()?;
    let policies = args.policies.load(&config)?;
    if args.logs.home_country.is_none() {
        args.logs.home_country = config.home_country.clone();
    }
    let now = now_from(args.logs.now.as_deref())?;
    // The policies' own counts first (`evaluate` reads them in order), then what waftune's rules
    // answered, for the block-effect verdicts that escalate. Findings look only at keys that can
    // fire: only theirs need value lists.
    let mut counted = policies.policies.clone();
    counted.extend(crate::report::answered_policies(&config));
    // Thresholds on origin signals read the ALB and CloudFront logs among `--logs` (or the
    // `origin_table` of `[athena]`); without such policies origin logs are left out as before.
    let origin_policies = uses_origin(&policies);
    let origin_options = args.origin.options(Some(&config), time_range(&args.logs)?);
    let (traffic, origin) = match args.source.source {
        Source::Local if !origin_policies.is_empty() && !args.source.print_sql => {
            let (traffic, _, origin) = scan_inputs(
                &args.logs,
                counted,
                None,
                Some(origin_options),
                Detail::PolicyKeys,
            )?;
            (Some(traffic), origin)
        }
        source => {
            let traffic = traffic_with(
                &args.logs,
                &args.source,
                Some(&config),
                counted,
                Detail::PolicyKeys,
            )?;
            // With `--print-sql` (no traffic), the origin query is printed after the WAF one.
            let origin = match source {
                Source::Athena if !origin_policies.is_empty() => athena::origin_traffic(
                    &config,
                    &origin_options,
                    args.source.print_sql,
                    parse_timeout(&args.source.timeout)?,
                )?,
                _ => None,
            };
            (traffic, origin)
        }
    };
    let Some(traffic) = traffic else {
        return Ok(ExitCode::from(exit::OK));
    };
    if let Some(note) = origin
        .is_none()
        .then(|| origin_missing_note(&policies))
        .flatten()
    {
        info!("note: {note}; add the origin's logs to `--logs` (or `origin_table` to `[athena]`)");
    }
    let findings = evaluate_with(&policies, &traffic, origin.as_ref(), now);
    let ledger_path = config.ledger_path();
    // Held until the ledger is saved: a concurrent `block` must not be overwritten.
    let _lock = (!args.dry_run)
        .then(|| crate::ledger::lock(&ledger_path))
        .transpose()?;
    let ledger = Ledger::load(&ledger_path, args.init.init_ledger)?;
    let proposal = update_ledger(&ledger, &findings, &policies, &capacity(&config), now)?;
    let effect = crate::report::block_effect(
        &ledger,
        &config,
        &traffic,
        traffic
            .policy_keys
            .get(policies.policies.len()..)
            .unwrap_or_default(),
        super::report::period(
            time_range(&args.logs)?,
            now.as_millisecond(),
            traffic.first_ms,
            traffic.last_ms,
        ),
    );
    let mut allow = config.allowlist.clone();
    allow.extend(policies.allowlist.cidrs(now));
    let with_asn: Vec<(u32, &ClientStats)> = traffic
        .clients
        .iter()
        .filter_map(|c| c.asn.map(|a| (a, c)))
        .collect();
    let proposal = escalate(
        proposal,
        &effect.escalations(),
        &policies,
        &Limits {
            allow: &allow,
            guardrails: &config.guardrails,
            asn: config.default_asn_list().map(|list| AsnAnswer {
                list,
                clients: &with_asn,
                guard: AsnGuard {
                    home_country: args.logs.home_country.as_deref(),
                    ..AsnGuard::default()
                },
            }),
        },
        &capacity(&config),
        now,
    )?;
    let report = ProposeReport::new(
        &traffic,
        findings,
        proposal.changes,
        proposal.asn_changes,
        now,
    );
    let evidence_name = args
        .evidence
        .as_ref()
        .map(|p| p.file_name().unwrap_or(p.as_os_str()).to_string_lossy());
    let summary = || propose_markdown::summary(&report, evidence_name.as_deref());
    if let Some(path) = &args.evidence {
        atomic_file::write(path, propose_markdown::evidence(&report).as_bytes())
            .with_context(|| format!("cannot write evidence `{}`", path.display()))?;
    }
    if let Some(path) = &args.report {
        atomic_file::write(path, summary().as_bytes())
            .with_context(|| format!("cannot write report `{}`", path.display()))?;
    }
    print(&match args.format {
        Format::Markdown => summary(),
        format => render::propose(&report, format),
    })?;
    if args.dry_run {
        info!("dry run: `{}` not changed", ledger_path.display());
    } else if proposal.ledger != ledger {
        proposal.ledger.save(&ledger_path)?;
        info!(
            "updated `{}`; review the diff, then `waftune plan`",
            ledger_path.display()
        );
    }
    Ok(ExitCode::from(exit::OK))
}

/// `waftune block AS64496`: an ASN entry, in the list of an asn_rule.
fn block_asn_cmd(args: &BlockArgs, config: &Config) -> Result<ExitCode> {
    if args.group.is_some() || args.force {
        bail!(
            "`{}` is an ASN: `--group` and `--force` are for addresses; use `--list` for its ASN list",
            args.cidr
        );
    }
    let Some(list) = args
        .list
        .clone()
        .or(config.default_asn_list().map(str::to_owned))
    else {
        bail!(
            "`{}` defines no asn_rule, so an ASN has nowhere to go; add a [[web_acl.asn_rule]] (see docs/asn.md)",
            config.path.display()
        );
    };
    let duration = args.duration.as_deref().map(parse_duration).transpose()?;
    let path = config.ledger_path();
    let _lock = crate::ledger::lock(&path)?;
    let mut ledger = Ledger::load(&path, args.init.init_ledger)?;
    let entry = block_asn(
        &mut ledger,
        &ManualAsnBlock {
            asn: &args.cidr,
            list: &list,
            duration,
            reason: &args.reason,
        },
        &config.asn_lists(),
        Timestamp::now(),
    )?;
    ledger.save(&path)?;
    let until = entry
        .expires
        .map_or("until unblocked".to_owned(), |t| format!("until {t}"));
    info!(
        "added `{}` to ASN list `{}` {until}; recorded in `{}`",
        entry.asn,
        entry.list,
        path.display()
    );
    Ok(ExitCode::from(exit::OK))
}

pub fn block_cmd(args: BlockArgs) -> Result<ExitCode> {
    let config = args.config.load()?;
    if Asn::looks_like(&args.cidr) {
        return block_asn_cmd(&args, &config);
    }
    if args.list.is_some() {
        bail!("`--list` is for ASNs; `{}` is not one", args.cidr);
    }
    let group = match &args.group {
        Some(g) if config.group(g).is_none() => {
            bail!("group `{g}` is not defined in `{}`", config.path.display())
        }
        Some(g) => g.clone(),
        None => match config.ip_set_groups.first() {
            Some(g) => g.name.clone(),
            None => bail!("`{}` defines no ip_set_group", config.path.display()),
        },
    };
    let now = Timestamp::now();
    let mut allow = config.allowlist.clone();
    allow.extend(policy_allowlist(&args.policies, &config, now)?);
    let duration = args.duration.as_deref().map(parse_duration).transpose()?;
    let path = config.ledger_path();
    let _lock = crate::ledger::lock(&path)?;
    let mut ledger = Ledger::load(&path, args.init.init_ledger)?;
    let change = block(
        &mut ledger,
        &ManualBlock {
            cidr: &args.cidr,
            group: &group,
            duration,
            reason: &args.reason,
            force: args.force,
        },
        &allow,
        &config.guardrails,
        now,
    )?;
    ledger.save(&path)?;
    let until = change
        .expires
        .map_or("until unblocked".to_owned(), |t| format!("until {t}"));
    info!(
        "blocked `{}` in group `{}` {until}; recorded in `{}`",
        change.cidr,
        change.group,
        path.display()
    );
    Ok(ExitCode::from(exit::OK))
}

pub fn unblock_cmd(args: UnblockArgs) -> Result<ExitCode> {
    let config = args.config.load()?;
    let path = config.ledger_path();
    let _lock = crate::ledger::lock(&path)?;
    let mut ledger = Ledger::load(&path, false)?;
    if Asn::looks_like(&args.cidr) {
        let removed = unblock_asn(&mut ledger, &args.cidr, args.list.as_deref())?;
        ledger.save(&path)?;
        for e in removed {
            info!("removed `{}` from ASN list `{}`", e.asn, e.list);
        }
        return Ok(ExitCode::from(exit::OK));
    }
    let removed = unblock(&mut ledger, &args.cidr, args.group.as_deref())?;
    ledger.save(&path)?;
    for c in removed {
        info!("removed `{}` from group `{}`", c.cidr, c.group);
    }
    Ok(ExitCode::from(exit::OK))
}

pub fn policy_cmd(command: PolicyCommand) -> Result<ExitCode> {
    let PolicyCommand::Check(args) = command;
    // Checking policies needs no configuration; one named or found adds the group check.
    let config = match args.config.path() {
        Ok(path) => Some(Config::load(&path)?),
        Err(_) if args.config.config.is_none() => None,
        Err(e) => return Err(e),
    };
    let path = match (&args.path, &config) {
        (Some(path), _) => path.clone(),
        (None, Some(config)) => config.policies_path(),
        (None, None) => PathBuf::from(crate::config::DEFAULT_POLICIES),
    };
    let set = load_policies(&path, config.as_ref())?;
    print(&format!(
        "{}: {} policies, {} allow entries: ok\n",
        path.display(),
        set.policies.len(),
        set.allowlist.entries.len()
    ))?;
    Ok(ExitCode::from(exit::OK))
}
