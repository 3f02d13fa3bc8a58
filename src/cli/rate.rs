//! `waftune rate ...`: recommend rate-based rule limits and backtest them on the logs.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::{LogArgs, exit, print, scan_logs};
use crate::policy::Window;
use crate::rate::{self, Method, Scope, parse_window};
use crate::render::Format;

#[derive(Debug, Subcommand)]
pub enum RateCommand {
    /// Recommend a limit per scope from the distribution of per-client peaks in the window.
    Recommend(RecommendArgs),
    /// Replay the logs against a limit and show who would have been limited, when and how much.
    Backtest(BacktestArgs),
}

#[derive(Debug, Args)]
pub struct RecommendArgs {
    #[command(flatten)]
    pub logs: LogArgs,
    /// Evaluation window: `1m`, `2m`, `5m` (WAF's default) or `10m` (also 60, 120, 300, 600 seconds).
    #[arg(long, value_parser = parse_window, default_value = "5m")]
    pub window: Window,
    /// Requests the rule counts (repeatable): `all`, `overseas`, `path:/PREFIX`, `method:VERB`,
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
    /// Requests per client and window (WAF's minimum is 10).
    #[arg(long)]
    pub limit: u64,
    /// Evaluation window: `1m`, `2m`, `5m` or `10m` (also 60, 120, 300, 600 seconds).
    #[arg(long, value_parser = parse_window, default_value = "5m")]
    pub window: Window,
    /// Requests the rule counts: `all`, `overseas`, `path:/PREFIX`, `method:VERB`, `label:LABEL`,
    /// `not-label:LABEL`.
    #[arg(long, value_parser = parse_scope, default_value = "all")]
    pub scope: Scope,
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
        .map(|s| s.policy(home.as_deref()))
        .collect::<Result<Vec<_>, _>>()?;
    let traffic = scan_logs(&args.logs, policies)?;
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
    print(&rate::render::recommendations(&recs, args.top, args.format))?;
    Ok(ExitCode::from(exit::OK))
}

fn backtest_cmd(args: BacktestArgs) -> Result<ExitCode> {
    let home = home(&args.logs);
    let policy = args.scope.policy(home.as_deref())?;
    // Refuse a bad limit before reading any logs.
    if args.limit < rate::MIN_LIMIT {
        return Err(rate::RateError::LimitTooLow(args.limit).into());
    }
    let traffic = scan_logs(&args.logs, vec![policy])?;
    let b = rate::backtest(
        &args.scope.to_string(),
        &traffic.policy_keys[0],
        args.limit,
        args.window,
        home.as_deref(),
    )?;
    print(&rate::render::backtest(&b, args.top, args.format))?;
    Ok(ExitCode::from(exit::OK))
}
