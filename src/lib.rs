//! waftune: analyze AWS WAF logs, propose reviewed blocks, plan and apply them to WAFv2.
//!
//! The modules form layers; a module imports only from its own layer or the ones below it, and
//! top-level modules never import each other in a circle (see `docs/architecture.md`; the
//! `layering` test checks it):
//!
//! 0. [`util`]: CIDRs, time arguments, text helpers and the one [`util::diag::Diagnostic`] type.
//! 1. [`model`]: plain value types (ACL scope, WAF statements and limits, rate windows and scopes).
//! 2. inputs: [`log`], [`origin`] (ALB and CloudFront readers), [`config`], [`ledger`], [`policy`]
//!    (the generator is the crate `waftune-generate`).
//! 3. engines: [`scan`], [`origin::scan`]; [`waf`] (trait, live state, snapshot, capacity); [`athena::sql`],
//!    [`athena::rows`].
//! 4. analyses: [`analyze`], [`origin::report`], [`rate`], [`plan`], [`propose`].
//! 5. output and effects: [`render`], [`apply`], [`waf::aws`], [`athena`] with [`athena::client`].
//! 6. [`cli`]: arguments (the only place clap types live) and commands.

pub mod util;

pub mod model;

pub mod config;
pub mod ledger;
pub mod log;
pub mod origin;
pub mod policy;

pub mod scan;
pub mod waf;

pub mod analyze;
pub mod plan;
pub mod propose;
pub mod rate;
pub mod report;

pub mod apply;
pub mod athena;
pub mod render;
pub mod sdk_error;

pub mod cli;

#[cfg(test)]
mod layering;
