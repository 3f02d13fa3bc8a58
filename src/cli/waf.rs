//! `plan`, `apply` and `pull`: the commands that read or change AWS WAF.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use ipnet::IpNet;
use jiff::Timestamp;

use super::{ConfigArg, LogArgs, PoliciesArg, exit, now_from, policy_allowlist, print, scan_logs};
use crate::apply::{ApplyInputs, apply};
use crate::config::Config;
use crate::ledger::Ledger;
use crate::plan::{Plan, PlanInputs, RecommendedLimit, build_plan, check_guardrails, load_ledger};
use crate::rate;
use crate::render;
use crate::util::term::{self, info, verbose};
use crate::waf::aws::AwsWaf;
use crate::waf::snapshot::{SnapshotWaf, save_snapshot};
use crate::waf::{WafApi, fetch_live};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum PlanFormat {
    /// Terraform-style text.
    #[default]
    Text,
    /// The plan file's JSON.
    Json,
    /// A pull-request comment.
    Markdown,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub policies: PoliciesArg,
    /// Save the plan to this file, for `waftune apply PLAN`.
    #[arg(long, value_name = "PLAN")]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// List every added and removed entry instead of the first few.
    #[arg(long)]
    pub full: bool,
    /// Plan against a snapshot saved by `waftune pull` instead of the live AWS account.
    #[arg(long, value_name = "SNAPSHOT")]
    pub live: Option<PathBuf>,
    /// The current time (expiry of ledger entries, plan timestamp); default: the clock.
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,
    /// Logs to recommend the limits of rate rules with `limit = "recommended"` from
    /// (as `waftune rate recommend` does); needed only when the config has such rules.
    #[arg(long = "logs", num_args = 1.., value_name = "PATH")]
    pub logs: Vec<PathBuf>,
    /// Only logs at or after this time for those recommendations (RFC 3339, a date, or an age such as `7d`).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub policies: PoliciesArg,
    /// A plan saved by `waftune plan --out`. Without it, waftune plans, shows the plan and asks.
    pub plan: Option<PathBuf>,
    /// Apply without asking (for CI; a saved plan never asks).
    #[arg(long)]
    pub auto_approve: bool,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Where to write the snapshot.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Reads the live state through `api` and computes the plan, guardrails checked.
async fn make_plan(
    config: &Config,
    allowlist: &[IpNet],
    api: &impl WafApi,
    now: Timestamp,
    recommended: &BTreeMap<(String, String), RecommendedLimit>,
) -> Result<(Plan, Ledger, String)> {
    let (ledger, ledger_sha256) = load_ledger(&config.ledger_path())?;
    let live = fetch_live(api, config, now).await?;
    crate::ledger::check_present(
        &config.ledger_path(),
        live.managed_ip_sets.iter().map(|s| s.name.as_str()),
    )?;
    let plan = build_plan(&PlanInputs {
        config,
        ledger: &ledger,
        ledger_sha256: &ledger_sha256,
        live: &live,
        now,
        recommended,
    })?;
    check_guardrails(&plan, config, allowlist)?;
    Ok((plan, ledger, ledger_sha256))
}

pub fn plan_cmd(args: PlanArgs) -> Result<ExitCode> {
    let config = args.config.load()?;
    let now = now_from(args.now.as_deref())?;
    let allowlist = policy_allowlist(&args.policies, &config, now)?;
    let recommended = recommend_limits(&config, &args)?;
    let rt = runtime()?;
    let (plan, ..) = match &args.live {
        Some(path) => {
            verbose!("read the live state from the snapshot `{}`", path.display());
            rt.block_on(make_plan(
                &config,
                &allowlist,
                &SnapshotWaf::load(path)?,
                now,
                &recommended,
            ))?
        }
        None => rt.block_on(async {
            let api = AwsWaf::from_config(&config).await?;
            make_plan(&config, &allowlist, &api, now, &recommended).await
        })?,
    };
    if let Some(out) = &args.out {
        plan.save(out)?;
    }
    print(&match args.format {
        PlanFormat::Text => render::plan::text(&plan, term::stdout_color(), args.full),
        PlanFormat::Json => render::plan::json(&plan),
        PlanFormat::Markdown => render::plan::markdown(&plan),
    })?;
    if let Some(out) = &args.out {
        info!(
            "saved the plan to `{}`; apply exactly this with `waftune apply {}`",
            out.display(),
            out.display()
        );
    }
    Ok(ExitCode::from(
        if args.detailed_exitcode && plan.has_changes() {
            exit::CHANGES
        } else {
            exit::OK
        },
    ))
}

/// Limits of `limit = "recommended"` rate rules from `--logs`; none without logs (the plan then
/// names the rule that needs them).
fn recommend_limits(
    config: &Config,
    args: &PlanArgs,
) -> Result<BTreeMap<(String, String), RecommendedLimit>> {
    let rules = rate::recommended_rules(config);
    if rules.is_empty() || args.logs.is_empty() {
        return Ok(BTreeMap::new());
    }
    let home = config.home_country.as_deref();
    let policies = rules
        .iter()
        .map(|r| rate::scopes_policy(&r.rule.scope, home))
        .collect::<Result<Vec<_>, _>>()?;
    let logs = LogArgs {
        logs: args.logs.clone(),
        since: args.since.clone(),
        until: None,
        now: args.now.clone(),
        home_country: config.home_country.clone(),
        strict: false,
    };
    let traffic = scan_logs(&logs, policies)?;
    let span = match (traffic.first_ms, traffic.last_ms) {
        (Some(a), Some(b)) => format!(
            "{} records {} .. {}",
            traffic.records,
            crate::analyze::iso_ms(a),
            crate::analyze::iso_ms(b)
        ),
        _ => "no records".to_owned(),
    };
    Ok(rate::resolve_recommended(
        &rules,
        &traffic.policy_keys,
        &span,
        home,
    ))
}

pub fn apply_cmd(args: ApplyArgs) -> Result<ExitCode> {
    let config = args.config.load()?;
    let allowlist = policy_allowlist(&args.policies, &config, Timestamp::now())?;
    let rt = runtime()?;
    let report = rt.block_on(async {
        let api = AwsWaf::from_config(&config).await?;
        let (plan, ledger, ledger_sha256) = match &args.plan {
            Some(path) => {
                verbose!("read the plan `{}`", path.display());
                let plan = Plan::load(path)?;
                let (ledger, digest) = load_ledger(&config.ledger_path())?;
                (plan, ledger, digest)
            }
            None => {
                // Recommended limits come from logs: plan them with `plan --logs --out` and apply that.
                let (plan, ledger, digest) = make_plan(
                    &config,
                    &allowlist,
                    &api,
                    Timestamp::now(),
                    &BTreeMap::new(),
                )
                .await?;
                print(&render::plan::text(&plan, term::stdout_color(), false))?;
                if !plan.has_changes() {
                    return Ok(None);
                }
                if !args.auto_approve {
                    confirm()?;
                }
                (plan, ledger, digest)
            }
        };
        let inputs = ApplyInputs {
            config: &config,
            ledger: &ledger,
            ledger_sha256: &ledger_sha256,
            extra_allowlist: &allowlist,
        };
        anyhow::Ok(Some(apply(&plan, &inputs, &api).await?))
    })?;
    let Some(report) = report else {
        return Ok(ExitCode::from(exit::OK));
    };
    print(&format!("{report}\n"))?;
    Ok(ExitCode::from(if report.is_complete() {
        exit::OK
    } else {
        exit::ERROR
    }))
}

/// Terraform's rule: only the word `yes` applies.
fn confirm() -> Result<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "refusing to apply without confirmation: pass `--auto-approve`, or save a plan with `waftune plan --out PLAN` and apply that"
        );
    }
    eprint!("Apply these changes? Only `yes` is accepted: ");
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        bail!("apply cancelled");
    }
    Ok(())
}

pub fn pull_cmd(args: PullArgs) -> Result<ExitCode> {
    let config = args.config.load()?;
    let live = runtime()?.block_on(async {
        let api = AwsWaf::from_config(&config).await?;
        anyhow::Ok(fetch_live(&api, &config, Timestamp::now()).await?)
    })?;
    save_snapshot(&live, &args.out)?;
    info!("saved the live state to `{}`", args.out.display());
    Ok(ExitCode::from(exit::OK))
}
