//! The plan file (Terraform's `planfile`): pretty JSON with a format version that apply checks first.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Plan;

/// Bumped when the plan file layout changes incompatibly; apply refuses other versions.
/// 2: rules carry a typed statement (IP sets or rate-based) and web ACL changes their capacity.
pub const PLAN_FORMAT_VERSION: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum PlanFileError {
    #[error("cannot read plan `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write plan `{path}`: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: not a waftune plan: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "plan `{path}` has format version `{found}`; this waftune applies version {PLAN_FORMAT_VERSION}: run plan again"
    )]
    Version { path: PathBuf, found: u32 },
}

impl Plan {
    /// The plan file's text: pretty JSON, ending with a newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a plan always serialises");
        text.push('\n');
        text
    }

    pub fn save(&self, path: &Path) -> Result<(), PlanFileError> {
        crate::util::atomic_file::write(path, self.to_json().as_bytes()).map_err(|source| {
            PlanFileError::Write {
                path: path.to_owned(),
                source,
            }
        })
    }

    pub fn load(path: &Path) -> Result<Plan, PlanFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| PlanFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        Plan::from_json(&text, path)
    }

    /// Parses a plan file; `path` is used in messages.
    pub fn from_json(text: &str, path: &Path) -> Result<Plan, PlanFileError> {
        // Check the version first: a future layout should say "run plan again", not "missing field".
        let version = serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| v.get("format_version")?.as_u64());
        if let Some(found) = version.filter(|v| *v != u64::from(PLAN_FORMAT_VERSION)) {
            return Err(PlanFileError::Version {
                path: path.to_owned(),
                found: u32::try_from(found).unwrap_or(u32::MAX),
            });
        }
        serde_json::from_str(text).map_err(|e| PlanFileError::Parse {
            path: path.to_owned(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })
    }
}
