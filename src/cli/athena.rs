//! `waftune athena ...`: setting up the Athena table the `athena` engine queries.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use super::{exit, print};
use crate::athena::client::{AthenaApi, QueryContext, cost_usd, human_bytes};
use crate::athena::origin::{self, OriginLocation};
use crate::athena::sql::{self, LogLocation, Table};
use crate::config::Config;
use crate::model::athena::Layout;
use crate::origin::OriginKind;
use crate::origin::scan::OriginTraffic;
use crate::scan::{ScanOptions, Traffic};
use crate::util::term::{self, info};

#[derive(Debug, Subcommand)]
pub enum AthenaCommand {
    /// Print the CREATE EXTERNAL TABLE for one web ACL's logs, with partition projection.
    Ddl(DdlArgs),
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

/// `--source athena`: the traffic from the config's `[athena]` table, or `None` after printing the
/// queries for `print_sql`.
pub(super) fn traffic(
    config: &Config,
    options: &ScanOptions,
    print_sql: bool,
    timeout: Duration,
) -> Result<Option<Traffic>> {
    let Some(athena) = &config.athena else {
        bail!(
            "`--source athena` needs an `[athena]` section in `{}` (see docs/athena.md)",
            config.path.display()
        );
    };
    // The database is the query context's, so the table is named alone.
    let table = Table {
        name: athena.table.clone(),
        layout: athena.layout,
    };
    if print_sql {
        for sql in crate::athena::queries(&table, options) {
            print(&format!("{sql};\n\n"))?;
        }
        return Ok(None);
    }
    let runtime = runtime()?;
    let (traffic, scanned) = runtime.block_on(async {
        let api = connect(config, athena).await;
        crate::athena::scan(&api, &table, options, timeout).await
    })?;
    info!(
        "athena: {} queries scanned {} in all, estimated USD {:.4}",
        crate::athena::queries(&table, options).len(),
        human_bytes(scanned),
        cost_usd(scanned)
    );
    Ok(Some(traffic))
}

/// `--source athena` with an `origin_table` in `[athena]`: the origin's aggregates from that table
/// (one query), or `None` without one or after printing the query for `print_sql`.
pub(super) fn origin_traffic(
    config: &Config,
    range: &crate::log::TimeRange,
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
    let sql = origin::aggregates(kind, table, range);
    if print_sql {
        print(&format!("{sql};\n\n"))?;
        return Ok(None);
    }
    let runtime = runtime()?;
    let out = runtime.block_on(async {
        let api = connect(config, athena).await;
        api.run(&sql, timeout).await
    })?;
    info!(
        "athena: the origin query scanned {}, estimated USD {:.4}",
        human_bytes(out.bytes_scanned),
        cost_usd(out.bytes_scanned)
    );
    let traffic =
        origin::traffic(kind, &out.result).with_context(|| format!("origin query `{}`", out.id))?;
    Ok(Some(traffic))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The Athena client of `[athena]`, in its region (else the configuration's, else AWS's default).
async fn connect(config: &Config, athena: &crate::config::AthenaConfig) -> AthenaApi {
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
    api
}
