//! WAFv2 value types as waftune writes and reads them, and WAF's limits and names.

use serde::{Deserialize, Serialize};

use crate::model::acl::ContentType;

/// WAF's range for a rate-based rule's `Limit`.
pub const MIN_RATE_LIMIT: u64 = 10;
pub const MAX_RATE_LIMIT: u64 = 2_000_000_000;

/// WAF's limit on addresses (CIDR entries) in one IP set.
pub const MAX_SET_ENTRIES: usize = 10_000;

/// The label AWS Bot Control puts on crawlers whose identity it verified (Googlebot, Bingbot, ...).
pub const VERIFIED_CRAWLER_LABEL: &str = "awswaf:managed:aws:bot-control:bot:verified";

/// WAF's pattern for names of IP sets, web ACLs, rules and body keys: `^[\w-]{1,128}$`.
pub fn is_waf_name(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
}

/// The IP version of a set (a WAF IP set holds one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum IpVersion {
    #[serde(rename = "IPV4")]
    V4,
    #[serde(rename = "IPV6")]
    V6,
}

impl IpVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            IpVersion::V4 => "IPV4",
            IpVersion::V6 => "IPV6",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    Block {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        response: Option<BlockResponse>,
    },
    Count,
}

/// At most `limit` requests per aggregation key in `window_sec`, over the requests its scope-down
/// statements (all of them) match. Changing any of it resets WAF's counters for the rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateStatement {
    pub limit: u64,
    /// 60, 120, 300 or 600.
    pub window_sec: u32,
    pub key: RateKey,
    /// Joined with AND; empty: every request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scope_down: Vec<ScopeDown>,
}

impl RateStatement {
    /// The ASNs of its ASN scope-down (a rate-based ASN rule); empty for other rate rules.
    pub fn asn_scope(&self) -> &[u32] {
        self.scope_down
            .iter()
            .find_map(|d| match d {
                ScopeDown::Asn(asns) => Some(&asns[..]),
                _ => None,
            })
            .unwrap_or_default()
    }
}

/// What a rate-based rule counts requests by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateKey {
    /// The connecting address.
    Ip,
    /// The first address of a header (behind a CDN or proxy); requests without a valid one match
    /// (`fallback_match`) or not.
    ForwardedIp {
        header: String,
        fallback_match: bool,
    },
    /// The ASN of the connecting address (WAF's `ASN` custom key): every client of an ASN shares
    /// one count.
    Asn,
}

/// One scope-down condition of a rate-based rule, as WAF evaluates it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeDown {
    /// `GeoMatchStatement` (negated: inside a `NotStatement`).
    Country {
        countries: Vec<String>,
        negate: bool,
    },
    /// `ByteMatchStatement` on the URI path, `STARTS_WITH`, no text transformation.
    PathPrefix(String),
    /// `ByteMatchStatement` on the method, `EXACTLY`.
    Method(String),
    /// `LabelMatchStatement`: a label, or with `namespace` every label under a namespace ending in `:`.
    Label {
        key: String,
        namespace: bool,
        negate: bool,
    },
    /// `AsnMatchStatement`: the connecting address belongs to one of these ASNs.
    Asn(Vec<u32>),
}

/// A custom block response: status code and the key of a body defined on the web ACL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockResponse {
    pub code: u16,
    pub body_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseBody {
    pub content_type: ContentType,
    pub content: String,
}
