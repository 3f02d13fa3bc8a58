//! waftune: analyze AWS WAF logs, propose reviewed blocks, plan and apply them to WAFv2.
//!
//! The modules follow the data flow:
//! log records ([`log`]) -> one-pass aggregation ([`scan`]) -> reports ([`analyze`], [`render`]);
//! the ledger of blocks ([`ledger`]) + configuration ([`config`]) -> desired state -> [`plan`] against live
//! WAFv2 ([`waf`]) -> apply.

pub mod analyze;
pub mod apply;
pub mod athena;
pub mod campaign;
pub mod cidr;
pub mod cli;
pub mod config;
pub mod generate;
pub mod ledger;
pub mod log;
pub mod plan;
pub mod policy;
pub mod propose;
pub mod rate;
pub mod render;
pub mod scan;
pub mod time;
pub mod waf;
