//! `waftune athena ...`: setting up the Athena table the `athena` engine queries.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use super::{ConfigArg, LogArgs, PoliciesArg, exit, now_from, parse_timeout, print, time_range};
use crate::athena::client::{AthenaApi, QueryContext, cost_usd, human_bytes};
use crate::athena::origin::{self, OriginLocation};
use crate::athena::sql::{self, LogLocation, Table};
use crate::athena::{Source, rollup};
use crate::config::Config;
use crate::log::TimeRange;
use crate::model::athena::Layout;
use crate::origin::OriginKind;
use crate::origin::scan::{OriginOptions, OriginTraffic};
use crate::scan::{ScanOptions, Traffic};
use crate::util::term::{self, info};

#[derive(Debug, Subcommand)]
pub enum AthenaCommand {
    /// Print the CREATE EXTERNAL TABLE for one web ACL's logs, with partition projection.
    Ddl(DdlArgs),
    /// Fill the rollup table (`[athena]` `rollup`) with the closed hours of a range that it does
    /// not hold yet, so runs read them from it instead of the logs (docs/athena.md, "Rollup").
    Rollup(RollupArgs),
}

#[derive(Debug, Args)]
// The Athena table is the input: the local engine's input switches stay out of the help.
#[command(mut_arg("logs", |a| a.hide(true)), mut_arg("strict", |a| a.hide(true)))]
pub struct RollupArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(flatten)]
    pub policies: PoliciesArg,
    /// The range to fill (`--since` required): its whole hours that are closed at `--now`;
    /// `--home-country` as for `report` (its rate-rule scopes are filled too).
    #[command(flatten)]
    pub logs: LogArgs,
    /// Create the rollup table first (if it does not exist), with its files under this `s3://` URL.
    #[arg(long, value_name = "S3_URL")]
    pub location: Option<String>,
    /// Fill every closed hour of the range again, also those the rollup holds.
    #[arg(long)]
    pub refill: bool,
    /// Print the statements instead of running them (every closed hour, as with `--refill`).
    #[arg(long)]
    pub print_sql: bool,
    /// Stop a statement still running after this long.
    #[arg(long, default_value = "30m", value_name = "DURATION")]
    pub timeout: String,
}

/// What `waftune athena ddl` makes a table for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogKind {
    Waf,
    Alb,
    Cloudfront,
}

#[derive(Debug, Args)]
pub struct DdlArgs {
    /// The log bucket (`aws-waf-logs-...`).
    #[arg(long)]
    pub bucket: String,
    /// The AWS account id in the log keys.
    #[arg(long)]
    pub account: String,
    /// Which logs the table holds: WAF's, or the origin's ALB or CloudFront access logs.
    #[arg(long, value_enum, default_value_t = LogKind::Waf)]
    pub kind: LogKind,
    /// The web ACL's name in the log keys (`--kind waf`).
    #[arg(long = "web-acl", value_name = "NAME", required_if_eq("kind", "waf"))]
    pub web_acl: Option<String>,
    /// The CloudFront distribution id, the first folder under `--prefix` (`--kind cloudfront`).
    #[arg(long, value_name = "ID", required_if_eq("kind", "cloudfront"))]
    pub distribution: Option<String>,
    /// A key prefix before `AWSLogs/` (ALB) or the distribution's folder (CloudFront), ending in `/`.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// The web ACL's region, or `cloudfront`.
    #[arg(long)]
    pub region: String,
    /// How the table is partitioned.
    #[arg(long, value_enum, default_value_t = Layout::Projection)]
    pub layout: Layout,
    /// The table name (`name` or `database.name`).
    #[arg(long, default_value = "waf_logs")]
    pub table: String,
    /// The first day (`yyyy/MM/dd`) partition projection enumerates: the first day of logs.
    #[arg(long, value_name = "DAY")]
    pub start: String,
}

pub fn athena_cmd(command: AthenaCommand) -> Result<ExitCode> {
    match command {
        AthenaCommand::Ddl(args) => ddl_cmd(args),
        AthenaCommand::Rollup(args) => rollup_cmd(args),
    }
}

fn ddl_cmd(args: DdlArgs) -> Result<ExitCode> {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let day: Vec<&str> = args.start.split('/').collect();
    if !matches!(day.as_slice(), [y, m, d] if digits(y, 4) && digits(m, 2) && digits(d, 2)) {
        bail!("`--start {}` is not a day as `yyyy/MM/dd`", args.start);
    }
    if !digits(&args.account, 12) {
        bail!(
            "`--account {}` is not a 12-digit AWS account id",
            args.account
        );
    }
    let plain = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    };
    let web_acl = args.web_acl.clone().unwrap_or_default();
    let distribution = args.distribution.clone().unwrap_or_default();
    if !plain(&args.region) || !plain(&args.bucket) {
        bail!(
            "bucket, region and web ACL name must be plain S3 key segments (letters, digits, `_-.`)"
        );
    }
    let key_ok = |s: &str| s.is_empty() || plain(s);
    if !key_ok(&web_acl) || !key_ok(&distribution) {
        bail!(
            "bucket, region and web ACL name must be plain S3 key segments (letters, digits, `_-.`)"
        );
    }
    if !args.prefix.is_empty()
        && (!args.prefix.ends_with('/')
            || !args.prefix.split('/').all(|p| p.is_empty() || plain(p)))
    {
        bail!(
            "`--prefix {}` must be plain S3 key segments ending in `/`",
            args.prefix
        );
    }
    // `name` or `database.name`, each part a plain name.
    let parts: Vec<&str> = args.table.splitn(2, '.').collect();
    for part in parts {
        if let Err(e) = crate::model::athena::check_name(part) {
            bail!("`--table {}`: the name {e}", args.table);
        }
    }
    let text = match args.kind {
        LogKind::Waf => sql::ddl(
            &Table {
                name: args.table,
                layout: args.layout,
            },
            &LogLocation {
                bucket: args.bucket,
                account: args.account,
                region: args.region,
                web_acl,
            },
            &args.start,
        ),
        LogKind::Alb => origin::ddl(
            &args.table,
            &OriginLocation::Alb {
                bucket: args.bucket,
                prefix: args.prefix,
                account: args.account,
                region: args.region,
            },
            &args.start,
        ),
        LogKind::Cloudfront => origin::ddl(
            &args.table,
            &OriginLocation::Cloudfront {
                bucket: args.bucket,
                prefix: args.prefix,
                distribution,
            },
            &args.start,
        ),
    };
    print(&format!("{text};\n"))?;
    Ok(ExitCode::from(exit::OK))
}

fn rollup_cmd(args: RollupArgs) -> Result<ExitCode> {
    if args.logs.since.is_none() || !args.logs.logs.is_empty() || args.logs.strict {
        bail!(
            "`athena rollup` needs `--since`, and reads the Athena table: no `--logs` or `--strict`"
        );
    }
    let config = args.config.load()?;
    let (athena, source) = source(&config)?;
    let Some(name) = &source.rollup else {
        bail!(
            "`athena rollup` needs `rollup = \"<table name>\"` in the `[athena]` section of `{}` \
             (see docs/athena.md)",
            config.path.display()
        );
    };
    if let Some(location) = &args.location
        && !location.starts_with("s3://")
    {
        bail!("`--location {location}` is not an `s3://` URL");
    }
    let now = now_from(args.logs.now.as_deref())?.as_millisecond();
    let range = time_range(&args.logs)?;
    // What `propose`, `report` and `rate promote` evaluate, each matcher once: `analyze` needs none
    // of its own.
    let home = args
        .logs
        .home_country
        .as_deref()
        .map(str::to_ascii_uppercase);
    let mut policies =
        crate::report::scan_policies(&config, home.as_deref(), &args.policies.load(&config)?)?;
    // And `rate promote`'s count of each counting rate rule's matches: without them in the rollup
    // its run would find every hour missing and read the logs in a second statement.
    policies.extend(
        crate::report::rates::rate_rules(&config)
            .filter(|(_, r)| crate::rate::ensure_counting(r).is_ok())
            .map(|(_, r)| crate::rate::count_matches_policy(&r.name)),
    );
    let mut seen = std::collections::HashSet::new();
    policies.retain(|p| seen.insert(rollup::fingerprint(Some(p))));
    let hours = rollup::closed_hours(&range, now);
    if hours.is_empty() {
        bail!(
            "no whole hour of the range is closed yet (an hour is closed {} minutes after its end)",
            sql::PARTITION_SLACK_MS / 60_000
        );
    }
    let ddl = args.location.as_deref().map(|l| rollup::ddl(name, l));
    let timeout = parse_timeout(&args.timeout)?;
    if args.print_sql {
        let all: Vec<i64> = hours.collect();
        let fills = rollup::chunks(&all)
            .into_iter()
            .flat_map(|chunk| rollup::fill(&source.table, name, chunk, &policies));
        for statement in ddl.into_iter().chain(fills) {
            print(&format!("{statement};\n\n"))?;
        }
        return Ok(ExitCode::from(exit::OK));
    }
    let total = hours.end - hours.start;
    let done = with_api(&config, athena, async |api| {
        if let Some(ddl) = &ddl {
            api.run(ddl, timeout).await?;
        }
        crate::athena::fill(
            api,
            &source.table,
            name,
            hours.clone(),
            &policies,
            args.refill,
            timeout,
        )
        .await
    })?;
    let filled: i64 = done.filled.iter().map(|r| r.end - r.start).sum();
    print(&format!(
        "rollup `{name}`: {total} closed hours from {} to {}, {} held, {filled} filled for {} \
         policies; {} statements scanned {}, estimated USD {:.4}\n",
        crate::analyze::iso_ms(hours.start * rollup::HOUR_MS),
        crate::analyze::iso_ms(hours.end * rollup::HOUR_MS),
        done.held,
        policies.len(),
        done.statements + usize::from(ddl.is_some()),
        human_bytes(done.bytes),
        cost_usd(done.bytes)
    ))?;
    Ok(ExitCode::from(exit::OK))
}

/// The Athena source of the configuration's `[athena]` section.
fn source(config: &Config) -> Result<(&crate::config::AthenaConfig, Source)> {
    let Some(athena) = &config.athena else {
        bail!(
            "`--source athena` needs an `[athena]` section in `{}` (see docs/athena.md)",
            config.path.display()
        );
    };
    // The database is the query context's, so the tables are named alone.
    let source = Source {
        table: Table {
            name: athena.table.clone(),
            layout: athena.layout,
        },
        rollup: athena.rollup.clone(),
    };
    Ok((athena, source))
}

/// Runs `body` with an Athena client for `athena`, on a runtime of its own.
fn with_api<T, E: std::error::Error + Send + Sync + 'static>(
    config: &Config,
    athena: &crate::config::AthenaConfig,
    body: impl AsyncFnOnce(&AthenaApi) -> Result<T, E>,
) -> Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(runtime.block_on(async {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = athena.region.as_ref().or(config.region.as_ref()) {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        let mut api = AthenaApi::new(
            aws_sdk_athena::Client::new(&loader.load().await),
            QueryContext {
                database: athena.database.clone(),
                workgroup: athena.workgroup.clone(),
                output_location: athena.output_location.clone(),
            },
        );
        api.progress = term::shows_info();
        body(&api).await
    })?)
}

/// `--source athena`: the traffic from the config's `[athena]` table (and rollup), with `previous`
/// that of the previous period too (from the same statement), or `None` after printing the
/// statement for `print_sql`.
pub(super) fn traffic(
    config: &Config,
    options: &ScanOptions,
    previous: Option<TimeRange>,
    now_ms: i64,
    print_sql: bool,
    timeout: Duration,
) -> Result<Option<(Traffic, Option<Traffic>)>> {
    let (athena, source) = source(config)?;
    if print_sql {
        let statement = source.first_statement(options, previous.as_ref(), now_ms);
        print(&format!("{statement};\n"))?;
        return Ok(None);
    }
    let (traffic, before, scanned) = with_api(config, athena, async |api| {
        crate::athena::scan(api, &source, options, previous, now_ms, timeout).await
    })?;
    if let Some(first) = scanned.missing_hours.first() {
        info!(
            "athena: the rollup lacked {} hours of the range (the first from {}): read them from \
             the logs; `waftune athena rollup` fills them",
            scanned.missing_hours.len(),
            crate::analyze::iso_ms(first * rollup::HOUR_MS)
        );
    }
    info!(
        "athena: {} statement{} scanned {} in all, estimated USD {:.4}",
        scanned.statements,
        if scanned.statements == 1 { "" } else { "s" },
        human_bytes(scanned.bytes),
        cost_usd(scanned.bytes)
    );
    Ok(Some((traffic, before)))
}

/// `--source athena` with an `origin_table` in `[athena]`: the origin's aggregates from that table
/// (one query), or `None` without one or after printing the query for `print_sql`.
pub(super) fn origin_traffic(
    config: &Config,
    options: &OriginOptions,
    print_sql: bool,
    timeout: Duration,
) -> Result<Option<OriginTraffic>> {
    let Some(athena) = &config.athena else {
        return Ok(None);
    };
    let Some(table) = &athena.origin_table else {
        return Ok(None);
    };
    let kind = match athena.origin_kind.as_deref() {
        Some("cloudfront") => OriginKind::Cloudfront,
        _ => OriginKind::Alb,
    };
    let sql = origin::aggregates(kind, table, options);
    if print_sql {
        print(&format!("{sql};\n\n"))?;
        return Ok(None);
    }
    let out = with_api(config, athena, async |api| api.run(&sql, timeout).await)?;
    info!(
        "athena: the origin query scanned {}, estimated USD {:.4}",
        human_bytes(out.bytes_scanned),
        cost_usd(out.bytes_scanned)
    );
    let traffic =
        origin::traffic(kind, &out.result).with_context(|| format!("origin query `{}`", out.id))?;
    Ok(Some(traffic))
}
