//! `waftune.toml`: what waftune owns in AWS WAF.
//!
//! The configuration names the IP-set groups waftune writes (an IPv4 and an IPv6 set per group), the
//! web ACL rules it maintains to reference them, and the guardrails every apply must pass. Policies
//! say what misbehaviour is and the ledger says who is blocked; neither lives here.
//!
//! Parsing is strict: unknown keys are errors with a "did you mean" hint, and every value AWS would
//! reject later (names, priorities, response codes, CIDRs) is rejected now with the file, line and
//! column of the value, because a plan that fails at apply time has already wasted a review.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use toml::Spanned;

use crate::model::acl::{ContentType, Scope};
use crate::model::athena::Layout;
use crate::model::rate::{self, Method, Window};
use crate::model::waf::{MAX_RATE_LIMIT, MIN_RATE_LIMIT, RateKey, ScopeDown, is_waf_name};
use crate::util::cidr;
use crate::util::diag::{Diagnostic, Diagnostics};
use crate::util::text::closest;

/// The configuration's file name, looked for in the current directory and its parents.
pub const DEFAULT_PATH: &str = "waftune.toml";
/// The environment variable naming the configuration file (after `-c`, before the search).
pub const CONFIG_ENV: &str = "WAFTUNE_CONFIG";
/// Where the ledger lives unless `ledger` says otherwise (relative to the configuration file).
pub const DEFAULT_LEDGER: &str = "state/blocklist.toml";
/// Where the policies live unless `policies` says otherwise (relative to the configuration file).
pub const DEFAULT_POLICIES: &str = "policies";
/// CloudFront web ACLs and their IP sets exist only in this region.
pub const CLOUDFRONT_REGION: &str = "us-east-1";
/// The tag key and value that mark an IP set as written by waftune.
pub const MANAGED_TAG: (&str, &str) = ("managed-by", "waftune");
/// The tag key recording which group an IP set belongs to.
pub const GROUP_TAG: &str = "waftune-group";
/// Suffix of the second set a group spills into when `rollover = true`.
pub const ROLLOVER_SUFFIX: &str = "-2";
/// WAF allows 256 characters of description; waftune appends a stamp (see `plan`) of at most
/// this many, so the user's part is limited to the rest.
pub const DESCRIPTION_STAMP_MAX: usize = 56;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "no `{DEFAULT_PATH}` in `{}` or any directory above it: pass `-c FILE` or set `{CONFIG_ENV}`",
        start.display()
    )]
    NotFound { start: PathBuf },
    /// Every mistake in the file, each with its line and column.
    #[error(transparent)]
    Invalid(#[from] Diagnostics),
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it was read from (used in messages and to resolve `ledger`).
    pub path: PathBuf,
    /// Lowercase hex SHA-256 of the file's bytes: plans record it so apply can refuse a changed config.
    pub sha256: String,
    /// `None`: the AWS default chain decides (environment, profile). Always `us-east-1` for CloudFront.
    pub region: Option<String>,
    pub scope: Scope,
    /// ISO 3166 alpha-2 country of the site's own users (for the analysis reports).
    pub home_country: Option<String>,
    /// The ledger path as written (see [`Config::ledger_path`]).
    pub ledger: PathBuf,
    /// The policy directory (or file) as written (see [`Config::policies_path`]).
    pub policies: PathBuf,
    /// Ranges that must never be blocked, whatever the ledger says.
    pub allowlist: Vec<IpNet>,
    pub ip_set_groups: Vec<IpSetGroup>,
    pub web_acls: Vec<WebAclConfig>,
    pub guardrails: Guardrails,
    /// Where `--source athena` runs its queries; `None` when the section is absent.
    pub athena: Option<AthenaConfig>,
    /// `[origin]`: how origin access logs (ALB, CloudFront) are joined with WAF's clients.
    pub origin: OriginConfig,
}

/// `[origin]` (docs/origin.md): how the clients of origin access logs are keyed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginConfig {
    /// Key CloudFront requests by their first `x-forwarded-for` address instead of `c-ip` (a proxy
    /// in front of CloudFront), locally and in the Athena origin query; `--forwarded-for` sets it
    /// for one run.
    #[serde(default)]
    pub forwarded_for: bool,
}

/// `[athena]`: the table of the web ACL's logs (see `waftune athena ddl`) and where queries run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AthenaConfig {
    pub database: String,
    pub table: String,
    /// `None`: the account's `primary` workgroup.
    pub workgroup: Option<String>,
    /// `s3://bucket/prefix/` for query results; may be left out when the workgroup enforces one.
    pub output_location: Option<String>,
    /// The region of the Athena table (default: `region` above, else the AWS default chain).
    pub region: Option<String>,
    #[serde(default)]
    pub layout: Layout,
    /// The rollup table (`waftune athena rollup`) runs read closed hours from; `None`: none.
    pub rollup: Option<String>,
    /// The table of the origin's access logs (`waftune athena ddl --kind alb|cloudfront`), read by
    /// `analyze --source athena` beside the WAF table.
    pub origin_table: Option<String>,
    /// What `origin_table` holds: `alb` (default) or `cloudfront`.
    pub origin_kind: Option<String>,
}

/// A pair of IP sets (IPv4 and IPv6) holding one ledger group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpSetGroup {
    pub name: String,
    pub ipv4_set_name: String,
    pub ipv6_set_name: String,
    pub description: String,
    /// Applied when waftune creates a set, together with [`MANAGED_TAG`] and [`GROUP_TAG`].
    pub tags: BTreeMap<String, String>,
    /// Spill into a second set per IP version (named with [`ROLLOVER_SUFFIX`]) past 10,000 entries.
    pub rollover: bool,
}

/// An existing web ACL in which waftune maintains some rules. waftune never creates web ACLs.
#[derive(Debug, Clone, PartialEq)]
pub struct WebAclConfig {
    pub name: String,
    pub rules: Vec<ManagedRuleConfig>,
    pub rate_rules: Vec<RateRuleConfig>,
    pub asn_rules: Vec<AsnRuleConfig>,
}

/// An ASN rule waftune owns: it blocks, counts or rate-limits the ASNs of one ledger list. With no
/// active ASN in the list the rule is left out of the web ACL (WAF takes no empty ASN list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsnRuleConfig {
    pub name: String,
    /// The ledger's `[[asn]]` entries with this `list`.
    pub list: String,
    pub priority: i32,
    /// `None`: the rule matches every request from a listed ASN.
    pub rate: Option<AsnRate>,
    pub action: RuleActionConfig,
    pub metric_name: String,
}

/// A rate-based ASN rule: at most `limit` requests per `key` in `window`, over the listed ASNs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsnRate {
    pub limit: u64,
    pub window: Window,
    /// [`RateKey::Ip`] (each address of a listed ASN) or [`RateKey::Asn`] (each listed ASN as a whole).
    pub key: AsnRateKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsnRateKey {
    Ip,
    Asn,
}

impl AsnRateKey {
    pub fn rate_key(self) -> RateKey {
        match self {
            AsnRateKey::Ip => RateKey::Ip,
            AsnRateKey::Asn => RateKey::Asn,
        }
    }
}

/// A rate-based rule waftune owns.
#[derive(Debug, Clone, PartialEq)]
pub struct RateRuleConfig {
    pub name: String,
    pub priority: i32,
    pub limit: RateLimit,
    pub window: Window,
    pub key: RateKey,
    /// As written (`overseas`, `path:/login`, ...), for recommending and backtesting locally.
    pub scope: Vec<rate::Scope>,
    /// The same scope as WAF statements.
    pub scope_down: Vec<ScopeDown>,
    pub action: RuleActionConfig,
    pub metric_name: String,
    /// Byte range of the `action` value in the file, for `rate promote --write` to change only it.
    pub action_at: Range<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateLimit {
    Fixed(u64),
    /// The recommendation from the logs given to `plan` (see `waftune rate recommend`).
    Recommended(Method),
}

/// A rule waftune owns: it matches the sets of one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedRuleConfig {
    pub name: String,
    pub group: String,
    pub priority: i32,
    pub action: RuleActionConfig,
    pub metric_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleActionConfig {
    /// Block; with a custom response, WAF answers with that code and body instead of a bare 403.
    Block(Option<CustomResponse>),
    /// Match and label without blocking: a dry run in production.
    Count,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomResponse {
    pub code: u16,
    /// Key of the body in the web ACL's custom response bodies; waftune writes that entry too.
    pub body_key: String,
    pub content_type: ContentType,
    pub body: String,
}

/// Limits every plan and apply must respect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guardrails {
    /// Most entries one apply may add, over all sets.
    pub max_additions: usize,
    /// Most entries one apply may remove, over all sets.
    pub max_removals: usize,
    /// Shortest IPv4 prefix allowed in a set (16: nothing broader than a /16).
    pub min_prefix_v4: u8,
    /// Shortest IPv6 prefix allowed in a set.
    pub min_prefix_v6: u8,
    /// Broader ranges allowed anyway (each must be written here exactly, or lie inside one).
    pub allow_broad: Vec<IpNet>,
    /// Pause between write calls: WAF allows about one write per second per account and region.
    pub write_interval_ms: u64,
}

impl Default for Guardrails {
    fn default() -> Self {
        Guardrails {
            max_additions: 1_000,
            max_removals: 1_000,
            min_prefix_v4: 16,
            min_prefix_v6: 32,
            allow_broad: Vec::new(),
            write_interval_ms: 1_000,
        }
    }
}

impl Guardrails {
    /// The prefix length `cidr` falls short of, when it is broader than the minimum for its IP
    /// version and no `allow_broad` range holds it; `None` when it may be written.
    pub fn too_broad(&self, cidr: &IpNet) -> Option<u8> {
        let min_prefix = match cidr {
            IpNet::V4(_) => self.min_prefix_v4,
            IpNet::V6(_) => self.min_prefix_v6,
        };
        (cidr.prefix_len() < min_prefix && !self.allow_broad.iter().any(|a| a.contains(cidr)))
            .then_some(min_prefix)
    }
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates configuration text; `path` is used in messages and to resolve `ledger`.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let ctx = Ctx {
            text,
            path,
            diagnostics: RefCell::default(),
        };
        let config = match toml::from_str::<RawConfig>(text) {
            Ok(raw) => ctx.validate(raw).ok(),
            Err(e) => {
                let at = e.span().map_or(0, |s| s.start);
                let (message, help) = with_hint(e.message());
                ctx.report(at..at, message, help);
                None
            }
        };
        let mut list = ctx.diagnostics.into_inner();
        list.sort_by_key(|d| (d.line, d.column));
        match config {
            Some(config) if list.is_empty() => Ok(config),
            _ => Err(ConfigError::Invalid(Diagnostics {
                what: "configuration",
                path: path.to_owned(),
                list,
            })),
        }
    }

    /// Finds the configuration as cargo and terraform find theirs: `explicit` (`-c`, or
    /// `WAFTUNE_CONFIG`), else `waftune.toml` in `start` or the nearest directory above it.
    pub fn find(explicit: Option<&Path>, start: &Path) -> Result<PathBuf, ConfigError> {
        if let Some(path) = explicit {
            return Ok(path.to_owned());
        }
        let found = start
            .ancestors()
            .map(|dir| dir.join(DEFAULT_PATH))
            .find(|candidate| candidate.is_file());
        match found {
            // In the current directory, say `waftune.toml` as the user would.
            Some(path) if path.parent() == Some(start) => Ok(PathBuf::from(DEFAULT_PATH)),
            Some(path) => Ok(path),
            None => Err(ConfigError::NotFound {
                start: start.to_owned(),
            }),
        }
    }

    /// The ledger file, relative to the directory holding the configuration.
    pub fn ledger_path(&self) -> PathBuf {
        self.resolve(&self.ledger)
    }

    /// The policies, relative to the directory holding the configuration.
    pub fn policies_path(&self) -> PathBuf {
        self.resolve(&self.policies)
    }

    /// A path written in the configuration: relative ones are relative to the file's directory.
    fn resolve(&self, path: &Path) -> PathBuf {
        match self.path.parent() {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_owned(),
        }
    }

    /// The region waftune talks to: CloudFront always means `us-east-1`.
    pub fn effective_region(&self) -> Option<&str> {
        match self.scope {
            Scope::Cloudfront => Some(CLOUDFRONT_REGION),
            Scope::Regional => self.region.as_deref(),
        }
    }

    pub fn group(&self, name: &str) -> Option<&IpSetGroup> {
        self.ip_set_groups.iter().find(|g| g.name == name)
    }

    /// The first ASN rule's list: where `waftune block AS...` and proposed ASNs go by default.
    pub fn default_asn_list(&self) -> Option<&str> {
        self.web_acls
            .iter()
            .flat_map(|a| &a.asn_rules)
            .map(|r| r.list.as_str())
            .next()
    }

    /// The ASN lists the ASN rules of every web ACL use, sorted, each once.
    pub fn asn_lists(&self) -> Vec<&str> {
        let lists: BTreeSet<&str> = self
            .web_acls
            .iter()
            .flat_map(|a| &a.asn_rules)
            .map(|r| r.list.as_str())
            .collect();
        lists.into_iter().collect()
    }
}

/// Lowercase hex SHA-256: the digest recorded in plans for the configuration and the ledger.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    region: Option<Spanned<String>>,
    scope: Spanned<Scope>,
    home_country: Option<Spanned<String>>,
    ledger: Option<PathBuf>,
    policies: Option<PathBuf>,
    #[serde(default)]
    allowlist: Vec<Spanned<String>>,
    #[serde(default, rename = "ip_set_group")]
    ip_set_groups: Vec<RawGroup>,
    #[serde(default, rename = "web_acl")]
    web_acls: Vec<RawWebAcl>,
    #[serde(default)]
    guardrails: RawGuardrails,
    athena: Option<Spanned<AthenaConfig>>,
    #[serde(default)]
    origin: OriginConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: Spanned<String>,
    ipv4_set_name: Spanned<String>,
    ipv6_set_name: Spanned<String>,
    description: Option<Spanned<String>>,
    #[serde(default)]
    tags: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    rollover: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebAcl {
    name: Spanned<String>,
    #[serde(default, rename = "rule")]
    rules: Vec<RawRule>,
    #[serde(default, rename = "rate_rule")]
    rate_rules: Vec<RawRateRule>,
    #[serde(default, rename = "asn_rule")]
    asn_rules: Vec<RawAsnRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAsnRule {
    name: Spanned<String>,
    list: Spanned<String>,
    priority: Spanned<i64>,
    action: Spanned<RawAction>,
    limit: Option<Spanned<i64>>,
    window: Option<Spanned<String>>,
    key: Option<Spanned<String>>,
    metric_name: Option<Spanned<String>>,
    response: Option<Spanned<RawResponse>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateRule {
    name: Spanned<String>,
    priority: Spanned<i64>,
    limit: Spanned<RawLimit>,
    headroom: Option<Spanned<f64>>,
    percentile: Option<Spanned<f64>>,
    window: Option<Spanned<String>>,
    key: Option<Spanned<String>>,
    forwarded_header: Option<Spanned<String>>,
    forwarded_fallback_match: Option<bool>,
    #[serde(default)]
    scope: Vec<Spanned<String>>,
    action: Spanned<RawAction>,
    metric_name: Option<Spanned<String>>,
    response: Option<Spanned<RawResponse>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawLimit {
    Number(i64),
    Word(String),
}

/// The fields every managed rule has, borrowed from either kind of raw rule.
struct RawHead<'r> {
    name: &'r Spanned<String>,
    priority: &'r Spanned<i64>,
    action: &'r Spanned<RawAction>,
    metric_name: Option<&'r Spanned<String>>,
    response: Option<&'r Spanned<RawResponse>>,
}

impl RawRule {
    fn head(&self) -> RawHead<'_> {
        RawHead {
            name: &self.name,
            priority: &self.priority,
            action: &self.action,
            metric_name: self.metric_name.as_ref(),
            response: self.response.as_ref(),
        }
    }
}

impl RawAsnRule {
    fn head(&self) -> RawHead<'_> {
        RawHead {
            name: &self.name,
            priority: &self.priority,
            action: &self.action,
            metric_name: self.metric_name.as_ref(),
            response: self.response.as_ref(),
        }
    }
}

impl RawRateRule {
    fn head(&self) -> RawHead<'_> {
        RawHead {
            name: &self.name,
            priority: &self.priority,
            action: &self.action,
            metric_name: self.metric_name.as_ref(),
            response: self.response.as_ref(),
        }
    }
}

/// A rule's validated common fields.
struct RuleHead {
    name: String,
    priority: i32,
    action: RuleActionConfig,
    metric_name: String,
}

/// Names, priorities and response bodies already used in one web ACL.
#[derive(Default)]
struct AclSeen {
    names: BTreeSet<String>,
    priorities: BTreeMap<i32, String>,
    body_keys: BTreeMap<String, CustomResponse>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RawAction {
    Block,
    Count,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Spanned<String>,
    group: Spanned<String>,
    priority: Spanned<i64>,
    action: Spanned<RawAction>,
    metric_name: Option<Spanned<String>>,
    response: Option<Spanned<RawResponse>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResponse {
    code: Spanned<u16>,
    body_key: Spanned<String>,
    content_type: ContentType,
    body: Spanned<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGuardrails {
    max_additions: Option<usize>,
    max_removals: Option<usize>,
    min_prefix_v4: Option<Spanned<u8>>,
    min_prefix_v6: Option<Spanned<u8>>,
    #[serde(default)]
    allow_broad: Vec<Spanned<String>>,
    write_interval_ms: Option<u64>,
}

struct Ctx<'a> {
    text: &'a str,
    path: &'a Path,
    /// Every mistake found so far: checks record theirs and go on with the next value.
    diagnostics: RefCell<Vec<Diagnostic>>,
}

/// A mistake already recorded in [`Ctx::diagnostics`]; what depended on the value is skipped.
#[derive(Debug)]
struct Reported;

/// WAF's pattern for descriptions: word characters, spaces and `+=:#@/-,.`, not starting or ending
/// with a space.
fn is_waf_description(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == ' ' || "_+=:#@/-,.".contains(c))
        && !s.starts_with(' ')
        && !s.ends_with(' ')
}

impl Ctx<'_> {
    fn report(&self, span: Range<usize>, message: String, help: Option<String>) -> Reported {
        self.diagnostics
            .borrow_mut()
            .push(Diagnostic::error(self.path, self.text, span, message).with_help(help));
        Reported
    }

    fn error(&self, span: Range<usize>, message: String) -> Reported {
        self.report(span, message, None)
    }

    fn name(&self, value: &Spanned<String>, what: &str) -> Result<String, Reported> {
        if is_waf_name(value.get_ref()) {
            Ok(value.get_ref().clone())
        } else {
            Err(self.error(
                value.span(),
                format!(
                    "{what} `{}` is not a valid WAF name: use 1 to 128 letters, digits, `_` or `-`",
                    value.get_ref()
                ),
            ))
        }
    }

    /// Every range of the list, each bad one reported.
    fn cidrs(&self, list: &[Spanned<String>], what: &str) -> Result<Vec<IpNet>, Reported> {
        let parsed: Vec<_> = list
            .iter()
            .map(|v| {
                cidr::parse(v.get_ref()).map_err(|e| self.error(v.span(), format!("{what}: {e}")))
            })
            .collect();
        parsed.into_iter().collect()
    }

    /// Checks every part, so that all mistakes are reported at once; `Err` when any was found.
    fn validate(&self, raw: RawConfig) -> Result<Config, Reported> {
        let scope = *raw.scope.get_ref();
        let region = self.region(raw.region.as_ref(), scope);
        let home = self.home_country(raw.home_country.as_ref());
        let ip_set_groups = self.groups(&raw.ip_set_groups);
        let group_names: Vec<&str> = raw
            .ip_set_groups
            .iter()
            .map(|g| g.name.get_ref().as_str())
            .collect();
        let home_country = raw.home_country.as_ref().map(|c| c.get_ref().as_str());
        let web_acls = self.web_acls(&raw.web_acls, &group_names, home_country);
        let guardrails = self.guardrails(raw.guardrails);
        let athena = raw.athena.map(|a| self.athena(a)).transpose();
        let allowlist = self.cidrs(&raw.allowlist, "allowlist");
        region?;
        home?;
        Ok(Config {
            path: self.path.to_owned(),
            sha256: sha256_hex(self.text.as_bytes()),
            region: raw.region.map(Spanned::into_inner),
            scope,
            home_country: raw.home_country.map(Spanned::into_inner),
            ledger: raw.ledger.unwrap_or_else(|| PathBuf::from(DEFAULT_LEDGER)),
            policies: raw
                .policies
                .unwrap_or_else(|| PathBuf::from(DEFAULT_POLICIES)),
            allowlist: allowlist?,
            ip_set_groups: ip_set_groups?,
            web_acls: web_acls?,
            guardrails: guardrails?,
            athena: athena?,
            origin: raw.origin,
        })
    }

    fn region(&self, region: Option<&Spanned<String>>, scope: Scope) -> Result<(), Reported> {
        if let Some(region) = region {
            let r = region.get_ref();
            let looks_valid = r.split('-').count() >= 3
                && r.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && r.ends_with(|c: char| c.is_ascii_digit());
            if !looks_valid {
                return Err(self.error(
                    region.span(),
                    format!("region `{r}` is not an AWS region name (like `ap-northeast-1`)"),
                ));
            }
            if scope == Scope::Cloudfront && r != CLOUDFRONT_REGION {
                return Err(self.error(
                    region.span(),
                    format!(
                        "region `{r}` with scope `CLOUDFRONT`: CloudFront WAF resources live only in \
                         `{CLOUDFRONT_REGION}`; remove `region` or set it to `{CLOUDFRONT_REGION}`"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn home_country(&self, country: Option<&Spanned<String>>) -> Result<(), Reported> {
        if let Some(country) = country {
            let c = country.get_ref();
            if c.len() != 2 || !c.chars().all(|ch| ch.is_ascii_uppercase()) {
                return Err(self.error(
                    country.span(),
                    format!(
                        "home_country `{c}` is not an ISO 3166 alpha-2 code (two capital letters, like `JP`)"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Database and table names go into SQL text unquoted, so they must be plain identifiers.
    fn athena(&self, raw: Spanned<AthenaConfig>) -> Result<AthenaConfig, Reported> {
        let span = raw.span();
        let a = raw.into_inner();
        if let Some(kind) = &a.origin_kind
            && !["alb", "cloudfront"].contains(&kind.as_str())
        {
            return Err(self.error(
                span,
                format!("athena origin_kind `{kind}` is not `alb` or `cloudfront`"),
            ));
        }
        let names = [("database", &a.database), ("table", &a.table)];
        let rollup = a.rollup.iter().map(|r| ("rollup", r));
        let origin = a.origin_table.iter().map(|t| ("origin_table", t));
        for (what, name) in names.into_iter().chain(rollup).chain(origin) {
            if let Err(e) = crate::model::athena::check_name(name) {
                return Err(self.error(span.clone(), format!("athena {what} {e}")));
            }
        }
        if let Some(location) = &a.output_location
            && !location.starts_with("s3://")
        {
            return Err(self.error(
                span,
                format!("athena output_location `{location}` is not an `s3://` URL"),
            ));
        }
        Ok(a)
    }

    /// Every group; each bad one is reported and left out.
    fn groups(&self, raw: &[RawGroup]) -> Result<Vec<IpSetGroup>, Reported> {
        let mut group_names = BTreeSet::new();
        let mut set_names = BTreeSet::new();
        let groups: Vec<_> = raw
            .iter()
            .map(|g| self.group(g, &mut group_names, &mut set_names))
            .collect();
        groups.into_iter().collect()
    }

    fn group(
        &self,
        g: &RawGroup,
        group_names: &mut BTreeSet<String>,
        set_names: &mut BTreeSet<String>,
    ) -> Result<IpSetGroup, Reported> {
        let name = self.name(&g.name, "ip_set_group name")?;
        if !group_names.insert(name.clone()) {
            return Err(self.error(
                g.name.span(),
                format!("ip_set_group `{name}` is defined twice"),
            ));
        }
        let mut owned_set = |value: &Spanned<String>| -> Result<String, Reported> {
            let set = self.name(value, "IP set name")?;
            let mut names = vec![set.clone()];
            if g.rollover {
                names.push(format!("{set}{ROLLOVER_SUFFIX}"));
            }
            for n in names {
                if !is_waf_name(&n) {
                    return Err(self.error(
                        value.span(),
                        format!(
                            "IP set name `{n}` (the rollover set) is longer than 128 characters"
                        ),
                    ));
                }
                if !set_names.insert(n.clone()) {
                    return Err(self.error(
                        value.span(),
                        format!("IP set name `{n}` is used by two groups or versions; each set holds one"),
                    ));
                }
            }
            Ok(set)
        };
        let ipv4_set_name = owned_set(&g.ipv4_set_name)?;
        let ipv6_set_name = owned_set(&g.ipv6_set_name)?;
        let description = match &g.description {
            Some(d) => {
                let text = d.get_ref();
                if text.is_empty()
                    || text.len() > 256 - DESCRIPTION_STAMP_MAX
                    || !is_waf_description(text)
                {
                    return Err(self.error(
                        d.span(),
                        format!(
                            "description `{text}` must be 1 to {} characters of letters, digits, spaces \
                             and `_+=:#@/-,.` (waftune adds its stamp after it)",
                            256 - DESCRIPTION_STAMP_MAX
                        ),
                    ));
                }
                text.clone()
            }
            None => format!("Managed by waftune, group {name}"),
        };
        let mut tags = BTreeMap::new();
        for (k, v) in &g.tags {
            let (key, value) = (k.get_ref(), v.get_ref());
            if key == MANAGED_TAG.0 || key == GROUP_TAG {
                return Err(self.error(
                    k.span(),
                    format!("tag `{key}` is set by waftune itself; choose another key"),
                ));
            }
            if key.is_empty() || key.len() > 128 || value.len() > 256 {
                return Err(self.error(
                    k.span(),
                    format!("tag `{key}`: keys are 1 to 128 characters and values at most 256"),
                ));
            }
            tags.insert(key.clone(), value.clone());
        }
        Ok(IpSetGroup {
            name,
            ipv4_set_name,
            ipv6_set_name,
            description,
            tags,
            rollover: g.rollover,
        })
    }

    /// Every web ACL; each bad rule is reported and the others still checked.
    fn web_acls(
        &self,
        raw: &[RawWebAcl],
        groups: &[&str],
        home_country: Option<&str>,
    ) -> Result<Vec<WebAclConfig>, Reported> {
        let mut acl_names = BTreeSet::new();
        let acls: Vec<_> = raw
            .iter()
            .map(|acl| self.web_acl(acl, &mut acl_names, groups, home_country))
            .collect();
        acls.into_iter().collect()
    }

    fn web_acl(
        &self,
        acl: &RawWebAcl,
        acl_names: &mut BTreeSet<String>,
        groups: &[&str],
        home_country: Option<&str>,
    ) -> Result<WebAclConfig, Reported> {
        let name = self.name(&acl.name, "web_acl name").and_then(|name| {
            if acl_names.insert(name.clone()) {
                Ok(name)
            } else {
                Err(self.error(
                    acl.name.span(),
                    format!("web_acl `{name}` is listed twice; put all its rules in one block"),
                ))
            }
        });
        let acl_name = acl.name.get_ref();
        let mut seen = AclSeen::default();
        let rules: Vec<_> = acl
            .rules
            .iter()
            .map(|r| {
                let head = self.rule_head(acl_name, &mut seen, r.head())?;
                let group = r.group.get_ref();
                if !groups.contains(&group.as_str()) {
                    return Err(self.report(
                        r.group.span(),
                        format!(
                            "rule `{}` uses group `{group}`, which no [[ip_set_group]] defines",
                            head.name
                        ),
                        closest(group, groups).map(|k| format!("did you mean `{k}`?")),
                    ));
                }
                Ok(ManagedRuleConfig {
                    name: head.name,
                    group: group.clone(),
                    priority: head.priority,
                    action: head.action,
                    metric_name: head.metric_name,
                })
            })
            .collect();
        let rate_rules: Vec<_> = acl
            .rate_rules
            .iter()
            .map(|r| {
                let head = self.rule_head(acl_name, &mut seen, r.head())?;
                self.rate_rule(r, head, home_country)
            })
            .collect();
        let asn_rules: Vec<_> = acl
            .asn_rules
            .iter()
            .map(|r| {
                let head = self.rule_head(acl_name, &mut seen, r.head())?;
                self.asn_rule(r, head)
            })
            .collect();
        Ok(WebAclConfig {
            name: name?,
            rules: rules.into_iter().collect::<Result<_, _>>()?,
            rate_rules: rate_rules.into_iter().collect::<Result<_, _>>()?,
            asn_rules: asn_rules.into_iter().collect::<Result<_, _>>()?,
        })
    }

    /// Checks what every managed rule has (name, priority, metric, action and response), each name
    /// and priority once per web ACL.
    fn rule_head(
        &self,
        acl: &str,
        seen: &mut AclSeen,
        r: RawHead<'_>,
    ) -> Result<RuleHead, Reported> {
        let rule_name = self.name(r.name, "rule name")?;
        if !seen.names.insert(rule_name.clone()) {
            return Err(self.error(
                r.name.span(),
                format!("rule `{rule_name}` appears twice in web_acl `{acl}`"),
            ));
        }
        let priority = *r.priority.get_ref();
        let priority = i32::try_from(priority)
            .ok()
            .filter(|p| *p >= 0)
            .ok_or_else(|| {
                self.error(
                    r.priority.span(),
                    format!("priority `{priority}` must be between 0 and {}", i32::MAX),
                )
            })?;
        if let Some(other) = seen.priorities.insert(priority, rule_name.clone()) {
            return Err(self.error(
                r.priority.span(),
                format!("priority `{priority}` is also used by rule `{other}`; WAF needs distinct priorities"),
            ));
        }
        let metric_name = match r.metric_name {
            Some(m) => {
                let valid = (1..=128).contains(&m.get_ref().len())
                    && m.get_ref()
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-#:./".contains(c));
                if !valid {
                    return Err(self.error(
                        m.span(),
                        format!(
                            "metric_name `{}` must be 1 to 128 letters, digits or `_-#:./`",
                            m.get_ref()
                        ),
                    ));
                }
                m.get_ref().clone()
            }
            None => rule_name.clone(),
        };
        let action = match (*r.action.get_ref(), r.response) {
            (RawAction::Count, Some(resp)) => {
                return Err(self.error(
                    resp.span(),
                    format!("rule `{rule_name}` counts, so it sends no response; remove `response` or use `action = \"block\"`"),
                ));
            }
            (RawAction::Count, None) => RuleActionConfig::Count,
            (RawAction::Block, None) => RuleActionConfig::Block(None),
            (RawAction::Block, Some(resp)) => {
                let response = self.response(resp.get_ref())?;
                if let Some(previous) = seen
                    .body_keys
                    .insert(response.body_key.clone(), response.clone())
                    && previous != response
                {
                    return Err(self.error(
                        resp.get_ref().body_key.span(),
                        format!(
                            "body_key `{}` is used with two different bodies in web_acl `{acl}`",
                            response.body_key
                        ),
                    ));
                }
                RuleActionConfig::Block(Some(response))
            }
        };
        Ok(RuleHead {
            name: rule_name,
            priority,
            action,
            metric_name,
        })
    }

    fn rate_rule(
        &self,
        r: &RawRateRule,
        head: RuleHead,
        home_country: Option<&str>,
    ) -> Result<RateRuleConfig, Reported> {
        let rule = &head.name;
        let limit = match r.limit.get_ref() {
            RawLimit::Number(n)
                if u64::try_from(*n)
                    .is_ok_and(|n| (MIN_RATE_LIMIT..=MAX_RATE_LIMIT).contains(&n)) =>
            {
                if let Some(h) = r.headroom.as_ref().or(r.percentile.as_ref()) {
                    return Err(self.error(
                        h.span(),
                        format!("rate rule `{rule}`: `headroom` and `percentile` only apply to `limit = \"recommended\"`"),
                    ));
                }
                RateLimit::Fixed(n.unsigned_abs())
            }
            RawLimit::Number(n) => {
                return Err(self.error(
                    r.limit.span(),
                    format!("rate rule `{rule}`: limit `{n}` must be between {MIN_RATE_LIMIT} and {MAX_RATE_LIMIT} (WAF's range)"),
                ));
            }
            RawLimit::Word(w) if w == "recommended" => {
                let defaults = Method::default();
                let method = Method::new(
                    r.percentile
                        .as_ref()
                        .map_or(defaults.percentile, |p| *p.get_ref()),
                    r.headroom
                        .as_ref()
                        .map_or(defaults.headroom, |h| *h.get_ref()),
                )
                .map_err(|e| {
                    let at = r
                        .headroom
                        .as_ref()
                        .or(r.percentile.as_ref())
                        .map_or(r.limit.span(), Spanned::span);
                    self.error(at, format!("rate rule `{rule}`: {e}"))
                })?;
                RateLimit::Recommended(method)
            }
            RawLimit::Word(w) => {
                return Err(self.error(
                    r.limit.span(),
                    format!(
                        "rate rule `{rule}`: limit `{w}` is neither a number nor `recommended`"
                    ),
                ));
            }
        };
        let window = r.window.as_ref().map_or(Ok(Window::M5), |w| {
            rate::parse_window(w.get_ref())
                .map_err(|e| self.error(w.span(), format!("rate rule `{rule}`: {e}")))
        })?;
        let key = match (
            r.key.as_ref().map(|k| k.get_ref().as_str()),
            &r.forwarded_header,
        ) {
            (None | Some("ip"), None) => RateKey::Ip,
            (Some("forwarded_ip"), header) => {
                let header = header
                    .as_ref()
                    .map_or("X-Forwarded-For", |h| h.get_ref().as_str());
                if header.is_empty()
                    || !header
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-')
                {
                    let at = r
                        .forwarded_header
                        .as_ref()
                        .map_or(r.limit.span(), Spanned::span);
                    return Err(self.error(
                        at,
                        format!(
                            "rate rule `{rule}`: forwarded_header `{header}` is not a header name"
                        ),
                    ));
                }
                RateKey::ForwardedIp {
                    header: header.to_owned(),
                    fallback_match: r.forwarded_fallback_match.unwrap_or(false),
                }
            }
            (None | Some("ip"), Some(h)) => {
                return Err(self.error(
                    h.span(),
                    format!(
                        "rate rule `{rule}`: `forwarded_header` needs `key = \"forwarded_ip\"`"
                    ),
                ));
            }
            (Some(other), _) => {
                let at = r.key.as_ref().map_or(r.limit.span(), Spanned::span);
                return Err(self.error(
                    at,
                    format!("rate rule `{rule}`: key `{other}` must be `ip` or `forwarded_ip`"),
                ));
            }
        };
        let mut scopes = Vec::with_capacity(r.scope.len());
        for text in &r.scope {
            let scope = rate::Scope::parse(text.get_ref())
                .map_err(|e| self.error(text.span(), format!("rate rule `{rule}`: {e}")))?;
            scopes.push(scope);
        }
        let scope_down = rate::scope_down(&scopes, home_country).map_err(|e| {
            let at = r.scope.first().map_or(r.limit.span(), Spanned::span);
            self.error(at, format!("rate rule `{rule}`: {e}"))
        })?;
        Ok(RateRuleConfig {
            name: head.name,
            priority: head.priority,
            limit,
            window,
            key,
            scope: scopes,
            scope_down,
            action: head.action,
            metric_name: head.metric_name,
            action_at: r.action.span(),
        })
    }

    fn asn_rule(&self, r: &RawAsnRule, head: RuleHead) -> Result<AsnRuleConfig, Reported> {
        let rule = &head.name;
        let list = self.name(&r.list, &format!("asn rule `{rule}`: list"))?;
        let rate = match &r.limit {
            None => {
                if let Some(extra) = r.window.as_ref().or(r.key.as_ref()) {
                    return Err(self.error(
                        extra.span(),
                        format!("asn rule `{rule}`: `window` and `key` only apply with a `limit` (a rate-based ASN rule)"),
                    ));
                }
                None
            }
            Some(limit) => {
                let n = *limit.get_ref();
                let n = u64::try_from(n)
                    .ok()
                    .filter(|n| (MIN_RATE_LIMIT..=MAX_RATE_LIMIT).contains(n))
                    .ok_or_else(|| {
                        self.error(
                            limit.span(),
                            format!("asn rule `{rule}`: limit `{n}` must be between {MIN_RATE_LIMIT} and {MAX_RATE_LIMIT} (WAF's range)"),
                        )
                    })?;
                let window = r.window.as_ref().map_or(Ok(Window::M5), |w| {
                    rate::parse_window(w.get_ref())
                        .map_err(|e| self.error(w.span(), format!("asn rule `{rule}`: {e}")))
                })?;
                let key = match r.key.as_ref().map(|k| (k.get_ref().as_str(), k.span())) {
                    None | Some(("ip", _)) => AsnRateKey::Ip,
                    Some(("asn", _)) => AsnRateKey::Asn,
                    Some((other, at)) => {
                        return Err(self.error(
                            at,
                            format!("asn rule `{rule}`: key `{other}` must be `ip` (each address) or `asn` (each ASN as a whole)"),
                        ));
                    }
                };
                Some(AsnRate {
                    limit: n,
                    window,
                    key,
                })
            }
        };
        Ok(AsnRuleConfig {
            name: head.name,
            list,
            priority: head.priority,
            rate,
            action: head.action,
            metric_name: head.metric_name,
        })
    }

    fn response(&self, raw: &RawResponse) -> Result<CustomResponse, Reported> {
        let code = *raw.code.get_ref();
        if !(200..=599).contains(&code) {
            return Err(self.error(
                raw.code.span(),
                format!("response code `{code}` must be between 200 and 599 (403 is usual)"),
            ));
        }
        let body_key = self.name(&raw.body_key, "body_key")?;
        let body = raw.body.get_ref();
        if body.is_empty() || body.len() > 10_240 {
            return Err(self.error(
                raw.body.span(),
                format!(
                    "response body must be 1 to 10,240 bytes (it is {} bytes)",
                    body.len()
                ),
            ));
        }
        Ok(CustomResponse {
            code,
            body_key,
            content_type: raw.content_type,
            body: body.clone(),
        })
    }

    fn guardrails(&self, raw: RawGuardrails) -> Result<Guardrails, Reported> {
        let defaults = Guardrails::default();
        let prefix = |value: &Option<Spanned<u8>>, max: u8, default: u8| match value {
            None => Ok(default),
            Some(v) if (1..=max).contains(v.get_ref()) => Ok(*v.get_ref()),
            Some(v) => Err(self.error(
                v.span(),
                format!(
                    "prefix length `{}` must be between 1 and {max}",
                    v.get_ref()
                ),
            )),
        };
        let min_prefix_v4 = prefix(&raw.min_prefix_v4, 32, defaults.min_prefix_v4);
        let min_prefix_v6 = prefix(&raw.min_prefix_v6, 128, defaults.min_prefix_v6);
        let allow_broad = self.cidrs(&raw.allow_broad, "guardrails.allow_broad");
        Ok(Guardrails {
            max_additions: raw.max_additions.unwrap_or(defaults.max_additions),
            max_removals: raw.max_removals.unwrap_or(defaults.max_removals),
            min_prefix_v4: min_prefix_v4?,
            min_prefix_v6: min_prefix_v6?,
            allow_broad: allow_broad?,
            write_interval_ms: raw.write_interval_ms.unwrap_or(defaults.write_interval_ms),
        })
    }
}

/// serde's message, with "did you mean" as help for an unknown field or variant.
fn with_hint(message: &str) -> (String, Option<String>) {
    let message = message.trim_end();
    let is_unknown =
        message.starts_with("unknown field `") || message.starts_with("unknown variant `");
    // serde writes: unknown field `regoin`, expected one of `region`, `scope`, ...
    let quoted: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    let help = match quoted.split_first() {
        Some((given, expected)) if is_unknown => {
            closest(given, expected).map(|best| format!("did you mean `{best}`?"))
        }
        _ => None,
    };
    (message.to_owned(), help)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../examples/waftune.toml");

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("waftune.toml"))
    }

    /// Every diagnostic, as the command line prints them.
    fn err(text: &str) -> String {
        match parse(text).unwrap_err() {
            ConfigError::Invalid(d) => d
                .list
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
            e => e.to_string(),
        }
    }

    #[test]
    fn example_parses() {
        let c = parse(EXAMPLE).unwrap();
        assert_eq!(c.scope, Scope::Regional);
        assert_eq!(c.home_country.as_deref(), Some("JP"));
        assert_eq!(c.ledger_path(), PathBuf::from("state/blocklist.toml"));
        assert_eq!(c.ip_set_groups[0].name, "blocklist");
        let rule = &c.web_acls[0].rules[0];
        assert_eq!(rule.name, "waftune-blocklist");
        assert!(matches!(&rule.action, RuleActionConfig::Block(Some(r)) if r.code == 403));
        assert_eq!(c.guardrails.min_prefix_v4, 16);
        assert_eq!(c.sha256, sha256_hex(EXAMPLE.as_bytes()));
    }

    const ACL: &str = "home_country = \"JP\"\nscope = \"REGIONAL\"\n[[web_acl]]\nname = \"shop\"\n";

    fn rate_rule(body: &str) -> String {
        format!(
            "{ACL}[[web_acl.rate_rule]]\nname = \"rate\"\npriority = 3\naction = \"count\"\n{body}"
        )
    }

    #[test]
    fn rate_rules_parse_into_waf_statements() {
        let c = parse(&rate_rule(
            "limit = 2000\nwindow = \"120\"\nkey = \"forwarded_ip\"\n\
             scope = [\"method:post\", \"label:awswaf:managed:aws:bot-control:bot:*\"]\n",
        ))
        .unwrap();
        let r = &c.web_acls[0].rate_rules[0];
        assert_eq!(r.limit, RateLimit::Fixed(2000));
        assert_eq!(r.window, Window::M2);
        assert_eq!(
            r.key,
            RateKey::ForwardedIp {
                header: "X-Forwarded-For".into(),
                fallback_match: false
            }
        );
        assert_eq!(
            r.scope_down,
            [
                ScopeDown::Method("POST".into()),
                ScopeDown::Label {
                    key: "awswaf:managed:aws:bot-control:bot:".into(),
                    namespace: true,
                    negate: false
                }
            ]
        );
        assert_eq!(r.metric_name, "rate");

        let c = parse(&rate_rule("limit = \"recommended\"\nheadroom = 2.0\n")).unwrap();
        assert!(matches!(
            c.web_acls[0].rate_rules[0].limit,
            RateLimit::Recommended(m) if m.headroom == 2.0 && m.percentile == 95.0
        ));
    }

    #[test]
    fn bad_rate_rules_name_the_value() {
        for (body, message) in [
            (
                "limit = 5\n",
                "waftune.toml:9:9: error: rate rule `rate`: limit `5` must be between 10 and 2000000000",
            ),
            (
                "limit = \"auto\"\n",
                "limit `auto` is neither a number nor `recommended`",
            ),
            (
                "limit = 100\nheadroom = 2.0\n",
                "`headroom` and `percentile` only apply to `limit = \"recommended\"`",
            ),
            (
                "limit = \"recommended\"\nheadroom = 0.5\n",
                "headroom `0.5` must be at least 1",
            ),
            (
                "limit = 100\nwindow = \"3m\"\n",
                "`3m` is not a WAF window; use 1m, 2m, 5m or 10m",
            ),
            (
                "limit = 100\nkey = \"cookie\"\n",
                "key `cookie` must be `ip` or `forwarded_ip`",
            ),
            (
                "limit = 100\nscope = [\"label:awswaf:bot*\"]\n",
                "label pattern `awswaf:bot*`",
            ),
            (
                "limit = 100\nscope = [\"region:JP\"]\n",
                "unknown scope `region:JP`",
            ),
            ("limit = 100\nlimti = 3\n", "unknown field `limti`"),
        ] {
            let e = err(&rate_rule(body));
            assert!(e.contains(message), "{body}: {e}");
        }
        let no_home = rate_rule("limit = 100\nscope = [\"overseas\"]\n")
            .replace("home_country = \"JP\"\n", "");
        assert!(err(&no_home).contains("scope `overseas` needs a home country"));
        // Names and priorities are shared with the IP-set rules of the same web ACL.
        let clash = format!(
            "{}[[web_acl.rule]]\nname = \"rate\"\ngroup = \"g\"\npriority = 4\naction = \"count\"\n",
            rate_rule("limit = 100\n")
        );
        let clash = format!(
            "{clash}[[ip_set_group]]\nname = \"g\"\nipv4_set_name = \"a\"\nipv6_set_name = \"b\"\n"
        );
        assert!(
            err(&clash).contains("rule `rate` appears twice in web_acl `shop`"),
            "{}",
            err(&clash)
        );
    }

    fn asn_rule(body: &str) -> String {
        format!(
            "{ACL}[[web_acl.asn_rule]]\nname = \"asn\"\nlist = \"hosting\"\npriority = 2\n{body}"
        )
    }

    #[test]
    fn asn_rules_parse_as_match_or_rate() {
        let c = parse(&asn_rule("action = \"block\"\n")).unwrap();
        let r = &c.web_acls[0].asn_rules[0];
        assert_eq!((r.list.as_str(), r.priority, r.rate), ("hosting", 2, None));
        assert_eq!(r.action, RuleActionConfig::Block(None));
        assert_eq!(c.asn_lists(), ["hosting"]);
        let c = parse(&asn_rule(
            "action = \"count\"\nlimit = 300\nwindow = \"2m\"\nkey = \"asn\"\n",
        ))
        .unwrap();
        assert_eq!(
            c.web_acls[0].asn_rules[0].rate,
            Some(AsnRate {
                limit: 300,
                window: Window::M2,
                key: AsnRateKey::Asn
            })
        );
        let c = parse(&asn_rule("action = \"count\"\nlimit = 300\n")).unwrap();
        assert_eq!(c.web_acls[0].asn_rules[0].rate.unwrap().key, AsnRateKey::Ip);
        // Without ASN rules nothing changes.
        assert!(parse(EXAMPLE).unwrap().asn_lists().is_empty());
    }

    #[test]
    fn bad_asn_rules_name_the_value() {
        for (body, message) in [
            (
                "action = \"block\"\nlimit = 5\n",
                "waftune.toml:10:9: error: asn rule `asn`: limit `5` must be between 10 and 2000000000",
            ),
            (
                "action = \"block\"\nwindow = \"5m\"\n",
                "asn rule `asn`: `window` and `key` only apply with a `limit`",
            ),
            (
                "action = \"block\"\nlimit = 100\nkey = \"country\"\n",
                "asn rule `asn`: key `country` must be `ip` (each address) or `asn` (each ASN as a whole)",
            ),
            ("action = \"block\"\nasns = [1]\n", "unknown field `asns`"),
        ] {
            let e = err(&asn_rule(body));
            assert!(e.contains(message), "{body}: {e}");
        }
        let e = err(&asn_rule("action = \"block\"\n").replace("\"hosting\"", "\"host ing\""));
        assert!(
            e.contains("asn rule `asn`: list `host ing` is not a valid WAF name"),
            "{e}"
        );
        // Names and priorities are shared with the web ACL's other rules.
        let clash = format!(
            "{}[[web_acl.rate_rule]]\nname = \"r\"\npriority = 2\nlimit = 100\naction = \"count\"\n",
            asn_rule("action = \"block\"\n")
        );
        assert!(
            err(&clash).contains("priority `2` is also used by rule `r`"),
            "{}",
            err(&clash)
        );
    }

    #[test]
    fn minimal_config_takes_defaults() {
        let c = parse("scope = \"REGIONAL\"\n").unwrap();
        assert_eq!(c.ledger, PathBuf::from(DEFAULT_LEDGER));
        assert_eq!(c.guardrails, Guardrails::default());
        assert_eq!(c.effective_region(), None);
    }

    #[test]
    fn athena_section_is_checked() {
        let c = parse(
            "scope = \"REGIONAL\"\n[athena]\ndatabase = \"waf\"\ntable = \"shop_logs\"\n\
             output_location = \"s3://athena-results/waftune/\"\nlayout = \"date\"\n",
        )
        .unwrap();
        let a = c.athena.unwrap();
        assert_eq!(a.layout, Layout::Date);
        assert_eq!(a.workgroup, None);
        let msg = err("scope = \"REGIONAL\"\n[athena]\ndatabase = \"waf\"\ntable = \"x; DROP\"\n");
        assert!(
            msg.contains("athena table `x; DROP` is not a plain Athena name"),
            "{msg}"
        );
        let msg = err("scope = \"REGIONAL\"\n[athena]\ndatabase = \"waf\"\ntable = \"select\"\n");
        assert!(msg.ends_with("athena table `select` is a reserved word in Athena SQL: choose another name, such as `select_logs`"), "{msg}");
        let msg = err("scope = \"REGIONAL\"\n[athena]\ndatabase = \"\"\ntable = \"t\"\n");
        assert!(msg.ends_with("athena database is empty"), "{msg}");
        let msg = err("scope = \"REGIONAL\"\n[athena]\ndatabase = \"w\"\ntabel = \"t\"\n");
        assert!(msg.contains("unknown field `tabel`"), "{msg}");
        assert!(parse("scope = \"REGIONAL\"\n").unwrap().athena.is_none());
    }

    #[test]
    fn ledger_is_relative_to_the_config() {
        let c = Config::parse(
            "scope = \"REGIONAL\"\nledger = \"b.toml\"\n",
            Path::new("/repo/waf/waftune.toml"),
        )
        .unwrap();
        assert_eq!(c.ledger_path(), PathBuf::from("/repo/waf/b.toml"));
        assert_eq!(c.policies_path(), PathBuf::from("/repo/waf/policies"));
        let c = Config::parse(
            "scope = \"REGIONAL\"\npolicies = \"../shared/policies\"\n",
            Path::new("/repo/waf/waftune.toml"),
        )
        .unwrap();
        assert_eq!(
            c.policies_path(),
            PathBuf::from("/repo/waf/../shared/policies")
        );
        let c = Config::parse("scope = \"REGIONAL\"\n", Path::new("waftune.toml")).unwrap();
        assert_eq!(c.policies_path(), PathBuf::from("policies"));
    }

    #[test]
    fn found_here_or_in_the_nearest_parent() {
        let dir = tempfile::tempdir().unwrap();
        let (repo, deep) = (dir.path().join("repo"), dir.path().join("repo/a/b"));
        std::fs::create_dir_all(&deep).unwrap();
        let nowhere = Config::find(None, &deep).unwrap_err().to_string();
        assert!(nowhere.starts_with("no `waftune.toml` in `"), "{nowhere}");
        assert!(
            nowhere.ends_with("pass `-c FILE` or set `WAFTUNE_CONFIG`"),
            "{nowhere}"
        );
        std::fs::write(repo.join(DEFAULT_PATH), "").unwrap();
        assert_eq!(Config::find(None, &deep).unwrap(), repo.join(DEFAULT_PATH));
        // In the current directory it is named as the user would name it.
        assert_eq!(
            Config::find(None, &repo).unwrap(),
            PathBuf::from(DEFAULT_PATH)
        );
        // A directory named like the file is not a configuration.
        std::fs::create_dir(deep.join(DEFAULT_PATH)).unwrap();
        assert_eq!(Config::find(None, &deep).unwrap(), repo.join(DEFAULT_PATH));
        // `-c` (or `WAFTUNE_CONFIG`) wins, even when it does not exist: loading then says so.
        let given = Path::new("elsewhere.toml");
        assert_eq!(Config::find(Some(given), &deep).unwrap(), given);
    }

    #[test]
    fn every_mistake_is_reported_at_once() {
        let msg = err("scope = \"REGIONAL\"\nhome_country = \"jp\"\n\
             [[ip_set_group]]\nname = \"bl\"\nipv4_set_name = \"bl v4\"\nipv6_set_name = \"bl-v6\"\n\
             [guardrails]\nmin_prefix_v4 = 40\nallow_broad = [\"x\"]\n");
        let at: Vec<&str> = msg
            .lines()
            .map(|l| l.split(": error: ").next().unwrap())
            .collect();
        assert_eq!(
            at,
            [
                "waftune.toml:2:16",
                "waftune.toml:5:17",
                "waftune.toml:8:17",
                "waftune.toml:9:16"
            ],
            "{msg}"
        );
    }

    #[test]
    fn misspelled_key_gets_a_hint() {
        let msg = err("regoin = \"us-east-1\"\nscope = \"REGIONAL\"\n");
        assert!(
            msg.starts_with("waftune.toml:1:1: error: unknown field `regoin`"),
            "{msg}"
        );
        assert!(msg.ends_with("did you mean `region`?"), "{msg}");
        let msg = err("scope = \"REGIONL\"\n");
        assert!(
            msg.starts_with("waftune.toml:1:9: error: unknown variant `REGIONL`"),
            "{msg}"
        );
        assert!(msg.ends_with("did you mean `REGIONAL`?"), "{msg}");
        let msg = err("scope = \"REGIONAL\"\n[guardrails]\nmax_addition = 5\n");
        assert!(msg.starts_with("waftune.toml:3:1: error: "), "{msg}");
        assert!(msg.ends_with("did you mean `max_additions`?"), "{msg}");
    }

    #[test]
    fn cloudfront_forces_us_east_1() {
        let c = parse("scope = \"CLOUDFRONT\"\n").unwrap();
        assert_eq!(c.effective_region(), Some("us-east-1"));
        assert_eq!(
            err("scope = \"CLOUDFRONT\"\nregion = \"eu-west-1\"\n"),
            "waftune.toml:2:10: error: region `eu-west-1` with scope `CLOUDFRONT`: CloudFront WAF resources \
             live only in `us-east-1`; remove `region` or set it to `us-east-1`"
        );
    }

    #[test]
    fn bad_values_name_line_column_and_value() {
        assert_eq!(
            err("scope = \"REGIONAL\"\nallowlist = [\"10.0.0.0/8\", \"192.0.2.1/24\"]\n"),
            "waftune.toml:2:28: error: allowlist: `192.0.2.1/24` is not a network address; did you mean `192.0.2.0/24`?"
        );
        assert_eq!(
            err("scope = \"REGIONAL\"\nhome_country = \"jp\"\n"),
            "waftune.toml:2:16: error: home_country `jp` is not an ISO 3166 alpha-2 code (two capital letters, like `JP`)"
        );
        assert_eq!(
            err("scope = \"REGIONAL\"\n[guardrails]\nmin_prefix_v4 = 40\n"),
            "waftune.toml:3:17: error: prefix length `40` must be between 1 and 32"
        );
        assert_eq!(
            err("scope = \"REGIONAL\"\n[guardrails]\nallow_broad = [\"0.0.0.0/0\"]\n"),
            "waftune.toml:3:16: error: guardrails.allow_broad: `0.0.0.0/0` is a /0 range, which would match every client; WAF refuses it"
        );
    }

    const GROUP: &str = "scope = \"REGIONAL\"\n\
        [[ip_set_group]]\nname = \"bl\"\nipv4_set_name = \"bl-v4\"\nipv6_set_name = \"bl-v6\"\n";

    #[test]
    fn groups_and_rules_are_checked() {
        assert_eq!(
            err(&GROUP.replace("bl-v6", "bl-v4")),
            "waftune.toml:5:17: error: IP set name `bl-v4` is used by two groups or versions; each set holds one"
        );
        assert_eq!(
            err(&GROUP.replace("\"bl-v4\"", "\"bl v4\"")),
            "waftune.toml:4:17: error: IP set name `bl v4` is not a valid WAF name: use 1 to 128 letters, digits, `_` or `-`"
        );
        let rule = |extra: &str| {
            format!(
                "{GROUP}[[web_acl]]\nname = \"shop\"\n[[web_acl.rule]]\nname = \"r\"\ngroup = \"bl\"\npriority = 1\naction = \"block\"\n{extra}"
            )
        };
        let c = parse(&rule("")).unwrap();
        assert_eq!(c.web_acls[0].rules[0].metric_name, "r");
        assert_eq!(c.web_acls[0].rules[0].action, RuleActionConfig::Block(None));
        assert_eq!(
            err(&rule("").replace("group = \"bl\"", "group = \"bk\"")),
            "waftune.toml:10:9: error: rule `r` uses group `bk`, which no [[ip_set_group]] defines\n  help: did you mean `bl`?"
        );
        assert_eq!(
            err(&rule(
                "[[web_acl.rule]]\nname = \"s\"\ngroup = \"bl\"\npriority = 1\naction = \"count\"\n"
            )),
            "waftune.toml:16:12: error: priority `1` is also used by rule `r`; WAF needs distinct priorities"
        );
        assert_eq!(
            err(&rule(
                "[web_acl.rule.response]\ncode = 99\nbody_key = \"k\"\ncontent_type = \"TEXT_PLAIN\"\nbody = \"no\"\n"
            )),
            "waftune.toml:14:8: error: response code `99` must be between 200 and 599 (403 is usual)"
        );
        let msg = err(&(rule("").replace("\"block\"", "\"count\"")
            + "[web_acl.rule.response]\ncode = 403\nbody_key = \"k\"\ncontent_type = \"TEXT_PLAIN\"\nbody = \"no\"\n"));
        assert!(
            msg.contains("rule `r` counts, so it sends no response"),
            "{msg}"
        );
    }

    #[test]
    fn descriptions_follow_waf_rules() {
        let with = |d: &str| err(&format!("{GROUP}description = \"{d}\"\n"));
        assert_eq!(
            with("Blocked (by waftune)"),
            "waftune.toml:6:15: error: description `Blocked (by waftune)` must be 1 to 200 characters of \
             letters, digits, spaces and `_+=:#@/-,.` (waftune adds its stamp after it)"
        );
        assert!(with(&"x".repeat(201)).contains("must be 1 to 200 characters"));
        let ok = parse(&format!(
            "{GROUP}description = \"Blocked: scanners, 2026\"\n"
        ))
        .unwrap();
        assert_eq!(ok.ip_set_groups[0].description, "Blocked: scanners, 2026");
        assert_eq!(
            parse(GROUP).unwrap().ip_set_groups[0].description,
            "Managed by waftune, group bl"
        );
    }

    #[test]
    fn reserved_tags_are_refused() {
        let msg = err(&format!(
            "{GROUP}[ip_set_group.tags]\nmanaged-by = \"me\"\n"
        ));
        assert_eq!(
            msg,
            "waftune.toml:7:1: error: tag `managed-by` is set by waftune itself; choose another key"
        );
    }

    #[test]
    fn origin_section_sets_forwarded_for_and_refuses_unknown_keys() {
        assert!(!parse(GROUP).unwrap().origin.forwarded_for);
        let on = parse(&format!("{GROUP}[origin]\nforwarded_for = true\n")).unwrap();
        assert!(on.origin.forwarded_for);
        let msg = err(&format!("{GROUP}[origin]\nforwarded = true\n"));
        assert!(msg.contains("unknown field `forwarded`"), "{msg}");
    }
}
