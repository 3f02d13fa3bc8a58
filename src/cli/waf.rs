//! `plan`, `apply` and `pull`: the commands that read or change AWS WAF.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use ipnet::IpNet;
use jiff::Timestamp;

use super::{ConfigArg, PoliciesArg, exit, now_from, policy_allowlist, print, use_color};
use crate::apply::{ApplyInputs, apply};
use crate::config::Config;
use crate::plan::{self, Plan, PlanInputs, build_plan, check_guardrails, load_ledger};
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
) -> Result<(Plan, String)> {
    let (ledger, ledger_sha256) = load_ledger(&config.ledger_path())?;
    let live = fetch_live(api, config, now).await?;
    let plan = build_plan(&PlanInputs {
        config,
        ledger: &ledger,
        ledger_sha256: &ledger_sha256,
        live: &live,
        now,
    })?;
    check_guardrails(&plan, config, allowlist)?;
    Ok((plan, ledger_sha256))
}

pub fn plan_cmd(args: PlanArgs) -> Result<ExitCode> {
    let config = Config::load(&args.config.config)?;
    let now = now_from(args.now.as_deref())?;
    let allowlist = policy_allowlist(&args.policies, &config, now)?;
    let rt = runtime()?;
    let (plan, _) = match &args.live {
        Some(path) => rt.block_on(make_plan(
            &config,
            &allowlist,
            &SnapshotWaf::load(path)?,
            now,
        ))?,
        None => rt.block_on(async {
            let api = AwsWaf::from_config(&config).await?;
            make_plan(&config, &allowlist, &api, now).await
        })?,
    };
    if let Some(out) = &args.out {
        plan.save(out)?;
    }
    print(&match args.format {
        PlanFormat::Text => plan::render::text(&plan, use_color(), args.full),
        PlanFormat::Json => plan::render::json(&plan),
        PlanFormat::Markdown => plan::render::markdown(&plan),
    })?;
    if let Some(out) = &args.out {
        eprintln!(
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

pub fn apply_cmd(args: ApplyArgs) -> Result<ExitCode> {
    let config = Config::load(&args.config.config)?;
    let allowlist = policy_allowlist(&args.policies, &config, Timestamp::now())?;
    let rt = runtime()?;
    let report = rt.block_on(async {
        let api = AwsWaf::from_config(&config).await?;
        let (plan, ledger_sha256) = match &args.plan {
            Some(path) => {
                let plan = Plan::load(path)?;
                let (_, digest) = load_ledger(&config.ledger_path())?;
                (plan, digest)
            }
            None => {
                let (plan, digest) = make_plan(&config, &allowlist, &api, Timestamp::now()).await?;
                print(&plan::render::text(&plan, use_color(), false))?;
                if !plan.has_changes() {
                    return Ok(None);
                }
                if !args.auto_approve {
                    confirm()?;
                }
                (plan, digest)
            }
        };
        let inputs = ApplyInputs {
            config: &config,
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
    let config = Config::load(&args.config.config)?;
    let live = runtime()?.block_on(async {
        let api = AwsWaf::from_config(&config).await?;
        anyhow::Ok(fetch_live(&api, &config, Timestamp::now()).await?)
    })?;
    save_snapshot(&live, &args.out)?;
    eprintln!("saved the live state to `{}`", args.out.display());
    Ok(ExitCode::from(exit::OK))
}
