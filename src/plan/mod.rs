//! Plans: the difference between what the ledger and configuration want and what WAF has, as data.
//!
//! A [`Plan`] (`types`) lists resource changes (create, update, delete) with the lock token read for
//! each, the full state before and after, and drift (changes made outside waftune). `build`
//! computes it; renderers (`render::plan`) only format it; `apply` checks it ([`verify`]) and executes
//! it. The plan file ([`planfile`]) records digests of the configuration and the ledger so an apply
//! can refuse a plan made from other inputs.
//!
//! Every IP set waftune writes carries a stamp at the end of its description (`stamp`).

mod build;
pub mod desired;
mod drift;
mod guardrails;
pub mod planfile;
mod stamp;
mod types;
pub mod verify;
mod waf_json;

pub use build::{PlanError, PlanInputs, build_plan, load_ledger, parse_live};
pub use desired::{DesiredSet, desired_asns, desired_sets};
pub use guardrails::{GuardrailError, Violation, check_guardrails};
pub use planfile::{PLAN_FORMAT_VERSION, PlanFileError};
pub use stamp::stamp_description;
pub use types::*;

#[cfg(test)]
mod asn_tests;
#[cfg(test)]
mod rate_tests;
#[cfg(test)]
mod tests;
