//! `waftune rate ...`: recommend rate-based rule limits and backtest them on the logs.

use std::process::ExitCode;

use std::path::Path;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use super::{ConfigArg, LogArgs, SourceArgs, config_for, exit, print, traffic};
use crate::config::{Config, RateLimit};
use crate::model::rate::{Method, RateError, Scope, Window, parse_window};
use crate::model::waf::MIN_RATE_LIMIT;
use crate::rate;
use crate::render::{self, Format};
use crate::util::term::info;

#[derive(Debug, Subcommand)]
pub enum RateCommand {
    /// Recommend a limit per scope from the distribution of per-client peaks in the window.
    Recommend(RecommendArgs),
    /// Replay the logs against a limit and show who would have been limited, when and how much.
    Backtest(BacktestArgs),
    /// Propose switching a counting rate rule of waftune.toml to block, once the logs show its
    /// COUNT-mode matches over the period asked for; shows who would have been blocked.
    Promote(PromoteArgs),
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The rate rule's `name` in the configuration.
    pub rule: String,
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub logs: LogArgs,
    #[command(flatten)]
    pub source: SourceArgs,
    /// The logs must cover at least this long (`7d`, `24h`, ...).
    #[arg(long, default_value = "7d")]
    pub min_period: String,
    /// Write the change (`action = "block"`) into the configuration file; otherwise only show it.
    #[arg(long)]
    pub write: bool,
    /// How many clients to list (0 = all).
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct RecommendArgs {
    #[command(flatten)]
    pub logs: LogArgs,
    #[command(flatten)]
    pub source: SourceArgs,
    // Read only with `--source athena`, for its `[athena]` section.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Evaluation window: `1m`, `2m`, `5m` (WAF's default) or `10m` (also 60, 120, 300, 600 seconds).
    #[arg(long, value_parser = parse_window, default_value = "5m")]
    pub window: Window,
    /// Requests the rule counts (repeatable): `all`, `overseas`, `country:CC,..`, `not-country:CC,..`, `path:/PREFIX`, `method:VERB`,
    /// `label:LABEL` (a trailing `*` makes a label prefix) or `not-label:LABEL`.
    #[arg(long = "scope", value_parser = parse_scope, default_value = "all")]
    pub scopes: Vec<Scope>,
    /// The percentile of per-client peaks taken as the busiest ordinary client.
    #[arg(long, default_value_t = Method::default().percentile)]
    pub percentile: f64,
    /// The limit is this many times that client's peak.
    #[arg(long, default_value_t = Method::default().headroom)]
    pub headroom: f64,
    /// How many limited clients to list per scope (0 = all).
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct BacktestArgs {
    #[command(flatten)]
    pub logs: LogArgs,
    #[command(flatten)]
    pub source: SourceArgs,
    // Read only with `--source athena`, for its `[athena]` section.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Requests per client and window (WAF's minimum is 10).
    #[arg(long, required_unless_present = "rule")]
    pub limit: Option<u64>,
    /// Evaluation window: `1m`, `2m`, `5m` or `10m` (also 60, 120, 300, 600 seconds).
    #[arg(long, value_parser = parse_window, default_value = "5m")]
    pub window: Window,
    /// Requests the rule counts: `all`, `overseas`, `country:CC,..`, `not-country:CC,..`, `path:/PREFIX`, `method:VERB`, `label:LABEL`,
    /// `not-label:LABEL`.
    #[arg(long, value_parser = parse_scope, default_value = "all")]
    pub scope: Scope,
    /// Backtest a rate rule of the configuration instead: its limit (or its recommendation), window
    /// and scope.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["limit", "window", "scope"])]
    pub rule: Option<String>,
    /// How many limited clients to list (0 = all).
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

fn parse_scope(text: &str) -> Result<Scope, String> {
    Scope::parse(text).map_err(|e| e.to_string())
}

pub fn rate_cmd(command: RateCommand) -> Result<ExitCode> {
    match command {
        RateCommand::Recommend(args) => recommend_cmd(args),
        RateCommand::Backtest(args) => backtest_cmd(args),
        RateCommand::Promote(args) => promote_cmd(args),
    }
}

/// A configured rule is judged against the configuration's home country unless `--home-country`
/// says otherwise.
fn default_home(logs: &mut LogArgs, config: &Config) {
    if logs.home_country.is_none() {
        logs.home_country = config.home_country.clone();
    }
}

fn home(logs: &LogArgs) -> Option<String> {
    logs.home_country.as_deref().map(str::to_ascii_uppercase)
}

fn recommend_cmd(args: RecommendArgs) -> Result<ExitCode> {
    let method = Method::new(args.percentile, args.headroom)?;
    let home = home(&args.logs);
    let policies = args
        .scopes
        .iter()
        .map(|s| rate::scopes_policy(std::slice::from_ref(s), home.as_deref()))
        .collect::<Result<Vec<_>, _>>()?;
    let config = config_for(&args.source, &args.config)?;
    let Some(traffic) = traffic(&args.logs, &args.source, config.as_ref(), policies)? else {
        return Ok(ExitCode::from(exit::OK));
    };
    let recs: Vec<_> = args
        .scopes
        .iter()
        .zip(&traffic.policy_keys)
        .map(|(scope, clients)| {
            rate::recommend(
                &scope.to_string(),
                clients,
                args.window,
                method,
                home.as_deref(),
            )
        })
        .collect();
    print(&render::rate::recommendations(&recs, args.top, args.format))?;
    Ok(ExitCode::from(exit::OK))
}

fn backtest_cmd(mut args: BacktestArgs) -> Result<ExitCode> {
    let config = match &args.rule {
        Some(_) => Some(args.config.load()?),
        None => config_for(&args.source, &args.config)?,
    };
    let rule = match (&args.rule, &config) {
        (Some(name), Some(config)) => {
            default_home(&mut args.logs, config);
            Some(rate::find_rate_rule(config, name)?.1)
        }
        _ => None,
    };
    let home = home(&args.logs);
    let (scope, policy, window) = match rule {
        Some(r) => (
            rate::scopes_name(&r.scope),
            rate::scopes_policy(&r.scope, home.as_deref())?,
            r.window,
        ),
        None => (
            args.scope.to_string(),
            rate::scopes_policy(std::slice::from_ref(&args.scope), home.as_deref())?,
            args.window,
        ),
    };
    // Refuse a bad limit before reading any logs.
    if let Some(limit) = args.limit.filter(|l| *l < MIN_RATE_LIMIT) {
        return Err(RateError::LimitTooLow(limit).into());
    }
    let Some(traffic) = traffic(&args.logs, &args.source, config.as_ref(), vec![policy])? else {
        return Ok(ExitCode::from(exit::OK));
    };
    let clients = &traffic.policy_keys[0];
    let b = match (rule.map(|r| r.limit), args.limit) {
        (Some(RateLimit::Recommended(method)), _) => {
            rate::recommend(&scope, clients, window, method, home.as_deref()).backtest
        }
        (Some(RateLimit::Fixed(limit)), _) | (None, Some(limit)) => {
            rate::backtest(&scope, clients, limit, window, home.as_deref())?
        }
        (None, None) => unreachable!("clap requires `--limit` without `--rule`"),
    };
    print(&render::rate::backtest(&b, args.top, args.format))?;
    Ok(ExitCode::from(exit::OK))
}

fn promote_cmd(mut args: PromoteArgs) -> Result<ExitCode> {
    let min_period = crate::util::time::parse_duration(&args.min_period)
        .with_context(|| format!("`--min-period {}`", args.min_period))?;
    let path = args.config.path()?;
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read config `{}`", path.display()))?;
    let config = Config::parse(&text, &path)?;
    let (web_acl, rule) = rate::find_rate_rule(&config, &args.rule)?;
    rate::ensure_counting(rule)?;
    default_home(&mut args.logs, &config);
    let home = home(&args.logs);
    let matched = rate::count_matches_policy(&rule.name);
    let Some(traffic) = traffic(&args.logs, &args.source, Some(&config), vec![matched])? else {
        return Ok(ExitCode::from(exit::OK));
    };
    let (covered, logs) = match (traffic.first_ms, traffic.last_ms) {
        (Some(a), Some(b)) => (
            b - a,
            format!(
                "{} .. {}",
                crate::analyze::iso_ms(a),
                crate::analyze::iso_ms(b)
            ),
        ),
        _ => (0, "no records".to_owned()),
    };
    let b = rate::promotion(
        rule,
        &traffic.policy_keys[0],
        covered,
        min_period.as_millis() as i64,
        home.as_deref(),
    )?;
    let promoted = rate::promoted_config(&text, rule)?;
    // The edited file must still be a valid configuration before anyone sees or writes it.
    Config::parse(&promoted, &path)?;
    let mut out = render::rate::promotion(&b, &rule.name, web_acl, &logs, args.top, args.format);
    if args.format != Format::Json {
        out += &config_diff(&text, &promoted, &path);
    }
    print(&out)?;
    if args.write {
        crate::util::atomic_file::write(&path, promoted.as_bytes())
            .with_context(|| format!("cannot write `{}`", path.display()))?;
        info!(
            "wrote `{}`: rule `{}` blocks once planned and applied (`waftune plan`)",
            path.display(),
            rule.name
        );
    } else {
        info!("to make this change: rerun with `--write`, then `waftune plan`");
    }
    Ok(ExitCode::from(exit::OK))
}

/// The change to the configuration as a unified diff, for the pull request.
fn config_diff(old: &str, new: &str, path: &Path) -> String {
    let name = path.display().to_string();
    format!(
        "\n{}",
        similar::TextDiff::from_lines(old, new)
            .unified_diff()
            .context_radius(2)
            .header(&name, &name)
    )
}
