//! The live state a plan is computed against, read through any [`WafApi`].
//!
//! Only what the configuration names is read in full (its IP sets and web ACLs); every other IP set
//! is known by name and id only, so a plan can tell "missing" from "exists under another id" and
//! resolve the ARNs that rules reference. The same structure is the snapshot file `pull` writes.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{IpSet, IpSetSummary, WafApi, WafError, WebAcl, account_of};
use crate::config::{Config, ROLLOVER_SUFFIX};
use crate::model::acl::Scope;

/// Bumped when the snapshot layout changes incompatibly.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveWaf {
    pub format_version: u32,
    pub fetched_at: Timestamp,
    pub scope: Scope,
    pub region: String,
    /// From the resources' ARNs; `None` when the scope holds none of them yet.
    pub account: Option<String>,
    /// Every IP set in the scope and region.
    pub ip_sets: Vec<IpSetSummary>,
    /// The sets the configuration owns that exist, with their addresses.
    pub managed_ip_sets: Vec<IpSet>,
    /// The web ACLs the configuration names.
    pub web_acls: Vec<WebAcl>,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Waf(#[from] WafError),
    #[error(
        "the live state is for scope `{live_scope}` in `{live_region}`, but the config says scope `{config_scope}`{}",
        config_region.as_ref().map(|r| format!(" in `{r}`")).unwrap_or_default()
    )]
    WrongPlace {
        live_scope: Scope,
        live_region: String,
        config_scope: Scope,
        config_region: Option<String>,
    },
    #[error(
        "{count} IP sets are named `{name}` in {scope} `{region}` (ids {ids}); waftune cannot tell which one it owns: delete or rename the extra ones"
    )]
    DuplicateIpSet {
        name: String,
        count: usize,
        ids: String,
        scope: Scope,
        region: String,
    },
    #[error(
        "web ACL `{name}` does not exist in {scope} `{region}`; waftune only maintains rules in existing web ACLs (found: {found})"
    )]
    MissingWebAcl {
        name: String,
        scope: Scope,
        region: String,
        found: String,
    },
    #[error(
        "{count} web ACLs are named `{name}` in {scope} `{region}`; waftune cannot tell which one to change"
    )]
    DuplicateWebAcl {
        name: String,
        count: usize,
        scope: Scope,
        region: String,
    },
}

/// Every IP set the configuration owns, as (set name, group name): each group's IPv4 and IPv6 set,
/// and their rollover sets.
pub fn managed_set_names(config: &Config) -> Vec<(String, &str)> {
    let mut names = Vec::new();
    for g in &config.ip_set_groups {
        for base in [&g.ipv4_set_name, &g.ipv6_set_name] {
            names.push((base.clone(), g.name.as_str()));
            if g.rollover {
                names.push((format!("{base}{ROLLOVER_SUFFIX}"), g.name.as_str()));
            }
        }
    }
    names
}

/// Reads what the configuration owns from `api` (a live account or a snapshot).
pub async fn fetch_live<W: WafApi>(
    api: &W,
    config: &Config,
    now: Timestamp,
) -> Result<LiveWaf, FetchError> {
    let (scope, region) = (api.scope(), api.region().to_owned());
    let wrong_region = config.effective_region().is_some_and(|r| r != region);
    if scope != config.scope || wrong_region {
        return Err(FetchError::WrongPlace {
            live_scope: scope,
            live_region: region,
            config_scope: config.scope,
            config_region: config.effective_region().map(ToOwned::to_owned),
        });
    }

    let ip_sets = api.list_ip_sets().await?;
    let mut managed_ip_sets = Vec::new();
    for (name, _) in managed_set_names(config) {
        let matches: Vec<&IpSetSummary> = ip_sets.iter().filter(|s| s.name == name).collect();
        match matches.as_slice() {
            [] => {}
            [one] => managed_ip_sets.push(api.get_ip_set(&one.name, &one.id).await?),
            many => {
                return Err(FetchError::DuplicateIpSet {
                    count: many.len(),
                    ids: many
                        .iter()
                        .map(|s| format!("`{}`", s.id))
                        .collect::<Vec<_>>()
                        .join(", "),
                    name,
                    scope,
                    region,
                });
            }
        }
    }

    let acls = if config.web_acls.is_empty() {
        Vec::new()
    } else {
        api.list_web_acls().await?
    };
    let mut web_acls = Vec::new();
    for wanted in &config.web_acls {
        let matches: Vec<_> = acls.iter().filter(|a| a.name == wanted.name).collect();
        match matches.as_slice() {
            [one] => web_acls.push(api.get_web_acl(&one.name, &one.id).await?),
            [] => {
                let found: Vec<String> = acls.iter().map(|a| format!("`{}`", a.name)).collect();
                return Err(FetchError::MissingWebAcl {
                    name: wanted.name.clone(),
                    scope,
                    region,
                    found: if found.is_empty() {
                        "none".into()
                    } else {
                        found.join(", ")
                    },
                });
            }
            many => {
                return Err(FetchError::DuplicateWebAcl {
                    name: wanted.name.clone(),
                    count: many.len(),
                    scope,
                    region,
                });
            }
        }
    }

    let account = web_acls
        .iter()
        .map(|a| a.arn.as_str())
        .chain(ip_sets.iter().map(|s| s.arn.as_str()))
        .find_map(account_of)
        .map(ToOwned::to_owned);
    // A scope without resources yet has no ARN to read the account from.
    let account = match account {
        Some(account) => Some(account),
        None => api.account().await?,
    };
    Ok(LiveWaf {
        format_version: SNAPSHOT_FORMAT_VERSION,
        fetched_at: now,
        scope,
        region,
        account,
        ip_sets,
        managed_ip_sets,
        web_acls,
    })
}
