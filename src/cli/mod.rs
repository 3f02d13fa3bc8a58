//! The command line: arguments are parsed into settings here, then handed to library functions.
//! Data goes to stdout, progress and diagnostics to stderr.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, CommandFactory, Parser, Subcommand};
use jiff::Timestamp;
use waftune_generate::{Blocks, GenerateOptions, generate, read_ledger};

use crate::analyze::{self, Limits};
use crate::config::{Config, ConfigError};
use crate::ledger::LedgerError;
use crate::log::{Malformed, TimeRange, discover};
use crate::origin::scan::{OriginOptions, OriginTraffic};
use crate::policy::{self, Policy, PolicySet};
use crate::render::{self, Format};
use crate::scan::{self, Detail, ScanOptions, Traffic};
use crate::util::diag::Diagnostics;
use crate::util::term::{self, ColorChoice, Verbosity, info, verbose};
use crate::util::text::thousands;
use crate::util::time::parse_instant;
use ipnet::IpNet;

mod athena;
mod ledger;
mod rate;
mod report;
mod values;
mod waf;

/// Exit codes (documented in the README, "Exit codes", and `docs/plan-apply.md`).
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    /// `plan --detailed-exitcode` when the plan has changes.
    pub const CHANGES: u8 = 2;
}

#[derive(Debug, Parser)]
#[command(
    name = "waftune",
    version,
    about = "Analyze AWS WAF logs, propose reviewed blocks, plan and apply them to WAFv2",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// The flags every command takes: how much it says on stderr and whether stdout gets colour.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Colour the output: `auto` on a terminal unless `NO_COLOR` is set; `always` even with
    /// `NO_COLOR`; `never`
    #[arg(long, value_enum, global = true, value_name = "WHEN", default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
    /// Print only data, warnings and errors: no progress, no `wrote ...` lines on stderr
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Say on stderr what the run did: files read, Athena queries run, WAF API calls made
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

impl GlobalArgs {
    /// Makes these flags the run's (see [`crate::util::term`]).
    pub fn apply(&self) {
        let verbosity = match (self.quiet, self.verbose) {
            (true, _) => Verbosity::Quiet,
            (_, true) => Verbosity::Verbose,
            _ => Verbosity::Normal,
        };
        let color = match self.color {
            ColorWhen::Auto => ColorChoice::Auto,
            ColorWhen::Always => ColorChoice::Always,
            ColorWhen::Never => ColorChoice::Never,
        };
        term::set(verbosity, color);
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Summarise WAF logs: volumes, actions, domestic vs overseas, top talkers and their peak rates.
    Analyze(AnalyzeArgs),
    /// Evaluate the policies over the logs and update the ledger of blocks, with evidence.
    Propose(ledger::ProposeArgs),
    /// Add a manual block to the ledger.
    Block(ledger::BlockArgs),
    /// Remove a range from the ledger.
    Unblock(ledger::UnblockArgs),
    /// Work with detection policies.
    #[command(subcommand)]
    Policy(ledger::PolicyCommand),
    /// Show what would change in AWS WAF to match the ledger; optionally save the plan for apply.
    Plan(waf::PlanArgs),
    /// Apply a saved plan exactly (or plan, confirm and apply).
    Apply(waf::ApplyArgs),
    /// Save the live WAF state waftune manages to a snapshot file, for offline plans.
    Pull(waf::PullArgs),
    /// Write a deterministic day of realistic WAF logs (S3 layout) with a ground-truth file.
    Generate(GenerateArgs),
    /// Tune rate-based rules: recommend limits from the logs and backtest them.
    #[command(subcommand)]
    Rate(rate::RateCommand),
    /// The weekly review: overview, who, whether blocks worked, rate rules, ledger (HTML, markdown).
    Report(report::ReportArgs),
    /// Set up Athena for logs too large to scan on one machine.
    #[command(subcommand)]
    Athena(athena::AthenaCommand),
    /// Print a shell completion script (installation: README, "Shell completions").
    Completions(CompletionsArgs),
    /// Print the manual page (roff), or write one page per command into a directory.
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write `waftune.1` and a page per subcommand (`waftune-plan.1`, ...) into this directory
    /// instead of printing `waftune.1`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Where `waftune.toml` is.
#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The configuration file [default: `waftune.toml` in the current directory or the nearest
    /// one above it]
    #[arg(long, short = 'c', env = crate::config::CONFIG_ENV, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl ConfigArg {
    /// The configuration file: `-c`, `WAFTUNE_CONFIG`, or the one found from the current directory up.
    pub fn path(&self) -> Result<PathBuf> {
        let here = std::env::current_dir().context("cannot read the current directory")?;
        Ok(Config::find(self.config.as_deref(), &here)?)
    }

    pub fn load(&self) -> Result<Config> {
        let path = self.path()?;
        verbose!("read the configuration `{}`", path.display());
        Ok(Config::load(&path)?)
    }
}

/// Where the detection policies are.
#[derive(Debug, Args)]
pub struct PoliciesArg {
    /// A directory of policy files (`*.toml`), or one file [default: `policies` in waftune.toml,
    /// relative to that file, else `policies` beside it]
    #[arg(long, value_name = "PATH")]
    pub policies: Option<PathBuf>,
}

impl PoliciesArg {
    /// `--policies` (relative to the current directory, as every argument is), else the config's.
    pub fn path(&self, config: &Config) -> PathBuf {
        self.policies
            .clone()
            .unwrap_or_else(|| config.policies_path())
    }

    /// The policies, which must exist: their allowlist guards every block.
    pub fn load(&self, config: &Config) -> Result<PolicySet> {
        load_policies(&self.path(config), Some(config))
    }
}

/// Loads and validates policies; diagnostics go to stderr, errors fail the command. A missing path
/// is an error: skipping it would silently drop the policies' allowlist.
pub fn load_policies(path: &Path, config: Option<&Config>) -> Result<PolicySet> {
    if !path.exists() {
        bail!(
            "policies `{}` not found: waftune needs them for their allowlist. Point `policies` in \
             waftune.toml (relative to it) or `--policies` at them",
            path.display()
        );
    }
    let groups: Option<Vec<String>> =
        config.map(|c| c.ip_set_groups.iter().map(|g| g.name.clone()).collect());
    match policy::load_dir(path, groups.as_deref()) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("{w}");
            }
            verbose!(
                "read {} policies and {} allow entries from `{}`",
                loaded.policies.policies.len(),
                loaded.policies.allowlist.entries.len(),
                path.display()
            );
            Ok(loaded.policies)
        }
        Err(list) => Err(Diagnostics {
            what: "policies",
            path: path.to_owned(),
            list,
        }
        .into()),
    }
}

/// The policies' allowlisted ranges: plan and apply refuse to put them into any set.
pub fn policy_allowlist(arg: &PoliciesArg, config: &Config, now: Timestamp) -> Result<Vec<IpNet>> {
    Ok(arg.load(config)?.allowlist.cidrs(now))
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Output directory (the S3 layout and `truth.json` are written below it).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[arg(long, default_value_t = GenerateOptions::default().seed)]
    pub seed: u64,
    /// Number of records.
    #[arg(long, default_value_t = GenerateOptions::default().target_records)]
    pub records: u64,
    /// Length of the generated period in minutes.
    #[arg(long, default_value_t = GenerateOptions::default().duration_minutes)]
    pub minutes: u32,
    /// First instant (RFC 3339).
    #[arg(long, default_value_t = GenerateOptions::default().start)]
    pub start: Timestamp,
    #[arg(long, default_value_t = GenerateOptions::default().home_country)]
    pub home_country: String,
    /// A waftune ledger to enforce: addresses inside its entries come back after `added`, are
    /// answered BLOCK by `--block-rule`, then stop, persist or rotate (recorded in truth.json).
    #[arg(long, value_name = "FILE", requires = "block_rule")]
    pub ledger: Option<PathBuf>,
    /// The web ACL rule that answers the ledger (its `[[web_acl.rule]]` name in waftune.toml).
    #[arg(long, value_name = "NAME", requires = "ledger")]
    pub block_rule: Option<String>,
    /// The rule's response code (its custom `response.code`).
    #[arg(long, value_name = "CODE", default_value_t = 403, requires = "ledger")]
    pub block_code: u16,
    /// A ledger entry the web ACL does not answer (not applied yet, or the rule counts); repeatable.
    #[arg(long, value_name = "CIDR", requires = "ledger")]
    pub not_enforced: Vec<IpNet>,
    /// Also write the origin's ALB access logs for the same traffic (what WAF allowed), under
    /// `AWSLogs/<account>/elasticloadbalancing/`, with the origin's truth in truth.json.
    #[arg(long)]
    pub origin_logs: bool,
    /// Write `clientAsn` in every record (documentation ASNs: one per hosting range, 65551 for
    /// every other address), and let offenders that rotate after a `--ledger` block also move
    /// across two other /24s of their hosting range's ASN (docs/asn.md).
    #[arg(long)]
    pub client_asn: bool,
}

/// Which logs to read and which part of them.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log files or directories (walked recursively; S3 layout understood), or `-` for stdin.
    /// Required unless the traffic comes from `--source athena`.
    #[arg(long = "logs", num_args = 1.., value_name = "PATH")]
    pub logs: Vec<PathBuf>,
    /// Only records at or after this time (RFC 3339, a UTC date, or an age such as `7d`).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only records before this time.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// The current time, for ages and reproducible runs (default: the clock).
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,
    /// Home country (ISO 3166 alpha-2, e.g. `JP`) for the domestic/overseas split.
    #[arg(long, value_name = "CC")]
    pub home_country: Option<String>,
    /// Check every record against the full log model and treat any malformed input as an error (exit 1).
    #[arg(long)]
    pub strict: bool,
}

/// Which engine computes the traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    /// Scan the `--logs` on this machine.
    #[default]
    Local,
    /// Query the `[athena]` table of the configuration (docs/athena.md).
    Athena,
}

/// Where `analyze` and `propose` get the traffic.
#[derive(Debug, Args)]
pub struct SourceArgs {
    #[arg(long, value_enum, default_value_t = Source::Local)]
    pub source: Source,
    /// Print the Athena queries `--source athena` would run, and exit without running them.
    #[arg(long)]
    pub print_sql: bool,
    /// Stop an Athena query (on Athena's side, so it stops billing) still running after this long.
    #[arg(long, value_name = "DURATION", default_value = "30m")]
    pub timeout: String,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub logs: LogArgs,
    #[command(flatten)]
    pub source: SourceArgs,
    // Read only with `--source athena`, for its `[athena]` section.
    #[command(flatten)]
    pub config: ConfigArg,
    /// With `--source athena`: print the queries and run none (the same as `--print-sql`).
    #[arg(long)]
    pub dry_run: bool,
    /// How many clients, prefixes, countries, rules and labels to list (0 = all).
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub origin: OriginArg,
}

/// How the clients of origin access logs are keyed (docs/origin.md, "Joining with WAF").
#[derive(Debug, Args)]
pub struct OriginArg {
    /// Key CloudFront access log requests by their first `X-Forwarded-For` address (a proxy in
    /// front of CloudFront) instead of `c-ip`, to join them with WAF logs that see the viewer
    /// [default: `forwarded_for` of `[origin]` in waftune.toml]
    #[arg(long)]
    pub forwarded_for: bool,
}

impl OriginArg {
    /// The origin scan's options for `range`: `--forwarded-for`, else the configuration's.
    pub fn options(&self, config: Option<&Config>, range: TimeRange) -> OriginOptions {
        OriginOptions {
            range,
            forwarded_for: self.forwarded_for || config.is_some_and(|c| c.origin.forwarded_for),
        }
    }
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    cli.global.apply();
    match cli.command {
        Command::Analyze(args) => analyze_cmd(args),
        Command::Propose(args) => ledger::propose_cmd(args),
        Command::Block(args) => ledger::block_cmd(args),
        Command::Unblock(args) => ledger::unblock_cmd(args),
        Command::Policy(command) => ledger::policy_cmd(command),
        Command::Plan(args) => waf::plan_cmd(args),
        Command::Apply(args) => waf::apply_cmd(args),
        Command::Pull(args) => waf::pull_cmd(args),
        Command::Generate(args) => generate_cmd(args),
        Command::Rate(command) => rate::rate_cmd(command),
        Command::Athena(command) => athena::athena_cmd(command),
        Command::Report(args) => report::report_cmd(args),
        Command::Completions(args) => completions_cmd(&args),
        Command::Man(args) => man_cmd(&args),
    }
}

fn completions_cmd(args: &CompletionsArgs) -> Result<ExitCode> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "waftune", &mut script);
    print(&String::from_utf8(script).context("the completion script is not UTF-8")?)?;
    Ok(ExitCode::from(exit::OK))
}

fn man_cmd(args: &ManArgs) -> Result<ExitCode> {
    match &args.out {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create `{}`", dir.display()))?;
            clap_mangen::generate_to(Cli::command(), dir).with_context(|| {
                format!("cannot write the manual pages into `{}`", dir.display())
            })?;
            info!("wrote the manual pages into `{}`", dir.display());
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut page)?;
            print(&String::from_utf8(page).context("the manual page is not UTF-8")?)?;
        }
    }
    Ok(ExitCode::from(exit::OK))
}

/// An error and its causes on one line, each said once. Error types whose message already ends
/// with their cause (`cannot read `x`: {source}`) would otherwise print it twice under `{:#}`.
pub fn error_message(error: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// Prints an error for people, on stderr: first every diagnostic it carries (the one way a
/// mistake in policies, the configuration or the ledger is shown: file, line, column, message,
/// help), then `error: ` and the error with its context.
pub fn print_error(e: &anyhow::Error) {
    let diagnostics = e.chain().find_map(|cause| {
        cause.downcast_ref::<Diagnostics>().or_else(|| {
            match (cause.downcast_ref(), cause.downcast_ref()) {
                (Some(ConfigError::Invalid(d)), _) | (_, Some(LedgerError::Invalid(d))) => Some(d),
                _ => None,
            }
        })
    });
    for d in diagnostics.iter().flat_map(|d| &d.list) {
        eprintln!("{d}");
    }
    eprintln!("error: {}", error_message(e));
}

/// The `now` of a run: `--now`, or the clock.
pub fn now_from(arg: Option<&str>) -> Result<Timestamp> {
    let clock = Timestamp::now();
    arg.map_or(Ok(clock), |s| Ok(parse_instant(s, clock)?))
}

/// The `--since/--until` range of `args`.
fn time_range(args: &LogArgs) -> Result<TimeRange> {
    let now = now_from(args.now.as_deref())?;
    let since = args
        .since
        .as_deref()
        .map(|s| parse_instant(s, now))
        .transpose()?;
    let until = args
        .until
        .as_deref()
        .map(|s| parse_instant(s, now))
        .transpose()?;
    if let (Some(s), Some(u)) = (since, until)
        && s >= u
    {
        bail!("`--since {s}` is not before `--until {u}`");
    }
    Ok(TimeRange::new(since, until))
}

fn scan_options(args: &LogArgs, range: TimeRange, policies: Vec<Policy>) -> ScanOptions {
    ScanOptions {
        range,
        home_country: args.home_country.as_deref().map(str::to_ascii_uppercase),
        validate: args.strict,
        ..ScanOptions::default()
    }
    .with_policies(policies)
}

/// The traffic of `logs`' range from `source`: the one way `analyze` and `propose` get it. `config`
/// is needed for Athena only. `None` when `--print-sql` printed the queries instead.
pub fn traffic(
    logs: &LogArgs,
    source: &SourceArgs,
    config: Option<&Config>,
    policies: Vec<Policy>,
) -> Result<Option<Traffic>> {
    traffic_with(logs, source, config, policies, Detail::All)
}

/// [`traffic`], with lists only for the clients `detail` names (local logs; Athena's queries cut
/// their own).
pub fn traffic_with(
    logs: &LogArgs,
    source: &SourceArgs,
    config: Option<&Config>,
    policies: Vec<Policy>,
    detail: Detail,
) -> Result<Option<Traffic>> {
    let traffic = traffic_split(logs, source, config, policies, None, detail)?;
    Ok(traffic.map(|(traffic, _)| traffic))
}

/// [`traffic_with`], and with `previous` the traffic of that range too (all requests, no
/// policies), from the same pass over the logs or the same Athena statement.
pub fn traffic_split(
    logs: &LogArgs,
    source: &SourceArgs,
    config: Option<&Config>,
    policies: Vec<Policy>,
    previous: Option<TimeRange>,
    detail: Detail,
) -> Result<Option<(Traffic, Option<Traffic>)>> {
    match source.source {
        Source::Local if source.print_sql => bail!("`--print-sql` needs `--source athena`"),
        Source::Local => {
            scan_inputs(logs, policies, previous, None, detail).map(|(t, b, _)| Some((t, b)))
        }
        Source::Athena => {
            // Athena reads its own table: silently ignoring these would analyse other data than asked.
            if !logs.logs.is_empty() || logs.strict {
                bail!("`--logs` and `--strict` are for `--source local`; Athena reads its table");
            }
            let config = config.context("`--source athena` needs the configuration")?;
            let timeout = parse_timeout(&source.timeout)?;
            let options = scan_options(logs, time_range(logs)?, policies);
            let now = now_from(logs.now.as_deref())?.as_millisecond();
            athena::traffic(config, &options, previous, now, source.print_sql, timeout)
        }
    }
}

/// A `--timeout` for Athena statements.
fn parse_timeout(text: &str) -> Result<std::time::Duration> {
    let timeout = crate::util::time::parse_duration(text)?;
    std::time::Duration::try_from(timeout)
        .with_context(|| format!("`--timeout {text}` is not a duration"))
}

/// Scans the logs named by `args`, with a progress bar on an interactive stderr.
pub fn scan_logs(args: &LogArgs, policies: Vec<Policy>) -> Result<Traffic> {
    scan_logs_split(args, policies, None).map(|(traffic, _)| traffic)
}

/// [`scan_logs`], and with `previous` the traffic of that range too, from the same pass.
pub fn scan_logs_split(
    args: &LogArgs,
    policies: Vec<Policy>,
    previous: Option<TimeRange>,
) -> Result<(Traffic, Option<Traffic>)> {
    scan_inputs(args, policies, previous, None, Detail::All).map(|(now, before, _)| (now, before))
}

/// Scans the WAF logs among `args.logs` and, with `origin`, the ALB and CloudFront logs among
/// them too (told apart by content). Without `origin`, origin logs are left out with a note.
/// `detail` names the clients that need value lists (all of them when origin logs are joined).
pub fn scan_inputs(
    args: &LogArgs,
    policies: Vec<Policy>,
    previous: Option<TimeRange>,
    origin: Option<OriginOptions>,
    detail: Detail,
) -> Result<(Traffic, Option<Traffic>, Option<OriginTraffic>)> {
    if args.logs.is_empty() {
        bail!("`--logs` is required: the log files or directories to scan");
    }
    let range = time_range(args)?;
    // The files of both periods; records between them are counted as out of range.
    let wanted = previous.map_or(range, |p| TimeRange {
        since: range.since.zip(p.since).map(|(a, b)| a.min(b)),
        until: range.until.zip(p.until).map(|(a, b)| a.max(b)),
    });
    let mut found = discover(&args.logs, &wanted)?;
    if found.files.is_empty() {
        bail!(
            "no log files found under {}",
            args.logs
                .iter()
                .map(|p| format!("`{}`", p.display()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let (waf_files, origin_files) = crate::origin::detect::split(std::mem::take(&mut found.files));
    found.files = waf_files;
    // The origin's clients are joined with their WAF statistics (country included): all need lists.
    let detail = if origin.is_some() && !origin_files.is_empty() {
        Detail::All
    } else {
        detail
    };
    let origin = match origin {
        _ if origin_files.is_empty() => None,
        None => {
            info!(
                "note: {} ALB/CloudFront log files are read by `analyze` and `report` only",
                thousands(origin_files.len() as u64)
            );
            None
        }
        Some(options) => {
            let options = OriginOptions { range, ..options };
            let o = crate::origin::scan::scan(&origin_files, options);
            verbose!(
                "read {} origin records from {} ALB/CloudFront log files",
                thousands(o.records),
                thousands(o.files)
            );
            report_malformed(o.malformed, &o.malformed_examples, args.strict)?;
            Some(o)
        }
    };
    let total: u64 = found.files.iter().map(|f| f.size).sum();
    verbose!(
        "reading {} log files, {} bytes",
        thousands(found.files.len() as u64),
        thousands(total)
    );
    let bar = progress_bar(total);
    let tick = bar.clone();
    let options = ScanOptions {
        detail,
        ..scan_options(args, range, policies)
    };
    let progress: Arc<dyn Fn(u64) + Send + Sync> = Arc::new(move |n| tick.inc(n));
    let (traffic, before) = match previous {
        None => (scan::scan(&found.files, &options, progress), None),
        Some(p) => {
            let (now, before) = scan::scan_split(&found.files, &options, p, progress);
            (now, Some(before))
        }
    };
    bar.finish_and_clear();
    verbose!(
        "read {} records from {} log files",
        thousands(traffic.records),
        thousands(found.files.len() as u64)
    );
    if found.pruned_dirs > 0 {
        info!(
            "note: skipped {} dated directories outside the time range",
            found.pruned_dirs
        );
    }
    report_malformed(traffic.malformed, &traffic.malformed_examples, args.strict)?;
    Ok((traffic, before, origin))
}

/// Warns of malformed input on stderr; with `--strict`, it is an error.
fn report_malformed(count: u64, examples: &[Malformed], strict: bool) -> Result<()> {
    if count == 0 {
        return Ok(());
    }
    eprintln!(
        "warning: {} malformed input items (first {} shown)",
        count,
        examples.len()
    );
    for m in examples {
        eprintln!("  {m}");
    }
    if strict {
        bail!("{count} malformed input items and `--strict` was given");
    }
    Ok(())
}

fn progress_bar(total: u64) -> indicatif::ProgressBar {
    // Drawn only on a terminal (pipes and CI logs stay clean), and never under `--quiet`.
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr_with_hz(4),
    );
    if std::io::stderr().is_terminal() && term::shows_info() {
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} scanning {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
            )
            .expect("static template"),
        );
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar
}

pub fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        // A closed pipe (`waftune analyze | head`) is not an error worth reporting.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("cannot write to stdout"),
    }
}

/// The configuration when the source needs it (Athena's `[athena]` section); `None` for local logs.
pub fn config_for(source: &SourceArgs, config: &ConfigArg) -> Result<Option<Config>> {
    Ok(match source.source {
        Source::Athena => Some(config.load()?),
        Source::Local => None,
    })
}

fn analyze_cmd(mut args: AnalyzeArgs) -> Result<ExitCode> {
    // `propose --dry-run` runs the analysis and writes nothing; `analyze` writes nothing anyway, so
    // its dry run is the one that runs no query.
    if args.dry_run {
        if args.source.source != Source::Athena {
            bail!(
                "`--dry-run` needs `--source athena`: it prints the queries instead of running them"
            );
        }
        args.source.print_sql = true;
    }
    // Local analysis needs no configuration; a named one (`-c`, `WAFTUNE_CONFIG`) gives `[origin]`.
    let config = match (args.source.source, &args.config.config) {
        (Source::Local, Some(_)) => Some(args.config.load()?),
        _ => config_for(&args.source, &args.config)?,
    };
    let origin_options = args
        .origin
        .options(config.as_ref(), time_range(&args.logs)?);
    // Only the listed clients need their value lists (`--top 0` lists all).
    let detail = Detail::Busiest(args.top);
    let (traffic, origin) = match args.source.source {
        Source::Local if !args.source.print_sql => {
            let (traffic, _, origin) =
                scan_inputs(&args.logs, Vec::new(), None, Some(origin_options), detail)?;
            (traffic, origin)
        }
        _ => {
            let waf = traffic_with(
                &args.logs,
                &args.source,
                config.as_ref(),
                Vec::new(),
                detail,
            )?;
            let origin = match (&config, args.source.source) {
                (Some(config), Source::Athena) => athena::origin_traffic(
                    config,
                    &origin_options,
                    args.source.print_sql,
                    parse_timeout(&args.source.timeout)?,
                )?,
                _ => None,
            };
            match waf {
                Some(traffic) => (traffic, origin),
                None => return Ok(ExitCode::from(exit::OK)),
            }
        }
    };
    let mut report = analyze::report(
        &traffic,
        Limits {
            top: args.top,
            ..Limits::default()
        },
    );
    report.origin = origin
        .as_ref()
        .map(|o| crate::origin::report::build(o, &traffic, args.top));
    print(&render::analyze(&report, args.format))?;
    // The process exits next: freeing every client's lists one by one would add tens of
    // milliseconds to a day's analysis for memory the exit returns at once.
    std::mem::forget((report, traffic, origin));
    Ok(ExitCode::from(exit::OK))
}

fn generate_cmd(args: GenerateArgs) -> Result<ExitCode> {
    let blocks = match (&args.ledger, args.block_rule) {
        (Some(path), Some(rule)) => Some(Blocks {
            rule,
            response_code: args.block_code,
            entries: read_ledger(path)?,
            not_enforced: args.not_enforced,
        }),
        _ => None,
    };
    let options = GenerateOptions {
        seed: args.seed,
        start: args.start,
        duration_minutes: args.minutes,
        target_records: args.records,
        home_country: args.home_country.to_ascii_uppercase(),
        blocks,
        origin_logs: args.origin_logs,
        client_asn: args.client_asn,
        ..GenerateOptions::default()
    };
    let summary = generate(&options, &args.out)?;
    info!(
        "wrote {} records in {} files ({} bytes of JSON) and truth.json under `{}`",
        thousands(summary.records),
        summary.files,
        thousands(summary.bytes_uncompressed),
        args.out.display()
    );
    Ok(ExitCode::from(exit::OK))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::error_message;

    #[test]
    fn each_cause_is_said_once() {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        // The message already ends with its source: printed once.
        let e = anyhow::Error::new(crate::config::ConfigError::Read {
            path: PathBuf::from("waftune.toml"),
            source: io(),
        });
        assert_eq!(
            format!("{e:#}"),
            "cannot read config `waftune.toml`: no such file: no such file"
        );
        assert_eq!(
            error_message(&e),
            "cannot read config `waftune.toml`: no such file"
        );
        // A context that does not repeat its source keeps both, and nested repeats collapse.
        let e = anyhow::Error::new(io()).context("cannot write report `r.md`");
        assert_eq!(
            error_message(&e),
            "cannot write report `r.md`: no such file"
        );
        let e = anyhow::Error::new(crate::ledger::LedgerError::Read {
            path: PathBuf::from("b.toml"),
            source: io(),
        })
        .context("propose");
        assert_eq!(
            error_message(&e),
            "propose: cannot read ledger `b.toml`: no such file"
        );
    }
}
