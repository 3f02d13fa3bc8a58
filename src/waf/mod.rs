//! Live WAFv2 state behind a small trait.
//!
//! [`WafApi`] is the handful of WAFv2 calls waftune makes, with lock tokens passed explicitly so that
//! an apply can send exactly the token its plan read. Two implementations: [`aws::AwsWaf`] (the AWS
//! SDK, with write pacing and throttling backoff) and [`snapshot::SnapshotWaf`] (a JSON file saved by
//! `pull`, for offline plans; it refuses writes).
//!
//! Web ACL rules are modelled only as far as waftune needs: a rule with exactly a shape waftune
//! writes (IP set references, a rate-based statement or an ASN match, Block or Count) is parsed into
//! [`IpSetRule`], [`RateRule`] or [`AsnRule`]; every other rule is [`RuleShape::Other`] and only its name,
//! priority and capacity are read. Updates are expressed as a
//! [`WebAclEdit`] (put these rules and response bodies) rather than a whole specification, so the
//! SDK implementation re-sends every other rule and setting exactly as AWS returned it.

pub mod aws;
pub mod capacity;
#[cfg(test)]
pub(crate) mod fake;
pub mod live;
pub mod snapshot;

use std::collections::BTreeMap;
use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::model::acl::Scope;
use crate::model::waf::{IpVersion, RateStatement, ResponseBody, RuleAction};

pub use live::{FetchError, LiveWaf, fetch_live};

/// An IP set as `ListIPSets` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpSetSummary {
    pub name: String,
    pub id: String,
    pub arn: String,
    pub lock_token: String,
}

/// An IP set with its addresses, as `GetIPSet` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpSet {
    pub name: String,
    pub id: String,
    pub arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub version: IpVersion,
    /// As AWS returned them; `plan` validates and canonicalises.
    pub addresses: Vec<String>,
    pub lock_token: String,
}

/// An IP set to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIpSet {
    pub name: String,
    pub description: String,
    pub version: IpVersion,
    pub addresses: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

/// A web ACL as `ListWebACLs` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebAclSummary {
    pub name: String,
    pub id: String,
    pub arn: String,
    pub lock_token: String,
}

/// A web ACL as far as waftune reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebAcl {
    pub name: String,
    pub id: String,
    pub arn: String,
    pub lock_token: String,
    pub rules: Vec<LiveRule>,
    #[serde(default)]
    pub custom_response_bodies: BTreeMap<String, ResponseBody>,
    /// The web ACL's capacity in WCU as `GetWebACL` reports it (AWS counts managed rule groups too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u64>,
}

/// One rule of a web ACL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveRule {
    pub name: String,
    pub priority: i32,
    pub shape: RuleShape,
    /// WCU computed locally from the rule's statement; `None` when that needs AWS (a rule group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wcu: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleShape {
    /// Exactly the shape waftune writes, nothing more.
    IpSetMatch(IpSetRule),
    /// Exactly the rate-based shape waftune writes.
    RateBased(RateRule),
    /// Exactly the ASN match shape waftune writes.
    AsnMatch(AsnRule),
    /// Anything else. The summary is for people (a plan showing the rule waftune will replace);
    /// such rules are never rebuilt from it.
    Other { summary: String },
}

/// A rule matching the union of some IP sets, with a Block or Count action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpSetRule {
    pub set_arns: Vec<String>,
    pub action: RuleAction,
    pub metric_name: String,
    pub sampled_requests: bool,
    pub cloudwatch_metrics: bool,
}

/// A rate-based rule with a Block or Count action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateRule {
    pub statement: RateStatement,
    pub action: RuleAction,
    pub metric_name: String,
    pub sampled_requests: bool,
    pub cloudwatch_metrics: bool,
}

/// A rule matching the connecting address's ASN against a list, with a Block or Count action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsnRule {
    /// 1 to 100 ASNs, sorted.
    pub asns: Vec<u32>,
    pub action: RuleAction,
    pub metric_name: String,
    pub sampled_requests: bool,
    pub cloudwatch_metrics: bool,
}

/// A rule waftune writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManagedRule {
    IpSet(IpSetRule),
    Rate(RateRule),
    Asn(AsnRule),
}

impl RuleShape {
    /// The ASNs a rule in one of waftune's ASN shapes matches (empty for any other rule).
    pub fn asns(&self) -> &[u32] {
        match self {
            RuleShape::AsnMatch(r) => &r.asns,
            RuleShape::RateBased(r) => r.statement.asn_scope(),
            RuleShape::IpSetMatch(_) | RuleShape::Other { .. } => &[],
        }
    }
}

impl ManagedRule {
    /// How the rule reads back from WAF once written.
    pub fn shape(&self) -> RuleShape {
        match self {
            ManagedRule::IpSet(r) => RuleShape::IpSetMatch(r.clone()),
            ManagedRule::Rate(r) => RuleShape::RateBased(r.clone()),
            ManagedRule::Asn(r) => RuleShape::AsnMatch(r.clone()),
        }
    }
}

/// A change to a web ACL: put (add or replace by name) these rules and response bodies, remove the
/// rules named in `remove` (an ASN rule whose list emptied: WAF takes no empty ASN list); everything
/// else in the web ACL is kept as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebAclEdit {
    pub rules: Vec<PutRule>,
    pub bodies: BTreeMap<String, ResponseBody>,
    pub remove: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutRule {
    pub name: String,
    pub priority: i32,
    pub rule: ManagedRule,
}

/// Why a WAF call failed, as far as waftune acts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WafErrorKind {
    /// `WAFOptimisticLockException`: the resource changed after its lock token was read.
    Stale,
    /// `WAFNonexistentItemException`.
    NotFound,
    /// `WAFDuplicateItemException` (moto says `WafV2DuplicateItem`).
    Duplicate,
    /// `WAFAssociatedItemException`: e.g. deleting a set a rule still references.
    StillReferenced,
    /// Throttling, still after backing off.
    Throttled {
        message: String,
    },
    /// `WAFLimitsExceededException`: a resource limit of the account, not retried.
    LimitExceeded {
        message: String,
    },
    /// Not an AWS answer (an HTML page, a 404, no connection), said with the endpoint and a hint.
    Unexpected {
        message: String,
    },
    /// A write on a snapshot file.
    ReadOnly,
    Other {
        code: String,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} `{resource}`: {}", self.describe())]
pub struct WafError {
    pub operation: &'static str,
    pub resource: String,
    pub kind: WafErrorKind,
}

impl WafError {
    fn describe(&self) -> String {
        match &self.kind {
            WafErrorKind::Stale => {
                "it changed since its lock token was read (WAFOptimisticLockException)".into()
            }
            WafErrorKind::NotFound => "it does not exist (WAFNonexistentItemException)".into(),
            WafErrorKind::Duplicate => "a resource with that name already exists".into(),
            WafErrorKind::StillReferenced => {
                "it is still referenced, e.g. by a web ACL rule (WAFAssociatedItemException)".into()
            }
            WafErrorKind::Throttled { message } => {
                format!("throttled, still after backing off: {message}")
            }
            WafErrorKind::LimitExceeded { message } => {
                format!("over a WAF limit of the account (WAFLimitsExceededException): {message}")
            }
            WafErrorKind::Unexpected { message } => message.clone(),
            WafErrorKind::ReadOnly => {
                "a snapshot file is read-only; apply needs the live AWS account".into()
            }
            WafErrorKind::Other { code, message } => format!("{code}: {message}"),
        }
    }
}

/// The WAFv2 calls waftune makes, for one scope and region.
///
/// Writes take the lock token to send: implementations never fetch a fresh one on their own, so a
/// resource changed by someone else fails with [`WafErrorKind::Stale`] instead of being overwritten.
pub trait WafApi {
    fn scope(&self) -> Scope;
    fn region(&self) -> &str;
    /// The account the credentials reach (`None`: not known, e.g. a snapshot of an empty scope).
    fn account(&self) -> impl Future<Output = Result<Option<String>, WafError>> + Send;
    /// Every IP set in the scope (all pages).
    fn list_ip_sets(&self) -> impl Future<Output = Result<Vec<IpSetSummary>, WafError>> + Send;
    fn get_ip_set(
        &self,
        name: &str,
        id: &str,
    ) -> impl Future<Output = Result<IpSet, WafError>> + Send;
    fn create_ip_set(
        &self,
        set: &NewIpSet,
    ) -> impl Future<Output = Result<IpSetSummary, WafError>> + Send;
    /// Replaces description and addresses; returns the next lock token.
    fn update_ip_set(
        &self,
        summary: &IpSetSummary,
        description: &str,
        addresses: &[String],
    ) -> impl Future<Output = Result<String, WafError>> + Send;
    fn delete_ip_set(
        &self,
        summary: &IpSetSummary,
    ) -> impl Future<Output = Result<(), WafError>> + Send;
    /// Every web ACL in the scope (all pages).
    fn list_web_acls(&self) -> impl Future<Output = Result<Vec<WebAclSummary>, WafError>> + Send;
    fn get_web_acl(
        &self,
        name: &str,
        id: &str,
    ) -> impl Future<Output = Result<WebAcl, WafError>> + Send;
    /// Applies `edit` to the web ACL as it is at `summary.lock_token`; returns the next lock token.
    fn update_web_acl(
        &self,
        summary: &WebAclSummary,
        edit: &WebAclEdit,
    ) -> impl Future<Output = Result<String, WafError>> + Send;
}

/// The account id inside an ARN (`arn:aws:wafv2:REGION:ACCOUNT:...`).
pub fn account_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}
