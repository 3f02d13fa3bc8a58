//! [`WafApi`] over a snapshot file (`waftune pull --out FILE`), for plans without AWS access.
//!
//! Reads answer from the file; writes fail with [`WafErrorKind::ReadOnly`], so a plan made offline
//! can be reviewed but only applied against the live account (where its lock tokens are checked).

use std::path::{Path, PathBuf};

use super::live::SNAPSHOT_FORMAT_VERSION;
use super::{
    IpSet, IpSetSummary, LiveWaf, NewIpSet, WafApi, WafError, WafErrorKind, WebAcl, WebAclEdit,
    WebAclSummary,
};
use crate::model::acl::Scope;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot read snapshot `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write snapshot `{path}`: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: not a waftune snapshot: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "snapshot `{path}` has format version `{found}`; this waftune reads version {SNAPSHOT_FORMAT_VERSION}: run `waftune pull` again"
    )]
    Version { path: PathBuf, found: u32 },
}

pub struct SnapshotWaf {
    live: LiveWaf,
}

impl SnapshotWaf {
    pub fn new(live: LiveWaf) -> SnapshotWaf {
        SnapshotWaf { live }
    }

    pub fn load(path: &Path) -> Result<SnapshotWaf, SnapshotError> {
        let text = std::fs::read_to_string(path).map_err(|source| SnapshotError::Read {
            path: path.to_owned(),
            source,
        })?;
        let live: LiveWaf = serde_json::from_str(&text).map_err(|e| SnapshotError::Parse {
            path: path.to_owned(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        if live.format_version != SNAPSHOT_FORMAT_VERSION {
            return Err(SnapshotError::Version {
                path: path.to_owned(),
                found: live.format_version,
            });
        }
        Ok(SnapshotWaf { live })
    }
}

/// Writes the live state as a snapshot file (pretty JSON, stable order as fetched).
pub fn save_snapshot(live: &LiveWaf, path: &Path) -> Result<(), SnapshotError> {
    let mut text = serde_json::to_string_pretty(live).expect("the live state always serialises");
    text.push('\n');
    crate::util::atomic_file::write(path, text.as_bytes()).map_err(|source| SnapshotError::Write {
        path: path.to_owned(),
        source,
    })
}

fn not_found(operation: &'static str, name: &str) -> WafError {
    WafError {
        operation,
        resource: name.to_owned(),
        kind: WafErrorKind::NotFound,
    }
}

fn read_only(operation: &'static str, name: &str) -> WafError {
    WafError {
        operation,
        resource: name.to_owned(),
        kind: WafErrorKind::ReadOnly,
    }
}

impl WafApi for SnapshotWaf {
    fn scope(&self) -> Scope {
        self.live.scope
    }

    fn region(&self) -> &str {
        &self.live.region
    }

    async fn account(&self) -> Result<Option<String>, WafError> {
        Ok(self.live.account.clone())
    }

    async fn list_ip_sets(&self) -> Result<Vec<IpSetSummary>, WafError> {
        Ok(self.live.ip_sets.clone())
    }

    async fn get_ip_set(&self, name: &str, id: &str) -> Result<IpSet, WafError> {
        self.live
            .managed_ip_sets
            .iter()
            .find(|s| s.id == id)
            .cloned()
            .ok_or_else(|| not_found("GetIPSet", name))
    }

    async fn create_ip_set(&self, set: &NewIpSet) -> Result<IpSetSummary, WafError> {
        Err(read_only("CreateIPSet", &set.name))
    }

    async fn update_ip_set(
        &self,
        summary: &IpSetSummary,
        _description: &str,
        _addresses: &[String],
    ) -> Result<String, WafError> {
        Err(read_only("UpdateIPSet", &summary.name))
    }

    async fn delete_ip_set(&self, summary: &IpSetSummary) -> Result<(), WafError> {
        Err(read_only("DeleteIPSet", &summary.name))
    }

    async fn list_web_acls(&self) -> Result<Vec<WebAclSummary>, WafError> {
        Ok(self
            .live
            .web_acls
            .iter()
            .map(|a| WebAclSummary {
                name: a.name.clone(),
                id: a.id.clone(),
                arn: a.arn.clone(),
                lock_token: a.lock_token.clone(),
            })
            .collect())
    }

    async fn get_web_acl(&self, name: &str, id: &str) -> Result<WebAcl, WafError> {
        self.live
            .web_acls
            .iter()
            .find(|a| a.id == id)
            .cloned()
            .ok_or_else(|| not_found("GetWebACL", name))
    }

    async fn update_web_acl(
        &self,
        summary: &WebAclSummary,
        _edit: &WebAclEdit,
    ) -> Result<String, WafError> {
        Err(read_only("UpdateWebACL", &summary.name))
    }
}
