//! How an Athena table of WAF logs is partitioned.

use serde::Deserialize;

/// How the table's S3 prefixes are partitioned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// AWS's current guidance: one `log_time` partition, `yyyy/MM/dd/HH/mm`, by projection.
    #[default]
    Projection,
    /// The older layout: `date` (`yyyy/MM/dd`) and `region` partitions.
    Date,
    /// No partitions: every query reads the whole location (small or test tables only).
    None,
}
